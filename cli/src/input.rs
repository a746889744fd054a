//! Secret option values that need not be on the command line (where
//! `ps` and shell history show them to others).
//!
//! Every option that takes a secret (OTP secrets and keys, passcodes,
//! passwords, activation and recovery codes, store URLs) reads its value
//! the same way:
//!
//! - `-`: one line of standard input (at most one option per run);
//! - `@PATH`: the contents of the file PATH;
//! - `env:NAME`: the environment variable NAME;
//! - anything else: the value itself.
//!
//! A trailing newline (`\n` or `\r\n`, repeated) is dropped. A value that
//! cannot be read is `INVALID_INPUT` naming the option and where it was to
//! come from (a path, a variable name), never the value. A literal value
//! that starts with `@` or `env:` has to come through one of these forms.

use crate::cli_err;
use std::io::{BufRead as _, Read as _};
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_host::{ErrorCode, TesseraError as Error};
use zeroize::Zeroizing;

/// The largest secret file read (a secret is a line, not a data file).
const MAX_FILE: u64 = 64 * 1024;

static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);

fn strip_newlines(mut s: Zeroizing<String>) -> Zeroizing<String> {
    let keep = s.trim_end_matches(['\n', '\r']).len();
    s.truncate(keep);
    s
}

fn bad(flag: &str, from: &str, why: impl std::fmt::Display) -> Error {
    cli_err(ErrorCode::InvalidInput, format!("{flag} {from}: {why}"))
}

/// The value of secret option `flag` given as `v` (see the module doc).
pub fn secret(flag: &str, v: &str) -> Result<Zeroizing<String>, Error> {
    let text = if v == "-" {
        if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
            return Err(bad(flag, "-", "standard input is already read by another option; use @FILE or env:NAME"));
        }
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| bad(flag, "-", format_args!("cannot read standard input: {}", e.kind())))?;
        if line.is_empty() {
            return Err(bad(flag, "-", "standard input is empty"));
        }
        line
    } else if let Some(path) = v.strip_prefix('@') {
        let f = std::fs::File::open(path).map_err(|e| bad(flag, v, format_args!("cannot read the file: {e}")))?;
        let mut bytes = Zeroizing::new(Vec::new());
        f.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(flag, v, format_args!("cannot read the file: {e}")))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(bad(flag, v, format_args!("the file is larger than {} KiB", MAX_FILE / 1024)));
        }
        String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|e| {
                let mut raw = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut raw);
                bad(flag, v, "the file is not UTF-8 text")
            })
            .map(Zeroizing::new)?
    } else if let Some(name) = v.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(s) => Zeroizing::new(s),
            Err(std::env::VarError::NotPresent) => {
                return Err(bad(flag, v, format_args!("the environment variable {name} is not set")))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(bad(flag, v, format_args!("the environment variable {name} is not UTF-8")))
            }
        }
    } else {
        return Ok(Zeroizing::new(v.to_owned()));
    };
    let text = strip_newlines(text);
    if text.is_empty() {
        return Err(bad(flag, v, "the value is empty"));
    }
    Ok(text)
}

/// A secret option's value as typed (`VALUE`, `-`, `@FILE`, `env:NAME`):
/// redacted in `Debug`, wiped on drop; [`SecretArg::read`] gives the secret.
#[derive(Clone)]
pub struct SecretArg(Zeroizing<String>);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(Zeroizing::new(s.to_owned())))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

impl SecretArg {
    /// The secret of option `flag`: [`secret`].
    pub fn read(&self, flag: &str) -> Result<Zeroizing<String>, Error> {
        secret(flag, &self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secret_argument_never_prints() {
        let a: SecretArg = "493817".parse().unwrap();
        assert_eq!(format!("{a:?}"), "SecretArg(<redacted>)");
        assert_eq!(*a.read("--passcode").unwrap(), "493817");
        let e = secret("--secret", "env:TESSERA_NO_SUCH_VARIABLE_HERE").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
    }
}
