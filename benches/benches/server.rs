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
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tessera_core::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::ErrorCode;

#[path = "fixture/server.rs"]
mod server_fixture;
use server_fixture::ServerFixture;

fn bench(c: &mut Criterion) {
    let f = ServerFixture::new();

    // --- link-accept ---
    let mut g = c.benchmark_group("server_link_accept");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera open_link_request+accept (aws-lc)", |b| b.iter(|| black_box(f.accept().answer)));
    g.bench_function("aws-lc 2x ECDH (static key, compressed peer)", |b| {
        b.iter(|| black_box((f.raw_ecdh(&f.eph), f.raw_ecdh(&f.dev))))
    });
    g.bench_function("aws-lc 2x ECDH + ECDSA verify", |b| {
        b.iter(|| {
            black_box((f.raw_ecdh(&f.eph), f.raw_ecdh(&f.dev)));
            f.raw_verify()
        })
    });
    g.finish();

    // --- signed challenge answer ---
    let mut g = c.benchmark_group("server_signed_answer");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera verify_answer signed (aws-lc)", |b| b.iter(|| f.verify_answer()));
    g.bench_function("aws-lc ECDSA verify (compressed key, 64-byte message)", |b| b.iter(|| f.raw_verify()));
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
