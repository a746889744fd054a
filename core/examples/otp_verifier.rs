//! A portal's one-time-password check: RFC 6238 TOTP with a ±1 step window,
//! replay refusal and lockout, and an RFC 4226 HOTP counter with look-ahead.
//! The portal keeps one `OtpState` per credential and stores it after every
//! call (a real host as a compare-and-set on a database row).
//!
//!     cargo run -p tessera-core --example otp_verifier

#![allow(clippy::unwrap_used, clippy::panic)] // an example asserts what it shows

use tessera_core::otp::{Algorithm, Hotp, HotpVerifier, OtpState, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::ErrorCode;

fn main() -> Result<(), tessera_core::Error> {
    // The RFC 6238 test key (SHA-1, 8 digits, 30-second steps).
    let totp = Totp::new(b"12345678901234567890".to_vec(), Algorithm::Sha1, 8, 30, 0)?;
    assert_eq!(totp.generate(59)?, "94287082"); // RFC 6238, appendix B

    let verifier = TotpVerifier::new(totp, 1, ThrottlePolicy::default());
    let mut state = OtpState::default();
    let now = 1_767_225_600; // unix seconds (2026-01-01T00:00:00Z), never milliseconds

    // The phone's clock is one step behind: still inside the window.
    let code = verifier.totp().generate(now - 30)?;
    let ok = verifier.verify(&mut state, &code, now)?;
    println!("TOTP {code} accepted: step {} (drift {})", ok.matched, ok.drift);

    // The same code again is a replay, whatever the time.
    let replay = verifier.verify(&mut state, &code, now + 1).unwrap_err();
    assert_eq!(replay.code(), ErrorCode::OtpReplayed);
    println!("same code again: error[{}] {}", replay.code(), replay);

    // Wrong codes count; the policy locks the credential after too many.
    let mut last = None;
    for i in 0..10 {
        match verifier.verify(&mut state, "00000000", now + 2 + i) {
            Err(e) if e.code() == ErrorCode::LockedOut => {
                last = Some(e);
                break;
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::OtpMismatch),
            Ok(_) => unreachable!("00000000 is not the code"),
        }
    }
    let locked = last.expect("the default policy locks within 10 failures");
    println!("after repeated wrong codes: error[{}]", locked.code());
    state.unlock(); // an administrator's decision, after the user re-identified

    // HOTP: the device pressed its button twice without logging in.
    let hotp = Hotp::new(b"12345678901234567890".to_vec(), Algorithm::Sha1, 6)?;
    assert_eq!(hotp.generate(0), "755224"); // RFC 4226, appendix D
    let device_code = hotp.generate(2);
    let hotp_verifier = HotpVerifier::new(hotp, 10, ThrottlePolicy::default());
    let mut hotp_state = OtpState::hotp_at(0);
    let ok = hotp_verifier.verify(&mut hotp_state, &device_code, now)?;
    println!("HOTP {device_code} accepted at counter {}; next expected {}", ok.matched, hotp_state.next_counter);
    assert_eq!(hotp_state.next_counter, 3);
    Ok(())
}
