//! Deterministic protocol vectors (fixed randomness, fixed time) for flow 1.
//! `vectors/link.json` holds the golden bytes of protocol version 1; the
//! Kotlin, Swift and JS tests check the same file. The golden file is never
//! changed for a released version: set TESSERA_WRITE_VECTORS=1 only when
//! adding a new vector (refused when CI is set). `scripts/rederive_vectors.py`
//! re-derives them from docs/PROTOCOL.md alone.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

mod common;
/// RustCrypto, the default provider (see `common::provider`).
#[allow(dead_code)] // unused where `tessera-crypto-aws-lc` includes this file
fn install_provider() {
    use tessera_core::provider::CryptoProvider;
    assert_eq!(tessera_core::provider::get_default().name(), tessera_core::provider::RUST_CRYPTO.name());
}
use serde_json::{json, Value};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_core::link::{self, DeviceState, PasscodePolicy, Portal, UserFactor};

const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const STORAGE_KEY: [u8; 32] = [0x5a; 32];

fn generate() -> Value {
    let mut prng = SeededRandom::new([0x01; 32]);
    let mut drng = SeededRandom::new([0x02; 32]);
    let portal = Portal::generate("Example Bank", &mut prng).unwrap();
    let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
    let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, NOW + 10, &mut drng).unwrap();
    let pending_sealed = start.pending.seal(&STORAGE_KEY, &mut drng);
    let opened = portal.open_link_request(&start.request).unwrap();
    let device_id = opened.device_id().to_string();
    let out = opened.accept(&portal, Some(&offer.record), link::DeviceKeyUse::Fresh, NOW + 12);
    assert_eq!(out.outcome.result, Ok(link::Accept::Accepted));
    let confirm_by = out
        .outcome
        .writes
        .iter()
        .find_map(|w| if let tessera_core::host::Write::PendingLink(p) = w { Some(p.confirm_by) } else { None })
        .unwrap();
    let linked = link::finish_link(start.pending, &out.answer, &STORAGE_KEY, &mut drng).unwrap();
    let state = DeviceState::open(&STORAGE_KEY, &linked.state).unwrap();
    let totp_time = NOW + 100;
    let totp = state.totp(UserFactor::Passcode("493817"), totp_time).unwrap();
    let bio = start.biometric_secret.unwrap();
    assert_eq!(state.totp(UserFactor::Biometric(bio.expose()), totp_time).unwrap(), totp);
    json!({
        "description": "Tessera link protocol v1: fixed randomness (SeededRandom seeds 0x01*32 portal, 0x02*32 device), fixed time",
        "portal_secret_hex": hex_encode(portal.secret().expose()),
        "portal_name": "Example Bank",
        "portal_public_key_hex": hex_encode(&portal.public_key()),
        "portal_fingerprint": portal.fingerprint(),
        "account": "anna@example.org",
        "now": NOW,
        "ttl": 300,
        "qr_text": offer.qr_text,
        "offer_id": offer.record.offer_id,
        "expires_at": offer.record.expires_at,
        "scan_time": NOW + 10,
        "device_name": "Anna's Pixel",
        "passcode": "493817",
        "biometrics": true,
        "request": start.request,
        "device_id": device_id,
        "accept_time": NOW + 12,
        "confirm_by": confirm_by,
        "answer": out.answer,
        "check_code": linked.check_code,
        "storage_key_hex": hex_encode(&STORAGE_KEY),
        "pending_sealed_hex": hex_encode(&pending_sealed),
        "biometric_secret_hex": hex_encode(bio.expose()),
        "totp_time": totp_time,
        "totp": totp,
    })
}

#[test]
fn link_vectors_match_golden_file() {
    common::provider();
    let got = generate();
    common::check_golden("link.json", &got);
}

#[test]
fn golden_messages_are_still_readable() {
    common::provider();
    // Consumers of the golden bytes (as the bindings do): the device finishes
    // from the sealed pending link and the golden answer.
    if common::rewriting_vectors() {
        return; // the other test is rewriting the file
    }
    let v = common::golden("link.json");
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    let n = |k: &str| v[k].as_u64().unwrap();
    let key: [u8; 32] = hex_decode(&s("storage_key_hex")).unwrap().try_into().unwrap();
    let offer = link::scan_link_qr(&s("qr_text"), n("scan_time")).unwrap();
    assert_eq!(offer.portal_name, s("portal_name"));
    assert_eq!(offer.portal_fingerprint, s("portal_fingerprint"));
    let pending = link::PendingDeviceLink::open(&key, &hex_decode(&s("pending_sealed_hex")).unwrap()).unwrap();
    let mut rng = SeededRandom::new([9; 32]);
    let linked = link::finish_link(pending, &s("answer"), &key, &mut rng).unwrap();
    assert_eq!(linked.check_code, s("check_code"));
    assert_eq!(linked.info.device_id, s("device_id"));
    let portal = Portal::from_secret(&hex_decode(&s("portal_secret_hex")).unwrap(), &s("portal_name")).unwrap();
    let opened = portal.open_link_request(&s("request")).unwrap();
    assert_eq!(opened.offer_id(), s("offer_id"));
}
