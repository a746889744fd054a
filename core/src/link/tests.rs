//! Two-party simulation of flow 1 with a virtual clock: every outcome, and
//! the attacks of the linking review (relay, key reuse, missing proof of
//! possession, orphaned phones, hostile names, clocks, Debug).

use super::device::build_request;
use super::*;
use crate::crypto::{generate_secret_key, SeededRandom};
use crate::host::{Outcome, Write};
use crate::secret::SecretBytes;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

const T0: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x42; 32];

pub(super) struct World {
    pub portal: Portal,
    pub rng: SeededRandom,
}

pub(super) fn world() -> World {
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    World { portal, rng }
}

/// Apply an outcome's writes to in-memory records, checking each
/// compare-and-set like a host would.
fn apply<T>(o: &Outcome<T>, pending: &mut Option<PendingLinkRecord>, device: &mut Option<DeviceRecord>) {
    for w in &o.writes {
        match w {
            Write::PendingLink(r) => {
                assert_eq!(pending.as_ref().map(|p| p.version), w.expected_version());
                *pending = Some(r.clone());
            }
            Write::Device(r) => {
                assert_eq!(device.as_ref().map(|d| d.version), w.expected_version());
                *device = Some(r.clone());
            }
            _ => {}
        }
    }
}

pub(super) fn offer_of(o: &AcceptOutcome) -> LinkOfferRecord {
    o.outcome.writes.iter().find_map(|w| if let Write::Offer(r) = w { Some(r.clone()) } else { None }).unwrap()
}

pub(super) fn pending_of(o: &AcceptOutcome) -> PendingLinkRecord {
    o.outcome.writes.iter().find_map(|w| if let Write::PendingLink(r) = w { Some(r.clone()) } else { None }).unwrap()
}

fn code<T: core::fmt::Debug>(r: &crate::Result<T>) -> ErrorCode {
    r.as_ref().unwrap_err().code()
}

fn fcode<T: core::fmt::Debug>(r: &core::result::Result<T, FinishError>) -> ErrorCode {
    r.as_ref().unwrap_err().code()
}

/// The bytes of a pending link (to compare a retry with the original).
fn pending_bytes(p: &PendingDeviceLink) -> Vec<u8> {
    postcard::to_allocvec(p).unwrap()
}

/// Offer → request → accept → finish; returns everything.
fn link(w: &mut World, account: &str, name: &str, passcode: &str, bio: bool, now: u64) -> Linked {
    let offer = w.portal.create_offer(account, PasscodePolicy::default(), DEFAULT_OFFER_TTL, now, &mut w.rng).unwrap();
    let scanned = scan_link_qr(&offer.qr_text, now + 5).unwrap();
    assert_eq!(scanned.portal_name, "Example Bank");
    let start = start_link(&scanned, name, passcode, bio, false, now + 10, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    assert_eq!(opened.offer_id(), offer.record.offer_id);
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, now + 11);
    assert_eq!(out.outcome.result, Ok(Accept::Accepted));
    let used = offer_of(&out);
    assert!(matches!(used.state, OfferState::Used { at, .. } if at == now + 11));
    assert_eq!(used.version, 2);
    let linked = finish_link(start.pending, &out.answer, &KEY, &mut w.rng).unwrap();
    Linked { linked, pending: pending_of(&out), bio: start.biometric_secret }
}

struct Linked {
    linked: LinkedDevice,
    pending: PendingLinkRecord,
    bio: Option<SecretBytes>,
}

fn confirm(
    w: &World,
    p: &mut Option<PendingLinkRecord>,
    d: &mut Option<DeviceRecord>,
    typed: &str,
    now: u64,
) -> crate::Result<()> {
    let o = w.portal.confirm_link(p.as_ref().unwrap(), typed, now);
    apply(&o, p, d);
    o.result.map(|rec| assert_eq!(Some(&rec), d.as_ref(), "the result is the record written"))
}

fn wrong_code(right: &str) -> String {
    if right == "000000" {
        "000001".into()
    } else {
        "000000".into()
    }
}

#[test]
fn full_flow_with_check_code_and_totp() {
    let mut w = world();
    let l = link(&mut w, "anna@example.org", "Anna's Pixel", "493817", true, T0);
    assert_eq!(l.linked.check_code.len(), 6);
    assert_eq!(l.linked.info.account, "anna@example.org");
    assert_eq!(l.linked.info.device_id, l.pending.device_id);
    let (mut p, mut d) = (Some(l.pending), None);
    assert_eq!(
        code(&confirm(&w, &mut p, &mut d, &wrong_code(&l.linked.check_code), T0 + 20)),
        ErrorCode::CheckCodeMismatch
    );
    assert_eq!(p.as_ref().unwrap().attempts(), 1);
    let o = w.portal.confirm_link(p.as_ref().unwrap(), &l.linked.check_code, T0 + 21);
    assert!(matches!(o.events[0], PortalEvent::DeviceLinked { .. }));
    apply(&o, &mut p, &mut d);
    assert_eq!(d.as_ref().unwrap().name, "Anna's Pixel");
    assert_eq!(d.as_ref().unwrap().version, 1);
    assert!(matches!(p.as_ref().unwrap().state, PendingState::Confirmed { .. }));
    // Confirming again is refused and writes nothing.
    let again = w.portal.confirm_link(p.as_ref().unwrap(), &l.linked.check_code, T0 + 22);
    assert_eq!(code(&again.result), ErrorCode::InvalidState);
    assert!(again.writes.is_empty());

    // Flow 5: TOTP from the device, verified once.
    let state = DeviceState::open(&KEY, &l.linked.state).unwrap();
    let c = state.totp(UserFactor::Passcode("493817"), T0 + 100).unwrap();
    assert_eq!(state.totp(UserFactor::Biometric(l.bio.unwrap().expose()), T0 + 100).unwrap(), c);
    let mut rec = d.unwrap();
    let o = rec.verify_totp(&c, T0 + 100);
    assert!(o.result.is_ok());
    let Write::Device(next) = &o.writes[0] else { panic!() };
    assert_eq!(next.version, 2);
    assert_eq!(next.last_used_at, Some(T0 + 100));
    rec = next.clone();
    let o = rec.verify_totp(&c, T0 + 100);
    assert_eq!(code(&o.result), ErrorCode::OtpReplayed);
    let Write::Device(next) = &o.writes[0] else { panic!() };
    rec = next.clone();
    for i in 0..4u64 {
        let bad = state.totp(UserFactor::Passcode("000111"), T0 + 200 + 30 * i).unwrap();
        let o = rec.verify_totp(&bad, T0 + 200 + 30 * i);
        assert_eq!(code(&o.result), if i < 3 { ErrorCode::OtpMismatch } else { ErrorCode::LockedOut });
        let Write::Device(next) = &o.writes[0] else { panic!() };
        rec = next.clone();
    }
    let good = state.totp(UserFactor::Passcode("493817"), T0 + 400).unwrap();
    assert_eq!(code(&rec.verify_totp(&good, T0 + 400).result), ErrorCode::LockedOut);
}

#[test]
fn check_code_must_match_exactly() {
    let mut w = world();
    let l = link(&mut w, "exact", "Phone", "493817", false, T0);
    let cc = l.linked.check_code.clone();
    let mut longer = cc.clone();
    longer.push('0');
    for typed in ["", &cc[..1], &cc[..5], &longer, " ", "abcdef"] {
        let o = w.portal.confirm_link(&l.pending, typed, T0 + 20);
        assert_eq!(code(&o.result), ErrorCode::CheckCodeMismatch, "{typed:?}");
    }
    // White space around the right code is fine.
    assert!(w.portal.confirm_link(&l.pending, &format!(" {cc} "), T0 + 20).result.is_ok());
}

#[test]
fn second_scan_is_refused_and_a_repeat_gets_the_same_bytes() {
    let mut w = world();
    let offer = w.portal.create_offer("bob", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let a = start_link(&s, "Phone A", "493817", false, false, T0, &mut w.rng).unwrap();
    let b = start_link(&s, "Phone B", "728194", false, false, T0, &mut w.rng).unwrap();
    let opened_a = w.portal.open_link_request(&a.request).unwrap();
    let first = opened_a.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 1);
    let used = offer_of(&first);
    let second =
        w.portal.open_link_request(&b.request).unwrap().accept(&w.portal, Some(&used), DeviceKeyUse::Fresh, T0 + 2);
    assert_eq!(code(&second.outcome.result), ErrorCode::TokenAlreadyUsed);
    assert!(second.outcome.writes.is_empty());
    assert_eq!(fcode(&finish_link(b.pending, &second.answer, &KEY, &mut w.rng)), ErrorCode::TokenAlreadyUsed);
    // The phone lost the answer and sends the very same request again.
    assert_eq!(a.pending.request(), a.request);
    let repeat = w.portal.open_link_request(a.pending.request()).unwrap().accept(
        &w.portal,
        Some(&used),
        DeviceKeyUse::Seen,
        T0 + 30,
    );
    assert_eq!(repeat.outcome.result, Ok(Accept::Repeated));
    assert!(repeat.outcome.writes.is_empty());
    assert_eq!(repeat.answer, first.answer);
    assert!(finish_link(a.pending, &repeat.answer, &KEY, &mut w.rng).is_ok());
}

/// Item 2 of the review: every answer to one request — acceptance, a second
/// acceptance computed by a racing server, refusals — uses a distinct
/// (key, nonce) pair, and refusals never use the acceptance key.
#[test]
fn no_key_and_nonce_pair_seals_two_plaintexts() {
    let mut w = world();
    let offer = w.portal.create_offer("kim", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let a = start_link(&s, "Phone", "493817", false, false, T0, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&a.request).unwrap();
    let answers = vec![
        opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 1).answer,
        // A second server accepting the same request at another time (it
        // will lose its compare-and-set, but the bytes exist).
        opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 2).answer,
        opened.refuse(ErrorCode::TokenAlreadyUsed),
        opened.refuse(ErrorCode::TokenUnknown),
        opened.refuse(ErrorCode::TokenExpired),
    ];
    let mut seen: Vec<(u8, Vec<u8>)> = Vec::new();
    for ans in &answers {
        let b = crate::wire::from_text(ans).unwrap();
        let pair = (b[2], b[3..3 + crate::crypto::SIV_NONCE_LEN].to_vec());
        assert!(!seen.contains(&pair), "a (key, nonce) pair sealed two plaintexts");
        seen.push(pair);
    }
    assert_eq!(answers[0].as_bytes()[..], answers[0].as_bytes()[..]);
    assert_eq!(opened.refuse(ErrorCode::TokenUnknown), answers[3], "refusals are deterministic");
    // The ciphertexts of the two acceptances differ where the plaintexts
    // differ, and XOR of the two leaks nothing: distinct nonces mean distinct
    // key streams (checked above); both still open on the device.
    assert_eq!(fcode(&finish_link(a.pending.clone(), &answers[2], &KEY, &mut w.rng)), ErrorCode::TokenAlreadyUsed);
    assert!(finish_link(a.pending, &answers[1], &KEY, &mut w.rng).is_ok());
}

#[test]
fn expiry_boundaries_on_both_sides() {
    let mut w = world();
    let offer = w.portal.create_offer("carol", PasscodePolicy::default(), 60, T0, &mut w.rng).unwrap();
    assert_eq!(code(&scan_link_qr(&offer.qr_text, T0 + 60)), ErrorCode::TokenExpired);
    let s = scan_link_qr(&offer.qr_text, T0 + 59).unwrap();
    let start = start_link(&s, "Phone", "493817", false, false, T0 + 59, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    // At exactly the expiry: refused. One second before: accepted.
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 60);
    assert_eq!(code(&out.outcome.result), ErrorCode::TokenExpired);
    // The refusal closes the offer with a write: a server that refused from
    // a snapshot older than another server's acceptance loses its
    // compare-and-set (same expected version) and reads again.
    let expired = offer_of(&out);
    assert!(matches!(expired.state, OfferState::Expired { at } if at == T0 + 60));
    assert_eq!(out.outcome.writes[0].expected_version(), Some(1));
    let late = opened.accept(&w.portal, Some(&expired), DeviceKeyUse::Fresh, T0 + 61);
    assert_eq!(code(&late.outcome.result), ErrorCode::TokenExpired);
    assert!(late.outcome.writes.is_empty());
    assert_eq!(fcode(&finish_link(start.pending.clone(), &out.answer, &KEY, &mut w.rng)), ErrorCode::TokenExpired);
    let ok = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 59);
    assert_eq!(ok.outcome.result, Ok(Accept::Accepted));
    assert_eq!(code(&start_link(&s, "Phone", "493817", false, false, T0 + 60, &mut w.rng)), ErrorCode::TokenExpired);
    assert!(w.portal.create_offer("carol", PasscodePolicy::default(), 601, T0, &mut w.rng).is_err());
    assert!(w.portal.create_offer("carol", PasscodePolicy::default(), 0, T0, &mut w.rng).is_err());
    // Check code: at confirm_by - 1 accepted, at confirm_by expired.
    let mut w2 = world();
    let l = link(&mut w2, "carol", "Phone", "493817", false, T0);
    let by = l.pending.confirm_by;
    assert!(w2.portal.confirm_link(&l.pending, &l.linked.check_code, by - 1).result.is_ok());
    let late = w2.portal.confirm_link(&l.pending, &l.linked.check_code, by);
    assert_eq!(code(&late.result), ErrorCode::TokenExpired);
    let Write::PendingLink(p) = &late.writes[0] else { panic!() };
    assert!(matches!(p.state, PendingState::Cancelled { reason: CancelReason::Expired, .. }));
}

#[test]
fn unknown_offer_and_wrong_portal() {
    let mut w = world();
    let offer = w.portal.create_offer("dave", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let start = start_link(&s, "Phone", "493817", false, false, T0, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&start.request).unwrap().accept(&w.portal, None, DeviceKeyUse::Fresh, T0);
    assert_eq!(code(&out.outcome.result), ErrorCode::TokenUnknown);
    assert_eq!(fcode(&finish_link(start.pending.clone(), &out.answer, &KEY, &mut w.rng)), ErrorCode::TokenUnknown);
    let other = Portal::generate("Other", &mut w.rng).unwrap();
    assert_eq!(code(&other.open_link_request(&start.request)), ErrorCode::MessageTampered);
}

#[test]
fn pinned_scan_refuses_a_look_alike_qr() {
    let mut w = world();
    let offer = w.portal.create_offer("pin", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    assert!(scan_link_qr_pinned(&offer.qr_text, &w.portal.public_key(), T0).is_ok());
    let fake = Portal::generate("Example Bank", &mut w.rng).unwrap();
    let look_alike = fake.create_offer("pin", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    assert_eq!(code(&scan_link_qr_pinned(&look_alike.qr_text, &w.portal.public_key(), T0)), ErrorCode::WrongAccount);
    assert_eq!(code(&scan_link_qr_pinned(&offer.qr_text, &[2u8; 5], T0)), ErrorCode::WrongAccount);
}

#[test]
fn device_refuses_second_account_and_bad_passcodes() {
    let mut w = world();
    let offer = w.portal.create_offer("erin", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    assert_eq!(code(&start_link(&s, "P", "493817", false, true, T0, &mut w.rng)), ErrorCode::DeviceAlreadyLinked);
    assert_eq!(code(&start_link(&s, "P", "123456", false, false, T0, &mut w.rng)), ErrorCode::WeakPasscode);
    assert_eq!(code(&start_link(&s, "P", "12345", false, false, T0, &mut w.rng)), ErrorCode::PasscodePolicy);
    assert_eq!(code(&start_link(&s, "", "493817", false, false, T0, &mut w.rng)), ErrorCode::InvalidInput);
    let nobio = PasscodePolicy { allow_biometrics: false, ..PasscodePolicy::default() };
    let o2 = w.portal.create_offer("erin", nobio, 300, T0, &mut w.rng).unwrap();
    let s2 = scan_link_qr(&o2.qr_text, T0).unwrap();
    assert_eq!(code(&start_link(&s2, "P", "493817", true, false, T0, &mut w.rng)), ErrorCode::PasscodePolicy);
}

/// Item 3: a request built by hand (an attacker's app) is held to the
/// offer's policy and must prove it holds its device key.
#[test]
fn portal_enforces_policy_possession_and_one_account_per_key() {
    let mut w = world();
    let nobio = PasscodePolicy { allow_biometrics: false, ..PasscodePolicy::default() };
    let offer = w.portal.create_offer("lea", nobio, 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let root = [7u8; 32];
    let key = |w: &mut World| generate_secret_key(&mut w.rng).unwrap();
    // Biometrics the offer forbids.
    let (e, d) = (key(&mut w), key(&mut w));
    let bio = build_request(&s, "P", "493817", true, e, d, &root);
    let out = w.portal.open_link_request(&bio.request).unwrap().accept(
        &w.portal,
        Some(&offer.record),
        DeviceKeyUse::Fresh,
        T0,
    );
    assert_eq!(code(&out.outcome.result), ErrorCode::PasscodePolicy);
    assert!(out.outcome.writes.is_empty());
    // A device key the sender does not hold: swap the key in the body after
    // signing (the attacker re-encrypts with its own ephemeral key).
    let (e, d, stolen) = (key(&mut w), key(&mut w), key(&mut w));
    let forged = super::device::forge_request_with_device_pk(&s, "P", e, d, &crate::crypto::public_of(&stolen), &root);
    assert_eq!(code(&w.portal.open_link_request(&forged)), ErrorCode::MessageTampered);
    // One device key, two accounts: the second accept sees the key in use.
    let o1 = w.portal.create_offer("lea", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let o2 = w.portal.create_offer("mallory", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let (s1, s2) = (scan_link_qr(&o1.qr_text, T0).unwrap(), scan_link_qr(&o2.qr_text, T0).unwrap());
    let dk = key(&mut w);
    let (e1, e2) = (key(&mut w), key(&mut w));
    let r1 = build_request(&s1, "P", "493817", false, e1, dk.clone(), &root);
    let r2 = build_request(&s2, "P", "493817", false, e2, dk, &root);
    let a1 = w.portal.open_link_request(&r1.request).unwrap();
    let a2 = w.portal.open_link_request(&r2.request).unwrap();
    assert_eq!(a1.device_id(), a2.device_id());
    assert_eq!(a1.accept(&w.portal, Some(&o1.record), DeviceKeyUse::Fresh, T0).outcome.result, Ok(Accept::Accepted));
    let second = a2.accept(&w.portal, Some(&o2.record), DeviceKeyUse::Seen, T0);
    assert_eq!(code(&second.outcome.result), ErrorCode::DeviceAlreadyLinked);
    assert_eq!(fcode(&finish_link(r2.pending, &second.answer, &KEY, &mut w.rng)), ErrorCode::DeviceAlreadyLinked);
}

#[test]
fn degenerate_keys_are_refused() {
    let mut w = world();
    let offer = w.portal.create_offer("zed", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let e = generate_secret_key(&mut w.rng).unwrap();
    let d = generate_secret_key(&mut w.rng).unwrap();
    let zero = super::device::forge_request_with_answer_key(&s, e.clone(), d.clone(), [0u8; 32]);
    assert_eq!(code(&w.portal.open_link_request(&zero)), ErrorCode::MalformedMessage);
    // The device key equal to the ephemeral key.
    let same = build_request(&s, "P", "493817", false, e.clone(), e, &[7u8; 32]);
    assert_eq!(code(&w.portal.open_link_request(&same.request)), ErrorCode::MalformedMessage);
}

#[test]
fn check_code_lockout_and_closed_links() {
    let mut w = world();
    let l = link(&mut w, "frank", "Phone", "493817", false, T0);
    let wrong = wrong_code(&l.linked.check_code);
    let (mut p, mut d) = (Some(l.pending), None);
    for i in 1..=4 {
        assert_eq!(code(&confirm(&w, &mut p, &mut d, &wrong, T0 + 30)), ErrorCode::CheckCodeMismatch);
        assert_eq!(p.as_ref().unwrap().attempts(), i);
    }
    assert_eq!(code(&confirm(&w, &mut p, &mut d, &wrong, T0 + 30)), ErrorCode::LockedOut);
    assert_eq!(code(&confirm(&w, &mut p, &mut d, &l.linked.check_code, T0 + 31)), ErrorCode::InvalidState);
    assert!(d.is_none());
    assert_eq!(p.unwrap().version, 6);
}

/// Item 4: a phone whose check code is never typed learns it, with an
/// authenticated answer, and clears itself.
#[test]
fn orphaned_phone_learns_its_link_was_never_confirmed() {
    let mut w = world();
    let l = link(&mut w, "olga", "Phone", "493817", false, T0);
    let state = DeviceState::open(&KEY, &l.linked.state).unwrap();
    let ask = |w: &mut World, p: &PendingLinkRecord, now: u64| {
        let (req, probe) = state.status_request(now, &mut w.rng).unwrap();
        let ans = w.portal.open_status_request(&req).unwrap().answer(&w.portal, None, Some(p), now).unwrap();
        state.read_status_answer(&probe, &ans)
    };
    assert_eq!(ask(&mut w, &l.pending, T0 + 60), Ok(LinkStatus::AwaitingConfirmation));
    // Never typed: once the deadline and the servers' clock skew have
    // passed, the portal says so, without a write. Not one second earlier
    // (a confirmation may still be committing on another server).
    let by = l.pending.confirm_by;
    assert_eq!(ask(&mut w, &l.pending, by + STATUS_SKEW - 1), Ok(LinkStatus::AwaitingConfirmation));
    assert_eq!(code(&ask(&mut w, &l.pending, by + STATUS_SKEW)), ErrorCode::LinkNotConfirmed);
    // Confirmed, but the host read no device record (not one snapshot):
    // nothing that would make the phone wipe itself.
    let mut confirmed = l.pending.clone();
    confirmed.state = PendingState::Confirmed { at: T0 + 30 };
    let (req, _) = state.status_request(T0 + 60, &mut w.rng).unwrap();
    let r = w.portal.open_status_request(&req).unwrap().answer(&w.portal, None, Some(&confirmed), T0 + 60);
    assert_eq!(code(&r), ErrorCode::DeviceUnknown);
    // ... and only for an authenticated request (no oracle for forgers).
    let mut forged = crate::wire::from_text(&req).unwrap();
    let n = forged.len() - 1;
    forged[n] ^= 1;
    let forged = w.portal.open_status_request(&crate::wire::to_text(&forged)).unwrap();
    assert_eq!(code(&forged.answer(&w.portal, None, Some(&confirmed), T0 + 60)), ErrorCode::MessageTampered);
    // Locked out: same.
    let mut locked = l.pending.clone();
    locked.state = PendingState::Cancelled { at: T0 + 40, reason: CancelReason::LockedOut };
    assert_eq!(code(&ask(&mut w, &locked, T0 + 60)), ErrorCode::LinkNotConfirmed);
    // No record at all: unauthenticated DEVICE_UNKNOWN on the portal.
    let (req, _) = state.status_request(T0 + 60, &mut w.rng).unwrap();
    assert_eq!(
        code(&w.portal.open_status_request(&req).unwrap().answer(&w.portal, None, None, T0 + 60)),
        ErrorCode::DeviceUnknown
    );
}

#[test]
fn unlink_reaches_the_device_and_status_writes_nothing() {
    let mut w = world();
    let l = link(&mut w, "gina", "Phone", "493817", false, T0);
    let (mut p, mut d) = (Some(l.pending), None);
    confirm(&w, &mut p, &mut d, &l.linked.check_code, T0 + 20).unwrap();
    let rec = d.unwrap();
    let state = DeviceState::open(&KEY, &l.linked.state).unwrap();
    let (req, probe) = state.status_request(T0 + 50, &mut w.rng).unwrap();
    let opened = w.portal.open_status_request(&req).unwrap();
    assert_eq!(opened.device_id(), rec.device_id);
    let ans = opened.answer(&w.portal, Some(&rec), p.as_ref(), T0 + 50).unwrap();
    assert_eq!(state.read_status_answer(&probe, &ans), Ok(LinkStatus::Active));
    // The time window: 300 s either way, not 301.
    for (t, ok) in [(T0 + 50 + 300, true), (T0 + 50 - 300, true), (T0 + 50 + 301, false), (T0 + 50 - 301, false)] {
        let r = opened.answer(&w.portal, Some(&rec), None, t);
        assert_eq!(r.is_ok(), ok, "{t}");
        if !ok {
            assert_eq!(code(&r), ErrorCode::InvalidTime);
        }
    }
    let renamed = rec.rename("Lost phone", T0 + 60);
    let Write::Device(rec) = &renamed.writes[0] else { panic!() };
    let unlinked = rec.unlink(T0 + 70);
    assert!(matches!(unlinked.events[0], PortalEvent::DeviceUnlinked { .. }));
    let Write::Device(rec) = &unlinked.writes[0] else { panic!() };
    assert_eq!(rec.version, 3);
    assert_eq!(code(&rec.unlink(T0 + 71).result), ErrorCode::InvalidState);
    let (req, probe) = state.status_request(T0 + 80, &mut w.rng).unwrap();
    let ans = w.portal.open_status_request(&req).unwrap().answer(&w.portal, Some(rec), None, T0 + 80).unwrap();
    assert_eq!(code(&state.read_status_answer(&probe, &ans)), ErrorCode::DeviceRevoked);
    let c = state.totp(UserFactor::Passcode("493817"), T0 + 90).unwrap();
    assert_eq!(code(&rec.verify_totp(&c, T0 + 90).result), ErrorCode::DeviceRevoked);
    let mut forged = crate::wire::from_text(&ans).unwrap();
    forged[18] = 0;
    assert_eq!(code(&state.read_status_answer(&probe, &crate::wire::to_text(&forged))), ErrorCode::MessageTampered);
}

/// Item 5: names from a hostile portal, and names the portal is given.
#[test]
fn names_refuse_invisible_and_control_characters() {
    let mut w = world();
    for bad in ["Bank\u{202E}knaB", "Ba\u{200B}nk", "Bank\u{2066}", "\u{FEFF}Bank", "Bank\x1b[2J", "Bank\u{2028}"] {
        assert_eq!(code(&Portal::generate(bad, &mut w.rng)), ErrorCode::InvalidInput, "{bad:?}");
        assert_eq!(
            code(&w.portal.create_offer(bad, PasscodePolicy::default(), 300, T0, &mut w.rng)),
            ErrorCode::InvalidInput
        );
    }
    let offer = w.portal.create_offer("ok", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    assert_eq!(code(&start_link(&s, "Pixel\u{202E}", "493817", false, false, T0, &mut w.rng)), ErrorCode::InvalidInput);
    // A QR code whose portal name hides a bidi override.
    let mut m = super::messages::LinkOffer::decode(&offer.qr_text).unwrap();
    m.portal_name = "Bank\u{202E}".into();
    assert_eq!(code(&scan_link_qr(&m.encode(), T0)), ErrorCode::MalformedMessage);
    // A hostile portal answers with 4 KB of terminal escapes as the account.
    let start = start_link(&s, "Phone", "493817", false, false, T0, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    let nonce: [u8; 32] = offer.record.portal_nonce.expose().try_into().unwrap();
    let evil = "\x1b[31m".repeat(800);
    let ans = opened.forge_accepted(nonce, &evil, T0);
    assert_eq!(fcode(&finish_link(start.pending.clone(), &ans, &KEY, &mut w.rng)), ErrorCode::MalformedMessage);
    let ans = opened.forge_accepted(nonce, &"a".repeat(MAX_ACCOUNT_LEN + 1), T0);
    assert_eq!(fcode(&finish_link(start.pending.clone(), &ans, &KEY, &mut w.rng)), ErrorCode::MalformedMessage);
    assert!(finish_link(start.pending, &opened.forge_accepted(nonce, "ok", T0), &KEY, &mut w.rng).is_ok());
}

/// Item 6: a clock outside 2000..3000 (milliseconds as seconds) is
/// INVALID_TIME at every step, and counts nothing.
#[test]
fn every_step_refuses_an_impossible_clock() {
    let mut w = world();
    let ms = T0 * 1000;
    assert_eq!(
        code(&w.portal.create_offer("t", PasscodePolicy::default(), 300, ms, &mut w.rng)),
        ErrorCode::InvalidTime
    );
    let l = link(&mut w, "t", "Phone", "493817", false, T0);
    let offer = w.portal.create_offer("t", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    assert_eq!(code(&scan_link_qr(&offer.qr_text, ms)), ErrorCode::InvalidTime);
    assert_eq!(code(&scan_link_qr(&offer.qr_text, 59)), ErrorCode::InvalidTime);
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    assert_eq!(code(&start_link(&s, "P", "493817", false, false, ms, &mut w.rng)), ErrorCode::InvalidTime);
    let st = start_link(&s, "P", "493817", false, false, T0, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&st.request).unwrap().accept(
        &w.portal,
        Some(&offer.record),
        DeviceKeyUse::Fresh,
        ms,
    );
    assert_eq!(code(&out.outcome.result), ErrorCode::InvalidTime);
    assert!(out.outcome.writes.is_empty());
    let c = w.portal.confirm_link(&l.pending, &l.linked.check_code, ms);
    assert_eq!(code(&c.result), ErrorCode::InvalidTime);
    assert!(c.writes.is_empty(), "a bad clock must not cancel or count");
    let state = DeviceState::open(&KEY, &l.linked.state).unwrap();
    assert_eq!(code(&state.totp(UserFactor::Passcode("493817"), ms)), ErrorCode::InvalidTime);
    assert_eq!(code(&state.status_request(ms, &mut w.rng)), ErrorCode::InvalidTime);
    let (mut p, mut d) = (Some(l.pending), None);
    confirm(&w, &mut p, &mut d, &l.linked.check_code, T0 + 20).unwrap();
    let rec = d.unwrap();
    for o in [rec.verify_totp("123456", ms), rec.verify_totp("123456", 0)] {
        assert_eq!(code(&o.result), ErrorCode::InvalidTime);
        assert!(o.writes.is_empty());
    }
    assert_eq!(code(&rec.unlink(ms).result), ErrorCode::InvalidTime);
    let (req, _) = state.status_request(T0 + 30, &mut w.rng).unwrap();
    assert_eq!(
        code(&w.portal.open_status_request(&req).unwrap().answer(&w.portal, Some(&rec), None, ms)),
        ErrorCode::InvalidTime
    );
}

#[test]
fn several_devices_per_account_have_distinct_ids() {
    let mut w = world();
    let a = link(&mut w, "hana", "Phone", "493817", false, T0);
    let b = link(&mut w, "hana", "Tablet", "493817", false, T0);
    assert_ne!(a.linked.info.device_id, b.linked.info.device_id);
}

/// Item 9: a sealed record is bound to its kind, key, account and version.
#[test]
fn stored_records_are_bound_to_their_row() {
    let mut w = world();
    let l = link(&mut w, "ivan", "Phone", "493817", false, T0);
    for i in 0..l.linked.state.len() {
        let mut t = l.linked.state.clone();
        t[i] ^= 0x01;
        let c = code(&DeviceState::open(&KEY, &t));
        assert!(
            matches!(c, ErrorCode::StateCorrupt | ErrorCode::WrongMessageKind | ErrorCode::UnsupportedVersion),
            "{i}"
        );
    }
    assert_eq!(code(&DeviceState::open(&[0; 32], &l.linked.state)), ErrorCode::StateCorrupt);
    // A sealed record is bound to its row's key, account and version.
    let sealed = w.portal.seal_record(&l.pending, &mut w.rng);
    let (id, v) = (l.pending.device_id.as_str(), l.pending.version);
    assert_eq!(w.portal.open_record::<PendingLinkRecord>(id, "ivan", v, &sealed).unwrap(), l.pending);
    let open = |key: &str, account: &str, version: u64, blob: &[u8]| {
        w.portal.open_record::<PendingLinkRecord>(key, account, version, blob).unwrap_err().code()
    };
    assert_eq!(open("0011223344556677", "ivan", v, &sealed), ErrorCode::StateCorrupt);
    assert_eq!(open(id, "mallory", v, &sealed), ErrorCode::StateCorrupt);
    assert_eq!(open(id, "ivan", 7, &sealed), ErrorCode::StateCorrupt);
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    assert_eq!(open(id, "ivan", v, &flipped), ErrorCode::StateCorrupt);
    // Another record type under the same key and account.
    let sealed = w.portal.seal_record(&l.pending, &mut w.rng);
    assert_eq!(
        code(&w.portal.open_record::<DeviceRecord>(&l.pending.device_id, "ivan", 1, &sealed)),
        ErrorCode::StateCorrupt
    );
    assert!(w.portal.open_record::<PendingLinkRecord>(&l.pending.device_id, "ivan", 1, &sealed).is_ok());
}

#[test]
fn qr_fits_version_5_m_and_rejects_other_kinds() {
    let mut w = world();
    let long = Portal::generate("Ministry of Finance!", &mut w.rng).unwrap();
    assert_eq!(long.name().len(), MAX_PORTAL_NAME_LEN);
    let offer = long.create_offer("x", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    assert!(offer.qr_text.len() <= 122, "{}", offer.qr_text.len());
    assert!(offer.qr_text.bytes().all(|c| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&c)));
    assert!(Portal::generate("Ministry of Finances!", &mut w.rng).is_err());
    let bytes = crate::wire::from_qr_text(&offer.qr_text).unwrap();
    let mut other = bytes.clone();
    other[0] = 0x20;
    assert_eq!(code(&scan_link_qr(&crate::wire::to_qr_text(&other), T0)), ErrorCode::WrongMessageKind);
    let mut v2 = bytes.clone();
    v2[1] = 2;
    assert_eq!(code(&scan_link_qr(&crate::wire::to_qr_text(&v2), T0)), ErrorCode::UnsupportedVersion);
    assert_eq!(code(&scan_link_qr("hello", T0)), ErrorCode::MalformedMessage);
    let t = offer.qr_text.to_string();
    assert_eq!(code(&scan_link_qr(&t[..t.len() - 6], T0)), ErrorCode::MalformedMessage);
}

/// Item 7: no secret in any Debug output.
#[test]
fn debug_never_shows_secrets() {
    let mut w = world();
    let offer = w.portal.create_offer("jon", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let l = link(&mut w, "jon", "Phone", "493817", true, T0);
    let state = DeviceState::open(&KEY, &l.linked.state).unwrap();
    let qr_body = &offer.qr_text[3..20];
    let dbg: Vec<String> = vec![
        format!("{state:?}"),
        format!("{:?}", l.pending),
        format!("{:?}", l.linked),
        format!("{offer:?}"),
        format!("{:?}", offer.record),
        format!("{:?}", l.bio.unwrap()),
        format!("{:?}", w.portal),
    ];
    for d in dbg {
        assert!(!d.contains(&l.linked.check_code), "{d}");
        assert!(!d.contains("493817"), "{d}");
        assert!(!d.contains(qr_body), "{d}");
    }
}

/// Review R3: a thief of the phone's storage who opens a pending link finds
/// nothing that decrypts its request (whose answer key would test
/// passcodes offline).
#[test]
fn a_stolen_pending_link_cannot_decrypt_its_request() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Stolen {
        portal_pk: Vec<u8>,
        portal_name: String,
        commitment: [u8; 16],
        request: String,
        th: [u8; 32],
        answer_keys: Vec<u8>,
        code_key: Vec<u8>,
        device_sk: Vec<u8>,
        otp_root: Vec<u8>,
        device_name: String,
        biometrics: bool,
        policy: PasscodePolicy,
        expires_at: u64,
    }
    let mut w = world();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let phone = start_link(&s, "Pixel", "493817", false, false, T0, &mut w.rng).unwrap();
    let blob = phone.pending.seal(&KEY, &mut w.rng);
    let plain = crate::crypto::open_blob(&KEY, &blob[..2], &blob[2..]).unwrap();
    let st: Stolen = crate::wire::decode_body(&plain, ErrorCode::StateCorrupt).unwrap();
    let req = crate::wire::from_text(&st.request).unwrap();
    let (eph_pk, ct) = req[2..].split_at(33);
    let aad = [&req[..2], eph_pk, &st.portal_pk[..]].concat();
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for field in [&st.code_key[..], &st.device_sk[..], &st.otp_root[..], &st.th[..]] {
        candidates.push(field.try_into().unwrap());
    }
    for chunk in st.answer_keys.chunks(32) {
        candidates.push(chunk.try_into().unwrap());
    }
    let ppk = crate::crypto::decode_public(&st.portal_pk, ErrorCode::Internal).unwrap();
    for c in &candidates {
        // As a request key, and as an ECDH secret (a scalar) to derive one.
        assert!(crate::crypto::open_once(c, &aad, ct).is_err());
        assert!(crate::crypto::open_once(&request_key(c, &st.portal_pk, eph_pk), &aad, ct).is_err());
        if crate::crypto::secret_key_from_bytes(c).is_ok() {
            let k = request_key(&crate::crypto::ecdh(c, &ppk, ErrorCode::Internal).unwrap(), &st.portal_pk, eph_pk);
            assert!(crate::crypto::open_once(&k, &aad, ct).is_err());
        }
    }
}

/// Review R4: the passcode policy in the QR code is bound to the request:
/// a rewritten QR (6 digits instead of 12 to 16 characters) is refused.
#[test]
fn a_downgraded_passcode_policy_is_refused_by_the_portal() {
    let mut w = world();
    let strict = PasscodePolicy { min_len: 12, max_len: 16, digits_only: false, allow_biometrics: false };
    let offer = w.portal.create_offer("anna", strict, 300, T0, &mut w.rng).unwrap();
    let mut m = super::messages::LinkOffer::decode(&offer.qr_text).unwrap();
    m.policy = PasscodePolicy { min_len: 6, max_len: 6, digits_only: true, allow_biometrics: false };
    let s = scan_link_qr(&m.encode(), T0).unwrap();
    let phone = start_link(&s, "Pixel", "493817", false, false, T0, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&phone.request).unwrap().accept(
        &w.portal,
        Some(&offer.record),
        DeviceKeyUse::Fresh,
        T0 + 1,
    );
    assert_eq!(code(&out.outcome.result), ErrorCode::PasscodePolicy);
    assert!(out.outcome.writes.is_empty());
    assert_eq!(fcode(&finish_link(phone.pending, &out.answer, &KEY, &mut w.rng)), ErrorCode::PasscodePolicy);
}

/// Review R5: a portal can only refuse with the link refusal codes; its own
/// faults do not spend the phone's link; implausible times are refused.
#[test]
fn refusals_are_restricted_and_portal_faults_are_not_final() {
    let mut w = world();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let phone = start_link(&s, "Pixel", "493817", false, false, T0, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&phone.request).unwrap();
    for hostile in [ErrorCode::MessageTampered, ErrorCode::DeviceRevoked, ErrorCode::LockedOut, ErrorCode::StateCorrupt]
    {
        let e = finish_link(phone.pending.clone(), &opened.refuse(hostile), &KEY, &mut w.rng).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidState, "{hostile:?}");
        assert!(e.retry.is_none(), "a refusal is final");
    }
    // A portal that keeps answering INTERNAL keeps the phone retrying only
    // until give_up_at: after it no portal can accept or confirm the link.
    assert_eq!(phone.pending.give_up_at(), T0 + 300 + CONFIRM_TTL + STATUS_SKEW);
    let bad_clock = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 * 1000);
    let e = finish_link(phone.pending.clone(), &bad_clock.answer, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidTime);
    let retry = e.retry.expect("the portal's clock is not the phone's problem");
    assert_eq!(pending_bytes(&retry), pending_bytes(&phone.pending));
    let nonce: [u8; 32] = offer.record.portal_nonce.expose().try_into().unwrap();
    assert_eq!(
        fcode(&finish_link(phone.pending.clone(), &opened.forge_accepted(nonce, "anna", 0), &KEY, &mut w.rng)),
        ErrorCode::MalformedMessage
    );
    assert!(finish_link(phone.pending, &opened.forge_accepted(nonce, "anna", T0), &KEY, &mut w.rng).is_ok());
}

/// Review R6: an unlinked device stays as it was.
#[test]
fn an_unlinked_device_cannot_be_renamed() {
    let mut w = world();
    let l = link(&mut w, "ulla", "Phone", "493817", false, T0);
    let (mut p, mut d) = (Some(l.pending), None);
    confirm(&w, &mut p, &mut d, &l.linked.check_code, T0 + 20).unwrap();
    let u = d.unwrap().unlink(T0 + 30);
    let Write::Device(gone) = &u.writes[0] else { panic!() };
    let r = gone.rename("Renamed after unlink", T0 + 40);
    assert_eq!(code(&r.result), ErrorCode::InvalidState);
    assert!(r.writes.is_empty() && r.events.is_empty());
}

#[test]
fn an_oversized_request_is_refused_before_any_work() {
    let w = world();
    assert_eq!(code(&w.portal.open_link_request(&"A".repeat(MAX_REQUEST_TEXT + 1))), ErrorCode::MalformedMessage);
}

/// A forged or damaged answer gives the pending link back, unchanged, and
/// the genuine answer then finishes with it; an authenticated refusal is
/// final.
#[test]
fn a_tampered_answer_keeps_the_pending_link_and_a_refusal_ends_it() {
    let mut w = world();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let phone = start_link(&s, "Pixel", "493817", false, false, T0, &mut w.rng).unwrap();
    let original = pending_bytes(&phone.pending);
    let opened = w.portal.open_link_request(&phone.request).unwrap();
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 1);
    assert_eq!(out.outcome.result, Ok(Accept::Accepted));
    // One character of the genuine answer changed.
    let mut tampered: Vec<char> = out.answer.chars().collect();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let e = finish_link(phone.pending, &tampered, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MessageTampered);
    assert!(!format!("{e:?}").contains("Pixel"), "Debug shows no pending link: {e:?}");
    let retry = e.retry.expect("junk does not end the link");
    assert_eq!(pending_bytes(&retry), original, "the retry is the pending link, unchanged");
    // Junk of other kinds, each handing the link back.
    let mut retry = retry;
    for junk in ["", "TS:AAAA", "hello", &offer.qr_text] {
        let e = finish_link(retry, junk, &KEY, &mut w.rng).unwrap_err();
        assert!(matches!(e.code(), ErrorCode::MalformedMessage | ErrorCode::WrongMessageKind), "{junk:?}: {e:?}");
        retry = e.retry.unwrap();
    }
    let linked = finish_link(retry, &out.answer, &KEY, &mut w.rng).unwrap();
    assert_eq!(linked.info.account, "anna");

    // An authenticated refusal ends the link.
    let phone = start_link(&s, "Pixel 2", "493817", false, false, T0, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&phone.request).unwrap();
    let refused = opened.accept(&w.portal, Some(&offer_of(&out)), DeviceKeyUse::Fresh, T0 + 2);
    let e = finish_link(phone.pending, &refused.answer, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TokenAlreadyUsed);
    assert!(e.retry.is_none());
}

/// A host that could not store an acceptance sends `if_not_stored`: the
/// phone keeps its pending link, sends the same request again, and the
/// genuine answer then finishes it. Every outcome carries that refusal.
#[test]
fn an_acceptance_that_was_not_stored_is_refused_without_ending_the_link() {
    let mut w = world();
    let offer = w.portal.create_offer("anna", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let phone = start_link(&s, "Pixel", "493817", false, false, T0, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&phone.request).unwrap();
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 1);
    assert_eq!(out.outcome.result, Ok(Accept::Accepted));
    assert_ne!(out.if_not_stored, out.answer);
    // The writes never committed: the phone gets the late refusal.
    let e = finish_link(phone.pending, &out.if_not_stored, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal);
    let retry = e.retry.expect("INTERNAL is not final for the phone");
    // It sends the same request again; the offer is still open.
    let again = w.portal.open_link_request(retry.request()).unwrap();
    let out2 = again.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, T0 + 5);
    assert_eq!(out2.outcome.result, Ok(Accept::Accepted));
    assert_eq!(out2.if_not_stored, out.if_not_stored, "one code, one refusal");
    let linked = finish_link(retry, &out2.answer, &KEY, &mut w.rng).unwrap();
    assert_eq!(linked.info.linked_at, T0 + 5);

    // Refusals and repeats carry it too.
    let used = offer_of(&out2);
    let repeat = again.accept(&w.portal, Some(&used), DeviceKeyUse::Seen, T0 + 6);
    assert_eq!(repeat.outcome.result, Ok(Accept::Repeated));
    let other = start_link(&s, "Pixel 2", "493817", false, false, T0, &mut w.rng).unwrap();
    let refused =
        w.portal.open_link_request(&other.request).unwrap().accept(&w.portal, Some(&used), DeviceKeyUse::Fresh, T0 + 7);
    assert_eq!(code(&refused.outcome.result), ErrorCode::TokenAlreadyUsed);
    let e = finish_link(other.pending, &refused.if_not_stored, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal);
    assert!(e.retry.is_some());
    assert_eq!(repeat.if_not_stored, out.if_not_stored);
}

fn pendings_written<T>(o: &Outcome<T>) -> Vec<PendingLinkRecord> {
    o.writes.iter().filter_map(|w| if let Write::PendingLink(r) = w { Some(r.clone()) } else { None }).collect()
}

/// `confirm_any`: no waiting link, links of several accounts, one link
/// twice, a bad clock: refused, nothing written.
#[test]
fn confirm_any_refuses_without_writing() {
    let mut w = world();
    let a = link(&mut w, "anna", "Phone A", "493817", false, T0);
    let b = link(&mut w, "anna", "Phone B", "493817", false, T0);
    let other = link(&mut w, "otto", "Phone O", "493817", false, T0);
    let cc = a.linked.check_code.clone();
    let none = w.portal.confirm_any(&[], &cc, T0 + 20);
    assert_eq!(code(&none.result), ErrorCode::TokenUnknown);
    assert_eq!(none.result.unwrap_err().detail(), "no device of this account is waiting for a check code");
    assert!(none.writes.is_empty() && none.events.is_empty());
    for (list, want) in [
        (vec![a.pending.clone(), other.pending.clone()], ErrorCode::InvalidInput),
        (vec![other.pending.clone(), a.pending.clone()], ErrorCode::InvalidInput),
        (vec![a.pending.clone(), b.pending.clone(), a.pending.clone()], ErrorCode::InvalidInput),
    ] {
        let o = w.portal.confirm_any(&list, &cc, T0 + 20);
        assert_eq!(code(&o.result), want);
        assert!(o.writes.is_empty() && o.events.is_empty());
    }
    let o = w.portal.confirm_any(core::slice::from_ref(&a.pending), &cc, (T0 + 20) * 1000);
    assert_eq!(code(&o.result), ErrorCode::InvalidTime);
    assert!(o.writes.is_empty());
    // Only closed links: nothing is waiting.
    let confirmed = pendings_written(&w.portal.confirm_link(&a.pending, &cc, T0 + 20))[0].clone();
    let o = w.portal.confirm_any(core::slice::from_ref(&confirmed), &cc, T0 + 21);
    assert_eq!(code(&o.result), ErrorCode::TokenUnknown);
    assert!(o.writes.is_empty());
    // A closed link next to an open one is skipped.
    let o = w.portal.confirm_any(&[confirmed, b.pending.clone()], &b.linked.check_code, T0 + 21);
    assert_eq!(o.result.unwrap().device_id, b.pending.device_id);
}

/// Two phones wait: the code of the second confirms the second alone; the
/// first is not touched.
#[test]
fn confirm_any_confirms_only_the_link_whose_code_matches() {
    let mut w = world();
    let a = link(&mut w, "anna", "Phone A", "493817", false, T0);
    let b = link(&mut w, "anna", "Phone B", "493817", false, T0);
    assert_ne!(a.linked.check_code, b.linked.check_code);
    let pendings = [a.pending.clone(), b.pending.clone()];
    let o = w.portal.confirm_any(&pendings, &b.linked.check_code, T0 + 20);
    let rec = o.result.as_ref().unwrap().clone();
    assert_eq!((rec.device_id.as_str(), rec.name.as_str()), (b.pending.device_id.as_str(), "Phone B"));
    assert_eq!(o.writes.len(), 2);
    let written = pendings_written(&o);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].device_id, b.pending.device_id);
    assert!(matches!(written[0].state, PendingState::Confirmed { at } if at == T0 + 20));
    assert!(o.writes.iter().any(|w| matches!(w, Write::Device(d) if *d == rec)));
    assert_eq!(o.events.len(), 1);
    assert!(matches!(&o.events[0], PortalEvent::DeviceLinked { device_id, .. } if *device_id == b.pending.device_id));
    // The same as confirming the second link alone.
    let alone = w.portal.confirm_link(&b.pending, &b.linked.check_code, T0 + 20);
    assert_eq!((alone.writes, alone.events, alone.result), (o.writes, o.events, o.result));
    // The first link's code then confirms the first, next to the closed second.
    let o = w.portal.confirm_any(&[a.pending.clone(), written[0].clone()], &a.linked.check_code, T0 + 21);
    assert_eq!(o.result.unwrap().device_id, a.pending.device_id);
}

/// A wrong code counts against every waiting link, in one outcome; the
/// fifth locks them all out; an expired link is closed, and the refusal is
/// the most telling one (lock, then wrong code, then expiry).
#[test]
fn confirm_any_counts_a_wrong_code_against_every_waiting_link() {
    let mut w = world();
    let a = link(&mut w, "anna", "Phone A", "493817", false, T0);
    let b = link(&mut w, "anna", "Phone B", "493817", false, T0);
    let mut wrong = String::from("000000");
    while wrong == a.linked.check_code || wrong == b.linked.check_code {
        wrong = format!("{:06}", wrong.parse::<u32>().unwrap() + 1);
    }
    let mut pendings = vec![a.pending.clone(), b.pending.clone()];
    for i in 1..=MAX_CONFIRM_ATTEMPTS {
        let o = w.portal.confirm_any(&pendings, &wrong, T0 + 20 + u64::from(i));
        let want = if i < MAX_CONFIRM_ATTEMPTS { ErrorCode::CheckCodeMismatch } else { ErrorCode::LockedOut };
        assert_eq!(code(&o.result), want, "attempt {i}");
        assert!(o.events.is_empty());
        let written = pendings_written(&o);
        assert_eq!(o.writes.len(), 2);
        assert_eq!(
            written.iter().map(|p| p.device_id.clone()).collect::<Vec<_>>(),
            [a.pending.device_id.clone(), b.pending.device_id.clone()]
        );
        for (before, after) in pendings.iter().zip(&written) {
            assert_eq!(after.version, before.version + 1);
            assert_eq!(after.attempts(), i);
        }
        pendings = written;
    }
    assert!(pendings
        .iter()
        .all(|p| matches!(p.state, PendingState::Cancelled { reason: CancelReason::LockedOut, .. })));
    // Locked out: the right code finds nothing waiting any more.
    let o = w.portal.confirm_any(&pendings, &a.linked.check_code, T0 + 30);
    assert_eq!(code(&o.result), ErrorCode::TokenUnknown);

    // Past the deadline: every waiting link is closed as expired.
    let a = link(&mut w, "bert", "Phone A", "493817", false, T0);
    let b = link(&mut w, "bert", "Phone B", "493817", false, T0 + 100);
    let o = w.portal.confirm_any(&[a.pending.clone(), b.pending.clone()], &wrong, a.pending.confirm_by);
    // The first link expired, the second counts a wrong code: the user hears
    // the wrong code (a link still waits), whatever the order.
    assert_eq!(code(&o.result), ErrorCode::CheckCodeMismatch);
    let o2 = w.portal.confirm_any(&[b.pending.clone(), a.pending.clone()], &wrong, a.pending.confirm_by);
    assert_eq!(code(&o2.result), ErrorCode::CheckCodeMismatch);
    let written = pendings_written(&o);
    assert!(matches!(written[0].state, PendingState::Cancelled { reason: CancelReason::Expired, .. }));
    assert_eq!(written[1].state, PendingState::Open { attempts: crate::limits::Attempts::from_failures(1) });
    // The right code of the expired link does not confirm it either.
    let o = w.portal.confirm_any(core::slice::from_ref(&a.pending), &a.linked.check_code, a.pending.confirm_by);
    assert_eq!(code(&o.result), ErrorCode::TokenExpired);
}
