//! Two-party simulation of flow 1 with a virtual clock: every outcome.

use super::*;
use crate::crypto::SeededRandom;
use crate::secret::SecretBytes;
use alloc::string::ToString;
use alloc::vec::Vec;

const T0: u64 = 1_700_000_000;
const KEY: [u8; 32] = [0x42; 32];

struct World {
    portal: Portal,
    rng: SeededRandom,
}

fn world() -> World {
    let mut rng = SeededRandom::new([1; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    World { portal, rng }
}

/// Offer → request → accept → finish; returns everything.
fn link(
    w: &mut World,
    account: &str,
    name: &str,
    passcode: &str,
    bio: bool,
    now: u64,
) -> (LinkedDevice, PendingLinkRecord, Option<SecretBytes>) {
    let offer = w.portal.create_offer(account, PasscodePolicy::default(), DEFAULT_OFFER_TTL, now, &mut w.rng).unwrap();
    let scanned = scan_link_qr(&offer.qr_text, now + 5).unwrap();
    assert_eq!(scanned.portal_name, "Example Bank");
    let start = start_link(&scanned, name, passcode, bio, false, now + 10, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    assert_eq!(opened.offer_id(), offer.record.offer_id);
    let out = opened.accept(&w.portal, Some(&offer.record), now + 11);
    let accepted = out.result.unwrap();
    assert_eq!(accepted.offer.used_at, Some(now + 11));
    let linked = finish_link(start.pending, &out.answer, &KEY, &mut w.rng).unwrap();
    (linked, accepted.pending, start.biometric_secret)
}

#[test]
fn full_flow_with_check_code_and_totp() {
    let mut w = world();
    let (linked, mut pending, bio) = link(&mut w, "anna@example.org", "Anna's Pixel", "493817", true, T0);
    assert_eq!(linked.check_code.len(), 6);
    assert_eq!(linked.info.account, "anna@example.org");
    assert_eq!(linked.info.device_id, pending.device_id);
    // Wrong code first, then the right one.
    let wrong = if linked.check_code == "000000" { "000001" } else { "000000" };
    assert_eq!(w.portal.confirm_link(&mut pending, wrong, T0 + 20).unwrap_err().code(), ErrorCode::CheckCodeMismatch);
    let (mut rec, events) = w.portal.confirm_link(&mut pending, &linked.check_code, T0 + 21).unwrap();
    assert!(matches!(events[0], PortalEvent::DeviceLinked { .. }));
    assert_eq!(rec.name, "Anna's Pixel");
    // Confirming again is refused.
    assert_eq!(
        w.portal.confirm_link(&mut pending, &linked.check_code, T0 + 22).unwrap_err().code(),
        ErrorCode::InvalidState
    );

    // Flow 5: TOTP from the device, verified once.
    let state = DeviceState::open(&KEY, &linked.state).unwrap();
    let code = state.totp(UserFactor::Passcode("493817"), T0 + 100).unwrap();
    // Biometrics unlock the same answer.
    let bio = bio.unwrap();
    assert_eq!(state.totp(UserFactor::Biometric(bio.expose()), T0 + 100).unwrap(), code);
    assert!(rec.verify_totp(&code, T0 + 100).is_ok());
    assert_eq!(rec.last_used_at, Some(T0 + 100));
    assert_eq!(rec.verify_totp(&code, T0 + 100).unwrap_err().code(), ErrorCode::OtpReplayed);
    // A wrong passcode gives a code the portal refuses; with the replay
    // above that makes 5 consecutive failures, which lock the device.
    for i in 0..4u64 {
        let bad = state.totp(UserFactor::Passcode("000111"), T0 + 200 + 30 * i).unwrap();
        let e = rec.verify_totp(&bad, T0 + 200 + 30 * i).unwrap_err().code();
        // The fifth consecutive failure locks and says so.
        assert_eq!(e, if i < 3 { ErrorCode::OtpMismatch } else { ErrorCode::LockedOut });
    }
    let good = state.totp(UserFactor::Passcode("493817"), T0 + 400).unwrap();
    assert_eq!(rec.verify_totp(&good, T0 + 400).unwrap_err().code(), ErrorCode::LockedOut);
}

#[test]
fn second_scan_of_same_qr_is_refused_for_the_device() {
    let mut w = world();
    let offer = w.portal.create_offer("bob", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let a = start_link(&s, "Phone A", "493817", false, false, T0, &mut w.rng).unwrap();
    let b = start_link(&s, "Phone B", "728194", false, false, T0, &mut w.rng).unwrap();
    let first = w.portal.open_link_request(&a.request).unwrap().accept(&w.portal, Some(&offer.record), T0 + 1);
    let used = first.result.unwrap().offer;
    let second = w.portal.open_link_request(&b.request).unwrap().accept(&w.portal, Some(&used), T0 + 2);
    assert_eq!(second.result.unwrap_err().code(), ErrorCode::TokenAlreadyUsed);
    // The device app gets the typed error from the answer.
    let e = finish_link(b.pending, &second.answer, &KEY, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TokenAlreadyUsed);
    assert!(finish_link(a.pending, &first.answer, &KEY, &mut w.rng).is_ok());
}

#[test]
fn expiry_is_enforced_on_both_sides() {
    let mut w = world();
    let offer = w.portal.create_offer("carol", PasscodePolicy::default(), 60, T0, &mut w.rng).unwrap();
    assert_eq!(scan_link_qr(&offer.qr_text, T0 + 60).unwrap_err().code(), ErrorCode::TokenExpired);
    let s = scan_link_qr(&offer.qr_text, T0 + 59).unwrap();
    let start = start_link(&s, "Phone", "493817", false, false, T0 + 59, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&start.request).unwrap().accept(&w.portal, Some(&offer.record), T0 + 61);
    assert_eq!(out.result.unwrap_err().code(), ErrorCode::TokenExpired);
    assert_eq!(finish_link(start.pending, &out.answer, &KEY, &mut w.rng).unwrap_err().code(), ErrorCode::TokenExpired);
    assert_eq!(
        start_link(&s, "Phone", "493817", false, false, T0 + 60, &mut w.rng).unwrap_err().code(),
        ErrorCode::TokenExpired
    );
    assert!(w.portal.create_offer("carol", PasscodePolicy::default(), 601, T0, &mut w.rng).is_err());
    assert!(w.portal.create_offer("carol", PasscodePolicy::default(), 0, T0, &mut w.rng).is_err());
}

#[test]
fn unknown_offer_and_wrong_portal() {
    let mut w = world();
    let offer = w.portal.create_offer("dave", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    let start = start_link(&s, "Phone", "493817", false, false, T0, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&start.request).unwrap().accept(&w.portal, None, T0);
    assert_eq!(out.result.unwrap_err().code(), ErrorCode::TokenUnknown);
    assert_eq!(
        finish_link(start.pending.clone(), &out.answer, &KEY, &mut w.rng).unwrap_err().code(),
        ErrorCode::TokenUnknown
    );
    // Another portal cannot read the request.
    let other = Portal::generate("Other", &mut w.rng).unwrap();
    assert_eq!(other.open_link_request(&start.request).unwrap_err().code(), ErrorCode::MessageTampered);
}

#[test]
fn device_refuses_second_account_and_bad_passcodes() {
    let mut w = world();
    let offer = w.portal.create_offer("erin", PasscodePolicy::default(), 300, T0, &mut w.rng).unwrap();
    let s = scan_link_qr(&offer.qr_text, T0).unwrap();
    assert_eq!(
        start_link(&s, "P", "493817", false, true, T0, &mut w.rng).unwrap_err().code(),
        ErrorCode::DeviceAlreadyLinked
    );
    assert_eq!(
        start_link(&s, "P", "123456", false, false, T0, &mut w.rng).unwrap_err().code(),
        ErrorCode::WeakPasscode
    );
    assert_eq!(
        start_link(&s, "P", "12345", false, false, T0, &mut w.rng).unwrap_err().code(),
        ErrorCode::PasscodePolicy
    );
    assert_eq!(start_link(&s, "", "493817", false, false, T0, &mut w.rng).unwrap_err().code(), ErrorCode::InvalidInput);
    let nobio = PasscodePolicy { allow_biometrics: false, ..PasscodePolicy::default() };
    let o2 = w.portal.create_offer("erin", nobio, 300, T0, &mut w.rng).unwrap();
    let s2 = scan_link_qr(&o2.qr_text, T0).unwrap();
    assert_eq!(
        start_link(&s2, "P", "493817", true, false, T0, &mut w.rng).unwrap_err().code(),
        ErrorCode::PasscodePolicy
    );
}

#[test]
fn check_code_lockout_and_expiry() {
    let mut w = world();
    let (linked, mut pending, _) = link(&mut w, "frank", "Phone", "493817", false, T0);
    let wrong = if linked.check_code == "111112" { "111113" } else { "111112" };
    for _ in 0..4 {
        assert_eq!(
            w.portal.confirm_link(&mut pending, wrong, T0 + 30).unwrap_err().code(),
            ErrorCode::CheckCodeMismatch
        );
    }
    assert_eq!(w.portal.confirm_link(&mut pending, wrong, T0 + 30).unwrap_err().code(), ErrorCode::LockedOut);
    assert_eq!(
        w.portal.confirm_link(&mut pending, &linked.check_code, T0 + 31).unwrap_err().code(),
        ErrorCode::InvalidState
    );
    let (linked2, mut pending2, _) = link(&mut w, "frank", "Phone 2", "493817", false, T0);
    let late = pending2.confirm_by;
    assert_eq!(
        w.portal.confirm_link(&mut pending2, &linked2.check_code, late).unwrap_err().code(),
        ErrorCode::TokenExpired
    );
}

#[test]
fn unlink_reaches_the_device() {
    let mut w = world();
    let (linked, mut pending, _) = link(&mut w, "gina", "Phone", "493817", false, T0);
    let (mut rec, _) = w.portal.confirm_link(&mut pending, &linked.check_code, T0 + 20).unwrap();
    let state = DeviceState::open(&KEY, &linked.state).unwrap();
    // Still linked.
    let (req, probe) = state.status_request(T0 + 50, &mut w.rng).unwrap();
    let opened = w.portal.open_status_request(&req).unwrap();
    assert_eq!(opened.device_id(), rec.device_id);
    let ans = opened.answer(&mut rec, T0 + 50).unwrap();
    assert!(state.read_status_answer(&probe, &ans).is_ok());
    assert_eq!(rec.last_used_at, Some(T0 + 50));
    // Rename, unlink (device absent), and the device learns it.
    rec.rename("Lost phone", T0 + 60).unwrap();
    assert!(matches!(rec.unlink(T0 + 70).unwrap(), PortalEvent::DeviceUnlinked { .. }));
    assert_eq!(rec.unlink(T0 + 71).unwrap_err().code(), ErrorCode::InvalidState);
    let (req, probe) = state.status_request(T0 + 80, &mut w.rng).unwrap();
    let ans = w.portal.open_status_request(&req).unwrap().answer(&mut rec, T0 + 80).unwrap();
    assert_eq!(state.read_status_answer(&probe, &ans).unwrap_err().code(), ErrorCode::DeviceRevoked);
    let code = state.totp(UserFactor::Passcode("493817"), T0 + 90).unwrap();
    assert_eq!(rec.verify_totp(&code, T0 + 90).unwrap_err().code(), ErrorCode::DeviceRevoked);
    // A forged answer is rejected.
    let mut forged = crate::wire::from_text(&ans).unwrap();
    forged[18] = 0;
    let forged = crate::wire::to_text(&forged);
    assert_eq!(state.read_status_answer(&probe, &forged).unwrap_err().code(), ErrorCode::MessageTampered);
}

#[test]
fn several_devices_per_account_have_distinct_ids() {
    let mut w = world();
    let (a, _, _) = link(&mut w, "hana", "Phone", "493817", false, T0);
    let (b, _, _) = link(&mut w, "hana", "Tablet", "493817", false, T0);
    assert_ne!(a.info.device_id, b.info.device_id);
}

#[test]
fn stored_blobs_reject_tampering_and_other_keys() {
    let mut w = world();
    let (linked, pending, _) = link(&mut w, "ivan", "Phone", "493817", false, T0);
    for i in 0..linked.state.len() {
        let mut t = linked.state.clone();
        t[i] ^= 0x01;
        let code = DeviceState::open(&KEY, &t).unwrap_err().code();
        assert!(
            matches!(code, ErrorCode::StateCorrupt | ErrorCode::WrongMessageKind | ErrorCode::UnsupportedVersion),
            "{i}"
        );
    }
    assert_eq!(DeviceState::open(&[0; 32], &linked.state).unwrap_err().code(), ErrorCode::StateCorrupt);
    assert_eq!(DeviceState::open(&KEY, &linked.state[..10]).unwrap_err().code(), ErrorCode::StateCorrupt);
    let sealed = w.portal.seal_record(&pending, &mut w.rng);
    let back: PendingLinkRecord = w.portal.open_record(&sealed).unwrap();
    assert_eq!(back, pending);
    let mut t = sealed.clone();
    let n = t.len() - 1;
    t[n] ^= 0x80;
    assert_eq!(w.portal.open_record::<PendingLinkRecord>(&t).unwrap_err().code(), ErrorCode::StateCorrupt);
    // A pending-link record cannot be opened as another record type.
    assert_eq!(w.portal.open_record::<DeviceRecord>(&sealed).unwrap_err().code(), ErrorCode::StateCorrupt);
    assert_eq!(w.portal.open_record::<LinkOfferRecord>(&sealed).unwrap_err().code(), ErrorCode::StateCorrupt);
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
    // A request text scanned as a QR: wrong kind; garbage: malformed; future version: unsupported.
    let bytes = crate::wire::from_qr_text(&offer.qr_text).unwrap();
    let mut other = bytes.clone();
    other[0] = 0x20;
    assert_eq!(scan_link_qr(&crate::wire::to_qr_text(&other), T0).unwrap_err().code(), ErrorCode::WrongMessageKind);
    let mut v2 = bytes.clone();
    v2[1] = 2;
    assert_eq!(scan_link_qr(&crate::wire::to_qr_text(&v2), T0).unwrap_err().code(), ErrorCode::UnsupportedVersion);
    assert_eq!(scan_link_qr("hello", T0).unwrap_err().code(), ErrorCode::MalformedMessage);
    let t = offer.qr_text.to_string();
    assert_eq!(scan_link_qr(&t[..t.len() - 6], T0).unwrap_err().code(), ErrorCode::MalformedMessage);
}

#[test]
fn debug_never_shows_secrets() {
    let mut w = world();
    let (linked, pending, bio) = link(&mut w, "jon", "Phone", "493817", true, T0);
    let state = DeviceState::open(&KEY, &linked.state).unwrap();
    let dbg: Vec<alloc::string::String> = alloc::vec![
        alloc::format!("{state:?}"),
        alloc::format!("{pending:?}"),
        alloc::format!("{:?}", bio.unwrap()),
        alloc::format!("{:?}", w.portal),
    ];
    for d in dbg {
        assert!(!d.contains(&linked.check_code), "{d}");
        assert!(!d.contains("493817"), "{d}");
    }
}
