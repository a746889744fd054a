//! Per-call cost baseline in Rust for `scripts/bench-boundary.sh`: the same
//! two calls the JS (Node) and Kotlin (JVM) benchmarks make through their
//! bindings, timed the same way (warm-up, then the mean of N calls).
//! Prints `rust <call> <ns per call>`.

use std::hint::black_box;
use std::time::Instant;
use tessera_host::{base32_encode, verify_totp, OtpVerifierConfig, OtpVerifierState, Timestamp};

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let secret = b"12345678901234567890".to_vec();
    let now = Timestamp::from_secs(1_800_000_000);
    let code = tessera_host::totp(secret.clone(), now, 30, 6, Default::default()).expect("code");
    let config = OtpVerifierConfig { secret, ..Default::default() };
    let trivial = per_call(1_000_000, || {
        black_box(base32_encode(black_box(vec![1u8])));
    });
    let verify = per_call(100_000, || {
        let c = verify_totp(config.clone(), OtpVerifierState::default(), code.clone(), now).expect("verify");
        black_box(c);
    });
    println!("rust trivial-call(base32Encode 1 byte) {trivial:.0} ns");
    println!("rust totp-verification {verify:.0} ns");
}
