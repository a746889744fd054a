//! AWS-LC and RustCrypto answer byte for byte alike: on random inputs, on
//! hostile ones (points off the curve, the "compact" encoding, forged tags
//! and signatures), and for every length the core uses.
#![allow(clippy::unwrap_used)] // test set-up

use p256::ecdsa::signature::Signer;
use tessera_core::crypto::{RandomSource, SeededRandom};
use tessera_core::provider::{CryptoProvider, RustCrypto};
use tessera_crypto_aws_lc::AwsLc;

const A: &dyn CryptoProvider = &AwsLc;
const R: &dyn CryptoProvider = &RustCrypto;

fn bytes<const N: usize>(rng: &mut SeededRandom) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

fn key(rng: &mut SeededRandom) -> (p256::SecretKey, [u8; 32], [u8; 33]) {
    loop {
        if let Ok(sk) = p256::SecretKey::from_slice(&bytes::<32>(rng)) {
            use p256::elliptic_curve::sec1::ToSec1Point;
            let pk: [u8; 33] = sk.public_key().to_sec1_point(true).as_bytes().try_into().unwrap();
            return (sk.clone(), sk.to_bytes().into(), pk);
        }
    }
}

#[test]
fn ecdh_agrees_and_refuses_alike() {
    let mut rng = SeededRandom::new([1; 32]);
    for i in 0..200 {
        let (_, a, _) = key(&mut rng);
        let (_, _, peer) = key(&mut rng);
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        assert!(A.p256_ecdh(&a, &peer, &mut x) && R.p256_ecdh(&a, &peer, &mut y));
        assert_eq!(x, y, "case {i}");
        let (ka, kr) = (A.p256_private_key(&a).unwrap(), R.p256_private_key(&a).unwrap());
        let (mut x2, mut y2) = ([0u8; 32], [0u8; 32]);
        assert!(ka.ecdh(&peer, &mut x2) && kr.ecdh(&peer, &mut y2));
        assert_eq!((x2, y2), (x, x));
        // Random x coordinates: about half are points; both must agree which.
        let mut junk = bytes::<33>(&mut rng);
        junk[0] = 2 + (i % 2) as u8;
        let (ok_a, ok_r) = (A.p256_ecdh(&a, &junk, &mut x), R.p256_ecdh(&a, &junk, &mut y));
        assert_eq!(ok_a, ok_r, "case {i}: validity of a random x");
        assert_eq!(ok_a, R.p256_valid_point(&junk));
        assert_eq!(A.p256_valid_point(&junk), ok_a);
        if ok_a {
            assert_eq!(x, y);
        }
    }
    // x beyond the field, the identity, out-of-range scalars.
    let (_, a, mut peer) = key(&mut rng);
    peer[1..].fill(0xff);
    let mut out = [0u8; 32];
    assert!(!A.p256_ecdh(&a, &peer, &mut out) && !R.p256_ecdh(&a, &peer, &mut out));
    let (_, _, good) = key(&mut rng);
    for bad in [[0u8; 32], [0xff; 32]] {
        assert!(!A.p256_ecdh(&bad, &good, &mut out) && !R.p256_ecdh(&bad, &good, &mut out));
        assert!(A.p256_private_key(&bad).is_none() && R.p256_private_key(&bad).is_none());
    }
}

#[test]
fn signatures_verify_alike() {
    let mut rng = SeededRandom::new([2; 32]);
    for i in 0..100 {
        let (sk, _, pk) = key(&mut rng);
        let msg = bytes::<48>(&mut rng);
        let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&sk).sign(&msg);
        let sig: [u8; 64] = sig.to_bytes().into();
        assert!(A.p256_verify(&pk, &msg, &sig) && R.p256_verify(&pk, &msg, &sig), "case {i}");
        let mut bad = sig;
        bad[(i % 64) as usize] ^= 1 << (i % 8);
        assert!(!A.p256_verify(&pk, &msg, &bad) && !R.p256_verify(&pk, &msg, &bad), "case {i}");
        let mut other = msg;
        other[0] ^= 1;
        assert!(!A.p256_verify(&pk, &other, &sig) && !R.p256_verify(&pk, &other, &sig));
        let mut off = pk;
        off[1..].fill(0xff);
        assert!(!A.p256_verify(&off, &msg, &sig) && !R.p256_verify(&off, &msg, &sig));
        assert!(!A.p256_verify(&pk, &msg, &[0; 64]) && !R.p256_verify(&pk, &msg, &[0; 64]));
    }
}

#[test]
fn hashes_macs_and_kdf_alike() {
    let mut rng = SeededRandom::new([3; 32]);
    for len in [0usize, 1, 31, 32, 33, 64, 65, 200] {
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        let parts: [&[u8]; 3] = [&data[..len / 3], &data[len / 3..], b"tail"];
        assert_eq!(A.sha256(&parts), R.sha256(&parts), "sha256 {len}");
        let key = &data[..len / 2];
        assert_eq!(A.hmac_sha256(key, &parts), R.hmac_sha256(key, &parts), "hmac {len}");
        for n in [1usize, 8, 32, 64, 128, 255 * 32] {
            let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
            A.hkdf_sha256(key, &data, &parts, &mut x);
            R.hkdf_sha256(key, &data, &parts, &mut y);
            assert_eq!(x, y, "hkdf {len}/{n}");
        }
    }
}

#[test]
fn aead_seals_and_opens_alike() {
    let mut rng = SeededRandom::new([4; 32]);
    for len in [0usize, 1, 15, 16, 17, 64, 300] {
        let (key, nonce) = (bytes::<32>(&mut rng), bytes::<12>(&mut rng));
        let mut plain = vec![0u8; len];
        rng.fill_bytes(&mut plain);
        let (mut x, mut y) = (plain.clone(), plain.clone());
        let (tx, ty) = (
            A.chacha20poly1305_seal(&key, &nonce, b"aad", &mut x),
            R.chacha20poly1305_seal(&key, &nonce, b"aad", &mut y),
        );
        assert_eq!((&x, tx), (&y, ty), "seal {len}");
        for p in [A, R] {
            let mut out = vec![0u8; len];
            assert!(p.chacha20poly1305_open(&key, &nonce, b"aad", &x, &tx, &mut out));
            assert_eq!(out, plain);
            let mut bad = tx;
            bad[len % 16] ^= 1;
            out.fill(7);
            assert!(!p.chacha20poly1305_open(&key, &nonce, b"aad", &x, &bad, &mut out), "{}", p.name());
            assert!(out.iter().all(|b| *b == 0), "{}: a failed open leaves no plaintext", p.name());
            assert!(!p.chacha20poly1305_open(&key, &nonce, b"aae", &x, &tx, &mut out));
            let mut short = vec![0u8; len + 1];
            assert!(!p.chacha20poly1305_open(&key, &nonce, b"aad", &x, &tx, &mut short));
        }
    }
}
