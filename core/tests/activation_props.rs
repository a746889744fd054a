//! Property tests of flow 3, activating an offline authenticator: a changed
//! activation QR code is refused with a typed error and changes nothing on
//! the device, wrong device and binding codes are refused and counted, a
//! changed token state is `STATE_CORRUPT`, a device never goes back to an
//! older binding, the code it shows for a challenge is the one the portal
//! accepts, and serial numbers are typed in any case with spaces and
//! dashes. The portal hashes with the fewest PBKDF2 iterations allowed, so
//! each property stays fast.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use proptest::prelude::*;
use std::sync::OnceLock;
use tessera_core::activation::password::MIN_HASH_ITERATIONS;
use tessera_core::activation::{
    ActivationRecord, ActivationSettings, ActivationState, ActivationStep, EnrolmentRecord, Screen, ShownApproval,
    Token, TokenRecord, FACTORY_FILE_HEADER, MAX_ACTIVATION_FAILURES, TOKEN_STATE_LEN,
};
use tessera_core::challenge::{Amount, Approval, ChallengeSettings, Transaction};
use tessera_core::crypto::SeededRandom;
use tessera_core::encoding::{base45_decode_as, base45_encode};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{DeviceRecord, Portal};
use tessera_core::ErrorCode;

const NOW: u64 = 1_767_225_600;
const SERIAL: &str = "TS00012345";
const ACTIVATION_CODE: &str = "271828";
const NEW_PASSWORD: &str = "correct horse battery staple";
/// When the entries are made (well within the activation's 30 minutes).
const ENTRY_TIME: u64 = NOW + 100;
const STORAGE_KEY: [u8; 32] = [0x5a; 32];

const STEPS: [ActivationStep; 7] = [
    ActivationStep::DeviceCode,
    ActivationStep::ActivationCode,
    ActivationStep::BindingCode,
    ActivationStep::Serial,
    ActivationStep::TestOtp,
    ActivationStep::InitialPassword,
    ActivationStep::NewPassword,
];

fn settings() -> ActivationSettings {
    ActivationSettings { hash_iterations: MIN_HASH_ITERATIONS, ..ActivationSettings::default() }
}

/// The records of an activation waiting at one step, as the host stored them.
#[derive(Clone)]
struct Stage {
    activation: ActivationRecord,
    order: EnrolmentRecord,
    token: TokenRecord,
}

/// One activation, run for some steps.
struct Run {
    portal: Portal,
    /// The device before the binding.
    unbound: Token,
    /// The device after the run.
    token: Token,
    /// The records waiting at step i, for each step reached.
    stages: Vec<Stage>,
    /// The bytes of each QR code the portal showed, in order.
    qrs: Vec<Vec<u8>>,
    /// The (right) entries made, in order.
    entries: Vec<String>,
    /// The device record, once done.
    device: Option<DeviceRecord>,
    usable_from: Option<u64>,
}

fn screen_code(s: &Screen) -> String {
    match s {
        Screen::DeviceCode { code, .. } | Screen::BindingCode { code, .. } | Screen::Challenge { code, .. } => {
            code.as_str().into()
        }
    }
}

fn first<T>(w: &[Write], f: impl Fn(&Write) -> Option<T>) -> Option<T> {
    w.iter().find_map(f)
}

fn activation_of(w: &[Write]) -> Option<ActivationRecord> {
    first(w, |w| if let Write::Activation(a) = w { Some(a.clone()) } else { None })
}

fn order_of(w: &[Write]) -> Option<EnrolmentRecord> {
    first(w, |w| if let Write::Enrolment(e) = w { Some(e.clone()) } else { None })
}

fn token_of(w: &[Write]) -> Option<TokenRecord> {
    first(w, |w| if let Write::Token(t) = w { Some(t.clone()) } else { None })
}

fn qr_bytes(qr: &str) -> Vec<u8> {
    base45_decode_as(qr.strip_prefix("TS:").unwrap(), ErrorCode::MalformedMessage).unwrap()
}

fn qr_text(b: &[u8]) -> String {
    format!("TS:{}", base45_encode(b))
}

/// Import a new device `serial`, order it, start its activation and make
/// the first `entries` right entries (7: done).
fn run(serial: &str, seed: u8, entries: usize) -> Run {
    let mut rng = SeededRandom::new([seed; 32]);
    let portal = Portal::generate("Example Bank", &mut rng).unwrap();
    let s = settings();
    let mut token = Token::new(serial, &mut rng).unwrap();
    let unbound = token.clone();
    let file = format!("{FACTORY_FILE_HEADER}\n{}\n", token.factory_record().to_line());
    let mut t = token_of(&portal.import_factory_records(&file, &[], NOW).writes).unwrap();
    let o = portal.order_device("anna@example.org", ACTIVATION_CODE, &t, &s, NOW, &mut rng);
    let mut e = order_of(&o.writes).unwrap();
    t = token_of(&o.writes).unwrap();
    let initial = String::clone(&o.result.unwrap().initial_password);
    let o = portal.start_activation(&e, &t, &s, NOW, &mut rng);
    e = order_of(&o.writes).unwrap();
    let mut a = activation_of(&o.writes).unwrap();
    let mut qr = o.result.unwrap().qr_text;
    let (mut stages, mut qrs, mut made) = (vec![], vec![], Vec::<String>::new());
    let (mut device, mut usable_from) = (None, None);
    for step in STEPS.into_iter().take(entries.min(6) + 1) {
        stages.push(Stage { activation: a.clone(), order: e.clone(), token: t.clone() });
        if made.len() == entries {
            break;
        }
        let input = match step {
            ActivationStep::DeviceCode | ActivationStep::BindingCode | ActivationStep::TestOtp => {
                let text = qr.clone().unwrap();
                qrs.push(qr_bytes(&text));
                screen_code(&token.scan(&text).unwrap())
            }
            ActivationStep::ActivationCode => ACTIVATION_CODE.into(),
            ActivationStep::Serial => serial.into(),
            ActivationStep::InitialPassword => initial.clone(),
            _ => NEW_PASSWORD.into(),
        };
        let o = portal.activation_next(&a, &e, &t, None, &input, &s, ENTRY_TIME, &mut rng);
        a = activation_of(&o.writes).unwrap();
        e = order_of(&o.writes).unwrap_or(e);
        t = token_of(&o.writes).unwrap_or(t);
        device = first(&o.writes, |w| if let Write::Device(d) = w { Some(d.clone()) } else { None }).or(device);
        let p = o.result.unwrap();
        qr = p.qr_text;
        usable_from = p.usable_from.or(usable_from);
        made.push(input);
    }
    Run { portal, unbound, token, stages, qrs, entries: made, device, usable_from }
}

/// A whole activation of device `SERIAL` (seed 0x0d).
fn fixture() -> &'static Run {
    static F: OnceLock<Run> = OnceLock::new();
    F.get_or_init(|| {
        let r = run(SERIAL, 0x0d, 7);
        assert!(r.device.is_some() && r.stages.len() == 7 && r.qrs.len() == 3);
        r
    })
}

/// `activation_next` at `stage` with `input` (the fixture's settings).
fn enter(
    portal: &Portal,
    stage: &Stage,
    input: &str,
    rng: &mut SeededRandom,
) -> Outcome<tessera_core::activation::ActivationProgress> {
    portal.activation_next(&stage.activation, &stage.order, &stage.token, None, input, &settings(), ENTRY_TIME, rng)
}

/// Digits as the portal compares them: without white space and dashes.
fn typed_digits(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
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

fn approval() -> impl Strategy<Value = Approval> {
    prop_oneof![
        1 => Just(Approval::Login),
        4 => (amount_text(), "[A-Z]{3}", line(), prop::collection::vec(line(), 0..=3)).prop_map(|(a, c, p, t)| {
            Approval::Transaction(Transaction { amount: Amount::parse(&a).unwrap(), currency: c, payee: p, text: t })
        }),
    ]
}

/// Wrong entries for a code of `digits` digits: other codes of that length
/// (with separators the portal ignores), other lengths, any text.
fn wrong_code(digits: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::string::string_regex(&format!("[0-9]{{{digits}}}")).unwrap(),
        1 => proptest::string::string_regex(&format!("[0-9]{{3}}[ -][0-9]{{{}}}", digits - 3)).unwrap(),
        1 => "[0-9]{0,12}",
        1 => "\\PC{0,24}",
    ]
}

/// A serial number and how a user types it: each letter in either case,
/// spaces and dashes anywhere.
fn typed_serial() -> impl Strategy<Value = (String, String)> {
    ("[A-Z0-9]{6,16}", prop::collection::vec((any::<bool>(), 0usize..5), 17)).prop_map(|(serial, typing)| {
        let seps = ["", "", " ", "-", " - "];
        let mut typed = String::new();
        for (i, c) in serial.chars().enumerate() {
            typed.push_str(seps[typing[i].1]);
            typed.push(if typing[i].0 { c.to_ascii_lowercase() } else { c });
        }
        typed.push_str(seps[typing[16].1]);
        (serial, typed)
    })
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Re-encoded as valid Base45 text, so every change reaches the MAC or
    /// the AEAD: refused with a typed error, before or after the binding,
    /// and the device's state is unchanged.
    #[test]
    fn any_changed_byte_of_an_activation_qr_is_refused_and_changes_nothing(
        binding in any::<bool>(), idx in any::<usize>(), mask in 1u8.., cut in any::<usize>(), extra in any::<u8>()
    ) {
        let f = fixture();
        let bytes = &f.qrs[usize::from(binding)];
        let mut changed = bytes.clone();
        let i = idx % bytes.len();
        changed[i] ^= mask;
        let mut longer = bytes.clone();
        longer.push(extra);
        for (what, qr) in [("changed", &changed), ("truncated", &bytes[..cut % bytes.len()].to_vec()), ("longer", &longer)] {
            for token in [&f.unbound, &f.token] {
                let mut t = token.clone();
                let e = t.scan(&qr_text(qr)).unwrap_err().code();
                // A first byte turned into the challenge kind reaches the
                // challenge reader: an unbound device has no binding to read it with.
                let challenge_kind = qr.first() == Some(&0x20) && token.user_id().is_none();
                prop_assert!(
                    matches!(
                        e,
                        ErrorCode::MessageTampered
                            | ErrorCode::NotForThisDevice
                            | ErrorCode::MalformedMessage
                            | ErrorCode::WrongMessageKind
                            | ErrorCode::UnsupportedVersion
                    ) || (challenge_kind && e == ErrorCode::DeviceNotLinked),
                    "{what} byte {i} of QR {}: {e}", usize::from(binding) + 1
                );
                prop_assert_eq!(*t.to_bytes(), *token.to_bytes());
            }
        }
    }

    /// Each wrong code is refused with the step's error and counted on the
    /// activation, which stays at its step; the 5th ends it, and after it
    /// nothing is taken, not even the right code. Before that the right
    /// code still moves on.
    #[test]
    fn wrong_device_and_binding_codes_are_refused_and_counted(
        binding in any::<bool>(),
        wrong in prop::collection::vec(wrong_code(10), 1..=6),
        wrong8 in prop::collection::vec(wrong_code(8), 1..=6),
    ) {
        let f = fixture();
        let (i, wrong, mismatch) = if binding {
            (2, wrong8, ErrorCode::BindingCodeMismatch)
        } else {
            (0, wrong, ErrorCode::DeviceCodeMismatch)
        };
        let right = &f.entries[i];
        // Neither the right code nor the one accepted before it (a repeat).
        prop_assume!(wrong.iter().all(|w| typed_digits(w) != *right && typed_digits(w) != f.entries[0]));
        let mut rng = SeededRandom::new([0x0e; 32]);
        let mut stage = f.stages[i].clone();
        for (n, w) in wrong.iter().enumerate() {
            let n = n as u32 + 1;
            let o = enter(&f.portal, &stage, w, &mut rng);
            let e = o.result.unwrap_err().code();
            if n > MAX_ACTIVATION_FAILURES {
                prop_assert_eq!(e, ErrorCode::LockedOut);
                prop_assert!(o.writes.is_empty());
                continue;
            }
            prop_assert_eq!(o.writes.len(), 1);
            let a = activation_of(&o.writes).unwrap();
            prop_assert_eq!((a.step, a.failures, a.version), (STEPS[i], n, stage.activation.version + 1));
            if n < MAX_ACTIVATION_FAILURES {
                prop_assert_eq!(e, mismatch);
                prop_assert_eq!(&a.state, &ActivationState::Open);
            } else {
                prop_assert_eq!(e, ErrorCode::LockedOut);
                prop_assert!(matches!(a.state, ActivationState::LockedOut { .. }), "{:?}", a.state);
            }
            stage.activation = a;
        }
        let o = enter(&f.portal, &stage, right, &mut rng);
        if stage.activation.failures < MAX_ACTIVATION_FAILURES {
            prop_assert_eq!(o.result.unwrap().step, STEPS[i + 1]);
        } else {
            prop_assert_eq!(o.result.unwrap_err().code(), ErrorCode::LockedOut);
        }
    }

    /// The 133 bytes check themselves: any changed byte, any other length,
    /// is `STATE_CORRUPT`; so is any change of the sealed state (or the
    /// envelope error of its first two bytes).
    #[test]
    fn any_change_of_the_token_state_is_state_corrupt(
        bound in any::<bool>(), idx in 0..TOKEN_STATE_LEN, mask in 1u8.., len in 0usize..300, sidx in any::<usize>()
    ) {
        let f = fixture();
        let token = if bound { &f.token } else { &f.unbound };
        let state = token.to_bytes();
        prop_assert_eq!(*Token::from_bytes(&state[..]).unwrap().to_bytes(), *state);
        let mut changed = *state;
        changed[idx] ^= mask;
        prop_assert_eq!(Token::from_bytes(&changed).unwrap_err().code(), ErrorCode::StateCorrupt);
        prop_assume!(len != TOKEN_STATE_LEN);
        let mut other = state.to_vec();
        other.resize(len, 0);
        prop_assert_eq!(Token::from_bytes(&other).unwrap_err().code(), ErrorCode::StateCorrupt);

        let sealed = token.seal(&STORAGE_KEY, &mut SeededRandom::new([0x0f; 32]));
        prop_assert_eq!(*Token::open(&STORAGE_KEY, &sealed).unwrap().to_bytes(), *state);
        let mut s = sealed.clone();
        let j = sidx % s.len();
        s[j] ^= mask;
        let e = Token::open(&STORAGE_KEY, &s).unwrap_err().code();
        if j < 2 {
            prop_assert!(matches!(e, ErrorCode::StateCorrupt | ErrorCode::WrongMessageKind | ErrorCode::UnsupportedVersion), "{e}");
        } else {
            prop_assert_eq!(e, ErrorCode::StateCorrupt);
        }
        prop_assert_eq!(Token::open(&[0x5b; 32], &sealed).unwrap_err().code(), ErrorCode::StateCorrupt);
    }

    /// Binding QR codes of distinct generations (the portal issues the
    /// device's generation + 1), scanned in any order and any number of
    /// times: the device takes a newer one (replacing its binding), shows
    /// the same code for its own again, and refuses an older one
    /// (`TOKEN_ALREADY_USED`) without changing.
    #[test]
    fn a_token_never_accepts_a_binding_of_a_lower_generation(
        generations in prop::collection::btree_set(prop_oneof![1u32..6, 1u32..=u32::MAX], 2..=4),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..12),
    ) {
        let f = fixture();
        let mut rng = SeededRandom::new([0x10; 32]);
        let generations: Vec<u32> = generations.into_iter().collect();
        let qrs: Vec<String> = generations
            .iter()
            .map(|&g| {
                let mut stage = f.stages[1].clone();
                stage.token.generation = g - 1;
                let p = enter(&f.portal, &stage, ACTIVATION_CODE, &mut rng).result.unwrap();
                p.qr_text.unwrap()
            })
            .collect();
        let mut token = f.unbound.clone();
        // The binding it holds: (generation, index of its QR code, its code).
        let mut held: Option<(u32, usize, String)> = None;
        for pick in order {
            let j = pick.index(qrs.len());
            let g = generations[j];
            let before = token.to_bytes();
            match (token.scan(&qrs[j]), &held) {
                (Err(e), Some((hg, _, _))) => {
                    prop_assert!(g < *hg, "generation {g} refused while holding {hg}: {e}");
                    prop_assert_eq!(e.code(), ErrorCode::TokenAlreadyUsed);
                    prop_assert_eq!(*token.to_bytes(), *before);
                }
                (Err(e), None) => prop_assert!(false, "an unbound device refused generation {g}: {e}"),
                (Ok(Screen::BindingCode { code, replaced, .. }), _) => {
                    match &held {
                        Some((hg, hj, hcode)) if *hj == j => {
                            prop_assert!(!replaced && code.as_str() == hcode && *hg == g);
                            prop_assert_eq!(*token.to_bytes(), *before);
                        }
                        Some((hg, _, _)) => prop_assert!(replaced && g > *hg, "{g} after {hg}"),
                        None => prop_assert!(!replaced),
                    }
                    held = Some((g, j, code.as_str().to_string()));
                }
                (Ok(other), _) => prop_assert!(false, "{other:?}"),
            }
            // It holds the newest generation it saw, and reads back so.
            let (hg, _, _) = held.as_ref().unwrap();
            prop_assert_eq!(&token.to_bytes()[51..55], &hg.to_be_bytes()[..]);
            prop_assert_eq!(*Token::from_bytes(&token.to_bytes()[..]).unwrap().to_bytes(), *token.to_bytes());
        }
    }

    /// Whatever the approval, digits and time-to-live, the code the device
    /// shows is the one the portal accepts for it; it shows exactly the
    /// approval; any other code of the same length is refused.
    #[test]
    fn the_code_the_token_shows_is_the_one_the_portal_accepts(
        approval in approval(), digits in 6u8..=10, ttl in 1u64..=900, after in 0u64..86_400, seed in any::<[u8; 32]>()
    ) {
        let f = fixture();
        let device = f.device.clone().unwrap();
        let now = f.usable_from.unwrap() + after;
        let devices = std::slice::from_ref(&device);
        let settings = ChallengeSettings { digits, ttl };
        let c = f.portal.create_challenge(devices, approval.clone(), settings, now, &mut SeededRandom::new(seed)).unwrap();
        let mut token = f.token.clone();
        let screen = token.scan(&c.qr_text).unwrap();
        let Screen::Challenge { approval: shown, code, user_id, .. } = screen else { panic!("{screen:?}") };
        prop_assert_eq!(Some(user_id.as_str()), f.token.user_id());
        prop_assert_eq!(code.as_str().len(), usize::from(digits));
        match (&approval, &shown) {
            (Approval::Login, ShownApproval::Login) => {}
            (Approval::Transaction(t), ShownApproval::Transaction { amount, currency, payee, .. }) => {
                prop_assert_eq!(amount, &t.amount);
                prop_assert_eq!((currency.as_str(), payee.as_str()), (t.currency.as_str(), t.payee.as_str()));
                let lines: Vec<&str> = shown.text_lines().iter().map(|l| l.as_str()).collect();
                prop_assert_eq!(lines, t.text.iter().map(String::as_str).collect::<Vec<_>>());
            }
            _ => prop_assert!(false, "{approval:?} shown as {shown:?}"),
        }
        let last = code.as_str().as_bytes()[usize::from(digits) - 1];
        let other = format!("{}{}", &code.as_str()[..usize::from(digits) - 1], char::from(b'0' + (last - b'0' + 1) % 10));
        let o = f.portal.verify_answer(&c.record, devices, &other, now + ttl.min(10) - 1);
        prop_assert_eq!(o.result.unwrap_err().code(), ErrorCode::InvalidAnswer);
        let o = f.portal.verify_answer(&c.record, devices, code.as_str(), now + ttl.min(10) - 1);
        prop_assert_eq!(o.result.unwrap().device_id, device.device_id);
    }
}

proptest! {
    // Each case imports, orders and activates a device up to the serial
    // step (three PBKDF2 hashes).
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A serial number typed in any case, with spaces and dashes anywhere,
    /// moves on to the test challenge; with one character changed it is
    /// `SERIAL_MISMATCH`, counted, and the step stays.
    #[test]
    fn serials_typed_in_any_case_with_spaces_and_dashes_are_accepted(
        (serial, typed) in typed_serial(), at in any::<prop::sample::Index>(), seed in any::<u8>()
    ) {
        let r = run(&serial, seed, 3);
        let stage = &r.stages[3];
        prop_assert_eq!(stage.activation.step, ActivationStep::Serial);
        let mut rng = SeededRandom::new([0x11; 32]);
        // One character changed (to another allowed one).
        let mut chars: Vec<char> = typed.chars().collect();
        let letters: Vec<usize> = (0..chars.len()).filter(|&i| chars[i].is_ascii_alphanumeric()).collect();
        let k = letters[at.index(letters.len())];
        chars[k] = if chars[k].eq_ignore_ascii_case(&'7') { '8' } else { '7' };
        let wrong: String = chars.into_iter().collect();
        let o = enter(&r.portal, stage, &wrong, &mut rng);
        prop_assert_eq!(o.result.unwrap_err().code(), ErrorCode::SerialMismatch);
        let a = activation_of(&o.writes).unwrap();
        prop_assert_eq!((a.step, a.failures), (ActivationStep::Serial, 1));
        // The serial as typed.
        let o = enter(&r.portal, stage, &typed, &mut rng);
        let p = o.result.unwrap();
        prop_assert_eq!(p.step, ActivationStep::TestOtp);
        // The test challenge it shows is for this device.
        let mut token = r.token.clone();
        let screen = token.scan(&p.qr_text.unwrap());
        prop_assert!(matches!(screen, Ok(Screen::Challenge { .. })), "{:?}", screen);
    }
}
