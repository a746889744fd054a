//! `tessera token …`: a simulated offline authenticator (flow 3): a device
//! with a camera and a screen, no network and no clock (a bank's QR
//! reader, or an app acting as one), running tessera-host's
//! `OfflineAuthenticator`.
//!
//! The directory stands in for the device, as a phone's does: `device.db`
//! holds its sealed state (`token_state`), `device.key` (or
//! `TESSERA_DEVICE_KEY`) the storage key that seals it. `token new` also
//! plays the maker: it appends the device's record (tessera-host's
//! `factory_record` line) to a factory file for the portal's
//! `import-devices`.

use crate::cli_err;
use crate::device_cmd::storage_key;
use crate::store::DeviceDb;
use crate::util::Common;
use clap::Subcommand;
use serde_json::json;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::activation::FACTORY_FILE_HEADER;
use tessera_host::{Approval, AuthenticatorScreen, ErrorCode, OfflineAuthenticator, ScreenKind, TesseraError as Error};
use zeroize::Zeroizing;

/// The `device.db` key of an offline authenticator's sealed state.
pub const K_TOKEN: &str = "token_state";

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make an offline authenticator; append its maker's record to a factory file.
    ///
    /// The device's state goes in --dir; its record (a line of a factory
    /// file for `portal import-devices`) is appended to --export. The file
    /// is created, owner-only, with its header line
    /// `tessera-factory-records v1` if it does not exist; a record is
    /// appended to an existing one (which must be a factory file without
    /// this serial number). Prints the serial number.
    New {
        #[command(flatten)]
        c: Common,
        /// Serial number (6 to 16 of A-Z, 0-9), printed on the device's back.
        #[arg(long)]
        serial: String,
        /// The factory file to append the record to.
        #[arg(long)]
        export: PathBuf,
    },
    /// Scan a QR code; prints the digits shown, then what a challenge approves.
    ///
    /// An activation or a challenge QR code: the first line is the digits
    /// the device shows, the next what it says. A binding QR code changes the device's state, which is stored. The
    /// device has no clock: --now is accepted and ignored.
    Scan {
        #[command(flatten)]
        c: Common,
        /// The scanned QR text.
        #[arg(long)]
        qr: String,
    },
    /// Show the serial number and what the device is bound to.
    Info {
        #[command(flatten)]
        c: Common,
    },
}

/// The device: its storage and tessera-host's `OfflineAuthenticator`
/// bound to its storage key.
struct Tok {
    db: DeviceDb,
    app: Arc<OfflineAuthenticator>,
}

fn token(dir: &Path) -> Result<Tok, Error> {
    let db = DeviceDb::open(dir)?;
    let key = storage_key(&db, dir)?;
    let app = OfflineAuthenticator::new(key.to_vec())?;
    Ok(Tok { db, app })
}

fn no_token(dir: &Path) -> Error {
    cli_err(
        ErrorCode::InvalidState,
        format!("{} holds no offline authenticator; make one with `tessera token new`", dir.display()),
    )
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    cli_err(ErrorCode::Storage, format!("{}: {e}", path.display()))
}

/// Append `line` (the record of `serial`) to the factory file at `path`,
/// creating it (owner-only) with its header. The file is locked while it
/// is read and written, so makers running side by side append whole lines.
fn append_record(path: &Path, serial: &str, line: &str) -> Result<bool, Error> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).map_err(|e| io_err(path, e))?;
    f.lock().map_err(|e| io_err(path, e))?;
    let mut text = Zeroizing::new(String::new());
    f.read_to_string(&mut text).map_err(|_| {
        cli_err(ErrorCode::InvalidInput, format!("{} is not a factory file (not text)", path.display()))
    })?;
    let created = text.is_empty();
    let mut add = Zeroizing::new(String::new());
    if created {
        add.push_str(FACTORY_FILE_HEADER);
        add.push('\n');
    } else {
        let serials = tessera_host::factory_file_serials(text.to_string())
            .map_err(|e| Error::new(e.code(), format!("{}: {}", path.display(), e.detail())))?;
        if serials.iter().any(|s| s == serial) {
            return Err(cli_err(
                ErrorCode::DuplicateRecord,
                format!("{} already holds a record of serial number {serial}", path.display()),
            ));
        }
        if !text.ends_with('\n') {
            add.push('\n');
        }
    }
    add.push_str(line);
    add.push('\n');
    f.write_all(add.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| io_err(path, e))?;
    Ok(created)
}

/// The screen's kind as the CLI names it (snake_case, like activation steps).
pub fn kind_name(k: ScreenKind) -> &'static str {
    match k {
        ScreenKind::DeviceCode => "device_code",
        ScreenKind::BindingCode => "binding_code",
        ScreenKind::Challenge => "challenge",
    }
}

/// What the device's screen says under the digits.
fn screen_text(s: &AuthenticatorScreen) -> String {
    let portal = &s.portal_name;
    let user = s.user_id.as_deref().unwrap_or("?");
    match (&s.kind, &s.approval) {
        (ScreenKind::DeviceCode, _) => {
            format!("Activation at \"{portal}\": type these {} digits on the portal.", s.code.len())
        }
        (ScreenKind::BindingCode, _) => format!(
            "Bound to user {user} at \"{portal}\"{}: type these {} digits on the portal.",
            if s.replaced { " (replacing an earlier binding)" } else { "" },
            s.code.len()
        ),
        (ScreenKind::Challenge, Some(Approval::Transaction { amount, currency, payee, text })) => {
            let mut t = format!("Pay {amount} {currency} to \"{payee}\" as user {user} at \"{portal}\"?");
            for line in text {
                t.push_str("\n  ");
                t.push_str(line);
            }
            t
        }
        (ScreenKind::Challenge, Some(Approval::LinkDevice { device_name, .. })) => {
            format!("Link the new device \"{device_name}\" to user {user} at \"{portal}\"?")
        }
        (ScreenKind::Challenge, _) => format!("Log in to \"{portal}\" as user {user}?"),
    }
}

pub fn run(cmd: TokenCommand) -> Result<(), Error> {
    match cmd {
        TokenCommand::New { c, serial, export } => {
            let t = token(&c.dir)?;
            if t.db.get(K_TOKEN)?.is_some() {
                return Err(cli_err(
                    ErrorCode::InvalidState,
                    format!("{} already holds an offline authenticator (`tessera token info`)", c.dir.display()),
                ));
            }
            let made = t.app.create(serial)?;
            let record = Zeroizing::new(made.factory_record.clone());
            let serial = t.app.info(made.state.clone())?.serial;
            // The state and the record go together: the state is written
            // inside the transaction, which commits only once the record is
            // in the file (a failed append leaves no device).
            let created = t.db.exclusive(|db| {
                if db.get(K_TOKEN)?.is_some() {
                    return Err(cli_err(ErrorCode::InvalidState, "another process made an authenticator here first"));
                }
                db.put(K_TOKEN, &made.state)?;
                append_record(&export, &serial, &record)
            })?;
            if c.json {
                out!("{}", json!({"serial": serial, "export": export.display().to_string(), "created": created}));
            } else {
                out!("{serial}");
                eprintln!(
                    "offline authenticator {serial} made in {}; its record was appended to {}{} for \
                     `tessera portal import-devices`",
                    c.dir.display(),
                    export.display(),
                    if created { " (a new factory file)" } else { "" }
                );
            }
        }
        TokenCommand::Scan { c, qr } => {
            let t = token(&c.dir)?;
            let (screen, info) = t.db.exclusive(|db| {
                let state = db.get(K_TOKEN)?.ok_or_else(|| no_token(&c.dir))?;
                let screen = t.app.scan(state, qr.clone())?;
                db.put(K_TOKEN, &screen.state)?;
                let info = t.app.info(screen.state.clone())?;
                Ok((screen, info))
            })?;
            if c.json {
                out!(
                    "{}",
                    json!({"kind": kind_name(screen.kind), "code": screen.code, "portal": screen.portal_name,
                           "user_id": screen.user_id, "approval": screen.approval, "replaced": screen.replaced,
                           "serial": info.serial, "device_id": info.device_id})
                );
            } else {
                out!("{}", screen.code);
                out!("{}", screen_text(&screen));
            }
        }
        TokenCommand::Info { c } => {
            let t = token(&c.dir)?;
            let state = t.db.get(K_TOKEN)?.ok_or_else(|| no_token(&c.dir))?;
            let i = t.app.info(state)?;
            if c.json {
                out!(
                    "{}",
                    json!({"serial": i.serial, "bound": i.user_id.is_some(), "user_id": i.user_id,
                           "portal": i.portal_name, "device_id": i.device_id})
                );
            } else {
                match (&i.user_id, &i.portal_name) {
                    (Some(u), Some(p)) => out!(
                        "authenticator {} bound to user {u} at \"{p}\" (device {})",
                        i.serial,
                        i.device_id.as_deref().unwrap_or("-")
                    ),
                    _ => out!("authenticator {} (not activated)", i.serial),
                }
            }
        }
    }
    Ok(())
}
