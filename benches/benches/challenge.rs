//! Challenge/response (flow 4): portal-side answer verification as
//! throughput (the target is at least 1 million typed-answer verifications
//! per second per core), the signed answer next to the raw P-256 ECDSA
//! verification it needs (in the same run, so the overhead shows), challenge
//! creation, and the device side (read the QR, compute the typed code).
//!
//! `cargo bench -p tessera-benches --bench challenge -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::{PublicKey, SecretKey};
use std::hint::black_box;
use tessera_core::challenge::ChallengeSettings;
use tessera_core::crypto::SeededRandom;
use tessera_core::link::{Portal, UserFactor};
use tessera_core::ErrorCode;

use tessera_benches::{linked_device, transaction, wrong_code, NOW, PASS, STORAGE_KEY};

fn bench(c: &mut Criterion) {
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let (device, record) = linked_device(&portal, &mut rng);
    let devices = [record];
    let settings = ChallengeSettings::default();
    let qr = portal.create_challenge(&devices, transaction(), settings, NOW + 10, &mut rng).unwrap();
    let seen = device.read_challenge(&qr.qr_text, NOW + 12).unwrap();
    let typed = device.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    assert_eq!(typed.len(), 8);
    let wrong = wrong_code(&typed);
    let signed = device.answer_signed(&seen, UserFactor::Passcode(PASS), &STORAGE_KEY, &mut rng).unwrap();
    // The records are never updated, so every iteration sees an open
    // challenge and a device with no failures (and no counter yet).
    let at = NOW + 20;
    assert!(portal.verify_answer(&qr.record, &devices, &typed, at).result.is_ok());
    assert_eq!(
        portal.verify_answer(&qr.record, &devices, &wrong, at).result.unwrap_err().code(),
        ErrorCode::InvalidAnswer
    );
    assert!(portal.verify_answer(&qr.record, &devices, &signed.answer, at).result.is_ok());

    let mut g = c.benchmark_group("challenge");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_answer typed (correct, 8 digits)", |b| {
        b.iter(|| portal.verify_answer(black_box(&qr.record), black_box(&devices), black_box(&typed), at))
    });
    g.bench_function("verify_answer typed (wrong code)", |b| {
        b.iter(|| portal.verify_answer(black_box(&qr.record), black_box(&devices), black_box(&wrong), at))
    });
    g.bench_function("verify_answer signed (correct)", |b| {
        b.iter(|| portal.verify_answer(black_box(&qr.record), black_box(&devices), black_box(&signed.answer), at))
    });
    // The floor of a signed answer: one ECDSA verification of a 64-byte
    // message with a ready key, then with the point decompression the
    // portal does too (it stores the compressed device key).
    let sk = SecretKey::from_slice(&[9u8; 32]).unwrap();
    let pk_bytes = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&sk.public_key(), true).as_bytes().to_vec();
    let vk = p256::ecdsa::VerifyingKey::from(&sk.public_key());
    let msg = [0x5au8; 64];
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&sk).sign(&msg);
    g.bench_function("p256 ECDSA verify (64-byte message)", |b| {
        b.iter(|| vk.verify(black_box(&msg), black_box(&sig)).unwrap())
    });
    g.bench_function("p256 decompress+ECDSA verify (64-byte message)", |b| {
        b.iter(|| {
            let pk = PublicKey::from_sec1_bytes(black_box(&pk_bytes)).unwrap();
            p256::ecdsa::VerifyingKey::from(&pk).verify(black_box(&msg), black_box(&sig)).unwrap()
        })
    });
    g.bench_function("create_challenge (transaction, 1 device)", |b| {
        b.iter(|| portal.create_challenge(black_box(&devices), transaction(), settings, NOW + 10, &mut rng).unwrap())
    });
    g.bench_function("device read_challenge+answer_code", |b| {
        b.iter(|| {
            let seen = device.read_challenge(black_box(&qr.qr_text), NOW + 12).unwrap();
            device.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
