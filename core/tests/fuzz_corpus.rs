//! Replays the cargo-fuzz seed corpora (`fuzz/corpus/<target>/*`) through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an
//! ordinary `cargo test` catches regressions on every stored input
//! (including crash reproducers added to the corpora later).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

/// Every file of `fuzz/corpus/<target>`, sorted, with its contents.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

#[path = "fuzz/harness.rs"]
mod harness;
use harness::{activation_messages, challenge_messages, decoder, link_messages, ocra_suite, otpauth_uri, Verdict};
use tessera_core::ErrorCode;

/// What a hand-written seed must do: `bad_*` and `empty` are rejected, the
/// rest accepted. Files libFuzzer adds (40-hex-digit names) and crash
/// reproducers only have to not panic: `None`.
fn expectation(path: &Path) -> Option<bool> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let generated = name.len() == 40 && name.bytes().all(|c| c.is_ascii_hexdigit());
    let reproducer = ["crash-", "oom-", "timeout-", "slow-unit-", "leak-"].iter().any(|p| name.starts_with(p));
    if generated || reproducer {
        None
    } else {
        Some(!(name.starts_with("bad_") || name == "empty"))
    }
}

#[test]
fn replay_otpauth_uri_corpus() {
    for (path, data) in corpus("otpauth_uri") {
        let (strict, allow_short) = otpauth_uri(&data);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "google_short_secret" {
            // Its 80-bit secret needs AllowShort.
            assert!(!strict && allow_short);
        } else if let Some(want) = expectation(&path) {
            assert_eq!((strict, allow_short), (want, want), "{}", path.display());
        }
    }
}

#[test]
fn replay_ocra_suite_corpus() {
    let files = corpus("ocra_suite");
    for (path, data) in &files {
        let parsed = ocra_suite(data);
        if let Some(want) = expectation(path) {
            assert_eq!(parsed, want, "{}", path.display());
        }
    }
    // Every suite of the RFC 6287 Appendix C tables is a seed.
    for suite in tessera_core::otp::ocra::RFC6287_SUITES {
        assert!(files.iter().any(|(_, d)| d == suite.as_bytes()), "missing seed {suite}");
    }
}

#[test]
fn replay_link_messages_corpus() {
    for (path, data) in corpus("link_messages") {
        let accepted = link_messages(&data);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // The valid seeds are each accepted by exactly one decoder; the rest by none.
        let want = match name {
            "qr" | "request" | "answer" | "pending_blob" => Some(1),
            n if expectation(&path).is_some() && !n.is_empty() => Some(0),
            _ => None,
        };
        if let Some(w) = want {
            assert_eq!(accepted, w, "{}", path.display());
        }
    }
}

/// Which decoder of `challenge_messages` a hand-written seed is for (0: the
/// device's `read_challenge`, 1: the portal's `verify_answer`, 2: the sealed
/// record), and its verdict there. Seeds made by `fuzz/challenge_seeds.py`.
fn challenge_seed(name: &str) -> Option<(usize, Result<(), ErrorCode>)> {
    use ErrorCode::*;
    let (i, want) = match name {
        "qr" | "qr_login" => (0, Ok(())),
        "typed" | "typed_spaces" | "signed" => (1, Ok(())),
        "record" => (2, Ok(())),
        "empty" => (0, Err(MalformedMessage)),
        "bad_qr_too_short" | "bad_qr_header_only" | "bad_qr_zero_slots" | "bad_qr_five_slots" | "bad_qr_base64" => {
            (0, Err(MalformedMessage))
        }
        "bad_qr_truncated" | "bad_qr_ciphertext_flipped" | "bad_qr_slot_flipped" => (0, Err(MessageTampered)),
        "bad_qr_tag_flipped" | "bad_qr_other_device" => (0, Err(NotForThisDevice)),
        "bad_qr_version_2" => (0, Err(UnsupportedVersion)),
        "bad_qr_signed_kind" | "bad_qr_link_offer" => (0, Err(WrongMessageKind)),
        "bad_qr_undisplayable_payee"
        | "bad_qr_blank_text"
        | "bad_qr_control_text"
        | "bad_qr_currency_lowercase"
        | "bad_qr_four_text_lines"
        | "bad_qr_long_payee"
        | "bad_qr_amount_4_decimals"
        | "bad_qr_digits_5"
        | "bad_qr_digits_11"
        | "bad_qr_unknown_approval"
        | "bad_qr_trailing_body"
        | "bad_qr_bad_device_id" => (0, Err(MalformedMessage)),
        "bad_qr_expired" => (0, Err(TokenExpired)),
        "bad_typed_wrong_passcode"
        | "bad_typed_login_code"
        | "bad_typed_7_digits"
        | "bad_typed_9_digits"
        | "bad_signed_flipped"
        | "bad_signed_high_s"
        | "bad_signed_wrong_passcode"
        | "bad_signed_other_challenge"
        | "bad_signed_counter_mismatch"
        | "bad_signed_unknown_device" => (1, Err(InvalidAnswer)),
        "bad_typed_arabic_digits" | "bad_signed_truncated" | "bad_signed_trailing" | "bad_signed_too_long" => {
            (1, Err(MalformedMessage))
        }
        "bad_signed_kind_qr" => (1, Err(WrongMessageKind)),
        "bad_record_flipped" | "bad_record_device_tag" | "bad_record_trailing" => (2, Err(StateCorrupt)),
        _ => return None,
    };
    Some((i, want))
}

#[test]
fn replay_challenge_messages_corpus() {
    let files = corpus("challenge_messages");
    for (path, data) in &files {
        let verdicts = challenge_messages(data);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let accepted = verdicts.iter().filter(|v| v.is_ok()).count();
        if let Some(valid) = expectation(path) {
            // The valid seeds are each accepted by exactly one decoder; the rest by none.
            assert_eq!(accepted, usize::from(valid), "{}: {verdicts:?}", path.display());
            let (i, want) = challenge_seed(name).unwrap_or_else(|| panic!("{name}: add it to challenge_seed"));
            assert_eq!(verdicts[i], want, "{}", path.display());
        }
    }
    for seed in ["qr", "typed", "signed", "record", "bad_qr_undisplayable_payee", "bad_signed_wrong_passcode"] {
        assert!(files.iter().any(|(p, _)| p.ends_with(seed)), "missing seed {seed}");
    }
}

/// What the decoders of `activation_messages` make of a hand-written seed:
/// those that accept it, those for which it repeats the entry accepted
/// last, and the verdict of some that refuse it; every decoder not listed
/// must not accept it. Seeds made by `fuzz/activation_seeds.py`.
fn activation_seed(name: &str) -> Option<Vec<(usize, Verdict)>> {
    use decoder::*;
    use ErrorCode::*;
    use Verdict::{Accepted, Refused, Repeated};
    const DEVICE_CODE: usize = STEP;
    const ACTIVATION_CODE: usize = STEP + 1;
    const BINDING_CODE: usize = STEP + 2;
    const SERIAL: usize = STEP + 3;
    const TEST_OTP: usize = STEP + 4;
    const INITIAL_PASSWORD: usize = STEP + 5;
    const NEW_PASSWORD: usize = STEP + 6;
    let both = |v: Verdict| vec![(SCAN_UNBOUND, v), (SCAN_BOUND, v)];
    let bound = |v: Verdict| {
        // A challenge that parses reaches the binding check of an unbound device.
        let unbound = if v == Refused(MalformedMessage) { v } else { Refused(DeviceNotLinked) };
        vec![(SCAN_UNBOUND, unbound), (SCAN_BOUND, v)]
    };
    Some(match name {
        // Both devices show the device code; the unbound one takes the
        // binding, the bound one shows the same code again (or takes a newer one).
        "qr_possession" | "qr_binding" | "qr_binding_generation_2" => both(Accepted),
        // Bindings the bound device (generation 1) refuses: an older one, and
        // another of its own generation.
        "qr_binding_generation_0" | "qr_binding_same_generation_other_key" => {
            vec![(SCAN_UNBOUND, Accepted), (SCAN_BOUND, Refused(TokenAlreadyUsed))]
        }
        // The device has no clock: an expired challenge is the portal's to refuse.
        "qr_test_challenge" | "qr_transaction" | "qr_challenge_expired" | "qr_challenge_two_slots" => bound(Accepted),
        "factory_file" | "factory_file_crlf_comments" => vec![(FACTORY_FILE, Accepted)],
        "state_unbound" | "state_bound" => vec![(TOKEN_STATE, Accepted), (TOKEN_SEALED, Refused(WrongMessageKind))],
        // Accepted today, though not canonical (to_bytes differs): reported.
        "state_noncanonical_padding" | "state_unbound_with_binding_bytes" => vec![(TOKEN_STATE, Accepted)],
        "sealed_state" => vec![(TOKEN_SEALED, Accepted), (TOKEN_STATE, Refused(StateCorrupt))],
        // Accepted device codes, binding codes, serials and test codes typed
        // again at the following steps are repeats.
        "entry_device_code" | "entry_device_code_dash" => {
            vec![(DEVICE_CODE, Accepted), (ACTIVATION_CODE, Repeated), (BINDING_CODE, Repeated)]
        }
        "entry_activation_code" => vec![(ACTIVATION_CODE, Accepted), (NEW_PASSWORD, Refused(PasswordPolicy))],
        // PBKDF2 keys HMAC with the password: trailing zero bytes are not seen.
        "entry_activation_code_trailing_nul" => vec![(ACTIVATION_CODE, Accepted)],
        "entry_binding_code" => vec![(BINDING_CODE, Accepted), (SERIAL, Repeated)],
        "entry_serial" => vec![(SERIAL, Accepted), (TEST_OTP, Repeated), (SCAN_UNBOUND, Refused(MalformedMessage))],
        // 12 characters: a new password the policy takes, though it is the
        // serial number typed with separators (reported).
        "entry_serial_typed" => vec![(SERIAL, Accepted), (TEST_OTP, Repeated), (NEW_PASSWORD, Accepted)],
        "entry_test_otp" => vec![
            (TEST_OTP, Accepted),
            (INITIAL_PASSWORD, Repeated),
            (NEW_PASSWORD, Repeated),
            (BINDING_CODE, Refused(BindingCodeMismatch)),
        ],
        // The initial password is no new password.
        "entry_initial_password" | "entry_initial_password_lowercase_spaces" => {
            vec![(INITIAL_PASSWORD, Accepted), (NEW_PASSWORD, Refused(PasswordPolicy))]
        }
        "entry_new_password" => vec![(NEW_PASSWORD, Accepted), (INITIAL_PASSWORD, Refused(PasswordMismatch))],
        "empty" => vec![(SCAN_UNBOUND, Refused(MalformedMessage)), (FACTORY_FILE, Refused(InvalidInput))],

        "bad_qr_possession_other_device" | "bad_qr_binding_other_device" => both(Refused(NotForThisDevice)),
        "bad_qr_possession_counterfeit"
        | "bad_qr_possession_mac_flipped"
        | "bad_qr_possession_key_flipped"
        | "bad_qr_binding_counterfeit"
        | "bad_qr_binding_key_flipped"
        | "bad_qr_binding_generation_changed"
        | "bad_qr_binding_ciphertext_flipped"
        | "bad_qr_binding_tag_cut" => both(Refused(MessageTampered)),
        "bad_qr_possession_truncated"
        | "bad_qr_possession_trailing"
        | "bad_qr_possession_key_not_on_curve"
        | "bad_qr_possession_key_uncompressed_prefix"
        | "bad_qr_possession_control_name"
        | "bad_qr_possession_long_name"
        | "bad_qr_possession_blank_name"
        | "bad_qr_possession_name_not_utf8"
        | "bad_qr_unknown_step"
        | "bad_qr_unknown_kind"
        | "bad_qr_base64"
        | "bad_qr_no_prefix"
        | "bad_qr_base45_overflow"
        | "bad_qr_too_long"
        | "bad_qr_binding_short"
        | "bad_qr_binding_key_not_on_curve"
        | "bad_qr_binding_long_user_id"
        | "bad_qr_binding_control_user_id"
        | "bad_qr_binding_empty_user_id"
        | "bad_qr_binding_long_portal_name"
        | "bad_qr_binding_invisible_portal_name"
        | "bad_qr_binding_trailing_plaintext"
        | "bad_qr_binding_plaintext_truncated" => both(Refused(MalformedMessage)),
        "bad_qr_version_2" => both(Refused(UnsupportedVersion)),
        "bad_qr_link_offer" | "bad_qr_signed_answer_kind" => both(Refused(WrongMessageKind)),
        "bad_qr_challenge_other_binding" | "bad_qr_challenge_phone" => bound(Refused(NotForThisDevice)),
        "bad_qr_challenge_flipped" => bound(Refused(MessageTampered)),
        "bad_qr_challenge_zero_slots" => bound(Refused(MalformedMessage)),
        "bad_qr_challenge_digits_5"
        | "bad_qr_challenge_undisplayable_payee"
        | "bad_qr_challenge_link_device_bad_id"
        | "bad_qr_challenge_trailing_body" => {
            vec![(SCAN_UNBOUND, Refused(DeviceNotLinked)), (SCAN_BOUND, Refused(MalformedMessage))]
        }

        "bad_factory_v2" => vec![(FACTORY_FILE, Refused(UnsupportedVersion))],
        "bad_factory_duplicate" => vec![(FACTORY_FILE, Refused(DuplicateRecord))],
        "bad_factory_no_header"
        | "bad_factory_misspelt_header"
        | "bad_factory_uppercase_hex"
        | "bad_factory_short_serial"
        | "bad_factory_long_serial"
        | "bad_factory_lowercase_serial"
        | "bad_factory_dash_serial"
        | "bad_factory_two_spaces"
        | "bad_factory_tab"
        | "bad_factory_short_key"
        | "bad_factory_uncompressed_prefix"
        | "bad_factory_key_not_on_curve"
        | "bad_factory_secret_not_key"
        | "bad_factory_third_field"
        | "bad_factory_good_then_bad" => vec![(FACTORY_FILE, Refused(InvalidInput))],

        "bad_state_flipped"
        | "bad_state_check_flipped"
        | "bad_state_truncated"
        | "bad_state_extended"
        | "bad_state_version_2"
        | "bad_state_bound_flag_2"
        | "bad_state_serial_len_17"
        | "bad_state_serial_len_5"
        | "bad_state_lowercase_serial"
        | "bad_state_secret_zero"
        | "bad_state_secret_above_order"
        | "bad_state_name_len_21"
        | "bad_state_user_id_len_17"
        | "bad_state_user_id_not_utf8" => vec![(TOKEN_STATE, Refused(StateCorrupt))],
        "bad_sealed_flipped"
        | "bad_sealed_truncated"
        | "bad_sealed_other_key"
        | "bad_sealed_corrupt_state"
        | "bad_sealed_state_too_long" => vec![(TOKEN_SEALED, Refused(StateCorrupt))],
        "bad_sealed_version_2" => vec![(TOKEN_SEALED, Refused(UnsupportedVersion))],
        "bad_sealed_device_state_kind" => vec![(TOKEN_SEALED, Refused(WrongMessageKind))],

        "bad_entry_device_code_wrong" | "bad_entry_device_code_9_digits" | "bad_entry_device_code_arabic_digits" => {
            vec![(DEVICE_CODE, Refused(DeviceCodeMismatch))]
        }
        "bad_entry_activation_code_wrong" | "bad_entry_activation_code_spaced" => {
            vec![(ACTIVATION_CODE, Refused(ActivationCodeMismatch))]
        }
        "bad_entry_binding_code_wrong" => vec![(BINDING_CODE, Refused(BindingCodeMismatch))],
        "bad_entry_serial_other" | "bad_entry_serial_tab" | "bad_entry_serial_fullwidth" => {
            vec![(SERIAL, Refused(SerialMismatch))]
        }
        "bad_entry_test_otp_wrong" | "bad_entry_test_otp_7_digits" => vec![(TEST_OTP, Refused(InvalidAnswer))],
        "bad_entry_initial_password_truncated" => vec![(INITIAL_PASSWORD, Refused(PasswordMismatch))],
        "bad_entry_new_password_short"
        | "bad_entry_new_password_common"
        | "bad_entry_new_password_sequence"
        | "bad_entry_new_password_repeated"
        | "bad_entry_new_password_user_id"
        | "bad_entry_new_password_serial"
        | "bad_entry_new_password_account"
        | "bad_entry_new_password_too_long" => vec![(NEW_PASSWORD, Refused(PasswordPolicy))],
        _ => return None,
    })
}

#[test]
fn replay_activation_messages_corpus() {
    let files = corpus("activation_messages");
    let mut wrong = Vec::new();
    for (path, data) in &files {
        // Every decoder, the PBKDF2 entries included.
        let verdicts = activation_messages(data, true);
        assert!(verdicts.iter().all(Option::is_some));
        let verdicts: Vec<Verdict> = verdicts.into_iter().flatten().collect();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(valid) = expectation(path) else { continue };
        let want = activation_seed(name).unwrap_or_else(|| panic!("{name}: add it to activation_seed"));
        let accepted: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i] == Verdict::Accepted).collect();
        let want_accepted: Vec<usize> = want.iter().filter(|(_, v)| *v == Verdict::Accepted).map(|(i, _)| *i).collect();
        let named = want.iter().all(|&(i, v)| verdicts[i] == v);
        // Valid seeds are accepted somewhere, `bad_*` ones nowhere.
        if accepted != want_accepted || !named || accepted.is_empty() == valid {
            wrong.push(format!("{name}: {verdicts:?}"));
        }
    }
    assert!(wrong.is_empty(), "seeds with other verdicts than activation_seed says:\n{}", wrong.join("\n"));
    for seed in ["qr_possession", "qr_binding", "qr_test_challenge", "factory_file", "state_bound", "sealed_state"] {
        assert!(files.iter().any(|(p, _)| p.ends_with(seed)), "missing seed {seed}");
    }
}
