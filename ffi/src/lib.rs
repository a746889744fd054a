//! UniFFI bindings of Tessera, shared by Kotlin and Swift.
//!
//! This crate is glue only: every rule lives in `tessera-core`. Errors cross
//! the boundary as [`TesseraError::Failure`] carrying the frozen code string
//! of `docs/ERRORS.md` and an English detail without secrets.

uniffi::setup_scaffolding!("tessera");

mod link;
mod otp;
mod portal;
pub use link::*;
pub use otp::*;
pub use portal::*;

/// The one error type of the Tessera bindings (Kotlin: `TesseraException`,
/// Swift: `TesseraError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TesseraError {
    /// A failure with a stable `code` (see docs/ERRORS.md) and a `detail`.
    #[error("{code}: {detail}")]
    Failure {
        /// Stable code, e.g. `TOKEN_EXPIRED`.
        code: String,
        /// Human readable detail, no secrets.
        detail: String,
    },
}

impl From<tessera_core::Error> for TesseraError {
    fn from(e: tessera_core::Error) -> Self {
        TesseraError::Failure { code: e.code().as_str().to_owned(), detail: e.detail().to_owned() }
    }
}

impl TesseraError {
    pub(crate) fn from_code(code: tessera_core::ErrorCode, detail: &str) -> Self {
        TesseraError::Failure { code: code.as_str().to_owned(), detail: detail.to_owned() }
    }
}

/// Result alias of the bindings.
pub type Result<T> = std::result::Result<T, TesseraError>;

/// `n` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| {
        TesseraError::from_code(tessera_core::ErrorCode::Internal, "the system random generator failed")
    })?;
    Ok(b)
}

/// Every stable error code with its summary, in table order.
#[uniffi::export]
pub fn error_codes() -> Vec<String> {
    tessera_core::ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect()
}
