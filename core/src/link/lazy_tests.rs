//! The channel key derived when first needed (issue 10): `accept` does no
//! agreement with the device key; a successful confirmation and each
//! status answer of a pending link derive it; pending links stored before
//! the change (holding the key) still work. And the attacks on the
//! deferral: wrong codes, forged or replayed status requests, racing
//! servers, another portal, a thief of the database.

use super::*;
use crate::crypto::SeededRandom;
use crate::encoding::{hex_decode, hex_encode};
use crate::host::{Outcome, Write};
use crate::secret::SecretBytes;
use alloc::string::String;
use alloc::vec::Vec;

const T0: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x42; 32];

/// Captured from the code before this change (commit 27ba089) with
/// [`fixture`]: the pending link sealed with `SeededRandom::new([9; 32])`,
/// in the old layout (`channel_key` the 32-byte key) ...
const OLD_SEALED_PENDING: &str = "1301e8d8b5cdd3f86d6c72d46a5832c8982723ca2aa3da3c95f307432ce173365c158fa9b2edf1e6ae31c8a2861218aa36cc827b4736fc4d821b3f99df658632abcf1a66fc5c6bee54c4f888eee9410a077fd6fe310e8bb78cb059b06c3aae446fce6690935c68253ff901d2ca8fe8ecc64cabcfd6ecbbe1c52c4addf1437d17254ab946e51415bbdbd3ba39875a7424dece725590349e48bc1786925e71a58850a21a1ceac0fc91fac30c23f31545106de72507e23f2f094e79905ab8041f5eec7b1bc34379fe5f610d43838f9d0bf6d141843ade33681e4e236843e01e0b90bed54c5b404c";
/// ... the check code the phone showed ...
const OLD_CHECK_CODE: &str = "707495";
/// ... and postcard of the device record `confirm_link` wrote at `T0 + 20`.
const OLD_DEVICE_RECORD: &str = "106431633738356634333735303736353704616e6e610550686f6e6594f2d6ca06000000000000000001061e00000000000000012103448d31d23344eeeb577557c1c2d5b4ee54f9178a9f623fad99490f0646b6dd8f20ea8a7fa235a93b45413e43d8850043d223f33b0f127f3b0e047f3850fd698c5020b67b8a2378b8b813782cec454cbdbd3bf6e60f682d62ffc802579cdc3efa7041";

struct Fixture {
    portal: Portal,
    rng: SeededRandom,
    pending: PendingLinkRecord,
    linked: LinkedDevice,
    /// Agreements of `open_link_request`, then of `accept`.
    cost: (usize, usize),
}

/// One deterministic link (fixed portal secret and randomness): the same
/// bytes before and after the change, so its records can be pinned.
fn fixture() -> Fixture {
    let mut rng = SeededRandom::new([7; 32]);
    let portal = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
    let offer = portal.create_offer("anna", PasscodePolicy::default(), DEFAULT_OFFER_TTL, T0, &mut rng).unwrap();
    let scanned = scan_link_qr(&offer.qr_text, T0 + 5).unwrap();
    let start = start_link(&scanned, "Phone", "493817", false, false, T0 + 10, &mut rng).unwrap();
    let a0 = portal.agreements();
    let opened = portal.open_link_request(&start.request).unwrap();
    let a1 = portal.agreements();
    let out = opened.accept(&portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 11);
    let a2 = portal.agreements();
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|w| if let Write::PendingLink(r) = w { Some(r.clone()) } else { None })
        .unwrap();
    let linked = finish_link(start.pending, &out.answer, &KEY, &mut rng).unwrap();
    Fixture { portal, rng, pending, linked, cost: (a1 - a0, a2 - a1) }
}

fn device_of<T>(o: &Outcome<T>) -> DeviceRecord {
    o.writes.iter().find_map(|w| if let Write::Device(d) = w { Some(d.clone()) } else { None }).unwrap()
}

/// The phone's status request answered by `portal` from `pending` alone.
fn status(f: &mut Fixture, portal: &Portal, pending: &PendingLinkRecord, now: u64) -> crate::Result<LinkStatus> {
    let state = DeviceState::open(&KEY, &f.linked.state).unwrap();
    let (req, probe) = state.status_request(now, &mut f.rng).unwrap();
    let ans = portal.open_status_request(&req)?.answer(portal, None, Some(pending), now)?;
    state.read_status_answer(&probe, &ans)
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "000001"
    } else {
        "000000"
    }
}

#[test]
fn accept_does_one_agreement_and_the_confirmation_derives_the_phones_key() {
    let f = fixture();
    assert_eq!(f.cost, (1, 0), "open_link_request: ECDH(p, E); accept: none");
    assert!(matches!(f.pending.channel_key, PendingChannel::Deferred { .. }));
    let a = f.portal.agreements();
    let o = f.portal.confirm_link(&f.pending, &f.linked.check_code, T0 + 20);
    assert_eq!(f.portal.agreements(), a + 1, "the confirmation derives the key: one ECDH");
    let rec = o.result.unwrap();
    let phone = DeviceState::open(&KEY, &f.linked.state).unwrap();
    assert_eq!(rec.channel_key, phone.channel_key);
    // Byte for byte the device record the code before the change wrote.
    assert_eq!(hex_encode(&postcard::to_allocvec(&rec).unwrap()), OLD_DEVICE_RECORD);
    // The confirmed pending link changed only its state and version.
    let Write::PendingLink(next) = &o.writes[0] else { panic!() };
    assert_eq!(next.channel_key, f.pending.channel_key);
}

#[test]
fn wrong_check_codes_cost_no_agreement() {
    let f = fixture();
    let bad = wrong(&f.linked.check_code);
    let a = f.portal.agreements();
    let mut p = f.pending.clone();
    for _ in 0..MAX_CONFIRM_ATTEMPTS {
        let o = f.portal.confirm_link(&p, bad, T0 + 20);
        assert!(o.result.is_err());
        let Write::PendingLink(n) = &o.writes[0] else { panic!() };
        p = n.clone();
    }
    assert!(p.is_closed());
    // confirm_any over several links, and a code typed after the deadline.
    let o = f.portal.confirm_any(core::slice::from_ref(&f.pending), bad, T0 + 20);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::CheckCodeMismatch);
    let o = f.portal.confirm_link(&f.pending, &f.linked.check_code, f.pending.confirm_by);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::TokenExpired);
    assert_eq!(f.portal.agreements(), a, "no ECDH without a successful confirmation");
}

#[test]
fn status_of_a_pending_link_costs_one_agreement_and_a_linked_device_none() {
    let mut f = fixture();
    let portal = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
    let pending = f.pending.clone();
    assert_eq!(status(&mut f, &portal, &pending, T0 + 30), Ok(LinkStatus::AwaitingConfirmation));
    assert_eq!(portal.agreements(), 1);
    // A forged request (the attacker knows the device id) pays one ECDH
    // too, before its MAC fails: as much as any link request.
    let state = DeviceState::open(&KEY, &f.linked.state).unwrap();
    let (req, _) = state.status_request(T0 + 30, &mut f.rng).unwrap();
    let mut forged = crate::wire::from_text(&req).unwrap();
    let n = forged.len() - 1;
    forged[n] ^= 1;
    let opened = portal.open_status_request(&crate::wire::to_text(&forged)).unwrap();
    let r = opened.answer(&portal, None, Some(&pending), T0 + 30);
    assert_eq!(r.unwrap_err().code(), ErrorCode::MessageTampered);
    assert_eq!(portal.agreements(), 2);
    // A replayed genuine request gets the same bytes again, one ECDH each.
    let opened = portal.open_status_request(&req).unwrap();
    let one = opened.answer(&portal, None, Some(&pending), T0 + 31).unwrap();
    let two = opened.answer(&portal, None, Some(&pending), T0 + 32).unwrap();
    assert_eq!(one, two);
    assert_eq!(portal.agreements(), 4);
    // Once linked, the device record answers: no agreement.
    let rec = portal.confirm_link(&pending, &f.linked.check_code, T0 + 40).result.unwrap();
    let a = portal.agreements();
    let (req, probe) = state.status_request(T0 + 50, &mut f.rng).unwrap();
    let ans = portal.open_status_request(&req).unwrap().answer(&portal, Some(&rec), Some(&pending), T0 + 50).unwrap();
    assert_eq!(state.read_status_answer(&probe, &ans), Ok(LinkStatus::Active));
    assert_eq!(portal.agreements(), a);
}

/// A pending link sealed by the code before this change (the key stored,
/// pinned hex) opens, confirms with the phone's code into the very same
/// device record (no agreement: the stored key is used), and answers the
/// phone's status requests.
#[test]
fn a_pending_link_stored_in_the_old_layout_still_works() {
    let mut f = fixture();
    assert_eq!(f.linked.check_code, OLD_CHECK_CODE);
    let sealed = hex_decode(OLD_SEALED_PENDING).unwrap();
    let old: PendingLinkRecord =
        f.portal.open_record(&f.pending.device_id, &f.pending.account, f.pending.version, &sealed).unwrap();
    let phone = DeviceState::open(&KEY, &f.linked.state).unwrap();
    assert_eq!(old.channel_key, PendingChannel::Key(phone.channel_key.clone()));
    // The same record as the new layout's, but for the key.
    let mut same = old.clone();
    same.channel_key = f.pending.channel_key.clone();
    assert!(same == f.pending);
    let portal = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
    assert_eq!(status(&mut f, &portal, &old, T0 + 30), Ok(LinkStatus::AwaitingConfirmation));
    assert_eq!(portal.agreements(), 0, "the stored key needs no agreement");
    let o = portal.confirm_link(&old, wrong(OLD_CHECK_CODE), T0 + 20);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::CheckCodeMismatch);
    let Write::PendingLink(counted) = &o.writes[0] else { panic!() };
    assert_eq!(counted.channel_key, old.channel_key, "the old key is kept through a counted attempt");
    let o = portal.confirm_link(counted, OLD_CHECK_CODE, T0 + 20);
    assert_eq!(hex_encode(&postcard::to_allocvec(&device_of(&o)).unwrap()), OLD_DEVICE_RECORD);
    let rec = o.result.unwrap();
    assert_eq!(portal.agreements(), 0);
    assert_eq!(rec.channel_key, phone.channel_key);
    // Re-sealed (the host writes it back) it keeps the old layout.
    let resealed = portal.seal_record(counted, &mut SeededRandom::new([3; 32]));
    let back: PendingLinkRecord =
        portal.open_record(&counted.device_id, &counted.account, counted.version, &resealed).unwrap();
    assert!(back == *counted);
}

/// The layouts, built from an old-shape struct: postcard of the old
/// record decodes as the new type (the key); the new layout writes an
/// empty key then `th`, and anything else in that place is refused.
#[test]
fn the_old_and_new_layouts_side_by_side() {
    #[derive(serde::Serialize)]
    struct Old {
        device_id: String,
        account: String,
        device_name: String,
        offer_id: String,
        created_at: u64,
        confirm_by: u64,
        biometrics: bool,
        totp: DeviceTotpPolicy,
        confirm: ConfirmMethod,
        state: PendingState,
        version: u64,
        device_pk: SecretBytes,
        answer_key: SecretBytes,
        channel_key: SecretBytes,
        check_code: SecretBytes,
    }
    let f = fixture();
    let p = &f.pending;
    let PendingChannel::Deferred { th } = p.channel_key else { panic!() };
    let key = p.derive_channel_key(&f.portal).unwrap();
    let old = |channel_key: SecretBytes| Old {
        device_id: p.device_id.clone(),
        account: p.account.clone(),
        device_name: p.device_name.clone(),
        offer_id: p.offer_id.clone(),
        created_at: p.created_at,
        confirm_by: p.confirm_by,
        biometrics: p.biometrics,
        totp: p.totp,
        confirm: p.confirm,
        state: p.state,
        version: p.version,
        device_pk: p.device_pk.clone(),
        answer_key: p.answer_key.clone(),
        channel_key,
        check_code: p.check_code.clone(),
    };
    let old_bytes = postcard::to_allocvec(&old(key.clone())).unwrap();
    let decoded: PendingLinkRecord = crate::wire::decode_body(&old_bytes, ErrorCode::StateCorrupt).unwrap();
    assert_eq!(decoded.channel_key, PendingChannel::Key(key.clone()));
    assert_eq!(postcard::to_allocvec(&decoded).unwrap(), old_bytes, "re-encoded unchanged");
    // New: the old bytes with the 33 bytes `20 || key` replaced by `00 || th`.
    let new_bytes = postcard::to_allocvec(p).unwrap();
    let mut expected = Vec::new();
    let at = old_bytes.windows(33).position(|w| w[0] == 32 && w[1..] == *key.expose()).unwrap();
    expected.extend_from_slice(&old_bytes[..at]);
    expected.push(0);
    expected.extend_from_slice(&th);
    expected.extend_from_slice(&old_bytes[at + 33..]);
    assert_eq!(new_bytes, expected);
    // A thief of the database (even unsealed) finds no channel key in a
    // new pending link: th is public-ish, the key needs ECDH(p, D).
    assert!(!new_bytes.windows(32).any(|w| w == key.expose()));
    // Truncated: an empty key without th is refused, typed.
    let cut = postcard::to_allocvec(&old(SecretBytes::default())).unwrap();
    let r: crate::Result<PendingLinkRecord> = crate::wire::decode_body(&cut, ErrorCode::StateCorrupt);
    assert_eq!(r.unwrap_err().code(), ErrorCode::StateCorrupt);
}

/// Two servers confirming the same pending link from one snapshot derive
/// the same key and write the same device record: whichever wins the
/// compare-and-set, the phone's key is in the registry. Another portal's
/// key derives another channel key: its answers never authenticate.
#[test]
fn racing_servers_agree_and_another_portal_gets_nothing() {
    let mut f = fixture();
    let a = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
    let b = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
    let oa = a.confirm_link(&f.pending, &f.linked.check_code, T0 + 20);
    let ob = b.confirm_link(&f.pending, &f.linked.check_code, T0 + 20);
    assert!(oa.writes == ob.writes);
    assert!(oa.writes.iter().all(|w| w.expected_version() == Some(1) || w.expected_version().is_none()));
    let other = Portal::from_secret(&[0x22; 32], "Example Bank").unwrap();
    let pending = f.pending.clone();
    assert_ne!(pending.derive_channel_key(&other).unwrap(), pending.derive_channel_key(&a).unwrap());
    assert_eq!(status(&mut f, &other, &pending, T0 + 30).unwrap_err().code(), ErrorCode::MessageTampered);
}

/// A stored device key that is not a point (only a corrupt store can hold
/// one: the signature over it was verified) is a typed `STATE_CORRUPT` at
/// the derivation, with nothing written, never a panic.
#[test]
fn an_invalid_stored_device_key_is_state_corrupt() {
    let mut f = fixture();
    for bad in [&[0xff_u8; 33][..], &[], &[0x02; 32]] {
        let mut p = f.pending.clone();
        p.device_pk = SecretBytes::from_slice(bad);
        let o = f.portal.confirm_link(&p, &f.linked.check_code, T0 + 20);
        assert_eq!(o.result.unwrap_err().code(), ErrorCode::StateCorrupt);
        assert!(o.writes.is_empty() && o.events.is_empty());
        let portal = Portal::from_secret(&[0x11; 32], "Example Bank").unwrap();
        assert_eq!(status(&mut f, &portal, &p, T0 + 30).unwrap_err().code(), ErrorCode::StateCorrupt);
        // A wrong code is still counted, without touching the key.
        let o = f.portal.confirm_link(&p, wrong(&f.linked.check_code), T0 + 20);
        assert_eq!(o.result.unwrap_err().code(), ErrorCode::CheckCodeMismatch);
        assert_eq!(o.writes.len(), 1);
    }
}
