//! The bodies of every fuzz target, shared by the cargo-fuzz targets in
//! `fuzz_targets/` and by `core/tests/fuzz_corpus.rs`, which replays the
//! corpora on every ordinary `cargo test`. Each function must never panic
//! on any input; the `assert!`s state properties of accepted inputs.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::OnceLock;
use tessera_core::activation::password::MIN_HASH_ITERATIONS;
use tessera_core::activation::{
    parse_factory_file, ActivationRecord, ActivationSettings, ActivationStep, EnrolmentRecord, Screen, Token,
    TokenRecord, FACTORY_FILE_HEADER,
};
use tessera_core::challenge::{
    Amount, Approval, ChallengeRecord, ChallengeSettings, ChallengeState, Transaction, ANSWER_DIGITS,
};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::hex_decode;
use tessera_core::host::Write;
use tessera_core::link::{self, DeviceRecord, DeviceState, PasscodePolicy, PendingDeviceLink, Portal};
use tessera_core::otp::ocra::{OcraInput, OcraSuite};
use tessera_core::otp::uri::{KeyUri, SecretPolicy};
use tessera_core::ErrorCode;

/// `KeyUri::parse` under both policies; accepted URIs must round-trip.
/// Returns whether the input parsed under (Strict, AllowShort).
pub fn otpauth_uri(data: &[u8]) -> (bool, bool) {
    let text = String::from_utf8_lossy(data);
    let mut ok = [false; 2];
    for (i, policy) in [SecretPolicy::Strict, SecretPolicy::AllowShort].into_iter().enumerate() {
        if let Ok(key) = KeyUri::parse(&text, policy) {
            ok[i] = true;
            let again = KeyUri::parse(&key.to_uri(), policy);
            assert_eq!(again.as_ref().ok(), Some(&key), "canonical form of {text:?}");
            assert!(key.generate(1_700_000_000).is_ok());
        }
    }
    (ok[0], ok[1])
}

/// `OcraSuite::parse`, then `compute` with fitting, missing and malformed
/// inputs. Returns whether the suite parsed.
pub fn ocra_suite(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Ok(suite) = OcraSuite::parse(&text) else {
        return false;
    };
    assert_eq!(suite.as_str(), text);
    let session = [0x5a_u8; 999];
    let input = OcraInput {
        counter: suite.uses_counter().then_some(1),
        question: Some("1234"), // valid for QA, QN and QH
        password: suite.pin_algorithm().map(|_| "1234"),
        password_hash: None,
        session: suite.session_len().map(|n| &session[..usize::from(n)]),
        time: suite.time_step_seconds().map(|_| 1_700_000_000),
    };
    assert!(suite.compute(b"12345678901234567890", &input).is_ok());
    let _ = suite.compute(b"", &OcraInput::default());
    let _ = suite.compute(b"", &OcraInput { question: Some(&text), ..input });
    true
}

const NOW: u64 = 1_767_225_600;
const KEY: [u8; 32] = [0x5a; 32];

struct Fixture {
    portal: Portal,
    pending: Vec<u8>,
    state: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // The same steps and seeds as vectors/link.json, so its messages are valid seeds.
        let mut prng = SeededRandom::new([0x01; 32]);
        let mut rng = SeededRandom::new([0x02; 32]);
        let portal = Portal::generate("Example Bank", &mut prng).unwrap();
        let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
        let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
        let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, NOW + 10, &mut rng).unwrap();
        let pending = start.pending.seal(&KEY, &mut rng);
        let out = portal.open_link_request(&start.request).unwrap().accept(
            &portal,
            Some(&offer.record),
            link::DeviceKeyUse::Fresh,
            NOW + 12,
        );
        let state = link::finish_link(start.pending, &out.answer, &KEY, &mut rng).unwrap().state;
        Fixture { portal, pending, state }
    })
}

/// Every decoder of the link protocol on the same input: the QR text, the
/// portal's request and status decoders, the device's answer and status
/// decoders, and every stored blob. Returns how many accepted it.
pub fn link_messages(data: &[u8]) -> usize {
    let f = fixture();
    let text = String::from_utf8_lossy(data);
    let mut accepted = 0;
    if let Ok(o) = link::scan_link_qr(&text, NOW) {
        assert!(o.portal_name.len() <= link::MAX_PORTAL_NAME_LEN);
        accepted += 1;
    }
    if let Ok(r) = f.portal.open_link_request(&text) {
        assert_eq!(r.device_id().len(), 16);
        accepted += 1;
    }
    accepted += usize::from(f.portal.open_status_request(&text).is_ok());
    let mut rng = SeededRandom::new([0x02; 32]);
    let pending = PendingDeviceLink::open(&KEY, &f.pending).unwrap();
    accepted += usize::from(link::finish_link(pending, &text, &KEY, &mut rng).is_ok());
    let state = DeviceState::open(&KEY, &f.state).unwrap();
    let (_, probe) = state.status_request(NOW, &mut rng).unwrap();
    accepted += usize::from(state.read_status_answer(&probe, &text).is_ok());
    accepted += usize::from(DeviceState::open(&KEY, data).is_ok());
    accepted += usize::from(PendingDeviceLink::open(&KEY, data).is_ok());
    accepted += usize::from(f.portal.open_record::<link::DeviceRecord>(&text, "anna", 1, data).is_ok());
    accepted
}

struct ChallengeFixture {
    portal: Portal,
    state: DeviceState,
    device: DeviceRecord,
    challenge: ChallengeRecord,
}

/// When the challenge fixture's device reads and its portal verifies.
pub const CHALLENGE_READ_TIME: u64 = NOW + 125;
pub const CHALLENGE_VERIFY_TIME: u64 = NOW + 150;

fn challenge_fixture() -> &'static ChallengeFixture {
    static F: OnceLock<ChallengeFixture> = OnceLock::new();
    F.get_or_init(|| {
        // vectors/challenge.json: the device of vectors/link.json, confirmed at
        // NOW + 20, and its challenges from seed 0x03*32 (login, then the
        // payment whose record is the fixture), so its messages are valid seeds.
        let mut prng = SeededRandom::new([0x01; 32]);
        let mut rng = SeededRandom::new([0x02; 32]);
        let portal = Portal::generate("Example Bank", &mut prng).unwrap();
        let offer = portal.create_offer("anna@example.org", PasscodePolicy::default(), 300, NOW, &mut prng).unwrap();
        let scanned = link::scan_link_qr(&offer.qr_text, NOW + 10).unwrap();
        let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, NOW + 10, &mut rng).unwrap();
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
        let linked = link::finish_link(start.pending, &out.answer, &KEY, &mut rng).unwrap();
        let device = portal.confirm_link(&pending, &linked.check_code, NOW + 20).result.unwrap();
        let mut crng = SeededRandom::new([0x03; 32]);
        let payment = Approval::Transaction(Transaction {
            amount: Amount::parse("125.50").unwrap(),
            currency: "EUR".into(),
            payee: "ACME Energy Ltd".into(),
            text: vec!["Invoice 2026-118".into()],
        });
        let mut challenge = None;
        for (approval, at) in [(Approval::Login, NOW + 60), (payment, NOW + 120)] {
            let c = portal
                .create_challenge(std::slice::from_ref(&device), approval, ChallengeSettings::default(), at, &mut crng)
                .unwrap();
            challenge = Some(c.record);
        }
        ChallengeFixture {
            state: DeviceState::open(&KEY, &linked.state).unwrap(),
            portal,
            device,
            challenge: challenge.unwrap(),
        }
    })
}

/// Every decoder of challenge/response on the same input: the device's
/// `read_challenge` on the text, the portal's `verify_answer` of the
/// fixture's payment challenge on the text (typed code or signed answer),
/// and the sealed challenge record. Returns each one's verdict, in that
/// order (`Ok` = accepted).
pub fn challenge_messages(data: &[u8]) -> [Result<(), ErrorCode>; 3] {
    let f = challenge_fixture();
    let text = String::from_utf8_lossy(data);
    let read = f.state.read_challenge(&text, CHALLENGE_READ_TIME).map(|c| {
        assert!(ANSWER_DIGITS.contains(&c.digits));
        assert_eq!(c.challenge_id.len(), 32);
        assert!(c.expires_at.saturating_add(tessera_core::challenge::CHALLENGE_SKEW) > CHALLENGE_READ_TIME);
    });
    let o = f.portal.verify_answer(&f.challenge, std::slice::from_ref(&f.device), &text, CHALLENGE_VERIFY_TIME);
    let answered = o.writes.iter().any(|w| matches!(w, Write::Challenge(c) if c.state != ChallengeState::Open));
    // Accepted exactly when the challenge is consumed; a refusal writes at
    // most the device's failure count.
    assert_eq!(answered, o.result.is_ok(), "{text:?}");
    assert!(o.writes.len() <= 2);
    if let Err(e) = &o.result {
        if !matches!(e.code(), ErrorCode::InvalidAnswer | ErrorCode::LockedOut) {
            assert!(o.writes.is_empty(), "{text:?}: {:?}", e.code());
        }
    }
    let verify = o.result.map(|a| assert_eq!(a.device_id, f.device.device_id));
    let (id, account) = (&f.challenge.challenge_id, &f.challenge.account);
    let record = f.portal.open_record::<ChallengeRecord>(id, account, 1, data).map(|r| {
        assert_eq!(r.challenge_id, *id);
        assert!(ANSWER_DIGITS.contains(&r.digits));
    });
    [read.map_err(|e| e.code()), verify.map_err(|e| e.code()), record.map_err(|e| e.code())]
}

// ---------------------------------------------------------------- flow 3

/// The offline authenticator of vectors/activation.json.
pub const ACTIVATION_SERIAL: &str = "TS00012345";
/// Its P-256 device secret (SHA-256 of "test"), as in vectors/activation.json.
const ACTIVATION_DEVICE_SECRET: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const ACTIVATION_ACCOUNT: &str = "anna@example.org";
const ACTIVATION_CODE: &str = "271828";
const ACTIVATION_START: u64 = NOW + 120;
/// When the fuzzed entries are made (within the activation's 30 minutes).
pub const ACTIVATION_ENTRY_TIME: u64 = NOW + 300;

/// The steps of `activation_next`, in order (the fixture holds the records
/// of an activation waiting at each).
pub const ACTIVATION_STEPS: [ActivationStep; 7] = [
    ActivationStep::DeviceCode,
    ActivationStep::ActivationCode,
    ActivationStep::BindingCode,
    ActivationStep::Serial,
    ActivationStep::TestOtp,
    ActivationStep::InitialPassword,
    ActivationStep::NewPassword,
];

/// Indices of [`activation_messages`]' verdicts.
pub mod decoder {
    /// `Token::scan` of the device before its binding.
    pub const SCAN_UNBOUND: usize = 0;
    /// `Token::scan` of the device bound by the binding QR code.
    pub const SCAN_BOUND: usize = 1;
    /// `parse_factory_file` (and the portal's import).
    pub const FACTORY_FILE: usize = 2;
    /// `Token::from_bytes` (the 133-byte state).
    pub const TOKEN_STATE: usize = 3;
    /// `Token::open` (the state sealed as blob kind 0x15 under the storage key 0x5a*32).
    pub const TOKEN_SEALED: usize = 4;
    /// `activation_next` at step `ACTIVATION_STEPS[i]` is `STEP + i`.
    pub const STEP: usize = 5;
    /// How many verdicts.
    pub const COUNT: usize = STEP + 7;
}

/// What one decoder of [`activation_messages`] made of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (a scan shows something; an entry moves the step on).
    Accepted,
    /// The entry the activation accepted last, again: nothing judged or written.
    Repeated,
    /// Refused with this code.
    Refused(ErrorCode),
}

impl Verdict {
    fn of(r: Result<(), ErrorCode>) -> Verdict {
        r.map_or_else(Verdict::Refused, |()| Verdict::Accepted)
    }
}

/// Records of an activation waiting at one step, as the host stored them.
struct StepRecords {
    activation: ActivationRecord,
    order: EnrolmentRecord,
    token: TokenRecord,
    /// The last device code, binding code, serial or test code accepted
    /// before this step (typed again, it is a repeat).
    last_entry: Option<String>,
}

struct ActivationFixture {
    portal: Portal,
    settings: ActivationSettings,
    unbound: Token,
    bound: Token,
    steps: Vec<StepRecords>,
    device_code: String,
    binding_code: String,
    test_code: String,
    initial_password: String,
}

fn screen_code(s: &Screen) -> String {
    match s {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().into()
        }
    }
}

fn activation_fixture() -> &'static ActivationFixture {
    static F: OnceLock<ActivationFixture> = OnceLock::new();
    F.get_or_init(|| {
        // vectors/activation.json: the same seeds, steps and times, so its
        // messages (and fuzz/activation_seeds.py's) are valid seeds.
        let portal = Portal::generate("Example Bank", &mut SeededRandom::new([0x01; 32])).unwrap();
        let settings = ActivationSettings { hash_iterations: MIN_HASH_ITERATIONS, ..ActivationSettings::default() };
        let mut rng = SeededRandom::new([0x05; 32]);
        let secret: [u8; 32] = hex_decode(ACTIVATION_DEVICE_SECRET).unwrap().try_into().unwrap();
        let mut token = Token::from_factory(ACTIVATION_SERIAL, &secret).unwrap();
        let unbound = token.clone();
        let file = format!("{FACTORY_FILE_HEADER}\n{}\n", token.factory_record().to_line());
        let mut t = latest_token(&portal.import_factory_records(&file, &[], NOW).writes).unwrap();
        let o = portal.order_device(ACTIVATION_ACCOUNT, ACTIVATION_CODE, &t, &settings, NOW + 60, &mut rng);
        let mut e = latest_order(&o.writes).unwrap();
        t = latest_token(&o.writes).unwrap();
        let initial_password = String::clone(&o.result.unwrap().initial_password);
        let o = portal.start_activation(&e, &t, &settings, ACTIVATION_START, &mut rng);
        e = latest_order(&o.writes).unwrap();
        let mut a = latest_activation(&o.writes).unwrap();
        let mut qr = o.result.unwrap().qr_text;
        let mut steps = Vec::new();
        let (mut device_code, mut binding_code, mut test_code) = (String::new(), String::new(), String::new());
        let (mut bound, mut last_entry) = (None, None);
        for (i, step) in ACTIVATION_STEPS.into_iter().enumerate() {
            assert_eq!(a.step, step);
            steps.push(StepRecords {
                activation: a.clone(),
                order: e.clone(),
                token: t.clone(),
                last_entry: last_entry.clone(),
            });
            let input = match step {
                ActivationStep::DeviceCode => {
                    device_code = screen_code(&token.scan(qr.as_deref().unwrap()).unwrap());
                    device_code.clone()
                }
                ActivationStep::ActivationCode => ACTIVATION_CODE.into(),
                ActivationStep::BindingCode => {
                    binding_code = screen_code(&token.scan(qr.as_deref().unwrap()).unwrap());
                    bound = Some(token.clone());
                    binding_code.clone()
                }
                ActivationStep::Serial => "ts-0001 2345".into(),
                ActivationStep::TestOtp => {
                    test_code = screen_code(&token.scan(qr.as_deref().unwrap()).unwrap());
                    test_code.clone()
                }
                ActivationStep::InitialPassword => initial_password.clone(),
                _ => "correct horse battery staple".into(),
            };
            let at = ACTIVATION_START + 10 * (i as u64 + 1);
            let o = portal.activation_next(&a, &e, &t, None, &input, &settings, at, &mut rng);
            a = latest_activation(&o.writes).unwrap();
            e = latest_order(&o.writes).unwrap_or(e);
            t = latest_token(&o.writes).unwrap_or(t);
            qr = o.result.unwrap().qr_text;
            if matches!(
                step,
                ActivationStep::DeviceCode
                    | ActivationStep::BindingCode
                    | ActivationStep::Serial
                    | ActivationStep::TestOtp
            ) {
                last_entry = Some(input);
            }
        }
        assert_eq!(a.step, ActivationStep::Done);
        ActivationFixture {
            portal,
            settings,
            unbound,
            bound: bound.unwrap(),
            steps,
            device_code,
            binding_code,
            test_code,
            initial_password,
        }
    })
}

fn latest_token(w: &[Write]) -> Option<TokenRecord> {
    w.iter().find_map(|w| if let Write::Token(t) = w { Some(t.clone()) } else { None })
}

fn latest_order(w: &[Write]) -> Option<EnrolmentRecord> {
    w.iter().find_map(|w| if let Write::Enrolment(e) = w { Some(e.clone()) } else { None })
}

fn latest_activation(w: &[Write]) -> Option<ActivationRecord> {
    w.iter().find_map(|w| if let Write::Activation(a) = w { Some(a.clone()) } else { None })
}

/// Whether `activation_messages` should also run the entries the portal
/// checks with PBKDF2 (10 000 iterations each): the activation code, the
/// initial password, and a new password the policy accepts (which hashes it
/// and 10 recovery codes: about 36 ms in a fuzzing build, against 0.1 ms
/// for all the rest). The fuzz target runs them for one input in 256 (a
/// fixed function of the input, so a crash reproduces); corpus replay
/// always does.
pub fn activation_slow_steps(data: &[u8]) -> bool {
    data.iter().fold(0x9e_u8, |h, &b| h.rotate_left(3) ^ b) == 0
}

/// A serial number as the portal compares it: ASCII letters upper-cased,
/// spaces and dashes dropped; `None` if anything else is left.
fn typed_serial(typed: &str) -> Option<String> {
    let s: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
    s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()).then_some(s)
}

/// Digits as the portal compares them: without white space and dashes.
fn typed_digits(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

/// A typed code as the portal compares repeats and initial passwords:
/// without white space and dashes, ASCII letters upper-cased.
fn typed_code(typed: &str) -> String {
    typed_digits(typed).to_ascii_uppercase()
}

fn serial_rules(s: &str) -> bool {
    (6..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// One scan by a copy of `token`: a refusal never changes its state; what
/// an accepted QR code may change.
fn scan_checked(token: &Token, text: &str) -> Result<(), ErrorCode> {
    let before = token.to_bytes();
    let mut t = token.clone();
    let screen = match t.scan(text) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(*t.to_bytes(), *before, "a refused scan changed the state: {text:?}");
            return Err(e.code());
        }
    };
    let after = t.to_bytes();
    match &screen {
        Screen::DeviceCode { code, .. } => {
            assert_eq!(code.as_str().len(), 10);
            assert_eq!(*after, *before, "the first QR code changes nothing");
        }
        Screen::BindingCode { code, replaced, user_id, .. } => {
            assert_eq!(code.as_str().len(), 8);
            assert_eq!(t.user_id(), Some(user_id.as_str()));
            match token.device_id() {
                // Unbound: bound now, nothing replaced.
                None => assert!(!replaced && t.device_id().is_some()),
                // The same binding again changes nothing; a newer one (another
                // generation, so another device id) replaces it.
                Some(old) => {
                    assert_eq!(*replaced, t.device_id() != Some(old));
                    assert_eq!(*replaced, *after != *before);
                }
            }
        }
        Screen::Challenge { code, user_id, .. } => {
            assert!(ANSWER_DIGITS.contains(&(code.as_str().len() as u8)));
            assert_eq!(Some(user_id.as_str()), token.user_id(), "only a bound device reads challenges");
            assert_eq!(*after, *before, "a challenge changes nothing");
        }
    }
    // Whatever it holds now reads back.
    assert_eq!(*Token::from_bytes(&after[..]).unwrap().to_bytes(), *after);
    Ok(())
}

/// `parse_factory_file`, and the portal's import of the same text, which
/// must agree; accepted records obey the serial rules, carry a compressed
/// key, and round-trip.
fn factory_checked(f: &ActivationFixture, text: &str) -> Result<(), ErrorCode> {
    let parsed = parse_factory_file(text);
    let imported = f.portal.import_factory_records(text, &[], NOW);
    match (&parsed, &imported.result) {
        (Ok(records), Ok(serials)) => {
            assert_eq!(records.iter().map(|r| &r.serial).collect::<Vec<_>>(), serials.iter().collect::<Vec<_>>());
            assert_eq!(imported.writes.len(), records.len());
            let mut last = 1;
            for (i, r) in records.iter().enumerate() {
                assert!(serial_rules(&r.serial), "{:?}", r.serial);
                assert!(matches!(r.public_key[0], 2 | 3));
                assert!(r.line > last, "line numbers increase");
                last = r.line;
                assert!(records[..i].iter().all(|o| o.serial != r.serial), "a serial repeats");
                let again = parse_factory_file(&format!("{FACTORY_FILE_HEADER}\n{}\n", r.to_line())).unwrap();
                assert_eq!((again.len(), again[0].to_line()), (1, r.to_line()));
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code());
            assert!(imported.writes.is_empty());
            assert!(a.detail().starts_with("line "), "{}", a.detail());
        }
        _ => panic!("parse and import disagree on {text:?}"),
    }
    parsed.map(|_| ()).map_err(|e| e.code())
}

/// A state that reads back: its serial obeys the rules and it writes
/// itself back to bytes that read as the same state.
fn state_checked(t: Result<Token, tessera_core::Error>) -> Result<(), ErrorCode> {
    let t = t.map_err(|e| e.code())?;
    assert!(serial_rules(t.serial()));
    let bytes = t.to_bytes();
    assert_eq!(*Token::from_bytes(&bytes[..]).unwrap().to_bytes(), *bytes);
    Ok(())
}

/// `activation_next` at step `i` of the fixture with `text` as the entry:
/// a right entry moves exactly one step on; the entry accepted last, again,
/// is a repeat that writes nothing; a wrong one is refused with the step's
/// own error, counted where the protocol counts it, and leaves the step
/// where it was.
fn entry_checked(f: &ActivationFixture, i: usize, text: &str) -> Verdict {
    let r = &f.steps[i];
    let step = ACTIVATION_STEPS[i];
    let mut rng = SeededRandom::new([0x08; 32]);
    let o = f.portal.activation_next(
        &r.activation,
        &r.order,
        &r.token,
        None,
        text,
        &f.settings,
        ACTIVATION_ENTRY_TIME,
        &mut rng,
    );
    let activation = latest_activation(&o.writes);
    let order = latest_order(&o.writes);
    match &o.result {
        Ok(p) if p.repeated => {
            assert!(o.writes.is_empty() && o.events.is_empty(), "a repeat writes nothing");
            assert_eq!(p.step, step);
            assert_eq!(r.last_entry.as_deref().map(typed_code), Some(typed_code(text)), "{text:?}");
            Verdict::Repeated
        }
        Ok(p) => {
            let want = if i + 1 < ACTIVATION_STEPS.len() { ACTIVATION_STEPS[i + 1] } else { ActivationStep::Done };
            assert_eq!(p.step, want);
            assert_eq!(activation.as_ref().map(|a| a.step), Some(want));
            assert_eq!(activation.unwrap().failures, 0);
            // Only the right entry is accepted (HMAC pads a PBKDF2 password
            // with zero bytes: trailing NULs are not seen).
            match step {
                ActivationStep::DeviceCode => {
                    assert_eq!(typed_digits(text), f.device_code);
                    // Possession proven: the order names this activation now.
                    assert_eq!(order.unwrap().activation_id.as_deref(), Some(r.activation.activation_id.as_str()));
                }
                ActivationStep::BindingCode => assert_eq!(typed_digits(text), f.binding_code),
                ActivationStep::TestOtp => assert_eq!(typed_digits(text), f.test_code),
                ActivationStep::ActivationCode => assert_eq!(text.trim_end_matches('\0'), ACTIVATION_CODE),
                ActivationStep::Serial => assert_eq!(typed_serial(text).as_deref(), Some(ACTIVATION_SERIAL)),
                ActivationStep::InitialPassword => {
                    assert_eq!(typed_code(text).trim_end_matches('\0'), typed_code(&f.initial_password))
                }
                _ => {
                    assert_eq!(o.writes.len(), 5);
                    assert_eq!(p.recovery_codes.len(), 10);
                    assert_eq!(p.device_id.as_deref().map(str::len), Some(16));
                }
            }
            Verdict::Accepted
        }
        Err(e) => {
            let code = e.code();
            let (want, counted_on_activation) = match step {
                ActivationStep::DeviceCode => (ErrorCode::DeviceCodeMismatch, true),
                ActivationStep::ActivationCode => (ErrorCode::ActivationCodeMismatch, false),
                ActivationStep::BindingCode => (ErrorCode::BindingCodeMismatch, true),
                ActivationStep::Serial => (ErrorCode::SerialMismatch, true),
                ActivationStep::TestOtp => (ErrorCode::InvalidAnswer, true),
                ActivationStep::InitialPassword => (ErrorCode::PasswordMismatch, false),
                _ => (ErrorCode::PasswordPolicy, false),
            };
            assert_eq!(code, want, "{step:?} {text:?}: {e}");
            if counted_on_activation {
                // Counted on the activation, which stays at its step.
                assert_eq!(o.writes.len(), 1);
                let a = activation.unwrap();
                assert_eq!((a.step, a.failures, a.version), (step, 1, r.activation.version + 1));
            } else if code == ErrorCode::PasswordPolicy {
                assert!(o.writes.is_empty(), "a refused new password writes nothing");
            } else {
                // Counted on the order; the activation is not written.
                assert_eq!(o.writes.len(), 1);
                let e = order.unwrap();
                assert_eq!(e.code_failures + e.password_failures, 1);
            }
            Verdict::Refused(code)
        }
    }
}

/// Every decoder of flow 3 on the same input: the device's `Token::scan`
/// (unbound, and bound, which reads challenges), `parse_factory_file` (with
/// the portal's import), `Token::from_bytes`, `Token::open`, and the
/// portal's `activation_next` with the input as the user's entry at each
/// step of the fixture's activation. Returns each one's verdict in the
/// order of [`decoder`] (`None`: a PBKDF2 step skipped because `slow` is
/// false).
pub fn activation_messages(data: &[u8], slow: bool) -> [Option<Verdict>; decoder::COUNT] {
    let f = activation_fixture();
    let text = String::from_utf8_lossy(data);
    let mut v = [None; decoder::COUNT];
    v[decoder::SCAN_UNBOUND] = Some(Verdict::of(scan_checked(&f.unbound, &text)));
    v[decoder::SCAN_BOUND] = Some(Verdict::of(scan_checked(&f.bound, &text)));
    v[decoder::FACTORY_FILE] = Some(Verdict::of(factory_checked(f, &text)));
    v[decoder::TOKEN_STATE] = Some(Verdict::of(state_checked(Token::from_bytes(data))));
    v[decoder::TOKEN_SEALED] = Some(Verdict::of(state_checked(Token::open(&KEY, data))));
    for (i, step) in ACTIVATION_STEPS.into_iter().enumerate() {
        let repeat = f.steps[i].last_entry.as_deref().map(typed_code) == Some(typed_code(&text));
        let pbkdf2 = !repeat
            && match step {
                ActivationStep::ActivationCode | ActivationStep::InitialPassword => true,
                ActivationStep::NewPassword => {
                    // The policy is cheap; past it the portal hashes.
                    let r = &f.steps[i].activation;
                    let context = [r.user_id.as_str(), r.account.as_str(), r.serial.as_str()];
                    f.settings.password.check(&text, &context, &[], &f.settings.blocklist).is_ok()
                }
                _ => false,
            };
        if slow || !pbkdf2 {
            v[decoder::STEP + i] = Some(entry_checked(f, i, &text));
        }
    }
    v
}
