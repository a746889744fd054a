//! `tessera portal …`: the reference portal (offers, accept, confirm, registry).
//!
//! Every state change goes through [`PortalDb::run`], the host contract
//! (read, let the core decide, compare-and-set all writes in one
//! transaction, retry on a conflict); output is printed only after the
//! writes committed. The portal seed is in `DIR/portal.key` or
//! `TESSERA_PORTAL_SECRET`, never in `portal.db`.

use crate::cli_err;
use crate::secrets::{self, PORTAL_SECRET_ENV};
use crate::store::{decided, read, Applied, Decision, PortalDb};
use crate::util::Common;
use crate::util::{now_or, render_qr, CliRandom};
use clap::Subcommand;
use qrcode::EcLevel;
use serde_json::json;
use std::path::{Path, PathBuf};
use tessera_core::encoding::hex_encode;
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{
    Accept, DeviceKeyUse, DeviceRecord, PasscodePolicy, PendingLinkRecord, PendingState, Portal, PortalEvent,
    DEFAULT_OFFER_TTL, STATUS_SKEW,
};
use tessera_core::{Error, ErrorCode};

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
    LinkOffer {
        #[command(flatten)]
        c: Common,
        /// Account to link a device to.
        #[arg(long)]
        account: String,
        /// Lifetime in seconds (default 300, at most 600).
        #[arg(long, default_value_t = DEFAULT_OFFER_TTL)]
        ttl: u64,
        /// Draw the QR code in the terminal.
        #[arg(long)]
        render: bool,
        /// Passcode minimum length (6–16).
        #[arg(long, default_value_t = 6)]
        passcode_min: u8,
        /// Passcode maximum length (6–16).
        #[arg(long, default_value_t = 6)]
        passcode_max: u8,
        /// Allow letters and symbols in passcodes.
        #[arg(long)]
        alphanumeric: bool,
        /// Do not allow biometrics.
        #[arg(long)]
        no_biometrics: bool,
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
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("portal.key")
}

/// The portal identity: name and fingerprint from the database, the seed
/// from `TESSERA_PORTAL_SECRET` or else `DIR/portal.key`. A seed that is not
/// this portal's (another key file, a wrong variable) is refused up front
/// rather than failing on every sealed record.
fn load_portal(db: &PortalDb, dir: &Path) -> Result<Portal, Error> {
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
    let portal = Portal::from_secret(&seed[..], &name)?;
    if portal.fingerprint() != fingerprint {
        return Err(cli_err(
            ErrorCode::StateCorrupt,
            format!(
                "the portal key (fingerprint {}) is not this portal's (fingerprint {fingerprint})",
                portal.fingerprint()
            ),
        ));
    }
    Ok(portal)
}

fn event_json(e: &PortalEvent) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or(serde_json::Value::Null)
}

/// Act on events once their writes committed (they are already in the
/// `events` table, written in the same transaction).
fn notify(events: &[PortalEvent]) {
    for e in events {
        if let PortalEvent::DeviceLinked { account, device_name, .. } = e {
            eprintln!("notification: e-mail to {account}: \"{device_name}\" was linked to your account");
        }
    }
}

fn device_json(r: &DeviceRecord) -> serde_json::Value {
    json!({"id": r.device_id, "name": r.name, "linked_at": r.linked_at, "last_used_at": r.last_used_at, "status": r.status.as_str()})
}

fn written_device(writes: &[Write]) -> Option<DeviceRecord> {
    writes.iter().rev().find_map(|w| match w {
        Write::Device(r) => Some(r.clone()),
        _ => None,
    })
}

fn written_pending(writes: &[Write]) -> Option<PendingLinkRecord> {
    writes.iter().find_map(|w| match w {
        Write::PendingLink(r) => Some(r.clone()),
        _ => None,
    })
}

/// The core's result, the device record as it now stands, and the events.
type DeviceOpDone<T> = (Result<T, Error>, DeviceRecord, Vec<PortalEvent>);

/// A registry operation on one device of `account`, under the host contract.
fn device_op<T>(
    db: &mut PortalDb,
    portal: &Portal,
    now: u64,
    account: &str,
    device: &str,
    op: impl Fn(&DeviceRecord) -> Outcome<T>,
) -> Result<DeviceOpDone<T>, Error> {
    let d = db.run(portal, now, |c| {
        let row = read::device(c, device)?
            .filter(|r| r.account == account)
            .ok_or_else(|| cli_err(ErrorCode::DeviceUnknown, "no such device for this account"))?;
        let rec = portal.open_device(&row)?;
        let o = op(&rec);
        let after = written_device(&o.writes).unwrap_or(rec);
        Ok(decided(o, after))
    })?;
    let (result, rec) = d.value;
    Ok((result, rec, d.events))
}

pub fn run(cmd: PortalCommand) -> Result<(), Error> {
    match cmd {
        PortalCommand::Init { c, name } => {
            let mut db = PortalDb::open(&c.dir, true)?;
            if db.identity()?.is_some() {
                return Err(cli_err(ErrorCode::InvalidState, "this directory already holds a portal"));
            }
            let path = key_path(&c.dir);
            let from_env = secrets::key_from_env(PORTAL_SECRET_ENV)?;
            let p = match &from_env {
                Some(seed) => Portal::from_secret(&seed[..], &name)?,
                None => Portal::generate(&name, &mut CliRandom)?,
            };
            if from_env.is_none() && path.exists() {
                return Err(cli_err(
                    ErrorCode::InvalidState,
                    format!("{} already exists; it may be another portal's key", path.display()),
                ));
            }
            db.create_identity(&name, &p.fingerprint(), || match from_env {
                Some(_) => Ok(()),
                None => secrets::write_key_file(&path, p.secret().expose()),
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
        PortalCommand::LinkOffer {
            c,
            account,
            ttl,
            render,
            passcode_min,
            passcode_max,
            alphanumeric,
            no_biometrics,
        } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let policy = PasscodePolicy {
                min_len: passcode_min,
                max_len: passcode_max,
                digits_only: !alphanumeric,
                allow_biometrics: !no_biometrics,
            };
            let offer = portal.create_offer(&account, policy, ttl, now, &mut CliRandom)?;
            let r = &offer.record;
            let row = portal.store_write(&Write::Offer(r.clone()), &mut CliRandom);
            if let Applied::Conflict(what) = db.apply(&[row], now, &[])? {
                // A fresh random offer id already taken: not a race, a fault.
                return Err(cli_err(ErrorCode::Internal, format!("new offer: {what}")));
            }
            if c.json {
                out!("{}", json!({"qr_text": offer.qr_text, "offer_id": r.offer_id, "expires_at": r.expires_at}));
            } else {
                out!("{}", offer.qr_text);
            }
            if render {
                out!("{}", render_qr(&offer.qr_text, EcLevel::M)?);
            }
        }
        PortalCommand::LinkAccept { c, request } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let opened = portal.open_link_request(&request)?;
            let d = db.run(&portal, now, |c| {
                let offer = read::offer(c, opened.offer_id())?.map(|row| portal.open_offer(&row)).transpose()?;
                // One device id across all accounts, pending or registered.
                let key_use =
                    if read::device_id_seen(c, opened.device_id())? { DeviceKeyUse::Seen } else { DeviceKeyUse::Fresh };
                let out = opened.accept(&portal, offer.as_ref(), key_use, now);
                let pending = match out.outcome.result {
                    Ok(Accept::Accepted) => written_pending(&out.outcome.writes),
                    Ok(Accept::Repeated) => {
                        read::pending(c, opened.device_id())?.map(|row| portal.open_pending(&row)).transpose()?
                    }
                    Err(_) => None,
                };
                Ok(Decision {
                    writes: out.outcome.writes,
                    events: out.outcome.events,
                    value: (out.answer, out.outcome.result, pending),
                })
            })?;
            let (answer, result, pending) = d.value;
            match result {
                Ok(how) => {
                    let repeated = how == Accept::Repeated;
                    let confirm_by = pending.as_ref().map(|p| p.confirm_by);
                    if c.json {
                        out!(
                            "{}",
                            json!({"answer": answer, "device_id": opened.device_id(), "device_name": opened.device_name(),
                                   "confirm_by": confirm_by, "repeated": repeated})
                        );
                    } else {
                        out!("{answer}");
                        if repeated {
                            eprintln!(
                                "device \"{}\" ({}) sent its accepted request again: same answer, nothing changed",
                                opened.device_name(),
                                opened.device_id()
                            );
                        } else {
                            eprintln!(
                                "device \"{}\" ({}) waits for its check code until {}",
                                opened.device_name(),
                                opened.device_id(),
                                confirm_by.unwrap_or_default()
                            );
                        }
                    }
                }
                Err(e) => {
                    // The device still needs the (authenticated) refusal.
                    if c.json {
                        out!("{}", json!({"answer": answer, "error": e.code().as_str()}));
                    } else {
                        out!("{answer}");
                    }
                    return Err(e);
                }
            }
        }
        PortalCommand::LinkConfirm { c, account, code } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let d = db.run(&portal, now, |c| {
                let rows = read::open_pendings(c, &account)?;
                if rows.is_empty() {
                    return Ok(Decision::read_only(Err(cli_err(
                        ErrorCode::TokenUnknown,
                        "no device of this account is waiting for a check code",
                    ))));
                }
                let pendings: Vec<PendingLinkRecord> =
                    rows.iter().map(|r| portal.open_pending(r)).collect::<Result<_, _>>()?;
                let mut outcomes: Vec<Outcome<()>> =
                    pendings.iter().map(|p| portal.confirm_link(p, &code, now)).collect();
                // The pending link whose check code matches is confirmed; the
                // others are untouched.
                if let Some(i) = outcomes.iter().position(|o| o.result.is_ok()) {
                    let o = outcomes.swap_remove(i);
                    let rec = written_device(&o.writes)
                        .ok_or_else(|| cli_err(ErrorCode::Internal, "a confirmed link without a device"))?;
                    return Ok(Decision { writes: o.writes, events: o.events, value: Ok(rec) });
                }
                // No match: the wrong code counts against every waiting link,
                // all in one transaction.
                let (mut writes, mut events, mut first_err) = (Vec::new(), Vec::new(), None);
                for o in outcomes {
                    writes.extend(o.writes);
                    events.extend(o.events);
                    if let Err(e) = o.result {
                        first_err.get_or_insert(e);
                    }
                }
                let e = first_err
                    .unwrap_or_else(|| Error::new(ErrorCode::CheckCodeMismatch, "the check code does not match"));
                Ok(Decision { writes, events, value: Err(e) })
            })?;
            let rec = d.value?;
            notify(&d.events);
            if c.json {
                out!(
                    "{}",
                    json!({"device": device_json(&rec), "events": d.events.iter().map(event_json).collect::<Vec<_>>()})
                );
            } else {
                out!("linked device {} \"{}\" to {}", rec.device_id, rec.name, rec.account);
            }
        }
        PortalCommand::Devices { c, account } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let recs: Vec<DeviceRecord> = db.read(|c| {
                read::devices_of(c, &account)?.iter().map(|r| portal.open_device(r)).collect::<Result<_, _>>()
            })?;
            if c.json {
                out!("{}", serde_json::Value::Array(recs.iter().map(device_json).collect()));
            } else {
                out!("{:<18} {:<24} {:>12} {:>12} STATUS", "ID", "NAME", "LINKED_AT", "LAST_USED");
                for r in &recs {
                    let last = r.last_used_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                    out!("{:<18} {:<24} {:>12} {:>12} {}", r.device_id, r.name, r.linked_at, last, r.status.as_str());
                }
            }
        }
        PortalCommand::Rename { c, account, device, name } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let (result, rec, events) = device_op(&mut db, &portal, now, &account, &device, |r| r.rename(&name, now))?;
            result?;
            notify(&events);
            if c.json {
                out!("{}", device_json(&rec));
            } else {
                out!("renamed {} to \"{}\"", rec.device_id, rec.name);
            }
        }
        PortalCommand::Unlink { c, account, device } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let (result, rec, events) = device_op(&mut db, &portal, now, &account, &device, |r| r.unlink(now))?;
            result?;
            notify(&events);
            if c.json {
                out!("{}", device_json(&rec));
            } else {
                out!("unlinked {} \"{}\"; the device wipes the account on its next contact", rec.device_id, rec.name);
            }
        }
        PortalCommand::Status { c, request } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let opened = portal.open_status_request(&request)?;
            // Read-only: a status answer writes nothing, so it can never
            // overwrite an unlink (or anything else).
            let (device, pending) = db.read(|c| {
                let device = read::device(c, opened.device_id())?.map(|r| portal.open_device(&r)).transpose()?;
                let pending = read::pending(c, opened.device_id())?.map(|r| portal.open_pending(&r)).transpose()?;
                Ok((device, pending))
            })?;
            let answer = opened.answer(device.as_ref(), pending.as_ref(), now)?;
            // What the answer says (as the core decides it): the phone
            // wipes itself only once no confirmation can still be committing.
            let status = match (&device, &pending) {
                (Some(d), _) => d.status.as_str(),
                (None, Some(p))
                    if matches!(p.state, PendingState::Open { .. })
                        && now < p.confirm_by.saturating_add(STATUS_SKEW) =>
                {
                    "awaiting_confirmation"
                }
                _ => "not_confirmed",
            };
            if c.json {
                out!("{}", json!({"answer": answer, "status": status}));
            } else {
                out!("{answer}");
            }
        }
        PortalCommand::VerifyTotp { c, account, device, code } => {
            let mut db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let (result, _, _) = device_op(&mut db, &portal, now, &account, &device, |r| r.verify_totp(&code, now))?;
            let v = result?;
            if c.json {
                out!("{}", json!({"accepted": true, "step": v.matched, "drift": v.drift}));
            } else {
                out!("accepted (step {}, drift {})", v.matched, v.drift);
            }
        }
    }
    Ok(())
}
