//! Times on the command line: `--now`/`--time` take Unix seconds or an
//! RFC 3339 date (`2026-11-30T12:00:00Z`, `2026-11-30T14:00:00+02:00`),
//! and outputs show RFC 3339 (UTC) next to Unix seconds.
//!
//! Hand-written (Howard Hinnant's days-from-civil and civil-from-days
//! algorithms, a few lines each) rather than a date crate: the CLI needs
//! only UTC instants, never time zones or calendars.

use crate::cli_err;
use tessera_host::{ErrorCode, TesseraError as Error};

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `secs` as RFC 3339 in UTC (`2027-01-15T08:00:00Z`); years past 9999
/// have no RFC 3339 form and print as `+YYYYY-…` (ISO 8601 expanded).
pub fn format(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if y > 9999 {
        format!("+{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

fn bad(flag: &str, v: &str, why: &str) -> Error {
    cli_err(
        ErrorCode::InvalidTime,
        format!("{flag} {v:?}: {why} (give Unix seconds or RFC 3339, e.g. 2026-11-30T12:00:00Z or 2026-11-30T14:00:00+02:00)"),
    )
}

/// Fixed-width decimal field `s[at..at + n]`.
fn num(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let f = s.get(at..at + n)?;
    f.iter().all(u8::is_ascii_digit).then(|| f.iter().fold(0, |a, b| a * 10 + u32::from(b - b'0')))
}

/// Unix seconds of a `--now`/`--time` value: decimal Unix seconds, or an
/// RFC 3339 date-time (`T`, `t` or a space between date and time; `Z`,
/// `z` or `±HH:MM`; a fraction of a second is dropped; second 60, a leap
/// second, is the next minute's first as in Unix time). A wrong value is
/// `INVALID_TIME` naming the flag.
pub fn parse(flag: &str, v: &str) -> Result<u64, Error> {
    let t = v.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map_err(|_| bad(flag, v, "too large"));
    }
    let s = t.as_bytes();
    let field = |at, n, what| num(s, at, n).ok_or_else(|| bad(flag, v, what));
    if s.len() < 20 || s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return Err(bad(flag, v, "not a date"));
    }
    let (y, mo, d) = (field(0, 4, "bad year")?, field(5, 2, "bad month")?, field(8, 2, "bad day")?);
    if !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' || s[16] != b':' {
        return Err(bad(flag, v, "expected YYYY-MM-DDTHH:MM:SS"));
    }
    let (hh, mi, ss) = (field(11, 2, "bad hour")?, field(14, 2, "bad minute")?, field(17, 2, "bad second")?);
    let y = i64::from(y);
    if !(1..=12).contains(&mo) {
        return Err(bad(flag, v, "the month must be 01 to 12"));
    }
    if d == 0 || d > days_in_month(y, mo) {
        return Err(bad(flag, v, &format!("{y:04}-{mo:02} has no day {d:02}")));
    }
    if hh > 23 || mi > 59 || ss > 60 {
        return Err(bad(flag, v, "the time must be 00:00:00 to 23:59:60"));
    }
    let mut i = 19;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad(flag, v, "a '.' must be followed by digits"));
        }
    }
    let offset: i64 = match &s[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (field(i + 1, 2, "bad offset")?, field(i + 4, 2, "bad offset")?);
            if oh > 23 || om > 59 {
                return Err(bad(flag, v, "the offset must be -23:59 to +23:59"));
            }
            let o = i64::from(oh * 3600 + om * 60);
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(bad(flag, v, "expected Z or an offset like +02:00 after the time")),
    };
    let local = days_from_civil(y, mo, d) * 86_400 + i64::from(hh * 3600 + mi * 60 + ss);
    u64::try_from(local - offset).map_err(|_| bad(flag, v, "before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_every_day_for_centuries() {
        // Every day from 1970 to 2500, at a time of day that changes.
        for day in 0..(531 * 366) {
            let secs = day * 86_400 + (day * 7919) % 86_400;
            assert_eq!(parse("--now", &format(secs)).unwrap(), secs, "{}", format(secs));
        }
    }

    #[test]
    fn known_dates_leap_years_and_offsets() {
        let p = |v: &str| parse("--now", v);
        assert_eq!(p("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(p("2027-01-15T08:00:00Z").unwrap(), 1_800_000_000);
        assert_eq!(p("2027-01-15T10:00:00+02:00").unwrap(), 1_800_000_000);
        assert_eq!(p("2027-01-15T03:30:00-04:30").unwrap(), 1_800_000_000);
        assert_eq!(p("2027-01-15 08:00:00.999z").unwrap(), 1_800_000_000);
        assert_eq!(p("1800000000").unwrap(), 1_800_000_000);
        assert_eq!(p("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800);
        assert_eq!(p("2000-02-29T12:00:00Z").unwrap(), 951_825_600);
        assert_eq!(p("2016-12-31T23:59:60Z").unwrap(), 1_483_228_800);
        assert_eq!(format(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(format(951_825_600), "2000-02-29T12:00:00Z");
        assert_eq!(format(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format(253_402_300_800), "+10000-01-01T00:00:00Z");
        for bad in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T12:60:00Z",
            "2026-11-30T12:00:00",
            "2026-11-30T12:00:00+2:00",
            "2026-11-30T12:00:00+24:00",
            "2026-11-30T12:00:00.Z",
            "2026-11-30",
            "1969-12-31T23:59:59Z",
            "1970-01-01T01:00:00+01:01",
            "-5",
            "",
            "99999999999999999999999",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidTime, "{bad}");
            assert!(e.detail().starts_with("--now "), "{}", e.detail());
        }
    }
}
