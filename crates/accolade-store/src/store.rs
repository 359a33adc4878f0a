//! The `Store` trait: every method is one use case and one transaction, so transactions never
//! cross this boundary and outbox rows are always written atomically with the change that caused
//! them.

use accolade_domain::award::Award;
use accolade_domain::event::IncomingEvent;
use accolade_domain::outbox::Job;
use accolade_domain::template::{Penalty, Requirement, Template, TemplateConfig};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::admin::*;
use crate::models::*;
use crate::opencredit::*;
use crate::webhooks::*;
use crate::{IndexCache, StoreError};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Resolves when a commit is durable: see [`Store::process_events_pipelined`].
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name for logs and `/health/ready` (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database.
    async fn ping(&self) -> Result<()>;

    // ---- configuration -------------------------------------------------------------------

    /// Current configuration version (bumped by every configuration change).
    async fn config_version(&self) -> Result<i64>;

    /// Active templates with their requirements and penalties, and the version they belong to.
    async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)>;

    async fn list_templates(&self, filter: &TemplateFilter, page: Page) -> Result<Paged<Template>>;

    /// A template with its requirements and penalties.
    async fn get_template(&self, id: &str) -> Result<TemplateConfig>;

    async fn create_template(&self, new: NewTemplate) -> Result<Template>;

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<Template>;

    /// Activates or deactivates a template. Issued awards are never touched.
    async fn set_template_active(&self, id: &str, active: bool) -> Result<Template>;

    async fn add_requirement(&self, template_id: &str, new: NewRequirement) -> Result<Requirement>;

    async fn get_requirement(&self, id: &str) -> Result<Requirement>;

    async fn update_requirement(&self, id: &str, patch: RequirementPatch) -> Result<Requirement>;

    /// Deletes a requirement (and unlinks it from penalties). Fulfilments stay as history.
    async fn delete_requirement(&self, id: &str) -> Result<()>;

    async fn add_penalty(&self, template_id: &str, new: NewPenalty) -> Result<Penalty>;

    async fn get_penalty(&self, id: &str) -> Result<Penalty>;

    async fn update_penalty(&self, id: &str, patch: PenaltyPatch) -> Result<Penalty>;

    async fn delete_penalty(&self, id: &str) -> Result<()>;

    /// Creates or replaces one template's whole configuration (rules as code), keeping ids of
    /// requirements and penalties whose key already exists.
    async fn apply_template(&self, desired: DesiredTemplate) -> Result<TemplateConfig>;

    // ---- events --------------------------------------------------------------------------

    /// Records and processes a batch of events in one transaction: inbox insert (duplicates by
    /// id are skipped), fulfilments, resets, awards and revocations with their outbox jobs and
    /// outgoing events. Returns one outcome per input, in order. The rules index is rebuilt from
    /// the database inside the transaction when the configuration changed.
    async fn process_events(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<Vec<EventOutcome>>;

    /// `process_events` for a pipelined caller: returns once the batch is committed, with a
    /// future that resolves when the commit is durable. Outcomes must not be acknowledged before
    /// it resolves; meanwhile the caller may already commit its next batch (SQLite: the WAL fsync
    /// of one batch overlaps the processing of the next). By default the commit is already
    /// durable when this returns.
    async fn process_events_pipelined(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<(Vec<EventOutcome>, Durable)> {
        let outcomes = self.process_events(events, index).await?;
        let done: Durable = Box::pin(async { Ok(()) });
        Ok((outcomes, done))
    }

    async fn record_rejected(&self, rejected: Vec<RejectedEvent>) -> Result<()>;

    async fn list_events(&self, learner: Option<&str>, page: Page) -> Result<Paged<StoredEvent>>;

    async fn list_rejected(&self, page: Page) -> Result<Paged<RejectedEvent>>;

    // ---- learners, progress, awards ------------------------------------------------------

    async fn get_learner(&self, username: &str) -> Result<Learner>;

    async fn list_learners(&self, page: Page) -> Result<Paged<Learner>>;

    /// Every requirement the learner has currently fulfilled, on all templates.
    async fn fulfillments(&self, username: &str) -> Result<Vec<Fulfillment>>;

    async fn list_awards(&self, filter: &AwardFilter, page: Page) -> Result<Paged<Award>>;

    async fn get_award(&self, id: &str) -> Result<Award>;

    /// Awards the template to a learner by hand (a new episode), with outbox job and event.
    /// Refused with `Conflict` when the learner already holds it.
    async fn award_manually(
        &self,
        template_id: &str,
        username: &str,
        change: ManualChange,
    ) -> Result<Award>;

    /// Revokes an award by hand, with outbox job and event. `Conflict` if already revoked.
    async fn revoke_award(&self, award_id: &str, change: ManualChange) -> Result<Award>;

    // ---- outbox --------------------------------------------------------------------------

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>>;

    async fn get_job(&self, id: &str) -> Result<Job>;

    /// The delivery job of an award and, once revoked, its revocation job (oldest first). Found
    /// by primary key: award jobs are named after their award (`ids::award_job_id`).
    async fn jobs_of_award(&self, award_id: &str) -> Result<Vec<Job>> {
        let mut jobs = Vec::with_capacity(2);
        for revoked in [false, true] {
            match self
                .get_job(&accolade_domain::ids::award_job_id(award_id, revoked))
                .await
            {
                Ok(j) => jobs.push(j),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(jobs)
    }

    /// Makes a dead (or pending) job run now, without resetting its attempt count.
    async fn retry_job(&self, id: &str) -> Result<Job>;

    /// Claims up to `limit` due jobs of the given kinds with a lease until `lease_until`
    /// (expired leases are claimable again: a crashed worker's jobs are not stuck).
    async fn claim_jobs(
        &self,
        kinds: &[&str],
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>>;

    /// Records the result of a claimed job.
    async fn finish_job(&self, id: &str, result: JobResult, now: DateTime<Utc>) -> Result<()>;

    /// Records several finished jobs and their deliveries in one transaction (workers group their
    /// results so a busy outbox costs one commit per batch, not two per job). Jobs or awards that
    /// no longer exist are skipped. Returns, per item, the award as recorded (or `None`).
    async fn finish_jobs(
        &self,
        items: Vec<JobCompletion>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Award>>>;

    /// Makes the pending jobs that wait for `org_id`'s key (deferred with
    /// [`JobResult::Defer`]`{ waiting_for_key: Some(org_id), .. }`) due at `now` and clears
    /// their mark; called once the key was rotated. Jobs of other organizations, running
    /// (leased) and finished jobs are left alone. Returns how many jobs were released.
    async fn release_jobs_waiting_for_key(&self, org_id: &str, now: DateTime<Utc>) -> Result<u64>;

    /// Records a delivery result on an award (state, provider id and state, issue time).
    /// A revoked award keeps its `revoked` state.
    async fn record_delivery(&self, award_id: &str, delivery: Delivery) -> Result<Award>;

    /// Outgoing badge events not yet published, oldest first.
    async fn unpublished_events(&self, limit: u32) -> Result<Vec<PendingPublication>>;

    /// Marks outgoing events as published.
    async fn mark_published(&self, ids: Vec<String>, at: DateTime<Utc>) -> Result<()>;

    // ---- Credly ----------------------------------------------------------------------------

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

    // ---- outbound webhooks ------------------------------------------------------------------

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook>;

    async fn list_webhooks(&self, page: Page) -> Result<Paged<Webhook>>;

    async fn get_webhook(&self, id: &str) -> Result<Webhook>;

    async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> Result<Webhook>;

    /// Deletes a subscription and its delivery log.
    async fn delete_webhook(&self, id: &str) -> Result<()>;

    /// The subscription's sealed signing secret.
    async fn webhook_secret(&self, id: &str) -> Result<Vec<u8>>;

    /// Replaces the sealed signing secret (rotation).
    async fn set_webhook_secret(&self, id: &str, secret_ciphertext: Vec<u8>) -> Result<Webhook>;

    /// Moves the webhook cursor past up to `limit` outgoing events, in commit order, creating one
    /// pending delivery (due `now`) per event and active subscription that wants its type, in
    /// one transaction with the cursor. Concurrent calls never create a delivery twice.
    async fn fan_out_webhooks(&self, limit: u32, now: DateTime<Utc>) -> Result<FanOut>;

    /// Claims up to `limit` due pending deliveries of active subscriptions with a lease until
    /// `lease_until`, counting an attempt and setting the first-attempt time if unset. A delivery
    /// whose lease expired is claimable again.
    async fn claim_webhook_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// Records an attempt's outcome and releases the lease. Returns `false` (and changes
    /// nothing) when the delivery has moved on since `result.attempt` was claimed.
    async fn finish_webhook_attempt(
        &self,
        id: &str,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Newest first.
    async fn list_webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<WebhookDelivery>>;

    async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery>;

    /// Sends a delivery's event again: a new pending delivery (new id, same event id,
    /// `replay_of` = `id`) due `now`, with a fresh attempt cycle.
    async fn replay_webhook_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery>;

    // ---- admin web UI accounts and sessions ----------------------------------------------

    /// Creates an admin account; `admin_user_exists` (conflict) when the username is taken.
    async fn create_admin_user(&self, username: &str, password_hash: &str) -> Result<AdminUser>;

    /// Replaces an account's password hash and ends all its sessions; not found when unknown.
    async fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<AdminUser>;

    /// The account with this exact username; not found when unknown.
    async fn get_admin_user(&self, username: &str) -> Result<AdminUser>;

    /// Records the result of a login attempt on an account (see [`LoginOutcome`]).
    async fn record_admin_login(&self, user_id: &str, outcome: LoginOutcome) -> Result<AdminUser>;
    /// Before a password is checked: refuses when the account is locked at `now`, otherwise
    /// counts the attempt as a failure and applies `accolade_domain::login::lock_until` to the new
    /// count, atomically (concurrent attempts are serialized on the account), so a burst of
    /// guesses gets exactly `LOCK_AFTER` checks. A success then resets the count.
    async fn count_admin_login_attempt(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginAttempt>;

    /// Stores a new session (its `username` is ignored).
    async fn create_admin_session(&self, session: AdminSession) -> Result<()>;

    /// The session with this id hash if it exists and has not expired at `now`, with the
    /// account's username filled in.
    async fn get_admin_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSession>>;

    /// Ends a session (logout); ending an unknown session is not an error.
    async fn delete_admin_session(&self, id_hash: &str) -> Result<()>;

    /// Deletes sessions that expired before `now`; returns how many.
    async fn purge_admin_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    // ---- Open Credit-style API (/v1.1) -----------------------------------------------------

    /// Registers an app; `oc_app_exists` (conflict) when the key is taken.
    async fn oc_create_app(
        &self,
        name: &str,
        api_key: &str,
        secret_hash: &str,
        tier: &str,
    ) -> Result<OcApp>;

    async fn oc_app_by_key(&self, api_key: &str) -> Result<Option<OcApp>>;

    /// Changes an app's tier (by id or key); not found when neither matches.
    async fn oc_set_app_tier(&self, app: &str, tier: &str) -> Result<OcApp>;

    async fn oc_list_apps(&self) -> Result<Vec<OcApp>>;

    /// Creates a user (and the organization it manages, if named) in one transaction;
    /// `email_taken` (conflict) when any member already has the address.
    async fn oc_register(&self, new: NewOcMember) -> Result<(OcMember, Option<OcMember>)>;

    async fn oc_member(&self, id: i64) -> Result<Option<OcMember>>;

    /// Sets (or clears) a member's avatar; not found for an unknown member.
    async fn oc_set_avatar(&self, member_id: i64, avatar: Option<&str>) -> Result<OcMember>;

    /// A user by any of its addresses (case-insensitive), with its password hash.
    async fn oc_login(&self, email: &str) -> Result<Option<(OcMember, String)>>;

    /// Members by exact address (case-insensitive) and/or name text, newest last.
    async fn oc_search_members(
        &self,
        email: Option<&str>,
        query: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMember>, u64)>;

    /// Ids of the members a user manages (its organizations).
    async fn oc_managed(&self, manager_id: i64) -> Result<Vec<i64>>;

    async fn oc_member_emails(&self, member_id: i64) -> Result<Vec<OcEmail>>;

    /// Adds an unverified address; `email_taken` (conflict) when any member has it.
    async fn oc_add_email(&self, member_id: i64, email: &str, token_hash: &str) -> Result<OcEmail>;

    /// Replaces the verification link of one of the member's unverified addresses (the old link
    /// stops working); `None` when the member has no such unverified address.
    async fn oc_reissue_email_link(
        &self,
        member_id: i64,
        email: &str,
        token_hash: &str,
    ) -> Result<Option<OcEmail>>;

    /// Marks the address of a verification link verified (once); `None` for an unknown link.
    async fn oc_verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OcEmail>>;

    async fn oc_create_token(&self, token: OcToken) -> Result<()>;

    async fn oc_token(&self, token_hash: &str) -> Result<Option<OcToken>>;

    async fn oc_create_badge(&self, member_id: i64, fields: OcBadgeFields) -> Result<OcBadge>;

    /// Replaces a badge's fields; not found for an unknown or deleted badge.
    async fn oc_update_badge(&self, id: i64, fields: OcBadgeFields) -> Result<OcBadge>;

    async fn oc_badge(&self, id: i64) -> Result<Option<OcBadge>>;

    /// Badges, optionally of one creator, oldest first, with the total count.
    async fn oc_list_badges(
        &self,
        member_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<OcBadge>, u64)>;

    /// Deletes a badge; false when it did not exist.
    async fn oc_delete_badge(&self, id: i64) -> Result<bool>;

    /// An address and its owner, if any member has it.
    async fn oc_email(&self, email: &str) -> Result<Option<OcEmail>>;

    /// Gives a badge; not found for an unknown badge or giver.
    async fn oc_give(&self, new: NewOcMemberBadge) -> Result<OcMemberBadge>;

    async fn oc_member_badge(&self, id: i64) -> Result<Option<OcMemberBadge>>;

    /// Badges given to any address of `member_id`, optionally of one status, oldest first,
    /// with the total count.
    async fn oc_member_badges(
        &self,
        member_id: i64,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMemberBadge>, u64)>;

    /// Sets the status of a member badge; not found when it does not exist.
    async fn oc_set_member_badge_status(&self, id: i64, status: &str) -> Result<OcMemberBadge>;

    /// Deletes a member badge; false when it did not exist.
    async fn oc_delete_member_badge(&self, id: i64) -> Result<bool>;

    /// The award bridge: gives a member badge (pending, to the learner's email) for up to
    /// `limit` unrevoked awards of templates linked to a badge that have none yet, and
    /// withdraws (deletes) the member badges of revoked awards. Idempotent.
    async fn oc_sync_awards(&self, limit: u32) -> Result<OcAwardSync>;

    // ---- admin tokens, stats ---------------------------------------------------------------

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken>;

    /// Finds a token by the SHA-256 of its secret (also when expired or revoked: the caller
    /// decides).
    async fn find_api_token(&self, secret_hash: &str) -> Result<Option<ApiToken>>;

    /// Every token, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;

    /// Revokes a token at `at` (a second revocation keeps the first time). `NotFound` ("api
    /// token") when there is no such token.
    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken>;

    /// Records that the token was used at `at`.
    async fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    async fn stats(&self) -> Result<StoreStats>;
}
