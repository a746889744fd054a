//! Challenge/response (flow 4), links vouched for by an existing
//! authenticator (flow 2), and the device lockout, on both sides.
//!
//! Portal: [`Portal::create_challenge`] gives the QR text and a change that
//! inserts the challenge row; [`Portal::verify_answer`] judges the typed
//! code (or signed answer) with a [`Verdict`] and the change to store.
//! Device: [`Device::read_challenge`] shows what is approved,
//! [`Device::answer_challenge`] gives the code to type,
//! [`Device::sign_challenge`] a signed answer for a device with network.

use crate::rows::count;
use crate::{
    with_factor, Device, ErrorCode, LinkConfirmation, LinkOffer, OfferSettings, OsRandom, OtpAlgorithm, Portal,
    PortalChange, Result, StoredChallenge, StoredDevice, StoredPendingLink, TesseraError, Timestamp, Unlock, Verdict,
};
use serde::{Deserialize, Serialize};
use tessera_core::challenge::{self as core_ch, Amount};
use tessera_core::link::DeviceState;

/// What the user approves.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Approval {
    /// Log in.
    Login,
    /// A payment: PSD2 dynamic linking binds the code to these fields.
    Transaction {
        /// `125.50`: digits, at most 3 decimals, shown exactly as given.
        amount: String,
        /// ISO 4217 code (`EUR`).
        currency: String,
        /// Payee (1 to 70 bytes).
        payee: String,
        /// Up to 3 more lines (reference, IBAN), 1 to 70 bytes each.
        #[serde(default)]
        #[cfg_attr(feature = "wasm", tsify(optional))]
        text: Vec<String>,
    },
    /// A new device joins the account (flow 2; made by
    /// [`Portal::create_link_challenge`]).
    LinkDevice {
        /// The new device's name.
        device_name: String,
        /// The new device's id.
        device_id: String,
    },
}

impl Approval {
    fn to_core(&self) -> Result<core_ch::Approval> {
        Ok(match self.clone() {
            Approval::Login => core_ch::Approval::Login,
            Approval::Transaction { amount, currency, payee, text } => {
                core_ch::Approval::Transaction(core_ch::Transaction {
                    amount: Amount::parse(&amount)?,
                    currency,
                    payee,
                    text,
                })
            }
            Approval::LinkDevice { device_name, device_id } => core_ch::Approval::LinkDevice { device_name, device_id },
        })
    }
}

impl From<&core_ch::Approval> for Approval {
    fn from(a: &core_ch::Approval) -> Self {
        match a.clone() {
            core_ch::Approval::Login => Approval::Login,
            core_ch::Approval::Transaction(t) => Approval::Transaction {
                amount: t.amount.to_string(),
                currency: t.currency,
                payee: t.payee,
                text: t.text,
            },
            core_ch::Approval::LinkDevice { device_name, device_id } => Approval::LinkDevice { device_name, device_id },
        }
    }
}

/// How a portal issues a challenge.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ChallengeSettings {
    /// Digits of the typed answer (6 to 10, default 8).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub digits: Option<i32>,
    /// Seconds it can be answered (1 to 900, default 300).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub ttl_seconds: Option<i64>,
}

impl ChallengeSettings {
    fn to_core(self) -> Result<core_ch::ChallengeSettings> {
        let d = core_ch::ChallengeSettings::default();
        Ok(core_ch::ChallengeSettings {
            digits: match self.digits {
                None => d.digits,
                Some(v) => u8::try_from(v)
                    .map_err(|_| TesseraError::new(ErrorCode::InvalidDigits, "a typed answer has 6 to 10 digits"))?,
            },
            ttl: match self.ttl_seconds {
                None => d.ttl,
                Some(v) => u64::try_from(v)
                    .map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "a challenge lives 1 to 900 seconds"))?,
            },
        })
    }
}

/// The time-based codes a linked device shows without a QR code (flow 5),
/// set by the portal in its offer.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DeviceCodeRules {
    /// Hash (default SHA-256).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub algorithm: Option<OtpAlgorithm>,
    /// Digits (6 to 8, default 6).
    #[cfg_attr(feature = "uniffi", uniffi(default = 6))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub digits: i32,
    /// Seconds per step (15 to 120, default 30).
    #[cfg_attr(feature = "uniffi", uniffi(default = 30))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub period_seconds: i64,
}

impl Default for DeviceCodeRules {
    fn default() -> Self {
        tessera_core::link::DeviceTotpPolicy::default().into()
    }
}

impl From<tessera_core::link::DeviceTotpPolicy> for DeviceCodeRules {
    fn from(p: tessera_core::link::DeviceTotpPolicy) -> Self {
        DeviceCodeRules {
            algorithm: Some(p.algorithm.into()),
            digits: p.digits.into(),
            period_seconds: p.period.into(),
        }
    }
}

impl DeviceCodeRules {
    pub(crate) fn policy(self) -> Result<tessera_core::link::DeviceTotpPolicy> {
        let p = tessera_core::link::DeviceTotpPolicy {
            algorithm: self.algorithm.map(Into::into).unwrap_or(tessera_core::otp::Algorithm::Sha256),
            digits: u8::try_from(self.digits)
                .map_err(|_| TesseraError::new(ErrorCode::InvalidDigits, "device codes have 6 to 8 digits"))?,
            period: u32::try_from(self.period_seconds)
                .map_err(|_| TesseraError::new(ErrorCode::InvalidTime, "a device's time step is 15 to 120 seconds"))?,
        };
        p.validate()?;
        Ok(p)
    }
}

/// A new challenge: show `qr_text` (only the account's devices can read
/// it), store `change` (it inserts the challenge row).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeIssued {
    /// Text of the QR code (`qr_svg` draws it).
    pub qr_text: String,
    /// The challenge row's key.
    pub challenge_id: String,
    /// When answers stop being accepted.
    pub expires_at: Timestamp,
    /// Inserts the challenge row.
    pub change: PortalChange,
}

/// The verdict on a challenge answer.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerCheck {
    /// Accepted, or refused: `INVALID_ANSWER` (never says which factor),
    /// `LOCKED_OUT`, `TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`,
    /// `DEVICE_REVOKED`, `DEVICE_CLONED`, `MALFORMED_MESSAGE`.
    pub verdict: Verdict,
    /// The device that answered, when accepted.
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub device_id: Option<String>,
    /// Store it in every case (single use, lockout count).
    pub change: PortalChange,
}

/// What a device shows before the user approves.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeView {
    /// The portal's id of the challenge.
    pub challenge_id: String,
    /// Who asks.
    pub portal_name: String,
    /// The account.
    pub account: String,
    /// Exactly what is approved.
    pub approval: Approval,
    /// When the portal stops accepting the answer.
    pub expires_at: Timestamp,
    /// Digits of the code to type.
    pub digits: i32,
}

/// A signed answer: store `state` first (it holds the new counter), then
/// send `answer` to the portal.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedChallenge {
    /// Text for the portal (`Portal::verify_answer`).
    pub answer: String,
    /// The sealed device state to store before sending.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub state: Vec<u8>,
}

impl std::fmt::Debug for SignedChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedChallenge").finish_non_exhaustive()
    }
}

/// The challenge a signed answer is for (look up that row, then
/// [`Portal::verify_answer`]). `MALFORMED_MESSAGE` if it is not one.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn signed_answer_challenge_id(answer: String) -> Result<String> {
    Ok(core_ch::signed_answer_challenge_id(&answer)?)
}

fn issued(portal: &Portal, c: core_ch::ChallengeQr) -> ChallengeIssued {
    let expires_at = Timestamp::from_secs(c.record.expires_at);
    let challenge_id = c.record.challenge_id.clone();
    let change = portal.change(&tessera_core::host::Outcome {
        writes: vec![tessera_core::host::Write::Challenge(c.record)],
        events: vec![],
        result: Ok(()),
    });
    ChallengeIssued { qr_text: c.qr_text, challenge_id, expires_at, change }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Portal {
    /// A login or transaction challenge for `devices`: the account's device
    /// rows (any of them may answer), or the one the user picked. Unlinked
    /// rows are left out. Throws `DEVICE_UNKNOWN` (no row), `DEVICE_REVOKED`
    /// (none active), `INVALID_INPUT`, `INVALID_DIGITS`, `INVALID_TIME`.
    pub fn create_challenge(
        &self,
        devices: Vec<StoredDevice>,
        approval: Approval,
        settings: ChallengeSettings,
        now: Timestamp,
    ) -> Result<ChallengeIssued> {
        let records = self.open_devices(&devices)?;
        let c = self.core.create_challenge(
            &records,
            approval.to_core()?,
            settings.to_core()?,
            now.secs(),
            &mut OsRandom,
        )?;
        Ok(issued(self, c))
    }

    /// Judge an answer (typed digits or a signed answer's text) to the
    /// challenge row, given the rows of its devices (one snapshot). Store
    /// the change whatever the verdict: a wrong answer counts towards the
    /// device's lockout (5 in a row lock it, also for its time-based codes).
    pub fn verify_answer(
        &self,
        challenge: StoredChallenge,
        devices: Vec<StoredDevice>,
        answer: String,
        now: Timestamp,
    ) -> Result<AnswerCheck> {
        let c = self.open_challenge(&challenge)?;
        let records = self.open_devices(&devices)?;
        let o = self.core.verify_answer(&c, &records, &answer, now.secs());
        let device_id = o.result.as_ref().ok().map(|a| a.device_id.clone());
        Ok(AnswerCheck { verdict: Verdict::judged(&o.result)?, device_id, change: self.change(&o) })
    }

    /// Unlock a locked device after the user re-identified (`INVALID_STATE`
    /// when it is not locked).
    pub fn unlock_device(&self, device: StoredDevice, now: Timestamp) -> Result<PortalChange> {
        let o = self.open_device(&device)?.unlock(now.secs());
        o.result.clone()?;
        Ok(self.change(&o))
    }

    /// Flow 2: an offer for a new device of `account` that links without a
    /// logged-in computer (send the text to that device; it is no QR code
    /// to show). `devices`: the account's rows; one must have answered a
    /// challenge before (`AUTHENTICATOR_NEVER_USED`). Rate-limit this call:
    /// anyone who knows an account name can ask.
    pub fn create_offer_for_new_device(
        &self,
        account: String,
        devices: Vec<StoredDevice>,
        settings: OfferSettings,
        now: Timestamp,
    ) -> Result<LinkOffer> {
        let records = self.open_devices(&devices)?;
        let o = self.core.create_offer_for_new_device(
            &account,
            &records,
            settings.options()?,
            now.secs(),
            &mut OsRandom,
        )?;
        Ok(self.offer_of(o))
    }

    /// Flow 2: the challenge the new device shows to an existing
    /// authenticator of the account, for its pending link. Throws
    /// `AUTHENTICATOR_NEVER_USED`, `INVALID_STATE` (not such a link, or
    /// closed), `DEVICE_REVOKED`, `DEVICE_UNKNOWN`.
    pub fn create_link_challenge(
        &self,
        pending: StoredPendingLink,
        devices: Vec<StoredDevice>,
        settings: ChallengeSettings,
        now: Timestamp,
    ) -> Result<ChallengeIssued> {
        let p = self.open_pending(&pending)?;
        let records = self.open_devices(&devices)?;
        let c = self.core.create_link_challenge(&p, &records, settings.to_core()?, now.secs(), &mut OsRandom)?;
        Ok(issued(self, c))
    }

    /// Flow 2: confirm the pending link with the authenticator's answer to
    /// its link challenge (the code the user typed into the new device).
    /// A wrong code counts on the pending link (the 5th cancels it:
    /// `LOCKED_OUT`) and in each authenticator's vouch budget (20 wrong codes
    /// across links stop it vouching until `unlock_device`), never on its
    /// login lockout.
    pub fn confirm_with_authenticator(
        &self,
        pending: StoredPendingLink,
        challenge: StoredChallenge,
        devices: Vec<StoredDevice>,
        answer: String,
        now: Timestamp,
    ) -> Result<LinkConfirmation> {
        let p = self.open_pending(&pending)?;
        let c = self.open_challenge(&challenge)?;
        let records = self.open_devices(&devices)?;
        let o = self.core.confirm_with_authenticator(&p, &c, &records, &answer, now.secs());
        self.confirmation(&o)
    }
}

impl Portal {
    fn open_devices(&self, devices: &[StoredDevice]) -> Result<Vec<tessera_core::link::DeviceRecord>> {
        devices.iter().map(|d| self.open_device(d)).collect()
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Device {
    /// Read a challenge QR code: who asks and exactly what is approved.
    /// Throws `NOT_FOR_THIS_DEVICE` (another device or account; an unlinked
    /// device learns `DEVICE_REVOKED` from a status request),
    /// `MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND`,
    /// `TOKEN_EXPIRED`, `STATE_CORRUPT`, `INVALID_TIME`.
    pub fn read_challenge(&self, state: Vec<u8>, qr_text: String, now: Timestamp) -> Result<ChallengeView> {
        let st = DeviceState::open(&self.key, &state)?;
        let c = st.read_challenge(&qr_text, now.secs())?;
        Ok(ChallengeView {
            challenge_id: c.challenge_id,
            portal_name: c.portal_name,
            account: c.account,
            approval: (&c.approval).into(),
            expires_at: Timestamp::from_secs(c.expires_at),
            digits: c.digits.into(),
        })
    }

    /// The code to type into the portal, after the user approved. A wrong
    /// passcode gives a wrong code that only the portal can tell.
    pub fn answer_challenge(&self, state: Vec<u8>, qr_text: String, unlock: Unlock, now: Timestamp) -> Result<String> {
        let st = DeviceState::open(&self.key, &state)?;
        let c = st.read_challenge(&qr_text, now.secs())?;
        with_factor(unlock, |f| st.answer_code(&c, f))
    }

    /// A signed answer to send to the portal (a device with network).
    pub fn sign_challenge(
        &self,
        state: Vec<u8>,
        qr_text: String,
        unlock: Unlock,
        now: Timestamp,
    ) -> Result<SignedChallenge> {
        let st = DeviceState::open(&self.key, &state)?;
        let c = st.read_challenge(&qr_text, now.secs())?;
        let s = with_factor(unlock, |f| st.answer_signed(&c, f, &self.key, &mut OsRandom))?;
        Ok(SignedChallenge { answer: s.answer, state: s.state })
    }
}

pub(crate) fn status_of(r: &core_ch::ChallengeRecord) -> crate::ChallengeStatus {
    match r.state {
        core_ch::ChallengeState::Open => crate::ChallengeStatus::Open,
        core_ch::ChallengeState::Answered { .. } => crate::ChallengeStatus::Answered,
        core_ch::ChallengeState::Expired { .. } => crate::ChallengeStatus::Expired,
    }
}

pub(crate) fn row_of(portal: &Portal, r: &core_ch::ChallengeRecord) -> crate::StoredChallenge {
    crate::StoredChallenge {
        challenge_id: r.challenge_id.clone(),
        account: r.account.clone(),
        device_ids: r.device_ids.clone(),
        kind: match r.approval {
            core_ch::Approval::Login => crate::ChallengeKind::Login,
            core_ch::Approval::Transaction(_) => crate::ChallengeKind::Transaction,
            core_ch::Approval::LinkDevice { .. } => crate::ChallengeKind::LinkDevice,
        },
        expires_at: Timestamp::from_secs(r.expires_at),
        status: status_of(r),
        version: count(r.version),
        sealed: portal.core.seal_record(r, &mut OsRandom),
    }
}
