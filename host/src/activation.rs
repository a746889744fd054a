//! Activation of offline authenticators (flow 3), on both sides.
//!
//! Portal: [`Portal::import_devices`] (the maker's file),
//! [`Portal::order_device`] (the letter), [`Portal::start_activation`] and
//! [`Portal::activation_next`] (one call per step the user takes), then
//! [`Portal::verify_password`] and [`Portal::redeem_recovery_code`].
//! Every call returns a change to store (compare-and-set writes) like the
//! other portal calls. Device: [`OfflineAuthenticator`] is the device's
//! logic for an app that acts as one (the same code as the firmware).

use crate::rows::count;
use crate::{Approval, ErrorCode, OsRandom, Portal, PortalChange, Result, TesseraError, Timestamp, Verdict};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tessera_core::activation::{self as act, password::PasswordPolicy, Screen, ShownApproval, Token};
use tessera_core::host::Write;
use zeroize::Zeroizing;

/// How a portal runs activations (every field optional: the defaults
/// are NIST SP 800-63B-minded).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ActivationSettings {
    /// PBKDF2-HMAC-SHA256 iterations of the activation code and the
    /// passwords (10 000 to 10 000 000, default 600 000).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub hash_iterations: Option<i64>,
    /// Seconds between activation and first use (0 to 30 days, default 4 hours).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub usable_after_seconds: Option<i64>,
    /// Seconds to finish an activation (60 to 86 400, default 1800).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub activation_ttl_seconds: Option<i64>,
    /// Seconds an order can be activated (1 to 365 days, default 90 days).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub order_ttl_seconds: Option<i64>,
    /// Digits of the test challenge (6 to 10, default 8).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub challenge_digits: Option<i32>,
    /// Fewest characters of the new password (8 to 64, default 12).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub password_min_length: Option<i32>,
    /// Most characters of the new password (64 to 256, default 64).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub password_max_length: Option<i32>,
    /// The portal's own list of compromised passwords (case-insensitive).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub blocklist: Vec<String>,
}

fn out_of_range(what: &'static str) -> TesseraError {
    TesseraError::new(ErrorCode::InvalidInput, what)
}

impl ActivationSettings {
    /// The settings in force (defaults filled in), checked by the core's
    /// rules (`INVALID_INPUT`, `INVALID_DIGITS`): what a host stores them
    /// as, before any call uses them.
    pub fn to_core(&self) -> Result<act::ActivationSettings> {
        let d = act::ActivationSettings::default();
        let secs = |v: Option<i64>, def: u64, what| match v {
            None => Ok(def),
            Some(v) => u64::try_from(v).map_err(|_| out_of_range(what)),
        };
        let s = act::ActivationSettings {
            hash_iterations: match self.hash_iterations {
                None => d.hash_iterations,
                Some(v) => u32::try_from(v).map_err(|_| out_of_range("hash iterations are 10000 to 10000000"))?,
            },
            usable_after: secs(self.usable_after_seconds, d.usable_after, "the delay before use is 0 to 30 days")?,
            activation_ttl: secs(self.activation_ttl_seconds, d.activation_ttl, "an activation lives 60 to 86400 s")?,
            order_ttl: secs(self.order_ttl_seconds, d.order_ttl, "an order lives 1 to 365 days")?,
            challenge_digits: match self.challenge_digits {
                None => d.challenge_digits,
                Some(v) => u8::try_from(v)
                    .map_err(|_| TesseraError::new(ErrorCode::InvalidDigits, "a typed answer has 6 to 10 digits"))?,
            },
            password: PasswordPolicy {
                min_len: match self.password_min_length {
                    None => d.password.min_len,
                    Some(v) => {
                        u8::try_from(v).map_err(|_| out_of_range("a password has at least 8 to 64 characters"))?
                    }
                },
                max_len: match self.password_max_length {
                    None => d.password.max_len,
                    Some(v) => {
                        u16::try_from(v).map_err(|_| out_of_range("a password has at most 64 to 256 characters"))?
                    }
                },
            },
            blocklist: self.blocklist.clone(),
        };
        s.validate()?;
        Ok(s)
    }
}

/// Where an imported authenticator stands.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticatorStatus {
    /// Not sent to anyone yet.
    InStock,
    /// Sent with an order.
    Assigned,
    /// Activated.
    Active,
}

/// An imported offline authenticator, keyed by `serial`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredAuthenticator {
    /// Serial number.
    pub serial: String,
    /// The account it was sent to (empty in stock).
    pub account: String,
    /// The order's user ID, once sent.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub user_id: Option<String>,
    /// In stock, assigned or active.
    pub status: AuthenticatorStatus,
    /// When imported.
    pub imported_at: Timestamp,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth; holds the device's public key).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// Where an order stands.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrderStatus {
    /// Waiting for its activation.
    Ordered,
    /// Activated.
    Activated,
    /// Too many wrong activation codes or initial passwords.
    Locked,
}

/// An order (what the letter says), keyed by `user_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredOrder {
    /// User ID.
    pub user_id: String,
    /// Account.
    pub account: String,
    /// The authenticator sent.
    pub serial: String,
    /// Last second it can be activated.
    pub expires_at: Timestamp,
    /// Ordered, activated or locked.
    pub status: OrderStatus,
    /// The current activation.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub activation_id: Option<String>,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// What the user must do next in an activation.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActivationStep {
    /// Scan the first QR code and type the 10 digits.
    DeviceCode,
    /// Type the activation code chosen when ordering.
    ActivationCode,
    /// Scan the second QR code and type the 8 digits.
    BindingCode,
    /// Type the serial number from the back of the device.
    Serial,
    /// Scan the test challenge and type its code.
    TestOtp,
    /// Type the initial password from the letter.
    InitialPassword,
    /// Choose a new password.
    NewPassword,
    /// Activated.
    Done,
}

impl From<act::ActivationStep> for ActivationStep {
    fn from(s: act::ActivationStep) -> Self {
        use act::ActivationStep as S;
        match s {
            S::DeviceCode => ActivationStep::DeviceCode,
            S::ActivationCode => ActivationStep::ActivationCode,
            S::BindingCode => ActivationStep::BindingCode,
            S::Serial => ActivationStep::Serial,
            S::TestOtp => ActivationStep::TestOtp,
            S::InitialPassword => ActivationStep::InitialPassword,
            S::NewPassword => ActivationStep::NewPassword,
            S::Done => ActivationStep::Done,
        }
    }
}

/// Whether an activation runs.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActivationStatus {
    /// Running.
    Open,
    /// Finished: the device is in the registry.
    Done,
    /// Ended by 5 wrong entries.
    LockedOut,
    /// Not finished in time.
    Expired,
}

/// An activation, keyed by `activation_id`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredActivation {
    /// Activation id.
    pub activation_id: String,
    /// The order's user ID.
    pub user_id: String,
    /// Account.
    pub account: String,
    /// The authenticator.
    pub serial: String,
    /// What the user must do next.
    pub step: ActivationStep,
    /// Running or ended.
    pub status: ActivationStatus,
    /// Wrong entries so far (5 end it).
    pub failures: i32,
    /// First second it is refused.
    pub expires_at: Timestamp,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// An account's password and recovery codes, keyed by `account`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", js(open))]
pub struct StoredCredentials {
    /// Account.
    pub account: String,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i32,
    /// Locked by 5 wrong passwords or recovery codes in a row.
    pub locked: bool,
    /// A later activation's password and recovery codes wait until this
    /// time (its device's delay); `Portal::cancel_pending_credentials` drops them.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub pending_from: Option<Timestamp>,
    /// Record version.
    pub version: i64,
    /// The sealed record (the truth).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub sealed: Vec<u8>,
}

/// A maker's file, imported: store `change` (one insert per device).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceImport {
    /// The serial numbers imported, in file order.
    pub serials: Vec<String>,
    /// The inserts.
    pub change: PortalChange,
}

/// An order: print `user_id` and `initial_password` in the letter, send
/// the authenticator `serial` with it, store `change`.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceOrder {
    /// The user ID (10 digits).
    pub user_id: String,
    /// The initial password (`ABCD-EFGH-JKLM`, single use): for the letter only.
    pub initial_password: String,
    /// The authenticator to send.
    pub serial: String,
    /// Last second it can be activated.
    pub expires_at: Timestamp,
    /// Inserts the order, updates the authenticator.
    pub change: PortalChange,
}

impl std::fmt::Debug for DeviceOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceOrder")
            .field("user_id", &self.user_id)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// Where an activation stands after a call.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationUpdate {
    /// Accepted; repeated (the entry was already accepted: a double submit;
    /// nothing to store); or refused with the step's own code (`DEVICE_CODE_MISMATCH`,
    /// `ACTIVATION_CODE_MISMATCH`, `BINDING_CODE_MISMATCH`, `SERIAL_MISMATCH`,
    /// `INVALID_ANSWER`, `PASSWORD_MISMATCH`, `PASSWORD_POLICY`, `LOCKED_OUT`,
    /// `TOKEN_EXPIRED`): store `change` in every case.
    pub verdict: Verdict,
    /// Activation id.
    pub activation_id: String,
    /// What the user must do next (unchanged after a refusal).
    pub step: ActivationStep,
    /// The QR code to show for this step, if it has one.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub qr_text: Option<String>,
    /// When done: the recovery codes, shown once (the portal keeps only hashes).
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub recovery_codes: Vec<String>,
    /// When done: the authenticator's registry entry.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device_id: Option<String>,
    /// When done: when it becomes usable.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub usable_from: Option<Timestamp>,
    /// What to store.
    pub change: PortalChange,
}

impl std::fmt::Debug for ActivationUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationUpdate")
            .field("verdict", &self.verdict)
            .field("activation_id", &self.activation_id)
            .field("step", &self.step)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// The verdict on a password or recovery code.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialCheck {
    /// Accepted, or `PASSWORD_MISMATCH`, `RECOVERY_CODE_MISMATCH`, `LOCKED_OUT`.
    pub verdict: Verdict,
    /// Recovery codes left (after a redeemed one).
    pub recovery_codes_left: i32,
    /// Store it in every case.
    pub change: PortalChange,
}

/// The serial numbers of a maker's file (to look up which are imported
/// already), or its first error with the line number.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn factory_file_serials(file: String) -> Result<Vec<String>> {
    Ok(act::parse_factory_file(&file)?.into_iter().map(|r| r.serial).collect())
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Portal {
    /// Import a maker's factory file (`docs/PROTOCOL.md`). `already_imported`:
    /// the file's serial numbers the host holds ([`factory_file_serials`]).
    /// Throws `DUPLICATE_RECORD` or `INVALID_INPUT` with the line number;
    /// nothing is imported then.
    pub fn import_devices(&self, file: String, already_imported: Vec<String>, now: Timestamp) -> Result<DeviceImport> {
        let o = self.core.import_factory_records(&file, &already_imported, now.secs());
        let serials = o.result.clone()?;
        Ok(DeviceImport { serials, change: self.change(&o) })
    }

    /// Take an order for `account`: the user chose `activation_code`; the
    /// authenticator row `authenticator` (in stock) is sent. On a write
    /// conflict, call again (a new user ID is drawn).
    pub fn order_device(
        &self,
        account: String,
        activation_code: String,
        authenticator: StoredAuthenticator,
        settings: ActivationSettings,
        now: Timestamp,
    ) -> Result<DeviceOrder> {
        let code = Zeroizing::new(activation_code);
        let t = self.open_authenticator(&authenticator)?;
        let o = self.core.order_device(&account, &code, &t, &settings.to_core()?, now.secs(), &mut OsRandom);
        let change = self.change(&o);
        let order = o.result?;
        Ok(DeviceOrder {
            user_id: order.user_id,
            initial_password: String::clone(&order.initial_password),
            serial: order.serial,
            expires_at: Timestamp::from_secs(order.expires_at),
            change,
        })
    }

    /// Start (or restart) the activation of an order: the first QR code.
    /// Throws `LOCKED_OUT`, `TOKEN_EXPIRED`, `INVALID_STATE` (activated, or
    /// its initial password was used: order again), `USER_UNKNOWN` is the
    /// host's to throw when no order has the user ID.
    pub fn start_activation(
        &self,
        order: StoredOrder,
        authenticator: StoredAuthenticator,
        settings: ActivationSettings,
        now: Timestamp,
    ) -> Result<ActivationUpdate> {
        let e = self.open_order(&order)?;
        let t = self.open_authenticator(&authenticator)?;
        let o = self.core.start_activation(&e, &t, &settings.to_core()?, now.secs(), &mut OsRandom);
        let change = self.change(&o);
        let p = o.result?;
        Ok(update(Verdict::Accepted, p, change))
    }

    /// The user's entry for the current step. Store `change` whatever the
    /// verdict: wrong entries are counted (5 end the activation; 5 wrong
    /// activation codes or initial passwords lock the order). A device
    /// code, binding code, serial or test code equal to the one the step
    /// before accepted (a double submit, a repeated call after a write
    /// conflict) is `Repeated`, with nothing to store. An activation code
    /// or password typed twice is judged at the next step: a web page
    /// answers one step, so when the row's `step` is no longer the one the
    /// page showed, tell the user the step is done instead of calling this.
    #[allow(clippy::too_many_arguments)] // the four rows of one snapshot, the entry, the settings, the time
    pub fn activation_next(
        &self,
        activation: StoredActivation,
        order: StoredOrder,
        authenticator: StoredAuthenticator,
        credentials: Option<StoredCredentials>,
        input: String,
        settings: ActivationSettings,
        now: Timestamp,
    ) -> Result<ActivationUpdate> {
        let input = Zeroizing::new(input);
        let a = self.open_activation(&activation)?;
        let e = self.open_order(&order)?;
        let t = self.open_authenticator(&authenticator)?;
        let c = credentials.as_ref().map(|c| self.open_credentials(c)).transpose()?;
        let o =
            self.core.activation_next(&a, &e, &t, c.as_ref(), &input, &settings.to_core()?, now.secs(), &mut OsRandom);
        let verdict = Verdict::judged(&o.result)?;
        let change = self.change(&o);
        let verdict = match &o.result {
            Ok(p) if p.repeated => Verdict::Repeated,
            _ => verdict,
        };
        let p = match o.result {
            Ok(p) => p,
            Err(_) => {
                // Refused: where the activation stands now (the record written, or as read).
                let now_a = o
                    .writes
                    .iter()
                    .find_map(|w| if let Write::Activation(r) = w { Some(r.clone()) } else { None })
                    .unwrap_or(a);
                act::ActivationProgress {
                    activation_id: now_a.activation_id.clone(),
                    step: now_a.step,
                    qr_text: now_a.qr_text(),
                    recovery_codes: Vec::new(),
                    device_id: None,
                    usable_from: None,
                    repeated: false,
                }
            }
        };
        Ok(update(verdict, p, change))
    }

    /// Where an activation stands, with the QR code of its step (to show
    /// it again after a reload).
    pub fn activation_status(&self, activation: StoredActivation) -> Result<ActivationUpdate> {
        let a = self.open_activation(&activation)?;
        let p = act::ActivationProgress {
            activation_id: a.activation_id.clone(),
            step: a.step,
            qr_text: a.qr_text(),
            recovery_codes: Vec::new(),
            device_id: None,
            usable_from: None,
            repeated: false,
        };
        Ok(update(Verdict::Accepted, p, PortalChange::default()))
    }

    /// Check the account password set by the activation.
    pub fn verify_password(
        &self,
        credentials: StoredCredentials,
        password: String,
        now: Timestamp,
    ) -> Result<CredentialCheck> {
        let password = Zeroizing::new(password);
        let c = self.open_credentials(&credentials)?;
        let o = self.core.verify_password(&c, &password, now.secs());
        Ok(CredentialCheck {
            verdict: Verdict::judged(&o.result)?,
            recovery_codes_left: count32(c.recovery_codes_left()),
            change: self.change(&o),
        })
    }

    /// Drop the password and recovery codes a later activation set while
    /// they still wait for its delay (an activation the user did not make;
    /// unlink its device too). Throws `INVALID_STATE` when none wait.
    pub fn cancel_pending_credentials(&self, credentials: StoredCredentials, now: Timestamp) -> Result<PortalChange> {
        let c = self.open_credentials(&credentials)?;
        let o = self.core.cancel_pending_credentials(&c, now.secs());
        o.result.clone()?;
        Ok(self.change(&o))
    }

    /// Use one recovery code (single use).
    pub fn redeem_recovery_code(
        &self,
        credentials: StoredCredentials,
        code: String,
        now: Timestamp,
    ) -> Result<CredentialCheck> {
        let code = Zeroizing::new(code);
        let c = self.open_credentials(&credentials)?;
        let o = self.core.redeem_recovery_code(&c, &code, now.secs());
        let left = o.result.as_ref().copied().unwrap_or(c.recovery_codes_left());
        Ok(CredentialCheck {
            verdict: Verdict::judged(&o.result)?,
            recovery_codes_left: count32(left),
            change: self.change(&o),
        })
    }
}

fn count32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn update(verdict: Verdict, p: act::ActivationProgress, change: PortalChange) -> ActivationUpdate {
    ActivationUpdate {
        verdict,
        activation_id: p.activation_id,
        step: p.step.into(),
        qr_text: p.qr_text,
        recovery_codes: p.recovery_codes.iter().map(|c| String::clone(c)).collect(),
        device_id: p.device_id,
        usable_from: p.usable_from.map(Timestamp::from_secs),
        change,
    }
}

impl Portal {
    pub(crate) fn open_authenticator(&self, r: &StoredAuthenticator) -> Result<act::TokenRecord> {
        Ok(self.core.open_record(&r.serial, &r.account, u64::try_from(r.version).unwrap_or(0), &r.sealed)?)
    }
    pub(crate) fn open_order(&self, r: &StoredOrder) -> Result<act::EnrolmentRecord> {
        Ok(self.core.open_record(&r.user_id, &r.account, u64::try_from(r.version).unwrap_or(0), &r.sealed)?)
    }
    pub(crate) fn open_activation(&self, r: &StoredActivation) -> Result<act::ActivationRecord> {
        Ok(self.core.open_record(&r.activation_id, &r.account, u64::try_from(r.version).unwrap_or(0), &r.sealed)?)
    }
    pub(crate) fn open_credentials(&self, r: &StoredCredentials) -> Result<act::AccountCredentials> {
        Ok(self.core.open_record(&r.account, &r.account, u64::try_from(r.version).unwrap_or(0), &r.sealed)?)
    }

    /// The row of an activation-related write.
    pub(crate) fn activation_row(&self, w: &Write) -> Option<crate::RecordWrite> {
        let expected_version = w.expected_version().map(count);
        let rng = &mut OsRandom;
        Some(match w {
            Write::Token(r) => crate::RecordWrite::Authenticator {
                row: StoredAuthenticator {
                    serial: r.serial.clone(),
                    account: r.account().to_owned(),
                    user_id: match &r.state {
                        act::TokenState::InStock => None,
                        act::TokenState::Assigned { user_id, .. } | act::TokenState::Active { user_id, .. } => {
                            Some(user_id.clone())
                        }
                    },
                    status: match r.state {
                        act::TokenState::InStock => AuthenticatorStatus::InStock,
                        act::TokenState::Assigned { .. } => AuthenticatorStatus::Assigned,
                        act::TokenState::Active { .. } => AuthenticatorStatus::Active,
                    },
                    imported_at: Timestamp::from_secs(r.imported_at),
                    version: count(r.version),
                    sealed: self.core.seal_record(r, rng),
                },
                expected_version,
            },
            Write::Enrolment(r) => crate::RecordWrite::Order {
                row: StoredOrder {
                    user_id: r.user_id.clone(),
                    account: r.account.clone(),
                    serial: r.serial.clone(),
                    expires_at: Timestamp::from_secs(r.expires_at),
                    status: match r.state {
                        act::EnrolmentState::Ordered => OrderStatus::Ordered,
                        act::EnrolmentState::Activated { .. } => OrderStatus::Activated,
                        act::EnrolmentState::Locked { .. } => OrderStatus::Locked,
                    },
                    activation_id: r.activation_id.clone(),
                    version: count(r.version),
                    sealed: self.core.seal_record(r, rng),
                },
                expected_version,
            },
            Write::Activation(r) => crate::RecordWrite::Activation {
                row: StoredActivation {
                    activation_id: r.activation_id.clone(),
                    user_id: r.user_id.clone(),
                    account: r.account.clone(),
                    serial: r.serial.clone(),
                    step: r.step.into(),
                    status: match r.state {
                        act::ActivationState::Open => ActivationStatus::Open,
                        act::ActivationState::Done { .. } => ActivationStatus::Done,
                        act::ActivationState::LockedOut { .. } => ActivationStatus::LockedOut,
                        act::ActivationState::Expired { .. } => ActivationStatus::Expired,
                    },
                    failures: count32(r.failures),
                    expires_at: Timestamp::from_secs(r.expires_at),
                    version: count(r.version),
                    sealed: self.core.seal_record(r, rng),
                },
                expected_version,
            },
            Write::Credentials(r) => crate::RecordWrite::Credentials {
                row: StoredCredentials {
                    account: r.account.clone(),
                    recovery_codes_left: count32(r.recovery_codes_left()),
                    locked: r.password_locked() || r.recovery_locked(),
                    pending_from: r.pending_from().map(Timestamp::from_secs),
                    version: count(r.version),
                    sealed: self.core.seal_record(r, rng),
                },
                expected_version,
            },
            _ => return None,
        })
    }
}

/// What an offline authenticator shows after a scan.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScreenKind {
    /// The first activation QR code: the 10-digit device code.
    DeviceCode,
    /// The second activation QR code: bound; the 8-digit binding code.
    BindingCode,
    /// A challenge: what is approved and its code.
    Challenge,
}

/// The screen of an offline authenticator after a scan. Store `state`
/// (sealed) after every scan: a binding changes it.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorScreen {
    /// What was scanned.
    pub kind: ScreenKind,
    /// The digits to show (the user types them into the portal).
    pub code: String,
    /// Who asks.
    pub portal_name: String,
    /// The user it is bound to (binding and challenges).
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub user_id: Option<String>,
    /// What a challenge approves.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub approval: Option<Approval>,
    /// A binding replaced an earlier one.
    pub replaced: bool,
    /// The sealed state to store.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub state: Vec<u8>,
}

impl std::fmt::Debug for AuthenticatorScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatorScreen")
            .field("kind", &self.kind)
            .field("portal_name", &self.portal_name)
            .field("approval", &self.approval)
            .finish_non_exhaustive()
    }
}

/// Public facts of an offline authenticator.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorInfo {
    /// Serial number.
    pub serial: String,
    /// The user it is bound to.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub user_id: Option<String>,
    /// The portal it is bound to.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub portal_name: Option<String>,
    /// Its registry entry on the portal, once bound.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device_id: Option<String>,
}

/// A new offline authenticator: store `state`; give `factory_record` (a
/// line of a factory file: the serial and the device's public key) to the
/// portal's import.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuthenticator {
    /// The sealed state.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub state: Vec<u8>,
    /// `SERIAL hex-public-key`, a line of a factory file.
    pub factory_record: String,
}

impl std::fmt::Debug for NewAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAuthenticator").finish_non_exhaustive()
    }
}

/// An app acting as an offline authenticator (flow 3): the device logic
/// of the firmware, its state sealed under the app's storage key.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct OfflineAuthenticator {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for OfflineAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OfflineAuthenticator(<storage key>)")
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl OfflineAuthenticator {
    /// Bound to the app's 32-byte storage key (`INVALID_INPUT` otherwise).
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn new(storage_key: Vec<u8>) -> Result<Arc<Self>> {
        let storage_key = Zeroizing::new(storage_key);
        let k: [u8; 32] = storage_key[..]
            .try_into()
            .map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "the storage key must be 32 bytes"))?;
        Ok(Arc::new(OfflineAuthenticator { key: Zeroizing::new(k) }))
    }

    /// Make a new authenticator with serial number `serial` (6 to 16 of
    /// `A`–`Z`, `0`–`9`) and a random factory secret.
    pub fn create(&self, serial: String) -> Result<NewAuthenticator> {
        let t = Token::new(&serial, &mut OsRandom)?;
        Ok(NewAuthenticator { state: t.seal(&self.key, &mut OsRandom), factory_record: t.factory_record().to_line() })
    }

    /// Scan a QR code (activation or challenge): what to show. Throws
    /// `NOT_FOR_THIS_DEVICE`, `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`,
    /// `WRONG_MESSAGE_KIND`, `TOKEN_ALREADY_USED` (an older binding),
    /// `DEVICE_NOT_LINKED` (a challenge before activation), `STATE_CORRUPT`.
    pub fn scan(&self, state: Vec<u8>, qr_text: String) -> Result<AuthenticatorScreen> {
        let mut t = Token::open(&self.key, &state)?;
        let screen = t.scan(&qr_text)?;
        let sealed = t.seal(&self.key, &mut OsRandom);
        Ok(match screen {
            Screen::DeviceCode { portal_name, code } => AuthenticatorScreen {
                kind: ScreenKind::DeviceCode,
                code: code.as_str().into(),
                portal_name: portal_name.as_str().into(),
                user_id: None,
                approval: None,
                replaced: false,
                state: sealed,
            },
            Screen::BindingCode { portal_name, user_id, code, replaced } => AuthenticatorScreen {
                kind: ScreenKind::BindingCode,
                code: code.as_str().into(),
                portal_name: portal_name.as_str().into(),
                user_id: Some(user_id.as_str().into()),
                approval: None,
                replaced,
                state: sealed,
            },
            Screen::Challenge { portal_name, user_id, approval, code } => AuthenticatorScreen {
                kind: ScreenKind::Challenge,
                code: code.as_str().into(),
                portal_name: portal_name.as_str().into(),
                user_id: Some(user_id.as_str().into()),
                approval: Some(shown(&approval)),
                replaced: false,
                state: sealed,
            },
        })
    }

    /// Serial number and binding of a sealed state.
    pub fn info(&self, state: Vec<u8>) -> Result<AuthenticatorInfo> {
        let t = Token::open(&self.key, &state)?;
        Ok(AuthenticatorInfo {
            serial: t.serial().into(),
            user_id: t.user_id().map(Into::into),
            portal_name: t.portal_name().map(Into::into),
            device_id: t.device_id().map(|d| tessera_core::encoding::hex_encode(&d)),
        })
    }
}

fn shown(a: &ShownApproval) -> Approval {
    match a {
        ShownApproval::Login => Approval::Login,
        ShownApproval::Transaction { amount, currency, payee, .. } => Approval::Transaction {
            amount: amount.to_string(),
            currency: currency.as_str().into(),
            payee: payee.as_str().into(),
            text: a.text_lines().iter().map(|l| l.as_str().to_owned()).collect(),
        },
        ShownApproval::LinkDevice { device_name, device_id } => {
            Approval::LinkDevice { device_name: device_name.as_str().into(), device_id: device_id.as_str().into() }
        }
    }
}
