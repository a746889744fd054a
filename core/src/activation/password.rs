//! Secrets users type during activation: a salted slow hash for stored
//! secrets (activation codes, initial passwords, new passwords, recovery
//! codes) and the policy a new password must meet.
//!
//! The hash is PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) with a random 16-byte salt
//! and a per-hash iteration count ([`DEFAULT_HASH_ITERATIONS`] by default),
//! so a stolen portal database costs an attacker that many HMAC calls per
//! guess and per account.
//!
//! The policy follows NIST SP 800-63B §3.1.1.2: a length range and a
//! blocklist (commonly used passwords, trivial patterns, context words), and
//! no composition rules ("one digit, one symbol, ...").
//!
//! Lengths are counted in Unicode code points (`char`s), as NIST asks. This
//! crate has no normalization tables: a host that accepts non-ASCII passwords
//! should apply Unicode NFKC normalization to the password before calling
//! [`PasswordPolicy::check`] and before hashing it, so that the same typed
//! password always gives the same bytes.

use crate::crypto::{random_array, RandomSource};
use crate::error::{err, Error, ErrorCode, Result};
use crate::secret::ct_eq;
use alloc::string::String;
use core::fmt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Output length of HMAC-SHA256, the PBKDF2 block size.
const PRF_LEN: usize = 32;

/// PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), filling `out` (any length ≥ 1).
/// Iterations ≥ 1 (0 is treated as 1).
///
/// The HMAC is keyed with the password once; every iteration clones that
/// keyed state instead of hashing the key again.
///
/// As in every PBKDF2-HMAC, HMAC's key padding means passwords that differ
/// only by trailing zero bytes (up to 64 bytes long) give the same output, and
/// a password longer than 64 bytes gives the output of its SHA-256 digest.
/// Typed text contains no NUL, so neither matters for user secrets.
pub(crate) fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    // HMAC accepts keys of any length: this cannot fail.
    let prf = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(password).unwrap_or_else(|_| unreachable!());
    let mut u = Zeroizing::new([0u8; PRF_LEN]);
    let mut t = Zeroizing::new([0u8; PRF_LEN]);
    for (i, block) in out.chunks_mut(PRF_LEN).enumerate() {
        // Block indices start at 1 (INT(i) is a 32-bit big-endian integer).
        let index = (i as u32).wrapping_add(1);
        let mut m = prf.clone();
        m.update(salt);
        m.update(&index.to_be_bytes());
        u.copy_from_slice(&m.finalize().into_bytes());
        t.copy_from_slice(&u[..]);
        for _ in 1..iterations {
            let mut m = prf.clone();
            m.update(&u[..]);
            u.copy_from_slice(&m.finalize().into_bytes());
            for (a, b) in t.iter_mut().zip(u.iter()) {
                *a ^= b;
            }
        }
        block.copy_from_slice(&t[..block.len()]);
    }
}

/// Fewest PBKDF2 iterations a portal may set (NIST SP 800-132 / 800-63B guidance).
pub const MIN_HASH_ITERATIONS: u32 = 10_000;
/// Default iterations (OWASP 2023 for PBKDF2-HMAC-SHA256).
pub const DEFAULT_HASH_ITERATIONS: u32 = 600_000;
/// Most iterations accepted (a typo must not make every check take minutes).
pub const MAX_HASH_ITERATIONS: u32 = 10_000_000;

/// Check an iteration count: `INVALID_INPUT` unless it is in
/// [`MIN_HASH_ITERATIONS`]`..=`[`MAX_HASH_ITERATIONS`].
pub(crate) fn check_iterations(iterations: u32) -> Result<()> {
    if (MIN_HASH_ITERATIONS..=MAX_HASH_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(Error::with_detail(
            ErrorCode::InvalidInput,
            alloc::format!(
                "the password hash iterations must be between {MIN_HASH_ITERATIONS} and {MAX_HASH_ITERATIONS}"
            ),
        ))
    }
}

/// A salted slow hash of a user secret (activation code, initial password,
/// new password, recovery code): PBKDF2-HMAC-SHA256 with a random 16-byte
/// salt, 32 bytes of output.
///
/// `Debug` shows only the iteration count, never the salt or the hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowHash {
    salt: [u8; 16],
    iterations: u32,
    hash: [u8; 32],
}

impl SlowHash {
    /// Hash `secret` with a fresh random 16-byte salt. `INVALID_INPUT` if
    /// `iterations` is outside [`MIN_HASH_ITERATIONS`]`..=`[`MAX_HASH_ITERATIONS`].
    pub(crate) fn new(secret: &[u8], iterations: u32, rng: &mut dyn RandomSource) -> Result<SlowHash> {
        check_iterations(iterations)?;
        let salt = random_array::<16>(rng);
        let mut hash = [0u8; 32];
        pbkdf2_sha256(secret, &salt, iterations, &mut hash);
        Ok(SlowHash { salt, iterations, hash })
    }

    /// Whether `secret` is the hashed secret (constant-time comparison of the
    /// 32-byte hashes). A hash whose iteration count is out of range (a
    /// corrupt or tampered record) never matches, and costs no work.
    pub(crate) fn matches(&self, secret: &[u8]) -> bool {
        if check_iterations(self.iterations).is_err() {
            return false;
        }
        let mut candidate = Zeroizing::new([0u8; 32]);
        pbkdf2_sha256(secret, &self.salt, self.iterations, &mut candidate[..]);
        ct_eq(&candidate[..], &self.hash)
    }

    /// The iterations it was made with.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

impl fmt::Debug for SlowHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlowHash").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

/// The built-in blocklist: some of the most common leaked passwords of at
/// least 8 characters, lowercase, sorted (byte order) and without duplicates
/// (binary search; a unit test checks the order).
#[rustfmt::skip]
const COMMON_PASSWORDS: &[&str] = &[
    "00000000", "000000000", "0000000000", "0987654321", "10203040", "11111111", "111111111", "1111111111",
    "11223344", "12121212", "12312312", "123123123", "123321123", "12341234", "12344321", "1234512345",
    "1234554321", "123456123", "123456654321", "12345678", "123456789", "1234567890", "12345678910",
    "123456789a", "123456aa", "123456qq", "1234abcd", "1234qwer", "123654789", "147258369", "147852369",
    "159753456", "1q2w3e4r", "1q2w3e4r5", "1q2w3e4r5t", "1q2w3e4r5t6y", "1qaz2wsx", "1qaz2wsx3edc",
    "1qaz@wsx", "1qazxsw2", "20102010", "22222222", "5201314520", "55555555", "66666666", "741852963",
    "77777777", "789456123", "87654321", "88888888", "987654321", "99999999", "a1234567", "a12345678",
    "a123456789", "aa123456", "aa12345678", "aaaaaaaa", "abc12345", "abc123456", "abcd1234", "abcdefg1",
    "abcdefgh", "admin123", "admin1234", "adminadmin", "administrator", "alexander", "alexandra", "arsenal1",
    "asdasdasd", "asdf1234", "asdfasdf", "asdfghjk", "asdfghjkl", "azerty123", "azertyuiop", "babygirl",
    "babygirl1", "barcelona", "baseball", "baseball1", "basketball", "batman123", "beautiful", "bigdaddy",
    "blahblah", "blink182", "brittany", "butterfly", "caroline", "changeme", "changeme1", "charlie1",
    "chelsea1", "chocolate", "christian", "computer", "contrasena", "corvette", "cowboys1", "danielle",
    "december", "dolphins", "elephant", "elizabeth", "estrella", "football", "football1", "hardcore",
    "harrypotter", "hellokitty", "iloveyou", "iloveyou1", "iloveyou12", "iloveyou2", "internet", "isabella",
    "jennifer", "jessica1", "jonathan", "jordan23", "juventus", "letmein1", "letmein123", "liverpool",
    "liverpool1", "lovelove", "manchester", "mariposa", "marlboro", "maverick", "mercedes", "michael1",
    "michelle", "midnight", "minecraft", "motdepasse", "mustang1", "mypassword", "newpassword", "nicholas",
    "nopassword", "november", "p@ssw0rd", "p@ssword", "pa$$word", "parola123", "pass1234", "passw0rd",
    "password", "password!", "password01", "password1", "password12", "password123", "password1234",
    "password12345", "password2", "passwort", "passwort1", "patricia", "pokemon123", "precious", "princesa",
    "princess", "princess1", "q1w2e3r4", "q1w2e3r4t5", "q1w2e3r4t5y6", "qazwsxedc", "qq123456", "qwe123qwe",
    "qweasdzxc", "qweqweqwe", "qwer1234", "qwerasdf", "qwerty12", "qwerty123", "qwerty1234", "qwerty12345",
    "qwertyui", "qwertyuiop", "qwertyuiop123", "qwertz123", "qwertzuiop", "realmadrid", "samantha",
    "scorpion", "secret123", "senha123", "september", "softball", "spiderman", "spongebob", "starwars",
    "starwars1", "steelers", "stephanie", "sunshine", "sunshine1", "superman", "superman1", "sweetheart",
    "test1234", "testing123", "testtest", "tinkerbell", "trustno1", "victoria", "welcome1", "welcome123",
    "whatever", "woaini1314", "yankees1", "zaq12wsx", "zaq1xsw2", "zaq1zaq1", "zxcvbnm1", "zxcvbnm123",
];

const TOO_LONG_PREFIX: &str = "the new password must have at most";
const COMMON: &str = "the new password is a commonly used password";
const COMPROMISED: &str = "the new password is on the list of compromised passwords";
const TRIVIAL: &str = "the new password must not be a single repeated character or a simple sequence";
const CONTEXT: &str = "the new password must not contain the user ID or the account name";
const NOT_EQUAL: &str = "the new password must differ from the initial password";

/// The new-password rules (NIST SP 800-63B §3.1.1.2): a length range and a
/// blocklist, no composition rules.
///
/// Lengths are counted in Unicode code points; a host that accepts
/// non-ASCII passwords should NFKC-normalize them before
/// [`check`](PasswordPolicy::check) (see the module documentation).
/// A deserialized policy is not checked: call
/// [`validate`](PasswordPolicy::validate) (`check` does too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode code points), 8..=64; default 12.
    pub min_len: u8,
    /// Most characters, min_len..=256 and at least 64; default 64.
    pub max_len: u16,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_len: 12, max_len: 64 }
    }
}

impl PasswordPolicy {
    /// Check the policy itself: `INVALID_INPUT` unless `min_len` is in
    /// 8..=64 and `max_len` in 64..=256 (so never below `min_len`).
    pub fn validate(&self) -> Result<()> {
        if !(8..=64).contains(&self.min_len) {
            return Err(err(ErrorCode::InvalidInput, "the password policy's minimum length must be between 8 and 64"));
        }
        if !(64..=256).contains(&self.max_len) || self.max_len < u16::from(self.min_len) {
            return Err(err(
                ErrorCode::InvalidInput,
                "the password policy's maximum length must be between 64 and 256",
            ));
        }
        Ok(())
    }

    /// Check a new password.
    ///
    /// - `context`: words the password may not contain (the user ID, the
    ///   account name), compared case-insensitively; only context words of at
    ///   least 4 characters (after trimming spaces) count.
    /// - `not_equal`: secrets the password may not be (the initial password),
    ///   compared exactly and in constant time.
    /// - `extra_blocklist`: the portal's own list of compromised passwords,
    ///   matched case-insensitively and exactly.
    ///
    /// The rules, checked in this order, each refused with
    /// `PASSWORD_POLICY` and its own detail: too short, too long (in code
    /// points), a commonly used password (the built-in list, then
    /// `extra_blocklist`), a single repeated character or a plain ascending
    /// or descending sequence (`aaaaaaaa`, `12345678`, `abcdefgh`,
    /// `87654321`, in any case), contains a context word, equal to a
    /// `not_equal` secret. An invalid policy is `INVALID_INPUT`. No detail
    /// ever contains the password.
    pub fn check(
        &self,
        password: &str,
        context: &[&str],
        not_equal: &[&str],
        extra_blocklist: &[String],
    ) -> Result<()> {
        self.validate()?;
        let refuse = |detail: &'static str| Err(err(ErrorCode::PasswordPolicy, detail));

        let len = password.chars().count();
        if len < usize::from(self.min_len) {
            return Err(Error::with_detail(
                ErrorCode::PasswordPolicy,
                alloc::format!("the new password must have at least {} characters", self.min_len),
            ));
        }
        if len > usize::from(self.max_len) {
            return Err(Error::with_detail(
                ErrorCode::PasswordPolicy,
                alloc::format!("{TOO_LONG_PREFIX} {} characters", self.max_len),
            ));
        }

        let lower = Zeroizing::new(password.to_lowercase());
        if COMMON_PASSWORDS.binary_search(&lower.as_str()).is_ok() {
            return refuse(COMMON);
        }
        if extra_blocklist.iter().any(|listed| eq_ignore_case(password, listed)) {
            return refuse(COMPROMISED);
        }
        if is_trivial(&lower) {
            return refuse(TRIVIAL);
        }
        for word in context {
            let word = word.trim();
            if word.chars().count() >= 4 && lower.contains(word.to_lowercase().as_str()) {
                return refuse(CONTEXT);
            }
        }
        // Every comparison runs (no early exit on a match): lengths only leak.
        let equal = not_equal.iter().fold(false, |acc, s| acc | ct_eq(password.as_bytes(), s.as_bytes()));
        if equal {
            return refuse(NOT_EQUAL);
        }
        Ok(())
    }
}

/// Case-insensitive equality (Unicode lowercase mapping), without allocating.
fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// A single repeated character, or each character the code point after
/// (or before) the previous one: `aaaaaaaa`, `12345678`, `abcdefgh`,
/// `87654321`; digits wrap around (`12345678901234`, `32109876`).
fn is_trivial(s: &str) -> bool {
    let mut chars = s.chars().map(u32::from);
    let Some(mut prev) = chars.next() else {
        return true;
    };
    let digit = |c: u32| (u32::from('0')..=u32::from('9')).contains(&c);
    let (mut same, mut up, mut down) = (true, true, true);
    for c in chars {
        let wraps = digit(c) && digit(prev);
        same &= c == prev;
        up &= c == prev.wrapping_add(1) || (wraps && prev == u32::from('9') && c == u32::from('0'));
        down &= c == prev.wrapping_sub(1) || (wraps && prev == u32::from('0') && c == u32::from('9'));
        prev = c;
    }
    same || up || down
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;
    use crate::encoding::hex_decode;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    fn pbkdf2(p: &[u8], s: &[u8], c: u32, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        pbkdf2_sha256(p, s, c, &mut out);
        out
    }

    fn rng() -> SeededRandom {
        SeededRandom::new([7; 32])
    }

    #[test]
    fn pbkdf2_known_answers() {
        // Computed with Python's hashlib.pbkdf2_hmac('sha256', ...).
        let cases: &[(&[u8], &[u8], u32, &str)] = &[
            (b"password", b"salt", 1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
            (b"password", b"salt", 2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
            (b"password", b"salt", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9",
            ),
            (b"pass\0word", b"sa\0lt", 4096, "89b69d0516f829893c696226650a8687"),
        ];
        for (p, s, c, hex) in cases {
            let want = hex_decode(hex).unwrap();
            assert_eq!(pbkdf2(p, s, *c, want.len()), want, "c={c}");
        }
    }

    #[test]
    fn pbkdf2_rfc7914_section_11() {
        assert_eq!(
            pbkdf2(b"passwd", b"salt", 1, 64),
            hex_decode(
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
                 49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
            )
            .unwrap()
        );
        assert_eq!(
            pbkdf2(b"Password", b"NaCl", 80_000, 64),
            hex_decode(
                "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
                 a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
            )
            .unwrap()
        );
    }

    #[test]
    fn pbkdf2_short_output_is_a_prefix() {
        let full = pbkdf2(b"password", b"salt", 2, 64);
        assert_eq!(pbkdf2(b"password", b"salt", 2, 1), full[..1]);
        assert_eq!(pbkdf2(b"password", b"salt", 2, 33), full[..33]);
    }

    #[test]
    fn slow_hash_matches_only_the_secret() {
        let h = SlowHash::new(b"correct horse", MIN_HASH_ITERATIONS, &mut rng()).unwrap();
        assert_eq!(h.iterations(), MIN_HASH_ITERATIONS);
        assert!(h.matches(b"correct horse"));
        assert!(!h.matches(b"correct horsf"));
        assert!(!h.matches(b"Correct horse"));
        assert!(!h.matches(b"correct horse "));
        assert!(!h.matches(b""));
        assert!(!h.matches(b"wrong"));
        let mut expected = [0u8; 32];
        pbkdf2_sha256(b"correct horse", &h.salt, MIN_HASH_ITERATIONS, &mut expected);
        assert_eq!(h.hash, expected);
    }

    #[test]
    fn slow_hash_of_the_empty_secret() {
        let h = SlowHash::new(b"", MIN_HASH_ITERATIONS, &mut rng()).unwrap();
        assert!(h.matches(b""));
        assert!(!h.matches(b" "));
        assert!(!h.matches(b"a"));
        // HMAC pads its key with zeros: as in every PBKDF2-HMAC, trailing NULs
        // are not seen (documented on `pbkdf2_sha256`).
        assert!(h.matches(b"\0"));
    }

    #[test]
    fn slow_hash_iteration_bounds() {
        for bad in [0, 1, MIN_HASH_ITERATIONS - 1, MAX_HASH_ITERATIONS + 1, u32::MAX] {
            let e = SlowHash::new(b"x", bad, &mut rng()).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidInput);
            assert!(e.detail().contains("10000") && e.detail().contains("10000000"), "{}", e.detail());
        }
        assert_eq!(MIN_HASH_ITERATIONS - 1, 9_999);
        assert_eq!(MAX_HASH_ITERATIONS + 1, 10_000_001);
        assert!(check_iterations(MIN_HASH_ITERATIONS).is_ok());
        assert!(check_iterations(DEFAULT_HASH_ITERATIONS).is_ok());
        assert!(check_iterations(MAX_HASH_ITERATIONS).is_ok());
    }

    #[test]
    fn slow_hash_out_of_range_record_never_matches() {
        let mut h = SlowHash::new(b"secret", MIN_HASH_ITERATIONS, &mut rng()).unwrap();
        h.iterations = 1;
        let mut one = [0u8; 32];
        pbkdf2_sha256(b"secret", &h.salt, 1, &mut one);
        h.hash = one;
        assert!(!h.matches(b"secret"));
    }

    #[test]
    fn slow_hash_salt_is_fresh() {
        let mut r = rng();
        let a = SlowHash::new(b"same secret", MIN_HASH_ITERATIONS, &mut r).unwrap();
        let b = SlowHash::new(b"same secret", MIN_HASH_ITERATIONS, &mut r).unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash);
        assert_ne!(a, b);
        assert!(a.matches(b"same secret") && b.matches(b"same secret"));
    }

    #[test]
    fn slow_hash_debug_is_redacted() {
        let h = SlowHash::new(b"secret", MIN_HASH_ITERATIONS, &mut rng()).unwrap();
        let d = format!("{h:?}");
        assert_eq!(d, "SlowHash { iterations: 10000, .. }");
        assert!(!d.contains(&format!("{:?}", h.salt)) && !d.contains(&format!("{}", h.hash[0])));
    }

    #[test]
    fn slow_hash_serde_round_trip() {
        let h = SlowHash::new(b"secret", MIN_HASH_ITERATIONS, &mut rng()).unwrap();
        let bytes = postcard::to_allocvec(&h).unwrap();
        let back: SlowHash = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);
        assert!(back.matches(b"secret"));
    }

    #[test]
    fn common_passwords_are_sorted_unique_lowercase_and_long() {
        assert!(COMMON_PASSWORDS.len() >= 190, "{}", COMMON_PASSWORDS.len());
        for w in COMMON_PASSWORDS.windows(2) {
            assert!(w[0] < w[1], "{:?} >= {:?}", w[0], w[1]);
        }
        for p in COMMON_PASSWORDS {
            assert!(p.chars().count() >= 8, "{p}");
            assert_eq!(*p, p.to_lowercase(), "{p}");
            assert!(p.is_ascii(), "{p}");
        }
    }

    // ---- policy --------------------------------------------------------------

    const EIGHT: PasswordPolicy = PasswordPolicy { min_len: 8, max_len: 64 };

    fn ok(policy: &PasswordPolicy, pw: &str, context: &[&str], not_equal: &[&str], extra: &[String]) {
        if let Err(e) = policy.check(pw, context, not_equal, extra) {
            panic!("{pw:?} refused: {e:?}");
        }
    }

    /// Refused with PASSWORD_POLICY; returns the detail (checked not to hold the password).
    fn refused(policy: &PasswordPolicy, pw: &str, context: &[&str], not_equal: &[&str], extra: &[String]) -> String {
        let e = policy.check(pw, context, not_equal, extra).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PasswordPolicy, "{pw:?}: {e:?}");
        // Every detail is a fixed text (or the policy's bounds): never the password.
        let d = e.detail();
        let fixed = [COMMON, COMPROMISED, TRIVIAL, CONTEXT, NOT_EQUAL];
        let bounds = [
            format!("the new password must have at least {} characters", policy.min_len),
            format!("{TOO_LONG_PREFIX} {} characters", policy.max_len),
        ];
        assert!(fixed.contains(&d) || bounds.iter().any(|b| b == d), "{pw:?}: unexpected detail {d:?}");
        d.to_string()
    }

    #[test]
    fn default_policy_is_12_to_64_and_valid() {
        let p = PasswordPolicy::default();
        assert_eq!((p.min_len, p.max_len), (12, 64));
        assert!(p.validate().is_ok());
    }

    #[test]
    fn policy_validation() {
        let good = [(8, 64), (12, 64), (64, 64), (8, 256), (64, 256), (20, 100)];
        for (min_len, max_len) in good {
            assert!(PasswordPolicy { min_len, max_len }.validate().is_ok(), "{min_len} {max_len}");
        }
        let bad = [(0, 64), (7, 64), (65, 256), (255, 256), (8, 63), (12, 0), (8, 257), (8, u16::MAX)];
        for (min_len, max_len) in bad {
            let p = PasswordPolicy { min_len, max_len };
            assert_eq!(p.validate().unwrap_err().code(), ErrorCode::InvalidInput, "{min_len} {max_len}");
            // check() refuses to run with a bad policy.
            assert_eq!(
                p.check("a perfectly fine passphrase", &[], &[], &[]).unwrap_err().code(),
                ErrorCode::InvalidInput
            );
        }
    }

    #[test]
    fn length_bounds_in_code_points() {
        let p = PasswordPolicy::default();
        ok(&p, "tangerine-k9", &[], &[], &[]); // exactly 12
        let d = refused(&p, "tangerine-k", &[], &[], &[]); // 11
        assert_eq!(d, "the new password must have at least 12 characters");
        let max: String = "kq7-".repeat(16);
        assert_eq!(max.chars().count(), 64);
        ok(&p, &max, &[], &[], &[]);
        let d = refused(&p, &format!("{max}x"), &[], &[], &[]);
        assert_eq!(d, "the new password must have at most 64 characters");
        ok(&PasswordPolicy { min_len: 8, max_len: 256 }, &"kq7-".repeat(64), &[], &[], &[]);
        refused(&PasswordPolicy { min_len: 8, max_len: 256 }, &"kq7-".repeat(65), &[], &[], &[]);
        refused(&p, "", &[], &[], &[]);
    }

    #[test]
    fn non_ascii_length_counts_code_points() {
        let p = PasswordPolicy::default();
        let twelve = "ñandú-pájaro";
        assert_eq!((twelve.chars().count(), twelve.len()), (12, 15));
        ok(&p, twelve, &[], &[], &[]);
        let eleven = "ñandú-pájar";
        assert!(eleven.len() >= 12);
        let d = refused(&p, eleven, &[], &[], &[]);
        assert!(d.contains("at least 12"), "{d}");
        let max: String = "äöü-".repeat(16);
        assert_eq!((max.chars().count(), max.len()), (64, 112));
        ok(&p, &max, &[], &[], &[]);
        refused(&p, &format!("{max}ß"), &[], &[], &[]);
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for pw in ["password", "PASSWORD", "Password1", "12345678", "123456789", "1234567890", "qwertyuiop"] {
            assert_eq!(refused(&EIGHT, pw, &[], &[], &[]), COMMON, "{pw}");
        }
        for pw in ["iloveyou", "sunshine", "football", "baseball", "11111111", "Welcome1", "passw0rd", "trustno1"] {
            assert_eq!(refused(&EIGHT, pw, &[], &[], &[]), COMMON, "{pw}");
        }
        for pw in COMMON_PASSWORDS {
            assert_eq!(refused(&EIGHT, pw, &[], &[], &[]), COMMON, "{pw}");
        }
        assert_eq!(refused(&PasswordPolicy::default(), "Password1234", &[], &[], &[]), COMMON);
        ok(&EIGHT, "password-of-mine", &[], &[], &[]);
    }

    #[test]
    fn extra_blocklist_is_case_insensitive_and_exact() {
        let extra = vec!["Hunter2Hunter2".to_string(), "Grüne-Wiese-7".to_string()];
        for pw in ["hunter2hunter2", "HUNTER2HUNTER2", "Hunter2Hunter2", "grüne-wiese-7", "GRÜNE-WIESE-7"] {
            assert_eq!(refused(&EIGHT, pw, &[], &[], &extra), COMPROMISED, "{pw}");
        }
        ok(&EIGHT, "hunter2hunter3", &[], &[], &extra);
        ok(&EIGHT, "hunter2hunter2!", &[], &[], &extra);
        ok(&EIGHT, "hunter2hunter", &[], &[], &extra);
        ok(&EIGHT, "hunter2hunter2", &[], &[], &[]);
    }

    #[test]
    fn trivial_patterns_are_refused() {
        let trivial = [
            "aaaaaaaaaaaa",
            "ZZZZZZZZZZZZ",
            "zZzZzZzZzZzZ",
            "abcdefghijkl",
            "ABCDEFGHIJKL",
            "lkjihgfedcba",
            "0123456789:;",
            "444444444444",
            "ÄÄÄÄÄÄÄÄÄÄÄÄ",
        ];
        for pw in trivial {
            assert_eq!(refused(&PasswordPolicy::default(), pw, &[], &[], &[]), TRIVIAL, "{pw}");
        }
        assert_eq!(refused(&EIGHT, "98765432", &[], &[], &[]), TRIVIAL);
        assert_eq!(refused(&EIGHT, "bcdefghi", &[], &[], &[]), TRIVIAL);
        ok(&PasswordPolicy::default(), "abcdefghijkm", &[], &[], &[]);
        ok(&PasswordPolicy::default(), "aaaaaaaaaaab", &[], &[], &[]);
        ok(&EIGHT, "13579bdf", &[], &[], &[]);
    }

    #[test]
    fn context_words_are_refused_case_insensitively() {
        let p = PasswordPolicy::default();
        let ctx = ["JSmith42", "Example Bank"];
        for pw in ["my-jsmith42-secret", "MY-JSMITH42-SECRET", "jsmith42jsmith42", "at example bank!"] {
            assert_eq!(refused(&p, pw, &ctx, &[], &[]), CONTEXT, "{pw}");
        }
        ok(&p, "my-jsmith-4-2-secret", &ctx, &[], &[]);
        assert_eq!(refused(&p, "grüße an MÜLLER", &["Müller"], &[], &[]), CONTEXT);
        assert_eq!(refused(&p, "the-bank-of-jane", &["  jane  "], &[], &[]), CONTEXT);
    }

    #[test]
    fn short_context_words_are_ignored() {
        let p = PasswordPolicy::default();
        ok(&p, "bob-likes-tea-9", &["bob", "Tea", "", "   ", " bo "], &[], &[]);
        assert_eq!(refused(&p, "bob-likes-tea-9", &["bob", "LIKES"], &[], &[]), CONTEXT);
    }

    #[test]
    fn must_differ_from_the_initial_password() {
        let p = PasswordPolicy::default();
        let initial = "Xk4-pQ9z-Lm2w";
        let d = refused(&p, initial, &[], &["other-secret-1", initial], &[]);
        assert_eq!(d, NOT_EQUAL);
        assert_eq!(d, "the new password must differ from the initial password");
        ok(&p, "Xk4-pQ9z-Lm2x", &[], &[initial], &[]);
        ok(&p, "XK4-PQ9Z-LM2W", &[], &[initial], &[]);
    }

    #[test]
    fn good_passwords_pass_every_rule() {
        let p = PasswordPolicy::default();
        let extra = vec!["hunter2hunter2".to_string()];
        for pw in
            ["correct horse battery staple", "Tr0ub4dor&3xyz", "ein Schiff wird kommen", "日本語のパスワードです!"]
        {
            ok(&p, pw, &["jsmith42", "Example Bank"], &["Xk4-pQ9z-Lm2w"], &extra);
        }
    }
}
