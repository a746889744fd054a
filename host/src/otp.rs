//! OATH one-time passwords: HOTP, TOTP, OCRA, `otpauth://` URIs and the
//! portal-side verifiers with replay protection and lockout.

use crate::rows::count;
use crate::{random_bytes, ErrorCode, Result, TesseraError, Timestamp, Verdict};
use serde::{Deserialize, Serialize};
use tessera_core::otp::{self, Algorithm, KeyUri, OcraInput, OcraSuite, SecretPolicy};
use tessera_core::{encoding, SecretBytes};

/// HMAC hash of an OTP.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtpAlgorithm {
    /// HMAC-SHA1 (the default of authenticator apps).
    #[default]
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

fn unsigned(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| TesseraError::new(ErrorCode::InvalidInput, format!("{what} must not be negative")))
}

/// The longest timed lock (10 years); "until unlocked" is no `lockSeconds`.
pub const MAX_LOCK_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// A timed lock of 1 s to 10 years: 0 would not lock at all, and a lock
/// beyond any clock would not be representable where the state is stored.
fn lock_seconds(v: i64) -> Result<u64> {
    if (1..=MAX_LOCK_SECONDS).contains(&v) {
        Ok(v.unsigned_abs())
    } else {
        Err(TesseraError::new(
            ErrorCode::InvalidInput,
            "lockSeconds must be 1 to 10 years in seconds; leave it out to lock until unlocked",
        ))
    }
}

fn digits(v: i32) -> Result<u8> {
    u8::try_from(v).map_err(|_| TesseraError::new(ErrorCode::InvalidDigits, "digits must be 6 to 10"))
}

/// HOTP (RFC 4226) code for `counter`.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn hotp(secret: Vec<u8>, counter: i64, digits: i32, algorithm: OtpAlgorithm) -> Result<String> {
    let secret = SecretBytes::new(secret);
    Ok(otp::hotp(secret.expose(), unsigned(counter, "the counter")?, self::digits(digits)?, algorithm.into())?)
}

/// TOTP (RFC 6238) code at `time` with `period_seconds` steps from the epoch.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn totp(
    secret: Vec<u8>,
    time: Timestamp,
    period_seconds: i64,
    digits: i32,
    algorithm: OtpAlgorithm,
) -> Result<String> {
    let t =
        otp::Totp::new(secret, algorithm.into(), self::digits(digits)?, unsigned(period_seconds, "the period")?, 0)?;
    Ok(t.generate(time.secs())?)
}

/// Inputs of an OCRA computation; set what the suite declares.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OcraParams {
    /// Counter (suites with `C`).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub counter: Option<i64>,
    /// Question: decimal digits (QN), hex (QH) or text (QA).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub question: Option<String>,
    /// PIN in clear (suites with `P`); hashed as the suite says.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub password: Option<String>,
    /// Session information (suites with `S`).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional, type = "Uint8Array"))]
    #[serde(with = "serde_bytes")]
    pub session: Option<Vec<u8>>,
    /// Time (suites with `T`).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub time: Option<Timestamp>,
}

impl std::fmt::Debug for OcraParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcraParams")
            .field("counter", &self.counter)
            .field("question", &self.question)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("session", &self.session.as_ref().map(|_| "<redacted>"))
            .field("time", &self.time)
            .finish()
    }
}

/// OCRA (RFC 6287) response for `suite` (e.g. `OCRA-1:HOTP-SHA1-6:QN08`).
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn ocra(suite: String, key: Vec<u8>, params: OcraParams) -> Result<String> {
    let key = SecretBytes::new(key);
    let password = params.password.map(zeroize::Zeroizing::new);
    let input = OcraInput {
        counter: params.counter.map(|c| unsigned(c, "the counter")).transpose()?,
        question: params.question.as_deref(),
        password: password.as_deref().map(String::as_str),
        password_hash: None,
        session: params.session.as_deref(),
        time: params.time.map(Timestamp::secs),
    };
    Ok(OcraSuite::parse(&suite)?.compute(key.expose(), &input)?)
}

/// RFC 4648 base32 without padding.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn base32_encode(data: Vec<u8>) -> String {
    encoding::base32_encode(&data)
}

/// Lenient base32 decoding (case, spaces and padding ignored).
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn base32_decode(text: String) -> Result<Vec<u8>> {
    Ok(encoding::base32_decode(&text)?)
}

/// A fresh 160-bit OTP secret.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn new_otp_secret() -> Result<Vec<u8>> {
    Ok(random_bytes::<20>()?.to_vec())
}

/// Kind of an `otpauth://` key.
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum OtpKind {
    /// Counter based.
    Hotp {
        /// Next counter.
        counter: i64,
    },
    /// Time based.
    Totp {
        /// Seconds per step.
        period_seconds: i64,
    },
}

/// A parsed `otpauth://` Key URI.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpAuthUri {
    /// HOTP or TOTP.
    pub kind: OtpKind,
    /// Issuer (service name), if any.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub issuer: Option<String>,
    /// Account name.
    pub account: String,
    /// Shared secret.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub secret: Vec<u8>,
    /// Hash (default SHA-1).
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub algorithm: OtpAlgorithm,
    /// Digits (6..=10, default 6).
    #[serde(default = "six")]
    #[cfg_attr(feature = "uniffi", uniffi(default = 6))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub digits: i32,
}

fn six() -> i32 {
    6
}

impl std::fmt::Debug for OtpAuthUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpAuthUri")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish()
    }
}

impl From<&KeyUri> for OtpAuthUri {
    fn from(k: &KeyUri) -> Self {
        OtpAuthUri {
            kind: match k.kind {
                otp::OtpKind::Hotp { counter } => OtpKind::Hotp { counter: count(counter) },
                otp::OtpKind::Totp { period } => OtpKind::Totp { period_seconds: count(period) },
            },
            issuer: k.issuer.clone(),
            account: k.account.clone(),
            secret: k.secret.expose().to_vec(),
            algorithm: k.algorithm.into(),
            digits: k.digits.into(),
        }
    }
}

impl OtpAuthUri {
    fn to_core(&self) -> Result<KeyUri> {
        Ok(KeyUri {
            kind: match self.kind {
                OtpKind::Hotp { counter } => otp::OtpKind::Hotp { counter: unsigned(counter, "the counter")? },
                OtpKind::Totp { period_seconds } => {
                    otp::OtpKind::Totp { period: unsigned(period_seconds, "the period")? }
                }
            },
            issuer: self.issuer.clone(),
            account: self.account.clone(),
            secret: SecretBytes::new(self.secret.clone()),
            algorithm: self.algorithm.into(),
            digits: digits(self.digits)?,
        })
    }
}

fn secret_policy(allow_short_secret: bool) -> SecretPolicy {
    if allow_short_secret {
        SecretPolicy::AllowShort
    } else {
        SecretPolicy::Strict
    }
}

/// Parse an `otpauth://` URI. Secrets under 128 bits fail with
/// `SECRET_TOO_SHORT` unless `allow_short_secret`.
#[cfg_attr(feature = "uniffi", uniffi::export(default(allow_short_secret = false)))]
pub fn parse_otpauth_uri(uri: String, allow_short_secret: bool) -> Result<OtpAuthUri> {
    Ok((&KeyUri::parse(&uri, secret_policy(allow_short_secret))?).into())
}

/// Format a Key URI in canonical form.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn format_otpauth_uri(uri: OtpAuthUri) -> Result<String> {
    Ok(uri.to_core()?.to_uri())
}

/// The current code of an `otpauth://` URI (TOTP at `time`, HOTP at its counter).
#[cfg_attr(feature = "uniffi", uniffi::export(default(allow_short_secret = false)))]
pub fn otpauth_code(uri: String, time: Timestamp, allow_short_secret: bool) -> Result<String> {
    Ok(KeyUri::parse(&uri, secret_policy(allow_short_secret))?.generate(time.secs())?)
}

/// Settings of a verifier. Left out, each setting takes the one default of
/// every language: SHA-1, 6 digits, 30-second steps, a TOTP window of ±1
/// step, a HOTP look-ahead of 10 counters, a lock after 5 failures until
/// unlocked.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtpVerifierConfig {
    /// Shared secret.
    #[serde(with = "serde_bytes")]
    #[cfg_attr(feature = "wasm", tsify(type = "Uint8Array"))]
    pub secret: Vec<u8>,
    /// Hash (default SHA-1).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub algorithm: Option<OtpAlgorithm>,
    /// Digits (default 6).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub digits: Option<i32>,
    /// TOTP seconds per step (default 30; HOTP ignores it).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub period_seconds: Option<i64>,
    /// TOTP: ± steps accepted (default 1, at most 10). HOTP: look-ahead
    /// counters (default 10, at most 100).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub window: Option<i64>,
    /// Consecutive failures before the verifier locks (default 5).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub max_failures: Option<i32>,
    /// Lock duration in seconds, 1 to 10 years (default: until unlocked).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub lock_seconds: Option<i64>,
}

impl std::fmt::Debug for OtpVerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpVerifierConfig")
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period_seconds", &self.period_seconds)
            .field("window", &self.window)
            .field("max_failures", &self.max_failures)
            .field("lock_seconds", &self.lock_seconds)
            .finish()
    }
}

/// The defaults, defined once for every language.
pub mod defaults {
    /// Digits of a code.
    pub const DIGITS: u8 = 6;
    /// TOTP seconds per step.
    pub const PERIOD_SECONDS: u64 = 30;
    /// TOTP window (± steps).
    pub const TOTP_WINDOW: u64 = tessera_core::otp::TotpVerifier::DEFAULT_WINDOW;
    /// HOTP look-ahead (counters).
    pub const HOTP_LOOK_AHEAD: u64 = tessera_core::otp::HotpVerifier::DEFAULT_LOOK_AHEAD;
}

impl OtpVerifierConfig {
    fn throttle(&self) -> Result<otp::ThrottlePolicy> {
        let d = otp::ThrottlePolicy::default();
        Ok(otp::ThrottlePolicy {
            max_failures: match self.max_failures {
                Some(m) => u32::try_from(m)
                    .map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "maxFailures must not be negative"))?,
                None => d.max_failures,
            },
            lock_seconds: self.lock_seconds.map(lock_seconds).transpose()?,
        })
    }

    fn digits(&self) -> Result<u8> {
        self.digits.map_or(Ok(defaults::DIGITS), digits)
    }

    fn window(&self, default: u64) -> Result<u64> {
        self.window.map_or(Ok(default), |w| unsigned(w, "the window"))
    }

    fn hotp(&self) -> Result<otp::HotpVerifier> {
        let h = otp::Hotp::new(self.secret.clone(), self.algorithm.unwrap_or_default().into(), self.digits()?)?;
        Ok(otp::HotpVerifier::new(h, self.window(defaults::HOTP_LOOK_AHEAD)?, self.throttle()?))
    }

    fn totp(&self) -> Result<otp::TotpVerifier> {
        let period = self.period_seconds.map_or(Ok(defaults::PERIOD_SECONDS), |p| unsigned(p, "the period"))?;
        let t =
            otp::Totp::new(self.secret.clone(), self.algorithm.unwrap_or_default().into(), self.digits()?, period, 0)?;
        Ok(otp::TotpVerifier::new(t, self.window(defaults::TOTP_WINDOW)?, self.throttle()?))
    }
}

/// Persisted verifier state of one credential: store it after every check,
/// accepted or not (with a compare-and-set when several servers verify codes
/// of the same credential). A new credential starts from the default.
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtpVerifierState {
    /// Last accepted step (TOTP) or counter (HOTP).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub last_accepted: Option<i64>,
    /// HOTP: next expected counter.
    pub next_counter: i64,
    /// Consecutive failures.
    pub consecutive_failures: i32,
    /// Locked (until `locked_until`, or until unlocked). Required in every
    /// language (no default): a state that lost its lock fields must not
    /// read as unlocked. A new credential starts from `new_verifier_state`.
    pub locked: bool,
    /// End of a timed lock.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub locked_until: Option<Timestamp>,
}

impl OtpVerifierState {
    /// A HOTP credential whose next counter is `next_counter` (as provisioned).
    pub fn hotp_at(next_counter: i64) -> Self {
        OtpVerifierState { next_counter, ..Default::default() }
    }

    fn to_core(self) -> Result<otp::OtpState> {
        let mut s = otp::OtpState::hotp_at(unsigned(self.next_counter, "nextCounter")?);
        s.last_accepted = self.last_accepted.map(|v| unsigned(v, "lastAccepted")).transpose()?;
        let failures = u32::try_from(self.consecutive_failures)
            .map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "consecutiveFailures must not be negative"))?;
        s.throttle = otp::Throttle::from_parts(failures, self.locked, self.locked_until.map(Timestamp::secs));
        Ok(s)
    }

    fn from_core(s: &otp::OtpState) -> Self {
        let (locked, locked_until) = s.throttle.lock.to_parts();
        OtpVerifierState {
            last_accepted: s.last_accepted.map(count),
            next_counter: count(s.next_counter),
            consecutive_failures: i32::try_from(s.throttle.failures()).unwrap_or(i32::MAX),
            locked,
            locked_until: locked_until.map(Timestamp::from_secs),
        }
    }
}

/// The state of a new credential (TOTP, or HOTP from counter 0); a HOTP
/// credential provisioned at counter N starts with `next_counter` N.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn new_verifier_state() -> OtpVerifierState {
    OtpVerifierState::default()
}

/// The verdict on a code and the state to store (in every case).
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpCheck {
    /// Accepted or refused (`OTP_MISMATCH`, `OTP_REPLAYED`, `LOCKED_OUT`,
    /// `INVALID_INPUT` for a code of the wrong shape). A time outside the
    /// years 2000..3000 is thrown (`INVALID_TIME`, nothing counted).
    pub verdict: Verdict,
    /// Matched step (TOTP) or counter (HOTP).
    #[serde(default)]
    #[cfg_attr(feature = "wasm", tsify(optional))]
    pub matched: Option<i64>,
    /// Signed distance of the match from the expected step or counter.
    pub drift: i64,
    /// New state to store.
    pub state: OtpVerifierState,
}

/// The matched step or counter and the drift of a verification (none and 0
/// when refused); verifiers and device codes report them alike.
pub(crate) fn matched(r: &tessera_core::Result<otp::Verified>) -> (Option<i64>, i64) {
    match r {
        Ok(v) => (Some(count(v.matched)), v.drift),
        Err(_) => (None, 0),
    }
}

fn check(r: tessera_core::Result<otp::Verified>, st: &otp::OtpState) -> Result<OtpCheck> {
    let verdict = Verdict::judged(&r)?;
    let (matched, drift) = matched(&r);
    Ok(OtpCheck { verdict, matched, drift, state: OtpVerifierState::from_core(st) })
}

/// Verify a TOTP code at `time`. Throws only for an invalid configuration or state.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn verify_totp(
    config: OtpVerifierConfig,
    state: OtpVerifierState,
    code: String,
    time: Timestamp,
) -> Result<OtpCheck> {
    let v = config.totp()?;
    let mut st = state.to_core()?;
    let r = v.verify(&mut st, &code, time.secs());
    check(r, &st)
}

/// Verify a HOTP code. Throws only for an invalid configuration or state.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn verify_hotp(
    config: OtpVerifierConfig,
    state: OtpVerifierState,
    code: String,
    time: Timestamp,
) -> Result<OtpCheck> {
    let v = config.hotp()?;
    let mut st = state.to_core()?;
    let r = v.verify(&mut st, &code, time.secs());
    check(r, &st)
}

/// Resynchronise a HOTP credential whose device ran ahead (RFC 4226 §7.4):
/// two consecutive codes searched in `search_window` counters (at most 1000).
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn resync_hotp(
    config: OtpVerifierConfig,
    state: OtpVerifierState,
    code1: String,
    code2: String,
    search_window: i64,
    time: Timestamp,
) -> Result<OtpCheck> {
    let v = config.hotp()?;
    let mut st = state.to_core()?;
    let r = v.resync(&mut st, &code1, &code2, unsigned(search_window, "the search window")?, time.secs());
    check(r, &st)
}

/// Unlock a locked credential (an administrator's decision): the state to store.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn unlock_verifier(state: OtpVerifierState) -> Result<OtpVerifierState> {
    let mut st = state.to_core()?;
    st.unlock();
    Ok(OtpVerifierState::from_core(&st))
}
