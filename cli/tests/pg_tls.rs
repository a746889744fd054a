//! `tessera portal … --db` and `tessera serve --db` on a PostgreSQL that
//! speaks TLS only (`TESSERA_TEST_POSTGRES_TLS`: `scripts/pg.sh start --tls`,
//! a throw-away CA and a certificate for `localhost`).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{fails, ok, spawn_serve, tmp};
use std::io::{Read, Write};

const TLS_ENV: &str = "TESSERA_TEST_POSTGRES_TLS";
const PASSWORD: &str = "hunter2-secret";

#[test]
fn serve_uses_verified_tls_and_refuses_a_certificate_of_another_ca() {
    let url = match std::env::var(TLS_ENV) {
        Ok(u) if u == "skip" => return eprintln!("{TLS_ENV}=skip: this test did not run"),
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "{TLS_ENV} is not set: start a throw-away PostgreSQL with `export {TLS_ENV}=$(scripts/pg.sh start --tls)`, \
             or set {TLS_ENV}=skip to leave this test out on purpose"
        ),
    };
    let port = url.split("@localhost:").nth(1).and_then(|r| r.split('/').next()).unwrap().to_owned();
    let ca = url.split("sslrootcert=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let server_dir = ca.strip_suffix("/tls/ca.pem").unwrap().to_owned();
    // A fresh schema, made over the server's plain Unix socket.
    let schema = format!("cli_tls_{}", std::process::id());
    let admin = format!("host={server_dir}/sock port={port} user=tessera dbname=postgres");
    let mut admin = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")).unwrap();
    let db = |root: &str| {
        format!(
            "postgresql://tessera:{PASSWORD}@localhost:{port}/postgres?options=-csearch_path%3D{schema}\
             &sslmode=verify-full&sslrootcert={root}"
        )
    };
    let good = db(&ca);
    let bad = db(&format!("{server_dir}/tls/other-ca.pem"));

    let dir = tmp("pg-tls", "portal");
    let d = dir.to_str().unwrap();
    ok(&["portal", "init", "--dir", d, "--name", "Example Bank", "--db", &good]);
    let log = dir.join("serve.log");
    let (mut child, _, addr) = spawn_serve(&["--dir", d, "--db", &good, "--listen", "127.0.0.1:0"], &log);
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains(PASSWORD), "{logged}");
    // The portal row went through TLS into the schema.
    let n: i64 = admin.query_one(&format!("SELECT count(*) FROM {schema}.portal"), &[]).unwrap().get(0);
    assert_eq!(n, 1);

    // A certificate the given CA did not sign: the server does not start.
    let o = fails(&["serve", "--dir", d, "--db", &bad, "--listen", "127.0.0.1:0"], "STORAGE");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not signed by a trusted CA"), "{err}");
    assert!(!err.contains(PASSWORD) && !String::from_utf8_lossy(&o.stdout).contains(PASSWORD), "{err}");

    admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
