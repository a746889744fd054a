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
//!
//! ## Linking, both sides in one place
//!
//! A real portal stores each `change` in its database (every write a
//! compare-and-set, all in one transaction) and sends strings over the network.
//!
//! ```
//! use std::sync::Arc;
//! use tessera_host::*;
//!
//! let now = Timestamp::from_secs(1_800_000_000);
//! let portal = Arc::new(Portal::generate("Example Bank".into())?);
//! let offer = portal.create_offer("anna".into(), OfferSettings::default(), now)?;
//! let offer_row = match &offer.change.writes[0] {
//!     RecordWrite::Offer { row, expected_version: None } => row.clone(),   // an insert
//!     _ => unreachable!(),
//! };
//!
//! // The phone scans the QR code (pinned to the portal it knows).
//! let phone = Device::new(new_storage_key()?)?;
//! let choices = LinkChoices { device_name: "Anna's Pixel".into(), passcode: "493817".into(), biometrics: false };
//! let pending = phone.start_link(offer.qr_text.clone(), choices, None, now, Some(portal.public_key()))?;
//!
//! // The portal reads the offer and whether the device id is known, decides, stores.
//! let request = Arc::clone(&portal).open_link_request(pending.request()?)?;
//! assert_eq!(request.offer_id(), offer.offer_id);
//! let answer = request.accept(LinkLookup { offer: Some(offer_row), device_key_seen: false }, now)?;
//! assert_eq!(answer.verdict, Verdict::Accepted);
//! let waiting: Vec<StoredPendingLink> = answer.change.writes.iter().filter_map(|w| match w {
//!     RecordWrite::PendingLink { row, .. } => Some(row.clone()),
//!     _ => None,
//! }).collect();
//!
//! // The phone shows the check code; the user types it on the portal.
//! let linked = pending.finish(answer.answer)?;
//! let confirmed = portal.confirm_link(waiting, linked.check_code, Timestamp::from_secs(1_800_000_020))?;
//! confirmed.verdict.check()?;                      // after storing confirmed.change
//! assert!(matches!(confirmed.change.events[0], PortalEvent::DeviceLinked { .. }));
//!
//! // A wrong code is a verdict with a change to store, not an exception.
//! let later = Timestamp::from_secs(1_800_000_060);
//! let code = phone.code(linked.state, Unlock::Passcode { passcode: "111111".into() }, later)?;
//! let check = portal.verify_device_code(confirmed.device.expect("linked"), code, later)?;
//! assert!(matches!(check.verdict, Verdict::Refused { code: ErrorCode::OtpMismatch, .. }));
//! assert_eq!(check.change.writes.len(), 1);       // the failure is counted
//! # Ok::<(), TesseraError>(())
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!("tessera");

mod activation;
mod challenge;
mod device;
mod error;
#[cfg(feature = "wasm")]
pub mod js;
mod otp;
mod portal;
mod rows;
mod time;

pub use activation::*;
pub use challenge::*;
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
