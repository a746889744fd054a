//! OCRA, the OATH Challenge-Response Algorithm (RFC 6287).
//!
//! An OCRA suite such as `OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1` names the HMAC
//! hash, the truncation and which inputs go into the `DataInput`:
//!
//! ```text
//! OCRA-1:HOTP-<SHA1|SHA256|SHA512>-<0|4..10>:[C-]Q<A|N|H><04..64>[-P<SHA1|SHA256|SHA512>][-Snnn][-T<1-59S|1-59M|1-48H>]
//! ```
//!
//! The `DataInput` parts must appear in that fixed order, each at most once.
//! Truncation `0` means "no truncation": the response is the full HMAC as
//! lower-case hex.
//!
//! ```
//! use tessera_core::otp::ocra::{OcraInput, OcraSuite};
//! let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08").unwrap();
//! let input = OcraInput { question: Some("11111111"), ..OcraInput::default() };
//! assert_eq!(suite.compute(b"12345678901234567890", &input).unwrap(), "243178");
//! ```
//!
//! Mutual challenge-response (RFC 6287 §7.3) concatenates the client and
//! server challenges into one question; see [`mutual_server_question`] and
//! [`mutual_client_question`]. Because of this a question may be up to
//! **twice** the length the suite declares (`QA08` accepts up to 16
//! characters): the RFC's own mutual-mode vectors use `QA08` with 16
//! character questions.

use super::{format_code, hmac, truncate, Algorithm};
use crate::encoding::hex_encode;
use crate::error::{err, Error, ErrorCode, Result};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Size of the question field of the `DataInput` (RFC 6287 §5.1).
const QUESTION_FIELD_LEN: usize = 128;

/// Every suite used by the test vectors of RFC 6287 Appendix C.
pub const RFC6287_SUITES: &[&str] = &[
    "OCRA-1:HOTP-SHA1-6:QN08",
    "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
    "OCRA-1:HOTP-SHA256-8:QN08-PSHA1",
    "OCRA-1:HOTP-SHA512-8:C-QN08",
    "OCRA-1:HOTP-SHA512-8:QN08-T1M",
    "OCRA-1:HOTP-SHA256-8:QA08",
    "OCRA-1:HOTP-SHA512-8:QA08",
    "OCRA-1:HOTP-SHA512-8:QA08-PSHA1",
    "OCRA-1:HOTP-SHA512-8:QA10-T1M",
];

/// How the challenge question of a suite is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuestionFormat {
    /// `QA`: printable ASCII text, used as its bytes.
    Alphanumeric,
    /// `QN`: decimal digits, used as the bytes of the number's hex value.
    Numeric,
    /// `QH`: hex digits, used as the bytes they spell.
    Hex,
}

/// A parsed OCRA suite (RFC 6287 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcraSuite {
    text: String,
    algorithm: Algorithm,
    digits: u8,
    counter: bool,
    question_format: QuestionFormat,
    question_max_len: u8,
    pin_algorithm: Option<Algorithm>,
    session_len: Option<u16>,
    time_step_seconds: Option<u64>,
}

/// The inputs of one OCRA computation. Give exactly the inputs the suite
/// declares; anything missing or extra is an `INVALID_OCRA_INPUT` error.
///
/// `Debug` redacts the PIN and its hash.
#[derive(Clone, Copy, Default)]
pub struct OcraInput<'a> {
    /// The counter `C` (suites with `C`).
    pub counter: Option<u64>,
    /// The challenge, written as the suite says: decimal digits for `QN`,
    /// hex digits for `QH`, printable ASCII for `QA`.
    pub question: Option<&'a str>,
    /// The PIN in clear; it is hashed with the suite's `P` hash.
    pub password: Option<&'a str>,
    /// Alternative to `password`: the already hashed PIN (its length must be
    /// the output size of the suite's `P` hash).
    pub password_hash: Option<&'a [u8]>,
    /// Session information; its length must equal the suite's `Snnn`.
    pub session: Option<&'a [u8]>,
    /// Unix time in **seconds**; converted to the suite's time step
    /// (`floor(time / step_seconds)`).
    pub time: Option<u64>,
}

impl fmt::Debug for OcraInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { Some("<redacted>") } else { None };
        f.debug_struct("OcraInput")
            .field("counter", &self.counter)
            .field("question", &self.question)
            .field("password", &redacted(self.password.is_some()))
            .field("password_hash", &redacted(self.password_hash.is_some()))
            .field("session_len", &self.session.map(<[u8]>::len))
            .field("time", &self.time)
            .finish()
    }
}

const fn bad_suite(detail: &'static str) -> Error {
    err(ErrorCode::InvalidOcraSuite, detail)
}

const fn bad_input(detail: &'static str) -> Error {
    err(ErrorCode::InvalidOcraInput, detail)
}

/// A decimal number made only of ASCII digits (no sign, no spaces), at
/// most `max_len` digits long.
fn parse_decimal(s: &str, max_len: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| acc.checked_mul(10)?.checked_add(u64::from(c - b'0')))
}

/// The hash names allowed in the crypto function and the `P` part.
fn parse_hash(name: &str) -> Option<Algorithm> {
    match name {
        "SHA1" => Some(Algorithm::Sha1),
        "SHA256" => Some(Algorithm::Sha256),
        "SHA512" => Some(Algorithm::Sha512),
        _ => None,
    }
}

/// Plain hash (not HMAC) of the PIN for the `P` part.
fn hash(alg: Algorithm, data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match alg {
        Algorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        Algorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Algorithm::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

/// Pack nibbles into bytes; an odd count is right-padded with a zero nibble.
fn pack_nibbles(nibbles: &[u8]) -> Vec<u8> {
    nibbles.chunks(2).map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0)).collect()
}

/// Decimal digits → the nibbles of the number's hexadecimal value, most
/// significant first, without leading zeros ("0" for zero). Schoolbook
/// base conversion: for each decimal digit, `n = n * 10 + d` on a base-16
/// little-endian vector.
fn decimal_to_hex_nibbles(digits: &[u8]) -> Vec<u8> {
    let mut le: Vec<u8> = Vec::with_capacity(digits.len());
    for &d in digits {
        let mut carry = u32::from(d - b'0');
        for n in le.iter_mut() {
            let v = u32::from(*n) * 10 + carry;
            *n = (v & 0x0f) as u8;
            carry = v >> 4;
        }
        while carry > 0 {
            le.push((carry & 0x0f) as u8);
            carry >>= 4;
        }
    }
    if le.is_empty() {
        le.push(0);
    }
    le.reverse();
    le
}

impl OcraSuite {
    /// Parse an OCRA suite string (RFC 6287 §6). Errors are
    /// `INVALID_OCRA_SUITE` with a detail naming the faulty part.
    pub fn parse(suite: &str) -> Result<OcraSuite> {
        let mut parts = suite.split(':');
        let (Some(version), Some(crypto), Some(data), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_suite("OCRA suite: expected three parts Algorithm:CryptoFunction:DataInput"));
        };
        if version != "OCRA-1" {
            return Err(bad_suite("OCRA suite: unsupported algorithm (expected OCRA-1)"));
        }

        // ---- CryptoFunction: HOTP-<hash>-<t> ----------------------------
        let mut cf = crypto.split('-');
        let (Some("HOTP"), Some(hash_name), Some(trunc), None) = (cf.next(), cf.next(), cf.next(), cf.next()) else {
            return Err(bad_suite("OCRA suite: crypto function must be HOTP-<hash>-<digits>"));
        };
        let algorithm = parse_hash(hash_name).ok_or(bad_suite("OCRA suite: unknown hash in crypto function"))?;
        let digits = match trunc {
            "0" => 0,
            "4" => 4,
            "5" => 5,
            "6" => 6,
            "7" => 7,
            "8" => 8,
            "9" => 9,
            "10" => 10,
            _ => return Err(bad_suite("OCRA suite: truncation digits must be 0 or 4..10")),
        };

        // ---- DataInput: [C-]QFxx[-PH][-Snnn][-TG] -----------------------
        let mut tokens = data.split('-').peekable();
        let counter = tokens.next_if_eq(&"C").is_some();
        let question_token = tokens.next();
        if question_token == Some("C") {
            return Err(bad_suite("OCRA suite: data input parts are out of order or repeated"));
        }
        let question = question_token
            .and_then(|t| t.strip_prefix('Q'))
            .ok_or(bad_suite("OCRA suite: data input must have a question part Q<A|N|H><nn>"))?;
        let mut q = question.chars();
        let question_format = match q.next() {
            Some('A') => QuestionFormat::Alphanumeric,
            Some('N') => QuestionFormat::Numeric,
            Some('H') => QuestionFormat::Hex,
            _ => return Err(bad_suite("OCRA suite: question format must be A, N or H")),
        };
        let question_max_len = match parse_decimal(q.as_str(), 2) {
            Some(n @ 4..=64) if q.as_str().len() == 2 => n as u8,
            _ => return Err(bad_suite("OCRA suite: question length must be 04..64")),
        };

        let mut pin_algorithm = None;
        let mut session_len = None;
        let mut time_step_seconds = None;
        // Stage of the last optional part seen: P = 1, S = 2, T = 3.
        let mut stage = 0u8;
        for token in tokens {
            let (this_stage, rest) = if let Some(rest) = token.strip_prefix('P') {
                (1, rest)
            } else if let Some(rest) = token.strip_prefix('S') {
                (2, rest)
            } else if let Some(rest) = token.strip_prefix('T') {
                (3, rest)
            } else if token == "C" || token.starts_with('Q') {
                return Err(bad_suite("OCRA suite: data input parts are out of order or repeated"));
            } else {
                return Err(bad_suite("OCRA suite: unknown data input part (expected C, Q, P, S or T)"));
            };
            if this_stage <= stage {
                return Err(bad_suite("OCRA suite: data input parts are out of order or repeated"));
            }
            stage = this_stage;
            match this_stage {
                1 => {
                    pin_algorithm =
                        Some(parse_hash(rest).ok_or(bad_suite("OCRA suite: unknown hash in PIN (P) part"))?);
                }
                2 => {
                    let n = match parse_decimal(rest, 3) {
                        Some(n) if rest.len() == 3 => n as u16,
                        _ => return Err(bad_suite("OCRA suite: session part must be S followed by three digits")),
                    };
                    session_len = Some(n);
                }
                _ => {
                    const T_ERR: &str = "OCRA suite: time step must be 1-59S, 1-59M or 1-48H";
                    let (num, unit, max) = if let Some(n) = rest.strip_suffix('S') {
                        (n, 1u64, 59u64)
                    } else if let Some(n) = rest.strip_suffix('M') {
                        (n, 60, 59)
                    } else if let Some(n) = rest.strip_suffix('H') {
                        (n, 3600, 48)
                    } else {
                        return Err(bad_suite(T_ERR));
                    };
                    // A zero step (RFC grammar allows "0H") cannot divide
                    // time into steps: it is rejected.
                    match parse_decimal(num, 2) {
                        Some(n) if (1..=max).contains(&n) => time_step_seconds = Some(n * unit),
                        _ => return Err(bad_suite(T_ERR)),
                    }
                }
            }
        }

        Ok(OcraSuite {
            text: String::from(suite),
            algorithm,
            digits,
            counter,
            question_format,
            question_max_len,
            pin_algorithm,
            session_len,
            time_step_seconds,
        })
    }

    /// The original suite string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// HMAC hash of the crypto function.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Truncation digits: 0 (no truncation, full HMAC in hex) or 4..=10.
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// True when the suite has a counter (`C`).
    pub fn uses_counter(&self) -> bool {
        self.counter
    }

    /// Format of the challenge question.
    pub fn question_format(&self) -> QuestionFormat {
        self.question_format
    }

    /// Declared maximum question length (04..=64) of one challenge.
    pub fn question_max_len(&self) -> u8 {
        self.question_max_len
    }

    /// Hash of the PIN (`P`), if the suite uses one.
    pub fn pin_algorithm(&self) -> Option<Algorithm> {
        self.pin_algorithm
    }

    /// Session information length in bytes (`Snnn`), if any.
    pub fn session_len(&self) -> Option<u16> {
        self.session_len
    }

    /// Time step in seconds (`T`), if the suite is time based.
    pub fn time_step_seconds(&self) -> Option<u64> {
        self.time_step_seconds
    }

    /// The question encoded for the 128-byte `Q` field (before padding).
    fn question_bytes(&self, q: &str) -> Result<Vec<u8>> {
        if q.is_empty() {
            return Err(bad_input("OCRA input: the question is empty"));
        }
        // Mutual mode concatenates two challenges: allow twice the maximum.
        if q.len() > 2 * usize::from(self.question_max_len) {
            return Err(bad_input("OCRA input: the question is longer than the suite allows"));
        }
        let b = q.as_bytes();
        match self.question_format {
            QuestionFormat::Alphanumeric => {
                if !b.iter().all(|c| (0x20..=0x7e).contains(c)) {
                    return Err(bad_input("OCRA input: a QA question must be printable ASCII"));
                }
                Ok(b.to_vec())
            }
            QuestionFormat::Numeric => {
                if !b.iter().all(u8::is_ascii_digit) {
                    return Err(bad_input("OCRA input: a QN question must be decimal digits"));
                }
                Ok(pack_nibbles(&decimal_to_hex_nibbles(b)))
            }
            QuestionFormat::Hex => {
                let nibbles = b
                    .iter()
                    .map(|&c| crate::encoding::hex_digit(c))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or(bad_input("OCRA input: a QH question must be hex digits"))?;
                Ok(pack_nibbles(&nibbles))
            }
        }
    }

    /// The exact `DataInput` bytes (RFC 6287 §5.1): suite, `0x00`, then
    /// `C` (8 bytes), `Q` (128 bytes), `P` (hash), `S` (nnn bytes) and
    /// `T` (8 bytes) as the suite declares them.
    pub fn data_input(&self, input: &OcraInput) -> Result<Vec<u8>> {
        // Inputs the suite does not declare.
        if input.counter.is_some() && !self.counter {
            return Err(bad_input("OCRA input: a counter was given but the suite has no C"));
        }
        if (input.password.is_some() || input.password_hash.is_some()) && self.pin_algorithm.is_none() {
            return Err(bad_input("OCRA input: a password was given but the suite has no P"));
        }
        if input.session.is_some() && self.session_len.is_none() {
            return Err(bad_input("OCRA input: session information was given but the suite has no S"));
        }
        if input.time.is_some() && self.time_step_seconds.is_none() {
            return Err(bad_input("OCRA input: a time was given but the suite has no T"));
        }

        let mut msg = Vec::with_capacity(self.text.len() + 1 + 8 + QUESTION_FIELD_LEN + 64 + 8);
        msg.extend_from_slice(self.text.as_bytes());
        msg.push(0);

        if self.counter {
            let c = input.counter.ok_or(bad_input("OCRA input: the suite requires a counter (C)"))?;
            msg.extend_from_slice(&c.to_be_bytes());
        }

        let q = input.question.ok_or(bad_input("OCRA input: the suite requires a question (Q)"))?;
        let qb = self.question_bytes(q)?;
        // Cannot exceed 128 bytes: at most 2 * 64 ASCII characters.
        if qb.len() > QUESTION_FIELD_LEN {
            return Err(bad_input("OCRA input: the question is longer than the suite allows"));
        }
        let q_start = msg.len();
        msg.extend_from_slice(&qb);
        msg.resize(q_start + QUESTION_FIELD_LEN, 0);

        if let Some(pin_alg) = self.pin_algorithm {
            match (input.password, input.password_hash) {
                (Some(_), Some(_)) => {
                    return Err(bad_input("OCRA input: give either password or password_hash, not both"));
                }
                (Some(pin), None) => msg.extend_from_slice(&hash(pin_alg, pin.as_bytes())),
                (None, Some(h)) => {
                    if h.len() != pin_alg.output_len() {
                        return Err(bad_input("OCRA input: password_hash length does not match the suite's P hash"));
                    }
                    msg.extend_from_slice(h);
                }
                (None, None) => return Err(bad_input("OCRA input: the suite requires a password (P)")),
            }
        }

        if let Some(len) = self.session_len {
            let s = input.session.ok_or(bad_input("OCRA input: the suite requires session information (S)"))?;
            if s.len() != usize::from(len) {
                return Err(bad_input("OCRA input: session information length does not match the suite's Snnn"));
            }
            msg.extend_from_slice(s);
        }

        if let Some(step) = self.time_step_seconds {
            let t = input.time.ok_or(bad_input("OCRA input: the suite requires a time (T)"))?;
            // step >= 1 is guaranteed by `parse`; checked_div keeps this total.
            let steps = t.checked_div(step).ok_or(bad_input("OCRA input: the suite's time step is zero"))?;
            msg.extend_from_slice(&steps.to_be_bytes());
        }
        Ok(msg)
    }

    /// The OCRA response: `digits` decimal digits, or the full HMAC in
    /// lower-case hex when the suite's truncation is 0.
    pub fn compute(&self, key: &[u8], input: &OcraInput) -> Result<String> {
        let msg = self.data_input(input)?;
        let mac = hmac(self.algorithm, key, &msg);
        if self.digits == 0 {
            Ok(hex_encode(&mac))
        } else {
            Ok(format_code(truncate(&mac), self.digits))
        }
    }
}

/// Mutual mode (RFC 6287 §7.3): the question the **server** computes its
/// response over, `client_q || server_q`.
pub fn mutual_server_question(client_q: &str, server_q: &str) -> String {
    let mut s = String::with_capacity(client_q.len() + server_q.len());
    s.push_str(client_q);
    s.push_str(server_q);
    s
}

/// Mutual mode (RFC 6287 §7.3): the question the **client** computes its
/// response over, `server_q || client_q`.
pub fn mutual_client_question(client_q: &str, server_q: &str) -> String {
    mutual_server_question(server_q, client_q)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use alloc::format;

    const KEY20: &[u8] = b"12345678901234567890";
    const KEY32: &[u8] = b"12345678901234567890123456789012";
    const KEY64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
    const PIN_SHA1: [u8; 20] = [
        0x71, 0x10, 0xed, 0xa4, 0xd0, 0x9e, 0x06, 0x2a, 0xa5, 0xe4, 0xa3, 0x90, 0xb0, 0xa5, 0x72, 0xac, 0x0d, 0x2c,
        0x02, 0x20,
    ];
    /// T = 0x132d0b6 one-minute steps, as unix seconds.
    const T_RFC: u64 = 0x132d0b6 * 60;

    fn q(question: &str) -> OcraInput<'_> {
        OcraInput { question: Some(question), ..OcraInput::default() }
    }

    fn code(suite: &str, key: &[u8], input: &OcraInput) -> String {
        OcraSuite::parse(suite).unwrap().compute(key, input).unwrap()
    }

    fn suite_err(s: &str) -> String {
        let e = OcraSuite::parse(s).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidOcraSuite, "{s}");
        String::from(e.detail())
    }

    fn input_err(suite: &str, input: &OcraInput) -> String {
        let e = OcraSuite::parse(suite).unwrap().compute(KEY20, input).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidOcraInput, "{suite} {input:?}");
        String::from(e.detail())
    }

    // ---- RFC 6287 Appendix C.1 -----------------------------------------

    #[test]
    fn c1_qn08_sha1() {
        let want = [
            ("00000000", "237653"),
            ("11111111", "243178"),
            ("22222222", "653583"),
            ("33333333", "740991"),
            ("44444444", "608993"),
            ("55555555", "388898"),
            ("66666666", "816933"),
            ("77777777", "224598"),
            ("88888888", "750600"),
            ("99999999", "294470"),
        ];
        for (question, ocra) in want {
            assert_eq!(code("OCRA-1:HOTP-SHA1-6:QN08", KEY20, &q(question)), ocra, "Q={question}");
        }
    }

    #[test]
    fn c1_counter_qn08_psha1() {
        let want = [
            "65347737", "86775851", "78192410", "71565254", "10104329", "65983500", "70069104", "91771096", "75011558",
            "08522129",
        ];
        for (c, ocra) in want.iter().enumerate() {
            let input = OcraInput {
                counter: Some(c as u64),
                question: Some("12345678"),
                password: Some("1234"),
                ..OcraInput::default()
            };
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, &input), *ocra, "C={c}");
            // Same with the pre-hashed PIN of the vectors file.
            let hashed = OcraInput { password: None, password_hash: Some(&PIN_SHA1), ..input };
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", KEY32, &hashed), *ocra, "C={c}");
        }
    }

    #[test]
    fn c1_qn08_psha1() {
        let want = [
            ("00000000", "83238735"),
            ("11111111", "01501458"),
            ("22222222", "17957585"),
            ("33333333", "86776967"),
            ("44444444", "86807031"),
        ];
        for (question, ocra) in want {
            let input = OcraInput { question: Some(question), password: Some("1234"), ..OcraInput::default() };
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", KEY32, &input), ocra, "Q={question}");
        }
    }

    #[test]
    fn c1_sha512_counter_qn08() {
        let want = [
            (0, "00000000", "07016083"),
            (1, "11111111", "63947962"),
            (2, "22222222", "70123924"),
            (3, "33333333", "25341727"),
            (4, "44444444", "33203315"),
            (5, "55555555", "34205738"),
            (6, "66666666", "44343969"),
            (7, "77777777", "51946085"),
            (8, "88888888", "20403879"),
            (9, "99999999", "31409299"),
        ];
        for (c, question, ocra) in want {
            let input = OcraInput { counter: Some(c), question: Some(question), ..OcraInput::default() };
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:C-QN08", KEY64, &input), ocra, "C={c}");
        }
    }

    #[test]
    fn c1_sha512_qn08_t1m() {
        let want = [
            ("00000000", "95209754"),
            ("11111111", "55907591"),
            ("22222222", "22048402"),
            ("33333333", "24218844"),
            ("44444444", "36209546"),
        ];
        for (question, ocra) in want {
            let input = OcraInput { question: Some(question), time: Some(T_RFC), ..OcraInput::default() };
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, &input), ocra, "Q={question}");
            // Any second inside the same minute gives the same step.
            let later = OcraInput { time: Some(T_RFC + 59), ..input };
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:QN08-T1M", KEY64, &later), ocra);
        }
    }

    // ---- RFC 6287 Appendix C.2 (mutual) --------------------------------

    #[test]
    fn c2_mutual_sha256() {
        let server = [
            ("CLI22220", "SRV11110", "28247970"),
            ("CLI22221", "SRV11111", "01984843"),
            ("CLI22222", "SRV11112", "65387857"),
            ("CLI22223", "SRV11113", "03351211"),
            ("CLI22224", "SRV11114", "83412541"),
        ];
        for (cq, sq, ocra) in server {
            let question = mutual_server_question(cq, sq);
            assert_eq!(question, format!("{cq}{sq}"));
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:QA08", KEY32, &q(&question)), ocra, "Q={question}");
        }
        let client = [
            ("CLI22220", "SRV11110", "15510767"),
            ("CLI22221", "SRV11111", "90175646"),
            ("CLI22222", "SRV11112", "33777207"),
            ("CLI22223", "SRV11113", "95285278"),
            ("CLI22224", "SRV11114", "28934924"),
        ];
        for (cq, sq, ocra) in client {
            let question = mutual_client_question(cq, sq);
            assert_eq!(question, format!("{sq}{cq}"));
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:QA08", KEY32, &q(&question)), ocra, "Q={question}");
        }
    }

    #[test]
    fn c2_mutual_sha512() {
        let server = [
            ("CLI22220", "SRV11110", "79496648"),
            ("CLI22221", "SRV11111", "76831980"),
            ("CLI22222", "SRV11112", "12250499"),
            ("CLI22223", "SRV11113", "90856481"),
            ("CLI22224", "SRV11114", "12761449"),
        ];
        for (cq, sq, ocra) in server {
            let question = mutual_server_question(cq, sq);
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:QA08", KEY64, &q(&question)), ocra, "Q={question}");
        }
        let client = [
            ("CLI22220", "SRV11110", "18806276"),
            ("CLI22221", "SRV11111", "70020315"),
            ("CLI22222", "SRV11112", "01600026"),
            ("CLI22223", "SRV11113", "18951020"),
            ("CLI22224", "SRV11114", "32528969"),
        ];
        for (cq, sq, ocra) in client {
            let question = mutual_client_question(cq, sq);
            let input = OcraInput { question: Some(&question), password: Some("1234"), ..OcraInput::default() };
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", KEY64, &input), ocra, "Q={question}");
        }
    }

    // ---- RFC 6287 Appendix C.3 (plain signature) -----------------------

    #[test]
    fn c3_signature_qa08() {
        let want = [
            ("SIG10000", "53095496"),
            ("SIG11000", "04110475"),
            ("SIG12000", "31331128"),
            ("SIG13000", "76028668"),
            ("SIG14000", "46554205"),
        ];
        for (question, ocra) in want {
            assert_eq!(code("OCRA-1:HOTP-SHA256-8:QA08", KEY32, &q(question)), ocra, "Q={question}");
        }
    }

    #[test]
    fn c3_signature_qa10_t1m() {
        let want = [
            ("SIG1000000", "77537423"),
            ("SIG1100000", "31970405"),
            ("SIG1200000", "10235557"),
            ("SIG1300000", "95213541"),
            ("SIG1400000", "65360607"),
        ];
        for (question, ocra) in want {
            let input = OcraInput { question: Some(question), time: Some(T_RFC), ..OcraInput::default() };
            assert_eq!(code("OCRA-1:HOTP-SHA512-8:QA10-T1M", KEY64, &input), ocra, "Q={question}");
        }
    }

    // ---- DataInput layout ----------------------------------------------

    #[test]
    fn data_input_layout() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1-S064-T30S").unwrap();
        let session = [7u8; 64];
        let input = OcraInput {
            counter: Some(0x0102),
            question: Some("11111111"),
            password: Some("1234"),
            session: Some(&session),
            time: Some(95),
            ..OcraInput::default()
        };
        let d = suite.data_input(&input).unwrap();
        let s = suite.as_str().len();
        assert_eq!(&d[..s], suite.as_str().as_bytes());
        assert_eq!(d[s], 0);
        assert_eq!(&d[s + 1..s + 9], &[0, 0, 0, 0, 0, 0, 1, 2]);
        let qf = &d[s + 9..s + 9 + 128];
        assert_eq!(&qf[..3], &[0xa9, 0x8a, 0xc7]);
        assert!(qf[3..].iter().all(|&b| b == 0));
        assert_eq!(&d[s + 137..s + 157], &PIN_SHA1);
        assert_eq!(&d[s + 157..s + 221], &session);
        assert_eq!(&d[s + 221..], &3u64.to_be_bytes()); // floor(95 / 30)
        assert_eq!(d.len(), s + 1 + 8 + 128 + 20 + 64 + 8);
    }

    #[test]
    fn numeric_and_hex_questions() {
        let qn = |s: &str| pack_nibbles(&decimal_to_hex_nibbles(s.as_bytes()));
        assert_eq!(qn("0"), [0x00]);
        assert_eq!(qn("00000000"), [0x00]);
        assert_eq!(qn("1"), [0x10]); // "1" -> right padded "10"
        assert_eq!(qn("15"), [0xf0]); // "f" -> "f0"
        assert_eq!(qn("16"), [0x10]);
        assert_eq!(qn("256"), [0x10, 0x00]);
        assert_eq!(qn("4095"), [0xff, 0xf0]);
        assert_eq!(qn("11111111"), [0xa9, 0x8a, 0xc7]);
        assert_eq!(qn("12345678"), [0xbc, 0x61, 0x4e]);
        assert_eq!(qn("22222222"), [0x15, 0x31, 0x58, 0xe0]);
        assert_eq!(qn("18446744073709551615"), [0xff; 8]); // u64::MAX
        assert_eq!(qn("18446744073709551616"), [0x10, 0, 0, 0, 0, 0, 0, 0, 0]); // 2^64 = 0x1 + 16 zeros
                                                                                // 64 nines: 10^64 - 1, 213 bits -> 54 hex digits, 27 bytes.
        let big = "9".repeat(64);
        assert_eq!(qn(&big).len(), 27);
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN64").unwrap();
        assert!(suite.compute(KEY20, &q(&big)).is_ok());

        let h = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QH08").unwrap();
        let d = h.data_input(&q("aBc")).unwrap();
        let s = h.as_str().len() + 1;
        assert_eq!(&d[s..s + 3], &[0xab, 0xc0, 0x00]);
        let d = h.data_input(&q("00ff")).unwrap();
        assert_eq!(&d[s..s + 3], &[0x00, 0xff, 0x00]);
        // QH and QA agree with QN where they should.
        let n = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08").unwrap();
        let hx = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QH08").unwrap();
        assert_eq!(
            n.data_input(&q("11111111")).unwrap()[n.as_str().len()..],
            hx.data_input(&q("A98AC7")).unwrap()[hx.as_str().len()..]
        );
    }

    #[test]
    fn full_hmac_and_short_truncations() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-0:QN08").unwrap();
        assert_eq!(suite.digits(), 0);
        let full = suite.compute(KEY20, &q("11111111")).unwrap();
        assert_eq!(full.len(), 40);
        assert!(full.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let msg = suite.data_input(&q("11111111")).unwrap();
        assert_eq!(full, hex_encode(&hmac(Algorithm::Sha1, KEY20, &msg)));
        let full512 = code("OCRA-1:HOTP-SHA512-0:QA08", KEY64, &q("SIG10000"));
        assert_eq!(full512.len(), 128);

        for d in 4..=10u8 {
            let s = format!("OCRA-1:HOTP-SHA256-{d}:QA08");
            let c = code(&s, KEY32, &q("SIG10000"));
            assert_eq!(c.len(), usize::from(d));
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        // The suite string is part of the DataInput: only the exact RFC suite
        // gives the RFC value.
        assert_eq!(code("OCRA-1:HOTP-SHA256-8:QA08", KEY32, &q("SIG10000")), "53095496");
        // Keys of any length work (HMAC).
        assert!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QA08").unwrap().compute(&[], &q("abcd")).is_ok());
        assert!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QA08").unwrap().compute(&[1u8; 300], &q("abcd")).is_ok());
    }

    #[test]
    fn accessors() {
        let s = OcraSuite::parse("OCRA-1:HOTP-SHA512-10:C-QH64-PSHA256-S512-T48H").unwrap();
        assert_eq!(s.as_str(), "OCRA-1:HOTP-SHA512-10:C-QH64-PSHA256-S512-T48H");
        assert_eq!(s.algorithm(), Algorithm::Sha512);
        assert_eq!(s.digits(), 10);
        assert!(s.uses_counter());
        assert_eq!(s.question_format(), QuestionFormat::Hex);
        assert_eq!(s.question_max_len(), 64);
        assert_eq!(s.pin_algorithm(), Some(Algorithm::Sha256));
        assert_eq!(s.session_len(), Some(512));
        assert_eq!(s.time_step_seconds(), Some(48 * 3600));

        let s = OcraSuite::parse("OCRA-1:HOTP-SHA1-4:QA04").unwrap();
        assert_eq!(s.algorithm(), Algorithm::Sha1);
        assert!(!s.uses_counter());
        assert_eq!(s.question_format(), QuestionFormat::Alphanumeric);
        assert_eq!(s.question_max_len(), 4);
        assert_eq!(s.pin_algorithm(), None);
        assert_eq!(s.session_len(), None);
        assert_eq!(s.time_step_seconds(), None);

        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-T1S").unwrap().time_step_seconds(), Some(1));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-T59S").unwrap().time_step_seconds(), Some(59));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-T59M").unwrap().time_step_seconds(), Some(59 * 60));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-T1H").unwrap().time_step_seconds(), Some(3600));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S064").unwrap().session_len(), Some(64));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S128").unwrap().session_len(), Some(128));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S256").unwrap().session_len(), Some(256));
        assert_eq!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S999").unwrap().session_len(), Some(999));
        assert_eq!(
            OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-PSHA512").unwrap().pin_algorithm(),
            Some(Algorithm::Sha512)
        );
        // Every suite of the RFC tables parses.
        for &s in RFC6287_SUITES {
            assert_eq!(OcraSuite::parse(s).unwrap().as_str(), s);
        }
    }

    // ---- malformed suites ----------------------------------------------

    #[test]
    fn malformed_suite_structure() {
        for s in ["", "OCRA-1", "OCRA-1:HOTP-SHA1-6", "OCRA-1:HOTP-SHA1-6:QN08:x", "::"] {
            let d = suite_err(s);
            assert!(d.contains("three parts") || d.contains("OCRA-1") || d.contains("crypto function"), "{s}: {d}");
        }
        assert!(suite_err("OCRA-1:HOTP-SHA1-6").contains("three parts"));
        assert!(suite_err("OCRA-1:HOTP-SHA1-6:QN08:x").contains("three parts"));
        assert!(suite_err("OCRA-2:HOTP-SHA1-6:QN08").contains("expected OCRA-1"));
        assert!(suite_err("ocra-1:HOTP-SHA1-6:QN08").contains("expected OCRA-1"));
        assert!(suite_err(" OCRA-1:HOTP-SHA1-6:QN08").contains("expected OCRA-1"));
    }

    #[test]
    fn malformed_crypto_function() {
        for s in ["OCRA-1:TOTP-SHA1-6:QN08", "OCRA-1:HOTP-SHA1:QN08", "OCRA-1:HOTP-SHA1-6-1:QN08", "OCRA-1::QN08"] {
            assert!(suite_err(s).contains("crypto function must be"), "{s}");
        }
        for s in
            ["OCRA-1:HOTP-MD5-6:QN08", "OCRA-1:HOTP-sha1-6:QN08", "OCRA-1:HOTP-SHA-1-6:QN08", "OCRA-1:HOTP--6:QN08"]
        {
            let d = suite_err(s);
            assert!(d.contains("unknown hash in crypto function") || d.contains("crypto function must be"), "{s}: {d}");
        }
        assert_eq!(suite_err("OCRA-1:HOTP-SHA384-6:QN08"), "OCRA suite: unknown hash in crypto function");
        for t in ["1", "2", "3", "11", "06", "-1", "", "x", "١"] {
            let s = format!("OCRA-1:HOTP-SHA1-{t}:QN08");
            let d = suite_err(&s);
            assert!(d.contains("truncation digits") || d.contains("crypto function must be"), "{s}: {d}");
        }
        assert_eq!(suite_err("OCRA-1:HOTP-SHA1-11:QN08"), "OCRA suite: truncation digits must be 0 or 4..10");
    }

    #[test]
    fn malformed_question() {
        for s in
            ["OCRA-1:HOTP-SHA1-6:", "OCRA-1:HOTP-SHA1-6:C", "OCRA-1:HOTP-SHA1-6:C-PSHA1", "OCRA-1:HOTP-SHA1-6:PSHA1"]
        {
            assert!(suite_err(s).contains("question part"), "{s}");
        }
        for s in
            ["OCRA-1:HOTP-SHA1-6:QX08", "OCRA-1:HOTP-SHA1-6:Q", "OCRA-1:HOTP-SHA1-6:Qn08", "OCRA-1:HOTP-SHA1-6:Qé08"]
        {
            assert_eq!(suite_err(s), "OCRA suite: question format must be A, N or H", "{s}");
        }
        for len in ["03", "00", "65", "99", "8", "008", "", "0x", "+8", "é"] {
            let s = format!("OCRA-1:HOTP-SHA1-6:QN{len}");
            assert_eq!(suite_err(&s), "OCRA suite: question length must be 04..64", "{s}");
        }
        assert!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN04").is_ok());
        assert!(OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN64").is_ok());
    }

    #[test]
    fn malformed_optional_parts() {
        for p in ["PMD5", "P", "Psha1", "PSHA384"] {
            let s = format!("OCRA-1:HOTP-SHA1-6:QN08-{p}");
            assert_eq!(suite_err(&s), "OCRA suite: unknown hash in PIN (P) part", "{s}");
        }
        for p in ["S64", "S0640", "S", "Sabc", "S+64", "S 64"] {
            let s = format!("OCRA-1:HOTP-SHA1-6:QN08-{p}");
            assert_eq!(suite_err(&s), "OCRA suite: session part must be S followed by three digits", "{s}");
        }
        for p in ["T", "T1", "TM", "T0S", "T60S", "T0M", "T60M", "T0H", "T49H", "T100S", "T1D", "T1m", "T+1M", "T١M"] {
            let s = format!("OCRA-1:HOTP-SHA1-6:QN08-{p}");
            assert_eq!(suite_err(&s), "OCRA suite: time step must be 1-59S, 1-59M or 1-48H", "{s}");
        }
        for s in [
            "OCRA-1:HOTP-SHA1-6:QN08-C",
            "OCRA-1:HOTP-SHA1-6:C-C-QN08",
            "OCRA-1:HOTP-SHA1-6:QN08-QN08",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1",
            "OCRA-1:HOTP-SHA1-6:QN08-S064-PSHA1",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M-S064",
            "OCRA-1:HOTP-SHA1-6:QN08-PSHA1-PSHA1",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M-T1M",
        ] {
            assert_eq!(suite_err(s), "OCRA suite: data input parts are out of order or repeated", "{s}");
        }
        for s in ["OCRA-1:HOTP-SHA1-6:QN08-", "OCRA-1:HOTP-SHA1-6:QN08--PSHA1", "OCRA-1:HOTP-SHA1-6:QN08-X1"] {
            assert_eq!(suite_err(s), "OCRA suite: unknown data input part (expected C, Q, P, S or T)", "{s}");
        }
    }

    // ---- bad inputs ----------------------------------------------------

    #[test]
    fn missing_inputs() {
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08", &OcraInput::default()).contains("requires a question"));
        let qi = q("1234");
        assert!(input_err("OCRA-1:HOTP-SHA1-6:C-QN08", &qi).contains("requires a counter"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", &qi).contains("requires a password"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08-S064", &qi).contains("requires session"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08-T1M", &qi).contains("requires a time"));
    }

    #[test]
    fn undeclared_inputs() {
        let suite = "OCRA-1:HOTP-SHA1-6:QN08";
        let base = q("1234");
        assert!(input_err(suite, &OcraInput { counter: Some(1), ..base }).contains("has no C"));
        assert!(input_err(suite, &OcraInput { password: Some("1234"), ..base }).contains("has no P"));
        assert!(input_err(suite, &OcraInput { password_hash: Some(&PIN_SHA1), ..base }).contains("has no P"));
        assert!(input_err(suite, &OcraInput { session: Some(&[0u8; 64]), ..base }).contains("has no S"));
        assert!(input_err(suite, &OcraInput { time: Some(0), ..base }).contains("has no T"));
    }

    #[test]
    fn malformed_inputs() {
        // Question format.
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08", &q("1234a")).contains("decimal digits"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08", &q("-123")).contains("decimal digits"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN08", &q("١٢٣")).contains("decimal digits"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QH08", &q("12g4")).contains("hex digits"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QH08", &q("0x12")).contains("hex digits"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QA08", &q("tab\there")).contains("printable ASCII"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QA08", &q("caf\u{e9}")).contains("printable ASCII"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QA08", &q("")).contains("empty"));
        // Question length: up to twice the declared maximum (mutual mode).
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QA08").unwrap();
        assert!(suite.compute(KEY20, &q(&"a".repeat(16))).is_ok());
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QA08", &q(&"a".repeat(17))).contains("longer than"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QN04", &q(&"1".repeat(9))).contains("longer than"));
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QH04", &q(&"f".repeat(9))).contains("longer than"));
        let qa64 = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QA64").unwrap();
        assert_eq!(qa64.data_input(&q(&"~".repeat(128))).unwrap().len(), qa64.as_str().len() + 1 + 128);
        assert!(input_err("OCRA-1:HOTP-SHA1-6:QA64", &q(&"~".repeat(129))).contains("longer than"));
        // PIN.
        let p = "OCRA-1:HOTP-SHA1-6:QN08-PSHA256";
        let base = q("1234");
        assert!(input_err(p, &OcraInput { password_hash: Some(&PIN_SHA1), ..base }).contains("length does not match"));
        let both = OcraInput { password: Some("1234"), password_hash: Some(&[0u8; 32]), ..base };
        assert!(input_err(p, &both).contains("not both"));
        let ok = OcraInput { password_hash: Some(&[0u8; 32]), ..base };
        assert!(OcraSuite::parse(p).unwrap().compute(KEY20, &ok).is_ok());
        // Session.
        let s = "OCRA-1:HOTP-SHA1-6:QN08-S064";
        assert!(input_err(s, &OcraInput { session: Some(&[0u8; 63]), ..base }).contains("Snnn"));
        assert!(input_err(s, &OcraInput { session: Some(&[0u8; 65]), ..base }).contains("Snnn"));
        assert!(OcraSuite::parse(s).unwrap().compute(KEY20, &OcraInput { session: Some(&[0u8; 64]), ..base }).is_ok());
        // Extreme times are fine.
        let t = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-T1S").unwrap();
        assert!(t.compute(KEY20, &OcraInput { time: Some(u64::MAX), ..base }).is_ok());
    }

    #[test]
    fn pin_hash_matches_vector() {
        assert_eq!(hash(Algorithm::Sha1, b"1234"), PIN_SHA1);
        assert_eq!(hash(Algorithm::Sha256, b"").len(), 32);
        assert_eq!(hash(Algorithm::Sha512, b"").len(), 64);
    }

    #[test]
    fn debug_redacts_pin() {
        let hashed = [0xabu8; 20];
        let input = OcraInput {
            question: Some("12345678"),
            password: Some("98765"),
            password_hash: Some(&hashed),
            ..OcraInput::default()
        };
        let d = format!("{input:?}");
        assert!(!d.contains("98765"), "{d}");
        assert!(!d.contains("171"), "{d}"); // 0xab as decimal
        assert!(d.contains("redacted"));
        assert!(d.contains("12345678"));
    }
}
