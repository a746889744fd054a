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
use crate::service::{self, ChallengeOptions, Ctx, OfferOptions, Output};
use crate::store::PortalDb;
use crate::util::{failure_json, Common, QrArgs};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_core::encoding::hex_encode;
use tessera_host::{ErrorCode, Portal, PortalChange, PortalEvent, TesseraError as Error};
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
        #[command(flatten)]
        q: QrArgs,
        #[command(flatten)]
        o: OfferOptions,
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
    /// List an account's links waiting for their check code.
    PendingLinks {
        #[command(flatten)]
        c: Common,
        /// Account.
        #[arg(long)]
        account: String,
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
    /// Where a challenge stands (kind, account, devices, expiry, status).
    ChallengeStatus {
        #[command(flatten)]
        c: Common,
        /// The challenge id.
        #[arg(long)]
        challenge: String,
    },
    /// The stored events (an outbox a host polls) after id --after.
    Events {
        #[command(flatten)]
        c: Common,
        /// Only events with an id above this one.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
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
        q: QrArgs,
        #[command(flatten)]
        o: OfferOptions,
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

/// A transaction to approve (PSD2 dynamic linking: the answer is bound to
/// exactly these fields); without --amount the challenge is a login.
#[derive(Args, Debug, Default)]
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

/// Options of a new challenge.
#[derive(Args, Debug)]
pub struct ChallengeArgs {
    /// Digits of the typed answer (6–10; default 8).
    #[arg(long)]
    digits: Option<i32>,
    /// Seconds it can be answered (1–900; default 300).
    #[arg(long)]
    ttl: Option<i64>,
    /// The QR code: drawn after the challenge id (`--render`), or written to a file.
    #[command(flatten)]
    q: QrArgs,
}

impl ChallengeArgs {
    fn options(&self, device: Option<String>, what: TransactionArgs) -> ChallengeOptions {
        ChallengeOptions {
            device,
            amount: what.amount,
            currency: what.currency,
            payee: what.payee,
            text: what.text,
            digits: self.digits,
            ttl: self.ttl,
        }
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

pub(crate) use crate::service::{events_json, verdict_json};

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
                crate::util::when(usable_from.secs())
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

/// Print what an operation returned (`--json`: its JSON, else its text and
/// note); a failure prints what it still shows, then is the `error[CODE]` exit.
fn print(c: &Common, result: service::Result<Output>) -> Result<Output, Error> {
    match result {
        Ok(o) => {
            if c.json {
                out!("{}", o.json);
            } else {
                out!("{}", o.text);
                if let Some(n) = &o.note {
                    eprintln!("{n}");
                }
            }
            Ok(o)
        }
        Err(f) => {
            match (c.json, &f.json, &f.text) {
                (true, Some(j), _) => out!("{}", failure_json(j.clone(), &f.error)),
                (false, _, Some(t)) => out!("{t}"),
                _ => {}
            }
            Err(f.error)
        }
    }
}

/// Open the portal of `c.dir` and run one service operation on it.
fn with_portal(c: &Common, op: impl FnOnce(&mut Ctx<'_>) -> service::Result<Output>) -> Result<Output, Error> {
    let mut db = PortalDb::connect(&c.dir, c.db()?.as_deref(), false)?;
    let portal = load_portal(&db, &c.dir)?;
    let mut cx = Ctx { db: &mut db, portal: &portal, now: c.now()?, notify };
    print(c, op(&mut cx))
}

/// The QR code of an output's `key` (`--render`, `--qr-out`).
fn render_after(o: &Output, key: &str, q: &QrArgs) -> Result<(), Error> {
    q.show(o.json[key].as_str().unwrap_or_default())
}

pub fn run(cmd: PortalCommand) -> Result<(), Error> {
    match cmd {
        PortalCommand::Init { c, name } => {
            let mut db = PortalDb::connect(&c.dir, c.db()?.as_deref(), true)?;
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
        PortalCommand::LinkOffer { c, account, q, o } => {
            let o = with_portal(&c, |cx| service::link_offer(cx, &account, &o))?;
            render_after(&o, "qr_text", &q)?;
        }
        PortalCommand::OfferNewDevice { c, account, q, o } => {
            let o = with_portal(&c, |cx| service::offer_new_device(cx, &account, &o))?;
            render_after(&o, "qr_text", &q)?;
        }
        PortalCommand::LinkAccept { c, request } => {
            with_portal(&c, |cx| service::link_accept(cx, &request))?;
        }
        PortalCommand::LinkConfirm { c, account, code } => {
            with_portal(&c, |cx| service::link_confirm(cx, &account, &code))?;
        }
        PortalCommand::PendingLinks { c, account } => {
            with_portal(&c, |cx| service::pending_links(cx, &account))?;
        }
        PortalCommand::Devices { c, account } => {
            with_portal(&c, |cx| service::devices(cx, &account))?;
        }
        PortalCommand::Rename { c, account, device, name } => {
            with_portal(&c, |cx| service::rename(cx, &account, &device, &name))?;
        }
        PortalCommand::Unlink { c, account, device } => {
            with_portal(&c, |cx| service::unlink(cx, &account, &device))?;
        }
        PortalCommand::Status { c, request } => {
            with_portal(&c, |cx| service::status(cx, &request))?;
        }
        PortalCommand::VerifyTotp { c, account, device, code } => {
            with_portal(&c, |cx| service::verify_totp(cx, &account, &device, &code))?;
        }
        PortalCommand::Challenge { c, account, device, what, ch } => {
            let options = ch.options(device, what);
            let o = with_portal(&c, |cx| service::challenge(cx, &account, &options))?;
            render_after(&o, "qr", &ch.q)?;
        }
        PortalCommand::ChallengeStatus { c, challenge } => {
            with_portal(&c, |cx| service::challenge_status(cx, &challenge))?;
        }
        PortalCommand::Verify { c, challenge, answer } => {
            with_portal(&c, |cx| service::verify(cx, challenge.as_deref(), &answer))?;
        }
        PortalCommand::UnlockDevice { c, device, account } => {
            with_portal(&c, |cx| service::unlock_device(cx, &device, account.as_deref()))?;
        }
        PortalCommand::LinkChallenge { c, device, ch } => {
            let settings = ch.options(None, TransactionArgs::default()).settings();
            let o = with_portal(&c, |cx| service::link_challenge(cx, &device, settings))?;
            render_after(&o, "qr", &ch.q)?;
        }
        PortalCommand::Vouch { c, device, challenge, code } => {
            with_portal(&c, |cx| service::vouch(cx, &device, &challenge, &code))?;
        }
        PortalCommand::Events { c, after, limit } => {
            with_portal(&c, |cx| service::events(cx, after, limit))?;
        }
        PortalCommand::Activation(a) => crate::activation_cmd::run(a)?,
    }
    Ok(())
}
