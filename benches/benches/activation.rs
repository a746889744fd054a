//! Activation (flow 3): the offline authenticator's scans (the code a
//! microcontroller runs, here on the host CPU), the portal's steps, the
//! slow hash at the default and minimum costs, and importing a maker's file.
//!
//! `cargo bench -p tessera-benches --bench activation -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tessera_core::activation::password::MIN_HASH_ITERATIONS;
use tessera_core::activation::{
    ActivationRecord, ActivationSettings, EnrolmentRecord, Screen, Token, TokenRecord, FACTORY_FILE_HEADER,
};
use tessera_core::challenge::{Approval, ChallengeSettings};
use tessera_core::crypto::SeededRandom;
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{DeviceRecord, Portal};

const NOW: u64 = 1_767_225_600;

fn written<T>(o: &Outcome<T>) -> (Option<TokenRecord>, Option<EnrolmentRecord>, Option<ActivationRecord>) {
    let (mut t, mut e, mut a) = (None, None, None);
    for w in &o.writes {
        match w {
            Write::Token(r) => t = Some(r.clone()),
            Write::Enrolment(r) => e = Some(r.clone()),
            Write::Activation(r) => a = Some(r.clone()),
            _ => {}
        }
    }
    (t, e, a)
}

struct Fixture {
    portal: Portal,
    settings: ActivationSettings,
    /// The activated device, and the same device before its activation.
    token: Token,
    fresh: Token,
    /// Its row while in stock, once sent with its order, and the order.
    token_row: TokenRecord,
    assigned: TokenRecord,
    order: EnrolmentRecord,
    /// The activation at its device-code step, and its first QR code.
    at_device_code: (ActivationRecord, String),
    /// The second QR code.
    binding_qr: String,
    /// A login challenge for the activated device.
    challenge_qr: String,
}

fn code(s: Screen) -> String {
    match s {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().to_owned()
        }
    }
}

/// The whole flow for one device, keeping what the benchmarks replay.
fn fixture() -> Fixture {
    let mut rng = SeededRandom::new([5; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let settings = ActivationSettings { hash_iterations: MIN_HASH_ITERATIONS, usable_after: 0, ..Default::default() };
    let mut token = Token::new("TS00012345", &mut rng).unwrap();
    let fresh = token.clone();
    let file = format!("{FACTORY_FILE_HEADER}\n{}\n", token.factory_record().to_line());
    let (t, ..) = written(&portal.import_factory_records(&file, &[], NOW));
    let token_row = t.unwrap();
    let o = portal.order_device("anna", "271828", &token_row, &settings, NOW, &mut rng);
    let initial = String::clone(&o.result.as_ref().unwrap().initial_password);
    let (t, e, _) = written(&o);
    let (mut t, mut e) = (t.unwrap(), e.unwrap());
    let assigned = t.clone();
    let o = portal.start_activation(&e, &t, &settings, NOW, &mut rng);
    let (_, e2, a) = written(&o);
    e = e2.unwrap();
    let mut a = a.unwrap();
    let order = e.clone();
    let mut qr = o.result.unwrap().qr_text;
    let at_device_code = (a.clone(), qr.clone().unwrap());
    let mut binding_qr = String::new();
    let mut device: Option<DeviceRecord> = None;
    let inputs = [
        None,
        Some("271828"),
        None,
        Some("TS00012345"),
        None,
        Some(initial.as_str()),
        Some("correct horse battery staple"),
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        if i == 2 {
            binding_qr = qr.clone().unwrap();
        }
        let input = input.map_or_else(|| code(token.scan(qr.as_deref().unwrap()).unwrap()), str::to_owned);
        let o = portal.activation_next(&a, &e, &t, None, &input, &settings, NOW, &mut rng);
        for w in &o.writes {
            match w {
                Write::Token(r) => t = r.clone(),
                Write::Enrolment(r) => e = r.clone(),
                Write::Activation(r) => a = r.clone(),
                Write::Device(d) => device = Some(d.clone()),
                _ => {}
            }
        }
        qr = o.result.unwrap().qr_text;
    }
    let devices = [device.unwrap()];
    let c =
        portal.create_challenge(&devices, Approval::Login, ChallengeSettings::default(), NOW + 1, &mut rng).unwrap();
    Fixture {
        portal,
        settings,
        token,
        fresh,
        token_row,
        assigned,
        order,
        at_device_code,
        binding_qr,
        challenge_qr: c.qr_text,
    }
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("authenticator (device side)");
    g.throughput(Throughput::Elements(1));
    let (a, qr1) = &f.at_device_code;
    let fresh = f.fresh.clone();
    g.bench_function("scan first QR (device code)", |b| {
        let mut t = fresh.clone();
        b.iter(|| black_box(t.scan(black_box(qr1)).unwrap()))
    });
    g.bench_function("scan binding QR (bind + code)", |b| {
        let mut t = fresh.clone();
        b.iter(|| black_box(t.scan(black_box(&f.binding_qr)).is_ok()))
    });
    g.bench_function("scan login challenge (code)", |b| {
        let mut t = f.token.clone();
        b.iter(|| black_box(t.scan(black_box(&f.challenge_qr)).unwrap()))
    });
    g.bench_function("state to_bytes + from_bytes", |b| {
        b.iter(|| black_box(Token::from_bytes(&black_box(&f.token).to_bytes()[..]).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("portal");
    g.throughput(Throughput::Elements(1));
    let mut rng = SeededRandom::new([6; 32]);
    let wrong = f.portal.activation_next(a, &f.order, &f.assigned, None, "0000000000", &f.settings, NOW, &mut rng);
    assert_eq!(wrong.result.unwrap_err().code(), tessera_core::ErrorCode::DeviceCodeMismatch);
    g.bench_function("activation_next: wrong device code (counted)", |b| {
        b.iter(|| {
            let o = f.portal.activation_next(a, &f.order, &f.assigned, None, "0000000000", &f.settings, NOW, &mut rng);
            black_box(o.result.is_err())
        })
    });
    let mut lines = vec![FACTORY_FILE_HEADER.to_owned()];
    let key = tessera_core::encoding::hex_encode(f.fresh.public_key());
    for i in 0..10_000u32 {
        lines.push(format!("TS{i:08} {key}"));
    }
    let file = lines.join("\n");
    assert_eq!(f.portal.import_factory_records(&file, &[], NOW).writes.len(), 10_000);
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("import 10 000 factory records", |b| {
        b.iter(|| black_box(f.portal.import_factory_records(&file, &[], NOW).writes.len()))
    });
    g.finish();

    let mut g = c.benchmark_group("slow hash (one check of the activation code or a password)");
    g.sample_size(10);
    for iterations in [MIN_HASH_ITERATIONS, tessera_core::activation::password::DEFAULT_HASH_ITERATIONS] {
        let s = ActivationSettings { hash_iterations: iterations, ..f.settings.clone() };
        g.bench_function(format!("PBKDF2-HMAC-SHA256, {iterations} iterations (an order)"), |b| {
            b.iter(|| {
                let o = f.portal.order_device("anna", "271828", &f.token_row, &s, NOW, &mut rng);
                black_box(o.result.is_ok())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
