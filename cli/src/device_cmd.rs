//! `tessera device …`: a simulated phone app.
//!
//! The directory stands in for the phone: `device.db` is the app's storage
//! (sealed state, pending link, status probe: nothing that opens them);
//! `device.key` (or `TESSERA_DEVICE_KEY`) is the storage key a real app keeps
//! in the platform keystore; `biometric.key` is the keystore entry a real app
//! keeps behind biometrics.

use crate::cli_err;
use crate::secrets::{self, DEVICE_KEY_ENV};
use crate::store::DeviceDb;
use crate::util::Common;
use crate::util::{now_or, random, CliRandom};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};
use tessera_core::encoding::{hex_decode, hex_encode};
use tessera_core::link::{self, DeviceState, LinkStatus, PendingDeviceLink, ScannedOffer, StatusProbe, UserFactor};
use tessera_core::{Error, ErrorCode};
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
        /// The secret code the user sets.
        #[arg(long)]
        passcode: String,
        /// Also unlock with biometrics.
        #[arg(long)]
        biometric: bool,
        /// Only accept QR codes of this portal (its public key in hex).
        #[arg(long)]
        portal_key: Option<String>,
    },
    /// Finish linking with the portal's answer (prints the check code).
    LinkFinish {
        #[command(flatten)]
        c: Common,
        /// The portal's answer text.
        #[arg(long)]
        response: String,
    },
    /// Show the local state.
    Status {
        #[command(flatten)]
        c: Common,
    },
    /// Ask the portal whether the link still exists (prints the request).
    StatusRequest {
        #[command(flatten)]
        c: Common,
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
        /// Passcode.
        #[arg(long, required_unless_present = "biometric")]
        passcode: Option<String>,
        /// Use the biometric secret instead.
        #[arg(long)]
        biometric: bool,
    },
    /// Unlink locally: wipe the account from this device.
    Unlink {
        #[command(flatten)]
        c: Common,
    },
}

const K_STATE: &str = "state";
const K_PENDING: &str = "pending_link";
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

/// The storage key: `TESSERA_DEVICE_KEY`, else `DIR/device.key`. A new key
/// file is made only while the database holds nothing sealed; a missing
/// key next to sealed data is an error, not a silent new key.
fn storage_key(db: &DeviceDb, dir: &Path) -> Result<Zeroizing<[u8; 32]>, Error> {
    if let Some(k) = secrets::key_from_env(DEVICE_KEY_ENV)? {
        return Ok(k);
    }
    let path = key_path(dir);
    if let Some(k) = secrets::key_from_file(&path)? {
        return Ok(k);
    }
    if db.get(K_STATE)?.is_some() || db.get(K_PENDING)?.is_some() {
        return Err(cli_err(
            ErrorCode::Storage,
            format!("no device key: {} is missing and {DEVICE_KEY_ENV} is not set", path.display()),
        ));
    }
    let k = Zeroizing::new(random::<32>()?);
    match secrets::write_key_file(&path, &k[..]) {
        Ok(()) => Ok(k),
        // Another process made it first: use that one.
        Err(_) if path.exists() => secrets::key_from_file(&path)?
            .ok_or_else(|| cli_err(ErrorCode::Storage, format!("{} vanished", path.display()))),
        Err(e) => Err(e),
    }
}

fn load_state(db: &DeviceDb, key: &[u8; 32]) -> Result<DeviceState, Error> {
    let blob = db
        .get(K_STATE)?
        .ok_or_else(|| cli_err(ErrorCode::DeviceNotLinked, "this device is not linked to an account"))?;
    DeviceState::open(key, &blob)
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
    for k in [K_STATE, K_PENDING, K_PROBE] {
        db.delete(k)?;
    }
    remove_bio(dir)
}

fn scan(qr: &str, portal_key: Option<&str>, now: u64) -> Result<ScannedOffer, Error> {
    match portal_key {
        None => link::scan_link_qr(qr, now),
        Some(hex) => {
            let pk = hex_decode(hex.trim())
                .map_err(|_| cli_err(ErrorCode::InvalidInput, "--portal-key must be the portal's public key in hex"))?;
            link::scan_link_qr_pinned(qr, &pk, now)
        }
    }
}

fn info_json(i: &link::DeviceInfo) -> serde_json::Value {
    json!({"linked": true, "portal": i.portal_name, "portal_fingerprint": i.portal_fingerprint, "account": i.account,
           "device_id": i.device_id, "device_name": i.device_name, "linked_at": i.linked_at, "biometrics": i.biometrics})
}

pub fn run(cmd: DeviceCommand) -> Result<(), Error> {
    match cmd {
        DeviceCommand::Scan { c, qr, portal_key } => {
            let o = scan(&qr, portal_key.as_deref(), now_or(c.now)?)?;
            if c.json {
                out!(
                    "{}",
                    json!({"portal": o.portal_name, "portal_fingerprint": o.portal_fingerprint, "expires_at": o.expires_at,
                    "passcode_min": o.policy.min_len, "passcode_max": o.policy.max_len, "digits_only": o.policy.digits_only,
                    "biometrics_allowed": o.policy.allow_biometrics})
                );
            } else {
                out!(
                    "Link this device to \"{}\" (key {})? Valid until {}.",
                    o.portal_name,
                    o.portal_fingerprint,
                    o.expires_at
                );
            }
        }
        DeviceCommand::Link { c, qr, name, passcode, biometric, portal_key } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let now = now_or(c.now)?;
            let passcode = Zeroizing::new(passcode);
            let offer = scan(&qr, portal_key.as_deref(), now)?;
            let linked = db.get(K_STATE)?.is_some();
            let start = link::start_link(&offer, &name, &passcode, biometric, linked, now, &mut CliRandom)?;
            match &start.biometric_secret {
                Some(b) => {
                    let mut text = Zeroizing::new(hex_encode(b.expose()));
                    text.push('\n');
                    secrets::write_private(&bio_path(&c.dir), text.as_bytes())?;
                }
                None => remove_bio(&c.dir)?,
            }
            db.put(K_PENDING, &start.pending.seal(&key, &mut CliRandom))?;
            if c.json {
                out!("{}", json!({"request": start.request, "portal": offer.portal_name}));
            } else {
                out!("{}", start.request);
            }
        }
        DeviceCommand::LinkFinish { c, response } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let sealed = db.get(K_PENDING)?.ok_or_else(|| {
                cli_err(ErrorCode::InvalidState, "no link in progress; run `tessera device link` first")
            })?;
            let pending = PendingDeviceLink::open(&key, &sealed)?;
            // Single use: an authenticated answer (success or refusal) spends the
            // pending link; a damaged or forged one leaves it for the genuine answer.
            let done = match link::finish_link(pending, &response, &key, &mut CliRandom) {
                Ok(d) => d,
                Err(e) => {
                    if link::finish_error_is_final(&e) {
                        db.delete(K_PENDING)?;
                        remove_bio(&c.dir)?;
                    }
                    return Err(e);
                }
            };
            db.delete(K_PENDING)?;
            db.put(K_STATE, &done.state)?;
            if c.json {
                out!(
                    "{}",
                    json!({"check_code": done.check_code, "account": done.info.account, "device_id": done.info.device_id, "portal": done.info.portal_name})
                );
            } else {
                out!("{}", done.check_code);
                eprintln!(
                    "linked to {} at \"{}\": type this check code on the portal",
                    done.info.account, done.info.portal_name
                );
            }
        }
        DeviceCommand::Status { c } => {
            let db = DeviceDb::open(&c.dir)?;
            match db.get(K_STATE)? {
                Some(blob) => {
                    let key = storage_key(&db, &c.dir)?;
                    let st = DeviceState::open(&key, &blob)?;
                    let i = st.info();
                    if c.json {
                        out!("{}", info_json(i));
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
        DeviceCommand::StatusRequest { c } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let st = load_state(&db, &key)?;
            let (req, probe) = st.status_request(now_or(c.now)?, &mut CliRandom)?;
            db.put(
                K_PROBE,
                serde_json::to_string(&probe).map_err(|_| cli_err(ErrorCode::Internal, "probe"))?.as_bytes(),
            )?;
            if c.json {
                out!("{}", json!({"request": req}));
            } else {
                out!("{req}");
            }
        }
        DeviceCommand::StatusFinish { c, response } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let st = load_state(&db, &key)?;
            let probe =
                db.get(K_PROBE)?.ok_or_else(|| cli_err(ErrorCode::InvalidState, "no status request in progress"))?;
            let probe: StatusProbe =
                serde_json::from_slice(&probe).map_err(|_| cli_err(ErrorCode::StateCorrupt, "bad probe"))?;
            match st.read_status_answer(&probe, &response) {
                Ok(status) => {
                    db.delete(K_PROBE)?;
                    let confirmed = status == LinkStatus::Active;
                    if c.json {
                        out!("{}", json!({"linked": true, "confirmed": confirmed}));
                    } else if confirmed {
                        out!("still linked");
                    } else {
                        out!("linked; waiting for the check code to be typed on the portal");
                    }
                }
                Err(e) if e.code() == ErrorCode::DeviceRevoked => {
                    wipe(&db, &c.dir)?;
                    eprintln!("the portal unlinked this device: account wiped");
                    return Err(e);
                }
                Err(e) if e.code() == ErrorCode::LinkNotConfirmed => {
                    wipe(&db, &c.dir)?;
                    eprintln!(
                        "the portal never confirmed this link (check code not typed in time, or too many wrong \
                         codes): link wiped; link this device again"
                    );
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        DeviceCommand::Totp { c, passcode, biometric } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let st = load_state(&db, &key)?;
            let now = now_or(c.now)?;
            let code = if biometric {
                let b = secrets::key_from_file(&bio_path(&c.dir))?
                    .ok_or_else(|| cli_err(ErrorCode::InvalidState, "biometrics are not enabled on this device"))?;
                st.totp(UserFactor::Biometric(&b[..]), now)?
            } else {
                let p = Zeroizing::new(passcode.unwrap_or_default());
                st.totp(UserFactor::Passcode(&p), now)?
            };
            out!("{code}");
        }
        DeviceCommand::Unlink { c } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db, &c.dir)?;
            let st = load_state(&db, &key)?;
            wipe(&db, &c.dir)?;
            if c.json {
                out!("{}", json!({"unlinked": st.info().device_id}));
            } else {
                out!("unlinked locally from {} at \"{}\"", st.info().account, st.info().portal_name);
            }
        }
    }
    Ok(())
}
