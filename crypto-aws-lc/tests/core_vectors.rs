//! The core's golden-vector tests (flows 1, 4 and 3) compiled again with
//! AWS-LC installed: the same files as `core/tests/*_vectors.rs`, so AWS-LC
//! must give the golden bytes RustCrypto gives. The core itself has no
//! dependency on this crate (its published tests run as they are); the
//! included files call `crate::install_provider` first (`core/tests/common`).
//! Not in this crate's package (`exclude` in Cargo.toml): it reads the
//! core's test sources from the repository.

#![allow(clippy::unwrap_used, clippy::panic)]
// Each included file declares `mod common;` (one small helper, three copies).
#![allow(clippy::duplicate_mod)]

fn install_provider() {
    use tessera_core::provider::CryptoProvider;
    // Every test calls this; the first one installs, the rest find it there.
    let _ = tessera_crypto_aws_lc::install();
    assert_eq!(tessera_core::provider::get_default().name(), tessera_crypto_aws_lc::AWS_LC.name());
}

#[path = "../../core/tests/link_vectors.rs"]
mod link_vectors;

#[path = "../../core/tests/challenge_vectors.rs"]
mod challenge_vectors;

#[path = "../../core/tests/activation_vectors.rs"]
mod activation_vectors;
