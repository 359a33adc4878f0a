#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod awards;
mod config;
mod credly;
mod effects;
mod events;
mod jobs;
pub mod migrate;
mod opencredit;
mod rows;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use accolade_domain::award::Award;
use accolade_domain::event::IncomingEvent;
use accolade_domain::outbox::Job;
use accolade_domain::template::{Penalty, Requirement, Template, TemplateConfig};
use accolade_store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::rows::db;

type Result<T> = std::result::Result<T, StoreError>;

/// Runs `$body` (an async expression using the connection `$c`) in the transaction `$tx` and
/// commits; an error returns early and the dropped transaction rolls back.
macro_rules! in_tx {
    ($tx:expr, |$c:ident| $body:expr) => {{
        let mut tx = $tx;
        let $c: &mut PgConnection = &mut tx;
        let out = $body.await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }};
}

/// The PostgreSQL store. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

/// Options for connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Run pending migrations on connect. Deployments with several instances turn this off and
    /// run `accolade migrate` as a release step.
    pub auto_migrate: bool,
    /// Pool size.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout_secs: u64,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            auto_migrate: true,
            max_connections: 10,
            acquire_timeout_secs: 5,
        }
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))
}

fn with_defaults(connect: PgConnectOptions) -> PgConnectOptions {
    if connect.get_application_name().is_some() {
        connect
    } else {
        connect.application_name("accolade")
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`), checks the server
    /// version, and migrates or checks the schema according to `options.auto_migrate`.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<Self> {
        Self::connect_with(parse_url(url)?, options).await
    }

    /// [`PgStore::connect`] with already parsed connection options.
    pub async fn connect_with(connect: PgConnectOptions, options: &PgOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(options.acquire_timeout_secs))
            .connect_with(with_defaults(connect))
            .await
            .map_err(|e| StoreError::Other(format!("cannot connect to PostgreSQL: {e}")))?;
        let mut c = pool.acquire().await.map_err(db)?;
        migrate::check_server_version(&mut c).await?;
        if options.auto_migrate {
            drop(c);
            let n = migrate::run(&pool).await?;
            if n > 0 {
                tracing::info!(migrations = n, "postgres migrations applied");
            }
        } else {
            migrate::check(&mut c).await?;
        }
        Ok(PgStore { pool })
    }

    /// Applies pending migrations (for `accolade migrate`); returns how many ran.
    pub async fn migrate(url: &str) -> Result<usize> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(with_defaults(parse_url(url)?))
            .await
            .map_err(|e| StoreError::Other(format!("cannot connect to PostgreSQL: {e}")))?;
        {
            let mut c = pool.acquire().await.map_err(db)?;
            migrate::check_server_version(&mut c).await?;
        }
        let n = migrate::run(&pool).await;
        pool.close().await;
        n
    }

    /// The connection pool (for health checks and tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn conn(&self) -> Result<PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(db)
    }

    /// A read-write transaction.
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db)
    }

    /// A read-only transaction on one snapshot (for reads made of several statements).
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)
    }

    /// A configuration change: a transaction holding the configuration lock exclusively.
    async fn config_change(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.write().await?;
        config::lock_for_change(&mut tx).await?;
        Ok(tx)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn config_version(&self) -> Result<i64> {
        config::version(&mut *self.conn().await?).await
    }

    async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)> {
        in_tx!(self.snapshot().await?, |c| async {
            Ok::<_, StoreError>((config::version(c).await?, config::active_configs(c).await?))
        })
    }

    async fn list_templates(&self, filter: &TemplateFilter, page: Page) -> Result<Paged<Template>> {
        config::list_templates(&mut *self.conn().await?, filter, page).await
    }

    async fn get_template(&self, id: &str) -> Result<TemplateConfig> {
        in_tx!(self.snapshot().await?, |c| config::template_config(c, id))
    }

    async fn create_template(&self, new: NewTemplate) -> Result<Template> {
        in_tx!(self.config_change().await?, |c| config::create_template(
            c, new
        ))
    }

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<Template> {
        in_tx!(self.config_change().await?, |c| config::update_template(
            c, id, patch
        ))
    }

    async fn set_template_active(&self, id: &str, active: bool) -> Result<Template> {
        in_tx!(self.config_change().await?, |c| config::set_active(
            c, id, active
        ))
    }

    async fn add_requirement(&self, template_id: &str, new: NewRequirement) -> Result<Requirement> {
        in_tx!(self.config_change().await?, |c| config::add_requirement(
            c,
            template_id,
            new
        ))
    }

    async fn get_requirement(&self, id: &str) -> Result<Requirement> {
        config::requirement(&mut *self.conn().await?, id).await
    }

    async fn update_requirement(&self, id: &str, patch: RequirementPatch) -> Result<Requirement> {
        in_tx!(self.config_change().await?, |c| config::update_requirement(
            c, id, patch
        ))
    }

    async fn delete_requirement(&self, id: &str) -> Result<()> {
        in_tx!(self.config_change().await?, |c| config::delete_requirement(
            c, id
        ))
    }

    async fn add_penalty(&self, template_id: &str, new: NewPenalty) -> Result<Penalty> {
        in_tx!(self.config_change().await?, |c| config::add_penalty(
            c,
            template_id,
            new
        ))
    }

    async fn get_penalty(&self, id: &str) -> Result<Penalty> {
        in_tx!(self.snapshot().await?, |c| config::penalty(c, id))
    }

    async fn update_penalty(&self, id: &str, patch: PenaltyPatch) -> Result<Penalty> {
        in_tx!(self.config_change().await?, |c| config::update_penalty(
            c, id, patch
        ))
    }

    async fn delete_penalty(&self, id: &str) -> Result<()> {
        in_tx!(self.config_change().await?, |c| config::delete_penalty(
            c, id
        ))
    }

    async fn apply_template(&self, desired: DesiredTemplate) -> Result<TemplateConfig> {
        in_tx!(self.config_change().await?, |c| config::apply_template(
            c, desired
        ))
    }

    async fn process_events(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<Vec<EventOutcome>> {
        in_tx!(self.write().await?, |c| events::process(c, &events, index))
    }

    async fn record_rejected(&self, rejected: Vec<RejectedEvent>) -> Result<()> {
        events::record_rejected(&mut *self.conn().await?, &rejected).await
    }

    async fn list_events(&self, learner: Option<&str>, page: Page) -> Result<Paged<StoredEvent>> {
        events::list_events(&mut *self.conn().await?, learner, page).await
    }

    async fn list_rejected(&self, page: Page) -> Result<Paged<RejectedEvent>> {
        events::list_rejected(&mut *self.conn().await?, page).await
    }

    async fn get_learner(&self, username: &str) -> Result<Learner> {
        awards::get_learner(&mut *self.conn().await?, username).await
    }

    async fn list_learners(&self, page: Page) -> Result<Paged<Learner>> {
        awards::list_learners(&mut *self.conn().await?, page).await
    }

    async fn fulfillments(&self, username: &str) -> Result<Vec<Fulfillment>> {
        awards::fulfillments(&mut *self.conn().await?, username).await
    }

    async fn list_awards(&self, filter: &AwardFilter, page: Page) -> Result<Paged<Award>> {
        awards::list_awards(&mut *self.conn().await?, filter, page).await
    }

    async fn get_award(&self, id: &str) -> Result<Award> {
        awards::get_award(&mut *self.conn().await?, id).await
    }

    async fn award_manually(
        &self,
        template_id: &str,
        username: &str,
        change: ManualChange,
    ) -> Result<Award> {
        in_tx!(self.write().await?, |c| awards::award_manually(
            c,
            template_id,
            username,
            change
        ))
    }

    async fn revoke_award(&self, award_id: &str, change: ManualChange) -> Result<Award> {
        in_tx!(self.write().await?, |c| awards::revoke_award(
            c, award_id, change
        ))
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>> {
        jobs::list_jobs(&mut *self.conn().await?, filter, page).await
    }

    async fn get_job(&self, id: &str) -> Result<Job> {
        jobs::get_job(&mut *self.conn().await?, id).await
    }

    async fn retry_job(&self, id: &str) -> Result<Job> {
        jobs::retry_job(&mut *self.conn().await?, id).await
    }

    async fn claim_jobs(
        &self,
        kinds: &[&str],
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>> {
        jobs::claim_jobs(&mut *self.conn().await?, kinds, limit, now, lease_until).await
    }

    async fn finish_job(&self, id: &str, result: JobResult, now: DateTime<Utc>) -> Result<()> {
        jobs::finish_job(&mut *self.conn().await?, id, result, now).await
    }

    async fn release_jobs_waiting_for_key(&self, org_id: &str, now: DateTime<Utc>) -> Result<u64> {
        jobs::release_waiting_for_key(&mut *self.conn().await?, org_id, now).await
    }

    async fn record_delivery(&self, award_id: &str, delivery: Delivery) -> Result<Award> {
        in_tx!(self.write().await?, |c| awards::record_delivery(
            c, award_id, delivery
        ))
    }

    async fn unpublished_events(&self, limit: u32) -> Result<Vec<PendingPublication>> {
        let rows = sqlx::query(
            "SELECT id, event_type, award_id, time, payload FROM outgoing_events \
             WHERE published_at IS NULL ORDER BY time, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|r| {
                use sqlx::Row;
                Ok(PendingPublication {
                    id: r.try_get("id").map_err(db)?,
                    event_type: r.try_get("event_type").map_err(db)?,
                    award_id: r.try_get("award_id").map_err(db)?,
                    time: r.try_get("time").map_err(db)?,
                    payload: r.try_get("payload").map_err(db)?,
                })
            })
            .collect()
    }

    async fn mark_published(&self, ids: Vec<String>, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE outgoing_events SET published_at = $2 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(rows::micros(at))
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn finish_jobs(
        &self,
        items: Vec<JobCompletion>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Award>>> {
        in_tx!(self.write().await?, |c| jobs::finish_jobs(c, items, now))
    }

    async fn add_credly_org(&self, new: NewCredlyOrganization) -> Result<CredlyOrganization> {
        in_tx!(self.write().await?, |c| credly::add_org(c, new))
    }

    async fn update_credly_org(
        &self,
        id: &str,
        name: Option<String>,
        key: Option<CredlyKey>,
    ) -> Result<CredlyOrganization> {
        in_tx!(self.write().await?, |c| credly::update_org(
            c, id, name, key
        ))
    }

    async fn get_credly_org(&self, id: &str) -> Result<CredlyOrganization> {
        credly::get_org(&mut *self.conn().await?, id).await
    }

    async fn list_credly_orgs(&self) -> Result<Vec<CredlyOrganization>> {
        credly::list_orgs(&mut *self.conn().await?).await
    }

    async fn credly_org_key(&self, id: &str) -> Result<Vec<u8>> {
        credly::org_key(&mut *self.conn().await?, id).await
    }

    async fn sync_credly_templates(
        &self,
        org_id: &str,
        active: Vec<ProviderTemplate>,
        pages: u32,
        dry_run: bool,
    ) -> Result<SyncSummary> {
        // A dry run only reads: one snapshot, without waiting for the configuration lock.
        let tx = if dry_run {
            self.snapshot().await?
        } else {
            self.config_change().await?
        };
        in_tx!(tx, |c| credly::sync_templates(
            c, org_id, active, pages, dry_run
        ))
    }

    async fn apply_credly_template(
        &self,
        org_id: &str,
        template: ProviderTemplate,
    ) -> Result<(Option<Template>, TemplateChange)> {
        in_tx!(self.config_change().await?, |c| credly::apply_template(
            c, org_id, template
        ))
    }

    async fn record_credly_notification(&self, n: NewCredlyNotification) -> Result<bool> {
        in_tx!(self.write().await?, |c| credly::record_notification(c, n))
    }

    async fn finish_credly_notification(&self, id: &str, status: &str, detail: &str) -> Result<()> {
        credly::finish_notification(&mut *self.conn().await?, id, status, detail).await
    }

    async fn list_credly_notifications(&self, page: Page) -> Result<Paged<CredlyNotification>> {
        credly::list_notifications(&mut *self.conn().await?, page).await
    }

    async fn count_pending_credly_notifications(&self, organization_id: &str) -> Result<u64> {
        credly::count_pending_notifications(&mut *self.conn().await?, organization_id).await
    }

    async fn prune_credly_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.write().await?;
        let deleted = credly::prune_notifications(&mut tx, before).await?;
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }

    async fn set_award_external_state(
        &self,
        external_id: &str,
        state: &str,
    ) -> Result<Option<Award>> {
        in_tx!(self.write().await?, |c| credly::set_external_state(
            c,
            external_id,
            state
        ))
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        webhooks::create(&mut *self.conn().await?, new).await
    }

    async fn list_webhooks(&self, page: Page) -> Result<Paged<Webhook>> {
        webhooks::list(&mut *self.conn().await?, page).await
    }

    async fn get_webhook(&self, id: &str) -> Result<Webhook> {
        webhooks::get(&mut *self.conn().await?, id).await
    }

    async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> Result<Webhook> {
        webhooks::update(&mut *self.conn().await?, id, patch).await
    }

    async fn delete_webhook(&self, id: &str) -> Result<()> {
        webhooks::delete(&mut *self.conn().await?, id).await
    }

    async fn webhook_secret(&self, id: &str) -> Result<Vec<u8>> {
        webhooks::secret(&mut *self.conn().await?, id).await
    }

    async fn set_webhook_secret(&self, id: &str, secret_ciphertext: Vec<u8>) -> Result<Webhook> {
        webhooks::set_secret(&mut *self.conn().await?, id, secret_ciphertext).await
    }

    async fn fan_out_webhooks(&self, limit: u32, now: DateTime<Utc>) -> Result<FanOut> {
        in_tx!(self.write().await?, |c| webhooks::fan_out(c, limit, now))
    }

    async fn claim_webhook_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>> {
        webhooks::claim(&mut *self.conn().await?, limit, now, lease_until).await
    }

    async fn finish_webhook_attempt(
        &self,
        id: &str,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        webhooks::finish(&mut *self.conn().await?, id, result, now).await
    }

    async fn list_webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<WebhookDelivery>> {
        webhooks::list_deliveries(&mut *self.conn().await?, filter, page).await
    }

    async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery> {
        webhooks::get_delivery(&mut *self.conn().await?, id).await
    }

    async fn replay_webhook_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery> {
        webhooks::replay(&mut *self.conn().await?, id, now).await
    }

    async fn oc_create_app(
        &self,
        name: &str,
        api_key: &str,
        secret_hash: &str,
        tier: &str,
    ) -> Result<OcApp> {
        opencredit::create_app(&mut *self.conn().await?, name, api_key, secret_hash, tier).await
    }

    async fn oc_app_by_key(&self, api_key: &str) -> Result<Option<OcApp>> {
        opencredit::app_by_key(&mut *self.conn().await?, api_key).await
    }

    async fn oc_set_app_tier(&self, app: &str, tier: &str) -> Result<OcApp> {
        opencredit::set_app_tier(&mut *self.conn().await?, app, tier).await
    }

    async fn oc_list_apps(&self) -> Result<Vec<OcApp>> {
        opencredit::list_apps(&mut *self.conn().await?).await
    }

    async fn oc_register(&self, new: NewOcMember) -> Result<(OcMember, Option<OcMember>)> {
        // The user, its address, the organization and the management link commit together.
        in_tx!(self.write().await?, |c| opencredit::register(c, new))
    }

    async fn oc_member(&self, id: i64) -> Result<Option<OcMember>> {
        opencredit::get_member(&mut *self.conn().await?, id).await
    }

    async fn oc_set_avatar(&self, member_id: i64, avatar: Option<&str>) -> Result<OcMember> {
        opencredit::set_avatar(&mut *self.conn().await?, member_id, avatar).await
    }

    async fn oc_login(&self, email: &str) -> Result<Option<(OcMember, String)>> {
        opencredit::login(&mut *self.conn().await?, email).await
    }

    async fn oc_search_members(
        &self,
        email: Option<&str>,
        query: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMember>, u64)> {
        in_tx!(self.snapshot().await?, |c| opencredit::search_members(
            c, email, query, page
        ))
    }

    async fn oc_managed(&self, manager_id: i64) -> Result<Vec<i64>> {
        opencredit::managed(&mut *self.conn().await?, manager_id).await
    }

    async fn oc_member_emails(&self, member_id: i64) -> Result<Vec<OcEmail>> {
        opencredit::member_emails(&mut *self.conn().await?, member_id).await
    }

    async fn oc_add_email(&self, member_id: i64, email: &str, token_hash: &str) -> Result<OcEmail> {
        in_tx!(self.write().await?, |c| opencredit::add_email(
            c, member_id, email, token_hash
        ))
    }

    async fn oc_reissue_email_link(
        &self,
        member_id: i64,
        email: &str,
        token_hash: &str,
    ) -> Result<Option<OcEmail>> {
        opencredit::reissue_email_link(&mut *self.conn().await?, member_id, email, token_hash).await
    }

    async fn oc_verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OcEmail>> {
        opencredit::verify_email(&mut *self.conn().await?, token_hash, now).await
    }

    async fn oc_create_token(&self, token: OcToken) -> Result<()> {
        opencredit::create_token(&mut *self.conn().await?, token).await
    }

    async fn oc_token(&self, token_hash: &str) -> Result<Option<OcToken>> {
        opencredit::token(&mut *self.conn().await?, token_hash).await
    }

    async fn oc_create_badge(&self, member_id: i64, fields: OcBadgeFields) -> Result<OcBadge> {
        in_tx!(self.write().await?, |c| opencredit::create_badge(
            c, member_id, fields
        ))
    }

    async fn oc_update_badge(&self, id: i64, fields: OcBadgeFields) -> Result<OcBadge> {
        opencredit::update_badge(&mut *self.conn().await?, id, fields).await
    }

    async fn oc_badge(&self, id: i64) -> Result<Option<OcBadge>> {
        opencredit::get_badge(&mut *self.conn().await?, id).await
    }

    async fn oc_list_badges(
        &self,
        member_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<OcBadge>, u64)> {
        in_tx!(self.snapshot().await?, |c| opencredit::list_badges(
            c, member_id, page
        ))
    }

    async fn oc_delete_badge(&self, id: i64) -> Result<bool> {
        in_tx!(self.write().await?, |c| opencredit::delete_badge(c, id))
    }

    async fn oc_email(&self, email: &str) -> Result<Option<OcEmail>> {
        opencredit::get_email(&mut *self.conn().await?, email).await
    }

    async fn oc_give(&self, new: NewOcMemberBadge) -> Result<OcMemberBadge> {
        in_tx!(self.write().await?, |c| opencredit::give(c, new))
    }

    async fn oc_member_badge(&self, id: i64) -> Result<Option<OcMemberBadge>> {
        opencredit::get_member_badge(&mut *self.conn().await?, id).await
    }

    async fn oc_member_badges(
        &self,
        member_id: i64,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMemberBadge>, u64)> {
        in_tx!(self.snapshot().await?, |c| opencredit::member_badges(
            c, member_id, status, page
        ))
    }

    async fn oc_set_member_badge_status(&self, id: i64, status: &str) -> Result<OcMemberBadge> {
        opencredit::set_member_badge_status(&mut *self.conn().await?, id, status).await
    }

    async fn oc_delete_member_badge(&self, id: i64) -> Result<bool> {
        in_tx!(self.write().await?, |c| opencredit::delete_member_badge(
            c, id
        ))
    }

    async fn oc_sync_awards(&self, limit: u32) -> Result<OcAwardSync> {
        in_tx!(self.write().await?, |c| opencredit::sync_awards(c, limit))
    }

    async fn create_admin_user(&self, username: &str, password_hash: &str) -> Result<AdminUser> {
        admin::create_user(&mut *self.conn().await?, username, password_hash).await
    }

    async fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<AdminUser> {
        // The new hash and the end of the account's sessions commit together.
        in_tx!(self.write().await?, |c| admin::set_password(
            c,
            username,
            password_hash
        ))
    }

    async fn get_admin_user(&self, username: &str) -> Result<AdminUser> {
        admin::get_user(&mut *self.conn().await?, username).await
    }

    async fn record_admin_login(&self, user_id: &str, outcome: LoginOutcome) -> Result<AdminUser> {
        admin::record_login(&mut *self.conn().await?, user_id, outcome).await
    }

    async fn count_admin_login_attempt(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginAttempt> {
        let mut tx = self.write().await?;
        let attempt = admin::count_attempt(&mut tx, user_id, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(attempt)
    }

    async fn create_admin_session(&self, session: AdminSession) -> Result<()> {
        admin::create_session(&mut *self.conn().await?, session).await
    }

    async fn get_admin_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSession>> {
        admin::get_session(&mut *self.conn().await?, id_hash, now).await
    }

    async fn delete_admin_session(&self, id_hash: &str) -> Result<()> {
        admin::delete_session(&mut *self.conn().await?, id_hash).await
    }

    async fn purge_admin_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        admin::purge_sessions(&mut *self.conn().await?, now).await
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken> {
        jobs::create_token(&mut *self.conn().await?, token).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        jobs::list_tokens(&mut *self.conn().await?).await
    }

    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken> {
        jobs::revoke_token(&mut *self.conn().await?, id, at).await
    }

    async fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        jobs::touch_token(&mut *self.conn().await?, id, at).await
    }

    async fn find_api_token(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        jobs::find_token(&mut *self.conn().await?, secret_hash).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        jobs::stats(&mut *self.conn().await?).await
    }
}
