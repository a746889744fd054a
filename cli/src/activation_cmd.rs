//! `tessera portal …` for flow 3, activation of offline authenticators:
//! the maker's file (`import-devices`), the letter (`order`), the steps
//! of an activation (`activation-start`, `activation-next`,
//! `activation-status`), the settings they run with
//! (`activation-settings`), and the account password and recovery codes
//! an activation sets (`password-check`, `recovery-code`).
//!
//! As every portal command: each state change goes through
//! [`PortalDb::run`] (read the rows, call `tessera_host::Portal`,
//! compare-and-set the writes in one transaction, retry on a conflict),
//! output comes after the commit, and a refusal (`Verdict::Refused`) is
//! stored first, then the `error[CODE]` exit (with `--json`, the verdict and
//! where the activation stands are printed before it).

use crate::cli_err;
use crate::input::SecretArg;
use crate::portal_cmd::{events_json, load_portal, notify, verdict_json};
use crate::store::{name_of, read, PortalDb};
use crate::util::{failure_json, secs, Common, QrArgs};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use tessera_core::activation as core_act;
use tessera_host::{
    ActivationSettings, ActivationStatus, ActivationStep, ActivationUpdate, CredentialCheck, ErrorCode, PortalChange,
    RecordWrite, StoredActivation, TesseraError as Error,
};
use zeroize::Zeroizing;

#[derive(Subcommand, Debug)]
pub enum ActivationCommand {
    /// Import a maker's factory file: its authenticators go in stock.
    ///
    /// All or nothing: a serial number imported before or repeated
    /// (DUPLICATE_RECORD), a malformed line (INVALID_INPUT) or another file
    /// version (UNSUPPORTED_VERSION) refuses the whole file, with its line
    /// number. Prints the serial numbers imported.
    ImportDevices {
        #[command(flatten)]
        c: Common,
        /// The factory file (`tessera-factory-records v1`, then one `SERIAL HEX` line per device).
        #[arg(long)]
        file: PathBuf,
    },
    /// List the imported authenticators (in stock, assigned, active).
    Authenticators {
        #[command(flatten)]
        c: Common,
    },
    /// Order an authenticator for an account; prints the letter and the serial to send.
    ///
    /// Prints the letter's user ID and initial password, then the serial
    /// number of the device to send, one a line.
    /// Sends the in-stock authenticator imported first, or --serial. The
    /// activation code is the one the user chose when ordering; the letter
    /// carries the user ID and the single-use initial password (never the
    /// activation code).
    Order {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// The activation code the user chose (6 to 32 characters; or `-`: a line of stdin, `@FILE`, `env:NAME`).
        #[arg(long)]
        activation_code: SecretArg,
        /// Send this authenticator (in stock) instead of the oldest one.
        #[arg(long)]
        serial: Option<String>,
    },
    /// Start (or restart) an order's activation; prints its id, step and QR code.
    ///
    /// The id, the step (`device_code`) and the first QR code, one a line.
    /// A restart supersedes a running activation of the order.
    ActivationStart {
        #[command(flatten)]
        c: Common,
        /// The user ID from the letter.
        #[arg(long)]
        user_id: String,
        #[command(flatten)]
        q: QrArgs,
    },
    /// The user's entry for the current step; prints the id, the next step, its QR code.
    ///
    /// The QR code only when the step has one.
    /// Steps: device_code (the 10 digits the device shows for the first QR
    /// code), activation_code, binding_code (8 digits, second QR code),
    /// serial, test_otp (the code for the test challenge), initial_password,
    /// new_password, done. A wrong entry is stored (5 end the activation; 5
    /// wrong activation codes or initial passwords lock the order) and leaves
    /// the step where it was: `error[CODE]`, the step's own code. At `done`
    /// the recovery codes are printed, once.
    ActivationNext {
        #[command(flatten)]
        c: Common,
        /// The activation id (from `activation-start`).
        #[arg(long)]
        id: String,
        /// What the user typed (or `-`: a line of stdin, e.g. a password; `@FILE`, `env:NAME`).
        #[arg(long, allow_hyphen_values = true)]
        input: SecretArg,
        #[command(flatten)]
        q: QrArgs,
    },
    /// Where an activation stands: its id, step and QR code again (after a reload).
    ActivationStatus {
        #[command(flatten)]
        c: Common,
        /// The activation id.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        q: QrArgs,
    },
    /// Show or change how this portal runs activations.
    ///
    /// They are stored in the portal's directory and used by `order`,
    /// `activation-start` and `activation-next`. Without options: the
    /// settings in force. Options change only what
    /// they name (--reset first goes back to the defaults).
    ActivationSettings {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        s: SettingsArgs,
    },
    /// Check an account's password (set by an activation); prints `accepted`.
    ///
    /// 5 wrong passwords or recovery codes in a row lock both (LOCKED_OUT).
    PasswordCheck {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// The password (or `-`: a line of stdin, `@FILE`, `env:NAME`).
        #[arg(long, allow_hyphen_values = true)]
        password: SecretArg,
    },
    /// Cancel an activation the user did not make: unlink its
    /// authenticator and drop the password and recovery codes it set while
    /// they still wait for its delay, in one transaction.
    CancelActivation {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// The authenticator's device id (`portal devices` lists it).
        #[arg(long)]
        device: String,
    },
    /// Use one of an account's recovery codes (single use); prints how many are left.
    RecoveryCode {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// The recovery code (or `-`: a line of stdin, `@FILE`, `env:NAME`).
        #[arg(long, allow_hyphen_values = true)]
        code: SecretArg,
    },
}

/// The portal's activation settings, as options.
#[derive(Args, Debug)]
pub struct SettingsArgs {
    /// Go back to the defaults first.
    #[arg(long)]
    reset: bool,
    /// PBKDF2 iterations of the activation code and passwords (10000 to 10000000; default 600000).
    #[arg(long)]
    hash_iterations: Option<u32>,
    /// Seconds from activation until the device is usable (0 to 30 days; default 14400).
    #[arg(long)]
    usable_after: Option<u64>,
    /// Seconds to finish an activation (60 to 86400; default 1800).
    #[arg(long)]
    activation_ttl: Option<u64>,
    /// Seconds an order (its letter) can be activated (1 to 365 days; default 90 days).
    #[arg(long)]
    order_ttl: Option<u64>,
    /// Digits of the test challenge's code (6 to 10; default 8).
    #[arg(long)]
    challenge_digits: Option<u8>,
    /// Fewest characters of a new password (8 to 64; default 12).
    #[arg(long)]
    password_min: Option<u8>,
    /// Most characters of a new password (64 to 256; default 64).
    #[arg(long)]
    password_max: Option<u16>,
    /// Refuse this password (case-insensitive); repeat the option.
    #[arg(long)]
    blocklist: Vec<String>,
    /// Refuse the passwords in this file (one per line).
    #[arg(long)]
    blocklist_file: Option<PathBuf>,
    /// Empty the blocklist first.
    #[arg(long)]
    clear_blocklist: bool,
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SettingsArgs {
    fn changes(&self) -> bool {
        self.reset
            || self.hash_iterations.is_some()
            || self.usable_after.is_some()
            || self.activation_ttl.is_some()
            || self.order_ttl.is_some()
            || self.challenge_digits.is_some()
            || self.password_min.is_some()
            || self.password_max.is_some()
            || !self.blocklist.is_empty()
            || self.blocklist_file.is_some()
            || self.clear_blocklist
    }

    fn apply(&self, stored: ActivationSettings) -> Result<ActivationSettings, Error> {
        let mut s = if self.reset { ActivationSettings::default() } else { stored };
        if let Some(v) = self.hash_iterations {
            s.hash_iterations = Some(i64::from(v));
        }
        if let Some(v) = self.usable_after {
            s.usable_after_seconds = Some(i64_of(v));
        }
        if let Some(v) = self.activation_ttl {
            s.activation_ttl_seconds = Some(i64_of(v));
        }
        if let Some(v) = self.order_ttl {
            s.order_ttl_seconds = Some(i64_of(v));
        }
        if let Some(v) = self.challenge_digits {
            s.challenge_digits = Some(i32::from(v));
        }
        if let Some(v) = self.password_min {
            s.password_min_length = Some(i32::from(v));
        }
        if let Some(v) = self.password_max {
            s.password_max_length = Some(i32::from(v));
        }
        if self.clear_blocklist {
            s.blocklist.clear();
        }
        s.blocklist.extend(self.blocklist.iter().cloned());
        if let Some(path) = &self.blocklist_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| cli_err(ErrorCode::InvalidInput, format!("{}: {e}", path.display())))?;
            s.blocklist.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
        }
        s.blocklist.sort_by_key(|w| w.to_lowercase());
        s.blocklist.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        effective(&s)?;
        Ok(s)
    }
}

/// The settings in force (defaults filled in), checked when they are set.
fn effective(s: &ActivationSettings) -> Result<core_act::ActivationSettings, Error> {
    s.to_core()
}

/// An activation step as the CLI names it (`--json` and text): snake_case.
pub fn step_name(s: ActivationStep) -> &'static str {
    match s {
        ActivationStep::DeviceCode => "device_code",
        ActivationStep::ActivationCode => "activation_code",
        ActivationStep::BindingCode => "binding_code",
        ActivationStep::Serial => "serial",
        ActivationStep::TestOtp => "test_otp",
        ActivationStep::InitialPassword => "initial_password",
        ActivationStep::NewPassword => "new_password",
        ActivationStep::Done => "done",
    }
}

/// What the user does at a step (the portal's page would say it).
fn step_hint(s: ActivationStep, id: &str) -> String {
    let next = format!("tessera portal activation-next --id {id} --input");
    match s {
        ActivationStep::DeviceCode => {
            format!("scan the QR code with the authenticator (`tessera token scan`), then type its 10 digits: {next} DIGITS")
        }
        ActivationStep::ActivationCode => format!("type the activation code chosen when ordering: {next} CODE"),
        ActivationStep::BindingCode => {
            format!("scan this second QR code with the authenticator, then type its 8 digits: {next} DIGITS")
        }
        ActivationStep::Serial => format!("type the serial number on the back of the authenticator: {next} SERIAL"),
        ActivationStep::TestOtp => format!("scan the test challenge, then type the code it shows: {next} CODE"),
        ActivationStep::InitialPassword => format!("type the initial password from the letter: {next} PASSWORD"),
        ActivationStep::NewPassword => format!("choose a new password: {next} -   (reads it from stdin)"),
        ActivationStep::Done => "activated".to_owned(),
    }
}

fn no_user() -> Error {
    cli_err(ErrorCode::UserUnknown, "no order has this user ID")
}

fn no_activation() -> Error {
    cli_err(ErrorCode::TokenUnknown, "no activation has this id (`tessera portal activation-start` makes one)")
}

fn corrupt(what: String) -> Error {
    cli_err(ErrorCode::StateCorrupt, what)
}

/// The user ID as typed from a letter (spaces and dashes dropped).
fn typed_user_id(u: &str) -> String {
    u.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

/// The activation row a change writes.
fn written_activation(change: &PortalChange) -> Option<&StoredActivation> {
    change.writes.iter().rev().find_map(|w| match w {
        RecordWrite::Activation { row, .. } => Some(row),
        _ => None,
    })
}

/// An activation update, as `activation-start`, `-next` and `-status`
/// print it: `--json` `{"id", "step", "qr"?, …}` (`qr` only when a QR code
/// is to be shown; at `done` also `recovery_codes`, `device_id`,
/// `usable_from`); text: the id, the step and the QR text, one a line.
fn update_json(u: &ActivationUpdate, row: Option<&StoredActivation>, change: &PortalChange) -> serde_json::Value {
    let mut j = json!({"id": u.activation_id, "step": step_name(u.step)});
    if let Some(qr) = &u.qr_text {
        j["qr"] = json!(qr);
    }
    if u.step == ActivationStep::Done && !u.recovery_codes.is_empty() {
        j["recovery_codes"] = json!(u.recovery_codes);
    }
    if let Some(d) = &u.device_id {
        j["device_id"] = json!(d);
    }
    if let Some(t) = u.usable_from {
        j["usable_from"] = json!(secs(t));
    }
    if let Some(r) = row {
        j["status"] = json!(name_of(&r.status));
        j["failures"] = json!(r.failures);
        j["expires_at"] = json!(secs(r.expires_at));
        j["user_id"] = json!(r.user_id);
        j["account"] = json!(r.account);
        j["serial"] = json!(r.serial);
    }
    j["verdict"] = verdict_json(&u.verdict);
    j["events"] = events_json(change);
    j
}

fn print_update(
    c: &Common,
    u: &ActivationUpdate,
    row: Option<&StoredActivation>,
    change: &PortalChange,
    q: &QrArgs,
) -> Result<(), Error> {
    notify(change);
    if let Err(e) = u.verdict.check() {
        if c.json {
            out!("{}", failure_json(update_json(u, row, change), &e));
        } else if let Some(r) = row.filter(|r| r.status == ActivationStatus::Open) {
            eprintln!(
                "activation {} stays at step {} ({} wrong {} of 5)",
                u.activation_id,
                step_name(u.step),
                r.failures,
                if r.failures == 1 { "entry" } else { "entries" }
            );
        }
        return Err(e);
    }
    if c.json {
        out!("{}", update_json(u, row, change));
    } else {
        out!("{}", u.activation_id);
        out!("{}", step_name(u.step));
        if let Some(qr) = &u.qr_text {
            out!("{qr}");
        }
        if u.step == ActivationStep::Done {
            if let (Some(d), Some(t)) = (&u.device_id, u.usable_from) {
                out!("device {d} usable from {}", secs(t));
            }
            if !u.recovery_codes.is_empty() {
                out!("recovery codes (shown this once; keep them safe, each works once):");
                for code in &u.recovery_codes {
                    out!("  {code}");
                }
            }
        }
        eprintln!("{}", step_hint(u.step, &u.activation_id));
    }
    if let Some(qr) = &u.qr_text {
        q.show(qr)?;
    }
    Ok(())
}

/// `line N: …` of an import error's detail.
fn line_of(detail: &str) -> Option<u64> {
    let rest = detail.strip_prefix("line ")?;
    rest[..rest.find(':')?].parse().ok()
}

fn print_credential_check(c: &Common, check: &CredentialCheck, change: &PortalChange, what: &str) -> Result<(), Error> {
    notify(change);
    if let Err(e) = check.verdict.check() {
        if c.json {
            let doc = json!({"verdict": verdict_json(&check.verdict), "events": events_json(change)});
            out!("{}", failure_json(doc, &e));
        }
        return Err(e);
    }
    if c.json {
        out!(
            "{}",
            json!({"accepted": true, "verdict": verdict_json(&check.verdict),
                   "recovery_codes_left": check.recovery_codes_left, "events": events_json(change)})
        );
    } else {
        out!("accepted");
        eprintln!("{what}; {} recovery codes left", check.recovery_codes_left);
    }
    Ok(())
}

fn settings_json(s: &ActivationSettings) -> Result<serde_json::Value, Error> {
    let e = effective(s)?;
    Ok(json!({"hash_iterations": e.hash_iterations, "usable_after": e.usable_after,
              "activation_ttl": e.activation_ttl, "order_ttl": e.order_ttl,
              "challenge_digits": e.challenge_digits, "password_min": e.password.min_len,
              "password_max": e.password.max_len, "blocklist": e.blocklist}))
}

fn open(c: &Common) -> Result<(PortalDb, std::sync::Arc<tessera_host::Portal>), Error> {
    let db = PortalDb::connect(&c.dir, c.db()?.as_deref(), false)?;
    let portal = load_portal(&db, &c.dir)?;
    Ok((db, portal))
}

fn read_factory_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| cli_err(ErrorCode::InvalidInput, format!("{}: {e}", path.display())))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| cli_err(ErrorCode::InvalidInput, format!("{}: not a factory file (not text)", path.display())))?;
    Ok(Zeroizing::new(text.to_owned()))
}

pub fn run(cmd: ActivationCommand) -> Result<(), Error> {
    match cmd {
        ActivationCommand::ImportDevices { c, file } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let text = read_factory_file(&file)?;
            let ran = db.run(now, |tx| {
                let serials = tessera_host::factory_file_serials(text.to_string())?;
                let known = read::imported_serials(tx, &serials)?;
                let import = portal.import_devices(text.to_string(), known, now)?;
                Ok((import.change.clone(), import))
            });
            let (change, import) = match ran.and_then(crate::store::Ran::stored) {
                Ok(v) => v,
                Err(e) => {
                    let line = line_of(e.detail());
                    if c.json {
                        // `error` is the code here (this document predates
                        // the `{"code", "message"}` object of other failures).
                        let doc = json!({"error": e.code().as_str(), "line": line, "detail": e.detail(),
                                         "file": file.display().to_string()});
                        out!("{}", failure_json(doc, &e));
                    }
                    return Err(Error::new(e.code(), format!("{}: {}", file.display(), e.detail())));
                }
            };
            if c.json {
                out!(
                    "{}",
                    json!({"serials": import.serials, "file": file.display().to_string(),
                           "events": events_json(&change)})
                );
            } else {
                for s in &import.serials {
                    out!("{s}");
                }
                eprintln!(
                    "imported {} authenticator{} into stock from {}",
                    import.serials.len(),
                    if import.serials.len() == 1 { "" } else { "s" },
                    file.display()
                );
            }
        }
        ActivationCommand::Authenticators { c } => {
            let (mut db, _) = open(&c)?;
            let rows = db.read(read::authenticators)?;
            if c.json {
                let list: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        json!({"serial": r.serial, "status": name_of(&r.status), "account": r.account,
                               "user_id": r.user_id, "imported_at": secs(r.imported_at)})
                    })
                    .collect();
                out!("{}", serde_json::Value::Array(list));
            } else {
                out!("{:<16} {:<9} {:>12} {:<12} ACCOUNT", "SERIAL", "STATUS", "IMPORTED_AT", "USER_ID");
                for r in &rows {
                    out!(
                        "{:<16} {:<9} {:>12} {:<12} {}",
                        r.serial,
                        name_of(&r.status),
                        secs(r.imported_at),
                        r.user_id.as_deref().unwrap_or("-"),
                        if r.account.is_empty() { "-" } else { &r.account }
                    );
                }
            }
        }
        ActivationCommand::Order { c, account, activation_code, serial } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let code = activation_code.read("--activation-code")?;
            let serial = serial.map(|s| s.trim().to_uppercase());
            let (change, order) = db
                .run(now, |tx| {
                    let row = match &serial {
                        Some(s) => read::authenticator(tx, s)?.ok_or_else(|| {
                            cli_err(ErrorCode::DeviceUnknown, format!("no authenticator with serial number {s} was imported"))
                        })?,
                        None => read::oldest_in_stock(tx)?.ok_or_else(|| {
                            cli_err(
                                ErrorCode::InvalidState,
                                "no authenticator in stock: import a maker's file first (`tessera portal import-devices`)",
                            )
                        })?,
                    };
                    let settings = read::activation_settings(tx)?;
                    let o = portal.order_device(account.clone(), code.to_string(), row, settings, now)?;
                    Ok((o.change.clone(), o))
                })?
                .stored()?;
            notify(&change);
            if c.json {
                out!(
                    "{}",
                    json!({"user_id": order.user_id, "initial_password": order.initial_password,
                           "serial": order.serial, "account": account, "expires_at": secs(order.expires_at),
                           "events": events_json(&change)})
                );
            } else {
                out!("{}", order.user_id);
                out!("{}", order.initial_password);
                out!("{}", order.serial);
                eprintln!(
                    "letter to {account}: user ID {}, initial password {} (single use); send authenticator {} with it; \
                     it can be activated until {} (`tessera portal activation-start --user-id {}`)",
                    order.user_id,
                    order.initial_password,
                    order.serial,
                    crate::util::when(secs(order.expires_at)),
                    order.user_id
                );
            }
        }
        ActivationCommand::ActivationStart { c, user_id, q } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let user_id = typed_user_id(&user_id);
            let (change, u) = db
                .run(now, |tx| {
                    let order = read::order(tx, &user_id)?.ok_or_else(no_user)?;
                    let auth = read::authenticator(tx, &order.serial)?.ok_or_else(|| {
                        corrupt(format!(
                            "the order of user ID {user_id} names authenticator {}, which is not stored",
                            order.serial
                        ))
                    })?;
                    let settings = read::activation_settings(tx)?;
                    let u = portal.start_activation(order, auth, settings, now)?;
                    Ok((u.change.clone(), u))
                })?
                .stored()?;
            print_update(&c, &u, written_activation(&change), &change, &q)?;
        }
        ActivationCommand::ActivationNext { c, id, input, q } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let input = input.read("--input")?;
            let (change, (u, row)) = db
                .run(now, |tx| {
                    let row = read::activation(tx, &id)?.ok_or_else(no_activation)?;
                    let order = read::order(tx, &row.user_id)?.ok_or_else(|| {
                        corrupt(format!("activation {id} names user ID {}, which has no order", row.user_id))
                    })?;
                    let auth = read::authenticator(tx, &row.serial)?.ok_or_else(|| {
                        corrupt(format!("activation {id} names authenticator {}, which is not stored", row.serial))
                    })?;
                    let creds = read::credentials(tx, &row.account)?;
                    let settings = read::activation_settings(tx)?;
                    let u =
                        portal.activation_next(row.clone(), order, auth, creds, input.to_string(), settings, now)?;
                    let after = written_activation(&u.change).cloned().unwrap_or(row);
                    Ok((u.change.clone(), (u, after)))
                })?
                .stored()?;
            print_update(&c, &u, Some(&row), &change, &q)?;
        }
        ActivationCommand::ActivationStatus { c, id, q } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let row = db.read(|tx| read::activation(tx, &id))?.ok_or_else(no_activation)?;
            let u = portal.activation_status(row.clone())?;
            let change = PortalChange::default();
            print_update(&c, &u, Some(&row), &change, &q)?;
            if !c.json {
                let state = match row.status {
                    ActivationStatus::Open if now >= row.expires_at => {
                        format!(
                            "expired at {} (start again: `tessera portal activation-start`)",
                            crate::util::when(secs(row.expires_at))
                        )
                    }
                    ActivationStatus::Open => format!("open until {}", crate::util::when(secs(row.expires_at))),
                    ActivationStatus::Done => "done".to_owned(),
                    ActivationStatus::LockedOut => "ended by 5 wrong entries".to_owned(),
                    ActivationStatus::Expired => "expired".to_owned(),
                };
                eprintln!(
                    "activation {} of user ID {} ({}, authenticator {}): {state}, {} wrong entries",
                    row.activation_id, row.user_id, row.account, row.serial, row.failures
                );
            }
        }
        ActivationCommand::ActivationSettings { c, s } => {
            let mut db = PortalDb::connect(&c.dir, c.db()?.as_deref(), false)?;
            db.identity()?.ok_or_else(|| {
                cli_err(ErrorCode::Storage, "this directory has no portal; run `tessera portal init`")
            })?;
            let settings = if s.changes() {
                db.update_activation_settings(|stored| s.apply(stored))?
            } else {
                db.read(read::activation_settings)?
            };
            let j = settings_json(&settings)?;
            if c.json {
                out!("{j}");
            } else {
                for (k, v) in j.as_object().into_iter().flatten() {
                    match v {
                        serde_json::Value::Array(a) => out!("{k:<18} {} entries", a.len()),
                        v => out!("{k:<18} {v}"),
                    }
                }
            }
        }
        ActivationCommand::PasswordCheck { c, account, password } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let password = password.read("--password")?;
            let (change, check) = db
                .run(now, |tx| {
                    let row = read::credentials(tx, &account)?.ok_or_else(|| no_credentials(&account))?;
                    let check = portal.verify_password(row, password.to_string(), now)?;
                    Ok((check.change.clone(), check))
                })?
                .stored()?;
            print_credential_check(&c, &check, &change, "password accepted")?;
        }
        ActivationCommand::CancelActivation { c, account, device } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let (change, dropped) = db
                .run(now, |tx| {
                    let row = read::device_of(tx, &account, &device)?
                        .ok_or_else(|| cli_err(ErrorCode::DeviceUnknown, "no such device of this account"))?;
                    if row.serial.is_none() {
                        return Err(cli_err(ErrorCode::InvalidInput, "this device is a phone, not an authenticator"));
                    }
                    let mut change = portal.unlink_device(row, now)?;
                    let waiting = read::credentials(tx, &account)?.filter(|c| c.pending_from.is_some_and(|t| t > now));
                    let dropped = waiting.is_some();
                    if let Some(creds) = waiting {
                        let more = portal.cancel_pending_credentials(creds, now)?;
                        change.writes.extend(more.writes);
                        change.events.extend(more.events);
                    }
                    Ok((change, dropped))
                })?
                .stored()?;
            notify(&change);
            if c.json {
                out!(
                    "{}",
                    json!({"device_id": device, "unlinked": true, "pending_credentials_dropped": dropped, "events": events_json(&change)})
                );
            } else {
                out!(
                    "unlinked {device}{}",
                    if dropped { "; the password and recovery codes it set were dropped" } else { "" }
                );
            }
        }
        ActivationCommand::RecoveryCode { c, account, code } => {
            let (mut db, portal) = open(&c)?;
            let now = c.now()?;
            let code = code.read("--code")?;
            let (change, check) = db
                .run(now, |tx| {
                    let row = read::credentials(tx, &account)?.ok_or_else(|| no_credentials(&account))?;
                    let check = portal.redeem_recovery_code(row, code.to_string(), now)?;
                    Ok((check.change.clone(), check))
                })?
                .stored()?;
            print_credential_check(&c, &check, &change, "recovery code used")?;
        }
    }
    Ok(())
}

fn no_credentials(account: &str) -> Error {
    cli_err(
        ErrorCode::InvalidState,
        format!("{account} has no password or recovery codes: they are set by activating an authenticator"),
    )
}
