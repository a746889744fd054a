//! Challenge/response end to end with a virtual clock, and the attacks:
//! a changed amount, a wrong passcode, another device, a replayed or late
//! answer, guessing until the lock, a cloned device, and flow 2.

use super::*;
use crate::crypto::SeededRandom;
use crate::host::{Outcome, Write};
use crate::link::*;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

const T0: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x42; 32];
const PASS: &str = "493817";

struct World {
    portal: Portal,
    rng: SeededRandom,
}

struct Phone {
    state: DeviceState,
    record: DeviceRecord,
}

fn world() -> World {
    let mut rng = SeededRandom::new([1; 32]);
    World { portal: Portal::generate("Example Bank", &mut rng).unwrap(), rng }
}

fn link(w: &mut World, account: &str, name: &str, now: u64) -> Phone {
    let offer = w.portal.create_offer(account, PasscodePolicy::default(), DEFAULT_OFFER_TTL, now, &mut w.rng).unwrap();
    let scanned = scan_link_qr(&offer.qr_text, now).unwrap();
    let start = start_link(&scanned, name, PASS, false, false, now, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, now);
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
        .unwrap();
    let linked = finish_link(start.pending, &out.answer, &KEY, &mut w.rng).unwrap();
    let record = w.portal.confirm_link(&pending, &linked.check_code, now + 1).result.unwrap();
    Phone { state: DeviceState::open(&KEY, &linked.state).unwrap(), record }
}

fn tx(amount: &str, payee: &str) -> Approval {
    Approval::Transaction(Transaction {
        amount: Amount::parse(amount).unwrap(),
        currency: "EUR".into(),
        payee: payee.into(),
        text: vec!["Invoice 2026-118".into()],
    })
}

fn challenge_of<T>(o: &Outcome<T>) -> Option<ChallengeRecord> {
    o.writes.iter().find_map(|x| if let Write::Challenge(c) = x { Some(c.clone()) } else { None })
}

fn device_of<T>(o: &Outcome<T>, id: &str) -> Option<DeviceRecord> {
    o.writes.iter().find_map(|x| match x {
        Write::Device(d) if d.device_id == id => Some(d.clone()),
        _ => None,
    })
}

/// A login answered with the passcode: the device becomes `proven`.
fn log_in(w: &mut World, phone: &mut Phone, at: u64) {
    let d = core::slice::from_ref(&phone.record);
    let c = w.portal.create_challenge(d, Approval::Login, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    let seen = phone.state.read_challenge(&c.qr_text, at).unwrap();
    let typed = phone.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    let o = w.portal.verify_answer(&c.record, d, &typed, at + 1);
    phone.record = device_of(&o, &phone.record.device_id).unwrap();
}

/// Flow 2: a device named `name` links to `phone`'s account from an offer
/// for a new device (at `at`, accepted at `at + 1`); its pending link.
fn new_device_link(w: &mut World, phone: &Phone, name: &str, at: u64) -> PendingLinkRecord {
    let d = core::slice::from_ref(&phone.record);
    let offer = w
        .portal
        .create_offer_for_new_device(&phone.record.account, d, OfferOptions::default(), at, &mut w.rng)
        .unwrap();
    let start =
        start_link(&scan_link_qr(&offer.qr_text, at).unwrap(), name, "730241", false, false, at, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&start.request).unwrap().accept(
        &w.portal,
        Some(&offer.record),
        DeviceKeyUse::Fresh,
        at + 1,
    );
    out.outcome.writes.iter().find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None }).unwrap()
}

fn code<T: core::fmt::Debug>(r: &crate::Result<T>) -> ErrorCode {
    r.as_ref().unwrap_err().code()
}

fn other_code(c: &str) -> String {
    let first = if c.as_bytes()[0] == b'1' { '2' } else { '1' };
    let mut s = String::new();
    s.push(first);
    s.push_str(&c[1..]);
    s
}

#[test]
fn login_and_transaction_typed_answers() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    for approval in [Approval::Login, tx("125.50", "ACME Energy Ltd")] {
        let c = w
            .portal
            .create_challenge(
                &[anna.record.clone()],
                approval.clone(),
                ChallengeSettings::default(),
                T0 + 10,
                &mut w.rng,
            )
            .unwrap();
        assert!(c.qr_text.starts_with("TS:"));
        let seen = anna.state.read_challenge(&c.qr_text, T0 + 12).unwrap();
        assert_eq!(seen.approval, approval);
        assert_eq!(seen.portal_name, "Example Bank");
        assert_eq!(seen.challenge_id, c.record.challenge_id);
        let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
        assert_eq!(typed.len(), 8);
        let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &typed, T0 + 20);
        assert_eq!(o.result.as_ref().unwrap().device_id, anna.record.device_id);
        let answered = challenge_of(&o).unwrap();
        assert_eq!(answered.version, 2);
        anna.record = device_of(&o, &anna.record.device_id).unwrap();
        assert!(anna.record.proven);
        // Single use: the same code again, from any server's fresh read.
        let again = w.portal.verify_answer(&answered, &[anna.record.clone()], &typed, T0 + 21);
        assert_eq!(code(&again.result), ErrorCode::TokenAlreadyUsed);
        assert!(again.writes.is_empty());
    }
    assert_eq!(Amount::parse("125.50").unwrap().to_string(), "125.50");
}

#[test]
fn a_changed_amount_or_payee_changes_the_code() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let real = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            tx("125.50", "ACME"),
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    for fake in [tx("9125.50", "ACME"), tx("125.50", "Mallory"), tx("125.5", "ACME")] {
        let shown = w
            .portal
            .create_challenge(core::slice::from_ref(&anna.record), fake, ChallengeSettings::default(), T0, &mut w.rng)
            .unwrap();
        let seen = anna.state.read_challenge(&shown.qr_text, T0).unwrap();
        let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
        assert_eq!(
            code(&w.portal.verify_answer(&real.record, core::slice::from_ref(&anna.record), &typed, T0 + 1).result),
            ErrorCode::InvalidAnswer
        );
    }
}

#[test]
fn any_changed_byte_of_the_qr_is_refused_never_a_panic() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let c = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            tx("125.50", "ACME Energy Ltd"),
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    let bytes = crate::wire::from_qr_text(&c.qr_text).unwrap();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let r = anna.state.read_challenge(&crate::wire::to_qr_text(&b), T0);
        assert!(r.is_err(), "byte {i}");
    }
    for n in 0..bytes.len() {
        assert!(anna.state.read_challenge(&crate::wire::to_qr_text(&bytes[..n]), T0).is_err(), "truncated to {n}");
    }
}

#[test]
fn only_the_accounts_devices_can_read_it() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let anna2 = link(&mut w, "anna@example.org", "Anna's iPad", T0);
    let bob = link(&mut w, "bob@example.org", "Bob's phone", T0);
    let c = w
        .portal
        .create_challenge(
            &[anna.record.clone(), anna2.record.clone()],
            Approval::Login,
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(code(&bob.state.read_challenge(&c.qr_text, T0)), ErrorCode::NotForThisDevice);
    // Either of Anna's devices answers; the code of one is not the other's.
    let s2 = anna2.state.read_challenge(&c.qr_text, T0).unwrap();
    let typed = anna2.state.answer_code(&s2, UserFactor::Passcode(PASS)).unwrap();
    let devices = [anna.record.clone(), anna2.record.clone()];
    let o = w.portal.verify_answer(&c.record, &devices, &typed, T0 + 1);
    assert_eq!(o.result.unwrap().device_id, anna2.record.device_id);
    // Only Anna's Pixel was named: the iPad cannot read it.
    let only = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(code(&anna2.state.read_challenge(&only.qr_text, T0)), ErrorCode::NotForThisDevice);
    // Bob's code for his own challenge is no answer to Anna's.
    let cb = w
        .portal
        .create_challenge(
            core::slice::from_ref(&bob.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    let bob_code =
        bob.state.answer_code(&bob.state.read_challenge(&cb.qr_text, T0).unwrap(), UserFactor::Passcode(PASS)).unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&only.record, core::slice::from_ref(&anna.record), &bob_code, T0 + 1).result),
        ErrorCode::InvalidAnswer
    );
}

#[test]
fn unlinked_devices_are_left_out_and_refused() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let c = w
        .portal
        .create_challenge(&[anna.record.clone()], Approval::Login, ChallengeSettings::default(), T0, &mut w.rng)
        .unwrap();
    let seen = anna.state.read_challenge(&c.qr_text, T0).unwrap();
    let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    let o = anna.record.unlink(T0 + 1);
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&c.record, &[anna.record.clone()], &typed, T0 + 2).result),
        ErrorCode::DeviceRevoked
    );
    let r = w.portal.create_challenge(
        &[anna.record.clone()],
        Approval::Login,
        ChallengeSettings::default(),
        T0 + 3,
        &mut w.rng,
    );
    assert_eq!(code(&r), ErrorCode::DeviceRevoked);
    assert_eq!(
        code(&w.portal.create_challenge(&[], Approval::Login, ChallengeSettings::default(), T0, &mut w.rng)),
        ErrorCode::DeviceUnknown
    );
}

#[test]
fn expiry_on_both_sides() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let c = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    let seen = anna.state.read_challenge(&c.qr_text, T0 + 299).unwrap();
    let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&c.record, core::slice::from_ref(&anna.record), &typed, T0 + 300).result),
        ErrorCode::TokenExpired
    );
    assert!(w.portal.verify_answer(&c.record, core::slice::from_ref(&anna.record), &typed, T0 + 299).result.is_ok());
    assert_eq!(code(&anna.state.read_challenge(&c.qr_text, T0 + 300 + CHALLENGE_SKEW)), ErrorCode::TokenExpired);
}

#[test]
fn five_wrong_answers_lock_the_device_and_its_codes_a_success_resets() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let new = |w: &mut World, d: &DeviceRecord| {
        w.portal
            .create_challenge(core::slice::from_ref(d), Approval::Login, ChallengeSettings::default(), T0, &mut w.rng)
            .unwrap()
    };
    // 4 failures (a wrong passcode, a wrong code, a code of wrong length, garbage digits), then a success resets.
    let c = new(&mut w, &anna.record);
    let seen = anna.state.read_challenge(&c.qr_text, T0).unwrap();
    let right = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    let wrong_pass = anna.state.answer_code(&seen, UserFactor::Passcode("493818")).unwrap();
    assert_ne!(wrong_pass, right);
    for bad in [wrong_pass.as_str(), &other_code(&right), "1234567", "123456789"] {
        let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], bad, T0 + 1);
        assert_eq!(code(&o.result), ErrorCode::InvalidAnswer, "{bad}");
        anna.record = device_of(&o, &anna.record.device_id).unwrap();
    }
    assert_eq!(anna.record.otp_state.throttle.failures(), 4);
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &right, T0 + 2);
    assert!(o.result.is_ok());
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    assert_eq!(anna.record.otp_state.throttle.failures(), 0);
    // Five failures lock: the fifth says LOCKED_OUT, and the right code no longer helps.
    let c = new(&mut w, &anna.record);
    let right = anna
        .state
        .answer_code(&anna.state.read_challenge(&c.qr_text, T0).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    for i in 0..5 {
        let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &other_code(&right), T0 + 3);
        assert_eq!(code(&o.result), if i < 4 { ErrorCode::InvalidAnswer } else { ErrorCode::LockedOut });
        if i == 4 {
            assert!(o.events.iter().any(|e| matches!(e, PortalEvent::DeviceLocked { .. })));
        }
        anna.record = device_of(&o, &anna.record.device_id).unwrap();
    }
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &right, T0 + 4);
    assert_eq!(code(&o.result), ErrorCode::LockedOut);
    assert!(o.writes.is_empty());
    // The same lock covers the device's time-based codes.
    let totp = anna.state.totp(UserFactor::Passcode(PASS), T0 + 4).unwrap();
    assert_eq!(code(&anna.record.verify_totp(&totp, T0 + 4).result), ErrorCode::LockedOut);
    // Unlock (the user re-identified): the right code works again.
    let u = anna.record.unlock(T0 + 5);
    anna.record = device_of(&u, &anna.record.device_id).unwrap();
    assert!(w.portal.verify_answer(&c.record, &[anna.record.clone()], &right, T0 + 6).result.is_ok());
    assert_eq!(code(&anna.record.unlock(T0 + 7).result), ErrorCode::InvalidState);
}

#[test]
fn signed_answers_and_a_cloned_device() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let clone = DeviceState::open(&KEY, &anna.state.seal(&KEY, &mut w.rng)).unwrap();
    let mut c = w
        .portal
        .create_challenge(&[anna.record.clone()], tx("10.00", "ACME"), ChallengeSettings::default(), T0, &mut w.rng)
        .unwrap();
    let seen = anna.state.read_challenge(&c.qr_text, T0).unwrap();
    let signed = anna.state.answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut w.rng).unwrap();
    anna.state = DeviceState::open(&KEY, &signed.state).unwrap();
    // A wrong passcode signs something the portal refuses, counted.
    let bad = anna.state.answer_signed(&seen, UserFactor::Passcode("493818"), &KEY, &mut w.rng).unwrap();
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &bad.answer, T0 + 1);
    assert_eq!(code(&o.result), ErrorCode::InvalidAnswer);
    assert_eq!(device_of(&o, &anna.record.device_id).unwrap().otp_state.throttle.failures(), 1);
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &signed.answer, T0 + 1);
    assert!(o.result.is_ok());
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    assert_eq!(anna.record.signed_counter, Some(1));
    // A tampered signed answer: refused, never a panic.
    let raw = crate::wire::from_text(&signed.answer).unwrap();
    for i in 0..raw.len() {
        let mut b = raw.clone();
        b[i] ^= 0x80;
        assert!(w
            .portal
            .verify_answer(&c.record, &[anna.record.clone()], &crate::wire::to_text(&b), T0 + 1)
            .result
            .is_err());
    }
    // The clone still has counter 0: its next answer (counter 1), to a
    // challenge made after the genuine counter 1 was accepted (beyond the
    // clock skew), shows it up.
    c = w
        .portal
        .create_challenge(&[anna.record.clone()], Approval::Login, ChallengeSettings::default(), T0 + 301, &mut w.rng)
        .unwrap();
    let seen = clone.read_challenge(&c.qr_text, T0 + 302).unwrap();
    let cloned = clone.answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut w.rng).unwrap();
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone()], &cloned.answer, T0 + 303);
    assert_eq!(code(&o.result), ErrorCode::DeviceCloned);
    assert!(o.events.iter().any(|e| matches!(e, PortalEvent::DeviceCloneSuspected { .. })));
    // The device is flagged for good: the caught copy's next try, the genuine
    // phone, its time-based codes and an unlock are all refused; only
    // unlinking (and linking again) ends it.
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    assert!(anna.record.clone_suspected);
    let again = clone.answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut w.rng).unwrap();
    let again2 = DeviceState::open(&KEY, &again.state)
        .unwrap()
        .answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut w.rng)
        .unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&c.record, &[anna.record.clone()], &again2.answer, T0 + 304).result),
        ErrorCode::DeviceCloned
    );
    let ok = anna
        .state
        .answer_signed(
            &anna.state.read_challenge(&c.qr_text, T0 + 303).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&c.record, &[anna.record.clone()], &ok.answer, T0 + 304).result),
        ErrorCode::DeviceCloned
    );
    let totp = anna.state.totp(UserFactor::Passcode(PASS), T0 + 305).unwrap();
    assert_eq!(code(&anna.record.verify_totp(&totp, T0 + 305).result), ErrorCode::DeviceCloned);
    assert_eq!(code(&anna.record.unlock(T0 + 306).result), ErrorCode::InvalidState);
}

/// A signed answer from the clone and the genuine phone: whichever order,
/// the second of two answers with one counter is a clone, however soon.
#[test]
fn one_counter_signed_twice_or_far_below_is_a_clone_at_once() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let mut clone = DeviceState::open(&KEY, &anna.state.seal(&KEY, &mut w.rng)).unwrap();
    let new = |w: &mut World, d: &DeviceRecord, at| {
        w.portal
            .create_challenge(core::slice::from_ref(d), Approval::Login, ChallengeSettings::default(), at, &mut w.rng)
            .unwrap()
    };
    let x = new(&mut w, &anna.record, T0 + 10);
    let s = clone
        .answer_signed(
            &clone.read_challenge(&x.qr_text, T0 + 10).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    clone = DeviceState::open(&KEY, &s.state).unwrap();
    let o = w.portal.verify_answer(&x.record, core::slice::from_ref(&anna.record), &s.answer, T0 + 11);
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    // 20 s later the genuine phone signs counter 1 too.
    let y = new(&mut w, &anna.record, T0 + 30);
    let g = anna
        .state
        .answer_signed(
            &anna.state.read_challenge(&y.qr_text, T0 + 30).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&y.record, core::slice::from_ref(&anna.record), &g.answer, T0 + 31).result),
        ErrorCode::DeviceCloned
    );
    // A copy far ahead makes the genuine phone's counter fall 8 or more
    // behind: caught on the genuine phone's next answer, however soon.
    let mut w2 = world();
    let mut bob = link(&mut w2, "bob@example.org", "Bob's phone", T0);
    let mut ahead = DeviceState::open(&KEY, &bob.state.seal(&KEY, &mut w2.rng)).unwrap();
    ahead.signed_counter = 1_000;
    let x = new(&mut w2, &bob.record, T0 + 10);
    let s = ahead
        .answer_signed(
            &ahead.read_challenge(&x.qr_text, T0 + 10).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w2.rng,
        )
        .unwrap();
    let o = w2.portal.verify_answer(&x.record, core::slice::from_ref(&bob.record), &s.answer, T0 + 11);
    bob.record = device_of(&o, &bob.record.device_id).unwrap();
    let y = new(&mut w2, &bob.record, T0 + 12);
    let g = bob
        .state
        .answer_signed(
            &bob.state.read_challenge(&y.qr_text, T0 + 12).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w2.rng,
        )
        .unwrap();
    let o = w2.portal.verify_answer(&y.record, core::slice::from_ref(&bob.record), &g.answer, T0 + 13);
    assert_eq!(code(&o.result), ErrorCode::DeviceCloned);
    assert!(o.events.iter().any(|e| matches!(e, PortalEvent::DeviceCloneSuspected { .. })));
    let _ = &mut clone;
}

#[test]
fn oversized_challenges_and_doubled_devices_are_refused_before_any_work() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let c = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    let b = crate::wire::from_qr_text(&c.qr_text).unwrap();
    let mut big = Vec::from(&b[..18]);
    big.push(4);
    for _ in 0..4 {
        big.extend_from_slice(&b[19..39]);
    }
    big.resize(big.len() + 100_000, 0);
    assert_eq!(code(&anna.state.read_challenge(&crate::wire::to_qr_text(&big), T0)), ErrorCode::MalformedMessage);
    let o = w.portal.verify_answer(&c.record, &[anna.record.clone(), anna.record.clone()], "00000000", T0 + 1);
    assert_eq!(code(&o.result), ErrorCode::InvalidInput);
    assert!(o.writes.is_empty());
}

#[test]
fn signed_answers_that_arrive_out_of_order_are_not_a_clone() {
    // Two open challenges (two tabs): the phone signs c1 (counter 1), then
    // c2 (counter 2); c2's answer arrives first.
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let new = |w: &mut World, d: &DeviceRecord, at| {
        w.portal
            .create_challenge(core::slice::from_ref(d), Approval::Login, ChallengeSettings::default(), at, &mut w.rng)
            .unwrap()
    };
    let c1 = new(&mut w, &anna.record, T0 + 10);
    let c2 = new(&mut w, &anna.record, T0 + 11);
    let s1 = anna
        .state
        .answer_signed(
            &anna.state.read_challenge(&c1.qr_text, T0 + 12).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    anna.state = DeviceState::open(&KEY, &s1.state).unwrap();
    let s2 = anna
        .state
        .answer_signed(
            &anna.state.read_challenge(&c2.qr_text, T0 + 13).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    anna.state = DeviceState::open(&KEY, &s2.state).unwrap();
    let o = w.portal.verify_answer(&c2.record, core::slice::from_ref(&anna.record), &s2.answer, T0 + 14);
    anna.record = device_of(&o, &anna.record.device_id).unwrap();
    let late = w.portal.verify_answer(&c1.record, core::slice::from_ref(&anna.record), &s1.answer, T0 + 15);
    assert_eq!(code(&late.result), ErrorCode::InvalidAnswer, "stale, not a clone");
    assert!(late.writes.is_empty() && late.events.is_empty(), "nothing counted, no alarm");
    // Answered again, it is accepted (counter 3).
    let s3 = anna
        .state
        .answer_signed(
            &anna.state.read_challenge(&c1.qr_text, T0 + 16).unwrap(),
            UserFactor::Passcode(PASS),
            &KEY,
            &mut w.rng,
        )
        .unwrap();
    assert!(w
        .portal
        .verify_answer(&c1.record, core::slice::from_ref(&anna.record), &s3.answer, T0 + 17)
        .result
        .is_ok());
}

#[test]
fn a_link_challenge_approves_no_login_and_wrong_vouches_never_lock_the_authenticator() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    log_in(&mut w, &mut anna, T0 + 1);
    // A stranger starts a link for Anna's account.
    let mut pending = new_device_link(&mut w, &anna, "Evil", T0 + 10);
    // Link challenges have at least 8 digits.
    let short = ChallengeSettings { digits: 6, ..ChallengeSettings::default() };
    assert_eq!(
        code(&w.portal.create_link_challenge(
            &pending,
            core::slice::from_ref(&anna.record),
            short,
            T0 + 12,
            &mut w.rng
        )),
        ErrorCode::InvalidDigits
    );
    let vc = w
        .portal
        .create_link_challenge(
            &pending,
            core::slice::from_ref(&anna.record),
            ChallengeSettings::default(),
            T0 + 12,
            &mut w.rng,
        )
        .unwrap();
    // The vouch code is no login approval.
    let vouch = anna
        .state
        .answer_code(&anna.state.read_challenge(&vc.qr_text, T0 + 13).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    assert_eq!(
        code(&w.portal.verify_answer(&vc.record, core::slice::from_ref(&anna.record), &vouch, T0 + 13).result),
        ErrorCode::InvalidState
    );
    // Five wrong vouch codes close the link; Anna's device is never touched.
    for i in 0..5 {
        let o = w.portal.confirm_with_authenticator(
            &pending,
            &vc.record,
            core::slice::from_ref(&anna.record),
            &other_code(&vouch),
            T0 + 14,
        );
        assert_eq!(code(&o.result), if i < 4 { ErrorCode::InvalidAnswer } else { ErrorCode::LockedOut });
        let d = device_of(&o, &anna.record.device_id).unwrap();
        assert_eq!(
            (d.vouch_failures, d.otp_state.throttle.failures()),
            (i + 1, 0),
            "the vouch budget, not the lockout"
        );
        anna.record = d;
        pending =
            o.writes.iter().find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None }).unwrap();
    }
    assert!(pending.is_closed());
    assert_eq!(
        code(
            &w.portal
                .confirm_with_authenticator(&pending, &vc.record, core::slice::from_ref(&anna.record), &vouch, T0 + 15)
                .result
        ),
        ErrorCode::InvalidState
    );
    let login = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0 + 16,
            &mut w.rng,
        )
        .unwrap();
    let ok = anna
        .state
        .answer_code(&anna.state.read_challenge(&login.qr_text, T0 + 16).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    assert!(w.portal.verify_answer(&login.record, core::slice::from_ref(&anna.record), &ok, T0 + 17).result.is_ok());
}

#[test]
fn no_link_challenge_after_the_links_deadline() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    log_in(&mut w, &mut anna, T0 + 1);
    let pending = new_device_link(&mut w, &anna, "iPad", T0 + 10);
    let at = pending.confirm_by;
    assert_eq!(
        code(&w.portal.create_link_challenge(
            &pending,
            core::slice::from_ref(&anna.record),
            ChallengeSettings::default(),
            at,
            &mut w.rng
        )),
        ErrorCode::TokenExpired
    );
    let zero = ChallengeSettings { ttl: 0, ..ChallengeSettings::default() };
    assert_eq!(
        code(&w.portal.create_link_challenge(&pending, core::slice::from_ref(&anna.record), zero, at - 10, &mut w.rng)),
        ErrorCode::InvalidInput
    );
    let late = w
        .portal
        .create_link_challenge(
            &pending,
            core::slice::from_ref(&anna.record),
            ChallengeSettings::default(),
            at - 10,
            &mut w.rng,
        )
        .unwrap();
    assert_eq!(late.record.expires_at, at, "a link challenge ends with its link");
}

#[test]
fn the_code_covers_what_the_stored_record_approves() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let c = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            tx("10.00", "ACME"),
            ChallengeSettings::default(),
            T0,
            &mut w.rng,
        )
        .unwrap();
    let typed = anna
        .state
        .answer_code(&anna.state.read_challenge(&c.qr_text, T0).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    let mut edited = c.record.clone();
    edited.approval = tx("9999.00", "Mallory");
    assert_eq!(
        code(&w.portal.verify_answer(&edited, core::slice::from_ref(&anna.record), &typed, T0 + 1).result),
        ErrorCode::InvalidAnswer
    );
    let mut digits = c.record.clone();
    digits.digits = 64;
    assert_eq!(
        code(&w.portal.verify_answer(&digits, core::slice::from_ref(&anna.record), "1", T0 + 1).result),
        ErrorCode::StateCorrupt
    );
    assert!(w.portal.verify_answer(&c.record, core::slice::from_ref(&anna.record), &typed, T0 + 1).result.is_ok());
    // Amounts from storage print without panicking, whatever they hold.
    let odd: Amount = postcard::from_bytes(&[0xff, 0xff, 0xff, 0xff, 0x0f, 200]).unwrap();
    let _ = alloc::format!("{odd}");
}

#[test]
fn link_a_new_device_from_an_existing_authenticator() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let opts = OfferOptions::default();
    // Never used: cannot vouch.
    let r = w.portal.create_offer_for_new_device("anna@example.org", &[anna.record.clone()], opts, T0 + 5, &mut w.rng);
    assert_eq!(code(&r), ErrorCode::AuthenticatorNeverUsed);
    assert_eq!(
        code(&w.portal.create_offer_for_new_device("nobody", &[anna.record.clone()], opts, T0, &mut w.rng)),
        ErrorCode::DeviceUnknown
    );
    // One login makes it a proven authenticator.
    let c = w
        .portal
        .create_challenge(&[anna.record.clone()], Approval::Login, ChallengeSettings::default(), T0 + 6, &mut w.rng)
        .unwrap();
    let typed = anna
        .state
        .answer_code(&anna.state.read_challenge(&c.qr_text, T0 + 6).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    anna.record =
        device_of(&w.portal.verify_answer(&c.record, &[anna.record.clone()], &typed, T0 + 7), &anna.record.device_id)
            .unwrap();
    // The new device gets the offer over the network and links as usual.
    let offer = w
        .portal
        .create_offer_for_new_device("anna@example.org", &[anna.record.clone()], opts, T0 + 10, &mut w.rng)
        .unwrap();
    let scanned = scan_link_qr_pinned(&offer.qr_text, &w.portal.public_key(), T0 + 10).unwrap();
    let start = start_link(&scanned, "Anna's iPad", "730241", false, false, T0 + 11, &mut w.rng).unwrap();
    let out = w.portal.open_link_request(&start.request).unwrap().accept(
        &w.portal,
        Some(&offer.record),
        DeviceKeyUse::Fresh,
        T0 + 12,
    );
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
        .unwrap();
    assert_eq!(pending.confirm, ConfirmMethod::Authenticator);
    let ipad = finish_link(start.pending, &out.answer, &KEY, &mut w.rng).unwrap();
    // Its check code confirms nothing: only the authenticator can.
    assert_eq!(code(&w.portal.confirm_link(&pending, &ipad.check_code, T0 + 13).result), ErrorCode::InvalidState);
    assert_eq!(
        code(&w.portal.confirm_any(core::slice::from_ref(&pending), &ipad.check_code, T0 + 13).result),
        ErrorCode::TokenUnknown
    );
    // The portal sends the new device a challenge for Anna's Pixel.
    let vc = w
        .portal
        .create_link_challenge(&pending, &[anna.record.clone()], ChallengeSettings::default(), T0 + 14, &mut w.rng)
        .unwrap();
    let seen = anna.state.read_challenge(&vc.qr_text, T0 + 15).unwrap();
    assert_eq!(
        seen.approval,
        Approval::LinkDevice { device_name: "Anna's iPad".into(), device_id: pending.device_id.clone() }
    );
    let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    // A wrong code counts on the voucher.
    let o =
        w.portal.confirm_with_authenticator(&pending, &vc.record, &[anna.record.clone()], &other_code(&typed), T0 + 16);
    assert_eq!(code(&o.result), ErrorCode::InvalidAnswer);
    // The right one links the iPad.
    let o = w.portal.confirm_with_authenticator(&pending, &vc.record, &[anna.record.clone()], &typed, T0 + 17);
    let rec = o.result.as_ref().unwrap();
    assert_eq!(rec.name, "Anna's iPad");
    assert!(!rec.proven);
    assert!(o.events.iter().any(|e| matches!(e, PortalEvent::DeviceLinked { .. })));
    assert_eq!(o.writes.len(), 4);
    // A challenge of another link, or a login challenge, vouches for nothing.
    let login = w
        .portal
        .create_challenge(&[anna.record.clone()], Approval::Login, ChallengeSettings::default(), T0 + 18, &mut w.rng)
        .unwrap();
    assert_eq!(
        code(
            &w.portal
                .confirm_with_authenticator(&pending, &login.record, &[anna.record.clone()], &typed, T0 + 19)
                .result
        ),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(&w.portal.create_challenge(
            &[anna.record.clone()],
            Approval::LinkDevice { device_name: "x".into(), device_id: "00".repeat(8) },
            ChallengeSettings::default(),
            T0,
            &mut w.rng
        )),
        ErrorCode::InvalidInput
    );
}

#[test]
fn a_transaction_for_one_device_fits_qr_version_8_m() {
    // Version 8-M holds 152 alphanumeric characters... checked with a real
    // encoder in cli/tests; here the byte budget: 122 bytes = 183 characters.
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    let payee: String = "P".repeat(40);
    let a = Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee,
        text: Vec::new(),
    });
    let c = w
        .portal
        .create_challenge(core::slice::from_ref(&anna.record), a, ChallengeSettings::default(), T0, &mut w.rng)
        .unwrap();
    assert!(c.qr_text.len() <= 180, "{}", c.qr_text.len());
}

#[test]
fn amounts_parse_canonically() {
    for ok in ["0", "1", "125.50", "0.125", "999999999999999"] {
        assert_eq!(Amount::parse(ok).unwrap().to_string(), ok);
    }
    for bad in ["", ".5", "5.", "01", "-1", "1.2345", "1,50", "1e3", "1 000", "9999999999999999"] {
        assert_eq!(Amount::parse(bad).unwrap_err().code(), ErrorCode::InvalidInput, "{bad}");
    }
}

#[test]
fn settings_are_checked() {
    let mut w = world();
    let anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    for (digits, ttl, want) in [
        (5, 300, ErrorCode::InvalidDigits),
        (11, 300, ErrorCode::InvalidDigits),
        (8, 0, ErrorCode::InvalidInput),
        (8, 901, ErrorCode::InvalidInput),
    ] {
        let r = w.portal.create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings { digits, ttl },
            T0,
            &mut w.rng,
        );
        assert_eq!(code(&r), want);
    }
    for digits in 6..=10u8 {
        let c = w
            .portal
            .create_challenge(
                core::slice::from_ref(&anna.record),
                Approval::Login,
                ChallengeSettings { digits, ttl: 60 },
                T0,
                &mut w.rng,
            )
            .unwrap();
        let typed = anna
            .state
            .answer_code(&anna.state.read_challenge(&c.qr_text, T0).unwrap(), UserFactor::Passcode(PASS))
            .unwrap();
        assert_eq!(typed.len(), usize::from(digits));
        assert!(w.portal.verify_answer(&c.record, core::slice::from_ref(&anna.record), &typed, T0).result.is_ok());
    }
    let _ = ToString::to_string(&1);
}

#[test]
fn an_authenticator_absorbs_at_most_20_wrong_vouch_codes_across_links() {
    let mut w = world();
    let mut anna = link(&mut w, "anna@example.org", "Anna's Pixel", T0);
    log_in(&mut w, &mut anna, T0 + 1);
    let mut guesses = 0;
    for round in 0..10u64 {
        let t = T0 + 100 + round * 1000;
        let offer = match w.portal.create_offer_for_new_device(
            "anna@example.org",
            core::slice::from_ref(&anna.record),
            OfferOptions::default(),
            t,
            &mut w.rng,
        ) {
            Ok(o) => o,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::LockedOut);
                break;
            }
        };
        let start =
            start_link(&scan_link_qr(&offer.qr_text, t).unwrap(), "Evil", "730241", false, false, t, &mut w.rng)
                .unwrap();
        let out = w.portal.open_link_request(&start.request).unwrap().accept(
            &w.portal,
            Some(&offer.record),
            DeviceKeyUse::Fresh,
            t,
        );
        let mut pending = out
            .outcome
            .writes
            .iter()
            .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
            .unwrap();
        let vc = w
            .portal
            .create_link_challenge(
                &pending,
                core::slice::from_ref(&anna.record),
                ChallengeSettings::default(),
                t,
                &mut w.rng,
            )
            .unwrap();
        for g in 0..5u64 {
            let o = w.portal.confirm_with_authenticator(
                &pending,
                &vc.record,
                core::slice::from_ref(&anna.record),
                &alloc::format!("{g:08}"),
                t + 1,
            );
            if o.writes.is_empty() {
                assert_eq!(code(&o.result), ErrorCode::LockedOut);
                break;
            }
            guesses += 1;
            if let Some(d) = device_of(&o, &anna.record.device_id) {
                anna.record = d;
            }
            pending = o
                .writes
                .iter()
                .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
                .unwrap();
        }
    }
    assert_eq!(guesses, MAX_VOUCH_FAILURES, "every guess counted, none beyond the budget");
    // Logins still work; an unlock restores vouching.
    let c = w
        .portal
        .create_challenge(
            core::slice::from_ref(&anna.record),
            Approval::Login,
            ChallengeSettings::default(),
            T0 + 20_000,
            &mut w.rng,
        )
        .unwrap();
    let typed = anna
        .state
        .answer_code(&anna.state.read_challenge(&c.qr_text, T0 + 20_000).unwrap(), UserFactor::Passcode(PASS))
        .unwrap();
    anna.record = device_of(
        &w.portal.verify_answer(&c.record, core::slice::from_ref(&anna.record), &typed, T0 + 20_001),
        &anna.record.device_id,
    )
    .unwrap();
    assert_eq!(
        code(&w.portal.create_offer_for_new_device(
            "anna@example.org",
            core::slice::from_ref(&anna.record),
            OfferOptions::default(),
            T0 + 20_002,
            &mut w.rng
        )),
        ErrorCode::LockedOut
    );
    anna.record = device_of(&anna.record.unlock(T0 + 20_003), &anna.record.device_id).unwrap();
    assert!(w
        .portal
        .create_offer_for_new_device(
            "anna@example.org",
            core::slice::from_ref(&anna.record),
            OfferOptions::default(),
            T0 + 20_004,
            &mut w.rng
        )
        .is_ok());
}

/// Issue 10: the new device's channel key is derived only when an
/// authenticator vouched (one ECDH); wrong vouch codes cost none; a stored
/// device key that is no point refuses the vouch with nothing written.
#[test]
fn flow_2_derives_the_channel_key_only_when_vouched() {
    let mut w = world();
    let mut anna = link(&mut w, "anna", "Anna's Pixel", T0);
    log_in(&mut w, &mut anna, T0 + 5);
    let pending = new_device_link(&mut w, &anna, "Anna's iPad", T0 + 10);
    let vc = w
        .portal
        .create_link_challenge(&pending, &[anna.record.clone()], ChallengeSettings::default(), T0 + 14, &mut w.rng)
        .unwrap();
    let seen = anna.state.read_challenge(&vc.qr_text, T0 + 15).unwrap();
    let typed = anna.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
    let before = w.portal.agreements();
    let o =
        w.portal.confirm_with_authenticator(&pending, &vc.record, &[anna.record.clone()], &other_code(&typed), T0 + 16);
    assert_eq!(code(&o.result), ErrorCode::InvalidAnswer);
    assert_eq!(w.portal.agreements(), before, "a wrong vouch code costs no ECDH");
    // A pending link whose stored device key is no point (only a corrupt
    // store could hold one): typed STATE_CORRUPT, nothing written, the
    // challenge not spent.
    let mut corrupt = pending.clone();
    corrupt.device_pk = crate::SecretBytes::from_slice(&[0xff; 33]);
    let o = w.portal.confirm_with_authenticator(&corrupt, &vc.record, &[anna.record.clone()], &typed, T0 + 17);
    assert_eq!(code(&o.result), ErrorCode::StateCorrupt);
    assert!(o.writes.is_empty() && o.events.is_empty());
    let before = w.portal.agreements();
    let o = w.portal.confirm_with_authenticator(&pending, &vc.record, &[anna.record.clone()], &typed, T0 + 17);
    assert_eq!(w.portal.agreements(), before + 1);
    let rec = o.result.unwrap();
    assert_eq!(rec.channel_key, pending.derive_channel_key(&w.portal).unwrap());
    assert_eq!(rec.channel_key.len(), 32);
}
