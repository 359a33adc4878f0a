//! Credly: organizations and their keys, template sync, and webhook notifications.

use accolade_domain::award::Award;
use accolade_domain::template::Template;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::models::*;

/// Credly organizations, template sync and webhook notifications.
#[async_trait]
pub trait CredlyStore: Send + Sync {
    /// Adds an organization; `Conflict` (`organization_exists`) when its UUID is already there.
    async fn add_credly_org(&self, new: NewCredlyOrganization) -> Result<CredlyOrganization>;

    /// Adds an organization that authenticates with OAuth client credentials; `Conflict`
    /// (`organization_exists`) when its UUID is already there.
    async fn add_credly_oauth_org(
        &self,
        new: NewCredlyOAuthOrganization,
    ) -> Result<CredlyOrganization>;

    /// Updates the name Credly reports and/or replaces the key (rotation). A key given to an
    /// organization that used OAuth switches it to the token method (its client is dropped).
    async fn update_credly_org(
        &self,
        id: &str,
        name: Option<String>,
        key: Option<CredlyKey>,
    ) -> Result<CredlyOrganization>;

    /// Sets OAuth client credentials (new ones, or in place of a key: the key, its dates and
    /// its rotation lease are dropped) and the name when given.
    async fn set_credly_org_oauth_client(
        &self,
        id: &str,
        name: Option<String>,
        client: OAuthClient,
    ) -> Result<CredlyOrganization>;

    async fn get_credly_org(&self, id: &str) -> Result<CredlyOrganization>;

    async fn list_credly_orgs(&self) -> Result<Vec<CredlyOrganization>>;

    /// The organization's encrypted API key; `Conflict` (`credly_auth_method`) when it uses
    /// OAuth.
    async fn credly_org_key(&self, id: &str) -> Result<Vec<u8>>;

    /// The organization's encrypted OAuth client credentials; `Conflict`
    /// (`credly_auth_method`) when it uses a key.
    async fn credly_org_oauth_client(&self, id: &str) -> Result<OAuthClient>;

    /// Claims the right to rotate the organization's key through Credly until `lease_until`:
    /// true when this caller holds it. Refused (false) while another caller's lease runs, when
    /// the organization uses OAuth, and, with `due_before`, when the key expires at or after
    /// it (so a key another instance rotated a moment ago is not rotated again).
    async fn claim_credly_key_rotation(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        due_before: Option<DateTime<Utc>>,
    ) -> Result<bool>;

    /// Ends a rotation: stores `new_key` when there is one (the old key is replaced in the same
    /// statement), records the attempt and releases the lease. Always writes the key, even if
    /// the lease ran out meanwhile: once Credly has answered a new token the old one no longer
    /// works.
    async fn finish_credly_key_rotation(
        &self,
        id: &str,
        rotation: KeyRotation,
        new_key: Option<CredlyKey>,
    ) -> Result<CredlyOrganization>;

    /// Full sync of one organization's templates against the complete list of its templates that
    /// are `active` on Credly: creates missing ones (inactive), updates changed fields, and
    /// deactivates (provider state [`PROVIDER_STATE_GONE`]) those no longer listed. Requirements,
    /// penalties and awards are never deleted. On `dry_run` nothing is written.
    async fn sync_credly_templates(
        &self,
        org_id: &str,
        active: Vec<ProviderTemplate>,
        pages: u32,
        dry_run: bool,
    ) -> Result<SyncSummary>;

    /// Applies one template as a webhook reports it: creates it (inactive) when new, updates it,
    /// and deactivates it when its state is not `active` (`deleted` marks it deleted).
    async fn apply_credly_template(
        &self,
        org_id: &str,
        template: ProviderTemplate,
    ) -> Result<(Option<Template>, TemplateChange)>;

    /// Records a webhook notification and, in the same transaction, the job that confirms and
    /// applies it. Returns `false` (and changes nothing) when the id was seen before.
    async fn record_credly_notification(&self, n: NewCredlyNotification) -> Result<bool>;

    async fn finish_credly_notification(&self, id: &str, status: &str, detail: &str) -> Result<()>;

    async fn list_credly_notifications(&self, page: Page) -> Result<Paged<CredlyNotification>>;

    /// Notifications of an organization still waiting to be confirmed (status `received`): the
    /// backlog a webhook sender may build up, capped by the receiver.
    async fn count_pending_credly_notifications(&self, organization_id: &str) -> Result<u64>;

    /// Deletes notifications settled (applied, ignored or rejected) before `before`, and the
    /// succeeded `credly.webhook` jobs last updated before it. Returns the notifications deleted.
    /// Unconfirmed notifications and dead jobs stay.
    async fn prune_credly_notifications(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Sets the provider state of the award with this external id (Credly `badge.state.changed`).
    async fn set_award_external_state(
        &self,
        external_id: &str,
        state: &str,
    ) -> Result<Option<Award>>;
}
