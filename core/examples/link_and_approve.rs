//! Flow 1 then flow 4 in one process: a portal links a phone by QR code,
//! then the phone approves a payment (a typed code, then a signed answer).
//! A real portal sends the strings over the network and keeps the records in
//! a database (`tessera-store` does both); here `Store` is a map that
//! applies every outcome's writes as the host contract says: all or nothing,
//! each a compare-and-set on (kind, key, version).
//!
//!     cargo run -p tessera-core --example link_and_approve

#![allow(clippy::unwrap_used, clippy::panic)] // an example asserts what it shows

use std::collections::BTreeMap;

use tessera_core::challenge::{Amount, Approval, ChallengeRecord, ChallengeSettings, Transaction};
use tessera_core::host::{Outcome, Write};
use tessera_core::link::{
    self, DeviceKeyUse, DeviceRecord, DeviceState, PasscodePolicy, PendingLinkRecord, Portal, UserFactor,
};
use tessera_core::Error;

/// Randomness from the operating system (the core has none of its own).
fn os_random(dest: &mut [u8]) {
    getrandom::fill(dest).expect("the operating system's random source failed");
}

/// The portal's records, keyed by kind and key, each with its version.
#[derive(Default)]
struct Store {
    rows: BTreeMap<(String, String), Write>,
}

impl Store {
    fn row_key(w: &Write) -> (String, String) {
        let kind = format!("{w:?}").split('(').next().unwrap_or_default().to_string();
        (kind, w.key().to_string())
    }

    /// Applies `outcome`'s writes atomically, then returns its result. A
    /// version that moved means another server decided first: a real host
    /// reads again and calls the core again.
    fn apply<T>(&mut self, outcome: Outcome<T>) -> Result<T, Error> {
        for w in &outcome.writes {
            let stored = self.rows.get(&Self::row_key(w)).map(Write::version);
            assert_eq!(stored, w.expected_version(), "compare-and-set conflict on {:?}", Self::row_key(w));
        }
        for w in outcome.writes {
            self.rows.insert(Self::row_key(&w), w);
        }
        for event in &outcome.events {
            println!("  portal event (after commit): {event:?}");
        }
        outcome.result
    }

    /// A new record the host writes itself (an offer or a challenge the
    /// core created): an insert, refused if the key exists.
    fn insert(&mut self, record: Write) {
        let result: Result<(), Error> = Ok(());
        self.apply(Outcome { writes: vec![record], events: vec![], result }).expect("a new record");
    }

    /// The stored row of `kind` under `key` (the host's read before a call).
    fn row(&self, kind: &str, key: &str) -> &Write {
        self.rows.get(&(kind.to_string(), key.to_string())).unwrap_or_else(|| panic!("no {kind} {key}"))
    }

    fn pending(&self, device_id: &str) -> PendingLinkRecord {
        match self.row("PendingLink", device_id) {
            Write::PendingLink(p) => p.clone(),
            _ => unreachable!("rows are keyed by their kind"),
        }
    }

    fn challenge(&self, id: &str) -> ChallengeRecord {
        match self.row("Challenge", id) {
            Write::Challenge(c) => c.clone(),
            _ => unreachable!("rows are keyed by their kind"),
        }
    }

    fn device(&self, id: &str) -> DeviceRecord {
        match self.row("Device", id) {
            Write::Device(d) => d.clone(),
            _ => unreachable!("rows are keyed by their kind"),
        }
    }
}

fn main() -> Result<(), Error> {
    let rng = &mut os_random;
    let now = 1_767_225_600; // unix seconds; a real host reads its clock
    let mut store = Store::default();
    let portal = Portal::generate("Example Bank", rng)?; // once; its secret lives in the portal's key store

    // 1. The logged-in computer shows a single-use QR code.
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, now, rng)?;
    store.insert(Write::Offer(offer.record.clone()));
    println!("QR on the computer: {}", offer.qr_text);

    // 2. The phone scans it, chooses a name and a passcode, and sends its request.
    let scanned = link::scan_link_qr(&offer.qr_text, now + 5)?;
    let start = link::start_link(&scanned, "Anna's phone", "493817", false, false, now + 5, rng)?;
    let storage_key = {
        let mut k = [0u8; 32]; // an app wraps this with the Keystore / Keychain (docs/STORAGE_KEYS.md)
        os_random(&mut k);
        k
    };

    // 3. The portal accepts it (the host looks the offer up and whether the key was seen).
    let opened = portal.open_link_request(&start.request)?;
    let accepted = opened.accept(&portal, Some(&offer.record), DeviceKeyUse::Fresh, now + 6);
    let answer = accepted.answer.clone();
    store.apply(accepted.outcome)?;

    // 4. The phone reads the answer and shows the check code; the user types it on the computer.
    let linked = link::finish_link(start.pending, &answer, &storage_key, rng)?;
    println!("check code shown on the phone: {}", linked.check_code);
    let wrong = store.apply(portal.confirm_link(&store.pending(opened.device_id()), "000000", now + 20)).unwrap_err();
    println!("a mistyped check code: error[{}] (counted)", wrong.code());
    let device = store.apply(portal.confirm_link(&store.pending(opened.device_id()), &linked.check_code, now + 25))?;
    println!("linked device {} ({})", device.device_id, device.name);

    // 5. A payment: the portal shows a challenge QR code only this phone can read.
    let payment = Approval::Transaction(Transaction {
        amount: Amount::parse("125.50")?,
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    });
    let settings = ChallengeSettings { digits: 8, ttl: 300 };
    let challenge = portal.create_challenge(std::slice::from_ref(&device), payment, settings, now + 60, rng)?;
    store.insert(Write::Challenge(challenge.record.clone()));

    let phone = DeviceState::open(&storage_key, &linked.state)?;
    let seen = phone.read_challenge(&challenge.qr_text, now + 65)?;
    if let Approval::Transaction(t) = &seen.approval {
        println!("the phone shows: pay {} {} to {} ({})", t.amount, t.currency, t.payee, t.text.join("; "));
    }
    let code = phone.answer_code(&seen, UserFactor::Passcode("493817"))?;
    println!("code typed into the portal: {code}");
    let ok =
        store.apply(portal.verify_answer(&challenge.record, &[store.device(&device.device_id)], &code, now + 80))?;
    println!("approved by {}", ok.device_id);
    // Every call reads the records afresh: the answered challenge is version 2 now.
    let answered = store.challenge(&challenge.record.challenge_id);
    let replay =
        store.apply(portal.verify_answer(&answered, &[store.device(&device.device_id)], &code, now + 81)).unwrap_err();
    println!("the same code again: error[{}]", replay.code());

    // 6. The same, with a signed answer the app sends itself (nothing typed).
    let second =
        portal.create_challenge(&[store.device(&device.device_id)], Approval::Login, settings, now + 120, rng)?;
    store.insert(Write::Challenge(second.record.clone()));
    let seen = phone.read_challenge(&second.qr_text, now + 125)?;
    let signed = phone.answer_signed(&seen, UserFactor::Passcode("493817"), &storage_key, rng)?;
    store.apply(portal.verify_answer(&second.record, &[store.device(&device.device_id)], &signed.answer, now + 130))?;
    println!(
        "login approved by a signed answer; signed counter now {:?}",
        store.device(&device.device_id).signed_counter
    );
    Ok(())
}
