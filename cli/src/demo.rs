//! `tessera demo`: every flow end to end, narrated, in one process with a
//! virtual clock (portal and device talk through strings, as over a
//! network), all through tessera-host.

use crate::cli_err;
use crate::util::{now_or, render_qr};
use clap::Args;
use qrcode::EcLevel;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_host::{
    Device, ErrorCode, LinkChoices, LinkLookup, OfferSettings, OtpVerifierConfig, OtpVerifierState, Portal,
    PortalChange, PortalEvent, RecordWrite, StatusLookup, StoredDevice, StoredOffer, StoredPendingLink, TesseraError,
    Timestamp, Unlock, Verdict,
};

type Result<T> = std::result::Result<T, TesseraError>;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Unix seconds to start the demo at (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// Do not draw QR codes.
    #[arg(long)]
    no_qr: bool,
}

fn expect_err<T>(r: Result<T>, code: ErrorCode, what: &str) -> Result<()> {
    match r {
        Err(e) if e.code() == code => {
            out!("{what:<22}refused: error[{}] {}", e.code(), e.detail());
            Ok(())
        }
        Err(e) => Err(e),
        Ok(_) => Err(cli_err(ErrorCode::Internal, format!("demo: {what} was not refused"))),
    }
}

/// The demo portal's rows, kept in memory as the writes that made them
/// (keyed by table and key). Every change is applied as the host contract
/// says: compare-and-sets on the rows' versions, all writes of one change
/// or none.
#[derive(Default)]
struct Rows(BTreeMap<(&'static str, String), RecordWrite>);

fn key_of(w: &RecordWrite) -> (&'static str, String) {
    match w {
        RecordWrite::Offer { row, .. } => ("offer", row.offer_id.clone()),
        RecordWrite::PendingLink { row, .. } => ("pending", row.device_id.clone()),
        RecordWrite::Device { row, .. } => ("device", row.device_id.clone()),
    }
}

fn version_of(w: &RecordWrite) -> i64 {
    match w {
        RecordWrite::Offer { row, .. } => row.version,
        RecordWrite::PendingLink { row, .. } => row.version,
        RecordWrite::Device { row, .. } => row.version,
    }
}

impl Rows {
    fn apply(&mut self, change: &PortalChange) -> Result<()> {
        if change.writes.iter().any(|w| self.0.get(&key_of(w)).map(version_of) != w.expected_version()) {
            return Err(cli_err(ErrorCode::Internal, "demo: a write found another version"));
        }
        for w in &change.writes {
            self.0.insert(key_of(w), w.clone());
        }
        Ok(())
    }

    fn offer(&self, id: &str) -> Option<StoredOffer> {
        match self.0.get(&("offer", id.to_owned())) {
            Some(RecordWrite::Offer { row, .. }) => Some(row.clone()),
            _ => None,
        }
    }

    fn pending(&self, id: &str) -> Option<StoredPendingLink> {
        match self.0.get(&("pending", id.to_owned())) {
            Some(RecordWrite::PendingLink { row, .. }) => Some(row.clone()),
            _ => None,
        }
    }

    fn device_row(&self, id: &str) -> Option<StoredDevice> {
        match self.0.get(&("device", id.to_owned())) {
            Some(RecordWrite::Device { row, .. }) => Some(row.clone()),
            _ => None,
        }
    }

    fn lookup(&self, offer_id: &str, device_id: &str) -> LinkLookup {
        LinkLookup {
            offer: self.offer(offer_id),
            device_key_seen: self.pending(device_id).is_some() || self.device_row(device_id).is_some(),
        }
    }

    fn device(&self, id: &str) -> Result<StoredDevice> {
        self.device_row(id).ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no device row"))
    }

    fn open_pendings(&self, account: &str) -> Vec<StoredPendingLink> {
        let open = crate::store::name_of(&tessera_host::PendingStatus::Open);
        self.0
            .values()
            .filter_map(|w| match w {
                RecordWrite::PendingLink { row, .. }
                    if row.account == account && crate::store::name_of(&row.status) == open =>
                {
                    Some(row.clone())
                }
                _ => None,
            })
            .collect()
    }
}

fn at(t: u64) -> Timestamp {
    Timestamp::from_secs(t)
}

pub fn run(args: DemoArgs) -> Result<()> {
    let t0 = now_or(args.now).secs();
    out!("== Tessera demo (virtual clock starts at unix time {t0})");

    out!("\n-- 1. Plain TOTP (RFC 6238): a device shows a code, the portal accepts it once");
    let secret = tessera_host::new_otp_secret()?;
    let config = OtpVerifierConfig { secret: secret.clone(), ..Default::default() };
    let code = tessera_host::totp(secret, at(t0), 30, 6, Default::default())?;
    out!("{:<22}{code}", "device shows");
    let ok = tessera_host::verify_totp(config.clone(), OtpVerifierState::default(), code.clone(), at(t0))?;
    ok.verdict.check()?;
    out!("{:<22}accepted (step {}, drift {})", "portal", ok.matched.unwrap_or_default(), ok.drift);
    let again = tessera_host::verify_totp(config, ok.state, code, at(t0))?;
    expect_err(again.verdict.check(), ErrorCode::OtpReplayed, "same code again")?;

    out!("\n-- 2. Link a phone by QR code (flow 1)");
    let portal = Arc::new(Portal::generate("Example Bank".into())?);
    let mut db = Rows::default();
    let account = "anna@example.org";
    let offer = portal.create_offer(account.into(), OfferSettings::default(), at(t0))?;
    db.apply(&offer.change)?;
    out!("{:<22}Anna clicks \"Link a device\"; the portal shows a QR code valid 5 minutes:", "portal");
    out!("{:<22}{}", "", offer.qr_text);
    if !args.no_qr {
        out!("{}", render_qr(&offer.qr_text, EcLevel::M)?);
    }
    let phone = Device::new(tessera_host::new_storage_key()?)?;
    let scanned = phone.scan_link_qr(offer.qr_text.clone(), at(t0 + 20), None)?;
    out!("{:<22}\"Link this phone to {}?\" (key {})", "phone app", scanned.portal_name, scanned.portal_fingerprint);
    let choices = LinkChoices { device_name: "Anna's Pixel".into(), passcode: "493817".into(), biometrics: true };
    let pending = phone.start_link(offer.qr_text.clone(), choices, None, at(t0 + 30), None)?;
    let request = pending.request()?;
    out!(
        "{:<22}named \"Anna's Pixel\", secret code set, biometrics on; request sent ({} chars)",
        "phone app",
        request.len()
    );
    let req = Arc::clone(&portal).open_link_request(request.clone())?;
    let answer = req.accept(db.lookup(&req.offer_id(), &req.device_id()), at(t0 + 31))?;
    db.apply(&answer.change)?;
    answer.verdict.check()?;
    let linked = pending.finish(answer.answer.clone())?;
    out!("{:<22}shows check code {}", "phone app", linked.check_code);
    let typo = if linked.check_code == "000000" { "000001" } else { "000000" };
    let l = portal.confirm_link(db.open_pendings(account), typo.into(), at(t0 + 40))?;
    db.apply(&l.change)?;
    expect_err(l.verdict.check(), ErrorCode::CheckCodeMismatch, "portal, typo")?;
    let l = portal.confirm_link(db.open_pendings(account), linked.check_code.clone(), at(t0 + 45))?;
    db.apply(&l.change)?;
    l.verdict.check()?;
    let device_id = linked.account.device_id.clone();
    out!("{:<22}check code typed: device {device_id} linked", "portal");
    for e in &l.change.events {
        if let PortalEvent::DeviceLinked { device_name, .. } = e {
            out!("{:<22}e-mail to {account}: \"{device_name}\" was linked to your account", "portal event");
        }
    }

    out!("\n-- 3. The same QR code scanned again (photographed, or a second phone)");
    let phone2 = Device::new(tessera_host::new_storage_key()?)?;
    let choices = LinkChoices { device_name: "Mallory's phone".into(), passcode: "724913".into(), biometrics: false };
    let second = phone2.start_link(offer.qr_text.clone(), choices, None, at(t0 + 60), None)?;
    let req2 = Arc::clone(&portal).open_link_request(second.request()?)?;
    let answer2 = req2.accept(db.lookup(&req2.offer_id(), &req2.device_id()), at(t0 + 61))?;
    db.apply(&answer2.change)?;
    expect_err(second.finish(answer2.answer), ErrorCode::TokenAlreadyUsed, "second phone")?;
    let again = req.accept(db.lookup(&req.offer_id(), &req.device_id()), at(t0 + 62))?;
    if again.verdict != Verdict::Repeated || again.answer != answer.answer || !again.change.writes.is_empty() {
        return Err(cli_err(ErrorCode::Internal, "demo: a repeated request did not get the same answer"));
    }
    out!("{:<22}Anna's phone resends its request (answer lost): the same answer again, nothing changes", "portal");
    expect_err(
        phone2.scan_link_qr(offer.qr_text.clone(), at(t0 + 400), None),
        ErrorCode::TokenExpired,
        "after 5 minutes",
    )?;

    out!("\n-- 4. The linked phone shows time-based codes (passcode or biometrics)");
    // The phone's storage: its sealed state (the key stays in the keystore).
    let state = linked.state.clone();
    let t = t0 + 120;
    let code = phone.code(state.clone(), Unlock::Passcode { passcode: "493817".into() }, at(t))?;
    let bio = pending.biometric_secret().ok_or_else(|| cli_err(ErrorCode::Internal, "no biometric secret"))?;
    let code_bio = phone.code(state.clone(), Unlock::Biometric { secret: bio }, at(t))?;
    out!("{:<22}{code} with the passcode, {code_bio} with biometrics", "phone app");
    let check = portal.verify_device_code(db.device(&device_id)?, code, at(t))?;
    db.apply(&check.change)?;
    check.verdict.check()?;
    out!("{:<22}accepted", "portal");
    let wrong = phone.code(state.clone(), Unlock::Passcode { passcode: "111222".into() }, at(t + 30))?;
    out!("{:<22}{wrong} (wrong passcode: the phone cannot tell)", "phone app");
    let check = portal.verify_device_code(db.device(&device_id)?, wrong, at(t + 30))?;
    db.apply(&check.change)?;
    expect_err(check.verdict.check(), ErrorCode::OtpMismatch, "portal")?;

    out!("\n-- 5. Anna loses the phone: the portal unlinks it, the phone learns on next contact");
    let change = portal.unlink_device(db.device(&device_id)?, at(t0 + 500))?;
    db.apply(&change)?;
    let row = db.device(&device_id)?;
    out!(
        "{:<22}{} \"{}\" {} (linked at {}, last used {:?})",
        "portal devices",
        row.device_id,
        row.name,
        crate::store::name_of(&row.status),
        row.linked_at.secs(),
        row.last_used_at.map(Timestamp::secs)
    );
    let probe = phone.status_request(state.clone(), at(t0 + 600))?;
    let id = portal.status_request_device(probe.request()?)?;
    let lookup = StatusLookup { device: db.device_row(&id), pending: db.pending(&id) };
    let ans = portal.answer_status(probe.request()?, lookup, at(t0 + 600))?;
    expect_err(probe.read(ans), ErrorCode::DeviceRevoked, "phone app")?;
    // The app deletes its sealed state.
    out!("{:<22}account wiped", "phone app");
    out!("\n== demo finished: every step behaved as expected");
    Ok(())
}
