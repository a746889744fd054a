//! Reference storage for the simulators: one SQLite database per side.
//!
//! The portal side stores the rows of `tessera-host` (`StoredOffer`,
//! `StoredPendingLink`, `StoredDevice`, `StoredChallenge`, and flow 3's
//! `StoredAuthenticator`, `StoredOrder`, `StoredActivation`,
//! `StoredCredentials`) and implements
//! the host contract
//! (`docs/DESIGN.md`, "Host contract"); every `tessera` process plays one
//! portal server:
//!
//! 1. `BEGIN IMMEDIATE`, read the rows (one consistent snapshot);
//! 2. call tessera-host, which returns a [`PortalChange`];
//! 3. apply its writes in the same transaction as compare-and-sets: a write
//!    without `expected_version` is an `INSERT` (the key must be new), any
//!    other an `UPDATE … WHERE key = ? AND version = expected`;
//! 4. if an update changed no row or an insert hit an existing key, the
//!    decision was made on a stale row: roll back, read again and call
//!    again (at most [`MAX_ROUNDS`] times, then `STORAGE`);
//! 5. only after the commit does the command print the answer or result,
//!    refusals included.
//!
//! With SQLite the write lock taken by `BEGIN IMMEDIATE` already orders the
//! processes, so step 4 is the second line of defence here (unit tests
//! below drive it with stale decisions); stores without such a lock rely on
//! it alone. Read-only calls (status answers, listings) read one snapshot
//! without taking the write lock.
//!
//! Events go to the `events` table inside the same transaction (an outbox:
//! they exist exactly when the change they describe committed), as the JSON
//! of `tessera_host::PortalEvent`; the notifications they stand for are
//! printed after the commit.

use crate::cli_err;
use crate::secrets;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use tessera_host::{
    ActivationSettings, ErrorCode, PortalChange, RecordWrite, StoredActivation, StoredAuthenticator, StoredChallenge,
    StoredCredentials, StoredDevice, StoredOffer, StoredOrder, StoredPendingLink, TesseraError, Timestamp,
};

type Result<T> = std::result::Result<T, TesseraError>;

/// Rounds of read → decide → write before giving up with `STORAGE`.
pub const MAX_ROUNDS: u32 = 50;
/// `PRAGMA user_version` of the current layout (3: the rows of tessera-host;
/// 4: challenge rows; 5: flow 3's authenticators, orders, activations,
/// credentials and activation settings).
const SCHEMA_VERSION: i64 = 5;
/// The first layout that later ones upgrade from in place (older ones held
/// keys inside the database and are refused).
const FIRST_UPGRADABLE: i64 = 3;

pub fn db_err(e: rusqlite::Error) -> TesseraError {
    cli_err(ErrorCode::Storage, format!("database: {e}"))
}

/// Open (creating if needed, owner-only) a database: `schema` is its
/// layout-3 tables, `upgrades[i]` takes layout `FIRST_UPGRADABLE + i` to the
/// next. A new database gets both; one of an earlier layout is upgraded in
/// place, in one transaction.
fn open(path: &Path, schema: &str, upgrades: &[&str]) -> Result<Connection> {
    secrets::touch_private(path)?;
    let mut c = Connection::open(path).map_err(db_err)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    c.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
    let version =
        |c: &Connection| -> Result<i64> { c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db_err) };
    if version(&c)? != SCHEMA_VERSION {
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        match version(&tx)? {
            SCHEMA_VERSION => {}
            0 => {
                let tables: i64 =
                    tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(db_err)?;
                if tables > 0 {
                    return Err(cli_err(
                        ErrorCode::Storage,
                        format!(
                            "{} was made by an older tessera (keys inside the database, unversioned records); \
                             use a new directory",
                            path.display()
                        ),
                    ));
                }
                // Layout 3's tables, then every upgrade: a new database and
                // an upgraded one have the same tables.
                tx.execute_batch(schema).map_err(db_err)?;
                for sql in upgrades {
                    tx.execute_batch(sql).map_err(db_err)?;
                }
                tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(db_err)?;
            }
            v if (FIRST_UPGRADABLE..SCHEMA_VERSION).contains(&v) => {
                for from in v..SCHEMA_VERSION {
                    let step = usize::try_from(from - FIRST_UPGRADABLE).ok().and_then(|i| upgrades.get(i));
                    let sql =
                        step.ok_or_else(|| cli_err(ErrorCode::Internal, format!("no upgrade from layout {from}")))?;
                    tx.execute_batch(sql).map_err(db_err)?;
                }
                tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(db_err)?;
            }
            v => {
                return Err(cli_err(
                    ErrorCode::Storage,
                    format!("{} has layout {v}; this tessera reads layout {SCHEMA_VERSION}", path.display()),
                ))
            }
        }
        tx.commit().map_err(db_err)?;
    }
    Ok(c)
}

/// The portal's tables (layout 3; [`PORTAL_UPGRADES`] add the rest): the columns of the tessera-host rows. Device ids are
/// keys across all accounts: a device id is in `pending_links` at most once,
/// and the trigger keeps a pending link from reusing the id of a registered
/// device (even if hosts purge old pending links). Statuses are the rows'
/// own JSON names (`open`, `cancelled`, `active`, …); times are Unix seconds.
const PORTAL_SCHEMA: &str = "
CREATE TABLE portal (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE offers (offer_id TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at INTEGER NOT NULL,
    used_at INTEGER, version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE pending_links (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, device_name TEXT NOT NULL,
    confirm_by INTEGER NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX pending_links_by_account ON pending_links (account, status);
CREATE TABLE devices (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL,
    linked_at INTEGER NOT NULL, last_used_at INTEGER, status TEXT NOT NULL,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX devices_by_account ON devices (account);
CREATE TRIGGER pending_links_need_a_new_device_id BEFORE INSERT ON pending_links
    WHEN EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id)
    BEGIN SELECT RAISE(ABORT, 'this device id is registered'); END;
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, json TEXT NOT NULL);
";

/// Layout 4: challenges (flow 4, and flow 2's link challenges). `device_ids`
/// is the JSON array of the devices that can answer; `kind` is `login`,
/// `transaction` or `linkDevice`.
const CHALLENGES_TABLE: &str = "
CREATE TABLE challenges (challenge_id TEXT PRIMARY KEY, account TEXT NOT NULL, device_ids TEXT NOT NULL,
    kind TEXT NOT NULL, expires_at INTEGER NOT NULL, status TEXT NOT NULL,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX challenges_by_account ON challenges (account, status);
ALTER TABLE devices ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
";

/// Layout 5: activation of offline authenticators (flow 3). Keys are the
/// rows' own: an authenticator by serial number, an order by user ID, an
/// activation by its id, credentials by account. A device row of an
/// activated authenticator has its serial number and the time it becomes
/// usable. `settings` holds the portal's activation settings (the JSON of
/// `tessera_host::ActivationSettings`, row `activation`).
const ACTIVATION_TABLES: &str = "
CREATE TABLE authenticators (serial TEXT PRIMARY KEY, account TEXT NOT NULL, user_id TEXT, status TEXT NOT NULL,
    imported_at INTEGER NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX authenticators_by_status ON authenticators (status, imported_at, serial);
CREATE TABLE orders (user_id TEXT PRIMARY KEY, account TEXT NOT NULL, serial TEXT NOT NULL,
    expires_at INTEGER NOT NULL, status TEXT NOT NULL, activation_id TEXT,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX orders_by_account ON orders (account);
CREATE TABLE activations (activation_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, account TEXT NOT NULL,
    serial TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, failures INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX activations_by_user ON activations (user_id);
CREATE TABLE credentials (account TEXT PRIMARY KEY, recovery_codes_left INTEGER NOT NULL, locked INTEGER NOT NULL,
    pending_from INTEGER, version INTEGER NOT NULL, sealed BLOB NOT NULL);
ALTER TABLE devices ADD COLUMN serial TEXT;
ALTER TABLE devices ADD COLUMN usable_from INTEGER;
CREATE TABLE settings (name TEXT PRIMARY KEY, json TEXT NOT NULL);
";

/// Upgrades of the portal's layout, from layout 3.
const PORTAL_UPGRADES: &[&str] = &[CHALLENGES_TABLE, ACTIVATION_TABLES];

const DEVICE_SCHEMA: &str = "
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// Layouts 4 and 5 changed nothing on the device side (their keys are new
/// `kv` rows: an offline authenticator's state is `token_state`).
const DEVICE_UPGRADES: &[&str] = &["", ""];

pub struct PortalDb {
    pub conn: Connection,
}

pub struct DeviceDb {
    pub conn: Connection,
}

fn db_path(dir: &Path, file: &str, create: bool) -> Result<PathBuf> {
    if create {
        secrets::create_private_dir(dir)?;
    } else if !dir.join(file).exists() {
        return Err(cli_err(ErrorCode::Storage, format!("{} has no {file}; run init first", dir.display())));
    }
    Ok(dir.join(file))
}

// SQLite integers are i64; times are Unix seconds (checked by the core to
// be in the years 2000..3000, so far from i64::MAX).
fn secs(t: Timestamp) -> i64 {
    i64::try_from(t.secs()).unwrap_or(i64::MAX)
}

fn time(r: &Row<'_>, i: usize) -> rusqlite::Result<Timestamp> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map(Timestamp::from_secs).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn opt_time(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    let v: Option<i64> = r.get(i)?;
    v.map(|v| u64::try_from(v).map(Timestamp::from_secs).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v)))
        .transpose()
}

/// The JSON name of a row's status enum (`"open"`, `"unlinked"`, …): the
/// names are tessera-host's, not the CLI's.
pub fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn status_col<T: DeserializeOwned>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_value(serde_json::Value::String(s))
        .map_err(|_| rusqlite::Error::InvalidColumnType(i, "status".into(), rusqlite::types::Type::Text))
}

const OFFER_COLS: &str = "offer_id, account, expires_at, used_at, version, sealed";
const PENDING_COLS: &str = "device_id, account, device_name, confirm_by, attempts, status, version, sealed";
const DEVICE_COLS: &str =
    "device_id, account, name, linked_at, last_used_at, status, version, sealed, locked, serial, usable_from";
const CHALLENGE_COLS: &str = "challenge_id, account, device_ids, kind, expires_at, status, version, sealed";
const AUTHENTICATOR_COLS: &str = "serial, account, user_id, status, imported_at, version, sealed";
const ORDER_COLS: &str = "user_id, account, serial, expires_at, status, activation_id, version, sealed";
const ACTIVATION_COLS: &str =
    "activation_id, user_id, account, serial, step, status, failures, expires_at, version, sealed";
const CREDENTIALS_COLS: &str = "account, recovery_codes_left, locked, pending_from, version, sealed";

fn offer_row(r: &Row<'_>) -> rusqlite::Result<StoredOffer> {
    Ok(StoredOffer {
        offer_id: r.get(0)?,
        account: r.get(1)?,
        expires_at: time(r, 2)?,
        used_at: opt_time(r, 3)?,
        version: r.get(4)?,
        sealed: r.get(5)?,
    })
}

fn pending_row(r: &Row<'_>) -> rusqlite::Result<StoredPendingLink> {
    Ok(StoredPendingLink {
        device_id: r.get(0)?,
        account: r.get(1)?,
        device_name: r.get(2)?,
        confirm_by: time(r, 3)?,
        attempts: r.get(4)?,
        status: status_col(r, 5)?,
        version: r.get(6)?,
        sealed: r.get(7)?,
    })
}

fn device_row(r: &Row<'_>) -> rusqlite::Result<StoredDevice> {
    Ok(StoredDevice {
        device_id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        linked_at: time(r, 3)?,
        last_used_at: opt_time(r, 4)?,
        status: status_col(r, 5)?,
        version: r.get(6)?,
        sealed: r.get(7)?,
        locked: r.get(8)?,
        serial: r.get(9)?,
        usable_from: opt_time(r, 10)?,
    })
}

fn authenticator_row(r: &Row<'_>) -> rusqlite::Result<StoredAuthenticator> {
    Ok(StoredAuthenticator {
        serial: r.get(0)?,
        account: r.get(1)?,
        user_id: r.get(2)?,
        status: status_col(r, 3)?,
        imported_at: time(r, 4)?,
        version: r.get(5)?,
        sealed: r.get(6)?,
    })
}

fn order_row(r: &Row<'_>) -> rusqlite::Result<StoredOrder> {
    Ok(StoredOrder {
        user_id: r.get(0)?,
        account: r.get(1)?,
        serial: r.get(2)?,
        expires_at: time(r, 3)?,
        status: status_col(r, 4)?,
        activation_id: r.get(5)?,
        version: r.get(6)?,
        sealed: r.get(7)?,
    })
}

fn activation_row(r: &Row<'_>) -> rusqlite::Result<StoredActivation> {
    Ok(StoredActivation {
        activation_id: r.get(0)?,
        user_id: r.get(1)?,
        account: r.get(2)?,
        serial: r.get(3)?,
        step: status_col(r, 4)?,
        status: status_col(r, 5)?,
        failures: r.get(6)?,
        expires_at: time(r, 7)?,
        version: r.get(8)?,
        sealed: r.get(9)?,
    })
}

fn credentials_row(r: &Row<'_>) -> rusqlite::Result<StoredCredentials> {
    Ok(StoredCredentials {
        account: r.get(0)?,
        recovery_codes_left: r.get(1)?,
        locked: r.get(2)?,
        pending_from: opt_time(r, 3)?,
        version: r.get(4)?,
        sealed: r.get(5)?,
    })
}

fn challenge_row(r: &Row<'_>) -> rusqlite::Result<StoredChallenge> {
    let ids: String = r.get(2)?;
    Ok(StoredChallenge {
        challenge_id: r.get(0)?,
        account: r.get(1)?,
        device_ids: serde_json::from_str(&ids)
            .map_err(|_| rusqlite::Error::InvalidColumnType(2, "device_ids".into(), rusqlite::types::Type::Text))?,
        kind: status_col(r, 3)?,
        expires_at: time(r, 4)?,
        status: status_col(r, 5)?,
        version: r.get(6)?,
        sealed: r.get(7)?,
    })
}

/// Reads on a snapshot (the connection of a transaction).
pub mod read {
    use super::*;

    fn all<T>(
        c: &Connection,
        sql: &str,
        p: impl rusqlite::Params,
        f: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = c.prepare(sql).map_err(db_err)?;
        let rows = st.query_map(p, f).map_err(db_err)?;
        rows.collect::<std::result::Result<_, _>>().map_err(db_err)
    }

    pub fn offer(c: &Connection, offer_id: &str) -> Result<Option<StoredOffer>> {
        c.query_row(&format!("SELECT {OFFER_COLS} FROM offers WHERE offer_id = ?1"), [offer_id], offer_row)
            .optional()
            .map_err(db_err)
    }

    pub fn pending(c: &Connection, device_id: &str) -> Result<Option<StoredPendingLink>> {
        c.query_row(&format!("SELECT {PENDING_COLS} FROM pending_links WHERE device_id = ?1"), [device_id], pending_row)
            .optional()
            .map_err(db_err)
    }

    /// The account's pending links whose row says `open`, by device id (the
    /// rows `Portal::confirm_link` takes, in the order every runner of
    /// `vectors/scenarios` passes them).
    pub fn open_pendings(c: &Connection, account: &str) -> Result<Vec<StoredPendingLink>> {
        let open = name_of(&tessera_host::PendingStatus::Open);
        all(
            c,
            &format!("SELECT {PENDING_COLS} FROM pending_links WHERE account = ?1 AND status = ?2 ORDER BY device_id"),
            params![account, open],
            pending_row,
        )
    }

    pub fn device(c: &Connection, device_id: &str) -> Result<Option<StoredDevice>> {
        c.query_row(&format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1"), [device_id], device_row)
            .optional()
            .map_err(db_err)
    }

    /// The device row with this id of this account.
    pub fn device_of(c: &Connection, account: &str, device_id: &str) -> Result<Option<StoredDevice>> {
        Ok(device(c, device_id)?.filter(|d| d.account == account))
    }

    /// The account's device rows by device id: the rows a challenge (or a
    /// flow-2 offer) is made for, in the order every runner of
    /// `vectors/scenarios` passes them.
    pub fn devices_by_id(c: &Connection, account: &str) -> Result<Vec<StoredDevice>> {
        all(
            c,
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE account = ?1 ORDER BY device_id"),
            [account],
            device_row,
        )
    }

    pub fn challenge(c: &Connection, challenge_id: &str) -> Result<Option<StoredChallenge>> {
        c.query_row(
            &format!("SELECT {CHALLENGE_COLS} FROM challenges WHERE challenge_id = ?1"),
            [challenge_id],
            challenge_row,
        )
        .optional()
        .map_err(db_err)
    }

    /// The rows of the devices a challenge names, as stored now (a device
    /// row that is gone is left out; tessera-host decides what that means).
    pub fn challenge_devices(c: &Connection, ch: &StoredChallenge) -> Result<Vec<StoredDevice>> {
        let mut rows = Vec::with_capacity(ch.device_ids.len());
        for id in &ch.device_ids {
            rows.extend(device(c, id)?);
        }
        Ok(rows)
    }

    pub fn devices_of(c: &Connection, account: &str) -> Result<Vec<StoredDevice>> {
        all(
            c,
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE account = ?1 ORDER BY linked_at, device_id"),
            [account],
            device_row,
        )
    }

    pub fn authenticator(c: &Connection, serial: &str) -> Result<Option<StoredAuthenticator>> {
        c.query_row(
            &format!("SELECT {AUTHENTICATOR_COLS} FROM authenticators WHERE serial = ?1"),
            [serial],
            authenticator_row,
        )
        .optional()
        .map_err(db_err)
    }

    /// The authenticator in stock imported first (by serial among those
    /// of one import): the one an order sends unless told otherwise.
    pub fn oldest_in_stock(c: &Connection) -> Result<Option<StoredAuthenticator>> {
        let in_stock = name_of(&tessera_host::AuthenticatorStatus::InStock);
        c.query_row(
            &format!(
                "SELECT {AUTHENTICATOR_COLS} FROM authenticators WHERE status = ?1 ORDER BY imported_at, serial LIMIT 1"
            ),
            [in_stock],
            authenticator_row,
        )
        .optional()
        .map_err(db_err)
    }

    /// Which of these serial numbers have an authenticator row (the
    /// `already_imported` of an import).
    pub fn imported_serials(c: &Connection, serials: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for s in serials {
            if authenticator(c, s)?.is_some() {
                known.push(s.clone());
            }
        }
        Ok(known)
    }

    /// Every authenticator row, in stock first, each group by import time.
    pub fn authenticators(c: &Connection) -> Result<Vec<StoredAuthenticator>> {
        all(
            c,
            &format!("SELECT {AUTHENTICATOR_COLS} FROM authenticators ORDER BY imported_at, serial"),
            [],
            authenticator_row,
        )
    }

    pub fn order(c: &Connection, user_id: &str) -> Result<Option<StoredOrder>> {
        c.query_row(&format!("SELECT {ORDER_COLS} FROM orders WHERE user_id = ?1"), [user_id], order_row)
            .optional()
            .map_err(db_err)
    }

    pub fn activation(c: &Connection, activation_id: &str) -> Result<Option<StoredActivation>> {
        c.query_row(
            &format!("SELECT {ACTIVATION_COLS} FROM activations WHERE activation_id = ?1"),
            [activation_id],
            activation_row,
        )
        .optional()
        .map_err(db_err)
    }

    pub fn credentials(c: &Connection, account: &str) -> Result<Option<StoredCredentials>> {
        c.query_row(
            &format!("SELECT {CREDENTIALS_COLS} FROM credentials WHERE account = ?1"),
            [account],
            credentials_row,
        )
        .optional()
        .map_err(db_err)
    }

    /// The portal's activation settings (the API's defaults until set).
    pub fn activation_settings(c: &Connection) -> Result<ActivationSettings> {
        let json: Option<String> = c
            .query_row("SELECT json FROM settings WHERE name = 'activation'", [], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        match json {
            None => Ok(ActivationSettings::default()),
            Some(j) => serde_json::from_str(&j)
                .map_err(|e| cli_err(ErrorCode::StateCorrupt, format!("the stored activation settings: {e}"))),
        }
    }

    /// Whether a pending link or a device of any account has this id.
    pub fn device_id_seen(c: &Connection, device_id: &str) -> Result<bool> {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM pending_links WHERE device_id = ?1)
                 OR EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
            [device_id],
            |r| r.get(0),
        )
        .map_err(db_err)
    }

    /// The stored events after id `after`, oldest first, at most `limit`:
    /// `(id, at, json)`.
    pub fn events_after(c: &Connection, after: i64, limit: u32) -> Result<Vec<(i64, u64, String)>> {
        all(c, "SELECT id, at, json FROM events WHERE id > ?1 ORDER BY id LIMIT ?2", params![after, limit], |r| {
            Ok((r.get(0)?, time(r, 1)?.secs(), r.get(2)?))
        })
    }
}

/// How applying one change's writes ended.
#[derive(Debug)]
pub enum Applied {
    /// Every write applied.
    Done,
    /// A row was no longer (or already) there as the decision assumed:
    /// another server wrote first. Nothing may be kept.
    Conflict(String),
}

/// How [`PortalDb::run`] ended.
#[derive(Debug)]
pub enum Ran<T> {
    /// The change committed (or had nothing to write).
    Stored(PortalChange, T),
    /// Conflicts every round: nothing was stored; the last decision's value
    /// (e.g. a link answer's `if_not_stored`).
    GaveUp(T),
}

impl<T> Ran<T> {
    /// The committed change, or `STORAGE` when the store gave up.
    pub fn stored(self) -> Result<(PortalChange, T)> {
        match self {
            Ran::Stored(c, v) => Ok((c, v)),
            Ran::GaveUp(_) => Err(gave_up()),
        }
    }
}

pub fn gave_up() -> TesseraError {
    cli_err(ErrorCode::Storage, format!("gave up after {MAX_ROUNDS} rounds of write conflicts; try again"))
}

fn is_conflict(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation
            && matches!(f.extended_code,
                ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_TRIGGER))
}

/// One compare-and-set: `INSERT` of the whole row, or `UPDATE` of every
/// column but the key where the stored version is the expected one.
fn cas(
    c: &Connection,
    table: &str,
    cols: &str,
    values: &[&dyn rusqlite::ToSql],
    expected: Option<i64>,
) -> rusqlite::Result<usize> {
    let names: Vec<&str> = cols.split(", ").collect();
    match expected {
        None => {
            let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            c.execute(&format!("INSERT INTO {table} ({cols}) VALUES ({})", marks.join(", ")), values)
        }
        Some(v) => {
            let sets: Vec<String> =
                names.iter().enumerate().skip(1).map(|(i, n)| format!("{n} = ?{}", i + 1)).collect();
            let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
            all.push(&v);
            c.execute(
                &format!(
                    "UPDATE {table} SET {} WHERE {} = ?1 AND version = ?{}",
                    sets.join(", "),
                    names[0],
                    names.len() + 1
                ),
                all.as_slice(),
            )
        }
    }
}

/// One row write: `Ok(true)` when it applied, `Ok(false)` on a conflict.
fn write_row(c: &Connection, w: &RecordWrite) -> Result<bool> {
    let expected = w.expected_version();
    let r = match w {
        RecordWrite::Offer { row: o, .. } => cas(
            c,
            "offers",
            OFFER_COLS,
            params![o.offer_id, o.account, secs(o.expires_at), o.used_at.map(secs), o.version, o.sealed],
            expected,
        ),
        RecordWrite::PendingLink { row: p, .. } => cas(
            c,
            "pending_links",
            PENDING_COLS,
            params![
                p.device_id,
                p.account,
                p.device_name,
                secs(p.confirm_by),
                p.attempts,
                name_of(&p.status),
                p.version,
                p.sealed
            ],
            expected,
        ),
        RecordWrite::Device { row: d, .. } => cas(
            c,
            "devices",
            DEVICE_COLS,
            params![
                d.device_id,
                d.account,
                d.name,
                secs(d.linked_at),
                d.last_used_at.map(secs),
                name_of(&d.status),
                d.version,
                d.sealed,
                d.locked,
                d.serial,
                d.usable_from.map(secs)
            ],
            expected,
        ),
        RecordWrite::Challenge { row: ch, .. } => {
            let ids = serde_json::to_string(&ch.device_ids).map_err(|_| cli_err(ErrorCode::Internal, "device ids"))?;
            cas(
                c,
                "challenges",
                CHALLENGE_COLS,
                params![
                    ch.challenge_id,
                    ch.account,
                    ids,
                    name_of(&ch.kind),
                    secs(ch.expires_at),
                    name_of(&ch.status),
                    ch.version,
                    ch.sealed
                ],
                expected,
            )
        }
        RecordWrite::Authenticator { row: a, .. } => cas(
            c,
            "authenticators",
            AUTHENTICATOR_COLS,
            params![a.serial, a.account, a.user_id, name_of(&a.status), secs(a.imported_at), a.version, a.sealed],
            expected,
        ),
        RecordWrite::Order { row: o, .. } => cas(
            c,
            "orders",
            ORDER_COLS,
            params![
                o.user_id,
                o.account,
                o.serial,
                secs(o.expires_at),
                name_of(&o.status),
                o.activation_id,
                o.version,
                o.sealed
            ],
            expected,
        ),
        RecordWrite::Activation { row: a, .. } => cas(
            c,
            "activations",
            ACTIVATION_COLS,
            params![
                a.activation_id,
                a.user_id,
                a.account,
                a.serial,
                name_of(&a.step),
                name_of(&a.status),
                a.failures,
                secs(a.expires_at),
                a.version,
                a.sealed
            ],
            expected,
        ),
        RecordWrite::Credentials { row: cr, .. } => cas(
            c,
            "credentials",
            CREDENTIALS_COLS,
            params![cr.account, cr.recovery_codes_left, cr.locked, cr.pending_from.map(secs), cr.version, cr.sealed],
            expected,
        ),
    };
    match r {
        Ok(n) => Ok(n == 1),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) => Err(db_err(e)),
    }
}

fn describe(w: &RecordWrite) -> String {
    let (table, key) = match w {
        RecordWrite::Offer { row, .. } => ("offer", &row.offer_id),
        RecordWrite::PendingLink { row, .. } => ("pending link", &row.device_id),
        RecordWrite::Device { row, .. } => ("device", &row.device_id),
        RecordWrite::Challenge { row, .. } => ("challenge", &row.challenge_id),
        RecordWrite::Authenticator { row, .. } => ("authenticator", &row.serial),
        RecordWrite::Order { row, .. } => ("order", &row.user_id),
        RecordWrite::Activation { row, .. } => ("activation", &row.activation_id),
        RecordWrite::Credentials { row, .. } => ("credentials of", &row.account),
    };
    match w.expected_version() {
        None => format!("insert of {table} {key} found it already there"),
        Some(v) => format!("update of {table} {key} found it no longer at version {v}"),
    }
}

impl PortalDb {
    pub fn open(dir: &Path, create: bool) -> Result<Self> {
        Ok(PortalDb { conn: open(&db_path(dir, "portal.db", create)?, PORTAL_SCHEMA, PORTAL_UPGRADES)? })
    }

    /// The portal's name and key fingerprint (the seed is not in here).
    pub fn identity(&self) -> Result<Option<(String, String)>> {
        self.conn
            .query_row("SELECT name, fingerprint FROM portal WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db_err)
    }

    /// Record the portal's identity; `store_key` runs inside the transaction
    /// (it writes the key file), so a failed key write leaves no portal.
    pub fn create_identity(
        &mut self,
        name: &str,
        fingerprint: &str,
        store_key: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        match tx.execute("INSERT INTO portal (id, name, fingerprint) VALUES (1, ?1, ?2)", params![name, fingerprint]) {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => {
                return Err(cli_err(ErrorCode::InvalidState, "this directory already holds a portal"))
            }
            Err(e) => return Err(db_err(e)),
        }
        store_key()?;
        tx.commit().map_err(db_err)
    }

    /// Run `f` on a consistent snapshot (a read transaction, rolled back).
    pub fn read<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(db_err)?;
        f(&tx)
    }

    /// Change the activation settings: `edit` gets the stored ones and
    /// returns the new ones, in one IMMEDIATE transaction (two operators'
    /// edits of different settings both stay).
    pub fn update_activation_settings(
        &mut self,
        edit: impl FnOnce(ActivationSettings) -> Result<ActivationSettings>,
    ) -> Result<ActivationSettings> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let new = edit(read::activation_settings(&tx)?)?;
        let json = serde_json::to_string(&new).map_err(|_| cli_err(ErrorCode::Internal, "settings encoding"))?;
        tx.execute(
            "INSERT INTO settings (name, json) VALUES ('activation', ?1)
                 ON CONFLICT(name) DO UPDATE SET json = excluded.json",
            [json],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(new)
    }

    /// Apply a change decided without reading (a new offer) in one
    /// IMMEDIATE transaction.
    pub fn apply(&mut self, change: &PortalChange, at: Timestamp) -> Result<Applied> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let applied = write_all(&tx, change, at)?;
        if let Applied::Done = applied {
            tx.commit().map_err(db_err)?;
        }
        Ok(applied)
    }

    /// One portal operation under the host contract: in one IMMEDIATE
    /// transaction, let `decide` read and call tessera-host, then apply the
    /// change it returned; on a conflict roll back and decide again.
    pub fn run<T>(
        &mut self,
        at: Timestamp,
        mut decide: impl FnMut(&Connection) -> Result<(PortalChange, T)>,
    ) -> Result<Ran<T>> {
        let mut last = None;
        for _ in 0..MAX_ROUNDS {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let (change, value) = decide(&tx)?;
            if let Applied::Done = write_all(&tx, &change, at)? {
                tx.commit().map_err(db_err)?;
                return Ok(Ran::Stored(change, value));
            }
            // Dropping `tx` rolls back whatever part was written.
            last = Some(value);
        }
        last.map(Ran::GaveUp).ok_or_else(gave_up)
    }
}

/// Every write of one change, then its events, inside `tx`. On a conflict
/// the caller must roll back (drop the transaction).
fn write_all(tx: &Connection, change: &PortalChange, at: Timestamp) -> Result<Applied> {
    for w in &change.writes {
        if !write_row(tx, w)? {
            return Ok(Applied::Conflict(describe(w)));
        }
    }
    for e in &change.events {
        let json = serde_json::to_string(e).map_err(|_| cli_err(ErrorCode::Internal, "event encoding"))?;
        tx.execute("INSERT INTO events (at, json) VALUES (?1, ?2)", params![secs(at), json]).map_err(db_err)?;
    }
    Ok(Applied::Done)
}

impl DeviceDb {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(DeviceDb { conn: open(&db_path(dir, "device.db", true)?, DEVICE_SCHEMA, DEVICE_UPGRADES)? })
    }
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
    }
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db_err)?;
        Ok(())
    }
    pub fn delete(&self, key: &str) -> Result<()> {
        self.conn.execute("DELETE FROM kv WHERE key = ?1", [key]).map_err(db_err)?;
        Ok(())
    }

    /// Run `f` holding the database's write lock (`BEGIN IMMEDIATE`): a
    /// read-change-write of the state (a signed answer's counter) that no
    /// other process of the same device interleaves with. Committed when
    /// `f` succeeds, rolled back otherwise.
    pub fn exclusive<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(db_err)?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// The compare-and-set and retry path, driven with stale decisions (under
/// SQLite's write lock the process races in `tests/cli.rs` never reach it).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tessera_host::{Device, LinkChoices, LinkLookup, OfferSettings, Portal, RecordWrite};

    const T: u64 = 1_800_000_000;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    struct Setup {
        dir: PathBuf,
        db: PortalDb,
        portal: Arc<Portal>,
        offer: PortalChange,
        pending_insert: RecordWrite,
        device_id: String,
    }

    impl Setup {
        fn device(&mut self) -> StoredDevice {
            let id = self.device_id.clone();
            self.db.read(|c| read::device(c, &id)).unwrap().unwrap()
        }
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A portal database with one confirmed device, made through `run`.
    fn setup(name: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("tessera-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut db = PortalDb::open(&dir, true).unwrap();
        let portal = Arc::new(Portal::generate("Example Bank".into()).unwrap());
        let offer = portal.create_offer("ana".into(), OfferSettings::default(), t(T)).unwrap();
        assert!(matches!(db.apply(&offer.change, t(T)).unwrap(), Applied::Done));
        let phone = Device::new(vec![7; 32]).unwrap();
        let choices = LinkChoices { device_name: "Phone".into(), passcode: "493817".into(), biometrics: false };
        let pending = phone.start_link(offer.qr_text.clone(), choices, None, t(T), None).unwrap();
        let request = Arc::clone(&portal).open_link_request(pending.request().unwrap()).unwrap();
        let (change, answer) = db
            .run(t(T), |c| {
                let lookup = LinkLookup {
                    offer: read::offer(c, &request.offer_id())?,
                    device_key_seen: read::device_id_seen(c, &request.device_id())?,
                };
                let a = request.accept(lookup, t(T))?;
                Ok((a.change, a.answer))
            })
            .unwrap()
            .stored()
            .unwrap();
        let pending_insert =
            change.writes.iter().find(|w| matches!(w, RecordWrite::PendingLink { .. })).unwrap().clone();
        let linked = pending.finish(answer).unwrap();
        let (_, verdict) = db
            .run(t(T), |c| {
                let l = portal.confirm_link(read::open_pendings(c, "ana")?, linked.check_code.clone(), t(T))?;
                Ok((l.change, l.verdict))
            })
            .unwrap()
            .stored()
            .unwrap();
        verdict.check().unwrap();
        Setup { dir, db, portal, offer: offer.change, pending_insert, device_id: request.device_id() }
    }

    #[test]
    fn a_decision_made_on_a_stale_row_is_made_again() {
        let mut s = setup("stale");
        let stale = s.device();
        assert_eq!(stale.version, 1);
        // Another server renames the device first.
        let renamed = s.portal.rename_device(stale.clone(), "Renamed".into(), t(T + 1)).unwrap();
        assert!(matches!(s.db.apply(&renamed, t(T + 1)).unwrap(), Applied::Done));
        // This server decided to unlink from the row it read before.
        let mut rounds = 0;
        let (portal, id) = (s.portal.clone(), s.device_id.clone());
        let ran =
            s.db.run(t(T + 2), |c| {
                rounds += 1;
                let row = if rounds == 1 { stale.clone() } else { read::device(c, &id)?.unwrap() };
                Ok((portal.unlink_device(row, t(T + 2))?, ()))
            })
            .unwrap();
        assert!(matches!(ran, Ran::Stored(..)));
        assert_eq!(rounds, 2, "the conflict made it read again");
        let now = s.device();
        assert_eq!((now.version, name_of(&now.status).as_str(), now.name.as_str()), (3, "unlinked", "Renamed"));
        // The stale unlink's event was not logged; the committed one was, once.
        let unlinks: i64 = s
            .db
            .conn
            .query_row("SELECT count(*) FROM events WHERE json LIKE '%\"kind\":\"deviceUnlinked\"%'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(unlinks, 1);
    }

    #[test]
    fn a_conflict_keeps_none_of_the_change() {
        let mut s = setup("atomic");
        let before = s.device();
        // A rename (applies) together with an insert of an existing offer
        // (conflicts): neither stays.
        let mut both = s.portal.rename_device(before.clone(), "Renamed".into(), t(T + 1)).unwrap();
        both.writes.extend(s.offer.writes.clone());
        let a = s.db.apply(&both, t(T + 1)).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains("already there")), "{a:?}");
        assert_eq!(s.device(), before);
        // An update that expects another version changes nothing either.
        let twice = s.portal.rename_device(before, "Other".into(), t(T + 2)).unwrap();
        assert!(matches!(s.db.apply(&twice, t(T + 2)).unwrap(), Applied::Done));
        let a = s.db.apply(&twice, t(T + 3)).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains("no longer at version 1")), "{a:?}");
        assert_eq!(s.device().name, "Other");
    }

    #[test]
    fn a_registered_device_id_cannot_become_pending_again() {
        let mut s = setup("tombstone");
        // Even if a host purged the pending link, its device id stays taken.
        s.db.conn.execute("DELETE FROM pending_links", []).unwrap();
        let change = PortalChange { writes: vec![s.pending_insert.clone()], events: vec![] };
        assert!(matches!(s.db.apply(&change, t(T)).unwrap(), Applied::Conflict(_)));
        let n: i64 = s.db.conn.query_row("SELECT count(*) FROM pending_links", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        let id = s.device_id.clone();
        assert!(s.db.read(|c| read::device_id_seen(c, &id)).unwrap());
    }

    #[test]
    fn endless_conflicts_end_in_storage() {
        let mut s = setup("endless");
        let stale = s.device();
        let renamed = s.portal.rename_device(stale.clone(), "Renamed".into(), t(T + 1)).unwrap();
        assert!(matches!(s.db.apply(&renamed, t(T + 1)).unwrap(), Applied::Done));
        let mut rounds = 0;
        let portal = s.portal.clone();
        let ran =
            s.db.run(t(T + 2), |_| {
                rounds += 1;
                Ok((portal.unlink_device(stale.clone(), t(T + 2))?, rounds))
            })
            .unwrap();
        assert!(matches!(ran, Ran::GaveUp(n) if n == MAX_ROUNDS));
        assert_eq!(
            ran_code(s.db.run(t(T + 2), |_| Ok((portal.unlink_device(stale.clone(), t(T + 2))?, ())))),
            ErrorCode::Storage
        );
        assert_eq!(name_of(&s.device().status), "active");
    }

    #[test]
    fn challenge_rows_round_trip_and_are_compared_and_set() {
        let mut s = setup("challenge");
        let device = s.device();
        let issued = s
            .portal
            .create_challenge(vec![device], tessera_host::Approval::Login, Default::default(), t(T + 10))
            .unwrap();
        let written = match &issued.change.writes[..] {
            [RecordWrite::Challenge { row, expected_version: None }] => row.clone(),
            w => panic!("{w:?}"),
        };
        assert!(matches!(s.db.apply(&issued.change, t(T + 10)).unwrap(), Applied::Done));
        let id = issued.challenge_id.clone();
        let stored = s.db.read(|c| read::challenge(c, &id)).unwrap().unwrap();
        assert_eq!(stored, written);
        assert_eq!(s.db.read(|c| read::challenge_devices(c, &stored)).unwrap(), vec![s.device()]);
        // The same insert again is a conflict, and changes nothing.
        let a = s.db.apply(&issued.change, t(T + 11)).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains("insert of challenge")), "{a:?}");
        // A wrong answer counts on the device row; a second one decided
        // from the same (now stale) rows must not overwrite that count.
        let (portal, before) = (s.portal.clone(), s.device());
        let check = portal.verify_answer(stored.clone(), vec![before.clone()], "00000000".into(), t(T + 12)).unwrap();
        assert!(!check.change.writes.is_empty());
        assert!(matches!(s.db.apply(&check.change, t(T + 12)).unwrap(), Applied::Done));
        assert_eq!(s.device().version, before.version + 1);
        let again = portal.verify_answer(stored, vec![before.clone()], "00000000".into(), t(T + 13)).unwrap();
        assert!(matches!(s.db.apply(&again.change, t(T + 13)).unwrap(), Applied::Conflict(_)));
        assert_eq!(s.device().version, before.version + 1);
    }

    #[test]
    fn activation_rows_round_trip_and_are_compared_and_set() {
        use tessera_host::{ActivationSettings, OfflineAuthenticator};
        let mut s = setup("activation");
        let portal = s.portal.clone();
        let settings = ActivationSettings { hash_iterations: Some(10_000), ..Default::default() };
        // The settings row.
        let stored = s.db.update_activation_settings(|_| Ok(settings.clone())).unwrap();
        assert_eq!(s.db.read(read::activation_settings).unwrap(), stored);
        // Import: one authenticator row, read back as written.
        let token = OfflineAuthenticator::new(vec![9; 32]).unwrap();
        let made = token.create("TS00012345".into()).unwrap();
        let file = format!("tessera-factory-records v1\n{}\n", made.factory_record);
        let import = portal.import_devices(file, vec![], t(T)).unwrap();
        assert!(matches!(s.db.apply(&import.change, t(T)).unwrap(), Applied::Done));
        let auth = s.db.read(|c| read::authenticator(c, "TS00012345")).unwrap().unwrap();
        assert_eq!(RecordWrite::Authenticator { row: auth.clone(), expected_version: None }, import.change.writes[0]);
        assert_eq!(s.db.read(read::oldest_in_stock).unwrap(), Some(auth.clone()));
        assert_eq!(
            s.db.read(|c| read::imported_serials(c, &["TS00012345".into(), "X".into()])).unwrap(),
            ["TS00012345"]
        );
        // Order and start: the order and activation rows as written.
        let order = portal.order_device("ana".into(), "271828".into(), auth, settings.clone(), t(T + 1)).unwrap();
        assert!(matches!(s.db.apply(&order.change, t(T + 1)).unwrap(), Applied::Done));
        assert_eq!(s.db.read(read::oldest_in_stock).unwrap(), None);
        let order_row = s.db.read(|c| read::order(c, &order.user_id)).unwrap().unwrap();
        let auth = s.db.read(|c| read::authenticator(c, "TS00012345")).unwrap().unwrap();
        let started = portal.start_activation(order_row.clone(), auth.clone(), settings.clone(), t(T + 2)).unwrap();
        assert!(matches!(s.db.apply(&started.change, t(T + 2)).unwrap(), Applied::Done));
        let id = started.activation_id.clone();
        let row = s.db.read(|c| read::activation(c, &id)).unwrap().unwrap();
        let written = started.change.writes.iter().find_map(|w| match w {
            RecordWrite::Activation { row, .. } => Some(row.clone()),
            _ => None,
        });
        assert_eq!(Some(row.clone()), written);
        let order_row = s.db.read(|c| read::order(c, &order.user_id)).unwrap().unwrap();
        // Two wrong entries decided from the same row: the second is stale
        // and changes nothing.
        let wrong = |row| {
            portal.activation_next(row, order_row.clone(), auth.clone(), None, "0".into(), settings.clone(), t(T + 3))
        };
        let first = wrong(row.clone()).unwrap();
        let second = wrong(row.clone()).unwrap();
        assert!(matches!(s.db.apply(&first.change, t(T + 3)).unwrap(), Applied::Done));
        let a = s.db.apply(&second.change, t(T + 3)).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains(&format!("update of activation {id}"))), "{a:?}");
        let now = s.db.read(|c| read::activation(c, &id)).unwrap().unwrap();
        assert_eq!((now.version, now.failures), (row.version + 1, 1));
    }

    fn ran_code<T>(r: Result<Ran<T>>) -> ErrorCode {
        r.and_then(Ran::stored).map(|_| ErrorCode::Internal).unwrap_or_else(|e| e.code())
    }
}
