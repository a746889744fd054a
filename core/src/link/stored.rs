//! Records as a host stores them: the plain columns it queries (ids,
//! account, times, status) next to `sealed`, the whole record encrypted and
//! authenticated under the portal's storage key. The sealed copy is the
//! truth: operations read it back with [`Portal::open_record`], so a row
//! whose columns were edited by hand cannot change what the SDK does.

use super::portal::{DeviceRecord, DeviceStatus, LinkOfferRecord, PendingLinkRecord, Portal};
use crate::crypto::RandomSource;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A stored link offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffer {
    /// Lookup key (hex).
    pub offer_id: String,
    /// Account.
    pub account: String,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// When a device used it.
    pub used_at: Option<u64>,
    /// Sealed record.
    pub sealed: Vec<u8>,
}

/// A stored pending link (waiting for its check code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// No longer usable.
    pub closed: bool,
    /// Sealed record.
    pub sealed: Vec<u8>,
}

/// A stored registry entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Sealed record.
    pub sealed: Vec<u8>,
}

impl Portal {
    /// Seal an offer for storage.
    pub fn store_offer(&self, r: &LinkOfferRecord, rng: &mut dyn RandomSource) -> StoredOffer {
        StoredOffer {
            offer_id: r.offer_id.clone(),
            account: r.account.clone(),
            expires_at: r.expires_at,
            used_at: r.used_at,
            sealed: self.seal_record(r, rng),
        }
    }

    /// Seal a pending link for storage.
    pub fn store_pending(&self, r: &PendingLinkRecord, rng: &mut dyn RandomSource) -> StoredPendingLink {
        StoredPendingLink {
            device_id: r.device_id.clone(),
            account: r.account.clone(),
            device_name: r.device_name.clone(),
            confirm_by: r.confirm_by,
            attempts: r.attempts,
            closed: r.closed,
            sealed: self.seal_record(r, rng),
        }
    }

    /// Seal a device record for storage.
    pub fn store_device(&self, r: &DeviceRecord, rng: &mut dyn RandomSource) -> StoredDevice {
        StoredDevice {
            device_id: r.device_id.clone(),
            account: r.account.clone(),
            name: r.name.clone(),
            linked_at: r.linked_at,
            last_used_at: r.last_used_at,
            status: r.status,
            sealed: self.seal_record(r, rng),
        }
    }
}
