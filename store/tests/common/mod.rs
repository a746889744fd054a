//! Where a test's portal store lives: a SQLite file in a fresh temporary
//! directory, or a fresh schema of the PostgreSQL at
//! `TESSERA_TEST_POSTGRES` (each connection of the test sets its
//! `search_path` there), dropped after the test.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use tessera_store::PortalDb;

pub const PG_ENV: &str = "TESSERA_TEST_POSTGRES";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}_{}_{}_{nanos}", name.to_lowercase(), std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

#[derive(Debug)]
pub struct Place {
    /// The portal directory (the SQLite file, or nothing but a key).
    pub dir: PathBuf,
    /// PostgreSQL: the server's URL and this test's schema.
    pg: Option<(String, String)>,
}

impl Place {
    pub fn sqlite(name: &str) -> Place {
        let dir = std::env::temp_dir().join(format!("tessera-store-{}", unique(name)));
        Place { dir, pg: None }
    }

    /// The PostgreSQL of `TESSERA_TEST_POSTGRES`; `None` only when that is
    /// `skip` (said on stderr). Unset fails the test: it must not pass
    /// silently where no server was started.
    pub fn postgres(name: &str) -> Option<Place> {
        let url = match std::env::var(PG_ENV) {
            Ok(u) if u == "skip" => {
                eprintln!("{PG_ENV}=skip: the PostgreSQL half of this test did not run");
                return None;
            }
            Ok(u) if !u.is_empty() => u,
            _ => panic!(
                "{PG_ENV} is not set: start a throw-away PostgreSQL with \
                 `export {PG_ENV}=$(scripts/pg.sh start)` (stop it with `scripts/pg.sh stop`), \
                 or set {PG_ENV}=skip to leave the PostgreSQL tests out on purpose"
            ),
        };
        let schema = format!("t_{}", unique(name));
        let mut admin = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {PG_ENV}: {e}"));
        admin.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
        let dir = std::env::temp_dir().join(format!("tessera-store-{schema}"));
        Some(Place { dir, pg: Some((url, schema)) })
    }

    /// The `--db` of this place (None: SQLite in the directory).
    pub fn url(&self) -> Option<String> {
        self.pg.as_ref().map(|(url, schema)| {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-csearch_path%3D{schema}")
        })
    }

    /// A new connection (another portal server) to this store.
    pub fn open(&self) -> PortalDb {
        PortalDb::connect(&self.dir, self.url().as_deref(), true).unwrap()
    }

    pub fn is_pg(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, schema)) = &self.pg {
            if let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}

/// `#[test]`s running each named `fn(&Place)` on SQLite and on PostgreSQL.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&crate::common::Place::sqlite(stringify!($name))) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(p) = crate::common::Place::postgres(stringify!($name)) { super::$name(&p) }
            } )*
        }
    };
}
