//! docs/ERRORS.md and the code table must agree, code by code.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use tessera_core::ErrorCode;

#[test]
fn errors_md_lists_every_code_in_order() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ERRORS.md")).unwrap();
    let listed: Vec<&str> =
        doc.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes, "docs/ERRORS.md is out of date");
    for c in ErrorCode::ALL {
        assert!(doc.contains(c.summary()), "summary of {c} missing");
    }
}
