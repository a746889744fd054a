//! The device simulator's HTTP client for `tessera serve` (`--server URL`):
//! one JSON request per connection over plain HTTP/1.1 (put a
//! TLS-terminating proxy in front of a server on another machine).

use crate::cli_err;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;
use tessera_host::{ErrorCode, TesseraError as Error};

const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (the server's are a few KiB).
const MAX_RESPONSE: u64 = 1 << 20;

/// A server's answer: its HTTP status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The body of a 2xx answer, else the error it names
    /// (`{"error": {"code", "message"}}`).
    pub fn ok(self) -> Result<Value, Error> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        Err(self.error())
    }

    /// The error of a non-2xx answer.
    pub fn error(&self) -> Error {
        let e = &self.body["error"];
        let code = e["code"].as_str().and_then(ErrorCode::parse).unwrap_or(ErrorCode::Storage);
        let message = e["message"].as_str().unwrap_or("no error message");
        let name = e["code"].as_str().unwrap_or("none");
        Error::new(code, format!("the server answered HTTP {} ({name}): {message}", self.status))
    }
}

/// `POST {server}{path}` with a JSON body.
pub fn post(server: &str, path: &str, body: &Value) -> Result<Reply, Error> {
    let (host, addr) = parse_server(server)?;
    let payload = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\nAccept: application/json\r\n\r\n",
        payload.len()
    );
    let io = |e: std::io::Error| cli_err(ErrorCode::Storage, format!("{server}: {e}"));
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(io)?.collect();
    let first = addrs.first().ok_or_else(|| cli_err(ErrorCode::InvalidInput, format!("{server}: no address")))?;
    let mut s = TcpStream::connect_timeout(first, TIMEOUT).map_err(io)?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(payload.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut raw).map_err(io)?;
    parse_reply(&raw).ok_or_else(|| cli_err(ErrorCode::MalformedMessage, format!("{server}: not an HTTP JSON answer")))
}

/// `http://HOST:PORT` (a trailing `/` allowed): the Host header and the
/// address to connect to.
fn parse_server(server: &str) -> Result<(String, String), Error> {
    let rest = server.strip_prefix("http://").ok_or_else(|| {
        cli_err(ErrorCode::InvalidInput, "--server must be http://HOST:PORT (TLS belongs to a proxy in front)")
    })?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(cli_err(ErrorCode::InvalidInput, "--server must be http://HOST:PORT without a path"));
    }
    let addr = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((host.to_owned(), addr))
}

/// Percent-encode a path segment (an id or an account).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body = serde_json::from_slice(&raw[split + 4..]).ok()?;
    Some(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_replies() {
        assert_eq!(
            parse_server("http://127.0.0.1:8080/").ok(),
            Some(("127.0.0.1:8080".into(), "127.0.0.1:8080".into()))
        );
        assert_eq!(parse_server("http://portal").ok(), Some(("portal".into(), "portal:80".into())));
        assert!(parse_server("https://portal").is_err());
        assert!(parse_server("http://portal/v1").is_err());
        let r = parse_reply(
            b"HTTP/1.1 423 Locked\r\nContent-Length: 40\r\n\r\n{\"error\":{\"code\":\"LOCKED_OUT\",\"message\":\"x\"}}",
        );
        let e = r.map(|r| r.error().code());
        assert_eq!(e, Some(ErrorCode::LockedOut));
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n\r\nnot json").is_none());
    }
}
