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
use harness::{link_messages, ocra_suite, otpauth_uri};

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
