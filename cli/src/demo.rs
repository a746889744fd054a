//! `tessera demo`: every flow end to end, narrated.

use crate::util::now_or;
use clap::Args;
use tessera_core::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::Error;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Unix seconds to run the demo at (default: now).
    #[arg(long)]
    now: Option<u64>,
}

pub fn run(args: DemoArgs) -> Result<(), Error> {
    let now = now_or(args.now)?;
    println!("== Tessera demo at unix time {now}");
    println!("\n-- 1. TOTP (RFC 6238): a device shows a code, the portal verifies it once");
    let secret = crate::util::random::<20>()?;
    let totp = Totp::new(secret.to_vec(), Algorithm::Sha1, 6, 30, 0)?;
    let verifier = TotpVerifier::new(totp.clone(), 1, ThrottlePolicy::default());
    let mut state = OtpState::default();
    let code = totp.generate(now)?;
    println!("device shows        {code}");
    let ok = verifier.verify(&mut state, &code, now)?;
    println!("portal accepts      step {} (drift {})", ok.matched, ok.drift);
    match verifier.verify(&mut state, &code, now) {
        Err(e) => println!("same code again     refused: error[{}] {}", e.code(), e.detail()),
        Ok(_) => return Err(crate::cli_err(tessera_core::ErrorCode::Internal, "a replayed code was accepted")),
    }
    Ok(())
}
