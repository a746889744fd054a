//! The verifier never accepts a code twice, whatever the order of attempts,
//! never accepts anything while locked, and a clock outside the years
//! 2000..3000 changes nothing.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use proptest::prelude::*;
use std::collections::HashSet;
use tessera_core::otp::{Algorithm, Hotp, HotpVerifier, OtpState, Throttle, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::time::{MAX_NOW, MIN_NOW};
use tessera_core::ErrorCode;

const KEY: &[u8] = b"12345678901234567890";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Attempts: (seconds since start, which step's code relative to the
    /// current one, or a random code).
    #[test]
    fn totp_never_accepts_a_step_twice(
        attempts in proptest::collection::vec((0u64..600, -2i64..=2, any::<bool>(), 0u32..1_000_000), 1..60),
        window in 0u64..3,
    ) {
        let totp = Totp::new(KEY.to_vec(), Algorithm::Sha1, 6, 30, 0).unwrap();
        let v = TotpVerifier::new(totp.clone(), window, ThrottlePolicy { max_failures: 1000, lock_seconds: None });
        let mut st = OtpState::default();
        let mut accepted: HashSet<String> = HashSet::new();
        let mut last: Option<u64> = None;
        let base = 1_700_000_000u64;
        let mut t = base;
        for (dt, rel, random, r) in attempts {
            t += dt / 10; // time only moves forward
            let step = (t / 30) as i64 + rel;
            let code = if random { format!("{r:06}") } else { totp.generate_step(step.max(0) as u64) };
            if let Ok(ok) = v.verify(&mut st, &code, t) {
                prop_assert!(last.is_none_or(|l| ok.matched > l), "step went backwards or repeated");
                let key = format!("{}:{}", ok.matched, code);
                prop_assert!(accepted.insert(key), "accepted twice");
                prop_assert!(ok.matched.abs_diff(t / 30) <= window);
                last = Some(ok.matched);
            }
        }
    }

    #[test]
    fn hotp_never_accepts_a_counter_twice(
        attempts in proptest::collection::vec((0u64..15, any::<bool>(), 0u32..1_000_000), 1..60),
    ) {
        let h = Hotp::new(KEY.to_vec(), Algorithm::Sha1, 6).unwrap();
        let v = HotpVerifier::new(h.clone(), 5, ThrottlePolicy { max_failures: 1000, lock_seconds: None });
        let mut st = OtpState::hotp_at(0);
        let mut seen = HashSet::new();
        for (c, random, r) in attempts {
            let code = if random { format!("{r:06}") } else { h.generate(c) };
            if let Ok(ok) = v.verify(&mut st, &code, 1_700_000_000) {
                prop_assert!(seen.insert(ok.matched), "counter {} accepted twice", ok.matched);
                prop_assert!(st.next_counter == ok.matched + 1);
            }
        }
    }

    #[test]
    fn nothing_is_accepted_while_locked(fails in 5u32..10, t in 1_700_000_000u64..1_800_000_000) {
        let totp = Totp::new(KEY.to_vec(), Algorithm::Sha1, 6, 30, 0).unwrap();
        let v = TotpVerifier::new(totp.clone(), 1, ThrottlePolicy::default());
        let mut st = OtpState::default();
        let good = totp.generate(t).unwrap();
        let bad = if good == "000000" { "000001" } else { "000000" };
        for _ in 0..fails {
            let _ = v.verify(&mut st, bad, t);
        }
        prop_assert_eq!(v.verify(&mut st, &good, t).unwrap_err().code(), ErrorCode::LockedOut);
    }

    /// Any `now` outside the years 2000..3000 is INVALID_TIME for every
    /// verifier, whatever the code and the state, and the state is unchanged.
    #[test]
    fn bad_clock_changes_nothing(
        now in prop_oneof![0..MIN_NOW, MAX_NOW..=u64::MAX, (MIN_NOW..MAX_NOW).prop_map(|s| s * 1000)],
        code in "[0-9]{6}|[0-9a-z]{0,8}",
        last in proptest::option::of(any::<u64>()),
        next in any::<u64>(),
        failures in 0u32..10,
        locked in any::<bool>(),
        until in proptest::option::of(any::<u64>()),
        window in 0u64..20,
    ) {
        let before = OtpState {
            last_accepted: last,
            next_counter: next,
            throttle: Throttle::from_parts(failures, locked, until),
        };
        let policy = ThrottlePolicy { max_failures: 5, lock_seconds: Some(60) };
        let totp = Totp::new(KEY.to_vec(), Algorithm::Sha1, 6, 30, 0).unwrap();
        let good = totp.generate(now).unwrap();
        let t = TotpVerifier::new(totp, window, policy);
        let h = HotpVerifier::new(Hotp::new(KEY.to_vec(), Algorithm::Sha1, 6).unwrap(), window, policy);
        for c in [code.as_str(), good.as_str()] {
            let mut st = before;
            prop_assert_eq!(t.verify(&mut st, c, now).unwrap_err().code(), ErrorCode::InvalidTime);
            prop_assert_eq!(h.verify(&mut st, c, now).unwrap_err().code(), ErrorCode::InvalidTime);
            prop_assert_eq!(h.resync(&mut st, c, c, window, now).unwrap_err().code(), ErrorCode::InvalidTime);
            prop_assert_eq!(st, before);
        }
    }
}
