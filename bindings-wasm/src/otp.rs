//! OTP engine: HOTP, TOTP, OCRA, base32, `otpauth://` URIs and the portal
//! verifier. Mirrors `ffi/src/otp.rs` (Kotlin/Swift) with JS naming.

use crate::{
    algorithm_name, from_u64, given, invalid, js_error, new_object, set, thrown, to_algorithm, to_bool, to_bytes,
    to_digits, to_string, to_u32, to_u64, JsObject, JsResult, MAX_SAFE_INTEGER,
};
use js_sys::Uint8Array;
use tessera_core::otp::{self, KeyUri, OcraInput, OcraSuite, OtpKind, SecretPolicy};
use tessera_core::{encoding, ErrorCode, SecretBytes};
use wasm_bindgen::prelude::*;

const DEFAULT_DIGITS: u8 = 6;
const DEFAULT_PERIOD: u64 = 30;

fn opt_u64(v: Option<JsValue>, what: &str, default: u64) -> JsResult<u64> {
    match given(v) {
        None => Ok(default),
        Some(v) => to_u64(&v, what),
    }
}

/// HOTP (RFC 4226) code of `secret` at `counter`.
///
/// `digits` 6..=10 (default 6); `algorithm` default `"sha1"`.
/// @throws {TesseraError} `INVALID_DIGITS`, `INVALID_ALGORITHM`, `INVALID_INPUT`.
#[wasm_bindgen]
pub fn hotp(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] counter: &JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "number")] digits: Option<JsValue>,
    #[wasm_bindgen(unchecked_optional_param_type = "OtpAlgorithm")] algorithm: Option<JsValue>,
) -> JsResult<String> {
    let secret = to_bytes(secret, "secret")?;
    let counter = to_u64(counter, "counter")?;
    let digits = to_digits(digits, DEFAULT_DIGITS)?;
    let algorithm = to_algorithm(algorithm)?;
    otp::hotp(secret.expose(), counter, digits, algorithm).map_err(thrown)
}

/// TOTP (RFC 6238, T0 = 0) code of `secret` at unix time `time` (seconds).
///
/// `period` seconds (default 30), `digits` 6..=10 (default 6), `algorithm`
/// default `"sha1"`.
/// @throws {TesseraError} `INVALID_TIME` (period 0), `INVALID_DIGITS`, `INVALID_ALGORITHM`, `INVALID_INPUT`.
#[wasm_bindgen]
pub fn totp(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] secret: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] time: &JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "number")] period: Option<JsValue>,
    #[wasm_bindgen(unchecked_optional_param_type = "number")] digits: Option<JsValue>,
    #[wasm_bindgen(unchecked_optional_param_type = "OtpAlgorithm")] algorithm: Option<JsValue>,
) -> JsResult<String> {
    let secret = to_bytes(secret, "secret")?;
    let time = to_u64(time, "time")?;
    let period = opt_u64(period, "period", DEFAULT_PERIOD)?;
    let digits = to_digits(digits, DEFAULT_DIGITS)?;
    let algorithm = to_algorithm(algorithm)?;
    let t = otp::Totp::new(secret.expose().to_vec(), algorithm, digits, period, 0).map_err(thrown)?;
    t.generate(time).map_err(thrown)
}

/// OCRA (RFC 6287) response for `suite` (e.g. `"OCRA-1:HOTP-SHA1-6:QN08"`).
///
/// @throws {TesseraError} `INVALID_OCRA_SUITE`, `INVALID_OCRA_INPUT`, `INVALID_INPUT`.
#[wasm_bindgen]
pub fn ocra(
    #[wasm_bindgen(unchecked_param_type = "string")] suite: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] key: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "OcraParams")] params: &JsValue,
) -> JsResult<String> {
    let suite = to_string(suite, "suite")?;
    let key = to_bytes(key, "key")?;
    let params = JsObject::new(params, "params")?;
    let counter = params.get_u64("counter")?;
    let question = params.get_string("question")?;
    let password = params.get_string("password")?;
    let session = params.get_bytes("session")?;
    let time = params.get_u64("time")?;
    let suite = OcraSuite::parse(&suite).map_err(thrown)?;
    let input = OcraInput {
        counter,
        question: question.as_deref(),
        password: password.as_deref(),
        password_hash: None,
        session: session.as_ref().map(SecretBytes::expose),
        time,
    };
    suite.compute(key.expose(), &input).map_err(thrown)
}

/// RFC 4648 base32, upper-case, without padding.
/// @throws {TesseraError} `INVALID_INPUT` when `bytes` is not a Uint8Array.
#[wasm_bindgen(js_name = base32Encode)]
pub fn base32_encode(#[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: &JsValue) -> JsResult<String> {
    Ok(encoding::base32_encode(to_bytes(bytes, "bytes")?.expose()))
}

/// Lenient base32 decode: case, spaces, hyphens and `=` padding are ignored.
/// @throws {TesseraError} `INVALID_SECRET` for other characters or an impossible length.
#[wasm_bindgen(js_name = base32Decode)]
pub fn base32_decode(#[wasm_bindgen(unchecked_param_type = "string")] text: &JsValue) -> JsResult<Uint8Array> {
    let text = to_string(text, "text")?;
    let bytes = SecretBytes::new(encoding::base32_decode(&text).map_err(thrown)?);
    Ok(Uint8Array::from(bytes.expose()))
}

/// A fresh 160-bit OTP secret from the platform CSPRNG (`crypto.getRandomValues`).
/// @throws {TesseraError} `INTERNAL` when no CSPRNG is available.
#[wasm_bindgen(js_name = newOtpSecret)]
pub fn new_otp_secret() -> JsResult<Uint8Array> {
    let mut b = [0u8; 20];
    getrandom::fill(&mut b).map_err(|_| js_error(ErrorCode::Internal, "the system random generator failed"))?;
    let out = Uint8Array::from(&b[..]);
    b.fill(0);
    Ok(out)
}

fn policy(allow_short_secret: Option<JsValue>) -> JsResult<SecretPolicy> {
    Ok(if to_bool(allow_short_secret, "allowShortSecret", false)? {
        SecretPolicy::AllowShort
    } else {
        SecretPolicy::Strict
    })
}

fn key_uri_to_js(k: &KeyUri) -> JsResult<JsValue> {
    let o = new_object();
    match k.kind {
        OtpKind::Hotp { counter } => {
            set(&o, "type", "hotp");
            set(&o, "counter", from_u64(counter, "counter")?);
        }
        OtpKind::Totp { period } => {
            set(&o, "type", "totp");
            set(&o, "period", from_u64(period, "period")?);
        }
    }
    if let Some(issuer) = &k.issuer {
        set(&o, "issuer", issuer.as_str());
    }
    set(&o, "account", k.account.as_str());
    set(&o, "secret", Uint8Array::from(k.secret.expose()));
    set(&o, "algorithm", algorithm_name(k.algorithm));
    set(&o, "digits", k.digits);
    Ok(o)
}

fn key_uri_from_js(v: &JsValue) -> JsResult<KeyUri> {
    let v = JsObject::new(v, "uri")?;
    let kind = match to_string(&v.require("type")?, &v.path("type"))?.as_str() {
        "hotp" => OtpKind::Hotp { counter: to_u64(&v.require("counter")?, &v.path("counter"))? },
        "totp" => OtpKind::Totp { period: v.get_u64("period")?.unwrap_or(DEFAULT_PERIOD) },
        _ => return Err(invalid("uri.type must be \"hotp\" or \"totp\"")),
    };
    Ok(KeyUri {
        kind,
        issuer: v.get_string("issuer")?,
        account: to_string(&v.require("account")?, &v.path("account"))?,
        secret: to_bytes(&v.require("secret")?, &v.path("secret"))?,
        algorithm: to_algorithm(v.get("algorithm")?)?,
        digits: to_digits(v.get("digits")?, DEFAULT_DIGITS)?,
    })
}

/// Parse an `otpauth://` Key URI. Secrets under 128 bits fail with
/// `SECRET_TOO_SHORT` unless `allowShortSecret` is true.
/// @throws {TesseraError} `INVALID_URI`, `INVALID_SECRET`, `SECRET_TOO_SHORT`, `INVALID_ALGORITHM`, `INVALID_DIGITS`, `INVALID_TIME`.
#[wasm_bindgen(js_name = parseOtpauthUri, unchecked_return_type = "OtpAuthUri")]
pub fn parse_otpauth_uri(
    #[wasm_bindgen(unchecked_param_type = "string")] uri: &JsValue,
    #[wasm_bindgen(js_name = allowShortSecret, unchecked_optional_param_type = "boolean")] allow_short_secret: Option<
        JsValue,
    >,
) -> JsResult<JsValue> {
    let uri = to_string(uri, "uri")?;
    let policy = policy(allow_short_secret)?;
    key_uri_to_js(&KeyUri::parse(&uri, policy).map_err(thrown)?)
}

/// Format a Key URI in canonical form. The result is checked to parse back,
/// so an object that no authenticator could read (digits 4, period 0, empty
/// account or secret, ...) throws instead of yielding a broken QR code.
/// @throws {TesseraError} `INVALID_INPUT` and the errors of `parseOtpauthUri`.
#[wasm_bindgen(js_name = formatOtpauthUri)]
pub fn format_otpauth_uri(#[wasm_bindgen(unchecked_param_type = "OtpAuthUriInit")] uri: &JsValue) -> JsResult<String> {
    let text = key_uri_from_js(uri)?.to_uri();
    KeyUri::parse(&text, SecretPolicy::AllowShort).map_err(thrown)?;
    Ok(text)
}

/// The current code of an `otpauth://` URI: TOTP at unix `time`, HOTP at the
/// URI's counter (`time` ignored).
/// @throws {TesseraError} the errors of `parseOtpauthUri`.
#[wasm_bindgen(js_name = otpauthCode)]
pub fn otpauth_code(
    #[wasm_bindgen(unchecked_param_type = "string")] uri: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] time: &JsValue,
    #[wasm_bindgen(js_name = allowShortSecret, unchecked_optional_param_type = "boolean")] allow_short_secret: Option<
        JsValue,
    >,
) -> JsResult<String> {
    let uri = to_string(uri, "uri")?;
    let time = to_u64(time, "time")?;
    let policy = policy(allow_short_secret)?;
    KeyUri::parse(&uri, policy).map_err(thrown)?.generate(time).map_err(thrown)
}

/// Verifier settings read from the JS config object.
struct Config {
    secret: SecretBytes,
    algorithm: otp::Algorithm,
    digits: u8,
    period: u64,
    window: u64,
    policy: otp::ThrottlePolicy,
}

impl Config {
    fn from_js(v: &JsValue, default_window: u64) -> JsResult<Config> {
        let v = JsObject::new(v, "config")?;
        Ok(Config {
            secret: to_bytes(&v.require("secret")?, &v.path("secret"))?,
            algorithm: to_algorithm(v.get("algorithm")?)?,
            digits: to_digits(v.get("digits")?, DEFAULT_DIGITS)?,
            period: v.get_u64("period")?.unwrap_or(DEFAULT_PERIOD),
            window: v.get_u64("window")?.unwrap_or(default_window),
            policy: otp::ThrottlePolicy {
                max_failures: match v.get("maxFailures")? {
                    Some(n) => to_u32(&n, &v.path("maxFailures"))?,
                    None => otp::ThrottlePolicy::default().max_failures,
                },
                lock_seconds: v.get_u64("lockSeconds")?,
            },
        })
    }
}

/// A stored state. Every field but the two optional ones is required: a
/// state that lost `locked` or `consecutiveFailures` must not silently
/// become an unlocked one.
fn state_from_js(v: Option<JsValue>) -> JsResult<otp::OtpState> {
    let Some(v) = given(v) else {
        return Ok(otp::OtpState::default());
    };
    let v = JsObject::new(&v, "state")?;
    Ok(otp::OtpState {
        last_accepted: v.get_u64("lastAccepted")?,
        next_counter: to_u64(&v.require("nextCounter")?, &v.path("nextCounter"))?,
        throttle: otp::Throttle {
            consecutive_failures: to_u32(&v.require("consecutiveFailures")?, &v.path("consecutiveFailures"))?,
            locked: v.require("locked")?.as_bool().ok_or_else(|| invalid("state.locked must be a boolean"))?,
            locked_until: v.get_u64("lockedUntil")?,
        },
    })
}

fn state_to_js(s: &otp::OtpState) -> JsResult<JsValue> {
    let o = new_object();
    if let Some(last) = s.last_accepted {
        set(&o, "lastAccepted", from_u64(last, "lastAccepted")?);
    }
    set(&o, "nextCounter", from_u64(s.next_counter, "nextCounter")?);
    set(&o, "consecutiveFailures", s.throttle.consecutive_failures);
    set(&o, "locked", s.throttle.locked);
    if let Some(until) = s.throttle.locked_until {
        // `now + lockSeconds` may pass 2^53-1; such a lock is "for ever" anyway.
        set(&o, "lockedUntil", until.min(MAX_SAFE_INTEGER) as f64);
    }
    Ok(o)
}

fn check_to_js(res: tessera_core::Result<otp::Verified>, st: &otp::OtpState) -> JsResult<JsValue> {
    let o = new_object();
    match res {
        Ok(v) => {
            set(&o, "accepted", true);
            set(&o, "matched", from_u64(v.matched, "matched")?);
            set(&o, "drift", v.drift as f64);
        }
        Err(e) => {
            set(&o, "accepted", false);
            set(&o, "errorCode", e.code().as_str());
            set(&o, "drift", 0);
        }
    }
    set(&o, "state", state_to_js(st)?);
    Ok(o)
}

/// Verify a TOTP code at unix `time` with a ±`window` step look-around
/// (default 1), replay refusal and lock-out. Refusals are reported in the
/// result (`accepted: false`, `errorCode`), not thrown; persist `state` in
/// every case. `time` is in seconds (`Date.now() / 1000 | 0`): a time
/// outside the years 2000..3000, such as milliseconds, is refused with
/// `INVALID_TIME` and counts no failure.
/// @throws {TesseraError} only for an invalid configuration or argument.
#[wasm_bindgen(js_name = totpVerify, unchecked_return_type = "OtpCheck")]
pub fn totp_verify(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] time: &JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "OtpVerifierState")] state: Option<JsValue>,
) -> JsResult<JsValue> {
    let c = Config::from_js(config, otp::TotpVerifier::DEFAULT_WINDOW)?;
    let code = to_string(code, "code")?;
    let time = to_u64(time, "time")?;
    let mut st = state_from_js(state)?;
    let t = otp::Totp::new(c.secret.expose().to_vec(), c.algorithm, c.digits, c.period, 0).map_err(thrown)?;
    let v = otp::TotpVerifier::new(t, c.window, c.policy);
    let res = v.verify(&mut st, &code, time);
    check_to_js(res, &st)
}

/// Verify a HOTP code with a look-ahead of `window` counters (default 10)
/// from `state.nextCounter`; `time` is only used for timed locks, but must be
/// unix seconds in the years 2000..3000 (else `INVALID_TIME`, nothing
/// counted). Counters end at 2^53-1: once it is accepted the credential is
/// spent (a replay is `OTP_REPLAYED`). Refusals are reported in the result,
/// not thrown; persist `state` in every case.
/// @throws {TesseraError} only for an invalid configuration or argument.
#[wasm_bindgen(js_name = hotpVerify, unchecked_return_type = "OtpCheck")]
pub fn hotp_verify(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] time: &JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "OtpVerifierState")] state: Option<JsValue>,
) -> JsResult<JsValue> {
    let c = Config::from_js(config, otp::HotpVerifier::DEFAULT_LOOK_AHEAD)?;
    let code = to_string(code, "code")?;
    let time = to_u64(time, "time")?;
    let mut st = state_from_js(state)?;
    let h = otp::Hotp::new(c.secret.expose().to_vec(), c.algorithm, c.digits).map_err(thrown)?;
    let v = otp::HotpVerifier::new(h, c.window, c.policy).with_last_counter(MAX_SAFE_INTEGER);
    let res = v.verify(&mut st, &code, time);
    check_to_js(res, &st)
}

/// Resynchronise a HOTP credential whose device ran ahead (RFC 4226 §7.4):
/// the user types two consecutive codes, searched in `searchWindow` counters
/// (at most 1000) from `state.nextCounter`. Refusals are reported in the
/// result; persist `state` in every case.
/// @throws {TesseraError} only for an invalid configuration or argument.
#[wasm_bindgen(js_name = hotpResync, unchecked_return_type = "OtpCheck")]
pub fn hotp_resync(
    #[wasm_bindgen(unchecked_param_type = "OtpVerifierConfig")] config: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code1: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] code2: &JsValue,
    #[wasm_bindgen(js_name = searchWindow, unchecked_param_type = "number")] search_window: &JsValue,
    #[wasm_bindgen(unchecked_param_type = "number")] time: &JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "OtpVerifierState")] state: Option<JsValue>,
) -> JsResult<JsValue> {
    let c = Config::from_js(config, otp::HotpVerifier::DEFAULT_LOOK_AHEAD)?;
    let (code1, code2) = (to_string(code1, "code1")?, to_string(code2, "code2")?);
    let search_window = to_u64(search_window, "searchWindow")?;
    let time = to_u64(time, "time")?;
    let mut st = state_from_js(state)?;
    let h = otp::Hotp::new(c.secret.expose().to_vec(), c.algorithm, c.digits).map_err(thrown)?;
    let v = otp::HotpVerifier::new(h, c.window, c.policy).with_last_counter(MAX_SAFE_INTEGER);
    let res = v.resync(&mut st, &code1, &code2, search_window, time);
    check_to_js(res, &st)
}
