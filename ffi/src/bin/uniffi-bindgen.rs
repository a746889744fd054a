//! Library-mode binding generator: `cargo run -p tessera-ffi --bin uniffi-bindgen -- generate --library <lib> --language kotlin|swift --out-dir <dir>`.
fn main() {
    uniffi::uniffi_bindgen_main()
}
