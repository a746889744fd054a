//! Small helpers shared by the commands.

use crate::cli_err;
use clap::Args;
use qrcode::{render::unicode, EcLevel, QrCode};
use std::path::PathBuf;
use tessera_core::{Error, ErrorCode};

/// Unix seconds now, or the `--now`/`--time` override.
pub fn now_or(t: Option<u64>) -> Result<u64, Error> {
    match t {
        Some(t) => Ok(t),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| cli_err(ErrorCode::InvalidTime, "the system clock is before 1970")),
    }
}

/// `N` random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| cli_err(ErrorCode::Internal, "the system random generator failed"))?;
    Ok(b)
}

/// Render `text` as a QR code with half-block characters for a terminal.
pub fn render_qr(text: &str, level: EcLevel) -> Result<String, Error> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), level)
        .map_err(|_| cli_err(ErrorCode::InvalidInput, "the text is too long for a QR code"))?;
    Ok(code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// The OS random generator as a core [`RandomSource`](tessera_core::crypto::RandomSource).
pub struct CliRandom;

impl tessera_core::crypto::RandomSource for CliRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Without an OS entropy source nothing here can work; stop loudly.
        #[allow(clippy::panic)]
        if getrandom::fill(dest).is_err() {
            panic!("the system random generator failed");
        }
    }
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
}
