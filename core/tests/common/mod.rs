//! Shared by the vector tests.
#![allow(clippy::unwrap_used)]

/// Called first by every vector test: installs the provider the vectors run
/// on. Each test crate that compiles these files defines `install_provider`
/// at its root: here it keeps RustCrypto (the default; the core has no
/// dependency on any other provider, so the published crate's tests run
/// as they are), and `tessera-crypto-aws-lc`'s test `core_vectors` includes
/// the same files with AWS-LC installed: the same golden bytes from both.
pub fn provider() {
    crate::install_provider();
}
