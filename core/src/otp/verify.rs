//! Portal-side OTP verification: look-around window, replay refusal,
//! HOTP look-ahead resynchronisation, constant-time comparison and a
//! throttle (consecutive failures → lock) that the host persists.
//!
//! The verifier itself is stateless; all mutable state lives in
//! [`OtpState`], which the host loads, passes in, and stores back **after
//! every call, success or failure**. Across many portal servers, store it
//! with a compare-and-set (`UPDATE … SET state = new WHERE id = ? AND
//! state = old`) so that two servers cannot both accept the same code.

use super::{Hotp, Totp};
use crate::error::{err, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Throttling policy (PSD2 RTS art. 4(3)(b): at most 5 consecutive failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlePolicy {
    /// Consecutive failures that lock the verifier (default 5).
    pub max_failures: u32,
    /// How long a lock lasts in seconds; `None` locks until [`OtpState::unlock`].
    pub lock_seconds: Option<u64>,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { max_failures: 5, lock_seconds: None }
    }
}

/// Failure counter and lock; part of [`OtpState`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Consecutive failures since the last success.
    pub consecutive_failures: u32,
    /// Locked (until `locked_until`, or for good when that is `None`).
    pub locked: bool,
    /// End of a timed lock (unix seconds).
    pub locked_until: Option<u64>,
}

impl Throttle {
    /// Is the verifier locked at `now`?
    pub fn is_locked(&self, now: u64) -> bool {
        self.locked && self.locked_until.is_none_or(|t| now < t)
    }

    /// Refuse when locked (call before checking a code).
    pub fn check(&mut self, now: u64) -> Result<()> {
        if self.is_locked(now) {
            return Err(err(ErrorCode::LockedOut, "too many failed attempts; the verifier is locked"));
        }
        if self.locked {
            // A timed lock has expired.
            *self = Throttle::default();
        }
        Ok(())
    }

    /// Record a failure; locks when the policy's limit is reached. Returns
    /// true when this failure locked the verifier.
    pub fn record_failure(&mut self, now: u64, policy: &ThrottlePolicy) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= policy.max_failures.max(1) && !self.locked {
            self.locked = true;
            self.locked_until = policy.lock_seconds.map(|s| now.saturating_add(s));
            return true;
        }
        false
    }

    /// Count a refused attempt and return the error to report: `e`, or
    /// `LOCKED_OUT` when this attempt reached the limit (so the user learns
    /// of the lock on the attempt that caused it, as with check codes).
    pub fn refuse(&mut self, now: u64, policy: &ThrottlePolicy, e: crate::Error) -> crate::Error {
        if self.record_failure(now, policy) {
            err(ErrorCode::LockedOut, "too many failed attempts; the verifier is now locked")
        } else {
            e
        }
    }

    /// Record a success: failures reset.
    pub fn record_success(&mut self) {
        *self = Throttle::default();
    }
}

/// The persisted state of one OTP credential at the portal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpState {
    /// Last accepted time step (TOTP) or counter (HOTP). Codes at or below it
    /// are refused. `None` before the first success.
    pub last_accepted: Option<u64>,
    /// HOTP: the next expected counter (first of the look-ahead window).
    pub next_counter: u64,
    /// Failures and lock.
    pub throttle: Throttle,
}

impl OtpState {
    /// State for a new HOTP credential whose device starts at `counter`.
    pub fn hotp_at(counter: u64) -> Self {
        OtpState { next_counter: counter, ..Default::default() }
    }
    /// Administrative unlock (after the user re-identified).
    pub fn unlock(&mut self) {
        self.throttle = Throttle::default();
    }
}

/// A successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The matched time step (TOTP) or counter (HOTP).
    pub matched: u64,
    /// Signed distance of the match from the expected step/counter (drift).
    pub drift: i64,
}

/// The code as a number, after checking it has exactly `digits` decimal digits.
fn parse_code(code: &str, digits: u8) -> Result<u64> {
    if code.len() != digits as usize || !code.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err(ErrorCode::InvalidInput, "the code must be exactly the configured number of decimal digits"));
    }
    Ok(code.bytes().fold(0u64, |n, c| n * 10 + u64::from(c - b'0')))
}

/// [`parse_code`], counting a malformed code as a failed attempt.
fn parse_counted(code: &str, digits: u8, state: &mut OtpState, now: u64, policy: &ThrottlePolicy) -> Result<u64> {
    parse_code(code, digits).map_err(|e| state.throttle.refuse(now, policy, e))
}

/// Record the outcome of a HOTP search that started at `start`.
fn settle_counter(
    state: &mut OtpState,
    found: Option<u64>,
    start: u64,
    now: u64,
    policy: &ThrottlePolicy,
    mismatch: &'static str,
) -> Result<Verified> {
    match found {
        Some(c) => {
            state.last_accepted = Some(c);
            state.next_counter = c.saturating_add(1);
            state.throttle.record_success();
            Ok(Verified { matched: c, drift: (c - start) as i64 })
        }
        None => Err(state.throttle.refuse(now, policy, err(ErrorCode::OtpMismatch, mismatch))),
    }
}

/// Constant-time comparison of a computed value with the typed one.
fn value_matches(hotp: &Hotp, counter: u64, typed: u64) -> bool {
    bool::from(hotp.value(counter).ct_eq(&typed))
}

/// TOTP verifier with a symmetric look-around window.
#[derive(Clone, Debug)]
pub struct TotpVerifier {
    totp: Totp,
    window: u64,
    policy: ThrottlePolicy,
}

impl TotpVerifier {
    /// Default window: ±1 step (RFC 6238 §5.2 recommends at most one step of
    /// network delay).
    pub const DEFAULT_WINDOW: u64 = 1;

    /// A verifier around `totp`, window ±`window` steps.
    pub fn new(totp: Totp, window: u64, policy: ThrottlePolicy) -> Self {
        TotpVerifier { totp, window: window.min(10), policy }
    }

    /// Verify `code` at unix time `now`, updating `state`. Always persist
    /// `state` afterwards, whatever the result.
    ///
    /// Errors: `LOCKED_OUT`, `OTP_REPLAYED` (a step at or below the last
    /// accepted one matched; counts as a failure), `OTP_MISMATCH`,
    /// `INVALID_INPUT` (wrong shape; counts as a failure), `INVALID_TIME`.
    pub fn verify(&self, state: &mut OtpState, code: &str, now: u64) -> Result<Verified> {
        state.throttle.check(now)?;
        let current = self.totp.step(now)?;
        let hotp = self.totp.hotp();
        let typed = parse_counted(code, hotp.digits(), state, now, &self.policy)?;
        // Current step first, then outwards (-1, +1, -2, …): the usual case
        // costs one HMAC. Which step matched is not secret (the caller learns
        // it anyway), so stopping at the first match leaks nothing; each
        // comparison itself is constant-time.
        let mut found: Option<u64> = None;
        for distance in 0..=self.window {
            let candidates =
                [current.checked_sub(distance), if distance == 0 { None } else { current.checked_add(distance) }];
            if let Some(step) = candidates.into_iter().flatten().find(|&s| value_matches(hotp, s, typed)) {
                found = Some(step);
                break;
            }
        }
        match found {
            Some(step) if state.last_accepted.is_some_and(|last| step <= last) => Err(state.throttle.refuse(
                now,
                &self.policy,
                err(ErrorCode::OtpReplayed, "this code (or a later one) was already used"),
            )),
            Some(step) => {
                state.last_accepted = Some(step);
                state.throttle.record_success();
                Ok(Verified { matched: step, drift: step as i64 - current as i64 })
            }
            None => {
                Err(state.throttle.refuse(now, &self.policy, err(ErrorCode::OtpMismatch, "the code is not correct")))
            }
        }
    }

    /// The generator.
    pub fn totp(&self) -> &Totp {
        &self.totp
    }
}

/// HOTP verifier with look-ahead resynchronisation (RFC 4226 §7.4).
#[derive(Clone, Debug)]
pub struct HotpVerifier {
    hotp: Hotp,
    look_ahead: u64,
    policy: ThrottlePolicy,
}

impl HotpVerifier {
    /// Default look-ahead window (counters after the expected one).
    pub const DEFAULT_LOOK_AHEAD: u64 = 10;

    /// A verifier; `look_ahead` is capped at 100.
    pub fn new(hotp: Hotp, look_ahead: u64, policy: ThrottlePolicy) -> Self {
        HotpVerifier { hotp, look_ahead: look_ahead.min(100), policy }
    }

    /// Verify `code`; on success the next expected counter moves past the
    /// match. `now` is only used for timed locks.
    pub fn verify(&self, state: &mut OtpState, code: &str, now: u64) -> Result<Verified> {
        state.throttle.check(now)?;
        let typed = parse_counted(code, self.hotp.digits(), state, now, &self.policy)?;
        let start = state.next_counter;
        let found = (start..=start.saturating_add(self.look_ahead)).find(|&c| value_matches(&self.hotp, c, typed));
        // A code of an already used counter is indistinguishable from a wrong
        // one without a backward search: it is reported as a mismatch.
        settle_counter(state, found, start, now, &self.policy, "the code is not correct")
    }

    /// Resynchronise with two consecutive codes (RFC 4226 §7.4) searched in
    /// a larger window (`window`, capped at 1000). Resets the throttle on
    /// success; requires the verifier not to be locked.
    pub fn resync(&self, state: &mut OtpState, code1: &str, code2: &str, window: u64, now: u64) -> Result<Verified> {
        state.throttle.check(now)?;
        let digits = self.hotp.digits();
        let (v1, v2) = (parse_code(code1, digits)?, parse_code(code2, digits)?);
        let start = state.next_counter;
        let end = start.saturating_add(window.min(1000));
        let mut found = None;
        for c in start..end {
            if value_matches(&self.hotp, c, v1) & value_matches(&self.hotp, c.saturating_add(1), v2) && found.is_none()
            {
                found = Some(c.saturating_add(1));
            }
        }
        settle_counter(state, found, start, now, &self.policy, "the codes do not match consecutive counters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Algorithm;
    use alloc::vec::Vec;

    const KEY: &[u8] = b"12345678901234567890";

    fn totp_v(window: u64) -> TotpVerifier {
        TotpVerifier::new(
            Totp::new(KEY.to_vec(), Algorithm::Sha1, 8, 30, 0).unwrap(),
            window,
            ThrottlePolicy::default(),
        )
    }

    #[test]
    fn totp_window_and_replay() {
        let v = totp_v(1);
        let mut st = OtpState::default();
        // 94287082 is step 1 (t=30..59). At t=75 (step 2) it is within -1.
        let ok = v.verify(&mut st, "94287082", 75).unwrap();
        assert_eq!(ok, Verified { matched: 1, drift: -1 });
        // The same code again: refused as replay.
        assert_eq!(v.verify(&mut st, "94287082", 76).unwrap_err().code(), ErrorCode::OtpReplayed);
        // Outside the window.
        let mut st2 = OtpState::default();
        assert_eq!(v.verify(&mut st2, "94287082", 120).unwrap_err().code(), ErrorCode::OtpMismatch);
        // The next step's code is fine after step 1.
        let c2 = v.totp().generate_step(2);
        assert_eq!(v.verify(&mut st, &c2, 76).unwrap().matched, 2);
        // An older step is refused even if inside the window.
        let mut st3 = OtpState { last_accepted: Some(3), ..Default::default() };
        assert_eq!(v.verify(&mut st3, &c2, 100).unwrap_err().code(), ErrorCode::OtpReplayed);
    }

    #[test]
    fn lockout_after_five_and_reset_on_success() {
        let v = totp_v(1);
        let mut st = OtpState::default();
        for _ in 0..4 {
            assert_eq!(v.verify(&mut st, "00000000", 59).unwrap_err().code(), ErrorCode::OtpMismatch);
        }
        assert!(v.verify(&mut st, "94287082", 59).is_ok());
        assert_eq!(st.throttle.consecutive_failures, 0);
        for _ in 0..4 {
            assert_eq!(v.verify(&mut st, "00000000", 59).unwrap_err().code(), ErrorCode::OtpMismatch);
        }
        // The fifth failure locks, and says so.
        assert_eq!(v.verify(&mut st, "00000000", 59).unwrap_err().code(), ErrorCode::LockedOut);
        // Locked: even the right code is refused without saying whether it was right.
        let c = v.totp().generate_step(2);
        assert_eq!(v.verify(&mut st, &c, 60).unwrap_err().code(), ErrorCode::LockedOut);
        st.unlock();
        assert!(v.verify(&mut st, &c, 60).is_ok());
    }

    #[test]
    fn timed_lock_expires() {
        let policy = ThrottlePolicy { max_failures: 2, lock_seconds: Some(100) };
        let v = TotpVerifier::new(Totp::new(KEY.to_vec(), Algorithm::Sha1, 8, 30, 0).unwrap(), 1, policy);
        let mut st = OtpState::default();
        let _ = v.verify(&mut st, "00000000", 1000);
        let _ = v.verify(&mut st, "00000000", 1000);
        assert!(st.throttle.is_locked(1099));
        let code = v.totp().generate(1100).unwrap();
        assert!(v.verify(&mut st, &code, 1100).is_ok());
    }

    #[test]
    fn bad_shape_counts_as_failure() {
        let v = totp_v(1);
        let mut st = OtpState::default();
        assert_eq!(v.verify(&mut st, "1234", 59).unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(v.verify(&mut st, "9428708a", 59).unwrap_err().code(), ErrorCode::InvalidInput);
        assert_eq!(st.throttle.consecutive_failures, 2);
    }

    #[test]
    fn hotp_look_ahead_and_resync() {
        let h = Hotp::new(KEY.to_vec(), Algorithm::Sha1, 6).unwrap();
        let v = HotpVerifier::new(h.clone(), 3, ThrottlePolicy::default());
        let mut st = OtpState::hotp_at(0);
        assert_eq!(v.verify(&mut st, "755224", 0).unwrap().matched, 0);
        assert_eq!(v.verify(&mut st, "755224", 0).unwrap_err().code(), ErrorCode::OtpMismatch); // used
        assert_eq!(v.verify(&mut st, "338314", 0).unwrap(), Verified { matched: 4, drift: 3 });
        // Counter 9 is beyond look-ahead 3 from 5.
        assert_eq!(v.verify(&mut st, "520489", 0).unwrap_err().code(), ErrorCode::OtpMismatch);
        // Resync with 8 and 9.
        let r = v.resync(&mut st, "399871", "520489", 100, 0).unwrap();
        assert_eq!(r.matched, 9);
        assert_eq!(st.next_counter, 10);
        let codes: Vec<_> = (10..12).map(|c| h.generate(c)).collect();
        assert_eq!(v.verify(&mut st, &codes[0], 0).unwrap().matched, 10);
    }
}
