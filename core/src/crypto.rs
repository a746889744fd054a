//! Cryptographic building blocks of the Tessera protocols: host-provided
//! randomness, P-256 keys and ECDH, HKDF-SHA256 with domain-separation
//! labels, and ChaCha20-Poly1305 sealing. Nothing here reads a clock or the OS.

use crate::error::{err, ErrorCode, Result};
use crate::provider::CryptoProvider;
use alloc::vec;
use alloc::vec::Vec;
use hmac::{Hmac, Mac};
use p256::SecretKey;
use sha2::Sha256;
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

/// A compressed SEC1 P-256 public key, checked to be a point on the curve.
pub(crate) type PublicKeyBytes = [u8; PUBLIC_KEY_LEN];

fn provider() -> &'static dyn CryptoProvider {
    crate::provider::get_default()
}

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

/// The 32 big-endian bytes of a secret key (what providers take).
pub(crate) fn secret_bytes(sk: &SecretKey) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let mut bytes = sk.to_bytes();
    out.copy_from_slice(&bytes);
    bytes.as_mut_slice().zeroize();
    out
}

/// Compressed SEC1 encoding of a secret key's public key.
pub(crate) fn public_of(sk: &SecretKey) -> PublicKeyBytes {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let p = sk.public_key().to_sec1_point(true);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(p.as_bytes());
    out
}

/// 33 bytes starting 0x02 or 0x03: the one encoding of a public key the
/// protocols accept. (SEC1 readers also take 0x05 "compact" points, which
/// would give one key two encodings, hence two device ids.)
fn compressed(bytes: &[u8], code: ErrorCode) -> Result<&PublicKeyBytes> {
    match <&PublicKeyBytes>::try_from(bytes) {
        Ok(pk) if pk[0] == 2 || pk[0] == 3 => Ok(pk),
        Ok(_) => Err(err(code, "public key is not a compressed P-256 point")),
        Err(_) => Err(err(code, "public key has the wrong length")),
    }
}

/// Check that `bytes` is a compressed SEC1 P-256 point; `code` on failure.
pub(crate) fn decode_public(bytes: &[u8], code: ErrorCode) -> Result<PublicKeyBytes> {
    let pk = *compressed(bytes, code)?;
    if !provider().p256_valid_point(&pk) {
        return Err(err(code, "public key is not a valid P-256 point"));
    }
    Ok(pk)
}

/// ECDH: the x-coordinate of sk·peer. `code` when `peer` is not a point on
/// the curve (so callers need not check it first: the provider does, once).
pub(crate) fn ecdh(sk: &[u8; 32], peer: &[u8], code: ErrorCode) -> Result<Zeroizing<[u8; 32]>> {
    let peer = compressed(peer, code)?;
    let mut out = Zeroizing::new([0u8; 32]);
    if provider().p256_ecdh(sk, peer, &mut out) {
        Ok(out)
    } else {
        Err(err(code, "public key is not a valid P-256 point"))
    }
}

/// A long-lived key agreement key (a portal's), parsed once by the
/// process's provider.
pub(crate) struct AgreementKey {
    key: alloc::boxed::Box<dyn crate::provider::P256PrivateKey>,
    /// Tests: agreements asked of this key (what an operation costs).
    #[cfg(test)]
    uses: core::sync::atomic::AtomicUsize,
}

impl AgreementKey {
    pub(crate) fn new(sk: &SecretKey) -> Result<AgreementKey> {
        provider()
            .p256_private_key(&secret_bytes(sk))
            .map(|key| AgreementKey {
                key,
                #[cfg(test)]
                uses: core::sync::atomic::AtomicUsize::new(0),
            })
            .ok_or(err(ErrorCode::Internal, "the crypto provider refused a valid P-256 key"))
    }

    /// Tests: agreements asked of this key so far.
    #[cfg(test)]
    pub(crate) fn uses(&self) -> usize {
        self.uses.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// [`ecdh`] with this key.
    pub(crate) fn ecdh(&self, peer: &[u8], code: ErrorCode) -> Result<Zeroizing<[u8; 32]>> {
        #[cfg(test)]
        self.uses.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let peer = compressed(peer, code)?;
        let mut out = Zeroizing::new([0u8; 32]);
        if self.key.ecdh(peer, &mut out) {
            Ok(out)
        } else {
            Err(err(code, "public key is not a valid P-256 point"))
        }
    }
}

/// HKDF-SHA256 (RFC 5869) with `info` = concatenation of `info` parts.
pub(crate) fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32) };
    let mut out = Zeroizing::new([0u8; N]);
    provider().hkdf_sha256(salt, ikm, info, &mut out[..]);
    out
}

/// HMAC-SHA256.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    provider().hmac_sha256(key, parts)
}

/// SHA-256 of the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    provider().sha256(parts)
}

/// Length of the synthetic nonce of [`seal_siv`].
pub const SIV_NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

fn split_keys(keys: &[u8; 64]) -> (&[u8; 32], &[u8]) {
    let (ek, nk) = keys.split_at(32);
    (ek.try_into().unwrap_or_else(|_| unreachable!()), nk)
}

/// `nonce || ChaCha20-Poly1305(key, nonce, aad, plaintext) || tag`.
fn seal_with_nonce(key: &[u8; 32], nonce: &[u8], chacha_nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nonce.len() + plaintext.len() + TAG_LEN);
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let tag = provider().chacha20poly1305_seal(key, chacha_nonce, aad, &mut out[nonce.len()..]);
    out.extend_from_slice(&tag);
    out
}

/// Open `ciphertext || tag` into a new buffer; `None` when it fails.
fn open_to_vec(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let n = sealed.len().checked_sub(TAG_LEN)?;
    let (ct, tag) = sealed.split_at(n);
    let tag: &[u8; TAG_LEN] = tag.try_into().ok()?;
    let mut plain = Zeroizing::new(vec![0u8; n]);
    provider().chacha20poly1305_open(key, nonce, aad, ct, tag, &mut plain).then_some(plain)
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
    seal_with_nonce(ek, &nonce, &nonce, aad, plaintext)
}

/// Open a [`seal_siv`] message and check its synthetic nonce;
/// `MESSAGE_TAMPERED` on any failure.
pub(crate) fn open_siv(keys: &[u8; 64], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let tampered = || err(ErrorCode::MessageTampered, "the message failed authentication");
    if sealed.len() < SIV_NONCE_LEN + TAG_LEN {
        return Err(err(ErrorCode::MalformedMessage, "the message is truncated"));
    }
    let (ek, nk) = split_keys(keys);
    let (nonce, ct) = sealed.split_at(SIV_NONCE_LEN);
    let nonce: [u8; SIV_NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
    let plain = open_to_vec(ek, &nonce, aad, ct).ok_or_else(tampered)?;
    let tag = Zeroizing::new(hmac_sha256(nk, &[&(aad.len() as u64).to_be_bytes(), aad, &plain]));
    if !crate::secret::ct_eq(&tag[..SIV_NONCE_LEN], &nonce) {
        return Err(tampered());
    }
    Ok(plain)
}

/// Length of a P-256 ECDSA signature (fixed `r || s`).
pub const SIGNATURE_LEN: usize = 64;

/// ECDSA P-256 / SHA-256 over the concatenation of `parts` (deterministic
/// nonces, RFC 6979), fixed 64-byte `r || s`. Always RustCrypto: signing
/// happens on devices, and RFC 6979 makes signatures reproducible.
pub(crate) fn sign(sk: &SecretKey, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
    use p256::ecdsa::signature::Signer;
    let msg = parts.concat();
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(sk).sign(&msg);
    let sig = sig.normalize_s();
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&sig.to_bytes());
    out
}

/// n/2 of P-256, big-endian: a signature's `s` above it is the high-s twin.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d,
    0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Verify a [`sign`] signature under a compressed public key; `code` on
/// failure (high-s signatures are refused, so a signature has one valid
/// encoding). A key that is not a point is refused with `code` too.
pub(crate) fn verify(pk: &[u8], parts: &[&[u8]], sig: &[u8], code: ErrorCode) -> Result<()> {
    let pk = compressed(pk, code)?;
    let sig: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| err(code, "the signature is malformed"))?;
    // Big-endian comparison of s with n/2 (public data: no constant time needed).
    if sig[32..] > HALF_ORDER[..] {
        return Err(err(code, "the signature is not in low-s form"));
    }
    if provider().p256_verify(pk, &parts.concat(), sig) {
        Ok(())
    } else {
        Err(err(code, "the signature does not verify"))
    }
}

/// Encrypt with ChaCha20-Poly1305 under a key used for exactly one message
/// (so a zero nonce is safe).
pub(crate) fn seal_once(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal_with_nonce(key, &[], &[0; 12], aad, plaintext)
}

/// Decrypt a [`seal_once`] ciphertext; `MESSAGE_TAMPERED` on failure.
pub(crate) fn open_once(key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    open_to_vec(key, &[0; 12], aad, ciphertext)
        .ok_or_else(|| err(ErrorCode::MessageTampered, "the message failed authentication"))
}

/// [`open_once`] into a caller's buffer, without allocating (the offline
/// authenticator decrypts on the stack): `out` needs the ciphertext's
/// length minus 16; returns the plaintext's length. `MESSAGE_TAMPERED`
/// on failure (`out` is then zeroed).
pub(crate) fn open_once_into(key: &[u8; 32], aad: &[u8], ciphertext: &[u8], out: &mut [u8]) -> Result<usize> {
    let tampered = || err(ErrorCode::MessageTampered, "the message failed authentication");
    let n = ciphertext.len().checked_sub(TAG_LEN).ok_or_else(tampered)?;
    let out = out.get_mut(..n).ok_or_else(tampered)?;
    let (ct, tag) = ciphertext.split_at(n);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| tampered())?;
    if provider().chacha20poly1305_open(key, &[0; 12], aad, ct, tag, out) {
        Ok(n)
    } else {
        out.zeroize();
        Err(tampered())
    }
}

/// Length of the random nonce of [`seal_blob`].
pub const BLOB_NONCE_LEN: usize = 24;

/// XChaCha20-Poly1305 as ChaCha20-Poly1305 under an HChaCha20 subkey
/// (draft-irtf-cfrg-xchacha): the subkey and the 12-byte nonce for a
/// 24-byte one. HChaCha20 is a key derivation, not an AEAD: it stays here
/// and the provider does the sealing.
fn xchacha_subkey(key: &[u8; 32], nonce: &[u8; BLOB_NONCE_LEN]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let mut sub = Zeroizing::new([0u8; 32]);
    let input: &[u8; 16] = nonce[..16].try_into().unwrap_or_else(|_| unreachable!());
    let mut derived = chacha20::hchacha::<chacha20::R20>(key.into(), input.into());
    sub.copy_from_slice(&derived);
    derived.as_mut_slice().zeroize();
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce[16..]);
    (sub, n)
}

/// Seal a stored blob with XChaCha20-Poly1305 under a long-lived key and a
/// random 192-bit nonce: returns `nonce || ciphertext`.
pub(crate) fn seal_blob(key: &[u8; 32], aad: &[u8], plaintext: &[u8], rng: &mut dyn RandomSource) -> Vec<u8> {
    let nonce = random_array::<BLOB_NONCE_LEN>(rng);
    let (sub, n) = xchacha_subkey(key, &nonce);
    seal_with_nonce(&sub, &nonce, &n, aad, plaintext)
}

/// Open a [`seal_blob`] blob; `STATE_CORRUPT` on any failure.
pub(crate) fn open_blob(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < BLOB_NONCE_LEN + TAG_LEN {
        return Err(err(ErrorCode::StateCorrupt, "the stored state is truncated"));
    }
    let (nonce, ct) = sealed.split_at(BLOB_NONCE_LEN);
    let nonce: [u8; BLOB_NONCE_LEN] = nonce.try_into().map_err(|_| err(ErrorCode::StateCorrupt, "bad nonce"))?;
    let (sub, n) = xchacha_subkey(key, &nonce);
    open_to_vec(&sub, &n, aad, ct)
        .ok_or_else(|| err(ErrorCode::StateCorrupt, "the stored state failed authentication (changed, or another key)"))
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
        let pa = decode_public(&public_of(&ska), ErrorCode::InvalidInput).unwrap();
        let pb = decode_public(&public_of(&skb), ErrorCode::InvalidInput).unwrap();
        let c = ErrorCode::InvalidInput;
        assert_eq!(*ecdh(&secret_bytes(&ska), &pb, c).unwrap(), *ecdh(&secret_bytes(&skb), &pa, c).unwrap());
        // x = 2^256 - 1 is not a field element.
        let mut bad = [0xffu8; 33];
        bad[0] = 2;
        assert_eq!(ecdh(&secret_bytes(&ska), &bad, c).unwrap_err().code(), c);
        // The same key as a SEC1 "compact" point (tag 5): refused, so a key
        // has one encoding (and a device one id).
        let mut compact = pb;
        compact[0] = 5;
        assert_eq!(ecdh(&secret_bytes(&ska), &compact, c).unwrap_err().code(), c);
        assert_eq!(decode_public(&compact, c).unwrap_err().code(), c);
        assert_eq!(ecdh(&secret_bytes(&ska), &pb[..32], c).unwrap_err().code(), c);
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
