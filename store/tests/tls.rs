//! TLS to PostgreSQL: the PostgreSQL of `TESSERA_TEST_POSTGRES_TLS`
//! (`scripts/pg.sh start --tls`: TLS only over TCP, a certificate for
//! `localhost` signed by a throw-away CA, a second CA beside it) and the
//! plain one of `TESSERA_TEST_POSTGRES` (`scripts/pg.sh start`).
//! `scripts/test.sh` starts both.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use tessera_store::{ErrorCode, PortalDb, TesseraError};

const TLS_ENV: &str = "TESSERA_TEST_POSTGRES_TLS";
const PG_ENV: &str = "TESSERA_TEST_POSTGRES";
const PASSWORD: &str = "hunter2-secret";

/// The URL in `var`; `None` only when it is `skip`. Unset fails the test.
fn env(var: &str, start: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if u == "skip" => {
            eprintln!("{var}=skip: this test did not run");
            None
        }
        Ok(u) if !u.is_empty() => Some(u),
        _ => panic!(
            "{var} is not set: start a throw-away PostgreSQL with `export {var}=$(scripts/pg.sh {start})` \
             (stop it with `scripts/pg.sh stop{}`), or set {var}=skip to leave this test out on purpose",
            start.strip_prefix("start").unwrap_or("")
        ),
    }
}

/// The TLS server: its port and its directory (`tls/`, `sock/`).
struct Tls {
    port: String,
    dir: PathBuf,
    schema: String,
    portal_dir: PathBuf,
}

impl Tls {
    /// The server, with a fresh schema for this test (made over the plain
    /// Unix socket).
    fn new(name: &str) -> Option<Tls> {
        let url = env(TLS_ENV, "start --tls")?;
        let port = url.split("@localhost:").nth(1).and_then(|r| r.split('/').next()).unwrap().to_owned();
        let ca = url.split("sslrootcert=").nth(1).unwrap().split('&').next().unwrap();
        let dir = PathBuf::from(ca.strip_suffix("/tls/ca.pem").unwrap());
        let schema = format!("tls_{name}_{}", std::process::id());
        let portal_dir = std::env::temp_dir().join(format!("tessera-store-{schema}"));
        let t = Tls { port, dir, schema, portal_dir };
        t.admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}", t.schema)).unwrap();
        Some(t)
    }

    fn admin(&self) -> postgres::Client {
        let conn = format!("host={}/sock port={} user=tessera dbname=postgres", self.dir.display(), self.port);
        postgres::Client::connect(&conn, postgres::NoTls).unwrap()
    }

    fn ca(&self, which: &str) -> String {
        format!("{}/tls/{which}.pem", self.dir.display())
    }

    /// A URL with a password, to `host`, with `params` (`&`-joined).
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgresql://tessera:{PASSWORD}@{host}:{}/postgres?options=-csearch_path%3D{}&{params}",
            self.port, self.schema
        )
    }

    fn connect(&self, url: &str) -> Result<PortalDb, TesseraError> {
        PortalDb::connect(&self.portal_dir, Some(url), true)
    }

    /// How many tables the schema holds (a store that connected made them).
    fn tables(&self) -> i64 {
        self.admin()
            .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", &[&self.schema])
            .unwrap()
            .get(0)
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.portal_dir);
        let _ = self.admin().batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

/// This session runs over TLS (the server's view).
fn over_tls(db: &mut PortalDb) -> bool {
    db.raw_count("SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl").unwrap() == 1
}

/// A refusal: `STORAGE`, naming `cause`, without the password.
fn refused(r: Result<PortalDb, TesseraError>, cause: &str) {
    let Err(e) = r else { panic!("connected, expected a refusal naming {cause:?}") };
    let all = format!("{e:?} {e} {}", e.detail());
    eprintln!("refused: {}", e.detail());
    assert_eq!(e.code(), ErrorCode::Storage, "{all}");
    assert!(e.detail().contains(cause), "expected {cause:?} in {all}");
    assert!(!all.contains(PASSWORD), "the password leaked: {all}");
}

#[test]
fn verify_full_with_the_servers_ca_connects_over_tls_and_the_store_works() {
    let Some(t) = Tls::new("full") else { return };
    let url = t.url("localhost", &format!("sslmode=verify-full&sslrootcert={}", t.ca("ca")));
    let mut db = t.connect(&url).unwrap();
    assert_eq!(db.backend_name(), "postgres");
    assert!(over_tls(&mut db));
    db.create_identity("Example Bank", "fp-1", || Ok(())).unwrap();
    // Another server (sslrootcert alone means verify-full) reads it.
    let mut other = t.connect(&t.url("localhost", &format!("sslrootcert={}", t.ca("ca")))).unwrap();
    assert!(over_tls(&mut other));
    assert_eq!(other.identity().unwrap(), Some(("Example Bank".into(), "fp-1".into())));
    // prefer on a loopback host uses the TLS the server offers, verified.
    let mut prefer = t.connect(&t.url("localhost", &format!("sslmode=prefer&sslrootcert={}", t.ca("ca")))).unwrap();
    assert!(over_tls(&mut prefer));
    // The server takes no plain TCP connection at all (pg_hba), so the
    // sessions above were TLS from the start.
    let Err(e) = t.connect(&t.url("localhost", "sslmode=disable")) else { panic!("plain TCP was accepted") };
    assert!(!format!("{e:?}").contains(PASSWORD), "{e:?}");
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_nothing_is_stored() {
    let Some(t) = Tls::new("other_ca") else { return };
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let url = t.url("localhost", &format!("sslmode={mode}&sslrootcert={}", t.ca("other-ca")));
        refused(t.connect(&url), "not signed by a trusted CA");
    }
    // Without sslrootcert the public roots do not know the test CA either.
    refused(t.connect(&t.url("localhost", "sslmode=verify-full")), "not signed by a trusted CA");
    assert_eq!(t.tables(), 0, "a refused connection made tables");
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let Some(t) = Tls::new("host_name") else { return };
    // The certificate names localhost only.
    let full = t.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", t.ca("ca")));
    refused(t.connect(&full), "does not name the host");
    assert_eq!(t.tables(), 0);
    for mode in ["verify-ca", "require"] {
        let mut db = t.connect(&t.url("127.0.0.1", &format!("sslmode={mode}&sslrootcert={}", t.ca("ca")))).unwrap();
        assert!(over_tls(&mut db), "{mode}");
    }
}

#[test]
fn tls_modes_refuse_a_server_without_tls() {
    let Some(plain) = env(PG_ENV, "start") else { return };
    let plain = plain.replacen("://tessera@", &format!("://tessera:{PASSWORD}@"), 1);
    assert!(plain.contains(PASSWORD) && !plain.contains('?'), "{plain}");
    let schema = format!("tls_plain_{}", std::process::id());
    let mut admin = postgres::Client::connect(&plain, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
    let plain = format!("{plain}?options=-csearch_path%3D{schema}");
    let dir = std::env::temp_dir().join(format!("tessera-store-{schema}"));
    for mode in ["require", "verify-ca", "verify-full"] {
        refused(PortalDb::connect(&dir, Some(&format!("{plain}&sslmode={mode}")), true), "does not offer TLS");
    }
    // prefer falls back to plain only because the server offers no TLS
    // (and only on a loopback host).
    let mut db = PortalDb::connect(&dir, Some(&format!("{plain}&sslmode=prefer")), true).unwrap();
    assert!(!over_tls(&mut db));
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
}
