//! Fuzz `KeyUri::parse` (otpauth:// URIs). The body lives in `fuzz/harness.rs`, which
//! `core/tests/fuzz_corpus.rs` replays over `fuzz/corpus/otpauth_uri` on every
//! `cargo test`. Run: `cargo +nightly fuzz run otpauth_uri` (in `fuzz/`).

#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::otpauth_uri(data);
});
