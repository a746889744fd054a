//! Fuzz `OcraSuite::parse` and `compute`. The body lives in `fuzz/harness.rs`, which
//! `core/tests/fuzz_corpus.rs` replays over `fuzz/corpus/ocra_suite` on every
//! `cargo test`. Run: `cargo +nightly fuzz run ocra_suite` (in `fuzz/`).

#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::ocra_suite(data);
});
