//! Reference storage for the simulators: one SQLite database per side.
//! The portal keeps sealed records (authenticated, encrypted) next to the
//! plain columns it queries; single use is a compare-and-set in SQL, so two
//! processes (or servers) accepting the same offer cannot both win.

use crate::cli_err;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use tessera_core::{Error, ErrorCode};

pub fn db_err(e: rusqlite::Error) -> Error {
    cli_err(ErrorCode::Storage, format!("database: {e}"))
}

fn open(path: &Path, schema: &str) -> Result<Connection, Error> {
    let c = Connection::open(path).map_err(db_err)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
    c.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
    c.execute_batch(schema).map_err(db_err)?;
    Ok(c)
}

const PORTAL_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS portal (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, secret_hex TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offers (offer_id TEXT PRIMARY KEY, account TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending_links (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL, linked_at INTEGER NOT NULL, last_used_at INTEGER, status TEXT NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, json TEXT NOT NULL);
";

const DEVICE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

pub struct PortalDb {
    pub conn: Connection,
}

pub struct DeviceDb {
    pub conn: Connection,
}

fn db_path(dir: &Path, file: &str, create: bool) -> Result<std::path::PathBuf, Error> {
    if create {
        std::fs::create_dir_all(dir)
            .map_err(|e| cli_err(ErrorCode::Storage, format!("cannot create {}: {e}", dir.display())))?;
    } else if !dir.join(file).exists() {
        return Err(cli_err(ErrorCode::Storage, format!("{} has no {file}; run init first", dir.display())));
    }
    Ok(dir.join(file))
}

impl PortalDb {
    pub fn open(dir: &Path, create: bool) -> Result<Self, Error> {
        Ok(PortalDb { conn: open(&db_path(dir, "portal.db", create)?, PORTAL_SCHEMA)? })
    }

    pub fn identity(&self) -> Result<Option<(String, String)>, Error> {
        self.conn
            .query_row("SELECT name, secret_hex FROM portal WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db_err)
    }

    pub fn log_event(&self, at: u64, json: &str) -> Result<(), Error> {
        self.conn.execute("INSERT INTO events (at, json) VALUES (?1, ?2)", params![at as i64, json]).map_err(db_err)?;
        Ok(())
    }

    pub fn immediate(&mut self) -> Result<rusqlite::Transaction<'_>, Error> {
        self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)
    }
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
