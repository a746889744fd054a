//! Shared by the vector tests.
#![allow(clippy::unwrap_used)]

/// The provider the vectors run on: RustCrypto, or the one `TESSERA_CRYPTO`
/// names (`scripts/test.sh` runs them again with `TESSERA_CRYPTO=aws-lc`:
/// the same golden bytes from AWS-LC).
pub fn provider() {
    let p = tessera_crypto_aws_lc::install_from_env(&tessera_core::provider::RUST_CRYPTO).unwrap();
    if let Ok(name) = std::env::var(tessera_crypto_aws_lc::PROVIDER_ENV) {
        assert_eq!(p.name(), tessera_crypto_aws_lc::by_name(&name).unwrap().name());
    }
}
