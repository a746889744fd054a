//! The Kotlin/Swift library of Tessera: `tessera-host` with its `uniffi`
//! feature, linked into one `cdylib`/`staticlib`. Every type and rule is in
//! `tessera-host`; this crate holds none.

pub use tessera_host::*;
