//! `tessera device …`: a simulated phone app. The directory's database
//! stands in for the app's storage; its `storage_key` row stands in for the
//! platform keystore.

use crate::cli_err;
use crate::store::DeviceDb;
use crate::util::Common;
use crate::util::{now_or, random, CliRandom};
use clap::Subcommand;
use serde_json::json;
use tessera_core::link::{self, DeviceState, PendingDeviceLink, StatusProbe, UserFactor};
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
    /// Read the portal's status answer; wipes the account if it was unlinked.
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

const K_KEY: &str = "storage_key";
const K_STATE: &str = "state";
const K_PENDING: &str = "pending_link";
const K_BIO: &str = "biometric_secret";
const K_PROBE: &str = "status_probe";

fn storage_key(db: &DeviceDb) -> Result<Zeroizing<[u8; 32]>, Error> {
    let k = match db.get(K_KEY)? {
        Some(k) => k,
        None => {
            let k = random::<32>()?.to_vec();
            db.put(K_KEY, &k)?;
            k
        }
    };
    let arr: [u8; 32] =
        k.as_slice().try_into().map_err(|_| cli_err(ErrorCode::StateCorrupt, "the storage key is corrupt"))?;
    Ok(Zeroizing::new(arr))
}

fn load_state(db: &DeviceDb, key: &[u8; 32]) -> Result<DeviceState, Error> {
    let blob = db
        .get(K_STATE)?
        .ok_or_else(|| cli_err(ErrorCode::DeviceNotLinked, "this device is not linked to an account"))?;
    DeviceState::open(key, &blob)
}

fn wipe(db: &DeviceDb) -> Result<(), Error> {
    for k in [K_STATE, K_PENDING, K_BIO, K_PROBE] {
        db.delete(k)?;
    }
    Ok(())
}

fn info_json(i: &link::DeviceInfo) -> serde_json::Value {
    json!({"linked": true, "portal": i.portal_name, "portal_fingerprint": i.portal_fingerprint, "account": i.account,
           "device_id": i.device_id, "device_name": i.device_name, "linked_at": i.linked_at, "biometrics": i.biometrics})
}

pub fn run(cmd: DeviceCommand) -> Result<(), Error> {
    match cmd {
        DeviceCommand::Scan { c, qr } => {
            let o = link::scan_link_qr(&qr, now_or(c.now)?)?;
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
        DeviceCommand::Link { c, qr, name, passcode, biometric } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db)?;
            let now = now_or(c.now)?;
            let passcode = Zeroizing::new(passcode);
            let offer = link::scan_link_qr(&qr, now)?;
            let linked = db.get(K_STATE)?.is_some();
            let start = link::start_link(&offer, &name, &passcode, biometric, linked, now, &mut CliRandom)?;
            db.put(K_PENDING, &start.pending.seal(&key, &mut CliRandom))?;
            match &start.biometric_secret {
                Some(b) => db.put(K_BIO, b.expose())?,
                None => db.delete(K_BIO)?,
            }
            if c.json {
                out!("{}", json!({"request": start.request, "portal": offer.portal_name}));
            } else {
                out!("{}", start.request);
            }
        }
        DeviceCommand::LinkFinish { c, response } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db)?;
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
                        db.delete(K_BIO)?;
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
            let key = storage_key(&db)?;
            match db.get(K_STATE)? {
                Some(blob) => {
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
            let key = storage_key(&db)?;
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
            let key = storage_key(&db)?;
            let st = load_state(&db, &key)?;
            let probe =
                db.get(K_PROBE)?.ok_or_else(|| cli_err(ErrorCode::InvalidState, "no status request in progress"))?;
            let probe: StatusProbe =
                serde_json::from_slice(&probe).map_err(|_| cli_err(ErrorCode::StateCorrupt, "bad probe"))?;
            match st.read_status_answer(&probe, &response) {
                Ok(()) => {
                    db.delete(K_PROBE)?;
                    if c.json {
                        out!("{}", json!({"linked": true}));
                    } else {
                        out!("still linked");
                    }
                }
                Err(e) if e.code() == ErrorCode::DeviceRevoked => {
                    wipe(&db)?;
                    eprintln!("the portal unlinked this device: account wiped");
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        DeviceCommand::Totp { c, passcode, biometric } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db)?;
            let st = load_state(&db, &key)?;
            let now = now_or(c.now)?;
            let code = if biometric {
                let b = db
                    .get(K_BIO)?
                    .ok_or_else(|| cli_err(ErrorCode::InvalidState, "biometrics are not enabled on this device"))?;
                st.totp(UserFactor::Biometric(&b), now)?
            } else {
                let p = Zeroizing::new(passcode.unwrap_or_default());
                st.totp(UserFactor::Passcode(&p), now)?
            };
            out!("{code}");
        }
        DeviceCommand::Unlink { c } => {
            let db = DeviceDb::open(&c.dir)?;
            let key = storage_key(&db)?;
            let st = load_state(&db, &key)?;
            wipe(&db)?;
            if c.json {
                out!("{}", json!({"unlinked": st.info().device_id}));
            } else {
                out!("unlinked locally from {} at \"{}\"", st.info().account, st.info().portal_name);
            }
        }
    }
    Ok(())
}
