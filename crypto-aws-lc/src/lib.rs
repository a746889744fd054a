//! A [`CryptoProvider`] for Tessera on AWS-LC (through `aws-lc-rs`): the
//! portal side's P-256 key agreements and signature checks at several
//! times the speed of the pure-Rust default, for Linux servers.
//!
//! ```
//! // Once, first thing in a server's `main`:
//! tessera_crypto_aws_lc::install().expect("no other provider chosen yet");
//! assert_eq!(tessera_core::provider::get_default().name(), "aws-lc");
//! ```
//!
//! Results are byte for byte those of [`tessera_core::provider::RustCrypto`]
//! (this crate's tests compare the two on random and hostile inputs, and
//! run the protocol vectors with it installed). Two primitives stay on
//! RustCrypto inside this provider, as they are off the hot paths: checking
//! that a compressed point is on the curve without using it (AWS-LC checks
//! points as part of an agreement or a signature check), and nothing else.

use aws_lc_rs::{aead, agreement, digest, hkdf, hmac, signature};
use tessera_core::provider::{CryptoProvider, P256PrivateKey, RustCrypto};
use zeroize::Zeroize;

/// The AWS-LC provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

/// The [`AwsLc`] provider as a `'static` value.
pub static AWS_LC: AwsLc = AwsLc;

/// Make AWS-LC the process's provider ([`tessera_core::provider::install_default`]).
/// Returns the name of the provider already chosen when there is one.
pub fn install() -> Result<(), &'static str> {
    tessera_core::provider::install_default(&AWS_LC).map_err(|p| p.name())
}

/// The provider named `name` (`"aws-lc"` or `"rustcrypto"`), for a
/// command-line flag or an environment variable.
pub fn by_name(name: &str) -> Option<&'static dyn CryptoProvider> {
    match name {
        "aws-lc" | "awslc" => Some(&AWS_LC),
        "rustcrypto" | "rust" => Some(&tessera_core::provider::RUST_CRYPTO),
        _ => None,
    }
}

/// The environment variable [`install_from_env`] reads.
pub const PROVIDER_ENV: &str = "TESSERA_CRYPTO";

/// Install the provider named by `TESSERA_CRYPTO` (`aws-lc` or
/// `rustcrypto`), or `default` when it is unset: what a server's `main`
/// and the test suites call. Errors name an unknown provider, or the
/// provider already chosen when it is another one.
pub fn install_from_env(default: &'static dyn CryptoProvider) -> Result<&'static dyn CryptoProvider, String> {
    let wanted = match std::env::var(PROVIDER_ENV) {
        Ok(name) => by_name(&name).ok_or_else(|| format!("{PROVIDER_ENV}={name}: use aws-lc or rustcrypto"))?,
        Err(_) => default,
    };
    match tessera_core::provider::install_default(wanted) {
        Ok(()) => Ok(wanted),
        Err(now) if now.name() == wanted.name() => Ok(now),
        Err(now) => Err(format!("the crypto provider is already {}", now.name())),
    }
}

struct Key(agreement::PrivateKey);

impl P256PrivateKey for Key {
    fn ecdh(&self, peer: &[u8; 33], shared: &mut [u8; 32]) -> bool {
        agree(&self.0, peer, shared)
    }
}

fn agree(key: &agreement::PrivateKey, peer: &[u8; 33], shared: &mut [u8; 32]) -> bool {
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
    agreement::agree(key, peer, (), |s: &[u8]| {
        if s.len() != shared.len() {
            return Err(());
        }
        shared.copy_from_slice(s);
        Ok(())
    })
    .is_ok()
}

/// An HKDF output length (aws-lc-rs asks for it as a key type).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn chacha(key: &[u8; 32]) -> aead::LessSafeKey {
    // A 32-byte key is always a valid ChaCha20-Poly1305 key.
    aead::LessSafeKey::new(aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key).unwrap_or_else(|_| unreachable!()))
}

impl CryptoProvider for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc"
    }

    fn p256_ecdh(&self, secret: &[u8; 32], peer: &[u8; 33], shared: &mut [u8; 32]) -> bool {
        match agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, secret) {
            Ok(key) => agree(&key, peer, shared),
            Err(_) => false,
        }
    }

    fn p256_private_key(&self, secret: &[u8; 32]) -> Option<Box<dyn P256PrivateKey>> {
        let key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, secret).ok()?;
        Some(Box::new(Key(key)))
    }

    fn p256_valid_point(&self, public: &[u8; 33]) -> bool {
        RustCrypto.p256_valid_point(public)
    }

    fn p256_verify(&self, public: &[u8; 33], message: &[u8], sig: &[u8; 64]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public).verify(message, sig).is_ok()
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut c = digest::Context::new(&digest::SHA256);
        for p in parts {
            c.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(c.finish().as_ref());
        out
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, key);
        let mut c = hmac::Context::with_key(&k);
        for p in parts {
            c.update(p);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(c.sign().as_ref());
        out
    }

    fn hkdf_sha256(&self, salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        // The core asks for at most 255 × 32 bytes, which cannot fail.
        prk.expand(info, Len(out.len())).and_then(|okm| okm.fill(out)).unwrap_or_else(|_| unreachable!());
    }

    fn chacha20poly1305_seal(&self, key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], in_out: &mut [u8]) -> [u8; 16] {
        let tag = chacha(key)
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(*nonce), aead::Aad::from(aad), in_out)
            // Fails only past the algorithm's maximum input length.
            .unwrap_or_else(|_| unreachable!());
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
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
        if plaintext.len() != ciphertext.len() {
            return false;
        }
        let ok = chacha(key)
            .open_separate_gather(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                ciphertext,
                tag,
                plaintext,
            )
            .is_ok();
        if !ok {
            plaintext.zeroize();
        }
        ok
    }
}
