//! The maker's records of its devices: one line per device, versioned.
//!
//! ```text
//! tessera-factory-records v1
//! # comments and blank lines are ignored
//! TS00012345 02a1f3…(66 hex digits)
//! ```
//!
//! Each record is a serial number (6 to 16 of `A`–`Z`, `0`–`9`) and the
//! device's P-256 public key (33-byte compressed SEC1) in lowercase hex,
//! separated by one space. The file holds no secret: the private key never
//! leaves the device (the maker's line made it in the device's secure
//! element), so neither the file nor the maker can act as the device.

use super::{serial_ok, Token};
use crate::crypto::{decode_public, PUBLIC_KEY_LEN};
use crate::encoding::{hex_decode_as, hex_encode};
use crate::error::{ErrorCode, Result};
use crate::Error;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// First line of a factory file.
pub const FACTORY_FILE_HEADER: &str = "tessera-factory-records v1";

/// One device as its maker recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactoryRecord {
    /// Serial number.
    pub serial: String,
    /// Line of the file it came from (1-based; 0 when not from a file).
    pub line: usize,
    /// The device's public key (compressed SEC1).
    pub public_key: [u8; PUBLIC_KEY_LEN],
}

impl FactoryRecord {
    /// The line of this record in a factory file.
    pub fn to_line(&self) -> String {
        format!("{} {}", self.serial, hex_encode(&self.public_key))
    }
}

impl Token {
    /// The state sealed under an app's 32-byte storage key (an app acting
    /// as an offline authenticator keeps it like a linked phone's state).
    pub fn seal(&self, storage_key: &[u8; 32], rng: &mut dyn crate::crypto::RandomSource) -> Vec<u8> {
        let header = crate::wire::header(crate::wire::Kind::TokenState);
        let mut out = Vec::from(header);
        out.extend_from_slice(&crate::crypto::seal_blob(storage_key, &header, &self.to_bytes()[..], rng));
        out
    }

    /// Open a sealed state (`STATE_CORRUPT` on any change or another key).
    pub fn open(storage_key: &[u8; 32], sealed: &[u8]) -> Result<Token> {
        let body = crate::wire::strip_header(sealed, crate::wire::Kind::TokenState)?;
        let plain = crate::crypto::open_blob(storage_key, &sealed[..2], body)?;
        Token::from_bytes(&plain)
    }

    /// The maker's record of this device.
    pub fn factory_record(&self) -> FactoryRecord {
        FactoryRecord { serial: self.serial().into(), line: 0, public_key: *self.public_key() }
    }
}

fn at_line(code: ErrorCode, line: usize, what: &str) -> Error {
    Error::with_detail(code, format!("line {line}: {what}"))
}

/// Read a factory file: every record, or the first error with its line
/// number (`INVALID_INPUT` for a malformed line or a file that is not a
/// factory file, `UNSUPPORTED_VERSION` for another version,
/// `DUPLICATE_RECORD` for a serial number seen on an earlier line).
pub fn parse_factory_file(text: &str) -> Result<Vec<FactoryRecord>> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    match lines.next() {
        Some((_, h)) if h.trim() == FACTORY_FILE_HEADER => {}
        Some((_, h)) if h.trim().starts_with("tessera-factory-records ") => {
            return Err(at_line(ErrorCode::UnsupportedVersion, 1, "this build reads version v1 of factory files"))
        }
        _ => {
            return Err(at_line(
                ErrorCode::InvalidInput,
                1,
                "not a factory file (it must start with `tessera-factory-records v1`)",
            ))
        }
    }
    let mut out: Vec<FactoryRecord> = Vec::new();
    let mut seen = alloc::collections::BTreeMap::new();
    for (n, line) in lines {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.split(' ');
        let (Some(serial), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(at_line(
                ErrorCode::InvalidInput,
                n,
                "a record is a serial number, one space and 66 hex digits",
            ));
        };
        if !serial_ok(serial) {
            return Err(at_line(ErrorCode::InvalidInput, n, "a serial number has 6 to 16 characters A-Z and 0-9"));
        }
        let public_key: [u8; PUBLIC_KEY_LEN] = hex_decode_as(key, ErrorCode::InvalidInput)
            .ok()
            .filter(|b| {
                key.bytes().all(|c| !c.is_ascii_uppercase())
                    && matches!(b.first(), Some(2 | 3))
                    && decode_public(b, ErrorCode::InvalidInput).is_ok()
            })
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                at_line(ErrorCode::InvalidInput, n, "a device key is 66 lowercase hex digits (a compressed P-256 key)")
            })?;
        if let Some(first) = seen.insert(serial, n) {
            return Err(at_line(
                ErrorCode::DuplicateRecord,
                n,
                &format!("serial number {serial} repeats line {first}"),
            ));
        }
        out.push(FactoryRecord { serial: serial.into(), line: n, public_key });
    }
    Ok(out)
}
