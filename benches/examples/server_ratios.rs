//! The ratios of issue 10's server targets measured **interleaved**: rounds
//! of (portal operation, its raw AWS-LC floor) alternate, so another
//! tenant's load on a shared machine slows both sides of each ratio alike;
//! the median of the per-round ratios is printed. Criterion's sequential
//! figures (`--bench server`) drift when the load changes between groups.
//!
//! `cargo run --release -p tessera-benches --example server_ratios`
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a measurement program
use aws_lc_rs::{agreement, signature};
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToSec1Point;
use std::hint::black_box;
use std::time::Instant;
use tessera_benches::{linked_device, transaction, NOW, PASS, STORAGE_KEY};
use tessera_core::challenge::ChallengeSettings;
use tessera_core::crypto::SeededRandom;
use tessera_core::link::{self, PasscodePolicy, Portal, UserFactor};

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
    tessera_crypto_aws_lc::install().unwrap();
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, NOW, &mut rng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW).unwrap();
    let start = link::start_link(&scanned, "Phone", PASS, false, false, NOW, &mut rng).unwrap();
    let accept = || {
        let opened = portal.open_link_request(black_box(&start.request)).unwrap();
        black_box(opened.accept(&portal, Some(&offer.record), link::DeviceKeyUse::Fresh, NOW).answer);
    };
    let key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &[7u8; 32]).unwrap();
    let point =
        |b: u8| p256::SecretKey::from_slice(&[b; 32]).unwrap().public_key().to_sec1_point(true).as_bytes().to_vec();
    let (eph, dev) = (point(8), point(9));
    let ecdh = |peer: &[u8]| {
        agreement::agree(&key, agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer), (), |s| Ok(s[0]))
            .unwrap()
    };
    let dev_sk = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
    let msg = [0x5au8; 64];
    let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&dev_sk).sign(&msg);
    let sig = sig.to_bytes();
    let verify = || {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, black_box(&dev))
            .verify(&msg, &sig)
            .unwrap()
    };
    let (device, record) = linked_device(&portal, &mut rng);
    let devices = [record];
    let qr =
        portal.create_challenge(&devices, transaction(), ChallengeSettings::default(), NOW + 10, &mut rng).unwrap();
    let seen = device.read_challenge(&qr.qr_text, NOW + 12).unwrap();
    let signed = device.answer_signed(&seen, UserFactor::Passcode(PASS), &STORAGE_KEY, &mut rng).unwrap();
    let answer =
        || assert!(portal.verify_answer(&qr.record, &devices, black_box(&signed.answer), NOW + 20).result.is_ok());

    let (mut a, mut two, mut floor, mut s, mut v) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        a.push(per_call(200, accept));
        two.push(per_call(200, || {
            black_box((ecdh(black_box(&eph)), ecdh(black_box(&dev))));
        }));
        floor.push(per_call(200, || {
            black_box(ecdh(black_box(&eph)));
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
