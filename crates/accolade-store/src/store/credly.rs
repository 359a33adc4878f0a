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

    /// Updates the name Credly reports and/or replaces the key (rotation).
    async fn update_credly_org(
        &self,
        id: &str,
        name: Option<String>,
        key: Option<CredlyKey>,
    ) -> Result<CredlyOrganization>;

    async fn get_credly_org(&self, id: &str) -> Result<CredlyOrganization>;

    async fn list_credly_orgs(&self) -> Result<Vec<CredlyOrganization>>;

    /// The organization's encrypted API key.
    async fn credly_org_key(&self, id: &str) -> Result<Vec<u8>>;

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
