//! Versioned wire envelope shared by every Tessera message, QR payload and
//! stored blob: `kind (1 byte) || version (1 byte) || body`. Bodies are
//! postcard-encoded unless a message documents a fixed layout (QR codes,
//! where every byte counts). Text forms: QR codes use `TS:` + Base45 (QR
//! alphanumeric mode); messages for the network use base64url.

use crate::encoding::{base45_decode_as, base45_encode, base64url_decode_as, base64url_encode};
use crate::error::{err, ErrorCode, Result};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{de::DeserializeOwned, Serialize};

/// Version of every message kind defined by this build.
pub const VERSION: u8 = 1;

/// Prefix of every Tessera QR text.
pub const QR_PREFIX: &str = "TS:";

/// Every message and blob kind. Values are frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// QR: link offer (portal → device).
    LinkOffer = 0x01,
    /// Link request (device → portal).
    LinkRequest = 0x02,
    /// Link answer (portal → device).
    LinkAnswer = 0x03,
    /// Status request (device → portal).
    StatusRequest = 0x04,
    /// Status answer (portal → device).
    StatusAnswer = 0x05,
    /// Stored: device state (one linked account).
    DeviceState = 0x10,
    /// Stored: a device's link in progress.
    DevicePendingLink = 0x11,
    /// Stored: secrets of a portal-side device record.
    PortalDeviceSecrets = 0x12,
    /// Stored: portal-side offer / pending link / device record (metadata).
    PortalRecord = 0x13,
    /// Stored: a device's status request in flight.
    DeviceStatusProbe = 0x14,
    /// Stored: an offline authenticator's state, sealed by an app acting as one.
    TokenState = 0x15,
    /// QR: challenge (portal → device).
    ChallengeQr = 0x20,
    /// Signed answer to a challenge (device → portal).
    ChallengeAnswer = 0x21,
    /// QR: activation of an offline authenticator (portal → device).
    ActivationQr = 0x30,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            0x01 => LinkOffer,
            0x02 => LinkRequest,
            0x03 => LinkAnswer,
            0x04 => StatusRequest,
            0x05 => StatusAnswer,
            0x10 => DeviceState,
            0x11 => DevicePendingLink,
            0x12 => PortalDeviceSecrets,
            0x13 => PortalRecord,
            0x14 => DeviceStatusProbe,
            0x15 => TokenState,
            0x20 => ChallengeQr,
            0x21 => ChallengeAnswer,
            0x30 => ActivationQr,
            _ => return None,
        })
    }

    /// Error code for a failure to read a payload of this kind: stored
    /// blobs report `STATE_CORRUPT`, messages `MALFORMED_MESSAGE`.
    pub(crate) fn malformed_code(self) -> ErrorCode {
        match self {
            Kind::DeviceState
            | Kind::DevicePendingLink
            | Kind::PortalDeviceSecrets
            | Kind::PortalRecord
            | Kind::TokenState => ErrorCode::StateCorrupt,
            _ => ErrorCode::MalformedMessage,
        }
    }
}

/// The two header bytes of `kind`.
pub(crate) fn header(kind: Kind) -> [u8; 2] {
    [kind as u8, VERSION]
}

/// Check the header of `bytes` against `expected` and return the body.
pub(crate) fn strip_header(bytes: &[u8], expected: Kind) -> Result<&[u8]> {
    let code = expected.malformed_code();
    let (&k, rest) = bytes.split_first().ok_or(err(code, "empty payload"))?;
    let (&v, body) = rest.split_first().ok_or(err(code, "truncated payload header"))?;
    match Kind::from_u8(k) {
        None => return Err(err(code, "not a Tessera payload (unknown kind)")),
        Some(kind) if kind != expected => {
            return Err(err(ErrorCode::WrongMessageKind, "this payload is of another kind than expected"))
        }
        Some(_) => {}
    }
    if v != VERSION {
        return Err(err(ErrorCode::UnsupportedVersion, "the payload has a version this build does not support"));
    }
    Ok(body)
}

/// `header || postcard(body)`.
pub(crate) fn encode<T: Serialize>(kind: Kind, body: &T) -> Vec<u8> {
    let mut out = Vec::from(header(kind));
    // Serialising our own in-memory types to a Vec cannot fail.
    let b = postcard::to_allocvec(body).unwrap_or_else(|_| unreachable!());
    out.extend_from_slice(&b);
    out
}

/// Decode a postcard body that must use every byte.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8], code: ErrorCode) -> Result<T> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok(_) => Err(err(code, "trailing bytes after the payload")),
        Err(_) => Err(err(code, "the payload is malformed or truncated")),
    }
}

/// QR text: `TS:` + Base45.
pub(crate) fn to_qr_text(bytes: &[u8]) -> String {
    let mut s = String::from(QR_PREFIX);
    s.push_str(&base45_encode(bytes));
    s
}

/// Bytes of a QR text (trims surrounding white space some scanners add).
pub(crate) fn from_qr_text(text: &str) -> Result<Vec<u8>> {
    base45_decode_as(qr_body(text)?, ErrorCode::MalformedMessage)
}

fn qr_body(text: &str) -> Result<&str> {
    let t = text.trim_matches(|c: char| c == '\n' || c == '\r' || c == '\t');
    t.strip_prefix(QR_PREFIX).ok_or(err(ErrorCode::MalformedMessage, "not a Tessera QR code"))
}

/// [`from_qr_text`] into a caller's buffer, without allocating:
/// `MALFORMED_MESSAGE` also when the QR code is longer than `buf`.
pub(crate) fn from_qr_text_into<'b>(text: &str, buf: &'b mut [u8]) -> Result<&'b [u8]> {
    let n = crate::encoding::base45_decode_into(qr_body(text)?, buf, ErrorCode::MalformedMessage)?;
    Ok(&buf[..n])
}

/// Network text form: base64url without padding.
pub(crate) fn to_text(bytes: &[u8]) -> String {
    base64url_encode(bytes)
}

/// Bytes of a network text.
pub(crate) fn from_text(text: &str) -> Result<Vec<u8>> {
    base64url_decode_as(text.trim(), ErrorCode::MalformedMessage)
}

/// Serde helper: fixed-size byte arrays stored as length-checked byte
/// strings, for arrays longer than serde's 32.
pub(crate) fn fixed<const N: usize>(v: &[u8], code: ErrorCode) -> Result<[u8; N]> {
    v.try_into().map_err(|_| err(code, "a field has the wrong length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_are_distinct() {
        assert_eq!(strip_header(&[], Kind::LinkOffer).unwrap_err().code(), ErrorCode::MalformedMessage);
        assert_eq!(strip_header(&[1], Kind::LinkOffer).unwrap_err().code(), ErrorCode::MalformedMessage);
        assert_eq!(strip_header(&[0x99, 1], Kind::LinkOffer).unwrap_err().code(), ErrorCode::MalformedMessage);
        assert_eq!(strip_header(&[0x20, 1], Kind::LinkOffer).unwrap_err().code(), ErrorCode::WrongMessageKind);
        assert_eq!(strip_header(&[0x01, 2], Kind::LinkOffer).unwrap_err().code(), ErrorCode::UnsupportedVersion);
        assert_eq!(strip_header(&[0x10, 1, 5], Kind::DeviceState).unwrap(), &[5]);
        assert_eq!(strip_header(&[], Kind::DeviceState).unwrap_err().code(), ErrorCode::StateCorrupt);
        assert_eq!(from_qr_text("https://example.com").unwrap_err().code(), ErrorCode::MalformedMessage);
    }
}
