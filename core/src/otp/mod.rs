//! OATH one-time passwords: HOTP (RFC 4226), TOTP (RFC 6238), OCRA (RFC 6287),
//! a replay-safe verifier for portals, and `otpauth://` Key URIs.

use crate::error::{err, ErrorCode, Result};
use crate::secret::SecretBytes;
use alloc::string::String;
use alloc::vec::Vec;
use hmac::{Hmac, KeyInit, Mac};

pub mod ocra;
pub mod uri;
pub mod verify;

pub use ocra::{OcraInput, OcraSuite};
pub use uri::{KeyUri, OtpKind, SecretPolicy};
pub use verify::{HotpVerifier, OtpState, Throttle, ThrottlePolicy, TotpVerifier, Verified};

/// HMAC hash function of an OTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// HMAC-SHA1 (the default of RFC 4226/6238 and every authenticator app).
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Algorithm {
    /// Canonical upper-case name as used in `otpauth://` (`SHA1`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Parse `sha1`, `SHA-256`, `sha512`... (case-insensitive, optional dash).
    pub fn parse(s: &str) -> Result<Algorithm> {
        let mut buf = [0u8; 8];
        let mut n = 0;
        for c in s.bytes().filter(|&c| c != b'-') {
            if n == buf.len() {
                return Err(err(ErrorCode::InvalidAlgorithm, "unknown algorithm (use sha1, sha256 or sha512)"));
            }
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
        match &buf[..n] {
            b"sha1" => Ok(Algorithm::Sha1),
            b"sha256" => Ok(Algorithm::Sha256),
            b"sha512" => Ok(Algorithm::Sha512),
            _ => Err(err(ErrorCode::InvalidAlgorithm, "unknown algorithm (use sha1, sha256 or sha512)")),
        }
    }

    /// Output size of the hash in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// HMAC(key, msg) with the chosen hash.
pub(crate) fn hmac(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length: new_from_slice cannot fail.
        let mut m = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// Digits accepted by HOTP/TOTP here.
pub const DIGITS_RANGE: core::ops::RangeInclusive<u8> = 6..=10;

fn check_digits(digits: u8) -> Result<()> {
    if DIGITS_RANGE.contains(&digits) {
        Ok(())
    } else {
        Err(err(ErrorCode::InvalidDigits, "digits must be between 6 and 10"))
    }
}

/// RFC 4226 dynamic truncation of an HMAC output to a number.
pub(crate) fn truncate(mac: &[u8]) -> u32 {
    let off = (mac[mac.len() - 1] & 0x0f) as usize;
    u32::from_be_bytes([mac[off] & 0x7f, mac[off + 1], mac[off + 2], mac[off + 3]])
}

/// Zero-padded decimal rendering of `value mod 10^digits`.
pub(crate) fn format_code(value: u32, digits: u8) -> String {
    let m = 10u64.pow(u32::from(digits));
    let v = u64::from(value) % m;
    let mut s = alloc::format!("{v}");
    while s.len() < digits as usize {
        s.insert(0, '0');
    }
    s
}

/// HOTP value for `counter` as a zero-padded string (RFC 4226 §5.3).
pub fn hotp(key: &[u8], counter: u64, digits: u8, alg: Algorithm) -> Result<String> {
    Ok(Hotp::new(key.to_vec(), alg, digits)?.generate(counter))
}

/// HMAC-SHA1 of 8-byte messages (HOTP counters) from precomputed states:
/// the SHA-1 states after the key's inner and outer pad blocks, so one code
/// costs exactly two compressions (the inner block: counter and padding;
/// the outer block: inner hash and padding), with no buffering. The states
/// are key material: zeroed on drop, never printed.
#[derive(Clone)]
struct Sha1Counter {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl Sha1Counter {
    const IV: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

    fn new(key: &[u8]) -> Self {
        use sha1::Digest;
        let mut block = zeroize::Zeroizing::new([0u8; 64]);
        if key.len() > 64 {
            // RFC 2104: a key longer than the block is hashed first.
            let mut digest = sha1::Sha1::digest(key);
            block[..20].copy_from_slice(&digest);
            zeroize::Zeroize::zeroize(digest.as_mut_slice());
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let state = |pad: u8| {
            let mut b = zeroize::Zeroizing::new(*block);
            b.iter_mut().for_each(|x| *x ^= pad);
            let mut s = Self::IV;
            sha1::block_api::compress(&mut s, core::slice::from_ref(&*b));
            s
        };
        Sha1Counter { inner: state(0x36), outer: state(0x5c) }
    }

    fn mac(&self, counter: u64) -> [u8; 20] {
        // Inner: the 8-byte counter after the 64-byte pad block (72 bytes).
        let mut block = [0u8; 64];
        block[..8].copy_from_slice(&counter.to_be_bytes());
        block[8] = 0x80;
        block[56..].copy_from_slice(&(72u64 * 8).to_be_bytes());
        let mut s = self.inner;
        sha1::block_api::compress(&mut s, core::slice::from_ref(&block));
        // Outer: the 20-byte inner hash after the pad block (84 bytes).
        let mut block = [0u8; 64];
        for (out, word) in block.chunks_exact_mut(4).zip(s) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        block[20] = 0x80;
        block[56..].copy_from_slice(&(84u64 * 8).to_be_bytes());
        let mut o = self.outer;
        sha1::block_api::compress(&mut o, core::slice::from_ref(&block));
        let mut mac = [0u8; 20];
        for (out, word) in mac.chunks_exact_mut(4).zip(o) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        // `s` and `o` started as copies of the key-derived states, but the
        // compressions overwrote them in place: they now hold the inner hash
        // and the MAC, which the code reveals anyway. Nothing is left to wipe
        // on this (hot) path; the pad states themselves are wiped on drop.
        mac
    }
}

impl Drop for Sha1Counter {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// An HMAC keyed once: the key schedule (two compressions) is paid when the
/// generator is built, not on every code. The state zeroizes on drop.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Sha1Counter),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(alg: Algorithm, key: &[u8]) -> Self {
        // HMAC accepts keys of any length: new_from_slice cannot fail.
        fn keyed<M: KeyInit>(key: &[u8]) -> M {
            M::new_from_slice(key).unwrap_or_else(|_| unreachable!())
        }
        match alg {
            Algorithm::Sha1 => KeyedMac::Sha1(Sha1Counter::new(key)),
            Algorithm::Sha256 => KeyedMac::Sha256(keyed(key)),
            Algorithm::Sha512 => KeyedMac::Sha512(keyed(key)),
        }
    }

    /// RFC 4226 dynamic truncation of HMAC(key, counter).
    fn truncated(&self, counter: u64) -> u32 {
        fn run<M: Mac + Clone>(m: &M, c: u64) -> u32 {
            let mut m = m.clone();
            m.update(&c.to_be_bytes());
            truncate(&m.finalize().into_bytes())
        }
        match self {
            KeyedMac::Sha1(m) => truncate(&m.mac(counter)),
            KeyedMac::Sha256(m) => run(m, counter),
            KeyedMac::Sha512(m) => run(m, counter),
        }
    }
}

/// A HOTP generator (RFC 4226).
#[derive(Clone)]
pub struct Hotp {
    mac: KeyedMac,
    alg: Algorithm,
    digits: u8,
}

impl core::fmt::Debug for Hotp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hotp")
            .field("key", &"<redacted>")
            .field("alg", &self.alg)
            .field("digits", &self.digits)
            .finish()
    }
}

impl Hotp {
    /// A generator; `digits` in 6..=10. The key is zeroized here once the
    /// keyed HMAC state is built.
    pub fn new(key: Vec<u8>, alg: Algorithm, digits: u8) -> Result<Hotp> {
        check_digits(digits)?;
        let key = SecretBytes::new(key);
        Ok(Hotp { mac: KeyedMac::new(alg, key.expose()), alg, digits })
    }

    /// The code for `counter`.
    pub fn generate(&self, counter: u64) -> String {
        format_code(self.mac.truncated(counter), self.digits)
    }

    /// The truncated value for `counter`, reduced to the configured digits.
    pub(crate) fn value(&self, counter: u64) -> u64 {
        u64::from(self.mac.truncated(counter)) % 10u64.pow(u32::from(self.digits))
    }

    /// Digits.
    pub fn digits(&self) -> u8 {
        self.digits
    }
    /// Algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// A TOTP generator (RFC 6238): HOTP over `floor((now - t0) / period)`.
#[derive(Clone, Debug)]
pub struct Totp {
    hotp: Hotp,
    period: u64,
    t0: u64,
}

impl Totp {
    /// A generator; `period` in seconds (> 0), `t0` unix seconds.
    pub fn new(key: Vec<u8>, alg: Algorithm, digits: u8, period: u64, t0: u64) -> Result<Totp> {
        if period == 0 {
            return Err(err(ErrorCode::InvalidTime, "the period must be at least one second"));
        }
        Ok(Totp { hotp: Hotp::new(key, alg, digits)?, period, t0 })
    }

    /// The time step that contains unix time `now`.
    pub fn step(&self, now: u64) -> Result<u64> {
        now.checked_sub(self.t0)
            .map(|d| d / self.period)
            .ok_or(err(ErrorCode::InvalidTime, "the time is before the start time T0"))
    }

    /// The code at unix time `now`.
    pub fn generate(&self, now: u64) -> Result<String> {
        Ok(self.hotp.generate(self.step(now)?))
    }

    /// The code of a given step.
    pub fn generate_step(&self, step: u64) -> String {
        self.hotp.generate(step)
    }

    /// Seconds until the current code changes (at most `period`; computed
    /// without overflow for any `now`, `t0` and `period`).
    pub fn remaining(&self, now: u64) -> Result<u64> {
        let elapsed =
            now.checked_sub(self.t0).ok_or(err(ErrorCode::InvalidTime, "the time is before the start time T0"))?;
        Ok(self.period - elapsed % self.period)
    }

    /// Period in seconds.
    pub fn period(&self) -> u64 {
        self.period
    }
    /// Start time.
    pub fn t0(&self) -> u64 {
        self.t0
    }
    /// Underlying HOTP.
    pub fn hotp(&self) -> &Hotp {
        &self.hotp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precomputed_sha1_is_hmac_sha1_for_every_key_length() {
        let mut rng = crate::crypto::SeededRandom::new([9; 32]);
        for len in [0usize, 1, 10, 20, 63, 64, 65, 100, 200] {
            let mut key = alloc::vec![0u8; len];
            crate::crypto::RandomSource::fill_bytes(&mut rng, &mut key);
            let fast = Sha1Counter::new(&key);
            for c in [0u64, 1, 59, u64::from(u32::MAX) + 7, u64::MAX] {
                assert_eq!(
                    fast.mac(c).to_vec(),
                    hmac(Algorithm::Sha1, &key, &c.to_be_bytes()),
                    "key {len}, counter {c}"
                );
            }
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        let want = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", c as u64, 6, Algorithm::Sha1).unwrap(), *w);
        }
        assert_eq!(hotp(b"12345678901234567890", 7, 8, Algorithm::Sha1).unwrap(), "82162583");
        assert!(hotp(b"k", 0, 5, Algorithm::Sha1).is_err());
        assert!(hotp(b"k", 0, 11, Algorithm::Sha1).is_err());
        assert_eq!(hotp(b"12345678901234567890", 1, 10, Algorithm::Sha1).unwrap(), "1094287082");
    }

    #[test]
    fn totp_rfc6238_row_and_remaining() {
        let t = Totp::new(b"12345678901234567890".to_vec(), Algorithm::Sha1, 8, 30, 0).unwrap();
        assert_eq!(t.generate(59).unwrap(), "94287082");
        assert_eq!(t.generate(20_000_000_000).unwrap(), "65353130");
        assert_eq!(t.remaining(59).unwrap(), 1);
        let t2 = Totp::new(b"k".to_vec(), Algorithm::Sha1, 6, 30, 100).unwrap();
        assert_eq!(t2.step(99).unwrap_err().code(), ErrorCode::InvalidTime);
        assert!(Totp::new(b"k".to_vec(), Algorithm::Sha1, 6, 0, 0).is_err());
    }

    /// Generation accepts any time (only verifiers check the clock), and no
    /// step arithmetic overflows: huge `now`, huge periods, `t0` after `now`.
    #[test]
    fn totp_extreme_times_do_not_overflow() {
        let totp =
            |period: u64, t0: u64| Totp::new(b"12345678901234567890".to_vec(), Algorithm::Sha1, 8, period, t0).unwrap();
        let t = totp(1, 0);
        assert_eq!(t.step(u64::MAX).unwrap(), u64::MAX);
        assert_eq!(t.generate(u64::MAX).unwrap(), t.generate_step(u64::MAX));
        assert_eq!(t.remaining(u64::MAX).unwrap(), 1);
        assert_eq!(t.generate(0).unwrap(), t.generate_step(0));
        let t = totp(u64::MAX, 0);
        assert_eq!(t.step(u64::MAX - 1).unwrap(), 0);
        assert_eq!(t.step(u64::MAX).unwrap(), 1);
        assert_eq!(t.remaining(0).unwrap(), u64::MAX);
        assert_eq!(t.remaining(u64::MAX - 1).unwrap(), 1);
        assert_eq!(t.remaining(u64::MAX).unwrap(), u64::MAX);
        let t = totp(30, 0);
        assert_eq!(t.step(u64::MAX).unwrap(), u64::MAX / 30);
        assert_eq!(t.remaining(u64::MAX).unwrap(), 30 - u64::MAX % 30);
        assert_eq!(t.remaining(59).unwrap(), 1);
        assert_eq!(t.remaining(60).unwrap(), 30);
        // t0 after now, and t0 = u64::MAX.
        let t = totp(30, u64::MAX);
        assert_eq!(t.step(u64::MAX).unwrap(), 0);
        assert_eq!(t.remaining(u64::MAX).unwrap(), 30);
        for now in [0, 59, u64::MAX - 1] {
            assert_eq!(t.step(now).unwrap_err().code(), ErrorCode::InvalidTime);
            assert_eq!(t.generate(now).unwrap_err().code(), ErrorCode::InvalidTime);
            assert_eq!(t.remaining(now).unwrap_err().code(), ErrorCode::InvalidTime);
        }
        assert_eq!(hotp(b"12345678901234567890", u64::MAX, 6, Algorithm::Sha1).unwrap().len(), 6);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(Algorithm::parse("SHA-256").unwrap(), Algorithm::Sha256);
        assert_eq!(Algorithm::parse("sha512").unwrap(), Algorithm::Sha512);
        assert!(Algorithm::parse("md5").is_err());
        assert!(Algorithm::parse("sha1sha1sha1").is_err());
    }
}
