//! OTP engine: HOTP, TOTP, OCRA, otpauth:// URIs and the portal verifier.

use crate::{random_bytes, Result};
use tessera_core::otp::{self, Algorithm, KeyUri, OcraInput, OcraSuite, SecretPolicy};
use tessera_core::{encoding, SecretBytes};

/// HMAC hash of an OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OtpAlgorithm {
    /// HMAC-SHA1 (default of authenticator apps).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl From<OtpAlgorithm> for Algorithm {
    fn from(a: OtpAlgorithm) -> Self {
        match a {
            OtpAlgorithm::Sha1 => Algorithm::Sha1,
            OtpAlgorithm::Sha256 => Algorithm::Sha256,
            OtpAlgorithm::Sha512 => Algorithm::Sha512,
        }
    }
}
impl From<Algorithm> for OtpAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::Sha1 => OtpAlgorithm::Sha1,
            Algorithm::Sha256 => OtpAlgorithm::Sha256,
            Algorithm::Sha512 => OtpAlgorithm::Sha512,
        }
    }
}

/// HOTP (RFC 4226) code for `counter`.
#[uniffi::export]
pub fn hotp(secret: Vec<u8>, counter: u64, digits: u8, algorithm: OtpAlgorithm) -> Result<String> {
    let secret = SecretBytes::new(secret);
    Ok(otp::hotp(secret.expose(), counter, digits, algorithm.into())?)
}

/// TOTP (RFC 6238) code at `unix_time` (seconds) with `period` seconds and start time 0.
#[uniffi::export]
pub fn totp(secret: Vec<u8>, unix_time: u64, period: u64, digits: u8, algorithm: OtpAlgorithm) -> Result<String> {
    let t = otp::Totp::new(secret, algorithm.into(), digits, period, 0)?;
    Ok(t.generate(unix_time)?)
}

/// Inputs of an OCRA computation; set what the suite declares.
#[derive(Clone, Default, uniffi::Record)]
pub struct OcraParams {
    /// Counter (suites with `C`).
    #[uniffi(default = None)]
    pub counter: Option<u64>,
    /// Question: decimal digits (QN), hex (QH) or text (QA).
    #[uniffi(default = None)]
    pub question: Option<String>,
    /// PIN in clear (suites with `P`); hashed as the suite says.
    #[uniffi(default = None)]
    pub password: Option<String>,
    /// Session information (suites with `S`).
    #[uniffi(default = None)]
    pub session: Option<Vec<u8>>,
    /// Unix seconds (suites with `T`).
    #[uniffi(default = None)]
    pub unix_time: Option<u64>,
}

/// OCRA (RFC 6287) response for `suite` (e.g. `OCRA-1:HOTP-SHA1-6:QN08`).
#[uniffi::export]
pub fn ocra(suite: String, key: Vec<u8>, params: OcraParams) -> Result<String> {
    let key = SecretBytes::new(key);
    let suite = OcraSuite::parse(&suite)?;
    let input = OcraInput {
        counter: params.counter,
        question: params.question.as_deref(),
        password: params.password.as_deref(),
        password_hash: None,
        session: params.session.as_deref(),
        time: params.unix_time,
    };
    Ok(suite.compute(key.expose(), &input)?)
}

/// RFC 4648 base32 without padding.
#[uniffi::export]
pub fn base32_encode(data: Vec<u8>) -> String {
    encoding::base32_encode(&data)
}

/// Lenient base32 decode (case, spaces and padding ignored).
#[uniffi::export]
pub fn base32_decode(text: String) -> Result<Vec<u8>> {
    Ok(encoding::base32_decode(&text)?)
}

/// A fresh 160-bit OTP secret from the system CSPRNG.
#[uniffi::export]
pub fn new_otp_secret() -> Result<Vec<u8>> {
    Ok(random_bytes::<20>()?.to_vec())
}

/// Kind of an `otpauth://` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum OtpKind {
    /// Counter based.
    Hotp {
        /// Next counter.
        counter: u64,
    },
    /// Time based.
    Totp {
        /// Period in seconds.
        period: u64,
    },
}

/// A parsed `otpauth://` Key URI.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpAuthUri {
    /// HOTP or TOTP.
    pub kind: OtpKind,
    /// Issuer (service name), if any.
    pub issuer: Option<String>,
    /// Account name.
    pub account: String,
    /// Shared secret (raw bytes).
    pub secret: Vec<u8>,
    /// Hash.
    pub algorithm: OtpAlgorithm,
    /// Digits (6..=10).
    pub digits: u8,
}

impl From<&KeyUri> for OtpAuthUri {
    fn from(k: &KeyUri) -> Self {
        OtpAuthUri {
            kind: match k.kind {
                otp::OtpKind::Hotp { counter } => OtpKind::Hotp { counter },
                otp::OtpKind::Totp { period } => OtpKind::Totp { period },
            },
            issuer: k.issuer.clone(),
            account: k.account.clone(),
            secret: k.secret.expose().to_vec(),
            algorithm: k.algorithm.into(),
            digits: k.digits,
        }
    }
}

impl From<OtpAuthUri> for KeyUri {
    fn from(u: OtpAuthUri) -> Self {
        KeyUri {
            kind: match u.kind {
                OtpKind::Hotp { counter } => otp::OtpKind::Hotp { counter },
                OtpKind::Totp { period } => otp::OtpKind::Totp { period },
            },
            issuer: u.issuer,
            account: u.account,
            secret: SecretBytes::new(u.secret),
            algorithm: u.algorithm.into(),
            digits: u.digits,
        }
    }
}

fn policy(allow_short_secret: bool) -> SecretPolicy {
    if allow_short_secret {
        SecretPolicy::AllowShort
    } else {
        SecretPolicy::Strict
    }
}

/// Parse an `otpauth://` URI. Secrets under 128 bits fail with
/// `SECRET_TOO_SHORT` unless `allow_short_secret`.
#[uniffi::export(default(allow_short_secret = false))]
pub fn parse_otpauth_uri(uri: String, allow_short_secret: bool) -> Result<OtpAuthUri> {
    Ok((&KeyUri::parse(&uri, policy(allow_short_secret))?).into())
}

/// Format a Key URI in canonical form.
#[uniffi::export]
pub fn format_otpauth_uri(uri: OtpAuthUri) -> String {
    KeyUri::from(uri).to_uri()
}

/// The current code of an `otpauth://` URI (TOTP at `unix_time`, HOTP at its counter).
#[uniffi::export(default(allow_short_secret = false))]
pub fn otpauth_code(uri: String, unix_time: u64, allow_short_secret: bool) -> Result<String> {
    Ok(KeyUri::parse(&uri, policy(allow_short_secret))?.generate(unix_time)?)
}

/// Persisted verifier state of one credential (store it after every check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct OtpVerifierState {
    /// Last accepted step (TOTP) or counter (HOTP).
    #[uniffi(default = None)]
    pub last_accepted: Option<u64>,
    /// HOTP: next expected counter.
    #[uniffi(default = 0)]
    pub next_counter: u64,
    /// Consecutive failures.
    #[uniffi(default = 0)]
    pub consecutive_failures: u32,
    /// Locked.
    #[uniffi(default = false)]
    pub locked: bool,
    /// End of a timed lock (unix seconds).
    #[uniffi(default = None)]
    pub locked_until: Option<u64>,
}

impl From<OtpVerifierState> for otp::OtpState {
    fn from(s: OtpVerifierState) -> Self {
        otp::OtpState {
            last_accepted: s.last_accepted,
            next_counter: s.next_counter,
            throttle: otp::Throttle {
                consecutive_failures: s.consecutive_failures,
                locked: s.locked,
                locked_until: s.locked_until,
            },
        }
    }
}
impl From<otp::OtpState> for OtpVerifierState {
    fn from(s: otp::OtpState) -> Self {
        OtpVerifierState {
            last_accepted: s.last_accepted,
            next_counter: s.next_counter,
            consecutive_failures: s.throttle.consecutive_failures,
            locked: s.throttle.locked,
            locked_until: s.throttle.locked_until,
        }
    }
}

/// Portal verifier settings.
#[derive(Clone, uniffi::Record)]
pub struct OtpVerifierConfig {
    /// Shared secret.
    pub secret: Vec<u8>,
    /// Hash (default SHA-1).
    #[uniffi(default = None)]
    pub algorithm: Option<OtpAlgorithm>,
    /// Digits.
    #[uniffi(default = 6)]
    pub digits: u8,
    /// TOTP period (ignored for HOTP).
    #[uniffi(default = 30)]
    pub period: u64,
    /// TOTP: ± steps accepted; HOTP: look-ahead counters.
    #[uniffi(default = 1)]
    pub window: u64,
    /// Consecutive failures before lock.
    #[uniffi(default = 5)]
    pub max_failures: u32,
    /// Lock duration in seconds; null = until unlocked.
    #[uniffi(default = None)]
    pub lock_seconds: Option<u64>,
}

/// Outcome of a verification. The `state` must be persisted in every case.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpCheck {
    /// True when the code was accepted.
    pub accepted: bool,
    /// Stable error code when refused (`OTP_MISMATCH`, `OTP_REPLAYED`, `LOCKED_OUT`, `INVALID_INPUT`,
    /// `INVALID_TIME` for a time outside the years 2000..3000, e.g. milliseconds: nothing counted).
    pub error_code: Option<String>,
    /// Matched step or counter.
    pub matched: Option<u64>,
    /// Distance of the match from the expected step/counter.
    pub drift: i64,
    /// New state to persist.
    pub state: OtpVerifierState,
}

fn check(res: tessera_core::Result<otp::Verified>, st: otp::OtpState) -> OtpCheck {
    match res {
        Ok(v) => {
            OtpCheck { accepted: true, error_code: None, matched: Some(v.matched), drift: v.drift, state: st.into() }
        }
        Err(e) => OtpCheck {
            accepted: false,
            error_code: Some(e.code().as_str().to_owned()),
            matched: None,
            drift: 0,
            state: st.into(),
        },
    }
}

fn throttle(c: &OtpVerifierConfig) -> otp::ThrottlePolicy {
    otp::ThrottlePolicy { max_failures: c.max_failures, lock_seconds: c.lock_seconds }
}

fn hotp_verifier(c: &OtpVerifierConfig) -> Result<otp::HotpVerifier> {
    let h = otp::Hotp::new(c.secret.clone(), c.algorithm.unwrap_or(OtpAlgorithm::Sha1).into(), c.digits)?;
    Ok(otp::HotpVerifier::new(h, c.window, throttle(c)))
}

/// Verify a TOTP code at `unix_time`. Throws only for an invalid configuration.
#[uniffi::export]
pub fn totp_verify(
    config: OtpVerifierConfig,
    code: String,
    unix_time: u64,
    state: OtpVerifierState,
) -> Result<OtpCheck> {
    let t = otp::Totp::new(
        config.secret.clone(),
        config.algorithm.unwrap_or(OtpAlgorithm::Sha1).into(),
        config.digits,
        config.period,
        0,
    )?;
    let v = otp::TotpVerifier::new(t, config.window, throttle(&config));
    let mut st: otp::OtpState = state.into();
    let r = v.verify(&mut st, &code, unix_time);
    Ok(check(r, st))
}

/// Verify a HOTP code (look-ahead `window`). Throws only for an invalid configuration.
#[uniffi::export]
pub fn hotp_verify(
    config: OtpVerifierConfig,
    code: String,
    unix_time: u64,
    state: OtpVerifierState,
) -> Result<OtpCheck> {
    let v = hotp_verifier(&config)?;
    let mut st: otp::OtpState = state.into();
    let r = v.verify(&mut st, &code, unix_time);
    Ok(check(r, st))
}

/// Resynchronise a HOTP credential whose device ran ahead (RFC 4226 §7.4):
/// two consecutive codes searched in `search_window` counters (at most 1000)
/// from `state.next_counter`. Throws only for an invalid configuration.
#[uniffi::export]
pub fn hotp_resync(
    config: OtpVerifierConfig,
    code1: String,
    code2: String,
    search_window: u64,
    unix_time: u64,
    state: OtpVerifierState,
) -> Result<OtpCheck> {
    let v = hotp_verifier(&config)?;
    let mut st: otp::OtpState = state.into();
    let r = v.resync(&mut st, &code1, &code2, search_window, unix_time);
    Ok(check(r, st))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TesseraError;

    #[test]
    fn errors_carry_codes() {
        let e = hotp(b"k".to_vec(), 0, 3, OtpAlgorithm::Sha1).unwrap_err();
        assert!(matches!(e, TesseraError::Failure { ref code, .. } if code == "INVALID_DIGITS"));
    }
}

// Hand-written Debug: secrets (keys, PINs) never appear in logs.
impl std::fmt::Debug for OcraParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcraParams")
            .field("counter", &self.counter)
            .field("question", &self.question)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("session", &self.session.as_ref().map(|s| s.len()))
            .field("unix_time", &self.unix_time)
            .finish()
    }
}

impl std::fmt::Debug for OtpAuthUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpAuthUri")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &format_args!("<{} bytes redacted>", self.secret.len()))
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish()
    }
}

impl std::fmt::Debug for OtpVerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpVerifierConfig")
            .field("secret", &format_args!("<{} bytes redacted>", self.secret.len()))
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("window", &self.window)
            .field("max_failures", &self.max_failures)
            .field("lock_seconds", &self.lock_seconds)
            .finish()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let p = OcraParams { password: Some("9876".into()), ..Default::default() };
        assert!(!format!("{p:?}").contains("9876"));
        let u = OtpAuthUri {
            kind: OtpKind::Totp { period: 30 },
            issuer: None,
            account: "a".into(),
            secret: b"topsecretbytes!!".to_vec(),
            algorithm: OtpAlgorithm::Sha1,
            digits: 6,
        };
        assert!(!format!("{u:?}").contains("116"));
        let c = OtpVerifierConfig {
            secret: vec![0xAB; 20],
            algorithm: None,
            digits: 6,
            period: 30,
            window: 1,
            max_failures: 5,
            lock_seconds: None,
        };
        assert!(!format!("{c:?}").contains("171"));
    }
}
