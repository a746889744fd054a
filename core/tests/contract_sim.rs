//! Deterministic simulation of the host contract (`docs/DESIGN.md`, "Host
//! contract"; issue 6, item 10), through tessera-core's public API only.
//!
//! # Model
//!
//! - **One store**, in memory: a map per table (offers by `offer_id`,
//!   pending links by `device_id`, devices by `device_id`, challenges by
//!   `challenge_id`) of sealed rows (`Portal::store_write`, read back with
//!   `open_offer` / `open_pending` / `open_device` / `open_challenge`). It
//!   applies the writes of one outcome as the contract says: a write whose
//!   `expected_version` is `None` inserts and needs the key to be absent (a
//!   pending link also needs no device with that id), any other write needs
//!   the stored version to equal `expected_version`; all writes or none.
//!   Deliberately broken hosts serve as negative controls: a
//!   last-writer-wins store, a store without transactions (one write at a
//!   time), a host that reads one call at two moments, and a host whose
//!   challenge endpoints alone write without compare-and-set or one write at
//!   a time.
//! - **Several portal servers**: separate `Portal` values restored from one
//!   secret. Each request a server handles is an [`Op`], a small state
//!   machine of four steps: READ (copy the rows it needs), COMPUTE (open
//!   them and call the core at the virtual clock's `now`), WRITE (apply the
//!   outcome's writes atomically; on a conflict go back to READ) and RESPOND
//!   (the answer reaches the device or the user).
//! - **Actors** (phones and the people using them) start ops: send a link
//!   request (often several copies at once, to several servers, and again
//!   later), type wrong and right check codes, send right and wrong TOTP
//!   codes, ask for their status; an administrator unlinks, renames and
//!   unlocks. A linked phone's user logs in or approves a payment (a
//!   challenge for all the account's devices or this one) and answers the
//!   challenges its phone can read: the right code, a code computed with a
//!   wrong passcode, its code for another challenge, garbage, a signed
//!   answer (right or with a wrong passcode; two challenges signed in a
//!   row), its last signed answer replayed, and a copy of its keys signing
//!   next to it. Flow 2: Anna's new phone links from an offer for a new
//!   device, asks for link challenges once one of her phones is proven,
//!   and sends the code her old phone shows (racing with its own check
//!   code typed on the portal, which confirms nothing).
//! - **A seeded scheduler** picks every step: which op advances, which actor
//!   acts, when the clock ticks (virtual seconds). It crashes ops between
//!   READ and WRITE (the op vanishes, nothing written) and between WRITE and
//!   RESPOND (written, never answered).
//!
//! # Invariants, checked after every commit and answer
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
//! - a device's TOTP codes and challenge answers share one count: at most 5
//!   consecutive failures before the lock, each wrong answer counted once on
//!   each device it could be from, none lost (the stored count equals the
//!   committed failures since the last success or unlock), nothing accepted
//!   while locked; a success and an unlock reset it; a wrong vouch code
//!   counts on the pending link (at most 5), never on a device;
//! - once unlinked, a device is never written back as active, no answer of
//!   it is accepted after the unlink committed, and no status answer read
//!   after the unlink committed says "active";
//! - a challenge is accepted at most once across all servers (committed
//!   acceptances per challenge id, and acceptances answered);
//! - an accepted answer commits whole and stays: the answered challenge with
//!   the answering device's record (proven, count reset, counter), for flow
//!   2 with the confirmed link and the new device; a flow-2 link is
//!   confirmed only by a vouch, a flow-1 link only by its check code;
//! - the signed counters accepted from a device strictly increase, and the
//!   stored counter is the last one accepted;
//! - every committed write raises its row's version by exactly 1;
//! - every answer agrees with the committed state (an acceptance, a
//!   confirmation, a verified code or an unlink only after its write
//!   committed; a refusal names a fact that holds).
//!
//! Any refusal of a request whose acceptance committed fails (an expiry
//! refusal writes the offer, so a stale one loses its compare-and-set).
//! Counted, not a failure (`TESSERA_SIM_STRICT=1` fails on them): a
//! confirmation that commits after the phone was told `LINK_NOT_CONFIRMED`
//! (a stalled server; DESIGN.md bounds transactions), and `DEVICE_CLONED`
//! for a device whose keys were never copied. The core gaps the simulation
//! found are closed and replayed in strict mode
//! (`the_core_gaps_the_simulation_found_stay_closed`; 20,000 strict seeds
//! pass). The races the workload is meant to reach are counted and printed.
//!
//! # Cost
//!
//! P-256 dominates the cost (a third of the run, optimised as it is in
//! tests), so every seed uses the same [`Universe`] of portals, offers and
//! phone link requests (built once, with fresh `SeededRandom`s; the flow-2
//! offer needs a proven device, made offline), and two pure functions are
//! memoised on all of their inputs: `accept` when it accepts (the core is
//! deterministic given the records, which is what the contract relies on;
//! the first reuse of every entry recomputes it and compares) and the
//! phone's `finish_link`. `TESSERA_SIM_NO_MEMO=1` turns that off.
//! Everything else (scheduling, clock, crashes, workload, the store, the
//! sealed rows, challenges and signed answers) is fresh per seed; a quarter
//! of the answers are signed (a signature and its verification each).
//!
//! # Long run
//!
//! `TESSERA_SIM_SEEDS=1000000 cargo test -p tessera-core --test contract_sim
//! -- --nocapture the_host_contract` runs that many seeds (from
//! `TESSERA_SIM_START`, on `TESSERA_SIM_THREADS` threads) and prints seeds/s
//! and the totals of every operation and outcome. `TESSERA_SIM_TRACE=<seed>`
//! replays one seed step by step (`TESSERA_SIM_STORE=lww`, `one-by-one`,
//! `two-reads`, `challenges-lww` or `challenges-one-by-one` on a broken
//! host; `TESSERA_SIM_STRICT=1` as above).

#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tessera_core::challenge::{
    Amount, AnswerAccepted, Approval, ChallengeRecord, ChallengeSettings, ChallengeState, Transaction, DEVICE_LOCKOUT,
    MAX_VOUCH_FAILURES,
};
use tessera_core::crypto::SeededRandom;
use tessera_core::host::Write;
use tessera_core::limits::Lock;
use tessera_core::link::{
    self, Accept, CancelReason, ConfirmMethod, DeviceKeyUse, DeviceRecord, DeviceState, DeviceStatus, LinkOfferQr,
    LinkOfferRecord, LinkStatus, OfferOptions, OfferState, OpenedLinkRequest, PasscodePolicy, PendingDeviceLink,
    PendingLinkRecord, PendingState, Portal, PortalEvent, StatusProbe, UserFactor, MAX_CONFIRM_ATTEMPTS,
};
use tessera_core::otp::{ThrottlePolicy, Verified};
use tessera_core::{ErrorCode, Result, SecretBytes};

/// Rows as a host stores them (query columns + the sealed record), local to
/// this simulation: the host-facing definition is `tessera-host`'s.
mod rows {
    use tessera_core::challenge::{ChallengeRecord, ChallengeState};
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

    /// A stored challenge.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct StoredChallenge {
        /// Lookup key (hex).
        pub challenge_id: String,
        /// Account (the host reads the account's devices with it).
        pub account: String,
        /// Expiry (unix seconds).
        pub expires_at: u64,
        /// Answered (single use).
        pub answered: bool,
        /// Flow 2: the pending link it vouches for.
        pub for_link: Option<String>,
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
        /// A challenge row.
        Challenge(StoredChallenge),
    }

    impl StoredWrite {
        /// Version the stored row must have (`None`: insert).
        pub fn expected_version(&self) -> Option<u64> {
            let v = match self {
                StoredWrite::Offer(r) => r.version,
                StoredWrite::PendingLink(r) => r.version,
                StoredWrite::Device(r) => r.version,
                StoredWrite::Challenge(r) => r.version,
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
        fn store_challenge(&self, r: &ChallengeRecord, rng: &mut dyn RandomSource) -> StoredChallenge;
        fn store_write(&self, w: &Write, rng: &mut dyn RandomSource) -> StoredWrite;
        fn open_offer(&self, row: &StoredOffer) -> Result<LinkOfferRecord>;
        fn open_pending(&self, row: &StoredPendingLink) -> Result<PendingLinkRecord>;
        fn open_device(&self, row: &StoredDevice) -> Result<DeviceRecord>;
        fn open_challenge(&self, row: &StoredChallenge) -> Result<ChallengeRecord>;
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

        /// Seal a challenge for storage.
        fn store_challenge(&self, r: &ChallengeRecord, rng: &mut dyn RandomSource) -> StoredChallenge {
            StoredChallenge {
                challenge_id: r.challenge_id.clone(),
                account: r.account.clone(),
                expires_at: r.expires_at,
                answered: matches!(r.state, ChallengeState::Answered { .. }),
                for_link: r.for_link.clone(),
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
                Write::Challenge(r) => StoredWrite::Challenge(self.store_challenge(r, rng)),
                other => panic!("the simulation makes no activation writes: {other:?}"),
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

        /// The challenge a row holds.
        fn open_challenge(&self, row: &StoredChallenge) -> Result<ChallengeRecord> {
            self.open_record(&row.challenge_id, &row.account, row.version, &row.sealed)
        }
    }
}
use rows::{Rows, StoredChallenge, StoredDevice, StoredOffer, StoredPendingLink, StoredWrite};

/// Seeds of the normal test suite.
const DEFAULT_SEEDS: u64 = 2_700;
/// The negative controls must fail within this many seeds.
const CONTROL_SEEDS: u64 = 300;
/// 2026-01-01T00:00:00Z: every seed starts here.
const T0: u64 = 1_767_225_600;
const PORTAL_NAME: &str = "Example Bank";
const SERVERS: usize = 3;
/// The phones' storage key (from the platform keystore).
const DEVICE_STORAGE_KEY: [u8; 32] = [0x42; 32];
/// Consecutive failures that lock a device: its TOTP codes and its
/// challenge answers share one count (`DEVICE_LOCKOUT`).
const MAX_FAILURES: u32 = 5;
/// The passcode a user mistypes (a wrong code only the portal detects).
const WRONG_PASSCODE: &str = "000111";
/// Issued challenges a phone looks at (the newest of its account).
const POOL_WINDOW: usize = 8;
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
    /// Flow 2 (`create_offer_for_new_device`): the link is confirmed by a
    /// challenge answered on one of the account's proven authenticators.
    flow2: bool,
}

const OFFERS: [OfferSpec; 5] = [
    OfferSpec { account: "anna", ttl: 300, rng_seed: 1, flow2: false },
    OfferSpec { account: "anna", ttl: 60, rng_seed: 2, flow2: false },
    OfferSpec { account: "ben", ttl: 300, rng_seed: 3, flow2: false },
    OfferSpec { account: "chloe", ttl: 300, rng_seed: 4, flow2: false },
    // Sent to Anna's new phone: the portal issued it (at T0) while one of
    // Anna's authenticators was proven; the universe proves one offline.
    OfferSpec { account: "anna", ttl: 600, rng_seed: 5, flow2: true },
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

const DEVICES: [DeviceSpec; 7] = [
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
    // Flow 2: links from the offer sent to it, confirmed by Anna's Pixel
    // or iPad answering a link challenge.
    DeviceSpec { offer: 4, name: "Anna's new phone", passcode: "305918", biometrics: true, key_seed: 15 },
];

/// The account of a phone.
fn account_of(slot: usize) -> &'static str {
    OFFERS[DEVICES[slot].offer].account
}

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
        let mut offers: Vec<LinkOfferQr> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let mut devices: Vec<Prepared> = Vec::new();
        for (slot, d) in DEVICES.iter().enumerate() {
            while offers.len() <= d.offer {
                let o = &OFFERS[offers.len()];
                let rng = &mut SeededRandom::new([o.rng_seed; 32]);
                let offer = if o.flow2 {
                    // The offer needs a proven authenticator of the account.
                    let proven = Universe::proven_offline(&servers[0], &offers, &devices, o.account);
                    let options = OfferOptions { ttl: o.ttl, ..OfferOptions::default() };
                    servers[0].create_offer_for_new_device(o.account, &[proven], options, T0, rng).unwrap()
                } else {
                    servers[0].create_offer(o.account, PasscodePolicy::default(), o.ttl, T0, rng).unwrap()
                };
                assert_eq!(offer.record.confirm == ConfirmMethod::Authenticator, o.flow2);
                offers.push(offer);
            }
            let scanned = link::scan_link_qr(&offers[d.offer].qr_text, T0).unwrap();
            let rng = &mut SeededRandom::new([d.key_seed; 32]);
            let start = link::start_link(&scanned, d.name, d.passcode, d.biometrics, false, T0, rng).unwrap();
            let opened = servers[0].open_link_request(&start.request).unwrap();
            let device_id = opened.device_id().to_string();
            let id = ids.iter().position(|i| *i == device_id).unwrap_or_else(|| {
                ids.push(device_id.clone());
                ids.len() - 1
            });
            assert_eq!(account_of(slot), OFFERS[d.offer].account);
            devices.push(Prepared {
                request: start.request,
                pending: start.pending,
                biometric: start.biometric_secret,
                opened,
                device_id,
                id,
            });
        }
        // The public API does let one device key ask twice: same randomness.
        assert_eq!(devices[3].device_id, devices[4].device_id);
        assert_ne!(devices[3].request, devices[4].request);
        assert_eq!(ids.len(), 6);
        assert_eq!(offers.len(), OFFERS.len());
        assert_eq!(ThrottlePolicy::default().max_failures, MAX_FAILURES);
        assert_eq!(DEVICE_LOCKOUT.limit(), MAX_FAILURES);
        Universe { servers, offers, devices, ids, memo: Mutex::new(Memo::default()) }
    }

    /// A proven device record of `account`, made offline (its own store):
    /// its first phone links, confirms its check code and answers a login
    /// challenge. Only the flow-2 offer needs it.
    fn proven_offline(portal: &Portal, offers: &[LinkOfferQr], devices: &[Prepared], account: &str) -> DeviceRecord {
        let slot = (0..devices.len()).find(|&s| account_of(s) == account).unwrap();
        let rng = &mut SeededRandom::new([0x0f; 32]);
        let out =
            devices[slot].opened.accept(portal, Some(&offers[DEVICES[slot].offer].record), DeviceKeyUse::Fresh, T0);
        let pending = out
            .outcome
            .writes
            .iter()
            .find_map(|w| if let Write::PendingLink(p) = w { Some(p.clone()) } else { None })
            .unwrap();
        let linked = link::finish_link(devices[slot].pending.clone(), &out.answer, &DEVICE_STORAGE_KEY, rng).unwrap();
        let record = portal.confirm_link(&pending, &linked.check_code, T0).result.unwrap();
        let state = DeviceState::open(&DEVICE_STORAGE_KEY, &linked.state).unwrap();
        let c = portal
            .create_challenge(std::slice::from_ref(&record), Approval::Login, ChallengeSettings::default(), T0, rng)
            .unwrap();
        let seen = state.read_challenge(&c.qr_text, T0).unwrap();
        let code = state.answer_code(&seen, UserFactor::Passcode(DEVICES[slot].passcode)).unwrap();
        let o = portal.verify_answer(&c.record, &[record], &code, T0);
        assert!(o.result.is_ok());
        let proven = o.writes.into_iter().find_map(|w| if let Write::Device(d) = w { Some(d) } else { None }).unwrap();
        assert!(proven.proven);
        proven
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
    /// Broken host: its challenge endpoints (create, verify, vouch, unlock)
    /// write with plain upserts; linking keeps the contract.
    ChallengesLastWriterWins,
    /// Broken host: its challenge endpoints apply their writes one by one.
    ChallengesOneByOne,
}

impl StoreMode {
    /// How the writes of an op of `kind` are applied.
    fn for_op(self, kind: &Kind) -> StoreMode {
        let challenge = matches!(
            kind,
            Kind::Issue { .. }
                | Kind::LinkChallenge { .. }
                | Kind::Answer { .. }
                | Kind::Vouch { .. }
                | Kind::Unlock { .. }
        );
        match self {
            StoreMode::ChallengesLastWriterWins if challenge => StoreMode::LastWriterWins,
            StoreMode::ChallengesOneByOne if challenge => StoreMode::OneByOne,
            StoreMode::ChallengesLastWriterWins | StoreMode::ChallengesOneByOne => StoreMode::Contract,
            mode => mode,
        }
    }

    /// `TESSERA_SIM_STORE` (for replays).
    fn name(self) -> &'static str {
        match self {
            StoreMode::Contract => "contract",
            StoreMode::LastWriterWins => "lww",
            StoreMode::OneByOne => "one-by-one",
            StoreMode::TwoReads => "two-reads",
            StoreMode::ChallengesLastWriterWins => "challenges-lww",
            StoreMode::ChallengesOneByOne => "challenges-one-by-one",
        }
    }
}

struct Conflict;

#[derive(Default)]
struct Store {
    offers: BTreeMap<String, StoredOffer>,
    pending: BTreeMap<String, StoredPendingLink>,
    devices: BTreeMap<String, StoredDevice>,
    challenges: BTreeMap<String, StoredChallenge>,
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
            StoredWrite::Challenge(r) => self.challenges.get(&r.challenge_id).map(|s| s.version) == expected,
        }
    }

    /// The device rows of an account (the host's `WHERE account = ?`).
    fn devices_of(&self, account: &str) -> Vec<StoredDevice> {
        self.devices.values().filter(|d| d.account == account).cloned().collect()
    }

    fn put(&mut self, w: &StoredWrite) {
        match w {
            StoredWrite::Offer(r) => self.offers.insert(r.offer_id.clone(), r.clone()).map(drop),
            StoredWrite::PendingLink(r) => self.pending.insert(r.device_id.clone(), r.clone()).map(drop),
            StoredWrite::Device(r) => self.devices.insert(r.device_id.clone(), r.clone()).map(drop),
            StoredWrite::Challenge(r) => self.challenges.insert(r.challenge_id.clone(), r.clone()).map(drop),
        };
    }

    /// Apply one outcome's writes in one transaction. Returns how many
    /// writes were applied (all of them, except in the broken `OneByOne`).
    fn apply(&mut self, mode: StoreMode, writes: &[StoredWrite]) -> std::result::Result<usize, (Conflict, usize)> {
        match mode {
            StoreMode::Contract
            | StoreMode::TwoReads
            | StoreMode::ChallengesLastWriterWins
            | StoreMode::ChallengesOneByOne => {
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
    /// At most 5 consecutive failures (TOTP codes and challenge answers,
    /// one count) before the lock, each wrong answer counted once per
    /// device, none lost; nothing accepted while locked; a success or an
    /// unlock resets the count.
    Lockout,
    /// An unlinked device is never active again, and no answer of it is
    /// accepted after the unlink committed.
    UnlinkFinal,
    /// A challenge is accepted at most once across all servers.
    ChallengeOnce,
    /// An accepted answer commits whole and stays: the challenge answered
    /// by that device with the device's record (proven, count reset,
    /// counter), and for flow 2 the link confirmed with the new device.
    AnswerAtomic,
    /// The signed counters accepted from a device strictly increase, and
    /// the stored counter is the last one accepted.
    SignedCounter,
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
            StoreMode::Contract => String::new(),
            mode => format!("TESSERA_SIM_STORE={} ", mode.name()),
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
    /// Commit number of the device insert.
    inserted_at: Option<u64>,
    /// Commit number of the unlink.
    unlinked_at: Option<u64>,
    locked: bool,
    /// (commit number, locked) at every lock and unlock.
    lock_changes: Vec<(u64, bool)>,
    /// Committed failures (TOTP codes and answers) since the last success
    /// or unlock.
    failures_since_reset: u32,
    /// Ops that counted a failure on this device.
    failure_ops: Vec<u64>,
    /// Committed wrong vouch codes it absorbed since its last vouch or
    /// unlock (its own budget, apart from the lockout).
    vouch_failures: u32,
    last_step_accepted: Option<u64>,
    steps_answered: Vec<u64>,
    told_not_confirmed: bool,
    /// Commit number of the first accepted answer (the device is proven).
    proven_at: Option<u64>,
    /// The last signed counter accepted.
    last_counter: Option<u64>,
    /// When the portal first answered `DEVICE_CLONED` for it (commit
    /// number; it may refuse the device's answers and codes from then on).
    clone_flagged: Option<u64>,
}

impl IdGhost {
    /// Had the portal suspected a copy of its keys after commit `seq`?
    fn flagged_at(&self, seq: u64) -> bool {
        self.clone_flagged.is_some_and(|f| f <= seq)
    }

    /// Was the device in the registry and active after commit `seq`?
    fn active_at(&self, seq: u64) -> bool {
        self.inserted_at.is_some_and(|i| i <= seq) && self.unlinked_at.is_none_or(|u| u > seq)
    }

    /// Was the device locked after commit `seq`?
    fn locked_at(&self, seq: u64) -> bool {
        self.lock_changes.iter().rev().find(|(s, _)| *s <= seq).is_some_and(|(_, l)| *l)
    }

    fn set_locked(&mut self, seq: u64, locked: bool) {
        if self.locked != locked {
            self.locked = locked;
            self.lock_changes.push((seq, locked));
        }
    }
}

/// What the checker counts per challenge.
#[derive(Default)]
struct ChallengeGhost {
    version: u64,
    accept_commits: u32,
    /// Commit number of the acceptance, and the answer accepted.
    answered_at: Option<u64>,
    accepted_answer: Option<String>,
    /// Acceptances that went out.
    accepted_answers: u32,
}

/// The records as the store holds them, opened after every commit.
#[derive(Default)]
struct Mirror {
    offers: BTreeMap<String, LinkOfferRecord>,
    pending: BTreeMap<String, PendingLinkRecord>,
    devices: BTreeMap<String, DeviceRecord>,
    challenges: BTreeMap<String, ChallengeRecord>,
}

// ---------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Kind {
    Accept {
        slot: usize,
    },
    Confirm {
        slot: usize,
        typed: String,
    },
    Totp {
        slot: usize,
        code: String,
    },
    Unlink {
        slot: usize,
    },
    Rename {
        slot: usize,
        name: &'static str,
    },
    Status {
        slot: usize,
        request: String,
        probe: StatusProbe,
    },
    /// The user of `slot` logs in or approves a payment: a challenge for
    /// the account's devices, or for this one only.
    Issue {
        slot: usize,
        only_mine: bool,
        payment: bool,
        settings: ChallengeSettings,
    },
    /// Flow 2: the new phone `slot` asks for a challenge for one of the
    /// account's authenticators.
    LinkChallenge {
        slot: usize,
        settings: ChallengeSettings,
    },
    /// The answer typed on the portal (or sent signed) for `challenge`;
    /// `slot` is the phone that made it, `signed` its counter.
    Answer {
        slot: usize,
        challenge: String,
        answer: String,
        signed: Option<u64>,
        /// Signed by a copy of the phone's keys.
        copy: bool,
    },
    /// Flow 2: the code `voucher` showed for the link challenge, typed
    /// into the new phone `slot`, which sends it.
    Vouch {
        slot: usize,
        voucher: usize,
        challenge: String,
        answer: String,
    },
    /// The administrator unlocks the device after the user re-identified.
    Unlock {
        slot: usize,
    },
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
            Kind::Issue { .. } => "challenge",
            Kind::LinkChallenge { .. } => "link_challenge",
            Kind::Answer { .. } => "answer",
            Kind::Vouch { .. } => "vouch",
            Kind::Unlock { .. } => "unlock",
        }
    }
    fn slot(&self) -> usize {
        match self {
            Kind::Accept { slot }
            | Kind::Confirm { slot, .. }
            | Kind::Totp { slot, .. }
            | Kind::Unlink { slot }
            | Kind::Rename { slot, .. }
            | Kind::Status { slot, .. }
            | Kind::Issue { slot, .. }
            | Kind::LinkChallenge { slot, .. }
            | Kind::Answer { slot, .. }
            | Kind::Vouch { slot, .. }
            | Kind::Unlock { slot } => *slot,
        }
    }
}

/// The rows an op read.
struct Snapshot {
    offer: Option<StoredOffer>,
    pending: Option<StoredPendingLink>,
    device: Option<StoredDevice>,
    challenge: Option<StoredChallenge>,
    /// The account's devices (challenges).
    devices: Vec<StoredDevice>,
    /// An acceptance: whether a pending link or device has the device id.
    exists: bool,
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
    /// A new challenge: its id and QR text.
    Issue(Result<(String, String)>),
    Answer(Result<AnswerAccepted>),
    Vouch(Result<()>),
    /// The host found no record to work on.
    NoRecord,
}

impl Reply {
    /// For traces: the result without the answer bytes.
    fn summary(&self) -> String {
        match self {
            Reply::Accept { result, .. } => format!("{result:?}"),
            Reply::Confirm(r) | Reply::Admin(r) | Reply::Vouch(r) => format!("{r:?}"),
            Reply::Totp(r) => format!("{r:?}"),
            Reply::Status(r) => format!("{:?}", r.as_ref().map(|_| "status answer")),
            Reply::Issue(r) => format!("{:?}", r.as_ref().map(|(id, _)| id)),
            Reply::Answer(r) => format!("{r:?}"),
            Reply::NoRecord => "no record".into(),
        }
    }

    /// An accepted answer (the challenge commits as answered).
    fn accepts_answer(&self) -> bool {
        matches!(self, Reply::Answer(Ok(_)) | Reply::Vouch(Ok(())))
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
    /// Signed answers made so far (the phone's counter).
    signed: u64,
    /// A copy of the phone's keys, and its counter.
    clone: Option<(DeviceState, u64)>,
    /// The last signed answer: challenge id, text, counter.
    last_signed: Option<(String, String, u64)>,
    /// Challenges the user saw end (accepted, used or expired).
    done: Vec<String>,
    /// The user was told the device is locked (and calls the bank).
    saw_locked: bool,
    /// Flow 2: asks for link challenges before any authenticator is proven.
    impatient: bool,
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
    Login,
    Answer,
    Unlock,
    AskVouch,
}

/// What a phone answers to a challenge it read.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Right,
    WrongPasscode,
    /// Its right code for another challenge.
    OtherChallenge,
    /// Digits of the wrong length, or not digits at all.
    Garbage,
    Signed,
    /// Two challenges signed in a row (counters n and n + 1).
    SignedTwo,
    SignedWrongPasscode,
    /// Its last signed answer again (to that challenge or this one).
    Replayed,
    /// Signed by the copy of its keys.
    Cloned,
}

/// A challenge whose QR code reached a screen.
struct Issued {
    id: String,
    qr: String,
    account: &'static str,
    /// Flow 2: the new phone showing it.
    for_link: Option<usize>,
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

/// The races of challenges the workload must reach (counted when they
/// happen; the default run asserts each one happened).
mod race {
    /// Two servers verified one challenge: the loser retried and read it
    /// answered.
    pub const USED_AFTER_CONFLICT: &str = "answer TOKEN_ALREADY_USED after a conflict (another server accepted)";
    /// An answer lost its compare-and-set and was accepted on the retry.
    pub const ACCEPTED_AFTER_CONFLICT: &str = "answer accepted after a conflict";
    /// An unlink committed while an answer was verified: the retry refused.
    pub const REVOKED_AFTER_CONFLICT: &str = "answer DEVICE_REVOKED after a conflict (unlinked meanwhile)";
    /// A signed answer whose counter another (a copy's, or the phone's own
    /// later one) overtook.
    pub const COUNTER_NOT_ABOVE: &str = "signed answer refused: its counter not above the last accepted";
    /// A refusal computed from a snapshot of the lock, after which an unlock
    /// committed.
    pub const LOCKED_BEFORE_UNLOCK: &str = "LOCKED_OUT read before an unlock committed";
    /// An unlock computed before the failure that locked the device.
    pub const UNLOCK_BEFORE_LOCK: &str = "unlock refused from a snapshot before the lock";
    /// An unlock that lost its compare-and-set.
    pub const UNLOCK_AFTER_CONFLICT: &str = "unlock after a conflict";
    /// Two vouches for one link: the loser retried and read it confirmed.
    pub const VOUCH_LOST: &str = "vouch lost to another confirmation";
    /// The new phone's check code typed on the portal while its flow-2 link
    /// waits for a vouch.
    pub const CHECK_CODE_ON_FLOW2: &str = "check code typed for an open flow-2 link";
}

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
    /// A new phone told `TOKEN_EXPIRED` (flow 2) whose link is confirmed.
    vouch_expired_after_confirm: u64,
    /// `DEVICE_CLONED` for a phone's own answer, no copy ever accepted.
    genuine_flagged_cloned: u64,
    /// A vouch refused `DEVICE_UNKNOWN` or `LOCKED_OUT` for a voucher that
    /// was unlinked.
    vouch_misnamed: u64,
    /// An answer of a device refused `DEVICE_CLONED` for another device of
    /// the same challenge.
    cloned_misattributed: u64,
    /// Races the workload is meant to reach, counted when they happen.
    races: BTreeMap<&'static str, u64>,
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
        self.vouch_expired_after_confirm += o.vouch_expired_after_confirm;
        self.genuine_flagged_cloned += o.genuine_flagged_cloned;
        self.vouch_misnamed += o.vouch_misnamed;
        self.cloned_misattributed += o.cloned_misattributed;
        for (k, v) in &o.races {
            *self.races.entry(k).or_default() += v;
        }
    }

    fn race(&mut self, what: &'static str) {
        *self.races.entry(what).or_default() += 1;
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
             NOT_CONFIRMED: {}; flow-2 phone told TOKEN_EXPIRED, its link confirmed: {}; DEVICE_CLONED for a \
             phone's own answer: {}; vouch refused DEVICE_UNKNOWN/LOCKED_OUT for an unlinked voucher: {}; \
             DEVICE_CLONED for another device of the challenge: {}",
            self.stale_refusals,
            self.confirmed_after_not_confirmed,
            self.vouch_expired_after_confirm,
            self.genuine_flagged_cloned,
            self.vouch_misnamed,
            self.cloned_misattributed
        );
        for (kind, n) in &self.started {
            println!("  {kind:<14} started {n}");
            for ((k, result), m) in &self.answered {
                if k == kind {
                    println!("  {:<14}   {result:<24} {m}", "");
                }
            }
        }
        for (race, n) in &self.races {
            println!("  race: {race:<56} {n}");
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
    challenges: BTreeMap<String, ChallengeGhost>,
    /// The portal's randomness for new challenges.
    challenge_rng: SeededRandom,
    /// Challenges whose QR code was shown, oldest first.
    issued: Vec<Issued>,
    commit_seq: u64,
    /// Something `check_state` reads changed since it last ran.
    dirty: bool,
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
            challenges: BTreeMap::new(),
            challenge_rng: SeededRandom::new(rng.bytes()),
            issued: Vec::new(),
            commit_seq: 0,
            dirty: true,
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
                // A flow-2 phone waits for an authenticator: a longer life.
                let most = if OFFERS[DEVICES[slot].offer].flow2 { 18 } else { 14 };
                let (budget, r, impatient) = (sim.rng.range(3, most) as u32, sim.rng.bytes(), sim.rng.percent(10));
                sim.actors.push(Actor {
                    slot,
                    budget,
                    rng: SeededRandom::new(r),
                    linked: None,
                    first_answer: None,
                    refused: None,
                    confirmed: false,
                    signed: 0,
                    clone: None,
                    last_signed: None,
                    done: Vec::new(),
                    saw_locked: false,
                    impatient,
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
        // A flow-2 phone got its offer over the network and sends its
        // request at once; a server reads and computes it at T0 (the memo
        // holds that acceptance), and commits it whenever scheduled.
        let first: Vec<Kind> = self
            .actors
            .iter()
            .filter(|a| OFFERS[DEVICES[a.slot].offer].flow2)
            .map(|a| Kind::Accept { slot: a.slot })
            .collect();
        self.start(first);
        let mut ops = std::mem::take(&mut self.ops);
        for op in &mut ops {
            op.read_seq = self.commit_seq;
            let snap = Box::new(self.read(&op.kind));
            op.phase = self.compute(op, snap)?;
        }
        self.ops = ops;
        loop {
            // Only commits and answers change what `check_state` reads.
            if std::mem::take(&mut self.dirty) {
                self.check_state()?;
            }
            let can_act = self.actors.iter().any(|a| self.ready(a));
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

    /// Can this actor act? A flow-2 phone, once linked, waits until its
    /// user has a proven authenticator (she knows whether her old phone
    /// ever answered a challenge) to ask for a link challenge; an impatient
    /// one asks anyway.
    fn ready(&self, a: &Actor) -> bool {
        let waits = OFFERS[DEVICES[a.slot].offer].flow2 && !a.impatient && a.linked.is_some() && !a.confirmed && {
            let account = account_of(a.slot);
            !self.mirror.devices.values().any(|d| d.account == account && d.proven && !is_unlinked(d))
        };
        a.budget > 0 && !waits
    }

    fn act(&mut self) {
        let u = self.u;
        let ready = self.actors.iter().filter(|a| self.ready(a)).count() as u64;
        let nth = self.rng.below(ready) as usize;
        let ai = self.actors.iter().enumerate().filter(|(_, a)| self.ready(a)).nth(nth).unwrap().0;
        self.actors[ai].budget -= 1;
        let slot = self.actors[ai].slot;
        use Action::*;
        // What a phone does depends on what it knows: nothing yet, its check
        // code (linked, not confirmed), or that the portal confirmed it.
        let a = &self.actors[ai];
        let flow2 = OFFERS[DEVICES[slot].offer].flow2;
        // Challenges of the phone's account it has not seen end, and link
        // challenges its screen shows.
        let account = account_of(slot);
        let open =
            self.issued.iter().rev().take(POOL_WINDOW).filter(|i| i.account == account && !a.done.contains(&i.id));
        let (to_answer, showing) = open.fold((0, 0), |(n, m), i| (n + 1, m + u64::from(i.for_link == Some(slot))));
        let (login, answer) = if to_answer > 0 { (10, 80) } else { (40, 4) };
        let (unlock, ask) = (if a.saw_locked { 40 } else { 3 }, if showing > 0 { 6 } else { 30 });
        let confirmed = [
            (RightTotp, 24),
            (WrongTotp, 12),
            (Status, 14),
            (Unlink, 10),
            (Rename, 4),
            (RightCheckCode, 4),
            (WrongCheckCode, 4),
            (Send, 4),
            (Login, login),
            (Answer, answer),
            (Unlock, unlock),
        ];
        let flow2_linked = [
            (AskVouch, ask),
            (RightCheckCode, 4),
            (WrongCheckCode, 2),
            (Send, 4),
            (Status, 6),
            (RightTotp, 2),
            (Unlink, 2),
        ];
        let menu: &[(Action, u64)] = match (&a.linked, a.confirmed) {
            (None, _) => &[(Send, 80), (WrongCheckCode, 8), (Unlink, 4), (Rename, 2)],
            // A flow-2 phone asks for link challenges; its check code
            // confirms nothing, but its user may still type it somewhere.
            (Some(_), false) if flow2 => &flow2_linked,
            (Some(_), false) => &[
                (RightCheckCode, 30),
                (WrongCheckCode, 20),
                (Send, 10),
                (Status, 15),
                (RightTotp, 8),
                (WrongTotp, 4),
                (Unlink, 6),
                (Rename, 2),
                (AskVouch, 1),
            ],
            (Some(_), true) => &confirmed,
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
            // A login, a payment, or both (two tabs: two open challenges).
            Login => (0..self.rng.range(1, 2))
                .map(|_| {
                    let (only_mine, payment) = (self.rng.percent(30), self.rng.percent(40));
                    Kind::Issue { slot, only_mine, payment, settings: self.challenge_settings() }
                })
                .collect(),
            AskVouch => {
                // A link challenge has 8 to 10 digits (it links a device).
                let settings = ChallengeSettings { digits: self.rng.range(8, 10) as u8, ..self.challenge_settings() };
                vec![Kind::LinkChallenge { slot, settings }]
            }
            Answer => self.answer(ai),
            Unlock => {
                let n = self.rng.range(1, 2);
                (0..n).map(|_| Kind::Unlock { slot }).collect()
            }
        };
        self.trace(|| format!("phone {slot} does {action:?} ({} ops)", kinds.len()));
        self.start(kinds);
    }

    /// Send each request to a server of the scheduler's choice.
    fn start(&mut self, kinds: Vec<Kind>) {
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

    /// Digits and lifetime of a new challenge (some expire while answered).
    fn challenge_settings(&mut self) -> ChallengeSettings {
        let digits = self.rng.range(6, 10) as u8;
        let ttl = [45, 300, 600][self.rng.below(3) as usize];
        ChallengeSettings { digits, ttl }
    }

    /// A phone answers a challenge it can read (the newest, or one of the
    /// last few of its account): right or wrong, typed or signed, by the
    /// phone or by a copy of its keys. A link challenge's code is typed
    /// into the new phone, which sends it (flow 2).
    fn answer(&mut self, ai: usize) -> Vec<Kind> {
        let (u, now) = (self.u, self.now);
        let slot = self.actors[ai].slot;
        let (account, passcode) = (account_of(slot), DEVICES[slot].passcode);
        let Some((_, state)) = self.actors[ai].linked.clone() else { return vec![] };
        let mine: Vec<usize> = (0..self.issued.len()).rev().filter(|&i| self.issued[i].account == account).collect();
        // Mostly the challenges the user has not seen end.
        let retry = self.rng.percent(15);
        let done = &self.actors[ai].done;
        let readable: Vec<(usize, tessera_core::challenge::Challenge)> = mine
            .into_iter()
            .take(POOL_WINDOW)
            .filter(|&i| retry || !done.contains(&self.issued[i].id))
            .filter_map(|i| state.read_challenge(&self.issued[i].qr, now).ok().map(|c| (i, c)))
            .collect();
        if readable.is_empty() {
            return vec![];
        }
        // The newest, a link challenge (on the new phone's screen), or any.
        let link = readable.iter().position(|(i, _)| self.issued[*i].for_link.is_some());
        let pick = match link {
            Some(l) if self.rng.percent(80) => l,
            _ if self.rng.percent(60) => 0,
            _ => self.rng.below(readable.len() as u64) as usize,
        };
        let (i, seen) = &readable[pick];
        let for_link = self.issued[*i].for_link;
        assert_eq!(self.issued[*i].id, seen.challenge_id, "the QR names its record");
        let bio = u.devices[slot].biometric.as_ref().filter(|_| self.rng.percent(50));
        let right = match bio {
            Some(b) => UserFactor::Biometric(b.expose()),
            None => UserFactor::Passcode(passcode),
        };
        use self::Answer::*;
        let menu: &[(self::Answer, u64)] = if for_link.is_some() {
            &[(Right, 60), (WrongPasscode, 20), (OtherChallenge, 10), (Garbage, 5)]
        } else {
            // Signed answers cost a P-256 signature and its verification:
            // a quarter of the answers, enough for every race.
            &[
                (Right, 36),
                (WrongPasscode, 12),
                (OtherChallenge, 6),
                (Garbage, 4),
                (Signed, 6),
                (SignedTwo, 4),
                (SignedWrongPasscode, 1),
                (Replayed, 4),
                (Cloned, 4),
            ]
        };
        let how = self.rng.weighted(menu);
        let target = seen.challenge_id.clone();
        // (challenge, answer, counter if signed, signed by the copy)
        let mut answers: Vec<(String, String, Option<u64>, bool)> = Vec::new();
        match how {
            Right => answers.push((target, state.answer_code(seen, right).unwrap(), None, false)),
            WrongPasscode => answers.push((
                target,
                state.answer_code(seen, UserFactor::Passcode(WRONG_PASSCODE)).unwrap(),
                None,
                false,
            )),
            OtherChallenge => {
                let code = match readable.iter().find(|(j, _)| j != i) {
                    Some((_, other)) => state.answer_code(other, right).unwrap(),
                    None => format!("{:0w$}", self.rng.below(1_000_000), w = usize::from(seen.digits)),
                };
                answers.push((target, code, None, false))
            }
            Garbage => {
                answers.push((target, (if self.rng.percent(50) { "12a456" } else { "12345" }).into(), None, false))
            }
            // Its last signed answer again: to its own challenge (once
            // accepted at most) or to this one (the nonce differs: wrong).
            Replayed if self.actors[ai].last_signed.is_some() => {
                let (cid, text, counter) = self.actors[ai].last_signed.clone().unwrap();
                answers.push((if self.rng.percent(50) { cid } else { target }, text, Some(counter), false))
            }
            // The phone's keys are copied (a backup restored on a second
            // phone): the copy signs with the counter the phone uses next,
            // and the phone answers another open challenge if there is one
            // (the second to arrive is the clone), else later.
            Cloned => {
                let actor = &mut self.actors[ai];
                // Copied now (again): the copy's next counter is the phone's.
                let (copy, counter) = actor.clone.insert((state.clone(), actor.signed));
                let s = copy.answer_signed(seen, right, &DEVICE_STORAGE_KEY, &mut actor.rng).unwrap();
                *copy = DeviceState::open(&DEVICE_STORAGE_KEY, &s.state).unwrap();
                *counter += 1;
                answers.push((target, s.answer, Some(*counter), true))
            }
            Signed | SignedWrongPasscode | Replayed | SignedTwo => {}
        };
        // Signed by the phone: once, or two challenges one after the other
        // (their answers may arrive in either order), or next to its copy.
        let signs = matches!(how, Signed | SignedWrongPasscode | Replayed | SignedTwo) && answers.is_empty();
        if signs || matches!(how, Cloned) {
            let factor = if matches!(how, SignedWrongPasscode) { UserFactor::Passcode(WRONG_PASSCODE) } else { right };
            let second = readable.iter().find(|(j, _)| j != i && self.issued[*j].for_link.is_none());
            let seen: Vec<&tessera_core::challenge::Challenge> = match (how, second) {
                (SignedTwo, Some((_, other))) => vec![seen, other],
                (Cloned, Some((_, other))) => vec![other],
                (Signed | SignedWrongPasscode | Replayed | SignedTwo, _) => vec![seen],
                _ => vec![],
            };
            let actor = &mut self.actors[ai];
            for c in seen {
                // The phone stores its advanced counter before sending.
                let state = &mut actor.linked.as_mut().unwrap().1;
                let s = state.answer_signed(c, factor, &DEVICE_STORAGE_KEY, &mut actor.rng).unwrap();
                *state = DeviceState::open(&DEVICE_STORAGE_KEY, &s.state).unwrap();
                actor.signed += 1;
                actor.last_signed = Some((c.challenge_id.clone(), s.answer.clone(), actor.signed));
                answers.push((c.challenge_id.clone(), s.answer, Some(actor.signed), false));
            }
        }
        self.trace(|| format!("phone {slot} answers ({how:?})"));
        let mut kinds = Vec::new();
        for (challenge, answer, signed, copy) in answers {
            for _ in 0..self.rng.range(1, 3) {
                kinds.push(match for_link {
                    Some(new) => {
                        Kind::Vouch { slot: new, voucher: slot, challenge: challenge.clone(), answer: answer.clone() }
                    }
                    None => Kind::Answer { slot, challenge: challenge.clone(), answer: answer.clone(), signed, copy },
                });
            }
        }
        kinds
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
                    match self.store.apply(self.cfg.store.for_op(&op.kind), &sealed) {
                        Ok(_) => {
                            self.committed(op.server, &writes, &sealed, Some((&op, &reply)))?;
                            op.committed = true;
                            self.trace(|| {
                                format!("op {} ({}) committed {} writes", op.id, op.kind.label(), writes.len())
                            });
                            Phase::Respond { events, reply }
                        }
                        Err((Conflict, applied)) => {
                            // The broken one-by-one store keeps a prefix.
                            if applied > 0 {
                                self.committed(op.server, &writes[..applied], &sealed[..applied], Some((&op, &reply)))?;
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
        let none =
            Snapshot { offer: None, pending: None, device: None, challenge: None, devices: vec![], exists: false };
        match kind {
            Kind::Accept { .. } => Snapshot {
                offer: s.offers.get(p.opened.offer_id()).cloned(),
                // Only whether the device id exists matters.
                exists: s.pending.contains_key(id) || s.devices.contains_key(id),
                ..none
            },
            Kind::Confirm { .. } => Snapshot { pending: s.pending.get(id).cloned(), ..none },
            Kind::Totp { .. } | Kind::Unlink { .. } | Kind::Rename { .. } | Kind::Unlock { .. } => {
                Snapshot { device: s.devices.get(id).cloned(), ..none }
            }
            Kind::Status { .. } => {
                Snapshot { pending: s.pending.get(id).cloned(), device: s.devices.get(id).cloned(), ..none }
            }
            Kind::Issue { slot, only_mine: true, .. } => Snapshot {
                devices: s.devices.get(id).filter(|d| d.account == account_of(*slot)).cloned().into_iter().collect(),
                ..none
            },
            Kind::Issue { slot, .. } => Snapshot { devices: s.devices_of(account_of(*slot)), ..none },
            Kind::LinkChallenge { .. } => {
                let pending = s.pending.get(id).cloned();
                let devices = pending.as_ref().map(|p| s.devices_of(&p.account)).unwrap_or_default();
                Snapshot { pending, devices, ..none }
            }
            // The challenge, then its account's devices (the core keeps the
            // challenge's own), from the same snapshot.
            Kind::Answer { challenge, .. } | Kind::Vouch { challenge, .. } => {
                let c = s.challenges.get(challenge).cloned();
                let devices = c.as_ref().map(|c| s.devices_of(&c.account)).unwrap_or_default();
                let pending = matches!(kind, Kind::Vouch { .. }).then(|| s.pending.get(id).cloned()).flatten();
                Snapshot { pending, challenge: c, devices, ..none }
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
        let challenge = snap.challenge.as_ref().map(|r| server.open_challenge(r)).transpose().map_err(corrupt)?;
        let devices: Vec<DeviceRecord> =
            snap.devices.iter().map(|r| server.open_device(r)).collect::<Result<_>>().map_err(corrupt)?;
        let (writes, events, reply) = match &op.kind {
            Kind::Accept { slot } => {
                let exists = match self.cfg.store {
                    // The broken host reads the device id now, not with the offer.
                    StoreMode::TwoReads => {
                        let id = &self.u.devices[*slot].device_id;
                        self.store.pending.contains_key(id) || self.store.devices.contains_key(id)
                    }
                    _ => snap.exists,
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
                let r = server
                    .open_status_request(request)
                    .and_then(|s| s.answer(server, device.as_ref(), pending.as_ref(), now));
                (vec![], 0, Reply::Status(r))
            }
            Kind::Unlock { .. } => match &device {
                None => (vec![], 0, Reply::NoRecord),
                Some(d) => {
                    let o = d.unlock(now);
                    (o.writes, o.events.len(), Reply::Admin(o.result))
                }
            },
            Kind::Issue { payment, settings, .. } => {
                let approval = if *payment {
                    Approval::Transaction(Transaction {
                        amount: Amount::parse("125.50").unwrap(),
                        currency: "EUR".into(),
                        payee: "ACME Energy Ltd".into(),
                        text: vec!["Invoice 2026-118".into()],
                    })
                } else {
                    Approval::Login
                };
                match server.create_challenge(&devices, approval, *settings, now, &mut self.challenge_rng) {
                    Ok(q) => {
                        let id = q.record.challenge_id.clone();
                        (vec![Write::Challenge(q.record)], 0, Reply::Issue(Ok((id, q.qr_text))))
                    }
                    Err(e) => (vec![], 0, Reply::Issue(Err(e))),
                }
            }
            Kind::LinkChallenge { settings, .. } => match &pending {
                None => (vec![], 0, Reply::NoRecord),
                Some(p) => match server.create_link_challenge(p, &devices, *settings, now, &mut self.challenge_rng) {
                    Ok(q) => {
                        assert_eq!(q.record.for_link.as_deref(), Some(p.device_id.as_str()));
                        let id = q.record.challenge_id.clone();
                        (vec![Write::Challenge(q.record)], 0, Reply::Issue(Ok((id, q.qr_text))))
                    }
                    Err(e) => (vec![], 0, Reply::Issue(Err(e))),
                },
            },
            Kind::Answer { answer, .. } => match &challenge {
                None => (vec![], 0, Reply::NoRecord),
                Some(c) => {
                    let o = server.verify_answer(c, &devices, answer, now);
                    (o.writes, o.events.len(), Reply::Answer(o.result))
                }
            },
            Kind::Vouch { answer, .. } => match (&pending, &challenge) {
                (Some(p), Some(c)) => {
                    let o = server.confirm_with_authenticator(p, c, &devices, answer, now);
                    // The result is the new device record the outcome writes.
                    if let Ok(d) = &o.result {
                        assert!(o.writes.iter().any(|w| matches!(w, Write::Device(r) if r == d)));
                    }
                    (o.writes, o.events.len(), Reply::Vouch(o.result.map(|_| ())))
                }
                _ => (vec![], 0, Reply::NoRecord),
            },
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
    /// moment of a commit. `op` is the op and what it will answer (`None`:
    /// the portal inserting an offer).
    fn committed(
        &mut self,
        server: usize,
        writes: &[Write],
        sealed: &[StoredWrite],
        op: Option<(&Op, &Reply)>,
    ) -> Checked {
        self.commit_seq += 1;
        self.stats.commits += 1;
        self.dirty = true;
        let reply = op.map(|(_, r)| r);
        // The device whose answer this commit accepts.
        let answerer = match op {
            Some((op, r)) if r.accepts_answer() => Some(self.accepted_whole(op, writes)?),
            _ => None,
        };
        // A signed answer is accepted only above the device's last counter
        // (checked first: a signed answer accepted twice breaks this too).
        if let (Some(id), Some((Op { kind: Kind::Answer { signed: Some(c), .. }, .. }, _))) = (&answerer, op) {
            let last = self.ids[self.u.id_index(id)].last_counter;
            ensure!(last.is_none_or(|l| *c > l), SignedCounter, "{id} accepted counter {c} after {last:?}");
        }
        for (w, row) in writes.iter().zip(sealed) {
            self.mirror_row(server, w, row)?;
            match w {
                Write::Offer(r) => self.count_offer_write(r, reply)?,
                Write::PendingLink(r) => self.count_pending_write(r, reply)?,
                Write::Device(r) => self.count_device_write(r, op, answerer.as_deref())?,
                Write::Challenge(r) => self.count_challenge_write(r, op)?,
                other => panic!("the simulation makes no activation writes: {other:?}"),
            }
        }
        Ok(())
    }

    /// An accepted answer commits the answered challenge with the
    /// answering device's record, and for flow 2 with the confirmed link
    /// and the new device, all in one commit. Returns the answering device.
    fn accepted_whole(&self, op: &Op, writes: &[Write]) -> std::result::Result<String, Violation> {
        let answered = writes.iter().find_map(|w| match w {
            Write::Challenge(c) => match &c.state {
                ChallengeState::Answered { device_id, .. } => Some((c.challenge_id.clone(), device_id.clone())),
                ChallengeState::Open | ChallengeState::Expired { .. } => None,
            },
            _ => None,
        });
        let label = op.kind.label();
        let Some((cid, answerer)) = answered else {
            fail!(AnswerAtomic, "op {} ({label}) accepted without committing its challenge answered", op.id)
        };
        let device = writes.iter().any(|w| matches!(w, Write::Device(d) if d.device_id == answerer && d.version > 1));
        ensure!(device, AnswerAtomic, "challenge {cid} answered, the record of {answerer} not written with it");
        if let Kind::Vouch { slot, .. } = &op.kind {
            let id = &self.u.devices[*slot].device_id;
            let confirmed = writes.iter().any(
                |w| matches!(w, Write::PendingLink(p) if p.device_id == *id && matches!(p.state, PendingState::Confirmed { .. })),
            );
            let inserted = writes.iter().any(|w| matches!(w, Write::Device(d) if d.device_id == *id && d.version == 1));
            ensure!(confirmed && inserted, AnswerAtomic, "link challenge {cid} answered, {id} not linked with it");
        }
        Ok(answerer)
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
            (Write::Challenge(r), StoredWrite::Challenge(k)) => {
                m.challenges.insert(r.challenge_id.clone(), r.clone());
                portal.open_challenge(&s.challenges[&k.challenge_id]).ok().as_ref() == Some(r)
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
            // A wrong check code, or a wrong vouch code when the core counts
            // those on the link (not on the authenticator).
            Some(Reply::Confirm(Err(e))) if is_check_code_failure(e.code()) => {
                g.check_code_failures_committed += 1;
                let n = g.check_code_failures_committed;
                ensure!(n <= MAX_CONFIRM_ATTEMPTS, CheckCodeFailures, "{n} wrong check codes counted for {id}");
            }
            // A wrong vouch code (not the expiry, which writes the link
            // cancelled or, for an expired challenge, unchanged).
            Some(Reply::Vouch(Err(e))) if matches!(e.code(), ErrorCode::InvalidAnswer | ErrorCode::LockedOut) => {
                g.check_code_failures_committed += 1;
                let n = g.check_code_failures_committed;
                ensure!(n <= MAX_CONFIRM_ATTEMPTS, CheckCodeFailures, "{n} wrong vouch codes counted for {id}");
            }
            Some(Reply::Confirm(Ok(()))) | Some(Reply::Vouch(Ok(()))) => {
                g.confirms_committed += 1;
                ensure!(g.confirms_committed <= 1, ConfirmOnce, "{id} confirmed {} times", g.confirms_committed);
                // Only by its own method: a check code (flow 1) or an
                // existing authenticator (flow 2).
                let by_vouch = matches!(reply, Some(Reply::Vouch(_)));
                let method = if by_vouch { ConfirmMethod::Authenticator } else { ConfirmMethod::CheckCode };
                ensure!(r.confirm == method, ConfirmOnce, "{id} ({:?}) confirmed by {method:?}", r.confirm);
            }
            _ => {}
        }
        Ok(())
    }

    /// A challenge write: inserted, or answered once.
    fn count_challenge_write(&mut self, r: &ChallengeRecord, op: Option<(&Op, &Reply)>) -> Checked {
        let (check, seq, cid) = (self.cfg.check_versions, self.commit_seq, r.challenge_id.as_str());
        let g = self.challenges.entry(r.challenge_id.clone()).or_default();
        bump(check, cid, &mut g.version, r.version)?;
        let ChallengeState::Answered { device_id, .. } = &r.state else { return Ok(()) };
        let Some((op, reply)) = op.filter(|(_, reply)| reply.accepts_answer()) else {
            fail!(AnswerAtomic, "challenge {cid} written answered by an op that does not accept it")
        };
        g.accept_commits += 1;
        ensure!(g.accept_commits <= 1, ChallengeOnce, "challenge {cid} accepted {} times", g.accept_commits);
        ensure!(r.device_ids.contains(device_id), AnswerAtomic, "challenge {cid} answered by {device_id}, not its own");
        let answer = match &op.kind {
            Kind::Answer { answer, .. } | Kind::Vouch { answer, .. } => answer.clone(),
            _ => unreachable!(),
        };
        let vouch = matches!(reply, Reply::Vouch(_));
        ensure!(vouch == r.for_link.is_some(), AnswerAtomic, "challenge {cid} accepted by the wrong flow");
        g.answered_at = Some(seq);
        g.accepted_answer = Some(answer);
        // The answering device: linked and not locked when it commits.
        let d = &self.ids[self.u.id_index(device_id)];
        if let Some(at) = d.unlinked_at {
            fail!(UnlinkFinal, "challenge {cid} accepted from {device_id} after its unlink #{at}")
        }
        ensure!(!d.locked, Lockout, "challenge {cid} accepted from {device_id}, which is locked");
        Ok(())
    }

    /// A device write: inserted once, unlinked for good; successes (TOTP
    /// codes, answers), failures and unlocks counted.
    fn count_device_write(&mut self, r: &DeviceRecord, op: Option<(&Op, &Reply)>, answerer: Option<&str>) -> Checked {
        let (u, check, id, seq) = (self.u, self.cfg.check_versions, r.device_id.as_str(), self.commit_seq);
        let g = &mut self.ids[u.id_index(id)];
        bump(check, id, &mut g.device_version, r.version)?;
        if r.version == 1 {
            g.inserted_at = Some(seq);
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
        let Some((op, reply)) = op else { return Ok(()) };
        match reply {
            Reply::Totp(Ok(v)) => {
                let (step, last) = (v.matched, g.last_step_accepted);
                ensure!(!g.locked, Lockout, "{id} accepted a code after its lock");
                ensure!(last.is_none_or(|l| step > l), TotpOnce, "{id} accepted step {step} after {last:?}");
                g.last_step_accepted = Some(step);
                g.failures_since_reset = 0;
            }
            // The answering device of an accepted answer: proven, its count
            // reset, its counter (if signed) above every earlier one.
            _ if r.version > 1 && answerer == Some(id) => {
                ensure!(!g.locked, Lockout, "{id} accepted an answer after its lock");
                let failures = r.otp_state.throttle.failures();
                ensure!(failures == 0, Lockout, "{id} accepted an answer, its count stays at {failures}");
                g.failures_since_reset = 0;
                ensure!(r.proven, AnswerAtomic, "{id} accepted an answer, not proven");
                if matches!(reply, Reply::Vouch(_)) {
                    ensure!(r.vouch_failures == 0, Lockout, "{id} vouched, its vouch budget not reset");
                    g.vouch_failures = 0;
                }
                g.proven_at.get_or_insert(seq);
                if let Kind::Answer { signed: Some(c), .. } = &op.kind {
                    let (c, last) = (*c, g.last_counter);
                    ensure!(last.is_none_or(|l| c > l), SignedCounter, "{id} accepted counter {c} after {last:?}");
                    ensure!(
                        r.signed_counter == Some(c),
                        SignedCounter,
                        "{id} accepted counter {c}, stores {:?}",
                        r.signed_counter
                    );
                    g.last_counter = Some(c);
                }
            }
            // A refused code or answer that writes the device: a TOTP code
            // always counts a failure; an answer counts one or only marks
            // the device (a suspected copy of its keys); a wrong vouch code
            // never touches the device's lockout (a stranger may start a
            // flow-2 link). Counted: once per op, at most 5, the 5th locks.
            Reply::Totp(Err(_)) | Reply::Answer(Err(_)) | Reply::Vouch(Err(_)) => {
                let (written, before) = (r.otp_state.throttle.failures(), g.failures_since_reset);
                let counted = match reply {
                    Reply::Totp(_) => true,
                    Reply::Answer(_) => written != before,
                    _ => false,
                };
                if matches!(reply, Reply::Vouch(_)) && r.vouch_failures != g.vouch_failures {
                    g.vouch_failures += 1;
                    let (n, stored) = (g.vouch_failures, r.vouch_failures);
                    ensure!(stored == n, Lockout, "{id} holds {stored} wrong vouch codes of {n}");
                    ensure!(n <= MAX_VOUCH_FAILURES, Lockout, "{id} absorbed {n} wrong vouch codes");
                }
                if !counted {
                    let lock = r.otp_state.throttle.lock != Lock::Unlocked;
                    let what = reply.summary();
                    ensure!(written == before, Lockout, "{id} holds {written} of {before} failures after {what}");
                    ensure!(lock == g.locked, Lockout, "{id} locked: {lock}, by the commits {} ({what})", g.locked);
                    if matches!(reply, Reply::Answer(Err(e)) | Reply::Vouch(Err(e)) if e.code() == ErrorCode::DeviceCloned)
                    {
                        g.clone_flagged.get_or_insert(seq);
                    }
                    return Ok(());
                }
                g.failures_since_reset += 1;
                let n = g.failures_since_reset;
                ensure!(n <= MAX_FAILURES, Lockout, "{n} failures counted for {id} without a lock");
                ensure!(!g.failure_ops.contains(&op.id), Lockout, "op {} counted twice on {id}", op.id);
                g.failure_ops.push(op.id);
                let locked = r.otp_state.throttle.lock != Lock::Unlocked;
                ensure!(locked == (n == MAX_FAILURES), Lockout, "{id} locked {locked} after {n} failures");
                g.set_locked(seq, g.locked || locked);
            }
            Reply::Admin(Ok(())) if matches!(op.kind, Kind::Unlock { .. }) => {
                let (failures, lock) = (r.otp_state.throttle.failures(), r.otp_state.throttle.lock);
                ensure!(failures == 0 && lock == Lock::Unlocked, Lockout, "{id} unlocked to {failures}, {lock:?}");
                ensure!(r.vouch_failures == 0, Lockout, "{id} unlocked, its vouch budget not reset");
                g.failures_since_reset = 0;
                g.vouch_failures = 0;
                g.set_locked(seq, false);
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
                    ensure!(m.devices.contains_key(id), OneDevicePerId, "{id} confirmed without a device record");
                    let vouched = m.challenges.values().any(|c| {
                        c.for_link.as_deref() == Some(id.as_str()) && matches!(c.state, ChallengeState::Answered { .. })
                    });
                    let flow2 = p.confirm == ConfirmMethod::Authenticator;
                    ensure!(vouched == flow2, AnswerAtomic, "{id} ({:?}) confirmed, vouched: {vouched}", p.confirm)
                }
                PendingState::Cancelled { .. } => {}
            }
            version_is(check, id, p.version, g.pending_version)?;
        }
        for (cid, c) in &m.challenges {
            let g = &self.challenges[cid];
            match &c.state {
                ChallengeState::Open | ChallengeState::Expired { .. } => {
                    ensure!(
                        g.accept_commits == 0,
                        ChallengeOnce,
                        "challenge {cid} open or expired after its acceptance"
                    )
                }
                ChallengeState::Answered { device_id, .. } => {
                    ensure!(
                        g.accept_commits == 1,
                        AnswerAtomic,
                        "challenge {cid} answered, {} acceptances",
                        g.accept_commits
                    );
                    let proven = m.devices.get(device_id).is_some_and(|d| d.proven);
                    ensure!(proven, AnswerAtomic, "challenge {cid} answered by {device_id}, which is not proven");
                    if let Some(link) = &c.for_link {
                        let confirmed =
                            m.pending.get(link).is_some_and(|p| matches!(p.state, PendingState::Confirmed { .. }));
                        ensure!(confirmed, AnswerAtomic, "link challenge {cid} answered, {link} not confirmed");
                    }
                }
            }
            version_is(check, cid, c.version, g.version)?;
        }
        for (id, d) in &m.devices {
            let g = &self.ids[u.id_index(id)];
            let confirmed = m
                .pending
                .get(id)
                .is_some_and(|p| p.account == d.account && matches!(p.state, PendingState::Confirmed { .. }));
            ensure!(confirmed, OneDevicePerId, "device {id} has no confirmed link of its account");
            ensure!(g.unlinked_at.is_none() || is_unlinked(d), UnlinkFinal, "device {id} is active again");
            // What an accepted answer wrote (before the counts a lost update
            // also breaks).
            let (counter, accepted) = (d.signed_counter, g.last_counter);
            ensure!(
                counter == accepted,
                SignedCounter,
                "device {id} holds counter {counter:?}, the last accepted {accepted:?}"
            );
            ensure!(d.proven || g.proven_at.is_none(), AnswerAtomic, "device {id} answered a challenge, not proven");
            let (failures, counted) = (d.otp_state.throttle.consecutive_failures.failures(), g.failures_since_reset);
            ensure!(failures == counted, Lockout, "device {id} holds {failures} failures of {counted}");
            let (last, accepted) = (d.otp_state.last_accepted, g.last_step_accepted);
            ensure!(last == accepted, TotpOnce, "device {id} holds last step {last:?}, the last accepted {accepted:?}");
            let locked = d.otp_state.throttle.lock != Lock::Unlocked;
            ensure!(locked == g.locked, Lockout, "device {id} locked: {locked}, by the commits: {}", g.locked);
            let (vouch, counted) = (d.vouch_failures, g.vouch_failures);
            ensure!(vouch == counted, Lockout, "device {id} holds {vouch} wrong vouch codes of {counted}");
            version_is(check, id, d.version, g.device_version)?;
        }
        Ok(())
    }

    /// RESPOND: the answer reaches the phone or the user; check it against
    /// the committed state.
    fn respond(&mut self, op: &Op, reply: Reply) -> Checked {
        self.dirty = true;
        let label = match &reply {
            Reply::Accept { answer, result } => self.answer_accept(op, answer, result)?,
            Reply::Confirm(r) => self.answer_confirm(op, r)?,
            Reply::Totp(r) => self.answer_totp(op, r)?,
            Reply::Admin(r) if matches!(op.kind, Kind::Unlock { .. }) => self.answer_unlock(op, r)?,
            Reply::Admin(r) => self.answer_admin(op, r)?,
            Reply::Status(r) => self.answer_status(op, r)?,
            Reply::Issue(r) => self.answer_issue(op, r)?,
            Reply::Answer(r) => self.answer_answer(op, r)?,
            Reply::Vouch(r) => self.answer_vouch(op, r)?,
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
                self.phone_confirmed(slot);
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
                let link = m.pending.get(id);
                let flow2 = link.is_some_and(|l| l.confirm == ConfirmMethod::Authenticator);
                let closed = link.is_some_and(|l| l.is_closed());
                ensure!(closed || flow2, AnswersMatchState, "{id}: INVALID_STATE, but the link is open");
                if flow2 && !closed {
                    self.stats.race(race::CHECK_CODE_ON_FLOW2);
                }
            }
            Err(e) => fail!(AnswersMatchState, "{id}: unexpected confirm error {:?}", e.code()),
        }
        Ok(result_label(r, "CONFIRMED"))
    }

    /// A new challenge (or link challenge) reaches a screen only after its
    /// insert committed; a refusal is true of the snapshot read.
    fn answer_issue(&mut self, op: &Op, r: &Result<(String, String)>) -> Labelled {
        let (u, slot, seq) = (self.u, op.kind.slot(), op.read_seq);
        let account = account_of(slot);
        let link = matches!(op.kind, Kind::LinkChallenge { .. });
        // The devices the op read: the account's (or, for a challenge of
        // one device, the phone's own) in the registry after `seq`.
        let only_mine = matches!(op.kind, Kind::Issue { only_mine: true, .. });
        let read: Vec<(&str, &IdGhost)> = self
            .mirror
            .devices
            .values()
            .filter(|d| d.account == account && (!only_mine || d.device_id == u.devices[slot].device_id))
            .map(|d| (d.device_id.as_str(), &self.ids[u.id_index(&d.device_id)]))
            .filter(|(_, g)| g.inserted_at.is_some_and(|i| i <= seq))
            .collect();
        let active = || read.iter().filter(|(_, g)| g.active_at(seq));
        let label = match r {
            Ok((cid, qr)) => {
                ensure!(op.committed, AnswersMatchState, "challenge {cid} shown before its insert committed");
                ensure!(self.mirror.challenges.contains_key(cid), AnswersMatchState, "challenge {cid} not stored");
                let for_link = link.then_some(slot);
                self.issued.push(Issued { id: cid.clone(), qr: qr.clone(), account, for_link });
                if link {
                    // The new phone shows it: its user picks up her old one.
                    let more = self.rng.range(1, 2) as u32;
                    self.actors
                        .iter_mut()
                        .filter(|a| account_of(a.slot) == account && a.confirmed)
                        .for_each(|a| a.budget += more);
                }
                "ISSUED"
            }
            Err(e) => {
                let c = e.code();
                let ok = match c {
                    ErrorCode::DeviceUnknown => read.is_empty(),
                    // A link challenge when no device may vouch any more.
                    ErrorCode::LockedOut => link,
                    ErrorCode::DeviceRevoked => !read.is_empty() && active().next().is_none(),
                    // Every active device is suspected of being copied: a
                    // challenge for none of them.
                    ErrorCode::DeviceCloned => active().next().is_some() && active().all(|(_, g)| g.flagged_at(seq)),
                    ErrorCode::AuthenticatorNeverUsed => {
                        link && active().all(|(_, g)| g.proven_at.is_none_or(|p| p > seq))
                    }
                    ErrorCode::InvalidState => {
                        link && self
                            .mirror
                            .pending
                            .get(&u.devices[slot].device_id)
                            .is_some_and(|p| p.is_closed() || p.confirm != ConfirmMethod::Authenticator)
                    }
                    ErrorCode::TokenExpired => {
                        link && self
                            .mirror
                            .pending
                            .get(&u.devices[slot].device_id)
                            .is_some_and(|p| p.confirm_by <= self.now)
                    }
                    _ => false,
                };
                ensure!(ok, AnswersMatchState, "{} of phone {slot} refused {c:?}", op.kind.label());
                c.as_str()
            }
        };
        Ok(label)
    }

    /// An answer (typed on the portal or signed): accepted only after its
    /// write committed, once per challenge; a refusal counted (committed)
    /// or true of the snapshot read.
    fn answer_answer(&mut self, op: &Op, r: &Result<AnswerAccepted>) -> Labelled {
        let Kind::Answer { slot, challenge, answer, signed, copy } = &op.kind else { unreachable!() };
        let id = self.u.devices[*slot].device_id.as_str();
        match r {
            Ok(a) => {
                ensure!(a.device_id == id, AnswersMatchState, "phone {slot}'s answer accepted as {}'s", a.device_id);
                self.accepted_answer(op, challenge, id)?;
                if op.retries > 0 {
                    self.stats.race(race::ACCEPTED_AFTER_CONFLICT);
                }
            }
            Err(e) => {
                self.refused_answer(op, challenge, answer, *signed, id, e.code())?;
                // A clone alarm for a phone whose keys were never copied, for
                // its own answer (its answers arrived out of order).
                let copied = self.actors.iter().any(|a| a.slot == *slot && a.clone.is_some());
                let g = &self.ids[self.u.devices[*slot].id];
                let own = signed.is_some_and(|n| g.last_counter.is_some_and(|l| n <= l)) || g.flagged_at(op.read_seq);
                if e.code() == ErrorCode::DeviceCloned && own && !copy && !copied {
                    self.stats.genuine_flagged_cloned += 1;
                    ensure!(!self.cfg.strict, AnswersMatchState, "{id}: DEVICE_CLONED for its own answer");
                }
            }
        }
        self.user_sees(*slot, challenge, r.as_ref().err().map(|e| e.code()));
        Ok(result_label(r, "ACCEPTED"))
    }

    /// The user learns the phone is linked, and goes on using it for a while
    /// (logins, payments, codes).
    fn phone_confirmed(&mut self, slot: usize) {
        let more = self.rng.range(0, 3) as u32;
        for a in self.actors.iter_mut().filter(|a| a.slot == slot && !a.confirmed) {
            a.confirmed = true;
            a.budget += more;
        }
    }

    /// What the user of `slot` learns from an answer to `cid`: that the
    /// challenge is over, or that the device is locked.
    fn user_sees(&mut self, slot: usize, cid: &str, refusal: Option<ErrorCode>) {
        for a in self.actors.iter_mut().filter(|a| a.slot == slot) {
            match refusal {
                None | Some(ErrorCode::TokenAlreadyUsed | ErrorCode::TokenExpired | ErrorCode::InvalidState) => {
                    a.done.push(cid.to_string())
                }
                Some(ErrorCode::LockedOut) => a.saw_locked = true,
                _ => {}
            }
        }
    }

    /// A flow-2 confirmation, as the new phone reads it.
    fn answer_vouch(&mut self, op: &Op, r: &Result<()>) -> Labelled {
        let Kind::Vouch { slot, voucher, challenge, answer } = &op.kind else { unreachable!() };
        let (u, slot) = (self.u, *slot);
        let (id, voucher_id) = (u.devices[slot].device_id.as_str(), u.devices[*voucher].device_id.as_str());
        let link = self.mirror.pending.get(id);
        let confirmed = link.is_some_and(|l| matches!(l.state, PendingState::Confirmed { .. }));
        match r {
            Ok(()) => {
                ensure!(
                    confirmed && self.mirror.devices.contains_key(id),
                    AnswersMatchState,
                    "{id}: vouched, not linked"
                );
                self.accepted_answer(op, challenge, voucher_id)?;
                let g = &mut self.ids[u.devices[slot].id];
                g.confirms_answered += 1;
                ensure!(g.confirms_answered <= 1, ConfirmOnce, "{id}: {} confirmations answered", g.confirms_answered);
                self.phone_confirmed(slot);
            }
            Err(e) => {
                let code = e.code();
                match code {
                    ErrorCode::InvalidState => {
                        ensure!(
                            link.is_some_and(|l| l.is_closed()),
                            AnswersMatchState,
                            "{id}: INVALID_STATE, link open"
                        );
                        if confirmed && op.retries > 0 {
                            self.stats.race(race::VOUCH_LOST);
                        }
                    }
                    ErrorCode::TokenExpired => {
                        let c = &self.mirror.challenges[challenge.as_str()];
                        let past = link.is_some_and(|l| l.confirm_by <= self.now) || c.expires_at <= self.now;
                        ensure!(past, AnswersMatchState, "{id}: TOKEN_EXPIRED before the deadlines");
                        // The new phone reads "not confirmed in time, link
                        // again": never for a link whose confirmation
                        // committed (flow 1 writes its expiry for this).
                        if confirmed {
                            self.stats.vouch_expired_after_confirm += 1;
                            ensure!(
                                !self.cfg.strict,
                                AnswersMatchState,
                                "{id}: TOKEN_EXPIRED answered to the new phone, its link is confirmed"
                            );
                        }
                    }
                    // A known core gap: the core drops the devices that may not
                    // vouch before judging, so a link challenge whose voucher
                    // was unlinked is refused DEVICE_UNKNOWN (another device
                    // may vouch) or LOCKED_OUT (none may), not DEVICE_REVOKED.
                    ErrorCode::DeviceUnknown | ErrorCode::LockedOut
                        if !op.committed && self.voucher_gone(op, challenge) =>
                    {
                        self.stats.vouch_misnamed += 1;
                        ensure!(
                            !self.cfg.strict,
                            AnswersMatchState,
                            "{id}: vouch refused {code:?}, its voucher unlinked"
                        );
                    }
                    _ => self.refused_answer(op, challenge, answer, None, voucher_id, code)?,
                }
            }
        }
        self.user_sees(*voucher, challenge, r.as_ref().err().map(|e| e.code()));
        Ok(result_label(r, "CONFIRMED"))
    }

    /// Were all the devices of challenge `cid` unlinked (and none of them
    /// locked, suspected or out of vouches) when `op` read?
    fn voucher_gone(&self, op: &Op, cid: &str) -> bool {
        let (u, seq) = (self.u, op.read_seq);
        self.mirror.challenges[cid].device_ids.iter().map(|d| &self.ids[u.id_index(d)]).all(|g| {
            !g.active_at(seq) && !g.locked_at(seq) && !g.flagged_at(seq) && g.vouch_failures < MAX_VOUCH_FAILURES
        })
    }

    /// An accepted answer: after its commit, the challenge answered by
    /// that device; one acceptance answered per challenge.
    fn accepted_answer(&mut self, op: &Op, cid: &str, device_id: &str) -> Checked {
        ensure!(op.committed, AnswersMatchState, "challenge {cid} accepted before committing");
        let held = self
            .mirror
            .challenges
            .get(cid)
            .is_some_and(|c| matches!(&c.state, ChallengeState::Answered { device_id: d, .. } if d == device_id));
        ensure!(held, AnswersMatchState, "challenge {cid} accepted, not stored as answered by {device_id}");
        let g = self.challenges.get_mut(cid).unwrap();
        g.accepted_answers += 1;
        ensure!(g.accepted_answers <= 1, ChallengeOnce, "challenge {cid}: {} acceptances answered", g.accepted_answers);
        Ok(())
    }

    /// A refused answer names a fact of the snapshot the op read (or the
    /// failure it committed).
    fn refused_answer(
        &mut self,
        op: &Op,
        cid: &str,
        answer: &str,
        signed: Option<u64>,
        signer: &str,
        code: ErrorCode,
    ) -> Checked {
        let (u, seq) = (self.u, op.read_seq);
        let c = &self.mirror.challenges[cid];
        let g = &self.challenges[cid];
        // The challenge's devices in the registry when the op read.
        let devices: Vec<&IdGhost> = c.device_ids.iter().map(|d| &self.ids[u.id_index(d)]).collect();
        let active: Vec<&&IdGhost> = devices.iter().filter(|g| g.active_at(seq)).collect();
        let s = &self.ids[u.id_index(signer)];
        let ok = match code {
            ErrorCode::TokenAlreadyUsed => g.answered_at.is_some_and(|a| a <= seq),
            ErrorCode::TokenExpired => {
                if g.accepted_answer.as_deref() == Some(answer) {
                    // The same answer was accepted by another server.
                    self.stats.stale_refusals += 1;
                }
                c.expires_at <= self.now
            }
            // Counted; or a signed answer nothing was counted for: its
            // signer unlinked, or its counter overtaken by a later answer.
            ErrorCode::InvalidAnswer => {
                op.committed
                    || signed.is_some_and(|n| !s.active_at(seq) || n == 0 || s.last_counter.is_some_and(|l| n <= l))
            }
            ErrorCode::LockedOut => {
                // A device suspected of being copied is no candidate: the
                // others decide whether all are locked.
                let candidates: Vec<_> = active.iter().filter(|g| !g.flagged_at(seq)).collect();
                let all_locked = !candidates.is_empty() && candidates.iter().all(|g| g.locked_at(seq));
                let stale = !op.committed && !all_locked && signed.is_some() && s.locked_at(seq);
                if !op.committed && (all_locked || stale) && !s.locked {
                    self.stats.race(race::LOCKED_BEFORE_UNLOCK);
                }
                // A vouch is also refused when no device may vouch any more.
                let vouch = matches!(op.kind, Kind::Vouch { .. });
                op.committed || all_locked || stale || vouch
            }
            ErrorCode::DeviceRevoked => {
                let revoked = active.is_empty();
                if revoked && op.retries > 0 {
                    self.stats.race(race::REVOKED_AFTER_CONFLICT);
                }
                revoked
            }
            // A counter not above the last accepted, or a device the portal
            // already suspects: this one, or (a known core gap: the core
            // refuses every answer to a challenge that names a suspected
            // device) another device of the challenge.
            ErrorCode::DeviceCloned => {
                let own = signed.is_some_and(|n| s.last_counter.is_some_and(|l| n <= l)) || s.flagged_at(seq);
                let sibling = devices.iter().any(|g| g.flagged_at(seq));
                if !own && sibling {
                    self.stats.cloned_misattributed += 1;
                    ensure!(!self.cfg.strict, AnswersMatchState, "{signer}: DEVICE_CLONED for another device's copy");
                }
                own || sibling
            }
            ErrorCode::MalformedMessage => !op.committed,
            _ => false,
        };
        ensure!(ok, AnswersMatchState, "{} of challenge {cid} refused {code:?}", op.kind.label());
        let old_counter = signed.is_some_and(|n| s.last_counter.is_some_and(|l| n <= l));
        // A copy caught by its counter: the portal may refuse this device
        // from now on (the core marks it in the same commit, if it writes).
        if code == ErrorCode::DeviceCloned && old_counter {
            let at = self.commit_seq;
            self.ids[u.id_index(signer)].clone_flagged.get_or_insert(at);
        }
        if old_counter && !op.committed && matches!(code, ErrorCode::DeviceCloned | ErrorCode::InvalidAnswer) {
            self.stats.race(race::COUNTER_NOT_ABOVE);
        }
        if code == ErrorCode::TokenAlreadyUsed && op.retries > 0 {
            self.stats.race(race::USED_AFTER_CONFLICT);
        }
        Ok(())
    }

    /// An unlock: after its commit; "not locked" true of the snapshot.
    fn answer_unlock(&mut self, op: &Op, r: &Result<()>) -> Labelled {
        let (u, slot, seq) = (self.u, op.kind.slot(), op.read_seq);
        let (id, g) = (u.devices[slot].device_id.as_str(), &self.ids[u.devices[slot].id]);
        match r {
            Ok(()) => {
                ensure!(op.committed, AnswersMatchState, "{id}: unlock answered before committing");
                if op.retries > 0 {
                    self.stats.race(race::UNLOCK_AFTER_CONFLICT);
                }
                self.actors.iter_mut().filter(|a| a.slot == slot).for_each(|a| a.saw_locked = false);
            }
            Err(e) if e.code() == ErrorCode::InvalidState => {
                // Not locked, unlinked, or suspected of being copied (to be
                // unlinked, not unlocked).
                let ok = !g.active_at(seq) || !g.locked_at(seq) || g.flagged_at(seq);
                ensure!(ok, AnswersMatchState, "{id}: 'not locked' answered, but it was");
                if g.locked && g.active_at(self.commit_seq) {
                    self.stats.race(race::UNLOCK_BEFORE_LOCK);
                }
            }
            Err(e) => fail!(AnswersMatchState, "{id}: unexpected unlock error {:?}", e.code()),
        }
        Ok(result_label(r, "OK"))
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
                    // The fifth failure (committed), or locked when the op
                    // read (an unlock may have committed since).
                    let locked = op.committed || g.locked_at(op.read_seq);
                    ensure!(locked, AnswersMatchState, "{id}: LOCKED_OUT, but not locked");
                    if !g.locked {
                        self.stats.race(race::LOCKED_BEFORE_UNLOCK);
                    }
                    self.actors.iter_mut().filter(|a| a.slot == slot).for_each(|a| a.saw_locked = true);
                }
                ErrorCode::DeviceRevoked => {
                    ensure!(device.is_some_and(is_unlinked), AnswersMatchState, "{id}: DEVICE_REVOKED, but linked")
                }
                // A device the portal suspects of being copied.
                ErrorCode::DeviceCloned => {
                    ensure!(g.flagged_at(op.read_seq), AnswersMatchState, "{id}: DEVICE_CLONED, never suspected")
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

/// The first violation of each invariant over `seeds` (each seed stops at
/// its first violation), and how many seeds broke it; stops early once every
/// invariant of `wanted` was caught.
fn caught(seeds: std::ops::Range<u64>, cfg: Config, wanted: &[Invariant]) -> BTreeMap<Invariant, (u64, Failure)> {
    let mut caught: BTreeMap<Invariant, (u64, Failure)> = BTreeMap::new();
    for seed in seeds {
        if let Err(f) = Sim::new(seed, cfg).run() {
            caught.entry(f.violation.invariant).or_insert((0, f)).0 += 1;
        }
        if !wanted.is_empty() && wanted.iter().all(|i| caught.contains_key(i)) {
            break;
        }
    }
    caught
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
/// host named by `TESSERA_SIM_STORE` if set).
#[test]
fn the_host_contract_holds_for_every_seeded_interleaving() {
    if let Some(seed) = env_u64("TESSERA_SIM_TRACE") {
        let name = std::env::var("TESSERA_SIM_STORE").unwrap_or_default();
        let modes = [
            StoreMode::LastWriterWins,
            StoreMode::OneByOne,
            StoreMode::TwoReads,
            StoreMode::ChallengesLastWriterWins,
            StoreMode::ChallengesOneByOne,
        ];
        let store = modes.into_iter().find(|m| m.name() == name).unwrap_or(StoreMode::Contract);
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
            ("challenge", "ISSUED"),
            ("challenge", "DEVICE_REVOKED"),
            ("answer", "ACCEPTED"),
            ("answer", "INVALID_ANSWER"),
            ("answer", "LOCKED_OUT"),
            ("answer", "TOKEN_ALREADY_USED"),
            ("answer", "TOKEN_EXPIRED"),
            ("answer", "DEVICE_REVOKED"),
            ("answer", "MALFORMED_MESSAGE"),
            ("link_challenge", "ISSUED"),
            ("link_challenge", "AUTHENTICATOR_NEVER_USED"),
            ("link_challenge", "INVALID_STATE"),
            ("vouch", "CONFIRMED"),
            ("vouch", "INVALID_ANSWER"),
            ("vouch", "INVALID_STATE"),
            ("vouch", "TOKEN_EXPIRED"),
            ("unlock", "OK"),
            ("unlock", "INVALID_STATE"),
        ] {
            assert!(answered(k, r) > 0, "no {k} answered {r} in {count} seeds");
        }
        for r in [
            race::USED_AFTER_CONFLICT,
            race::ACCEPTED_AFTER_CONFLICT,
            race::REVOKED_AFTER_CONFLICT,
            race::COUNTER_NOT_ABOVE,
            race::LOCKED_BEFORE_UNLOCK,
            race::UNLOCK_BEFORE_LOCK,
            race::VOUCH_LOST,
            race::CHECK_CODE_ON_FLOW2,
        ] {
            assert!(stats.races.get(r).is_some_and(|n| *n > 0), "no race '{r}' in {count} seeds");
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
        Invariant::Lockout,
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

/// Core gaps the simulation found, now closed; their seeds replay in
/// strict mode (`TESSERA_SIM_STRICT=1 TESSERA_SIM_TRACE=<seed>` shows one):
///
/// - 1339, 18171: a flow-2 vouch computed from a snapshot older than another
///   server's confirmation of the same link was refused `TOKEN_EXPIRED`
///   without a write, so the new phone was told to link again while linked.
///   An expired challenge is now written `Expired` and a spent challenge's
///   refusal writes the link (next version): the stale refusal loses its
///   compare-and-set and reads the confirmed link.
/// - 94 (`LOCKED_OUT`), 325 (`DEVICE_UNKNOWN`): a vouch whose voucher was
///   unlinked got the wrong refusal; now `DEVICE_REVOKED`.
/// - 21418: a device suspected of being copied blocked its siblings'
///   answers to a challenge for both; now it is only no candidate.
/// - 1754, 8099: challenges and lock refusals leave suspected devices out.
#[test]
fn the_core_gaps_the_simulation_found_stay_closed() {
    let strict = Config { strict: true, ..Config::contract() };
    for seed in [1339, 18171, 94, 325, 21418, 1754, 8099] {
        if let Err(f) = Sim::new(seed, strict).run() {
            panic!("{f}");
        }
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
/// one (not all or nothing) must be caught: an offer used without its
/// pending link, a challenge answered without its device's record.
#[test]
fn a_store_without_transactions_is_caught_by_the_checker() {
    let cfg = Config { store: StoreMode::OneByOne, ..Config::contract() };
    let expected = [Invariant::QrLinksOnce, Invariant::AnswerAtomic];
    let caught = caught(0..CONTROL_SEEDS * 10, cfg, &expected);
    for (n, f) in caught.values() {
        println!("one write at a time ({n} seeds): {f}");
    }
    for i in expected {
        assert!(caught.contains_key(&i), "no seed of a store without transactions broke {i:?}");
    }
}

/// Negative control: a host whose challenge endpoints (create, verify,
/// vouch, unlock) write with plain upserts, while linking keeps the
/// contract. Each guarantee of challenges must be caught by its own check:
/// a challenge accepted twice, a signed counter accepted again, a failure
/// lost, an answer accepted after the unlink, an acceptance undone.
#[test]
fn a_host_whose_challenge_writes_skip_the_compare_and_set_is_caught() {
    let cfg = Config { store: StoreMode::ChallengesLastWriterWins, check_versions: false, ..Config::contract() };
    let expected = [
        Invariant::ChallengeOnce,
        Invariant::SignedCounter,
        Invariant::Lockout,
        Invariant::UnlinkFinal,
        Invariant::AnswerAtomic,
    ];
    let caught = caught(0..CONTROL_SEEDS * 4, cfg, &expected);
    for (n, f) in caught.values() {
        println!("challenge writes without compare-and-set ({n} seeds): {f}");
    }
    for i in expected {
        assert!(caught.contains_key(&i), "no seed of a host without compare-and-set on challenges broke {i:?}");
    }
}

/// Negative control: a host whose challenge endpoints apply their writes
/// one by one: an answer committed without the device's record.
#[test]
fn a_host_whose_challenge_writes_are_not_one_transaction_is_caught() {
    let cfg = Config { store: StoreMode::ChallengesOneByOne, ..Config::contract() };
    let f = first_failure(CONTROL_SEEDS * 4, cfg).expect("the checker missed challenge writes one by one");
    println!("challenge writes one at a time: {f}");
    assert_eq!(f.violation.invariant, Invariant::AnswerAtomic);
}
