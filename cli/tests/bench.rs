//! `tessera bench` runs: a tiny duration on one server and SQLite (the
//! smoke test of the load benchmark; its numbers are not checked).

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

mod common;
use common::{fails, tessera_cmd};

#[test]
fn a_short_bench_on_one_sqlite_server_prints_progress_and_its_table() {
    let dir = common::tmp("bench", "smoke");
    let out = tessera_cmd()
        .args(["bench", "--dir", dir.to_str().unwrap(), "--servers", "1", "--db", "sqlite", "--duration", "1500ms"])
        .args(["--concurrency", "2", "--link-pool", "400", "--devices", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench failed: {stderr}");
    // A progress line a second while each operation runs.
    for op in ["link-accept", "otp"] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("[sqlite 1 server {op}]")) && l.contains("requests")),
            "no progress line for {op}: {stderr}"
        );
    }
    let mut lines = stdout.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head[..10],
        ["BACKEND", "SERVERS", "OPERATION", "REQUESTS", "REQ/S", "P50_MS", "P90_MS", "P99_MS", "MAX_MS", "ERRORS"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, op) in rows.iter().zip(["link-accept", "otp-wrong"]) {
        assert_eq!(row[..3], ["sqlite", "1", op], "{stdout}");
        let requests: u64 = row[3].parse().unwrap();
        let rate: f64 = row[4].parse().unwrap();
        let ms: Vec<f64> = row[5..9].iter().map(|v| v.parse().unwrap()).collect();
        assert!(requests > 0 && rate > 0.0, "{stdout}");
        assert!(ms[0] > 0.0 && ms.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {stdout}");
        assert_eq!(row[9], "0", "unexpected answers: {stdout}");
    }
    // The server's log: one line per timed request (and the untimed
    // unlocks, and the listening line), none with an error status.
    let logs: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let served = logs.lines().filter(|l| l.contains("\"route\":\"/v1/")).count() as u64;
    let timed: u64 = rows.iter().map(|r| r[3].parse::<u64>().unwrap()).sum();
    assert!(served >= timed, "{served} requests logged, {timed} timed");
    assert!(!logs.contains("\"status\":5"), "a server error: {logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_arguments_are_checked() {
    fails(&["bench", "--duration", "0s"], "INVALID_INPUT");
    fails(&["bench", "--ops", "everything"], "INVALID_INPUT");
    fails(&["bench", "--servers", "0"], "INVALID_INPUT");
    fails(&["bench", "--db", "mysql://x"], "INVALID_INPUT");
}

#[test]
fn bench_json_prints_its_table_as_an_array_of_rows() {
    let dir = common::tmp("bench", "json");
    let out = tessera_cmd()
        .args(["bench", "--dir", dir.to_str().unwrap(), "--servers", "1", "--db", "sqlite", "--duration", "500ms"])
        .args(["--concurrency", "1", "--devices", "1", "--ops", "otp", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench failed: {stderr}");
    let rows: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{stdout}");
    let r = &rows[0];
    assert_eq!(
        (r["backend"].as_str(), r["servers"].as_u64(), r["operation"].as_str()),
        (Some("sqlite"), Some(1), Some("otp-wrong"))
    );
    assert!(r["requests"].as_u64().unwrap() > 0 && r["requests_per_s"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["p50_ms"].as_f64().unwrap() <= r["max_ms"].as_f64().unwrap(), "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}
