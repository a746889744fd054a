//! Device side of linking (flow 1) for Kotlin and Swift.
//!
//! The app keeps two things: a 32-byte storage key in the platform keystore
//! (it seals every blob), and the sealed blobs this API returns (a pending
//! link between request and answer, then the device state).

use crate::{random_bytes, Result, TesseraError};
use std::sync::{Arc, Mutex};
use tessera_core::crypto::RandomSource;
use tessera_core::link::{self, DeviceState, PendingDeviceLink, UserFactor};
use tessera_core::ErrorCode;
use zeroize::Zeroizing;

pub(crate) struct OsRandom;
impl RandomSource for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all; a
        // panic here is caught by UniFFI and surfaces as an exception.
        #[allow(clippy::panic)]
        if getrandom::fill(dest).is_err() {
            panic!("the system random generator failed");
        }
    }
}

/// Passcode rules announced by the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PasscodeRules {
    /// Minimum length (default 6).
    #[uniffi(default = 6)]
    pub min_len: u8,
    /// Maximum length (default 6).
    #[uniffi(default = 6)]
    pub max_len: u8,
    /// Digits only (default true).
    #[uniffi(default = true)]
    pub digits_only: bool,
    /// Biometrics may replace the passcode (default true).
    #[uniffi(default = true)]
    pub biometrics_allowed: bool,
}

impl From<link::PasscodePolicy> for PasscodeRules {
    fn from(p: link::PasscodePolicy) -> Self {
        PasscodeRules {
            min_len: p.min_len,
            max_len: p.max_len,
            digits_only: p.digits_only,
            biometrics_allowed: p.allow_biometrics,
        }
    }
}

/// What a scanned link QR code says (show it before linking).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkOfferInfo {
    /// Portal name.
    pub portal_name: String,
    /// Portal key fingerprint (16 hex characters).
    pub portal_fingerprint: String,
    /// Expiry, unix seconds.
    pub expires_at: u64,
    /// Passcode rules.
    pub passcode_rules: PasscodeRules,
}

/// Public facts of the linked account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkedAccount {
    /// Portal name.
    pub portal_name: String,
    /// Portal key fingerprint.
    pub portal_fingerprint: String,
    /// Account.
    pub account: String,
    /// Device id.
    pub device_id: String,
    /// Device name.
    pub device_name: String,
    /// When the portal accepted the link.
    pub linked_at: u64,
    /// Deadline to type the check code on the portal.
    pub confirm_by: u64,
    /// Biometrics enabled.
    pub biometrics: bool,
}

impl From<&link::DeviceInfo> for LinkedAccount {
    fn from(i: &link::DeviceInfo) -> Self {
        LinkedAccount {
            portal_name: i.portal_name.clone(),
            portal_fingerprint: i.portal_fingerprint.clone(),
            account: i.account.clone(),
            device_id: i.device_id.clone(),
            device_name: i.device_name.clone(),
            linked_at: i.linked_at,
            confirm_by: i.confirm_by,
            biometrics: i.biometrics,
        }
    }
}

/// Result of [`TesseraDevice::start_link`].
#[derive(uniffi::Record)]
pub struct LinkStartResult {
    /// Text to send to the portal.
    pub request: String,
    /// The link in progress: finish it with the portal's answer.
    pub pending: Arc<PendingLink>,
    /// With biometrics: the secret to store behind biometrics in the keystore.
    pub biometric_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for LinkStartResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkStartResult").field("request", &self.request).finish_non_exhaustive()
    }
}

/// Result of [`PendingLink::finish`].
#[derive(Clone, uniffi::Record)]
pub struct LinkFinishResult {
    /// The sealed device state to store (replaces the pending link).
    pub state: Vec<u8>,
    /// Check code to show; the user types it on the portal.
    pub check_code: String,
    /// Account facts.
    pub account: LinkedAccount,
}

/// A status request in flight.
#[derive(uniffi::Record)]
pub struct StatusCheck {
    /// Text to send to the portal.
    pub request: String,
    /// Keep it to read the answer.
    pub probe: Arc<StatusProbe>,
}

impl std::fmt::Debug for StatusCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusCheck").field("request", &self.request).finish_non_exhaustive()
    }
}

/// What the portal said about this device's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LinkStatus {
    /// Linked and usable.
    Active,
    /// Linked on the device; the user has not typed the check code on the portal yet.
    AwaitingConfirmation,
}

/// Opaque status probe.
#[derive(Debug, uniffi::Object)]
pub struct StatusProbe(link::StatusProbe);

/// How the user unlocks the device's secrets.
#[derive(Clone, uniffi::Enum)]
pub enum Unlock {
    /// The passcode.
    Passcode {
        /// Passcode typed by the user.
        passcode: String,
    },
    /// The secret the keystore released after a biometric prompt.
    Biometric {
        /// The 32-byte biometric secret.
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unlock(<redacted>)")
    }
}

/// The device side of Tessera, bound to the app's storage key.
#[derive(uniffi::Object)]
pub struct TesseraDevice {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for TesseraDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TesseraDevice(<key redacted>)")
    }
}

fn scan(qr_text: &str, now: u64, portal_key: Option<Vec<u8>>) -> tessera_core::Result<link::ScannedOffer> {
    match portal_key {
        Some(k) => link::scan_link_qr_pinned(qr_text, &k, now),
        None => link::scan_link_qr(qr_text, now),
    }
}

fn key32(key: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let k: [u8; 32] = key
        .try_into()
        .map_err(|_| TesseraError::from_code(ErrorCode::InvalidInput, "the storage key must be 32 bytes"))?;
    Ok(Zeroizing::new(k))
}

/// A fresh 32-byte storage key (keep it in the platform keystore).
#[uniffi::export]
pub fn new_storage_key() -> Result<Vec<u8>> {
    Ok(random_bytes::<32>()?.to_vec())
}

#[uniffi::export]
impl TesseraDevice {
    /// A device bound to a 32-byte storage key.
    #[uniffi::constructor]
    pub fn new(storage_key: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(TesseraDevice { key: key32(&storage_key)? }))
    }

    /// Read a scanned QR text. An app that knows its portal passes its
    /// `portal_key` (`TesseraPortal.publicKey()`): a QR code with another
    /// key (a look-alike) is refused with `WRONG_ACCOUNT`.
    #[uniffi::method(default(portal_key = None))]
    pub fn scan_link_qr(&self, qr_text: String, now: u64, portal_key: Option<Vec<u8>>) -> Result<LinkOfferInfo> {
        let o = scan(&qr_text, now, portal_key)?;
        Ok(LinkOfferInfo {
            portal_name: o.portal_name,
            portal_fingerprint: o.portal_fingerprint,
            expires_at: o.expires_at,
            passcode_rules: o.policy.into(),
        })
    }

    /// Start linking with a scanned QR text (and the pinned `portal_key`,
    /// as for [`TesseraDevice::scan_link_qr`]). `current_state` is the stored
    /// device state, if any: a device holds one account
    /// (`DEVICE_ALREADY_LINKED`).
    #[allow(clippy::too_many_arguments)]
    #[uniffi::method(default(portal_key = None))]
    pub fn start_link(
        &self,
        qr_text: String,
        device_name: String,
        passcode: String,
        biometrics: bool,
        current_state: Option<Vec<u8>>,
        now: u64,
        portal_key: Option<Vec<u8>>,
    ) -> Result<LinkStartResult> {
        let passcode = Zeroizing::new(passcode);
        let offer = scan(&qr_text, now, portal_key)?;
        let s =
            link::start_link(&offer, &device_name, &passcode, biometrics, current_state.is_some(), now, &mut OsRandom)?;
        Ok(LinkStartResult {
            request: s.request,
            pending: Arc::new(PendingLink { key: self.key.clone(), inner: Mutex::new(Some(s.pending)) }),
            biometric_secret: s.biometric_secret.map(|b| b.expose().to_vec()),
        })
    }

    /// Restore a pending link saved with [`PendingLink::sealed`].
    pub fn open_pending_link(&self, sealed: Vec<u8>) -> Result<Arc<PendingLink>> {
        let p = PendingDeviceLink::open(&self.key, &sealed)?;
        Ok(Arc::new(PendingLink { key: self.key.clone(), inner: Mutex::new(Some(p)) }))
    }

    /// Facts of the linked account in `state`.
    pub fn account(&self, state: Vec<u8>) -> Result<LinkedAccount> {
        Ok(DeviceState::open(&self.key, &state)?.info().into())
    }

    /// The device's time-based code (flow 5). A wrong passcode gives a
    /// wrong code that only the portal can detect.
    pub fn totp(&self, state: Vec<u8>, unlock: Unlock, now: u64) -> Result<String> {
        let st = DeviceState::open(&self.key, &state)?;
        let code = match &unlock {
            Unlock::Passcode { passcode } => st.totp(UserFactor::Passcode(passcode), now)?,
            Unlock::Biometric { secret } => st.totp(UserFactor::Biometric(secret), now)?,
        };
        Ok(code)
    }

    /// Ask the portal whether this link still exists.
    pub fn status_request(&self, state: Vec<u8>, now: u64) -> Result<StatusCheck> {
        let st = DeviceState::open(&self.key, &state)?;
        let (request, probe) = st.status_request(now, &mut OsRandom)?;
        Ok(StatusCheck { request, probe: Arc::new(StatusProbe(probe)) })
    }

    /// Read the portal's status answer: `ACTIVE`, or `AWAITING_CONFIRMATION`
    /// while the check code has not been typed on the portal. Throws
    /// `DEVICE_REVOKED` (the portal unlinked this device) and
    /// `LINK_NOT_CONFIRMED` (the check code was never typed in time, or was
    /// locked out): wipe the state then; the device may link again.
    pub fn read_status_answer(&self, state: Vec<u8>, probe: Arc<StatusProbe>, answer: String) -> Result<LinkStatus> {
        let st = DeviceState::open(&self.key, &state)?;
        Ok(match st.read_status_answer(&probe.0, &answer)? {
            link::LinkStatus::Active => LinkStatus::Active,
            link::LinkStatus::AwaitingConfirmation => LinkStatus::AwaitingConfirmation,
        })
    }

    /// Unlink locally: checks the state is this device's and returns its
    /// account facts; the app then deletes the state (and the biometric
    /// secret). The portal learns it when the user removes the device there.
    pub fn unlink_locally(&self, state: Vec<u8>) -> Result<LinkedAccount> {
        self.account(state)
    }
}

/// A link in progress (single use).
#[derive(uniffi::Object)]
pub struct PendingLink {
    key: Zeroizing<[u8; 32]>,
    inner: Mutex<Option<PendingDeviceLink>>,
}

impl std::fmt::Debug for PendingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLink(<redacted>)")
    }
}

fn consumed() -> TesseraError {
    TesseraError::from_code(ErrorCode::AlreadyConsumed, "this pending link was already finished; start again")
}

impl PendingLink {
    fn with<T>(&self, f: impl FnOnce(&PendingDeviceLink) -> T) -> Result<T> {
        Ok(f(self.inner.lock().map_err(|_| consumed())?.as_ref().ok_or_else(consumed)?))
    }
}

#[uniffi::export]
impl PendingLink {
    /// Seal for storage while waiting for the portal's answer.
    pub fn sealed(&self) -> Result<Vec<u8>> {
        self.with(|p| p.seal(&self.key, &mut OsRandom))
    }

    /// The request, to send again byte for byte when the answer was lost:
    /// the portal answers a repeat with the very same answer.
    pub fn request(&self) -> Result<String> {
        self.with(|p| p.request().to_owned())
    }

    /// Finish with the portal's answer (once; `ALREADY_CONSUMED` after).
    /// Throws the portal's refusal (`TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`, …),
    /// which spends the link. A damaged or forged answer (`MESSAGE_TAMPERED`,
    /// `MALFORMED_MESSAGE`, …) does not: finish again with the genuine one.
    pub fn finish(&self, answer: String) -> Result<LinkFinishResult> {
        let mut guard = self.inner.lock().map_err(|_| consumed())?;
        let r = link::finish_link(guard.as_ref().ok_or_else(consumed)?.clone(), &answer, &self.key, &mut OsRandom);
        if r.as_ref().map_or_else(link::finish_error_is_final, |_| true) {
            *guard = None;
        }
        let l = r?;
        Ok(LinkFinishResult { state: l.state, check_code: l.check_code, account: (&l.info).into() })
    }
}

impl std::fmt::Debug for LinkFinishResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkFinishResult")
            .field("account", &self.account)
            .field("check_code", &"<redacted>")
            .finish_non_exhaustive()
    }
}
