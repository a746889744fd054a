//! `tessera otp …`: an `oathtool`-like front end to tessera-host's OTP
//! functions, and its verifiers (replay protection and lockout) with their
//! state kept in a file.

use crate::cli_err;
use crate::input::SecretArg;
use crate::util::{render_qr, time_or_now, when};
use clap::{Args, Subcommand};
use qrcode::EcLevel;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq as _;
use tessera_core::encoding::{hex_decode, hex_decode_as};
use tessera_core::otp::Algorithm;
use tessera_host::{
    defaults, ErrorCode, OcraParams, OtpAlgorithm, OtpAuthUri, OtpKind, OtpVerifierConfig, OtpVerifierState,
    TesseraError as Error, Timestamp,
};
use zeroize::Zeroizing;

#[derive(Subcommand, Debug)]
pub enum OtpCommand {
    /// HOTP (RFC 4226) code for a counter; with CODE, check a code.
    ///
    /// Like `oathtool --hotp`: `-w N` also prints the codes of the next N
    /// counters; given CODE, looks for it at counters COUNTER to COUNTER+N
    /// and exits 0 printing the counter that matched (`counter 7 (+2)`), or
    /// exits 1 with `error[OTP_MISMATCH]`.
    Hotp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Counter value.
        #[arg(long, short = 'c')]
        counter: i64,
        /// Digits (6–10; default 6).
        #[arg(long, short = 'd')]
        digits: Option<i32>,
        /// sha1, sha256 or sha512 (default sha1).
        #[arg(long)]
        algorithm: Option<String>,
        #[command(flatten)]
        look: LookArgs,
        /// A code to check instead of printing codes.
        code: Option<String>,
    },
    /// TOTP (RFC 6238) code at a time; with CODE, check a code.
    ///
    /// Like `oathtool --totp`: `-w N` also prints the codes of the next N
    /// time steps; given CODE, looks for it N steps either side of the
    /// current one and exits 0 printing the step that matched (`step
    /// 60000001 (+1) from 2027-01-15T08:00:30Z`), or exits 1 with
    /// `error[OTP_MISMATCH]`. `-v`/`--show-step` prints the time step first.
    Totp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Time: Unix seconds or RFC 3339 (`2026-11-30T12:00:00Z`,
        /// `…+02:00`); default: now.
        #[arg(long, visible_alias = "now", short = 'N', value_name = "TIME")]
        time: Option<String>,
        /// Period in seconds (default 30).
        #[arg(long, short = 's')]
        period: Option<i64>,
        /// Digits (6–10; default 6).
        #[arg(long, short = 'd')]
        digits: Option<i32>,
        /// sha1, sha256 or sha512 (default sha1).
        #[arg(long)]
        algorithm: Option<String>,
        /// Print the time step first (like `oathtool -v`, without the
        /// secret): its number, start and end time, the step size and the
        /// time used, in RFC 3339 and Unix seconds.
        #[arg(long, short = 'v')]
        show_step: bool,
        #[command(flatten)]
        look: LookArgs,
        /// A code to check instead of printing codes.
        code: Option<String>,
    },
    /// OCRA (RFC 6287) response.
    Ocra {
        /// Suite, e.g. OCRA-1:HOTP-SHA1-6:QN08.
        #[arg(long)]
        suite: String,
        /// Key in hex (or `-`, `@FILE`, `env:NAME`).
        #[arg(long)]
        key: SecretArg,
        /// Counter (suites with C).
        #[arg(long)]
        counter: Option<i64>,
        /// Question as the suite says: decimal (QN), hex (QH) or text (QA).
        #[arg(long)]
        question: Option<String>,
        /// PIN in clear (suites with P; or `-`, `@FILE`, `env:NAME`).
        #[arg(long)]
        password: Option<SecretArg>,
        /// Session information in hex (suites with S).
        #[arg(long)]
        session: Option<String>,
        /// Time (suites with T): Unix seconds or RFC 3339.
        #[arg(long, visible_alias = "now", value_name = "TIME")]
        time: Option<String>,
        /// Machine-readable output: `{"response"}`.
        #[arg(long)]
        json: bool,
    },
    /// Print the current code of an otpauth:// URI.
    Uri {
        /// The otpauth:// URI (it holds the secret: or `-`, `@FILE`, `env:NAME`).
        uri: SecretArg,
        /// Time: Unix seconds or RFC 3339 (default: now).
        #[arg(long, visible_alias = "now", value_name = "TIME")]
        time: Option<String>,
        /// Accept secrets shorter than 128 bits.
        #[arg(long)]
        allow_short_secret: bool,
        /// Machine-readable output: `{"code"}`.
        #[arg(long)]
        json: bool,
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
        /// Also write the QR code to FILE: `.svg` or `.png` (owner-only: it holds the secret).
        #[arg(long, value_name = "FILE")]
        qr_out: Option<PathBuf>,
        /// Machine-readable output: `{"uri", "issuer", "account"}` (no terminal QR code).
        #[arg(long)]
        json: bool,
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
        /// Machine-readable output: `{"unlocked": true}`.
        #[arg(long)]
        json: bool,
    },
}

/// `oathtool`'s window and the output format of `otp hotp` and `otp totp`.
#[derive(Args, Debug)]
pub struct LookArgs {
    /// Window: print the codes of N more counters or steps (like `oathtool
    /// -w N`); with CODE, the counters or steps to search (at most 10000).
    #[arg(long, short = 'w', value_name = "N")]
    window: Option<u64>,
    /// Machine-readable output: `{"codes": [{"counter"|"step", "code"}, …]}`,
    /// or the match of CODE.
    #[arg(long)]
    json: bool,
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
    /// Secret in base32 (spaces, lower case and padding accepted), or `-`
    /// (a line of stdin), `@FILE` or `env:NAME`.
    #[arg(long)]
    secret: Option<SecretArg>,
    /// Secret in hex (or `-`, `@FILE`, `env:NAME`).
    #[arg(long)]
    secret_hex: Option<SecretArg>,
}

impl SecretArgs {
    fn decode(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        match (&self.secret, &self.secret_hex) {
            (Some(b32), _) => Ok(Zeroizing::new(tessera_host::base32_decode(b32.read("--secret")?.to_string())?)),
            (None, Some(h)) => Ok(Zeroizing::new(hex_decode(&h.read("--secret-hex")?)?)),
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
    /// Time: Unix seconds or RFC 3339 (default: now).
    #[arg(long, visible_alias = "now", value_name = "TIME")]
    time: Option<String>,
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
    /// Machine-readable output: `{"verdict", "matched", "drift"}`, also
    /// when refused (then with `"error"`).
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
        secret: a.secret.decode()?.to_vec(),
        algorithm: a.shape.algorithm.as_deref().map(|s| algorithm(Some(s))).transpose()?,
        digits: a.shape.digits,
        period_seconds: a.shape.period,
        window: a.window,
        max_failures: a.max_failures,
        lock_seconds: a.lock_seconds,
    };
    let _lock = crate::secrets::lock_beside(&a.state)?;
    let state = read_state(&a.state, a.new)?;
    let now = time_or_now("--time", a.time.as_deref())?;
    let what = if matches!(how, Check::Totp) { "step" } else { "counter" };
    let check = match how {
        Check::Totp => tessera_host::verify_totp(config, state, a.code, now),
        Check::Hotp => tessera_host::verify_hotp(config, state, a.code, now),
        Check::Resync(next, window) => tessera_host::resync_hotp(config, state, a.code, next, window, now),
    }
    .map_err(verifier_flags)?;
    // Stored whichever way the verdict goes: failures and replays count.
    write_state(&a.state, &check.state)?;
    if a.json {
        let verdict = serde_json::to_value(&check.verdict).unwrap_or_default();
        let doc = serde_json::json!({"verdict": verdict, "matched": check.matched, "drift": check.drift});
        return match check.verdict.check() {
            Ok(()) => {
                out!("{doc}");
                Ok(())
            }
            Err(e) => {
                out!("{}", crate::util::failure_json(doc, &e));
                Err(e)
            }
        };
    }
    check.verdict.check()?;
    out!("accepted ({what} {}, drift {})", check.matched.unwrap_or_default(), check.drift);
    Ok(())
}

/// The verifier's settings by their CLI flags (tessera-host names the
/// fields of `OtpVerifierConfig`).
fn verifier_flags(e: Error) -> Error {
    let d = e.detail().replace("lockSeconds", "--lock-seconds").replace("maxFailures", "--max-failures");
    Error::new(e.code(), d)
}

/// The most counters or steps `-w` looks at.
const MAX_LOOK: u64 = 10_000;

/// One code of a window: the counter (HOTP) or step (TOTP) and its code.
struct Slot {
    at: i64,
    code: String,
}

fn check_window(w: Option<u64>) -> Result<i64, Error> {
    let w = w.unwrap_or(0);
    if w > MAX_LOOK {
        return Err(cli_err(ErrorCode::InvalidInput, format!("--window must be 0 to {MAX_LOOK}")));
    }
    Ok(i64::try_from(w).unwrap_or(0))
}

/// Whether `typed` is `code` (constant time; a code of another length is not).
fn same(typed: &str, code: &str) -> bool {
    typed.len() == code.len() && bool::from(typed.as_bytes().ct_eq(code.as_bytes()))
}

/// A typed code's shape: `digits` decimal digits.
fn typed_code(code: &str, digits: i32) -> Result<String, Error> {
    let c: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if usize::try_from(digits).ok() != Some(c.len()) || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(cli_err(ErrorCode::InvalidInput, format!("the code must be {digits} decimal digits")));
    }
    Ok(c)
}

fn hotp_cmd(
    secret: &SecretArgs,
    counter: i64,
    digits: i32,
    alg: OtpAlgorithm,
    look: &LookArgs,
    code: Option<&str>,
) -> Result<(), Error> {
    let key = secret.decode()?;
    let w = check_window(look.window)?;
    let last = counter
        .checked_add(w)
        .ok_or_else(|| cli_err(ErrorCode::InvalidInput, "--counter plus --window is past the last counter"))?;
    let at =
        |c: i64| -> Result<Slot, Error> { Ok(Slot { at: c, code: tessera_host::hotp(key.to_vec(), c, digits, alg)? }) };
    if let Some(typed) = code {
        let typed = typed_code(typed, digits)?;
        for c in counter..=last {
            if same(&typed, &at(c)?.code) {
                if look.json {
                    out!("{}", serde_json::json!({"valid": true, "counter": c, "offset": c - counter}));
                } else {
                    out!("counter {c} (+{})", c - counter);
                }
                return Ok(());
            }
        }
        return Err(cli_err(ErrorCode::OtpMismatch, format!("the code matches no counter in {counter}..{last}")));
    }
    let slots = (counter..=last).map(at).collect::<Result<Vec<_>, _>>()?;
    if look.json {
        let codes: Vec<_> = slots.iter().map(|s| serde_json::json!({"counter": s.at, "code": s.code})).collect();
        out!("{}", serde_json::json!({"code": slots[0].code, "counter": counter, "codes": codes}));
    } else {
        for s in &slots {
            out!("{}", s.code);
        }
    }
    Ok(())
}

/// A time step as `--show-step` and `--json` show it.
fn step_json(step: i64, period: i64) -> serde_json::Value {
    let start = u64::try_from(step.saturating_mul(period)).unwrap_or(0);
    let end = start.saturating_add(u64::try_from(period).unwrap_or(0));
    serde_json::json!({"step": step, "step_start": start, "step_start_rfc3339": crate::rfc3339::format(start),
                       "step_end": end, "step_end_rfc3339": crate::rfc3339::format(end)})
}

#[allow(clippy::too_many_arguments)]
fn totp_cmd(
    secret: &SecretArgs,
    time: Option<&str>,
    period: i64,
    digits: i32,
    alg: OtpAlgorithm,
    show_step: bool,
    look: &LookArgs,
    code: Option<&str>,
) -> Result<(), Error> {
    let key = secret.decode()?;
    let now = time_or_now("--time", time)?.secs();
    if period <= 0 {
        return Err(cli_err(ErrorCode::InvalidTime, "--period must be at least 1 second"));
    }
    let w = check_window(look.window)?;
    let step = i64::try_from(now / period.unsigned_abs())
        .map_err(|_| cli_err(ErrorCode::InvalidTime, "the time is too far in the future"))?;
    let at = |s: i64| -> Result<Slot, Error> {
        let t = u64::try_from(s.saturating_mul(period)).unwrap_or(0);
        Ok(Slot { at: s, code: tessera_host::totp(key.to_vec(), Timestamp::from_secs(t), period, digits, alg)? })
    };
    let time_json = serde_json::json!({"time": now, "time_rfc3339": crate::rfc3339::format(now), "period": period});
    if show_step && !look.json {
        let s = step_json(step, period);
        out!("Step size (seconds): {period}");
        out!("Current time: {}", when(now));
        out!("Step: {step} (0x{step:x})");
        out!("Step start: {}", when(s["step_start"].as_u64().unwrap_or(0)));
        out!("Step end: {}", when(s["step_end"].as_u64().unwrap_or(0)));
        out!("");
    }
    let merge = |mut a: serde_json::Value, b: serde_json::Value| {
        if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
            a.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        a
    };
    if let Some(typed) = code {
        let typed = typed_code(typed, digits)?;
        // Nearest first: the current step, then -1, +1, -2, +2, …
        for d in std::iter::once(0).chain((1..=w).flat_map(|d| [-d, d])) {
            let Some(s) = step.checked_add(d).filter(|s| *s >= 0) else { continue };
            if same(&typed, &at(s)?.code) {
                let start = u64::try_from(s.saturating_mul(period)).unwrap_or(0);
                if look.json {
                    let m = serde_json::json!({"valid": true, "offset": d});
                    out!("{}", merge(merge(m, step_json(s, period)), time_json));
                } else {
                    out!("step {s} ({d:+}) from {}", crate::rfc3339::format(start));
                }
                return Ok(());
            }
        }
        return Err(cli_err(
            ErrorCode::OtpMismatch,
            format!(
                "the code matches no time step in {}..{} ({w} either side of step {step})",
                (step - w).max(0),
                step + w
            ),
        ));
    }
    let slots = (step..=step.saturating_add(w)).map(at).collect::<Result<Vec<_>, _>>()?;
    if look.json {
        let codes: Vec<_> = slots.iter().map(|s| serde_json::json!({"step": s.at, "code": s.code})).collect();
        let doc = serde_json::json!({"code": slots[0].code, "codes": codes});
        out!("{}", merge(merge(doc, step_json(step, period)), time_json));
    } else {
        for s in &slots {
            out!("{}", s.code);
        }
    }
    Ok(())
}

pub fn run(cmd: OtpCommand) -> Result<(), Error> {
    match cmd {
        OtpCommand::Hotp { secret, counter, digits, algorithm: alg, look, code } => {
            hotp_cmd(&secret, counter, digits_or_default(digits), algorithm(alg.as_deref())?, &look, code.as_deref())?;
        }
        OtpCommand::Totp { secret, time, period, digits, algorithm: alg, show_step, look, code } => {
            totp_cmd(
                &secret,
                time.as_deref(),
                period_or_default(period),
                digits_or_default(digits),
                algorithm(alg.as_deref())?,
                show_step,
                &look,
                code.as_deref(),
            )?;
        }
        OtpCommand::Ocra { suite, key, counter, question, password, session, time, json } => {
            let password = password.map(|p| p.read("--password")).transpose()?;
            let key = key.read("--key")?;
            let params = OcraParams {
                counter,
                question,
                password: password.map(|p| p.to_string()),
                session: session.map(|s| hex_decode_as(&s, tessera_core::ErrorCode::InvalidOcraInput)).transpose()?,
                time: time.map(|t| crate::rfc3339::parse("--time", &t).map(Timestamp::from_secs)).transpose()?,
            };
            let response = tessera_host::ocra(suite, Zeroizing::new(hex_decode(&key)?).to_vec(), params)?;
            if json {
                out!("{}", serde_json::json!({ "response": response }));
            } else {
                out!("{response}");
            }
        }
        OtpCommand::Uri { uri, time, allow_short_secret, json } => {
            let uri = uri.read("URI")?;
            let now = time_or_now("--time", time.as_deref())?;
            let code = tessera_host::otpauth_code(uri.to_string(), now, allow_short_secret).map_err(|e| {
                if e.code() == ErrorCode::SecretTooShort {
                    Error::new(e.code(), format!("{}; pass --allow-short-secret to accept it", e.detail()))
                } else {
                    e
                }
            })?;
            if json {
                out!("{}", serde_json::json!({ "code": code, "time": now.secs() }));
            } else {
                out!("{code}");
            }
        }
        OtpCommand::New {
            issuer,
            account,
            shape: CodeShape { algorithm: alg, digits, period },
            no_qr,
            qr_out,
            json,
        } => {
            let secret = tessera_host::new_otp_secret()?;
            let uri = tessera_host::format_otpauth_uri(OtpAuthUri {
                kind: OtpKind::Totp { period_seconds: period_or_default(period) },
                issuer: Some(issuer.clone()),
                account: account.clone(),
                secret: secret.clone(),
                algorithm: algorithm(alg.as_deref())?,
                digits: digits_or_default(digits),
            })?;
            // Read back as an app would: refuses what no app could use.
            tessera_host::parse_otpauth_uri(uri.clone(), false)?;
            if let Some(p) = &qr_out {
                crate::qr::write_file(p, &uri, EcLevel::M)?;
            }
            if json {
                let mut doc = serde_json::json!({"uri": uri, "issuer": issuer, "account": account});
                if let Some(p) = &qr_out {
                    doc["qr_out"] = serde_json::json!(p.display().to_string());
                }
                out!("{doc}");
                return Ok(());
            }
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
        OtpCommand::Unlock { state, json } => {
            let _lock = crate::secrets::lock_beside(&state)?;
            let s = tessera_host::unlock_verifier(read_state(&state, false)?)?;
            write_state(&state, &s)?;
            if json {
                out!("{}", serde_json::json!({ "unlocked": true }));
            } else {
                out!("unlocked");
            }
        }
    }
    Ok(())
}
