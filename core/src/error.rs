//! The one public error of Tessera: a stable [`ErrorCode`] plus a human
//! readable detail. The codes are frozen (see `docs/ERRORS.md`): a code is
//! never renamed, re-purposed or reused once released.
//!
//! Details never contain secret material (keys, passcodes, OTP values).

use alloc::borrow::Cow;
use core::fmt;

/// Calls `$m!` once with the whole error-code table, one tuple per code:
/// `(Variant, "CODE", "summary", "doc comment text"),`. The table is the
/// single source of the codes: core generates [`ErrorCode`] from it, and
/// other crates (FFI, WASM bindings, the host crate) generate their own
/// enums and conversions with it, so no code is ever listed twice.
///
/// ```
/// macro_rules! count_codes {
///     ($( ($variant:ident, $code:literal, $summary:literal, $doc:literal), )*) => {
///         [$( $code, )*].len()
///     };
/// }
/// assert_eq!(tessera_core::for_each_error_code!(count_codes), tessera_core::ErrorCode::ALL.len());
/// ```
#[macro_export]
macro_rules! for_each_error_code {
    ($m:ident) => {
        $m! {
            // ---- generic input -------------------------------------------------
            (InvalidInput, "INVALID_INPUT", "an argument is malformed", "An argument is malformed (wrong length, out of range, bad characters)."),
            (InvalidSecret, "INVALID_SECRET", "the secret is not valid base32 or hex", "A secret could not be decoded (base32 / hex)."),
            (SecretTooShort, "SECRET_TOO_SHORT", "the secret is shorter than 128 bits", "A secret is shorter than the 128 bits RFC 4226 requires."),
            (InvalidDigits, "INVALID_DIGITS", "the number of digits is not supported", "Digits outside 6..=10 (or the range a suite allows)."),
            (InvalidAlgorithm, "INVALID_ALGORITHM", "the hash algorithm is not supported", "Unknown hash algorithm name."),
            (InvalidTime, "INVALID_TIME", "the time or period is not valid", "A TOTP period of zero, a time before T0, or a time that does not fit."),
            // ---- OTP -----------------------------------------------------------
            (InvalidUri, "INVALID_URI", "the otpauth:// URI is not valid", "An `otpauth://` URI could not be parsed."),
            (InvalidOcraSuite, "INVALID_OCRA_SUITE", "the OCRA suite is not valid", "An OCRA suite string is malformed; the detail names the part."),
            (InvalidOcraInput, "INVALID_OCRA_INPUT", "an OCRA input is missing or does not match the suite", "An OCRA input required by the suite is missing or malformed."),
            (OtpMismatch, "OTP_MISMATCH", "the code is not correct", "The one-time password does not match."),
            (OtpReplayed, "OTP_REPLAYED", "the code was already used", "The one-time password was already used (same or earlier step/counter)."),
            (LockedOut, "LOCKED_OUT", "too many failed attempts; the account is locked", "Too many consecutive failures: the verifier is locked."),
            // ---- wire formats --------------------------------------------------
            (MalformedMessage, "MALFORMED_MESSAGE", "the message or QR code is malformed or truncated", "A QR text or message is not a Tessera payload or is truncated."),
            (WrongMessageKind, "WRONG_MESSAGE_KIND", "this QR code or message is for another purpose", "A Tessera payload of another kind than expected (e.g. a challenge QR scanned where a link QR was expected)."),
            (UnsupportedVersion, "UNSUPPORTED_VERSION", "the message uses an unsupported protocol version", "A payload of a protocol version this build does not speak."),
            (MessageTampered, "MESSAGE_TAMPERED", "the message failed authentication (changed or not for this party)", "Authentication of a message failed: it was changed, or it is not for us."),
            (StateCorrupt, "STATE_CORRUPT", "the stored state is corrupt or was changed", "A stored state blob is corrupt, tampered with or sealed under another key."),
            // ---- linking -------------------------------------------------------
            (TokenExpired, "TOKEN_EXPIRED", "the QR code has expired; generate a new one", "The single-use token (QR offer) has expired."),
            (TokenAlreadyUsed, "TOKEN_ALREADY_USED", "the QR code was already used; generate a new one", "The single-use token (QR offer) was already used."),
            (TokenUnknown, "TOKEN_UNKNOWN", "the QR code is not known to this portal", "The token (offer or pending link) is unknown to the portal."),
            (PasscodePolicy, "PASSCODE_POLICY", "the passcode does not meet the policy", "The passcode does not satisfy the portal's policy (length, alphabet)."),
            (WeakPasscode, "WEAK_PASSCODE", "the passcode is too easy to guess", "The passcode is trivial (123456, 111111, ...)."),
            (DeviceAlreadyLinked, "DEVICE_ALREADY_LINKED", "this device is already linked to an account; unlink it first", "This device already holds an account."),
            (DeviceNotLinked, "DEVICE_NOT_LINKED", "this device is not linked to an account", "This device holds no account."),
            (DeviceRevoked, "DEVICE_REVOKED", "this device was unlinked from the account", "The portal unlinked this device; the device must wipe its account."),
            (DeviceUnknown, "DEVICE_UNKNOWN", "no such device", "No such device in the registry."),
            (CheckCodeMismatch, "CHECK_CODE_MISMATCH", "the check code does not match", "The check code typed on the portal does not match."),
            (WrongAccount, "WRONG_ACCOUNT", "the message is for another account or portal", "The message is for another account or portal (a link QR code whose key is not the pinned portal key)."),
            (InvalidState, "INVALID_STATE", "this step is not allowed in the current state", "The link is in a state where this step is not allowed."),
            (AlreadyConsumed, "ALREADY_CONSUMED", "this object was already used; start again", "A single-use handle (FFI) was used a second time. A host code: never produced by the core (see `ErrorCode::is_host_code`)."),
            (Storage, "STORAGE", "the storage failed", "The host's storage failed (CLI / reference store only). A host code: never produced by the core (see `ErrorCode::is_host_code`)."),
            (Internal, "INTERNAL", "internal error", "An internal invariant failed. Please report it."),
            (LinkNotConfirmed, "LINK_NOT_CONFIRMED", "the link was never confirmed on the portal; link the device again", "The portal never confirmed this device's link (the check code was not typed in time, or too many wrong codes): the device clears it."),
            (NotForThisDevice, "NOT_FOR_THIS_DEVICE", "this QR code is for another device or account", "A challenge QR code that this device cannot read: it was made for other devices (or the portal unlinked this one: a status request tells)."),
            (InvalidAnswer, "INVALID_ANSWER", "the answer is not correct", "A challenge answer does not match: a wrong code, a code computed with a wrong passcode, or a code for another challenge or transaction (never said which). Counted towards the device's lockout."),
            (DeviceCloned, "DEVICE_CLONED", "the device's keys may have been copied", "A signed answer's counter is not above the last one the portal accepted: two copies of the device's keys are in use."),
            (AuthenticatorNeverUsed, "AUTHENTICATOR_NEVER_USED", "no authenticator of this account can vouch yet", "Linking a new device from an existing authenticator needs one that has answered a challenge successfully before."),
            // ---- activation of offline authenticators (flow 3) ---------------------
            (DeviceNotYetUsable, "DEVICE_NOT_YET_USABLE", "the device was activated recently and is not usable yet", "An activated offline authenticator is usable only after the portal's delay (default 4 hours), so that a fraudulent activation can be noticed and cancelled."),
            (DeviceCodeMismatch, "DEVICE_CODE_MISMATCH", "the code from the device does not match", "The 10-digit code the device showed for the first activation QR code does not match (counted; 5 end the activation)."),
            (ActivationCodeMismatch, "ACTIVATION_CODE_MISMATCH", "the activation code is not correct", "The activation code chosen when ordering does not match (counted on the order; 5 lock it)."),
            (BindingCodeMismatch, "BINDING_CODE_MISMATCH", "the code from the device does not match", "The 8-digit code the device showed for the second activation QR code does not match (counted; 5 end the activation)."),
            (SerialMismatch, "SERIAL_MISMATCH", "the serial number is not the one of this device", "The serial number typed is not the one of the device being activated (counted; 5 end the activation)."),
            (PasswordMismatch, "PASSWORD_MISMATCH", "the password is not correct", "The initial password from the letter (or the account password) does not match (counted; 5 lock)."),
            (PasswordPolicy, "PASSWORD_POLICY", "the new password does not meet the policy", "The new password is too short or too long, is a commonly used or compromised password, or contains the user ID (NIST SP 800-63B); the detail says which."),
            (RecoveryCodeMismatch, "RECOVERY_CODE_MISMATCH", "the recovery code is not correct or was already used", "A recovery code that is not one of the account's unused codes (counted; 5 lock)."),
            (DuplicateRecord, "DUPLICATE_RECORD", "a record in the file already exists", "A factory record repeats an earlier line of the file or a device already imported; the detail names the line. Nothing was imported."),
            (UserUnknown, "USER_UNKNOWN", "no such user ID", "No order has this user ID (or it was cancelled)."),
        }
    };
}

macro_rules! define_error_codes {
    ($( ($variant:ident, $code:literal, $msg:literal, $doc:literal), )*) => {
        /// Stable error codes. The string form (`as_str`) is what crosses every
        /// language boundary and appears in CLI output as `error[CODE]`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( #[doc = $doc] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The frozen code string, e.g. `"TOKEN_EXPIRED"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// A generic, user-presentable description of the code.
            pub const fn summary(self) -> &'static str {
                match self { $( ErrorCode::$variant => $msg, )* }
            }

            /// Parse a code string back (for hosts that store codes).
            pub fn from_str_code(s: &str) -> Option<ErrorCode> {
                match s { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

for_each_error_code!(define_error_codes);

impl ErrorCode {
    /// Host codes: `STORAGE` and `ALREADY_CONSUMED` are never produced by
    /// this crate, only by hosts (a store that failed, a single-use handle
    /// used twice). They are in the table so that every layer reports them
    /// with the same frozen strings.
    pub const fn is_host_code(self) -> bool {
        matches!(self, ErrorCode::Storage | ErrorCode::AlreadyConsumed)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of every fallible Tessera operation.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    detail: Cow<'static, str>,
}

impl Error {
    /// An error with a fixed detail.
    pub const fn new(code: ErrorCode, detail: &'static str) -> Self {
        Error { code, detail: Cow::Borrowed(detail) }
    }

    /// An error with a formatted detail. Never put secrets in it.
    pub fn with_detail(code: ErrorCode, detail: alloc::string::String) -> Self {
        Error { code, detail: Cow::Owned(detail) }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable detail (English, no secrets).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.code.as_str(), self.detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.detail)
    }
}

impl core::error::Error for Error {}

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Shorthand used inside the crate.
pub(crate) const fn err(code: ErrorCode, detail: &'static str) -> Error {
    Error::new(code, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for (i, a) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(ErrorCode::from_str_code(a.as_str()), Some(*a));
            for b in &ErrorCode::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
            assert!(a.as_str().bytes().all(|c| c.is_ascii_uppercase() || c == b'_'));
        }
    }

    #[test]
    fn host_codes_are_storage_and_already_consumed() {
        let host: alloc::vec::Vec<&str> =
            ErrorCode::ALL.iter().filter(|c| c.is_host_code()).map(|c| c.as_str()).collect();
        assert_eq!(host, ["ALREADY_CONSUMED", "STORAGE"]);
    }

    /// What another crate does with the table: its own enum and the
    /// conversions both ways, generated, never listed by hand.
    #[test]
    fn the_table_generates_a_mirror_enum() {
        macro_rules! mirror {
            ($( ($variant:ident, $code:literal, $summary:literal, $doc:literal), )*) => {
                #[derive(Clone, Copy, Debug, PartialEq, Eq)]
                enum Mirror { $( #[doc = $doc] $variant, )* }
                impl From<ErrorCode> for Mirror {
                    fn from(c: ErrorCode) -> Mirror {
                        match c { $( ErrorCode::$variant => Mirror::$variant, )* }
                    }
                }
                impl From<Mirror> for ErrorCode {
                    fn from(m: Mirror) -> ErrorCode {
                        match m { $( Mirror::$variant => ErrorCode::$variant, )* }
                    }
                }
                const MIRROR_CODES: &[(&str, &str)] = &[ $( ($code, $summary), )* ];
            };
        }
        crate::for_each_error_code!(mirror);
        assert_eq!(MIRROR_CODES.len(), ErrorCode::ALL.len());
        for (c, (code, summary)) in ErrorCode::ALL.iter().zip(MIRROR_CODES) {
            assert_eq!(ErrorCode::from(Mirror::from(*c)), *c);
            assert_eq!((c.as_str(), c.summary()), (*code, *summary));
        }
    }
}
