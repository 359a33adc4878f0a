//! The Open Badges 3.0 issuer: signing keys, credentials reserved, signed and served, and the
//! Bitstring Status Lists that revoke them.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::openbadges::*;

/// Keys, credentials and status lists of the Open Badges issuer.
///
/// The issuer follows the outgoing-event stream (`badge.awarded`/`badge.revoked`) with its own
/// cursor, in commit order, like the webhook fan-out: claim a batch (reserving each award's
/// credential id and status-list entry), sign it with no transaction open, complete it (store
/// the documents, set revoked awards' bits, move the cursor) in one transaction.
#[async_trait]
pub trait OpenBadgesStore: Send + Sync {
    /// Every signing key, oldest first.
    async fn ob_keys(&self) -> Result<Vec<ObKey>>;

    /// Adds `key` as the active key, retiring the active one (kept, so credentials it signed
    /// still verify) in the same transaction. With `only_if_none`, nothing is added when any key
    /// exists (first start of several instances at once: one key wins). Returns the active key
    /// afterwards. `Conflict` (`ob_key_exists`) if a key with `key.id` exists, changing nothing.
    async fn ob_add_key(
        &self,
        key: NewObKey,
        only_if_none: bool,
        now: DateTime<Utc>,
    ) -> Result<ObKey>;

    /// Claims the next batch of up to `limit` outgoing events after the issuer cursor, in commit
    /// order, for `holder` until `lease_until` (the lease is written with the claim). `None` when
    /// another holder's lease is live (`lease_until > now`) or nothing is waiting; the same
    /// holder may claim again (the cursor has not moved: the same events come back). For each
    /// `badge.awarded` event of a local template's award, reserves (or finds the earlier
    /// reservation of) a credential id and an unused entry at a random index of the newest
    /// status list that is less than half used, opening a new list of `list_size` entries
    /// (clear bits, version 1, never signed) when none is. An award whose credential is signed
    /// already is not issued again. `badge.revoked` events of local templates' awards go to
    /// `revoked_awards`; Credly templates' events are only counted. `list_size` must be a
    /// positive multiple of 8.
    async fn ob_claim(
        &self,
        holder: &str,
        limit: u32,
        list_size: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ObWork>>;

    /// Completes a claimed batch in one transaction: stores each signed document (only where
    /// none is stored: a credential is immutable), then sets the status bit of every revoked
    /// award's credential not revoked yet (bumping its list's version once per batch), moves the
    /// cursor to `work.to` and releases the lease. A batch with nothing to sign (only skipped
    /// events, or only revocations) is completed with an empty `signed`. Returns `None`, writing
    /// nothing, when the cursor is no longer at `work.from` or the lease is not `holder`'s (an
    /// expired lease nobody took over still completes).
    async fn ob_complete(
        &self,
        holder: &str,
        work: &ObWork,
        signed: Vec<SignedCredential>,
        now: DateTime<Utc>,
    ) -> Result<Option<ObCompleted>>;

    /// Status lists whose bits changed since they were signed (`version > signed_version`).
    async fn ob_lists_to_sign(&self, limit: u32) -> Result<Vec<ObStatusList>>;

    /// Stores a status list's signed credential for `version` (and records it as the signed
    /// version), unless that or a newer version is already stored or the list has no such
    /// version yet. Returns whether it was stored (`false` for an unknown list).
    async fn ob_store_status_list(
        &self,
        id: i64,
        version: i64,
        document: String,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// A status list. `NotFound(StatusList)` if there is none.
    async fn ob_status_list(&self, id: i64) -> Result<ObStatusList>;

    /// A signed credential by its public id. `NotFound(Credential)` if none is signed.
    async fn ob_credential(&self, credential_id: &str) -> Result<ObCredential>;

    /// The signed credential of an award, if any.
    async fn ob_credential_of_award(&self, award_id: &str) -> Result<Option<ObCredential>>;

    /// Credential ids of those of `award_ids` that have a signed credential, by award id.
    async fn ob_credential_ids(&self, award_ids: &[String]) -> Result<HashMap<String, String>>;

    /// Issuer totals (kept as running counts: cheap to read).
    async fn ob_totals(&self) -> Result<ObTotals>;

    /// Outgoing events after the issuer cursor (the signing backlog).
    async fn ob_backlog(&self) -> Result<u64>;
}
