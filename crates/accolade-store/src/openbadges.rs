//! Models of the Open Badges 3.0 issuer: signing keys, signed credentials, their status lists
//! and the issuer's place in the outgoing-event stream. The documents themselves are built and
//! signed in `accolade-openbadges`; the store keeps them exactly as signed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use accolade_domain::award::Award;
use accolade_domain::template::Template;

/// An issuer signing key as stored. The secret is sealed by the server's secrets box; the store
/// never sees it in the clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObKey {
    /// The verification method's fragment, e.g. `key-1` (the DID URL is `<did>#<id>`).
    pub id: String,
    /// The Ed25519 public key as a Multikey `publicKeyMultibase` (`z6Mk…`).
    pub public_multibase: String,
    #[serde(skip)]
    pub secret_sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// When a newer key replaced it; `None` for the active key (exactly one).
    pub retired_at: Option<DateTime<Utc>>,
}

/// A key to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObKey {
    pub id: String,
    pub public_multibase: String,
    pub secret_sealed: Vec<u8>,
}

/// Where the issuer stands in the outgoing-event stream (opaque to callers: pass it back): after
/// the event `id`, at `position` (SQLite: its rowid; PostgreSQL: its transaction id, the `tx` of
/// the webhook cursor). The default, `(0, "")`, is the beginning of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObCursor {
    pub position: i64,
    pub id: String,
}

/// An award of a local template to sign, with what its credential says. Its credential id and
/// status-list entry are reserved by the claim (the same on every later claim of the award, so a
/// crash between claiming and completing signs the same credential again, never a second one).
#[derive(Debug, Clone, PartialEq)]
pub struct ObIssue {
    pub award: Award,
    pub template: Template,
    pub learner_email: Option<String>,
    pub learner_name: Option<String>,
    /// Random UUID (v4, hyphenated): the credential's public id, in its URL and `urn:uuid:` id.
    pub credential_id: String,
    pub status_list: i64,
    pub status_index: i64,
}

/// A batch claimed by [`crate::OpenBadgesStore::ob_claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct ObWork {
    /// The cursor the batch starts after (pass back to `ob_complete`).
    pub from: ObCursor,
    /// The cursor after the batch's last outgoing event.
    pub to: ObCursor,
    /// Awards of local templates to sign, in commit order (each once; none already signed).
    pub issues: Vec<ObIssue>,
    /// Awards of local templates revoked in this batch (their status bits are set on completion).
    pub revoked_awards: Vec<String>,
    /// Outgoing events in the batch (including Credly templates' events, which are skipped).
    pub events: u64,
}

/// A signed credential handed back to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCredential {
    pub award_id: String,
    /// The JSON document exactly as signed (served byte for byte).
    pub document: String,
    pub key_id: String,
    pub valid_until: Option<DateTime<Utc>>,
}

/// What [`crate::OpenBadgesStore::ob_complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObCompleted {
    /// Credentials stored by this call (already-signed ones are left as they are).
    pub signed: u64,
    /// Status bits set by this call.
    pub revoked: u64,
}

/// A stored credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObCredential {
    pub credential_id: String,
    pub award_id: String,
    pub template_id: String,
    pub learner: String,
    pub document: String,
    pub key_id: String,
    pub status_list: i64,
    pub status_index: i64,
    pub signed_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    /// When its status bit was set.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A Bitstring Status List as stored: the raw bits (index 0 = the most significant bit of the
/// first byte) and its last signed credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObStatusList {
    pub id: i64,
    /// Number of entries (bits); `bits.len() * 8`.
    pub size: i64,
    pub bits: Vec<u8>,
    /// Entries reserved by credentials.
    pub used: i64,
    /// Bumped by every change of `bits`.
    pub version: i64,
    /// The version `document` was signed at (0: never signed).
    pub signed_version: i64,
    pub document: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Issuer totals for the dashboard, metrics and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ObTotals {
    pub credentials: u64,
    pub revoked: u64,
    pub status_lists: u64,
    /// Status lists changed since they were last signed.
    pub lists_unsigned: u64,
}

/// Sets entry `index` of a status list's bits (index 0 = the most significant bit of the first
/// byte, as Bitstring Status List 1.0 orders them). An index outside the list is an error.
pub fn set_status_bit(bits: &mut [u8], index: i64) -> Result<(), crate::StoreError> {
    let outside = || crate::StoreError::Other(format!("status index {index} is outside its list"));
    let index = usize::try_from(index).map_err(|_| outside())?;
    let byte = bits.get_mut(index / 8).ok_or_else(outside)?;
    *byte |= 0x80 >> (index % 8);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_zero_is_the_first_bytes_most_significant_bit() {
        let mut bits = vec![0u8; 2];
        set_status_bit(&mut bits, 0).unwrap();
        set_status_bit(&mut bits, 9).unwrap();
        set_status_bit(&mut bits, 15).unwrap();
        assert_eq!(bits, [0b1000_0000, 0b0100_0001]);
        assert!(set_status_bit(&mut bits, 16).is_err());
        assert!(set_status_bit(&mut bits, -1).is_err());
    }
}
