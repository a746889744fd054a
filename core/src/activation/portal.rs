//! Portal side of activation: importing the maker's records, orders (the
//! letter), the activation state machine, and the account's password and
//! recovery codes. Every operation is a pure function of the records the
//! host read and returns versioned compare-and-set writes (`crate::host`).

use super::messages::{binding_code, binding_qr, device_code, possession_qr, qr_text};
use super::password::{check_iterations, PasswordPolicy, SlowHash, DEFAULT_HASH_ITERATIONS, MIN_HASH_ITERATIONS};
use super::{
    binding_keys, binding_root, key_hint, normalize_serial, parse_factory_file, qr_key, token_device_id, wrap_key,
    MAX_USER_ID_LEN,
};
use crate::challenge::messages::{typed_code_matches, ChallengeBody, ChallengeQrMsg};
use crate::challenge::{Approval, ANSWER_DIGITS};
use crate::crypto::{ecdh, generate_secret_key, public_of, random_array, secret_bytes, RandomSource};
use crate::encoding::hex_encode;
use crate::error::{err, ErrorCode, Result};
use crate::host::{Outcome, Write};
use crate::link::{
    check_name, DeviceRecord, DeviceStatus, DeviceTotpPolicy, Portal, PortalEvent, PortalRecord, MAX_ACCOUNT_LEN,
};
use crate::otp::OtpState;
use crate::secret::{ct_eq, SecretBytes};
use crate::time::check_now;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Wrong device codes, binding codes, serial numbers and test codes one
/// activation takes; the last one ends it (`LOCKED_OUT`: start again).
pub const MAX_ACTIVATION_FAILURES: u32 = 5;
/// Wrong activation codes (or initial passwords) an order takes; the last
/// one locks the order. Also the limit of the account's password and of
/// its recovery codes.
pub const MAX_SECRET_FAILURES: u32 = 5;
/// Activations one order may start (each a new first QR code).
pub const MAX_ACTIVATION_STARTS: u32 = 10;
/// Recovery codes made at activation, each usable once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Default delay before an activated device is usable (4 hours).
pub const DEFAULT_USABLE_AFTER: u64 = 4 * 3600;
/// Default time to finish an activation once started (30 minutes).
pub const DEFAULT_ACTIVATION_TTL: u64 = 1800;
/// Default validity of an order (the letter), 90 days.
pub const DEFAULT_ORDER_TTL: u64 = 90 * 86400;

/// Letters and digits of initial passwords and recovery codes: no 0/O, 1/I.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// How a portal runs activations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationSettings {
    /// PBKDF2 iterations of the activation code, initial and new password
    /// (10 000 to 10 000 000; default 600 000).
    pub hash_iterations: u32,
    /// Seconds between activation and first use (0 to 30 days; default 4 hours).
    pub usable_after: u64,
    /// Seconds to finish an activation once started (60 to 86 400; default 1800).
    pub activation_ttl: u64,
    /// Seconds an order (its letter) can be activated (1 to 365 days; default 90 days).
    pub order_ttl: u64,
    /// Digits of the test challenge's code (6 to 10; default 8).
    pub challenge_digits: u8,
    /// Rules of the new password.
    pub password: PasswordPolicy,
    /// The portal's own list of compromised passwords (case-insensitive).
    pub blocklist: Vec<String>,
}

impl Default for ActivationSettings {
    fn default() -> Self {
        ActivationSettings {
            hash_iterations: DEFAULT_HASH_ITERATIONS,
            usable_after: DEFAULT_USABLE_AFTER,
            activation_ttl: DEFAULT_ACTIVATION_TTL,
            order_ttl: DEFAULT_ORDER_TTL,
            challenge_digits: crate::challenge::DEFAULT_ANSWER_DIGITS,
            password: PasswordPolicy::default(),
            blocklist: Vec::new(),
        }
    }
}

impl ActivationSettings {
    /// Check every setting (`INVALID_INPUT`, `INVALID_DIGITS`).
    pub fn validate(&self) -> Result<()> {
        check_iterations(self.hash_iterations)?;
        self.password.validate()?;
        if self.usable_after > 30 * 86400 {
            return Err(err(ErrorCode::InvalidInput, "the delay before use is at most 30 days"));
        }
        if !(60..=86400).contains(&self.activation_ttl) {
            return Err(err(ErrorCode::InvalidInput, "an activation lives 60 to 86400 seconds"));
        }
        if !(86400..=365 * 86400).contains(&self.order_ttl) {
            return Err(err(ErrorCode::InvalidInput, "an order lives 1 to 365 days"));
        }
        if !ANSWER_DIGITS.contains(&self.challenge_digits) {
            return Err(err(ErrorCode::InvalidDigits, "a typed answer has 6 to 10 digits"));
        }
        Ok(())
    }
}

/// Where an imported device stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenState {
    /// Not given to anyone yet.
    InStock,
    /// Sent to the user of an order.
    Assigned {
        /// The order's user ID.
        user_id: String,
        /// Its account.
        account: String,
    },
    /// Activated.
    Active {
        /// The order's user ID.
        user_id: String,
        /// Account.
        account: String,
        /// Its registry entry.
        device_id: String,
    },
}

/// An imported device, keyed by serial number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Serial number.
    pub serial: String,
    /// When it was imported.
    pub imported_at: u64,
    /// In stock, assigned or active.
    pub state: TokenState,
    /// Bindings issued so far (each second QR code takes the next).
    pub generation: u32,
    /// Record version.
    pub version: u64,
    /// The device's public key (compressed SEC1), from the maker's file.
    pub(crate) device_pk: Vec<u8>,
}

impl core::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("serial", &self.serial)
            .field("state", &self.state)
            .field("generation", &self.generation)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// A fresh ephemeral key `e`, its public half `E` and `ECDH(e, D)`.
    fn agree(&self, rng: &mut dyn RandomSource) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>)> {
        let e = generate_secret_key(rng)?;
        let shared = ecdh(&secret_bytes(&e), &self.device_pk, ErrorCode::StateCorrupt)?;
        Ok((public_of(&e).to_vec(), shared))
    }

    fn hint(&self) -> [u8; 4] {
        key_hint(&self.device_pk)
    }

    /// The account it is assigned to or active for (empty in stock).
    pub fn account(&self) -> &str {
        match &self.state {
            TokenState::InStock => "",
            TokenState::Assigned { account, .. } | TokenState::Active { account, .. } => account,
        }
    }
}

/// Where an order stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrolmentState {
    /// Waiting for its activation.
    Ordered,
    /// Activated.
    Activated {
        /// When.
        at: u64,
        /// The registry entry.
        device_id: String,
    },
    /// Too many wrong activation codes or initial passwords.
    Locked {
        /// When.
        at: u64,
    },
}

/// An order: what the letter says, keyed by user ID.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentRecord {
    /// User ID (10 digits).
    pub user_id: String,
    /// Account.
    pub account: String,
    /// The device sent.
    pub serial: String,
    /// When ordered.
    pub created_at: u64,
    /// Last second it can be activated.
    pub expires_at: u64,
    /// Ordered, activated or locked.
    pub state: EnrolmentState,
    /// Wrong activation codes in a row.
    pub code_failures: u32,
    /// Wrong initial passwords in a row.
    pub password_failures: u32,
    /// Activations started.
    pub starts: u32,
    /// The current activation: the last one whose device code was typed
    /// (an older one is superseded then).
    pub activation_id: Option<String>,
    /// The initial password was accepted once (single use).
    pub initial_password_used: bool,
    /// Record version.
    pub version: u64,
    pub(crate) activation_code: SlowHash,
    pub(crate) initial_password: SlowHash,
}

impl core::fmt::Debug for EnrolmentRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnrolmentRecord")
            .field("user_id", &self.user_id)
            .field("account", &self.account)
            .field("serial", &self.serial)
            .field("state", &self.state)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What the user must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl ActivationStep {
    /// `device_code`, `activation_code`, `binding_code`, `serial`,
    /// `test_otp`, `initial_password`, `new_password`, `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationStep::DeviceCode => "device_code",
            ActivationStep::ActivationCode => "activation_code",
            ActivationStep::BindingCode => "binding_code",
            ActivationStep::Serial => "serial",
            ActivationStep::TestOtp => "test_otp",
            ActivationStep::InitialPassword => "initial_password",
            ActivationStep::NewPassword => "new_password",
            ActivationStep::Done => "done",
        }
    }

    fn has_qr(self) -> bool {
        matches!(self, ActivationStep::DeviceCode | ActivationStep::BindingCode | ActivationStep::TestOtp)
    }
}

/// Whether an activation is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivationState {
    /// Running.
    Open,
    /// Finished: the device is in the registry.
    Done {
        /// When.
        at: u64,
    },
    /// Ended by too many wrong entries.
    LockedOut {
        /// When.
        at: u64,
    },
    /// Not finished in time.
    Expired {
        /// When.
        at: u64,
    },
}

/// One activation of an order, keyed by activation id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRecord {
    /// Activation id (hex).
    pub activation_id: String,
    /// The order's user ID.
    pub user_id: String,
    /// Account.
    pub account: String,
    /// The device being activated.
    pub serial: String,
    /// When started.
    pub created_at: u64,
    /// First second it is refused.
    pub expires_at: u64,
    /// What the user must do next.
    pub step: ActivationStep,
    /// Running, done or ended.
    pub state: ActivationState,
    /// Wrong device codes, binding codes, serials and test codes so far.
    pub failures: u32,
    /// The binding's generation (0 before the second QR code).
    pub generation: u32,
    /// Record version.
    pub version: u64,
    /// The bytes of the QR code of the current step (none without one).
    pub(crate) qr: Vec<u8>,
    /// The first QR code's key (`K_qr`), until its device code is typed.
    pub(crate) qr_key: SecretBytes,
    /// The binding root `R`, once the second QR code is made.
    pub(crate) root: SecretBytes,
    pub(crate) test_hash: [u8; 32],
    pub(crate) test_digits: u8,
    /// A tag of the last accepted device code, binding code, serial or test
    /// code: the same entry again (a double submit, a repeated call after
    /// a write conflict) is answered as a repeat, never judged at the next
    /// step (where it would count as a wrong activation code or password).
    pub(crate) last_entry: [u8; 16],
}

impl core::fmt::Debug for ActivationRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ActivationRecord")
            .field("activation_id", &self.activation_id)
            .field("user_id", &self.user_id)
            .field("step", &self.step)
            .field("state", &self.state)
            .field("failures", &self.failures)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl ActivationRecord {
    /// The QR code the user must scan now, to show again (a reloaded page).
    pub fn qr_text(&self) -> Option<String> {
        (self.step.has_qr() && self.state == ActivationState::Open && !self.qr.is_empty()).then(|| qr_text(&self.qr))
    }

    fn progress(&self) -> ActivationProgress {
        ActivationProgress {
            activation_id: self.activation_id.clone(),
            step: self.step,
            qr_text: self.qr_text(),
            recovery_codes: Vec::new(),
            device_id: None,
            usable_from: None,
            repeated: false,
        }
    }
}

/// A recovery code as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredRecoveryCode {
    hash: SlowHash,
    used_at: Option<u64>,
}

/// An account's password and recovery codes (set by an activation),
/// keyed by account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCredentials {
    /// Account.
    pub account: String,
    /// When the password was set.
    pub updated_at: u64,
    /// Wrong passwords in a row (the last of [`MAX_SECRET_FAILURES`] locks).
    pub password_failures: u32,
    /// Wrong recovery codes in a row (the last of [`MAX_SECRET_FAILURES`] locks).
    pub recovery_failures: u32,
    /// Record version.
    pub version: u64,
    pub(crate) password: SlowHash,
    pub(crate) recovery: Vec<StoredRecoveryCode>,
    /// Credentials set by a later activation of the account: they take the
    /// place of these only when its device becomes usable, so that an
    /// activation the user did not make can be cancelled before it changes
    /// their password ([`Portal::cancel_pending_credentials`]).
    pub(crate) pending: Option<PendingCredentials>,
}

/// Credentials waiting for their activation's delay.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCredentials {
    password: SlowHash,
    recovery: Vec<StoredRecoveryCode>,
    effective_from: u64,
    device_id: String,
}

impl core::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account", &self.account)
            .field("recovery_codes_left", &self.recovery_codes_left())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl AccountCredentials {
    /// When credentials set by a later activation take effect (none waiting: `None`).
    pub fn pending_from(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.effective_from)
    }

    /// The credentials in force at `now`: pending ones whose time came
    /// replace the current ones (counts reset), as the next write stores.
    fn in_force(&self, now: u64) -> AccountCredentials {
        let mut c = self.clone();
        if let Some(p) = c.pending.take_if(|p| now >= p.effective_from) {
            c.password = p.password;
            c.recovery = p.recovery;
            c.updated_at = p.effective_from;
            c.password_failures = 0;
            c.recovery_failures = 0;
        }
        c
    }

    /// Recovery codes not used yet.
    pub fn recovery_codes_left(&self) -> u32 {
        self.recovery.iter().filter(|c| c.used_at.is_none()).count() as u32
    }

    /// Locked by wrong passwords.
    pub fn password_locked(&self) -> bool {
        self.password_failures >= MAX_SECRET_FAILURES
    }

    /// Locked by wrong recovery codes.
    pub fn recovery_locked(&self) -> bool {
        self.recovery_failures >= MAX_SECRET_FAILURES
    }
}

macro_rules! portal_record {
    ($t:ty, $tag:expr, $key:ident, $account:path) => {
        impl $t {
            /// A copy at the next version (the record a write replaces it with).
            fn next(&self) -> $t {
                let mut n = self.clone();
                n.version = self.version.saturating_add(1);
                n
            }
        }

        impl PortalRecord for $t {
            const TAG: u8 = $tag;
            fn key(&self) -> &str {
                &self.$key
            }
            fn account(&self) -> &str {
                $account(self)
            }
            fn version(&self) -> u64 {
                self.version
            }
        }
    };
}
fn account_of_enrolment(r: &EnrolmentRecord) -> &str {
    &r.account
}
fn account_of_activation(r: &ActivationRecord) -> &str {
    &r.account
}
fn account_of_credentials(r: &AccountCredentials) -> &str {
    &r.account
}
portal_record!(TokenRecord, 5, serial, TokenRecord::account);
portal_record!(EnrolmentRecord, 6, user_id, account_of_enrolment);
portal_record!(ActivationRecord, 7, activation_id, account_of_activation);
portal_record!(AccountCredentials, 8, account, account_of_credentials);

/// An order: what the letter to the user says.
#[derive(Clone)]
pub struct Order {
    /// The user ID.
    pub user_id: String,
    /// The device sent with it.
    pub serial: String,
    /// Last second it can be activated.
    pub expires_at: u64,
    /// The initial password (`ABCD-EFGH-JKLM`): print it in the letter,
    /// never log it. The portal keeps only its slow hash.
    pub initial_password: Zeroizing<String>,
}

impl core::fmt::Debug for Order {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Order").field("user_id", &self.user_id).field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// Where an activation stands after a step.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationProgress {
    /// Activation id.
    pub activation_id: String,
    /// What the user must do next.
    pub step: ActivationStep,
    /// The QR code to show, when the step has one.
    pub qr_text: Option<String>,
    /// Recovery codes, shown once when the activation is done (the portal
    /// keeps only their hashes).
    pub recovery_codes: Vec<Zeroizing<String>>,
    /// The device's registry entry, when done.
    pub device_id: Option<String>,
    /// When the device becomes usable, when done.
    pub usable_from: Option<u64>,
    /// The entry repeated one already accepted: nothing was judged or written.
    pub repeated: bool,
}

impl core::fmt::Debug for ActivationProgress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ActivationProgress")
            .field("activation_id", &self.activation_id)
            .field("step", &self.step)
            .field("device_id", &self.device_id)
            .field("usable_from", &self.usable_from)
            .finish_non_exhaustive()
    }
}

/// A random code from [`ALPHABET`], in groups of 4 joined by `-`.
fn random_code(groups: usize, rng: &mut dyn RandomSource) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(groups * 5));
    for g in 0..groups {
        if g > 0 {
            s.push('-');
        }
        for b in random_array::<4>(rng) {
            s.push(char::from(ALPHABET[usize::from(b & 31)]));
        }
    }
    s
}

/// A typed code as hashed: upper case, without spaces and dashes.
fn normalized_code(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect())
}

fn digits_only(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect())
}

/// The tag of an accepted non-secret entry (see `ActivationRecord::last_entry`).
fn entry_tag(activation_id: &str, typed: &str) -> [u8; 16] {
    let h = crate::crypto::sha256(&[
        b"tessera/v1/activation-entry",
        activation_id.as_bytes(),
        normalized_code(typed).as_bytes(),
    ]);
    let mut t = [0u8; 16];
    t.copy_from_slice(&h[..16]);
    t
}

fn new_id(rng: &mut dyn RandomSource) -> String {
    hex_encode(&random_array::<16>(rng))
}

/// A 10-digit user ID.
fn new_user_id(rng: &mut dyn RandomSource) -> String {
    format!("{:010}", u64::from_be_bytes(random_array::<8>(rng)) % 10_000_000_000)
}

impl Portal {
    /// Import a maker's factory file (`docs/PROTOCOL.md`): one insert per
    /// device, all in one transaction. `already_imported` are the file's
    /// serial numbers the host already holds ([`parse_factory_file`] lists
    /// them): any of them is `DUPLICATE_RECORD` with its line, and nothing
    /// is imported; so is a malformed line (`INVALID_INPUT`). Returns the
    /// imported serial numbers.
    pub fn import_factory_records(&self, file: &str, already_imported: &[String], now: u64) -> Outcome<Vec<String>> {
        let records = match check_now(now).and_then(|_| parse_factory_file(file)) {
            Ok(r) => r,
            Err(e) => return Outcome::refused(e),
        };
        if let Some(r) = records.iter().find(|r| already_imported.contains(&r.serial)) {
            return Outcome::refused(crate::Error::with_detail(
                ErrorCode::DuplicateRecord,
                format!("line {}: serial number {} was imported before", r.line, r.serial),
            ));
        }
        let serials = records.iter().map(|r| r.serial.clone()).collect();
        let writes = records
            .into_iter()
            .map(|r| {
                Write::Token(TokenRecord {
                    serial: r.serial,
                    imported_at: now,
                    state: TokenState::InStock,
                    generation: 0,
                    version: 1,
                    device_pk: r.public_key.to_vec(),
                })
            })
            .collect();
        Outcome::new(writes, Ok(serials))
    }

    /// Take an order: the user chose `activation_code` (6 to 32
    /// characters), the portal sends `token` (a device in stock) and a
    /// letter with the user ID and the initial password of the result.
    /// Writes the order (insert; on a conflict, call again: another user ID
    /// is drawn) and the device, now assigned. `INVALID_STATE` for a device
    /// not in stock, `INVALID_INPUT`.
    pub fn order_device(
        &self,
        account: &str,
        activation_code: &str,
        token: &TokenRecord,
        settings: &ActivationSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Outcome<Order> {
        let checked = check_now(now)
            .and_then(|_| settings.validate())
            .and_then(|_| check_name(account, MAX_ACCOUNT_LEN, "the account"))
            .and_then(|_| {
                let n = activation_code.chars().count();
                if !(6..=32).contains(&n) || activation_code.chars().any(char::is_control) {
                    return Err(err(ErrorCode::InvalidInput, "an activation code has 6 to 32 characters"));
                }
                Ok(())
            })
            .and_then(|_| match token.state {
                TokenState::InStock => Ok(()),
                _ => Err(err(ErrorCode::InvalidState, "this device was already sent to a user")),
            });
        if let Err(e) = checked {
            return Outcome::refused(e);
        }
        let user_id = new_user_id(rng);
        let password = random_code(3, rng);
        let hashes = SlowHash::new(activation_code.as_bytes(), settings.hash_iterations, rng).and_then(|c| {
            Ok((c, SlowHash::new(normalized_code(&password).as_bytes(), settings.hash_iterations, rng)?))
        });
        let (code_hash, password_hash) = match hashes {
            Ok(h) => h,
            Err(e) => return Outcome::refused(e),
        };
        let expires_at = now.saturating_add(settings.order_ttl);
        let enrolment = EnrolmentRecord {
            user_id: user_id.clone(),
            account: account.into(),
            serial: token.serial.clone(),
            created_at: now,
            expires_at,
            state: EnrolmentState::Ordered,
            code_failures: 0,
            password_failures: 0,
            starts: 0,
            activation_id: None,
            initial_password_used: false,
            version: 1,
            activation_code: code_hash,
            initial_password: password_hash,
        };
        let mut t = token.next();
        t.state = TokenState::Assigned { user_id: user_id.clone(), account: account.into() };
        Outcome::new(
            vec![Write::Enrolment(enrolment), Write::Token(t)],
            Ok(Order { user_id, serial: token.serial.clone(), expires_at, initial_password: password }),
        )
    }

    /// Start (or restart) the activation of an order: the first QR code.
    /// Once its device code is typed it supersedes the order's earlier
    /// activation (before that, a start by someone without the device
    /// interrupts nothing). Errors:
    /// `LOCKED_OUT` (order locked, or [`MAX_ACTIVATION_STARTS`] reached),
    /// `TOKEN_EXPIRED` (order expired), `INVALID_STATE` (already activated,
    /// or the initial password was used by an activation that did not
    /// finish: a new order is needed), `INVALID_INPUT` (the device is not
    /// the order's).
    pub fn start_activation(
        &self,
        enrolment: &EnrolmentRecord,
        token: &TokenRecord,
        settings: &ActivationSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Outcome<ActivationProgress> {
        let checked = check_now(now).and_then(|_| settings.validate()).and_then(|_| check_order(enrolment, token, now));
        if let Err(e) = checked {
            return Outcome::refused(e);
        }
        if enrolment.initial_password_used {
            return Outcome::refused(err(
                ErrorCode::InvalidState,
                "the initial password of this order was used by an unfinished activation; order again",
            ));
        }
        if enrolment.starts >= MAX_ACTIVATION_STARTS {
            return Outcome::refused(err(ErrorCode::LockedOut, "this order was started too often; order again"));
        }
        let activation_id = new_id(rng);
        let (e_pk, shared) = match token.agree(rng) {
            Ok(x) => x,
            Err(e) => return Outcome::refused(e),
        };
        let k = qr_key(&shared, &e_pk, &token.serial);
        let qr = possession_qr(&k, &token.hint(), &e_pk, self.name());
        let a = ActivationRecord {
            activation_id: activation_id.clone(),
            user_id: enrolment.user_id.clone(),
            account: enrolment.account.clone(),
            serial: enrolment.serial.clone(),
            created_at: now,
            expires_at: now.saturating_add(settings.activation_ttl).min(enrolment.expires_at),
            step: ActivationStep::DeviceCode,
            state: ActivationState::Open,
            failures: 0,
            generation: 0,
            version: 1,
            qr,
            qr_key: SecretBytes::from_slice(&k[..]),
            root: SecretBytes::from_slice(&[]),
            test_hash: [0; 32],
            test_digits: 0,
            last_entry: [0; 16],
        };
        // Counted now (each start allows 5 device-code guesses); it becomes
        // the current activation only once its device code is typed.
        let mut e = enrolment.next();
        e.starts = e.starts.saturating_add(1);
        let progress = a.progress();
        Outcome::new(vec![Write::Enrolment(e), Write::Activation(a)], Ok(progress))
    }

    /// The user's entry for the current step of `activation`, with the
    /// order, the device and the account's credentials (if it has any) as
    /// stored now. A right entry moves to the next step; a wrong one is
    /// counted (the change is written) and leaves the step where it was:
    /// `DEVICE_CODE_MISMATCH`, `ACTIVATION_CODE_MISMATCH`,
    /// `BINDING_CODE_MISMATCH`, `SERIAL_MISMATCH`, `INVALID_ANSWER` (test
    /// code), `PASSWORD_MISMATCH`, `PASSWORD_POLICY` (not counted);
    /// `LOCKED_OUT` when a limit is reached (event
    /// [`PortalEvent::OrderLocked`] when the order locks). The last step
    /// inserts the device (usable after the delay), sets the password and
    /// recovery codes (shown once, in the result) and raises
    /// [`PortalEvent::DeviceActivated`]. Also `TOKEN_EXPIRED` (the
    /// activation or order expired; the first late entry writes it),
    /// `INVALID_STATE` (finished, superseded by a newer activation).
    #[allow(clippy::too_many_arguments)]
    pub fn activation_next(
        &self,
        activation: &ActivationRecord,
        enrolment: &EnrolmentRecord,
        token: &TokenRecord,
        credentials: Option<&AccountCredentials>,
        input: &str,
        settings: &ActivationSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Outcome<ActivationProgress> {
        let checked = check_now(now)
            .and_then(|_| settings.validate())
            .and_then(|_| check_activation(activation, enrolment, token));
        if let Err(e) = checked {
            return Outcome::refused(e);
        }
        if now >= activation.expires_at || now >= enrolment.expires_at {
            let mut a = activation.next();
            a.state = ActivationState::Expired { at: now };
            a.qr.clear();
            return Outcome::new(
                vec![Write::Activation(a)],
                Err(err(ErrorCode::TokenExpired, "this activation has expired; start it again")),
            );
        }
        let serial = activation.serial.as_str();
        if activation.last_entry != [0; 16]
            && ct_eq(&entry_tag(&activation.activation_id, input), &activation.last_entry)
        {
            let mut p = activation.progress();
            p.repeated = true;
            return Outcome::new(Vec::new(), Ok(p));
        }
        let accepted = entry_tag(&activation.activation_id, input);
        match activation.step {
            ActivationStep::DeviceCode => {
                let k: [u8; 32] = match crate::wire::fixed(activation.qr_key.expose(), ErrorCode::StateCorrupt) {
                    Ok(k) => k,
                    Err(e) => return Outcome::refused(e),
                };
                let want = device_code(&k, &activation.qr);
                if !ct_eq(digits_only(input).as_bytes(), want.as_str().as_bytes()) {
                    return activation_failure(
                        activation,
                        now,
                        ErrorCode::DeviceCodeMismatch,
                        "the code from the device does not match",
                    );
                }
                let mut a = activation.next();
                a.step = ActivationStep::ActivationCode;
                a.qr.clear();
                a.qr_key = SecretBytes::from_slice(&[]);
                a.last_entry = accepted;
                // Possession proven: this activation becomes the order's
                // current one (an earlier one is superseded only now, so a
                // stranger who knows the user ID cannot interrupt the user's).
                let mut e = enrolment.next();
                e.activation_id = Some(a.activation_id.clone());
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a), Write::Enrolment(e)], Ok(p))
            }
            ActivationStep::ActivationCode => {
                if !enrolment.activation_code.matches(input.as_bytes()) {
                    return secret_failure(activation, enrolment, now, Secret::ActivationCode);
                }
                let generation = match token.generation.checked_add(1) {
                    Some(g) => g,
                    None => return Outcome::refused(err(ErrorCode::InvalidState, "this device has no bindings left")),
                };
                let (e_pk, shared) = match token.agree(rng) {
                    Ok(x) => x,
                    Err(e) => return Outcome::refused(e),
                };
                let mut a = activation.next();
                a.step = ActivationStep::BindingCode;
                a.generation = generation;
                a.root = SecretBytes::from_slice(&binding_root(&shared, &e_pk, serial, generation)[..]);
                let k = wrap_key(&shared, &e_pk, serial);
                a.qr = binding_qr(&k, &token.hint(), &e_pk, generation, self.name(), &activation.user_id);
                let mut e = enrolment.next();
                e.code_failures = 0;
                let mut t = token.next();
                t.generation = generation;
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a), Write::Enrolment(e), Write::Token(t)], Ok(p))
            }
            ActivationStep::BindingCode => {
                let root = match binding_of(activation) {
                    Ok(r) => r,
                    Err(e) => return Outcome::refused(e),
                };
                let want = binding_code(&root, &activation.qr);
                if !ct_eq(digits_only(input).as_bytes(), want.as_str().as_bytes()) {
                    return activation_failure(
                        activation,
                        now,
                        ErrorCode::BindingCodeMismatch,
                        "the code from the device does not match",
                    );
                }
                let mut a = activation.next();
                a.step = ActivationStep::Serial;
                a.qr.clear();
                a.last_entry = accepted;
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a)], Ok(p))
            }
            ActivationStep::Serial => {
                let mut buf = [0u8; 16];
                if normalize_serial(input, &mut buf) != Some(serial) {
                    return activation_failure(
                        activation,
                        now,
                        ErrorCode::SerialMismatch,
                        "the serial number is not the one of this device",
                    );
                }
                let root = match binding_of(activation) {
                    Ok(r) => r,
                    Err(e) => return Outcome::refused(e),
                };
                let (channel_key, _) = binding_keys(&root);
                let body = ChallengeBody {
                    expires_at: activation.expires_at,
                    digits: settings.challenge_digits,
                    approval: Approval::Login,
                };
                let k = Zeroizing::new(random_array::<16>(rng));
                let (text, hash) = ChallengeQrMsg::seal(random_array::<16>(rng), &k, &[&channel_key[..]], &body);
                let mut a = activation.next();
                a.step = ActivationStep::TestOtp;
                a.last_entry = accepted;
                a.test_digits = settings.challenge_digits;
                a.qr = match crate::wire::from_qr_text(&text) {
                    Ok(b) => b,
                    Err(e) => return Outcome::refused(e),
                };
                a.test_hash = hash;
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a)], Ok(p))
            }
            ActivationStep::TestOtp => {
                let root = match binding_of(activation) {
                    Ok(r) => r,
                    Err(e) => return Outcome::refused(e),
                };
                let (_, answer_key) = binding_keys(&root);
                let typed = digits_only(input);
                let digits = activation.test_digits;
                if typed.len() != usize::from(digits)
                    || !typed_code_matches(&answer_key[..], &activation.test_hash, digits, typed.as_bytes())
                {
                    return activation_failure(activation, now, ErrorCode::InvalidAnswer, "the answer is not correct");
                }
                let mut a = activation.next();
                a.step = ActivationStep::InitialPassword;
                a.qr.clear();
                a.last_entry = accepted;
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a)], Ok(p))
            }
            ActivationStep::InitialPassword => {
                if enrolment.initial_password_used
                    || !enrolment.initial_password.matches(normalized_code(input).as_bytes())
                {
                    return secret_failure(activation, enrolment, now, Secret::InitialPassword);
                }
                let mut a = activation.next();
                a.step = ActivationStep::NewPassword;
                let mut e = enrolment.next();
                e.password_failures = 0;
                e.initial_password_used = true;
                let p = a.progress();
                Outcome::new(vec![Write::Activation(a), Write::Enrolment(e)], Ok(p))
            }
            ActivationStep::NewPassword => {
                self.finish(activation, enrolment, token, credentials, input, settings, now, rng)
            }
            ActivationStep::Done => Outcome::refused(err(ErrorCode::InvalidState, "this activation is finished")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        activation: &ActivationRecord,
        enrolment: &EnrolmentRecord,
        token: &TokenRecord,
        credentials: Option<&AccountCredentials>,
        input: &str,
        settings: &ActivationSettings,
        now: u64,
        rng: &mut dyn RandomSource,
    ) -> Outcome<ActivationProgress> {
        let context = [activation.user_id.as_str(), activation.account.as_str(), activation.serial.as_str()];
        if let Err(e) = settings.password.check(input, &context, &[], &settings.blocklist) {
            return Outcome::refused(e);
        }
        if enrolment.initial_password.matches(normalized_code(input).as_bytes()) {
            return Outcome::refused(err(
                ErrorCode::PasswordPolicy,
                "the new password must differ from the initial password",
            ));
        }
        if let Some(c) = credentials {
            if c.account != activation.account {
                return Outcome::refused(err(ErrorCode::InvalidInput, "the credentials are another account's"));
            }
        }
        if token.generation != activation.generation {
            return Outcome::refused(err(ErrorCode::InvalidState, "the device was bound again by another activation"));
        }
        let root = match binding_of(activation) {
            Ok(r) => r,
            Err(e) => return Outcome::refused(e),
        };
        let (channel_key, answer_key) = binding_keys(&root);
        let codes: Vec<Zeroizing<String>> = (0..RECOVERY_CODE_COUNT).map(|_| random_code(4, rng)).collect();
        let hashed = SlowHash::new(input.as_bytes(), settings.hash_iterations, rng).and_then(|p| {
            let recovery = codes
                .iter()
                .map(|c| {
                    Ok(StoredRecoveryCode {
                        hash: SlowHash::new(normalized_code(c).as_bytes(), MIN_HASH_ITERATIONS, rng)?,
                        used_at: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((p, recovery))
        });
        let (password, recovery) = match hashed {
            Ok(h) => h,
            Err(e) => return Outcome::refused(e),
        };
        let device_id = hex_encode(&token_device_id(&activation.serial, activation.generation));
        let usable_from = now.saturating_add(settings.usable_after);
        let creds = match credentials {
            // The account has credentials: the new ones wait for the delay,
            // like the device (cancellable with the device until then).
            Some(c) => {
                let mut n = c.in_force(now);
                n.version = c.version.saturating_add(1);
                n.pending = Some(PendingCredentials {
                    password,
                    recovery,
                    effective_from: usable_from,
                    device_id: device_id.clone(),
                });
                n
            }
            None => AccountCredentials {
                account: activation.account.clone(),
                updated_at: now,
                password_failures: 0,
                recovery_failures: 0,
                version: 1,
                password,
                recovery,
                pending: None,
            },
        };
        let device = DeviceRecord {
            device_id: device_id.clone(),
            account: activation.account.clone(),
            name: format!("Authenticator {}", activation.serial),
            linked_at: now,
            last_used_at: None,
            status: DeviceStatus::Active,
            biometrics: false,
            otp_state: OtpState::default(),
            totp: DeviceTotpPolicy::default(),
            proven: false,
            signed_counter: None,
            signed_counter_at: None,
            vouch_failures: 0,
            clone_suspected: false,
            usable_from: Some(usable_from),
            serial: Some(activation.serial.clone()),
            version: 1,
            device_pk: SecretBytes::from_slice(&[]),
            answer_key: SecretBytes::from_slice(&answer_key[..]),
            channel_key: SecretBytes::from_slice(&channel_key[..]),
        };
        let mut a = activation.next();
        a.step = ActivationStep::Done;
        a.state = ActivationState::Done { at: now };
        a.qr.clear();
        a.root = SecretBytes::from_slice(&[]);
        let mut e = enrolment.next();
        e.state = EnrolmentState::Activated { at: now, device_id: device_id.clone() };
        let mut t = token.next();
        t.state = TokenState::Active {
            user_id: activation.user_id.clone(),
            account: activation.account.clone(),
            device_id: device_id.clone(),
        };
        let mut progress = a.progress();
        progress.recovery_codes = codes;
        progress.device_id = Some(device_id.clone());
        progress.usable_from = Some(usable_from);
        Outcome {
            writes: vec![
                Write::Activation(a),
                Write::Enrolment(e),
                Write::Token(t),
                Write::Device(device),
                Write::Credentials(creds),
            ],
            events: vec![PortalEvent::DeviceActivated {
                account: activation.account.clone(),
                device_id,
                serial: activation.serial.clone(),
                usable_from,
                at: now,
            }],
            result: Ok(progress),
        }
    }

    /// Check the account password (`PASSWORD_MISMATCH`, counted; the
    /// [`MAX_SECRET_FAILURES`]th locks: `LOCKED_OUT`, event
    /// [`PortalEvent::CredentialsLocked`]; a success resets the count).
    pub fn verify_password(&self, credentials: &AccountCredentials, password: &str, now: u64) -> Outcome<()> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        let promoted = credentials.pending.is_some() && credentials.pending_from().is_some_and(|t| now >= t);
        let credentials = &credentials.in_force(now);
        if credentials.password_locked() {
            return Outcome::refused(err(ErrorCode::LockedOut, "too many wrong passwords; the password is locked"));
        }
        if credentials.password.matches(password.as_bytes()) {
            if credentials.password_failures == 0 && !promoted {
                return Outcome::new(Vec::new(), Ok(()));
            }
            let mut c = credentials.next();
            c.password_failures = 0;
            return Outcome::new(vec![Write::Credentials(c)], Ok(()));
        }
        let mut c = credentials.next();
        c.password_failures += 1;
        let locked = c.password_locked();
        credential_failure(c, locked, now, ErrorCode::PasswordMismatch, "the password is not correct")
    }

    /// Use one recovery code (single use; `RECOVERY_CODE_MISMATCH` for a
    /// wrong or used one, counted like passwords: 5 in a row lock the
    /// recovery codes). A redeemed code also clears the password's lock
    /// (it is the way back). Returns the codes left.
    pub fn redeem_recovery_code(&self, credentials: &AccountCredentials, code: &str, now: u64) -> Outcome<u32> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        let credentials = &credentials.in_force(now);
        if credentials.recovery_locked() {
            return Outcome::refused(err(ErrorCode::LockedOut, "too many wrong recovery codes; they are locked"));
        }
        let typed = normalized_code(code);
        let mut c = credentials.next();
        let hit = c.recovery.iter_mut().find(|r| r.used_at.is_none() && r.hash.matches(typed.as_bytes()));
        match hit {
            Some(r) => {
                r.used_at = Some(now);
                c.recovery_failures = 0;
                // A recovery code is the way back from a locked password.
                c.password_failures = 0;
                let left = c.recovery_codes_left();
                Outcome::new(vec![Write::Credentials(c)], Ok(left))
            }
            None => {
                c.recovery_failures += 1;
                let locked = c.recovery_locked();
                credential_failure(
                    c,
                    locked,
                    now,
                    ErrorCode::RecoveryCodeMismatch,
                    "the recovery code is not correct or was already used",
                )
            }
        }
    }
}

impl Portal {
    /// Drop the credentials a later activation set while they still wait
    /// for its delay (an activation the user did not make: unlink its
    /// device too). `INVALID_STATE` when none wait or they took effect.
    pub fn cancel_pending_credentials(&self, credentials: &AccountCredentials, now: u64) -> Outcome<()> {
        if let Err(e) = check_now(now) {
            return Outcome::refused(e);
        }
        match credentials.pending_from() {
            Some(t) if now < t => {
                let mut n = credentials.next();
                n.pending = None;
                Outcome::new(vec![Write::Credentials(n)], Ok(()))
            }
            _ => Outcome::refused(err(ErrorCode::InvalidState, "no new credentials wait for their activation's delay")),
        }
    }
}

fn credential_failure<T>(
    c: AccountCredentials,
    locked: bool,
    now: u64,
    code: ErrorCode,
    detail: &'static str,
) -> Outcome<T> {
    let account = c.account.clone();
    let (e, events) = if locked {
        (
            err(ErrorCode::LockedOut, "too many wrong attempts; locked until the portal resets it"),
            vec![PortalEvent::CredentialsLocked { account, at: now }],
        )
    } else {
        (err(code, detail), Vec::new())
    };
    Outcome { writes: vec![Write::Credentials(c)], events, result: Err(e) }
}

fn binding_of(a: &ActivationRecord) -> Result<Zeroizing<[u8; 32]>> {
    Ok(Zeroizing::new(crate::wire::fixed(a.root.expose(), ErrorCode::StateCorrupt)?))
}

/// The order may start an activation with this device.
fn check_order(e: &EnrolmentRecord, t: &TokenRecord, now: u64) -> Result<()> {
    match e.state {
        EnrolmentState::Ordered => {}
        EnrolmentState::Activated { .. } => {
            return Err(err(ErrorCode::InvalidState, "this order's device is already activated"))
        }
        EnrolmentState::Locked { .. } => {
            return Err(err(ErrorCode::LockedOut, "too many wrong entries; this order is locked"))
        }
    }
    if now >= e.expires_at {
        return Err(err(ErrorCode::TokenExpired, "this order has expired; order again"));
    }
    match &t.state {
        TokenState::Assigned { user_id, .. } if *user_id == e.user_id && t.serial == e.serial => Ok(()),
        _ => Err(err(ErrorCode::InvalidInput, "this device is not the one sent with this order")),
    }
}

/// The records belong together and the activation is running.
fn check_activation(a: &ActivationRecord, e: &EnrolmentRecord, t: &TokenRecord) -> Result<()> {
    if a.user_id != e.user_id || a.serial != e.serial || a.account != e.account || a.user_id.len() > MAX_USER_ID_LEN {
        return Err(err(ErrorCode::InvalidInput, "the order is not this activation's"));
    }
    match &a.state {
        ActivationState::Open => {}
        ActivationState::Done { .. } => return Err(err(ErrorCode::InvalidState, "this activation is finished")),
        ActivationState::LockedOut { .. } => {
            return Err(err(ErrorCode::LockedOut, "too many wrong entries; start the activation again"))
        }
        ActivationState::Expired { .. } => {
            return Err(err(ErrorCode::TokenExpired, "this activation has expired; start it again"))
        }
    }
    // Before its device code, an activation is a candidate; after it, it
    // must be the order's current one (a later one that proved possession
    // supersedes it).
    if a.step != ActivationStep::DeviceCode && e.activation_id.as_deref() != Some(a.activation_id.as_str()) {
        return Err(err(ErrorCode::InvalidState, "a newer activation was started for this user ID"));
    }
    if let EnrolmentState::Locked { .. } = e.state {
        return Err(err(ErrorCode::LockedOut, "too many wrong entries; this order is locked"));
    }
    if let EnrolmentState::Activated { .. } = e.state {
        return Err(err(ErrorCode::InvalidState, "this order's device is already activated"));
    }
    match &t.state {
        TokenState::Assigned { user_id, .. } if *user_id == a.user_id && t.serial == a.serial => Ok(()),
        _ => Err(err(ErrorCode::InvalidInput, "the device is not this activation's")),
    }
}

/// A wrong device code, binding code, serial or test code.
fn activation_failure(
    a: &ActivationRecord,
    now: u64,
    code: ErrorCode,
    detail: &'static str,
) -> Outcome<ActivationProgress> {
    let mut n = a.next();
    n.failures = n.failures.saturating_add(1);
    if n.failures >= MAX_ACTIVATION_FAILURES {
        n.state = ActivationState::LockedOut { at: now };
        n.qr.clear();
        return Outcome::new(
            vec![Write::Activation(n)],
            Err(err(ErrorCode::LockedOut, "too many wrong entries; start the activation again")),
        );
    }
    Outcome::new(vec![Write::Activation(n)], Err(err(code, detail)))
}

enum Secret {
    ActivationCode,
    InitialPassword,
}

/// A wrong activation code or initial password: counted on the order.
fn secret_failure(a: &ActivationRecord, e: &EnrolmentRecord, now: u64, which: Secret) -> Outcome<ActivationProgress> {
    let mut n = e.next();
    let (count, code, detail) = match which {
        Secret::ActivationCode => {
            n.code_failures = n.code_failures.saturating_add(1);
            (n.code_failures, ErrorCode::ActivationCodeMismatch, "the activation code is not correct")
        }
        Secret::InitialPassword => {
            n.password_failures = n.password_failures.saturating_add(1);
            (n.password_failures, ErrorCode::PasswordMismatch, "the initial password is not correct")
        }
    };
    if count < MAX_SECRET_FAILURES {
        return Outcome::new(vec![Write::Enrolment(n)], Err(err(code, detail)));
    }
    n.state = EnrolmentState::Locked { at: now };
    let mut an = a.next();
    an.state = ActivationState::LockedOut { at: now };
    an.qr.clear();
    Outcome {
        writes: vec![Write::Enrolment(n), Write::Activation(an)],
        events: vec![PortalEvent::OrderLocked { account: e.account.clone(), user_id: e.user_id.clone(), at: now }],
        result: Err(err(ErrorCode::LockedOut, "too many wrong entries; this order is locked")),
    }
}
