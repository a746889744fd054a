//! Replays the cargo-fuzz seed corpora (`fuzz/corpus/<target>/*`) through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an
//! ordinary `cargo test` catches regressions on every stored input
//! (including crash reproducers added to the corpora later).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use tessera_core::otp::ocra::{OcraInput, OcraSuite};
use tessera_core::otp::uri::{KeyUri, SecretPolicy};

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

/// Same body as `fuzz/fuzz_targets/otpauth_uri.rs`. Returns whether the
/// input parsed under (Strict, AllowShort).
fn otpauth_uri(data: &[u8]) -> (bool, bool) {
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

/// Same body as `fuzz/fuzz_targets/ocra_suite.rs`. Returns whether the
/// suite parsed.
fn ocra_suite(data: &[u8]) -> bool {
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
    for suite in [
        "OCRA-1:HOTP-SHA1-6:QN08",
        "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
        "OCRA-1:HOTP-SHA256-8:QN08-PSHA1",
        "OCRA-1:HOTP-SHA512-8:C-QN08",
        "OCRA-1:HOTP-SHA512-8:QN08-T1M",
        "OCRA-1:HOTP-SHA256-8:QA08",
        "OCRA-1:HOTP-SHA512-8:QA08",
        "OCRA-1:HOTP-SHA512-8:QA08-PSHA1",
        "OCRA-1:HOTP-SHA512-8:QA10-T1M",
    ] {
        assert!(files.iter().any(|(_, d)| d == suite.as_bytes()), "missing seed {suite}");
    }
}
