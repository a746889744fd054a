//! Fuzz every decoder of flow 3, activating an offline authenticator: the
//! device's `Token::scan` (unbound, and bound so it reads challenges), the
//! maker's factory file, the 133-byte token state and its sealed form, and
//! the portal's `activation_next` with the input as the user's entry at
//! every step. The body lives in `fuzz/harness.rs`, which
//! `core/tests/fuzz_corpus.rs` replays over `fuzz/corpus/activation_messages`
//! on every `cargo test` (seeds: `python3 fuzz/activation_seeds.py`). Run:
//! `cargo +nightly fuzz run activation_messages` (in `fuzz/`), or
//! `bash fuzz/run-stable.sh activation_messages 120`.

#![no_main]

#[path = "../harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The PBKDF2 entries (activation code, initial password, an accepted new
    // password) for one input in 256: the rest runs at full speed.
    let _ = harness::activation_messages(data, harness::activation_slow_steps(data));
});
