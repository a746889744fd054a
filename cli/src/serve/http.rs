//! HTTP/1.1 for `tessera serve`: one request per connection, the head and
//! body read under a deadline and a size bound, the answer with
//! `Connection: close`.

use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    query: String,
    content_length: usize,
    /// `Expect: 100-continue`: the client waits for a go-ahead (curl, for bodies over 1 KiB).
    expect_continue: bool,
    /// What was read after the head (the start of the body).
    rest: Vec<u8>,
    pub body: Vec<u8>,
    /// The body was read (all `Content-Length` bytes).
    body_read: bool,
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<Vec<u8>>,
}

impl Request {
    /// Bytes of the body the client announced and we did not read: the
    /// close drains them (briefly) so that the answer is not lost to a reset.
    pub fn body_unread(&self) -> bool {
        self.content_length > 0 && !self.body_read
    }

    /// `Content-Type: application/json` (parameters such as `charset` allowed).
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
    }

    /// The query's `key=value` pairs, percent-decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((percent_decode(k)?, percent_decode(v)?))
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// The error code for the log (`None`: a success).
    pub code: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Response { status, content_type, body, code: None, headers: Vec::new() }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Response::new(status, "application/json", body.to_string().into_bytes())
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, json!({"error": {"code": code, "message": message}})).with_code(code)
}

fn timed_out() -> Response {
    error(408, "REQUEST_TIMEOUT", "the request did not arrive in time")
}

fn too_large() -> Response {
    error(413, "REQUEST_TOO_LARGE", "the request is too large (a body of at most 16 KiB)")
}

/// Read into `buf` before `deadline`: the bytes read (0 at the end).
fn read_some(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, Response> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        match s.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Err(timed_out()),
            Err(_) => return Err(error(400, "INVALID_INPUT", "the connection failed")),
        }
    }
}

/// The request line and headers (and whatever of the body came with them).
pub fn read_head(s: &mut TcpStream, deadline: Instant) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = read_some(s, &mut chunk, deadline)?;
        if n == 0 {
            return Err(error(400, "INVALID_INPUT", "the connection closed before a request"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let (method, target) = (req.method.unwrap_or_default(), req.path.unwrap_or_default());
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let mut content_length = None;
                let mut expect_continue = false;
                let (mut host, mut content_type, mut authorization) = (None, None, None);
                let dup = |name: &str| error(400, "INVALID_INPUT", &format!("more than one {name} header"));
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(error(400, "INVALID_INPUT", "send a Content-Length, not a chunked body"));
                    }
                    if h.name.eq_ignore_ascii_case("expect") {
                        expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
                    }
                    if h.name.eq_ignore_ascii_case("content-length") {
                        if content_length.is_some() {
                            return Err(dup("Content-Length"));
                        }
                        content_length = Some(parse_content_length(h.value)?);
                    }
                    if h.name.eq_ignore_ascii_case("host") {
                        if host.is_some() {
                            return Err(dup("Host"));
                        }
                        host = Some(String::from_utf8_lossy(h.value).trim().to_owned());
                    }
                    if h.name.eq_ignore_ascii_case("content-type") {
                        if content_type.is_some() {
                            return Err(dup("Content-Type"));
                        }
                        content_type = Some(String::from_utf8_lossy(h.value).trim().to_owned());
                    }
                    if h.name.eq_ignore_ascii_case("authorization") {
                        if authorization.is_some() {
                            return Err(dup("Authorization"));
                        }
                        authorization = Some(h.value.to_vec());
                    }
                }
                let content_length = content_length.unwrap_or(0);
                return Ok(Request {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    query: query.to_owned(),
                    content_length,
                    expect_continue,
                    rest: buf[len..].to_vec(),
                    body: Vec::new(),
                    body_read: false,
                    host,
                    content_type,
                    authorization,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(too_large()),
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(error(400, "INVALID_INPUT", "not an HTTP/1.1 request")),
        }
    }
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces inside).
fn parse_content_length(v: &[u8]) -> Result<usize, Response> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(error(400, "INVALID_INPUT", "Content-Length is not a number"));
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| error(400, "INVALID_INPUT", "Content-Length is not a number"))
}

/// The body (`Content-Length` bytes, at most `max`) before `deadline`.
pub fn read_body(s: &mut TcpStream, req: &mut Request, max: usize, deadline: Instant) -> Result<(), Response> {
    if req.content_length > max {
        return Err(too_large());
    }
    let mut body = std::mem::take(&mut req.rest);
    if req.expect_continue && body.len() < req.content_length {
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let mut chunk = [0u8; 4096];
    while body.len() < req.content_length {
        let n = read_some(s, &mut chunk, deadline)?;
        if n == 0 {
            return Err(error(400, "INVALID_INPUT", "the body is shorter than its Content-Length"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(req.content_length);
    req.body = body;
    req.body_read = true;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        401 => "Unauthorized",
        403 => "Forbidden",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

pub fn write_response(s: &mut TcpStream, r: &Response) {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n\
         Content-Security-Policy: default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; \
         frame-ancestors 'none'\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(&r.body)).and_then(|()| s.flush());
}

/// The most a close drains of what the client still sends.
const DRAIN_MAX: usize = 64 * 1024;
/// The longest a close drains (and never past the request's deadline).
const DRAIN_TIME: Duration = Duration::from_millis(200);

/// Close after the answer: end our side; then, only when the client's body
/// was left unread (`drain`), read and drop what it still sends for a moment
/// (at most [`DRAIN_TIME`], never past `deadline`, at most [`DRAIN_MAX`]
/// bytes), so that the unread body does not turn the close into a reset that
/// loses the answer. A client trickling bytes cannot keep the connection
/// (and its slot) past that.
pub fn close(mut s: TcpStream, drain: bool, deadline: Instant) {
    let _ = s.shutdown(Shutdown::Write);
    if !drain {
        return;
    }
    let end = deadline.min(Instant::now() + DRAIN_TIME);
    let mut sink = [0u8; 4096];
    let mut left = DRAIN_MAX;
    while left > 0 {
        let wait = end.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            break;
        }
        let _ = s.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match s.read(&mut sink) {
            Ok(0) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// `%XX` decoding (and `+` as a space in queries is not used: ids and
/// accounts are sent percent-encoded). `None` for a bad escape or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Exactly two hex digits (`from_str_radix` alone takes `+f`).
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// `raw` sent to a fresh server socket: what `read_head` makes of it.
    fn head_of(raw: &[u8]) -> Result<Request, Response> {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        c.write_all(raw).expect("write");
        let (mut s, _) = l.accept().expect("accept");
        read_head(&mut s, Instant::now() + Duration::from_secs(2))
    }

    fn status(r: Result<Request, Response>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status)
    }

    #[test]
    fn content_length_must_be_one_plain_number() {
        let ok = head_of(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(ok.as_ref().map(|r| r.content_length).ok(), Some(5));
        // Smuggling shapes: two values (the last won), a sign, junk.
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n")), 400);
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")), 400);
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n")), 400);
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n")), 400);
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n")), 400);
        assert_eq!(status(head_of(b"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")), 400);
    }

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        assert_eq!(percent_decode("a%40b%2F").as_deref(), Some("a@b/"));
        assert_eq!(percent_decode("%+f"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("% f"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn the_close_drains_briefly_and_only_an_unread_body() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        // The client trickles a byte every 50 ms forever: the close must not wait for it.
        let t = std::thread::spawn(move || {
            for _ in 0..40 {
                if c.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let t0 = Instant::now();
        close(s, true, Instant::now() + Duration::from_secs(10));
        assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());
        let _ = t.join();
    }
}
