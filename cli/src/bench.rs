//! `tessera bench`: a load benchmark of `tessera serve`. For each store
//! (SQLite in the work directory, or a PostgreSQL URL: a fresh schema per
//! run, dropped after) and each number of servers, it starts that many
//! `tessera serve` processes on one portal (one key file, one database) and
//! drives, for a fixed duration from `--concurrency` client threads (request
//! i to server i % N):
//!
//! * `link-accept`: link requests of phones, each for its own offer, made
//!   before the run (in this process, with the device library);
//! * `otp`: TOTP verifications of linked devices with wrong codes (each a
//!   full verification: 4 mismatches, the fifth locks the device), each
//!   device unlocked again after its fifth (the unlocks are not timed).
//!
//! A progress line a second on stderr; at the end a table on stdout:
//! requests per second, latency percentiles and unexpected answers.

use crate::cli_err;
use crate::portal_cmd::load_portal;
use crate::service::{self, Ctx, OfferOptions};
use crate::store::PortalDb;
use clap::Args;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_host::{Device, ErrorCode, LinkChoices, TesseraError as Error, Timestamp};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Work directory (portals, SQLite files, server logs); default: a new
    /// temporary directory, removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Numbers of servers to run, e.g. `1,2,4`.
    #[arg(long, default_value = "1,2,4", value_delimiter = ',')]
    servers: Vec<usize>,
    /// Stores: `sqlite` (a file in --dir) and/or `postgres://…` URLs.
    #[arg(long, default_value = "sqlite", value_delimiter = ',')]
    db: Vec<String>,
    /// How long each operation runs, e.g. `10s` (or `500ms`).
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Client threads.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Operations: `link-accept`, `otp`.
    #[arg(long, default_value = "link-accept,otp", value_delimiter = ',')]
    ops: Vec<String>,
    /// Link requests made before each link-accept run (the run ends early,
    /// and says so, when all are sent).
    #[arg(long, default_value_t = 4000)]
    link_pool: usize,
    /// Linked devices the OTP run spreads over (at least --concurrency).
    #[arg(long, default_value_t = 32)]
    devices: usize,
    /// Machine-readable output: the table as a JSON array of rows
    /// (`backend`, `servers`, `operation`, `requests`, `requests_per_s`,
    /// `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`, `errors`, `note`).
    #[arg(long)]
    json: bool,
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    backend: String,
    servers: usize,
    op: &'static str,
    requests: usize,
    secs: f64,
    lat_us: Vec<u64>,
    errors: usize,
    note: String,
}

fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || cli_err(ErrorCode::InvalidInput, "--duration must be like 10s or 500ms");
    let s = s.trim();
    let d = if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else if let Some(sec) = s.strip_suffix('s') {
        Duration::from_secs_f64(sec.parse().map_err(|_| bad())?)
    } else {
        Duration::from_secs_f64(s.parse().map_err(|_| bad())?)
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| cli_err(ErrorCode::Storage, format!("{what}: {e}"))
}

/// A `tessera serve` of this binary (killed on drop).
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(portal: &Path, db: &str, log: &Path) -> Result<Server, Error> {
    let exe = std::env::current_exe().map_err(io_err("this program"))?;
    let mut child = Command::new(exe)
        .args(["serve", "--dir"])
        .arg(portal)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--rate-limit",
            "100000000/min",
            "--rate-limit-per-ip",
            "100000000/min",
            "--no-demo-page",
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).map_err(io_err("server log"))?)
        .spawn()
        .map_err(io_err("tessera serve"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or_else(|| cli_err(ErrorCode::Internal, "no stdout"))?;
    BufReader::new(stdout).read_line(&mut line).map_err(io_err("tessera serve"))?;
    let mut server = Server { addr: String::new(), child };
    match line.trim().strip_prefix("listening on http://") {
        Some(addr) => {
            server.addr = addr.to_owned();
            Ok(server)
        }
        None => Err(cli_err(ErrorCode::Storage, format!("tessera serve did not start (its log: {})", log.display()))),
    }
}

/// `POST` one JSON body on its own connection: (status, error code).
fn post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let code = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str::<Value>(b).ok())
        .and_then(|b| b["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok((status, code))
}

/// The store of one run: its URL, and the schema to drop after.
struct Store {
    url: String,
    backend: String,
    schema: Option<(String, String)>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some((admin, schema)) = &self.schema {
            if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

fn make_store(spec: &str, work: &Path, run: usize) -> Result<Store, Error> {
    if spec == "sqlite" {
        let file = work.join(format!("run{run}.db"));
        return Ok(Store { url: format!("sqlite:{}", file.display()), backend: "sqlite".into(), schema: None });
    }
    if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
        return Err(cli_err(ErrorCode::InvalidInput, "--db takes `sqlite` or postgres://… URLs"));
    }
    let schema = format!("tessera_bench_{}_{run}", std::process::id());
    let mut admin = postgres::Client::connect(spec, postgres::NoTls)
        .map_err(|e| cli_err(ErrorCode::Storage, format!("cannot connect to PostgreSQL: {e}")))?;
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        .map_err(|e| cli_err(ErrorCode::Storage, format!("cannot create a schema: {e}")))?;
    let sep = if spec.contains('?') { '&' } else { '?' };
    Ok(Store {
        url: format!("{spec}{sep}options=-csearch_path%3D{schema}"),
        backend: "postgres".into(),
        schema: Some((spec.to_owned(), schema)),
    })
}

/// Work done in this process on the portal's store (offers, links).
struct Setup {
    db: PortalDb,
    portal: Arc<tessera_host::Portal>,
}

impl Setup {
    fn cx(&mut self) -> Ctx<'_> {
        Ctx { db: &mut self.db, portal: &self.portal, now: Timestamp::now(), notify: |_| {} }
    }

    fn offer(&mut self, account: &str) -> Result<String, Error> {
        let o = service::link_offer(&mut self.cx(), account, &OfferOptions::default()).map_err(|f| f.error)?;
        o.json["qr_text"].as_str().map(str::to_owned).ok_or_else(|| cli_err(ErrorCode::Internal, "no qr_text"))
    }
}

const PASSCODE: &str = "480215";

/// A phone's link request for `qr` (and the phone, to finish the link).
fn phone_request(qr: String, name: &str) -> Result<(Arc<tessera_host::PendingLink>, String), Error> {
    let device = Device::new(tessera_host::new_storage_key()?)?;
    let choices = LinkChoices { device_name: name.to_owned(), passcode: PASSCODE.into(), biometrics: false };
    let pending = device.start_link(qr, choices, None, Timestamp::now(), None)?;
    let request = pending.request()?;
    Ok((pending, request))
}

/// `n` link requests, each for its own offer (made on two threads).
fn link_requests(setup: &mut Setup, n: usize) -> Result<Vec<String>, Error> {
    let qrs: Vec<String> = (0..n).map(|i| setup.offer(&format!("link-{}", i % 1000))).collect::<Result<_, _>>()?;
    let half = qrs.len() / 2;
    let (a, b) = qrs.split_at(half);
    let make = |qrs: &[String]| -> Result<Vec<String>, Error> {
        qrs.iter().map(|qr| phone_request(qr.clone(), "Bench").map(|(_, r)| r)).collect()
    };
    let (ra, rb) = std::thread::scope(|s| {
        let h = s.spawn(|| make(a));
        let rb = make(b);
        (h.join().unwrap_or_else(|_| Err(cli_err(ErrorCode::Internal, "a thread panicked"))), rb)
    });
    let mut all = ra?;
    all.extend(rb?);
    Ok(all)
}

/// `n` linked devices: (account, device id).
fn linked_devices(setup: &mut Setup, n: usize) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for i in 0..n {
        let account = format!("otp-{i}");
        let (pending, request) = phone_request(setup.offer(&account)?, "Bench")?;
        let accepted = service::link_accept(&mut setup.cx(), &request).map_err(|f| f.error)?;
        let answer = accepted.json["answer"].as_str().unwrap_or_default().to_owned();
        let done = pending.finish(answer)?;
        let linked = service::link_confirm(&mut setup.cx(), &account, &done.check_code).map_err(|f| f.error)?;
        let id = linked.json["device"]["id"].as_str().unwrap_or_default().to_owned();
        out.push((account, id));
    }
    Ok(out)
}

/// What the client threads share during one timed run.
struct Run {
    label: String,
    done: AtomicUsize,
    errors: AtomicUsize,
    stop: AtomicBool,
    lat: Mutex<Vec<u64>>,
}

/// Run `work(thread, run)` on `threads` threads for `d`, with a progress line
/// a second; `work` returns when `run.stop` is set (or its work is done).
fn timed(label: String, threads: usize, d: Duration, work: impl Fn(usize, &Run) + Sync) -> (Run, f64) {
    let run = Run {
        label,
        done: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        lat: Mutex::new(Vec::new()),
    };
    let t0 = Instant::now();
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (run, work, finished) = (&run, &work, &finished);
            s.spawn(move || {
                work(t, run);
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (mut last_n, mut last_t) = (0, t0);
        let mut next = t0 + Duration::from_secs(1);
        while finished.load(Ordering::SeqCst) < threads {
            std::thread::sleep(Duration::from_millis(20));
            let now = Instant::now();
            if now >= t0 + d {
                run.stop.store(true, Ordering::SeqCst);
            }
            if now >= next {
                let n = run.done.load(Ordering::SeqCst);
                let rate = (n - last_n) as f64 / now.duration_since(last_t).as_secs_f64();
                eprintln!(
                    "[{}] {:>5.1}s {:>7} requests {:>8.0}/s now, {} errors",
                    run.label,
                    now.duration_since(t0).as_secs_f64(),
                    n,
                    rate,
                    run.errors.load(Ordering::SeqCst)
                );
                (last_n, last_t) = (n, now);
                next += Duration::from_secs(1);
            }
        }
    });
    let secs = t0.elapsed().as_secs_f64().max(1e-3);
    (run, secs)
}

impl Run {
    /// Time one request; `expected` decides whether its answer is an error.
    fn time(
        &self,
        f: impl FnOnce() -> std::io::Result<(u16, String)>,
        expected: impl Fn(u16, &str) -> bool,
    ) -> Option<(u16, String)> {
        let t = Instant::now();
        let r = f();
        let us = t.elapsed().as_micros() as u64;
        self.done.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut l) = self.lat.lock() {
            l.push(us);
        }
        match r {
            Ok((status, code)) if expected(status, &code) => Some((status, code)),
            _ => {
                self.errors.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn print_json(rows: &mut [Row]) {
    let list: Vec<serde_json::Value> = rows
        .iter_mut()
        .map(|r| {
            r.lat_us.sort_unstable();
            serde_json::json!({"backend": r.backend, "servers": r.servers, "operation": r.op,
                "requests": r.requests, "requests_per_s": r.requests as f64 / r.secs,
                "p50_ms": percentile(&r.lat_us, 50.0), "p90_ms": percentile(&r.lat_us, 90.0),
                "p99_ms": percentile(&r.lat_us, 99.0), "max_ms": percentile(&r.lat_us, 100.0),
                "errors": r.errors, "note": r.note})
        })
        .collect();
    out!("{}", serde_json::Value::Array(list));
}

fn print_table(rows: &mut [Row]) {
    out!(
        "{:<9} {:>7} {:<12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}  NOTE",
        "BACKEND",
        "SERVERS",
        "OPERATION",
        "REQUESTS",
        "REQ/S",
        "P50_MS",
        "P90_MS",
        "P99_MS",
        "MAX_MS",
        "ERRORS"
    );
    for r in rows.iter_mut() {
        r.lat_us.sort_unstable();
        out!(
            "{:<9} {:>7} {:<12} {:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}  {}",
            r.backend,
            r.servers,
            r.op,
            r.requests,
            r.requests as f64 / r.secs,
            percentile(&r.lat_us, 50.0),
            percentile(&r.lat_us, 90.0),
            percentile(&r.lat_us, 99.0),
            percentile(&r.lat_us, 100.0),
            r.errors,
            r.note
        );
    }
}

pub fn run(a: BenchArgs) -> Result<(), Error> {
    let d = parse_duration(&a.duration)?;
    if a.concurrency == 0 || a.concurrency > 512 {
        return Err(cli_err(ErrorCode::InvalidInput, "--concurrency must be 1 to 512"));
    }
    if a.servers.iter().any(|n| *n == 0 || *n > 16) {
        return Err(cli_err(ErrorCode::InvalidInput, "--servers takes numbers from 1 to 16"));
    }
    for op in &a.ops {
        if op != "link-accept" && op != "otp" {
            return Err(cli_err(ErrorCode::InvalidInput, format!("unknown operation {op:?} (link-accept, otp)")));
        }
    }
    let devices = a.devices.max(a.concurrency);
    let (work, temporary) = match &a.dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&work).map_err(io_err("--dir"))?;
    let mut rows = Vec::new();
    let result = (|| -> Result<(), Error> {
        let mut run_no = 0;
        for spec in &a.db {
            for &n in &a.servers {
                run_no += 1;
                let store = make_store(spec, &work, run_no)?;
                let portal_dir = work.join(format!("portal{run_no}"));
                let exe = std::env::current_exe().map_err(io_err("this program"))?;
                let init = Command::new(exe)
                    .args(["portal", "init", "--name", "Bench", "--dir"])
                    .arg(&portal_dir)
                    .args(["--db", &store.url])
                    .env_remove("TESSERA_PORTAL_SECRET")
                    .output()
                    .map_err(io_err("portal init"))?;
                if !init.status.success() {
                    return Err(cli_err(ErrorCode::Storage, "tessera portal init failed"));
                }
                let db = PortalDb::connect(&portal_dir, Some(&store.url), false)?;
                let portal = load_portal(&db, &portal_dir)?;
                let mut setup = Setup { db, portal };
                let servers: Vec<Server> = (0..n)
                    .map(|i| start_server(&portal_dir, &store.url, &work.join(format!("serve{run_no}-{i}.log"))))
                    .collect::<Result<_, _>>()?;
                let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
                let label = |op: &str| format!("{} {n} server{} {op}", store.backend, if n == 1 { "" } else { "s" });
                for op in &a.ops {
                    if op == "link-accept" {
                        eprintln!("[{}] making {} link requests…", label(op), a.link_pool);
                        let pool = link_requests(&mut setup, a.link_pool)?;
                        let bodies: Vec<String> = pool.iter().map(|r| json!({ "request": r }).to_string()).collect();
                        let next = AtomicUsize::new(0);
                        let (run, secs) = timed(label(op), a.concurrency, d, |_, run| {
                            while !run.stop.load(Ordering::SeqCst) {
                                let i = next.fetch_add(1, Ordering::SeqCst);
                                let Some(body) = bodies.get(i) else { return };
                                let addr = &addrs[i % addrs.len()];
                                run.time(|| post(addr, "/v1/link-requests", body), |st, _| st == 200);
                            }
                        });
                        let used = next.load(Ordering::SeqCst).min(bodies.len());
                        let note = if used >= bodies.len() {
                            format!("all {} requests sent before the end (raise --link-pool)", bodies.len())
                        } else {
                            String::new()
                        };
                        rows.push(finish(&store, n, "link-accept", run, secs, note));
                    } else {
                        eprintln!("[{}] linking {devices} devices…", label(op));
                        let linked = linked_devices(&mut setup, devices)?;
                        let per = linked.len() / a.concurrency;
                        let unlocks = AtomicUsize::new(0);
                        let (run, secs) = timed(label(op), a.concurrency, d, |t, run| {
                            let mine = &linked[t * per..(t + 1) * per];
                            let mut k = t;
                            'outer: loop {
                                for (account, device) in mine {
                                    let path = format!("/v1/accounts/{account}/devices/{device}/totp");
                                    for _ in 0..5 {
                                        if run.stop.load(Ordering::SeqCst) {
                                            break 'outer;
                                        }
                                        k += 1;
                                        // Six digits that are (all but surely) wrong.
                                        let code = format!("{:06}", (k * 7919 + t * 104_729) % 1_000_000);
                                        let body = json!({ "code": code }).to_string();
                                        let addr = &addrs[k % addrs.len()];
                                        run.time(
                                            || post(addr, &path, &body),
                                            |st, c| {
                                                st == 200
                                                    || (st, c) == (422, "OTP_MISMATCH")
                                                    || (st, c) == (423, "LOCKED_OUT")
                                            },
                                        );
                                    }
                                    // Locked after five: unlocked again (not timed).
                                    let unlock = format!("/v1/accounts/{account}/devices/{device}/unlock");
                                    match post(&addrs[k % addrs.len()], &unlock, "{}") {
                                        Ok((200, _)) | Ok((409, _)) => {
                                            unlocks.fetch_add(1, Ordering::SeqCst);
                                        }
                                        _ => {
                                            run.errors.fetch_add(1, Ordering::SeqCst);
                                        }
                                    }
                                }
                            }
                        });
                        let note =
                            format!("{} devices, {} unlocks (untimed)", linked.len(), unlocks.load(Ordering::SeqCst));
                        rows.push(finish(&store, n, "otp-wrong", run, secs, note));
                    }
                }
                drop(servers);
            }
        }
        Ok(())
    })();
    if a.json {
        if result.is_ok() {
            print_json(&mut rows);
        }
    } else {
        print_table(&mut rows);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn finish(store: &Store, servers: usize, op: &'static str, run: Run, secs: f64, note: String) -> Row {
    let lat_us = run.lat.into_inner().unwrap_or_else(|p| p.into_inner());
    Row {
        backend: store.backend.clone(),
        servers,
        op,
        requests: run.done.load(Ordering::SeqCst),
        secs,
        lat_us,
        errors: run.errors.load(Ordering::SeqCst),
        note,
    }
}
