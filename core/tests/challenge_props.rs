//! Property tests of challenge/response (flow 4): tampered messages are
//! refused with a typed error, the code binds every field of a payment, a
//! challenge is used at most once, the lockout holds, and a wrong passcode
//! never answers.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use proptest::prelude::*;
use std::sync::OnceLock;
use tessera_core::challenge::{
    Amount, Approval, ChallengeQr, ChallengeSettings, ChallengeState, Transaction, DEVICE_LOCKOUT,
};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::{base45_decode_as, base45_encode, base64url_decode_as, base64url_encode};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{self, DeviceRecord, DeviceState, PasscodePolicy, Portal, UserFactor};
use tessera_core::ErrorCode;

const NOW: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x5a; 32];
const PASS: &str = "493817";

struct Phone {
    state: DeviceState,
    record: DeviceRecord,
}

struct Fixture {
    portal_secret: Vec<u8>,
    phones: Vec<Phone>,
    /// A payment challenge for phone 0, and its signed answer (counter 1).
    challenge: ChallengeQr,
    signed: String,
}

fn portal() -> Portal {
    Portal::from_secret(&fixture().portal_secret, "Example Bank").unwrap()
}

fn link_phone(portal: &Portal, name: &str, rng: &mut SeededRandom) -> Phone {
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, NOW, rng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW).unwrap();
    let start = link::start_link(&scanned, name, PASS, false, false, NOW, rng).unwrap();
    let out = portal.open_link_request(&start.request).unwrap().accept(
        portal,
        Some(&offer.record),
        link::DeviceKeyUse::Fresh,
        NOW,
    );
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|w| if let Write::PendingLink(p) = w { Some(p.clone()) } else { None })
        .unwrap();
    let linked = link::finish_link(start.pending, &out.answer, &KEY, rng).unwrap();
    let record = portal.confirm_link(&pending, &linked.check_code, NOW + 1).result.unwrap();
    Phone { state: DeviceState::open(&KEY, &linked.state).unwrap(), record }
}

fn payment(amount: &str, currency: &str, payee: &str, text: &[&str]) -> Transaction {
    Transaction {
        amount: Amount::parse(amount).unwrap(),
        currency: currency.into(),
        payee: payee.into(),
        text: text.iter().map(|s| s.to_string()).collect(),
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = SeededRandom::new([0x0c; 32]);
        let portal = Portal::generate("Example Bank", &mut rng).unwrap();
        let phones = vec![link_phone(&portal, "Anna's Pixel", &mut rng), link_phone(&portal, "Anna's iPad", &mut rng)];
        let approval =
            Approval::Transaction(payment("125.50", "EUR", "ACME Energy Ltd", &["Invoice 2026-118", "DE02 1203 0000"]));
        let challenge = portal
            .create_challenge(&[phones[0].record.clone()], approval, ChallengeSettings::default(), NOW + 10, &mut rng)
            .unwrap();
        let seen = phones[0].state.read_challenge(&challenge.qr_text, NOW + 10).unwrap();
        let signed = phones[0].state.answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut rng).unwrap().answer;
        Fixture { portal_secret: portal.secret().expose().to_vec(), phones, challenge, signed }
    })
}

fn qr_bytes(qr: &str) -> Vec<u8> {
    base45_decode_as(qr.strip_prefix("TS:").unwrap(), ErrorCode::MalformedMessage).unwrap()
}

fn qr_text(b: &[u8]) -> String {
    format!("TS:{}", base45_encode(b))
}

fn device_of<T>(o: &Outcome<T>, id: &str) -> Option<DeviceRecord> {
    o.writes.iter().find_map(|w| match w {
        Write::Device(d) if d.device_id == id => Some(d.clone()),
        _ => None,
    })
}

fn consumed<T>(o: &Outcome<T>) -> bool {
    o.writes.iter().any(|w| matches!(w, Write::Challenge(c) if c.state != ChallengeState::Open))
}

/// A code of the same length that is not `c`.
fn other_code(c: &str) -> String {
    let first = if c.starts_with('1') { '2' } else { '1' };
    format!("{first}{}", &c[1..])
}

// ---------------------------------------------------------------- strategies

/// Amount texts: up to 12 digits before the point, 0 to 3 after it.
fn amount_text() -> impl Strategy<Value = String> {
    (0u64..1_000_000_000_000, prop::option::of("[0-9]{1,3}")).prop_map(|(int, frac)| match frac {
        Some(f) => format!("{int}.{f}"),
        None => int.to_string(),
    })
}

/// Display text: 1 to 23 characters (at most 69 bytes), not blank.
fn line() -> impl Strategy<Value = String> {
    "[A-Za-z0-9ÄÖÜäöüé€][A-Za-z0-9ÄÖÜäöüé€ .,'&/-]{0,22}"
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (amount_text(), "[A-Z]{3}", line(), prop::collection::vec(line(), 0..=3)).prop_map(|(a, c, p, t)| Transaction {
        amount: Amount::parse(&a).unwrap(),
        currency: c,
        payee: p,
        text: t,
    })
}

#[derive(Clone, Debug)]
enum Change {
    Amount(String),
    /// The same value with one more decimal (`125.5` → `125.50`).
    Rescale,
    Currency(String),
    Payee(String),
    Line(usize, String),
    AddLine(String),
    RemoveLine(usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        amount_text().prop_map(Change::Amount),
        Just(Change::Rescale),
        "[A-Z]{3}".prop_map(Change::Currency),
        line().prop_map(Change::Payee),
        (0usize..3, line()).prop_map(|(i, l)| Change::Line(i, l)),
        line().prop_map(Change::AddLine),
        (0usize..3).prop_map(Change::RemoveLine),
    ]
}

/// `t` changed by `c`, or `None` when the change is a no-op or not valid.
fn apply(t: &Transaction, c: &Change) -> Option<Transaction> {
    let mut n = t.clone();
    match c {
        Change::Amount(a) => n.amount = Amount::parse(a).unwrap(),
        Change::Rescale => {
            let text = n.amount.to_string();
            let more = if n.amount.decimals() == 0 { format!("{text}.0") } else { format!("{text}0") };
            n.amount = Amount::parse(&more).ok()?;
        }
        Change::Currency(x) => n.currency = x.clone(),
        Change::Payee(p) => n.payee = p.clone(),
        Change::Line(i, l) => *n.text.get_mut(*i)? = l.clone(),
        Change::AddLine(l) => {
            if n.text.len() == 3 {
                return None;
            }
            n.text.push(l.clone());
        }
        Change::RemoveLine(i) => {
            if *i >= n.text.len() {
                return None;
            }
            n.text.remove(*i);
        }
    }
    (n != *t).then_some(n)
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    /// The right typed code, from phone 0 or 1.
    Right(usize),
    /// A wrong code of the right length.
    WrongCode(usize),
    /// The code of a wrong passcode.
    WrongPasscode(usize),
    /// A signed answer with the next counter.
    Signed(usize),
    /// The last signed answer again.
    SignedReplay,
    /// A code of another challenge.
    OtherChallenge,
    /// Not an answer at all.
    Garbage,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => (0usize..2).prop_map(Answer::Right),
        2 => (0usize..2).prop_map(Answer::WrongCode),
        1 => (0usize..2).prop_map(Answer::WrongPasscode),
        2 => (0usize..2).prop_map(Answer::Signed),
        1 => Just(Answer::SignedReplay),
        1 => Just(Answer::OtherChallenge),
        1 => Just(Answer::Garbage),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Answer a fresh challenge wrongly (a wrong code).
    WrongAnswer,
    /// Answer a fresh challenge rightly.
    RightAnswer,
    /// Answer a fresh challenge with a signed answer under a wrong passcode.
    WrongSigned,
    /// A wrong time-based code (one digit short).
    WrongTotp,
    /// The right time-based code.
    RightTotp,
    /// The portal unlocks the device (refused unless locked).
    Unlock,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::WrongAnswer),
        2 => Just(Step::RightAnswer),
        1 => Just(Step::WrongSigned),
        2 => Just(Step::WrongTotp),
        1 => Just(Step::RightTotp),
        1 => Just(Step::Unlock),
    ]
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_changed_or_truncated_byte_of_a_challenge_qr_is_refused_with_a_typed_error(
        idx in any::<usize>(), mask in 1u8.., cut in any::<usize>()
    ) {
        let f = fixture();
        let bytes = qr_bytes(&f.challenge.qr_text);
        let mut changed = bytes.clone();
        changed[idx % bytes.len()] ^= mask;
        let truncated = &bytes[..cut % bytes.len()];
        for text in [qr_text(&changed), qr_text(truncated)] {
            for phone in &f.phones {
                let e = phone.state.read_challenge(&text, NOW + 11).unwrap_err();
                prop_assert!(matches!(
                    e.code(),
                    ErrorCode::MalformedMessage
                        | ErrorCode::WrongMessageKind
                        | ErrorCode::UnsupportedVersion
                        | ErrorCode::MessageTampered
                        | ErrorCode::NotForThisDevice
                ), "{:?}", e.code());
            }
        }
    }

    #[test]
    fn any_changed_or_truncated_byte_of_a_signed_answer_is_refused_with_a_typed_error(
        idx in any::<usize>(), mask in 1u8.., cut in any::<usize>()
    ) {
        let f = fixture();
        let p = portal();
        let bytes = base64url_decode_as(&f.signed, ErrorCode::MalformedMessage).unwrap();
        let mut changed = bytes.clone();
        changed[idx % bytes.len()] ^= mask;
        let truncated = &bytes[..cut % bytes.len()];
        let devices = [f.phones[0].record.clone(), f.phones[1].record.clone()];
        for text in [base64url_encode(&changed), base64url_encode(truncated)] {
            let o = p.verify_answer(&f.challenge.record, &devices, &text, NOW + 12);
            let e = o.result.as_ref().unwrap_err();
            prop_assert!(matches!(
                e.code(),
                ErrorCode::MalformedMessage
                    | ErrorCode::WrongMessageKind
                    | ErrorCode::UnsupportedVersion
                    | ErrorCode::InvalidAnswer
            ), "{:?}", e.code());
            prop_assert!(!consumed(&o));
        }
        // The genuine answer still works.
        prop_assert!(p.verify_answer(&f.challenge.record, &devices, &f.signed, NOW + 12).result.is_ok());
    }

    #[test]
    fn any_change_to_the_transaction_changes_the_typed_code(
        t in transaction(), c in change(), seed in any::<[u8; 32]>()
    ) {
        let Some(shown) = apply(&t, &c) else { return Ok(()) };
        let f = fixture();
        let p = portal();
        let phone = &f.phones[0];
        // Same randomness: the same nonce, key and expiry; only the payment differs.
        let settings = ChallengeSettings { digits: 10, ttl: 300 };
        let issue = |tx: &Transaction| {
            p.create_challenge(std::slice::from_ref(&phone.record), Approval::Transaction(tx.clone()), settings, NOW + 20,
                &mut SeededRandom::new(seed)).unwrap()
        };
        let (real, fake) = (issue(&t), issue(&shown));
        prop_assert_eq!(&real.record.challenge_id, &fake.record.challenge_id);
        let code = |qr: &str| {
            let seen = phone.state.read_challenge(qr, NOW + 21).unwrap();
            phone.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap()
        };
        let (right, wrong) = (code(&real.qr_text), code(&fake.qr_text));
        prop_assert_ne!(&right, &wrong, "{:?} -> {:?}", t, shown);
        // The code for what a tampered screen showed does not approve the real payment.
        let o = p.verify_answer(&real.record, std::slice::from_ref(&phone.record), &wrong, NOW + 22);
        prop_assert_eq!(o.result.unwrap_err().code(), ErrorCode::InvalidAnswer);
        prop_assert!(p.verify_answer(&real.record, std::slice::from_ref(&phone.record), &right, NOW + 22).result.is_ok());
    }

    #[test]
    fn a_challenge_is_accepted_at_most_once_whatever_sequence_of_answers(
        answers in prop::collection::vec(answer(), 1..12)
    ) {
        let f = fixture();
        let p = portal();
        let mut rng = SeededRandom::new([0x0d; 32]);
        let mut devices = [f.phones[0].record.clone(), f.phones[1].record.clone()];
        let mut states = [f.phones[0].state.clone(), f.phones[1].state.clone()];
        let issue = |devices: &[DeviceRecord], rng: &mut SeededRandom| {
            p.create_challenge(devices, Approval::Login, ChallengeSettings::default(), NOW + 30, rng).unwrap()
        };
        let mut challenge = issue(&devices, &mut rng);
        let other = issue(&devices, &mut rng);
        let mut accepted = 0;
        let mut last_signed: Option<String> = None;
        for (i, a) in answers.iter().enumerate() {
            let now = NOW + 31 + i as u64;
            let text = match *a {
                Answer::Right(k) => code_of(&states[k], &challenge.qr_text, PASS, now),
                Answer::WrongCode(k) => other_code(&code_of(&states[k], &challenge.qr_text, PASS, now)),
                Answer::WrongPasscode(k) => code_of(&states[k], &challenge.qr_text, "000000", now),
                Answer::Signed(k) => {
                    let seen = states[k].read_challenge(&challenge.qr_text, now).unwrap();
                    let s = states[k].answer_signed(&seen, UserFactor::Passcode(PASS), &KEY, &mut rng).unwrap();
                    states[k] = DeviceState::open(&KEY, &s.state).unwrap();
                    last_signed = Some(s.answer.clone());
                    s.answer
                }
                Answer::SignedReplay => last_signed.clone().unwrap_or_else(|| "IQE".into()),
                Answer::OtherChallenge => code_of(&states[0], &other.qr_text, PASS, now),
                Answer::Garbage => "not an answer".into(),
            };
            let was_answered = challenge.record.state != ChallengeState::Open;
            let o = p.verify_answer(&challenge.record, &devices, &text, now);
            if was_answered {
                prop_assert_eq!(o.result.as_ref().unwrap_err().code(), ErrorCode::TokenAlreadyUsed);
                prop_assert!(o.writes.is_empty());
            }
            prop_assert_eq!(consumed(&o), o.result.is_ok());
            if o.result.is_ok() {
                accepted += 1;
            }
            for w in &o.writes {
                match w {
                    Write::Challenge(c) => {
                        prop_assert_eq!(c.version, challenge.record.version + 1);
                        challenge.record = c.clone();
                    }
                    Write::Device(d) => {
                        let slot = devices.iter_mut().find(|x| x.device_id == d.device_id).unwrap();
                        prop_assert_eq!(d.version, slot.version + 1);
                        *slot = d.clone();
                    }
                    _ => prop_assert!(false, "unexpected write"),
                }
            }
        }
        prop_assert!(accepted <= 1);
        prop_assert_eq!(accepted == 1, challenge.record.state != ChallengeState::Open);
    }

    #[test]
    fn the_failure_count_never_exceeds_the_lock_limit_and_a_locked_device_accepts_nothing(
        steps in prop::collection::vec(step(), 1..24)
    ) {
        let f = fixture();
        let p = portal();
        let phone = &f.phones[0];
        let mut record = phone.record.clone();
        let mut rng = SeededRandom::new([0x0e; 32]);
        let limit = DEVICE_LOCKOUT.max_failures;
        for (i, s) in steps.iter().enumerate() {
            // 30 s apart: every step has its own time step of the device TOTP.
            let now = NOW + 60 + 30 * i as u64;
            let locked = record.otp_state.throttle.is_locked(now);
            let before = record.otp_state.throttle.failures();
            let answer = |record: &DeviceRecord, right: bool, signed: bool, rng: &mut SeededRandom| {
                let c = p.create_challenge(std::slice::from_ref(record), Approval::Login, ChallengeSettings::default(), now, rng);
                let c = c.unwrap();
                let seen = phone.state.read_challenge(&c.qr_text, now).unwrap();
                let pass = if right { PASS } else { "111111" };
                let text = if signed {
                    phone.state.answer_signed(&seen, UserFactor::Passcode(pass), &KEY, rng).unwrap().answer
                } else {
                    let code = phone.state.answer_code(&seen, UserFactor::Passcode(PASS)).unwrap();
                    if right { code } else { other_code(&code) }
                };
                let o = p.verify_answer(&c.record, std::slice::from_ref(record), &text, now);
                (o.result.is_ok(), o.result.err().map(|e| e.code()), device_of_writes(&o.writes, &record.device_id))
            };
            let (ok, code, next) = match s {
                Step::WrongAnswer => answer(&record, false, false, &mut rng),
                Step::RightAnswer => answer(&record, true, false, &mut rng),
                Step::WrongSigned => answer(&record, false, true, &mut rng),
                Step::WrongTotp | Step::RightTotp => {
                    // A wrong code of the wrong length: refused and counted, and
                    // unlike a wrong 6-digit code it cannot match a step of the window.
                    let code = phone.state.totp(UserFactor::Passcode(PASS), now).unwrap();
                    let code = if matches!(s, Step::RightTotp) { code } else { code[1..].to_string() };
                    let o = record.verify_totp(&code, now);
                    (o.result.is_ok(), o.result.err().map(|e| e.code()), device_of_writes(&o.writes, &record.device_id))
                }
                Step::Unlock => {
                    let o = record.unlock(now);
                    prop_assert_eq!(o.result.is_ok(), locked);
                    (false, None, device_of_writes(&o.writes, &record.device_id))
                }
            };
            if locked && !matches!(s, Step::Unlock) {
                // A locked device accepts nothing, not even the right answer, and nothing is written.
                prop_assert!(!ok);
                prop_assert_eq!(code, Some(ErrorCode::LockedOut));
                prop_assert!(next.is_none());
            }
            if let Some(n) = next {
                record = n;
            }
            let after = record.otp_state.throttle.failures();
            prop_assert!(after <= limit, "{} failures", after);
            if ok {
                prop_assert_eq!(after, 0);
            }
            if !locked && matches!(s, Step::WrongAnswer | Step::WrongSigned | Step::WrongTotp) {
                prop_assert_eq!(after, before + 1);
                prop_assert_eq!(record.otp_state.throttle.is_locked(now), after == limit);
                let want = if after == limit { ErrorCode::LockedOut } else { ErrorCode::InvalidAnswer };
                if !matches!(s, Step::WrongTotp) {
                    prop_assert_eq!(code, Some(want));
                }
            }
            if matches!(s, Step::Unlock) && locked {
                prop_assert_eq!(after, 0);
                prop_assert!(!record.otp_state.throttle.is_locked(now));
            }
        }
    }

    #[test]
    fn answers_under_a_wrong_passcode_are_always_refused(
        pass in "[0-9]{6,16}", seed in any::<[u8; 32]>(), signed in any::<bool>()
    ) {
        prop_assume!(pass != PASS);
        let f = fixture();
        let p = portal();
        let phone = &f.phones[1];
        let mut rng = SeededRandom::new(seed);
        let c = p
            .create_challenge(std::slice::from_ref(&phone.record), Approval::Login, ChallengeSettings { digits: 10, ttl: 60 },
                NOW + 40, &mut rng)
            .unwrap();
        let seen = phone.state.read_challenge(&c.qr_text, NOW + 40).unwrap();
        let text = if signed {
            phone.state.answer_signed(&seen, UserFactor::Passcode(&pass), &KEY, &mut rng).unwrap().answer
        } else {
            phone.state.answer_code(&seen, UserFactor::Passcode(&pass)).unwrap()
        };
        let o = p.verify_answer(&c.record, std::slice::from_ref(&phone.record), &text, NOW + 41);
        prop_assert_eq!(o.result.as_ref().unwrap_err().code(), ErrorCode::InvalidAnswer);
        prop_assert!(!consumed(&o));
        let d = device_of(&o, &phone.record.device_id).unwrap();
        prop_assert_eq!(d.otp_state.throttle.failures(), 1);
    }
}

fn code_of(state: &DeviceState, qr: &str, pass: &str, now: u64) -> String {
    let seen = state.read_challenge(qr, now).unwrap();
    state.answer_code(&seen, UserFactor::Passcode(pass)).unwrap()
}

fn device_of_writes(writes: &[Write], id: &str) -> Option<DeviceRecord> {
    writes.iter().find_map(|w| match w {
        Write::Device(d) if d.device_id == id => Some(d.clone()),
        _ => None,
    })
}
