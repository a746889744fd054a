//! Crypto providers: the primitives under the protocols, chosen by the host.
//!
//! Every P-256 key agreement and signature check, every SHA-256, HMAC-SHA256
//! and HKDF-SHA256, and every ChaCha20-Poly1305 seal and open of the core
//! goes through one [`CryptoProvider`]. [`RustCrypto`] (pure Rust, constant
//! time, `no_std`) is the default and the only provider for phones, browsers
//! and microcontrollers. A server installs a faster native one once at start
//! (the `tessera-crypto-aws-lc` crate wraps AWS-LC) with [`install_default`],
//! the way rustls lets a process choose its `CryptoProvider`.
//!
//! Providers are interchangeable byte for byte: the same inputs give the same
//! outputs, so records, messages and test vectors do not depend on the
//! provider (the crate `tessera-crypto-aws-lc` runs the vectors and the
//! scenario files under both). Signing (RFC 6979 deterministic nonces),
//! key generation and the OTP algorithms stay on RustCrypto: they run on
//! the device or are not on a server's hot path.
//!
//! A provider must not panic on hostile input (a point not on the curve, a
//! short signature, a forged tag): it answers `false`.

use alloc::boxed::Box;

/// The primitives a provider supplies. Inputs are checked by the core
/// before they reach a provider (lengths, low-s signatures); a provider
/// checks what only it can (a point on the curve, a tag).
pub trait CryptoProvider: Send + Sync {
    /// A short name for logs and benchmarks (`"rustcrypto"`, `"aws-lc"`).
    fn name(&self) -> &'static str;

    /// P-256 ECDH: write the x-coordinate of `secret`·`peer` to `shared`.
    /// `secret` is a big-endian scalar in `[1, n-1]`, `peer` a compressed
    /// SEC1 point. `false` when the peer is not a valid point (or the
    /// scalar is out of range); `shared` is then unspecified.
    fn p256_ecdh(&self, secret: &[u8; 32], peer: &[u8; 33], shared: &mut [u8; 32]) -> bool;

    /// A long-lived P-256 private key for many agreements (a portal's
    /// static key), parsed once: `None` when `secret` is not a scalar in
    /// `[1, n-1]`.
    fn p256_private_key(&self, secret: &[u8; 32]) -> Option<Box<dyn P256PrivateKey>>;

    /// Whether `public` (compressed SEC1) is a valid P-256 point.
    fn p256_valid_point(&self, public: &[u8; 33]) -> bool;

    /// Verify an ECDSA P-256 / SHA-256 signature `r || s` of `message`
    /// under `public` (compressed SEC1). `false` for a bad signature or key.
    fn p256_verify(&self, public: &[u8; 33], message: &[u8], signature: &[u8; 64]) -> bool;

    /// SHA-256 of the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];

    /// HMAC-SHA256 of the concatenation of `parts` under `key`.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32];

    /// HKDF-SHA256 (RFC 5869) extract-then-expand into `out`, with `info`
    /// the concatenation of `info` parts. The core never asks for more than
    /// 255 × 32 bytes.
    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]);

    /// ChaCha20-Poly1305 (RFC 8439): encrypt `in_out` in place, return the tag.
    fn chacha20poly1305_seal(&self, key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> [u8; 16];

    /// ChaCha20-Poly1305: check `tag` and decrypt `ciphertext` into
    /// `plaintext` (same length). `false` when the tag is wrong; `plaintext`
    /// is then zeroed.
    fn chacha20poly1305_open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
        plaintext: &mut [u8],
    ) -> bool;
}

/// A P-256 private key held by a provider (see
/// [`CryptoProvider::p256_private_key`]); it zeroes its secret when dropped.
pub trait P256PrivateKey: Send + Sync {
    /// ECDH with a compressed SEC1 `peer`, as [`CryptoProvider::p256_ecdh`].
    fn ecdh(&self, peer: &[u8; 33], shared: &mut [u8; 32]) -> bool;
}

struct RustCryptoKey(p256::SecretKey);

impl P256PrivateKey for RustCryptoKey {
    fn ecdh(&self, peer: &[u8; 33], shared: &mut [u8; 32]) -> bool {
        let Some(pk) = p256_point(peer) else {
            return false;
        };
        shared.copy_from_slice(self.0.diffie_hellman(&pk).raw_secret_bytes());
        true
    }
}

/// The pure-Rust provider (the RustCrypto crates `p256`, `sha2`, `hmac`,
/// `hkdf`, `chacha20poly1305`): the default everywhere, and the only one
/// without `std`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// The [`RustCrypto`] provider as a `'static` value.
pub static RUST_CRYPTO: RustCrypto = RustCrypto;

fn p256_point(bytes: &[u8; 33]) -> Option<p256::PublicKey> {
    p256::PublicKey::from_sec1_bytes(bytes).ok()
}

impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn p256_ecdh(&self, secret: &[u8; 32], peer: &[u8; 33], shared: &mut [u8; 32]) -> bool {
        let (Ok(sk), Some(pk)) = (p256::SecretKey::from_slice(secret), p256_point(peer)) else {
            return false;
        };
        shared.copy_from_slice(sk.diffie_hellman(&pk).raw_secret_bytes());
        true
    }

    fn p256_private_key(&self, secret: &[u8; 32]) -> Option<Box<dyn P256PrivateKey>> {
        let sk = p256::SecretKey::from_slice(secret).ok()?;
        Some(Box::new(RustCryptoKey(sk)))
    }

    fn p256_valid_point(&self, public: &[u8; 33]) -> bool {
        p256_point(public).is_some()
    }

    fn p256_verify(&self, public: &[u8; 33], message: &[u8], signature: &[u8; 64]) -> bool {
        use p256::ecdsa::signature::Verifier;
        let (Some(pk), Ok(sig)) = (p256_point(public), p256::ecdsa::Signature::from_slice(signature)) else {
            return false;
        };
        p256::ecdsa::VerifyingKey::from(&pk).verify(message, &sig).is_ok()
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        // HMAC takes keys of any length.
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
        let h = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm);
        // The core asks for at most 255 × 32 bytes, so expand cannot fail.
        h.expand_multi_info(info, out).unwrap_or_else(|_| unreachable!());
    }

    fn chacha20poly1305_seal(&self, key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> [u8; 16] {
        use chacha20poly1305::aead::AeadInOut;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
        let c = ChaCha20Poly1305::new(key.into());
        // Fails only past 256 GiB of plaintext.
        let tag = c.encrypt_inout_detached(nonce.into(), aad, in_out.into()).unwrap_or_else(|_| unreachable!());
        tag.into()
    }

    fn chacha20poly1305_open(
        &self,
        key: &[u8; 32],
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
        plaintext: &mut [u8],
    ) -> bool {
        use chacha20poly1305::aead::AeadInOut;
        use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
        use zeroize::Zeroize;
        if plaintext.len() != ciphertext.len() {
            return false;
        }
        plaintext.copy_from_slice(ciphertext);
        let c = ChaCha20Poly1305::new(key.into());
        let ok = c.decrypt_inout_detached(nonce.into(), aad, (&mut *plaintext).into(), tag.into()).is_ok();
        if !ok {
            plaintext.zeroize();
        }
        ok
    }
}

#[cfg(feature = "std")]
static DEFAULT: std::sync::OnceLock<&'static dyn CryptoProvider> = std::sync::OnceLock::new();

/// Make `provider` the process's provider, once, before the first
/// operation that needs one (a server's `main`). Returns the provider
/// already installed as the error when there is one (the first choice
/// stays: a process never mixes providers). Needs the `std` feature;
/// without it every operation uses [`RustCrypto`].
#[cfg(feature = "std")]
pub fn install_default(provider: &'static dyn CryptoProvider) -> Result<(), &'static dyn CryptoProvider> {
    let mut installed = false;
    let now = *DEFAULT.get_or_init(|| {
        installed = true;
        provider
    });
    if installed {
        Ok(())
    } else {
        Err(now)
    }
}

/// The process's provider: the installed one, else [`RustCrypto`]. The
/// first call without an installed provider fixes [`RustCrypto`] as the
/// process's choice (so a later [`install_default`] is refused rather than
/// switching providers under live keys).
pub fn get_default() -> &'static dyn CryptoProvider {
    #[cfg(feature = "std")]
    {
        *DEFAULT.get_or_init(|| &RUST_CRYPTO)
    }
    #[cfg(not(feature = "std"))]
    {
        &RUST_CRYPTO
    }
}
