//! `tessera device …`: a simulated phone app.
//!
//! The directory stands in for the phone: `device.db` is the app's storage
//! (sealed state, pending link, status probe: nothing that opens them);
//! `device.key` (or `TESSERA_DEVICE_KEY`) is the storage key a real app keeps
//! in the platform keystore; `biometric.key` is the keystore entry a real app
//! keeps behind biometrics.

use crate::cli_err;
use crate::input::SecretArg;
use crate::secrets::{self, DEVICE_KEY_ENV};
use crate::store::DeviceDb;
use crate::util::{secs, Common};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_host::{
    Approval, ChallengeView, Device, ErrorCode, LinkChoices, LinkedAccount, TesseraError as Error, Unlock,
};
use zeroize::Zeroizing;

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Show what a link QR code says, without linking.
    Scan {
        #[command(flatten)]
        c: Common,
        /// The scanned QR text.
        #[arg(long)]
        qr: String,
        /// Only accept QR codes of this portal (its public key in hex, from
        /// `tessera portal init --json`): a look-alike QR code is WRONG_ACCOUNT.
        #[arg(long)]
        portal_key: Option<String>,
    },
    /// Scan a link QR code and send a link request (prints it).
    Link {
        #[command(flatten)]
        c: Common,
        /// The scanned QR text.
        #[arg(long)]
        qr: String,
        /// Device name, e.g. "Anna's Pixel".
        #[arg(long)]
        name: String,
        /// The secret code the user sets (or `-`, `@FILE`, `env:NAME`).
        #[arg(long)]
        passcode: SecretArg,
        /// Also unlock with biometrics.
        #[arg(long)]
        biometric: bool,
        /// Only accept QR codes of this portal (its public key in hex).
        #[arg(long)]
        portal_key: Option<String>,
        /// A `tessera serve` URL (`http://HOST:PORT`): send the request
        /// there and read its answer here (prints the check code, as
        /// `link-finish` does).
        #[arg(long)]
        server: Option<String>,
    },
    /// Finish linking with the portal's answer (prints the check code).
    LinkFinish {
        #[command(flatten)]
        c: Common,
        /// The portal's answer text.
        #[arg(long)]
        response: String,
    },
    /// Show the local state (with --server: ask the portal, as
    /// `status-request --server` does).
    Status {
        #[command(flatten)]
        c: Common,
        /// A `tessera serve` URL (`http://HOST:PORT`).
        #[arg(long)]
        server: Option<String>,
    },
    /// Ask the portal whether the link still exists (prints the request).
    StatusRequest {
        #[command(flatten)]
        c: Common,
        /// A `tessera serve` URL (`http://HOST:PORT`): send the request
        /// there and read its answer here (prints what
        /// `status-finish` does).
        #[arg(long)]
        server: Option<String>,
    },
    /// Read the portal's status answer; wipes the account if the portal
    /// unlinked it or never confirmed the link.
    StatusFinish {
        #[command(flatten)]
        c: Common,
        /// The portal's answer text.
        #[arg(long)]
        response: String,
    },
    /// Show the device's time-based code.
    Totp {
        #[command(flatten)]
        c: Common,
        /// Passcode (or `-`, `@FILE`, `env:NAME`).
        #[arg(long, required_unless_present = "biometric")]
        passcode: Option<SecretArg>,
        /// Use the biometric secret instead.
        #[arg(long)]
        biometric: bool,
    },
    /// Show what a challenge QR code asks to approve, before answering.
    ///
    /// A login, a payment (amount, currency, payee, text) or a new device
    /// to link, as the phone shows it.
    Show {
        #[command(flatten)]
        c: Common,
        /// The scanned challenge QR text.
        #[arg(long)]
        qr: String,
    },
    /// Approve a challenge: prints the code to type (--signed: the signed answer).
    ///
    /// A wrong passcode gives a wrong code that only the portal can tell.
    Answer {
        #[command(flatten)]
        c: Common,
        /// The scanned challenge QR text.
        #[arg(long)]
        qr: String,
        /// Passcode (or `-`, `@FILE`, `env:NAME`).
        #[arg(long, required_unless_present = "biometric")]
        passcode: Option<SecretArg>,
        /// Use the biometric secret instead.
        #[arg(long)]
        biometric: bool,
        /// A signed answer for the portal (a device with network); the
        /// device state it advances is stored before it is printed.
        #[arg(long)]
        signed: bool,
        /// A `tessera serve` URL (`http://HOST:PORT`): send the answer
        /// there (prints the portal's verdict: `accepted`).
        #[arg(long)]
        server: Option<String>,
    },
    /// Unlink locally: wipe the account from this device.
    Unlink {
        #[command(flatten)]
        c: Common,
    },
}

const K_STATE: &str = "state";
const K_PENDING: &str = "pending_link";
/// The error tessera-host gave for a pending link it no longer holds (it
/// was finished, or the portal refused it): a later `link-finish` gets it
/// again, as the same `PendingLink` object would.
const K_SPENT: &str = "pending_link_spent";
const K_PROBE: &str = "status_probe";

fn key_path(dir: &Path) -> PathBuf {
    dir.join("device.key")
}

/// The biometric secret lives in its own owner-only file, never in
/// `device.db` or `device.key`. It is the passcode-derived factor
/// (HMAC(otp_root, passcode)): whoever holds it and the storage key (which
/// opens the sealed state and its `otp_root`) can test passcodes offline.
/// So it must not sit next to the storage key; a real app keeps it in a
/// separate keystore entry that only a fingerprint or face releases.
/// Sealing it under the storage key inside `device.db` would not model that
/// (whoever holds the storage key would open it too); a separate file
/// does, and with `TESSERA_DEVICE_KEY` the storage key is not on disk at all.
fn bio_path(dir: &Path) -> PathBuf {
    dir.join("biometric.key")
}

/// The storage key (a phone's, or an offline authenticator's:
/// `tessera token`): `TESSERA_DEVICE_KEY`, else `DIR/device.key`. A new key
/// file is made only while the database holds nothing sealed; a missing
/// key next to sealed data is an error, not a silent new key.
pub(crate) fn storage_key(db: &DeviceDb, dir: &Path) -> Result<Zeroizing<[u8; 32]>, Error> {
    if let Some(k) = secrets::key_from_env(DEVICE_KEY_ENV)? {
        return Ok(k);
    }
    let path = key_path(dir);
    if let Some(k) = secrets::key_from_file(&path)? {
        return Ok(k);
    }
    if db.get(K_STATE)?.is_some() || db.get(K_PENDING)?.is_some() || db.get(crate::token_cmd::K_TOKEN)?.is_some() {
        return Err(cli_err(
            ErrorCode::Storage,
            format!("no device key: {} is missing and {DEVICE_KEY_ENV} is not set", path.display()),
        ));
    }
    let k = Zeroizing::new(tessera_host::new_storage_key()?);
    match secrets::write_key_file(&path, &k[..]) {
        Ok(()) => secrets::key_from_file(&path)?
            .ok_or_else(|| cli_err(ErrorCode::Storage, format!("{} vanished", path.display()))),
        // Another process made it first: use that one.
        Err(_) if path.exists() => secrets::key_from_file(&path)?
            .ok_or_else(|| cli_err(ErrorCode::Storage, format!("{} vanished", path.display()))),
        Err(e) => Err(e),
    }
}

/// The phone app: its storage (`device.db`) and tessera-host's `Device`
/// bound to its storage key.
struct Phone {
    db: DeviceDb,
    device: Device,
}

fn phone(dir: &Path) -> Result<Phone, Error> {
    let db = DeviceDb::open(dir)?;
    let key = storage_key(&db, dir)?;
    let device = Device::new(key.to_vec())?;
    Ok(Phone { db, device })
}

impl Phone {
    /// The sealed device state (`DEVICE_NOT_LINKED` when there is none).
    fn state(&self) -> Result<Vec<u8>, Error> {
        self.db
            .get(K_STATE)?
            .ok_or_else(|| cli_err(ErrorCode::DeviceNotLinked, "this device is not linked to an account"))
    }
}

fn remove_bio(dir: &Path) -> Result<(), Error> {
    let p = bio_path(dir);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(cli_err(ErrorCode::Storage, format!("{}: {e}", p.display())))
        }
        _ => Ok(()),
    }
}

fn wipe(db: &DeviceDb, dir: &Path) -> Result<(), Error> {
    for k in [K_STATE, K_PENDING, K_SPENT, K_PROBE] {
        db.delete(k)?;
    }
    remove_bio(dir)
}

fn pinned(portal_key: Option<&str>) -> Result<Option<Vec<u8>>, Error> {
    portal_key
        .map(|hex| {
            hex_decode(hex.trim())
                .map_err(|_| cli_err(ErrorCode::InvalidInput, "--portal-key must be the portal's public key in hex"))
        })
        .transpose()
}

fn info_json(i: &LinkedAccount) -> serde_json::Value {
    let codes = &i.device_codes;
    json!({"linked": true, "portal": i.portal_name, "portal_fingerprint": i.portal_fingerprint, "account": i.account,
           "device_id": i.device_id, "device_name": i.device_name, "linked_at": secs(i.linked_at), "biometrics": i.biometrics,
           "device_codes": {"algorithm": codes.algorithm.map(|a| crate::store::name_of(&a)), "digits": codes.digits,
                            "period_seconds": codes.period_seconds}})
}

/// The user's factor: the passcode, or the biometric secret (its own file).
fn unlock_with(dir: &Path, passcode: Option<SecretArg>, biometric: bool) -> Result<Unlock, Error> {
    Ok(if biometric {
        let b = secrets::key_from_file(&bio_path(dir))?
            .ok_or_else(|| cli_err(ErrorCode::InvalidState, "biometrics are not enabled on this device"))?;
        Unlock::Biometric { secret: b.to_vec() }
    } else {
        let p = passcode.map(|p| p.read("--passcode")).transpose()?;
        Unlock::Passcode { passcode: p.map(|p| p.to_string()).unwrap_or_default() }
    })
}

/// What a challenge asks, flat: `kind` is `login`, `transaction` or
/// `linkDevice`; the fields of the other kinds are null.
fn view_json(v: &ChallengeView) -> serde_json::Value {
    let mut j = json!({"portal": v.portal_name, "account": v.account, "challenge_id": v.challenge_id,
                       "expires_at": secs(v.expires_at), "digits": v.digits, "amount": null, "currency": null,
                       "payee": null, "text": null, "device_name": null, "device_id": null});
    match &v.approval {
        Approval::Login => j["kind"] = json!("login"),
        Approval::Transaction { amount, currency, payee, text } => {
            j["kind"] = json!("transaction");
            j["amount"] = json!(amount);
            j["currency"] = json!(currency);
            j["payee"] = json!(payee);
            j["text"] = json!(text);
        }
        Approval::LinkDevice { device_name, device_id } => {
            j["kind"] = json!("linkDevice");
            j["device_name"] = json!(device_name);
            j["device_id"] = json!(device_id);
        }
    }
    j
}

/// What the phone shows: the question, then a transaction's text lines.
fn view_text(v: &ChallengeView) -> String {
    let (portal, account, until) = (&v.portal_name, &v.account, secs(v.expires_at));
    match &v.approval {
        Approval::Login => format!("Log in to \"{portal}\" as {account}? Valid until {until}."),
        Approval::Transaction { amount, currency, payee, text } => {
            let mut s =
                format!("Pay {amount} {currency} to \"{payee}\" from {account} at \"{portal}\"? Valid until {until}.");
            for line in text {
                s.push_str("\n  ");
                s.push_str(line);
            }
            s
        }
        Approval::LinkDevice { device_name, .. } => {
            format!("Link the new device \"{device_name}\" to {account} at \"{portal}\"? Valid until {until}.")
        }
    }
}

fn spent_json(e: &Error) -> Vec<u8> {
    json!({"code": e.code().as_str(), "detail": e.detail()}).to_string().into_bytes()
}

fn spent_error(blob: &[u8]) -> Error {
    let j: serde_json::Value = serde_json::from_slice(blob).unwrap_or_default();
    match j["code"].as_str().and_then(ErrorCode::parse) {
        Some(code) => Error::new(code, j["detail"].as_str().unwrap_or_default()),
        None => cli_err(ErrorCode::StateCorrupt, "the record of a finished link is damaged"),
    }
}

pub fn run(cmd: DeviceCommand) -> Result<(), Error> {
    match cmd {
        DeviceCommand::Scan { c, qr, portal_key } => {
            // Scanning needs no storage: any key will do.
            let device = Device::new(tessera_host::new_storage_key()?)?;
            let o = device.scan_link_qr(qr, c.now()?, pinned(portal_key.as_deref())?)?;
            let r = &o.passcode_rules;
            if c.json {
                out!(
                    "{}",
                    json!({"portal": o.portal_name, "portal_fingerprint": o.portal_fingerprint, "expires_at": secs(o.expires_at),
                    "passcode_min": r.min_len, "passcode_max": r.max_len, "digits_only": r.digits_only,
                    "biometrics_allowed": r.biometrics_allowed})
                );
            } else {
                out!(
                    "Link this device to \"{}\" (key {})? Valid until {}.",
                    o.portal_name,
                    o.portal_fingerprint,
                    secs(o.expires_at)
                );
            }
        }
        DeviceCommand::Link { c, qr, name, passcode, biometric, portal_key, server } => {
            let ph = phone(&c.dir)?;
            let now = c.now()?;
            let pin = pinned(portal_key.as_deref())?;
            let portal = ph.device.scan_link_qr(qr.clone(), now, pin.clone())?.portal_name;
            let passcode = passcode.read("--passcode")?;
            let choices = LinkChoices { device_name: name, passcode: passcode.to_string(), biometrics: biometric };
            let pending = ph.device.start_link(qr, choices, ph.db.get(K_STATE)?, now, pin)?;
            match pending.biometric_secret().map(Zeroizing::new) {
                Some(b) => {
                    let mut text = Zeroizing::new(hex_encode(&b));
                    text.push('\n');
                    secrets::write_private(&bio_path(&c.dir), text.as_bytes())?;
                }
                None => remove_bio(&c.dir)?,
            }
            ph.db.put(K_PENDING, &pending.sealed()?)?;
            ph.db.delete(K_SPENT)?;
            let request = pending.request()?;
            if let Some(server) = server {
                drop(ph);
                let reply = crate::http_client::post(&server, "/v1/link-requests", &json!({ "request": request }))?;
                // A refusal still carries the portal's (authenticated)
                // answer: the device reads it and keeps what it says.
                let answer =
                    match (reply.status, reply.body["answer"].as_str(), reply.body["details"]["answer"].as_str()) {
                        (200..=299, Some(a), _) | (_, _, Some(a)) => a.to_owned(),
                        _ => return Err(reply.error()),
                    };
                return finish_link(&c, answer);
            }
            if c.json {
                out!("{}", json!({"request": request, "portal": portal}));
            } else {
                out!("{request}");
            }
        }
        DeviceCommand::LinkFinish { c, response } => finish_link(&c, response)?,
        DeviceCommand::Status { c, server: Some(server) } => status_request(&c, Some(&server))?,
        DeviceCommand::Status { c, server: None } => {
            let db = DeviceDb::open(&c.dir)?;
            match db.get(K_STATE)? {
                Some(state) => {
                    drop(db);
                    let ph = phone(&c.dir)?;
                    let i = ph.device.account(state)?;
                    if c.json {
                        out!("{}", info_json(&i));
                    } else {
                        out!(
                            "linked: {} at \"{}\" as device {} \"{}\" (biometrics {})",
                            i.account,
                            i.portal_name,
                            i.device_id,
                            i.device_name,
                            if i.biometrics { "on" } else { "off" }
                        );
                    }
                }
                None => {
                    let pending = db.get(K_PENDING)?.is_some();
                    if c.json {
                        out!("{}", json!({"linked": false, "link_in_progress": pending}));
                    } else if pending {
                        out!("not linked (a link is in progress)");
                    } else {
                        out!("not linked");
                    }
                }
            }
        }
        // The probe between `status-request` and `status-finish` (two
        // processes) is stored sealed; a read answer deletes it, so a second
        // finish is ALREADY_CONSUMED, as with the host's one-process probe.
        DeviceCommand::StatusRequest { c, server } => status_request(&c, server.as_deref())?,
        DeviceCommand::StatusFinish { c, response } => finish_status(&c, response)?,
        DeviceCommand::Totp { c, passcode, biometric } => {
            let ph = phone(&c.dir)?;
            let state = ph.state()?;
            let unlock = unlock_with(&c.dir, passcode, biometric)?;
            let now = c.now()?;
            let code = ph.device.code(state, unlock, now)?;
            if c.json {
                out!("{}", json!({"code": code, "time": secs(now)}));
            } else {
                out!("{code}");
            }
        }
        DeviceCommand::Show { c, qr } => {
            let ph = phone(&c.dir)?;
            let view = ph.device.read_challenge(ph.state()?, qr, c.now()?)?;
            if c.json {
                out!("{}", view_json(&view));
            } else {
                out!("{}", view_text(&view));
            }
        }
        DeviceCommand::Answer { c, qr, passcode, biometric, signed, server } => {
            let ph = phone(&c.dir)?;
            let now = c.now()?;
            let unlock = unlock_with(&c.dir, passcode, biometric)?;
            let (answer, challenge_id) = ph.db.exclusive(|db| {
                let state = db
                    .get(K_STATE)?
                    .ok_or_else(|| cli_err(ErrorCode::DeviceNotLinked, "this device is not linked to an account"))?;
                let view = ph.device.read_challenge(state.clone(), qr.clone(), now)?;
                let answer = if signed {
                    let s = ph.device.sign_challenge(state, qr.clone(), unlock, now)?;
                    // Stored before it is printed: its counter is never used again.
                    db.put(K_STATE, &s.state)?;
                    s.answer
                } else {
                    ph.device.answer_challenge(state, qr.clone(), unlock, now)?
                };
                Ok((answer, view.challenge_id))
            })?;
            if let Some(server) = server {
                let path = format!("/v1/challenges/{}/answer", crate::http_client::encode(&challenge_id));
                let verdict = crate::http_client::post(&server, &path, &json!({ "answer": answer }))?.ok()?;
                if c.json {
                    out!("{verdict}");
                } else {
                    out!("accepted");
                }
                return Ok(());
            }
            if c.json {
                out!("{}", json!({"answer": answer, "signed": signed, "challenge_id": challenge_id}));
            } else {
                out!("{answer}");
            }
        }
        DeviceCommand::Unlink { c } => {
            let ph = phone(&c.dir)?;
            let i = ph.device.unlink_locally(ph.state()?)?;
            wipe(&ph.db, &c.dir)?;
            if c.json {
                out!("{}", json!({"unlinked": i.device_id}));
            } else {
                out!("unlinked locally from {} at \"{}\"", i.account, i.portal_name);
            }
        }
    }
    Ok(())
}

/// Finish linking with the portal's answer: prints the check code.
fn finish_link(c: &Common, response: String) -> Result<(), Error> {
    let ph = phone(&c.dir)?;
    let Some(sealed) = ph.db.get(K_PENDING)? else {
        return Err(match ph.db.get(K_SPENT)? {
            Some(spent) => spent_error(&spent),
            None => cli_err(ErrorCode::InvalidState, "no link in progress; run `tessera device link` first"),
        });
    };
    let pending = ph.device.open_pending_link(sealed)?;
    let result = pending.finish(response);
    if let Ok(done) = &result {
        ph.db.put(K_STATE, &done.state)?;
    }
    // What tessera-host keeps of the link after this answer: the
    // link to finish again with the genuine answer (a damaged or
    // forged one), or nothing (it is spent).
    match pending.sealed() {
        Ok(retry) => ph.db.put(K_PENDING, &retry)?,
        Err(spent) => {
            ph.db.put(K_SPENT, &spent_json(&spent))?;
            ph.db.delete(K_PENDING)?;
            if result.is_err() {
                remove_bio(&c.dir)?;
            }
        }
    }
    let done = result?;
    let a = &done.account;
    if c.json {
        out!(
            "{}",
            json!({"check_code": done.check_code, "account": a.account, "device_id": a.device_id, "portal": a.portal_name})
        );
    } else {
        out!("{}", done.check_code);
        eprintln!(
            "linked to {} at \"{}\": type this check code on the portal (a link offered by \
             `portal offer-new-device` is confirmed by an existing authenticator instead)",
            a.account, a.portal_name
        );
    }
    Ok(())
}

/// Ask the portal whether the link still exists: prints the request, or
/// with `server` sends it there and reads the answer (`finish_status`).
fn status_request(c: &Common, server: Option<&str>) -> Result<(), Error> {
    let ph = phone(&c.dir)?;
    let probe = ph.device.status_request(ph.state()?, c.now()?)?;
    let req = probe.request()?;
    ph.db.put(K_PROBE, &probe.sealed()?)?;
    if let Some(server) = server {
        drop(ph);
        let reply = crate::http_client::post(server, "/v1/status-requests", &json!({ "request": req }))?.ok()?;
        let answer = reply["answer"]
            .as_str()
            .ok_or_else(|| cli_err(ErrorCode::MalformedMessage, "the server's reply has no answer"))?;
        return finish_status(c, answer.to_owned());
    }
    if c.json {
        out!("{}", json!({"request": req}));
    } else {
        out!("{req}");
    }
    Ok(())
}

/// Read the portal's status answer; wipes the account if the portal
/// unlinked it or never confirmed the link.
fn finish_status(c: &Common, response: String) -> Result<(), Error> {
    let ph = phone(&c.dir)?;
    let sealed = ph.db.get(K_PROBE)?.ok_or_else(|| {
        cli_err(ErrorCode::AlreadyConsumed, "no status request in progress (read already, or never sent)")
    })?;
    let probe = ph.device.open_status_probe(ph.state()?, sealed)?;
    match probe.read(response) {
        Ok(status) => {
            ph.db.delete(K_PROBE)?;
            let confirmed = status == tessera_host::LinkStatus::Active;
            if c.json {
                out!("{}", json!({"linked": true, "confirmed": confirmed}));
            } else if confirmed {
                out!("still linked");
            } else {
                out!("linked; waiting for the check code to be typed on the portal");
            }
        }
        // tessera-host: "wipe the state then".
        Err(e) if e.code() == ErrorCode::DeviceRevoked => {
            wipe(&ph.db, &c.dir)?;
            eprintln!("the portal unlinked this device: account wiped");
            return Err(e);
        }
        Err(e) if e.code() == ErrorCode::LinkNotConfirmed => {
            wipe(&ph.db, &c.dir)?;
            eprintln!(
                "the portal never confirmed this link (check code not typed in time, or too many wrong \
                 codes): link wiped; link this device again"
            );
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
