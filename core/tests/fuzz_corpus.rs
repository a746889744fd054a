//! Replays the cargo-fuzz seed corpora (`fuzz/corpus/<target>/*`) through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an
//! ordinary `cargo test` catches regressions on every stored input
//! (including crash reproducers added to the corpora later).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

/// Every file of `fuzz/corpus/<target>`, sorted, with its contents.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
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

#[path = "../../fuzz/harness.rs"]
mod harness;
use harness::{challenge_messages, link_messages, ocra_suite, otpauth_uri};
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
