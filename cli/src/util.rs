//! Small helpers shared by the commands.

use crate::cli_err;
use clap::Args;
use qrcode::{render::unicode, EcLevel, QrCode};
use std::path::PathBuf;
use tessera_host::{ErrorCode, TesseraError, Timestamp};

/// The `--now`/`--time` override (Unix seconds), else the system clock.
pub fn now_or(t: Option<u64>) -> Timestamp {
    t.map_or_else(Timestamp::now, Timestamp::from_secs)
}

/// Render `text` as a QR code with half-block characters for a terminal.
pub fn render_qr(text: &str, level: EcLevel) -> Result<String, TesseraError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), level)
        .map_err(|_| cli_err(ErrorCode::InvalidInput, "the text is too long for a QR code"))?;
    Ok(code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Options every portal and device command takes.
#[derive(Args, Debug)]
pub struct Common {
    /// State directory (one per portal or device).
    #[arg(long)]
    pub dir: PathBuf,
    /// Unix seconds to act at (default: the system clock).
    #[arg(long)]
    pub now: Option<u64>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Portal store (portal commands): `sqlite:PATH` or
    /// `postgres://user@host:port/db` (default: the environment variable
    /// TESSERA_DB, else portal.db in --dir). The portal key stays in --dir.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

/// Environment variable naming the portal store when `--db` is absent.
pub const DB_ENV: &str = "TESSERA_DB";

impl Common {
    /// The portal store to connect to: `--db`, else `TESSERA_DB`, else
    /// none (SQLite in `--dir`).
    pub fn db(&self) -> Option<String> {
        self.db.clone().or_else(|| std::env::var(DB_ENV).ok().filter(|v| !v.is_empty()))
    }
}

/// Unix seconds of a time, for the CLI's JSON and text output.
pub fn secs(t: Timestamp) -> u64 {
    t.secs()
}
