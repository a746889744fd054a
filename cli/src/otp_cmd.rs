//! `tessera otp …`: an `oathtool`-like front end to tessera-host's OTP
//! functions, and its verifiers (replay protection and lockout) with their
//! state kept in a file.

use crate::cli_err;
use crate::util::{now_or, render_qr};
use clap::{Args, Subcommand};
use qrcode::EcLevel;
use std::path::{Path, PathBuf};
use tessera_core::encoding::{hex_decode, hex_decode_as};
use tessera_core::otp::Algorithm;
use tessera_host::{
    defaults, ErrorCode, OcraParams, OtpAlgorithm, OtpAuthUri, OtpKind, OtpVerifierConfig, OtpVerifierState,
    TesseraError as Error, Timestamp,
};

#[derive(Subcommand, Debug)]
pub enum OtpCommand {
    /// HOTP (RFC 4226) code for a counter.
    Hotp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Counter value.
        #[arg(long)]
        counter: i64,
        /// Digits (6–10; default 6).
        #[arg(long)]
        digits: Option<i32>,
        /// sha1, sha256 or sha512 (default sha1).
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// TOTP (RFC 6238) code at a time.
    Totp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Unix seconds (default: now).
        #[arg(long)]
        time: Option<u64>,
        /// Period in seconds (default 30).
        #[arg(long)]
        period: Option<i64>,
        /// Digits (6–10; default 6).
        #[arg(long)]
        digits: Option<i32>,
        /// sha1, sha256 or sha512 (default sha1).
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// OCRA (RFC 6287) response.
    Ocra {
        /// Suite, e.g. OCRA-1:HOTP-SHA1-6:QN08.
        #[arg(long)]
        suite: String,
        /// Key in hex.
        #[arg(long)]
        key: String,
        /// Counter (suites with C).
        #[arg(long)]
        counter: Option<i64>,
        /// Question as the suite says: decimal (QN), hex (QH) or text (QA).
        #[arg(long)]
        question: Option<String>,
        /// PIN in clear (suites with P).
        #[arg(long)]
        password: Option<String>,
        /// Session information in hex (suites with S).
        #[arg(long)]
        session: Option<String>,
        /// Unix seconds (suites with T).
        #[arg(long)]
        time: Option<u64>,
    },
    /// Print the current code of an otpauth:// URI.
    Uri {
        /// The otpauth:// URI.
        uri: String,
        /// Unix seconds (default: now).
        #[arg(long)]
        time: Option<u64>,
        /// Accept secrets shorter than 128 bits.
        #[arg(long)]
        allow_short_secret: bool,
    },
    /// Make a new secret: print its otpauth:// URI and show it as a QR code.
    New {
        /// Issuer (service) name.
        #[arg(long)]
        issuer: String,
        /// Account name.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        shape: CodeShape,
        /// Do not draw the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Verify a TOTP code (a server's check: window, replay, lockout); the
    /// verifier state is read from and written back to --state.
    VerifyTotp(VerifyArgs),
    /// Verify a HOTP code (look-ahead window, replay, lockout).
    VerifyHotp(VerifyArgs),
    /// Resynchronise a HOTP credential whose device ran ahead (RFC 4226
    /// §7.4): --code and --next-code are two consecutive codes, searched in
    /// --search-window counters (at most 1000).
    ResyncHotp {
        #[command(flatten)]
        verify: VerifyArgs,
        /// The code that follows --code.
        #[arg(long)]
        next_code: String,
        /// Counters to search from the expected one.
        #[arg(long)]
        search_window: i64,
    },
    /// Unlock a verifier locked by failed codes (an administrator's decision).
    Unlock {
        /// Verifier state file (JSON).
        #[arg(long)]
        state: PathBuf,
    },
}

/// How codes look (tessera-host's defaults when left out).
#[derive(Args, Debug)]
pub struct CodeShape {
    /// sha1, sha256 or sha512 (default sha1).
    #[arg(long)]
    algorithm: Option<String>,
    /// Digits (6–10; default 6).
    #[arg(long)]
    digits: Option<i32>,
    /// TOTP seconds per step (default 30).
    #[arg(long)]
    period: Option<i64>,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SecretArgs {
    /// Secret in base32 (spaces, lower case and padding accepted).
    #[arg(long)]
    secret: Option<String>,
    /// Secret in hex.
    #[arg(long)]
    secret_hex: Option<String>,
}

impl SecretArgs {
    fn decode(&self) -> Result<Vec<u8>, Error> {
        match (&self.secret, &self.secret_hex) {
            (Some(b32), _) => tessera_host::base32_decode(b32.clone()),
            (None, Some(h)) => Ok(hex_decode(h)?),
            (None, None) => Err(cli_err(ErrorCode::InvalidSecret, "give --secret or --secret-hex")),
        }
    }
}

/// A verifier's settings; whatever is left out takes tessera-host's default.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    secret: SecretArgs,
    /// The code to check.
    #[arg(long)]
    code: String,
    /// Unix seconds (default: now).
    #[arg(long)]
    time: Option<u64>,
    /// Verifier state file (JSON, tessera-host's `OtpVerifierState`). Runs
    /// on one state file are serialised by a lock file beside it, and the
    /// state is replaced atomically.
    #[arg(long)]
    state: PathBuf,
    /// The state file does not exist yet: a new credential.
    #[arg(long)]
    new: bool,
    #[command(flatten)]
    shape: CodeShape,
    /// TOTP: ± steps accepted; HOTP: look-ahead counters.
    #[arg(long)]
    window: Option<i64>,
    /// Consecutive failures before the verifier locks.
    #[arg(long)]
    max_failures: Option<i32>,
    /// Lock duration in seconds (default: until unlocked).
    #[arg(long)]
    lock_seconds: Option<i64>,
    /// Machine-readable output (the verdict, also when refused).
    #[arg(long)]
    json: bool,
}

pub(crate) fn algorithm(a: Option<&str>) -> Result<OtpAlgorithm, Error> {
    Ok(a.map(Algorithm::parse).transpose()?.map(OtpAlgorithm::from).unwrap_or_default())
}

/// tessera-host's defaults for what the command line left out.
fn digits_or_default(d: Option<i32>) -> i32 {
    d.unwrap_or_else(|| defaults::DIGITS.into())
}

fn period_or_default(p: Option<i64>) -> i64 {
    p.unwrap_or_else(|| i64::try_from(defaults::PERIOD_SECONDS).unwrap_or(i64::MAX))
}

/// The stored verifier state. A missing file is a new credential only when
/// the caller says so (`--new`): a lost or misnamed state file must not
/// silently become an unlocked, never-used credential.
fn read_state(path: &Path, new: bool) -> Result<OtpVerifierState, Error> {
    match std::fs::read(path) {
        Ok(_) if new => Err(cli_err(ErrorCode::InvalidState, format!("{} exists: leave out --new", path.display()))),
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| cli_err(ErrorCode::StateCorrupt, format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && new => Ok(OtpVerifierState::default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(cli_err(
            ErrorCode::InvalidState,
            format!("{} does not exist: pass --new for a new credential", path.display()),
        )),
        Err(e) => Err(cli_err(ErrorCode::Storage, format!("{}: {e}", path.display()))),
    }
}

fn write_state(path: &Path, s: &OtpVerifierState) -> Result<(), Error> {
    let text = serde_json::to_vec(s).map_err(|_| cli_err(ErrorCode::Internal, "verifier state encoding"))?;
    crate::secrets::replace_private(path, &text)
}

/// What a verification checks: TOTP, HOTP, or a HOTP resynchronisation
/// with the next code and its search window.
enum Check {
    Totp,
    Hotp,
    Resync(String, i64),
}

fn verify(a: VerifyArgs, how: Check) -> Result<(), Error> {
    let config = OtpVerifierConfig {
        secret: a.secret.decode()?,
        algorithm: a.shape.algorithm.as_deref().map(|s| algorithm(Some(s))).transpose()?,
        digits: a.shape.digits,
        period_seconds: a.shape.period,
        window: a.window,
        max_failures: a.max_failures,
        lock_seconds: a.lock_seconds,
    };
    let _lock = crate::secrets::lock_beside(&a.state)?;
    let state = read_state(&a.state, a.new)?;
    let now = now_or(a.time);
    let what = if matches!(how, Check::Totp) { "step" } else { "counter" };
    let check = match how {
        Check::Totp => tessera_host::verify_totp(config, state, a.code, now)?,
        Check::Hotp => tessera_host::verify_hotp(config, state, a.code, now)?,
        Check::Resync(next, window) => tessera_host::resync_hotp(config, state, a.code, next, window, now)?,
    };
    // Stored whichever way the verdict goes: failures and replays count.
    write_state(&a.state, &check.state)?;
    if a.json {
        let verdict = serde_json::to_value(&check.verdict).unwrap_or_default();
        out!("{}", serde_json::json!({"verdict": verdict, "matched": check.matched, "drift": check.drift}));
        return check.verdict.check();
    }
    check.verdict.check()?;
    out!("accepted ({what} {}, drift {})", check.matched.unwrap_or_default(), check.drift);
    Ok(())
}

pub fn run(cmd: OtpCommand) -> Result<(), Error> {
    match cmd {
        OtpCommand::Hotp { secret, counter, digits, algorithm: alg } => {
            out!(
                "{}",
                tessera_host::hotp(secret.decode()?, counter, digits_or_default(digits), algorithm(alg.as_deref())?)?
            );
        }
        OtpCommand::Totp { secret, time, period, digits, algorithm: alg } => {
            out!(
                "{}",
                tessera_host::totp(
                    secret.decode()?,
                    now_or(time),
                    period_or_default(period),
                    digits_or_default(digits),
                    algorithm(alg.as_deref())?
                )?
            );
        }
        OtpCommand::Ocra { suite, key, counter, question, password, session, time } => {
            let params = OcraParams {
                counter,
                question,
                password,
                session: session.map(|s| hex_decode_as(&s, tessera_core::ErrorCode::InvalidOcraInput)).transpose()?,
                time: time.map(Timestamp::from_secs),
            };
            out!("{}", tessera_host::ocra(suite, hex_decode(&key)?, params)?);
        }
        OtpCommand::Uri { uri, time, allow_short_secret } => {
            out!("{}", tessera_host::otpauth_code(uri, now_or(time), allow_short_secret)?);
        }
        OtpCommand::New { issuer, account, shape: CodeShape { algorithm: alg, digits, period }, no_qr } => {
            let secret = tessera_host::new_otp_secret()?;
            let uri = tessera_host::format_otpauth_uri(OtpAuthUri {
                kind: OtpKind::Totp { period_seconds: period_or_default(period) },
                issuer: Some(issuer),
                account,
                secret: secret.clone(),
                algorithm: algorithm(alg.as_deref())?,
                digits: digits_or_default(digits),
            })?;
            // Read back as an app would: refuses what no app could use.
            tessera_host::parse_otpauth_uri(uri.clone(), false)?;
            out!("{uri}");
            if !no_qr {
                eprintln!("secret (base32): {}", tessera_host::base32_encode(secret));
                out!("{}", render_qr(&uri, EcLevel::M)?);
            }
        }
        OtpCommand::VerifyTotp(a) => verify(a, Check::Totp)?,
        OtpCommand::VerifyHotp(a) => verify(a, Check::Hotp)?,
        OtpCommand::ResyncHotp { verify: a, next_code, search_window } => {
            verify(a, Check::Resync(next_code, search_window))?
        }
        OtpCommand::Unlock { state } => {
            let _lock = crate::secrets::lock_beside(&state)?;
            let s = tessera_host::unlock_verifier(read_state(&state, false)?)?;
            write_state(&state, &s)?;
            out!("unlocked");
        }
    }
    Ok(())
}
