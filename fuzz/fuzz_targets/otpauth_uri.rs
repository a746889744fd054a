//! Fuzz `KeyUri::parse`. Replayed by `core/tests/fuzz_corpus.rs` on every
//! `cargo test`; run with `cargo +nightly fuzz run otpauth_uri`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::otp::uri::{KeyUri, SecretPolicy};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for policy in [SecretPolicy::Strict, SecretPolicy::AllowShort] {
        if let Ok(key) = KeyUri::parse(&text, policy) {
            // Whatever parses has a canonical form that parses back to it,
            // and generates a code.
            let again = KeyUri::parse(&key.to_uri(), policy);
            assert_eq!(again.as_ref().ok(), Some(&key), "canonical form of {text:?}");
            assert!(key.generate(1_700_000_000).is_ok());
        }
    }
});
