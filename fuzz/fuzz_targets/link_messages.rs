//! Fuzz every link-protocol decoder (QR, request, answer, status, stored blobs). The body lives in `fuzz/harness.rs`, which
//! `core/tests/fuzz_corpus.rs` replays over `fuzz/corpus/link_messages` on every
//! `cargo test`. Run: `cargo +nightly fuzz run link_messages` (in `fuzz/`).

#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::link_messages(data);
});
