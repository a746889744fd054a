//! Small helpers shared by the commands.

use clap::Args;
use qrcode::EcLevel;
use std::path::PathBuf;
use tessera_host::{TesseraError, Timestamp};

/// The `--now`/`--time` override (Unix seconds or RFC 3339), else the
/// system clock; a malformed value is `INVALID_TIME` naming `flag`.
pub fn time_or_now(flag: &str, t: Option<&str>) -> Result<Timestamp, TesseraError> {
    match t {
        Some(v) => Ok(Timestamp::from_secs(crate::rfc3339::parse(flag, v)?)),
        None => Ok(Timestamp::now()),
    }
}

/// [`time_or_now`] for `--now`.
pub fn now_or(t: Option<&str>) -> Result<Timestamp, TesseraError> {
    time_or_now("--now", t)
}

/// Render `text` as a QR code for a terminal (light or dark: both colours
/// are set, see [`crate::qr`]).
pub fn render_qr(text: &str, level: EcLevel) -> Result<String, TesseraError> {
    crate::qr::terminal(text, level)
}

/// Options every portal and device command takes.
#[derive(Args, Debug)]
pub struct Common {
    /// State directory (one per portal or device).
    #[arg(long)]
    pub dir: PathBuf,
    /// Time to act at: Unix seconds or RFC 3339 (`2026-11-30T12:00:00Z`,
    /// `…+02:00`); default: the system clock.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Machine-readable output: one JSON document on stdout; an error is
    /// also `{"error": {"code", "message"}}`, the last line on stderr.
    #[arg(long)]
    pub json: bool,
    /// Portal store (portal commands): `sqlite:PATH` or
    /// `postgres://user@host:port/db` (default: the environment variable
    /// TESSERA_DB, else portal.db in --dir). The portal key stays in --dir.
    /// A URL with a password can come from `@FILE` or `env:NAME`. TLS:
    /// `?sslmode=verify-full&sslrootcert=CA.pem` (a host other than
    /// loopback gets verify-full by default; docs/DESIGN.md).
    #[arg(long, value_name = "URL")]
    pub db: Option<crate::input::SecretArg>,
}

/// Environment variable naming the portal store when `--db` is absent.
pub const DB_ENV: &str = "TESSERA_DB";

impl Common {
    /// The portal store to connect to: `--db` (also `@FILE`, `env:NAME`),
    /// else `TESSERA_DB`, else none (SQLite in `--dir`).
    pub fn db(&self) -> Result<Option<String>, TesseraError> {
        match &self.db {
            Some(v) => Ok(Some(v.read("--db")?.to_string())),
            None => Ok(std::env::var(DB_ENV).ok().filter(|v| !v.is_empty())),
        }
    }

    /// `--now`, else the system clock.
    pub fn now(&self) -> Result<Timestamp, TesseraError> {
        now_or(self.now.as_deref())
    }
}

/// Unix seconds of a time, for the CLI's JSON and text output.
pub fn secs(t: Timestamp) -> u64 {
    t.secs()
}

/// A time for people: RFC 3339 (UTC) and Unix seconds,
/// `2027-01-15T08:00:00Z (1800000000)`.
pub fn when(t: u64) -> String {
    format!("{} ({t})", crate::rfc3339::format(t))
}

/// The `"error"` member of `--json` output: `{"code", "message"}`.
pub fn error_json(e: &TesseraError) -> serde_json::Value {
    serde_json::json!({"code": e.code().as_str(), "message": e.detail()})
}

/// A command's `--json` document for a failure (a verdict, where an
/// activation stands, …) with the error added as `"error": {"code",
/// "message"}`, unless the document has an `error` of its own already.
pub fn failure_json(mut doc: serde_json::Value, e: &TesseraError) -> serde_json::Value {
    if let Some(o) = doc.as_object_mut() {
        o.entry("error").or_insert_with(|| error_json(e));
    }
    doc
}

/// How a command shows the QR code it prints the text of.
#[derive(Args, Debug, Default)]
pub struct QrArgs {
    /// Draw the QR code in the terminal (explicit black on white, with
    /// its quiet zone: reads on light and dark terminals).
    #[arg(long)]
    pub render: bool,
    /// Write the QR code to FILE: `.svg` or `.png` (owner-only).
    #[arg(long, value_name = "FILE")]
    pub qr_out: Option<PathBuf>,
}

impl QrArgs {
    /// Write the file (`--qr-out`), then draw it (`--render`).
    pub fn show(&self, text: &str) -> Result<(), TesseraError> {
        crate::qr::show(text, self.render, self.qr_out.as_deref())
    }
}
