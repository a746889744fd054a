//! `tessera portal …`: the reference portal (offers, accept, confirm, registry).

use crate::cli_err;
use crate::store::{db_err, PortalDb};
use crate::util::Common;
use crate::util::{now_or, render_qr, CliRandom};
use clap::Subcommand;
use qrcode::EcLevel;
use rusqlite::{params, OptionalExtension};
use serde_json::json;
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_core::link::{
    DeviceRecord, LinkOfferRecord, PasscodePolicy, PendingLinkRecord, Portal, PortalEvent, DEFAULT_OFFER_TTL,
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

fn load_portal(db: &PortalDb) -> Result<Portal, Error> {
    let (name, secret) = db
        .identity()?
        .ok_or_else(|| cli_err(ErrorCode::Storage, "this directory has no portal; run `tessera portal init`"))?;
    Portal::from_secret(&hex_decode(&secret)?, &name)
}

fn event_json(e: &PortalEvent) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or(serde_json::Value::Null)
}

fn record_events(db: &PortalDb, now: u64, events: &[PortalEvent]) -> Result<(), Error> {
    for e in events {
        db.log_event(now, &event_json(e).to_string())?;
        if let PortalEvent::DeviceLinked { account, device_name, .. } = e {
            eprintln!("notification: e-mail to {account}: \"{device_name}\" was linked to your account");
        }
    }
    Ok(())
}

fn load_device(db: &PortalDb, portal: &Portal, account: &str, device: &str) -> Result<DeviceRecord, Error> {
    let sealed: Option<Vec<u8>> = db
        .conn
        .query_row("SELECT sealed FROM devices WHERE device_id = ?1 AND account = ?2", params![device, account], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db_err)?;
    let rec: DeviceRecord = portal
        .open_record(&sealed.ok_or_else(|| cli_err(ErrorCode::DeviceUnknown, "no such device for this account"))?)?;
    if rec.device_id != device || rec.account != account {
        return Err(cli_err(ErrorCode::StateCorrupt, "the stored record does not match its row"));
    }
    Ok(rec)
}

fn save_device(db: &PortalDb, portal: &Portal, rec: &DeviceRecord) -> Result<(), Error> {
    let sealed = portal.seal_record(rec, &mut CliRandom);
    db.conn
        .execute(
            "INSERT INTO devices (device_id, account, name, linked_at, last_used_at, status, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(device_id) DO UPDATE SET name = excluded.name, last_used_at = excluded.last_used_at, status = excluded.status, sealed = excluded.sealed",
            params![rec.device_id, rec.account, rec.name, rec.linked_at as i64, rec.last_used_at.map(|t| t as i64), rec.status.as_str(), sealed],
        )
        .map_err(db_err)?;
    Ok(())
}

fn device_json(r: &DeviceRecord) -> serde_json::Value {
    json!({"id": r.device_id, "name": r.name, "linked_at": r.linked_at, "last_used_at": r.last_used_at, "status": r.status.as_str()})
}

pub fn run(cmd: PortalCommand) -> Result<(), Error> {
    match cmd {
        PortalCommand::Init { c, name } => {
            let db = PortalDb::open(&c.dir, true)?;
            if db.identity()?.is_some() {
                return Err(cli_err(ErrorCode::InvalidState, "this directory already holds a portal"));
            }
            let p = Portal::generate(&name, &mut CliRandom)?;
            db.conn
                .execute(
                    "INSERT INTO portal (id, name, secret_hex) VALUES (1, ?1, ?2)",
                    params![name, hex_encode(p.secret().expose())],
                )
                .map_err(db_err)?;
            if c.json {
                out!("{}", json!({"name": name, "fingerprint": p.fingerprint()}));
            } else {
                out!("portal \"{name}\" created (key fingerprint {})", p.fingerprint());
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
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let policy = PasscodePolicy {
                min_len: passcode_min,
                max_len: passcode_max,
                digits_only: !alphanumeric,
                allow_biometrics: !no_biometrics,
            };
            let offer = portal.create_offer(&account, policy, ttl, now, &mut CliRandom)?;
            let r = &offer.record;
            db.conn
                .execute(
                    "INSERT INTO offers (offer_id, account, expires_at, used_at, sealed) VALUES (?1, ?2, ?3, NULL, ?4)",
                    params![r.offer_id, r.account, r.expires_at as i64, portal.seal_record(r, &mut CliRandom)],
                )
                .map_err(db_err)?;
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
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let opened = portal.open_link_request(&request)?;
            let tx = db.immediate()?;
            let sealed: Option<Vec<u8>> = tx
                .query_row("SELECT sealed FROM offers WHERE offer_id = ?1", [opened.offer_id()], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            let offer: Option<LinkOfferRecord> = sealed.map(|s| portal.open_record(&s)).transpose()?;
            let out = opened.accept(&portal, offer.as_ref(), now);
            let (answer, result) = match out.result {
                Ok(acc) => {
                    // Compare-and-set: only one request may use the offer.
                    let n = tx
                        .execute(
                            "UPDATE offers SET used_at = ?1, sealed = ?2 WHERE offer_id = ?3 AND used_at IS NULL",
                            params![now as i64, portal.seal_record(&acc.offer, &mut CliRandom), acc.offer.offer_id],
                        )
                        .map_err(db_err)?;
                    if n == 1 {
                        tx.execute(
                            "INSERT INTO pending_links (device_id, account, closed, sealed) VALUES (?1, ?2, 0, ?3)
                             ON CONFLICT(device_id) DO UPDATE SET account = excluded.account, closed = 0, sealed = excluded.sealed",
                            params![acc.pending.device_id, acc.pending.account, portal.seal_record(&acc.pending, &mut CliRandom)],
                        )
                        .map_err(db_err)?;
                        for e in &acc.events {
                            tx.execute(
                                "INSERT INTO events (at, json) VALUES (?1, ?2)",
                                params![now as i64, event_json(e).to_string()],
                            )
                            .map_err(db_err)?;
                        }
                        (out.answer, Ok(acc.pending))
                    } else {
                        // Lost the race: refuse with an answer the device can show. (Not
                        // reached with SQLite's immediate transactions; kept for other stores.)
                        let again = portal.open_link_request(&request)?;
                        (
                            again.refuse(&portal, ErrorCode::TokenAlreadyUsed),
                            Err(Error::new(ErrorCode::TokenAlreadyUsed, "this QR code was already used")),
                        )
                    }
                }
                Err(e) => (out.answer, Err(e)),
            };
            tx.commit().map_err(db_err)?;
            match result {
                Ok(p) => {
                    if c.json {
                        out!(
                            "{}",
                            json!({"answer": answer, "device_id": p.device_id, "device_name": p.device_name, "confirm_by": p.confirm_by})
                        );
                    } else {
                        out!("{answer}");
                        eprintln!(
                            "device \"{}\" ({}) waits for its check code until {}",
                            p.device_name, p.device_id, p.confirm_by
                        );
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
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let tx = db.immediate()?;
            let rows: Vec<Vec<u8>> = {
                let mut st =
                    tx.prepare("SELECT sealed FROM pending_links WHERE account = ?1 AND closed = 0").map_err(db_err)?;
                let it = st.query_map([&account], |r| r.get(0)).map_err(db_err)?;
                it.collect::<Result<_, _>>().map_err(db_err)?
            };
            if rows.is_empty() {
                return Err(cli_err(ErrorCode::TokenUnknown, "no device of this account is waiting for a check code"));
            }
            let pendings: Vec<PendingLinkRecord> =
                rows.iter().map(|s| portal.open_record(s)).collect::<Result<_, _>>()?;
            // Find the pending link whose check code matches; the others are untouched.
            let mut linked: Option<(PendingLinkRecord, (DeviceRecord, Vec<PortalEvent>))> = None;
            for p in &pendings {
                let mut trial = p.clone();
                if let Ok(done) = portal.confirm_link(&mut trial, &code, now) {
                    linked = Some((trial, done));
                    break;
                }
            }
            // No match: the wrong code counts against every waiting link.
            let mut first_err: Option<Error> = None;
            let updated: Vec<PendingLinkRecord> = match &linked {
                Some((closed, _)) => vec![closed.clone()],
                None => pendings
                    .into_iter()
                    .map(|mut p| {
                        if let Err(e) = portal.confirm_link(&mut p, &code, now) {
                            first_err.get_or_insert(e);
                        }
                        p
                    })
                    .collect(),
            };
            let linked = linked.map(|(_, done)| done);
            for p in &updated {
                tx.execute(
                    "UPDATE pending_links SET closed = ?1, sealed = ?2 WHERE device_id = ?3",
                    params![p.closed as i64, portal.seal_record(p, &mut CliRandom), p.device_id],
                )
                .map_err(db_err)?;
            }
            let result = match linked {
                Some((rec, events)) => {
                    let sealed = portal.seal_record(&rec, &mut CliRandom);
                    tx.execute(
                        "INSERT INTO devices (device_id, account, name, linked_at, last_used_at, status, sealed) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)
                         ON CONFLICT(device_id) DO UPDATE SET account = excluded.account, name = excluded.name, linked_at = excluded.linked_at,
                         last_used_at = NULL, status = excluded.status, sealed = excluded.sealed",
                        params![rec.device_id, rec.account, rec.name, rec.linked_at as i64, rec.status.as_str(), sealed],
                    )
                    .map_err(db_err)?;
                    Ok((rec, events))
                }
                None => Err(first_err
                    .unwrap_or_else(|| Error::new(ErrorCode::CheckCodeMismatch, "the check code does not match"))),
            };
            tx.commit().map_err(db_err)?;
            let (rec, events) = result?;
            record_events(&db, now, &events)?;
            if c.json {
                out!(
                    "{}",
                    json!({"device": device_json(&rec), "events": events.iter().map(event_json).collect::<Vec<_>>()})
                );
            } else {
                out!("linked device {} \"{}\" to {}", rec.device_id, rec.name, rec.account);
            }
        }
        PortalCommand::Devices { c, account } => {
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let mut st = db
                .conn
                .prepare("SELECT sealed FROM devices WHERE account = ?1 ORDER BY linked_at, device_id")
                .map_err(db_err)?;
            let rows: Vec<Vec<u8>> =
                st.query_map([&account], |r| r.get(0)).map_err(db_err)?.collect::<Result<_, _>>().map_err(db_err)?;
            let recs: Vec<DeviceRecord> = rows.iter().map(|s| portal.open_record(s)).collect::<Result<_, _>>()?;
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
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let mut rec = load_device(&db, &portal, &account, &device)?;
            let ev = rec.rename(&name, now)?;
            save_device(&db, &portal, &rec)?;
            record_events(&db, now, &[ev])?;
            if c.json {
                out!("{}", device_json(&rec));
            } else {
                out!("renamed {} to \"{}\"", rec.device_id, rec.name);
            }
        }
        PortalCommand::Unlink { c, account, device } => {
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let mut rec = load_device(&db, &portal, &account, &device)?;
            let ev = rec.unlink(now)?;
            save_device(&db, &portal, &rec)?;
            record_events(&db, now, &[ev])?;
            if c.json {
                out!("{}", device_json(&rec));
            } else {
                out!("unlinked {} \"{}\"; the device wipes the account on its next contact", rec.device_id, rec.name);
            }
        }
        PortalCommand::Status { c, request } => {
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let opened = portal.open_status_request(&request)?;
            let account: Option<String> = db
                .conn
                .query_row("SELECT account FROM devices WHERE device_id = ?1", [opened.device_id()], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            let account = account.ok_or_else(|| cli_err(ErrorCode::DeviceUnknown, "no such device"))?;
            let mut rec = load_device(&db, &portal, &account, opened.device_id())?;
            let answer = opened.answer(&mut rec, now)?;
            save_device(&db, &portal, &rec)?;
            if c.json {
                out!("{}", json!({"answer": answer, "status": rec.status.as_str()}));
            } else {
                out!("{answer}");
            }
        }
        PortalCommand::VerifyTotp { c, account, device, code } => {
            let db = PortalDb::open(&c.dir, false)?;
            let portal = load_portal(&db)?;
            let now = now_or(c.now)?;
            let mut rec = load_device(&db, &portal, &account, &device)?;
            let r = rec.verify_totp(&code, now);
            save_device(&db, &portal, &rec)?;
            let v = r?;
            if c.json {
                out!("{}", json!({"accepted": true, "step": v.matched, "drift": v.drift}));
            } else {
                out!("accepted (step {}, drift {})", v.matched, v.drift);
            }
        }
    }
    Ok(())
}
