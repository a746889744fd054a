//! The tables, on SQLite (with in-place upgrades of older layouts) and on
//! PostgreSQL (made once, under an advisory lock).

use crate::{db_err, files, pg_err, store_err, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use tessera_host::ErrorCode;

/// `PRAGMA user_version` (SQLite) and `tessera_schema.version` (PostgreSQL)
/// of the current layout (3: the rows of tessera-host; 4: challenge rows;
/// 5: flow 3's authenticators, orders, activations, credentials and
/// activation settings).
pub const SCHEMA_VERSION: i64 = 5;
/// The first SQLite layout that later ones upgrade from in place (older
/// ones held keys inside the database and are refused).
const FIRST_UPGRADABLE: i64 = 3;

/// Open (creating if needed, owner-only) a SQLite database: `schema` is its
/// layout-3 tables, `upgrades[i]` takes layout `FIRST_UPGRADABLE + i` to the
/// next. A new database gets both; one of an earlier layout is upgraded in
/// place, in one transaction.
pub fn open_sqlite(path: &Path, schema: &str, upgrades: &[&str]) -> Result<Connection> {
    files::touch_private(path)?;
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
                    return Err(store_err(
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
                        step.ok_or_else(|| store_err(ErrorCode::Internal, format!("no upgrade from layout {from}")))?;
                    tx.execute_batch(sql).map_err(db_err)?;
                }
                tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(db_err)?;
            }
            v => {
                return Err(store_err(
                    ErrorCode::Storage,
                    format!("{} has layout {v}; this tessera reads layout {SCHEMA_VERSION}", path.display()),
                ))
            }
        }
        tx.commit().map_err(db_err)?;
    }
    Ok(c)
}

/// The portal's tables (layout 3; [`PORTAL_UPGRADES`] add the rest): the
/// columns of the tessera-host rows. Device ids are keys across all
/// accounts: a device id is in `pending_links` at most once, and the trigger
/// keeps a pending link from reusing the id of a registered device (even if
/// hosts purge old pending links). Statuses are the rows' own JSON names
/// (`open`, `cancelled`, `active`, …); times are Unix seconds.
pub const PORTAL_SCHEMA: &str = "
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

/// Upgrades of the portal's SQLite layout, from layout 3.
pub const PORTAL_UPGRADES: &[&str] = &[CHALLENGES_TABLE, ACTIVATION_TABLES];

pub const DEVICE_SCHEMA: &str = "
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// Layouts 4 and 5 changed nothing on the device side (their keys are new
/// `kv` rows: an offline authenticator's state is `token_state`).
pub const DEVICE_UPGRADES: &[&str] = &["", ""];

/// The same tables on PostgreSQL (layout 5 at once): 64-bit times and
/// versions, `BYTEA` sealed records, `BOOLEAN` flags, and the device-id
/// trigger as a PL/pgSQL function raising `unique_violation` (a conflict,
/// like the primary keys).
const PG_SCHEMA: &str = "
CREATE TABLE portal (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE offers (offer_id TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at BIGINT NOT NULL,
    used_at BIGINT, version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE TABLE pending_links (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, device_name TEXT NOT NULL,
    confirm_by BIGINT NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL,
    version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE INDEX pending_links_by_account ON pending_links (account, status);
CREATE TABLE devices (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL,
    linked_at BIGINT NOT NULL, last_used_at BIGINT, status TEXT NOT NULL,
    version BIGINT NOT NULL, sealed BYTEA NOT NULL, locked BOOLEAN NOT NULL DEFAULT FALSE,
    serial TEXT, usable_from BIGINT);
CREATE INDEX devices_by_account ON devices (account);
CREATE FUNCTION pending_links_need_a_new_device_id() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id) THEN
        RAISE EXCEPTION 'this device id is registered' USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$body$;
CREATE TRIGGER pending_links_need_a_new_device_id BEFORE INSERT ON pending_links
    FOR EACH ROW EXECUTE FUNCTION pending_links_need_a_new_device_id();
CREATE TABLE events (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, json TEXT NOT NULL);
CREATE TABLE challenges (challenge_id TEXT PRIMARY KEY, account TEXT NOT NULL, device_ids TEXT NOT NULL,
    kind TEXT NOT NULL, expires_at BIGINT NOT NULL, status TEXT NOT NULL,
    version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE INDEX challenges_by_account ON challenges (account, status);
CREATE TABLE authenticators (serial TEXT PRIMARY KEY, account TEXT NOT NULL, user_id TEXT, status TEXT NOT NULL,
    imported_at BIGINT NOT NULL, version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE INDEX authenticators_by_status ON authenticators (status, imported_at, serial);
CREATE TABLE orders (user_id TEXT PRIMARY KEY, account TEXT NOT NULL, serial TEXT NOT NULL,
    expires_at BIGINT NOT NULL, status TEXT NOT NULL, activation_id TEXT,
    version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE INDEX orders_by_account ON orders (account);
CREATE TABLE activations (activation_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, account TEXT NOT NULL,
    serial TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, failures INTEGER NOT NULL,
    expires_at BIGINT NOT NULL, version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE INDEX activations_by_user ON activations (user_id);
CREATE TABLE credentials (account TEXT PRIMARY KEY, recovery_codes_left INTEGER NOT NULL, locked BOOLEAN NOT NULL,
    pending_from BIGINT, version BIGINT NOT NULL, sealed BYTEA NOT NULL);
CREATE TABLE settings (name TEXT PRIMARY KEY, json TEXT NOT NULL);
";

/// Advisory lock key held while a PostgreSQL schema is checked or made.
const SCHEMA_LOCK: i64 = 0x7465_7373_6572_6100;

/// Make the tables on PostgreSQL if they are missing: in one transaction
/// holding a transaction-scoped advisory lock (so that servers connecting
/// at once make them once), recorded in `tessera_schema`.
pub fn ensure_pg(c: &mut postgres::Client) -> Result<()> {
    let mut tx = c.transaction().map_err(|e| pg_err(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).map_err(|e| pg_err(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tessera_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
    )
    .map_err(|e| pg_err(&e))?;
    let row = tx.query_opt("SELECT version FROM tessera_schema WHERE id = 1", &[]).map_err(|e| pg_err(&e))?;
    match row.map(|r| r.try_get::<_, i64>(0)).transpose().map_err(|e| pg_err(&e))? {
        Some(SCHEMA_VERSION) => {}
        None => {
            tx.batch_execute(PG_SCHEMA).map_err(|e| pg_err(&e))?;
            tx.execute("INSERT INTO tessera_schema (id, version) VALUES (1, $1)", &[&SCHEMA_VERSION])
                .map_err(|e| pg_err(&e))?;
        }
        Some(v) => {
            return Err(store_err(
                ErrorCode::Storage,
                format!("the PostgreSQL database has layout {v}; this tessera reads layout {SCHEMA_VERSION}"),
            ))
        }
    }
    tx.commit().map_err(|e| pg_err(&e))
}
