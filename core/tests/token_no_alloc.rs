//! The offline authenticator (`activation::Token`) never allocates: a
//! firmware without heap growth (`firmware/`, whose allocator refuses
//! everything after start-up) runs this same code. A counting global
//! allocator, armed only around the token's calls on this test's thread,
//! checks the scan of both activation QR codes, the test challenge and a
//! payment challenge, the state's round trip, and the error paths
//! (truncated, changed, too long, not Base45, another device's QR code, a
//! challenge before any binding, an old binding, a corrupt state).

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::mem::{discriminant, Discriminant};
use std::sync::atomic::{AtomicUsize, Ordering};
use tessera_core::activation::{
    password, AccountCredentials, ActivationProgress, ActivationRecord, ActivationSettings, ActivationStep,
    EnrolmentRecord, Screen, ShownApproval, Token, TokenRecord, FACTORY_FILE_HEADER,
};
use tessera_core::challenge::{Amount, Approval, ChallengeSettings, Transaction};
use tessera_core::crypto::SeededRandom;
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{DeviceRecord, Portal};
use tessera_core::ErrorCode;

// ---------------------------------------------------------------------------
// The counting allocator.

struct Counting;

/// Allocations (and reallocations) made while armed, and the size of the last one.
static ARMED_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LAST_SIZE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const`, no destructor: reading it never allocates.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn count(layout: Layout) {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        ARMED_ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LAST_SIZE.store(layout.size(), Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(Layout::from_size_align(new_size, layout.align()).unwrap_or(layout));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `f()` with the counter armed on this thread; fails if it allocated.
/// The result is dropped by the caller, unarmed (dropping a `Screen` or an
/// error frees nothing either, but that is not what this checks).
fn no_alloc<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = ARMED_ALLOCATIONS.load(Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    let n = ARMED_ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(n, 0, "{what}: {n} allocation(s), the last of {} bytes", LAST_SIZE.load(Ordering::SeqCst));
    out
}

#[test]
fn the_counter_sees_an_allocation() {
    let before = ARMED_ALLOCATIONS.load(Ordering::SeqCst);
    ARMED.with(|a| a.set(true));
    let v = std::hint::black_box(vec![1u8; 3]);
    ARMED.with(|a| a.set(false));
    drop(v);
    assert_eq!(ARMED_ALLOCATIONS.load(Ordering::SeqCst) - before, 1);
}

// ---------------------------------------------------------------------------
// The portal side, with the host contract's compare-and-set.

const T0: u64 = 1_767_225_600;
const ACTIVATION_CODE: &str = "271828";
const NEW_PASSWORD: &str = "correct horse battery staple";

#[derive(Default)]
struct Db {
    rows: HashMap<(Discriminant<Write>, String), (u64, Write)>,
}

impl Db {
    fn apply<T>(&mut self, o: &Outcome<T>) {
        for w in &o.writes {
            let stored = self.rows.get(&(discriminant(w), w.key().to_string())).map(|r| r.0);
            assert_eq!(stored, w.expected_version(), "compare-and-set of {}", w.key());
        }
        for w in &o.writes {
            self.rows.insert((discriminant(w), w.key().to_string()), (w.version(), w.clone()));
        }
    }
    fn find<T>(&self, key: &str, pick: impl Fn(&Write) -> Option<T>) -> Option<T> {
        self.rows.iter().filter(|((_, k), _)| k == key).find_map(|(_, (_, w))| pick(w))
    }
    fn token(&self, serial: &str) -> TokenRecord {
        self.find(serial, |w| if let Write::Token(t) = w { Some(t.clone()) } else { None }).unwrap()
    }
    fn order(&self, user_id: &str) -> EnrolmentRecord {
        self.find(user_id, |w| if let Write::Enrolment(e) = w { Some(e.clone()) } else { None }).unwrap()
    }
    fn activation(&self, id: &str) -> ActivationRecord {
        self.find(id, |w| if let Write::Activation(a) = w { Some(a.clone()) } else { None }).unwrap()
    }
    fn credentials(&self, account: &str) -> Option<AccountCredentials> {
        self.find(account, |w| if let Write::Credentials(c) = w { Some(c.clone()) } else { None })
    }
    fn device(&self, id: &str) -> DeviceRecord {
        self.find(id, |w| if let Write::Device(d) = w { Some(d.clone()) } else { None }).unwrap()
    }
}

struct World {
    portal: Portal,
    rng: SeededRandom,
    db: Db,
    settings: ActivationSettings,
}

impl World {
    fn next(&mut self, id: &str, input: &str) -> ActivationProgress {
        let a = self.db.activation(id);
        let e = self.db.order(&a.user_id);
        let t = self.db.token(&a.serial);
        let c = self.db.credentials(&a.account);
        let o = self.portal.activation_next(&a, &e, &t, c.as_ref(), input, &self.settings, T0, &mut self.rng);
        self.db.apply(&o);
        o.result.unwrap()
    }
}

fn code(screen: &Screen) -> String {
    match screen {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().to_string()
        }
    }
}

/// `qr` with the character at `at` replaced by another Base45 character.
fn changed(qr: &str, at: usize) -> String {
    let mut b = qr.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

fn scan_err(token: &mut Token, what: &str, qr: &str) -> ErrorCode {
    no_alloc(what, || token.scan(qr).map(|_| ()).map_err(|e| e.code())).unwrap_err()
}

// ---------------------------------------------------------------------------

/// One test: the portal's side runs unarmed between the token's calls.
#[test]
fn the_token_never_allocates() {
    let mut rng = SeededRandom::new([3; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let settings = ActivationSettings { hash_iterations: password::MIN_HASH_ITERATIONS, ..Default::default() };
    let mut w = World { portal, rng, db: Db::default(), settings };

    // The maker: two devices; the portal imports both.
    let secret = [7u8; 32];
    let mut token = no_alloc("Token::from_factory", || Token::from_factory("TS00012345", &secret)).unwrap();
    let mut other = Token::from_factory("TS00099999", &[9; 32]).unwrap();
    let file =
        format!("{FACTORY_FILE_HEADER}\n{}\n{}\n", token.factory_record().to_line(), other.factory_record().to_line());
    let o = w.portal.import_factory_records(&file, &[], T0);
    w.db.apply(&o);

    // The order and the first QR code.
    let o = w.portal.order_device("anna", ACTIVATION_CODE, &w.db.token("TS00012345"), &w.settings, T0, &mut w.rng);
    w.db.apply(&o);
    let order = o.result.unwrap();
    let e = w.db.order(&order.user_id);
    let o = w.portal.start_activation(&e, &w.db.token("TS00012345"), &w.settings, T0, &mut w.rng);
    w.db.apply(&o);
    let p = o.result.unwrap();
    let id = p.activation_id.clone();
    let qr1 = p.qr_text.unwrap();

    // Errors before any binding: another device's QR code, truncated,
    // changed, too long, not Base45, a challenge-sized garbage text.
    assert_eq!(scan_err(&mut other, "QR 1 on another device", &qr1), ErrorCode::NotForThisDevice);
    assert_eq!(scan_err(&mut token, "truncated QR 1", &qr1[..qr1.len() - 3]), ErrorCode::MalformedMessage);
    let qr1_cut_tag = &qr1[..qr1.len() - 6];
    let e1 = scan_err(&mut token, "QR 1 without its MAC", qr1_cut_tag);
    assert!(matches!(e1, ErrorCode::MalformedMessage | ErrorCode::MessageTampered), "{e1:?}");
    let qr1_changed = changed(&qr1, qr1.len() - 5);
    assert_eq!(scan_err(&mut token, "changed QR 1", &qr1_changed), ErrorCode::MessageTampered);
    let too_long = "A".repeat(5000);
    assert_eq!(scan_err(&mut token, "too long", &too_long), ErrorCode::MalformedMessage);
    let e2 = scan_err(&mut token, "not Base45", "hello, world");
    assert!(matches!(e2, ErrorCode::MalformedMessage | ErrorCode::UnsupportedVersion), "{e2:?}");
    assert_eq!(scan_err(&mut token, "empty", ""), ErrorCode::MalformedMessage);

    // QR 1: the device code.
    let s = no_alloc("scan QR 1", || token.scan(&qr1)).unwrap();
    assert!(matches!(s, Screen::DeviceCode { .. }));
    let p = w.next(&id, &code(&s));
    assert_eq!(p.step, ActivationStep::ActivationCode);
    let p = w.next(&id, ACTIVATION_CODE);
    assert_eq!(p.step, ActivationStep::BindingCode);
    let qr2 = p.qr_text.unwrap();

    // QR 2: errors first, then the binding.
    assert_eq!(scan_err(&mut other, "QR 2 on another device", &qr2), ErrorCode::NotForThisDevice);
    let e3 = scan_err(&mut token, "truncated QR 2", &qr2[..qr2.len() - 3]);
    assert!(matches!(e3, ErrorCode::MalformedMessage | ErrorCode::MessageTampered), "{e3:?}");
    let qr2_changed = changed(&qr2, qr2.len() / 2);
    assert_eq!(scan_err(&mut token, "changed QR 2", &qr2_changed), ErrorCode::MessageTampered);
    let s = no_alloc("scan QR 2 (binding)", || token.scan(&qr2)).unwrap();
    let Screen::BindingCode { replaced: false, .. } = &s else { panic!("{s:?}") };
    let again = no_alloc("scan QR 2 again", || token.scan(&qr2)).unwrap();
    assert_eq!(code(&again), code(&s));

    // The state's round trip, and corrupt states.
    let state = no_alloc("Token::to_bytes", || token.to_bytes());
    let mut token = no_alloc("Token::from_bytes", || Token::from_bytes(&state[..])).unwrap();
    let mut corrupt = *state;
    corrupt[60] ^= 1;
    let e4 = no_alloc("Token::from_bytes (changed)", || Token::from_bytes(&corrupt).map(|_| ()).map_err(|e| e.code()));
    assert_eq!(e4.unwrap_err(), ErrorCode::StateCorrupt);
    let e5 =
        no_alloc("Token::from_bytes (short)", || Token::from_bytes(&state[..100]).map(|_| ()).map_err(|e| e.code()));
    assert_eq!(e5.unwrap_err(), ErrorCode::StateCorrupt);

    let p = w.next(&id, &code(&s));
    assert_eq!(p.step, ActivationStep::Serial);
    let p = w.next(&id, "TS00012345");
    assert_eq!(p.step, ActivationStep::TestOtp);
    let qr3 = p.qr_text.unwrap();

    // The test challenge: errors, then the code.
    assert_eq!(scan_err(&mut other, "challenge on a device never bound", &qr3), ErrorCode::DeviceNotLinked);
    let e6 = scan_err(&mut token, "truncated challenge", &qr3[..qr3.len() - 3]);
    assert!(matches!(e6, ErrorCode::MalformedMessage | ErrorCode::MessageTampered), "{e6:?}");
    let qr3_changed = changed(&qr3, qr3.len() / 2);
    assert_eq!(scan_err(&mut token, "changed challenge", &qr3_changed), ErrorCode::MessageTampered);
    let s = no_alloc("scan the test challenge", || token.scan(&qr3)).unwrap();
    assert!(matches!(s, Screen::Challenge { .. }), "{s:?}");

    // A restart supersedes this activation: a newer binding replaces the
    // one held; the older one and its challenge are refused.
    let id = {
        let e = w.db.order(&order.user_id);
        let o = w.portal.start_activation(&e, &w.db.token("TS00012345"), &w.settings, T0, &mut w.rng);
        w.db.apply(&o);
        let p = o.result.unwrap();
        let s = no_alloc("scan QR 1 of the restart", || token.scan(p.qr_text.as_deref().unwrap())).unwrap();
        w.next(&p.activation_id, &code(&s));
        let qr2b = w.next(&p.activation_id, ACTIVATION_CODE).qr_text.unwrap();
        let s = no_alloc("scan a newer binding (replaces)", || token.scan(&qr2b)).unwrap();
        let Screen::BindingCode { replaced: true, .. } = &s else { panic!("{s:?}") };
        assert_eq!(scan_err(&mut token, "an older binding", &qr2), ErrorCode::TokenAlreadyUsed);
        let e7 = scan_err(&mut token, "a challenge of the replaced binding", &qr3);
        assert!(matches!(e7, ErrorCode::NotForThisDevice | ErrorCode::MessageTampered), "{e7:?}");
        assert_eq!(w.next(&p.activation_id, &code(&s)).step, ActivationStep::Serial);
        p.activation_id
    };
    let qr3 = w.next(&id, "TS00012345").qr_text.unwrap();
    let s = no_alloc("scan the restart's test challenge", || token.scan(&qr3)).unwrap();
    let p = w.next(&id, &code(&s));
    assert_eq!(p.step, ActivationStep::InitialPassword);
    let p = w.next(&id, &order.initial_password);
    assert_eq!(p.step, ActivationStep::NewPassword);
    let done = w.next(&id, NEW_PASSWORD);
    assert_eq!(done.step, ActivationStep::Done);

    // A payment challenge after the delay (text lines, amount, payee).
    let device = w.db.device(done.device_id.as_deref().unwrap());
    let tx = Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into(), "Second line".into()],
    });
    let at = done.usable_from.unwrap();
    let devices = std::slice::from_ref(&device);
    let c = w.portal.create_challenge(devices, tx, ChallengeSettings::default(), at, &mut w.rng).unwrap();
    let s = no_alloc("scan a payment challenge", || token.scan(&c.qr_text)).unwrap();
    let Screen::Challenge { approval: ShownApproval::Transaction { lines: 2, .. }, .. } = &s else { panic!("{s:?}") };
    let o = w.portal.verify_answer(&c.record, devices, &code(&s), at + 5);
    assert_eq!(o.result.unwrap().device_id, device.device_id);
    assert_eq!(scan_err(&mut other, "a payment challenge on another device", &c.qr_text), ErrorCode::DeviceNotLinked);
}
