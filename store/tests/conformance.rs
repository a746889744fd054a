//! The host contract, once, against both stores: SQLite (a temporary file)
//! and PostgreSQL (`TESSERA_TEST_POSTGRES`, a fresh schema per test; start
//! one with `scripts/pg.sh start`).

#![allow(clippy::unwrap_used, clippy::panic)]

#[macro_use]
mod common;

use common::Place;
use std::sync::Arc;
use tessera_host::{
    ActivationSettings, ActivationStatus, ActivationStep, AuthenticatorStatus, ChallengeKind, ChallengeStatus, Device,
    DeviceStatus, ErrorCode, LinkChoices, LinkLookup, OfferSettings, OrderStatus, PendingStatus, Portal, PortalChange,
    RecordWrite, StoredActivation, StoredAuthenticator, StoredChallenge, StoredCredentials, StoredDevice, StoredOffer,
    StoredOrder, StoredPendingLink, Timestamp,
};
use tessera_store::{name_of, read, Applied, PortalDb, Ran, MAX_ROUNDS};

const T: u64 = 1_800_000_000;

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

on_both_stores!(
    an_insert_of_an_existing_key_conflicts_and_keeps_nothing,
    an_update_needs_the_expected_version,
    a_change_whose_last_write_conflicts_keeps_none_of_its_writes,
    events_are_written_exactly_when_the_change_commits,
    a_decision_made_on_a_stale_row_is_made_again,
    endless_conflicts_give_up_after_max_rounds_with_nothing_stored,
    a_registered_device_id_cannot_become_pending_again,
    every_row_type_round_trips_every_column,
    listings_filter_and_order,
    challenge_rows_round_trip_and_are_compared_and_set,
    activation_rows_round_trip_and_are_compared_and_set,
    concurrent_servers_lose_no_update_and_never_pass_a_limit,
    identity_and_settings,
    a_server_dying_between_decide_and_commit_leaves_nothing,
    a_decision_overtaken_by_another_servers_commit_conflicts,
);

/// A portal store with one confirmed device, made through `run`.
struct Setup {
    db: PortalDb,
    portal: Arc<Portal>,
    offer: PortalChange,
    pending_insert: RecordWrite,
    device_id: String,
}

impl Setup {
    fn device(&mut self) -> StoredDevice {
        let id = self.device_id.clone();
        self.db.read(|c| read::device(c, &id)).unwrap().unwrap()
    }
    fn events(&mut self, kind: &str) -> usize {
        self.db.events_since(0).unwrap().iter().filter(|e| e.json.contains(&format!("\"kind\":\"{kind}\""))).count()
    }
}

fn setup(p: &Place) -> Setup {
    let mut db = p.open();
    let portal = Arc::new(Portal::generate("Example Bank".into()).unwrap());
    let offer = portal.create_offer("ana".into(), OfferSettings::default(), t(T)).unwrap();
    assert!(matches!(db.apply(&offer.change, t(T)).unwrap(), Applied::Done));
    let phone = Device::new(vec![7; 32]).unwrap();
    let choices = LinkChoices { device_name: "Phone".into(), passcode: "493817".into(), biometrics: false };
    let pending = phone.start_link(offer.qr_text.clone(), choices, None, t(T), None).unwrap();
    let request = Arc::clone(&portal).open_link_request(pending.request().unwrap()).unwrap();
    let (change, answer) = db
        .run(t(T), |c| {
            let lookup = LinkLookup {
                offer: read::offer(c, &request.offer_id())?,
                device_key_seen: read::device_id_seen(c, &request.device_id())?,
            };
            let a = request.accept(lookup, t(T))?;
            Ok((a.change, a.answer))
        })
        .unwrap()
        .stored()
        .unwrap();
    let pending_insert = change.writes.iter().find(|w| matches!(w, RecordWrite::PendingLink { .. })).unwrap().clone();
    let linked = pending.finish(answer).unwrap();
    let (_, verdict) = db
        .run(t(T), |c| {
            let l = portal.confirm_link(read::open_pendings(c, "ana")?, linked.check_code.clone(), t(T))?;
            Ok((l.change, l.verdict))
        })
        .unwrap()
        .stored()
        .unwrap();
    verdict.check().unwrap();
    Setup { db, portal, offer: offer.change, pending_insert, device_id: request.device_id() }
}

fn an_insert_of_an_existing_key_conflicts_and_keeps_nothing(p: &Place) {
    let mut s = setup(p);
    let id = match &s.offer.writes[..] {
        [RecordWrite::Offer { row, .. }] => row.offer_id.clone(),
        w => panic!("{w:?}"),
    };
    let stored = s.db.read(|c| read::offer(c, &id)).unwrap().unwrap();
    // The same insert again (another server made the same key first).
    let a = s.db.apply(&s.offer.clone(), t(T + 1)).unwrap();
    assert!(matches!(&a, Applied::Conflict(w) if w.contains("already there")), "{a:?}");
    assert_eq!(s.db.read(|c| read::offer(c, &id)).unwrap().unwrap(), stored);
    assert_eq!(s.db.raw_count("SELECT count(*) FROM offers").unwrap(), 1);
}

fn an_update_needs_the_expected_version(p: &Place) {
    let mut s = setup(p);
    let before = s.device();
    let rename = s.portal.rename_device(before.clone(), "Other".into(), t(T + 2)).unwrap();
    assert!(matches!(s.db.apply(&rename, t(T + 2)).unwrap(), Applied::Done));
    let after = s.device();
    assert_eq!((after.version, after.name.as_str()), (before.version + 1, "Other"));
    // The same update expects the old version: it changes nothing.
    let again = s.portal.rename_device(before, "Third".into(), t(T + 3)).unwrap();
    let a = s.db.apply(&again, t(T + 3)).unwrap();
    assert!(matches!(&a, Applied::Conflict(w) if w.contains("no longer at version 1")), "{a:?}");
    assert_eq!(s.device(), after);
}

fn a_change_whose_last_write_conflicts_keeps_none_of_its_writes(p: &Place) {
    let mut s = setup(p);
    let before = s.device();
    let events = s.db.events_since(0).unwrap().len();
    // A rename and an unlink-free second write that applies, then an insert
    // of an existing offer (conflicts): none stays, no event either.
    let mut all = s.portal.rename_device(before.clone(), "Renamed".into(), t(T + 1)).unwrap();
    let fresh = s.portal.create_offer("bob".into(), OfferSettings::default(), t(T + 1)).unwrap();
    all.writes.extend(fresh.change.writes.clone());
    all.writes.extend(s.offer.writes.clone());
    all.events.extend(s.portal.unlink_device(before.clone(), t(T + 1)).unwrap().events);
    assert!(!all.events.is_empty());
    let a = s.db.apply(&all, t(T + 1)).unwrap();
    assert!(matches!(&a, Applied::Conflict(w) if w.contains("already there")), "{a:?}");
    assert_eq!(s.device(), before);
    assert_eq!(s.db.raw_count("SELECT count(*) FROM offers").unwrap(), 1, "the new offer was not kept");
    assert_eq!(s.db.events_since(0).unwrap().len(), events);
}

fn events_are_written_exactly_when_the_change_commits(p: &Place) {
    let mut s = setup(p);
    assert_eq!(s.events("deviceLinked"), 1, "the confirmation's event");
    let row = s.device();
    let unlink = s.portal.unlink_device(row.clone(), t(T + 5)).unwrap();
    // A stale copy of the unlink (the row moved on) logs nothing.
    let rename = s.portal.rename_device(row, "Moved".into(), t(T + 4)).unwrap();
    assert!(matches!(s.db.apply(&rename, t(T + 4)).unwrap(), Applied::Done));
    assert!(matches!(s.db.apply(&unlink, t(T + 5)).unwrap(), Applied::Conflict(_)));
    assert_eq!(s.events("deviceUnlinked"), 0);
    // Decided again and committed: logged once, with the change's time.
    let row = s.device();
    let fresh = s.portal.unlink_device(row, t(T + 6)).unwrap();
    let last = s.db.events_since(0).unwrap().last().unwrap().id;
    assert!(matches!(s.db.apply(&fresh, t(T + 6)).unwrap(), Applied::Done));
    let new = s.db.events_since(last).unwrap();
    assert_eq!(new.len(), fresh.events.len());
    assert!(new.iter().all(|e| e.id > last && e.at == t(T + 6)));
    assert_eq!(s.events("deviceUnlinked"), 1);
}

fn a_decision_made_on_a_stale_row_is_made_again(p: &Place) {
    let mut s = setup(p);
    let stale = s.device();
    assert_eq!(stale.version, 1);
    // Another server renames the device first.
    let renamed = s.portal.rename_device(stale.clone(), "Renamed".into(), t(T + 1)).unwrap();
    assert!(matches!(s.db.apply(&renamed, t(T + 1)).unwrap(), Applied::Done));
    // This server decided to unlink from the row it read before.
    let mut rounds = 0;
    let (portal, id) = (s.portal.clone(), s.device_id.clone());
    let ran =
        s.db.run(t(T + 2), |c| {
            rounds += 1;
            let row = if rounds == 1 { stale.clone() } else { read::device(c, &id)?.unwrap() };
            Ok((portal.unlink_device(row, t(T + 2))?, ()))
        })
        .unwrap();
    assert!(matches!(ran, Ran::Stored(..)));
    assert_eq!(rounds, 2, "the conflict made it read again");
    let now = s.device();
    assert_eq!((now.version, name_of(&now.status).as_str(), now.name.as_str()), (3, "unlinked", "Renamed"));
    // The stale unlink's event was not logged; the committed one was, once.
    assert_eq!(s.events("deviceUnlinked"), 1);
}

fn endless_conflicts_give_up_after_max_rounds_with_nothing_stored(p: &Place) {
    let mut s = setup(p);
    let stale = s.device();
    let renamed = s.portal.rename_device(stale.clone(), "Renamed".into(), t(T + 1)).unwrap();
    assert!(matches!(s.db.apply(&renamed, t(T + 1)).unwrap(), Applied::Done));
    let events = s.db.events_since(0).unwrap().len();
    let mut rounds = 0;
    let portal = s.portal.clone();
    let ran =
        s.db.run(t(T + 2), |_| {
            rounds += 1;
            Ok((portal.unlink_device(stale.clone(), t(T + 2))?, rounds))
        })
        .unwrap();
    assert!(matches!(ran, Ran::GaveUp(n) if n == MAX_ROUNDS), "{ran:?}");
    let err = ran.stored().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    assert!(err.detail().contains("gave up"), "{err:?}");
    assert_eq!(name_of(&s.device().status), "active");
    assert_eq!(s.device().name, "Renamed");
    assert_eq!(s.db.events_since(0).unwrap().len(), events);
}

fn a_registered_device_id_cannot_become_pending_again(p: &Place) {
    let mut s = setup(p);
    // Even if a host purged the pending link, its device id stays taken.
    assert_eq!(s.db.raw_execute("DELETE FROM pending_links").unwrap(), 1);
    let change = PortalChange { writes: vec![s.pending_insert.clone()], events: vec![] };
    assert!(matches!(s.db.apply(&change, t(T)).unwrap(), Applied::Conflict(_)));
    assert_eq!(s.db.raw_count("SELECT count(*) FROM pending_links").unwrap(), 0);
    let id = s.device_id.clone();
    assert!(s.db.read(|c| read::device_id_seen(c, &id)).unwrap());
    assert!(!s.db.read(|c| read::device_id_seen(c, "no-such-device")).unwrap());
}

// ---------------------------------------------------------------------------
// Rows written directly (the store does not open sealed records)

fn offer(id: &str, used: Option<u64>) -> StoredOffer {
    StoredOffer {
        offer_id: id.into(),
        account: "ana".into(),
        expires_at: t(T + 300),
        used_at: used.map(t),
        version: 1,
        sealed: vec![0, 1, 2, 255],
    }
}

fn pending(id: &str, account: &str, status: PendingStatus) -> StoredPendingLink {
    StoredPendingLink {
        device_id: id.into(),
        account: account.into(),
        device_name: "Phone ü".into(),
        confirm_by: t(T + 600),
        attempts: 3,
        status,
        version: 1,
        sealed: vec![9; 40],
    }
}

fn device(id: &str, account: &str, linked: u64, full: bool) -> StoredDevice {
    StoredDevice {
        device_id: id.into(),
        account: account.into(),
        name: format!("Device {id}"),
        linked_at: t(linked),
        last_used_at: full.then(|| t(linked + 10)),
        status: if full { DeviceStatus::Unlinked } else { DeviceStatus::Active },
        locked: full,
        serial: full.then(|| "TS00000001".into()),
        usable_from: full.then(|| t(linked + 20)),
        version: 1,
        sealed: vec![id.len() as u8; 17],
    }
}

fn authenticator(serial: &str, imported: u64, status: AuthenticatorStatus, user: Option<&str>) -> StoredAuthenticator {
    StoredAuthenticator {
        serial: serial.into(),
        account: "ana".into(),
        user_id: user.map(Into::into),
        status,
        imported_at: t(imported),
        version: 1,
        sealed: vec![3; 8],
    }
}

fn insert(w: RecordWrite) -> PortalChange {
    PortalChange { writes: vec![w], events: vec![] }
}

fn apply_ok(db: &mut PortalDb, change: PortalChange) {
    let a = db.apply(&change, t(T)).unwrap();
    assert!(matches!(a, Applied::Done), "{a:?}");
}

fn every_row_type_round_trips_every_column(p: &Place) {
    let mut db = p.open();
    let ch = |status, kind, ids: Vec<&str>| StoredChallenge {
        challenge_id: format!("ch-{}", ids.len()),
        account: "ana".into(),
        device_ids: ids.into_iter().map(Into::into).collect(),
        kind,
        expires_at: t(T + 120),
        status,
        version: 1,
        sealed: vec![7; 3],
    };
    let order = |activation: Option<&str>| StoredOrder {
        user_id: "271828".into(),
        account: "ana".into(),
        serial: "TS1".into(),
        expires_at: t(T + 86_400),
        status: OrderStatus::Activated,
        activation_id: activation.map(Into::into),
        version: 1,
        sealed: vec![1],
    };
    let activation = StoredActivation {
        activation_id: "act-1".into(),
        user_id: "271828".into(),
        account: "ana".into(),
        serial: "TS1".into(),
        step: ActivationStep::InitialPassword,
        status: ActivationStatus::LockedOut,
        failures: i32::MAX,
        expires_at: t(T + 900),
        version: 1,
        sealed: vec![0; 1000],
    };
    let creds = |pending_from: Option<u64>, locked| StoredCredentials {
        account: "ana".into(),
        recovery_codes_left: 7,
        locked,
        pending_from: pending_from.map(t),
        version: 1,
        sealed: vec![42; 5],
    };
    // Each row first with its optional columns empty, then (as version 2)
    // with every column set to something else.
    let o1 = offer("o1", None);
    let o2 = StoredOffer { used_at: Some(t(T + 5)), version: 2, sealed: vec![], ..o1.clone() };
    let p1 = pending("p1", "ana", PendingStatus::Open);
    let p2 = StoredPendingLink {
        attempts: 5,
        status: PendingStatus::Cancelled,
        device_name: "x".into(),
        confirm_by: t(T + 1),
        version: 2,
        ..p1.clone()
    };
    let d1 = device("d1", "ana", T, false);
    let d2 = StoredDevice { version: 2, ..device("d1", "ana", T, true) };
    let c1 = ch(ChallengeStatus::Open, ChallengeKind::Login, vec!["d1", "d2"]);
    let c2 = StoredChallenge {
        status: ChallengeStatus::Answered,
        kind: ChallengeKind::LinkDevice,
        version: 2,
        ..ch(ChallengeStatus::Expired, ChallengeKind::Transaction, vec!["d1", "d2"])
    };
    let a1 = authenticator("TS1", T, AuthenticatorStatus::InStock, None);
    let a2 = StoredAuthenticator { version: 2, ..authenticator("TS1", T, AuthenticatorStatus::Active, Some("271828")) };
    let r1 = order(None);
    let r2 = StoredOrder { status: OrderStatus::Locked, version: 2, ..order(Some("act-1")) };
    let v1 = activation.clone();
    let v2 = StoredActivation {
        step: ActivationStep::DeviceCode,
        status: ActivationStatus::Open,
        failures: 0,
        version: 2,
        ..activation
    };
    let k1 = creds(None, false);
    let k2 = StoredCredentials { version: 2, ..creds(Some(T + 3600), true) };

    macro_rules! round_trip {
        ($variant:ident, $first:expr, $second:expr, $read:expr) => {{
            let (first, second) = ($first, $second);
            apply_ok(&mut db, insert(RecordWrite::$variant { row: first.clone(), expected_version: None }));
            assert_eq!(db.read($read).unwrap(), Some(first.clone()));
            apply_ok(&mut db, insert(RecordWrite::$variant { row: second.clone(), expected_version: Some(1) }));
            assert_eq!(db.read($read).unwrap(), Some(second.clone()));
            // Neither write applies twice.
            let again = insert(RecordWrite::$variant { row: first, expected_version: None });
            assert!(matches!(db.apply(&again, t(T)).unwrap(), Applied::Conflict(_)));
            let again = insert(RecordWrite::$variant { row: second.clone(), expected_version: Some(1) });
            assert!(matches!(db.apply(&again, t(T)).unwrap(), Applied::Conflict(_)));
            assert_eq!(db.read($read).unwrap(), Some(second));
        }};
    }
    round_trip!(Offer, o1, o2, |c| read::offer(c, "o1"));
    round_trip!(PendingLink, p1, p2, |c| read::pending(c, "p1"));
    round_trip!(Device, d1, d2, |c| read::device(c, "d1"));
    round_trip!(Challenge, c1, c2, |c| read::challenge(c, "ch-2"));
    round_trip!(Authenticator, a1, a2, |c| read::authenticator(c, "TS1"));
    round_trip!(Order, r1, r2, |c| read::order(c, "271828"));
    round_trip!(Activation, v1, v2, |c| read::activation(c, "act-1"));
    round_trip!(Credentials, k1, k2, |c| read::credentials(c, "ana"));
    // Missing keys read as none.
    assert_eq!(db.read(|c| read::offer(c, "nope")).unwrap(), None);
    assert_eq!(db.read(|c| read::credentials(c, "nobody")).unwrap(), None);
    assert_eq!(db.read(|c| read::device_of(c, "bob", "d1")).unwrap(), None);
    assert!(db.read(|c| read::device_of(c, "ana", "d1")).unwrap().is_some());
}

fn listings_filter_and_order(p: &Place) {
    let mut db = p.open();
    // Devices: linked at different times, ids in another order.
    for (id, account, linked) in
        [("d-c", "ana", T + 1), ("d-a", "ana", T + 3), ("d-b", "ana", T + 1), ("d-z", "bob", T)]
    {
        apply_ok(
            &mut db,
            insert(RecordWrite::Device { row: device(id, account, linked, false), expected_version: None }),
        );
    }
    let ids = |v: Vec<StoredDevice>| v.into_iter().map(|d| d.device_id).collect::<Vec<_>>();
    assert_eq!(ids(db.read(|c| read::devices_by_id(c, "ana")).unwrap()), ["d-a", "d-b", "d-c"]);
    assert_eq!(ids(db.read(|c| read::devices_of(c, "ana")).unwrap()), ["d-b", "d-c", "d-a"]);
    assert_eq!(ids(db.read(|c| read::devices_of(c, "carol")).unwrap()), Vec::<String>::new());
    // Pending links: only the account's open ones, by device id.
    for (id, account, status) in [
        ("p-2", "ana", PendingStatus::Open),
        ("p-1", "ana", PendingStatus::Open),
        ("p-3", "ana", PendingStatus::Cancelled),
        ("p-4", "ana", PendingStatus::Confirmed),
        ("p-0", "bob", PendingStatus::Open),
    ] {
        apply_ok(
            &mut db,
            insert(RecordWrite::PendingLink { row: pending(id, account, status), expected_version: None }),
        );
    }
    let open: Vec<String> =
        db.read(|c| read::open_pendings(c, "ana")).unwrap().into_iter().map(|p| p.device_id).collect();
    assert_eq!(open, ["p-1", "p-2"]);
    assert!(db.read(|c| read::device_id_seen(c, "p-3")).unwrap());
    assert!(db.read(|c| read::device_id_seen(c, "d-z")).unwrap());
    // A challenge's devices: as stored now, a missing one left out.
    let ch = StoredChallenge {
        challenge_id: "ch".into(),
        account: "ana".into(),
        device_ids: vec!["d-c".into(), "gone".into(), "d-a".into()],
        kind: ChallengeKind::Transaction,
        expires_at: t(T + 60),
        status: ChallengeStatus::Open,
        version: 1,
        sealed: vec![1],
    };
    apply_ok(&mut db, insert(RecordWrite::Challenge { row: ch.clone(), expected_version: None }));
    assert_eq!(ids(db.read(|c| read::challenge_devices(c, &ch)).unwrap()), ["d-c", "d-a"]);
    // Authenticators: by import time then serial; the oldest in stock.
    for (serial, imported, status) in [
        ("TS3", T, AuthenticatorStatus::InStock),
        ("TS2", T + 5, AuthenticatorStatus::InStock),
        ("TS1", T + 5, AuthenticatorStatus::InStock),
        ("TS0", T - 5, AuthenticatorStatus::Assigned),
    ] {
        apply_ok(
            &mut db,
            insert(RecordWrite::Authenticator {
                row: authenticator(serial, imported, status, None),
                expected_version: None,
            }),
        );
    }
    let serials: Vec<String> = db.read(read::authenticators).unwrap().into_iter().map(|a| a.serial).collect();
    assert_eq!(serials, ["TS0", "TS3", "TS1", "TS2"]);
    assert_eq!(db.read(read::oldest_in_stock).unwrap().unwrap().serial, "TS3");
    let asked: Vec<String> = ["TS9", "TS1", "TS0"].map(String::from).to_vec();
    assert_eq!(db.read(|c| read::imported_serials(c, &asked)).unwrap(), ["TS1", "TS0"]);
}

fn challenge_rows_round_trip_and_are_compared_and_set(p: &Place) {
    let mut s = setup(p);
    let device = s.device();
    let issued =
        s.portal.create_challenge(vec![device], tessera_host::Approval::Login, Default::default(), t(T + 10)).unwrap();
    let written = match &issued.change.writes[..] {
        [RecordWrite::Challenge { row, expected_version: None }] => row.clone(),
        w => panic!("{w:?}"),
    };
    assert!(matches!(s.db.apply(&issued.change, t(T + 10)).unwrap(), Applied::Done));
    let id = issued.challenge_id.clone();
    let stored = s.db.read(|c| read::challenge(c, &id)).unwrap().unwrap();
    assert_eq!(stored, written);
    assert_eq!(s.db.read(|c| read::challenge_devices(c, &stored)).unwrap(), vec![s.device()]);
    let a = s.db.apply(&issued.change, t(T + 11)).unwrap();
    assert!(matches!(&a, Applied::Conflict(w) if w.contains("insert of challenge")), "{a:?}");
    // A wrong answer counts on the device row; a second one decided from
    // the same (now stale) rows must not overwrite that count.
    let (portal, before) = (s.portal.clone(), s.device());
    let check = portal.verify_answer(stored.clone(), vec![before.clone()], "00000000".into(), t(T + 12)).unwrap();
    assert!(!check.change.writes.is_empty());
    assert!(matches!(s.db.apply(&check.change, t(T + 12)).unwrap(), Applied::Done));
    assert_eq!(s.device().version, before.version + 1);
    let again = portal.verify_answer(stored, vec![before.clone()], "00000000".into(), t(T + 13)).unwrap();
    assert!(matches!(s.db.apply(&again.change, t(T + 13)).unwrap(), Applied::Conflict(_)));
    assert_eq!(s.device().version, before.version + 1);
}

fn activation_rows_round_trip_and_are_compared_and_set(p: &Place) {
    use tessera_host::OfflineAuthenticator;
    let mut s = setup(p);
    let portal = s.portal.clone();
    let settings = ActivationSettings { hash_iterations: Some(10_000), ..Default::default() };
    let stored = s.db.update_activation_settings(|_| Ok(settings.clone())).unwrap();
    assert_eq!(s.db.read(read::activation_settings).unwrap(), stored);
    let token = OfflineAuthenticator::new(vec![9; 32]).unwrap();
    let made = token.create("TS00012345".into()).unwrap();
    let file = format!("tessera-factory-records v1\n{}\n", made.factory_record);
    let import = portal.import_devices(file, vec![], t(T)).unwrap();
    assert!(matches!(s.db.apply(&import.change, t(T)).unwrap(), Applied::Done));
    let auth = s.db.read(|c| read::authenticator(c, "TS00012345")).unwrap().unwrap();
    assert_eq!(RecordWrite::Authenticator { row: auth.clone(), expected_version: None }, import.change.writes[0]);
    assert_eq!(s.db.read(read::oldest_in_stock).unwrap(), Some(auth.clone()));
    let order = portal.order_device("ana".into(), "271828".into(), auth, settings.clone(), t(T + 1)).unwrap();
    assert!(matches!(s.db.apply(&order.change, t(T + 1)).unwrap(), Applied::Done));
    assert_eq!(s.db.read(read::oldest_in_stock).unwrap(), None);
    let order_row = s.db.read(|c| read::order(c, &order.user_id)).unwrap().unwrap();
    let auth = s.db.read(|c| read::authenticator(c, "TS00012345")).unwrap().unwrap();
    let started = portal.start_activation(order_row.clone(), auth.clone(), settings.clone(), t(T + 2)).unwrap();
    assert!(matches!(s.db.apply(&started.change, t(T + 2)).unwrap(), Applied::Done));
    let id = started.activation_id.clone();
    let row = s.db.read(|c| read::activation(c, &id)).unwrap().unwrap();
    let written = started.change.writes.iter().find_map(|w| match w {
        RecordWrite::Activation { row, .. } => Some(row.clone()),
        _ => None,
    });
    assert_eq!(Some(row.clone()), written);
    let order_row = s.db.read(|c| read::order(c, &order.user_id)).unwrap().unwrap();
    let wrong = |row| {
        portal.activation_next(row, order_row.clone(), auth.clone(), None, "0".into(), settings.clone(), t(T + 3))
    };
    let first = wrong(row.clone()).unwrap();
    let second = wrong(row.clone()).unwrap();
    assert!(matches!(s.db.apply(&first.change, t(T + 3)).unwrap(), Applied::Done));
    let a = s.db.apply(&second.change, t(T + 3)).unwrap();
    assert!(matches!(&a, Applied::Conflict(w) if w.contains(&format!("update of activation {id}"))), "{a:?}");
    let now = s.db.read(|c| read::activation(c, &id)).unwrap().unwrap();
    assert_eq!((now.version, now.failures), (row.version + 1, 1));
}

/// N servers (threads, each its own connection) each count one attempt on
/// one row by compare-and-set, up to a limit: every count lands exactly
/// once, none beyond the limit, and nobody gives up.
fn concurrent_servers_lose_no_update_and_never_pass_a_limit(p: &Place) {
    const SERVERS: usize = 50;
    const LIMIT: i32 = 40;
    let mut db = p.open();
    let row = StoredPendingLink { attempts: 0, ..pending("hot", "ana", PendingStatus::Open) };
    apply_ok(&mut db, insert(RecordWrite::PendingLink { row, expected_version: None }));
    let started = std::time::Instant::now();
    let barrier = Arc::new(std::sync::Barrier::new(SERVERS));
    let handles: Vec<_> = (0..SERVERS)
        .map(|_| {
            let mut db = p.open();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut rounds = 0u32;
                let ran = db
                    .run(t(T), |c| {
                        rounds += 1;
                        let row = read::pending(c, "hot")?.unwrap();
                        if row.attempts >= LIMIT {
                            return Ok((PortalChange::default(), false));
                        }
                        let next = StoredPendingLink { attempts: row.attempts + 1, version: row.version + 1, ..row };
                        Ok((insert(RecordWrite::PendingLink { row: next, expected_version: Some(row.version) }), true))
                    })
                    .unwrap();
                match ran {
                    Ran::Stored(_, counted) => (counted, rounds),
                    Ran::GaveUp(_) => panic!("gave up after {rounds} rounds"),
                }
            })
        })
        .collect();
    let results: Vec<(bool, u32)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let counted = results.iter().filter(|(c, _)| *c).count();
    let max_rounds = results.iter().map(|(_, r)| *r).max().unwrap();
    let total_rounds: u32 = results.iter().map(|(_, r)| *r).sum();
    let row = db.read(|c| read::pending(c, "hot")).unwrap().unwrap();
    eprintln!(
        "{} servers on one row: {counted} counted, {total_rounds} rounds in all, at most {max_rounds} for one \
         (MAX_ROUNDS {MAX_ROUNDS}), {:?}",
        db.backend_name(),
        started.elapsed()
    );
    assert_eq!(counted, LIMIT as usize, "each count that committed says so");
    assert_eq!(row.attempts, LIMIT, "no update lost, none past the limit");
    assert_eq!(row.version, 1 + i64::from(LIMIT));
    assert!(max_rounds < MAX_ROUNDS);
}

fn identity_and_settings(p: &Place) {
    let mut db = p.open();
    assert_eq!(db.identity().unwrap(), None);
    // A failing key write leaves no portal.
    let e = db
        .create_identity("Bank", "00ff", || Err(tessera_host::TesseraError::new(ErrorCode::Storage, "disk full")))
        .unwrap_err();
    assert_eq!(e.detail(), "disk full");
    assert_eq!(db.identity().unwrap(), None);
    let mut wrote = 0;
    db.create_identity("Bank", "00ff", || {
        wrote += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(wrote, 1);
    // Another server sees it; a second identity is refused before its key
    // would be written.
    let mut other = p.open();
    assert_eq!(other.identity().unwrap(), Some(("Bank".into(), "00ff".into())));
    let e = other.create_identity("Other", "11", || panic!("the key must not be written")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState);
    assert_eq!(db.identity().unwrap(), Some(("Bank".into(), "00ff".into())));
    // Settings: defaults until set; two edits of different settings from
    // two servers both stay.
    assert_eq!(db.read(read::activation_settings).unwrap(), ActivationSettings::default());
    db.update_activation_settings(|s| Ok(ActivationSettings { hash_iterations: Some(20_000), ..s })).unwrap();
    other.update_activation_settings(|s| Ok(ActivationSettings { usable_after_seconds: Some(60), ..s })).unwrap();
    let both = db.read(read::activation_settings).unwrap();
    assert_eq!((both.hash_iterations, both.usable_after_seconds), (Some(20_000), Some(60)));
    // A failed edit changes nothing.
    let e = db
        .update_activation_settings(|_| Err(tessera_host::TesseraError::new(ErrorCode::InvalidInput, "no")))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert_eq!(db.read(read::activation_settings).unwrap(), both);
}

fn a_server_dying_between_decide_and_commit_leaves_nothing(p: &Place) {
    let mut s = setup(p);
    let before = s.device();
    let events = s.db.events_since(0).unwrap().len();
    let (portal, id) = (s.portal.clone(), s.device_id.clone());
    // Decided (an unlink plus a new offer), half written, then the server died.
    let (mut change, ()) =
        s.db.begin_decide(|c| Ok((portal.unlink_device(read::device(c, &id)?.unwrap(), t(T + 1))?, ()))).unwrap();
    change.writes.extend(portal.create_offer("bob".into(), OfferSettings::default(), t(T + 1)).unwrap().change.writes);
    s.db.crash_decided(&change, t(T + 1), 1).unwrap();
    assert_eq!(s.device(), before);
    assert_eq!(s.db.events_since(0).unwrap().len(), events);
    // A connection dropped with a decided transaction open: nothing either.
    let mut dying = p.open();
    dying.begin_decide(|c| Ok((portal.unlink_device(read::device(c, &id)?.unwrap(), t(T + 2))?, ()))).unwrap();
    drop(dying);
    assert_eq!(s.device(), before);
    // The same decision made again by a live server commits.
    let (again, ()) =
        s.db.begin_decide(|c| Ok((portal.unlink_device(read::device(c, &id)?.unwrap(), t(T + 3))?, ()))).unwrap();
    assert!(matches!(s.db.commit_decided(&again, t(T + 3)).unwrap(), Applied::Done));
    assert_eq!(s.device().status, DeviceStatus::Unlinked);
    assert_eq!(s.db.raw_count("SELECT count(*) FROM offers").unwrap(), 1);
    // Committing twice is refused (nothing open).
    assert_eq!(s.db.commit_decided(&again, t(T + 3)).unwrap_err().code(), ErrorCode::InvalidState);
}

/// Two servers decide from the same snapshot; the first commits; the
/// second's commit is a conflict and keeps nothing (SQLite: a deferred
/// transaction's stale snapshot; PostgreSQL: a serialization failure).
fn a_decision_overtaken_by_another_servers_commit_conflicts(p: &Place) {
    let mut s = setup(p);
    let mut other = p.open();
    let (portal, id) = (s.portal.clone(), s.device_id.clone());
    let (rename, ()) =
        s.db.begin_decide(|c| Ok((portal.rename_device(read::device(c, &id)?.unwrap(), "A".into(), t(T + 1))?, ())))
            .unwrap();
    let (unlink, ()) =
        other.begin_decide(|c| Ok((portal.unlink_device(read::device(c, &id)?.unwrap(), t(T + 1))?, ()))).unwrap();
    assert!(matches!(other.commit_decided(&unlink, t(T + 1)).unwrap(), Applied::Done));
    let a = s.db.commit_decided(&rename, t(T + 1)).unwrap();
    assert!(matches!(a, Applied::Conflict(_)), "{a:?}");
    let now = s.device();
    assert_eq!((now.status, now.name.as_str(), now.version), (DeviceStatus::Unlinked, "Phone", 2));
    // An insert decided on both: one key, one row.
    let fresh = portal.create_offer("bob".into(), OfferSettings::default(), t(T + 2)).unwrap().change;
    s.db.begin_decide(|c| Ok((PortalChange::default(), read::offer(c, "x")?))).unwrap();
    other.begin_decide(|c| Ok((PortalChange::default(), read::offer(c, "x")?))).unwrap();
    assert!(matches!(other.commit_decided(&fresh, t(T + 2)).unwrap(), Applied::Done));
    assert!(matches!(s.db.commit_decided(&fresh, t(T + 2)).unwrap(), Applied::Conflict(_)));
    assert_eq!(s.db.raw_count("SELECT count(*) FROM offers").unwrap(), 2);
}

#[test]
fn connect_refuses_unknown_stores_and_keeps_secrets_out_of_errors() {
    let dir = std::env::temp_dir().join(format!("tessera-store-connect-{}", std::process::id()));
    let e = PortalDb::connect(&dir, Some("mysql://x"), true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    let e = PortalDb::connect(&dir, Some("sqlite:"), true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    let e = PortalDb::connect(&dir, Some("sqlite:/nonexistent/dir/p.db"), false).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    // Nothing listens on port 1: a STORAGE error without the password.
    let e = PortalDb::connect(&dir, Some("postgres://u:hunter2@127.0.0.1:1/db"), false).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Storage);
    assert!(!format!("{e:?} {}", e.detail()).contains("hunter2"), "{e:?}");
    // Plain (sslmode=disable) to a database across a network is refused
    // before any byte is sent (rows and the password exchange would go in
    // clear); TLS is tested in tests/tls.rs.
    for remote in [
        "postgres://u:hunter2@db.example.com/x?sslmode=disable",
        "postgresql://u:hunter2@10.0.0.5:5432/x?sslmode=disable",
        "host=10.0.0.5 user=u password=hunter2 sslmode=disable",
    ] {
        let e = if remote.starts_with("host=") {
            PortalDb::postgres(remote).unwrap_err()
        } else {
            PortalDb::connect(&dir, Some(remote), false).unwrap_err()
        };
        assert_eq!(e.code(), ErrorCode::InvalidInput, "{remote}");
        assert!(e.detail().contains("TLS") && !e.detail().contains("hunter2"), "{e:?}");
    }
    // A sqlite: path outside the directory works like the default.
    let file = dir.join("elsewhere.db");
    let mut db = PortalDb::connect(&dir, Some(&format!("sqlite:{}", file.display())), true).unwrap();
    assert_eq!(db.backend_name(), "sqlite");
    assert_eq!(db.identity().unwrap(), None);
    assert!(file.exists());
    drop(db.read(|_| Ok(())));
    let _ = std::fs::remove_dir_all(&dir);
}

/// PostgreSQL hands out event ids when events are inserted, not when they
/// commit: without care, a host polling `id > last` reads a later id first
/// and never sees an earlier one that commits after. The store serialises
/// event inserts to commit (an advisory lock held to the end of the
/// transaction): a second server's events wait until the first commits.
#[test]
fn postgres_events_commit_in_id_order() {
    let Some(p) = Place::postgres("event_order") else { return };
    let mut s = setup(&p);
    let row = s.device();
    let rename = s.portal.rename_device(row, "Later".into(), t(T + 9)).unwrap();
    let mut change = rename.clone();
    change.writes.clear();
    assert!(!change.events.is_empty());
    // Another server's transaction: it took the lock and inserted its event
    // (id N), and has not committed yet.
    let mut other = ::postgres::Client::connect(&p.url().unwrap(), ::postgres::NoTls).unwrap();
    let mut tx = other.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x7465_7373_6572_6102_i64]).unwrap();
    let first: i64 = tx
        .query_one("INSERT INTO events (at, json) VALUES ($1, '{\"kind\":\"first\"}') RETURNING id", &[&(T as i64)])
        .unwrap()
        .get(0);
    let url = p.url().unwrap();
    let dir = p.dir.clone();
    let waiter = std::thread::spawn(move || {
        let mut db = PortalDb::connect(&dir, Some(&url), false).unwrap();
        assert!(matches!(db.apply(&change, t(T + 9)).unwrap(), Applied::Done));
        std::time::Instant::now()
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!waiter.is_finished(), "the second server's events committed before the first server's");
    let released = std::time::Instant::now();
    tx.commit().unwrap();
    let done = waiter.join().unwrap();
    assert!(done >= released);
    // Ids rise in commit order: a poller that read up to the first event
    // still sees the second.
    let after_first = s.db.events_since(first).unwrap();
    assert!(!after_first.is_empty() && after_first.iter().all(|e| e.id > first));
}
