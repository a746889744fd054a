//! Portal-side link-accept throughput, next to the raw P-256 operations it
//! needs (two ECDH with point decompression, and the ECDSA verification of
//! the device's proof of possession), in the same run.
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use p256::{PublicKey, SecretKey};
use std::hint::black_box;
use tessera_core::crypto::SeededRandom;
use tessera_core::link::{self, PasscodePolicy, Portal};

const NOW: u64 = 1_767_225_600;

fn bench(c: &mut Criterion) {
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, NOW, &mut rng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW).unwrap();
    let start = link::start_link(&scanned, "Phone", "493817", false, false, NOW, &mut rng).unwrap();

    let mut g = c.benchmark_group("link_accept");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tessera open_link_request+accept", |b| {
        b.iter(|| {
            let opened = portal.open_link_request(black_box(&start.request)).unwrap();
            let out = opened.accept(&portal, Some(&offer.record), link::DeviceKeyUse::Fresh, NOW);
            black_box(out.answer)
        })
    });
    // The floor: the same public-key work with p256 directly.
    let sk = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let eph = SecretKey::from_slice(&[8u8; 32]).unwrap().public_key();
    let dev = SecretKey::from_slice(&[9u8; 32]).unwrap().public_key();
    let eph_bytes = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&eph, true).as_bytes().to_vec();
    let dev_bytes = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&dev, true).as_bytes().to_vec();
    g.bench_function("p256 2x(decompress+ECDH)", |b| {
        b.iter(|| {
            let e = PublicKey::from_sec1_bytes(black_box(&eph_bytes)).unwrap();
            let d = PublicKey::from_sec1_bytes(black_box(&dev_bytes)).unwrap();
            let s1 = sk.diffie_hellman(&e);
            let s2 = sk.diffie_hellman(&d);
            black_box((s1.raw_secret_bytes()[0], s2.raw_secret_bytes()[0]))
        })
    });
    // The whole floor since the proof of possession: + one ECDSA verify.
    use p256::ecdsa::signature::{Signer, Verifier};
    let signer = p256::ecdsa::SigningKey::from(&SecretKey::from_slice(&[9u8; 32]).unwrap());
    let sig: p256::ecdsa::Signature = signer.sign(b"tessera/v1/link-pop transcript");
    g.bench_function("p256 2x(decompress+ECDH)+ECDSA verify", |b| {
        b.iter(|| {
            let e = PublicKey::from_sec1_bytes(black_box(&eph_bytes)).unwrap();
            let d = PublicKey::from_sec1_bytes(black_box(&dev_bytes)).unwrap();
            let s1 = sk.diffie_hellman(&e);
            let s2 = sk.diffie_hellman(&d);
            let v = p256::ecdsa::VerifyingKey::from(&d).verify(b"tessera/v1/link-pop transcript", black_box(&sig));
            black_box((s1.raw_secret_bytes()[0], s2.raw_secret_bytes()[0], v.is_err()))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("link_device");
    g.bench_function("scan_link_qr", |b| b.iter(|| link::scan_link_qr(black_box(&offer.qr_text), NOW).unwrap()));
    g.bench_function("start_link", |b| {
        b.iter(|| link::start_link(&scanned, "Phone", "493817", false, false, NOW, &mut rng).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
