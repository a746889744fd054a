//! Linking a device to an account with a single-use QR code (flow 1).
//!
//! ```text
//!  portal (logged-in computer)                         device (phone app)
//!  Portal::create_offer ──── QR "TS:…" ──────────────▶ scan_link_qr  (shows portal name)
//!                                                      start_link    (name, passcode, biometrics)
//!  Portal::open_link_request ◀──── request ─────────── (P-256 ECDH + HKDF-SHA256 + ChaCha20-Poly1305)
//!  OpenedLinkRequest::accept ───── answer ───────────▶ finish_link   (shows the check code)
//!  Portal::confirm_any ◀── user types the check code on the portal
//!  (or confirm_link, for one known pending link)
//! ```
//!
//! A finish error that is not final hands the pending link back
//! ([`FinishError::retry`]); an acceptance the host could not store is
//! answered with [`AcceptOutcome::if_not_stored`] instead.
//!
//! Every step is sans-IO: time and randomness come in, records and events
//! go out; the host stores them. See `docs/PROTOCOL.md` for the bytes.

mod device;
mod messages;
mod passcode;
mod portal;

pub use device::{
    finish_link, scan_link_qr, scan_link_qr_pinned, start_link, DeviceInfo, DeviceState, FinishError, LinkStart,
    LinkStatus, LinkedDevice, PendingDeviceLink, ScannedOffer, StatusProbe, UserFactor,
};
pub use passcode::{PasscodePolicy, PASSCODE_LEN_RANGE};

/// How a pending link is confirmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfirmMethod {
    /// The user types the device's check code on the logged-in portal (flow 1).
    #[default]
    CheckCode,
    /// An existing authenticator of the account answers a challenge for
    /// the new device, and the user types its code into the new device (flow 2).
    Authenticator,
}

/// The time-based codes a linked device shows without a QR code (flow 5),
/// set by the portal at link time and sent to the device in the link answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTotpPolicy {
    /// HMAC hash.
    pub algorithm: crate::otp::Algorithm,
    /// Digits (6..=8).
    pub digits: u8,
    /// Seconds per step (15..=120).
    pub period: u32,
}

impl Default for DeviceTotpPolicy {
    /// TOTP-SHA256, 6 digits, 30-second steps.
    fn default() -> Self {
        DeviceTotpPolicy { algorithm: crate::otp::Algorithm::Sha256, digits: 6, period: 30 }
    }
}

impl DeviceTotpPolicy {
    /// Check the policy (`INVALID_DIGITS`, `INVALID_TIME`).
    pub fn validate(&self) -> Result<()> {
        if !(6..=8).contains(&self.digits) {
            return Err(err(ErrorCode::InvalidDigits, "a device's time-based codes have 6 to 8 digits"));
        }
        if !(15..=120).contains(&self.period) {
            return Err(err(ErrorCode::InvalidTime, "a device's time step is 15 to 120 seconds"));
        }
        Ok(())
    }
}

/// Options of a link offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferOptions {
    /// Passcode policy (in the QR code).
    pub policy: PasscodePolicy,
    /// Lifetime in seconds (1..=600).
    pub ttl: u64,
    /// The device's time-based codes.
    pub totp: DeviceTotpPolicy,
}

impl Default for OfferOptions {
    fn default() -> Self {
        OfferOptions { policy: PasscodePolicy::default(), ttl: DEFAULT_OFFER_TTL, totp: DeviceTotpPolicy::default() }
    }
}
#[cfg(test)]
pub(crate) use portal::PendingChannel;
pub use portal::{
    Accept, AcceptOutcome, CancelReason, DeviceKeyUse, DeviceRecord, DeviceStatus, LinkOfferQr, LinkOfferRecord,
    OfferState, OpenedLinkRequest, OpenedStatusRequest, PendingLinkRecord, PendingState, Portal, PortalEvent,
    PortalRecord, MAX_REQUEST_TEXT, STATUS_SKEW,
};

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
/// The check-code limit: the [`MAX_CONFIRM_ATTEMPTS`]th wrong code cancels
/// the pending link for good.
pub const CONFIRM_ATTEMPTS: crate::limits::AttemptPolicy =
    crate::limits::AttemptPolicy { max_failures: MAX_CONFIRM_ATTEMPTS, lock_seconds: None };
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
    pub const OFFER_COMMIT: &[u8] = b"tessera/v1/offer-commit";
    pub const OFFER_ID: &[u8] = b"tessera/v1/offer-id";
    pub const LINK_SALT: &[u8] = b"tessera/v1/link";
    pub const LINK_REQUEST: &[u8] = b"tessera/v1/link-request";
    pub const TRANSCRIPT: &[u8] = b"tessera/v1/link-transcript";
    pub const LINK_POP: &[u8] = b"tessera/v1/link-pop";
    pub const LINK_ANSWER: &[u8] = b"tessera/v1/link-answer";
    pub const LINK_REFUSAL: &[u8] = b"tessera/v1/link-refusal";
    pub const CHECK_CODE_KEY: &[u8] = b"tessera/v1/check-code-key";
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

/// The offer commitment carried in the QR code:
/// `SHA-256(label || portal_nonce)[..16]`. The portal reveals the nonce only
/// inside its answer, after the device's keys are fixed, and the check code
/// is derived from it: a relay cannot steer the two check codes together.
pub(crate) fn offer_commitment(portal_nonce: &[u8; 32]) -> [u8; 16] {
    let h = sha256(&[label::OFFER_COMMIT, portal_nonce]);
    let mut c = [0u8; 16];
    c.copy_from_slice(&h[..16]);
    c
}

/// Lookup id of an offer: `SHA-256(label || commitment)[..16]`, hex.
pub(crate) fn offer_id(commitment: &[u8; 16]) -> String {
    hex_encode(&sha256(&[label::OFFER_ID, commitment])[..16])
}

/// Device id: `SHA-256(label || device_public_key)[..8]`, hex.
pub(crate) fn device_id(device_pk: &[u8]) -> String {
    hex_encode(&sha256(&[label::DEVICE_ID, device_pk])[..8])
}

/// Key protecting the link request: HKDF(salt = label, ikm = ECDH(eph, portal),
/// info = label || portal_pk || eph_pk). One request per ephemeral key.
pub(crate) fn request_key(shared_e: &[u8; 32], portal_pk: &[u8], eph_pk: &[u8]) -> Zeroizing<[u8; 32]> {
    hkdf(label::LINK_SALT, shared_e, &[label::LINK_REQUEST, portal_pk, eph_pk])
}

/// What both sides hash into the link transcript.
pub(crate) struct TranscriptInput<'a> {
    pub portal_pk: &'a [u8],
    pub eph_pk: &'a [u8],
    pub device_pk: &'a [u8],
    pub commitment: &'a [u8; 16],
    pub biometrics: bool,
    pub policy: PasscodePolicy,
    pub device_name: &'a str,
}

/// Link transcript hash: binds portal, ephemeral key, device key, offer
/// and everything the device asked for.
pub(crate) fn transcript(t: &TranscriptInput<'_>) -> [u8; 32] {
    // Names are at most 64 bytes (checked before), so the length fits a byte.
    let name_len = [u8::try_from(t.device_name.len()).unwrap_or(u8::MAX)];
    sha256(&[
        label::TRANSCRIPT,
        t.portal_pk,
        t.eph_pk,
        t.device_pk,
        t.commitment,
        &[u8::from(t.biometrics)],
        &t.policy.to_bytes(),
        &name_len,
        t.device_name.as_bytes(),
    ])
}

/// Answer keys (64 bytes: encryption key || synthetic-nonce key) for an
/// acceptance, and separately for a refusal.
pub(crate) fn answer_keys(
    shared_e: &[u8; 32],
    commitment: &[u8; 16],
    th: &[u8; 32],
    accepted: bool,
) -> Zeroizing<[u8; 64]> {
    let l = if accepted { label::LINK_ANSWER } else { label::LINK_REFUSAL };
    hkdf::<64>(commitment, shared_e, &[l, th])
}

/// Key of the check code: `HKDF(salt = c, ikm = shared_e, info = label || th)`.
/// The device stores this (not `shared_e`, which would decrypt its own
/// request and with it the passcode-derived answer key) until the answer.
pub(crate) fn check_code_key(shared_e: &[u8; 32], commitment: &[u8; 16], th: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hkdf(commitment, shared_e, &[label::CHECK_CODE_KEY, th])
}

/// The check code: needs the portal nonce, revealed only in the answer.
pub(crate) fn check_code(code_key: &[u8; 32], portal_nonce: &[u8; 32], th: &[u8; 32]) -> Zeroizing<String> {
    let cc = hkdf::<8>(portal_nonce, code_key, &[label::CHECK_CODE, th]);
    let n = u64::from_be_bytes(*cc) % 10u64.pow(CHECK_CODE_DIGITS);
    Zeroizing::new(alloc::format!("{n:06}"))
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

/// Characters a display name may not contain: control characters, and
/// invisible formatting characters that can make one name look like
/// another or reorder what a screen shows (bidirectional overrides and
/// isolates, zero-width characters, soft hyphen, line separators, tags).
pub(crate) fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

/// Whether `name` is a valid display name (the rule of [`check_name`],
/// without an error to build: the offline authenticator checks what it
/// shows without allocating).
pub(crate) fn name_ok(name: &str, max: usize) -> bool {
    !name.trim().is_empty() && name.len() <= max && !name.chars().any(is_forbidden_in_name)
}

/// A display name (portal, device, account): non-empty, at most `max` UTF-8
/// bytes, no control or invisible formatting characters, not
/// white space only.
pub(crate) fn check_name(name: &str, max: usize, what: &'static str) -> Result<()> {
    if !name_ok(name, max) {
        return Err(crate::Error::with_detail(
            ErrorCode::InvalidInput,
            alloc::format!(
                "{what} must be 1 to {max} bytes of text without control or invisible formatting characters"
            ),
        ));
    }
    Ok(())
}

/// Codes a portal may refuse a link request with, as the device reports
/// them. Anything else in a refusal (a hostile portal saying
/// `MESSAGE_TAMPERED`, or `DEVICE_REVOKED`) is reported as `INVALID_STATE`
/// ("the portal refused the link"), final. A hostile portal can still keep
/// a phone retrying with `INTERNAL`, as it could by never answering: the
/// app stops at [`PendingDeviceLink::give_up_at`].
pub(crate) const REFUSAL_CODES: &[ErrorCode] = &[
    ErrorCode::TokenUnknown,
    ErrorCode::TokenAlreadyUsed,
    ErrorCode::TokenExpired,
    ErrorCode::DeviceAlreadyLinked,
    ErrorCode::PasscodePolicy,
    // Not final on the device: the portal's clock or state was at fault,
    // the offer is untouched, and the same request may be sent again.
    ErrorCode::InvalidTime,
    ErrorCode::Internal,
];

pub(crate) fn refused_error(code: &str) -> crate::Error {
    match ErrorCode::from_str_code(code) {
        Some(c) if REFUSAL_CODES.contains(&c) => crate::Error::new(c, c.summary()),
        _ => err(ErrorCode::InvalidState, "the portal refused the link"),
    }
}

#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;
