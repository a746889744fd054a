//! Small text encodings used by the OTP engine and the wire formats:
//! RFC 4648 base32 (lenient on input, as authenticator apps are), hex,
//! RFC 4648 base64url without padding, and RFC 3986 percent-decoding.

use crate::error::{err, ErrorCode, Result};
use alloc::string::String;
use alloc::vec::Vec;

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encode as unpadded upper-case base32.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buf: u64 = 0;
    let mut bits = 0u32;
    for &b in data {
        buf = (buf << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decode base32 the way users type it: case-insensitive, spaces, hyphens
/// and trailing `=` padding ignored. Rejects any other character and
/// impossible lengths with `INVALID_SECRET`.
pub fn base32_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buf: u64 = 0;
    let mut bits = 0u32;
    let mut n = 0usize;
    let mut seen_pad = false;
    for c in text.bytes() {
        let v = match c {
            b' ' | b'-' | b'\t' => continue,
            b'=' => {
                seen_pad = true;
                continue;
            }
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(err(ErrorCode::InvalidSecret, "base32 secret contains a character outside A-Z and 2-7")),
        };
        if seen_pad {
            return Err(err(ErrorCode::InvalidSecret, "base32 padding in the middle of the secret"));
        }
        buf = (buf << 5) | u64::from(v);
        bits += 5;
        n += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    // Valid unpadded lengths mod 8 are 0, 2, 4, 5, 7.
    if matches!(n % 8, 1 | 3 | 6) {
        return Err(err(ErrorCode::InvalidSecret, "base32 secret has an impossible length"));
    }
    Ok(out)
}

/// Lower-case hex.
pub fn hex_encode(data: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for &b in data {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Decode hex (either case). Errors carry `code`.
pub fn hex_decode_as(text: &str, code: ErrorCode) -> Result<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return Err(err(code, "hex string has an odd length"));
    }
    t.chunks(2)
        .map(|p| match (hex_digit(p[0]), hex_digit(p[1])) {
            (Some(h), Some(l)) => Ok((h << 4) | l),
            _ => Err(err(code, "hex string contains a non-hex character")),
        })
        .collect()
}

/// The value of one hex digit (either case).
pub(crate) fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 percent-decoding: each `%XX` (either case) becomes its byte,
/// every other character stays as it is (`+` too). `None` when a `%` is
/// not followed by two hex digits; the bytes need not be UTF-8.
pub fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex_digit(*b.get(i + 1)?)?;
            let lo = hex_digit(*b.get(i + 2)?)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Decode a hex secret (`INVALID_SECRET` on error).
pub fn hex_decode(text: &str) -> Result<Vec<u8>> {
    hex_decode_as(text, ErrorCode::InvalidSecret)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Strict base64url decode without padding; errors carry `code`.
pub fn base64url_decode_as(text: &str, code: ErrorCode) -> Result<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 4 == 1 {
        return Err(err(code, "base64url text has an impossible length"));
    }
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    for chunk in t.chunks(4) {
        let mut n: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = val(c).ok_or(err(code, "base64url text contains an invalid character"))?;
            n |= u32::from(v) << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // Non-canonical trailing bits are rejected so every text has one meaning.
        let mask = match bytes {
            1 => 0xFFFF,
            2 => 0xFF,
            _ => 0,
        };
        if n & mask != 0 {
            return Err(err(code, "base64url text is not canonical"));
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

const B45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// RFC 9285 Base45 (the QR alphanumeric alphabet).
pub fn base45_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(2) * 3);
    for chunk in data.chunks(2) {
        if let [a, b] = *chunk {
            let mut n = u32::from(a) * 256 + u32::from(b);
            for _ in 0..3 {
                out.push(B45[(n % 45) as usize] as char);
                n /= 45;
            }
        } else {
            let n = u32::from(chunk[0]);
            out.push(B45[(n % 45) as usize] as char);
            out.push(B45[(n / 45) as usize] as char);
        }
    }
    out
}

/// Strict RFC 9285 Base45 decode; errors carry `code`.
pub fn base45_decode_as(text: &str, code: ErrorCode) -> Result<Vec<u8>> {
    let mut out = alloc::vec![0u8; base45_decoded_len(text.len())];
    let n = base45_decode_into(text, &mut out, code)?;
    out.truncate(n);
    Ok(out)
}

/// Bytes a Base45 text of `len` characters decodes to, at most.
pub const fn base45_decoded_len(len: usize) -> usize {
    len / 3 * 2 + (len % 3) / 2
}

/// [`base45_decode_as`] into a caller's buffer, without allocating (the
/// offline authenticator decodes QR codes on the stack): returns the
/// number of bytes written; `code` too when `out` is too small.
pub fn base45_decode_into(text: &str, out: &mut [u8], code: ErrorCode) -> Result<usize> {
    let val = |c: u8| B45.iter().position(|&x| x == c).map(|p| p as u32);
    let t = text.as_bytes();
    if t.len() % 3 == 1 {
        return Err(err(code, "base45 text has an impossible length"));
    }
    if base45_decoded_len(t.len()) > out.len() {
        return Err(err(code, "the text is too long"));
    }
    let mut n_out = 0;
    let mut push = |b: u8| {
        out[n_out] = b;
        n_out += 1;
    };
    for chunk in t.chunks(3) {
        let mut n = 0u32;
        let mut mul = 1u32;
        for &c in chunk {
            n += val(c).ok_or(err(code, "base45 text contains a character outside the QR alphanumeric set"))? * mul;
            mul *= 45;
        }
        if chunk.len() == 3 {
            if n > 0xFFFF {
                return Err(err(code, "base45 triple out of range"));
            }
            push((n >> 8) as u8);
            push(n as u8);
        } else {
            if n > 0xFF {
                return Err(err(code, "base45 pair out of range"));
            }
            push(n as u8);
        }
    }
    Ok(n_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2fc%2F+%C3%A9").unwrap(), "a b/c/+\u{e9}".as_bytes());
        assert_eq!(percent_decode("%ff%00").unwrap(), [0xff, 0]); // bytes, not necessarily UTF-8
        assert_eq!(percent_decode("").unwrap(), b"");
        // A sign is not a hex digit (u8::from_str_radix would take "+f").
        for bad in ["%", "%4", "%+f", "%-1", "%g0", "a%2", "%\u{e9}"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn base32_vectors() {
        assert_eq!(base32_encode(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(), b"12345678901234567890");
        assert_eq!(base32_decode("MZXW6===").unwrap(), b"foo");
        assert_eq!(base32_encode(b"foob"), "MZXW6YQ");
        assert!(base32_decode("MZXW6YQ1").is_err());
        assert!(base32_decode("A").is_err());
        assert!(base32_decode("MZ=XW").is_err());
    }

    /// Only 0, 2, 4, 5 or 7 characters mod 8 can end a base32 text (RFC 4648
    /// §6): 1, 3 and 6 are refused with INVALID_SECRET, whatever the padding,
    /// spaces or case around them.
    #[test]
    fn base32_impossible_lengths_are_refused() {
        let full = "GEZDGNBVGY3TQOJQGEZDGNBV"; // 24 characters
        for n in 0..=full.len() {
            let text = &full[..n];
            let padded = alloc::format!("{text}{}", "=".repeat((8 - n % 8) % 8));
            let spaced = alloc::format!(" {} ", text.to_ascii_lowercase());
            for t in [text, padded.as_str(), spaced.as_str()] {
                match n % 8 {
                    1 | 3 | 6 => assert_eq!(base32_decode(t).unwrap_err().code(), ErrorCode::InvalidSecret, "{t:?}"),
                    _ => assert_eq!(base32_decode(t).unwrap().len(), n * 5 / 8, "{t:?}"),
                }
            }
        }
        for t in ["A", "A=======", "AAA", "AAA=====", "AAAAAA", "AAAAAA==", "AAAAAAAAA", "a a-a", "MZXW6YQ=A"] {
            assert_eq!(base32_decode(t).unwrap_err().code(), ErrorCode::InvalidSecret, "{t:?}");
        }
        // Every encoder output has a possible length and decodes back.
        for n in 0..=40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(53)).collect();
            assert_eq!(base32_decode(&base32_encode(&v)).unwrap(), v);
        }
    }

    #[test]
    fn base45_rfc9285() {
        assert_eq!(base45_encode(b"AB"), "BB8");
        assert_eq!(base45_encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(base45_encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(base45_decode_as("QED8WEX0", ErrorCode::InvalidInput).unwrap(), b"ietf!");
        assert!(base45_decode_as("GGW", ErrorCode::InvalidInput).is_err());
        assert!(base45_decode_as("qed8wex0", ErrorCode::InvalidInput).is_err());
        assert!(base45_decode_as("QED00", ErrorCode::InvalidInput).is_ok());
        assert!(base45_decode_as("QED8", ErrorCode::InvalidInput).is_err());
        assert!(base45_decode_as(":::", ErrorCode::InvalidInput).is_err());
        for n in 0..50u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(91)).collect();
            assert_eq!(base45_decode_as(&base45_encode(&v), ErrorCode::InvalidInput).unwrap(), v);
        }
    }

    #[test]
    fn hex_and_b64() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff").unwrap(), [0, 0xab, 0xff]);
        assert!(hex_decode("0").is_err());
        assert!(hex_decode("zz").is_err());
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let e = base64url_encode(&v);
            assert_eq!(base64url_decode_as(&e, ErrorCode::InvalidInput).unwrap(), v);
        }
        assert!(base64url_decode_as("AB", ErrorCode::InvalidInput).is_err()); // non-canonical
        assert!(base64url_decode_as("A", ErrorCode::InvalidInput).is_err());
    }
}
