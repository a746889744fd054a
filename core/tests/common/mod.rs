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

/// `vectors/NAME` of the core (inside the published crate too).
pub fn vector_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors").join(name)
}

/// The golden file `vectors/NAME`.
pub fn golden(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(vector_path(name)).unwrap_or_else(|e| panic!("vectors/{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Whether this run rewrites the golden files (`TESSERA_WRITE_VECTORS`, only
/// when a new vector is added; the tests that read them then stand aside).
pub fn rewriting_vectors() -> bool {
    std::env::var_os("TESSERA_WRITE_VECTORS").is_some()
}

/// What the generator gives must be the golden bytes of `vectors/NAME`;
/// with `TESSERA_WRITE_VECTORS` set (never in CI) it is written there instead.
pub fn check_golden(name: &str, got: &serde_json::Value) {
    if rewriting_vectors() {
        // CI checks the golden bytes; it never rewrites them.
        assert!(std::env::var_os("CI").is_none(), "TESSERA_WRITE_VECTORS is set in CI: refusing to rewrite vectors");
        std::fs::write(vector_path(name), serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
        return;
    }
    assert_eq!(*got, golden(name), "protocol output changed: golden bytes of v1 must stay");
}
