#![doc = include_str!("../README.md")]

//! ## Boundary rules (for maintainers)
//!
//! This crate is glue only: every rule lives in `tessera-core`.
//!
//! * Every argument arrives as a [`JsValue`] and is checked here, so a wrong
//!   type, a missing object field, `NaN`, a fraction or a number above
//!   2^53 - 1 becomes a thrown `TesseraError` with code `INVALID_INPUT`, never
//!   a panic, a silent coercion or an engine `TypeError`.
//! * Every `u64` crosses as a JS `number` (no `BigInt`): inputs must be
//!   integers in `0..=Number.MAX_SAFE_INTEGER`.
//! * Every failure is a real JS `Error` with `name = "TesseraError"`,
//!   `message` = the English detail and `code` = the frozen code string of
//!   `docs/ERRORS.md`.

use js_sys::{Object, Reflect, Uint8Array};
use tessera_core::otp::Algorithm;
use tessera_core::{ErrorCode, SecretBytes};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

mod link;
mod otp;
pub use link::*;
pub use otp::*;

// TypeScript declarations of the object types, appended to the generated
// `.d.ts` (the exports below name them in their signatures). The error code
// union is checked against `errorCodes()` by test/api.test.mjs.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** HMAC hash of an OTP. Inputs are case-insensitive ("SHA-256" works); outputs are always lower-case. */
export type OtpAlgorithm = "sha1" | "sha256" | "sha512";

/** Every stable error code (docs/ERRORS.md); also returned by `errorCodes()`. */
export type TesseraErrorCode =
  | "INVALID_INPUT" | "INVALID_SECRET" | "SECRET_TOO_SHORT" | "INVALID_DIGITS"
  | "INVALID_ALGORITHM" | "INVALID_TIME" | "INVALID_URI" | "INVALID_OCRA_SUITE"
  | "INVALID_OCRA_INPUT" | "OTP_MISMATCH" | "OTP_REPLAYED" | "LOCKED_OUT"
  | "MALFORMED_MESSAGE" | "WRONG_MESSAGE_KIND" | "UNSUPPORTED_VERSION"
  | "MESSAGE_TAMPERED" | "STATE_CORRUPT" | "TOKEN_EXPIRED" | "TOKEN_ALREADY_USED"
  | "TOKEN_UNKNOWN" | "PASSCODE_POLICY" | "WEAK_PASSCODE" | "DEVICE_ALREADY_LINKED"
  | "DEVICE_NOT_LINKED" | "DEVICE_REVOKED" | "DEVICE_UNKNOWN" | "CHECK_CODE_MISMATCH"
  | "WRONG_ACCOUNT" | "INVALID_STATE" | "ALREADY_CONSUMED" | "STORAGE" | "INTERNAL"
  | "LINK_NOT_CONFIRMED";

/**
 * What every Tessera function throws: a plain `Error` with a stable `code`.
 * `message` is an English detail without secrets.
 *
 * ```ts
 * try { hotp(secret, 0, 3) } catch (e) { if ((e as TesseraError).code === "INVALID_DIGITS") ... }
 * ```
 */
export interface TesseraError extends Error {
  name: "TesseraError";
  code: TesseraErrorCode;
}

/** Inputs of an OCRA computation (RFC 6287); set what the suite declares. */
export interface OcraParams {
  /** Counter (suites with `C`). */
  counter?: number;
  /** Question: decimal digits (QN), hex (QH) or text (QA). */
  question?: string;
  /** PIN in clear (suites with `P`); hashed as the suite says. */
  password?: string;
  /** Session information (suites with `S`). */
  session?: Uint8Array;
  /** Unix seconds (suites with `T`). */
  time?: number;
}

/** A parsed `otpauth://` Key URI. */
export interface OtpAuthUri {
  type: "hotp" | "totp";
  /** HOTP only: the next counter (required for HOTP). */
  counter?: number;
  /** TOTP only: seconds per step (default 30). */
  period?: number;
  /** Provider or service, if known. */
  issuer?: string;
  /** Account name. */
  account: string;
  /** Shared secret (raw bytes). */
  secret: Uint8Array;
  algorithm: OtpAlgorithm;
  /** 6..=10. */
  digits: number;
}

/** Input of `formatOtpauthUri`: algorithm ("sha1"), digits (6) and a TOTP period (30) may be left out. */
export type OtpAuthUriInit = Omit<OtpAuthUri, "algorithm" | "digits"> & { algorithm?: OtpAlgorithm; digits?: number };

/** Portal verifier settings. */
export interface OtpVerifierConfig {
  /** Shared secret. */
  secret: Uint8Array;
  /** Default "sha1". */
  algorithm?: OtpAlgorithm;
  /** Default 6. */
  digits?: number;
  /** TOTP period in seconds, default 30 (ignored by HOTP). */
  period?: number;
  /** TOTP: ± steps accepted (default 1, at most 10). HOTP: look-ahead counters (default 10, at most 100). */
  window?: number;
  /** Consecutive failures before the verifier locks (default 5). */
  maxFailures?: number;
  /** Lock duration in seconds; absent or null = locked until an administrator resets the state. */
  lockSeconds?: number | null;
}

/**
 * Persisted verifier state of one credential. Plain JSON: store it after
 * **every** verification, accepted or not (with a compare-and-set when
 * several servers verify codes of the same credential).
 */
export interface OtpVerifierState {
  /** Last accepted step (TOTP) or counter (HOTP). */
  lastAccepted?: number | null;
  /** HOTP: next expected counter (0 for TOTP). */
  nextCounter: number;
  /** Consecutive failures since the last success. */
  consecutiveFailures: number;
  /** Locked (until `lockedUntil`, or for good). */
  locked: boolean;
  /** End of a timed lock (unix seconds). */
  lockedUntil?: number | null;
}

/** Outcome of a verification. Persist `state` in every case. */
export interface OtpCheck {
  accepted: boolean;
  /** Why the code was refused: "OTP_MISMATCH", "OTP_REPLAYED", "LOCKED_OUT", "INVALID_INPUT" (wrong shape), "INVALID_TIME" (time not in unix seconds of the years 2000..3000; nothing counted). */
  errorCode?: TesseraErrorCode;
  /** Matched time step (TOTP) or counter (HOTP). */
  matched?: number;
  /** Signed distance of the match from the expected step/counter (0 when refused). */
  drift: number;
  /** The new state to persist. */
  state: OtpVerifierState;
}
"#;

/// Result of every export: the error is the thrown JS value.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// `Number.MAX_SAFE_INTEGER`.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The thrown value: a real `Error` named `TesseraError` with a `code`.
pub(crate) fn js_error(code: ErrorCode, detail: &str) -> JsValue {
    let e = js_sys::Error::new(detail);
    e.set_name("TesseraError");
    set(&e, "code", code.as_str());
    e.into()
}

/// `map_err` adapter for core results.
pub(crate) fn thrown(e: tessera_core::Error) -> JsValue {
    js_error(e.code(), e.detail())
}

/// An `INVALID_INPUT` error.
pub(crate) fn invalid(detail: &str) -> JsValue {
    js_error(ErrorCode::InvalidInput, detail)
}

/// Set a property on a fresh object (cannot fail on plain objects).
pub(crate) fn set(obj: &JsValue, key: &str, value: impl Into<JsValue>) {
    // Only ever called on objects created here; nothing to report.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// A new plain object.
pub(crate) fn new_object() -> JsValue {
    Object::new().into()
}

/// `undefined` and `null` both mean "not given".
pub(crate) fn given(v: Option<JsValue>) -> Option<JsValue> {
    v.filter(|v| !v.is_undefined() && !v.is_null())
}

/// A JS object argument (`params`, `config`, `state`, ...), named in errors.
pub(crate) struct JsObject<'a> {
    value: &'a JsValue,
    name: &'static str,
}

impl<'a> JsObject<'a> {
    /// Check that `value` is an object.
    pub(crate) fn new(value: &'a JsValue, name: &'static str) -> JsResult<Self> {
        if value.is_object() {
            Ok(JsObject { value, name })
        } else {
            Err(invalid(&format!("{name} must be an object")))
        }
    }

    /// `name.key`, for error details.
    pub(crate) fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    /// An optional field (`undefined`/`null` → `None`). A throwing getter or
    /// proxy becomes `INVALID_INPUT`.
    pub(crate) fn get(&self, key: &str) -> JsResult<Option<JsValue>> {
        let v = Reflect::get(self.value, &JsValue::from_str(key))
            .map_err(|_| invalid(&format!("{} could not be read", self.path(key))))?;
        Ok(given(Some(v)))
    }

    /// A required field.
    pub(crate) fn require(&self, key: &str) -> JsResult<JsValue> {
        self.get(key)?.ok_or_else(|| invalid(&format!("{} is missing", self.path(key))))
    }

    /// An optional integer field.
    pub(crate) fn get_u64(&self, key: &str) -> JsResult<Option<u64>> {
        self.get(key)?.map(|v| to_u64(&v, &self.path(key))).transpose()
    }

    /// An optional string field.
    pub(crate) fn get_string(&self, key: &str) -> JsResult<Option<String>> {
        self.get(key)?.map(|v| to_string(&v, &self.path(key))).transpose()
    }

    /// An optional `Uint8Array` field.
    pub(crate) fn get_bytes(&self, key: &str) -> JsResult<Option<SecretBytes>> {
        self.get(key)?.map(|v| to_bytes(&v, &self.path(key))).transpose()
    }
}

/// A JS number that must be an integer in `0..=2^53-1`.
pub(crate) fn to_u64(v: &JsValue, what: &str) -> JsResult<u64> {
    match v.as_f64() {
        Some(f) if f.is_finite() && f.trunc() == f && (0.0..=MAX_SAFE_INTEGER as f64).contains(&f) => Ok(f as u64),
        Some(_) => Err(invalid(&format!("{what} must be an integer between 0 and 2^53-1"))),
        None => Err(invalid(&format!("{what} must be a number"))),
    }
}

/// A JS number that must be an integer in `0..=2^32-1`.
pub(crate) fn to_u32(v: &JsValue, what: &str) -> JsResult<u32> {
    u32::try_from(to_u64(v, what)?).map_err(|_| invalid(&format!("{what} must be at most 4294967295")))
}

/// A digit count: a valid number, but any out-of-range value is left for the
/// core to refuse with `INVALID_DIGITS`.
pub(crate) fn to_digits(v: Option<JsValue>, default: u8) -> JsResult<u8> {
    match given(v) {
        None => Ok(default),
        Some(v) => Ok(u8::try_from(to_u64(&v, "digits")?).unwrap_or(u8::MAX)),
    }
}

/// A `u64` going out as a JS number; refuses what a double cannot hold exactly.
pub(crate) fn from_u64(n: u64, what: &str) -> JsResult<f64> {
    if n <= MAX_SAFE_INTEGER {
        Ok(n as f64)
    } else {
        Err(invalid(&format!("{what} is above 2^53-1 and cannot be represented in JavaScript")))
    }
}

/// A JS string.
pub(crate) fn to_string(v: &JsValue, what: &str) -> JsResult<String> {
    v.as_string().ok_or_else(|| invalid(&format!("{what} must be a string")))
}

/// An optional JS boolean (`undefined`/`null` → `default`).
pub(crate) fn to_bool(v: Option<JsValue>, what: &str, default: bool) -> JsResult<bool> {
    match given(v) {
        None => Ok(default),
        Some(v) => v.as_bool().ok_or_else(|| invalid(&format!("{what} must be a boolean"))),
    }
}

/// A `Uint8Array` (a Node `Buffer` is one), copied into a zeroizing buffer.
pub(crate) fn to_bytes(v: &JsValue, what: &str) -> JsResult<SecretBytes> {
    v.dyn_ref::<Uint8Array>()
        .map(|a| SecretBytes::new(a.to_vec()))
        .ok_or_else(|| invalid(&format!("{what} must be a Uint8Array")))
}

/// An optional algorithm name (default SHA-1), case-insensitive.
pub(crate) fn to_algorithm(v: Option<JsValue>) -> JsResult<Algorithm> {
    match given(v) {
        None => Ok(Algorithm::Sha1),
        Some(v) => Algorithm::parse(&to_string(&v, "algorithm")?).map_err(thrown),
    }
}

/// The lower-case JS name of an algorithm.
pub(crate) fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

/// Every stable error code, in table order (docs/ERRORS.md).
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "TesseraErrorCode[]")]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}
