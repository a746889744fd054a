//! Challenge/response (flow 4), codes without a QR code (flow 5) and
//! linking a new device from an existing authenticator (flow 2).
//!
//! ```text
//!  portal                                                  linked device
//!  Portal::create_challenge ── QR "TS:…" (kind 0x20) ────▶ DeviceState::read_challenge
//!     (sealed to the account's devices: only they can        (shows the portal and exactly
//!      read it; any other device: NOT_FOR_THIS_DEVICE)        what is approved)
//!                                                          DeviceState::answer_code (typed)
//!  Portal::verify_answer ◀── 6..10 digits typed by the user ─ or answer_signed (kind 0x21)
//! ```
//!
//! The typed code is `HMAC(answer_key, label || challenge_hash)` truncated
//! to the portal's digits: `answer_key` comes from the passcode (or the
//! biometric secret), and `challenge_hash` covers every byte the device
//! showed, so a changed amount or payee changes the code (PSD2 dynamic
//! linking). A signed answer adds possession of the device key and a
//! counter that shows up a cloned device. See `docs/PROTOCOL.md`.

mod device;
pub(crate) mod messages;
mod portal;

pub use device::{Challenge, SignedAnswer};
/// The challenge a signed answer is for (its lookup key), so that a portal
/// receiving answers from devices knows which row to read.
/// `MALFORMED_MESSAGE` (and the other decoding errors) if it is not a signed answer.
pub fn signed_answer_challenge_id(answer: &str) -> Result<String> {
    Ok(messages::challenge_id(&messages::SignedAnswerMsg::decode(answer)?.nonce))
}

pub use portal::{
    AnswerAccepted, ChallengeQr, ChallengeRecord, ChallengeState, DEVICE_LOCKOUT, MAX_STALE_COUNTER_GAP,
    MAX_VOUCH_FAILURES,
};

use crate::error::{err, ErrorCode, Result};
use crate::link::{check_name, is_forbidden_in_name};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Default digits of a typed answer.
pub const DEFAULT_ANSWER_DIGITS: u8 = 8;
/// Digits a portal may ask for.
pub const ANSWER_DIGITS: core::ops::RangeInclusive<u8> = 6..=10;
/// Default lifetime of a challenge (5 minutes).
pub const DEFAULT_CHALLENGE_TTL: u64 = 300;
/// Longest lifetime of a challenge (15 minutes).
pub const MAX_CHALLENGE_TTL: u64 = 900;
/// Clock difference a device tolerates before it calls a challenge expired
/// (the portal decides; the device only spares the user a useless code).
pub const CHALLENGE_SKEW: u64 = 300;
/// Most devices one challenge QR is readable by (each costs 20 bytes).
pub const MAX_CHALLENGE_DEVICES: usize = 4;
/// Longest payee, in UTF-8 bytes.
pub const MAX_PAYEE_LEN: usize = 70;
/// Most free text lines of a transaction.
pub const MAX_TEXT_LINES: usize = 3;
/// Longest free text line, in UTF-8 bytes.
pub const MAX_TEXT_LEN: usize = 70;
/// Largest amount, in minor units.
pub const MAX_AMOUNT_MINOR: u64 = 999_999_999_999_999;

/// Domain-separation labels (docs/PROTOCOL.md).
pub(crate) mod label {
    pub const CHALLENGE_ID: &[u8] = b"tessera/v1/challenge-id";
    pub const CHALLENGE_TAG: &[u8] = b"tessera/v1/challenge-tag";
    pub const CHALLENGE_WRAP: &[u8] = b"tessera/v1/challenge-wrap";
    pub const CHALLENGE_BODY: &[u8] = b"tessera/v1/challenge-body";
    pub const CHALLENGE_HASH: &[u8] = b"tessera/v1/challenge";
    pub const CHALLENGE_RESPONSE: &[u8] = b"tessera/v1/challenge-response";
    pub const CHALLENGE_SIGNATURE: &[u8] = b"tessera/v1/challenge-signature";
}

/// An amount of money, exactly as typed by the portal: `minor` units with
/// `decimals` (0..=3) digits after the point. `125.50` is `{12550, 2}` and
/// shows as `125.50`; `125.5` is another text and shows as `125.5`: the
/// device shows, and the code covers, exactly what the portal sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    minor: u64,
    decimals: u8,
}

impl Amount {
    /// Parse `123`, `125.50`, `0.125`: digits, at most 15 before the point
    /// and 3 after it, no sign, no leading zero (`INVALID_INPUT`).
    pub fn parse(text: &str) -> Result<Amount> {
        let bad = || err(ErrorCode::InvalidInput, "the amount must look like 125.50 (at most 3 decimals)");
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || int.len() > 15 || (int.len() > 1 && int.starts_with('0')) {
            return Err(bad());
        }
        let frac = frac.unwrap_or("");
        if frac.len() > 3 || (!frac.is_empty() && !digits(frac)) || text.ends_with('.') {
            return Err(bad());
        }
        let mut minor: u64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            minor = minor.checked_mul(10).and_then(|m| m.checked_add(u64::from(b - b'0'))).ok_or_else(bad)?;
        }
        let a = Amount { minor, decimals: frac.len() as u8 };
        a.check().map_err(|_| bad())?;
        Ok(a)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.decimals > 3 || self.minor > MAX_AMOUNT_MINOR {
            return Err(err(ErrorCode::MalformedMessage, "the amount is out of range"));
        }
        Ok(())
    }

    /// Minor units.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// Digits after the decimal point.
    pub fn decimals(&self) -> u8 {
        self.decimals
    }
}

impl core::fmt::Display for Amount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // A stored amount is checked when read; print any other as minor units.
        let Some(p) = 10u64.checked_pow(u32::from(self.decimals)).filter(|_| self.decimals <= 3) else {
            return write!(f, "{}", self.minor);
        };
        if self.decimals == 0 {
            write!(f, "{}", self.minor)
        } else {
            write!(f, "{}.{:0w$}", self.minor / p, self.minor % p, w = usize::from(self.decimals))
        }
    }
}

/// A payment to approve: the fields PSD2 dynamic linking binds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Amount.
    pub amount: Amount,
    /// ISO 4217 code: three capital letters (`EUR`).
    pub currency: String,
    /// Payee as the bank names it (1..=70 bytes of text).
    pub payee: String,
    /// Up to 3 free text lines (1..=70 bytes each): a reference, an IBAN.
    pub text: Vec<String>,
}

impl Transaction {
    /// Check every field (`INVALID_INPUT`).
    pub fn validate(&self) -> Result<()> {
        self.amount.check().map_err(|_| err(ErrorCode::InvalidInput, "the amount is out of range"))?;
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(ErrorCode::InvalidInput, "the currency must be three capital letters (ISO 4217)"));
        }
        check_name(&self.payee, MAX_PAYEE_LEN, "the payee")?;
        if self.text.len() > MAX_TEXT_LINES {
            return Err(err(ErrorCode::InvalidInput, "a transaction has at most 3 text lines"));
        }
        for line in &self.text {
            check_name(line, MAX_TEXT_LEN, "a text line")?;
        }
        Ok(())
    }
}

/// What the user approves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Approval {
    /// Log in to the portal.
    Login,
    /// Approve a payment.
    Transaction(Transaction),
    /// Let a new device join this account (flow 2).
    LinkDevice {
        /// The name the new device gave itself.
        device_name: String,
        /// Its device id.
        device_id: String,
    },
}

impl Approval {
    /// `login`, `transaction` or `linkDevice`.
    pub fn kind(&self) -> &'static str {
        match self {
            Approval::Login => "login",
            Approval::Transaction(_) => "transaction",
            Approval::LinkDevice { .. } => "linkDevice",
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Approval::Login => Ok(()),
            Approval::Transaction(t) => t.validate(),
            Approval::LinkDevice { device_name, device_id } => {
                check_name(device_name, crate::link::MAX_DEVICE_NAME_LEN, "the device name")?;
                if device_id.len() != 16 || !device_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(err(ErrorCode::InvalidInput, "the device id must be 16 lowercase hex characters"));
                }
                Ok(())
            }
        }
    }
}

/// How a portal issues challenges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChallengeSettings {
    /// Digits of the typed answer (6..=10, default 8).
    pub digits: u8,
    /// Lifetime in seconds (1..=900, default 300).
    pub ttl: u64,
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        ChallengeSettings { digits: DEFAULT_ANSWER_DIGITS, ttl: DEFAULT_CHALLENGE_TTL }
    }
}

impl ChallengeSettings {
    pub(crate) fn validate(&self) -> Result<()> {
        if !ANSWER_DIGITS.contains(&self.digits) {
            return Err(err(ErrorCode::InvalidDigits, "a typed answer has 6 to 10 digits"));
        }
        if self.ttl == 0 || self.ttl > MAX_CHALLENGE_TTL {
            return Err(err(ErrorCode::InvalidInput, "a challenge lives 1 to 900 seconds"));
        }
        Ok(())
    }
}

/// Text shown by a device must not hide anything: used by the decoder, so a
/// portal bug cannot make a device display invisible characters.
pub(crate) fn displayable(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(is_forbidden_in_name)
}

#[cfg(test)]
mod tests;
