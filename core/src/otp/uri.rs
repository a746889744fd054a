//! `otpauth://` Key URIs (the Google Authenticator "Key Uri Format").
//!
//! ```text
//! otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//! otpauth://hotp/Issuer:account?secret=BASE32&issuer=Issuer&counter=0
//! ```
//!
//! Parsing is lenient where authenticator apps are (case of the scheme and
//! type, base32 case/spaces/padding, `%3A` as the label colon, spaces after
//! the colon, unknown parameters) and strict where ambiguity would hurt
//! (duplicate parameters, issuer parameter contradicting the label, bad
//! percent-encoding, short secrets unless [`SecretPolicy::AllowShort`]).
//!
//! ```
//! use tessera_core::otp::uri::{KeyUri, SecretPolicy};
//! let uri = "otpauth://totp/ACME%20Co:john@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co";
//! let key = KeyUri::parse(uri, SecretPolicy::Strict).unwrap();
//! assert_eq!(key.issuer.as_deref(), Some("ACME Co"));
//! assert_eq!(key.account, "john@example.com");
//! assert_eq!(key.generate(59).unwrap(), "287082");
//! ```

use super::{Algorithm, Hotp, Totp, DIGITS_RANGE};
use crate::encoding::{base32_decode, base32_encode};
use crate::error::{err, Error, ErrorCode, Result};
use crate::secret::SecretBytes;
use alloc::format;
use alloc::string::String;

/// Minimum secret length accepted by [`SecretPolicy::Strict`] (RFC 4226 R6).
const MIN_SECRET_LEN: usize = 16;
/// TOTP period used when the URI has none.
const DEFAULT_PERIOD: u64 = 30;
/// Digits used when the URI has none.
const DEFAULT_DIGITS: u8 = 6;

/// HOTP or TOTP, with the moving factor of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpKind {
    /// Counter based (RFC 4226); `counter` is the next counter to use.
    Hotp {
        /// The counter.
        counter: u64,
    },
    /// Time based (RFC 6238), `period` seconds per step, T0 = 0.
    Totp {
        /// Seconds per step (> 0).
        period: u64,
    },
}

/// How strict [`KeyUri::parse`] is about the secret length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SecretPolicy {
    /// Secrets below 128 bits are rejected with `SECRET_TOO_SHORT`
    /// (RFC 4226 R6).
    #[default]
    Strict,
    /// Accept short secrets (many services issue 80-bit ones). Empty
    /// secrets are still rejected.
    AllowShort,
}

/// A parsed `otpauth://` Key URI.
///
/// An empty `issuer` (`Some("")`) is treated as no issuer by [`to_uri`]
/// (`parse` never produces one). Any value round-trips through
/// `to_uri`/`parse` except an account that starts with a space **and**
/// contains a `:` (the label grammar cannot express it, since spaces after
/// the label colon are insignificant).
///
/// [`to_uri`]: KeyUri::to_uri
#[derive(Clone, Debug, PartialEq)]
pub struct KeyUri {
    /// HOTP (with counter) or TOTP (with period).
    pub kind: OtpKind,
    /// The provider or service, if known.
    pub issuer: Option<String>,
    /// The account name (non-empty).
    pub account: String,
    /// The shared secret (redacted in `Debug`).
    pub secret: SecretBytes,
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length, 6..=10.
    pub digits: u8,
}

const fn bad_uri(detail: &'static str) -> Error {
    err(ErrorCode::InvalidUri, detail)
}

/// RFC 3986 percent-decoding to UTF-8. `+` stays a literal `+`.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = crate::encoding::percent_decode(s).ok_or_else(|| bad_uri("'%' must be followed by two hex digits"))?;
    String::from_utf8(bytes).map_err(|_| bad_uri("percent-encoded text is not valid UTF-8"))
}

/// Percent-encode everything except RFC 3986 unreserved characters.
fn percent_encode(s: &str, out: &mut String) {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(H[usize::from(c >> 4)]));
            out.push(char::from(H[usize::from(c & 15)]));
        }
    }
}

/// A non-negative decimal integer of ASCII digits only (no sign).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| acc.checked_mul(10)?.checked_add(u64::from(c - b'0')))
}

/// Split a decoded label into (issuer prefix, account). When the issuer
/// parameter is known and the label starts with `issuer:`, that exact
/// prefix is taken (so an issuer may itself contain `:`); otherwise the
/// label is split on its first `:`. Spaces after the colon are dropped.
fn split_label(label: &str, issuer_param: Option<&str>) -> (Option<String>, String) {
    let by_param =
        issuer_param.filter(|p| !p.is_empty()).and_then(|p| Some((p, label.strip_prefix(p)?.strip_prefix(':')?)));
    let (prefix, rest) = match by_param {
        Some((p, rest)) => (p, rest),
        None => match label.split_once(':') {
            Some(split) => split,
            None => return (None, String::from(label)),
        },
    };
    let prefix = if prefix.is_empty() { None } else { Some(String::from(prefix)) };
    (prefix, String::from(rest.trim_start_matches(' ')))
}

/// The issuer and account of a decoded label plus the issuer parameter.
fn resolve_label(label: &str, issuer_param: Option<&str>) -> Result<(Option<String>, String)> {
    let issuer_param = issuer_param.filter(|p| !p.is_empty());
    let (prefix, account) = split_label(label, issuer_param);
    if account.is_empty() {
        return Err(bad_uri("the label has no account name"));
    }
    let issuer = match (issuer_param, prefix) {
        (Some(p), Some(l)) if p != l => return Err(bad_uri("issuer parameter and label prefix differ")),
        (Some(p), _) => Some(String::from(p)),
        (None, l) => l,
    };
    Ok((issuer, account))
}

/// Record a known parameter, rejecting a second occurrence.
fn set_once(slot: &mut Option<String>, value: String) -> Result<()> {
    if slot.is_some() {
        return Err(bad_uri("a parameter appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

impl KeyUri {
    /// Parse an `otpauth://hotp/...` or `otpauth://totp/...` URI.
    ///
    /// Errors: `INVALID_URI` (structure, label, percent-encoding, missing
    /// secret/counter, duplicate parameters, issuer mismatch),
    /// `INVALID_SECRET` (bad or empty base32), `SECRET_TOO_SHORT`,
    /// `INVALID_ALGORITHM`, `INVALID_DIGITS`, `INVALID_TIME` (period).
    pub fn parse(uri: &str, policy: SecretPolicy) -> Result<KeyUri> {
        let uri = uri.trim_matches(|c: char| c.is_ascii_whitespace());
        const SCHEME: &str = "otpauth://";
        let rest = match uri.get(..SCHEME.len()) {
            Some(s) if s.eq_ignore_ascii_case(SCHEME) => &uri[SCHEME.len()..],
            _ => return Err(bad_uri("not an otpauth:// URI")),
        };
        // Drop a fragment (RFC 3986 §3.5); it carries nothing here.
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (kind, raw_label) = path.split_once('/').ok_or(bad_uri("the URI has no label (otpauth://TYPE/LABEL)"))?;
        let is_hotp = if kind.eq_ignore_ascii_case("totp") {
            false
        } else if kind.eq_ignore_ascii_case("hotp") {
            true
        } else {
            return Err(bad_uri("the OTP type must be hotp or totp"));
        };
        let label = percent_decode(raw_label)?;

        let (mut secret, mut issuer, mut algorithm, mut digits, mut period, mut counter) =
            (None, None, None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k)?;
            let slot = match key.to_ascii_lowercase().as_str() {
                "secret" => &mut secret,
                "issuer" => &mut issuer,
                "algorithm" => &mut algorithm,
                "digits" => &mut digits,
                "period" => &mut period,
                "counter" => &mut counter,
                _ => continue, // unknown parameters are ignored
            };
            set_once(slot, percent_decode(v)?)?;
        }

        let (issuer, account) = resolve_label(&label, issuer.as_deref())?;

        let algorithm = match algorithm {
            Some(a) => Algorithm::parse(&a)?,
            None => Algorithm::Sha1,
        };
        let digits = match digits {
            None => DEFAULT_DIGITS,
            Some(d) => match parse_u64(&d) {
                Some(n) if n <= 10 && DIGITS_RANGE.contains(&(n as u8)) => n as u8,
                _ => return Err(err(ErrorCode::InvalidDigits, "digits must be between 6 and 10")),
            },
        };
        let period = match period {
            None => DEFAULT_PERIOD,
            Some(p) => match parse_u64(&p) {
                Some(n) if n > 0 => n,
                _ => return Err(err(ErrorCode::InvalidTime, "the period must be a whole number of seconds above 0")),
            },
        };
        let counter = match counter {
            None => None,
            Some(c) => Some(parse_u64(&c).ok_or(bad_uri("the counter must be a non-negative decimal integer"))?),
        };
        let kind = if is_hotp {
            OtpKind::Hotp { counter: counter.ok_or(bad_uri("a hotp URI requires a counter parameter"))? }
        } else {
            OtpKind::Totp { period }
        };

        let secret = secret.ok_or(bad_uri("the secret parameter is missing"))?;
        let secret = SecretBytes::new(base32_decode(&secret)?);
        if secret.is_empty() {
            return Err(err(ErrorCode::InvalidSecret, "the secret is empty"));
        }
        if policy == SecretPolicy::Strict && secret.len() < MIN_SECRET_LEN {
            return Err(Error::with_detail(
                ErrorCode::SecretTooShort,
                format!("the secret is {} bits, below the 128 bits RFC 4226 requires", secret.len() * 8),
            ));
        }

        Ok(KeyUri { kind, issuer, account, secret, algorithm, digits })
    }

    /// The canonical URI: `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30`
    /// (`counter=N` instead of `period` for HOTP; no issuer parts without an
    /// issuer). Label and values are percent-encoded, keeping only RFC 3986
    /// unreserved characters.
    pub fn to_uri(&self) -> String {
        let issuer = self.issuer.as_deref().filter(|i| !i.is_empty());
        let mut out = String::from("otpauth://");
        out.push_str(match self.kind {
            OtpKind::Hotp { .. } => "hotp/",
            OtpKind::Totp { .. } => "totp/",
        });
        // Prefer `Issuer:account` (or `account`); fall back to the other
        // form, or to `:account`, when the account itself contains ':' or
        // starts with spaces, so the label parses back to the same values.
        let forms: [(Option<&str>, bool); 2] = match issuer {
            Some(i) => [(Some(i), true), (None, false)],
            None => [(None, false), (None, true)],
        };
        let decoded = |(prefix, colon): (Option<&str>, bool)| {
            let mut l = String::from(prefix.unwrap_or(""));
            if colon {
                l.push(':');
            }
            l.push_str(&self.account);
            l
        };
        let wanted = (issuer.map(String::from), self.account.clone());
        let (prefix, colon) = forms
            .into_iter()
            .find(|&f| resolve_label(&decoded(f), issuer).ok().as_ref() == Some(&wanted))
            .unwrap_or(forms[0]);
        // The separator colon stays literal; everything else is encoded.
        if let Some(p) = prefix {
            percent_encode(p, &mut out);
        }
        if colon {
            out.push(':');
        }
        percent_encode(&self.account, &mut out);

        out.push_str("?secret=");
        out.push_str(&base32_encode(self.secret.expose()));
        if let Some(i) = issuer {
            out.push_str("&issuer=");
            percent_encode(i, &mut out);
        }
        out.push_str("&algorithm=");
        out.push_str(self.algorithm.name());
        out.push_str(&format!("&digits={}", self.digits));
        match self.kind {
            OtpKind::Hotp { counter } => out.push_str(&format!("&counter={counter}")),
            OtpKind::Totp { period } => out.push_str(&format!("&period={period}")),
        }
        out
    }

    /// The current code: TOTP at unix time `now` (T0 = 0), or HOTP at the
    /// URI's counter (`now` is ignored).
    pub fn generate(&self, now: u64) -> Result<String> {
        match self.kind {
            OtpKind::Totp { .. } => self.totp()?.generate(now),
            OtpKind::Hotp { counter } => Ok(self.hotp()?.generate(counter)),
        }
    }

    /// A TOTP generator (T0 = 0); `INVALID_URI` for a HOTP URI.
    pub fn totp(&self) -> Result<Totp> {
        match self.kind {
            OtpKind::Totp { period } => {
                Totp::new(self.secret.expose().to_vec(), self.algorithm, self.digits, period, 0)
            }
            OtpKind::Hotp { .. } => Err(bad_uri("this is a hotp URI, not totp")),
        }
    }

    /// A HOTP generator; `INVALID_URI` for a TOTP URI.
    pub fn hotp(&self) -> Result<Hotp> {
        match self.kind {
            OtpKind::Hotp { .. } => Hotp::new(self.secret.expose().to_vec(), self.algorithm, self.digits),
            OtpKind::Totp { .. } => Err(bad_uri("this is a totp URI, not hotp")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const GOOGLE: &str = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
    /// RFC 6238 SHA1 seed "12345678901234567890".
    const SEED20_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    /// RFC 6238 SHA256 seed "12345678901234567890123456789012".
    const SEED32_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";

    fn parse(uri: &str) -> Result<KeyUri> {
        KeyUri::parse(uri, SecretPolicy::Strict)
    }

    fn code_of(uri: &str) -> ErrorCode {
        KeyUri::parse(uri, SecretPolicy::AllowShort).unwrap_err().code()
    }

    fn detail_of(uri: &str) -> String {
        KeyUri::parse(uri, SecretPolicy::AllowShort).unwrap_err().detail().to_string()
    }

    fn totp_uri(label: &str, extra: &str) -> String {
        format!("otpauth://totp/{label}?secret={SEED20_B32}{extra}")
    }

    fn key(kind: OtpKind, issuer: Option<&str>, account: &str) -> KeyUri {
        KeyUri {
            kind,
            issuer: issuer.map(String::from),
            account: String::from(account),
            secret: SecretBytes::from_slice(b"12345678901234567890"),
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }

    #[test]
    fn google_example_short_secret() {
        let e = parse(GOOGLE).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SecretTooShort);
        assert!(e.detail().contains("below the 128 bits RFC 4226 requires"), "{}", e.detail());
        assert!(!e.detail().contains("AllowShort"), "the core names no API identifier: {}", e.detail());
        assert!(e.detail().contains("80 bits"));

        let k = KeyUri::parse(GOOGLE, SecretPolicy::AllowShort).unwrap();
        assert_eq!(k.kind, OtpKind::Totp { period: 30 });
        assert_eq!(k.issuer.as_deref(), Some("Example"));
        assert_eq!(k.account, "alice@google.com");
        assert_eq!(k.secret.expose(), b"Hello!\xde\xad\xbe\xef");
        assert_eq!(k.algorithm, Algorithm::Sha1);
        assert_eq!(k.digits, 6);
        // Canonical form and back.
        assert_eq!(
            k.to_uri(),
            "otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(KeyUri::parse(&k.to_uri(), SecretPolicy::AllowShort).unwrap(), k);
    }

    #[test]
    fn rfc6238_sha256_seed() {
        let uri = format!("otpauth://totp/ACME:rfc6238?secret={SEED32_B32}&issuer=ACME&algorithm=SHA256&digits=8");
        let k = parse(&uri).unwrap();
        assert_eq!(k.secret.expose(), b"12345678901234567890123456789012");
        assert_eq!(k.generate(59).unwrap(), "46119246");
        assert_eq!(k.generate(1_111_111_109).unwrap(), "68084774");
        assert_eq!(k.generate(20_000_000_000).unwrap(), "77737706");
        let t = k.totp().unwrap();
        assert_eq!(t.period(), 30);
        assert_eq!(t.t0(), 0);
        assert_eq!(k.hotp().unwrap_err().code(), ErrorCode::InvalidUri);
    }

    #[test]
    fn hotp_uri() {
        let k = parse(&format!("otpauth://hotp/Bank:bob?secret={SEED20_B32}&counter=1")).unwrap();
        assert_eq!(k.kind, OtpKind::Hotp { counter: 1 });
        assert_eq!(k.generate(123_456).unwrap(), "287082"); // RFC 4226, counter 1
        assert_eq!(k.hotp().unwrap().generate(9), "520489");
        assert_eq!(k.totp().unwrap_err().code(), ErrorCode::InvalidUri);
        assert_eq!(
            k.to_uri(),
            format!("otpauth://hotp/Bank:bob?secret={SEED20_B32}&issuer=Bank&algorithm=SHA1&digits=6&counter=1")
        );
        assert_eq!(parse(&k.to_uri()).unwrap(), k);
        let max = parse(&format!("otpauth://hotp/bob?secret={SEED20_B32}&counter=18446744073709551615")).unwrap();
        assert_eq!(max.kind, OtpKind::Hotp { counter: u64::MAX });
    }

    #[test]
    fn lenient_forms() {
        // Scheme and type case, %3A separator, spaces after the colon.
        let k = parse(&format!("OTPAUTH://TOTP/ACME%20Co%3A%20%20john?secret={SEED20_B32}")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(k.account, "john");
        let k = parse(&format!("otpauth://totp/ACME: john?secret={SEED20_B32}")).unwrap();
        assert_eq!(k.account, "john");
        // Base32 lower case, spaces, padding.
        let k =
            parse("otpauth://totp/a?secret=gezd%20gnbv%20gy3t%20qojq%20gezd%20gnbv%20gy3t%20qojq%3D%3D%3D").unwrap();
        assert_eq!(k.secret.expose(), b"12345678901234567890");
        // Parameter names in any case, algorithm spellings, unknown params,
        // empty pairs, surrounding whitespace, fragment.
        let k = parse(&format!(
            "  otpauth://totp/a?SECRET={SEED20_B32}&&Algorithm=sha-512&image=x&image=y&foo&Digits=10&PERIOD=60#frag\n"
        ))
        .unwrap();
        assert_eq!(k.algorithm, Algorithm::Sha512);
        assert_eq!(k.digits, 10);
        assert_eq!(k.kind, OtpKind::Totp { period: 60 });
        // Issuer from the parameter only.
        let k = parse(&totp_uri("alice", "&issuer=Big%20Corp")).unwrap();
        assert_eq!(k.issuer.as_deref(), Some("Big Corp"));
        assert_eq!(k.account, "alice");
        // Same issuer in both places.
        let k = parse(&totp_uri("Big%20Corp:alice", "&issuer=Big%20Corp")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (Some("Big Corp"), "alice"));
        // Issuer containing ':' via the parameter.
        let k = parse(&totp_uri("a%3Ab:alice", "&issuer=a%3Ab")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (Some("a:b"), "alice"));
        // Account containing ':' after the issuer prefix.
        let k = parse(&totp_uri("Corp:x:y", "")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (Some("Corp"), "x:y"));
        // No issuer anywhere; empty issuer parameter means none.
        let k = parse(&totp_uri("alice", "&issuer=")).unwrap();
        assert_eq!(k.issuer, None);
        // '+' is literal.
        let k = parse(&totp_uri("A+B:c+d", "&issuer=A+B")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (Some("A+B"), "c+d"));
        // Unicode label.
        let k = parse(&totp_uri("%C3%9Cber:j%C3%BCrgen", "")).unwrap();
        assert_eq!((k.issuer.as_deref(), k.account.as_str()), (Some("Über"), "jürgen"));
        // Period on a hotp URI and counter on a totp URI are validated but unused.
        let k = parse(&format!("otpauth://hotp/a?secret={SEED20_B32}&counter=5&period=30")).unwrap();
        assert_eq!(k.kind, OtpKind::Hotp { counter: 5 });
        let k = parse(&totp_uri("a", "&counter=5")).unwrap();
        assert_eq!(k.kind, OtpKind::Totp { period: 30 });
    }

    #[test]
    fn round_trips() {
        let cases = [
            key(OtpKind::Totp { period: 30 }, Some("ACME Co"), "john.doe@email.com"),
            key(OtpKind::Totp { period: 1 }, None, "plain"),
            key(OtpKind::Hotp { counter: 0 }, Some("x"), "y"),
            key(OtpKind::Hotp { counter: u64::MAX }, None, "a:b"),
            key(OtpKind::Totp { period: u64::MAX }, Some("is:su:er"), "acc:ount"),
            key(OtpKind::Totp { period: 30 }, Some("Iss"), "  leading spaces"),
            key(OtpKind::Totp { period: 30 }, None, "  leading spaces"),
            key(OtpKind::Totp { period: 30 }, Some("Iss"), "Iss:inner"),
            key(OtpKind::Totp { period: 30 }, Some("日本"), "ユーザー/?&=#%+"),
            key(OtpKind::Totp { period: 30 }, Some(" sp "), ":"),
            key(OtpKind::Totp { period: 30 }, None, ":"),
            key(OtpKind::Totp { period: 30 }, None, "::x"),
        ];
        for k in cases {
            let uri = k.to_uri();
            assert!(uri.is_ascii(), "{uri}");
            assert_eq!(parse(&uri).unwrap(), k, "{uri}");
        }
        let mut k = key(OtpKind::Totp { period: 30 }, Some("A B"), "c d");
        k.algorithm = Algorithm::Sha256;
        k.digits = 8;
        assert_eq!(
            k.to_uri(),
            format!("otpauth://totp/A%20B:c%20d?secret={SEED20_B32}&issuer=A%20B&algorithm=SHA256&digits=8&period=30")
        );
        assert_eq!(parse(&k.to_uri()).unwrap(), k);
        // Without issuer: no issuer parameter.
        let k = key(OtpKind::Totp { period: 30 }, None, "alice");
        assert_eq!(k.to_uri(), format!("otpauth://totp/alice?secret={SEED20_B32}&algorithm=SHA1&digits=6&period=30"));
        // An account without issuer that contains ':' gets an empty prefix.
        let k = key(OtpKind::Totp { period: 30 }, None, "a:b");
        assert!(k.to_uri().starts_with("otpauth://totp/:a%3Ab?"), "{}", k.to_uri());
        // An empty issuer is treated as none.
        let mut k = key(OtpKind::Totp { period: 30 }, Some(""), "alice");
        assert!(!k.to_uri().contains("issuer"));
        k.issuer = None;
        assert_eq!(parse(&k.to_uri()).unwrap(), k);
    }

    #[test]
    fn structure_errors() {
        let s = SEED20_B32;
        for uri in [
            String::new(),
            String::from("otpauth:/"),
            format!("http://totp/a?secret={s}"),
            format!("otpauth:totp/a?secret={s}"),
            format!("otpauth//totp/a?secret={s}"),
            format!("é-otpauth://totp/a?secret={s}"),
        ] {
            assert_eq!(code_of(&uri), ErrorCode::InvalidUri, "{uri}");
            assert_eq!(detail_of(&uri), "not an otpauth:// URI", "{uri}");
        }
        assert_eq!(detail_of(&format!("otpauth://motp/a?secret={s}")), "the OTP type must be hotp or totp");
        assert_eq!(detail_of(&format!("otpauth:///a?secret={s}")), "the OTP type must be hotp or totp");
        assert_eq!(detail_of(&format!("otpauth://totp?secret={s}")), "the URI has no label (otpauth://TYPE/LABEL)");
        for label in ["", "Example:", "Example:%20%20", ":", "%3A"] {
            assert_eq!(detail_of(&totp_uri(label, "")), "the label has no account name", "{label}");
        }
    }

    #[test]
    fn percent_encoding_errors() {
        for label in ["a%", "a%4", "a%4g", "%%41", "a%zz", "%é1"] {
            assert_eq!(detail_of(&totp_uri(label, "")), "'%' must be followed by two hex digits", "{label}");
        }
        assert_eq!(detail_of(&totp_uri("a", "&issuer=%")), "'%' must be followed by two hex digits");
        assert_eq!(detail_of(&totp_uri("a", "&x%2=1")), "'%' must be followed by two hex digits");
        for label in ["%ff", "%C3", "%C3%28", "%ED%A0%80"] {
            assert_eq!(detail_of(&totp_uri(label, "")), "percent-encoded text is not valid UTF-8", "{label}");
        }
    }

    #[test]
    fn issuer_mismatch() {
        let uri = totp_uri("Evil:alice", "&issuer=Good");
        assert_eq!(code_of(&uri), ErrorCode::InvalidUri);
        assert_eq!(detail_of(&uri), "issuer parameter and label prefix differ");
        // Case matters.
        assert_eq!(code_of(&totp_uri("good:alice", "&issuer=Good")), ErrorCode::InvalidUri);
    }

    #[test]
    fn parameter_errors() {
        let s = SEED20_B32;
        // Missing / duplicate.
        assert_eq!(detail_of("otpauth://totp/a"), "the secret parameter is missing");
        assert_eq!(detail_of("otpauth://totp/a?issuer=x"), "the secret parameter is missing");
        assert_eq!(detail_of(&format!("otpauth://hotp/a?secret={s}")), "a hotp URI requires a counter parameter");
        for extra in [
            "&secret=GEZDGNBV",
            "&Secret=GEZDGNBV",
            "&issuer=a&issuer=a",
            "&digits=6&digits=6",
            "&period=30&period=30",
            "&algorithm=SHA1&algorithm=SHA1",
            "&counter=1&counter=1",
        ] {
            let uri = totp_uri("a", extra);
            assert_eq!(detail_of(&uri), "a parameter appears more than once", "{uri}");
        }
        // Secret.
        assert_eq!(code_of("otpauth://totp/a?secret="), ErrorCode::InvalidSecret);
        assert_eq!(code_of("otpauth://totp/a?secret"), ErrorCode::InvalidSecret);
        assert_eq!(code_of("otpauth://totp/a?secret=%3D%3D"), ErrorCode::InvalidSecret);
        assert_eq!(code_of("otpauth://totp/a?secret=GEZDGNB1"), ErrorCode::InvalidSecret);
        assert_eq!(code_of("otpauth://totp/a?secret=A"), ErrorCode::InvalidSecret);
        assert_eq!(code_of("otpauth://totp/a?secret=GE+ZD"), ErrorCode::InvalidSecret);
        // 16 bytes is the Strict minimum.
        let sixteen = base32_encode(&[7u8; 16]);
        assert!(parse(&format!("otpauth://totp/a?secret={sixteen}")).is_ok());
        let fifteen = base32_encode(&[7u8; 15]);
        assert_eq!(parse(&format!("otpauth://totp/a?secret={fifteen}")).unwrap_err().code(), ErrorCode::SecretTooShort);
        assert!(KeyUri::parse(&format!("otpauth://totp/a?secret={fifteen}"), SecretPolicy::AllowShort).is_ok());
        let one = base32_encode(&[7u8; 1]);
        assert!(KeyUri::parse(&format!("otpauth://totp/a?secret={one}"), SecretPolicy::AllowShort).is_ok());
        // Algorithm.
        for a in ["MD5", "", "SHA384", "sha1sha1sha1sha1"] {
            assert_eq!(code_of(&totp_uri("a", &format!("&algorithm={a}"))), ErrorCode::InvalidAlgorithm, "{a}");
        }
        // Digits.
        for d in ["5", "11", "0", "", "abc", "+6", "-6", " 6", "6.0", "256", "262", "99999999999999999999999"] {
            assert_eq!(code_of(&totp_uri("a", &format!("&digits={d}"))), ErrorCode::InvalidDigits, "{d}");
        }
        for d in ["6", "7", "8", "9", "10", "06"] {
            assert!(parse(&totp_uri("a", &format!("&digits={d}"))).is_ok(), "{d}");
        }
        // Period.
        for p in ["0", "", "-30", "+30", "x", "99999999999999999999999"] {
            assert_eq!(code_of(&totp_uri("a", &format!("&period={p}"))), ErrorCode::InvalidTime, "{p}");
        }
        // Counter.
        for c in ["", "x", "-1", "+1", "18446744073709551616"] {
            let uri = format!("otpauth://hotp/a?secret={s}&counter={c}");
            assert_eq!(detail_of(&uri), "the counter must be a non-negative decimal integer", "{c}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let k = parse(&totp_uri("a", "")).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("redacted"), "{d}");
        assert!(!d.contains(SEED20_B32));
        assert!(!d.contains("1234567890"));
    }

    #[test]
    fn generate_with_period() {
        let k = parse(&totp_uri("a", "&period=60&digits=8")).unwrap();
        // step floor(119 / 60) = 1 -> RFC 4226 counter 1 at 8 digits.
        assert_eq!(k.generate(119).unwrap(), "94287082");
        assert_eq!(k.totp().unwrap().period(), 60);
    }
}
