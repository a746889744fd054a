//! The ratios of issue 10's server targets measured **interleaved**: rounds
//! of (portal operation, its raw AWS-LC floor) alternate, so another
//! tenant's load on a shared machine slows both sides of each ratio alike;
//! the median of the per-round ratios is printed. Criterion's sequential
//! figures (`--bench server`) drift when the load changes between groups.
//!
//! `cargo run --release -p tessera-benches --example server_ratios`
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement program
use std::hint::black_box;
use std::time::Instant;

#[path = "../benches/fixture/server.rs"]
mod server_fixture;
use server_fixture::ServerFixture;

const ROUNDS: usize = 25;

/// Seconds per call of `f` over `n` calls.
fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let f = ServerFixture::new();
    let accept = || {
        black_box(f.accept().answer);
    };
    let ecdh = |peer: &[u8]| f.raw_ecdh(peer);
    let verify = || f.raw_verify();
    let answer = || assert!(f.verify_answer());
    let (eph, dev) = (&f.eph, &f.dev);

    let (mut a, mut two, mut floor, mut s, mut v) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        a.push(per_call(200, accept));
        two.push(per_call(200, || {
            black_box((ecdh(black_box(eph)), ecdh(black_box(dev))));
        }));
        floor.push(per_call(200, || {
            black_box(ecdh(black_box(eph)));
            verify();
        }));
        s.push(per_call(200, answer));
        v.push(per_call(200, verify));
    }
    let ratio = |x: &[f64], y: &[f64]| median(x.iter().zip(y).map(|(x, y)| y / x).collect());
    let rate = |x: &[f64]| 1.0 / median(x.to_vec());
    println!("interleaved, {ROUNDS} rounds of 200 calls each, median per round (higher is better):");
    println!(
        "link-accept {:>8.0}/s = {:.2} x two raw ECDH ({:.0}/s), {:.2} x one ECDH + one verify ({:.0}/s, the public-key work it does)",
        rate(&a), ratio(&a, &two), rate(&two), ratio(&a, &floor), rate(&floor)
    );
    println!("signed answer {:>6.0}/s = {:.2} x raw ECDSA verify ({:.0}/s)", rate(&s), ratio(&s, &v), rate(&v));
}
