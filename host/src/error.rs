//! The one error of the host API, with the core's code table.

use serde::Serialize;

macro_rules! host_error_codes {
    ($( ($variant:ident, $code:literal, $summary:literal, $doc:literal), )*) => {
        /// Every stable error code (`docs/ERRORS.md`), generated from the
        /// core's table: Kotlin `enum class ErrorCode`, Swift `enum
        /// ErrorCode`, TypeScript `TesseraErrorCode` (the code strings).
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        #[cfg_attr(feature = "wasm", derive(tsify::Tsify, crate::js::Js))]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
        pub enum ErrorCode {
            $( #[doc = $doc] #[serde(rename = $code)] $variant, )*
        }

        impl From<tessera_core::ErrorCode> for ErrorCode {
            fn from(c: tessera_core::ErrorCode) -> Self {
                match c {
                    $( tessera_core::ErrorCode::$variant => ErrorCode::$variant, )*
                    // The core's enum is non_exhaustive across crates; every
                    // variant is listed above (same table).
                    #[allow(unreachable_patterns)]
                    _ => ErrorCode::Internal,
                }
            }
        }

        impl From<ErrorCode> for tessera_core::ErrorCode {
            fn from(c: ErrorCode) -> Self {
                match c { $( ErrorCode::$variant => tessera_core::ErrorCode::$variant, )* }
            }
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

        }
    };
}

tessera_core::for_each_error_code!(host_error_codes);

impl ErrorCode {
    /// The frozen code string, e.g. `"TOKEN_EXPIRED"`.
    pub fn as_str(self) -> &'static str {
        tessera_core::ErrorCode::from(self).as_str()
    }

    /// Parse a code string.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        tessera_core::ErrorCode::from_str_code(code).map(Into::into)
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export)]
impl ErrorCode {
    /// The frozen code string, e.g. `"TOKEN_EXPIRED"` (what the CLI prints
    /// and JS calls `code`).
    pub fn code_string(&self) -> String {
        self.as_str().to_owned()
    }

    /// A generic, user-presentable English description of the code.
    pub fn summary(&self) -> String {
        tessera_core::ErrorCode::from(*self).summary().to_owned()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every fallible call throws (Kotlin `TesseraException.Failure`,
/// Swift `TesseraError.Failure`, JS an `Error` with `name` `"TesseraError"`
/// and `code`). `detail` is English and never holds a secret.
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TesseraError {
    /// A failure with its stable code.
    #[error("{code}: {detail}")]
    Failure {
        /// Stable code.
        code: ErrorCode,
        /// English detail, no secrets.
        detail: String,
    },
}

impl TesseraError {
    /// An error with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        TesseraError::Failure { code, detail: detail.into() }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            TesseraError::Failure { code, .. } => *code,
        }
    }

    /// The English detail.
    pub fn detail(&self) -> &str {
        match self {
            TesseraError::Failure { detail, .. } => detail,
        }
    }
}

impl From<tessera_core::Error> for TesseraError {
    fn from(e: tessera_core::Error) -> Self {
        TesseraError::new(e.code().into(), e.detail())
    }
}

/// JavaScript: the thrown value is a real `Error` named `TesseraError` with
/// the `code` string.
#[cfg(feature = "wasm")]
impl From<TesseraError> for wasm_bindgen::JsValue {
    fn from(e: TesseraError) -> Self {
        let js = js_sys::Error::new(e.detail());
        js.set_name("TesseraError");
        // A fresh Error object: setting a property cannot fail.
        let _ = js_sys::Reflect::set(&js, &"code".into(), &e.code().as_str().into());
        js.into()
    }
}

/// Every stable error code, in table order.
#[cfg_attr(feature = "uniffi", uniffi::export)]
pub fn error_codes() -> Vec<ErrorCode> {
    ErrorCode::ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_core() {
        assert_eq!(ErrorCode::ALL.len(), tessera_core::ErrorCode::ALL.len());
        for (h, c) in ErrorCode::ALL.iter().zip(tessera_core::ErrorCode::ALL) {
            assert_eq!(h.as_str(), c.as_str());
            assert_eq!(ErrorCode::parse(c.as_str()), Some(*h));
            assert_eq!(serde_json::to_string(h).unwrap(), format!("\"{}\"", c.as_str()));
        }
    }
}
