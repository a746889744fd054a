//! Passcode policy (set by the portal, carried in the link QR) and the
//! trivial-passcode check.

use crate::error::{err, ErrorCode, Result};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// What a device passcode must look like. Travels in the link QR in two
/// bytes: `min_len`, and `max_len | digits_only << 6 | allow_biometrics << 7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasscodePolicy {
    /// Minimum length in characters (6..=16).
    pub min_len: u8,
    /// Maximum length in characters (min_len..=16).
    pub max_len: u8,
    /// Only the digits 0-9.
    pub digits_only: bool,
    /// The device may offer biometrics instead of the passcode.
    pub allow_biometrics: bool,
}

impl Default for PasscodePolicy {
    /// Exactly 6 digits, biometrics allowed.
    fn default() -> Self {
        PasscodePolicy { min_len: 6, max_len: 6, digits_only: true, allow_biometrics: true }
    }
}

/// Smallest and largest passcode length a policy may ask for.
pub const PASSCODE_LEN_RANGE: core::ops::RangeInclusive<u8> = 6..=16;

impl PasscodePolicy {
    /// Check the policy itself (`INVALID_INPUT`).
    pub fn validate_policy(&self) -> Result<()> {
        if !PASSCODE_LEN_RANGE.contains(&self.min_len)
            || !PASSCODE_LEN_RANGE.contains(&self.max_len)
            || self.min_len > self.max_len
        {
            return Err(err(ErrorCode::InvalidInput, "passcode policy lengths must satisfy 6 <= min <= max <= 16"));
        }
        Ok(())
    }

    pub(crate) fn to_bytes(self) -> [u8; 2] {
        [self.min_len, self.max_len | (u8::from(self.digits_only) << 6) | (u8::from(self.allow_biometrics) << 7)]
    }

    pub(crate) fn from_bytes(b: [u8; 2]) -> Result<Self> {
        let p = PasscodePolicy {
            min_len: b[0],
            max_len: b[1] & 0x3f,
            digits_only: b[1] & 0x40 != 0,
            allow_biometrics: b[1] & 0x80 != 0,
        };
        p.validate_policy()
            .map_err(|_| err(ErrorCode::MalformedMessage, "the passcode policy in the QR code is invalid"))?;
        Ok(p)
    }

    /// Check a passcode against the policy: `PASSCODE_POLICY` for length or
    /// alphabet, `WEAK_PASSCODE` for trivial ones.
    pub fn check(&self, passcode: &str) -> Result<()> {
        let chars: Vec<char> = passcode.chars().collect();
        let n = chars.len();
        if n < usize::from(self.min_len) || n > usize::from(self.max_len) {
            return Err(err(ErrorCode::PasscodePolicy, "the passcode does not have an allowed length"));
        }
        if self.digits_only && !chars.iter().all(|c| c.is_ascii_digit()) {
            return Err(err(ErrorCode::PasscodePolicy, "the passcode must contain digits only"));
        }
        if chars.iter().any(|c| c.is_control()) {
            return Err(err(ErrorCode::PasscodePolicy, "the passcode contains control characters"));
        }
        if is_trivial(&chars) {
            return Err(err(ErrorCode::WeakPasscode, "the passcode is too easy to guess (repeated or sequential)"));
        }
        Ok(())
    }
}

/// Trivial: one repeated character, a short repeated pattern (121212,
/// 123123, abcabc), a straight ascending/descending run (123456, 987654,
/// abcdef), or a well-known passcode.
fn is_trivial(chars: &[char]) -> bool {
    let n = chars.len();
    // Repeating pattern with period 1..=3 that covers the whole passcode.
    for period in 1..=3 {
        if n > period && (period..n).all(|i| chars[i] == chars[i - period]) {
            return true;
        }
    }
    // Straight runs (with wrap-around for digits: 890123).
    let lower: Vec<u32> = chars.iter().map(|c| c.to_ascii_lowercase() as u32).collect();
    let all_digits = chars.iter().all(|c| c.is_ascii_digit());
    for step in [1i64, -1] {
        let run = lower.windows(2).all(|w| {
            let d = i64::from(w[1]) - i64::from(w[0]);
            d == step || (all_digits && d == -9 * step)
        });
        if run {
            return true;
        }
    }
    const COMMON: &[&str] = &[
        "123321", "112233", "121212", "159753", "147258", "258369", "696969", "password", "qwerty", "azerty", "qwertz",
        "letmein", "iloveyou", "1q2w3e4r",
    ];
    let s: alloc::string::String = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    COMMON.contains(&s.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy() {
        let p = PasscodePolicy::default();
        assert!(p.check("493817").is_ok());
        for weak in ["123456", "111111", "654321", "121212", "123123", "890123", "112233", "000000", "987654"] {
            assert_eq!(p.check(weak).unwrap_err().code(), ErrorCode::WeakPasscode, "{weak}");
        }
        assert_eq!(p.check("49381").unwrap_err().code(), ErrorCode::PasscodePolicy);
        assert_eq!(p.check("4938172").unwrap_err().code(), ErrorCode::PasscodePolicy);
        assert_eq!(p.check("49381a").unwrap_err().code(), ErrorCode::PasscodePolicy);
    }

    #[test]
    fn alphanumeric_policy_and_bytes() {
        let p = PasscodePolicy { min_len: 8, max_len: 16, digits_only: false, allow_biometrics: false };
        assert!(p.check("correct horse").is_ok());
        assert_eq!(p.check("abcdefgh").unwrap_err().code(), ErrorCode::WeakPasscode);
        assert_eq!(p.check("Password").unwrap_err().code(), ErrorCode::WeakPasscode);
        assert_eq!(PasscodePolicy::from_bytes(p.to_bytes()).unwrap(), p);
        assert_eq!(
            PasscodePolicy::from_bytes(PasscodePolicy::default().to_bytes()).unwrap(),
            PasscodePolicy::default()
        );
        assert!(PasscodePolicy::from_bytes([5, 6]).is_err());
        assert!(PasscodePolicy::from_bytes([7, 6]).is_err());
        assert!(PasscodePolicy { min_len: 6, max_len: 17, digits_only: true, allow_biometrics: true }
            .validate_policy()
            .is_err());
    }
}
