//! Deterministic simulation of the host contract (`docs/DESIGN.md`, "Host
//! contract"; issue 6, item 10), through tessera-core's public API only.
//!
//! # Model
//!
//! - **One store**, in memory: a map per table (offers by `offer_id`,
//!   pending links by `device_id`, devices by `device_id`) of sealed rows
//!   (`Portal::store_write`, read back with `open_offer` / `open_pending` /
//!   `open_device`). It applies the writes of one outcome as the contract
//!   says: a write whose `expected_version` is `None` inserts and needs the
//!   key to be absent (a pending link also needs no device with that id),
//!   any other write needs the stored version to equal `expected_version`;
//!   all writes or none. Deliberately broken hosts serve as negative
//!   controls: a last-writer-wins store, a store without transactions (one
//!   write at a time), and a host that reads one call at two moments.
//! - **Several portal servers**: separate `Portal` values restored from one
//!   secret. Each request a server handles is an [`Op`], a small state
//!   machine of four steps: READ (copy the rows it needs), COMPUTE (open
//!   them and call the core at the virtual clock's `now`), WRITE (apply the
//!   outcome's writes atomically; on a conflict go back to READ) and RESPOND
//!   (the answer reaches the device or the user).
//! - **Actors** (phones and the people using them) start ops: send a link
//!   request (often several copies at once, to several servers, and again
//!   later), type wrong and right check codes, send right and wrong TOTP
//!   codes, ask for their status; an administrator unlinks and renames.
//! - **A seeded scheduler** picks every step: which op advances, which actor
//!   acts, when the clock ticks (virtual seconds). It crashes ops between
//!   READ and WRITE (the op vanishes, nothing written) and between WRITE and
//!   RESPOND (written, never answered).
//!
//! # Invariants, checked after every step
//!
//! A violation names its seed; `TESSERA_SIM_TRACE=<seed>` replays it step
//! by step.
//!
//! - a QR code links at most once: at most one committed acceptance and one
//!   pending link per offer, the used offer and its pending link agree, and
//!   every accepting answer (first or repeated) has the same bytes, for the
//!   same request;
//! - at most 5 wrong check codes are ever counted per pending link (counting
//!   committed failure writes), the stored count equals that number, and at
//!   most 5 `CHECK_CODE_MISMATCH` + `LOCKED_OUT` answers go out;
//! - a pending link confirms at most once; at most one pending link and one
//!   device record per device id, the device's link confirmed;
//! - a TOTP code (device, time step) is accepted at most once, and steps
//!   only move forward (committed successes and answers);
//! - at most 5 failures are counted before the lock, none is lost (the
//!   stored count equals the committed failures since the last success), and
//!   nothing is accepted after the lock;
//! - once unlinked, a device is never written back as active, and no status
//!   answer read after the unlink committed says "active";
//! - every committed write raises its row's version by exactly 1;
//! - every answer agrees with the committed state (an acceptance, a
//!   confirmation, a verified code or an unlink only after its write
//!   committed; a refusal names a fact that holds).
//!
//! Any refusal of a request whose acceptance committed fails (an expiry
//! refusal writes the offer, so a stale one loses its compare-and-set).
//! Counted, not a failure (`TESSERA_SIM_STRICT=1` fails on it): a
//! confirmation that commits after the phone was told `LINK_NOT_CONFIRMED`.
//!
//! # Cost
//!
//! P-256 is slow in the dev profile (~1 ms per scalar multiplication), so
//! every seed uses the same [`Universe`] of portals, offers and phone link
//! requests (built once, with fresh `SeededRandom`s), and two pure
//! functions are memoised on all of their inputs: `accept` when it accepts
//! (the core is deterministic given the records, which is what the contract
//! relies on; the first reuse of every entry recomputes it and compares)
//! and the phone's `finish_link`. `TESSERA_SIM_NO_MEMO=1` turns that off.
//! Everything else (scheduling, clock, crashes, workload, the store, the
//! sealed rows) is fresh per seed.
//!
//! # Long run
//!
//! `TESSERA_SIM_SEEDS=1000000 cargo test -p tessera-core --test contract_sim
//! -- --nocapture the_host_contract` runs that many seeds (from
//! `TESSERA_SIM_START`, on `TESSERA_SIM_THREADS` threads) and prints seeds/s
//! and the totals of every operation and outcome. `TESSERA_SIM_TRACE=<seed>`
//! replays one seed step by step (`TESSERA_SIM_STORE=lww`, `one-by-one` or
//! `two-reads` on a broken host; `TESSERA_SIM_STRICT=1` as above).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tessera_core::crypto::SeededRandom;
use tessera_core::host::Write;
use tessera_core::limits::Lock;
use tessera_core::link::{
    self, Accept, CancelReason, DeviceKeyUse, DeviceRecord, DeviceState, DeviceStatus, LinkOfferQr, LinkOfferRecord,
    LinkStatus, OfferState, OpenedLinkRequest, PasscodePolicy, PendingDeviceLink, PendingLinkRecord, PendingState,
    Portal, PortalEvent, StatusProbe, UserFactor, MAX_CONFIRM_ATTEMPTS,
};
use tessera_core::otp::{ThrottlePolicy, Verified};
use tessera_core::{ErrorCode, Result, SecretBytes};

/// Rows as a host stores them (query columns + the sealed record), local to
/// this simulation: the host-facing definition is `tessera-host`'s.
mod rows {
    use tessera_core::crypto::RandomSource;
    use tessera_core::host::Write;
    use tessera_core::link::{DeviceRecord, DeviceStatus, LinkOfferRecord, OfferState, PendingLinkRecord, Portal};
    use tessera_core::Result;

    /// A stored link offer.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct StoredOffer {
        /// Lookup key (hex).
        pub offer_id: String,
        /// Account.
        pub account: String,
        /// Expiry (unix seconds).
        pub expires_at: u64,
        /// When a device used it.
        pub used_at: Option<u64>,
        /// Record version (compare-and-set).
        pub version: u64,
        /// Sealed record.
        pub sealed: Vec<u8>,
    }

    /// A stored pending link (waiting for its check code).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct StoredPendingLink {
        /// Device id.
        pub device_id: String,
        /// Account.
        pub account: String,
        /// Device name.
        pub device_name: String,
        /// Deadline for the check code.
        pub confirm_by: u64,
        /// Wrong check codes so far.
        pub attempts: u32,
        /// Confirmed or cancelled.
        pub closed: bool,
        /// Record version (compare-and-set).
        pub version: u64,
        /// Sealed record.
        pub sealed: Vec<u8>,
    }

    /// A stored registry entry.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct StoredDevice {
        /// Device id.
        pub device_id: String,
        /// Account.
        pub account: String,
        /// Display name.
        pub name: String,
        /// Link time.
        pub linked_at: u64,
        /// Last use.
        pub last_used_at: Option<u64>,
        /// Active or unlinked.
        pub status: DeviceStatus,
        /// Record version (compare-and-set).
        pub version: u64,
        /// Sealed record.
        pub sealed: Vec<u8>,
    }

    /// A [`Write`] sealed for storage: the row to insert (`expected_version`
    /// `None`) or to update where the stored version equals `expected_version`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum StoredWrite {
        /// An offer row.
        Offer(StoredOffer),
        /// A pending-link row.
        PendingLink(StoredPendingLink),
        /// A registry row.
        Device(StoredDevice),
    }

    impl StoredWrite {
        /// Version the stored row must have (`None`: insert).
        pub fn expected_version(&self) -> Option<u64> {
            let v = match self {
                StoredWrite::Offer(r) => r.version,
                StoredWrite::PendingLink(r) => r.version,
                StoredWrite::Device(r) => r.version,
            };
            (v > 1).then(|| v - 1)
        }
    }

    /// The sealing the hosts do (`tessera-host` rows), as an extension of the
    /// core portal for this simulation.
    /// The sealing the hosts do (`tessera-host` rows), for this simulation.
    pub trait Rows {
        fn store_offer(&self, r: &LinkOfferRecord, rng: &mut dyn RandomSource) -> StoredOffer;
        fn store_pending(&self, r: &PendingLinkRecord, rng: &mut dyn RandomSource) -> StoredPendingLink;
        fn store_device(&self, r: &DeviceRecord, rng: &mut dyn RandomSource) -> StoredDevice;
        fn store_write(&self, w: &Write, rng: &mut dyn RandomSource) -> StoredWrite;
        fn open_offer(&self, row: &StoredOffer) -> Result<LinkOfferRecord>;
        fn open_pending(&self, row: &StoredPendingLink) -> Result<PendingLinkRecord>;
        fn open_device(&self, row: &StoredDevice) -> Result<DeviceRecord>;
    }

    impl Rows for Portal {
        /// Seal an offer for storage.
        fn store_offer(&self, r: &LinkOfferRecord, rng: &mut dyn RandomSource) -> StoredOffer {
            StoredOffer {
                offer_id: r.offer_id.clone(),
                account: r.account.clone(),
                expires_at: r.expires_at,
                used_at: match r.state {
                    OfferState::Open | OfferState::Expired { .. } => None,
                    OfferState::Used { at, .. } => Some(at),
                },
                version: r.version,
                sealed: self.seal_record(r, rng),
            }
        }

        /// Seal a pending link for storage.
        fn store_pending(&self, r: &PendingLinkRecord, rng: &mut dyn RandomSource) -> StoredPendingLink {
            StoredPendingLink {
                device_id: r.device_id.clone(),
                account: r.account.clone(),
                device_name: r.device_name.clone(),
                confirm_by: r.confirm_by,
                attempts: r.attempts(),
                closed: r.is_closed(),
                version: r.version,
                sealed: self.seal_record(r, rng),
            }
        }

        /// Seal a device record for storage.
        fn store_device(&self, r: &DeviceRecord, rng: &mut dyn RandomSource) -> StoredDevice {
            StoredDevice {
                device_id: r.device_id.clone(),
                account: r.account.clone(),
                name: r.name.clone(),
                linked_at: r.linked_at,
                last_used_at: r.last_used_at,
                status: r.status,
                version: r.version,
                sealed: self.seal_record(r, rng),
            }
        }

        /// Seal one write of an outcome.
        fn store_write(&self, w: &Write, rng: &mut dyn RandomSource) -> StoredWrite {
            match w {
                Write::Offer(r) => StoredWrite::Offer(self.store_offer(r, rng)),
                Write::PendingLink(r) => StoredWrite::PendingLink(self.store_pending(r, rng)),
                Write::Device(r) => StoredWrite::Device(self.store_device(r, rng)),
                Write::Challenge(_) => unreachable!("the simulation issues no challenges yet"),
            }
        }

        /// The offer a row holds (`STATE_CORRUPT` if the blob is not this row's).
        fn open_offer(&self, row: &StoredOffer) -> Result<LinkOfferRecord> {
            self.open_record(&row.offer_id, &row.account, row.version, &row.sealed)
        }

        /// The pending link a row holds.
        fn open_pending(&self, row: &StoredPendingLink) -> Result<PendingLinkRecord> {
            self.open_record(&row.device_id, &row.account, row.version, &row.sealed)
        }

        /// The device record a row holds.
        fn open_device(&self, row: &StoredDevice) -> Result<DeviceRecord> {
            self.open_record(&row.device_id, &row.account, row.version, &row.sealed)
        }
    }
}
use rows::{Rows, StoredDevice, StoredOffer, StoredPendingLink, StoredWrite};

/// Seeds of the normal test suite.
const DEFAULT_SEEDS: u64 = 3_000;
/// The negative controls must fail within this many seeds.
const CONTROL_SEEDS: u64 = 300;
/// 2026-01-01T00:00:00Z: every seed starts here.
const T0: u64 = 1_767_225_600;
const PORTAL_NAME: &str = "Example Bank";
const SERVERS: usize = 3;
/// The phones' storage key (from the platform keystore).
const DEVICE_STORAGE_KEY: [u8; 32] = [0x42; 32];
/// Failures that lock a device's TOTP (`ThrottlePolicy::default`).
const MAX_TOTP_FAILURES: u32 = 5;
/// A run that takes more steps than this is stuck (a livelock).
const MAX_STEPS: u64 = 50_000;

// ---------------------------------------------------------------------------
// The universe: crypto material shared by every seed.
// ---------------------------------------------------------------------------

/// An offer of the universe (created at `T0`).
struct OfferSpec {
    account: &'static str,
    ttl: u64,
    rng_seed: u8,
}

const OFFERS: [OfferSpec; 4] = [
    OfferSpec { account: "anna", ttl: 300, rng_seed: 1 },
    OfferSpec { account: "anna", ttl: 60, rng_seed: 2 },
    OfferSpec { account: "ben", ttl: 300, rng_seed: 3 },
    OfferSpec { account: "chloe", ttl: 300, rng_seed: 4 },
];

/// A phone of the universe: it scanned `OFFERS[offer]` at `T0` and built
/// its request with `SeededRandom::new([key_seed; 32])`.
struct DeviceSpec {
    offer: usize,
    name: &'static str,
    passcode: &'static str,
    biometrics: bool,
    key_seed: u8,
}

const DEVICES: [DeviceSpec; 6] = [
    DeviceSpec { offer: 0, name: "Anna's Pixel", passcode: "493817", biometrics: true, key_seed: 10 },
    // A second request for the same QR code.
    DeviceSpec { offer: 0, name: "Shoulder surfer", passcode: "728194", biometrics: false, key_seed: 11 },
    // The offer with a 60 s lifetime.
    DeviceSpec { offer: 1, name: "Anna's iPad", passcode: "582039", biometrics: false, key_seed: 12 },
    DeviceSpec { offer: 2, name: "Ben's phone", passcode: "613048", biometrics: false, key_seed: 13 },
    // The same randomness, so the same device key, for another account:
    // one device key links to one account only.
    DeviceSpec { offer: 3, name: "Ben's phone", passcode: "613048", biometrics: false, key_seed: 13 },
    DeviceSpec { offer: 2, name: "Ben's tablet", passcode: "740193", biometrics: false, key_seed: 14 },
];

/// A phone's request, built once.
struct Prepared {
    request: String,
    pending: PendingDeviceLink,
    biometric: Option<SecretBytes>,
    /// The request as the portal opened it (opening is a pure function of
    /// the text and the portal secret, which all servers share).
    opened: OpenedLinkRequest,
    device_id: String,
    /// Index into `Universe::ids` (twins share one).
    id: usize,
}

struct Universe {
    servers: Vec<Portal>,
    offers: Vec<LinkOfferQr>,
    devices: Vec<Prepared>,
    /// Distinct device ids.
    ids: Vec<String>,
    memo: Mutex<Memo>,
}

impl Universe {
    fn get() -> &'static Universe {
        static U: OnceLock<Universe> = OnceLock::new();
        U.get_or_init(Universe::build)
    }

    fn build() -> Universe {
        let first = Portal::generate(PORTAL_NAME, &mut SeededRandom::new([0x5e; 32])).unwrap();
        let secret = first.secret();
        let mut servers = vec![first];
        while servers.len() < SERVERS {
            servers.push(Portal::from_secret(secret.expose(), PORTAL_NAME).unwrap());
        }
        let offers: Vec<LinkOfferQr> = OFFERS
            .iter()
            .map(|o| {
                let rng = &mut SeededRandom::new([o.rng_seed; 32]);
                servers[0].create_offer(o.account, PasscodePolicy::default(), o.ttl, T0, rng).unwrap()
            })
            .collect();
        let mut ids: Vec<String> = Vec::new();
        let devices = DEVICES
            .iter()
            .map(|d| {
                let scanned = link::scan_link_qr(&offers[d.offer].qr_text, T0).unwrap();
                let rng = &mut SeededRandom::new([d.key_seed; 32]);
                let start = link::start_link(&scanned, d.name, d.passcode, d.biometrics, false, T0, rng).unwrap();
                let opened = servers[0].open_link_request(&start.request).unwrap();
                let device_id = opened.device_id().to_string();
                let id = ids.iter().position(|i| *i == device_id).unwrap_or_else(|| {
                    ids.push(device_id.clone());
                    ids.len() - 1
                });
                Prepared {
                    request: start.request,
                    pending: start.pending,
                    biometric: start.biometric_secret,
                    opened,
                    device_id,
                    id,
                }
            })
            .collect::<Vec<_>>();
        // The public API does let one device key ask twice: same randomness.
        assert_eq!(devices[3].device_id, devices[4].device_id);
        assert_ne!(devices[3].request, devices[4].request);
        assert_eq!(ids.len(), 5);
        assert_eq!(ThrottlePolicy::default().max_failures, MAX_TOTP_FAILURES);
        Universe { servers, offers, devices, ids, memo: Mutex::new(Memo::default()) }
    }

    fn offer_index(&self, offer_id: &str) -> usize {
        self.offers.iter().position(|o| o.record.offer_id == offer_id).unwrap()
    }

    fn id_index(&self, device_id: &str) -> usize {
        self.ids.iter().position(|i| i == device_id).unwrap()
    }
}

// ---------------------------------------------------------------------------
// Memoised pure functions.
// ---------------------------------------------------------------------------

/// What `OpenedLinkRequest::accept` returned.
#[derive(Clone, PartialEq)]
struct Accepted {
    answer: String,
    writes: Vec<Write>,
    events: Vec<PortalEvent>,
    result: Result<Accept>,
}

struct AcceptEntry {
    offer: Option<LinkOfferRecord>,
    value: Accepted,
    verified: bool,
}

/// What the phone made of an answer: its check code and state, or the
/// refusal it read.
type Finished = std::result::Result<(String, DeviceState), ErrorCode>;

#[derive(Default)]
struct Memo {
    /// (device slot, now, key seen) → the offers it was accepted against.
    accept: HashMap<(usize, u64, bool), Vec<AcceptEntry>>,
    finish: HashMap<(usize, String), Finished>,
    /// Fresh `accept` calls that accepted (the costly ones).
    accept_runs: u64,
    finish_runs: u64,
}

/// Memoise unless `TESSERA_SIM_NO_MEMO` is set.
fn memo_by_default() -> bool {
    std::env::var("TESSERA_SIM_NO_MEMO").map_or(true, |v| v.is_empty() || v == "0")
}

/// `accept`, memoised when it accepts (a refusal costs microseconds).
fn accept(
    memo: bool,
    u: &Universe,
    slot: usize,
    server: &Portal,
    offer: Option<&LinkOfferRecord>,
    key_use: DeviceKeyUse,
    now: u64,
) -> Accepted {
    let run = || {
        let out = u.devices[slot].opened.accept(server, offer, key_use, now);
        Accepted {
            answer: out.answer,
            writes: out.outcome.writes,
            events: out.outcome.events,
            result: out.outcome.result,
        }
    };
    if !memo {
        return run();
    }
    let key = (slot, now, key_use == DeviceKeyUse::Seen);
    let cached = {
        let memo = u.memo.lock().unwrap();
        memo.accept
            .get(&key)
            .and_then(|v| v.iter().find(|e| e.offer.as_ref() == offer))
            .map(|e| (e.value.clone(), e.verified))
    };
    match cached {
        Some((value, true)) => value,
        Some((value, false)) => {
            // First reuse: the core must give exactly the same outcome.
            let fresh = run();
            assert!(fresh == value, "accept is not deterministic (slot {slot}, now {now})");
            let mut memo = u.memo.lock().unwrap();
            memo.accept_runs += 1;
            if let Some(e) = memo.accept.get_mut(&key).and_then(|v| v.iter_mut().find(|e| e.offer.as_ref() == offer)) {
                e.verified = true;
            }
            fresh
        }
        None => {
            let fresh = run();
            let mut memo = u.memo.lock().unwrap();
            if fresh.result == Ok(Accept::Accepted) {
                memo.accept_runs += 1;
                let entry = AcceptEntry { offer: offer.cloned(), value: fresh.clone(), verified: false };
                memo.accept.entry(key).or_default().push(entry);
            }
            fresh
        }
    }
}

/// The phone's `finish_link` (device side; memoised on the answer bytes).
fn finish(memo: bool, u: &Universe, slot: usize, answer: &str) -> Finished {
    let run = || {
        let rng = &mut SeededRandom::new([0xf0 ^ DEVICES[slot].key_seed; 32]);
        match link::finish_link(u.devices[slot].pending.clone(), answer, &DEVICE_STORAGE_KEY, rng) {
            Ok(l) => Ok((l.check_code, DeviceState::open(&DEVICE_STORAGE_KEY, &l.state).unwrap())),
            Err(e) => Err(e.code()),
        }
    };
    if !memo {
        return run();
    }
    let key = (slot, answer.to_string());
    if let Some(f) = u.memo.lock().unwrap().finish.get(&key) {
        return f.clone();
    }
    let f = run();
    let mut memo = u.memo.lock().unwrap();
    memo.finish_runs += 1;
    memo.finish.insert(key, f.clone());
    f
}

// ---------------------------------------------------------------------------
// The store.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreMode {
    /// The host contract: versioned compare-and-set, all or nothing.
    Contract,
    /// Broken: ignores `expected_version` (plain upserts).
    LastWriterWins,
    /// Broken: checks each write but applies them one by one, keeping the
    /// writes before a conflict.
    OneByOne,
    /// Broken host on a correct store: the reads of one call come from two
    /// moments (an acceptance reads the offer at READ, and whether the
    /// device id exists only at COMPUTE), not from one snapshot.
    TwoReads,
}

struct Conflict;

#[derive(Default)]
struct Store {
    offers: BTreeMap<String, StoredOffer>,
    pending: BTreeMap<String, StoredPendingLink>,
    devices: BTreeMap<String, StoredDevice>,
}

impl Store {
    /// Does `w` pass its compare-and-set against the current rows?
    fn admits(&self, w: &StoredWrite) -> bool {
        let expected = w.expected_version();
        match w {
            StoredWrite::Offer(r) => self.offers.get(&r.offer_id).map(|s| s.version) == expected,
            // Device ids are unique across pending links and devices.
            StoredWrite::PendingLink(r) if expected.is_none() => {
                !self.pending.contains_key(&r.device_id) && !self.devices.contains_key(&r.device_id)
            }
            StoredWrite::PendingLink(r) => self.pending.get(&r.device_id).map(|s| s.version) == expected,
            StoredWrite::Device(r) => self.devices.get(&r.device_id).map(|s| s.version) == expected,
        }
    }

    fn put(&mut self, w: &StoredWrite) {
        match w {
            StoredWrite::Offer(r) => self.offers.insert(r.offer_id.clone(), r.clone()).map(drop),
            StoredWrite::PendingLink(r) => self.pending.insert(r.device_id.clone(), r.clone()).map(drop),
            StoredWrite::Device(r) => self.devices.insert(r.device_id.clone(), r.clone()).map(drop),
        };
    }

    /// Apply one outcome's writes in one transaction. Returns how many
    /// writes were applied (all of them, except in the broken `OneByOne`).
    fn apply(&mut self, mode: StoreMode, writes: &[StoredWrite]) -> std::result::Result<usize, (Conflict, usize)> {
        match mode {
            StoreMode::Contract | StoreMode::TwoReads => {
                if !writes.iter().all(|w| self.admits(w)) {
                    return Err((Conflict, 0));
                }
                writes.iter().for_each(|w| self.put(w));
            }
            StoreMode::LastWriterWins => writes.iter().for_each(|w| self.put(w)),
            StoreMode::OneByOne => {
                for (i, w) in writes.iter().enumerate() {
                    if !self.admits(w) {
                        return Err((Conflict, i));
                    }
                    self.put(w);
                }
            }
        }
        Ok(writes.len())
    }
}

// ---------------------------------------------------------------------------
// Invariants.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Invariant {
    /// One acceptance and one pending link per offer, which agree.
    QrLinksOnce,
    /// Every accepting answer of an offer has the same bytes.
    SameAnswer,
    /// At most 5 wrong check codes counted and answered, none lost.
    CheckCodeFailures,
    /// A pending link confirms once.
    ConfirmOnce,
    /// One pending link and one device record per device id.
    OneDevicePerId,
    /// A (device, step) is accepted once; steps move forward.
    TotpOnce,
    /// At most 5 TOTP failures before the lock, none lost, none after.
    TotpLockout,
    /// An unlinked device is never active again.
    UnlinkFinal,
    /// Every committed write raises its row's version by exactly 1.
    Versions,
    /// Every answer agrees with the committed state.
    AnswersMatchState,
    /// Stored rows open to what was written.
    Seals,
}

#[derive(Debug)]
struct Violation {
    invariant: Invariant,
    detail: String,
}

/// A failed seed: which invariant, at which step.
#[derive(Debug)]
struct Failure {
    cfg: Config,
    seed: u64,
    step: u64,
    violation: Violation,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = match self.cfg.store {
            StoreMode::Contract => "",
            StoreMode::LastWriterWins => "TESSERA_SIM_STORE=lww ",
            StoreMode::OneByOne => "TESSERA_SIM_STORE=one-by-one ",
            StoreMode::TwoReads => "TESSERA_SIM_STORE=two-reads ",
        };
        write!(
            f,
            "seed {} step {}: {:?}: {} (replay: {store}{}TESSERA_SIM_TRACE={} cargo test -p tessera-core --test \
             contract_sim -- --nocapture the_host_contract)",
            self.seed,
            self.step,
            self.violation.invariant,
            self.violation.detail,
            if self.cfg.strict { "TESSERA_SIM_STRICT=1 " } else { "" },
            self.seed
        )
    }
}

type Checked = std::result::Result<(), Violation>;

/// Return the violation of `$inv`.
macro_rules! fail {
    ($inv:ident, $($fmt:tt)+) => {
        return Err(Violation { invariant: Invariant::$inv, detail: format!($($fmt)+) })
    };
}

/// Unless `$cond` holds, return the violation of `$inv`.
macro_rules! ensure {
    ($cond:expr, $inv:ident, $($fmt:tt)+) => {
        if !$cond {
            fail!($inv, $($fmt)+);
        }
    };
}

/// What the checker counts per offer.
#[derive(Default)]
struct OfferGhost {
    version: u64,
    accept_commits: u32,
    pending_inserts: u32,
    /// The first accepting answer that went out, and to which phone.
    first_answer: Option<(usize, String)>,
}

/// What the checker counts per device id (pending link and device record).
#[derive(Default)]
struct IdGhost {
    pending_version: u64,
    pending_inserts: u32,
    check_code_failures_committed: u32,
    check_code_failures_answered: u32,
    confirms_committed: u32,
    confirms_answered: u32,
    device_version: u64,
    device_inserts: u32,
    /// Commit number of the unlink.
    unlinked_at: Option<u64>,
    locked: bool,
    totp_failures_since_success: u32,
    last_step_accepted: Option<u64>,
    steps_answered: Vec<u64>,
    told_not_confirmed: bool,
}

/// The records as the store holds them, opened after every commit.
#[derive(Default)]
struct Mirror {
    offers: BTreeMap<String, LinkOfferRecord>,
    pending: BTreeMap<String, PendingLinkRecord>,
    devices: BTreeMap<String, DeviceRecord>,
}

// ---------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Kind {
    Accept { slot: usize },
    Confirm { slot: usize, typed: String },
    Totp { slot: usize, code: String },
    Unlink { slot: usize },
    Rename { slot: usize, name: &'static str },
    Status { slot: usize, request: String, probe: StatusProbe },
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::Accept { .. } => "accept",
            Kind::Confirm { .. } => "confirm",
            Kind::Totp { .. } => "verify_totp",
            Kind::Unlink { .. } => "unlink",
            Kind::Rename { .. } => "rename",
            Kind::Status { .. } => "status",
        }
    }
    fn slot(&self) -> usize {
        match self {
            Kind::Accept { slot }
            | Kind::Confirm { slot, .. }
            | Kind::Totp { slot, .. }
            | Kind::Unlink { slot }
            | Kind::Rename { slot, .. }
            | Kind::Status { slot, .. } => *slot,
        }
    }
}

/// The rows an op read.
struct Snapshot {
    offer: Option<StoredOffer>,
    pending: Option<StoredPendingLink>,
    device: Option<StoredDevice>,
}

/// What an op answers.
#[derive(Clone, Debug)]
enum Reply {
    Accept {
        answer: String,
        result: Result<Accept>,
    },
    Confirm(Result<()>),
    Totp(Result<Verified>),
    Admin(Result<()>),
    Status(Result<String>),
    /// The host found no record to work on.
    NoRecord,
}

impl Reply {
    /// For traces: the result without the answer bytes.
    fn summary(&self) -> String {
        match self {
            Reply::Accept { result, .. } => format!("{result:?}"),
            Reply::Confirm(r) | Reply::Admin(r) => format!("{r:?}"),
            Reply::Totp(r) => format!("{r:?}"),
            Reply::Status(r) => format!("{:?}", r.as_ref().map(|_| "status answer")),
            Reply::NoRecord => "no record".into(),
        }
    }
}

/// The next step of an op.
enum Phase {
    Read,
    /// Read: the rows.
    Compute(Box<Snapshot>),
    /// Computed: the outcome's writes (plain and sealed), its event count
    /// and what to answer once they committed.
    Write {
        writes: Vec<Write>,
        sealed: Vec<StoredWrite>,
        events: usize,
        reply: Reply,
    },
    /// Committed (or nothing to write).
    Respond {
        events: usize,
        reply: Reply,
    },
}

struct Op {
    id: u64,
    server: usize,
    kind: Kind,
    phase: Phase,
    /// Commits visible to the op's latest READ.
    read_seq: u64,
    committed: bool,
    retries: u32,
}

// ---------------------------------------------------------------------------
// Actors.
// ---------------------------------------------------------------------------

/// A phone (and its user; the administrator acts on its device id too).
struct Actor {
    slot: usize,
    budget: u32,
    rng: SeededRandom,
    /// After `finish_link` of an accepting answer: the check code to type
    /// and the phone's state.
    linked: Option<(String, DeviceState)>,
    first_answer: Option<String>,
    /// The refusal the phone read (it drops its pending link).
    refused: Option<ErrorCode>,
    /// The user saw the portal confirm the link.
    confirmed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Send,
    WrongCheckCode,
    RightCheckCode,
    RightTotp,
    WrongTotp,
    Status,
    Unlink,
    Rename,
}

// ---------------------------------------------------------------------------
// Scheduler randomness.
// ---------------------------------------------------------------------------

/// xorshift64*, seeded through SplitMix64 so nearby seeds are unrelated.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0; the bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    /// One of `menu`, with probability proportional to its weight.
    fn weighted<T: Copy>(&mut self, menu: &[(T, u64)]) -> T {
        let mut r = self.below(menu.iter().map(|(_, w)| w).sum());
        for &(item, w) in menu {
            if r < w {
                return item;
            }
            r -= w;
        }
        unreachable!()
    }
    fn bytes(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        b
    }
}

// ---------------------------------------------------------------------------
// Statistics.
// ---------------------------------------------------------------------------

#[derive(Default, Clone, PartialEq, Debug)]
struct Stats {
    seeds: u64,
    steps: u64,
    started: BTreeMap<&'static str, u64>,
    answered: BTreeMap<(&'static str, &'static str), u64>,
    commits: u64,
    conflicts: u64,
    crashed_before_write: u64,
    crashed_after_write: u64,
    events: u64,
    max_retries: u32,
    max_concurrent: usize,
    /// A refusal computed from a read older than the acceptance of the very
    /// same request (a no-write answer needs no compare-and-set).
    stale_refusals: u64,
    /// A phone told "never confirmed" whose confirmation committed later.
    confirmed_after_not_confirmed: u64,
}

impl Stats {
    fn merge(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.steps += o.steps;
        for (k, v) in &o.started {
            *self.started.entry(k).or_default() += v;
        }
        for (k, v) in &o.answered {
            *self.answered.entry(*k).or_default() += v;
        }
        self.commits += o.commits;
        self.conflicts += o.conflicts;
        self.crashed_before_write += o.crashed_before_write;
        self.crashed_after_write += o.crashed_after_write;
        self.events += o.events;
        self.max_retries = self.max_retries.max(o.max_retries);
        self.max_concurrent = self.max_concurrent.max(o.max_concurrent);
        self.stale_refusals += o.stale_refusals;
        self.confirmed_after_not_confirmed += o.confirmed_after_not_confirmed;
    }

    fn print(&self, elapsed: f64) {
        println!(
            "contract_sim: {} seeds in {:.2} s ({:.0} seeds/s), {} steps, {} commits, {} conflicts (retried), \
             max {} retries of one op, max {} ops in flight",
            self.seeds,
            elapsed,
            self.seeds as f64 / elapsed.max(1e-9),
            self.steps,
            self.commits,
            self.conflicts,
            self.max_retries,
            self.max_concurrent
        );
        println!(
            "  crashed between read and write: {}, after write before the answer: {}; events acted on: {}",
            self.crashed_before_write, self.crashed_after_write, self.events
        );
        println!(
            "  observations: stale refusals of an accepted request: {}; confirmed after the phone was told \
             NOT_CONFIRMED: {}",
            self.stale_refusals, self.confirmed_after_not_confirmed
        );
        for (kind, n) in &self.started {
            println!("  {kind:<12} started {n}");
            for ((k, result), m) in &self.answered {
                if k == kind {
                    println!("  {:<12}   {result:<24} {m}", "");
                }
            }
        }
        let memo = Universe::get().memo.lock().unwrap();
        if memo_by_default() {
            println!(
                "  memo (whole process): {} acceptances and {} finish_link computed, the rest reused",
                memo.accept_runs, memo.finish_runs
            );
        } else {
            println!("  memo off (TESSERA_SIM_NO_MEMO): every acceptance and finish_link computed");
        }
    }
}

fn result_label<T>(r: &Result<T>, ok: &'static str) -> &'static str {
    match r {
        Ok(_) => ok,
        Err(e) => e.code().as_str(),
    }
}

// ---------------------------------------------------------------------------
// One seed.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Config {
    store: StoreMode,
    /// Check the version invariant (off: only the protocol's invariants).
    check_versions: bool,
    /// Memoise `accept` and `finish_link`.
    memo: bool,
    /// Fail on the observations too (stale `TOKEN_EXPIRED`, confirmed
    /// after `LINK_NOT_CONFIRMED`); `TESSERA_SIM_STRICT=1`.
    strict: bool,
    trace: bool,
}

impl Config {
    fn contract() -> Config {
        Config {
            store: StoreMode::Contract,
            check_versions: true,
            memo: memo_by_default(),
            strict: std::env::var_os("TESSERA_SIM_STRICT").is_some(),
            trace: false,
        }
    }
}

struct Sim {
    u: &'static Universe,
    cfg: Config,
    seed: u64,
    rng: Rng,
    now: u64,
    step: u64,
    store: Store,
    mirror: Mirror,
    seal_rngs: Vec<SeededRandom>,
    ops: Vec<Op>,
    next_op: u64,
    actors: Vec<Actor>,
    offers: Vec<OfferGhost>,
    ids: Vec<IdGhost>,
    commit_seq: u64,
    stats: Stats,
    // Per-seed scheduling weights (percent-like).
    w_op: u64,
    w_act: u64,
    w_tick: u64,
    crash_pct: u64,
    /// Chance that a tick jumps a minute to ten.
    jump_pct: u64,
}

impl Sim {
    fn new(seed: u64, cfg: Config) -> Sim {
        let u = Universe::get();
        let mut rng = Rng::new(seed);
        let seal_rngs = (0..SERVERS).map(|_| SeededRandom::new(rng.bytes())).collect();
        let mut sim = Sim {
            u,
            cfg,
            seed,
            now: T0,
            step: 0,
            store: Store::default(),
            mirror: Mirror::default(),
            seal_rngs,
            ops: Vec::new(),
            next_op: 0,
            actors: Vec::new(),
            offers: OFFERS.iter().map(|_| OfferGhost::default()).collect(),
            ids: u.ids.iter().map(|_| IdGhost::default()).collect(),
            commit_seq: 0,
            stats: Stats { seeds: 1, ..Stats::default() },
            w_op: rng.range(50, 80),
            w_act: rng.range(5, 30),
            w_tick: rng.range(3, 20),
            crash_pct: rng.range(0, 8),
            jump_pct: [0, 1, 3, 10][rng.below(4) as usize],
            rng,
        };
        for (slot, _) in DEVICES.iter().enumerate() {
            if sim.rng.percent(70) {
                let (budget, r) = (sim.rng.range(3, 14) as u32, sim.rng.bytes());
                sim.actors.push(Actor {
                    slot,
                    budget,
                    rng: SeededRandom::new(r),
                    linked: None,
                    first_answer: None,
                    refused: None,
                    confirmed: false,
                });
            }
        }
        sim
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.cfg.trace {
            println!("[t+{:>4} step {:>4}] {}", self.now - T0, self.step, what());
        }
    }

    fn run(mut self) -> std::result::Result<Stats, Failure> {
        match self.run_inner() {
            Ok(()) => Ok(self.stats),
            Err(violation) => Err(Failure { cfg: self.cfg, seed: self.seed, step: self.step, violation }),
        }
    }

    fn run_inner(&mut self) -> Checked {
        // The portal creates the offers (most of them: a phone may also scan
        // a QR code whose offer the portal never stored).
        for (i, offer) in self.u.offers.iter().enumerate() {
            if self.rng.percent(85) {
                let w = Write::Offer(offer.record.clone());
                let sealed = vec![self.u.servers[0].store_write(&w, &mut self.seal_rngs[0])];
                let applied = self.store.apply(self.cfg.store, &sealed);
                assert!(applied.is_ok(), "offer {i} could not be inserted");
                self.committed(0, &[w], &sealed, None)?;
            }
        }
        loop {
            self.check_state()?;
            let can_act = self.actors.iter().any(|a| a.budget > 0);
            let w_op = if self.ops.is_empty() { 0 } else { self.w_op };
            let w_act = if can_act { self.w_act } else { 0 };
            if w_op + w_act == 0 {
                return Ok(());
            }
            self.step += 1;
            assert!(self.step < MAX_STEPS, "seed {}: no progress after {MAX_STEPS} steps", self.seed);
            self.stats.steps += 1;
            let r = self.rng.below(w_op + w_act + self.w_tick);
            if r < w_op {
                let i = self.rng.below(self.ops.len() as u64) as usize;
                self.step_op(i)?;
            } else if r < w_op + w_act {
                self.act();
            } else {
                self.tick();
            }
        }
    }

    /// The virtual clock: mostly a second, sometimes past a TOTP step, an
    /// offer's or a check code's deadline.
    fn tick(&mut self) {
        let dt = if self.rng.percent(self.jump_pct) {
            self.rng.range(60, 700)
        } else {
            match self.rng.below(100) {
                0..=74 => 1,
                75..=94 => self.rng.range(2, 9),
                _ => self.rng.range(10, 59),
            }
        };
        self.now += dt;
        self.trace(|| format!("clock +{dt} s"));
    }

    // -- actors -------------------------------------------------------------

    fn act(&mut self) {
        let u = self.u;
        let ready = self.actors.iter().filter(|a| a.budget > 0).count() as u64;
        let nth = self.rng.below(ready) as usize;
        let ai = self.actors.iter().enumerate().filter(|(_, a)| a.budget > 0).nth(nth).unwrap().0;
        self.actors[ai].budget -= 1;
        let slot = self.actors[ai].slot;
        use Action::*;
        // What a phone does depends on what it knows: nothing yet, its check
        // code (linked, not confirmed), or that the portal confirmed it.
        let a = &self.actors[ai];
        let menu: &[(Action, u64)] = match (&a.linked, a.confirmed) {
            (None, _) => &[(Send, 80), (WrongCheckCode, 8), (Unlink, 4), (Rename, 2)],
            (Some(_), false) => &[
                (RightCheckCode, 30),
                (WrongCheckCode, 20),
                (Send, 10),
                (Status, 15),
                (RightTotp, 8),
                (WrongTotp, 4),
                (Unlink, 6),
                (Rename, 2),
            ],
            (Some(_), true) => &[
                (RightTotp, 30),
                (WrongTotp, 14),
                (Status, 18),
                (Unlink, 12),
                (Rename, 5),
                (RightCheckCode, 5),
                (WrongCheckCode, 5),
                (Send, 5),
            ],
        };
        let action = self.rng.weighted(menu);
        let now = self.now;
        let kinds: Vec<Kind> = match action {
            Send => {
                let n = self.rng.range(1, 3);
                (0..n).map(|_| Kind::Accept { slot }).collect()
            }
            WrongCheckCode => {
                let (prefix, delta, guess) =
                    (self.rng.percent(10), self.rng.range(1, 999_999), self.rng.below(1_000_000));
                let typed = match &self.actors[ai].linked {
                    // A 5-digit prefix of a code is a wrong code too.
                    _ if prefix => "12345".to_string(),
                    Some((right, _)) => format!("{:06}", (right.parse::<u64>().unwrap() + delta) % 1_000_000),
                    // An attacker guessing at the portal.
                    None => format!("{guess:06}"),
                };
                let n = self.rng.range(1, 6);
                (0..n).map(|_| Kind::Confirm { slot, typed: typed.clone() }).collect()
            }
            RightCheckCode => {
                let typed = self.actors[ai].linked.as_ref().unwrap().0.clone();
                let n = self.rng.range(1, 3);
                (0..n).map(|_| Kind::Confirm { slot, typed: typed.clone() }).collect()
            }
            RightTotp => {
                let bio = u.devices[slot].biometric.as_ref().filter(|_| self.rng.percent(50));
                let factor = match bio {
                    Some(b) => UserFactor::Biometric(b.expose()),
                    None => UserFactor::Passcode(DEVICES[slot].passcode),
                };
                let code = self.actors[ai].linked.as_ref().unwrap().1.totp(factor, now).unwrap();
                let n = self.rng.range(1, 4);
                (0..n).map(|_| Kind::Totp { slot, code: code.clone() }).collect()
            }
            WrongTotp => {
                let code = match self.rng.below(10) {
                    0 => "12a456".to_string(),
                    1 | 2 => format!("{:06}", self.rng.below(1_000_000)),
                    _ => self.actors[ai].linked.as_ref().unwrap().1.totp(UserFactor::Passcode("000111"), now).unwrap(),
                };
                let n = self.rng.range(1, 6);
                (0..n).map(|_| Kind::Totp { slot, code: code.clone() }).collect()
            }
            Status => {
                // Sometimes replayed: the same request twice.
                let n = self.rng.range(1, 2);
                let actor = &mut self.actors[ai];
                match &actor.linked {
                    // A phone that never linked has nothing to ask with.
                    None => vec![],
                    Some((_, state)) => {
                        let (request, probe) = state.status_request(now, &mut actor.rng).unwrap();
                        (0..n).map(|_| Kind::Status { slot, request: request.clone(), probe: probe.clone() }).collect()
                    }
                }
            }
            Unlink => {
                let n = self.rng.range(1, 2);
                (0..n).map(|_| Kind::Unlink { slot }).collect()
            }
            Rename => vec![Kind::Rename { slot, name: if self.rng.percent(50) { "Lost phone" } else { "Work phone" } }],
        };
        self.trace(|| format!("phone {slot} does {action:?} ({} ops)", kinds.len()));
        for kind in kinds {
            let server = self.rng.below(SERVERS as u64) as usize;
            *self.stats.started.entry(kind.label()).or_default() += 1;
            self.ops.push(Op {
                id: self.next_op,
                server,
                kind,
                phase: Phase::Read,
                read_seq: 0,
                committed: false,
                retries: 0,
            });
            self.next_op += 1;
        }
        self.stats.max_concurrent = self.stats.max_concurrent.max(self.ops.len());
    }

    // -- ops ----------------------------------------------------------------

    fn step_op(&mut self, i: usize) -> Checked {
        let mut op = self.ops.swap_remove(i);
        let crash = match op.phase {
            Phase::Read => false,
            Phase::Compute(_) | Phase::Write { .. } | Phase::Respond { .. } => self.rng.percent(self.crash_pct),
        };
        if crash {
            if matches!(op.phase, Phase::Respond { .. }) {
                self.stats.crashed_after_write += 1;
            } else {
                self.stats.crashed_before_write += 1;
            }
            self.trace(|| format!("op {} ({}) crashed", op.id, op.kind.label()));
            return Ok(());
        }
        op.phase = match std::mem::replace(&mut op.phase, Phase::Read) {
            Phase::Read => {
                op.read_seq = self.commit_seq;
                self.trace(|| {
                    format!(
                        "op {} ({} of phone {}) reads after commit #{}",
                        op.id,
                        op.kind.label(),
                        op.kind.slot(),
                        op.read_seq
                    )
                });
                Phase::Compute(Box::new(self.read(&op.kind)))
            }
            Phase::Compute(snap) => self.compute(&op, snap)?,
            Phase::Write { writes, sealed, events, reply } => {
                if sealed.is_empty() {
                    Phase::Respond { events, reply }
                } else {
                    match self.store.apply(self.cfg.store, &sealed) {
                        Ok(_) => {
                            self.committed(op.server, &writes, &sealed, Some(&reply))?;
                            op.committed = true;
                            self.trace(|| {
                                format!("op {} ({}) committed {} writes", op.id, op.kind.label(), writes.len())
                            });
                            Phase::Respond { events, reply }
                        }
                        Err((Conflict, applied)) => {
                            // The broken one-by-one store keeps a prefix.
                            if applied > 0 {
                                self.committed(op.server, &writes[..applied], &sealed[..applied], Some(&reply))?;
                            }
                            self.stats.conflicts += 1;
                            op.retries += 1;
                            self.stats.max_retries = self.stats.max_retries.max(op.retries);
                            self.trace(|| format!("op {} ({}) conflict: read again", op.id, op.kind.label()));
                            Phase::Read
                        }
                    }
                }
            }
            Phase::Respond { events, reply } => {
                self.stats.events += events as u64;
                return self.respond(&op, reply);
            }
        };
        self.ops.push(op);
        Ok(())
    }

    /// READ: copy the rows the op needs (a status request names its device
    /// id, `OpenedStatusRequest::device_id`: the phone's).
    fn read(&self, kind: &Kind) -> Snapshot {
        let p = &self.u.devices[kind.slot()];
        let s = &self.store;
        let id = &p.device_id;
        match kind {
            Kind::Accept { .. } => Snapshot {
                offer: s.offers.get(p.opened.offer_id()).cloned(),
                // Only whether the device id exists matters.
                pending: s.pending.get(id).cloned(),
                device: s.devices.get(id).cloned(),
            },
            Kind::Confirm { .. } => Snapshot { offer: None, pending: s.pending.get(id).cloned(), device: None },
            Kind::Totp { .. } | Kind::Unlink { .. } | Kind::Rename { .. } => {
                Snapshot { offer: None, pending: None, device: s.devices.get(id).cloned() }
            }
            Kind::Status { .. } => {
                Snapshot { offer: None, pending: s.pending.get(id).cloned(), device: s.devices.get(id).cloned() }
            }
        }
    }

    /// COMPUTE: open the rows and ask the core.
    fn compute(&mut self, op: &Op, snap: Box<Snapshot>) -> std::result::Result<Phase, Violation> {
        let server = &self.u.servers[op.server];
        let now = self.now;
        // A row that does not open (STATE_CORRUPT) would be a broken seal.
        let corrupt = |e: tessera_core::Error| Violation { invariant: Invariant::Seals, detail: format!("{e:?}") };
        let offer = snap.offer.as_ref().map(|r| server.open_offer(r)).transpose().map_err(corrupt)?;
        let pending = snap.pending.as_ref().map(|r| server.open_pending(r)).transpose().map_err(corrupt)?;
        let device = snap.device.as_ref().map(|r| server.open_device(r)).transpose().map_err(corrupt)?;
        let (writes, events, reply) = match &op.kind {
            Kind::Accept { slot } => {
                let exists = match self.cfg.store {
                    // The broken host reads the device id now, not with the offer.
                    StoreMode::TwoReads => {
                        let id = &self.u.devices[*slot].device_id;
                        self.store.pending.contains_key(id) || self.store.devices.contains_key(id)
                    }
                    _ => pending.is_some() || device.is_some(),
                };
                let seen = if exists { DeviceKeyUse::Seen } else { DeviceKeyUse::Fresh };
                let a = accept(self.cfg.memo, self.u, *slot, server, offer.as_ref(), seen, now);
                (a.writes, a.events.len(), Reply::Accept { answer: a.answer, result: a.result })
            }
            Kind::Confirm { typed, .. } => match &pending {
                None => (vec![], 0, Reply::NoRecord),
                Some(p) => {
                    let o = server.confirm_link(p, typed, now);
                    // The result is the device record the outcome writes.
                    if let Ok(d) = &o.result {
                        assert!(o.writes.iter().any(|w| matches!(w, Write::Device(r) if r == d)));
                    }
                    (o.writes, o.events.len(), Reply::Confirm(o.result.map(|_| ())))
                }
            },
            Kind::Totp { code, .. } => match &device {
                None => (vec![], 0, Reply::NoRecord),
                Some(d) => {
                    let o = d.verify_totp(code, now);
                    (o.writes, o.events.len(), Reply::Totp(o.result))
                }
            },
            Kind::Unlink { .. } | Kind::Rename { .. } => match &device {
                None => (vec![], 0, Reply::NoRecord),
                Some(d) => {
                    let o = match &op.kind {
                        Kind::Rename { name, .. } => d.rename(name, now),
                        _ => d.unlink(now),
                    };
                    (o.writes, o.events.len(), Reply::Admin(o.result))
                }
            },
            Kind::Status { request, .. } => {
                let r =
                    server.open_status_request(request).and_then(|s| s.answer(device.as_ref(), pending.as_ref(), now));
                (vec![], 0, Reply::Status(r))
            }
        };
        self.trace(|| {
            format!("op {} ({}) computes: {} writes, {}", op.id, op.kind.label(), writes.len(), reply.summary())
        });
        let rng = &mut self.seal_rngs[op.server];
        let sealed = writes.iter().map(|w| server.store_write(w, rng)).collect();
        Ok(Phase::Write { writes, sealed, events, reply })
    }

    // -- the checker ----------------------------------------------------------

    /// Book-keeping of committed writes, and the checks that belong to the
    /// moment of a commit. `reply` is what the op will answer (`None`: the
    /// portal inserting an offer).
    fn committed(&mut self, server: usize, writes: &[Write], sealed: &[StoredWrite], reply: Option<&Reply>) -> Checked {
        self.commit_seq += 1;
        self.stats.commits += 1;
        for (w, row) in writes.iter().zip(sealed) {
            self.mirror_row(server, w, row)?;
            match w {
                Write::Offer(r) => self.count_offer_write(r, reply)?,
                Write::PendingLink(r) => self.count_pending_write(r, reply)?,
                Write::Device(r) => self.count_device_write(r, reply)?,
                Write::Challenge(_) => unreachable!("the simulation issues no challenges yet"),
            }
        }
        Ok(())
    }

    /// Copy a committed write into the mirror; the row the store now holds
    /// must open to exactly that record.
    fn mirror_row(&mut self, server: usize, w: &Write, row: &StoredWrite) -> Checked {
        let (portal, s, m) = (&self.u.servers[server], &self.store, &mut self.mirror);
        let opens_to_it = match (w, row) {
            (Write::Offer(r), StoredWrite::Offer(k)) => {
                m.offers.insert(r.offer_id.clone(), r.clone());
                portal.open_offer(&s.offers[&k.offer_id]).ok().as_ref() == Some(r)
            }
            (Write::PendingLink(r), StoredWrite::PendingLink(k)) => {
                m.pending.insert(r.device_id.clone(), r.clone());
                portal.open_pending(&s.pending[&k.device_id]).ok().as_ref() == Some(r)
            }
            (Write::Device(r), StoredWrite::Device(k)) => {
                m.devices.insert(r.device_id.clone(), r.clone());
                portal.open_device(&s.devices[&k.device_id]).ok().as_ref() == Some(r)
            }
            _ => false,
        };
        ensure!(opens_to_it, Seals, "the row of {} does not open to the record written", w.key());
        Ok(())
    }

    /// An offer write: how often the offer was accepted.
    fn count_offer_write(&mut self, r: &LinkOfferRecord, reply: Option<&Reply>) -> Checked {
        let (i, check) = (self.u.offer_index(&r.offer_id), self.cfg.check_versions);
        let g = &mut self.offers[i];
        bump(check, &r.offer_id, &mut g.version, r.version)?;
        if let Some(Reply::Accept { result: Ok(Accept::Accepted), .. }) = reply {
            g.accept_commits += 1;
            ensure!(g.accept_commits <= 1, QrLinksOnce, "offer {} accepted {} times", r.offer_id, g.accept_commits);
        }
        Ok(())
    }

    /// A pending-link write: one per offer and per device id; wrong codes
    /// and confirmations counted.
    fn count_pending_write(&mut self, r: &PendingLinkRecord, reply: Option<&Reply>) -> Checked {
        let (u, check, id) = (self.u, self.cfg.check_versions, r.device_id.as_str());
        if r.version == 1 {
            let g = &mut self.offers[u.offer_index(&r.offer_id)];
            g.pending_inserts += 1;
            ensure!(
                g.pending_inserts <= 1,
                QrLinksOnce,
                "offer {} has {} pending links",
                r.offer_id,
                g.pending_inserts
            );
        }
        let g = &mut self.ids[u.id_index(id)];
        bump(check, id, &mut g.pending_version, r.version)?;
        if r.version == 1 {
            g.pending_inserts += 1;
            ensure!(g.pending_inserts <= 1, OneDevicePerId, "device id {id} has {} pending links", g.pending_inserts);
        }
        match reply {
            Some(Reply::Confirm(Err(e))) if is_check_code_failure(e.code()) => {
                g.check_code_failures_committed += 1;
                let n = g.check_code_failures_committed;
                ensure!(n <= MAX_CONFIRM_ATTEMPTS, CheckCodeFailures, "{n} wrong check codes counted for {id}");
            }
            Some(Reply::Confirm(Ok(()))) => {
                g.confirms_committed += 1;
                ensure!(g.confirms_committed <= 1, ConfirmOnce, "{id} confirmed {} times", g.confirms_committed);
            }
            _ => {}
        }
        Ok(())
    }

    /// A device write: inserted once, unlinked for good; TOTP successes and
    /// failures counted.
    fn count_device_write(&mut self, r: &DeviceRecord, reply: Option<&Reply>) -> Checked {
        let (u, check, id, seq) = (self.u, self.cfg.check_versions, r.device_id.as_str(), self.commit_seq);
        let g = &mut self.ids[u.id_index(id)];
        bump(check, id, &mut g.device_version, r.version)?;
        if r.version == 1 {
            g.device_inserts += 1;
            ensure!(g.device_inserts <= 1, OneDevicePerId, "device {id} inserted {} times", g.device_inserts);
            if g.told_not_confirmed {
                ensure!(!self.cfg.strict, AnswersMatchState, "{id} confirmed after the phone was told NOT_CONFIRMED");
                self.stats.confirmed_after_not_confirmed += 1;
            }
        }
        match (g.unlinked_at, r.status) {
            (Some(at), DeviceStatus::Active) => {
                fail!(UnlinkFinal, "{id} written back as active after its unlink #{at}")
            }
            (None, DeviceStatus::Unlinked { .. }) => g.unlinked_at = Some(seq),
            _ => {}
        }
        match reply {
            Some(Reply::Totp(Ok(v))) => {
                let (step, last) = (v.matched, g.last_step_accepted);
                ensure!(!g.locked, TotpLockout, "{id} accepted a code after its lock");
                ensure!(last.is_none_or(|l| step > l), TotpOnce, "{id} accepted step {step} after {last:?}");
                g.last_step_accepted = Some(step);
                g.totp_failures_since_success = 0;
            }
            // Every refused code that writes was counted as a failure.
            Some(Reply::Totp(Err(_))) => {
                g.totp_failures_since_success += 1;
                let n = g.totp_failures_since_success;
                ensure!(n <= MAX_TOTP_FAILURES, TotpLockout, "{n} failures counted for {id} without a lock");
                g.locked |= r.otp_state.throttle.lock != Lock::Unlocked;
            }
            _ => {}
        }
        Ok(())
    }

    /// The invariants over the whole committed state, after every step.
    fn check_state(&self) -> Checked {
        let (u, m, check) = (self.u, &self.mirror, self.cfg.check_versions);
        for (offer_id, o) in &m.offers {
            let g = &self.offers[u.offer_index(offer_id)];
            let mut links = m.pending.values().filter(|p| p.offer_id == *offer_id);
            let (link, second) = (links.next(), links.next());
            ensure!(second.is_none(), QrLinksOnce, "offer {offer_id} has two pending links");
            match &o.state {
                OfferState::Open => ensure!(link.is_none(), QrLinksOnce, "open offer {offer_id} has a pending link"),
                OfferState::Expired { .. } => {
                    ensure!(link.is_none(), QrLinksOnce, "expired offer {offer_id} has a pending link")
                }
                OfferState::Used { device_id, answer, .. } => {
                    let agree = link.is_some_and(|p| p.device_id == *device_id && p.account == o.account);
                    ensure!(agree, QrLinksOnce, "offer {offer_id}, used by {device_id}, has not its pending link");
                    let as_sent = g.first_answer.as_ref().is_none_or(|(_, a)| a == answer);
                    ensure!(as_sent, SameAnswer, "offer {offer_id} holds another answer than the one sent");
                }
            }
            version_is(check, offer_id, o.version, g.version)?;
        }
        for (id, p) in &m.pending {
            let g = &self.ids[u.id_index(id)];
            let owns = m.offers.get(&p.offer_id).is_some_and(|o| used_by(o, id));
            ensure!(owns, QrLinksOnce, "pending link {id} does not own its offer");
            let counted = g.check_code_failures_committed;
            match p.state {
                PendingState::Open { attempts } => {
                    let attempts = attempts.failures();
                    ensure!(attempts == counted, CheckCodeFailures, "{id} holds {attempts} wrong codes of {counted}")
                }
                PendingState::Cancelled { reason: CancelReason::LockedOut, .. } => {
                    ensure!(counted == MAX_CONFIRM_ATTEMPTS, CheckCodeFailures, "{id} locked out after {counted}")
                }
                PendingState::Confirmed { .. } => {
                    ensure!(m.devices.contains_key(id), OneDevicePerId, "{id} confirmed without a device record")
                }
                PendingState::Cancelled { .. } => {}
            }
            version_is(check, id, p.version, g.pending_version)?;
        }
        for (id, d) in &m.devices {
            let g = &self.ids[u.id_index(id)];
            let confirmed = m
                .pending
                .get(id)
                .is_some_and(|p| p.account == d.account && matches!(p.state, PendingState::Confirmed { .. }));
            ensure!(confirmed, OneDevicePerId, "device {id} has no confirmed link of its account");
            ensure!(g.unlinked_at.is_none() || is_unlinked(d), UnlinkFinal, "device {id} is active again");
            let (failures, counted) =
                (d.otp_state.throttle.consecutive_failures.failures(), g.totp_failures_since_success);
            ensure!(failures == counted, TotpLockout, "device {id} holds {failures} failures of {counted}");
            let (last, accepted) = (d.otp_state.last_accepted, g.last_step_accepted);
            ensure!(last == accepted, TotpOnce, "device {id} holds last step {last:?}, the last accepted {accepted:?}");
            version_is(check, id, d.version, g.device_version)?;
        }
        Ok(())
    }

    /// RESPOND: the answer reaches the phone or the user; check it against
    /// the committed state.
    fn respond(&mut self, op: &Op, reply: Reply) -> Checked {
        let label = match &reply {
            Reply::Accept { answer, result } => self.answer_accept(op, answer, result)?,
            Reply::Confirm(r) => self.answer_confirm(op, r)?,
            Reply::Totp(r) => self.answer_totp(op, r)?,
            Reply::Admin(r) => self.answer_admin(op, r)?,
            Reply::Status(r) => self.answer_status(op, r)?,
            Reply::NoRecord => "NO_RECORD",
        };
        self.trace(|| format!("op {} ({}) answers {label}", op.id, op.kind.label()));
        *self.stats.answered.entry((op.kind.label(), label)).or_default() += 1;
        Ok(())
    }

    /// A link answer agrees with the committed offer and pending link and
    /// has the same bytes every time; then the phone reads it.
    fn answer_accept(&mut self, op: &Op, answer: &str, result: &Result<Accept>) -> Labelled {
        let (u, slot) = (self.u, op.kind.slot());
        let (oi, id) = (DEVICES[slot].offer, u.devices[slot].device_id.as_str());
        let offer_id = u.offers[oi].record.offer_id.as_str();
        let m = &self.mirror;
        let offer = m.offers.get(offer_id);
        if let Err(e) = result {
            if offer.is_some_and(|o| used_by(o, id)) {
                // A refusal (final on the phone) of a request whose acceptance
                // committed. One snapshot per call rules it out; an expiry
                // refusal closes the offer with a write, so one computed from
                // a snapshot older than the acceptance loses its
                // compare-and-set and is computed again.
                fail!(AnswersMatchState, "phone {slot} refused {:?} after its acceptance committed", e.code());
            }
        }
        match result {
            Ok(how) => {
                ensure!(*how == Accept::Repeated || op.committed, AnswersMatchState, "accepted before committing");
                let held = offer.is_some_and(|o| {
                    used_by(o, id) && matches!(&o.state, OfferState::Used { answer: a, .. } if a == answer)
                });
                ensure!(held, AnswersMatchState, "phone {slot} accepted, offer {oi} holds no such answer for it");
                let linked = m.pending.get(id).is_some_and(|l| l.offer_id == offer_id);
                ensure!(linked, AnswersMatchState, "phone {slot} accepted without a pending link");
                let g = &mut self.offers[oi];
                match &g.first_answer {
                    None => g.first_answer = Some((slot, answer.to_string())),
                    Some((s, a)) => {
                        ensure!(
                            *s == slot && a == answer,
                            SameAnswer,
                            "offer {oi} answered phone {s}, then {slot} otherwise"
                        )
                    }
                }
            }
            Err(e) => match e.code() {
                ErrorCode::TokenAlreadyUsed => {
                    let by_other = offer.is_some_and(|o| matches!(o.state, OfferState::Used { .. }) && !used_by(o, id));
                    ensure!(by_other, AnswersMatchState, "TOKEN_ALREADY_USED, but offer {oi} is not another's")
                }
                ErrorCode::TokenUnknown => {
                    ensure!(offer.is_none(), AnswersMatchState, "TOKEN_UNKNOWN, offer {oi} exists")
                }
                ErrorCode::DeviceAlreadyLinked => {
                    ensure!(m.pending.contains_key(id), AnswersMatchState, "DEVICE_ALREADY_LINKED, {id} is not")
                }
                ErrorCode::TokenExpired => {}
                c => fail!(AnswersMatchState, "unexpected refusal {c:?}"),
            },
        }
        self.phone_reads_answer(slot, answer, result)?;
        Ok(match result {
            Ok(Accept::Accepted) => "ACCEPTED",
            Ok(Accept::Repeated) => "REPEATED",
            Err(e) => e.code().as_str(),
        })
    }

    /// The phone reads a link answer: `finish_link` on the first one (it
    /// must agree with what the portal decided), byte equality afterwards.
    fn phone_reads_answer(&mut self, slot: usize, answer: &str, result: &Result<Accept>) -> Checked {
        let u = self.u;
        let actor = self.actors.iter_mut().find(|a| a.slot == slot).unwrap();
        if let Some(first) = &actor.first_answer {
            ensure!(result.is_err() || first == answer, SameAnswer, "phone {slot} got two different acceptances");
        } else if actor.refused.is_none() {
            match finish(self.cfg.memo, u, slot, answer) {
                Ok(linked) => {
                    ensure!(result.is_ok(), AnswersMatchState, "phone {slot} finished a link the portal refused");
                    actor.linked = Some(linked);
                    actor.first_answer = Some(answer.to_string());
                }
                Err(code) => {
                    let decided = result.as_ref().err().map(|e| e.code());
                    ensure!(decided == Some(code), AnswersMatchState, "phone {slot} read {code:?}, portal: {result:?}");
                    actor.refused = Some(code);
                }
            }
        }
        Ok(())
    }

    /// A check-code answer: confirmations and counted wrong codes only
    /// after their write, at most one confirmation and five wrong codes.
    fn answer_confirm(&mut self, op: &Op, r: &Result<()>) -> Labelled {
        let (u, slot) = (self.u, op.kind.slot());
        let id = u.devices[slot].device_id.as_str();
        let (m, g) = (&self.mirror, &mut self.ids[u.devices[slot].id]);
        match r {
            Ok(()) => {
                ensure!(op.committed, AnswersMatchState, "{id}: confirmed before committing");
                ensure!(m.devices.contains_key(id), AnswersMatchState, "{id} confirmed without a device record");
                g.confirms_answered += 1;
                ensure!(g.confirms_answered <= 1, ConfirmOnce, "{id}: {} confirmations answered", g.confirms_answered);
                self.actors.iter_mut().filter(|a| a.slot == slot).for_each(|a| a.confirmed = true);
            }
            Err(e) if is_check_code_failure(e.code()) => {
                ensure!(op.committed, AnswersMatchState, "{id}: wrong code answered before it was counted");
                g.check_code_failures_answered += 1;
                let (n, counted) = (g.check_code_failures_answered, g.check_code_failures_committed);
                let ok = n <= counted && n <= MAX_CONFIRM_ATTEMPTS;
                ensure!(ok, CheckCodeFailures, "{id}: {n} wrong codes answered, {counted} counted");
            }
            Err(e) if e.code() == ErrorCode::TokenExpired => {
                ensure!(op.committed, AnswersMatchState, "{id}: expiry answered before it was written")
            }
            Err(e) if e.code() == ErrorCode::InvalidState => {
                let closed = m.pending.get(id).is_some_and(|l| l.is_closed());
                ensure!(closed, AnswersMatchState, "{id}: INVALID_STATE, but the link is open")
            }
            Err(e) => fail!(AnswersMatchState, "{id}: unexpected confirm error {:?}", e.code()),
        }
        Ok(result_label(r, "CONFIRMED"))
    }

    /// A TOTP answer: an accepted step once, only after its write; a
    /// refusal counted or true of the stored record.
    fn answer_totp(&mut self, op: &Op, r: &Result<Verified>) -> Labelled {
        let (u, slot) = (self.u, op.kind.slot());
        let id = u.devices[slot].device_id.as_str();
        let (device, g) = (self.mirror.devices.get(id), &mut self.ids[u.devices[slot].id]);
        match r {
            Ok(v) => {
                let step = v.matched;
                ensure!(op.committed, AnswersMatchState, "{id}: code accepted before committing");
                ensure!(!g.steps_answered.contains(&step), TotpOnce, "{id}: step {step} accepted twice");
                g.steps_answered.push(step);
                let stored = device.is_some_and(|d| d.otp_state.last_accepted.is_some_and(|l| l >= step));
                ensure!(stored, AnswersMatchState, "{id}: accepted step {step} is not stored");
            }
            Err(e) => match e.code() {
                ErrorCode::OtpMismatch | ErrorCode::OtpReplayed | ErrorCode::InvalidInput => {
                    ensure!(op.committed, AnswersMatchState, "{id}: {:?} answered before it was counted", e.code())
                }
                ErrorCode::LockedOut => {
                    let locked = device.is_some_and(|d| d.otp_state.throttle.lock != Lock::Unlocked);
                    ensure!(locked, AnswersMatchState, "{id}: LOCKED_OUT, but not locked")
                }
                ErrorCode::DeviceRevoked => {
                    ensure!(device.is_some_and(is_unlinked), AnswersMatchState, "{id}: DEVICE_REVOKED, but linked")
                }
                c => fail!(AnswersMatchState, "{id}: unexpected TOTP error {c:?}"),
            },
        }
        Ok(result_label(r, "VERIFIED"))
    }

    /// An unlink or rename answer agrees with the stored device.
    fn answer_admin(&mut self, op: &Op, r: &Result<()>) -> Labelled {
        let id = self.u.devices[op.kind.slot()].device_id.as_str();
        let unlinked = self.mirror.devices.get(id).is_some_and(is_unlinked);
        match r {
            Ok(()) => {
                ensure!(op.committed, AnswersMatchState, "{id}: {} answered before committing", op.kind.label());
                let unlink = matches!(op.kind, Kind::Unlink { .. });
                ensure!(!unlink || unlinked, UnlinkFinal, "{id}: unlink answered, the device is not unlinked");
            }
            Err(e) if e.code() == ErrorCode::InvalidState => {
                ensure!(unlinked, AnswersMatchState, "{id}: 'unlinked' answered, but it is not")
            }
            Err(e) => fail!(AnswersMatchState, "{id}: unexpected {} error {:?}", op.kind.label(), e.code()),
        }
        Ok(result_label(r, "OK"))
    }

    /// A status answer, as the phone reads it: never "active" when the
    /// server read the device after its unlink committed.
    fn answer_status(&mut self, op: &Op, r: &Result<String>) -> Labelled {
        let (u, slot) = (self.u, op.kind.slot());
        let Kind::Status { probe, .. } = &op.kind else { unreachable!() };
        let id = u.devices[slot].device_id.as_str();
        let g = &mut self.ids[u.devices[slot].id];
        let text = match r {
            Ok(text) => text,
            Err(e) if matches!(e.code(), ErrorCode::DeviceUnknown | ErrorCode::InvalidTime) => {
                return Ok(e.code().as_str())
            }
            Err(e) => fail!(AnswersMatchState, "{id}: unexpected status error {:?}", e.code()),
        };
        let actor = self.actors.iter().find(|a| a.slot == slot).unwrap();
        let read = actor.linked.as_ref().unwrap().1.read_status_answer(probe, text);
        Ok(match read {
            Ok(LinkStatus::Active) => {
                let before_unlink = g.unlinked_at.is_none_or(|at| at > op.read_seq);
                ensure!(before_unlink, UnlinkFinal, "{id}: status read after the unlink committed says active");
                "ACTIVE"
            }
            Ok(LinkStatus::AwaitingConfirmation) => "AWAITING_CONFIRMATION",
            Err(e) if e.code() == ErrorCode::DeviceRevoked => {
                ensure!(g.unlinked_at.is_some(), AnswersMatchState, "{id} told revoked, never unlinked");
                e.code().as_str()
            }
            Err(e) if e.code() == ErrorCode::LinkNotConfirmed => {
                g.told_not_confirmed = true;
                e.code().as_str()
            }
            Err(e) => fail!(AnswersMatchState, "{id}: the phone could not read its status: {e:?}"),
        })
    }
}

/// What an answer is counted as, or the violation it shows.
type Labelled = std::result::Result<&'static str, Violation>;

/// Every committed write raises its row's version by exactly 1.
fn bump(check: bool, row: &str, version: &mut u64, written: u64) -> Checked {
    let before = *version;
    ensure!(!check || written == before + 1, Versions, "{row} written at version {written} after {before}");
    *version = written;
    Ok(())
}

/// A row's version is the number of its committed writes.
fn version_is(check: bool, row: &str, stored: u64, writes: u64) -> Checked {
    ensure!(!check || stored == writes, Versions, "{row} at version {stored} after {writes} writes");
    Ok(())
}

fn used_by(o: &LinkOfferRecord, device: &str) -> bool {
    matches!(&o.state, OfferState::Used { device_id, .. } if device_id == device)
}

fn is_unlinked(d: &DeviceRecord) -> bool {
    matches!(d.status, DeviceStatus::Unlinked { .. })
}

/// Wrong check codes that count: `CHECK_CODE_MISMATCH`, and the fifth,
/// `LOCKED_OUT`.
fn is_check_code_failure(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::CheckCodeMismatch | ErrorCode::LockedOut)
}

// ---------------------------------------------------------------------------
// Runners.
// ---------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

/// Run `count` seeds from `first` on `threads` threads; the first failure
/// (lowest seed) if any.
fn run_seeds(first: u64, count: u64, threads: u64, cfg: Config) -> std::result::Result<Stats, Failure> {
    let threads = threads.clamp(1, count.max(1));
    let results: Vec<std::result::Result<Stats, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut total = Stats::default();
                    let mut seed = first + t;
                    while seed < first + count {
                        total.merge(&Sim::new(seed, cfg).run()?);
                        seed += threads;
                    }
                    Ok(total)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Stats::default();
    let mut failure: Option<Failure> = None;
    for r in results {
        match r {
            Ok(s) => total.merge(&s),
            Err(f) if failure.as_ref().is_none_or(|g| f.seed < g.seed) => failure = Some(f),
            Err(_) => {}
        }
    }
    failure.map_or(Ok(total), Err)
}

/// The first failing seed below `limit`, one seed at a time.
fn first_failure(limit: u64, cfg: Config) -> Option<Failure> {
    (0..limit).find_map(|seed| Sim::new(seed, cfg).run().err())
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

/// The default suite runs `DEFAULT_SEEDS` seeds; `TESSERA_SIM_SEEDS=N` runs
/// N (from `TESSERA_SIM_START`, on `TESSERA_SIM_THREADS` threads) and
/// `TESSERA_SIM_TRACE=<seed>` replays one seed step by step (on the broken
/// store `TESSERA_SIM_STORE=lww` or `one-by-one` if set).
#[test]
fn the_host_contract_holds_for_every_seeded_interleaving() {
    if let Some(seed) = env_u64("TESSERA_SIM_TRACE") {
        let store = match std::env::var("TESSERA_SIM_STORE").as_deref() {
            Ok("lww") => StoreMode::LastWriterWins,
            Ok("one-by-one") => StoreMode::OneByOne,
            Ok("two-reads") => StoreMode::TwoReads,
            _ => StoreMode::Contract,
        };
        let r = Sim::new(seed, Config { store, trace: true, ..Config::contract() }).run();
        println!("{:#?}", r.as_ref().map_err(|f| f.to_string()));
        assert!(r.is_ok());
        return;
    }
    let long = env_u64("TESSERA_SIM_SEEDS");
    let count = long.unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("TESSERA_SIM_START").unwrap_or(0);
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let threads = env_u64("TESSERA_SIM_THREADS").unwrap_or(if long.is_some() { parallel } else { 1 });
    Universe::get();
    let start = Instant::now();
    let stats = run_seeds(first, count, threads, Config::contract()).unwrap_or_else(|f| panic!("{f}"));
    stats.print(start.elapsed().as_secs_f64());
    // The workload must reach every race it is meant to exercise.
    if count >= DEFAULT_SEEDS {
        let answered = |k: &str, r: &str| stats.answered.get(&(k, r)).copied().unwrap_or(0);
        for (k, r) in [
            ("accept", "ACCEPTED"),
            ("accept", "REPEATED"),
            ("accept", "TOKEN_ALREADY_USED"),
            ("accept", "TOKEN_EXPIRED"),
            ("accept", "TOKEN_UNKNOWN"),
            ("accept", "DEVICE_ALREADY_LINKED"),
            ("confirm", "CONFIRMED"),
            ("confirm", "CHECK_CODE_MISMATCH"),
            ("confirm", "LOCKED_OUT"),
            ("confirm", "TOKEN_EXPIRED"),
            ("confirm", "INVALID_STATE"),
            ("verify_totp", "VERIFIED"),
            ("verify_totp", "OTP_REPLAYED"),
            ("verify_totp", "OTP_MISMATCH"),
            ("verify_totp", "LOCKED_OUT"),
            ("verify_totp", "DEVICE_REVOKED"),
            ("unlink", "OK"),
            ("unlink", "INVALID_STATE"),
            ("status", "ACTIVE"),
            ("status", "AWAITING_CONFIRMATION"),
            ("status", "DEVICE_REVOKED"),
            ("status", "LINK_NOT_CONFIRMED"),
        ] {
            assert!(answered(k, r) > 0, "no {k} answered {r} in {count} seeds");
        }
        assert!(stats.conflicts > 0 && stats.crashed_before_write > 0 && stats.crashed_after_write > 0);
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    for seed in [7, 1234] {
        let a = Sim::new(seed, Config::contract()).run().unwrap();
        let b = Sim::new(seed, Config::contract()).run().unwrap();
        assert_eq!(a, b);
    }
}

/// The memo only saves time: without it every seed runs the same.
#[test]
fn memoised_crypto_changes_no_run() {
    for seed in 0..12 {
        let memo = Sim::new(seed, Config { memo: true, ..Config::contract() }).run().unwrap();
        let fresh = Sim::new(seed, Config { memo: false, ..Config::contract() }).run().unwrap();
        assert_eq!(memo, fresh, "seed {seed}");
    }
}

/// Negative control: a store that ignores `expected_version` (last writer
/// wins) must be caught.
#[test]
fn a_last_writer_wins_store_is_caught_by_the_checker() {
    let cfg = Config { store: StoreMode::LastWriterWins, ..Config::contract() };
    let f = first_failure(CONTROL_SEEDS, cfg).expect("the checker missed a last-writer-wins store");
    println!("last writer wins, full checker: {f}");
}

/// The same control without the version invariant: the lost updates break
/// the protocol's own guarantees, and each of them is caught by its own
/// check (every check of the protocol invariants can fire).
#[test]
fn a_last_writer_wins_store_breaks_each_protocol_invariant() {
    let cfg = Config { store: StoreMode::LastWriterWins, check_versions: false, ..Config::contract() };
    let expected = [
        Invariant::QrLinksOnce,
        Invariant::CheckCodeFailures,
        Invariant::ConfirmOnce,
        Invariant::OneDevicePerId,
        Invariant::TotpOnce,
        Invariant::TotpLockout,
        Invariant::UnlinkFinal,
    ];
    let mut caught: BTreeMap<Invariant, Failure> = BTreeMap::new();
    for seed in 0..CONTROL_SEEDS * 20 {
        if let Err(f) = Sim::new(seed, cfg).run() {
            caught.entry(f.violation.invariant).or_insert(f);
        }
        if expected.iter().all(|i| caught.contains_key(i)) {
            break;
        }
    }
    for f in caught.values() {
        println!("last writer wins, protocol invariants only: {f}");
    }
    for i in expected {
        assert!(caught.contains_key(&i), "no seed of a last-writer-wins store broke {i:?}");
    }
}

/// Negative control: a host that reads one call's records at two moments
/// answers `DEVICE_ALREADY_LINKED` to a request it accepted on another
/// server (the hazard `docs/DESIGN.md` names); the checker must catch it.
#[test]
fn a_host_reading_one_call_at_two_moments_is_caught_by_the_checker() {
    let cfg = Config { store: StoreMode::TwoReads, ..Config::contract() };
    let f = first_failure(CONTROL_SEEDS * 10, cfg).expect("the checker missed a host without snapshots");
    println!("two reads per call: {f}");
    assert_eq!(f.violation.invariant, Invariant::AnswersMatchState);
}

/// Negative control: a store that applies the writes of one outcome one by
/// one (not all or nothing) must be caught.
#[test]
fn a_store_without_transactions_is_caught_by_the_checker() {
    let cfg = Config { store: StoreMode::OneByOne, ..Config::contract() };
    let f = first_failure(CONTROL_SEEDS * 10, cfg).expect("the checker missed a store without transactions");
    println!("one write at a time: {f}");
}
