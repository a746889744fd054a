//! Deterministic protocol vectors (fixed randomness, fixed time) for flow 3,
//! activating an offline authenticator: the maker's record of device
//! `TS00012345` (its public key), the order, both activation QR codes (each
//! with a fresh portal key) and the codes the device shows for them, its
//! 133-byte state before and after the binding (and sealed as blob kind
//! `0x15`), the activation's test challenge and a payment challenge once
//! the device is usable. `vectors/activation.json`
//! holds the golden bytes; set TESSERA_WRITE_VECTORS=1 only when adding a
//! new vector (refused when CI is set). `scripts/rederive_vectors.py`
//! re-derives every value from docs/PROTOCOL.md alone.
//!
//! Everything here is read from public outputs: QR texts, the codes the
//! device shows, its state bytes, and the order record as a host stores it
//! (its serde form gives the activation code's PBKDF2 salt and hash).

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
use tessera_core::activation::password::MIN_HASH_ITERATIONS;
use tessera_core::activation::{
    parse_factory_file, ActivationProgress, ActivationRecord, ActivationSettings, ActivationStep, EnrolmentRecord,
    Screen, Token, TokenRecord, FACTORY_FILE_HEADER, TOKEN_STATE_LEN,
};
use tessera_core::challenge::{Amount, Approval, ChallengeSettings, Transaction};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::{base45_decode_as, hex_decode, hex_encode};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{DeviceRecord, Portal, PortalEvent};
use tessera_core::ErrorCode;

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z, as in link.json
const SERIAL: &str = "TS00012345";
/// The device's P-256 secret `d` (SHA-256 of "test"; a device makes its own).
const DEVICE_SECRET_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const ACCOUNT: &str = "anna@example.org";
const ACTIVATION_CODE: &str = "271828";
const NEW_PASSWORD: &str = "correct horse battery staple";
/// How the user types the serial number (case, dashes and spaces ignored).
const SERIAL_TYPED: &str = "ts-0001 2345";
const IMPORT_TIME: u64 = NOW;
const ORDER_TIME: u64 = NOW + 60;
const START_TIME: u64 = NOW + 120;
/// The user's entries come 10 s apart: entry i (1 = device code … 7 = new
/// password) at START_TIME + 10 i.
const ENTRY_GAP: u64 = 10;
/// The portal's randomness for the order, the activation and its steps.
const PORTAL_SEED: [u8; 32] = [0x05; 32];
/// The nonce of the sealed token state.
const SEAL_SEED: [u8; 32] = [0x06; 32];
/// The payment challenge once the device is usable (nonce, then k).
const CHALLENGE_SEED: [u8; 32] = [0x07; 32];
const STORAGE_KEY: [u8; 32] = [0x5a; 32];
/// The payment challenge comes this long after `usable_from`; the portal
/// verifies 30 s after it is created.
const CHALLENGE_DELAY: u64 = 60;
const CHALLENGE_TTL: u64 = 300;
const CHALLENGE_DIGITS: u8 = 8;

fn settings() -> ActivationSettings {
    ActivationSettings { hash_iterations: MIN_HASH_ITERATIONS, ..ActivationSettings::default() }
}

fn device_secret() -> [u8; 32] {
    hex_decode(DEVICE_SECRET_HEX).unwrap().try_into().unwrap()
}

fn payment() -> Approval {
    Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    })
}

/// `ChallengeBody` of docs/PROTOCOL.md, field for field.
#[derive(Serialize)]
struct Body<'a> {
    expires_at: u64,
    digits: u8,
    approval: &'a Approval,
}

fn body_bytes(expires_at: u64, digits: u8, approval: &Approval) -> Vec<u8> {
    postcard::to_allocvec(&Body { expires_at, digits, approval }).unwrap()
}

fn qr_bytes(qr: &str) -> Vec<u8> {
    base45_decode_as(qr.strip_prefix("TS:").unwrap(), ErrorCode::MalformedMessage).unwrap()
}

/// `challenge_hash` of a challenge QR code and its body.
fn challenge_hash(qr: &[u8], body: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(b"tessera/v1/challenge").chain_update(&qr[..18]).chain_update(body).finalize().into()
}

fn code_of(s: &Screen) -> String {
    match s {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().into()
        }
    }
}

/// A slow hash as the order record holds it (its serde form).
fn slow_hash_json(v: &Value) -> Value {
    let bytes = |a: &Value| a.as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect::<Vec<u8>>();
    json!({
        "salt_hex": hex_encode(&bytes(&v["salt"])),
        "iterations": v["iterations"],
        "hash_hex": hex_encode(&bytes(&v["hash"])),
    })
}

/// The records the portal host holds (the latest of each).
#[derive(Default)]
struct Rows {
    token: Option<TokenRecord>,
    order: Option<EnrolmentRecord>,
    activation: Option<ActivationRecord>,
    device: Option<DeviceRecord>,
}

impl Rows {
    fn apply<T>(&mut self, o: &Outcome<T>) {
        for w in &o.writes {
            match w {
                Write::Token(t) => self.token = Some(t.clone()),
                Write::Enrolment(e) => self.order = Some(e.clone()),
                Write::Activation(a) => self.activation = Some(a.clone()),
                Write::Device(d) => self.device = Some(d.clone()),
                Write::Credentials(_) => {}
                other => panic!("unexpected write {other:?}"),
            }
        }
    }
}

/// What the vectors record, from one run of the flow.
struct Run {
    portal: Portal,
    factory_line: String,
    user_id: String,
    initial_password: String,
    order: EnrolmentRecord,
    activation_id: String,
    activation_expires_at: u64,
    state_unbound: Vec<u8>,
    possession_qr: String,
    device_code: String,
    binding_qr: String,
    binding_code: String,
    state_bound: Vec<u8>,
    sealed: Vec<u8>,
    test_qr: String,
    test_code: String,
    done_time: u64,
    device: DeviceRecord,
    usable_from: u64,
    token: Token,
}

fn entry_time(i: u64) -> u64 {
    START_TIME + ENTRY_GAP * i
}

/// Import, order, activate: the whole flow with the vectors' seeds and times.
fn run() -> Run {
    let portal = Portal::generate("Example Bank", &mut SeededRandom::new([0x01; 32])).unwrap();
    let mut rng = SeededRandom::new(PORTAL_SEED);
    let s = settings();
    let mut rows = Rows::default();
    let mut token = Token::from_factory(SERIAL, &device_secret()).unwrap();
    let factory_line = token.factory_record().to_line();
    let o = portal.import_factory_records(&format!("{FACTORY_FILE_HEADER}\n{factory_line}\n"), &[], IMPORT_TIME);
    assert_eq!(o.result.as_ref().unwrap(), &vec![SERIAL.to_string()]);
    rows.apply(&o);

    let o = portal.order_device(ACCOUNT, ACTIVATION_CODE, rows.token.as_ref().unwrap(), &s, ORDER_TIME, &mut rng);
    rows.apply(&o);
    let ordered = o.result.unwrap();
    let order = rows.order.clone().unwrap();

    let o = portal.start_activation(&order, rows.token.as_ref().unwrap(), &s, START_TIME, &mut rng);
    rows.apply(&o);
    let p = o.result.unwrap();
    let activation_id = p.activation_id.clone();
    let activation_expires_at = rows.activation.as_ref().unwrap().expires_at;

    let mut entry = |rows: &mut Rows, i: u64, input: &str, want: ActivationStep| -> ActivationProgress {
        let (a, e, t) = (rows.activation.clone().unwrap(), rows.order.clone().unwrap(), rows.token.clone().unwrap());
        let o = portal.activation_next(&a, &e, &t, None, input, &s, entry_time(i), &mut rng);
        rows.apply(&o);
        if want == ActivationStep::Done {
            assert!(matches!(o.events[..], [PortalEvent::DeviceActivated { .. }]));
        }
        let p = o.result.unwrap();
        assert_eq!(p.step, want);
        p
    };

    let state_unbound = token.to_bytes().to_vec();
    let possession_qr = p.qr_text.unwrap();
    let device_code = code_of(&token.scan(&possession_qr).unwrap());
    assert_eq!(*token.to_bytes(), state_unbound[..], "the first QR code changes nothing");
    entry(&mut rows, 1, &device_code, ActivationStep::ActivationCode);
    let p = entry(&mut rows, 2, ACTIVATION_CODE, ActivationStep::BindingCode);
    let binding_qr = p.qr_text.unwrap();
    let screen = token.scan(&binding_qr).unwrap();
    let Screen::BindingCode { replaced: false, ref user_id, .. } = screen else { panic!("{screen:?}") };
    assert_eq!(user_id.as_str(), ordered.user_id);
    let binding_code = code_of(&screen);
    let state_bound = token.to_bytes().to_vec();
    let sealed = token.seal(&STORAGE_KEY, &mut SeededRandom::new(SEAL_SEED));
    entry(&mut rows, 3, &binding_code, ActivationStep::Serial);
    let p = entry(&mut rows, 4, SERIAL_TYPED, ActivationStep::TestOtp);
    let test_qr = p.qr_text.unwrap();
    let test_code = code_of(&token.scan(&test_qr).unwrap());
    entry(&mut rows, 5, &test_code, ActivationStep::InitialPassword);
    entry(&mut rows, 6, &ordered.initial_password, ActivationStep::NewPassword);
    let done = entry(&mut rows, 7, NEW_PASSWORD, ActivationStep::Done);
    let device = rows.device.clone().unwrap();
    assert_eq!(done.device_id.as_deref(), Some(device.device_id.as_str()));
    assert_eq!(token.device_id().map(|d| hex_encode(&d)), done.device_id);
    Run {
        portal,
        factory_line,
        user_id: ordered.user_id.clone(),
        initial_password: String::clone(&ordered.initial_password),
        order,
        activation_id,
        activation_expires_at,
        state_unbound,
        possession_qr,
        device_code,
        binding_qr,
        binding_code,
        state_bound,
        sealed,
        test_qr,
        test_code,
        done_time: entry_time(7),
        usable_from: done.usable_from.unwrap(),
        device,
        token,
    }
}

fn generate() -> Value {
    let mut r = run();
    assert_eq!(r.state_bound.len(), TOKEN_STATE_LEN);
    let order = serde_json::to_value(&r.order).unwrap();

    // The test challenge: a login for the binding's channel key.
    let test = qr_bytes(&r.test_qr);
    let digits = settings().challenge_digits;
    let test_body = body_bytes(r.activation_expires_at, digits, &Approval::Login);
    let test_hash = challenge_hash(&test, &test_body);
    let test_id =
        hex_encode(&Sha256::new().chain_update(b"tessera/v1/challenge-id").chain_update(&test[2..18]).finalize()[..16]);

    // Once usable: a payment, like any linked device's.
    let created_at = r.usable_from + CHALLENGE_DELAY;
    let settings = ChallengeSettings { digits: CHALLENGE_DIGITS, ttl: CHALLENGE_TTL };
    let devices = std::slice::from_ref(&r.device);
    let early =
        r.portal.create_challenge(devices, payment(), settings, r.usable_from - 1, &mut SeededRandom::new([9; 32]));
    assert_eq!(early.unwrap_err().code(), ErrorCode::DeviceNotYetUsable);
    let c = r
        .portal
        .create_challenge(devices, payment(), settings, created_at, &mut SeededRandom::new(CHALLENGE_SEED))
        .unwrap();
    let screen = r.token.scan(&c.qr_text).unwrap();
    let Screen::Challenge { ref user_id, ref approval, .. } = screen else { panic!("{screen:?}") };
    assert_eq!((user_id.as_str(), approval.kind()), (r.user_id.as_str(), "transaction"));
    let code = code_of(&screen);
    let verify_time = created_at + 30;
    let o = r.portal.verify_answer(&c.record, devices, &code, verify_time);
    assert_eq!(o.result.unwrap().device_id, r.device.device_id);
    let pay = qr_bytes(&c.qr_text);
    let pay_body = body_bytes(created_at + CHALLENGE_TTL, CHALLENGE_DIGITS, &payment());
    let pay_hash = challenge_hash(&pay, &pay_body);

    let test_challenge = json!({
        "expires_at": r.activation_expires_at,
        "digits": digits,
        "body_hex": hex_encode(&test_body),
        "qr_text": r.test_qr,
        "challenge_id": test_id,
        "challenge_hash_hex": hex_encode(&test_hash),
        "code": r.test_code,
    });
    let challenge = json!({
        "created_at": created_at,
        "digits": CHALLENGE_DIGITS,
        "ttl": CHALLENGE_TTL,
        "expires_at": created_at + CHALLENGE_TTL,
        "approval": {
            "kind": "transaction",
            "amount": "125.50",
            "currency": "EUR",
            "payee": "ACME Energy Ltd",
            "text": ["Invoice 2026-118"],
        },
        "body_hex": hex_encode(&pay_body),
        "qr_text": c.qr_text,
        "challenge_id": c.record.challenge_id,
        "challenge_hash_hex": hex_encode(&pay_hash),
        "verify_time": verify_time,
        "code": code,
    });
    let order_json = json!({
        "account": ACCOUNT,
        "activation_code": ACTIVATION_CODE,
        "hash_iterations": MIN_HASH_ITERATIONS,
        "import_time": IMPORT_TIME,
        "order_time": ORDER_TIME,
        "user_id": r.user_id,
        "initial_password": r.initial_password,
        "activation_code_hash": slow_hash_json(&order["activation_code"]),
        "initial_password_hash": slow_hash_json(&order["initial_password"]),
    });
    let mut v = json!({
        "description": "Tessera activation of an offline authenticator (flow 3) v1: device TS00012345 with the \
                        device secret sha256(\"test\"), activated by the portal of link.json (SeededRandom \
                        seed 0x05*32: order, activation, steps), state sealed with a nonce from seed 0x06*32, \
                        a payment challenge once usable from seed 0x07*32",
        "link_vectors": "link.json",
        "portal_name": r.portal.name(),
        "serial": SERIAL,
        "device_secret_hex": DEVICE_SECRET_HEX,
        "device_public_key_hex": hex_encode(r.token.public_key()),
        "factory_line": r.factory_line,
        "start_time": START_TIME,
        "entry_gap": ENTRY_GAP,
        "activation_id": r.activation_id,
        "activation_expires_at": r.activation_expires_at,
        "token_state_unbound_hex": hex_encode(&r.state_unbound),
        "possession": {
            "portal_key_hex": hex_encode(&qr_bytes(&r.possession_qr)[7..40]),
            "qr_text": r.possession_qr,
            "device_code": r.device_code,
        },
        "binding": {
            "generation": 1,
            "portal_key_hex": hex_encode(&qr_bytes(&r.binding_qr)[7..40]),
            "root_hex": hex_encode(&r.state_bound[55..87]),
            "qr_text": r.binding_qr,
            "binding_code": r.binding_code,
        },
        "token_state_bound_hex": hex_encode(&r.state_bound),
        "storage_key_hex": hex_encode(&STORAGE_KEY),
        "token_sealed_hex": hex_encode(&r.sealed),
        "device_id": r.device.device_id,
        "device_name": r.device.name,
        "serial_typed": SERIAL_TYPED,
        "new_password": NEW_PASSWORD,
        "done_time": r.done_time,
        "usable_from": r.usable_from,
        "test_challenge": test_challenge,
        "challenge": challenge,
    });
    let map = v.as_object_mut().unwrap();
    for (k, x) in order_json.as_object().unwrap() {
        map.insert(k.clone(), x.clone());
    }
    v
}

#[test]
fn activation_vectors_match_golden_file() {
    common::provider();
    let got = generate();
    common::check_golden("activation.json", &got);
}

/// The golden messages as a device reads them: the device of the golden
/// secret (the factory line's key) shows the golden codes for the golden QR
/// codes and ends in the golden state; the golden states and sealed state
/// read back.
#[test]
fn golden_activation_messages_are_still_readable() {
    common::provider();
    if common::rewriting_vectors() {
        return; // the other test is rewriting the file
    }
    let v = common::golden("activation.json");
    let s = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let hex = |v: &Value, k: &str| hex_decode(v[k].as_str().unwrap()).unwrap();
    let file = format!("{FACTORY_FILE_HEADER}\n{}\n", s(&v, "factory_line"));
    let records = parse_factory_file(&file).unwrap();
    assert_eq!((records.len(), records[0].serial.as_str(), records[0].line), (1, SERIAL, 2));
    assert_eq!(records[0].public_key[..], hex(&v, "device_public_key_hex")[..]);
    let secret: [u8; 32] = hex(&v, "device_secret_hex").try_into().unwrap();
    let mut token = Token::from_factory(&s(&v, "serial"), &secret).unwrap();
    assert_eq!(token.factory_record().to_line(), s(&v, "factory_line"));
    assert_eq!(token.to_bytes()[..], hex(&v, "token_state_unbound_hex")[..]);

    let screen = token.scan(&s(&v["possession"], "qr_text")).unwrap();
    let Screen::DeviceCode { ref portal_name, .. } = screen else { panic!("{screen:?}") };
    assert_eq!(portal_name.as_str(), s(&v, "portal_name"));
    assert_eq!(code_of(&screen), s(&v["possession"], "device_code"));

    let screen = token.scan(&s(&v["binding"], "qr_text")).unwrap();
    let Screen::BindingCode { ref user_id, replaced: false, .. } = screen else { panic!("{screen:?}") };
    assert_eq!(user_id.as_str(), s(&v, "user_id"));
    assert_eq!(code_of(&screen), s(&v["binding"], "binding_code"));
    assert_eq!(token.to_bytes()[..], hex(&v, "token_state_bound_hex")[..]);
    assert_eq!(token.device_id().map(|d| hex_encode(&d)), Some(s(&v, "device_id")));

    // The state read back, from the bytes and from the sealed blob.
    for t in [
        Token::from_bytes(&hex(&v, "token_state_bound_hex")).unwrap(),
        Token::open(&hex(&v, "storage_key_hex").try_into().unwrap(), &hex(&v, "token_sealed_hex")).unwrap(),
    ] {
        assert_eq!(t.to_bytes()[..], hex(&v, "token_state_bound_hex")[..]);
        assert_eq!(t.user_id(), Some(s(&v, "user_id").as_str()));
        assert_eq!(t.portal_name(), Some(s(&v, "portal_name").as_str()));
    }
    let unbound = Token::from_bytes(&hex(&v, "token_state_unbound_hex")).unwrap();
    assert_eq!((unbound.serial(), unbound.user_id()), (SERIAL, None));

    // The challenges: the same codes; the binding QR again changes nothing.
    for c in [&v["test_challenge"], &v["challenge"]] {
        assert_eq!(code_of(&token.scan(&s(c, "qr_text")).unwrap()), s(c, "code"));
    }
    let again = token.scan(&s(&v["binding"], "qr_text")).unwrap();
    assert_eq!(code_of(&again), s(&v["binding"], "binding_code"));
    assert_eq!(token.to_bytes()[..], hex(&v, "token_state_bound_hex")[..]);
    // Another device (same serial, another key) is not named by them.
    let mut fake = Token::from_factory(SERIAL, &[0x77; 32]).unwrap();
    for qr in [&v["possession"]["qr_text"], &v["binding"]["qr_text"]] {
        assert_eq!(fake.scan(qr.as_str().unwrap()).unwrap_err().code(), ErrorCode::NotForThisDevice);
    }
}
