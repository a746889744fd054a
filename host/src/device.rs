//! Device side of linking: scan, link, finish, codes, status, unlink.
//!
//! The app keeps a 32-byte storage key in the platform keystore (it seals
//! every blob) and the sealed blobs these calls return: a pending link
//! between request and answer, then the device state.

use crate::{random_bytes, ErrorCode, OsRandom, PasscodeRules, Result, TesseraError, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tessera_core::link::{self, DeviceState, PendingDeviceLink, UserFactor};
use zeroize::Zeroizing;

/// What a scanned link QR code says (show it before linking).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkOfferInfo {
    /// Portal name.
    pub portal_name: String,
    /// Portal key fingerprint (16 hex characters).
    pub portal_fingerprint: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Passcode rules.
    pub passcode_rules: PasscodeRules,
}

/// Public facts of the linked account.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    pub linked_at: Timestamp,
    /// Deadline to type the check code on the portal.
    pub confirm_by: Timestamp,
    /// Biometrics enabled.
    pub biometrics: bool,
    /// The time-based codes this device shows ([`Device::code`]), as the
    /// portal set them.
    pub device_codes: crate::DeviceCodeRules,
}

impl From<&link::DeviceInfo> for LinkedAccount {
    fn from(i: &link::DeviceInfo) -> Self {
        LinkedAccount {
            portal_name: i.portal_name.clone(),
            portal_fingerprint: i.portal_fingerprint.clone(),
            account: i.account.clone(),
            device_id: i.device_id.clone(),
            device_name: i.device_name.clone(),
            linked_at: Timestamp::from_secs(i.linked_at),
            confirm_by: Timestamp::from_secs(i.confirm_by),
            biometrics: i.biometrics,
            device_codes: i.totp.into(),
        }
    }
}

/// What the user chose when linking.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkChoices {
    /// Device name shown on the portal.
    pub device_name: String,
    /// The passcode (checked against the portal's rules).
    pub passcode: String,
    /// Also unlock with biometrics (the portal's rules must allow it).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub biometrics: bool,
}

impl std::fmt::Debug for LinkChoices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkChoices")
            .field("device_name", &self.device_name)
            .field("passcode", &"<redacted>")
            .field("biometrics", &self.biometrics)
            .finish()
    }
}

/// How the user unlocks the device's secrets.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Unlock {
    /// The passcode.
    Passcode {
        /// Passcode typed by the user.
        passcode: String,
    },
    /// The secret the keystore released after a biometric prompt.
    Biometric {
        /// The 32-byte biometric secret.
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unlock(<redacted>)")
    }
}

/// The link result a device shows and stores.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkFinish {
    /// The sealed device state to store (replaces the pending link).
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub state: Vec<u8>,
    /// Check code to show; the user types it on the portal.
    pub check_code: String,
    /// Account facts.
    pub account: LinkedAccount,
}

impl std::fmt::Debug for LinkFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkFinish").field("account", &self.account).finish_non_exhaustive()
    }
}

/// What the portal said about this device's link.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkStatus {
    /// Linked and usable.
    Active,
    /// Linked on the device; the check code was not typed on the portal yet.
    AwaitingConfirmation,
}

/// Run `f` with the user factor `unlock` releases (zeroized after).
pub(crate) fn with_factor<T>(unlock: Unlock, f: impl FnOnce(UserFactor<'_>) -> tessera_core::Result<T>) -> Result<T> {
    Ok(match unlock {
        Unlock::Passcode { passcode } => {
            let passcode = Zeroizing::new(passcode);
            f(UserFactor::Passcode(&passcode))?
        }
        Unlock::Biometric { secret } => {
            let secret = Zeroizing::new(secret);
            f(UserFactor::Biometric(&secret))?
        }
    })
}

/// A fresh 32-byte storage key (keep it in the platform keystore).
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn new_storage_key() -> Result<Vec<u8>> {
    Ok(random_bytes::<32>()?.to_vec())
}

fn key32(key: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let k: [u8; 32] =
        key.try_into().map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "the storage key must be 32 bytes"))?;
    Ok(Zeroizing::new(k))
}

fn scan(qr_text: &str, now: Timestamp, pinned_portal_key: Option<&[u8]>) -> Result<link::ScannedOffer> {
    Ok(match pinned_portal_key {
        Some(k) => link::scan_link_qr_pinned(qr_text, k, now.secs())?,
        None => link::scan_link_qr(qr_text, now.secs())?,
    })
}

fn consumed(what: &str) -> TesseraError {
    TesseraError::new(ErrorCode::AlreadyConsumed, format!("this {what} was already used; start again"))
}

/// The device side of Tessera, bound to the app's storage key.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct Device {
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Device(<key redacted>)")
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl Device {
    /// A device bound to a 32-byte storage key.
    #[cfg_attr(feature = "uniffi", uniffi::constructor)]
    pub fn new(storage_key: Vec<u8>) -> Result<Self> {
        let storage_key = Zeroizing::new(storage_key);
        Ok(Device { key: key32(&storage_key)? })
    }

    /// Read a scanned QR text. An app that knows its portal passes the
    /// portal's public key: a QR code with another key (a look-alike) is
    /// refused with `WRONG_ACCOUNT`.
    #[cfg_attr(feature = "uniffi", uniffi::method(default(pinned_portal_key = None)))]
    pub fn scan_link_qr(
        &self,
        qr_text: String,
        now: Timestamp,
        pinned_portal_key: Option<Vec<u8>>,
    ) -> Result<LinkOfferInfo> {
        let o = scan(&qr_text, now, pinned_portal_key.as_deref())?;
        Ok(LinkOfferInfo {
            portal_name: o.portal_name,
            portal_fingerprint: o.portal_fingerprint,
            expires_at: Timestamp::from_secs(o.expires_at),
            passcode_rules: o.policy.into(),
        })
    }

    /// Start linking. `current_state` is the stored device state, if any: a
    /// device holds one account (`DEVICE_ALREADY_LINKED`). Send
    /// [`PendingLink::request`] to the portal; seal and keep the pending link.
    #[cfg_attr(feature = "uniffi", uniffi::method(default(pinned_portal_key = None)))]
    pub fn start_link(
        &self,
        qr_text: String,
        choices: LinkChoices,
        current_state: Option<Vec<u8>>,
        now: Timestamp,
        pinned_portal_key: Option<Vec<u8>>,
    ) -> Result<Arc<PendingLink>> {
        let passcode = Zeroizing::new(choices.passcode);
        let offer = scan(&qr_text, now, pinned_portal_key.as_deref())?;
        let s = link::start_link(
            &offer,
            &choices.device_name,
            &passcode,
            choices.biometrics,
            current_state.is_some(),
            now.secs(),
            &mut OsRandom,
        )?;
        Ok(Arc::new(PendingLink {
            key: self.key.clone(),
            biometric_secret: s.biometric_secret.map(|b| Zeroizing::new(b.expose().to_vec())),
            inner: Mutex::new(Some(s.pending)),
        }))
    }

    /// Restore a pending link saved with [`PendingLink::sealed`].
    pub fn open_pending_link(&self, sealed: Vec<u8>) -> Result<Arc<PendingLink>> {
        let p = PendingDeviceLink::open(&self.key, &sealed)?;
        Ok(Arc::new(PendingLink { key: self.key.clone(), biometric_secret: None, inner: Mutex::new(Some(p)) }))
    }

    /// Facts of the linked account in `state`.
    pub fn account(&self, state: Vec<u8>) -> Result<LinkedAccount> {
        Ok(DeviceState::open(&self.key, &state)?.info().into())
    }

    /// The device's time-based code. A wrong passcode gives a wrong code
    /// that only the portal can detect (a stolen state reveals nothing).
    pub fn code(&self, state: Vec<u8>, unlock: Unlock, now: Timestamp) -> Result<String> {
        let st = DeviceState::open(&self.key, &state)?;
        with_factor(unlock, |f| st.totp(f, now.secs()))
    }

    /// Ask the portal whether this link still exists: send
    /// [`StatusProbe::request`], then read the answer with [`StatusProbe::read`].
    pub fn status_request(&self, state: Vec<u8>, now: Timestamp) -> Result<Arc<StatusProbe>> {
        let st = DeviceState::open(&self.key, &state)?;
        let (_, probe) = st.status_request(now.secs(), &mut OsRandom)?;
        Ok(Arc::new(StatusProbe { key: self.key.clone(), inner: Mutex::new(Some((st, probe))) }))
    }

    /// Restore a status probe saved with [`StatusProbe::sealed`] (an app
    /// that reads the answer in another process or after a restart).
    pub fn open_status_probe(&self, state: Vec<u8>, sealed: Vec<u8>) -> Result<Arc<StatusProbe>> {
        let st = DeviceState::open(&self.key, &state)?;
        let probe = link::StatusProbe::open(&self.key, &sealed)?;
        Ok(Arc::new(StatusProbe { key: self.key.clone(), inner: Mutex::new(Some((st, probe))) }))
    }

    /// Unlink locally: checks the state is this device's and returns its
    /// account facts; the app then deletes the state and the biometric
    /// secret. The portal learns it when the device is removed there.
    pub fn unlink_locally(&self, state: Vec<u8>) -> Result<LinkedAccount> {
        self.account(state)
    }
}

/// A link in progress, finished once.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct PendingLink {
    key: Zeroizing<[u8; 32]>,
    biometric_secret: Option<Zeroizing<Vec<u8>>>,
    inner: Mutex<Option<PendingDeviceLink>>,
}

impl std::fmt::Debug for PendingLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLink(<redacted>)")
    }
}

impl PendingLink {
    fn with<T>(&self, f: impl FnOnce(&PendingDeviceLink) -> T) -> Result<T> {
        let guard = self.inner.lock().map_err(|_| consumed("pending link"))?;
        Ok(f(guard.as_ref().ok_or_else(|| consumed("pending link"))?))
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl PendingLink {
    /// The request to send to the portal; send it again, byte for byte,
    /// when the answer was lost (the portal repeats its answer).
    pub fn request(&self) -> Result<String> {
        self.with(|p| p.request().to_owned())
    }

    /// With biometrics, right after `start_link`: the 32-byte secret to
    /// keep behind a biometric prompt in the keystore.
    pub fn biometric_secret(&self) -> Option<Vec<u8>> {
        self.biometric_secret.as_ref().map(|s| s.to_vec())
    }

    /// Seal for storage while waiting for the answer.
    pub fn sealed(&self) -> Result<Vec<u8>> {
        self.with(|p| p.seal(&self.key, &mut OsRandom))
    }

    /// When to stop sending the request again and give up.
    pub fn give_up_at(&self) -> Result<Timestamp> {
        self.with(|p| Timestamp::from_secs(p.give_up_at()))
    }

    /// Finish with the portal's answer. The portal's refusal
    /// (`TOKEN_ALREADY_USED`, `TOKEN_EXPIRED`, …) spends the link
    /// (`ALREADY_CONSUMED` after); a damaged or forged answer
    /// (`MESSAGE_TAMPERED`, `MALFORMED_MESSAGE`, …) and the portal's own
    /// faults (`INTERNAL`, `INVALID_TIME`) do not: finish again with the
    /// genuine answer, or send the request again.
    pub fn finish(&self, answer: String) -> Result<LinkFinish> {
        let mut guard = self.inner.lock().map_err(|_| consumed("pending link"))?;
        let pending = guard.take().ok_or_else(|| consumed("pending link"))?;
        match link::finish_link(pending, &answer, &self.key, &mut OsRandom) {
            Ok(l) => Ok(LinkFinish { state: l.state, check_code: l.check_code, account: (&l.info).into() }),
            Err(e) => {
                *guard = e.retry;
                Err(e.error.into())
            }
        }
    }
}

/// A status request in flight: send [`StatusProbe::request`], read the
/// portal's answer with [`StatusProbe::read`].
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct StatusProbe {
    key: Zeroizing<[u8; 32]>,
    inner: Mutex<Option<(DeviceState, link::StatusProbe)>>,
}

impl std::fmt::Debug for StatusProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusProbe(<redacted>)")
    }
}

impl StatusProbe {
    fn with<T>(&self, f: impl FnOnce(&link::StatusProbe) -> T) -> Result<T> {
        let guard = self.inner.lock().map_err(|_| consumed("status probe"))?;
        Ok(f(&guard.as_ref().ok_or_else(|| consumed("status probe"))?.1))
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl StatusProbe {
    /// Text to send to the portal (`ALREADY_CONSUMED` once read).
    pub fn request(&self) -> Result<String> {
        self.with(|p| p.request().to_owned())
    }

    /// Seal for storage until the answer arrives ([`Device::open_status_probe`]).
    pub fn sealed(&self) -> Result<Vec<u8>> {
        self.with(|p| p.seal(&self.key, &mut OsRandom))
    }

    /// Read the portal's answer (once: `ALREADY_CONSUMED` after an
    /// authenticated answer was read). Throws `DEVICE_REVOKED` and
    /// `LINK_NOT_CONFIRMED`: wipe the state then. A damaged or forged answer
    /// (`MESSAGE_TAMPERED`, …) leaves the probe usable for the genuine one.
    pub fn read(&self, answer: String) -> Result<LinkStatus> {
        let mut guard = self.inner.lock().map_err(|_| consumed("status probe"))?;
        let (st, probe) = guard.as_ref().ok_or_else(|| consumed("status probe"))?;
        let r = st.read_status_answer(probe, &answer);
        let authenticated = match &r {
            Ok(_) => true,
            Err(e) => {
                matches!(e.code(), tessera_core::ErrorCode::DeviceRevoked | tessera_core::ErrorCode::LinkNotConfirmed)
            }
        };
        if authenticated {
            *guard = None;
        }
        Ok(match r? {
            link::LinkStatus::Active => LinkStatus::Active,
            link::LinkStatus::AwaitingConfirmation => LinkStatus::AwaitingConfirmation,
        })
    }
}
