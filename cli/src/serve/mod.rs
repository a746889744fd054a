//! `tessera serve`: the portal side as an HTTP JSON service (a sidecar for
//! portals written in any language), documented in `docs/openapi.yaml`.
//!
//! A small synchronous server: the main thread accepts connections and
//! hands them to a fixed pool of workers, each with its own store
//! connection (a `PortalDb` is not shared). One request per connection
//! (`Connection: close`); the head and body must arrive within
//! `--timeout` seconds (408 `REQUEST_TIMEOUT`), bodies are at most 16 KiB
//! (413 `REQUEST_TOO_LARGE`), each client address has a token bucket of
//! `--rate-limit-per-ip N/min` (taken first, before any parsing or
//! public-key work) and at most `--max-connections-per-ip` connections, each
//! account a bucket of `--rate-limit N/min` on host routes (429
//! `RATE_LIMITED` with `Retry-After`). Host routes need the bearer token of
//! `--auth-token-file` when there is one (see [`gate`]); phone routes are
//! authenticated by the protocol. Every operation is
//! [`crate::service`]'s, so an answer's JSON is what `tessera portal … --json`
//! prints. One JSON log line per request on stderr: method, route template,
//! status, code and time, never a body, a query or a path's values.
//! SIGTERM or SIGINT: stop accepting, finish every accepted request, exit 0.

mod http;

use crate::cli_err;
use crate::portal_cmd::load_portal;
use crate::service::{self, ChallengeOptions, Ctx, Failure, OfferOptions, Output};
use crate::store::{read, PortalDb};
use clap::Args;
use http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_core::link::MAX_ACCOUNT_LEN;
use tessera_host::{ErrorCode, Portal, PortalChange, TesseraError as Error, Timestamp};

/// The largest request body.
pub const MAX_BODY: usize = 16 * 1024;
/// Connections answered at once.
const MAX_CONNECTIONS: usize = 256;
/// The most rate-limit buckets kept (each limiter); the oldest go first.
const MAX_BUCKETS: usize = 50_000;
/// The shortest bearer token accepted.
const MIN_TOKEN_LEN: usize = 16;

/// Connections open per client address.
type PerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One connection counted in `active` and in its address's count while
/// this lives (a thread that panicked too).
struct Counted {
    active: Arc<AtomicUsize>,
    per_ip: PerIp,
    ip: IpAddr,
}

impl Counted {
    fn new(active: &Arc<AtomicUsize>, per_ip: &PerIp, ip: IpAddr) -> Self {
        active.fetch_add(1, Ordering::SeqCst);
        *per_ip.lock().unwrap_or_else(|p| p.into_inner()).entry(ip).or_insert(0) += 1;
        Counted { active: Arc::clone(active), per_ip: Arc::clone(per_ip), ip }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        drop(m);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The portal's directory (`tessera portal init`): its key file, and its
    /// SQLite database unless --db names another store.
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on (`127.0.0.1:0`: any free port; the line
    /// `listening on http://ADDR` on stdout names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The store: `sqlite:PATH` or `postgres://…` (default: `TESSERA_DB`,
    /// else SQLite in --dir); a URL with a password also as `@FILE` or `env:NAME`;
    /// TLS: `?sslmode=verify-full&sslrootcert=CA.pem` (the default off loopback).
    #[arg(long)]
    db: Option<crate::input::SecretArg>,
    /// Requests per minute and account on host routes, e.g. `120/min`.
    #[arg(long, default_value = "120/min")]
    rate_limit: String,
    /// Requests per minute and client address, every route (charged before
    /// any parsing or public-key work).
    #[arg(long, default_value = "600/min")]
    rate_limit_per_ip: String,
    /// Connections open at once from one client address.
    #[arg(long, default_value_t = 32)]
    max_connections_per_ip: usize,
    /// A file holding the bearer token host routes require (at least 16
    /// characters; also `TESSERA_SERVE_TOKEN`). Needed to listen on a
    /// non-loopback address; turns the demo page off.
    #[arg(long)]
    auth_token_file: Option<PathBuf>,
    /// Seconds a request's head and body may take to arrive.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Store connections (each serves one request at a time).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Serve the demo page at `/` (default: only when listening on loopback).
    #[arg(long, conflicts_with = "no_demo_page")]
    demo_page: bool,
    /// Never serve the demo page.
    #[arg(long)]
    no_demo_page: bool,
    /// Machine-readable output: `{"listening": "http://ADDR"}` instead of
    /// the `listening on` line (the log on stderr is JSON either way).
    #[arg(long)]
    json: bool,
}

/// The store of `dir` (SQLite), or the one `db` names (`sqlite:PATH`,
/// `postgres://…`): [`PortalDb::connect`].
pub fn open_store(dir: &Path, db: Option<&str>) -> Result<PortalDb, Error> {
    PortalDb::connect(dir, db, false)
}

/// `N/min` (also `N/s`, `N/h`): tokens per second and the bucket size.
fn parse_rate(s: &str) -> Result<(f64, f64), Error> {
    let bad = || cli_err(ErrorCode::InvalidInput, "--rate-limit must be N/min (or N/s, N/h), N at least 1");
    let (n, unit) = s.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok((f64::from(n) / per, f64::from(n)))
}

/// Token buckets, one per key (an account, or a client address), kept
/// under a keyed hash of the key (a client-chosen name is never stored),
/// at most `cap` of them.
#[derive(Debug)]
struct RateLimiter {
    per_sec: f64,
    burst: f64,
    hasher: std::collections::hash_map::RandomState,
    cap: usize,
    buckets: Mutex<HashMap<u64, (f64, Instant)>>,
}

impl RateLimiter {
    fn new((per_sec, burst): (f64, f64), cap: usize) -> Self {
        RateLimiter { per_sec, burst, hasher: Default::default(), cap, buckets: Mutex::new(HashMap::new()) }
    }

    /// `Ok` and one token taken, or the seconds until the next one.
    fn take(&self, key: &str) -> Result<(), u64> {
        use std::hash::BuildHasher as _;
        let key = self.hasher.hash_one(key);
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= self.cap && !b.contains_key(&key) {
            // Full buckets hold nothing a new one would not.
            let (per_sec, burst) = (self.per_sec, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * per_sec < burst);
            if b.len() >= self.cap {
                // Still full: drop the oldest tenth.
                let mut ats: Vec<Instant> = b.values().map(|(_, at)| *at).collect();
                let cut = ats.len() / 10;
                let (_, nth, _) = ats.select_nth_unstable(cut);
                let cut = *nth;
                b.retain(|_, (_, at)| *at > cut);
            }
        }
        let (tokens, at) = b.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// The store connections: at most `size` (`--workers`), each used by one
/// request at a time (a `PortalDb` is not shared), opened on first need and
/// again after a storage failure or a panic.
struct Pool {
    /// Idle connections, and how many exist (idle or in use).
    state: Mutex<(Vec<PortalDb>, usize)>,
    freed: Condvar,
    size: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).finish_non_exhaustive()
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<PortalDb>, usize)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection within `wait`, else `STORAGE` (every one is busy).
    fn checkout(&self, dir: &Path, db: Option<&str>, wait: Duration) -> Result<PortalDb, Error> {
        let deadline = Instant::now() + wait;
        let mut g = self.lock();
        loop {
            if let Some(c) = g.0.pop() {
                return Ok(c);
            }
            if g.1 < self.size {
                g.1 += 1;
                drop(g);
                return open_store(dir, db).inspect_err(|_| self.lost());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(cli_err(ErrorCode::Storage, "every store connection is busy; try again"));
            }
            g = self.freed.wait_timeout(g, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn checkin(&self, c: PortalDb) {
        self.lock().0.push(c);
        self.freed.notify_one();
    }

    /// A connection dropped (failed, or used by a handler that panicked).
    fn lost(&self) {
        let mut g = self.lock();
        g.1 = g.1.saturating_sub(1);
        drop(g);
        self.freed.notify_one();
    }
}

/// What every connection's thread shares.
struct Shared {
    dir: PathBuf,
    /// The store's URL (may hold a password: never printed).
    db: Option<String>,
    portal: Arc<Portal>,
    /// Per account, host routes only (authenticated requests).
    limiter: RateLimiter,
    /// Per client address, every route, before anything else.
    peer_limiter: RateLimiter,
    timeout: Duration,
    demo_page: bool,
    /// The bearer token of host routes (`None`: loopback only, open).
    token: Option<zeroize::Zeroizing<Vec<u8>>>,
    pool: Pool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("dir", &self.dir)
            .field("db", &self.db.as_ref().map(|_| "<redacted>"))
            .field("limiter", &self.limiter)
            .field("peer_limiter", &self.peer_limiter)
            .field("timeout", &self.timeout)
            .field("demo_page", &self.demo_page)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// One request's worker: the shared settings and the store connection it
/// took from the pool (given back when it is dropped).
struct Worker {
    shared: Arc<Shared>,
    db: Option<PortalDb>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.release();
    }
}

impl Worker {
    fn store(&mut self) -> Result<&mut PortalDb, Error> {
        if self.db.is_none() {
            let s = &self.shared;
            self.db = Some(s.pool.checkout(&s.dir, s.db.as_deref(), s.timeout)?);
        }
        self.db.as_mut().ok_or_else(|| cli_err(ErrorCode::Internal, "no store"))
    }

    /// Give the store connection back to the pool.
    fn release(&mut self) {
        if let Some(c) = self.db.take() {
            self.shared.pool.checkin(c);
        }
    }

    /// Drop the store connection (a failure or a panic may have left it in
    /// any state); the next request opens a new one.
    fn discard(&mut self) {
        if self.db.take().is_some() {
            self.shared.pool.lost();
        }
    }

    /// Run one service operation at the system clock's time.
    fn op(&mut self, f: impl FnOnce(&mut Ctx<'_>) -> service::Result<Output>) -> Result<Output, Failure> {
        let portal = Arc::clone(&self.shared.portal);
        let result = self.store().map_err(Failure::from).and_then(|db| {
            let mut cx = Ctx { db, portal: &portal, now: Timestamp::now(), notify: no_notify };
            f(&mut cx)
        });
        if let Err(f) = &result {
            if f.error.code() == ErrorCode::Storage {
                self.discard();
            }
        }
        result
    }
}

/// The service leaves events in the events table (`GET /v1/events`).
fn no_notify(_: &PortalChange) {}

type Handler = fn(&mut Worker, &Request, &[String]) -> Response;

/// Every route: method, path template, handler. `docs/openapi.yaml` lists
/// exactly these (a unit test checks both ways).
const ROUTES: &[(&str, &str, Handler)] = &[
    ("GET", "/health", health),
    ("GET", "/", page),
    ("GET", "/app.js", page_script),
    ("POST", "/v1/qr.svg", qr_svg),
    ("POST", "/v1/accounts/{account}/link-offers", link_offer),
    ("POST", "/v1/accounts/{account}/new-device-offers", new_device_offer),
    ("POST", "/v1/link-requests", link_request),
    ("GET", "/v1/accounts/{account}/links", pending_links),
    ("POST", "/v1/accounts/{account}/links/confirm", link_confirm),
    ("GET", "/v1/accounts/{account}/devices", devices),
    ("PATCH", "/v1/accounts/{account}/devices/{device}", rename),
    ("DELETE", "/v1/accounts/{account}/devices/{device}", unlink),
    ("POST", "/v1/accounts/{account}/devices/{device}/unlock", unlock),
    ("POST", "/v1/accounts/{account}/devices/{device}/totp", verify_totp),
    ("POST", "/v1/status-requests", status_request),
    ("POST", "/v1/accounts/{account}/challenges", challenge),
    ("GET", "/v1/challenges/{challenge}", challenge_status),
    ("POST", "/v1/challenges/{challenge}/answer", answer),
    ("POST", "/v1/devices/{device}/link-challenges", link_challenge),
    ("POST", "/v1/devices/{device}/vouch", vouch),
    ("GET", "/v1/events", events),
];

/// The HTTP status of an error code (docs/openapi.yaml, "Errors").
pub fn status_of(code: ErrorCode) -> u16 {
    use ErrorCode::*;
    match code {
        InvalidInput | InvalidSecret | SecretTooShort | InvalidDigits | InvalidAlgorithm | InvalidTime | InvalidUri
        | InvalidOcraSuite | InvalidOcraInput | MalformedMessage | WrongMessageKind | UnsupportedVersion
        | MessageTampered | PasscodePolicy | WeakPasscode | PasswordPolicy => 400,
        TokenUnknown | DeviceUnknown | UserUnknown => 404,
        TokenExpired
        | TokenAlreadyUsed
        | OtpReplayed
        | DeviceAlreadyLinked
        | DeviceNotLinked
        | DeviceRevoked
        | InvalidState
        | AlreadyConsumed
        | LinkNotConfirmed
        | DeviceCloned
        | AuthenticatorNeverUsed
        | DeviceNotYetUsable
        | DuplicateRecord => 409,
        OtpMismatch
        | CheckCodeMismatch
        | WrongAccount
        | NotForThisDevice
        | InvalidAnswer
        | DeviceCodeMismatch
        | ActivationCodeMismatch
        | BindingCodeMismatch
        | SerialMismatch
        | PasswordMismatch
        | RecoveryCodeMismatch => 422,
        LockedOut => 423,
        Storage => 503,
        StateCorrupt | Internal => 500,
    }
}

/// A store URL's password out of a message (`scheme://user:pass@host`).
fn redact(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '"' || c == '\'').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("<redacted>");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn failure(f: Failure) -> Response {
    let code = f.error.code();
    // The store's and the server's own troubles stay in the log: their
    // details (SQL errors, states, conflicts) tell a client nothing it needs.
    let message = match code {
        ErrorCode::Storage | ErrorCode::Internal | ErrorCode::StateCorrupt => {
            log(json!({"ts": unix_ms(), "msg": "failure", "code": code.as_str(), "detail": redact(f.error.detail())}));
            match code {
                ErrorCode::Storage => "the store is not available; try again later",
                _ => "internal error",
            }
        }
        _ => f.error.detail(),
    };
    let mut body = json!({"error": {"code": code.as_str(), "message": message}});
    if let Some(details) = f.json {
        body["details"] = details;
    }
    Response::json(status_of(f.error.code()), body).with_code(f.error.code().as_str())
}

fn reply(status: u16, result: Result<Output, Failure>) -> Response {
    match result {
        Ok(o) => Response::json(status, o.json),
        Err(f) => failure(f),
    }
}

/// A JSON body of type `T`; an empty body is `T::default()` where `T` has one.
fn body<T: DeserializeOwned>(req: &Request) -> Result<T, Failure> {
    let raw: &[u8] = if req.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &req.body };
    serde_json::from_slice(raw).map_err(|e| {
        // Never echo the body: it may hold a code.
        let what = match e.classify() {
            serde_json::error::Category::Data => "the fields are not the ones this route takes",
            _ => "the body is not valid JSON",
        };
        Failure::from(cli_err(ErrorCode::InvalidInput, format!("{what} (line {}, column {})", e.line(), e.column())))
    })
}

macro_rules! body_or_fail {
    ($req:expr) => {
        match body($req) {
            Ok(b) => b,
            Err(f) => return failure(f),
        }
    };
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    request: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    answer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SettingsBody {
    digits: Option<i32>,
    ttl: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VouchBody {
    challenge: String,
    code: String,
}

fn health(w: &mut Worker, _: &Request, _: &[String]) -> Response {
    match w.store().and_then(|db| db.identity()) {
        Ok(Some(_)) => Response::json(200, json!({"status": "ok"})),
        Ok(None) => failure(cli_err(ErrorCode::Storage, "the store holds no portal identity").into()).with_status(503),
        Err(e) => {
            w.discard();
            failure(e.into()).with_status(503)
        }
    }
}

fn page(w: &mut Worker, _: &Request, _: &[String]) -> Response {
    if !w.shared.demo_page {
        return not_found();
    }
    Response::new(200, "text/html; charset=utf-8", include_str!("page.html").as_bytes().to_vec())
}

fn page_script(w: &mut Worker, _: &Request, _: &[String]) -> Response {
    if !w.shared.demo_page {
        return not_found();
    }
    Response::new(200, "text/javascript; charset=utf-8", include_str!("page.js").as_bytes().to_vec())
}

/// A QR code as SVG (POST: the text, an offer or a challenge, never in a URL).
fn qr_svg(_: &mut Worker, req: &Request, _: &[String]) -> Response {
    let b: TextBody = body_or_fail!(req);
    match qrcode::QrCode::with_error_correction_level(b.text.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
            Response::new(200, "image/svg+xml", svg.into_bytes())
        }
        Err(_) => failure(cli_err(ErrorCode::InvalidInput, "the text is too long for a QR code").into()),
    }
}

fn link_offer(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let o: OfferOptions = body_or_fail!(req);
    reply(201, w.op(|cx| service::link_offer(cx, &p[0], &o)))
}

fn new_device_offer(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let o: OfferOptions = body_or_fail!(req);
    reply(201, w.op(|cx| service::offer_new_device(cx, &p[0], &o)))
}

fn link_request(w: &mut Worker, req: &Request, _: &[String]) -> Response {
    let b: RequestBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::link_accept(cx, &b.request)))
}

fn pending_links(w: &mut Worker, _: &Request, p: &[String]) -> Response {
    reply(200, w.op(|cx| service::pending_links(cx, &p[0])))
}

fn link_confirm(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: CodeBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::link_confirm(cx, &p[0], &b.code)))
}

fn devices(w: &mut Worker, _: &Request, p: &[String]) -> Response {
    reply(200, w.op(|cx| service::devices(cx, &p[0])))
}

fn rename(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: NameBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::rename(cx, &p[0], &p[1], &b.name)))
}

fn unlink(w: &mut Worker, _: &Request, p: &[String]) -> Response {
    reply(200, w.op(|cx| service::unlink(cx, &p[0], &p[1])))
}

fn unlock(w: &mut Worker, _: &Request, p: &[String]) -> Response {
    reply(200, w.op(|cx| service::unlock_device(cx, &p[1], Some(&p[0]))))
}

fn verify_totp(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: CodeBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::verify_totp(cx, &p[0], &p[1], &b.code)))
}

fn status_request(w: &mut Worker, req: &Request, _: &[String]) -> Response {
    let b: RequestBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::status(cx, &b.request)))
}

fn challenge(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let o: ChallengeOptions = body_or_fail!(req);
    reply(201, w.op(|cx| service::challenge(cx, &p[0], &o)))
}

fn challenge_status(w: &mut Worker, _: &Request, p: &[String]) -> Response {
    reply(200, w.op(|cx| service::challenge_status(cx, &p[0])))
}

fn answer(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: AnswerBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::verify(cx, Some(&p[0]), &b.answer)))
}

fn link_challenge(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: SettingsBody = body_or_fail!(req);
    let settings = tessera_host::ChallengeSettings { digits: b.digits, ttl_seconds: b.ttl };
    reply(201, w.op(|cx| service::link_challenge(cx, &p[0], settings)))
}

fn vouch(w: &mut Worker, req: &Request, p: &[String]) -> Response {
    let b: VouchBody = body_or_fail!(req);
    reply(200, w.op(|cx| service::vouch(cx, &p[0], &b.challenge, &b.code)))
}

fn events(w: &mut Worker, req: &Request, _: &[String]) -> Response {
    let bad = |what: &str| failure(cli_err(ErrorCode::InvalidInput, format!("{what} must be a number")).into());
    let (mut after, mut limit) = (0i64, 100u32);
    for (k, v) in req.query() {
        match k.as_str() {
            "after" => match v.parse() {
                Ok(n) => after = n,
                Err(_) => return bad("after"),
            },
            "limit" => match v.parse::<u32>() {
                Ok(n) => limit = n.clamp(1, 1000),
                Err(_) => return bad("limit"),
            },
            _ => {}
        }
    }
    reply(200, w.op(|cx| service::events(cx, after, limit)))
}

fn service_error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, json!({"error": {"code": code, "message": message}})).with_code(code)
}

fn not_found() -> Response {
    service_error(404, "NOT_FOUND", "no such route")
}

/// The route of `method path`: its index and path parameters; `Err` with
/// the 404 or 405 answer.
fn route(method: &str, path: &str) -> Result<(usize, Vec<String>), Response> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut path_matched = false;
    for (i, (m, template, _)) in ROUTES.iter().enumerate() {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = t.iter().zip(&segs).all(|(t, s)| {
            if t.starts_with('{') {
                match http::percent_decode(s) {
                    Some(v) if !v.is_empty() => {
                        params.push(v);
                        true
                    }
                    _ => false,
                }
            } else {
                t == s
            }
        });
        if matched {
            if *m == method {
                return Ok((i, params));
            }
            path_matched = true;
        }
    }
    Err(if path_matched {
        service_error(405, "METHOD_NOT_ALLOWED", "this route takes another method")
    } else {
        not_found()
    })
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The health check and the demo page.
    Open,
    /// What a phone sends: authenticated by the protocol itself (a signed
    /// request or answer), never by the bearer token.
    Phone,
    /// The portal's own actions: the bearer token when one is configured.
    Host,
}

fn access_of(template: &str) -> Access {
    match template {
        "/health" | "/" | "/app.js" => Access::Open,
        "/v1/link-requests" | "/v1/status-requests" | "/v1/challenges/{challenge}/answer" => Access::Phone,
        _ => Access::Host,
    }
}

/// A `Host` header naming this machine: `localhost`, a 127.x address or
/// `[::1]`, any port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((ip, port))
                if port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
            {
                return ip.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Authorization: Bearer <token>` with the configured token (constant time).
fn bearer_ok(req: &Request, token: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    let Some(h) = req.authorization.as_deref() else { return false };
    let h = h.trim_ascii();
    if h.len() < 7 || !h[..7].eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    bool::from(h[7..].trim_ascii().ct_eq(token))
}

/// What a request must pass before its body is read or any work is done,
/// in this order: the `Host` (tokenless servers: against DNS rebinding), the
/// client address's bucket, the bearer token (host routes), the account's
/// length, the `Content-Type` (every POST and PATCH, and a DELETE with a
/// body: `application/json`, against cross-site form posts).
fn gate(
    shared: &Shared,
    req: &Request,
    template: &str,
    params: &[String],
    peer: Option<IpAddr>,
) -> Result<(), Response> {
    if shared.token.is_none() && req.host.as_deref().is_some_and(|h| !loopback_host(h)) {
        return Err(service_error(421, "FORBIDDEN_HOST", "this server answers only to a loopback Host (localhost)"));
    }
    let peer_key = peer.map(|p| p.to_string()).unwrap_or_default();
    if let Err(wait) = shared.peer_limiter.take(&peer_key) {
        return Err(service_error(429, "RATE_LIMITED", "too many requests; try again later")
            .with_header("Retry-After", wait.to_string()));
    }
    let access = access_of(template);
    if access == Access::Host {
        if let Some(token) = &shared.token {
            if !bearer_ok(req, token) {
                return Err(service_error(401, "UNAUTHENTICATED", "this route needs Authorization: Bearer <token>")
                    .with_header("WWW-Authenticate", "Bearer".to_owned()));
            }
        }
    }
    if template.starts_with("/v1/accounts/{account}") && params.first().is_some_and(|a| a.len() > MAX_ACCOUNT_LEN) {
        return Err(service_error(400, "INVALID_INPUT", "the account is too long"));
    }
    let needs_json = matches!(req.method.as_str(), "POST" | "PATCH") || (req.method == "DELETE" && req.body_unread());
    if needs_json && !req.is_json() {
        return Err(service_error(415, "UNSUPPORTED_MEDIA_TYPE", "send Content-Type: application/json"));
    }
    Ok(())
}

/// The account bucket a host request is charged to: the account it acts
/// on — from the path, or from the row it names (a challenge, a pending
/// link). Phone routes are charged to no account: their account is only
/// known from text that is not authenticated yet (charging it would let
/// anyone drain a victim's bucket); the client address's bucket and the
/// protocol's own counters (lockout after wrong answers) bound them.
fn limit_key(w: &mut Worker, template: &str, params: &[String]) -> Option<String> {
    if access_of(template) != Access::Host {
        return None;
    }
    let account = if template.starts_with("/v1/accounts/{account}") {
        params.first().cloned()
    } else {
        account_named(w, template, params).ok().flatten()
    };
    account.map(|a| format!("account:{a}"))
}

/// The account a host request without one in its path acts on, when known.
fn account_named(w: &mut Worker, template: &str, params: &[String]) -> Result<Option<String>, Error> {
    match template {
        "/v1/challenges/{challenge}" => Ok(w.store()?.read(|c| read::challenge(c, &params[0]))?.map(|r| r.account)),
        "/v1/devices/{device}/link-challenges" | "/v1/devices/{device}/vouch" => {
            Ok(w.store()?.read(|c| read::pending(c, &params[0]))?.map(|p| p.account))
        }
        _ => Ok(None),
    }
}

fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or_default()
}

/// One JSON line on stderr (never a body, a query or a path's values).
fn log(line: Value) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// Answer one connection (on its own thread).
fn serve_connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut w = Worker { shared, db: None };
    let w = &mut w;
    let start = Instant::now();
    let peer = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
    let shared = Arc::clone(&w.shared);
    let deadline = start + shared.timeout;
    // Drain on close only what the client announced and we left unread.
    let mut drain = true;
    let (method, template, response) = match http::read_head(&mut stream, deadline) {
        Err(r) => ("-".to_owned(), "-".to_owned(), r),
        Ok(mut req) => {
            let method = req.method.clone();
            let (template, response) = match route(&req.method, &req.path) {
                Err(r) => ("-".to_owned(), r),
                Ok((i, params)) => {
                    let (_, template, handler) = ROUTES[i];
                    let read = gate(&shared, &req, template, &params, peer)
                        .and_then(|()| http::read_body(&mut stream, &mut req, MAX_BODY, deadline));
                    let response = match read {
                        Err(r) => r,
                        Ok(()) => guarded(w, |w| {
                            let limited = limit_key(w, template, &params).map(|k| shared.limiter.take(&k));
                            match limited {
                                Some(Err(wait)) => {
                                    service_error(429, "RATE_LIMITED", "too many requests; try again later")
                                        .with_header("Retry-After", wait.to_string())
                                }
                                _ => handler(w, &req, &params),
                            }
                        }),
                    };
                    (template.to_owned(), response)
                }
            };
            drain = req.body_unread();
            (method, template, response)
        }
    };
    w.release();
    let status = response.status;
    let code = response.code.clone();
    http::write_response(&mut stream, &response);
    log(json!({"ts": unix_ms(), "method": method, "route": template, "status": status, "code": code,
               "ms": start.elapsed().as_millis() as u64}));
    http::close(stream, drain, deadline);
}

/// Run a handler; a panic is a 500 `INTERNAL` (logged without its message,
/// which might quote a value), the worker's store connection is reopened
/// and the server goes on.
fn guarded(w: &mut Worker, f: impl FnOnce(&mut Worker) -> Response) -> Response {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w))) {
        Ok(r) => r,
        Err(_) => {
            w.discard();
            service_error(500, "INTERNAL", "internal error")
        }
    }
}

/// A connection over its address's limit: a 503 if the socket takes it at
/// once, then closed (never waits on the client).
/// A thread that waits for `stop` and then connects to `addr` once, so that
/// a blocking `accept` returns and sees the flag.
fn wake_on_stop(stop: Arc<AtomicBool>, addr: SocketAddr) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut target = addr;
        if target.ip().is_unspecified() {
            // Listening on every address: the loopback one of its family.
            target.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&target, Duration::from_secs(1));
    })
}

fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let body = json!({"error": {"code": "TOO_MANY_CONNECTIONS", "message": "too many connections from this address"}})
        .to_string();
    let _ = std::io::Write::write_all(
        &mut stream,
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\nRetry-After: 1\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = stream.shutdown(std::net::Shutdown::Both);
    log(json!({"ts": unix_ms(), "msg": "refused", "code": "TOO_MANY_CONNECTIONS"}));
}

/// The bearer token: `--auth-token-file` or `TESSERA_SERVE_TOKEN`, trimmed,
/// at least [`MIN_TOKEN_LEN`] characters.
fn read_token(file: Option<&Path>) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, Error> {
    let (raw, from) = match file {
        Some(f) => {
            let raw = std::fs::read(f)
                .map_err(|e| cli_err(ErrorCode::InvalidInput, format!("--auth-token-file {}: {e}", f.display())))?;
            (zeroize::Zeroizing::new(raw), "--auth-token-file")
        }
        None => match std::env::var("TESSERA_SERVE_TOKEN") {
            Ok(v) => (zeroize::Zeroizing::new(v.into_bytes()), "TESSERA_SERVE_TOKEN"),
            Err(_) => return Ok(None),
        },
    };
    let token = raw.trim_ascii();
    if token.len() < MIN_TOKEN_LEN || !token.iter().all(|b| b.is_ascii_graphic()) {
        return Err(cli_err(
            ErrorCode::InvalidInput,
            format!("{from}: the token must be at least {MIN_TOKEN_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(zeroize::Zeroizing::new(token.to_vec())))
}

pub fn run(a: ServeArgs) -> Result<(), Error> {
    // A URL with a password can come from a file or a variable.
    let store: Option<String> = match &a.db {
        Some(v) => Some(v.read("--db")?.to_string()),
        None => std::env::var("TESSERA_DB").ok().filter(|v| !v.is_empty()),
    };
    let rate = parse_rate(&a.rate_limit)?;
    let peer_rate = parse_rate(&a.rate_limit_per_ip).map_err(|_| {
        cli_err(ErrorCode::InvalidInput, "--rate-limit-per-ip must be N/min (or N/s, N/h), N at least 1")
    })?;
    if a.max_connections_per_ip == 0 {
        return Err(cli_err(ErrorCode::InvalidInput, "--max-connections-per-ip must be at least 1"));
    }
    let token = read_token(a.auth_token_file.as_deref())?;
    if token.is_some() && a.demo_page {
        return Err(cli_err(
            ErrorCode::InvalidInput,
            "--demo-page cannot be served with a bearer token (the page cannot hold it safely)",
        ));
    }
    if a.workers == 0 || a.workers > 64 {
        return Err(cli_err(ErrorCode::InvalidInput, "--workers must be 1 to 64"));
    }
    if a.timeout == 0 {
        return Err(cli_err(ErrorCode::InvalidInput, "--timeout must be at least 1 second"));
    }
    // The store is reachable and holds this directory's portal.
    let db = open_store(&a.dir, store.as_deref())?;
    let portal = load_portal(&db, &a.dir)?;
    let io = |e: std::io::Error| cli_err(ErrorCode::InvalidInput, format!("--listen {}: {e}", a.listen));
    let listener = TcpListener::bind(&a.listen).map_err(io)?;
    let addr: SocketAddr = listener.local_addr().map_err(io)?;
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(cli_err(
            ErrorCode::InvalidInput,
            format!(
                "--listen {addr} is not a loopback address: host routes need a bearer token there \
                 (--auth-token-file PATH, or TESSERA_SERVE_TOKEN)"
            ),
        ));
    }
    let demo_page = token.is_none() && !a.no_demo_page && (a.demo_page || addr.ip().is_loopback());
    let open_host_routes = token.is_none();
    let shared = Arc::new(Shared {
        dir: a.dir.clone(),
        db: store,
        portal,
        limiter: RateLimiter::new(rate, MAX_BUCKETS),
        peer_limiter: RateLimiter::new(peer_rate, MAX_BUCKETS),
        timeout: Duration::from_secs(a.timeout),
        demo_page,
        token,
        pool: Pool { state: Mutex::new((vec![db], 1)), freed: Condvar::new(), size: a.workers },
    });

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| cli_err(ErrorCode::Internal, format!("signal handler: {e}")))?;
    }
    // A handler's panic is answered (500); its message is not printed.
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        log(json!({"ts": unix_ms(), "msg": "panic", "at": at}));
    }));

    // Accept blocks (a new connection is taken at once: a polling loop
    // added up to its period to every request's latency); a watcher wakes
    // it with a connection of its own when a signal asks to stop.
    let waker = wake_on_stop(Arc::clone(&stop), addr);
    if a.json {
        out!("{}", json!({ "listening": format!("http://{addr}") }));
    } else {
        out!("listening on http://{addr}");
    }
    log(json!({"ts": unix_ms(), "msg": "listening", "addr": addr.to_string(), "workers": a.workers,
               "demo_page": demo_page, "bearer_token": !open_host_routes}));
    if open_host_routes {
        log(json!({"ts": unix_ms(), "msg": "warning: no bearer token (--auth-token-file): host routes are open \
                   to every process on this machine"}));
    }
    // A thread per connection, at most MAX_CONNECTIONS at once (the others
    // wait in the listen backlog): a slow client holds its thread until
    // --timeout, and a store connection only while its handler runs.
    let active = Arc::new(AtomicUsize::new(0));
    let per_ip: PerIp = Arc::new(Mutex::new(HashMap::new()));
    while !stop.load(Ordering::Relaxed) {
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match listener.accept() {
            Ok(_) if stop.load(Ordering::Relaxed) => break,
            Ok((stream, from)) => {
                let ip = from.ip().to_canonical();
                let open = per_ip.lock().unwrap_or_else(|p| p.into_inner()).get(&ip).copied().unwrap_or(0);
                if open >= a.max_connections_per_ip {
                    refuse(stream);
                    continue;
                }
                let counted = Counted::new(&active, &per_ip, ip);
                let shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new().spawn(move || {
                    let _counted = counted;
                    serve_connection(shared, stream);
                });
                if let Err(e) = spawned {
                    log(json!({"ts": unix_ms(), "msg": "no thread for a connection", "error": e.to_string()}));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log(json!({"ts": unix_ms(), "msg": "accept failed", "error": e.to_string()}));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Stop accepting; every accepted connection is still answered (each
    // within --timeout for its request and the store's own time).
    drop(listener);
    let _ = waker.join();
    log(json!({"ts": unix_ms(), "msg": "shutting down", "in_flight": active.load(Ordering::SeqCst)}));
    while active.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    log(json!({"ts": unix_ms(), "msg": "stopped"}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `paths:` of docs/openapi.yaml: `(method, path)`, from a scan of
    /// its lines (two-space path keys, four-space method keys).
    fn openapi_routes() -> Vec<(String, String)> {
        let doc = include_str!("../../../docs/openapi.yaml");
        let mut routes = Vec::new();
        let mut in_paths = false;
        let mut path = None;
        for line in doc.lines() {
            if !line.starts_with(' ') && !line.trim().is_empty() {
                in_paths = line.trim_end() == "paths:";
                continue;
            }
            if !in_paths {
                continue;
            }
            if let Some(p) = line.strip_prefix("  ").filter(|l| l.starts_with('/')) {
                path = Some(p.trim_end().trim_end_matches(':').trim_matches('"').to_owned());
            } else if let (Some(m), Some(p)) = (line.strip_prefix("    ").filter(|l| !l.starts_with(' ')), &path) {
                let m = m.trim_end().trim_end_matches(':');
                if ["get", "post", "put", "patch", "delete"].contains(&m) {
                    routes.push((m.to_uppercase(), p.clone()));
                }
            }
        }
        routes
    }

    #[test]
    fn openapi_lists_exactly_the_routes_served() {
        let mut documented = openapi_routes();
        let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        documented.sort();
        served.sort();
        assert!(served.len() > 15, "{served:?}");
        assert_eq!(documented, served);
    }

    #[test]
    fn every_error_code_has_an_http_status_and_the_service_codes_are_not_taken() {
        for c in ErrorCode::ALL {
            assert!((400..600).contains(&status_of(*c)), "{c}");
        }
        let doc = include_str!("../../../docs/openapi.yaml");
        for c in [
            "NOT_FOUND",
            "METHOD_NOT_ALLOWED",
            "REQUEST_TOO_LARGE",
            "REQUEST_TIMEOUT",
            "RATE_LIMITED",
            "UNAUTHENTICATED",
            "UNSUPPORTED_MEDIA_TYPE",
            "FORBIDDEN_HOST",
            "TOO_MANY_CONNECTIONS",
        ] {
            assert!(ErrorCode::parse(c).is_none(), "{c} is a protocol code");
            assert!(doc.contains(c), "{c} is not documented");
        }
        for c in ErrorCode::ALL {
            assert!(doc.contains(c.as_str()), "{c} is not in docs/openapi.yaml");
        }
    }

    #[test]
    fn routes_match_templates_and_methods() {
        let (i, p) = route("PATCH", "/v1/accounts/anna%40example.com/devices/d1").expect("a route");
        assert_eq!(
            (ROUTES[i].1, p),
            ("/v1/accounts/{account}/devices/{device}", vec!["anna@example.com".into(), "d1".into()])
        );
        assert_eq!(route("PUT", "/v1/accounts/a/devices/d1").err().map(|r| r.status), Some(405));
        assert_eq!(route("GET", "/v1/nothing").err().map(|r| r.status), Some(404));
        assert_eq!(route("GET", "/v1/accounts//devices").err().map(|r| r.status), Some(404));
    }

    #[test]
    fn rates_and_buckets() {
        assert_eq!(parse_rate("60/min").ok(), Some((1.0, 60.0)));
        assert!(parse_rate("0/min").is_err() && parse_rate("10").is_err() && parse_rate("x/min").is_err());
        let l = RateLimiter::new((1.0 / 60.0, 2.0), 100);
        assert_eq!((l.take("a"), l.take("a")), (Ok(()), Ok(())));
        let wait = l.take("a").err().unwrap_or_default();
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(l.take("b"), Ok(()));
    }

    #[test]
    fn a_panicking_handler_is_a_500_and_the_worker_goes_on() {
        let dir = std::env::temp_dir();
        let portal = Arc::new(Portal::generate("t".into()).expect("a portal"));
        let shared = Arc::new(Shared {
            dir,
            db: None,
            portal,
            limiter: RateLimiter::new((1.0, 1.0), 10),
            peer_limiter: RateLimiter::new((1.0, 1.0), 10),
            timeout: Duration::from_secs(1),
            demo_page: false,
            token: None,
            pool: Pool { state: Mutex::new((Vec::new(), 0)), freed: Condvar::new(), size: 1 },
        });
        let mut w = Worker { shared, db: None };
        #[allow(clippy::panic)]
        let r = guarded(&mut w, |_| panic!("a secret 123456 must not be shown"));
        assert_eq!((r.status, r.code.as_deref()), (500, Some("INTERNAL")));
        assert!(!String::from_utf8_lossy(&r.body).contains("123456"));
        let r = guarded(&mut w, |_| not_found());
        assert_eq!(r.status, 404);
    }

    #[test]
    fn buckets_are_capped_and_keyed_by_a_hash() {
        let l = RateLimiter::new((1.0 / 60.0, 1.0), 100);
        // A flood of client-chosen names: the map stays bounded.
        for i in 0..1000 {
            let _ = l.take(&format!("account:{}{i}", "x".repeat(1000)));
        }
        assert!(l.buckets.lock().map(|b| b.len()).unwrap_or(usize::MAX) <= 100);
        assert_eq!(l.take("fresh"), Ok(()));
        assert!(l.take("fresh").is_err());
    }

    #[test]
    fn hosts_tokens_and_redaction() {
        for h in ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:8080", "LOCALHOST:9"] {
            assert!(loopback_host(h), "{h}");
        }
        for h in ["evil.example", "evil.example:80", "10.0.0.1:80", "[::2]:80", "localhost.evil.example", "[::1]x", ""]
        {
            assert!(!loopback_host(h), "{h}");
        }
        assert_eq!(redact("connect postgres://u:hunter2@db/x failed"), "connect postgres://<redacted>@db/x failed");
        assert_eq!(redact("no url here"), "no url here");
        let shared = Shared {
            dir: PathBuf::from("/p"),
            db: Some("postgres://u:hunter2@db/x".into()),
            portal: Arc::new(Portal::generate("t".into()).expect("a portal")),
            limiter: RateLimiter::new((1.0, 1.0), 10),
            peer_limiter: RateLimiter::new((1.0, 1.0), 10),
            timeout: Duration::from_secs(1),
            demo_page: false,
            token: Some(zeroize::Zeroizing::new(b"0123456789abcdefXYZ".to_vec())),
            pool: Pool { state: Mutex::new((Vec::new(), 0)), freed: Condvar::new(), size: 1 },
        };
        let shown = format!("{shared:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("XYZ"), "{shown}");
    }

    #[test]
    fn storage_and_internal_details_stay_in_the_log() {
        let f: Failure = cli_err(ErrorCode::Storage, "database error: SQLSTATE 40001 could not serialize").into();
        let r = failure(f);
        let body = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 503);
        assert!(!body.contains("SQLSTATE") && !body.contains("database") && !body.contains("serialize"), "{body}");
        let r = failure(cli_err(ErrorCode::Internal, "conflict on row 7").into());
        assert!(!String::from_utf8_lossy(&r.body).contains("row 7"));
        let r = failure(cli_err(ErrorCode::DeviceUnknown, "no device d1").into());
        assert!(String::from_utf8_lossy(&r.body).contains("no device d1"));
    }
}
