//! Fuzz `OcraSuite::parse` and, for suites that parse, `OcraSuite::compute`.
//! Replayed by `core/tests/fuzz_corpus.rs` on every `cargo test`; run with
//! `cargo +nightly fuzz run ocra_suite`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::otp::ocra::{OcraInput, OcraSuite};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(suite) = OcraSuite::parse(&text) {
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
        // Missing and malformed inputs are errors, never panics.
        let _ = suite.compute(b"", &OcraInput::default());
        let _ = suite.compute(b"", &OcraInput { question: Some(&text), ..input });
    }
});
