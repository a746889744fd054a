//! Reference storage for the simulators: one SQLite database per side.
//!
//! The portal side implements the host contract (`docs/DESIGN.md`, "Host
//! contract"); every `tessera` process plays one portal server:
//!
//! 1. `BEGIN IMMEDIATE`, read the records (one consistent snapshot);
//! 2. call the core, which returns versioned compare-and-set writes;
//! 3. apply all writes of that outcome in the same transaction: a version-1
//!    record is an `INSERT` (the key must be new), any other an
//!    `UPDATE … WHERE key = ? AND version = expected`;
//! 4. if an update changed no row or an insert hit an existing key, the
//!    decision was made on a stale record: roll back, read again and call
//!    the core again (at most [`MAX_ROUNDS`] times, then `STORAGE`);
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
//! they exist exactly when the change they describe committed); the
//! notifications they stand for are printed after the commit.

use crate::cli_err;
use crate::secrets;
use crate::util::CliRandom;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{
    DeviceStatus, Portal, PortalEvent, StoredDevice, StoredOffer, StoredPendingLink, StoredWrite,
};
use tessera_core::{Error, ErrorCode};

/// Rounds of read → decide → write before giving up with `STORAGE`.
pub const MAX_ROUNDS: u32 = 50;
/// `PRAGMA user_version` of the current layout (2: versioned records, keys
/// outside the databases).
const SCHEMA_VERSION: i64 = 2;

pub fn db_err(e: rusqlite::Error) -> Error {
    cli_err(ErrorCode::Storage, format!("database: {e}"))
}

/// Open (creating if needed, owner-only) a database with `schema`.
fn open(path: &Path, schema: &str) -> Result<Connection, Error> {
    secrets::touch_private(path)?;
    let mut c = Connection::open(path).map_err(db_err)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    c.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
    let version = |c: &Connection| -> Result<i64, Error> {
        c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db_err)
    };
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
                tx.execute_batch(schema).map_err(db_err)?;
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

/// The portal's tables. Device ids are keys across all accounts: a device
/// id is in `pending_links` at most once, and the trigger keeps a pending
/// link from reusing the id of a registered device (even if hosts purge old
/// pending links), so one device key links to one account.
const PORTAL_SCHEMA: &str = "
CREATE TABLE portal (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE offers (offer_id TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at INTEGER NOT NULL,
    used_at INTEGER, version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE pending_links (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, device_name TEXT NOT NULL,
    confirm_by INTEGER NOT NULL, attempts INTEGER NOT NULL, closed INTEGER NOT NULL,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX pending_links_by_account ON pending_links (account, closed);
CREATE TABLE devices (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL,
    linked_at INTEGER NOT NULL, last_used_at INTEGER, status TEXT NOT NULL, unlinked_at INTEGER,
    version INTEGER NOT NULL, sealed BLOB NOT NULL);
CREATE INDEX devices_by_account ON devices (account);
CREATE TRIGGER pending_links_need_a_new_device_id BEFORE INSERT ON pending_links
    WHEN EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id)
    BEGIN SELECT RAISE(ABORT, 'this device id is registered'); END;
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, json TEXT NOT NULL);
";

const DEVICE_SCHEMA: &str = "
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

pub struct PortalDb {
    pub conn: Connection,
}

pub struct DeviceDb {
    pub conn: Connection,
}

fn db_path(dir: &Path, file: &str, create: bool) -> Result<PathBuf, Error> {
    if create {
        secrets::create_private_dir(dir)?;
    } else if !dir.join(file).exists() {
        return Err(cli_err(ErrorCode::Storage, format!("{} has no {file}; run init first", dir.display())));
    }
    Ok(dir.join(file))
}

// SQLite integers are i64. Times are checked (years 2000..3000) and
// versions count writes, so neither comes near i64::MAX.
fn sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn get_u64(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn get_opt_u64(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    let v: Option<i64> = r.get(i)?;
    v.map(|v| u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))).transpose()
}

const OFFER_COLS: &str = "offer_id, account, expires_at, used_at, version, sealed";
const PENDING_COLS: &str = "device_id, account, device_name, confirm_by, attempts, closed, version, sealed";
const DEVICE_COLS: &str = "device_id, account, name, linked_at, last_used_at, status, unlinked_at, version, sealed";

fn offer_row(r: &Row<'_>) -> rusqlite::Result<StoredOffer> {
    Ok(StoredOffer {
        offer_id: r.get(0)?,
        account: r.get(1)?,
        expires_at: get_u64(r, 2)?,
        used_at: get_opt_u64(r, 3)?,
        version: get_u64(r, 4)?,
        sealed: r.get(5)?,
    })
}

fn pending_row(r: &Row<'_>) -> rusqlite::Result<StoredPendingLink> {
    let attempts: i64 = r.get(4)?;
    Ok(StoredPendingLink {
        device_id: r.get(0)?,
        account: r.get(1)?,
        device_name: r.get(2)?,
        confirm_by: get_u64(r, 3)?,
        attempts: u32::try_from(attempts).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(4, attempts))?,
        closed: r.get(5)?,
        version: get_u64(r, 6)?,
        sealed: r.get(7)?,
    })
}

fn device_row(r: &Row<'_>) -> rusqlite::Result<StoredDevice> {
    let status: String = r.get(5)?;
    let status = match (status.as_str(), get_opt_u64(r, 6)?) {
        ("active", _) => DeviceStatus::Active,
        ("unlinked", at) => DeviceStatus::Unlinked { at: at.unwrap_or(0) },
        _ => return Err(rusqlite::Error::InvalidColumnType(5, "status".into(), rusqlite::types::Type::Text)),
    };
    Ok(StoredDevice {
        device_id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        linked_at: get_u64(r, 3)?,
        last_used_at: get_opt_u64(r, 4)?,
        status,
        version: get_u64(r, 7)?,
        sealed: r.get(8)?,
    })
}

/// Reads on a snapshot (the connection of a read transaction).
pub mod read {
    use super::*;

    pub fn offer(c: &Connection, offer_id: &str) -> Result<Option<StoredOffer>, Error> {
        c.query_row(&format!("SELECT {OFFER_COLS} FROM offers WHERE offer_id = ?1"), [offer_id], offer_row)
            .optional()
            .map_err(db_err)
    }

    pub fn pending(c: &Connection, device_id: &str) -> Result<Option<StoredPendingLink>, Error> {
        c.query_row(&format!("SELECT {PENDING_COLS} FROM pending_links WHERE device_id = ?1"), [device_id], pending_row)
            .optional()
            .map_err(db_err)
    }

    /// The account's pending links still waiting for a check code, oldest first.
    pub fn open_pendings(c: &Connection, account: &str) -> Result<Vec<StoredPendingLink>, Error> {
        let mut st = c
            .prepare(&format!(
                "SELECT {PENDING_COLS} FROM pending_links WHERE account = ?1 AND closed = 0 ORDER BY confirm_by, device_id"
            ))
            .map_err(db_err)?;
        let rows = st.query_map([account], pending_row).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    pub fn device(c: &Connection, device_id: &str) -> Result<Option<StoredDevice>, Error> {
        c.query_row(&format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1"), [device_id], device_row)
            .optional()
            .map_err(db_err)
    }

    pub fn devices_of(c: &Connection, account: &str) -> Result<Vec<StoredDevice>, Error> {
        let mut st = c
            .prepare(&format!("SELECT {DEVICE_COLS} FROM devices WHERE account = ?1 ORDER BY linked_at, device_id"))
            .map_err(db_err)?;
        let rows = st.query_map([account], device_row).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Whether a pending link or a device of any account has this id.
    pub fn device_id_seen(c: &Connection, device_id: &str) -> Result<bool, Error> {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM pending_links WHERE device_id = ?1)
                 OR EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
            [device_id],
            |r| r.get(0),
        )
        .map_err(db_err)
    }
}

/// What one portal operation decided: the writes to apply atomically, the
/// events, and the value the command reports once they committed.
#[derive(Debug)]
pub struct Decision<T> {
    pub writes: Vec<Write>,
    pub events: Vec<PortalEvent>,
    pub value: T,
}

impl<T> Decision<T> {
    /// A decision that writes nothing.
    pub fn read_only(value: T) -> Self {
        Decision { writes: Vec::new(), events: Vec::new(), value }
    }
}

/// The core's outcome as a decision reporting its result next to `extra`.
pub fn decided<R, X>(o: Outcome<R>, extra: X) -> Decision<(Result<R, Error>, X)> {
    Decision { writes: o.writes, events: o.events, value: (o.result, extra) }
}

/// How applying one outcome's writes ended.
#[derive(Debug)]
pub enum Applied {
    /// Every write applied.
    Done,
    /// A record was no longer (or already) there as the decision assumed:
    /// another server wrote first. Nothing may be kept.
    Conflict(String),
}

fn is_conflict(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation
            && matches!(f.extended_code,
                ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_TRIGGER))
}

/// One row write: `Ok(true)` when it applied, `Ok(false)` on a conflict.
fn write_row(c: &Connection, w: &StoredWrite) -> Result<bool, Error> {
    let expected = w.expected_version().map(sql);
    let r = match w {
        StoredWrite::Offer(o) => {
            let p = params![o.offer_id, o.account, sql(o.expires_at), o.used_at.map(sql), sql(o.version), o.sealed];
            match expected {
                None => c.execute(&format!("INSERT INTO offers ({OFFER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"), p),
                Some(v) => c.execute(
                    "UPDATE offers SET account = ?2, expires_at = ?3, used_at = ?4, version = ?5, sealed = ?6
                     WHERE offer_id = ?1 AND version = ?7",
                    params![o.offer_id, o.account, sql(o.expires_at), o.used_at.map(sql), sql(o.version), o.sealed, v],
                ),
            }
        }
        StoredWrite::PendingLink(p) => {
            let cols = params![
                p.device_id,
                p.account,
                p.device_name,
                sql(p.confirm_by),
                i64::from(p.attempts),
                p.closed,
                sql(p.version),
                p.sealed
            ];
            match expected {
                None => c.execute(
                    &format!("INSERT INTO pending_links ({PENDING_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                    cols,
                ),
                Some(v) => c.execute(
                    "UPDATE pending_links SET account = ?2, device_name = ?3, confirm_by = ?4, attempts = ?5,
                     closed = ?6, version = ?7, sealed = ?8 WHERE device_id = ?1 AND version = ?9",
                    params![
                        p.device_id,
                        p.account,
                        p.device_name,
                        sql(p.confirm_by),
                        i64::from(p.attempts),
                        p.closed,
                        sql(p.version),
                        p.sealed,
                        v
                    ],
                ),
            }
        }
        StoredWrite::Device(d) => {
            let unlinked_at = match d.status {
                DeviceStatus::Active => None,
                DeviceStatus::Unlinked { at } => Some(sql(at)),
            };
            match expected {
                None => c.execute(
                    &format!("INSERT INTO devices ({DEVICE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                    params![
                        d.device_id,
                        d.account,
                        d.name,
                        sql(d.linked_at),
                        d.last_used_at.map(sql),
                        d.status.as_str(),
                        unlinked_at,
                        sql(d.version),
                        d.sealed
                    ],
                ),
                Some(v) => c.execute(
                    "UPDATE devices SET account = ?2, name = ?3, linked_at = ?4, last_used_at = ?5, status = ?6,
                     unlinked_at = ?7, version = ?8, sealed = ?9 WHERE device_id = ?1 AND version = ?10",
                    params![
                        d.device_id,
                        d.account,
                        d.name,
                        sql(d.linked_at),
                        d.last_used_at.map(sql),
                        d.status.as_str(),
                        unlinked_at,
                        sql(d.version),
                        d.sealed,
                        v
                    ],
                ),
            }
        }
    };
    match r {
        Ok(n) => Ok(n == 1),
        Err(e) if is_conflict(&e) => Ok(false),
        Err(e) => Err(db_err(e)),
    }
}

fn describe(w: &StoredWrite) -> String {
    let (table, key) = match w {
        StoredWrite::Offer(o) => ("offer", &o.offer_id),
        StoredWrite::PendingLink(p) => ("pending link", &p.device_id),
        StoredWrite::Device(d) => ("device", &d.device_id),
    };
    match w.expected_version() {
        None => format!("insert of {table} {key} found it already there"),
        Some(v) => format!("update of {table} {key} found it no longer at version {v}"),
    }
}

impl PortalDb {
    pub fn open(dir: &Path, create: bool) -> Result<Self, Error> {
        Ok(PortalDb { conn: open(&db_path(dir, "portal.db", create)?, PORTAL_SCHEMA)? })
    }

    /// The portal's name and key fingerprint (the seed is not in here).
    pub fn identity(&self) -> Result<Option<(String, String)>, Error> {
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
        store_key: impl FnOnce() -> Result<(), Error>,
    ) -> Result<(), Error> {
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
    pub fn read<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(db_err)?;
        f(&tx)
    }

    /// Apply sealed writes and log events in one IMMEDIATE transaction
    /// (for a write decided without reading, such as a new offer).
    pub fn apply(&mut self, rows: &[StoredWrite], at: u64, events: &[PortalEvent]) -> Result<Applied, Error> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let applied = write_all(&tx, rows, at, events)?;
        if let Applied::Done = applied {
            tx.commit().map_err(db_err)?;
        }
        Ok(applied)
    }

    /// One portal operation under the host contract: in one IMMEDIATE
    /// transaction, let `decide` read and call the core, then apply its
    /// writes; on a conflict roll back and decide again. Returns the
    /// decision that committed (or wrote nothing).
    pub fn run<T>(
        &mut self,
        portal: &Portal,
        at: u64,
        mut decide: impl FnMut(&Connection) -> Result<Decision<T>, Error>,
    ) -> Result<Decision<T>, Error> {
        for _ in 0..MAX_ROUNDS {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
            let d = decide(&tx)?;
            if d.writes.is_empty() {
                return Ok(d);
            }
            let rows: Vec<StoredWrite> = d.writes.iter().map(|w| portal.store_write(w, &mut CliRandom)).collect();
            if let Applied::Done = write_all(&tx, &rows, at, &d.events)? {
                tx.commit().map_err(db_err)?;
                return Ok(d);
            }
            // Dropping `tx` rolls back whatever part was written.
        }
        Err(cli_err(ErrorCode::Storage, format!("gave up after {MAX_ROUNDS} rounds of write conflicts; try again")))
    }
}

/// Every write of one outcome, then its events, inside `tx`. On a conflict
/// the caller must roll back (drop the transaction).
fn write_all(tx: &Connection, rows: &[StoredWrite], at: u64, events: &[PortalEvent]) -> Result<Applied, Error> {
    for w in rows {
        if !write_row(tx, w)? {
            return Ok(Applied::Conflict(describe(w)));
        }
    }
    for e in events {
        let json = serde_json::to_string(e).map_err(|_| cli_err(ErrorCode::Internal, "event encoding"))?;
        tx.execute("INSERT INTO events (at, json) VALUES (?1, ?2)", params![sql(at), json]).map_err(db_err)?;
    }
    Ok(Applied::Done)
}

impl DeviceDb {
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Ok(DeviceDb { conn: open(&db_path(dir, "device.db", true)?, DEVICE_SCHEMA)? })
    }
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
    }
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db_err)?;
        Ok(())
    }
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.conn.execute("DELETE FROM kv WHERE key = ?1", [key]).map_err(db_err)?;
        Ok(())
    }
}

/// The compare-and-set and retry path, driven with stale decisions (under
/// SQLite's write lock the process races in `tests/cli.rs` never reach it).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use tessera_core::link::{self, DeviceKeyUse, DeviceRecord, PasscodePolicy, PendingLinkRecord};

    const T: u64 = 1_800_000_000;

    struct Setup {
        dir: PathBuf,
        db: PortalDb,
        portal: Portal,
        offer: StoredWrite,
        pending: PendingLinkRecord,
        device_id: String,
    }

    impl Setup {
        fn device(&mut self) -> DeviceRecord {
            let (portal, id) = (&self.portal, &self.device_id);
            self.db.read(|c| portal.open_device(&read::device(c, id)?.unwrap())).unwrap()
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
        let portal = Portal::generate("Example Bank", &mut CliRandom).unwrap();
        let offer = portal.create_offer("ana", PasscodePolicy::default(), 300, T, &mut CliRandom).unwrap();
        let offer_row = portal.store_write(&Write::Offer(offer.record.clone()), &mut CliRandom);
        assert!(matches!(db.apply(std::slice::from_ref(&offer_row), T, &[]).unwrap(), Applied::Done));
        let scanned = link::scan_link_qr(&offer.qr_text, T).unwrap();
        let start = link::start_link(&scanned, "Phone", "493817", false, false, T, &mut CliRandom).unwrap();
        let opened = portal.open_link_request(&start.request).unwrap();
        let accepted = db
            .run(&portal, T, |c| {
                let o = read::offer(c, opened.offer_id())?.map(|r| portal.open_offer(&r)).transpose()?;
                let out = opened.accept(&portal, o.as_ref(), DeviceKeyUse::Fresh, T);
                Ok(Decision { writes: out.outcome.writes, events: out.outcome.events, value: out.answer })
            })
            .unwrap();
        let pending = accepted
            .writes
            .iter()
            .find_map(|w| if let Write::PendingLink(p) = w { Some(p.clone()) } else { None })
            .unwrap();
        let linked = link::finish_link(start.pending, &accepted.value, &[7; 32], &mut CliRandom).unwrap();
        let device_id = pending.device_id.clone();
        let confirmed = db
            .run(&portal, T, |c| {
                let p = portal.open_pending(&read::pending(c, &device_id)?.unwrap())?;
                Ok(decided(portal.confirm_link(&p, &linked.check_code, T), ()))
            })
            .unwrap();
        assert!(confirmed.value.0.is_ok());
        Setup { dir, db, portal, offer: offer_row, pending, device_id }
    }

    #[test]
    fn a_decision_made_on_a_stale_record_is_made_again() {
        let mut s = setup("stale");
        let stale = s.device();
        assert_eq!(stale.version, 1);
        // Another server renames the device first.
        let renamed = stale.rename("Renamed", T + 1);
        let row = s.portal.store_write(&renamed.writes[0], &mut CliRandom);
        assert!(matches!(s.db.apply(&[row], T + 1, &renamed.events).unwrap(), Applied::Done));
        // This server decided to unlink from the record it read before.
        let mut rounds = 0;
        let (portal, id) = (&s.portal, s.device_id.clone());
        let d =
            s.db.run(portal, T + 2, |c| {
                rounds += 1;
                let rec =
                    if rounds == 1 { stale.clone() } else { portal.open_device(&read::device(c, &id)?.unwrap())? };
                Ok(decided(rec.unlink(T + 2), ()))
            })
            .unwrap();
        assert_eq!(rounds, 2, "the conflict made it read again");
        assert!(d.value.0.is_ok());
        let now = s.device();
        assert_eq!((now.version, now.status.as_str(), now.name.as_str()), (3, "unlinked", "Renamed"));
        // The stale unlink's event was not logged; the committed one was, once.
        let unlinks: i64 =
            s.db.conn
                .query_row("SELECT count(*) FROM events WHERE json LIKE '%DeviceUnlinked%'", [], |r| r.get(0))
                .unwrap();
        assert_eq!(unlinks, 1);
    }

    #[test]
    fn a_conflict_keeps_none_of_the_outcome() {
        let mut s = setup("atomic");
        let before = s.device();
        // A rename (applies) together with an insert of an existing offer
        // (conflicts): neither stays.
        let renamed = before.rename("Renamed", T + 1);
        let rows = [s.portal.store_write(&renamed.writes[0], &mut CliRandom), s.offer.clone()];
        let a = s.db.apply(&rows, T + 1, &renamed.events).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains("already there")), "{a:?}");
        assert_eq!(s.device(), before);
        // An update that expects another version changes nothing either.
        let twice = before.rename("Other", T + 2);
        let row = s.portal.store_write(&twice.writes[0], &mut CliRandom);
        assert!(matches!(s.db.apply(std::slice::from_ref(&row), T + 2, &[]).unwrap(), Applied::Done));
        let a = s.db.apply(&[row], T + 3, &[]).unwrap();
        assert!(matches!(&a, Applied::Conflict(w) if w.contains("no longer at version 1")), "{a:?}");
        assert_eq!(s.device().name, "Other");
    }

    #[test]
    fn a_registered_device_id_cannot_become_pending_again() {
        let mut s = setup("tombstone");
        // Even if a host purged the pending link, its device id stays taken.
        s.db.conn.execute("DELETE FROM pending_links", []).unwrap();
        let row = s.portal.store_write(&Write::PendingLink(s.pending.clone()), &mut CliRandom);
        assert!(matches!(s.db.apply(&[row], T, &[]).unwrap(), Applied::Conflict(_)));
        let n: i64 = s.db.conn.query_row("SELECT count(*) FROM pending_links", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
        let id = s.device_id.clone();
        assert!(s.db.read(|c| read::device_id_seen(c, &id)).unwrap());
    }

    #[test]
    fn endless_conflicts_end_in_storage() {
        let mut s = setup("endless");
        let stale = s.device();
        let renamed = stale.rename("Renamed", T + 1);
        let row = s.portal.store_write(&renamed.writes[0], &mut CliRandom);
        assert!(matches!(s.db.apply(&[row], T + 1, &[]).unwrap(), Applied::Done));
        let mut rounds = 0;
        let portal = &s.portal;
        let e =
            s.db.run(portal, T + 2, |_| {
                rounds += 1;
                Ok(decided(stale.unlink(T + 2), ()))
            })
            .unwrap_err();
        assert_eq!((e.code(), rounds), (ErrorCode::Storage, MAX_ROUNDS));
        assert_eq!(s.device().status.as_str(), "active");
    }
}
