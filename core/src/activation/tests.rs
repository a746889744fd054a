//! Activation end to end against an in-memory compare-and-set store, and
//! the attacks: wrong entries at every step, guessing until the locks, a
//! QR code for another device, a changed QR code, an old binding, a
//! superseded activation, two servers racing, expiry, use before the
//! delay, and the device's state changed in storage.

use super::*;
use crate::challenge::{Amount, Approval, ChallengeSettings, Transaction};
use crate::crypto::SeededRandom;
use crate::host::{Outcome, Write};
use crate::link::{DeviceRecord, Portal, PortalEvent};
use crate::ErrorCode;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

const T0: u64 = 1_767_225_600;
const ACTIVATION_CODE: &str = "271828";
const NEW_PASSWORD: &str = "correct horse battery staple";

/// The records, with the host contract's compare-and-set.
#[derive(Default, Clone)]
struct Db {
    rows: BTreeMap<(u8, String), (u64, Write)>,
}

fn kind(w: &Write) -> u8 {
    match w {
        Write::Offer(_) => 0,
        Write::PendingLink(_) => 1,
        Write::Device(_) => 2,
        Write::Challenge(_) => 3,
        Write::Token(_) => 4,
        Write::Enrolment(_) => 5,
        Write::Activation(_) => 6,
        Write::Credentials(_) => 7,
    }
}

impl Db {
    /// All writes or none: `Err` when a compare-and-set fails.
    fn apply<T>(&mut self, o: &Outcome<T>) -> core::result::Result<(), ()> {
        for w in &o.writes {
            let stored = self.rows.get(&(kind(w), w.key().to_string())).map(|r| r.0);
            if stored != w.expected_version() {
                return Err(());
            }
        }
        for w in &o.writes {
            self.rows.insert((kind(w), w.key().to_string()), (w.version(), w.clone()));
        }
        Ok(())
    }
    /// The stored record of `kind` under `key`, as `pick` reads it.
    fn row<T>(&self, kind: u8, key: &str, pick: impl Fn(&Write) -> Option<T>) -> T {
        pick(&self.rows[&(kind, key.to_string())].1).unwrap_or_else(|| unreachable!())
    }
    fn token(&self, serial: &str) -> TokenRecord {
        self.row(4, serial, |w| if let Write::Token(t) = w { Some(t.clone()) } else { None })
    }
    fn order(&self, user_id: &str) -> EnrolmentRecord {
        self.row(5, user_id, |w| if let Write::Enrolment(e) = w { Some(e.clone()) } else { None })
    }
    fn activation(&self, id: &str) -> ActivationRecord {
        self.row(6, id, |w| if let Write::Activation(a) = w { Some(a.clone()) } else { None })
    }
    fn device(&self, id: &str) -> DeviceRecord {
        self.row(2, id, |w| if let Write::Device(d) = w { Some(d.clone()) } else { None })
    }
    fn credentials(&self, account: &str) -> Option<AccountCredentials> {
        match self.rows.get(&(7, account.to_string())).map(|r| &r.1) {
            Some(Write::Credentials(c)) => Some(c.clone()),
            _ => None,
        }
    }
}

struct World {
    portal: Portal,
    rng: SeededRandom,
    db: Db,
    settings: ActivationSettings,
}

fn settings() -> ActivationSettings {
    ActivationSettings { hash_iterations: password::MIN_HASH_ITERATIONS, ..ActivationSettings::default() }
}

fn world() -> World {
    let mut rng = SeededRandom::new([3; 32]);
    World { portal: Portal::generate("Example Bank", &mut rng).unwrap(), rng, db: Db::default(), settings: settings() }
}

/// A device made by the maker and imported by the portal.
fn make_token(w: &mut World, serial: &str) -> Token {
    let t = Token::new(serial, &mut w.rng).unwrap();
    let file = format!("{FACTORY_FILE_HEADER}\n{}\n", t.factory_record().to_line());
    let o = w.portal.import_factory_records(&file, &[], T0);
    assert_eq!(o.result.as_ref().unwrap(), &vec![String::from(serial)]);
    w.db.apply(&o).unwrap();
    t
}

/// An order for `account` sent with the device `serial`: (user ID, initial password).
fn order(w: &mut World, account: &str, serial: &str) -> (String, String) {
    let o = w.portal.order_device(account, ACTIVATION_CODE, &w.db.token(serial), &w.settings, T0, &mut w.rng);
    w.db.apply(&o).unwrap();
    let order = o.result.unwrap();
    (order.user_id, String::clone(&order.initial_password))
}

fn start(w: &mut World, user_id: &str, now: u64) -> core::result::Result<ActivationProgress, crate::Error> {
    let e = w.db.order(user_id);
    let o = w.portal.start_activation(&e, &w.db.token(&e.serial), &w.settings, now, &mut w.rng);
    w.db.apply(&o).unwrap();
    o.result
}

/// One entry on the portal, stored; the result.
fn next(w: &mut World, id: &str, input: &str, now: u64) -> Outcome<ActivationProgress> {
    let a = w.db.activation(id);
    let e = w.db.order(&a.user_id);
    let t = w.db.token(&a.serial);
    let c = w.db.credentials(&a.account);
    let o = w.portal.activation_next(&a, &e, &t, c.as_ref(), input, &w.settings, now, &mut w.rng);
    w.db.apply(&o).unwrap();
    o
}

fn step(w: &mut World, id: &str, input: &str, now: u64) -> ActivationProgress {
    next(w, id, input, now).result.unwrap()
}

fn code_of(s: Screen) -> String {
    match s {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().into()
        }
    }
}

/// Activate `token` for the order `user_id` (initial password `initial`):
/// the whole flow; the last progress.
fn activate(w: &mut World, token: &mut Token, user_id: &str, initial: &str, now: u64) -> ActivationProgress {
    let p = start(w, user_id, now).unwrap();
    assert_eq!(p.step, ActivationStep::DeviceCode);
    let id = p.activation_id.clone();
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    assert_eq!(code.len(), 10);
    let p = step(w, &id, &code, now);
    assert_eq!((p.step, p.qr_text.is_none()), (ActivationStep::ActivationCode, true));
    let p = step(w, &id, ACTIVATION_CODE, now);
    assert_eq!(p.step, ActivationStep::BindingCode);
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    assert_eq!(code.len(), 8);
    let p = step(w, &id, &code, now);
    assert_eq!(p.step, ActivationStep::Serial);
    let typed = token.serial().to_ascii_lowercase();
    let p = step(w, &id, &format!("{}-{}", &typed[..4], &typed[4..]), now);
    assert_eq!(p.step, ActivationStep::TestOtp);
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    let p = step(w, &id, &code, now);
    assert_eq!(p.step, ActivationStep::InitialPassword);
    let p = step(w, &id, &initial.to_ascii_lowercase(), now);
    assert_eq!(p.step, ActivationStep::NewPassword);
    let o = next(w, &id, NEW_PASSWORD, now);
    assert!(matches!(o.events[..], [PortalEvent::DeviceActivated { .. }]));
    o.result.unwrap()
}

#[test]
fn the_whole_flow_then_usable_only_after_the_delay() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    assert_eq!(user_id.len(), 10);
    assert_eq!(initial.len(), 14);
    let done = activate(&mut w, &mut token, &user_id, &initial, T0 + 60);
    assert_eq!(done.step, ActivationStep::Done);
    assert_eq!(done.recovery_codes.len(), RECOVERY_CODE_COUNT);
    let usable_from = done.usable_from.unwrap();
    assert_eq!(usable_from, T0 + 60 + 4 * 3600);
    let device = w.db.device(&done.device_id.clone().unwrap());
    assert_eq!(device.serial.as_deref(), Some("TS00012345"));
    assert_eq!(token.user_id(), Some(user_id.as_str()));
    assert_eq!(token.device_id().map(|d| crate::encoding::hex_encode(&d)), done.device_id);
    assert_eq!(
        w.db.order(&user_id).state,
        EnrolmentState::Activated { at: T0 + 60, device_id: device.device_id.clone() }
    );

    // Before the delay: no challenge, no code.
    let before = usable_from - 1;
    let d = core::slice::from_ref(&device);
    let e =
        w.portal.create_challenge(d, Approval::Login, ChallengeSettings::default(), before, &mut w.rng).unwrap_err();
    assert_eq!(e.code(), ErrorCode::DeviceNotYetUsable);
    assert_eq!(device.verify_totp("123456", before).result.unwrap_err().code(), ErrorCode::InvalidState);

    // After it: a transaction, like a linked phone (typed answers).
    let tx = Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    });
    let c = w.portal.create_challenge(d, tx, ChallengeSettings::default(), usable_from, &mut w.rng).unwrap();
    let screen = token.scan(&c.qr_text).unwrap();
    let Screen::Challenge { approval, user_id: shown, code, .. } = screen else { panic!("{screen:?}") };
    assert_eq!(shown.as_str(), user_id);
    assert_eq!(approval.kind(), "transaction");
    let ShownApproval::Transaction { amount, payee, .. } = &approval else { unreachable!() };
    assert_eq!((amount.to_string().as_str(), payee.as_str()), ("125.50", "ACME Energy Ltd"));
    assert_eq!(approval.text_lines()[0].as_str(), "Invoice 2026-118");
    let o = w.portal.verify_answer(&c.record, d, code.as_str(), usable_from + 5);
    assert_eq!(o.result.unwrap().device_id, device.device_id);

    // The password and the recovery codes.
    let creds = w.db.credentials("anna").unwrap();
    assert!(w.portal.verify_password(&creds, NEW_PASSWORD, T0 + 70).result.is_ok());
    let o = w.portal.verify_password(&creds, "correct horse battery stapler", T0 + 70);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::PasswordMismatch);
    let o = w.portal.redeem_recovery_code(&creds, &done.recovery_codes[3].to_ascii_lowercase(), T0 + 80);
    assert_eq!(o.result.as_ref().unwrap(), &9);
    w.db.apply(&o).unwrap();
    let creds = w.db.credentials("anna").unwrap();
    let o = w.portal.redeem_recovery_code(&creds, &done.recovery_codes[3], T0 + 90);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::RecoveryCodeMismatch);
}

#[test]
fn a_wrong_entry_leaves_the_step_and_five_end_the_activation() {
    for (stage, wrong, code) in [
        (0, "0000000000", ErrorCode::DeviceCodeMismatch),
        (2, "00000000", ErrorCode::BindingCodeMismatch),
        (3, "TS99999999", ErrorCode::SerialMismatch),
        (4, "00000000", ErrorCode::InvalidAnswer),
    ] {
        let mut w = world();
        let mut token = make_token(&mut w, "TS00012345");
        let (user_id, _) = order(&mut w, "anna", "TS00012345");
        let p = start(&mut w, &user_id, T0).unwrap();
        let id = p.activation_id.clone();
        let mut qr = p.qr_text;
        let mut entries = vec![];
        for s in 0..stage {
            let input = match s {
                0 | 2 | 4 => code_of(token.scan(qr.as_deref().unwrap()).unwrap()),
                1 => ACTIVATION_CODE.into(),
                _ => "TS00012345".into(),
            };
            entries.push(input.clone());
            qr = step(&mut w, &id, &input, T0).qr_text;
        }
        let at = w.db.activation(&id).step;
        for i in 1..=MAX_ACTIVATION_FAILURES {
            let o = next(&mut w, &id, wrong, T0);
            let want = if i < MAX_ACTIVATION_FAILURES { code } else { ErrorCode::LockedOut };
            assert_eq!(o.result.unwrap_err().code(), want, "stage {stage}, attempt {i}");
            assert_eq!(w.db.activation(&id).step, at);
        }
        assert!(matches!(w.db.activation(&id).state, ActivationState::LockedOut { .. }));
        // Even the right entry is refused now; a new activation starts over.
        let o = next(&mut w, &id, "1", T0);
        assert_eq!(o.result.unwrap_err().code(), ErrorCode::LockedOut);
        assert_eq!(start(&mut w, &user_id, T0 + 1).unwrap().step, ActivationStep::DeviceCode);
    }
}

#[test]
fn activation_codes_and_initial_passwords_lock_the_order_across_restarts() {
    let mut w = world();
    let _token = make_token(&mut w, "TS00012345");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    let mut token = Token::from_bytes(&_token.to_bytes()[..]).unwrap();
    // Four wrong codes, a restart (a fresh activation does not reset the
    // order's count), then the fifth locks the order.
    let mut id = String::new();
    for i in 1..=MAX_SECRET_FAILURES {
        if i == 1 || i == 5 {
            let p = start(&mut w, &user_id, T0).unwrap();
            id = p.activation_id.clone();
            let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
            step(&mut w, &id, &code, T0);
        }
        let o = next(&mut w, &id, "999999", T0);
        let e = o.result.unwrap_err().code();
        if i < MAX_SECRET_FAILURES {
            assert_eq!(e, ErrorCode::ActivationCodeMismatch);
        } else {
            assert_eq!(e, ErrorCode::LockedOut);
            assert!(matches!(o.events[..], [PortalEvent::OrderLocked { .. }]));
        }
    }
    assert!(matches!(w.db.order(&user_id).state, EnrolmentState::Locked { .. }));
    assert_eq!(start(&mut w, &user_id, T0).unwrap_err().code(), ErrorCode::LockedOut);
}

#[test]
fn the_initial_password_is_single_use() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let id = p.activation_id.clone();
    let mut qr = p.qr_text;
    for input in [None, Some(ACTIVATION_CODE), None, Some("TS00012345"), None] {
        let input = match input {
            Some(s) => s.to_string(),
            None => code_of(token.scan(qr.as_deref().unwrap()).unwrap()),
        };
        qr = step(&mut w, &id, &input, T0).qr_text;
    }
    assert_eq!(next(&mut w, &id, "WRONG-WRONG-WRNG", T0).result.unwrap_err().code(), ErrorCode::PasswordMismatch);
    assert_eq!(step(&mut w, &id, &initial, T0).step, ActivationStep::NewPassword);
    // A weak new password is refused, not counted, and nothing is written.
    for weak in ["password", "short", "12345678901234", &user_id.clone(), &initial.clone()] {
        let o = next(&mut w, &id, weak, T0);
        assert_eq!(o.result.unwrap_err().code(), ErrorCode::PasswordPolicy, "{weak}");
        assert!(o.writes.is_empty());
    }
    // Abandoned here: a new activation of the order cannot use the letter again.
    assert_eq!(start(&mut w, &user_id, T0 + 10).unwrap_err().code(), ErrorCode::InvalidState);
}

#[test]
fn qr_codes_are_for_one_device_and_authenticated() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let mut other = make_token(&mut w, "TS00067890");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let qr = p.qr_text.unwrap();
    assert_eq!(other.scan(&qr).unwrap_err().code(), ErrorCode::NotForThisDevice);
    // A copy of the serial with another key (a counterfeit) cannot read it either.
    let mut fake = Token::new("TS00012345", &mut w.rng).unwrap();
    assert_eq!(fake.scan(&qr).unwrap_err().code(), ErrorCode::NotForThisDevice);
    // Every changed character is refused with a typed error, never a panic.
    let before = token.to_bytes();
    for i in 3..qr.len() {
        let mut b = qr.clone().into_bytes();
        b[i] = if b[i] == b'0' { b'1' } else { b'0' };
        let t = String::from_utf8(b).unwrap();
        let e = token.scan(&t).unwrap_err().code();
        assert!(
            matches!(
                e,
                ErrorCode::MessageTampered
                    | ErrorCode::MalformedMessage
                    | ErrorCode::NotForThisDevice
                    | ErrorCode::WrongMessageKind
                    | ErrorCode::UnsupportedVersion
            ),
            "{i}: {e}"
        );
        assert_eq!(*token.to_bytes(), *before);
    }
    // Truncations too.
    for n in 0..qr.len() {
        assert!(token.scan(&qr[..n]).is_err());
    }
    // A link QR code is another kind.
    let offer = w.portal.create_offer("anna", Default::default(), 300, T0, &mut w.rng).unwrap();
    assert_eq!(token.scan(&offer.qr_text).unwrap_err().code(), ErrorCode::WrongMessageKind);
    // A challenge before any activation.
    let id = p.activation_id;
    let code = code_of(token.scan(&qr).unwrap());
    step(&mut w, &id, &code, T0);
    step(&mut w, &id, ACTIVATION_CODE, T0);
    let qr2 = w.db.activation(&id).qr_text().unwrap();
    assert_eq!(other.scan(&qr2).unwrap_err().code(), ErrorCode::NotForThisDevice);
    assert_eq!(fake.scan(&qr2).unwrap_err().code(), ErrorCode::NotForThisDevice);
    assert!(fake.user_id().is_none());
}

#[test]
fn an_old_binding_cannot_come_back_and_a_restart_supersedes() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    // First activation, up to its binding QR code.
    let p = start(&mut w, &user_id, T0).unwrap();
    let first = p.activation_id.clone();
    let code1 = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    step(&mut w, &first, &code1, T0);
    let old_qr2 = step(&mut w, &first, ACTIVATION_CODE, T0).qr_text.unwrap();
    let old_code = code_of(token.scan(&old_qr2).unwrap());
    // The same QR code again: the same digits, nothing replaced.
    let again = token.scan(&old_qr2).unwrap();
    assert!(matches!(&again, Screen::BindingCode { replaced: false, .. }));
    assert_eq!(code_of(again), old_code);

    // A restart supersedes the first activation once its device code is
    // typed (a start by someone without the device interrupts nothing).
    let p = start(&mut w, &user_id, T0 + 100).unwrap();
    let second = p.activation_id.clone();
    assert_eq!(w.db.order(&user_id).activation_id.as_deref(), Some(first.as_str()));
    // The first activation's device code is not the second's.
    assert_eq!(next(&mut w, &second, &code1, T0 + 100).result.unwrap_err().code(), ErrorCode::DeviceCodeMismatch);
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    step(&mut w, &second, &code, T0 + 100);
    assert_eq!(next(&mut w, &first, &old_code, T0 + 100).result.unwrap_err().code(), ErrorCode::InvalidState);
    // The same device code again is a repeat, nothing judged or counted.
    let again = next(&mut w, &second, &code, T0 + 100);
    assert!(again.writes.is_empty() && again.result.unwrap().repeated);
    let qr2 = step(&mut w, &second, ACTIVATION_CODE, T0 + 100).qr_text.unwrap();
    let new_code = code_of(token.scan(&qr2).unwrap());
    assert_ne!(new_code, old_code);
    // The old binding QR code no longer takes the device back.
    assert_eq!(token.scan(&old_qr2).unwrap_err().code(), ErrorCode::TokenAlreadyUsed);
    assert_eq!(next(&mut w, &second, &old_code, T0 + 100).result.unwrap_err().code(), ErrorCode::BindingCodeMismatch);
    step(&mut w, &second, &new_code, T0 + 100);
    step(&mut w, &second, "TS00012345", T0 + 100);
    let test = w.db.activation(&second).qr_text().unwrap();
    let code = code_of(token.scan(&test).unwrap());
    step(&mut w, &second, &code, T0 + 100);
    step(&mut w, &second, &initial, T0 + 100);
    assert_eq!(step(&mut w, &second, NEW_PASSWORD, T0 + 100).step, ActivationStep::Done);
}

#[test]
fn two_servers_racing_on_one_step_write_once() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let id = p.activation_id.clone();
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    step(&mut w, &id, &code, T0);
    // Two servers read the same records; one takes the right activation
    // code, the other a wrong one: the second loses its compare-and-set, and
    // once it reads again its guess is judged at the new step.
    let (a, e, t) = (w.db.activation(&id), w.db.order(&user_id), w.db.token("TS00012345"));
    let right = w.portal.activation_next(&a, &e, &t, None, ACTIVATION_CODE, &w.settings, T0, &mut w.rng);
    let wrong = w.portal.activation_next(&a, &e, &t, None, "999999", &w.settings, T0, &mut w.rng);
    w.db.apply(&right).unwrap();
    assert!(w.db.apply(&wrong).is_err());
    assert_eq!(w.db.order(&user_id).code_failures, 0);
    // Two racing restarts: one wins.
    let e = w.db.order(&user_id);
    let t = w.db.token("TS00012345");
    let s1 = w.portal.start_activation(&e, &t, &w.settings, T0, &mut w.rng);
    let s2 = w.portal.start_activation(&e, &t, &w.settings, T0, &mut w.rng);
    w.db.apply(&s1).unwrap();
    assert!(w.db.apply(&s2).is_err());
}

#[test]
fn an_abandoned_activation_expires() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    let late = T0 + w.settings.activation_ttl;
    let o = next(&mut w, &p.activation_id, &code, late);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::TokenExpired);
    assert!(matches!(w.db.activation(&p.activation_id).state, ActivationState::Expired { .. }));
    assert!(w.db.activation(&p.activation_id).qr_text().is_none());
    // The order itself expires too.
    let ttl = w.settings.order_ttl;
    let o = start(&mut w, &user_id, T0 + ttl);
    assert_eq!(o.unwrap_err().code(), ErrorCode::TokenExpired);
}

#[test]
fn imports_are_all_or_nothing_with_line_numbers() {
    let w = world();
    let line = |s: &str, b: u8| {
        let t = Token::new("TS000000", &mut SeededRandom::new([b; 32])).unwrap();
        format!("{s} {}", crate::encoding::hex_encode(t.public_key()))
    };
    let file = format!("{FACTORY_FILE_HEADER}\n# batch 7\n{}\n\n{}\n{}\n", line("TS1", 1), line("TS000002", 2), "x");
    let e = w.portal.import_factory_records(&file, &[], T0).result.unwrap_err();
    assert_eq!(
        (e.code(), e.detail()),
        (ErrorCode::InvalidInput, "line 3: a serial number has 6 to 16 characters A-Z and 0-9")
    );
    let file =
        format!("{FACTORY_FILE_HEADER}\n{}\n{}\n{}\n", line("TS000001", 1), line("TS000002", 2), line("TS000001", 3));
    let o = w.portal.import_factory_records(&file, &[], T0);
    let e = o.result.unwrap_err();
    assert_eq!((e.code(), e.detail()), (ErrorCode::DuplicateRecord, "line 4: serial number TS000001 repeats line 2"));
    assert!(o.writes.is_empty());
    let file = format!("{FACTORY_FILE_HEADER}\r\n{}\r\n{}\r\n", line("TS000001", 1), line("TS000002", 2));
    let o = w.portal.import_factory_records(&file, &["TS000002".into()], T0);
    let e = o.result.unwrap_err();
    assert_eq!(
        (e.code(), e.detail()),
        (ErrorCode::DuplicateRecord, "line 3: serial number TS000002 was imported before")
    );
    assert_eq!(w.portal.import_factory_records(&file, &[], T0).writes.len(), 2);
    for (bad, code) in [
        ("tessera-factory-records v2\n", ErrorCode::UnsupportedVersion),
        ("serial secret\n", ErrorCode::InvalidInput),
        ("", ErrorCode::InvalidInput),
    ] {
        assert_eq!(parse_factory_file(bad).unwrap_err().code(), code);
    }
    let key =
        crate::encoding::hex_encode(Token::new("TS000001", &mut SeededRandom::new([4; 32])).unwrap().public_key());
    let upper = format!("{FACTORY_FILE_HEADER}\nTS000001 {}\n", key.to_ascii_uppercase());
    let bad = "line 2: a device key is 66 lowercase hex digits (a compressed P-256 key)";
    assert_eq!(parse_factory_file(&upper).unwrap_err().detail(), bad);
    for not_a_key in
        [format!("05{}", "00".repeat(32)), format!("02{}", "ff".repeat(32)), format!("04{}", "11".repeat(32))]
    {
        let file = format!("{FACTORY_FILE_HEADER}\nTS000001 {not_a_key}\n");
        assert_eq!(parse_factory_file(&file).unwrap_err().detail(), bad, "{not_a_key}");
    }
    assert_eq!(parse_factory_file(&format!("{FACTORY_FILE_HEADER}\nTS000001 {key}\n")).unwrap().len(), 1);
}

#[test]
fn the_device_state_is_fixed_size_and_checked() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let fresh = token.to_bytes();
    assert_eq!(Token::from_bytes(&fresh[..]).unwrap().to_bytes()[..], fresh[..]);
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    activate(&mut w, &mut token, &user_id, &initial, T0);
    let bound = token.to_bytes();
    let back = Token::from_bytes(&bound[..]).unwrap();
    assert_eq!((back.user_id(), back.portal_name()), (Some(user_id.as_str()), Some("Example Bank")));
    for i in 0..TOKEN_STATE_LEN {
        let mut b = *bound;
        b[i] ^= 0x01;
        assert_eq!(Token::from_bytes(&b).unwrap_err().code(), ErrorCode::StateCorrupt, "byte {i}");
    }
    assert_eq!(Token::from_bytes(&bound[..100]).unwrap_err().code(), ErrorCode::StateCorrupt);
    let dbg = format!("{token:?}");
    let secret = crate::encoding::hex_encode(&token.to_bytes()[18..50]);
    assert!(!dbg.contains(&secret[..16]), "{dbg}");
    assert!(dbg.contains("TS00012345"));
    assert_eq!(Token::new("ts-1", &mut w.rng).unwrap_err().code(), ErrorCode::InvalidInput);
}

#[test]
fn an_activated_device_sits_in_challenges_with_the_accounts_phones() {
    // The token answers a challenge sealed to it and a phone: both read it,
    // each its own code; the token's code is accepted for the token.
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let done = activate(&mut w, &mut token, &user_id, &initial, T0);
    let device = w.db.device(done.device_id.as_deref().unwrap());
    let at = done.usable_from.unwrap();
    let phone = linked_phone(&mut w, "anna", at);
    let devices = [phone, device.clone()];
    let c = w.portal.create_challenge(&devices, Approval::Login, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    assert_eq!(c.record.device_ids.len(), 2);
    let code = code_of(token.scan(&c.qr_text).unwrap());
    let o = w.portal.verify_answer(&c.record, &devices, &code, at + 1);
    assert_eq!(o.result.unwrap().device_id, device.device_id);
    // A challenge for the phone alone is not for the token.
    let c = w
        .portal
        .create_challenge(&devices[..1], Approval::Login, ChallengeSettings::default(), at, &mut w.rng)
        .unwrap();
    assert_eq!(token.scan(&c.qr_text).unwrap_err().code(), ErrorCode::NotForThisDevice);
    // Unlinked on the portal: left out of challenges.
    let gone = device.unlink(at + 2);
    let Some(Write::Device(gone)) = gone.writes.first().cloned() else { panic!() };
    let e = w.portal.create_challenge(&[gone], Approval::Login, ChallengeSettings::default(), at + 3, &mut w.rng);
    assert_eq!(e.unwrap_err().code(), ErrorCode::DeviceRevoked);
}

/// A phone linked to `account` (flow 1), its registry record.
fn linked_phone(w: &mut World, account: &str, now: u64) -> DeviceRecord {
    use crate::link::*;
    let offer = w.portal.create_offer(account, PasscodePolicy::default(), DEFAULT_OFFER_TTL, now, &mut w.rng).unwrap();
    let scanned = scan_link_qr(&offer.qr_text, now).unwrap();
    let start = start_link(&scanned, "Anna's Pixel", "493817", false, false, now, &mut w.rng).unwrap();
    let opened = w.portal.open_link_request(&start.request).unwrap();
    let out = opened.accept(&w.portal, Some(&offer.record), DeviceKeyUse::Fresh, now);
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
        .unwrap();
    let linked = finish_link(start.pending, &out.answer, &[0x42; 32], &mut w.rng).unwrap();
    w.portal.confirm_link(&pending, &linked.check_code, now + 1).result.unwrap()
}

/// Racing servers: each reads a snapshot, decides, and commits later in a
/// random order; a lost compare-and-set reads again and repeats. Over many
/// seeds: no failure count ever passes its limit, a lock is never undone,
/// the initial password is accepted once, and exactly one device record is
/// inserted however the servers interleave.
#[test]
fn racing_servers_never_undo_a_lock_or_finish_twice() {
    use crate::crypto::RandomSource;
    let (mut finished, mut ended) = (0, 0);
    for seed in 0..30u8 {
        let mut w = world();
        w.rng = SeededRandom::new([seed; 32]);
        let mut token = make_token(&mut w, "TS00012345");
        let (user_id, initial) = order(&mut w, "anna", "TS00012345");
        let p = start(&mut w, &user_id, T0).unwrap();
        let id = p.activation_id.clone();
        let device_code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
        let mut pick = SeededRandom::new([seed.wrapping_add(100); 32]);
        let mut byte = || {
            let mut b = [0u8; 1];
            pick.fill_bytes(&mut b);
            b[0]
        };
        let mut max_code_failures = 0;
        let mut locked_seen = false;
        let mut devices = 0;
        for _round in 0..40 {
            // Three servers take entries from one snapshot: right or wrong ones for the current step.
            let snapshot = w.db.clone();
            let a = snapshot.activation(&id);
            if a.state != ActivationState::Open {
                break;
            }
            let entries: Vec<String> = (0..3)
                .map(|_| {
                    let wrong = byte().is_multiple_of(3);
                    match (a.step, wrong) {
                        (_, true) => "00000000".into(),
                        (ActivationStep::DeviceCode, false) => device_code.clone(),
                        (ActivationStep::ActivationCode, false) => ACTIVATION_CODE.into(),
                        (ActivationStep::BindingCode | ActivationStep::TestOtp, false) => {
                            code_of(token.clone().scan(&a.qr_text().unwrap()).unwrap())
                        }
                        (ActivationStep::Serial, false) => "TS00012345".into(),
                        (ActivationStep::InitialPassword, false) => initial.clone(),
                        (_, false) => NEW_PASSWORD.into(),
                    }
                })
                .collect();
            let mut outcomes: Vec<(Outcome<ActivationProgress>, String)> = entries
                .iter()
                .map(|input| {
                    let (e, t) = (snapshot.order(&user_id), snapshot.token("TS00012345"));
                    let c = snapshot.credentials("anna");
                    (
                        w.portal.activation_next(&a, &e, &t, c.as_ref(), input, &w.settings, T0, &mut w.rng),
                        input.clone(),
                    )
                })
                .collect();
            // Commit in a random order; a conflict repeats the call on fresh reads.
            while !outcomes.is_empty() {
                let i = usize::from(byte()) % outcomes.len();
                let (o, input) = outcomes.remove(i);
                if w.db.apply(&o).is_err() {
                    // The host repeats the call on fresh reads, for the step
                    // the entry was typed at: a page whose step was done
                    // meanwhile (a double submit) is told so, not judged.
                    let a = w.db.activation(&id);
                    if a.state != ActivationState::Open || a.step != snapshot.activation(&id).step {
                        continue;
                    }
                    let (e, t, c) = (w.db.order(&user_id), w.db.token("TS00012345"), w.db.credentials("anna"));
                    let again = w.portal.activation_next(&a, &e, &t, c.as_ref(), &input, &w.settings, T0, &mut w.rng);
                    w.db.apply(&again).unwrap();
                    devices += again.writes.iter().filter(|x| matches!(x, Write::Device(_))).count();
                } else {
                    devices += o.writes.iter().filter(|x| matches!(x, Write::Device(_))).count();
                }
                let e = w.db.order(&user_id);
                max_code_failures = max_code_failures.max(e.code_failures).max(e.password_failures);
                let locked = matches!(e.state, EnrolmentState::Locked { .. });
                assert!(!locked_seen || locked, "seed {seed}: the order's lock was undone");
                locked_seen |= locked;
                let a = w.db.activation(&id);
                assert!(a.failures <= MAX_ACTIVATION_FAILURES, "seed {seed}: {} failures", a.failures);
            }
            // The user scans each binding QR code as it appears.
            let a = w.db.activation(&id);
            if a.step == ActivationStep::BindingCode {
                if let Some(q) = a.qr_text() {
                    token.scan(&q).unwrap();
                }
            }
        }
        assert!(max_code_failures <= MAX_SECRET_FAILURES, "seed {seed}");
        assert!(devices <= 1, "seed {seed}: {devices} device records");
        let a = w.db.activation(&id);
        assert_eq!(devices == 1, a.state == ActivationState::Done { at: T0 }, "seed {seed}: {a:?}");
        finished += devices;
        ended += usize::from(matches!(a.state, ActivationState::LockedOut { .. }));
    }
    // The interleavings reach both ends (a test that cannot fail otherwise).
    assert!(finished >= 3 && ended >= 3, "finished {finished}, locked out {ended}");
}

/// Review R7 (flow 2): an offline authenticator has no PIN, so it vouches
/// for no new device, however often it answered.
#[test]
fn an_offline_authenticator_never_vouches_for_a_new_device() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let done = activate(&mut w, &mut token, &user_id, &initial, T0);
    let device = w.db.device(done.device_id.as_deref().unwrap());
    let at = done.usable_from.unwrap();
    let d = [device.clone()];
    let c = w.portal.create_challenge(&d, Approval::Login, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    let code = code_of(token.scan(&c.qr_text).unwrap());
    let o = w.portal.verify_answer(&c.record, &d, &code, at + 1);
    let Some(Write::Device(proven)) = o.writes.iter().find(|x| matches!(x, Write::Device(_))).cloned() else {
        panic!("no device write")
    };
    assert!(proven.proven && !proven.may_vouch());
    let e = w.portal.create_offer_for_new_device("anna", &[proven], Default::default(), at + 10, &mut w.rng);
    assert_eq!(e.unwrap_err().code(), ErrorCode::AuthenticatorNeverUsed);
}

/// Review R8: a signed answer naming an offline authenticator is a wrong
/// answer, not a corrupt record.
#[test]
fn a_signed_answer_for_an_offline_authenticator_is_invalid() {
    use crate::challenge::messages::SignedAnswerMsg;
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let done = activate(&mut w, &mut token, &user_id, &initial, T0);
    let device = w.db.device(done.device_id.as_deref().unwrap());
    let at = done.usable_from.unwrap();
    let d = core::slice::from_ref(&device);
    let c = w.portal.create_challenge(d, Approval::Login, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    let forged = SignedAnswerMsg {
        nonce: c.record.nonce,
        device_id: token.device_id().unwrap(),
        counter: 1,
        signature: [1; crate::crypto::SIGNATURE_LEN],
    }
    .encode();
    let o = w.portal.verify_answer(&c.record, d, &forged, at + 1);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::InvalidAnswer);
}

/// Review R6: each lock is reported by its own check, and a recovery code
/// is the way back from a locked password.
#[test]
fn credential_locks_are_separate_and_a_recovery_code_clears_the_password_lock() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let done = activate(&mut w, &mut token, &user_id, &initial, T0);
    for i in 0..MAX_SECRET_FAILURES {
        let c = w.db.credentials("anna").unwrap();
        let o = w.portal.redeem_recovery_code(&c, "AAAA-AAAA-AAAA-AAAA", T0 + 10 + u64::from(i));
        w.db.apply(&o).unwrap();
    }
    let c = w.db.credentials("anna").unwrap();
    assert!(c.recovery_locked() && !c.password_locked());
    let o = w.portal.verify_password(&c, "one typo in it", T0 + 20);
    assert_eq!(o.result.unwrap_err().code(), ErrorCode::PasswordMismatch);
    assert!(o.events.is_empty());
    // A fresh account: five wrong passwords lock it; a recovery code unlocks it.
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let done2 = activate(&mut w, &mut token, &user_id, &initial, T0);
    let _ = done;
    for i in 0..MAX_SECRET_FAILURES {
        let c = w.db.credentials("anna").unwrap();
        let o = w.portal.verify_password(&c, "guess guess guess", T0 + 10 + u64::from(i));
        w.db.apply(&o).unwrap();
    }
    let c = w.db.credentials("anna").unwrap();
    assert_eq!(w.portal.verify_password(&c, NEW_PASSWORD, T0 + 30).result.unwrap_err().code(), ErrorCode::LockedOut);
    let o = w.portal.redeem_recovery_code(&c, &done2.recovery_codes[0], T0 + 40);
    w.db.apply(&o).unwrap();
    let c = w.db.credentials("anna").unwrap();
    assert!(w.portal.verify_password(&c, NEW_PASSWORD, T0 + 50).result.is_ok());
}

/// Review R1: the maker's file holds public keys only, and the QR codes on
/// screen are sealed to the device's key: a holder of the file who also
/// saw every QR code of an activation cannot answer for the device.
#[test]
fn the_makers_file_and_the_qr_codes_do_not_make_a_copy() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, initial) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let id = p.activation_id.clone();
    let qr1 = p.qr_text.unwrap();
    let code = code_of(token.scan(&qr1).unwrap());
    step(&mut w, &id, &code, T0);
    let qr2 = step(&mut w, &id, ACTIVATION_CODE, T0).qr_text.unwrap();
    let code = code_of(token.scan(&qr2).unwrap());
    step(&mut w, &id, &code, T0);
    step(&mut w, &id, "TS00012345", T0);
    let qr3 = w.db.activation(&id).qr_text().unwrap();
    let code = code_of(token.scan(&qr3).unwrap());
    step(&mut w, &id, &code, T0);
    step(&mut w, &id, &initial, T0);
    let done = step(&mut w, &id, NEW_PASSWORD, T0);
    // What a thief of the file has: the serial and the public key; no key
    // of theirs reads the QR codes (a device with another key is refused
    // before any code is shown).
    let line = token.factory_record().to_line();
    let rec = &parse_factory_file(&format!("{FACTORY_FILE_HEADER}\n{line}\n")).unwrap()[0];
    assert_eq!(&rec.public_key, token.public_key());
    let mut guess = Token::new(&rec.serial, &mut w.rng).unwrap();
    for qr in [&qr1, &qr2] {
        assert_eq!(guess.scan(qr).unwrap_err().code(), ErrorCode::NotForThisDevice);
    }
    assert_eq!(guess.scan(&qr3).unwrap_err().code(), ErrorCode::DeviceNotLinked);
    let device = w.db.device(done.device_id.as_deref().unwrap());
    let at = done.usable_from.unwrap();
    let d = core::slice::from_ref(&device);
    let c = w.portal.create_challenge(d, Approval::Login, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    assert_eq!(guess.scan(&c.qr_text).unwrap_err().code(), ErrorCode::DeviceNotLinked);
    // The QR codes name neither the serial nor the key in the clear.
    let bytes = crate::wire::from_qr_text(&qr1).unwrap();
    assert!(!bytes.windows(8).any(|x| x == &b"TS000123"[..]));
    assert!(!bytes.windows(33).any(|x| x == &token.public_key()[..]));
}

/// Review R3/R4: a double-submitted right entry is a repeat (never judged
/// at the next step, where it would count against the order), and a start
/// by someone who only knows the user ID does not interrupt the user.
#[test]
fn repeats_are_not_counted_and_strangers_do_not_interrupt() {
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    for _ in 0..MAX_SECRET_FAILURES + 1 {
        let p = start(&mut w, &user_id, T0).unwrap();
        let id = p.activation_id.clone();
        let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
        // Two servers take the same right code from one snapshot.
        let snapshot = w.db.clone();
        let a = snapshot.activation(&id);
        let (e, t) = (snapshot.order(&user_id), snapshot.token("TS00012345"));
        let s1 = w.portal.activation_next(&a, &e, &t, None, &code, &w.settings, T0, &mut w.rng);
        let s2 = w.portal.activation_next(&a, &e, &t, None, &code, &w.settings, T0, &mut w.rng);
        w.db.apply(&s1).unwrap();
        assert!(w.db.apply(&s2).is_err());
        // The loser repeats the call on fresh reads: a repeat, not a wrong activation code.
        let o = next(&mut w, &id, &code, T0);
        assert!(o.result.unwrap().repeated);
        assert_eq!(w.db.order(&user_id).code_failures, 0);
        if w.db.order(&user_id).starts + 1 >= MAX_ACTIVATION_STARTS {
            break;
        }
    }
    // A stranger's start while the user is at the activation code step.
    let mut w = world();
    let mut token = make_token(&mut w, "TS00012345");
    let (user_id, _) = order(&mut w, "anna", "TS00012345");
    let p = start(&mut w, &user_id, T0).unwrap();
    let id = p.activation_id.clone();
    let code = code_of(token.scan(&p.qr_text.unwrap()).unwrap());
    step(&mut w, &id, &code, T0);
    let stranger = start(&mut w, &user_id, T0 + 1).unwrap();
    assert_eq!(
        next(&mut w, &stranger.activation_id, "1234567890", T0 + 2).result.unwrap_err().code(),
        ErrorCode::DeviceCodeMismatch
    );
    assert_eq!(step(&mut w, &id, ACTIVATION_CODE, T0 + 3).step, ActivationStep::BindingCode);
}

/// Review R2: a second activation of an account sets its password and
/// recovery codes only when its device becomes usable; until then the
/// user's own stay in force, and cancelling the activation drops them.
#[test]
fn a_later_activation_changes_the_password_only_after_its_delay() {
    for cancel in [false, true] {
        let mut w = world();
        let mut first = make_token(&mut w, "TS00012345");
        let (uid1, init1) = order(&mut w, "anna", "TS00012345");
        let done1 = activate(&mut w, &mut first, &uid1, &init1, T0);
        let mut second = make_token(&mut w, "TS00067890");
        let (uid2, init2) = order(&mut w, "anna", "TS00067890");
        // The second activation, its new password "mallory was here 2026".
        let p = start(&mut w, &uid2, T0 + 100).unwrap();
        let id = p.activation_id.clone();
        let mut qr = p.qr_text;
        for input in [None, Some(ACTIVATION_CODE), None, Some("TS00067890"), None, Some(init2.as_str())] {
            let input = input.map_or_else(|| code_of(second.scan(qr.as_deref().unwrap()).unwrap()), String::from);
            qr = step(&mut w, &id, &input, T0 + 100).qr_text;
        }
        let done2 = step(&mut w, &id, "mallory was here 2026", T0 + 100);
        let effective = done2.usable_from.unwrap();
        let c = w.db.credentials("anna").unwrap();
        assert_eq!(c.pending_from(), Some(effective));
        let before = effective - 1;
        assert!(w.portal.verify_password(&c, NEW_PASSWORD, before).result.is_ok());
        assert!(w.portal.verify_password(&c, "mallory was here 2026", before).result.is_err());
        assert!(w.portal.redeem_recovery_code(&c, &done1.recovery_codes[0], before).result.is_ok());
        if cancel {
            let o = w.portal.cancel_pending_credentials(&c, before);
            w.db.apply(&o).unwrap();
            let c = w.db.credentials("anna").unwrap();
            assert!(w.portal.verify_password(&c, NEW_PASSWORD, effective + 10).result.is_ok());
            assert!(w.portal.verify_password(&c, "mallory was here 2026", effective + 10).result.is_err());
            assert_eq!(
                w.portal.cancel_pending_credentials(&c, before).result.unwrap_err().code(),
                ErrorCode::InvalidState
            );
        } else {
            let o = w.portal.verify_password(&c, "mallory was here 2026", effective);
            assert!(o.result.is_ok());
            w.db.apply(&o).unwrap();
            let c = w.db.credentials("anna").unwrap();
            assert_eq!(c.pending_from(), None);
            assert!(w.portal.verify_password(&c, NEW_PASSWORD, effective + 1).result.is_err());
            assert!(w.portal.redeem_recovery_code(&c, &done2.recovery_codes[0], effective + 2).result.is_ok());
            assert_eq!(
                w.portal.cancel_pending_credentials(&c, effective).result.unwrap_err().code(),
                ErrorCode::InvalidState
            );
        }
    }
}
