//! Activating an offline authenticator (flow 3): a device with a camera
//! and a screen but no network and no trustworthy clock (a bank's QR
//! reader, or an app acting as one).
//!
//! ```text
//!  portal (state machine the host persists)              offline authenticator
//!  order: user ID + initial password (the letter),
//!         activation code hash, device assigned
//!  start(user ID) ── QR 1 (kind 0x30, MAC under ECDH with the device key) ─▶ Token::scan
//!  ◀──────────────── 10-digit device code typed by the user ───────── (proves possession)
//!  activation code (salted slow hash, counted on the order)
//!  ─────────────── QR 2 (binding, sealed to the device's key) ───────▶ Token::scan (binds)
//!  ◀──────────────── 8-digit binding code typed by the user ───────── (proves it took it)
//!  serial number (from the back of the device)
//!  ─────────────── test challenge (kind 0x20, as for any device) ───▶ Token::scan
//!  ◀──────────────── one-time code typed by the user ─────────────────
//!  initial password (single use) → new password (NIST SP 800-63B policy)
//!  → recovery codes shown once → device row, usable after the delay
//! ```
//!
//! The device side ([`Token`]) runs without an operating system and
//! without allocating: fixed-size buffers on the stack, a fixed-size
//! state ([`TOKEN_STATE_LEN`] bytes). See `docs/PROTOCOL.md`, flow 3.

mod factory;
mod messages;
pub mod password;
mod portal;
mod token;

pub use factory::{parse_factory_file, FactoryRecord, FACTORY_FILE_HEADER};
pub use portal::{
    AccountCredentials, ActivationProgress, ActivationRecord, ActivationSettings, ActivationState, ActivationStep,
    EnrolmentRecord, EnrolmentState, Order, TokenRecord, TokenState, MAX_ACTIVATION_FAILURES, MAX_ACTIVATION_STARTS,
    MAX_SECRET_FAILURES, RECOVERY_CODE_COUNT,
};
pub use token::{Code, Screen, ShownApproval, Text, Token, TOKEN_STATE_LEN};

use crate::crypto::{hkdf, hmac_sha256, sha256};
use zeroize::Zeroizing;

/// Serial numbers have 6 to 16 characters `A`–`Z`, `0`–`9`.
pub const SERIAL_LEN: core::ops::RangeInclusive<usize> = 6..=16;
/// Digits of the code the device shows for the first QR code.
pub const DEVICE_CODE_DIGITS: u8 = 10;
/// Digits of the code the device shows for the second QR code.
pub const BINDING_CODE_DIGITS: u8 = 8;
/// Longest user ID shown on the device, in bytes.
pub const MAX_USER_ID_LEN: usize = 16;

/// Domain-separation labels (docs/PROTOCOL.md).
pub(crate) mod label {
    pub const KEY_HINT: &[u8] = b"tessera/v1/token-key-hint";
    pub const QR_KEY: &[u8] = b"tessera/v1/activation-qr-key";
    pub const DEVICE_CODE: &[u8] = b"tessera/v1/activation-device-code";
    pub const BIND_WRAP: &[u8] = b"tessera/v1/activation-bind-wrap";
    pub const BINDING_ROOT: &[u8] = b"tessera/v1/token-binding";
    pub const BINDING_CODE: &[u8] = b"tessera/v1/activation-binding-code";
    pub const TOKEN_CHANNEL: &[u8] = b"tessera/v1/token-channel-key";
    pub const TOKEN_ANSWER: &[u8] = b"tessera/v1/token-answer-key";
    pub const TOKEN_DEVICE_ID: &[u8] = b"tessera/v1/token-device-id";
}

/// A serial number as the device and the maker's file spell it (upper
/// case, no separators), from what a user typed: letters upper-cased,
/// spaces and dashes dropped. `None` if it cannot be a serial number.
/// Writes into `out`, without allocating.
pub(crate) fn normalize_serial<'o>(typed: &str, out: &'o mut [u8; 16]) -> Option<&'o str> {
    let mut n = 0;
    for b in typed.bytes() {
        let b = match b {
            b' ' | b'-' => continue,
            b'a'..=b'z' => b - 32,
            b'A'..=b'Z' | b'0'..=b'9' => b,
            _ => return None,
        };
        *out.get_mut(n)? = b;
        n += 1;
    }
    if !SERIAL_LEN.contains(&n) {
        return None;
    }
    core::str::from_utf8(&out[..n]).ok()
}

/// A serial as stored (already normalised): 6..=16 of `A-Z0-9`.
pub(crate) fn serial_ok(serial: &str) -> bool {
    SERIAL_LEN.contains(&serial.len()) && serial.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// 4 bytes telling which device an activation QR code is for:
/// `H("tessera/v1/token-key-hint" || D)[..4]` of its public key `D`, which
/// only the maker's file and the portal know (the serial cannot be read
/// off a photographed QR code).
pub(crate) fn key_hint(device_pk: &[u8]) -> [u8; 4] {
    let h = sha256(&[label::KEY_HINT, device_pk]);
    [h[0], h[1], h[2], h[3]]
}

/// Key of the first QR code's MAC and of the device code:
/// `HKDF(salt = E, ikm = ECDH(e, D), info = label || S)`.
pub(crate) fn qr_key(shared: &[u8; 32], e_pk: &[u8], serial: &str) -> Zeroizing<[u8; 32]> {
    hkdf(e_pk, shared, &[label::QR_KEY, serial.as_bytes()])
}

/// Key sealing the binding in the second QR code (one per ephemeral key).
pub(crate) fn wrap_key(shared: &[u8; 32], e_pk: &[u8], serial: &str) -> Zeroizing<[u8; 32]> {
    hkdf(e_pk, shared, &[label::BIND_WRAP, serial.as_bytes()])
}

/// Root of everything a binding gives the device:
/// `HKDF(salt = E, ikm = ECDH(e, D), info = label || S || u32be(g))`.
/// Only the portal (which drew `e`) and the device (which holds `d`) can
/// compute it: neither the maker's file nor the QR codes give it away.
pub(crate) fn binding_root(shared: &[u8; 32], e_pk: &[u8], serial: &str, generation: u32) -> Zeroizing<[u8; 32]> {
    hkdf(e_pk, shared, &[label::BINDING_ROOT, serial.as_bytes(), &generation.to_be_bytes()])
}

/// The keys a bound device answers challenges with, as a linked phone's
/// record holds them: (channel key, answer key).
pub(crate) fn binding_keys(root: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    (hkdf(&[], root, &[label::TOKEN_CHANNEL]), hkdf(&[], root, &[label::TOKEN_ANSWER]))
}

/// Device id of a binding: `hex(SHA-256(label || serial || generation)[..8])`.
pub(crate) fn token_device_id(serial: &str, generation: u32) -> [u8; 8] {
    let h = sha256(&[label::TOKEN_DEVICE_ID, serial.as_bytes(), &generation.to_be_bytes()]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    id
}

/// `HMAC(key, label || message)`: first 8 bytes, big-endian, mod
/// 10^digits, as ASCII digits with leading zeros.
pub(crate) fn code_of(key: &[u8; 32], code_label: &[u8], message: &[u8], digits: u8) -> Code {
    let mac = Zeroizing::new(hmac_sha256(key, &[code_label, message]));
    let mut first = [0u8; 8];
    first.copy_from_slice(&mac[..8]);
    Code::from_number(u64::from_be_bytes(first), digits)
}

#[cfg(test)]
mod tests;
