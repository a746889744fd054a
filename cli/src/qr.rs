//! QR codes: drawn in a terminal, or written to an SVG or PNG file
//! (`--qr-out FILE`, the format from the extension).
//!
//! The terminal drawing sets both colours of every cell explicitly (ANSI
//! 256-colour 16, pure black, and 231, pure white: the colour cube that
//! terminal themes leave alone) and draws the 4-module quiet zone in white,
//! so it reads the same on light and dark terminals; each line ends with a
//! reset. Two module rows share one text row (`▀`: the upper module in the
//! foreground colour, the lower one in the background colour).

use crate::cli_err;
use qrcode::{Color, EcLevel, QrCode};
use std::path::Path;
use tessera_host::{ErrorCode, TesseraError as Error};

/// Modules of white around the code (ISO/IEC 18004: at least 4).
const QUIET: usize = 4;
/// Pixels per module in a PNG file.
const PNG_SCALE: usize = 8;
/// ANSI: foreground / background pure black and pure white.
const FG_DARK: &str = "38;5;16";
const FG_LIGHT: &str = "38;5;231";
const BG_DARK: &str = "48;5;16";
const BG_LIGHT: &str = "48;5;231";

fn encode(text: &str, level: EcLevel) -> Result<QrCode, Error> {
    QrCode::with_error_correction_level(text.as_bytes(), level)
        .map_err(|_| cli_err(ErrorCode::InvalidInput, "the text is too long for a QR code"))
}

/// The modules with the quiet zone around them: `true` is dark.
fn grid(code: &QrCode) -> Vec<Vec<bool>> {
    let w = code.width();
    let colors = code.to_colors();
    let side = w + 2 * QUIET;
    let mut g = vec![vec![false; side]; side];
    for (i, c) in colors.iter().enumerate() {
        g[i / w + QUIET][i % w + QUIET] = *c == Color::Dark;
    }
    g
}

/// `text` as a QR code for a terminal (see the module doc).
pub fn terminal(text: &str, level: EcLevel) -> Result<String, Error> {
    let g = grid(&encode(text, level)?);
    let light = vec![false; g.len()];
    let mut out = String::new();
    for pair in g.chunks(2) {
        let (top, bottom) = (&pair[0], pair.get(1).unwrap_or(&light));
        for (t, b) in top.iter().zip(bottom) {
            let fg = if *t { FG_DARK } else { FG_LIGHT };
            let bg = if *b { BG_DARK } else { BG_LIGHT };
            out.push_str(&format!("\x1b[{fg};{bg}m\u{2580}"));
        }
        out.push_str("\x1b[0m\n");
    }
    out.pop();
    Ok(out)
}

/// An SVG drawing (black on white, with the quiet zone; tessera-host's
/// `qr_svg`, the one the bindings give).
fn svg(text: &str) -> Result<Vec<u8>, Error> {
    Ok(tessera_host::qr_svg(text.to_owned())?.into_bytes())
}

/// A PNG image: 8-bit greyscale, `PNG_SCALE` pixels a module, with the
/// quiet zone.
fn png(text: &str, level: EcLevel) -> Result<Vec<u8>, Error> {
    let g = grid(&encode(text, level)?);
    let side = g.len() * PNG_SCALE;
    let mut pixels = Vec::with_capacity(side * side);
    for row in &g {
        let line: Vec<u8> =
            row.iter().flat_map(|dark| std::iter::repeat_n(if *dark { 0 } else { 255 }, PNG_SCALE)).collect();
        for _ in 0..PNG_SCALE {
            pixels.extend_from_slice(&line);
        }
    }
    let size = u32::try_from(side).map_err(|_| cli_err(ErrorCode::Internal, "QR image size"))?;
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| cli_err(ErrorCode::Internal, format!("PNG encoding: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(fail)?;
        w.write_image_data(&pixels).map_err(fail)?;
        w.finish().map_err(fail)?;
    }
    Ok(out)
}

/// Write `text` as a QR code to `path`: `.svg` or `.png` (any case). The
/// file is replaced if it exists (it holds what the terminal shows).
pub fn write_file(path: &Path, text: &str, level: EcLevel) -> Result<(), Error> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => svg(text)?,
        Some("png") => png(text, level)?,
        _ => {
            return Err(cli_err(
                ErrorCode::InvalidInput,
                format!("--qr-out {}: the file name must end in .svg or .png", path.display()),
            ))
        }
    };
    crate::secrets::write_private(path, &bytes).map_err(|e| cli_err(e.code(), format!("--qr-out {}", e.detail())))
}

/// What a command does with a QR text it shows: draw it (`--render`)
/// and/or write it to a file (`--qr-out`).
pub fn show(text: &str, render: bool, qr_out: Option<&Path>) -> Result<(), Error> {
    if let Some(p) = qr_out {
        write_file(p, text, EcLevel::M)?;
    }
    if render {
        out!("{}", terminal(text, EcLevel::M)?);
    }
    Ok(())
}
