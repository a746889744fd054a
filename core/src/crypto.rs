//! Cryptographic building blocks of the Tessera protocols: host-provided
//! randomness, P-256 keys and ECDH, HKDF-SHA256 with domain-separation
//! labels, and ChaCha20-Poly1305 sealing. Nothing here reads a clock or the OS.

use crate::error::{err, ErrorCode, Result};
use alloc::vec::Vec;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// A source of cryptographically secure random bytes, supplied by the host
/// (the OS CSPRNG in apps, `crypto.getRandomValues` in browsers, a TRNG on a
/// microcontroller, a seeded generator in tests).
pub trait RandomSource {
    /// Fill `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// Deterministic generator for tests and published vectors only:
/// block `i` = HMAC-SHA256(seed, "tessera/test-rng" || i). Never use it to
/// make real keys.
#[derive(Clone)]
pub struct SeededRandom {
    seed: [u8; 32],
    counter: u64,
    buf: [u8; 32],
    pos: usize,
}

impl core::fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SeededRandom(<redacted>)")
    }
}

impl SeededRandom {
    /// A generator from a seed.
    pub fn new(seed: [u8; 32]) -> Self {
        SeededRandom { seed, counter: 0, buf: [0; 32], pos: 32 }
    }
}

impl RandomSource for SeededRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest.iter_mut() {
            if self.pos == 32 {
                let mut m =
                    <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.seed).unwrap_or_else(|_| unreachable!());
                m.update(b"tessera/test-rng");
                m.update(&self.counter.to_be_bytes());
                self.buf.copy_from_slice(&m.finalize().into_bytes());
                self.counter += 1;
                self.pos = 0;
            }
            *b = self.buf[self.pos];
            self.pos += 1;
        }
    }
}

/// `N` random bytes.
pub(crate) fn random_array<const N: usize>(rng: &mut dyn RandomSource) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

/// Length of a compressed SEC1 P-256 public key.
pub const PUBLIC_KEY_LEN: usize = 33;

/// A P-256 secret key from the host's randomness (rejection sampling).
pub(crate) fn generate_secret_key(rng: &mut dyn RandomSource) -> Result<SecretKey> {
    for _ in 0..64 {
        let mut b = Zeroizing::new(random_array::<32>(rng));
        if let Ok(sk) = SecretKey::from_slice(&b[..]) {
            b.zeroize();
            return Ok(sk);
        }
    }
    Err(err(ErrorCode::Internal, "the random source produced no valid P-256 key"))
}

/// A secret key from its 32 stored bytes.
/// Exactly 32 bytes: p256's `from_slice` would left-pad shorter input into
/// another key, turning a truncated secret into a silent identity change.
pub(crate) fn secret_key_from_bytes(bytes: &[u8]) -> Result<SecretKey> {
    if bytes.len() != 32 {
        return Err(err(ErrorCode::InvalidInput, "a private key must be exactly 32 bytes"));
    }
    SecretKey::from_slice(bytes).map_err(|_| err(ErrorCode::StateCorrupt, "stored private key is invalid"))
}

/// Compressed SEC1 encoding of a public key.
pub(crate) fn encode_public(pk: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let p = pk.to_sec1_point(true);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(p.as_bytes());
    out
}

/// Decode a compressed SEC1 public key; `code` on failure.
pub(crate) fn decode_public(bytes: &[u8], code: ErrorCode) -> Result<PublicKey> {
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(err(code, "public key has the wrong length"));
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| err(code, "public key is not a valid P-256 point"))
}

/// ECDH: the x-coordinate of sk·PK.
pub(crate) fn ecdh(sk: &SecretKey, pk: &PublicKey) -> Zeroizing<[u8; 32]> {
    let shared = sk.diffie_hellman(pk);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// HKDF-SHA256 (RFC 5869) with `info` = concatenation of `info` parts.
pub(crate) fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; N]> {
    let h = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; N]);
    // N <= 255*32 for every use in this crate, so expand cannot fail.
    h.expand_multi_info(info, &mut out[..]).unwrap_or_else(|_| unreachable!());
    out
}

/// HMAC-SHA256.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Length of the synthetic nonce of [`seal_siv`].
pub const SIV_NONCE_LEN: usize = 12;

fn split_keys(keys: &[u8; 64]) -> (&[u8; 32], &[u8]) {
    let (ek, nk) = keys.split_at(32);
    (ek.try_into().unwrap_or_else(|_| unreachable!()), nk)
}

/// Deterministic, misuse-resistant sealing of a message: `keys` is 64 bytes,
/// an encryption key and a nonce key. The nonce is
/// `HMAC(nonce_key, aad || plaintext)[..12]` and travels in front of the
/// ciphertext, so two different plaintexts never share a (key, nonce) pair
/// even if a host computes two answers to one request, and the same
/// plaintext gives the same bytes (idempotent retries).
pub(crate) fn seal_siv(keys: &[u8; 64], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let (ek, nk) = split_keys(keys);
    let tag = Zeroizing::new(hmac_sha256(nk, &[&(aad.len() as u64).to_be_bytes(), aad, plaintext]));
    let mut nonce = [0u8; SIV_NONCE_LEN];
    nonce.copy_from_slice(&tag[..SIV_NONCE_LEN]);
    let c = ChaCha20Poly1305::new(ek.into());
    nonce_then(&nonce, c.encrypt((&nonce).into(), Payload { msg: plaintext, aad }))
}

/// `nonce || ciphertext`; encrypting our own buffers cannot fail.
fn nonce_then(nonce: &[u8], ct: core::result::Result<Vec<u8>, chacha20poly1305::Error>) -> Vec<u8> {
    let ct = ct.unwrap_or_else(|_| unreachable!());
    let mut out = Vec::with_capacity(nonce.len() + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

/// Open a [`seal_siv`] message and check its synthetic nonce;
/// `MESSAGE_TAMPERED` on any failure.
pub(crate) fn open_siv(keys: &[u8; 64], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let tampered = || err(ErrorCode::MessageTampered, "the message failed authentication");
    if sealed.len() < SIV_NONCE_LEN + 16 {
        return Err(err(ErrorCode::MalformedMessage, "the message is truncated"));
    }
    let (ek, nk) = split_keys(keys);
    let (nonce, ct) = sealed.split_at(SIV_NONCE_LEN);
    let nonce: [u8; SIV_NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
    let c = ChaCha20Poly1305::new(ek.into());
    let plain = c.decrypt((&nonce).into(), Payload { msg: ct, aad }).map(Zeroizing::new).map_err(|_| tampered())?;
    let tag = Zeroizing::new(hmac_sha256(nk, &[&(aad.len() as u64).to_be_bytes(), aad, &plain]));
    if !crate::secret::ct_eq(&tag[..SIV_NONCE_LEN], &nonce) {
        return Err(tampered());
    }
    Ok(plain)
}

/// Length of a P-256 ECDSA signature (fixed `r || s`).
pub const SIGNATURE_LEN: usize = 64;

/// ECDSA P-256 / SHA-256 over the concatenation of `parts` (deterministic
/// nonces, RFC 6979), fixed 64-byte `r || s`.
pub(crate) fn sign(sk: &SecretKey, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
    use p256::ecdsa::signature::Signer;
    let msg = parts.concat();
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(sk).sign(&msg);
    let sig = sig.normalize_s();
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&sig.to_bytes());
    out
}

/// Verify a [`sign`] signature; `code` on failure (high-s signatures are
/// refused, so a signature has one valid encoding).
pub(crate) fn verify(pk: &PublicKey, parts: &[&[u8]], sig: &[u8], code: ErrorCode) -> Result<()> {
    use p256::ecdsa::signature::Verifier;
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| err(code, "the signature is malformed"))?;
    if sig.normalize_s() != sig {
        return Err(err(code, "the signature is not in low-s form"));
    }
    p256::ecdsa::VerifyingKey::from(pk)
        .verify(&parts.concat(), &sig)
        .map_err(|_| err(code, "the signature does not verify"))
}

/// Encrypt with ChaCha20-Poly1305 under a key used for exactly one message
/// (so a zero nonce is safe).
pub(crate) fn seal_once(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let c = ChaCha20Poly1305::new(key.into());
    c.encrypt(&Default::default(), Payload { msg: plaintext, aad }).unwrap_or_else(|_| unreachable!())
}

/// Decrypt a [`seal_once`] ciphertext; `MESSAGE_TAMPERED` on failure.
pub(crate) fn open_once(key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let c = ChaCha20Poly1305::new(key.into());
    c.decrypt(&Default::default(), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| err(ErrorCode::MessageTampered, "the message failed authentication"))
}

/// [`open_once`] into a caller's buffer, without allocating (the offline
/// authenticator decrypts on the stack): `out` needs the ciphertext's
/// length minus 16; returns the plaintext's length. `MESSAGE_TAMPERED`
/// on failure (`out` is then zeroed).
pub(crate) fn open_once_into(key: &[u8; 32], aad: &[u8], ciphertext: &[u8], out: &mut [u8]) -> Result<usize> {
    use chacha20poly1305::aead::AeadInOut;
    let tampered = || err(ErrorCode::MessageTampered, "the message failed authentication");
    let n = ciphertext.len().checked_sub(16).ok_or_else(tampered)?;
    let out = out.get_mut(..n).ok_or_else(tampered)?;
    let (ct, tag) = ciphertext.split_at(n);
    out.copy_from_slice(ct);
    let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| tampered())?;
    let c = ChaCha20Poly1305::new(key.into());
    match c.decrypt_inout_detached(&Default::default(), aad, out.into(), &tag) {
        Ok(()) => Ok(n),
        Err(_) => {
            out.zeroize();
            Err(tampered())
        }
    }
}

/// Length of the random nonce of [`seal_blob`].
pub const BLOB_NONCE_LEN: usize = 24;

/// Seal a stored blob with XChaCha20-Poly1305 under a long-lived key and a
/// random 192-bit nonce: returns `nonce || ciphertext`.
pub(crate) fn seal_blob(key: &[u8; 32], aad: &[u8], plaintext: &[u8], rng: &mut dyn RandomSource) -> Vec<u8> {
    let nonce = random_array::<BLOB_NONCE_LEN>(rng);
    let c = XChaCha20Poly1305::new(key.into());
    nonce_then(&nonce, c.encrypt((&nonce).into(), Payload { msg: plaintext, aad }))
}

/// Open a [`seal_blob`] blob; `STATE_CORRUPT` on any failure.
pub(crate) fn open_blob(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < BLOB_NONCE_LEN + 16 {
        return Err(err(ErrorCode::StateCorrupt, "the stored state is truncated"));
    }
    let (nonce, ct) = sealed.split_at(BLOB_NONCE_LEN);
    let nonce: [u8; BLOB_NONCE_LEN] = nonce.try_into().map_err(|_| err(ErrorCode::StateCorrupt, "bad nonce"))?;
    let c = XChaCha20Poly1305::new(key.into());
    c.decrypt((&nonce).into(), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| err(ErrorCode::StateCorrupt, "the stored state failed authentication (changed, or another key)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_is_deterministic_and_keys_agree() {
        let mut a = SeededRandom::new([7; 32]);
        let mut b = SeededRandom::new([7; 32]);
        assert_eq!(random_array::<40>(&mut a), random_array::<40>(&mut b));
        let ska = generate_secret_key(&mut a).unwrap();
        let skb = generate_secret_key(&mut a).unwrap();
        let pa = decode_public(&encode_public(&ska.public_key()), ErrorCode::InvalidInput).unwrap();
        let pb = decode_public(&encode_public(&skb.public_key()), ErrorCode::InvalidInput).unwrap();
        assert_eq!(*ecdh(&ska, &pb), *ecdh(&skb, &pa));
        assert!(decode_public(&[0u8; 33], ErrorCode::InvalidInput).is_err());
    }

    #[test]
    fn secret_keys_must_be_32_bytes() {
        assert_eq!(secret_key_from_bytes(&[7u8; 31]).unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(secret_key_from_bytes(&[7u8; 33]).unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(secret_key_from_bytes(&[0u8; 32]).unwrap_err().code(), ErrorCode::StateCorrupt);
        assert!(secret_key_from_bytes(&[7u8; 32]).is_ok());
    }

    #[test]
    fn zero_rng_fails_cleanly() {
        let mut zero = |b: &mut [u8]| b.fill(0);
        assert_eq!(generate_secret_key(&mut zero).unwrap_err().code(), ErrorCode::Internal);
    }

    #[test]
    fn seal_and_open() {
        let k = [9u8; 32];
        let mut r = SeededRandom::new([1; 32]);
        let s = seal_blob(&k, b"ad", b"hello", &mut r);
        assert_eq!(&open_blob(&k, b"ad", &s).unwrap()[..], b"hello");
        assert!(open_blob(&k, b"ae", &s).is_err());
        assert!(open_blob(&[8u8; 32], b"ad", &s).is_err());
        let m = seal_once(&k, b"x", b"msg");
        assert_eq!(&open_once(&k, b"x", &m).unwrap()[..], b"msg");
        let mut t = m.clone();
        t[0] ^= 1;
        assert_eq!(open_once(&k, b"x", &t).unwrap_err().code(), ErrorCode::MessageTampered);
    }
}
