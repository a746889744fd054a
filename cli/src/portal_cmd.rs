//! `tessera portal …`: the reference portal (offers, accept, confirm, registry,
//! challenges and their answers, links vouched for by an authenticator).
//!
//! Every decision is tessera-host's: each state change goes through
//! [`PortalDb::run`], the host contract (read the rows, call
//! `tessera_host::Portal`, compare-and-set the writes of its `PortalChange`
//! in one transaction, retry on a conflict); output is printed only after
//! the writes committed, and a refusal (`Verdict::Refused`) is the same
//! `error[CODE]` exit as every other failure. The portal seed is in `DIR/portal.key` or
//! `TESSERA_PORTAL_SECRET`, never in `portal.db`.

use crate::cli_err;
use crate::secrets::{self, PORTAL_SECRET_ENV};
use crate::store::{name_of, read, Applied, PortalDb, Ran};
use crate::util::{now_or, render_qr, secs, Common};
use clap::{Args, Subcommand};
use qrcode::EcLevel;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::encoding::hex_encode;
use tessera_host::{
    Approval, ChallengeIssued, ChallengeSettings, DeviceCodeRules, ErrorCode, LinkConfirmation, LinkLookup, LinkOffer,
    OfferSettings, PasscodeRules, Portal, PortalChange, PortalEvent, RecordWrite, StatusLookup, StoredChallenge,
    StoredDevice, TesseraError as Error, Timestamp, Verdict,
};
use zeroize::Zeroizing;

#[derive(Subcommand, Debug)]
pub enum PortalCommand {
    /// Create a portal identity in a new directory.
    Init {
        #[command(flatten)]
        c: Common,
        /// Display name shown on devices (at most 20 bytes).
        #[arg(long)]
        name: String,
    },
    /// Create a single-use link QR code for an account.
    #[command(alias = "offer")]
    LinkOffer {
        #[command(flatten)]
        c: Common,
        /// Account to link a device to.
        #[arg(long)]
        account: String,
        /// Draw the QR code in the terminal.
        #[arg(long)]
        render: bool,
        #[command(flatten)]
        o: OfferArgs,
    },
    /// Accept a device's link request; prints the answer for the device.
    LinkAccept {
        #[command(flatten)]
        c: Common,
        /// The device's request text.
        #[arg(long)]
        request: String,
    },
    /// Confirm a link with the check code shown on the device.
    LinkConfirm {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// Check code the user typed.
        #[arg(long)]
        code: String,
    },
    /// List an account's devices.
    Devices {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
    },
    /// Rename a device.
    Rename {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// Device id.
        #[arg(long)]
        device: String,
        /// New name.
        #[arg(long)]
        name: String,
    },
    /// Unlink a device (works without it: lost or stolen phone).
    Unlink {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// Device id.
        #[arg(long)]
        device: String,
    },
    /// Answer a device's status request (prints the answer).
    Status {
        #[command(flatten)]
        c: Common,
        /// The device's status request text.
        #[arg(long)]
        request: String,
    },
    /// Verify a time-based code shown by a linked device.
    VerifyTotp {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// Device id.
        #[arg(long)]
        device: String,
        /// The code.
        #[arg(long)]
        code: String,
    },
    /// Create a login or payment challenge; prints its QR text, then its id.
    ///
    /// A login without --amount, else a transaction (PSD2 dynamic linking:
    /// the answer is bound to the amount, currency, payee and text). Every
    /// device of the account can answer, or only --device.
    Challenge {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
        /// Only this device may answer (default: every device of the account).
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        what: TransactionArgs,
        #[command(flatten)]
        ch: ChallengeArgs,
    },
    /// Verify a challenge's answer (typed code or signed answer); prints `accepted`.
    ///
    /// A wrong answer is stored (it counts towards the device's lockout:
    /// 5 in a row) before the `error[CODE]` exit.
    Verify {
        #[command(flatten)]
        c: Common,
        /// The challenge id (`tessera portal challenge` printed it; a signed
        /// answer names its challenge itself).
        #[arg(long)]
        challenge: Option<String>,
        /// The typed code, or the signed answer text.
        #[arg(long)]
        answer: String,
    },
    /// Unlock a device locked by wrong answers or codes (the user re-identified).
    UnlockDevice {
        #[command(flatten)]
        c: Common,
        /// Device id.
        #[arg(long)]
        device: String,
        /// Account (checked when given).
        #[arg(long)]
        account: Option<String>,
    },
    /// Flow 2: an offer for a new device, vouched for by an existing authenticator.
    ///
    /// No logged-in computer is needed: the new device links with the
    /// printed offer text (`tessera device link --qr TEXT`), the portal
    /// accepts it as usual, and instead of a check code one of the account's
    /// authenticators answers `link-challenge`'s challenge.
    OfferNewDevice {
        #[command(flatten)]
        c: Common,
        /// Account (one of its devices must have answered a challenge).
        #[arg(long)]
        account: String,
        #[command(flatten)]
        o: OfferArgs,
    },
    /// Flow 2: the challenge a new device shows to an existing authenticator.
    ///
    /// For a device linked from `offer-new-device` and accepted: prints the
    /// QR text, then the challenge id.
    LinkChallenge {
        #[command(flatten)]
        c: Common,
        /// The new device's id (from `link-accept`).
        #[arg(long)]
        device: String,
        #[command(flatten)]
        ch: ChallengeArgs,
    },
    /// Flow 2: link a new device with the code its existing authenticator gave.
    ///
    /// The code (or signed answer) answers `link-challenge`'s challenge; the
    /// user typed it into the new device. Prints the linked device.
    Vouch {
        #[command(flatten)]
        c: Common,
        /// The new device's id.
        #[arg(long)]
        device: String,
        /// The link challenge's id (from `link-challenge`).
        #[arg(long)]
        challenge: String,
        /// The authenticator's code (or its signed answer).
        #[arg(long)]
        code: String,
    },
    #[command(flatten)]
    Activation(crate::activation_cmd::ActivationCommand),
}

/// How a new offer's device links: its lifetime, passcode rules and the
/// time-based codes it will show.
#[derive(Args, Debug)]
pub struct OfferArgs {
    /// Lifetime in seconds (default 300, at most 600).
    #[arg(long)]
    ttl: Option<i64>,
    /// Passcode minimum length (6–16; default 6).
    #[arg(long)]
    passcode_min: Option<i32>,
    /// Passcode maximum length (6–16; default 6).
    #[arg(long)]
    passcode_max: Option<i32>,
    /// Allow letters and symbols in passcodes.
    #[arg(long)]
    alphanumeric: bool,
    /// Do not allow biometrics.
    #[arg(long)]
    no_biometrics: bool,
    /// Digits of the device's time-based codes (6–8; default 6).
    #[arg(long)]
    code_digits: Option<i32>,
    /// Seconds per step of the device's codes (15–120; default 30).
    #[arg(long)]
    code_period: Option<i64>,
    /// Hash of the device's codes: sha1, sha256 or sha512 (default sha256).
    #[arg(long)]
    code_algorithm: Option<String>,
}

impl OfferArgs {
    fn settings(&self) -> Result<OfferSettings, Error> {
        let d = PasscodeRules::default();
        let rules = PasscodeRules {
            min_len: self.passcode_min.unwrap_or(d.min_len),
            max_len: self.passcode_max.unwrap_or(d.max_len),
            digits_only: d.digits_only && !self.alphanumeric,
            biometrics_allowed: d.biometrics_allowed && !self.no_biometrics,
        };
        let device_codes = if self.code_digits.is_none() && self.code_period.is_none() && self.code_algorithm.is_none()
        {
            None
        } else {
            let d = DeviceCodeRules::default();
            Some(DeviceCodeRules {
                algorithm: match &self.code_algorithm {
                    Some(a) => Some(crate::otp_cmd::algorithm(Some(a))?),
                    None => d.algorithm,
                },
                digits: self.code_digits.unwrap_or(d.digits),
                period_seconds: self.code_period.unwrap_or(d.period_seconds),
            })
        };
        Ok(OfferSettings { ttl_seconds: self.ttl, rules: Some(rules), device_codes })
    }
}

/// A transaction to approve (PSD2 dynamic linking: the answer is bound to
/// exactly these fields); without --amount the challenge is a login.
#[derive(Args, Debug)]
pub struct TransactionArgs {
    /// Amount, exactly as shown: digits with at most 3 decimals (`125.50`).
    #[arg(long, requires_all = ["currency", "payee"])]
    amount: Option<String>,
    /// ISO 4217 currency code (`EUR`).
    #[arg(long, requires = "amount")]
    currency: Option<String>,
    /// Payee (1 to 70 bytes).
    #[arg(long, requires = "amount")]
    payee: Option<String>,
    /// A line of text to show (reference, IBAN); up to 3, repeat the option.
    #[arg(long, requires = "amount")]
    text: Vec<String>,
}

impl TransactionArgs {
    fn approval(&self) -> Approval {
        match (&self.amount, &self.currency, &self.payee) {
            (Some(amount), Some(currency), Some(payee)) => Approval::Transaction {
                amount: amount.clone(),
                currency: currency.clone(),
                payee: payee.clone(),
                text: self.text.clone(),
            },
            _ => Approval::Login,
        }
    }
}

/// Options of a new challenge.
#[derive(Args, Debug)]
pub struct ChallengeArgs {
    /// Digits of the typed answer (6–10; default 8).
    #[arg(long)]
    digits: Option<i32>,
    /// Seconds it can be answered (1–900; default 300).
    #[arg(long)]
    ttl: Option<i64>,
    /// Draw the QR code in the terminal (after the challenge id).
    #[arg(long)]
    render: bool,
}

impl ChallengeArgs {
    fn settings(&self) -> ChallengeSettings {
        ChallengeSettings { digits: self.digits, ttl_seconds: self.ttl }
    }
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("portal.key")
}

/// The portal identity: name and fingerprint from the database, the seed
/// from `TESSERA_PORTAL_SECRET` or else `DIR/portal.key`. A seed that is not
/// this portal's (another key file, a wrong variable) is refused up front
/// rather than failing on every sealed row.
pub(crate) fn load_portal(db: &PortalDb, dir: &Path) -> Result<Arc<Portal>, Error> {
    let (name, fingerprint) = db
        .identity()?
        .ok_or_else(|| cli_err(ErrorCode::Storage, "this directory has no portal; run `tessera portal init`"))?;
    let path = key_path(dir);
    let seed = match secrets::key_from_env(PORTAL_SECRET_ENV)? {
        Some(k) => k,
        None => secrets::key_from_file(&path)?.ok_or_else(|| {
            cli_err(
                ErrorCode::Storage,
                format!("no portal key: {} is missing and {PORTAL_SECRET_ENV} is not set", path.display()),
            )
        })?,
    };
    let portal = Portal::from_secret(seed.to_vec(), name)?;
    if portal.fingerprint() != fingerprint {
        return Err(cli_err(
            ErrorCode::StateCorrupt,
            format!(
                "the portal key (fingerprint {}) is not this portal's (fingerprint {fingerprint})",
                portal.fingerprint()
            ),
        ));
    }
    Ok(Arc::new(portal))
}

/// The events of a change, in tessera-host's one JSON shape
/// (`{"kind": "deviceLinked", …}`).
pub(crate) fn events_json(change: &PortalChange) -> serde_json::Value {
    serde_json::to_value(&change.events).unwrap_or(serde_json::Value::Null)
}

/// Act on events once their writes committed (they are already in the
/// `events` table, written in the same transaction).
pub(crate) fn notify(change: &PortalChange) {
    for e in &change.events {
        match e {
            PortalEvent::DeviceLinked { account, device_name, .. } => {
                eprintln!("notification: e-mail to {account}: \"{device_name}\" was linked to your account");
            }
            PortalEvent::DeviceLocked { account, device_id, .. } => eprintln!(
                "notification: e-mail to {account}: device {device_id} is locked after too many wrong answers; \
                 it is unlocked (`tessera portal unlock-device`) once you re-identified"
            ),
            PortalEvent::DeviceCloneSuspected { account, device_id, .. } => eprintln!(
                "alert: device {device_id} of {account} answered with a counter already seen: a copy of its keys \
                 is in use; unlink it"
            ),
            PortalEvent::DeviceActivated { account, device_id, serial, usable_from, .. } => eprintln!(
                "notification: e-mail, text message and letter to {account}: authenticator {serial} was activated \
                 for your account; it is usable from {}. Not you? Call us: unlinking device {device_id} before \
                 then cancels it",
                usable_from.secs()
            ),
            PortalEvent::OrderLocked { account, user_id, .. } => eprintln!(
                "notification: e-mail to {account}: the authenticator order of user ID {user_id} is locked after \
                 too many wrong activation codes or initial passwords; a new order is needed"
            ),
            PortalEvent::CredentialsLocked { account, .. } => eprintln!(
                "notification: e-mail to {account}: your password and recovery codes are locked after too many \
                 wrong attempts"
            ),
            _ => {}
        }
    }
}

fn device_json(d: &StoredDevice) -> serde_json::Value {
    json!({"id": d.device_id, "name": d.name, "linked_at": secs(d.linked_at),
           "last_used_at": d.last_used_at.map(secs), "status": name_of(&d.status), "locked": d.locked,
           "serial": d.serial, "usable_from": d.usable_from.map(secs)})
}

/// A verdict in tessera-host's JSON shape (`{"kind": "refused", "code": …}`).
pub(crate) fn verdict_json(v: &Verdict) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Called once the change committed: acts on its events (a refusal's too:
/// a device locked, a clone suspected), then with `--json` prints a refused
/// verdict (with the events of its stored change) before the `error[CODE]`
/// exit: tools can tell a refusal, whose change was stored, from a failed
/// call, which stored nothing.
fn check_verdict(c: &Common, v: &Verdict, change: &PortalChange) -> Result<(), Error> {
    notify(change);
    if let Err(e) = v.check() {
        if c.json {
            out!("{}", json!({"verdict": verdict_json(v), "events": events_json(change)}));
        }
        return Err(e);
    }
    Ok(())
}

/// The device row a change writes.
fn written_device(change: &PortalChange) -> Option<&StoredDevice> {
    change.writes.iter().rev().find_map(|w| match w {
        RecordWrite::Device { row, .. } => Some(row),
        _ => None,
    })
}

/// The deadline of the pending link a change writes.
fn written_confirm_by(change: &PortalChange) -> Option<Timestamp> {
    change.writes.iter().find_map(|w| match w {
        RecordWrite::PendingLink { row, .. } => Some(row.confirm_by),
        _ => None,
    })
}

/// A new offer: its text (`--json`: with its id, expiry and events).
fn print_offer(c: &Common, offer: &LinkOffer) {
    if c.json {
        out!(
            "{}",
            json!({"qr_text": offer.qr_text, "offer_id": offer.offer_id, "expires_at": secs(offer.expires_at),
                   "events": events_json(&offer.change)})
        );
    } else {
        out!("{}", offer.qr_text);
    }
}

/// The challenge row a change writes.
fn written_challenge(change: &PortalChange) -> Option<&StoredChallenge> {
    change.writes.iter().find_map(|w| match w {
        RecordWrite::Challenge { row, .. } => Some(row),
        _ => None,
    })
}

/// A new challenge: the QR text, then its id (`--json`: `{"qr", "challenge_id", …}`).
fn print_challenge(c: &Common, issued: &ChallengeIssued, render: bool) -> Result<(), Error> {
    if c.json {
        let row = written_challenge(&issued.change);
        out!(
            "{}",
            json!({"qr": issued.qr_text, "challenge_id": issued.challenge_id, "expires_at": secs(issued.expires_at),
                   "kind": row.map(|r| crate::store::name_of(&r.kind)), "device_ids": row.map(|r| r.device_ids.clone()),
                   "events": events_json(&issued.change)})
        );
    } else {
        out!("{}", issued.qr_text);
        out!("{}", issued.challenge_id);
    }
    if render {
        out!("{}", render_qr(&issued.qr_text, EcLevel::M)?);
    }
    Ok(())
}

/// A link confirmed (by its check code, or vouched for by an authenticator:
/// then `new_device` names the linked device; the change also writes the
/// authenticator's row, which `LinkConfirmation::device` may be).
fn print_linked(
    c: &Common,
    change: &PortalChange,
    confirmation: &LinkConfirmation,
    new_device: Option<&str>,
) -> Result<(), Error> {
    check_verdict(c, &confirmation.verdict, change)?;
    let written = new_device.and_then(|id| {
        change.writes.iter().find_map(|w| match w {
            RecordWrite::Device { row, .. } if row.device_id == id => Some(row),
            _ => None,
        })
    });
    let row = written
        .or(confirmation.device.as_ref())
        .ok_or_else(|| cli_err(ErrorCode::Internal, "an accepted link without a device row"))?;
    if c.json {
        out!(
            "{}",
            json!({"device": device_json(row), "verdict": verdict_json(&confirmation.verdict),
                   "events": events_json(change)})
        );
    } else {
        out!("linked device {} \"{}\" to {}", row.device_id, row.name, row.account);
    }
    Ok(())
}

fn no_such_challenge() -> Error {
    cli_err(ErrorCode::TokenUnknown, "no such challenge")
}

fn no_such_link() -> Error {
    cli_err(ErrorCode::TokenUnknown, "no link of this device id is known (run `tessera portal link-accept` first)")
}

fn no_such_device() -> Error {
    cli_err(ErrorCode::DeviceUnknown, "no such device for this account")
}

/// A registry operation on one device row of `account`, under the host
/// contract. Returns the committed change and what `op` returned with it.
fn device_op<T>(
    db: &mut PortalDb,
    now: Timestamp,
    account: &str,
    device: &str,
    op: impl Fn(StoredDevice) -> Result<(PortalChange, T), Error>,
) -> Result<(PortalChange, T), Error> {
    db.run(now, |c| op(read::device_of(c, account, device)?.ok_or_else(no_such_device)?))?.stored()
}

/// Print a device row after a rename or an unlink.
fn print_device(c: &Common, change: &PortalChange, text: impl Fn(&StoredDevice) -> String) -> Result<(), Error> {
    let row = written_device(change).ok_or_else(|| cli_err(ErrorCode::Internal, "the change wrote no device row"))?;
    notify(change);
    if c.json {
        let mut j = device_json(row);
        j["events"] = events_json(change);
        out!("{j}");
    } else {
        out!("{}", text(row));
    }
    Ok(())
}

pub fn run(cmd: PortalCommand) -> Result<(), Error> {
    match cmd {
        PortalCommand::Init { c, name } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), true)?;
            if db.identity()?.is_some() {
                return Err(cli_err(ErrorCode::InvalidState, "this directory already holds a portal"));
            }
            let path = key_path(&c.dir);
            let from_env = secrets::key_from_env(PORTAL_SECRET_ENV)?;
            let p = match &from_env {
                Some(seed) => Portal::from_secret(seed.to_vec(), name.clone())?,
                None => Portal::generate(name.clone())?,
            };
            if from_env.is_none() && path.exists() {
                return Err(cli_err(
                    ErrorCode::InvalidState,
                    format!("{} already exists; it may be another portal's key", path.display()),
                ));
            }
            db.create_identity(&name, &p.fingerprint(), || match from_env {
                Some(_) => Ok(()),
                None => secrets::write_key_file(&path, &Zeroizing::new(p.secret())),
            })?;
            if c.json {
                out!(
                    "{}",
                    json!({"name": name, "fingerprint": p.fingerprint(), "public_key": hex_encode(&p.public_key())})
                );
            } else {
                out!("portal \"{name}\" created (key fingerprint {})", p.fingerprint());
            }
            if from_env.is_some() {
                eprintln!("the portal seed comes from {PORTAL_SECRET_ENV}; no key file written");
            } else {
                eprintln!("the portal seed is in {} (owner only): keep it secret, back it up", path.display());
            }
        }
        PortalCommand::LinkOffer { c, account, render, o } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let offer = portal.create_offer(account, o.settings()?, now)?;
            if let Applied::Conflict(what) = db.apply(&offer.change, now)? {
                // A fresh random offer id already taken: not a race, a fault.
                return Err(cli_err(ErrorCode::Internal, format!("new offer: {what}")));
            }
            print_offer(&c, &offer);
            if render {
                out!("{}", render_qr(&offer.qr_text, EcLevel::M)?);
            }
        }
        PortalCommand::OfferNewDevice { c, account, o } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let settings = o.settings()?;
            let (_, offer) = db
                .run(now, |c| {
                    let rows = read::devices_by_id(c, &account)?;
                    let offer = portal.create_offer_for_new_device(account.clone(), rows, settings, now)?;
                    Ok((offer.change.clone(), offer))
                })?
                .stored()?;
            print_offer(&c, &offer);
            if !c.json {
                eprintln!(
                    "send this text to the new device (`tessera device link --qr TEXT`); after `link-accept`, \
                     `tessera portal link-challenge --device NEWID` gives the challenge for an existing authenticator"
                );
            }
        }
        PortalCommand::LinkAccept { c, request } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let req = Arc::clone(&portal).open_link_request(request)?;
            let (device_id, device_name) = (req.device_id(), req.device_name());
            let ran = db.run(now, |c| {
                let lookup = LinkLookup {
                    offer: read::offer(c, &req.offer_id())?,
                    // One device id across all accounts, pending or registered.
                    device_key_seen: read::device_id_seen(c, &device_id)?,
                };
                let a = req.accept(lookup, now)?;
                // A repeat writes nothing: its deadline is the stored row's.
                let confirm_by = match written_confirm_by(&a.change) {
                    Some(t) => Some(t),
                    None => read::pending(c, &device_id)?.map(|p| p.confirm_by),
                };
                Ok((a.change.clone(), (a, confirm_by)))
            })?;
            let (change, (a, confirm_by)) = match ran {
                Ran::Stored(change, v) => (change, v),
                Ran::GaveUp((a, _)) => {
                    // Nothing stored: the device keeps its request and sends it again.
                    if c.json {
                        out!("{}", json!({"answer": a.if_not_stored, "error": ErrorCode::Storage.as_str()}));
                    } else {
                        out!("{}", a.if_not_stored);
                    }
                    return Err(crate::store::gave_up());
                }
            };
            let repeated = a.verdict == Verdict::Repeated;
            if let Err(e) = a.verdict.check() {
                // The device still needs the (authenticated) refusal.
                if c.json {
                    out!(
                        "{}",
                        json!({"answer": a.answer, "error": e.code().as_str(), "verdict": verdict_json(&a.verdict),
                               "if_not_stored": a.if_not_stored, "events": events_json(&change)})
                    );
                } else {
                    out!("{}", a.answer);
                }
                return Err(e);
            }
            notify(&change);
            if c.json {
                out!(
                    "{}",
                    json!({"answer": a.answer, "device_id": device_id, "device_name": device_name,
                           "confirm_by": confirm_by.map(secs), "repeated": repeated, "verdict": verdict_json(&a.verdict),
                           "if_not_stored": a.if_not_stored, "events": events_json(&change)})
                );
            } else {
                out!("{}", a.answer);
                if repeated {
                    eprintln!(
                        "device \"{device_name}\" ({device_id}) sent its accepted request again: same answer, nothing changed"
                    );
                } else {
                    eprintln!(
                        "device \"{device_name}\" ({device_id}) waits for its check code until {}",
                        confirm_by.map(secs).unwrap_or_default()
                    );
                }
            }
        }
        PortalCommand::LinkConfirm { c, account, code } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            // Every open pending link of the account, in one call: the
            // matching one is confirmed, a wrong code counts against each.
            let (change, confirmation) = db
                .run(now, |c| {
                    let l = portal.confirm_link(read::open_pendings(c, &account)?, code.clone(), now)?;
                    Ok((l.change.clone(), l))
                })?
                .stored()?;
            print_linked(&c, &change, &confirmation, None)?;
        }
        PortalCommand::Devices { c, account } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            load_portal(&db, &c.dir)?;
            let rows = db.read(|c| read::devices_of(c, &account))?;
            if c.json {
                out!("{}", serde_json::Value::Array(rows.iter().map(device_json).collect()));
            } else {
                out!(
                    "{:<18} {:<24} {:>12} {:>12} {:<8} {:<16} USABLE_FROM",
                    "ID",
                    "NAME",
                    "LINKED_AT",
                    "LAST_USED",
                    "STATUS",
                    "SERIAL"
                );
                let or_dash = |t: Option<Timestamp>| t.map(|t| t.secs().to_string()).unwrap_or_else(|| "-".into());
                for r in &rows {
                    out!(
                        "{:<18} {:<24} {:>12} {:>12} {:<8} {:<16} {}",
                        r.device_id,
                        r.name,
                        r.linked_at.secs(),
                        or_dash(r.last_used_at),
                        name_of(&r.status),
                        r.serial.as_deref().unwrap_or("-"),
                        or_dash(r.usable_from)
                    );
                }
            }
        }
        PortalCommand::Rename { c, account, device, name } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (change, ()) = device_op(&mut db, now, &account, &device, |row| {
                Ok((portal.rename_device(row, name.clone(), now)?, ()))
            })?;
            print_device(&c, &change, |r| format!("renamed {} to \"{}\"", r.device_id, r.name))?;
        }
        PortalCommand::Unlink { c, account, device } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (change, ()) =
                device_op(&mut db, now, &account, &device, |row| Ok((portal.unlink_device(row, now)?, ())))?;
            print_device(&c, &change, |r| {
                format!("unlinked {} \"{}\"; the device wipes the account on its next contact", r.device_id, r.name)
            })?;
        }
        PortalCommand::Status { c, request } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let device_id = portal.status_request_device(request.clone())?;
            // Read-only: a status answer writes nothing, so it can never
            // overwrite an unlink (or anything else).
            let lookup = db.read(|c| {
                let device = read::device(c, &device_id)?;
                let pending = if device.is_none() { read::pending(c, &device_id)? } else { None };
                Ok(StatusLookup { device, pending })
            })?;
            // Which row the answer was made from, as stored (what the answer
            // tells the device is tessera-host's decision, sealed for it).
            let (status, pending) = match (&lookup.device, &lookup.pending) {
                (Some(d), _) => (Some(name_of(&d.status)), None),
                (None, Some(p)) => (Some("pending".to_owned()), Some(name_of(&p.status))),
                (None, None) => (None, None),
            };
            let answer = portal.answer_status(request, lookup, now)?;
            if c.json {
                out!("{}", json!({"answer": answer, "status": status, "pending": pending}));
            } else {
                out!("{answer}");
            }
        }
        PortalCommand::VerifyTotp { c, account, device, code } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (change, (verdict, step, drift)) = device_op(&mut db, now, &account, &device, |row| {
                let check = portal.verify_device_code(row, code.clone(), now)?;
                Ok((check.change, (check.verdict, check.matched, check.drift)))
            })?;
            check_verdict(&c, &verdict, &change)?;
            if c.json {
                out!(
                    "{}",
                    json!({"accepted": true, "verdict": verdict_json(&verdict), "step": step, "drift": drift,
                           "events": events_json(&change)})
                );
            } else {
                out!("accepted (step {}, drift {drift})", step.unwrap_or_default());
            }
        }
        PortalCommand::Challenge { c, account, device, what, ch } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (approval, settings) = (what.approval(), ch.settings());
            let (_, issued) = db
                .run(now, |c| {
                    let rows = match &device {
                        Some(id) => vec![read::device_of(c, &account, id)?.ok_or_else(no_such_device)?],
                        None => read::devices_by_id(c, &account)?,
                    };
                    let issued = portal.create_challenge(rows, approval.clone(), settings, now)?;
                    Ok((issued.change.clone(), issued))
                })?
                .stored()?;
            print_challenge(&c, &issued, ch.render)?;
        }
        PortalCommand::Verify { c, challenge, answer } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let id = match challenge {
                Some(id) => id,
                None => tessera_host::signed_answer_challenge_id(answer.clone()).map_err(|_| {
                    cli_err(
                        ErrorCode::InvalidInput,
                        "a typed code needs --challenge (the id `portal challenge` printed)",
                    )
                })?,
            };
            let (change, (check, row)) = db
                .run(now, |c| {
                    let row = read::challenge(c, &id)?.ok_or_else(no_such_challenge)?;
                    let devices = read::challenge_devices(c, &row)?;
                    let check = portal.verify_answer(row.clone(), devices, answer.clone(), now)?;
                    Ok((check.change.clone(), (check, row)))
                })?
                .stored()?;
            check_verdict(&c, &check.verdict, &change)?;
            if c.json {
                out!(
                    "{}",
                    json!({"accepted": true, "verdict": verdict_json(&check.verdict), "challenge_id": row.challenge_id,
                           "account": row.account, "kind": row.kind, "device_id": check.device_id,
                           "events": events_json(&change)})
                );
            } else {
                out!("accepted");
                if let Some(d) = &check.device_id {
                    eprintln!(
                        "{} challenge {} of {} answered by device {d}",
                        crate::store::name_of(&row.kind),
                        row.challenge_id,
                        row.account
                    );
                }
            }
        }
        PortalCommand::UnlockDevice { c, device, account } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (change, ()) = db
                .run(now, |c| {
                    let row = read::device(c, &device)?
                        .filter(|d| account.as_ref().is_none_or(|a| *a == d.account))
                        .ok_or_else(no_such_device)?;
                    Ok((portal.unlock_device(row, now)?, ()))
                })?
                .stored()?;
            print_device(&c, &change, |r| format!("unlocked {} \"{}\" of {}", r.device_id, r.name, r.account))?;
        }
        PortalCommand::LinkChallenge { c, device, ch } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let settings = ch.settings();
            let (_, issued) = db
                .run(now, |c| {
                    let pending = read::pending(c, &device)?.ok_or_else(no_such_link)?;
                    let rows = read::devices_by_id(c, &pending.account)?;
                    let issued = portal.create_link_challenge(pending, rows, settings, now)?;
                    Ok((issued.change.clone(), issued))
                })?
                .stored()?;
            print_challenge(&c, &issued, ch.render)?;
        }
        PortalCommand::Vouch { c, device, challenge, code } => {
            let mut db = PortalDb::connect(&c.dir, c.db().as_deref(), false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now);
            let (change, confirmation) = db
                .run(now, |c| {
                    let pending = read::pending(c, &device)?.ok_or_else(no_such_link)?;
                    let row = read::challenge(c, &challenge)?.ok_or_else(no_such_challenge)?;
                    let devices = read::challenge_devices(c, &row)?;
                    let l = portal.confirm_with_authenticator(pending, row, devices, code.clone(), now)?;
                    Ok((l.change.clone(), l))
                })?
                .stored()?;
            print_linked(&c, &change, &confirmation, Some(&device))?;
        }
        PortalCommand::Activation(a) => crate::activation_cmd::run(a)?,
    }
    Ok(())
}
