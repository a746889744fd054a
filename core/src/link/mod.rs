//! Linking a device to an account with a single-use QR code (flow 1).
//!
//! ```text
//!  portal (logged-in computer)                         device (phone app)
//!  Portal::create_offer ──── QR "TS:…" ──────────────▶ scan_link_qr  (shows portal name)
//!                                                      start_link    (name, passcode, biometrics)
//!  Portal::open_link_request ◀──── request ─────────── (P-256 ECDH + HKDF-SHA256 + ChaCha20-Poly1305)
//!  OpenedLinkRequest::accept ───── answer ───────────▶ finish_link   (shows the check code)
//!  Portal::confirm_link ◀── user types the check code on the portal
//! ```
//!
//! Every step is sans-IO: time and randomness come in, records and events
//! go out; the host stores them. See `docs/PROTOCOL.md` for the bytes.

mod device;
mod passcode;
mod portal;
mod stored;

pub use device::{
    finish_error_is_final, finish_link, scan_link_qr, start_link, DeviceInfo, DeviceState, LinkStart, LinkedDevice,
    PendingDeviceLink, ScannedOffer, StatusProbe, UserFactor,
};
pub use passcode::{PasscodePolicy, PASSCODE_LEN_RANGE};
pub use portal::{
    AcceptOutcome, AcceptedLink, DeviceRecord, DeviceStatus, LinkOfferQr, LinkOfferRecord, OpenedLinkRequest,
    OpenedStatusRequest, PendingLinkRecord, Portal, PortalEvent, PortalRecord,
};
pub use stored::{StoredDevice, StoredOffer, StoredPendingLink};

use crate::crypto::{hkdf, hmac_sha256, sha256};
use crate::encoding::hex_encode;
use crate::error::{err, ErrorCode, Result};
use alloc::string::String;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Default lifetime of a link offer (5 minutes).
pub const DEFAULT_OFFER_TTL: u64 = 300;
/// Longest lifetime of a link offer (10 minutes).
pub const MAX_OFFER_TTL: u64 = 600;
/// Time the user has to type the check code after the device linked.
pub const CONFIRM_TTL: u64 = 600;
/// Wrong check codes before a pending link is cancelled.
pub const MAX_CONFIRM_ATTEMPTS: u32 = 5;
/// Longest portal display name in the QR code, in UTF-8 bytes.
pub const MAX_PORTAL_NAME_LEN: usize = 20;
/// Longest device name, in UTF-8 bytes.
pub const MAX_DEVICE_NAME_LEN: usize = 64;
/// Longest account identifier, in UTF-8 bytes.
pub const MAX_ACCOUNT_LEN: usize = 128;
/// Digits of the check code.
pub const CHECK_CODE_DIGITS: u32 = 6;

/// Domain-separation labels of the key schedule (docs/PROTOCOL.md).
pub(crate) mod label {
    pub const OFFER_ID: &[u8] = b"tessera/v1/offer-id";
    pub const LINK_SALT: &[u8] = b"tessera/v1/link";
    pub const LINK_REQUEST: &[u8] = b"tessera/v1/link-request";
    pub const TRANSCRIPT: &[u8] = b"tessera/v1/link-transcript";
    pub const LINK_ANSWER: &[u8] = b"tessera/v1/link-answer";
    pub const CHECK_CODE: &[u8] = b"tessera/v1/check-code";
    pub const CHANNEL_KEY: &[u8] = b"tessera/v1/channel-key";
    pub const DEVICE_ID: &[u8] = b"tessera/v1/device-id";
    pub const USER_FACTOR: &[u8] = b"tessera/v1/user-factor";
    pub const ANSWER_KEY: &[u8] = b"tessera/v1/answer-key";
    pub const PORTAL_STORAGE: &[u8] = b"tessera/v1/portal-storage";
    pub const PORTAL_KEY: &[u8] = b"tessera/v1/portal-key";
    pub const STATUS_REQUEST: &[u8] = b"tessera/v1/status-request";
    pub const STATUS_ANSWER: &[u8] = b"tessera/v1/status-answer";
}

/// Lookup id of an offer: `SHA-256(label || offer_secret)[..16]`, hex. The
/// portal stores only this, so a leaked offer table does not reveal the QR
/// secret needed to link.
pub(crate) fn offer_id(secret: &[u8; 16]) -> String {
    hex_encode(&sha256(&[label::OFFER_ID, secret])[..16])
}

/// Device id: `SHA-256(label || device_public_key)[..8]`, hex.
pub(crate) fn device_id(device_pk: &[u8]) -> String {
    hex_encode(&sha256(&[label::DEVICE_ID, device_pk])[..8])
}

/// Key protecting the link request: HKDF(salt = label, ikm = ECDH(eph, portal),
/// info = label || portal_pk || eph_pk).
pub(crate) fn request_key(shared_e: &[u8; 32], portal_pk: &[u8], eph_pk: &[u8]) -> Zeroizing<[u8; 32]> {
    hkdf(label::LINK_SALT, shared_e, &[label::LINK_REQUEST, portal_pk, eph_pk])
}

/// Link transcript hash: binds portal, ephemeral key, device key and offer.
pub(crate) fn transcript(portal_pk: &[u8], eph_pk: &[u8], device_pk: &[u8], offer_secret: &[u8; 16]) -> [u8; 32] {
    sha256(&[label::TRANSCRIPT, portal_pk, eph_pk, device_pk, offer_secret])
}

/// Keys both sides derive once the request is open.
pub(crate) struct LinkKeys {
    pub answer_key: Zeroizing<[u8; 32]>,
    pub check_code: Zeroizing<String>,
}

pub(crate) fn link_keys(shared_e: &[u8; 32], offer_secret: &[u8; 16], th: &[u8; 32]) -> LinkKeys {
    let answer_key = hkdf::<32>(offer_secret, shared_e, &[label::LINK_ANSWER, th]);
    let cc = hkdf::<8>(offer_secret, shared_e, &[label::CHECK_CODE, th]);
    let n = u64::from_be_bytes(*cc) % 10u64.pow(CHECK_CODE_DIGITS);
    let check_code = Zeroizing::new(alloc::format!("{n:06}"));
    LinkKeys { answer_key, check_code }
}

/// Long-term channel key between portal and device (for challenge QR codes
/// and status messages): HKDF(salt = transcript, ikm = ECDH(device, portal)).
pub(crate) fn channel_key(shared_static: &[u8; 32], th: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hkdf(th, shared_static, &[label::CHANNEL_KEY])
}

/// The user factor: `HMAC-SHA256(otp_root, label || passcode)`. It is what
/// biometrics unlock instead of the passcode.
pub(crate) fn user_factor(otp_root: &[u8; 32], passcode: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac_sha256(otp_root, &[label::USER_FACTOR, passcode.as_bytes()]))
}

/// The answer key (OTP key of challenge/response):
/// HKDF(salt = otp_root, ikm = user_factor, info = label || device_id).
/// A wrong passcode gives a different, equally plausible key: nothing on the
/// device can tell a right passcode from a wrong one.
pub(crate) fn answer_key(otp_root: &[u8; 32], factor: &[u8; 32], device_id: &str) -> Zeroizing<[u8; 32]> {
    hkdf(otp_root, factor, &[label::ANSWER_KEY, device_id.as_bytes()])
}

/// A display name: non-empty, at most `max` UTF-8 bytes, no control characters.
pub(crate) fn check_name(name: &str, max: usize, what: &'static str) -> Result<()> {
    if name.trim().is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(crate::Error::with_detail(
            ErrorCode::InvalidInput,
            alloc::format!("{what} must be 1 to {max} bytes of text without control characters"),
        ));
    }
    Ok(())
}

/// Body of a link answer (postcard, inside the AEAD).
#[derive(Serialize, Deserialize)]
pub(crate) enum AnswerBody {
    Accepted { account: String, device_id: String, linked_at: u64, confirm_by: u64 },
    Refused { code: String },
}

pub(crate) fn refused_error(code: &str) -> crate::Error {
    match ErrorCode::from_str_code(code) {
        Some(c) => crate::Error::new(c, c.summary()),
        None => err(ErrorCode::InvalidState, "the portal refused the link"),
    }
}

#[cfg(test)]
mod tests;
