//! Deterministic protocol vectors (fixed randomness, fixed time) for flow 4,
//! challenge/response. They continue the story of `vectors/link.json`: its
//! device, confirmed on the portal with its check code, then answers a
//! login and a payment challenge. `vectors/challenge.json` holds the golden
//! bytes; set TESSERA_WRITE_VECTORS=1 only when adding a new vector (refused
//! when CI is set). `scripts/rederive_vectors.py` re-derives every value
//! from docs/PROTOCOL.md alone.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

mod common;
/// RustCrypto, the default provider (see `common::provider`).
#[allow(dead_code)] // unused where `tessera-crypto-aws-lc` includes this file
fn install_provider() {
    use tessera_core::provider::CryptoProvider;
    assert_eq!(tessera_core::provider::get_default().name(), tessera_core::provider::RUST_CRYPTO.name());
}
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tessera_core::challenge::{Amount, Approval, ChallengeRecord, ChallengeSettings, Transaction};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_core::host::Write;
use tessera_core::link::{self, DeviceRecord, DeviceState, PasscodePolicy, Portal, UserFactor};
use tessera_core::ErrorCode;

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z, as in link.json
const STORAGE_KEY: [u8; 32] = [0x5a; 32];
const PASSCODE: &str = "493817";
const WRONG_PASSCODE: &str = "493818";
/// The portal confirms the link with the device's check code.
const CONFIRM_TIME: u64 = NOW + 20;
/// Randomness of the portal's challenges (nonce, then `k`, per challenge).
const CHALLENGE_SEED: [u8; 32] = [0x03; 32];
/// Randomness of the device after linking (the nonce of its sealed state).
const DEVICE_SEED: [u8; 32] = [0x04; 32];

/// The challenges of the vectors, in the order they are issued.
struct Spec {
    name: &'static str,
    created_at: u64,
    digits: u8,
    ttl: u64,
    approval: Approval,
}

fn payment() -> Approval {
    Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    })
}

fn specs() -> Vec<Spec> {
    vec![
        Spec { name: "login", created_at: NOW + 60, digits: 8, ttl: 300, approval: Approval::Login },
        Spec { name: "transaction", created_at: NOW + 120, digits: 8, ttl: 300, approval: payment() },
        Spec { name: "login_6_digits", created_at: NOW + 180, digits: 6, ttl: 120, approval: Approval::Login },
        Spec { name: "transaction_10_digits", created_at: NOW + 240, digits: 10, ttl: 900, approval: payment() },
    ]
}

/// The challenge that gets the signed answer.
const SIGNED_FOR: &str = "transaction";

/// The approval as the JSON file shows it.
fn approval_json(a: &Approval) -> Value {
    match a {
        Approval::Login => json!({ "kind": "login" }),
        Approval::Transaction(t) => json!({
            "kind": "transaction",
            "amount": t.amount.to_string(),
            "currency": t.currency,
            "payee": t.payee,
            "text": t.text,
        }),
        Approval::LinkDevice { device_name, device_id } => {
            json!({ "kind": "link-device", "device_name": device_name, "device_id": device_id })
        }
    }
}

/// `ChallengeBody` of docs/PROTOCOL.md, field for field: the plaintext of
/// the QR code's AEAD (the crate's own type is private).
#[derive(Serialize)]
struct Body<'a> {
    expires_at: u64,
    digits: u8,
    approval: &'a Approval,
}

struct Linked {
    portal: Portal,
    state: DeviceState,
    record: DeviceRecord,
    biometric: Vec<u8>,
    check_code: String,
}

/// The link of vectors/link.json (same seeds, times and steps), confirmed.
fn linked() -> Linked {
    let mut prng = SeededRandom::new([0x01; 32]);
    let mut drng = SeededRandom::new([0x02; 32]);
    let portal = Portal::generate("Example Bank", &mut prng).unwrap();
    let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
    let start = link::start_link(&scanned, "Anna's Pixel", PASSCODE, true, false, NOW + 10, &mut drng).unwrap();
    let _pending_sealed = start.pending.seal(&STORAGE_KEY, &mut drng);
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
    let linked = link::finish_link(start.pending, &out.answer, &STORAGE_KEY, &mut drng).unwrap();
    let record = portal.confirm_link(&pending, &linked.check_code, CONFIRM_TIME).result.unwrap();
    Linked {
        state: DeviceState::open(&STORAGE_KEY, &linked.state).unwrap(),
        portal,
        record,
        biometric: start.biometric_secret.unwrap().expose().to_vec(),
        check_code: linked.check_code,
    }
}

fn qr_bytes(qr: &str) -> Vec<u8> {
    const A45: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let v: Vec<u32> =
        qr.strip_prefix("TS:").unwrap().bytes().map(|c| A45.iter().position(|&x| x == c).unwrap() as u32).collect();
    let mut out = vec![];
    for ch in v.chunks(3) {
        if ch.len() == 3 {
            let n = ch[0] + ch[1] * 45 + ch[2] * 2025;
            out.extend_from_slice(&[(n >> 8) as u8, n as u8]);
        } else {
            out.push((ch[0] + ch[1] * 45) as u8);
        }
    }
    out
}

fn generate() -> Value {
    let l = linked();
    let mut crng = SeededRandom::new(CHALLENGE_SEED);
    let mut drng = SeededRandom::new(DEVICE_SEED);
    let mut challenges = vec![];
    let mut signed = Value::Null;
    let mut record = l.record.clone();
    for s in specs() {
        let c = l
            .portal
            .create_challenge(
                &[record.clone()],
                s.approval.clone(),
                ChallengeSettings { digits: s.digits, ttl: s.ttl },
                s.created_at,
                &mut crng,
            )
            .unwrap();
        let read_time = s.created_at + 5;
        let verify_time = s.created_at + 30;
        let seen = l.state.read_challenge(&c.qr_text, read_time).unwrap();
        assert_eq!(seen.approval, s.approval);
        assert_eq!(seen.challenge_id, c.record.challenge_id);
        let code = l.state.answer_code(&seen, UserFactor::Passcode(PASSCODE)).unwrap();
        let wrong = l.state.answer_code(&seen, UserFactor::Passcode(WRONG_PASSCODE)).unwrap();
        assert_eq!(l.state.answer_code(&seen, UserFactor::Biometric(&l.biometric)).unwrap(), code);
        assert_ne!(wrong, code);
        // The portal accepts the code, and refuses the wrong passcode's.
        let ok = l.portal.verify_answer(&c.record, &[record.clone()], &code, verify_time);
        assert_eq!(ok.result.unwrap().device_id, record.device_id);
        let bad = l.portal.verify_answer(&c.record, &[record.clone()], &wrong, verify_time);
        assert_eq!(bad.result.unwrap_err().code(), ErrorCode::InvalidAnswer);
        let expires_at = s.created_at + s.ttl;
        let body = postcard::to_allocvec(&Body { expires_at, digits: s.digits, approval: &s.approval }).unwrap();
        let qr = qr_bytes(&c.qr_text);
        let hash: [u8; 32] = Sha256::new()
            .chain_update(b"tessera/v1/challenge")
            .chain_update(&qr[..18])
            .chain_update(&body)
            .finalize()
            .into();
        challenges.push(json!({
            "name": s.name,
            "created_at": s.created_at,
            "digits": s.digits,
            "ttl": s.ttl,
            "expires_at": expires_at,
            "approval": approval_json(&s.approval),
            "body_hex": hex_encode(&body),
            "qr_text": c.qr_text,
            "challenge_id": c.record.challenge_id,
            "challenge_hash_hex": hex_encode(&hash),
            "read_time": read_time,
            "verify_time": verify_time,
            "code": code,
            "code_wrong_passcode": wrong,
        }));
        if s.name == SIGNED_FOR {
            let answer = l.state.answer_signed(&seen, UserFactor::Passcode(PASSCODE), &STORAGE_KEY, &mut drng).unwrap();
            let id = tessera_core::challenge::signed_answer_challenge_id(&answer.answer).unwrap();
            assert_eq!(id, c.record.challenge_id);
            let o = l.portal.verify_answer(&c.record, &[record.clone()], &answer.answer, verify_time);
            assert!(o.result.is_ok());
            record = device_of(&o.writes, &record.device_id);
            assert_eq!(record.signed_counter, Some(1));
            signed = json!({
                "challenge": s.name,
                "counter": 1,
                "answer": answer.answer,
            });
        }
    }
    json!({
        "description": "Tessera challenge/response v1: the device of vectors/link.json, confirmed at confirm_time, \
                        answers portal challenges (SeededRandom seed 0x03*32: each challenge's nonce then k), \
                        passcode 493817",
        "link_vectors": "link.json",
        "device_id": l.record.device_id,
        "confirm_time": CONFIRM_TIME,
        "check_code": l.check_code,
        "passcode": PASSCODE,
        "wrong_passcode": WRONG_PASSCODE,
        "challenges": challenges,
        "signed_answer": signed,
    })
}

fn device_of(writes: &[Write], id: &str) -> DeviceRecord {
    writes
        .iter()
        .find_map(|w| match w {
            Write::Device(d) if d.device_id == id => Some(d.clone()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn challenge_vectors_match_golden_file() {
    common::provider();
    let got = generate();
    common::check_golden("challenge.json", &got);
}

/// The golden messages as a consumer reads them (as the bindings do): the
/// device of link.json, finished from its sealed pending link and golden
/// answer, reads every golden QR and computes the golden codes; the portal
/// (from its seed) checks the golden signed answer.
#[test]
fn golden_challenges_are_still_readable() {
    common::provider();
    if common::rewriting_vectors() {
        return; // the other test is rewriting the file
    }
    let lv = common::golden("link.json");
    let v = common::golden("challenge.json");
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    let key: [u8; 32] = hex_decode(&s(&lv, "storage_key_hex")).unwrap().try_into().unwrap();
    let pending = link::PendingDeviceLink::open(&key, &hex_decode(&s(&lv, "pending_sealed_hex")).unwrap()).unwrap();
    let mut rng = SeededRandom::new([9; 32]);
    let linked = link::finish_link(pending, &s(&lv, "answer"), &key, &mut rng).unwrap();
    assert_eq!(linked.check_code, s(&v, "check_code"));
    let state = DeviceState::open(&key, &linked.state).unwrap();
    assert_eq!(state.info().device_id, s(&v, "device_id"));
    let mut by_name = std::collections::HashMap::new();
    for c in v["challenges"].as_array().unwrap() {
        let seen = state.read_challenge(&s(c, "qr_text"), n(c, "read_time")).unwrap();
        assert_eq!(seen.challenge_id, s(c, "challenge_id"));
        assert_eq!(seen.expires_at, n(c, "expires_at"));
        assert_eq!(u64::from(seen.digits), n(c, "digits"));
        assert_eq!(approval_json(&seen.approval), c["approval"]);
        assert_eq!(state.answer_code(&seen, UserFactor::Passcode(&s(&v, "passcode"))).unwrap(), s(c, "code"));
        assert_eq!(
            state.answer_code(&seen, UserFactor::Passcode(&s(&v, "wrong_passcode"))).unwrap(),
            s(c, "code_wrong_passcode")
        );
        // Past expiry plus the device's tolerated skew: refused.
        assert_eq!(
            state.read_challenge(&s(c, "qr_text"), n(c, "expires_at") + 300).unwrap_err().code(),
            ErrorCode::TokenExpired
        );
        by_name.insert(s(c, "name"), c.clone());
    }
    // The portal side of the signed answer: the challenge record comes from
    // the same seeded steps (records are not golden bytes).
    let portal = Portal::from_secret(&hex_decode(&s(&lv, "portal_secret_hex")).unwrap(), "Example Bank").unwrap();
    let signed = &v["signed_answer"];
    let c = &by_name[&s(signed, "challenge")];
    let (record, device) = issued(&portal, &s(c, "name"));
    let o = portal.verify_answer(&record, &[device], &s(signed, "answer"), n(c, "verify_time"));
    assert!(o.result.is_ok(), "{:?}", o.result);
    let id = tessera_core::challenge::signed_answer_challenge_id(&s(signed, "answer")).unwrap();
    assert_eq!(id, s(c, "challenge_id"));
}

/// The record of challenge `name` and the device record as the portal held
/// it then, by replaying the seeded steps.
fn issued(portal: &Portal, name: &str) -> (ChallengeRecord, DeviceRecord) {
    let l = linked();
    let mut crng = SeededRandom::new(CHALLENGE_SEED);
    for s in specs() {
        let c = portal
            .create_challenge(
                std::slice::from_ref(&l.record),
                s.approval,
                ChallengeSettings { digits: s.digits, ttl: s.ttl },
                s.created_at,
                &mut crng,
            )
            .unwrap();
        if s.name == name {
            return (c.record, l.record);
        }
    }
    panic!("no challenge {name}")
}
