//! # tessera-host: the one host-facing API of Tessera
//!
//! `tessera-core` is sans-IO and `no_std`; this crate is what an app or a
//! portal calls. Every host-facing type, default, event and rule is defined
//! here once, and every language surface derives from it:
//!
//! * **Kotlin and Swift**: with the `uniffi` feature, the records derive
//!   `uniffi::Record`, the objects `uniffi::Object`, and the impl blocks are
//!   exported as they are (`tessera-ffi` only links this crate into a
//!   library). Times cross as `java.time.Instant` / `Date`, counts as
//!   `Long`/`Int` (Java can call everything), errors as
//!   `TesseraException.Failure(code: ErrorCode, …)`.
//! * **JavaScript**: with the `wasm` feature, the records derive their
//!   TypeScript declarations (tsify); `tessera-wasm` wraps the objects in
//!   one-line `#[wasm_bindgen]` shells. Times cross as epoch milliseconds
//!   (`Date.now()`) or a `Date`.
//! * **Rust** (the CLI, servers): use it directly; times are
//!   [`Timestamp::from_secs`].
//!
//! ## How failures arrive
//! Every call returns `Result<_, TesseraError>`: a failure is thrown in
//! every language, with a stable [`ErrorCode`]. Three portal calls judge a
//! user's input and change state whichever way they decide (accepting a
//! link request, confirming a check code, verifying a code): they succeed
//! with the change to store and a typed [`Verdict`], so that a host cannot
//! drop the counted attempt by catching an exception (see
//! `docs/DESIGN.md`, "Host layer").

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera");

mod device;
mod error;
mod otp;
mod portal;
mod rows;
mod time;

pub use device::*;
pub use error::*;
pub use otp::*;
pub use portal::*;
pub use rows::*;
pub use time::*;

/// Result of every host call.
pub type Result<T> = std::result::Result<T, TesseraError>;

/// The operating system's CSPRNG as the core's random source.
pub(crate) struct OsRandom;

impl tessera_core::crypto::RandomSource for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // getrandom fails only when the OS has no entropy source at all; the
        // bindings catch the panic (UniFFI: an exception; wasm: a trap).
        #[allow(clippy::panic)]
        if getrandom::fill(dest).is_err() {
            panic!("the system random generator failed");
        }
    }
}

/// `N` random bytes, or `INTERNAL`.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|_| TesseraError::new(ErrorCode::Internal, "the system random generator failed"))?;
    Ok(b)
}

/// An SVG drawing of a QR text (link offers, otpauth URIs): black modules on
/// white, at least 256 px, with the quiet zone.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn qr_svg(text: String) -> Result<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| TesseraError::new(ErrorCode::InvalidInput, "the text does not fit in a QR code"))?;
    let svg = code.render::<svg::Color<'_>>().min_dimensions(256, 256).quiet_zone(true).build();
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}
