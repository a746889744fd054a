//! The maker's records of its devices: one line per device, versioned.
//!
//! ```text
//! tessera-factory-records v1
//! # comments and blank lines are ignored
//! TS00012345 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```
//!
//! Each record is a serial number (6 to 16 of `A`–`Z`, `0`–`9`) and the
//! device's 32-byte factory secret in lowercase hex, separated by one
//! space. The file carries secrets in the clear: move it only over a
//! protected channel, import it, and destroy it; the portal keeps each
//! secret sealed under its storage key.

use super::{serial_ok, Token};
use crate::encoding::{hex_decode_as, hex_encode};
use crate::error::{ErrorCode, Result};
use crate::secret::SecretBytes;
use crate::Error;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// First line of a factory file.
pub const FACTORY_FILE_HEADER: &str = "tessera-factory-records v1";

/// One device as its maker recorded it.
#[derive(Clone, PartialEq, Eq)]
pub struct FactoryRecord {
    /// Serial number.
    pub serial: String,
    /// Line of the file it came from (1-based; 0 when not from a file).
    pub line: usize,
    pub(crate) secret: SecretBytes,
}

impl core::fmt::Debug for FactoryRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FactoryRecord").field("serial", &self.serial).field("line", &self.line).finish_non_exhaustive()
    }
}

impl FactoryRecord {
    /// The line of this record in a factory file (holds the secret).
    pub fn to_line(&self) -> String {
        format!("{} {}", self.serial, hex_encode(self.secret.expose()))
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
        FactoryRecord { serial: self.serial().into(), line: 0, secret: SecretBytes::from_slice(self.factory_secret()) }
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
        let (Some(serial), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(at_line(
                ErrorCode::InvalidInput,
                n,
                "a record is a serial number, one space and 64 hex digits",
            ));
        };
        if !serial_ok(serial) {
            return Err(at_line(ErrorCode::InvalidInput, n, "a serial number has 6 to 16 characters A-Z and 0-9"));
        }
        let bytes = hex_decode_as(secret, ErrorCode::InvalidInput)
            .ok()
            .filter(|b| b.len() == 32 && secret.bytes().all(|c| !c.is_ascii_uppercase()))
            .ok_or_else(|| at_line(ErrorCode::InvalidInput, n, "a factory secret is 64 lowercase hex digits"))?;
        if let Some(first) = seen.insert(serial, n) {
            return Err(at_line(
                ErrorCode::DuplicateRecord,
                n,
                &format!("serial number {serial} repeats line {first}"),
            ));
        }
        out.push(FactoryRecord { serial: serial.into(), line: n, secret: SecretBytes::new(bytes) });
    }
    Ok(out)
}
