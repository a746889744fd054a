//! Tessera's reference portal store, on SQLite (the embedded default) or
//! PostgreSQL (several portal servers on one database), and the device
//! simulator's key-value store.
//!
//! The portal side stores the rows of `tessera-host` (`StoredOffer`,
//! `StoredPendingLink`, `StoredDevice`, `StoredChallenge`, and flow 3's
//! `StoredAuthenticator`, `StoredOrder`, `StoredActivation`,
//! `StoredCredentials`) and implements the host contract
//! (`docs/DESIGN.md`, "Host contract"); every process using a [`PortalDb`]
//! plays one portal server:
//!
//! 1. begin a transaction, read the rows (one consistent snapshot):
//!    SQLite `BEGIN IMMEDIATE`, PostgreSQL `REPEATABLE READ`;
//! 2. call tessera-host, which returns a [`PortalChange`];
//! 3. apply its writes in the same transaction as compare-and-sets: a write
//!    without `expected_version` is an `INSERT` (the key must be new), any
//!    other an `UPDATE … WHERE key = ? AND version = expected`;
//! 4. if an update changed no row or an insert hit an existing key (or
//!    PostgreSQL reports a serialization failure, a deadlock or a unique
//!    violation), the decision was made on a stale row: roll back, read
//!    again and call again (at most [`MAX_ROUNDS`] times, then `STORAGE`);
//!    on PostgreSQL after a short randomized backoff;
//! 5. only after the commit does the caller print or send the answer or
//!    result, refusals included.
//!
//! With SQLite the write lock taken by `BEGIN IMMEDIATE` already orders the
//! processes, so step 4 is the second line of defence there; PostgreSQL
//! relies on it alone. Read-only calls (status answers, listings) read one
//! snapshot without writing.
//!
//! Events go to the `events` table inside the same transaction (an outbox:
//! they exist exactly when the change they describe committed), as the JSON
//! of `tessera_host::PortalEvent`.
//!
//! Errors are [`TesseraError`]s: `STORAGE` for database failures (their
//! messages carry the database's own message, never row contents or
//! connection strings).

use postgres::error::SqlState;
use rusqlite::{Connection, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
pub use tessera_host::{
    ActivationSettings, ErrorCode, PortalChange, RecordWrite, StoredActivation, StoredAuthenticator, StoredChallenge,
    StoredCredentials, StoredDevice, StoredOffer, StoredOrder, StoredPendingLink, TesseraError, Timestamp,
};

mod files;
mod pg_tls;
mod schema;

type Result<T> = std::result::Result<T, TesseraError>;

/// Rounds of read → decide → write before giving up with `STORAGE`. 50
/// requests racing on one row of one PostgreSQL need up to about 50 rounds
/// for the last one (one wins per round); the conformance suite measures it.
pub const MAX_ROUNDS: u32 = 100;

/// The store's own errors (arguments, files, database).
pub fn store_err(code: ErrorCode, detail: impl Into<String>) -> TesseraError {
    TesseraError::new(code, detail)
}

/// A SQLite failure as `STORAGE`.
pub fn db_err(e: rusqlite::Error) -> TesseraError {
    store_err(ErrorCode::Storage, format!("database: {e}"))
}

/// A PostgreSQL failure as `STORAGE`: the SQLSTATE and the server's
/// message, never its detail (which can quote row values).
pub fn pg_err(e: &postgres::Error) -> TesseraError {
    match e.as_db_error() {
        Some(d) => store_err(ErrorCode::Storage, format!("database: {} ({})", d.message(), d.code().code())),
        None => store_err(ErrorCode::Storage, format!("database: {e}")),
    }
}

/// The JSON name of a row's status enum (`"open"`, `"unlinked"`, …): the
/// names are tessera-host's.
pub fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Backends, values, rows

enum Backend {
    Lite(Connection),
    Pg(RefCell<postgres::Client>),
}

/// Why a statement did not apply.
enum Fail {
    /// Another server wrote first (the decision is stale).
    Conflict,
    /// Anything else.
    Err(TesseraError),
}

fn lite_conflict(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            (f.code == rusqlite::ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_TRIGGER
                ))
                // A deferred transaction whose snapshot another connection
                // wrote past (SQLITE_BUSY_SNAPSHOT), or that could not take
                // the write lock: its decision may be stale.
                || f.code == rusqlite::ErrorCode::DatabaseBusy
        }
        _ => false,
    }
}

fn pg_conflict(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        if lite_conflict(&e) {
            Fail::Conflict
        } else {
            Fail::Err(db_err(e))
        }
    }
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        if pg_conflict(&e) {
            Fail::Conflict
        } else {
            Fail::Err(pg_err(&e))
        }
    }
}

/// A parameter, bound the same way on both backends.
#[derive(Clone)]
enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Int32(i32),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl Val {
    fn lite(&self) -> rusqlite::types::Value {
        use rusqlite::types::Value as V;
        match self {
            Val::Text(s) => V::Text(s.clone()),
            Val::OptText(o) => o.clone().map_or(V::Null, V::Text),
            Val::Int(i) => V::Integer(*i),
            Val::OptInt(o) => o.map_or(V::Null, V::Integer),
            Val::Int32(i) => V::Integer(i64::from(*i)),
            Val::Bool(b) => V::Integer(i64::from(*b)),
            Val::Bytes(b) => V::Blob(b.clone()),
        }
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        match self {
            Val::Text(s) => s,
            Val::OptText(o) => o,
            Val::Int(i) => i,
            Val::OptInt(o) => o,
            Val::Int32(i) => i,
            Val::Bool(b) => b,
            Val::Bytes(b) => b,
        }
    }
}

fn text(s: &str) -> Val {
    Val::Text(s.to_owned())
}

/// A row of either backend, read by column index.
trait Cols {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn int32(&self, i: usize) -> Result<i32>;
    fn boolean(&self, i: usize) -> Result<bool>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>>;
}

macro_rules! cols {
    ($ty:ty, $get:ident, $err:expr) => {
        impl Cols for $ty {
            fn text(&self, i: usize) -> Result<String> {
                self.$get(i).map_err($err)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>> {
                self.$get(i).map_err($err)
            }
            fn int(&self, i: usize) -> Result<i64> {
                self.$get(i).map_err($err)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>> {
                self.$get(i).map_err($err)
            }
            fn int32(&self, i: usize) -> Result<i32> {
                self.$get(i).map_err($err)
            }
            fn boolean(&self, i: usize) -> Result<bool> {
                self.$get(i).map_err($err)
            }
            fn bytes(&self, i: usize) -> Result<Vec<u8>> {
                self.$get(i).map_err($err)
            }
        }
    };
}
cols!(rusqlite::Row<'_>, get, db_err);
cols!(postgres::Row, try_get, |e| pg_err(&e));

// SQL integers are i64; times are Unix seconds (checked by the core to be
// in the years 2000..3000, so far from i64::MAX).
fn secs(t: Timestamp) -> i64 {
    i64::try_from(t.secs()).unwrap_or(i64::MAX)
}

fn to_time(v: i64) -> Result<Timestamp> {
    u64::try_from(v)
        .map(Timestamp::from_secs)
        .map_err(|_| store_err(ErrorCode::Storage, "database: a stored time is negative"))
}

fn time(r: &dyn Cols, i: usize) -> Result<Timestamp> {
    to_time(r.int(i)?)
}

fn opt_time(r: &dyn Cols, i: usize) -> Result<Option<Timestamp>> {
    r.opt_int(i)?.map(to_time).transpose()
}

fn status_col<T: DeserializeOwned>(r: &dyn Cols, i: usize) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(r.text(i)?))
        .map_err(|_| store_err(ErrorCode::Storage, format!("database: column {i} holds an unknown status")))
}

/// One transaction's view of the database: what `decide` and the
/// [`read`] functions read from (one snapshot).
pub struct Tx<'a> {
    b: &'a Backend,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_pg() { "Tx(postgres)" } else { "Tx(sqlite)" })
    }
}

impl Tx<'_> {
    fn is_pg(&self) -> bool {
        matches!(self.b, Backend::Pg(_))
    }

    /// Rows of a query written with `$1`, `$2`, … placeholders.
    fn query<T>(&self, sql: &str, params: &[Val], parse: fn(&dyn Cols) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        match self.b {
            Backend::Lite(c) => {
                let mut st = c.prepare_cached(&sql.replace('$', "?")).map_err(db_err)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.iter().map(Val::lite))).map_err(db_err)?;
                while let Some(r) = rows.next().map_err(db_err)? {
                    out.push(parse(r)?);
                }
            }
            Backend::Pg(c) => {
                let ps: Vec<_> = params.iter().map(Val::pg).collect();
                for r in c.borrow_mut().query(sql, &ps).map_err(|e| pg_err(&e))? {
                    out.push(parse(&r)?);
                }
            }
        }
        Ok(out)
    }

    fn query_opt<T>(&self, sql: &str, params: &[Val], parse: fn(&dyn Cols) -> Result<T>) -> Result<Option<T>> {
        Ok(self.query(sql, params, parse)?.into_iter().next())
    }

    /// Rows changed by a statement written with `$n` placeholders.
    fn execute(&self, sql: &str, params: &[Val]) -> std::result::Result<u64, Fail> {
        match self.b {
            Backend::Lite(c) => {
                let n = c
                    .prepare_cached(&sql.replace('$', "?"))?
                    .execute(rusqlite::params_from_iter(params.iter().map(Val::lite)))?;
                Ok(u64::try_from(n).unwrap_or(u64::MAX))
            }
            Backend::Pg(c) => {
                let ps: Vec<_> = params.iter().map(Val::pg).collect();
                Ok(c.borrow_mut().execute(sql, &ps)?)
            }
        }
    }
}

/// How a transaction starts.
#[derive(Clone, Copy)]
enum Begin {
    /// Read, decide, write: SQLite `BEGIN IMMEDIATE` (the write lock first),
    /// PostgreSQL `REPEATABLE READ` (one snapshot; stale writes fail).
    Write,
    /// A snapshot to read (rolled back).
    Read,
    /// A deferred read-then-write (the simulation's interleavings): SQLite
    /// `BEGIN DEFERRED` (a write after another connection's commit fails
    /// with `SQLITE_BUSY_SNAPSHOT`), PostgreSQL `REPEATABLE READ`.
    Deferred,
    /// A read-modify-write of a row that is not versioned (settings): the
    /// write lock first on SQLite; on PostgreSQL `READ COMMITTED` under a
    /// transaction-scoped advisory lock, then the read.
    Locked,
}

const SETTINGS_LOCK: i64 = 0x7465_7373_6572_6101;
/// The advisory lock a PostgreSQL transaction takes just before it inserts
/// events and holds until it commits: event ids (a sequence, handed out at
/// insert) then rise in commit order, so a host polling `id > last` never
/// skips an event that committed after a higher id was read.
const EVENTS_LOCK: i64 = 0x7465_7373_6572_6102;

impl Backend {
    fn batch(&self, sql: &str) -> std::result::Result<(), Fail> {
        match self {
            Backend::Lite(c) => Ok(c.execute_batch(sql)?),
            Backend::Pg(c) => Ok(c.borrow_mut().batch_execute(sql)?),
        }
    }

    fn begin(&self, how: Begin) -> Result<Open<'_>> {
        let sql = match (self, how) {
            (Backend::Lite(_), Begin::Write | Begin::Locked) => "BEGIN IMMEDIATE",
            (Backend::Lite(_), Begin::Read | Begin::Deferred) => "BEGIN DEFERRED",
            (Backend::Pg(_), Begin::Write | Begin::Deferred) => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            (Backend::Pg(_), Begin::Read) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            (Backend::Pg(_), Begin::Locked) => "BEGIN ISOLATION LEVEL READ COMMITTED",
        };
        // A busy database at BEGIN is an error of its own (not a stale
        // decision): report the database's message.
        match self {
            Backend::Lite(c) => c.execute_batch(sql).map_err(db_err)?,
            Backend::Pg(c) => c.borrow_mut().batch_execute(sql).map_err(|e| pg_err(&e))?,
        }
        let open = Open { b: self, done: false };
        if let (Backend::Pg(_), Begin::Locked) = (self, how) {
            open.tx()
                .execute("SELECT pg_advisory_xact_lock($1)", &[Val::Int(SETTINGS_LOCK)])
                .map_err(Fail::into_err)?;
        }
        Ok(open)
    }
}

impl Fail {
    fn into_err(self) -> TesseraError {
        match self {
            Fail::Conflict => store_err(ErrorCode::Storage, "database: write conflict"),
            Fail::Err(e) => e,
        }
    }
}

/// An open transaction; rolled back when dropped unless committed.
struct Open<'a> {
    b: &'a Backend,
    done: bool,
}

impl<'a> Open<'a> {
    fn tx(&self) -> Tx<'a> {
        Tx { b: self.b }
    }
    fn commit(mut self) -> std::result::Result<(), Fail> {
        self.done = true;
        let r = self.b.batch("COMMIT");
        if r.is_err() {
            let _ = self.b.batch("ROLLBACK");
        }
        r
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.b.batch("ROLLBACK");
        }
    }
}

// ---------------------------------------------------------------------------
// Row layouts

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

fn offer_row(r: &dyn Cols) -> Result<StoredOffer> {
    Ok(StoredOffer {
        offer_id: r.text(0)?,
        account: r.text(1)?,
        expires_at: time(r, 2)?,
        used_at: opt_time(r, 3)?,
        version: r.int(4)?,
        sealed: r.bytes(5)?,
    })
}

fn pending_row(r: &dyn Cols) -> Result<StoredPendingLink> {
    Ok(StoredPendingLink {
        device_id: r.text(0)?,
        account: r.text(1)?,
        device_name: r.text(2)?,
        confirm_by: time(r, 3)?,
        attempts: r.int32(4)?,
        status: status_col(r, 5)?,
        version: r.int(6)?,
        sealed: r.bytes(7)?,
    })
}

fn device_row(r: &dyn Cols) -> Result<StoredDevice> {
    Ok(StoredDevice {
        device_id: r.text(0)?,
        account: r.text(1)?,
        name: r.text(2)?,
        linked_at: time(r, 3)?,
        last_used_at: opt_time(r, 4)?,
        status: status_col(r, 5)?,
        version: r.int(6)?,
        sealed: r.bytes(7)?,
        locked: r.boolean(8)?,
        serial: r.opt_text(9)?,
        usable_from: opt_time(r, 10)?,
    })
}

fn challenge_row(r: &dyn Cols) -> Result<StoredChallenge> {
    Ok(StoredChallenge {
        challenge_id: r.text(0)?,
        account: r.text(1)?,
        device_ids: serde_json::from_str(&r.text(2)?)
            .map_err(|_| store_err(ErrorCode::Storage, "database: a challenge's device ids are not a JSON list"))?,
        kind: status_col(r, 3)?,
        expires_at: time(r, 4)?,
        status: status_col(r, 5)?,
        version: r.int(6)?,
        sealed: r.bytes(7)?,
    })
}

fn authenticator_row(r: &dyn Cols) -> Result<StoredAuthenticator> {
    Ok(StoredAuthenticator {
        serial: r.text(0)?,
        account: r.text(1)?,
        user_id: r.opt_text(2)?,
        status: status_col(r, 3)?,
        imported_at: time(r, 4)?,
        version: r.int(5)?,
        sealed: r.bytes(6)?,
    })
}

fn order_row(r: &dyn Cols) -> Result<StoredOrder> {
    Ok(StoredOrder {
        user_id: r.text(0)?,
        account: r.text(1)?,
        serial: r.text(2)?,
        expires_at: time(r, 3)?,
        status: status_col(r, 4)?,
        activation_id: r.opt_text(5)?,
        version: r.int(6)?,
        sealed: r.bytes(7)?,
    })
}

fn activation_row(r: &dyn Cols) -> Result<StoredActivation> {
    Ok(StoredActivation {
        activation_id: r.text(0)?,
        user_id: r.text(1)?,
        account: r.text(2)?,
        serial: r.text(3)?,
        step: status_col(r, 4)?,
        status: status_col(r, 5)?,
        failures: r.int32(6)?,
        expires_at: time(r, 7)?,
        version: r.int(8)?,
        sealed: r.bytes(9)?,
    })
}

fn credentials_row(r: &dyn Cols) -> Result<StoredCredentials> {
    Ok(StoredCredentials {
        account: r.text(0)?,
        recovery_codes_left: r.int32(1)?,
        locked: r.boolean(2)?,
        pending_from: opt_time(r, 3)?,
        version: r.int(4)?,
        sealed: r.bytes(5)?,
    })
}

/// Reads on a snapshot (the transaction `decide` or `read` was given).
pub mod read {
    use super::*;

    fn by_key<T>(
        c: &Tx<'_>,
        cols: &str,
        table: &str,
        key: &str,
        v: &str,
        f: fn(&dyn Cols) -> Result<T>,
    ) -> Result<Option<T>> {
        c.query_opt(&format!("SELECT {cols} FROM {table} WHERE {key} = $1"), &[text(v)], f)
    }

    pub fn offer(c: &Tx<'_>, offer_id: &str) -> Result<Option<StoredOffer>> {
        by_key(c, OFFER_COLS, "offers", "offer_id", offer_id, offer_row)
    }

    pub fn pending(c: &Tx<'_>, device_id: &str) -> Result<Option<StoredPendingLink>> {
        by_key(c, PENDING_COLS, "pending_links", "device_id", device_id, pending_row)
    }

    /// The account's pending links whose row says `open`, by device id (the
    /// rows `Portal::confirm_link` takes, in the order every runner of
    /// `vectors/scenarios` passes them).
    pub fn open_pendings(c: &Tx<'_>, account: &str) -> Result<Vec<StoredPendingLink>> {
        let open = name_of(&tessera_host::PendingStatus::Open);
        c.query(
            &format!("SELECT {PENDING_COLS} FROM pending_links WHERE account = $1 AND status = $2 ORDER BY device_id"),
            &[text(account), Val::Text(open)],
            pending_row,
        )
    }

    pub fn device(c: &Tx<'_>, device_id: &str) -> Result<Option<StoredDevice>> {
        by_key(c, DEVICE_COLS, "devices", "device_id", device_id, device_row)
    }

    /// The device row with this id of this account.
    pub fn device_of(c: &Tx<'_>, account: &str, device_id: &str) -> Result<Option<StoredDevice>> {
        Ok(device(c, device_id)?.filter(|d| d.account == account))
    }

    /// The account's device rows by device id: the rows a challenge (or a
    /// flow-2 offer) is made for, in the order every runner of
    /// `vectors/scenarios` passes them.
    pub fn devices_by_id(c: &Tx<'_>, account: &str) -> Result<Vec<StoredDevice>> {
        c.query(
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE account = $1 ORDER BY device_id"),
            &[text(account)],
            device_row,
        )
    }

    pub fn challenge(c: &Tx<'_>, challenge_id: &str) -> Result<Option<StoredChallenge>> {
        by_key(c, CHALLENGE_COLS, "challenges", "challenge_id", challenge_id, challenge_row)
    }

    /// The rows of the devices a challenge names, as stored now (a device
    /// row that is gone is left out; tessera-host decides what that means).
    pub fn challenge_devices(c: &Tx<'_>, ch: &StoredChallenge) -> Result<Vec<StoredDevice>> {
        let mut rows = Vec::with_capacity(ch.device_ids.len());
        for id in &ch.device_ids {
            rows.extend(device(c, id)?);
        }
        Ok(rows)
    }

    /// The account's device rows by link time (then id).
    pub fn devices_of(c: &Tx<'_>, account: &str) -> Result<Vec<StoredDevice>> {
        c.query(
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE account = $1 ORDER BY linked_at, device_id"),
            &[text(account)],
            device_row,
        )
    }

    pub fn authenticator(c: &Tx<'_>, serial: &str) -> Result<Option<StoredAuthenticator>> {
        by_key(c, AUTHENTICATOR_COLS, "authenticators", "serial", serial, authenticator_row)
    }

    /// The authenticator in stock imported first (by serial among those
    /// of one import): the one an order sends unless told otherwise.
    pub fn oldest_in_stock(c: &Tx<'_>) -> Result<Option<StoredAuthenticator>> {
        let in_stock = name_of(&tessera_host::AuthenticatorStatus::InStock);
        c.query_opt(
            &format!(
                "SELECT {AUTHENTICATOR_COLS} FROM authenticators WHERE status = $1 ORDER BY imported_at, serial LIMIT 1"
            ),
            &[Val::Text(in_stock)],
            authenticator_row,
        )
    }

    /// Which of these serial numbers have an authenticator row (the
    /// `already_imported` of an import).
    pub fn imported_serials(c: &Tx<'_>, serials: &[String]) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for s in serials {
            if authenticator(c, s)?.is_some() {
                known.push(s.clone());
            }
        }
        Ok(known)
    }

    /// Every authenticator row, by import time, then serial.
    pub fn authenticators(c: &Tx<'_>) -> Result<Vec<StoredAuthenticator>> {
        c.query(
            &format!("SELECT {AUTHENTICATOR_COLS} FROM authenticators ORDER BY imported_at, serial"),
            &[],
            authenticator_row,
        )
    }

    pub fn order(c: &Tx<'_>, user_id: &str) -> Result<Option<StoredOrder>> {
        by_key(c, ORDER_COLS, "orders", "user_id", user_id, order_row)
    }

    pub fn activation(c: &Tx<'_>, activation_id: &str) -> Result<Option<StoredActivation>> {
        by_key(c, ACTIVATION_COLS, "activations", "activation_id", activation_id, activation_row)
    }

    pub fn credentials(c: &Tx<'_>, account: &str) -> Result<Option<StoredCredentials>> {
        by_key(c, CREDENTIALS_COLS, "credentials", "account", account, credentials_row)
    }

    /// The portal's activation settings (the API's defaults until set).
    pub fn activation_settings(c: &Tx<'_>) -> Result<ActivationSettings> {
        let json = c.query_opt("SELECT json FROM settings WHERE name = 'activation'", &[], |r| r.text(0))?;
        match json {
            None => Ok(ActivationSettings::default()),
            Some(j) => serde_json::from_str(&j)
                .map_err(|e| store_err(ErrorCode::StateCorrupt, format!("the stored activation settings: {e}"))),
        }
    }

    /// Whether a pending link or a device of any account has this id.
    pub fn device_id_seen(c: &Tx<'_>, device_id: &str) -> Result<bool> {
        let n = c.query_opt(
            "SELECT (SELECT count(*) FROM pending_links WHERE device_id = $1)
                  + (SELECT count(*) FROM devices WHERE device_id = $1)",
            &[text(device_id)],
            |r| r.int(0),
        )?;
        Ok(n.unwrap_or(0) > 0)
    }
}

// ---------------------------------------------------------------------------
// Writes

/// How applying one change's writes ended.
#[derive(Debug)]
pub enum Applied {
    /// Every write applied (and committed).
    Done,
    /// A row was no longer (or already) there as the decision assumed:
    /// another server wrote first. Nothing was kept.
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

/// The error of a store that gave up after [`MAX_ROUNDS`] conflicts.
pub fn gave_up() -> TesseraError {
    store_err(ErrorCode::Storage, format!("gave up after {MAX_ROUNDS} rounds of write conflicts; try again"))
}

/// One compare-and-set: `INSERT` of the whole row (the key must be new), or
/// `UPDATE` of every column but the key where the stored version is the
/// expected one. `Ok(false)`: a conflict.
fn cas(c: &Tx<'_>, table: &str, cols: &str, values: Vec<Val>, expected: Option<i64>) -> Result<bool> {
    let names: Vec<&str> = cols.split(", ").collect();
    let (sql, mut values) = match expected {
        None => {
            let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
            // PostgreSQL: a key that exists (or was inserted by a
            // concurrent transaction) inserts nothing; SQLite reports it as
            // a constraint error (also a conflict).
            let tail = if c.is_pg() { " ON CONFLICT DO NOTHING" } else { "" };
            (format!("INSERT INTO {table} ({cols}) VALUES ({}){tail}", marks.join(", ")), values)
        }
        Some(_) => {
            let sets: Vec<String> =
                names.iter().enumerate().skip(1).map(|(i, n)| format!("{n} = ${}", i + 1)).collect();
            let sql = format!(
                "UPDATE {table} SET {} WHERE {} = $1 AND version = ${}",
                sets.join(", "),
                names[0],
                names.len() + 1
            );
            (sql, values)
        }
    };
    if let Some(v) = expected {
        values.push(Val::Int(v));
    }
    match c.execute(&sql, &values) {
        Ok(n) => Ok(n == 1),
        Err(Fail::Conflict) => Ok(false),
        Err(Fail::Err(e)) => Err(e),
    }
}

/// One row write: `Ok(true)` when it applied, `Ok(false)` on a conflict.
fn write_row(c: &Tx<'_>, w: &RecordWrite) -> Result<bool> {
    use Val::{Bool, Bytes, Int, Int32, OptInt, OptText, Text};
    let expected = w.expected_version();
    let ot = |t: Option<Timestamp>| OptInt(t.map(secs));
    match w {
        RecordWrite::Offer { row: o, .. } => cas(
            c,
            "offers",
            OFFER_COLS,
            vec![
                text(&o.offer_id),
                text(&o.account),
                Int(secs(o.expires_at)),
                ot(o.used_at),
                Int(o.version),
                Bytes(o.sealed.clone()),
            ],
            expected,
        ),
        RecordWrite::PendingLink { row: p, .. } => cas(
            c,
            "pending_links",
            PENDING_COLS,
            vec![
                text(&p.device_id),
                text(&p.account),
                text(&p.device_name),
                Int(secs(p.confirm_by)),
                Int32(p.attempts),
                Text(name_of(&p.status)),
                Int(p.version),
                Bytes(p.sealed.clone()),
            ],
            expected,
        ),
        RecordWrite::Device { row: d, .. } => cas(
            c,
            "devices",
            DEVICE_COLS,
            vec![
                text(&d.device_id),
                text(&d.account),
                text(&d.name),
                Int(secs(d.linked_at)),
                ot(d.last_used_at),
                Text(name_of(&d.status)),
                Int(d.version),
                Bytes(d.sealed.clone()),
                Bool(d.locked),
                OptText(d.serial.clone()),
                ot(d.usable_from),
            ],
            expected,
        ),
        RecordWrite::Challenge { row: ch, .. } => {
            let ids = serde_json::to_string(&ch.device_ids)
                .map_err(|_| store_err(ErrorCode::Internal, "device ids encoding"))?;
            cas(
                c,
                "challenges",
                CHALLENGE_COLS,
                vec![
                    text(&ch.challenge_id),
                    text(&ch.account),
                    Text(ids),
                    Text(name_of(&ch.kind)),
                    Int(secs(ch.expires_at)),
                    Text(name_of(&ch.status)),
                    Int(ch.version),
                    Bytes(ch.sealed.clone()),
                ],
                expected,
            )
        }
        RecordWrite::Authenticator { row: a, .. } => cas(
            c,
            "authenticators",
            AUTHENTICATOR_COLS,
            vec![
                text(&a.serial),
                text(&a.account),
                OptText(a.user_id.clone()),
                Text(name_of(&a.status)),
                Int(secs(a.imported_at)),
                Int(a.version),
                Bytes(a.sealed.clone()),
            ],
            expected,
        ),
        RecordWrite::Order { row: o, .. } => cas(
            c,
            "orders",
            ORDER_COLS,
            vec![
                text(&o.user_id),
                text(&o.account),
                text(&o.serial),
                Int(secs(o.expires_at)),
                Text(name_of(&o.status)),
                OptText(o.activation_id.clone()),
                Int(o.version),
                Bytes(o.sealed.clone()),
            ],
            expected,
        ),
        RecordWrite::Activation { row: a, .. } => cas(
            c,
            "activations",
            ACTIVATION_COLS,
            vec![
                text(&a.activation_id),
                text(&a.user_id),
                text(&a.account),
                text(&a.serial),
                Text(name_of(&a.step)),
                Text(name_of(&a.status)),
                Int32(a.failures),
                Int(secs(a.expires_at)),
                Int(a.version),
                Bytes(a.sealed.clone()),
            ],
            expected,
        ),
        RecordWrite::Credentials { row: cr, .. } => cas(
            c,
            "credentials",
            CREDENTIALS_COLS,
            vec![
                text(&cr.account),
                Int32(cr.recovery_codes_left),
                Bool(cr.locked),
                ot(cr.pending_from),
                Int(cr.version),
                Bytes(cr.sealed.clone()),
            ],
            expected,
        ),
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

/// Every write of one change (the first `limit` of them), then its events,
/// inside the open transaction. On a conflict the caller must roll back.
fn write_all(c: &Tx<'_>, change: &PortalChange, at: Timestamp, limit: usize) -> Result<Applied> {
    for w in change.writes.iter().take(limit) {
        if !write_row(c, w)? {
            return Ok(Applied::Conflict(describe(w)));
        }
    }
    if c.is_pg() && !change.events.is_empty() {
        c.execute("SELECT pg_advisory_xact_lock($1)", &[Val::Int(EVENTS_LOCK)]).map_err(Fail::into_err)?;
    }
    for e in &change.events {
        let json = serde_json::to_string(e).map_err(|_| store_err(ErrorCode::Internal, "event encoding"))?;
        c.execute("INSERT INTO events (at, json) VALUES ($1, $2)", &[Val::Int(secs(at)), Val::Text(json)])
            .map_err(Fail::into_err)?;
    }
    Ok(Applied::Done)
}

/// Commit after every write applied: a commit that fails as a conflict
/// (PostgreSQL) is one.
fn finish(open: Open<'_>, applied: Applied) -> Result<Applied> {
    match applied {
        Applied::Done => match open.commit() {
            Ok(()) => Ok(Applied::Done),
            Err(Fail::Conflict) => Ok(Applied::Conflict("the commit met a concurrent write".into())),
            Err(Fail::Err(e)) => Err(e),
        },
        conflict => Ok(conflict),
    }
}

/// A few milliseconds, more with every round, at random: losers of a race
/// on one row do not all come back at once.
fn backoff(round: u32) {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(round);
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u32(d.subsec_nanos());
    }
    let cap_us = 1000u64 << round.min(5); // 2 ms .. 32 ms
    std::thread::sleep(std::time::Duration::from_micros(h.finish() % cap_us));
}

// ---------------------------------------------------------------------------
// The portal store

/// A portal server's connection to the portal store (SQLite or PostgreSQL).
pub struct PortalDb {
    b: Backend,
    /// A transaction left open by [`PortalDb::begin_decide`].
    open: std::cell::Cell<bool>,
}

impl std::fmt::Debug for PortalDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalDb").field("backend", &self.backend_name()).finish_non_exhaustive()
    }
}

/// One event of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Increasing id (the outbox's order).
    pub id: i64,
    /// The time of the change that logged it.
    pub at: Timestamp,
    /// The JSON of a `tessera_host::PortalEvent`.
    pub json: String,
}

fn db_path(dir: &Path, file: &str, create: bool) -> Result<PathBuf> {
    if create {
        files::create_private_dir(dir)?;
    } else if !dir.join(file).exists() {
        return Err(store_err(ErrorCode::Storage, format!("{} has no {file}; run init first", dir.display())));
    }
    Ok(dir.join(file))
}

impl PortalDb {
    /// The SQLite store `portal.db` in `dir` (created with `create`).
    pub fn open(dir: &Path, create: bool) -> Result<Self> {
        Self::sqlite(&db_path(dir, "portal.db", create)?)
    }

    /// The store at `db`: `None` or `sqlite:PATH` (SQLite; default
    /// `portal.db` in `dir`), or `postgres://…` / `postgresql://…`. With
    /// `create` the directory (which keeps the portal key) is created; a
    /// PostgreSQL database gets its tables when it has none, whatever
    /// `create` says (several servers may connect at once).
    pub fn connect(dir: &Path, db: Option<&str>, create: bool) -> Result<Self> {
        match db {
            None => Self::open(dir, create),
            Some(u) if u.starts_with("sqlite:") => {
                let path = Path::new(&u["sqlite:".len()..]);
                if path.as_os_str().is_empty() {
                    return Err(store_err(ErrorCode::InvalidInput, "sqlite: needs a path (sqlite:PATH)"));
                }
                if create {
                    files::create_private_dir(dir)?;
                } else if !path.exists() {
                    return Err(store_err(
                        ErrorCode::Storage,
                        format!("{} does not exist; run init first", path.display()),
                    ));
                }
                Self::sqlite(path)
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                if create {
                    files::create_private_dir(dir)?;
                }
                Self::postgres(u)
            }
            Some(_) => Err(store_err(
                ErrorCode::InvalidInput,
                "the database must be sqlite:PATH, postgres://… or postgresql://…",
            )),
        }
    }

    /// A SQLite store at `path` (created, owner-only, when missing).
    pub fn sqlite(path: &Path) -> Result<Self> {
        let conn = schema::open_sqlite(path, schema::PORTAL_SCHEMA, schema::PORTAL_UPGRADES)?;
        Ok(PortalDb { b: Backend::Lite(conn), open: std::cell::Cell::new(false) })
    }

    /// A PostgreSQL store (a `postgres://` URL or key=value string); its
    /// tables are made when missing. The connection follows libpq's
    /// `sslmode` and `sslrootcert`, stricter: TLS always verifies the
    /// server's certificate chain, and plain connections go only to a
    /// loopback address or a Unix socket (the table in `pg_tls.rs`;
    /// `docs/DESIGN.md`). A certificate that does not verify fails with
    /// `STORAGE` naming the cause; a bad `sslmode` or `sslrootcert` is
    /// `INVALID_INPUT`. Errors never quote the connection string.
    pub fn postgres(url: &str) -> Result<Self> {
        let mut client = pg_tls::connect(url)?;
        schema::ensure_pg(&mut client)?;
        Ok(PortalDb { b: Backend::Pg(RefCell::new(client)), open: std::cell::Cell::new(false) })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.b {
            Backend::Lite(_) => "sqlite",
            Backend::Pg(_) => "postgres",
        }
    }

    fn close_open(&self) {
        if self.open.replace(false) {
            let _ = self.b.batch("ROLLBACK");
        }
    }

    /// The portal's name and key fingerprint (the seed is not in here).
    pub fn identity(&self) -> Result<Option<(String, String)>> {
        self.close_open();
        let open = self.b.begin(Begin::Read)?;
        open.tx().query_opt("SELECT name, fingerprint FROM portal WHERE id = 1", &[], |r| Ok((r.text(0)?, r.text(1)?)))
    }

    /// Record the portal's identity; `store_key` runs inside the transaction
    /// (it writes the key file), so a failed key write leaves no portal.
    pub fn create_identity(
        &mut self,
        name: &str,
        fingerprint: &str,
        store_key: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.close_open();
        let open = self.b.begin(Begin::Write)?;
        let tail = if open.tx().is_pg() { " ON CONFLICT DO NOTHING" } else { "" };
        let sql = format!("INSERT INTO portal (id, name, fingerprint) VALUES (1, $1, $2){tail}");
        match open.tx().execute(&sql, &[text(name), text(fingerprint)]) {
            Ok(1) => {}
            Ok(_) | Err(Fail::Conflict) => {
                return Err(store_err(ErrorCode::InvalidState, "this store already holds a portal"))
            }
            Err(Fail::Err(e)) => return Err(e),
        }
        store_key()?;
        open.commit().map_err(Fail::into_err)
    }

    /// Run `f` on a consistent snapshot (a read transaction, rolled back).
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.close_open();
        let open = self.b.begin(Begin::Read)?;
        f(&open.tx())
    }

    /// Change the activation settings: `edit` gets the stored ones and
    /// returns the new ones, in one locked transaction (two operators'
    /// edits of different settings both stay).
    pub fn update_activation_settings(
        &mut self,
        edit: impl FnOnce(ActivationSettings) -> Result<ActivationSettings>,
    ) -> Result<ActivationSettings> {
        self.close_open();
        let open = self.b.begin(Begin::Locked)?;
        let new = edit(read::activation_settings(&open.tx())?)?;
        let json = serde_json::to_string(&new).map_err(|_| store_err(ErrorCode::Internal, "settings encoding"))?;
        open.tx()
            .execute(
                "INSERT INTO settings (name, json) VALUES ('activation', $1)
                     ON CONFLICT (name) DO UPDATE SET json = excluded.json",
                &[Val::Text(json)],
            )
            .map_err(Fail::into_err)?;
        open.commit().map_err(Fail::into_err)?;
        Ok(new)
    }

    /// Apply a change decided without reading (a new offer) in one
    /// transaction: all of it, or (on a conflict) none of it.
    pub fn apply(&mut self, change: &PortalChange, at: Timestamp) -> Result<Applied> {
        self.close_open();
        let open = self.b.begin(Begin::Write)?;
        let applied = write_all(&open.tx(), change, at, usize::MAX)?;
        finish(open, applied)
    }

    /// One portal operation under the host contract: in one transaction,
    /// let `decide` read and call tessera-host, then apply the change it
    /// returned; on a conflict roll back and decide again (at most
    /// [`MAX_ROUNDS`] rounds; on PostgreSQL with a randomized backoff).
    pub fn run<T>(
        &mut self,
        at: Timestamp,
        mut decide: impl FnMut(&Tx<'_>) -> Result<(PortalChange, T)>,
    ) -> Result<Ran<T>> {
        self.close_open();
        let mut last = None;
        for round in 0..MAX_ROUNDS {
            if round > 0 && matches!(self.b, Backend::Pg(_)) {
                backoff(round);
            }
            let open = self.b.begin(Begin::Write)?;
            let (change, value) = decide(&open.tx())?;
            let applied = write_all(&open.tx(), &change, at, usize::MAX)?;
            if let Applied::Done = finish(open, applied)? {
                return Ok(Ran::Stored(change, value));
            }
            last = Some(value);
        }
        last.map(Ran::GaveUp).ok_or_else(gave_up)
    }

    /// The outbox: events with an id above `after`, oldest first.
    pub fn events_since(&mut self, after: i64) -> Result<Vec<StoredEvent>> {
        self.events_page(after, i64::MAX)
    }

    /// [`PortalDb::events_since`], at most `limit` of them (a host polls
    /// the outbox page by page).
    pub fn events_page(&mut self, after: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        self.read(|c| {
            c.query(
                "SELECT id, at, json FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                &[Val::Int(after), Val::Int(limit)],
                |r| Ok(StoredEvent { id: r.int(0)?, at: time(r, 1)?, json: r.text(2)? }),
            )
        })
    }

    /// The simulation's first phase: begin a deferred transaction (SQLite
    /// `BEGIN DEFERRED`, PostgreSQL `REPEATABLE READ`), let `decide` read
    /// and decide, and leave the transaction open for
    /// [`PortalDb::commit_decided`] or [`PortalDb::crash_decided`] (any other
    /// call rolls it back). Other connections may commit in between: the
    /// writes then conflict.
    #[doc(hidden)]
    pub fn begin_decide<T>(
        &mut self,
        decide: impl FnOnce(&Tx<'_>) -> Result<(PortalChange, T)>,
    ) -> Result<(PortalChange, T)> {
        self.close_open();
        let open = self.b.begin(Begin::Deferred)?;
        let decided = decide(&open.tx())?;
        // Left open: the next phase commits or rolls it back.
        let mut open = open;
        open.done = true;
        self.open.set(true);
        Ok(decided)
    }

    /// The simulation's second phase: apply `change` in the transaction
    /// [`PortalDb::begin_decide`] left open and commit (or roll back on a
    /// conflict).
    #[doc(hidden)]
    pub fn commit_decided(&mut self, change: &PortalChange, at: Timestamp) -> Result<Applied> {
        if !self.open.replace(false) {
            return Err(store_err(ErrorCode::InvalidState, "no decided transaction is open"));
        }
        let open = Open { b: &self.b, done: false };
        let applied = write_all(&open.tx(), change, at, usize::MAX)?;
        finish(open, applied)
    }

    /// A server that dies between deciding and committing: the first
    /// `writes` writes of `change` are made in the open transaction, then
    /// the connection rolls back (as a dropped connection does).
    #[doc(hidden)]
    pub fn crash_decided(&mut self, change: &PortalChange, at: Timestamp, writes: usize) -> Result<()> {
        if !self.open.replace(false) {
            return Err(store_err(ErrorCode::InvalidState, "no decided transaction is open"));
        }
        let open = Open { b: &self.b, done: false };
        let partial = PortalChange { writes: change.writes.clone(), events: vec![] };
        write_all(&open.tx(), &partial, at, writes)?;
        drop(open);
        Ok(())
    }

    /// A statement outside the host contract (tests: purge rows, count).
    #[doc(hidden)]
    pub fn raw_execute(&mut self, sql: &str) -> Result<u64> {
        self.close_open();
        Tx { b: &self.b }.execute(sql, &[]).map_err(Fail::into_err)
    }

    /// One integer from a query outside the host contract (tests).
    #[doc(hidden)]
    pub fn raw_count(&mut self, sql: &str) -> Result<i64> {
        self.read(|c| c.query_opt(sql, &[], |r| r.int(0)))?
            .ok_or_else(|| store_err(ErrorCode::Internal, "the query returned no row"))
    }
}

impl Drop for PortalDb {
    fn drop(&mut self) {
        self.close_open();
    }
}

// ---------------------------------------------------------------------------
// The device store

/// The device simulator's key-value store (SQLite `device.db`).
pub struct DeviceDb {
    pub conn: Connection,
}

impl std::fmt::Debug for DeviceDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceDb(sqlite)")
    }
}

impl DeviceDb {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(DeviceDb {
            conn: schema::open_sqlite(
                &db_path(dir, "device.db", true)?,
                schema::DEVICE_SCHEMA,
                schema::DEVICE_UPGRADES,
            )?,
        })
    }
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
    }
    pub fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
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
