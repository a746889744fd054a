//! The bodies of every fuzz target, shared by the cargo-fuzz targets in
//! `fuzz_targets/` and by `core/tests/fuzz_corpus.rs`, which replays the
//! corpora on every ordinary `cargo test`. Each function must never panic
//! on any input; the `assert!`s state properties of accepted inputs.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::OnceLock;
use tessera_core::challenge::{
    Amount, Approval, ChallengeRecord, ChallengeSettings, ChallengeState, Transaction, ANSWER_DIGITS,
};
use tessera_core::crypto::SeededRandom;
use tessera_core::host::Write;
use tessera_core::link::{self, DeviceRecord, DeviceState, PasscodePolicy, PendingDeviceLink, Portal};
use tessera_core::otp::ocra::{OcraInput, OcraSuite};
use tessera_core::otp::uri::{KeyUri, SecretPolicy};
use tessera_core::ErrorCode;

/// `KeyUri::parse` under both policies; accepted URIs must round-trip.
/// Returns whether the input parsed under (Strict, AllowShort).
pub fn otpauth_uri(data: &[u8]) -> (bool, bool) {
    let text = String::from_utf8_lossy(data);
    let mut ok = [false; 2];
    for (i, policy) in [SecretPolicy::Strict, SecretPolicy::AllowShort].into_iter().enumerate() {
        if let Ok(key) = KeyUri::parse(&text, policy) {
            ok[i] = true;
            let again = KeyUri::parse(&key.to_uri(), policy);
            assert_eq!(again.as_ref().ok(), Some(&key), "canonical form of {text:?}");
            assert!(key.generate(1_700_000_000).is_ok());
        }
    }
    (ok[0], ok[1])
}

/// `OcraSuite::parse`, then `compute` with fitting, missing and malformed
/// inputs. Returns whether the suite parsed.
pub fn ocra_suite(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Ok(suite) = OcraSuite::parse(&text) else {
        return false;
    };
    assert_eq!(suite.as_str(), text);
    let session = [0x5a_u8; 999];
    let input = OcraInput {
        counter: suite.uses_counter().then_some(1),
        question: Some("1234"), // valid for QA, QN and QH
        password: suite.pin_algorithm().map(|_| "1234"),
        password_hash: None,
        session: suite.session_len().map(|n| &session[..usize::from(n)]),
        time: suite.time_step_seconds().map(|_| 1_700_000_000),
    };
    assert!(suite.compute(b"12345678901234567890", &input).is_ok());
    let _ = suite.compute(b"", &OcraInput::default());
    let _ = suite.compute(b"", &OcraInput { question: Some(&text), ..input });
    true
}

const NOW: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x5a; 32];

struct Fixture {
    portal: Portal,
    pending: Vec<u8>,
    state: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // The same steps and seeds as vectors/link.json, so its messages are valid seeds.
        let mut prng = SeededRandom::new([0x01; 32]);
        let mut rng = SeededRandom::new([0x02; 32]);
        let portal = Portal::generate("Example Bank", &mut prng).unwrap();
        let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
        let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
        let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, NOW + 10, &mut rng).unwrap();
        let pending = start.pending.seal(&KEY, &mut rng);
        let out = portal.open_link_request(&start.request).unwrap().accept(
            &portal,
            Some(&offer.record),
            link::DeviceKeyUse::Fresh,
            NOW + 12,
        );
        let state = link::finish_link(start.pending, &out.answer, &KEY, &mut rng).unwrap().state;
        Fixture { portal, pending, state }
    })
}

/// Every decoder of the link protocol on the same input: the QR text, the
/// portal's request and status decoders, the device's answer and status
/// decoders, and every stored blob. Returns how many accepted it.
pub fn link_messages(data: &[u8]) -> usize {
    let f = fixture();
    let text = String::from_utf8_lossy(data);
    let mut accepted = 0;
    if let Ok(o) = link::scan_link_qr(&text, NOW) {
        assert!(o.portal_name.len() <= link::MAX_PORTAL_NAME_LEN);
        accepted += 1;
    }
    if let Ok(r) = f.portal.open_link_request(&text) {
        assert_eq!(r.device_id().len(), 16);
        accepted += 1;
    }
    accepted += usize::from(f.portal.open_status_request(&text).is_ok());
    let mut rng = SeededRandom::new([0x02; 32]);
    let pending = PendingDeviceLink::open(&KEY, &f.pending).unwrap();
    accepted += usize::from(link::finish_link(pending, &text, &KEY, &mut rng).is_ok());
    let state = DeviceState::open(&KEY, &f.state).unwrap();
    let (_, probe) = state.status_request(NOW, &mut rng).unwrap();
    accepted += usize::from(state.read_status_answer(&probe, &text).is_ok());
    accepted += usize::from(DeviceState::open(&KEY, data).is_ok());
    accepted += usize::from(PendingDeviceLink::open(&KEY, data).is_ok());
    accepted += usize::from(f.portal.open_record::<link::DeviceRecord>(&text, "anna", 1, data).is_ok());
    accepted
}

struct ChallengeFixture {
    portal: Portal,
    state: DeviceState,
    device: DeviceRecord,
    challenge: ChallengeRecord,
}

/// When the challenge fixture's device reads and its portal verifies.
pub const CHALLENGE_READ_TIME: u64 = NOW + 125;
pub const CHALLENGE_VERIFY_TIME: u64 = NOW + 150;

fn challenge_fixture() -> &'static ChallengeFixture {
    static F: OnceLock<ChallengeFixture> = OnceLock::new();
    F.get_or_init(|| {
        // vectors/challenge.json: the device of vectors/link.json, confirmed at
        // NOW + 20, and its challenges from seed 0x03*32 (login, then the
        // payment whose record is the fixture), so its messages are valid seeds.
        let mut prng = SeededRandom::new([0x01; 32]);
        let mut rng = SeededRandom::new([0x02; 32]);
        let portal = Portal::generate("Example Bank", &mut prng).unwrap();
        let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
        let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
        let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, NOW + 10, &mut rng).unwrap();
        let out = portal.open_link_request(&start.request).unwrap().accept(
            &portal,
            Some(&offer.record),
            link::DeviceKeyUse::Fresh,
            NOW + 12,
        );
        let pending = out
            .outcome
            .writes
            .iter()
            .find_map(|w| if let Write::PendingLink(p) = w { Some(p.clone()) } else { None })
            .unwrap();
        let linked = link::finish_link(start.pending, &out.answer, &KEY, &mut rng).unwrap();
        let device = portal.confirm_link(&pending, &linked.check_code, NOW + 20).result.unwrap();
        let mut crng = SeededRandom::new([0x03; 32]);
        let payment = Approval::Transaction(Transaction {
            amount: Amount::parse("125.50").unwrap(),
            currency: "EUR".into(),
            payee: "ACME Energy Ltd".into(),
            text: vec!["Invoice 2026-118".into()],
        });
        let mut challenge = None;
        for (approval, at) in [(Approval::Login, NOW + 60), (payment, NOW + 120)] {
            let c = portal
                .create_challenge(std::slice::from_ref(&device), approval, ChallengeSettings::default(), at, &mut crng)
                .unwrap();
            challenge = Some(c.record);
        }
        ChallengeFixture {
            state: DeviceState::open(&KEY, &linked.state).unwrap(),
            portal,
            device,
            challenge: challenge.unwrap(),
        }
    })
}

/// Every decoder of challenge/response on the same input: the device's
/// `read_challenge` on the text, the portal's `verify_answer` of the
/// fixture's payment challenge on the text (typed code or signed answer),
/// and the sealed challenge record. Returns each one's verdict, in that
/// order (`Ok` = accepted).
pub fn challenge_messages(data: &[u8]) -> [Result<(), ErrorCode>; 3] {
    let f = challenge_fixture();
    let text = String::from_utf8_lossy(data);
    let read = f.state.read_challenge(&text, CHALLENGE_READ_TIME).map(|c| {
        assert!(ANSWER_DIGITS.contains(&c.digits));
        assert_eq!(c.challenge_id.len(), 32);
        assert!(c.expires_at.saturating_add(tessera_core::challenge::CHALLENGE_SKEW) > CHALLENGE_READ_TIME);
    });
    let o = f.portal.verify_answer(&f.challenge, std::slice::from_ref(&f.device), &text, CHALLENGE_VERIFY_TIME);
    let answered = o.writes.iter().any(|w| matches!(w, Write::Challenge(c) if c.state != ChallengeState::Open));
    // Accepted exactly when the challenge is consumed; a refusal writes at
    // most the device's failure count.
    assert_eq!(answered, o.result.is_ok(), "{text:?}");
    assert!(o.writes.len() <= 2);
    if let Err(e) = &o.result {
        if !matches!(e.code(), ErrorCode::InvalidAnswer | ErrorCode::LockedOut) {
            assert!(o.writes.is_empty(), "{text:?}: {:?}", e.code());
        }
    }
    let verify = o.result.map(|a| assert_eq!(a.device_id, f.device.device_id));
    let (id, account) = (&f.challenge.challenge_id, &f.challenge.account);
    let record = f.portal.open_record::<ChallengeRecord>(id, account, 1, data).map(|r| {
        assert_eq!(r.challenge_id, *id);
        assert!(ANSWER_DIGITS.contains(&r.digits));
    });
    [read.map_err(|e| e.code()), verify.map_err(|e| e.code()), record.map_err(|e| e.code())]
}
