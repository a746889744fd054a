//! `tessera demo`: every flow end to end, narrated, in one process with a
//! virtual clock (portal and device talk through strings, as over a network).

use crate::cli_err;
use crate::util::{now_or, render_qr, CliRandom};
use clap::Args;
use qrcode::EcLevel;
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{
    self, Accept, DeviceKeyUse, DeviceRecord, DeviceState, LinkOfferRecord, PasscodePolicy, PendingLinkRecord, Portal,
    UserFactor,
};
use tessera_core::otp::{Algorithm, OtpState, ThrottlePolicy, Totp, TotpVerifier};
use tessera_core::{Error, ErrorCode};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Unix seconds to start the demo at (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// Do not draw QR codes.
    #[arg(long)]
    no_qr: bool,
}

fn expect_err<T>(r: Result<T, Error>, code: ErrorCode, what: &str) -> Result<(), Error> {
    match r {
        Err(e) if e.code() == code => {
            out!("{what:<22}refused: error[{}] {}", e.code(), e.detail());
            Ok(())
        }
        Err(e) => Err(e),
        Ok(_) => Err(cli_err(ErrorCode::Internal, format!("demo: {what} was not refused"))),
    }
}

/// The demo portal's records, kept in memory. Every write the core returns
/// is applied as the host contract says: a compare-and-set on the record's
/// version, all writes of one outcome or none.
#[derive(Default)]
struct Records {
    offer: Option<LinkOfferRecord>,
    pending: Option<PendingLinkRecord>,
    device: Option<DeviceRecord>,
}

impl Records {
    fn apply<T>(&mut self, o: &Outcome<T>) -> Result<(), Error> {
        for w in &o.writes {
            let stored = match w {
                Write::Offer(_) => self.offer.as_ref().map(|r| r.version),
                Write::PendingLink(_) => self.pending.as_ref().map(|r| r.version),
                Write::Device(_) => self.device.as_ref().map(|r| r.version),
                _ => return Err(cli_err(ErrorCode::Internal, "demo: unknown record type")),
            };
            if stored != w.expected_version() {
                return Err(cli_err(ErrorCode::Internal, "demo: a write found another version"));
            }
        }
        for w in &o.writes {
            match w {
                Write::Offer(r) => self.offer = Some(r.clone()),
                Write::PendingLink(r) => self.pending = Some(r.clone()),
                Write::Device(r) => self.device = Some(r.clone()),
                _ => {}
            }
        }
        Ok(())
    }

    fn device(&self) -> Result<&DeviceRecord, Error> {
        self.device.as_ref().ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no device record"))
    }
}

pub fn run(args: DemoArgs) -> Result<(), Error> {
    let t0 = now_or(args.now)?;
    let rng = &mut CliRandom;
    out!("== Tessera demo (virtual clock starts at unix time {t0})");

    out!("\n-- 1. Plain TOTP (RFC 6238): a device shows a code, the portal accepts it once");
    let secret = crate::util::random::<20>()?;
    let totp = Totp::new(secret.to_vec(), Algorithm::Sha1, 6, 30, 0)?;
    let verifier = TotpVerifier::new(totp.clone(), 1, ThrottlePolicy::default());
    let mut otp_state = OtpState::default();
    let code = totp.generate(t0)?;
    out!("{:<22}{code}", "device shows");
    let ok = verifier.verify(&mut otp_state, &code, t0)?;
    out!("{:<22}accepted (step {}, drift {})", "portal", ok.matched, ok.drift);
    expect_err(verifier.verify(&mut otp_state, &code, t0), ErrorCode::OtpReplayed, "same code again")?;

    out!("\n-- 2. Link a phone by QR code (flow 1)");
    let portal = Portal::generate("Example Bank", rng)?;
    let mut db = Records::default();
    let account = "anna@example.org";
    let offer = portal.create_offer(account, PasscodePolicy::default(), 300, t0, rng)?;
    db.offer = Some(offer.record.clone());
    out!("{:<22}Anna clicks \"Link a device\"; the portal shows a QR code valid 5 minutes:", "portal");
    out!("{:<22}{}", "", offer.qr_text);
    if !args.no_qr {
        out!("{}", render_qr(&offer.qr_text, EcLevel::M)?);
    }
    let scanned = link::scan_link_qr(&offer.qr_text, t0 + 20)?;
    out!("{:<22}\"Link this phone to {}?\" (key {})", "phone app", scanned.portal_name, scanned.portal_fingerprint);
    let start = link::start_link(&scanned, "Anna's Pixel", "493817", true, false, t0 + 30, rng)?;
    out!(
        "{:<22}named \"Anna's Pixel\", secret code set, biometrics on; request sent ({} chars)",
        "phone app",
        start.request.len()
    );
    let request = start.request.clone();
    let out = portal.open_link_request(&request)?.accept(&portal, db.offer.as_ref(), DeviceKeyUse::Fresh, t0 + 31);
    db.apply(&out.outcome)?;
    out.outcome.result?;
    let storage_key = crate::util::random::<32>()?;
    let linked = link::finish_link(start.pending, &out.answer, &storage_key, rng)?;
    out!("{:<22}shows check code {}", "phone app", linked.check_code);
    let typo = if linked.check_code == "000000" { "000001" } else { "000000" };
    let pending = db.pending.clone().ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no pending link"))?;
    let o = portal.confirm_link(&pending, typo, t0 + 40);
    db.apply(&o)?;
    expect_err(o.result, ErrorCode::CheckCodeMismatch, "portal, typo")?;
    let pending = db.pending.clone().ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no pending link"))?;
    let o = portal.confirm_link(&pending, &linked.check_code, t0 + 45);
    db.apply(&o)?;
    o.result?;
    out!("{:<22}check code typed: device {} linked", "portal", db.device()?.device_id);
    for e in &o.events {
        if let link::PortalEvent::DeviceLinked { device_name, .. } = e {
            out!("{:<22}e-mail to {account}: \"{device_name}\" was linked to your account", "portal event");
        }
    }

    out!("\n-- 3. The same QR code scanned again (photographed, or a second phone)");
    let s2 = link::scan_link_qr(&offer.qr_text, t0 + 60)?;
    let second = link::start_link(&s2, "Mallory's phone", "724913", false, false, t0 + 60, rng)?;
    let out2 =
        portal.open_link_request(&second.request)?.accept(&portal, db.offer.as_ref(), DeviceKeyUse::Fresh, t0 + 61);
    db.apply(&out2.outcome)?;
    expect_err(
        link::finish_link(second.pending, &out2.answer, &storage_key, rng),
        ErrorCode::TokenAlreadyUsed,
        "second phone",
    )?;
    let again = portal.open_link_request(&request)?.accept(&portal, db.offer.as_ref(), DeviceKeyUse::Seen, t0 + 62);
    if again.outcome.result != Ok(Accept::Repeated) || again.answer != out.answer || !again.outcome.writes.is_empty() {
        return Err(cli_err(ErrorCode::Internal, "demo: a repeated request did not get the same answer"));
    }
    out!("{:<22}Anna's phone resends its request (answer lost): the same answer again, nothing changes", "portal");
    expect_err(link::scan_link_qr(&offer.qr_text, t0 + 400), ErrorCode::TokenExpired, "after 5 minutes")?;

    out!("\n-- 4. The linked phone shows time-based codes (passcode or biometrics)");
    // The phone's storage: its sealed state (the key stays in the keystore).
    let mut phone_storage = Some(linked.state.clone());
    let state = DeviceState::open(
        &storage_key,
        phone_storage.as_deref().ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no state"))?,
    )?;
    let t = t0 + 120;
    let code = state.totp(UserFactor::Passcode("493817"), t)?;
    let bio = start.biometric_secret.ok_or_else(|| cli_err(ErrorCode::Internal, "no biometric secret"))?;
    let code_bio = state.totp(UserFactor::Biometric(bio.expose()), t)?;
    out!("{:<22}{code} with the passcode, {code_bio} with biometrics", "phone app");
    let o = db.device()?.verify_totp(&code, t);
    db.apply(&o)?;
    o.result?;
    out!("{:<22}accepted", "portal");
    let wrong = state.totp(UserFactor::Passcode("111222"), t + 30)?;
    out!("{:<22}{wrong} (wrong passcode: the phone cannot tell)", "phone app");
    let o = db.device()?.verify_totp(&wrong, t + 30);
    db.apply(&o)?;
    expect_err(o.result, ErrorCode::OtpMismatch, "portal")?;

    out!("\n-- 5. Anna loses the phone: the portal unlinks it, the phone learns on next contact");
    let o = db.device()?.unlink(t0 + 500);
    db.apply(&o)?;
    o.result?;
    let record = db.device()?;
    out!(
        "{:<22}{} \"{}\" {} (linked at {}, last used {:?})",
        "portal devices",
        record.device_id,
        record.name,
        record.status.as_str(),
        record.linked_at,
        record.last_used_at
    );
    let (req, probe) = state.status_request(t0 + 600, rng)?;
    let ans = portal.open_status_request(&req)?.answer(db.device.as_ref(), db.pending.as_ref(), t0 + 600)?;
    expect_err(state.read_status_answer(&probe, &ans), ErrorCode::DeviceRevoked, "phone app")?;
    // The app deletes its sealed state.
    phone_storage.take();
    drop(state);
    out!("{:<22}account wiped", "phone app");
    out!("\n== demo finished: every step behaved as expected");
    Ok(())
}
