//! The portal side on a server, with the AWS-LC provider installed, each
//! figure next to the raw primitive floor it needs, in one run:
//!
//! - link-accept (`open_link_request` + `accept`: one ECDH with a
//!   compressed point and the ECDSA check of the proof of possession; the
//!   channel key's ECDH waits for the confirmation) beside two raw AWS-LC
//!   ECDH, and two ECDH + one verify;
//! - a signed challenge answer beside one raw AWS-LC ECDSA verify;
//! - TOTP verification of a wrong code (all three steps of the ±1 window:
//!   what each brute-force attempt costs the portal) beside totp-rs.
//!
//! `bash scripts/bench-server.sh` runs it and prints the ratios to the
//! targets of issue 10.
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run
use aws_lc_rs::{agreement, signature};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToSec1Point;
use std::hint::black_box;
use tessera_benches::{linked_device, transaction, NOW, PASS, STORAGE_KEY};
use tessera_core::challenge::ChallengeSettings;
use tessera_core::crypto::SeededRandom;
use tessera_core::link::{self, PasscodePolicy, Portal, UserFactor};
use tessera_core::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::ErrorCode;

fn compressed(sk: &p256::SecretKey) -> Vec<u8> {
    sk.public_key().to_sec1_point(true).as_bytes().to_vec()
}

fn raw_ecdh(key: &agreement::PrivateKey, peer: &[u8]) -> u8 {
    agreement::agree(key, agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer), (), |s| Ok(s[0])).unwrap()
}

fn bench(c: &mut Criterion) {
    tessera_crypto_aws_lc::install().unwrap();
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();

    // --- link-accept ---
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, NOW, &mut rng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW).unwrap();
    let start = link::start_link(&scanned, "Phone", PASS, false, false, NOW, &mut rng).unwrap();
    let accept = || {
        let opened = portal.open_link_request(black_box(&start.request)).unwrap();
        opened.accept(&portal, Some(&offer.record), link::DeviceKeyUse::Fresh, NOW)
    };
    assert_eq!(accept().outcome.result, Ok(link::Accept::Accepted));
    let mut g = c.benchmark_group("server_link_accept");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera open_link_request+accept (aws-lc)", |b| b.iter(|| black_box(accept().answer)));
    let static_key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &[7u8; 32]).unwrap();
    let eph = compressed(&p256::SecretKey::from_slice(&[8u8; 32]).unwrap());
    let dev_sk = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
    let dev = compressed(&dev_sk);
    g.bench_function("aws-lc 2x ECDH (static key, compressed peer)", |b| {
        b.iter(|| black_box((raw_ecdh(&static_key, black_box(&eph)), raw_ecdh(&static_key, black_box(&dev)))))
    });
    let msg = [0x5au8; 64];
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&dev_sk).sign(&msg);
    let sig = sig.to_bytes();
    let verify = |pk: &[u8]| {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pk).verify(black_box(&msg), &sig)
    };
    verify(&dev).unwrap();
    g.bench_function("aws-lc 2x ECDH + ECDSA verify", |b| {
        b.iter(|| {
            black_box((raw_ecdh(&static_key, black_box(&eph)), raw_ecdh(&static_key, black_box(&dev))));
            verify(black_box(&dev)).unwrap()
        })
    });
    g.finish();

    // --- signed challenge answer ---
    let (device, record) = linked_device(&portal, &mut rng);
    let devices = [record];
    let qr =
        portal.create_challenge(&devices, transaction(), ChallengeSettings::default(), NOW + 10, &mut rng).unwrap();
    let seen = device.read_challenge(&qr.qr_text, NOW + 12).unwrap();
    let signed = device.answer_signed(&seen, UserFactor::Passcode(PASS), &STORAGE_KEY, &mut rng).unwrap();
    assert!(portal.verify_answer(&qr.record, &devices, &signed.answer, NOW + 20).result.is_ok());
    let mut g = c.benchmark_group("server_signed_answer");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera verify_answer signed (aws-lc)", |b| {
        b.iter(|| portal.verify_answer(black_box(&qr.record), black_box(&devices), black_box(&signed.answer), NOW + 20))
    });
    g.bench_function("aws-lc ECDSA verify (compressed key, 64-byte message)", |b| {
        b.iter(|| verify(black_box(&dev)).unwrap())
    });
    g.finish();

    // --- TOTP, wrong code, window ±1 ---
    const KEY: &[u8] = b"12345678901234567890";
    const T: u64 = 1_111_111_109;
    let ours = Totp::new(KEY.to_vec(), Algorithm::Sha1, 6, 30, 0).unwrap();
    let verifier = TotpVerifier::new(ours.clone(), 1, ThrottlePolicy::default());
    let theirs = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, KEY.to_vec());
    // A code that no step of the window gives.
    let window: Vec<String> = (T - 30..=T + 30).step_by(30).map(|t| ours.generate(t).unwrap()).collect();
    let wrong = (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !window.contains(c)).unwrap();
    assert_eq!(verifier.verify(&mut OtpState::default(), &wrong, T).unwrap_err().code(), ErrorCode::OtpMismatch);
    assert!(!theirs.check(&wrong, T));
    let mut g = c.benchmark_group("server_totp_wrong_code");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera TotpVerifier (±1, 3 steps)", |b| {
        b.iter(|| {
            let mut st = OtpState::default();
            verifier.verify(&mut st, black_box(&wrong), black_box(T)).is_err()
        })
    });
    g.bench_function("totp-rs check (skew 1, 3 steps)", |b| b.iter(|| theirs.check(black_box(&wrong), black_box(T))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
