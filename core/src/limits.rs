//! The two limits every flow reuses: a counter of consecutive failed
//! attempts under a policy ([`Attempts`], [`AttemptPolicy`], and with a
//! lock, [`Throttle`]), and single use with an expiry ([`SingleUse`]).
//!
//! Check codes of pending links count with [`Attempts`] (the limit closes
//! the link for good); OTP verifiers count with a [`Throttle`] (the limit
//! locks the verifier, for good or for `lock_seconds`). Link offers are a
//! [`SingleUse`]. Each rule lives here once.

use crate::error::{err, ErrorCode, Result};
use crate::time::check_now;
use serde::{Deserialize, Serialize};

/// How many consecutive failures a counter allows, and what the limit does.
/// The default is the PSD2 RTS art. 4(3)(b) limit: 5 failures, locked until
/// an administrative unlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptPolicy {
    /// Consecutive failures that reach the limit (default 5; 0 counts as 1).
    pub max_failures: u32,
    /// How long a lock lasts in seconds; `None` locks until
    /// [`Throttle::unlock`] (or, for a pending link, closes it for good).
    pub lock_seconds: Option<u64>,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        AttemptPolicy { max_failures: 5, lock_seconds: None }
    }
}

impl AttemptPolicy {
    /// The limit, at least 1.
    pub const fn limit(&self) -> u32 {
        if self.max_failures == 0 {
            1
        } else {
            self.max_failures
        }
    }
}

/// Consecutive failed attempts. Stored as a bare `u32` (serde transparent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attempts {
    failures: u32,
}

impl Attempts {
    /// No failure yet.
    pub const NONE: Attempts = Attempts { failures: 0 };

    /// A counter at `failures` (a host migrating stored counts, tests).
    pub const fn from_failures(failures: u32) -> Attempts {
        Attempts { failures }
    }

    /// Failures counted so far.
    pub const fn failures(self) -> u32 {
        self.failures
    }

    /// Whether the count reached the policy's limit.
    pub const fn reached(self, policy: &AttemptPolicy) -> bool {
        self.failures >= policy.limit()
    }

    /// Count one failure. Returns true when the count has reached the
    /// policy's limit (on this failure or before).
    #[must_use = "the limit may have been reached"]
    pub fn record_failure(&mut self, policy: &AttemptPolicy) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.reached(policy)
    }
}

/// Whether a [`Throttle`] is locked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lock {
    /// Not locked.
    #[default]
    Unlocked,
    /// Locked until `t` (unix seconds; unlocked from `t` on).
    Until(u64),
    /// Locked until an administrative [`Throttle::unlock`].
    UntilUnlocked,
}

impl Lock {
    /// Is it locked at `now`?
    pub fn is_locked(self, now: u64) -> bool {
        match self {
            Lock::Unlocked => false,
            Lock::Until(t) => now < t,
            Lock::UntilUnlocked => true,
        }
    }

    /// The lock of version 1's stored pair: `locked` and the end of a timed
    /// lock (ignored when not locked).
    pub fn from_parts(locked: bool, locked_until: Option<u64>) -> Lock {
        match (locked, locked_until) {
            (false, _) => Lock::Unlocked,
            (true, Some(t)) => Lock::Until(t),
            (true, None) => Lock::UntilUnlocked,
        }
    }

    /// `(locked, locked_until)`, the stored pair.
    pub fn to_parts(self) -> (bool, Option<u64>) {
        match self {
            Lock::Unlocked => (false, None),
            Lock::Until(t) => (true, Some(t)),
            Lock::UntilUnlocked => (true, None),
        }
    }
}

/// An [`Attempts`] counter that locks at its policy's limit; part of
/// [`crate::otp::OtpState`]. Stored as before, as
/// `{consecutive_failures, locked, locked_until}`; a stored pair that
/// contradicts itself (not locked, with an end) reads as unlocked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredThrottle", into = "StoredThrottle")]
pub struct Throttle {
    /// Consecutive failures since the last success.
    pub consecutive_failures: Attempts,
    /// The lock.
    pub lock: Lock,
}

/// The stored shape of a [`Throttle`].
#[derive(Clone, Copy, Serialize, Deserialize)]
struct StoredThrottle {
    consecutive_failures: u32,
    locked: bool,
    locked_until: Option<u64>,
}

impl From<StoredThrottle> for Throttle {
    fn from(s: StoredThrottle) -> Throttle {
        Throttle::from_parts(s.consecutive_failures, s.locked, s.locked_until)
    }
}

impl From<Throttle> for StoredThrottle {
    fn from(t: Throttle) -> StoredThrottle {
        let (locked, locked_until) = t.lock.to_parts();
        StoredThrottle { consecutive_failures: t.consecutive_failures.failures(), locked, locked_until }
    }
}

impl Throttle {
    /// A throttle from stored columns (`locked_until` is ignored when not
    /// `locked`).
    pub fn from_parts(consecutive_failures: u32, locked: bool, locked_until: Option<u64>) -> Throttle {
        Throttle {
            consecutive_failures: Attempts::from_failures(consecutive_failures),
            lock: Lock::from_parts(locked, locked_until),
        }
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.consecutive_failures.failures()
    }

    /// Is the verifier locked at `now`?
    pub fn is_locked(&self, now: u64) -> bool {
        self.lock.is_locked(now)
    }

    /// Refuse when locked (call before checking a code). A `now` outside the
    /// years 2000..3000 is refused with `INVALID_TIME` first and changes
    /// nothing (it must not end a timed lock).
    pub fn check(&mut self, now: u64) -> Result<()> {
        check_now(now)?;
        if self.is_locked(now) {
            return Err(err(ErrorCode::LockedOut, "too many failed attempts; the verifier is locked"));
        }
        if self.lock != Lock::Unlocked {
            // A timed lock has expired.
            *self = Throttle::default();
        }
        Ok(())
    }

    /// Record a failure; locks when the policy's limit is reached. Returns
    /// true when this failure locked the verifier.
    pub fn record_failure(&mut self, now: u64, policy: &AttemptPolicy) -> bool {
        if self.consecutive_failures.record_failure(policy) && self.lock == Lock::Unlocked {
            self.lock = match policy.lock_seconds {
                Some(s) => Lock::Until(now.saturating_add(s)),
                None => Lock::UntilUnlocked,
            };
            return true;
        }
        false
    }

    /// Count a refused attempt and return the error to report: `e`, or
    /// `LOCKED_OUT` when this attempt reached the limit (so the user learns
    /// of the lock on the attempt that caused it, as with check codes).
    pub fn refuse(&mut self, now: u64, policy: &AttemptPolicy, e: crate::Error) -> crate::Error {
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

    /// Administrative unlock (after the user re-identified): failures reset.
    pub fn unlock(&mut self) {
        *self = Throttle::default();
    }
}

/// A deadline: refused **at or after** `expires_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// First second at which it is refused.
    pub expires_at: u64,
}

impl Expiry {
    /// Whether `now` is at or after the expiry.
    pub const fn is_past(self, now: u64) -> bool {
        now >= self.expires_at
    }
}

/// A single-use token with an expiry (a link offer): usable once, before
/// its expiry. A repeat of the very request that used it is answered as
/// before; any other use is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SingleUse {
    /// When it expires.
    pub expiry: Expiry,
}

/// How a stored single-use token stands, as seen by one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage<T> {
    /// Not used, not closed.
    Unused,
    /// Used by this very request; `T` is what the first use recorded (the
    /// answer to send again).
    UsedByThis(T),
    /// Used by another request.
    UsedByOther,
    /// Closed by a request that came at or after the expiry.
    Expired,
}

/// What a request may do with a [`SingleUse`] token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UseDecision<T> {
    /// Unused and in time: use it, and record the use.
    Use,
    /// A repeat of the request that used it: answer `T` again, write nothing.
    Repeat(T),
    /// Refuse and write nothing: `TOKEN_ALREADY_USED` or `TOKEN_EXPIRED`.
    Refuse(ErrorCode),
    /// The first request at or after the expiry: record the token as
    /// expired (so that a server deciding from an older read loses its
    /// compare-and-set), and refuse with `TOKEN_EXPIRED`.
    Expire,
}

impl SingleUse {
    /// A token that expires at `expires_at`.
    pub const fn until(expires_at: u64) -> SingleUse {
        SingleUse { expiry: Expiry { expires_at } }
    }

    /// The rule, in order: a repeat of the request that used the token is
    /// answered as before (even after the expiry); a second use is refused;
    /// a closed token is refused; at or after the expiry the token closes.
    pub fn decide<T>(&self, usage: Usage<T>, now: u64) -> UseDecision<T> {
        match usage {
            Usage::UsedByThis(first) => UseDecision::Repeat(first),
            Usage::UsedByOther => UseDecision::Refuse(ErrorCode::TokenAlreadyUsed),
            Usage::Expired => UseDecision::Refuse(ErrorCode::TokenExpired),
            Usage::Unused if self.expiry.is_past(now) => UseDecision::Expire,
            Usage::Unused => UseDecision::Use,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_reach_the_limit_on_the_last_failure() {
        let policy = AttemptPolicy { max_failures: 3, lock_seconds: None };
        let mut a = Attempts::NONE;
        assert!(!a.record_failure(&policy));
        assert!(!a.record_failure(&policy));
        assert!(a.record_failure(&policy));
        assert_eq!(a.failures(), 3);
        assert!(a.reached(&policy));
        // Zero counts as one.
        let mut a = Attempts::NONE;
        assert!(a.record_failure(&AttemptPolicy { max_failures: 0, lock_seconds: None }));
        // Saturates.
        let mut a = Attempts::from_failures(u32::MAX);
        assert!(a.record_failure(&policy));
        assert_eq!(a.failures(), u32::MAX);
    }

    #[test]
    fn attempts_are_stored_as_a_bare_number() {
        let a = Attempts::from_failures(300);
        assert_eq!(postcard::to_allocvec(&a).unwrap(), postcard::to_allocvec(&300u32).unwrap());
        assert_eq!(serde_json::to_string(&a).unwrap(), "300");
    }

    /// The throttle's stored shape is the one of version 1: a number, a
    /// flag and an optional time, under the same names.
    #[test]
    fn throttle_is_stored_as_before() {
        for (t, parts, json) in [
            (
                Throttle { consecutive_failures: Attempts::from_failures(4), lock: Lock::Until(77) },
                (4u32, true, Some(77u64)),
                r#"{"consecutive_failures":4,"locked":true,"locked_until":77}"#,
            ),
            (
                Throttle { consecutive_failures: Attempts::from_failures(5), lock: Lock::UntilUnlocked },
                (5, true, None),
                r#"{"consecutive_failures":5,"locked":true,"locked_until":null}"#,
            ),
            (Throttle::default(), (0, false, None), r#"{"consecutive_failures":0,"locked":false,"locked_until":null}"#),
        ] {
            let bytes = postcard::to_allocvec(&t).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&parts).unwrap());
            assert_eq!(postcard::from_bytes::<Throttle>(&bytes).unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), json);
            assert_eq!(serde_json::from_str::<Throttle>(json).unwrap(), t);
            assert_eq!(Throttle::from_parts(parts.0, parts.1, parts.2), t);
        }
        // The one stored pair that contradicts itself reads as unlocked.
        let odd = postcard::to_allocvec(&(2u32, false, Some(77u64))).unwrap();
        assert_eq!(postcard::from_bytes::<Throttle>(&odd).unwrap(), Throttle::from_parts(2, false, None));
    }

    #[test]
    fn locks_end_on_time_or_never() {
        assert!(!Lock::Unlocked.is_locked(5));
        assert!(Lock::Until(10).is_locked(9));
        assert!(!Lock::Until(10).is_locked(10));
        assert!(Lock::UntilUnlocked.is_locked(u64::MAX));
        let policy = AttemptPolicy { max_failures: 2, lock_seconds: Some(100) };
        let now = 1_800_000_000;
        let mut t = Throttle::default();
        assert!(!t.record_failure(now, &policy));
        assert!(t.record_failure(now, &policy));
        assert_eq!(t.lock, Lock::Until(now + 100));
        assert_eq!(t.check(now + 99).unwrap_err().code(), ErrorCode::LockedOut);
        t.check(now + 100).unwrap();
        assert_eq!(t, Throttle::default());
    }

    #[test]
    fn single_use_order() {
        let t = SingleUse::until(100);
        assert_eq!(t.decide(Usage::<u8>::Unused, 99), UseDecision::Use);
        assert_eq!(t.decide(Usage::<u8>::Unused, 100), UseDecision::Expire);
        assert_eq!(t.decide(Usage::UsedByThis(7), 99), UseDecision::Repeat(7));
        assert_eq!(t.decide(Usage::UsedByThis(7), 1000), UseDecision::Repeat(7));
        assert_eq!(t.decide(Usage::<u8>::UsedByOther, 1), UseDecision::Refuse(ErrorCode::TokenAlreadyUsed));
        assert_eq!(t.decide(Usage::<u8>::Expired, 1), UseDecision::Refuse(ErrorCode::TokenExpired));
        assert!(!Expiry { expires_at: 100 }.is_past(99));
        assert!(Expiry { expires_at: 100 }.is_past(100));
    }
}
