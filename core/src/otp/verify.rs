//! Portal-side OTP verification: look-around window, replay refusal,
//! HOTP look-ahead resynchronisation, constant-time comparison and a
//! throttle (consecutive failures → lock) that the host persists.
//!
//! Every verifier first checks its `now` with [`check_now`]: a time outside
//! the years 2000..3000 (most often milliseconds passed as seconds) is
//! refused with `INVALID_TIME` before anything is counted, so a host's clock
//! bug never counts a failure, locks, or ends a timed lock.
//!
//! The verifier itself is stateless; all mutable state lives in
//! [`OtpState`], which the host loads, passes in, and stores back **after
//! every call, success or failure**. Across many portal servers, store it
//! with a compare-and-set (`UPDATE … SET state = new WHERE id = ? AND
//! state = old`) so that two servers cannot both accept the same code.

use super::{Hotp, Totp};
use crate::error::{err, ErrorCode, Result};
use crate::time::check_now;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Throttling policy of the verifiers: the shared [`crate::limits::AttemptPolicy`]
/// (PSD2 RTS art. 4(3)(b): at most 5 consecutive failures by default).
pub use crate::limits::AttemptPolicy as ThrottlePolicy;
/// Failure counter and lock; part of [`OtpState`] (see [`crate::limits`]).
pub use crate::limits::Throttle;

/// The persisted state of one OTP credential at the portal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpState {
    /// Last accepted time step (TOTP) or counter (HOTP). Codes at or below it
    /// are refused. `None` before the first success.
    pub last_accepted: Option<u64>,
    /// HOTP: the next expected counter (first of the look-ahead window).
    /// Once the last counter (`u64::MAX`) has been accepted it stays there
    /// and `last_accepted` marks the credential spent: every code is refused.
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
        self.throttle.unlock();
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
    /// `INVALID_INPUT` (wrong shape; counts as a failure), `INVALID_TIME`
    /// (`now` outside the years 2000..3000 or before T0; counts nothing).
    pub fn verify(&self, state: &mut OtpState, code: &str, now: u64) -> Result<Verified> {
        check_now(now)?;
        state.throttle.check(now)?;
        let current = self.totp.step(now)?;
        let hotp = self.totp.hotp();
        let typed = parse_counted(code, hotp.digits(), state, now, &self.policy)?;
        // Current step first, then outwards (-1, +1, -2, …): the usual case
        // costs one HMAC. Which step matched is not secret (the caller learns
        // it anyway), so stopping at the first match leaks nothing; each
        // comparison itself is constant-time.
        // The window is at most 10 steps: `distance` fits any signed type,
        // and steps that would leave 0..=u64::MAX are skipped, never wrapped.
        let mut found: Option<(u64, i64)> = None;
        for distance in 0..=self.window {
            let d = i64::try_from(distance).unwrap_or(i64::MAX);
            let candidates = [
                current.checked_sub(distance).map(|s| (s, -d)),
                if distance == 0 { None } else { current.checked_add(distance).map(|s| (s, d)) },
            ];
            if let Some(hit) = candidates.into_iter().flatten().find(|&(s, _)| value_matches(hotp, s, typed)) {
                found = Some(hit);
                break;
            }
        }
        match found {
            Some((step, _)) if state.last_accepted.is_some_and(|last| step <= last) => Err(state.throttle.refuse(
                now,
                &self.policy,
                err(ErrorCode::OtpReplayed, "this code (or a later one) was already used"),
            )),
            Some((step, drift)) => {
                state.last_accepted = Some(step);
                state.throttle.record_success();
                Ok(Verified { matched: step, drift })
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
///
/// The counter space ends at `u64::MAX` (or at [`HotpVerifier::with_last_counter`]):
/// that last counter is accepted once, and then the credential is spent
/// (`last_accepted` is the last counter) and refuses every code; give the
/// user a new secret. No search ever wraps around to counter 0.
#[derive(Clone, Debug)]
pub struct HotpVerifier {
    hotp: Hotp,
    look_ahead: u64,
    policy: ThrottlePolicy,
    last_counter: u64,
}

impl HotpVerifier {
    /// Default look-ahead window (counters after the expected one).
    pub const DEFAULT_LOOK_AHEAD: u64 = 10;

    /// A verifier; `look_ahead` is capped at 100.
    pub fn new(hotp: Hotp, look_ahead: u64, policy: ThrottlePolicy) -> Self {
        HotpVerifier { hotp, look_ahead: look_ahead.min(100), policy, last_counter: u64::MAX }
    }

    /// End the counter space at `last` instead of `u64::MAX`, for hosts
    /// that cannot store larger counters (JavaScript numbers: 2^53 - 1).
    pub fn with_last_counter(mut self, last: u64) -> Self {
        self.last_counter = last;
        self
    }

    /// The first counter that may still be accepted: the expected one, but
    /// never one at or below the last accepted counter (whatever a stored
    /// state says). `None` when the credential is spent.
    fn first_unused(&self, state: &OtpState) -> Option<u64> {
        let first = match state.last_accepted {
            Some(last) => last.checked_add(1)?.max(state.next_counter),
            None => state.next_counter,
        };
        (first <= self.last_counter).then_some(first)
    }

    /// Record the outcome of a search that started at `start`.
    fn settle(
        &self,
        state: &mut OtpState,
        found: Option<u64>,
        start: u64,
        now: u64,
        mismatch: &'static str,
    ) -> Result<Verified> {
        match found {
            Some(c) => {
                state.last_accepted = Some(c);
                // After the last counter `next_counter` stays on it (it
                // cannot move on): `last_accepted` marks the credential spent.
                state.next_counter = c.saturating_add(1).min(self.last_counter);
                state.throttle.record_success();
                // The search windows are at most 1001 counters: no wrap.
                Ok(Verified { matched: c, drift: i64::try_from(c - start).unwrap_or(i64::MAX) })
            }
            None => Err(state.throttle.refuse(now, &self.policy, err(ErrorCode::OtpMismatch, mismatch))),
        }
    }

    /// Verify `code`; on success the next expected counter moves past the
    /// match. `now` is only used for timed locks, but must still lie in the
    /// years 2000..3000 (`INVALID_TIME`, nothing counted).
    ///
    /// Accepts counters `next_counter ..= next_counter + look_ahead`, cut at
    /// the last counter (never wrapped), never one at or below the last
    /// accepted counter. A spent credential refuses and counts every code:
    /// the last accepted one as `OTP_REPLAYED`, others as `OTP_MISMATCH`.
    pub fn verify(&self, state: &mut OtpState, code: &str, now: u64) -> Result<Verified> {
        check_now(now)?;
        state.throttle.check(now)?;
        let typed = parse_counted(code, self.hotp.digits(), state, now, &self.policy)?;
        let Some(start) = self.first_unused(state) else {
            let e = if state.last_accepted.is_some_and(|last| value_matches(&self.hotp, last, typed)) {
                err(ErrorCode::OtpReplayed, "this code was already used; the HOTP counter is exhausted")
            } else {
                err(ErrorCode::OtpMismatch, "the code is not correct; the HOTP counter is exhausted")
            };
            return Err(state.throttle.refuse(now, &self.policy, e));
        };
        let end = start.saturating_add(self.look_ahead).min(self.last_counter);
        let found = (start..=end).find(|&c| value_matches(&self.hotp, c, typed));
        // A code of an already used counter is indistinguishable from a wrong
        // one without a backward search: it is reported as a mismatch.
        self.settle(state, found, start, now, "the code is not correct")
    }

    /// Resynchronise with two consecutive codes (RFC 4226 §7.4) searched in
    /// a larger window (`window`, capped at 1000). Resets the throttle on
    /// success; requires the verifier not to be locked, and `now` in the
    /// years 2000..3000 (`INVALID_TIME`, nothing counted). Both counters
    /// must be unused: a spent credential cannot be resynchronised.
    pub fn resync(&self, state: &mut OtpState, code1: &str, code2: &str, window: u64, now: u64) -> Result<Verified> {
        check_now(now)?;
        state.throttle.check(now)?;
        let digits = self.hotp.digits();
        let (v1, v2) = (parse_code(code1, digits)?, parse_code(code2, digits)?);
        let mut found = None;
        let start = self.first_unused(state);
        if let Some(start) = start {
            // First codes at `start..end`, second ones up to `end`, which is
            // at most the last counter: `c + 1` cannot overflow.
            let end = start.saturating_add(window.min(1000)).min(self.last_counter);
            for c in start..end {
                let next = c.saturating_add(1);
                if value_matches(&self.hotp, c, v1) & value_matches(&self.hotp, next, v2) && found.is_none() {
                    found = Some(next);
                }
            }
        }
        // Spent: nothing searched, refused as a mismatch.
        self.settle(state, found, start.unwrap_or(0), now, "the codes do not match consecutive counters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{Attempts, Lock};
    use crate::otp::Algorithm;
    use crate::time::{MAX_NOW, MIN_NOW};
    use alloc::vec::Vec;

    const KEY: &[u8] = b"12345678901234567890";
    /// 2027-01-15T08:00:00Z, the start of TOTP step `S` (period 30, T0 0).
    const T: u64 = 1_800_000_000;
    const S: u64 = T / 30;
    /// Clocks a verifier must refuse with `INVALID_TIME`: before 2000, the
    /// RFC example times, milliseconds (`Date.now()`), from 3000 on.
    const BAD_NOWS: [u64; 7] = [0, 59, MIN_NOW - 1, MAX_NOW, 1_767_225_600_000, u64::MAX / 2, u64::MAX];

    fn totp_v(window: u64) -> TotpVerifier {
        TotpVerifier::new(
            Totp::new(KEY.to_vec(), Algorithm::Sha1, 8, 30, 0).unwrap(),
            window,
            ThrottlePolicy::default(),
        )
    }

    fn hotp_v(look_ahead: u64) -> HotpVerifier {
        HotpVerifier::new(Hotp::new(KEY.to_vec(), Algorithm::Sha1, 6).unwrap(), look_ahead, ThrottlePolicy::default())
    }

    fn code_of(r: Result<Verified>) -> ErrorCode {
        r.unwrap_err().code()
    }

    #[test]
    fn totp_window_and_replay() {
        let v = totp_v(1);
        let c = |step: u64| v.totp().generate_step(step);
        let mut st = OtpState::default();
        // The previous step's code, 15 s into step S: within -1.
        let ok = v.verify(&mut st, &c(S - 1), T + 15).unwrap();
        assert_eq!(ok, Verified { matched: S - 1, drift: -1 });
        // The same code again: refused as replay.
        assert_eq!(code_of(v.verify(&mut st, &c(S - 1), T + 16)), ErrorCode::OtpReplayed);
        // Outside the window.
        let mut st2 = OtpState::default();
        assert_eq!(code_of(v.verify(&mut st2, &c(S - 1), T + 45)), ErrorCode::OtpMismatch);
        // The next step's code is fine after S - 1.
        assert_eq!(v.verify(&mut st, &c(S), T + 16).unwrap().matched, S);
        // An older step is refused even if inside the window.
        let mut st3 = OtpState { last_accepted: Some(S + 1), ..Default::default() };
        assert_eq!(code_of(v.verify(&mut st3, &c(S), T + 40)), ErrorCode::OtpReplayed);
    }

    /// Window `w` accepts exactly the steps `now - w ..= now + w`: one step
    /// more on either side is refused, for every window the API allows
    /// (wider ones are capped at 10).
    #[test]
    fn totp_window_boundaries_are_exact() {
        for (window, effective) in [(0, 0), (1, 1), (2, 2), (3, 3), (5, 5), (10, 10), (11, 10), (u64::MAX, 10)] {
            let v = totp_v(window);
            for now in [T, T + 29] {
                let w = effective as i64;
                for d in -(w + 1)..=(w + 1) {
                    let step = S.checked_add_signed(d).unwrap();
                    let mut st = OtpState::default();
                    let r = v.verify(&mut st, &v.totp().generate_step(step), now);
                    if d.abs() <= w {
                        assert_eq!(r.unwrap(), Verified { matched: step, drift: d }, "window {window}, d {d}");
                    } else {
                        assert_eq!(code_of(r), ErrorCode::OtpMismatch, "window {window}, d {d}");
                        assert_eq!(st.throttle.consecutive_failures.failures(), 1);
                    }
                }
            }
        }
    }

    #[test]
    fn lockout_after_five_and_reset_on_success() {
        let v = totp_v(1);
        let mut st = OtpState::default();
        let good = v.totp().generate(T).unwrap();
        let bad = if good == "00000000" { "00000001" } else { "00000000" };
        for _ in 0..4 {
            assert_eq!(code_of(v.verify(&mut st, bad, T)), ErrorCode::OtpMismatch);
        }
        assert!(v.verify(&mut st, &good, T).is_ok());
        assert_eq!(st.throttle.consecutive_failures.failures(), 0);
        for _ in 0..4 {
            assert_eq!(code_of(v.verify(&mut st, bad, T)), ErrorCode::OtpMismatch);
        }
        // The fifth failure locks, and says so.
        assert_eq!(code_of(v.verify(&mut st, bad, T)), ErrorCode::LockedOut);
        // Locked: even the right code is refused without saying whether it was right.
        let c = v.totp().generate_step(S + 1);
        assert_eq!(code_of(v.verify(&mut st, &c, T + 30)), ErrorCode::LockedOut);
        st.unlock();
        assert!(v.verify(&mut st, &c, T + 30).is_ok());
    }

    #[test]
    fn timed_lock_expires() {
        let policy = ThrottlePolicy { max_failures: 2, lock_seconds: Some(100) };
        let v = TotpVerifier::new(Totp::new(KEY.to_vec(), Algorithm::Sha1, 8, 30, 0).unwrap(), 1, policy);
        let mut st = OtpState::default();
        let _ = v.verify(&mut st, "00000000", T);
        let _ = v.verify(&mut st, "00000000", T);
        assert!(st.throttle.is_locked(T + 99));
        let code = v.totp().generate(T + 100).unwrap();
        assert!(v.verify(&mut st, &code, T + 100).is_ok());
    }

    #[test]
    fn bad_shape_counts_as_failure() {
        let v = totp_v(1);
        let mut st = OtpState::default();
        assert_eq!(code_of(v.verify(&mut st, "1234", T)), ErrorCode::InvalidInput);
        assert_eq!(code_of(v.verify(&mut st, "9428708a", T)), ErrorCode::InvalidInput);
        assert_eq!(st.throttle.consecutive_failures.failures(), 2);
    }

    #[test]
    fn hotp_look_ahead_and_resync() {
        let h = Hotp::new(KEY.to_vec(), Algorithm::Sha1, 6).unwrap();
        let v = HotpVerifier::new(h.clone(), 3, ThrottlePolicy::default());
        let mut st = OtpState::hotp_at(0);
        assert_eq!(v.verify(&mut st, "755224", T).unwrap().matched, 0);
        assert_eq!(code_of(v.verify(&mut st, "755224", T)), ErrorCode::OtpMismatch); // used
        assert_eq!(v.verify(&mut st, "338314", T).unwrap(), Verified { matched: 4, drift: 3 });
        // Counter 9 is beyond look-ahead 3 from 5.
        assert_eq!(code_of(v.verify(&mut st, "520489", T)), ErrorCode::OtpMismatch);
        // Resync with 8 and 9.
        let r = v.resync(&mut st, "399871", "520489", 100, T).unwrap();
        assert_eq!(r.matched, 9);
        assert_eq!(st.next_counter, 10);
        let codes: Vec<_> = (10..12).map(|c| h.generate(c)).collect();
        assert_eq!(v.verify(&mut st, &codes[0], T).unwrap().matched, 10);
    }

    /// Look-ahead `n` accepts `counter + n` and refuses `counter + n + 1`
    /// (wider look-aheads are capped at 100).
    #[test]
    fn hotp_look_ahead_boundaries_are_exact() {
        for (look_ahead, effective) in [(0, 0), (1, 1), (3, 3), (10, 10), (100, 100), (101, 100), (u64::MAX, 100)] {
            let v = hotp_v(look_ahead);
            for start in [0, 1_000, u64::MAX - 200] {
                let mut st = OtpState::hotp_at(start);
                let beyond = v.hotp.generate(start + effective + 1);
                assert_eq!(code_of(v.verify(&mut st, &beyond, T)), ErrorCode::OtpMismatch, "look-ahead {look_ahead}");
                let edge = v.hotp.generate(start + effective);
                let ok = v.verify(&mut st, &edge, T).unwrap();
                assert_eq!(ok, Verified { matched: start + effective, drift: effective as i64 });
                assert_eq!(st.next_counter, start + effective + 1);
            }
        }
    }

    /// The last counter (`u64::MAX`, or 2^53 - 1 as for JavaScript) can be
    /// accepted once; after it the credential is spent: the same code is a
    /// replay (counted), nothing else is accepted, and no search goes past
    /// the last counter or wraps around to counter 0.
    #[test]
    fn hotp_counter_end_refuses_replay() {
        for last in [u64::MAX, (1 << 53) - 1] {
            let v = hotp_v(10).with_last_counter(last);
            let code = |c: u64| v.hotp.generate(c);
            let mut st = OtpState::hotp_at(last - 2);
            // The window from last - 2 is cut at the last counter: counters
            // after it, and 0..=7 (a wrapped window), are refused.
            for c in [0, 1, 7, last.wrapping_add(1), last.wrapping_add(8)] {
                let mut probe = st;
                assert_eq!(code_of(v.verify(&mut probe, &code(c), T)), ErrorCode::OtpMismatch, "counter {c}");
            }
            assert_eq!(v.verify(&mut st, &code(last), T).unwrap(), Verified { matched: last, drift: 2 });
            assert_eq!(st, OtpState { last_accepted: Some(last), next_counter: last, ..Default::default() });
            let spent = st;
            // The same code again, five times: refused as a replay and
            // counted, the fifth locks.
            for i in 1..=5u32 {
                let r = v.verify(&mut st, &code(last), T + u64::from(i));
                assert_eq!(code_of(r), if i < 5 { ErrorCode::OtpReplayed } else { ErrorCode::LockedOut });
                assert_eq!(st.throttle.consecutive_failures.failures(), i);
            }
            // Unlocked, still nothing: earlier counters, later or wrapped
            // ones, a resync.
            let mut st = spent;
            for c in [last - 1, last - 2, last.wrapping_add(1), 0] {
                assert_eq!(code_of(v.verify(&mut st, &code(c), T)), ErrorCode::OtpMismatch, "counter {c}");
            }
            let mut st = spent;
            for (c1, c2) in [(last, last.wrapping_add(1)), (0, 1), (last - 1, last)] {
                assert_eq!(code_of(v.resync(&mut st, &code(c1), &code(c2), 1000, T)), ErrorCode::OtpMismatch);
            }
            assert_eq!(st.last_accepted, Some(last));
            assert_eq!(st.throttle.consecutive_failures.failures(), 3);

            // Counters last - 1 then last accepted one by one, then the replay.
            let mut st = OtpState::hotp_at(last - 1);
            assert_eq!(v.verify(&mut st, &code(last - 1), T).unwrap().matched, last - 1);
            assert_eq!(st.next_counter, last);
            assert_eq!(v.verify(&mut st, &code(last), T).unwrap().matched, last);
            assert_eq!(code_of(v.verify(&mut st, &code(last), T)), ErrorCode::OtpReplayed);

            // Resync never pairs the last counter with the one after it, but
            // can end on the last counter; a replay of it follows.
            let mut st = OtpState::hotp_at(last - 20);
            assert_eq!(
                code_of(v.resync(&mut st, &code(last), &code(last.wrapping_add(1)), 1000, T)),
                ErrorCode::OtpMismatch
            );
            let r = v.resync(&mut st, &code(last - 1), &code(last), 1000, T).unwrap();
            assert_eq!(r, Verified { matched: last, drift: 20 });
            assert_eq!(code_of(v.verify(&mut st, &code(last), T)), ErrorCode::OtpReplayed);
        }
    }

    /// A stored state whose `next_counter` fell behind `last_accepted` (an
    /// edited or badly migrated row) still never re-accepts a used counter.
    #[test]
    fn hotp_never_accepts_at_or_below_last_accepted() {
        let v = hotp_v(10);
        let mut st = OtpState { last_accepted: Some(5), next_counter: 0, ..Default::default() };
        for c in 0..=5 {
            let mut probe = st;
            assert_eq!(code_of(v.verify(&mut probe, &v.hotp.generate(c), T)), ErrorCode::OtpMismatch, "counter {c}");
        }
        assert_eq!(v.verify(&mut st, &v.hotp.generate(6), T).unwrap(), Verified { matched: 6, drift: 0 });
    }

    /// A wrong clock (milliseconds, before 2000, from 3000 on) is refused
    /// with INVALID_TIME by every verifier before anything is counted: the
    /// state is untouched, a lock is neither taken nor ended.
    #[test]
    fn verifiers_refuse_bad_clocks_without_counting() {
        let t = totp_v(1);
        let h = hotp_v(10);
        let states = [
            OtpState::default(),
            OtpState {
                last_accepted: Some(S),
                next_counter: 7,
                throttle: Throttle { consecutive_failures: Attempts::from_failures(4), ..Default::default() },
            },
            // Locked for good, and a timed lock that a large `now` would end.
            OtpState {
                throttle: Throttle { consecutive_failures: Attempts::from_failures(5), lock: Lock::UntilUnlocked },
                ..Default::default()
            },
            OtpState {
                throttle: Throttle { consecutive_failures: Attempts::from_failures(5), lock: Lock::Until(T) },
                ..Default::default()
            },
        ];
        for now in BAD_NOWS {
            for before in states {
                let mut st = before;
                // Right and wrong codes, of the right and the wrong shape.
                for code in [t.totp().generate(now).unwrap(), "00000000".into(), "x".into()] {
                    assert_eq!(code_of(t.verify(&mut st, &code, now)), ErrorCode::InvalidTime, "totp at {now}");
                    assert_eq!(code_of(h.verify(&mut st, &code, now)), ErrorCode::InvalidTime, "hotp at {now}");
                    assert_eq!(code_of(h.resync(&mut st, &code, &code, 10, now)), ErrorCode::InvalidTime);
                    assert_eq!(st, before, "state changed at {now}");
                }
                let mut th = before.throttle;
                assert_eq!(th.check(now).unwrap_err().code(), ErrorCode::InvalidTime);
                assert_eq!(th, before.throttle);
            }
        }
        // Five calls with milliseconds, then the right code at a valid time.
        let mut st = OtpState::default();
        let ms = T * 1000;
        for _ in 0..5 {
            assert_eq!(code_of(t.verify(&mut st, "00000000", ms)), ErrorCode::InvalidTime);
        }
        assert_eq!(st.throttle, Throttle::default());
        assert_eq!(t.verify(&mut st, &t.totp().generate(T).unwrap(), T).unwrap().matched, S);
        // The clock bounds themselves.
        let mut st = OtpState::default();
        assert_eq!(t.verify(&mut st, &t.totp().generate(MIN_NOW).unwrap(), MIN_NOW).unwrap().drift, 0);
        assert_eq!(t.verify(&mut st, &t.totp().generate(MAX_NOW - 1).unwrap(), MAX_NOW - 1).unwrap().drift, 0);
    }

    /// Extreme periods and start times: no step arithmetic overflows, a
    /// start time after `now` is INVALID_TIME and counts nothing.
    #[test]
    fn totp_verifier_extreme_periods_and_start_times() {
        let make = |period: u64, t0: u64, window: u64| {
            TotpVerifier::new(
                Totp::new(KEY.to_vec(), Algorithm::Sha1, 8, period, t0).unwrap(),
                window,
                ThrottlePolicy::default(),
            )
        };
        // Huge period: step 0 at every valid time; the window below 0 is empty.
        let v = make(u64::MAX, 0, 10);
        let mut st = OtpState::default();
        assert_eq!(
            v.verify(&mut st, &v.totp().generate_step(0), MAX_NOW - 1).unwrap(),
            Verified { matched: 0, drift: 0 }
        );
        let mut st = OtpState::default();
        assert_eq!(v.verify(&mut st, &v.totp().generate_step(10), T).unwrap(), Verified { matched: 10, drift: 10 });
        // Period 1 at the last valid second: steps up to now + 10.
        let v = make(1, 0, 10);
        let mut st = OtpState::default();
        let ok = v.verify(&mut st, &v.totp().generate_step(MAX_NOW + 9), MAX_NOW - 1).unwrap();
        assert_eq!(ok, Verified { matched: MAX_NOW + 9, drift: 10 });
        // T0 after now (and T0 = u64::MAX): INVALID_TIME, nothing counted.
        for t0 in [T + 1, MAX_NOW, u64::MAX] {
            let v = make(30, t0, 1);
            let mut st = OtpState::default();
            assert_eq!(code_of(v.verify(&mut st, "00000000", T)), ErrorCode::InvalidTime);
            assert_eq!(st, OtpState::default());
        }
        // T0 at now: step 0, the window below it is empty.
        let v = make(30, T, 3);
        let mut st = OtpState::default();
        assert_eq!(v.verify(&mut st, &v.totp().generate_step(0), T).unwrap(), Verified { matched: 0, drift: 0 });
    }
}
