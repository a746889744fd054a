//! Fuzz every challenge/response decoder (challenge QR on the device, typed
//! and signed answers on the portal, the sealed challenge record). The body
//! lives in `fuzz/harness.rs`, which `core/tests/fuzz_corpus.rs` replays over
//! `fuzz/corpus/challenge_messages` on every `cargo test`. Run:
//! `cargo +nightly fuzz run challenge_messages` (in `fuzz/`), or
//! `bash fuzz/run-stable.sh challenge_messages 120`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::challenge_messages(data);
});
