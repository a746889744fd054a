//! TOTP generation and ±1-window verification, Tessera vs totp-rs, in one run.
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tessera_core::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier};

const KEY: &[u8] = b"12345678901234567890";
const NOW: u64 = 1_111_111_109;

fn bench(c: &mut Criterion) {
    let ours = Totp::new(KEY.to_vec(), Algorithm::Sha1, 6, 30, 0).unwrap();
    let verifier = TotpVerifier::new(ours.clone(), 1, ThrottlePolicy::default());
    let theirs = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, KEY.to_vec());
    let code = ours.generate(NOW).unwrap();
    assert_eq!(theirs.generate(NOW), code, "both libraries must agree");

    let mut g = c.benchmark_group("totp_generate");
    g.bench_function("tessera", |b| b.iter(|| ours.generate(black_box(NOW)).unwrap()));
    g.bench_function("totp-rs", |b| b.iter(|| theirs.generate(black_box(NOW))));
    g.finish();

    // Verification of a valid code, window ±1 (totp-rs: skew 1).
    let mut g = c.benchmark_group("totp_verify_window1");
    g.bench_function("tessera", |b| {
        b.iter(|| {
            let mut st = OtpState::default();
            verifier.verify(&mut st, black_box(&code), black_box(NOW)).unwrap()
        })
    });
    g.bench_function("totp-rs", |b| b.iter(|| assert!(theirs.check(black_box(&code), black_box(NOW)))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
