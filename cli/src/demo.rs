//! `tessera demo`: every flow end to end (flows 1 to 4), narrated, in one process with a
//! virtual clock (portal and device talk through strings, as over a
//! network), all through tessera-host.

use crate::cli_err;
use crate::util::{now_or, render_qr};
use clap::Args;
use qrcode::EcLevel;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_host::{
    ActivationSettings, ActivationUpdate, AnswerCheck, Approval, ChallengeSettings, ChallengeView, Device, ErrorCode,
    LinkChoices, LinkLookup, OfferSettings, OfflineAuthenticator, OtpVerifierConfig, OtpVerifierState, Portal,
    PortalChange, PortalEvent, RecordWrite, StatusLookup, StoredActivation, StoredAuthenticator, StoredChallenge,
    StoredCredentials, StoredDevice, StoredOffer, StoredOrder, StoredPendingLink, TesseraError, Timestamp, Unlock,
    Verdict,
};

type Result<T> = std::result::Result<T, TesseraError>;

/// `--json`: the narration goes to stderr, and stdout gets one document
/// at the end: the sections run and the refusals shown.
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    static SECTIONS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    static REFUSALS: std::cell::RefCell<Vec<serde_json::Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The narration: stdout, or stderr with `--json`; a `\n-- ` line starts a section.
macro_rules! out {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        if let Some(title) = line.strip_prefix("\n-- ") {
            SECTIONS.with(|s| s.borrow_mut().push(title.to_owned()));
        }
        if JSON.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{line}");
        } else {
            emit(&line);
        }
    }};
}

/// A line on stdout; a closed pipe ends the program quietly (as `out!`).
fn emit(line: &str) {
    use std::io::Write as _;
    if let Err(e) = writeln!(std::io::stdout(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Time to start the demo at: Unix seconds or RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Do not draw QR codes.
    #[arg(long)]
    no_qr: bool,
    /// Also write each QR code to a file: `--qr-out qr.png` writes
    /// `qr-1.png`, `qr-2.png`, … (`.svg` or `.png`).
    #[arg(long, value_name = "FILE")]
    qr_out: Option<std::path::PathBuf>,
    /// Machine-readable output: the narration on stderr, then `{"ok",
    /// "start", "sections", "refusals": [{"what", "code"}]}` on stdout.
    #[arg(long)]
    json: bool,
}

fn expect_err<T>(r: Result<T>, code: ErrorCode, what: &str) -> Result<()> {
    match r {
        Err(e) if e.code() == code => {
            REFUSALS.with(|r| r.borrow_mut().push(serde_json::json!({"what": what, "code": e.code().as_str()})));
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
        RecordWrite::Challenge { row, .. } => ("challenge", row.challenge_id.clone()),
        RecordWrite::Authenticator { row, .. } => ("authenticator", row.serial.clone()),
        RecordWrite::Order { row, .. } => ("order", row.user_id.clone()),
        RecordWrite::Activation { row, .. } => ("activation", row.activation_id.clone()),
        RecordWrite::Credentials { row, .. } => ("credentials", row.account.clone()),
    }
}

fn version_of(w: &RecordWrite) -> i64 {
    match w {
        RecordWrite::Offer { row, .. } => row.version,
        RecordWrite::PendingLink { row, .. } => row.version,
        RecordWrite::Device { row, .. } => row.version,
        RecordWrite::Challenge { row, .. } => row.version,
        RecordWrite::Authenticator { row, .. } => row.version,
        RecordWrite::Order { row, .. } => row.version,
        RecordWrite::Activation { row, .. } => row.version,
        RecordWrite::Credentials { row, .. } => row.version,
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

    fn authenticator(&self, serial: &str) -> Result<StoredAuthenticator> {
        match self.0.get(&("authenticator", serial.to_owned())) {
            Some(RecordWrite::Authenticator { row, .. }) => Ok(row.clone()),
            _ => Err(cli_err(ErrorCode::Internal, "demo: no authenticator row")),
        }
    }

    fn order(&self, user_id: &str) -> Result<StoredOrder> {
        match self.0.get(&("order", user_id.to_owned())) {
            Some(RecordWrite::Order { row, .. }) => Ok(row.clone()),
            _ => Err(cli_err(ErrorCode::Internal, "demo: no order row")),
        }
    }

    fn activation(&self, id: &str) -> Result<StoredActivation> {
        match self.0.get(&("activation", id.to_owned())) {
            Some(RecordWrite::Activation { row, .. }) => Ok(row.clone()),
            _ => Err(cli_err(ErrorCode::Internal, "demo: no activation row")),
        }
    }

    fn credentials(&self, account: &str) -> Option<StoredCredentials> {
        match self.0.get(&("credentials", account.to_owned())) {
            Some(RecordWrite::Credentials { row, .. }) => Some(row.clone()),
            _ => None,
        }
    }

    fn challenge(&self, id: &str) -> Result<StoredChallenge> {
        match self.0.get(&("challenge", id.to_owned())) {
            Some(RecordWrite::Challenge { row, .. }) => Ok(row.clone()),
            _ => Err(cli_err(ErrorCode::Internal, "demo: no challenge row")),
        }
    }

    /// The account's device rows, by device id.
    fn devices_of(&self, account: &str) -> Vec<StoredDevice> {
        self.0
            .values()
            .filter_map(|w| match w {
                RecordWrite::Device { row, .. } if row.account == account => Some(row.clone()),
                _ => None,
            })
            .collect()
    }

    /// The rows of the devices a challenge names.
    fn challenge_devices(&self, c: &StoredChallenge) -> Vec<StoredDevice> {
        c.device_ids.iter().filter_map(|id| self.device_row(id)).collect()
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

/// What the phone shows for a challenge (as `tessera device show`).
fn shows(v: &ChallengeView) -> String {
    match &v.approval {
        Approval::Login => format!("\"Log in to {} as {}?\"", v.portal_name, v.account),
        Approval::Transaction { amount, currency, payee, text } => {
            format!("\"Pay {amount} {currency} to {payee}?\" {}", text.join(" / "))
        }
        Approval::LinkDevice { device_name, .. } => {
            format!("\"Link the new device {device_name} to {}?\"", v.account)
        }
    }
}

/// The portal judges an answer: reads the challenge and its devices' rows,
/// stores the change whatever the verdict.
fn verify(portal: &Portal, db: &mut Rows, id: &str, answer: &str, t: u64) -> Result<AnswerCheck> {
    let row = db.challenge(id)?;
    let devices = db.challenge_devices(&row);
    let check = portal.verify_answer(row, devices, answer.into(), at(t))?;
    db.apply(&check.change)?;
    Ok(check)
}

/// The notifications a host sends for a stored change's events.
fn tell(change: &PortalChange) {
    for e in &change.events {
        match e {
            PortalEvent::DeviceLinked { account, device_name, .. } => {
                out!("{:<22}e-mail to {account}: \"{device_name}\" was linked to your account", "portal event");
            }
            PortalEvent::DeviceLocked { account, device_id, .. } => {
                out!("{:<22}e-mail to {account}: device {device_id} is locked; call us to unlock it", "portal event");
            }
            PortalEvent::DeviceActivated { account, serial, usable_from, .. } => {
                out!(
                    "{:<22}e-mail, text and letter to {account}: authenticator {serial} was activated, usable from {}; \
                     not you? call us before then",
                    "portal event",
                    usable_from.secs()
                );
            }
            _ => {}
        }
    }
}

/// `--qr-out FILE`: where the demo's QR codes go (numbered, see [`show_qr`]).
static QR_OUT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
static QR_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Draw a QR code (unless `--no-qr`) and, with `--qr-out DIR/NAME.EXT`,
/// write it to `DIR/NAME-N.EXT` (N = 1, 2, … in the order shown).
fn show_qr(no_qr: bool, text: &str) -> Result<()> {
    if let Some(p) = QR_OUT.get() {
        let n = QR_COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = p.extension().map(|s| format!(".{}", s.to_string_lossy())).unwrap_or_default();
        let file = p.with_file_name(format!("{stem}-{n}{ext}"));
        crate::qr::write_file(&file, text, EcLevel::M)?;
        out!("{:<22}QR code written to {}", "", file.display());
    }
    if !no_qr {
        out!("{}", render_qr(text, EcLevel::M)?);
    }
    Ok(())
}

pub fn run(args: DemoArgs) -> Result<()> {
    JSON.store(args.json, std::sync::atomic::Ordering::Relaxed);
    if let Some(p) = &args.qr_out {
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("svg" | "png")) {
            return Err(cli_err(
                ErrorCode::InvalidInput,
                format!("--qr-out {}: the file name must end in .svg or .png", p.display()),
            ));
        }
        let _ = QR_OUT.set(p.clone());
    }
    let t0 = now_or(args.now.as_deref())?.secs();
    run_flows(&args, t0)?;
    if args.json {
        let sections = SECTIONS.with(|s| s.borrow().clone());
        let refusals = REFUSALS.with(|r| r.borrow().clone());
        emit(&format!("{}", serde_json::json!({"ok": true, "start": t0, "sections": sections, "refusals": refusals})));
    }
    Ok(())
}

fn run_flows(args: &DemoArgs, t0: u64) -> Result<()> {
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
    show_qr(args.no_qr, &offer.qr_text)?;
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
    tell(&l.change);

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
    let code_bio = phone.code(state.clone(), Unlock::Biometric { secret: bio.clone() }, at(t))?;
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

    let passcode = || Unlock::Passcode { passcode: "493817".into() };
    let login = Approval::Login;

    out!("\n-- 5. Log in with a challenge QR code (flow 4): only Anna's devices can read it");
    let t = t0 + 200;
    let ch = portal.create_challenge(db.devices_of(account), login.clone(), ChallengeSettings::default(), at(t))?;
    db.apply(&ch.change)?;
    out!("{:<22}Anna logs in; the portal shows a challenge QR code ({} chars):", "portal", ch.qr_text.len());
    out!("{:<22}{}", "", ch.qr_text);
    show_qr(args.no_qr, &ch.qr_text)?;
    let view = phone.read_challenge(state.clone(), ch.qr_text.clone(), at(t + 5))?;
    out!("{:<22}{}", "phone app", shows(&view));
    let code = phone.answer_challenge(state.clone(), ch.qr_text.clone(), passcode(), at(t + 10))?;
    out!("{:<22}Anna approves with her passcode; the phone shows {code}", "phone app");
    let check = verify(&portal, &mut db, &ch.challenge_id, &code, t + 15)?;
    check.verdict.check()?;
    out!("{:<22}code typed: accepted, Anna is logged in", "portal");
    let again = verify(&portal, &mut db, &ch.challenge_id, &code, t + 16)?;
    expect_err(again.verdict.check(), ErrorCode::TokenAlreadyUsed, "same code again")?;

    out!("\n-- 6. Approve a payment: the code is bound to the amount and the payee (PSD2)");
    let t = t0 + 250;
    let payment = |amount: &str| Approval::Transaction {
        amount: amount.into(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    };
    let ch = portal.create_challenge(db.devices_of(account), payment("125.50"), ChallengeSettings::default(), at(t))?;
    db.apply(&ch.change)?;
    out!("{:<22}Anna pays an invoice; the portal shows a challenge QR code ({} chars)", "portal", ch.qr_text.len());
    show_qr(args.no_qr, &ch.qr_text)?;
    let view = phone.read_challenge(state.clone(), ch.qr_text.clone(), at(t + 5))?;
    out!("{:<22}{}", "phone app", shows(&view));
    let bio_unlock = || Unlock::Biometric { secret: bio.clone() };
    let code = phone.answer_challenge(state.clone(), ch.qr_text.clone(), bio_unlock(), at(t + 10))?;
    out!("{:<22}Anna approves with her fingerprint; the phone shows {code}", "phone app");
    verify(&portal, &mut db, &ch.challenge_id, &code, t + 15)?.verdict.check()?;
    out!("{:<22}accepted: the payment is executed", "portal");

    out!("\n-- 7. A tampered amount: malware in the browser swaps the payment for a bigger one");
    let t = t0 + 300;
    let real =
        portal.create_challenge(db.devices_of(account), payment("125.50"), ChallengeSettings::default(), at(t))?;
    db.apply(&real.change)?;
    let fake =
        portal.create_challenge(db.devices_of(account), payment("9125.50"), ChallengeSettings::default(), at(t))?;
    db.apply(&fake.change)?;
    out!("{:<22}the page shows the QR code of another payment instead of the real one", "malware");
    let view = phone.read_challenge(state.clone(), fake.qr_text.clone(), at(t + 5))?;
    out!("{:<22}{} (Anna should stop here)", "phone app", shows(&view));
    let code = phone.answer_challenge(state.clone(), fake.qr_text.clone(), passcode(), at(t + 10))?;
    out!("{:<22}she approves anyway; the phone shows {code}", "phone app");
    let check = verify(&portal, &mut db, &real.challenge_id, &code, t + 15)?;
    expect_err(check.verdict.check(), ErrorCode::InvalidAnswer, "portal, 125.50")?;
    let code = phone.answer_challenge(state.clone(), real.qr_text.clone(), passcode(), at(t + 20))?;
    verify(&portal, &mut db, &real.challenge_id, &code, t + 25)?.verdict.check()?;
    out!("{:<22}the code for the real QR code ({code}) is accepted", "portal");

    out!("\n-- 8. A thief guesses the passcode: 5 wrong answers in a row lock the device");
    let t = t0 + 400;
    let ch = portal.create_challenge(db.devices_of(account), login.clone(), ChallengeSettings::default(), at(t))?;
    db.apply(&ch.change)?;
    for (i, guess) in ["111222", "222333", "333444", "444555", "555666"].iter().enumerate() {
        let n = u64::try_from(i).unwrap_or_default();
        let code = phone.answer_challenge(
            state.clone(),
            ch.qr_text.clone(),
            Unlock::Passcode { passcode: (*guess).into() },
            at(t + 2 * n),
        )?;
        let check = verify(&portal, &mut db, &ch.challenge_id, &code, t + 2 * n + 1)?;
        let what = format!("{guess} gives {code}");
        let expected = if i < 4 { ErrorCode::InvalidAnswer } else { ErrorCode::LockedOut };
        expect_err(check.verdict.check(), expected, &what)?;
        tell(&check.change);
    }
    let code = phone.answer_challenge(state.clone(), ch.qr_text.clone(), passcode(), at(t + 20))?;
    let check = verify(&portal, &mut db, &ch.challenge_id, &code, t + 21)?;
    expect_err(check.verdict.check(), ErrorCode::LockedOut, "the right passcode")?;
    let totp = phone.code(state.clone(), passcode(), at(t + 30))?;
    let check = portal.verify_device_code(db.device(&device_id)?, totp, at(t + 30))?;
    db.apply(&check.change)?;
    expect_err(check.verdict.check(), ErrorCode::LockedOut, "its time-based code")?;
    let change = portal.unlock_device(db.device(&device_id)?, at(t + 60))?;
    db.apply(&change)?;
    out!("{:<22}Anna re-identified at the branch: the device is unlocked", "portal");
    verify(&portal, &mut db, &ch.challenge_id, &code, t + 61)?.verdict.check()?;
    out!("{:<22}the right code is accepted again", "portal");

    out!("\n-- 9. Link a new phone from the existing one (flow 2: no logged-in computer)");
    let t = t0 + 500;
    let offer =
        portal.create_offer_for_new_device(account.into(), db.devices_of(account), OfferSettings::default(), at(t))?;
    db.apply(&offer.change)?;
    out!("{:<22}Anna asks to link a new phone; the portal sends it an offer ({} chars)", "portal", offer.qr_text.len());
    let ipad = Device::new(tessera_host::new_storage_key()?)?;
    let choices = LinkChoices { device_name: "Anna's iPad".into(), passcode: "730241".into(), biometrics: false };
    let pending2 = ipad.start_link(offer.qr_text.clone(), choices, None, at(t + 10), Some(portal.public_key()))?;
    let req2 = Arc::clone(&portal).open_link_request(pending2.request()?)?;
    let answer2 = req2.accept(db.lookup(&req2.offer_id(), &req2.device_id()), at(t + 11))?;
    db.apply(&answer2.change)?;
    answer2.verdict.check()?;
    let linked2 = pending2.finish(answer2.answer)?;
    let new_id = linked2.account.device_id.clone();
    out!("{:<22}named \"Anna's iPad\", passcode set; the portal waits for an authenticator", "new phone");
    let pending_row = db.pending(&new_id).ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no pending link"))?;
    let ch =
        portal.create_link_challenge(pending_row, db.devices_of(account), ChallengeSettings::default(), at(t + 20))?;
    db.apply(&ch.change)?;
    out!("{:<22}shows a challenge QR code for Anna's existing phone", "new phone");
    show_qr(args.no_qr, &ch.qr_text)?;
    let view = phone.read_challenge(state.clone(), ch.qr_text.clone(), at(t + 25))?;
    out!("{:<22}{}", "old phone", shows(&view));
    let code = phone.answer_challenge(state.clone(), ch.qr_text.clone(), passcode(), at(t + 30))?;
    out!("{:<22}Anna approves; the old phone shows {code}, she types it into the new one", "old phone");
    let pending_row = db.pending(&new_id).ok_or_else(|| cli_err(ErrorCode::Internal, "demo: no pending link"))?;
    let row = db.challenge(&ch.challenge_id)?;
    let devices = db.challenge_devices(&row);
    let l = portal.confirm_with_authenticator(pending_row, row, devices, code, at(t + 40))?;
    db.apply(&l.change)?;
    l.verdict.check()?;
    out!("{:<22}vouched for by the old phone: device {new_id} linked", "portal");
    tell(&l.change);

    out!("\n-- 10. Anna loses the old phone: the portal unlinks it, the phone learns on next contact");
    let change = portal.unlink_device(db.device(&device_id)?, at(t0 + 700))?;
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
    let probe = phone.status_request(state.clone(), at(t0 + 800))?;
    let id = portal.status_request_device(probe.request()?)?;
    let lookup = StatusLookup { device: db.device_row(&id), pending: db.pending(&id) };
    let ans = portal.answer_status(probe.request()?, lookup, at(t0 + 800))?;
    expect_err(probe.read(ans), ErrorCode::DeviceRevoked, "phone app")?;
    // The app deletes its sealed state.
    out!("{:<22}account wiped", "phone app");

    flow_3(&portal, &mut db, t0 + 1000, args.no_qr)?;
    out!("\n== demo finished: every step behaved as expected");
    Ok(())
}

/// What an activation step printed: the step name as `tessera portal
/// activation-next` prints it.
fn step_of(u: &ActivationUpdate) -> &'static str {
    crate::activation_cmd::step_name(u.step)
}

/// Flow 3: an offline authenticator is made, imported, ordered by letter,
/// activated step by step, refused before the delay, then used to log in.
fn flow_3(portal: &Portal, db: &mut Rows, t: u64, no_qr: bool) -> Result<()> {
    out!("\n-- 11. An offline authenticator (flow 3): made, imported, ordered by letter, activated, used");
    let account = "ben@example.org";
    let settings = ActivationSettings::default();
    // The maker: a device with a camera and a screen, no network, no clock.
    let token = OfflineAuthenticator::new(tessera_host::new_storage_key()?)?;
    let made = token.create("TS00012345".into())?;
    let mut state = made.state;
    let file = format!("{}\n{}\n", tessera_core::activation::FACTORY_FILE_HEADER, made.factory_record);
    out!("{:<22}makes authenticator TS00012345; its record goes into the factory file", "maker");
    let import = |db: &mut Rows, t: u64| -> Result<tessera_host::DeviceImport> {
        let serials = tessera_host::factory_file_serials(file.clone())?;
        let known = serials.into_iter().filter(|s| db.authenticator(s).is_ok()).collect();
        let import = portal.import_devices(file.clone(), known, at(t))?;
        db.apply(&import.change)?;
        Ok(import)
    };
    let imported = import(db, t)?;
    out!("{:<22}imports the file: {} in stock", "portal", imported.serials.join(", "));
    expect_err(import(db, t + 1), ErrorCode::DuplicateRecord, "the same file again")?;

    let auth = db.authenticator("TS00012345")?;
    let order = portal.order_device(account.into(), "271828".into(), auth, settings.clone(), at(t + 10))?;
    db.apply(&order.change)?;
    out!("{:<22}Ben orders an authenticator and chooses his activation code", "portal");
    out!(
        "{:<22}letter: user ID {}, initial password {}; authenticator {} sent separately",
        "post",
        order.user_id,
        order.initial_password,
        order.serial
    );

    let t = t + 86_400;
    let order_row = db.order(&order.user_id)?;
    let auth = db.authenticator(&order_row.serial)?;
    let u = portal.start_activation(order_row, auth, settings.clone(), at(t))?;
    db.apply(&u.change)?;
    let id = u.activation_id.clone();
    let mut qr = u.qr_text.clone().unwrap_or_default();
    out!("{:<22}Ben types his user ID; step {}: a QR code ({} chars)", "portal", step_of(&u), qr.len());
    show_qr(no_qr, &qr)?;
    // One step: the portal reads the rows, judges the entry, stores the change.
    let next = |db: &mut Rows, input: &str, t: u64| -> Result<ActivationUpdate> {
        let a = db.activation(&id)?;
        let order = db.order(&a.user_id)?;
        let auth = db.authenticator(&a.serial)?;
        let creds = db.credentials(&a.account);
        let u = portal.activation_next(a, order, auth, creds, input.into(), settings.clone(), at(t))?;
        db.apply(&u.change)?;
        Ok(u)
    };
    let mut scan = |qr: &str, what: &str| -> Result<String> {
        let screen = token.scan(state.clone(), qr.into())?;
        state = screen.state;
        out!("{:<22}{what}: shows {}", "authenticator", screen.code);
        Ok(screen.code)
    };
    let code = scan(&qr, "scans it")?;
    let u = next(db, &code, t + 10)?;
    u.verdict.check()?;
    out!("{:<22}device code typed: it is the device sent to Ben; step {}", "portal", step_of(&u));
    let u = next(db, "271828", t + 20)?;
    u.verdict.check()?;
    qr = u.qr_text.clone().unwrap_or_default();
    out!("{:<22}activation code typed; step {}: a second QR code", "portal", step_of(&u));
    show_qr(no_qr, &qr)?;
    let code = scan(&qr, "binds itself to Ben")?;
    let u = next(db, &code, t + 30)?;
    u.verdict.check()?;
    out!("{:<22}binding code typed; step {}", "portal", step_of(&u));
    let u = next(db, "TS0001-2346", t + 40)?;
    expect_err(u.verdict.check(), ErrorCode::SerialMismatch, "serial, a typo")?;
    out!("{:<22}the step stays {} (the wrong entry is counted)", "portal", step_of(&u));
    let u = next(db, "ts0001-2345", t + 45)?;
    u.verdict.check()?;
    qr = u.qr_text.clone().unwrap_or_default();
    out!("{:<22}serial number typed; step {}: a test challenge", "portal", step_of(&u));
    let code = scan(&qr, "\"Log in?\" for the test")?;
    let u = next(db, &code, t + 50)?;
    u.verdict.check()?;
    out!("{:<22}test code typed; step {}", "portal", step_of(&u));
    let u = next(db, &order.initial_password, t + 60)?;
    u.verdict.check()?;
    out!("{:<22}initial password from the letter typed; step {}", "portal", step_of(&u));
    let u = next(db, "correct horse battery staple", t + 70)?;
    u.verdict.check()?;
    let usable = u.usable_from.map(Timestamp::secs).unwrap_or_default();
    out!(
        "{:<22}new password set; step {}: device {} usable from {usable} (in {} hours)",
        "portal",
        step_of(&u),
        u.device_id.as_deref().unwrap_or("-"),
        (usable.saturating_sub(t + 70)) / 3600
    );
    out!(
        "{:<22}{} recovery codes, shown once: {} …",
        "portal",
        u.recovery_codes.len(),
        u.recovery_codes.iter().take(2).cloned().collect::<Vec<_>>().join(", ")
    );
    tell(&u.change);

    let login = |t: u64| portal.create_challenge(db.devices_of(account), Approval::Login, Default::default(), at(t));
    expect_err(login(t + 3600), ErrorCode::DeviceNotYetUsable, "a login after 1 hour")?;
    let ch = login(usable)?;
    db.apply(&ch.change)?;
    out!("{:<22}after the delay Ben logs in; the portal shows a challenge QR code", "portal");
    show_qr(no_qr, &ch.qr_text)?;
    let screen = token.scan(state.clone(), ch.qr_text.clone())?;
    out!("{:<22}\"Log in to {}?\" shows {}", "authenticator", screen.portal_name, screen.code);
    verify(portal, db, &ch.challenge_id, &screen.code, usable + 10)?.verdict.check()?;
    out!("{:<22}code typed: accepted, Ben is logged in with his authenticator", "portal");
    Ok(())
}
