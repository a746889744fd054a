//! Benchmarks live in `benches/`; run `cargo bench -p tessera-benches`.
//! This library holds the set-up they share.
#![allow(clippy::unwrap_used)] // benchmark set-up: a failure should abort the run

use tessera_core::challenge::{Amount, Approval, Transaction};
use tessera_core::crypto::SeededRandom;
use tessera_core::host::Write;
use tessera_core::link::{self, DeviceKeyUse, DeviceRecord, DeviceState, PasscodePolicy, Portal};

/// The benchmarks' clock (2026-01-01T00:00:00Z).
pub const NOW: u64 = 1_767_225_600;
/// The device's storage key.
pub const STORAGE_KEY: [u8; 32] = [0x42; 32];
/// The device's passcode.
pub const PASS: &str = "493817";

/// One device linked to `anna` (flow 1, as in core/src/challenge/tests.rs).
pub fn linked_device(portal: &Portal, rng: &mut SeededRandom) -> (DeviceState, DeviceRecord) {
    let offer = portal.create_offer("anna", PasscodePolicy::default(), 300, NOW, rng).unwrap();
    let scanned = link::scan_link_qr(&offer.qr_text, NOW).unwrap();
    let start = link::start_link(&scanned, "Anna's Pixel", PASS, false, false, NOW, rng).unwrap();
    let opened = portal.open_link_request(&start.request).unwrap();
    let out = opened.accept(portal, Some(&offer.record), DeviceKeyUse::Fresh, NOW);
    let pending = out
        .outcome
        .writes
        .iter()
        .find_map(|x| if let Write::PendingLink(p) = x { Some(p.clone()) } else { None })
        .unwrap();
    let linked = link::finish_link(start.pending, &out.answer, &STORAGE_KEY, rng).unwrap();
    let record = portal.confirm_link(&pending, &linked.check_code, NOW + 1).result.unwrap();
    (DeviceState::open(&STORAGE_KEY, &linked.state).unwrap(), record)
}

/// A payment to approve.
pub fn transaction() -> Approval {
    Approval::Transaction(Transaction {
        amount: Amount::parse("125.50").unwrap(),
        currency: "EUR".into(),
        payee: "ACME Energy Ltd".into(),
        text: vec!["Invoice 2026-118".into()],
    })
}

/// Another code of the same length.
pub fn wrong_code(c: &str) -> String {
    let first = if c.starts_with('1') { '2' } else { '1' };
    format!("{first}{}", &c[1..])
}
