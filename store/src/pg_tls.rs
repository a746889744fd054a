//! The connection to PostgreSQL, with TLS (rustls on the AWS-LC provider).
//!
//! The connection string is libpq's (a `postgres://` URL or `key=value`
//! pairs). rust-postgres knows `sslmode=disable|prefer|require` but not the
//! verifying modes nor `sslrootcert`, so this module takes `sslmode` and
//! `sslrootcert` out of the string, hands the rest to [`postgres::Config`],
//! and sets up the TLS itself. Tessera is stricter than libpq: every TLS
//! connection verifies the server's certificate chain.
//!
//! | `sslmode` | Tessera |
//! |---|---|
//! | `disable` | plain; only to a loopback address or a Unix socket (refused otherwise) |
//! | `prefer` | loopback / Unix socket: TLS (chain verified) if the server offers it, else plain; any other host: as `require` |
//! | `require` | TLS, the chain verified against the roots; the host name is not checked (libpq does not verify at all) |
//! | `verify-ca` | TLS, the chain verified; the host name is not checked |
//! | `verify-full` | TLS, the chain verified and the certificate must name the host |
//! | not given | loopback / Unix socket: `disable`; any other host, or `sslrootcert` given: `verify-full` |
//!
//! The roots are the CA certificates of `sslrootcert=PATH` (PEM) if given,
//! else Mozilla's list compiled in (`webpki-roots`: the same on every
//! machine and container, independent of the host's CA bundle). `allow`
//! (plain first) and client certificates (`sslcert`, `sslkey`, …) are not
//! supported and refused as invalid input.
//!
//! Errors never repeat the connection string (it can hold the password).

use crate::{pg_err, store_err, ErrorCode, Result, TesseraError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// libpq's `sslmode`, as Tessera applies it (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed connection string: rust-postgres's part and the TLS settings.
#[derive(Debug)]
pub(crate) struct Target {
    pub config: postgres::Config,
    /// The mode in force (the default resolved).
    pub mode: SslMode,
    pub root: Option<PathBuf>,
}

fn invalid(detail: impl Into<String>) -> TesseraError {
    store_err(ErrorCode::InvalidInput, detail)
}

fn malformed() -> TesseraError {
    invalid("the PostgreSQL connection string is malformed (its text is not repeated here)")
}

/// The TLS parameters taken out of a connection string.
#[derive(Default)]
struct Ssl {
    mode: Option<SslMode>,
    root: Option<PathBuf>,
}

impl Ssl {
    /// Takes `key`'s `value` if it is one of ours; `Ok(false)` leaves the
    /// pair to rust-postgres.
    fn take(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "sslmode" => {
                self.mode = Some(match value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    "allow" => return Err(invalid("sslmode=allow is not supported: use disable or prefer")),
                    _ => return Err(invalid("sslmode must be disable, prefer, require, verify-ca or verify-full")),
                });
                Ok(true)
            }
            "sslrootcert" => {
                if value.is_empty() {
                    return Err(invalid("sslrootcert needs the path of a PEM file of CA certificates"));
                }
                self.root = Some(PathBuf::from(value));
                Ok(true)
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslsni" | "sslcertmode" => {
                Err(invalid(format!("the PostgreSQL connection parameter {key} is not supported")))
            }
            _ => Ok(false),
        }
    }
}

/// A query key or value, percent-decoded (libpq's URIs are RFC 3986).
fn percent_decode(s: &str) -> Result<String> {
    tessera_core::encoding::percent_decode(s).and_then(|b| String::from_utf8(b).ok()).ok_or_else(malformed)
}

/// A URL without our parameters.
fn strip_url(url: &str, ssl: &mut Ssl) -> Result<String> {
    let Some((base, query)) = url.split_once('?') else { return Ok(url.to_owned()) };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(malformed)?;
        if !ssl.take(&percent_decode(k)?, &percent_decode(v)?)? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) })
}

/// `key=value` pairs without ours (values may be quoted: `'a b\'c'`).
fn strip_pairs(s: &str, ssl: &mut Ssl) -> Result<String> {
    let mut kept: Vec<&str> = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(malformed)?;
        let key = rest[..eq].trim_end();
        let after = rest[eq + 1..].trim_start();
        let start_of_value = rest.len() - after.len();
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        if after.starts_with('\'') {
            chars.next();
            let mut closed = false;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or_else(malformed)?.1),
                    '\'' => {
                        end = i + 1;
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(malformed());
            }
        } else {
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or_else(malformed)?.1),
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    c => value.push(c),
                }
            }
        }
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(malformed());
        }
        let pair_end = start_of_value + end;
        if !ssl.take(key, &value)? {
            kept.push(&rest[..pair_end]);
        }
        rest = rest[pair_end..].trim_start();
    }
    Ok(kept.join(" "))
}

/// Every host (and `hostaddr`) is a Unix socket or a loopback address.
fn is_local(config: &postgres::Config) -> bool {
    let host = |h: &postgres::config::Host| match h {
        postgres::config::Host::Unix(_) => true,
        postgres::config::Host::Tcp(name) => {
            name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    };
    config.get_hosts().iter().all(host) && config.get_hostaddrs().iter().all(|a| a.is_loopback())
}

/// Parse a connection string and resolve its TLS settings (no I/O).
pub(crate) fn parse(conn: &str) -> Result<Target> {
    let mut ssl = Ssl::default();
    let rest = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        strip_url(conn, &mut ssl)?
    } else {
        strip_pairs(conn, &mut ssl)?
    };
    let mut config: postgres::Config = rest.parse().map_err(|_| malformed())?;
    let local = is_local(&config);
    let mode = match (ssl.mode, &ssl.root) {
        (Some(m), _) => m,
        (None, Some(_)) => SslMode::VerifyFull,
        (None, None) if local => SslMode::Disable,
        (None, None) => SslMode::VerifyFull,
    };
    config.ssl_mode(match mode {
        SslMode::Disable if !local => {
            return Err(invalid(
                "PostgreSQL over a network needs TLS: sslmode=disable is only for a loopback address or a Unix \
                 socket (use sslmode=verify-full with sslrootcert=PATH)",
            ))
        }
        SslMode::Disable => postgres::config::SslMode::Disable,
        // Plain only where plain is allowed at all.
        SslMode::Prefer if local => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    Ok(Target { config, mode, root: ssl.root })
}

/// Verifies the chain like rustls's WebPKI verifier, without the host name.
/// rustls checks the name last (after the chain, validity and usage), so
/// accepting only a name mismatch skips exactly that check.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn roots(root: Option<&PathBuf>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let Some(path) = root else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let bad = |why: String| invalid(format!("sslrootcert {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(format!("is not a PEM file of certificates ({e})")))?;
        roots.add(cert).map_err(|e| bad(format!("holds a certificate that is not a valid CA ({e})")))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(roots)
}

/// rustls's client configuration for `mode` (not `Disable`).
fn tls_config(mode: SslMode, root: Option<&PathBuf>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(roots(root)?);
    fn internal(e: impl std::fmt::Display) -> TesseraError {
        store_err(ErrorCode::Internal, format!("TLS set-up: {e}"))
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(internal)?;
    Ok(if mode == SslMode::VerifyFull {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let chain = WebPkiServerVerifier::builder_with_provider(roots, provider).build().map_err(internal)?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(chain))).with_no_client_auth()
    })
}

/// The rustls error behind a failed connection, if any.
fn rustls_cause(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()?.downcast_ref()) {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// Why the connection failed, naming a TLS cause plainly.
fn connect_err(e: &postgres::Error, t: &Target) -> TesseraError {
    let roots = match &t.root {
        Some(p) => format!("the CAs of sslrootcert {}", p.display()),
        None => "the webpki roots (give sslrootcert=PATH for a private CA)".to_owned(),
    };
    let why = match rustls_cause(e) {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => {
                format!("TLS: the server's certificate is not signed by a trusted CA (trusted: {roots})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS: the server's certificate does not name the host connected to (sslmode=verify-full checks \
                 the name)"
                    .to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS: the server's certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS: the server's certificate is not valid yet".to_owned()
            }
            other => format!("TLS: the server's certificate is not accepted ({other:?})"),
        },
        Some(other) => format!("TLS: the handshake failed ({other})"),
        None => {
            // rust-postgres's own errors keep their cause apart (an I/O
            // error, "server does not support TLS"; never the string).
            let cause = std::error::Error::source(e).map(|c| c.to_string()).unwrap_or_default();
            if cause.contains("server does not support TLS") {
                "TLS: the server does not offer TLS, which this connection requires (sslmode)".to_owned()
            } else if e.as_db_error().is_none() && !cause.is_empty() {
                format!("{}: {cause}", pg_err(e).detail())
            } else {
                pg_err(e).detail().to_owned()
            }
        }
    };
    store_err(ErrorCode::Storage, format!("database: cannot connect to PostgreSQL: {why}"))
}

/// Connect as the connection string says (see the module's table).
pub(crate) fn connect(conn: &str) -> Result<postgres::Client> {
    let t = parse(conn)?;
    let client = if t.mode == SslMode::Disable {
        t.config.connect(postgres::NoTls)
    } else {
        let tls = tls_config(t.mode, t.root.as_ref())?;
        t.config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    };
    // The error never quotes the connection string (password).
    client.map_err(|e| connect_err(&e, &t))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use postgres::config::SslMode as Pg;

    fn modes(conn: &str) -> (SslMode, postgres::config::SslMode) {
        let t = parse(conn).unwrap();
        (t.mode, t.config.get_ssl_mode())
    }

    #[test]
    fn defaults_are_plain_only_on_loopback_and_verify_full_elsewhere() {
        assert_eq!(modes("postgres://u@127.0.0.1:5/d"), (SslMode::Disable, Pg::Disable));
        assert_eq!(modes("postgres://u@localhost/d"), (SslMode::Disable, Pg::Disable));
        assert_eq!(modes("postgres://u@[::1]:5/d"), (SslMode::Disable, Pg::Disable));
        assert_eq!(modes("host=/run/pg user=u"), (SslMode::Disable, Pg::Disable));
        assert_eq!(modes("postgres://u:pw@db.example.com/d"), (SslMode::VerifyFull, Pg::Require));
        assert_eq!(modes("host=10.0.0.5 user=u"), (SslMode::VerifyFull, Pg::Require));
        // A loopback name with a remote hostaddr is not local.
        assert_eq!(modes("host=localhost hostaddr=10.0.0.5 user=u"), (SslMode::VerifyFull, Pg::Require));
        // sslrootcert alone asks for verification.
        assert_eq!(modes("postgres://u@127.0.0.1/d?sslrootcert=/ca.pem"), (SslMode::VerifyFull, Pg::Require));
    }

    #[test]
    fn modes_strip_and_keep_the_rest() {
        let t = parse("postgres://u:pw@db:7/d?connect_timeout=3&sslmode=verify-ca&sslrootcert=%2Fetc%2Fca%20x.pem")
            .unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert_eq!(t.root, Some(PathBuf::from("/etc/ca x.pem")));
        assert_eq!(t.config.get_connect_timeout(), Some(&std::time::Duration::from_secs(3)));
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        let t = parse("host=db user=u sslmode = 'verify-full' sslrootcert='/a b/c\\'s.pem' dbname=x").unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root, Some(PathBuf::from("/a b/c's.pem")));
        assert_eq!(t.config.get_dbname(), Some("x"));
        assert_eq!(modes("postgres://u@db/d?sslmode=require"), (SslMode::Require, Pg::Require));
        // prefer never falls back to plain across a network.
        assert_eq!(modes("postgres://u@db/d?sslmode=prefer"), (SslMode::Prefer, Pg::Require));
        assert_eq!(modes("postgres://u@127.0.0.1/d?sslmode=prefer"), (SslMode::Prefer, Pg::Prefer));
    }

    #[test]
    fn refusals_are_invalid_input_without_the_password() {
        for bad in [
            "postgres://u:hunter2@db.example.com/d?sslmode=disable",
            "postgres://u:hunter2@127.0.0.1/d?sslmode=allow",
            "postgres://u:hunter2@127.0.0.1/d?sslmode=verify",
            "postgres://u:hunter2@127.0.0.1/d?sslcert=/c.pem",
            "postgres://u:hunter2@127.0.0.1/d?sslmode",
            "host=db password=hunter2 sslmode='verify-full",
            "postgres://u:hunter2@127.0.0.1/d?nonsense=1",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{bad}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
        let e = parse("postgres://u:hunter2@db.example.com/d?sslmode=disable").unwrap_err();
        assert!(e.detail().contains("needs TLS"), "{e:?}");
    }

    #[test]
    fn a_root_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("tessera-pg-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        for path in [empty, dir.join("missing.pem")] {
            let Err(e) = connect(&format!("postgres://u:hunter2@127.0.0.1:1/d?sslrootcert={}", path.display())) else {
                panic!("connected")
            };
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{e:?}");
            assert!(e.detail().contains("sslrootcert") && !e.detail().contains("hunter2"), "{e:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
