//! The one rule for the host's clock: protocol steps and verifiers accept a
//! `now` (unix seconds) between 2000-01-01 and 3000-01-01 only. Anything
//! else is a host bug, most often milliseconds passed as seconds
//! (`Date.now()` in JavaScript), and is refused with `INVALID_TIME` instead
//! of being counted as a wrong code or an expired token. Plain OTP
//! generation accepts any time (the RFC vectors start at 59 s).

use crate::error::{err, ErrorCode, Result};

/// 2000-01-01T00:00:00Z.
pub const MIN_NOW: u64 = 946_684_800;
/// 3000-01-01T00:00:00Z (first instant refused).
pub const MAX_NOW: u64 = 32_503_680_000;

/// `INVALID_TIME` unless `MIN_NOW <= now < MAX_NOW`.
pub fn check_now(now: u64) -> Result<u64> {
    if (MIN_NOW..MAX_NOW).contains(&now) {
        Ok(now)
    } else if now >= MAX_NOW.saturating_mul(100) {
        Err(err(ErrorCode::InvalidTime, "the time is not in unix seconds (milliseconds passed as seconds?)"))
    } else {
        Err(err(ErrorCode::InvalidTime, "the time is outside the years 2000 to 3000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_exact() {
        assert!(check_now(MIN_NOW - 1).is_err());
        assert_eq!(check_now(MIN_NOW), Ok(MIN_NOW));
        assert_eq!(check_now(MAX_NOW - 1), Ok(MAX_NOW - 1));
        assert_eq!(check_now(MAX_NOW).map_err(|e| e.code()), Err(ErrorCode::InvalidTime));
        assert_eq!(check_now(1_767_225_600_000).map_err(|e| e.code()), Err(ErrorCode::InvalidTime));
        assert_eq!(check_now(0).map_err(|e| e.code()), Err(ErrorCode::InvalidTime));
        assert_eq!(check_now(u64::MAX).map_err(|e| e.code()), Err(ErrorCode::InvalidTime));
    }
}
