#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod awards;
mod backfill;
mod config;
mod credly;
mod effects;
mod events;
mod import;
#[macro_use]
mod forward;
mod jobs;
pub mod migrate;
mod openbadges;
mod opencredit;
mod rows;
mod webhooks;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
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

/// Lanes per large event batch by default. Measured on two cores with the database on the same
/// machine (docs/benchmarks.md): batch ingest rose from about 15,000 events/s in one transaction
/// to 21,000-23,000 with two lanes and 24,000-26,000 with four.
pub const DEFAULT_EVENT_LANES: usize = 4;
/// A batch smaller than this runs as one transaction by default: for a few events, a second
/// connection and commit cost more than they save.
pub const DEFAULT_LANE_MIN_EVENTS: usize = 64;

/// How an event batch's transaction begins, and its statements by name, for tests that check
/// their plans.
#[doc(hidden)]
pub fn event_batch_statements() -> (&'static str, [(&'static str, &'static str); 3]) {
    (
        config::BEGIN_EVENT_BATCH,
        [
            ("inbox", events::INSERT_INBOX),
            ("progress", effects::PROGRESS),
            ("flush", effects::FLUSH),
        ],
    )
}

/// A pooled connection idle at least this long is pinged before it is used again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The PostgreSQL store. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Concurrent transactions a large event batch is split into (see `process_events`).
    event_lanes: usize,
    /// Batches smaller than this are one transaction.
    lane_min_events: usize,
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
    /// Learner lanes of a large event batch: it is processed as this many transactions at once,
    /// each on a connection of its own (1: one transaction per batch).
    pub event_lanes: usize,
    /// Batches of fewer events than this run as one transaction whatever `event_lanes` says.
    pub lane_min_events: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            auto_migrate: true,
            max_connections: 10,
            acquire_timeout_secs: 5,
            event_lanes: DEFAULT_EVENT_LANES,
            lane_min_events: DEFAULT_LANE_MIN_EVENTS,
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
            // sqlx pings every connection it hands out: a round trip per transaction, which for
            // a small event batch is one in six. A connection back in use within
            // `PING_AFTER_IDLE` is known to work; one idle longer is pinged as before, so
            // connections a database restart broke are still replaced unseen.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
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
        // A lane holds a connection; leave at least one for everything else.
        let event_lanes = options.event_lanes.clamp(
            1,
            (options.max_connections.max(1) as usize)
                .saturating_sub(1)
                .max(1),
        );
        Ok(PgStore {
            pool,
            event_lanes,
            lane_min_events: options.lane_min_events.max(2),
        })
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

    /// An event batch's transaction, holding the configuration lock shared.
    async fn event_batch(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with(config::BEGIN_EVENT_BATCH)
            .await
            .map_err(db)
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
impl ImportStore for PgStore {
    async fn import_part(&self, part: ImportPart, dry_run: bool) -> Result<ImportCounts> {
        // Holds the configuration lock: the part may add templates and requirements.
        let mut tx = self.config_change().await?;
        let counts = import::import_part(&mut tx, &part).await?;
        if dry_run {
            tx.rollback().await.map_err(db)?;
        } else {
            tx.commit().await.map_err(db)?;
        }
        Ok(counts)
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
}

// Every other method forwards to a module function (see `forward`), except those written out.

forward! {
    impl ConfigStore for PgStore {
        conn          fn config_version() -> i64 = config::version;

        async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)> {
            in_tx!(self.snapshot().await?, |c| async {
                Ok::<_, StoreError>((config::version(c).await?, config::active_configs(c).await?))
            })
        }

        conn          fn list_templates(filter: &TemplateFilter, page: Page) -> Paged<Template>
            = config::list_templates;
        snapshot      fn get_template(id: &str) -> TemplateConfig = config::template_config;
        config_change fn create_template(new: NewTemplate) -> Template = config::create_template;
        config_change fn update_template(id: &str, patch: TemplatePatch) -> Template
            = config::update_template;
        config_change fn set_template_active(id: &str, active: bool) -> Template
            = config::set_active;
        config_change fn add_requirement(template_id: &str, new: NewRequirement) -> Requirement
            = config::add_requirement;
        conn          fn get_requirement(id: &str) -> Requirement = config::requirement;
        config_change fn update_requirement(id: &str, patch: RequirementPatch) -> Requirement
            = config::update_requirement;
        config_change fn delete_requirement(id: &str) -> () = config::delete_requirement;
        config_change fn add_penalty(template_id: &str, new: NewPenalty) -> Penalty
            = config::add_penalty;
        snapshot      fn get_penalty(id: &str) -> Penalty = config::penalty;
        config_change fn update_penalty(id: &str, patch: PenaltyPatch) -> Penalty
            = config::update_penalty;
        config_change fn delete_penalty(id: &str) -> () = config::delete_penalty;
        config_change fn apply_template(desired: DesiredTemplate) -> TemplateConfig
            = config::apply_template;
    }
}

forward! {
    impl EventStore for PgStore {
        async fn process_events(
            &self,
            events: Vec<IncomingEvent>,
            index: &IndexCache,
        ) -> Result<Vec<EventOutcome>> {
            if self.event_lanes <= 1 || events.len() < self.lane_min_events {
                return in_tx!(self.event_batch().await?, |c| events::process(c, &events, index));
            }
            // Learner lanes, each its own transaction, run at once: the database works on
            // several statements in parallel instead of one batch's round trips in a row. Each
            // lane commits on its own (no lane waits for another: with several instances a
            // wait across lanes could close a cycle the database cannot see). If a lane fails,
            // the batch fails and the caller retries it; events of lanes that did commit are
            // then answered as duplicates, as after any commit whose answer was lost.
            let total = events.len();
            let split = events::split_into_lanes(events, self.event_lanes);
            let runs = split.lanes.into_iter().map(|(positions, lane)| async move {
                let outcomes: Result<Vec<EventOutcome>> =
                    in_tx!(self.event_batch().await?, |c| events::process(c, &lane, index));
                outcomes.map(|o| (positions, o))
            });
            let done = futures::future::join_all(runs).await;
            let lanes = done.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(events::merge_lanes(total, &split.repeats, lanes))
        }

        async fn record_rejected(&self, rejected: Vec<RejectedEvent>) -> Result<()> {
            events::record_rejected(&mut *self.conn().await?, &rejected).await
        }

        conn          fn list_events(learner: Option<&str>, page: Page) -> Paged<StoredEvent>
            = events::list_events;
        conn          fn list_rejected(page: Page) -> Paged<RejectedEvent> = events::list_rejected;
    }
}

forward! {
    impl AwardStore for PgStore {
        conn          fn get_learner(username: &str) -> Learner = awards::get_learner;
        conn          fn list_learners(page: Page) -> Paged<Learner> = awards::list_learners;
        conn          fn fulfillments(username: &str) -> Vec<Fulfillment> = awards::fulfillments;
        conn          fn list_awards(filter: &AwardFilter, page: Page) -> Paged<Award>
            = awards::list_awards;
        conn          fn get_award(id: &str) -> Award = awards::get_award;
        write         fn award_manually(template_id: &str, username: &str, change: ManualChange)
            -> Award = awards::award_manually;
        write         fn revoke_award(award_id: &str, change: ManualChange) -> Award
            = awards::revoke_award;
        write         fn notify_expired_awards(now: DateTime<Utc>, limit: u32) -> Vec<Award>
            = awards::notify_expired;
    }
}

forward! {
    impl OutboxStore for PgStore {
        conn          fn list_jobs(filter: &JobFilter, page: Page) -> Paged<Job> = jobs::list_jobs;
        conn          fn get_job(id: &str) -> Job = jobs::get_job;
        conn          fn retry_job(id: &str) -> Job = jobs::retry_job;
        conn          fn claim_jobs(
            kinds: &[&str],
            limit: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Vec<Job> = jobs::claim_jobs;
        conn          fn finish_job(id: &str, result: JobResult, now: DateTime<Utc>) -> ()
            = jobs::finish_job;
        write         fn finish_jobs(items: Vec<JobCompletion>, now: DateTime<Utc>)
            -> Vec<Option<Award>> = jobs::finish_jobs;
        conn          fn release_jobs_waiting_for_key(org_id: &str, now: DateTime<Utc>) -> u64
            = jobs::release_waiting_for_key;
        write         fn record_delivery(award_id: &str, delivery: Delivery) -> Award
            = awards::record_delivery;

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
    }
}

forward! {
    impl CredlyStore for PgStore {
        write         fn add_credly_org(new: NewCredlyOrganization) -> CredlyOrganization
            = credly::add_org;
        write         fn add_credly_oauth_org(new: NewCredlyOAuthOrganization)
            -> CredlyOrganization = credly::add_oauth_org;
        write         fn update_credly_org(id: &str, name: Option<String>, key: Option<CredlyKey>)
            -> CredlyOrganization = credly::update_org;
        write         fn set_credly_org_oauth_client(
            id: &str,
            name: Option<String>,
            client: OAuthClient
        ) -> CredlyOrganization = credly::set_oauth_client;
        conn          fn get_credly_org(id: &str) -> CredlyOrganization = credly::get_org;
        conn          fn list_credly_orgs() -> Vec<CredlyOrganization> = credly::list_orgs;
        conn          fn credly_org_key(id: &str) -> Vec<u8> = credly::org_key;
        conn          fn credly_org_oauth_client(id: &str) -> OAuthClient
            = credly::org_oauth_client;
        conn          fn claim_credly_key_rotation(
            id: &str,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            due_before: Option<DateTime<Utc>>
        ) -> bool = credly::claim_rotation;
        write         fn finish_credly_key_rotation(
            id: &str,
            rotation: KeyRotation,
            new_key: Option<CredlyKey>
        ) -> CredlyOrganization = credly::finish_rotation;

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

        config_change fn apply_credly_template(org_id: &str, template: ProviderTemplate)
            -> (Option<Template>, TemplateChange) = credly::apply_template;
        write         fn record_credly_notification(n: NewCredlyNotification) -> bool
            = credly::record_notification;
        conn          fn finish_credly_notification(id: &str, status: &str, detail: &str) -> ()
            = credly::finish_notification;
        conn          fn list_credly_notifications(page: Page) -> Paged<CredlyNotification>
            = credly::list_notifications;
        conn          fn count_pending_credly_notifications(organization_id: &str) -> u64
            = credly::count_pending_notifications;
        write         fn prune_credly_notifications(before: DateTime<Utc>) -> u64
            = credly::prune_notifications;
        write         fn set_award_external_state(external_id: &str, state: &str) -> Option<Award>
            = credly::set_external_state;
    }
}

forward! {
    impl WebhookStore for PgStore {
        conn          fn create_webhook(new: NewWebhook) -> Webhook = webhooks::create;
        conn          fn list_webhooks(page: Page) -> Paged<Webhook> = webhooks::list;
        conn          fn get_webhook(id: &str) -> Webhook = webhooks::get;
        conn          fn update_webhook(id: &str, patch: WebhookPatch) -> Webhook
            = webhooks::update;
        conn          fn delete_webhook(id: &str) -> () = webhooks::delete;
        conn          fn webhook_secret(id: &str) -> Vec<u8> = webhooks::secret;
        conn          fn set_webhook_secret(id: &str, secret_ciphertext: Vec<u8>) -> Webhook
            = webhooks::set_secret;
        write         fn fan_out_webhooks(limit: u32, now: DateTime<Utc>) -> FanOut
            = webhooks::fan_out;
        conn          fn claim_webhook_deliveries(
            limit: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Vec<ClaimedDelivery> = webhooks::claim;
        conn          fn finish_webhook_attempt(id: &str, result: AttemptResult, now: DateTime<Utc>)
            -> bool = webhooks::finish;
        conn          fn list_webhook_deliveries(filter: &DeliveryFilter, page: Page)
            -> Paged<WebhookDelivery> = webhooks::list_deliveries;
        conn          fn get_webhook_delivery(id: &str) -> WebhookDelivery = webhooks::get_delivery;
        conn          fn replay_webhook_delivery(id: &str, now: DateTime<Utc>) -> WebhookDelivery
            = webhooks::replay;
    }
}

forward! {
    impl AdminStore for PgStore {
        conn          fn create_admin_user(username: &str, password_hash: &str) -> AdminUser
            = admin::create_user;
        // The new hash and the end of the account's sessions commit together.
        write         fn set_admin_password(username: &str, password_hash: &str) -> AdminUser
            = admin::set_password;
        conn          fn get_admin_user(username: &str) -> AdminUser = admin::get_user;
        conn          fn record_admin_login(user_id: &str, outcome: LoginOutcome) -> AdminUser
            = admin::record_login;
        write         fn count_admin_login_attempt(user_id: &str, now: DateTime<Utc>)
            -> LoginAttempt = admin::count_attempt;
        conn          fn create_admin_session(session: AdminSession) -> () = admin::create_session;
        conn          fn get_admin_session(id_hash: &str, now: DateTime<Utc>)
            -> Option<AdminSession> = admin::get_session;
        conn          fn delete_admin_session(id_hash: &str) -> () = admin::delete_session;
        conn          fn purge_admin_sessions(now: DateTime<Utc>) -> u64 = admin::purge_sessions;

        conn          fn create_api_token(token: NewApiToken) -> ApiToken = jobs::create_token;
        conn          fn find_api_token(secret_hash: &str) -> Option<ApiToken> = jobs::find_token;
        conn          fn list_api_tokens() -> Vec<ApiToken> = jobs::list_tokens;
        conn          fn revoke_api_token(id: &str, at: DateTime<Utc>) -> ApiToken
            = jobs::revoke_token;
        conn          fn touch_api_token(id: &str, at: DateTime<Utc>) -> () = jobs::touch_token;
        conn          fn stats() -> StoreStats = jobs::stats;
    }
}

forward! {
    impl OpenCreditStore for PgStore {
        conn          fn oc_create_app(name: &str, api_key: &str, secret_hash: &str, tier: &str)
            -> OcApp = opencredit::create_app;
        conn          fn oc_app_by_key(api_key: &str) -> Option<OcApp> = opencredit::app_by_key;
        conn          fn oc_set_app_tier(app: &str, tier: &str) -> OcApp = opencredit::set_app_tier;
        conn          fn oc_list_apps() -> Vec<OcApp> = opencredit::list_apps;
        // The user, its address, the organization and the management link commit together.
        write         fn oc_register(new: NewOcMember) -> (OcMember, Option<OcMember>)
            = opencredit::register;
        conn          fn oc_member(id: i64) -> Option<OcMember> = opencredit::get_member;
        conn          fn oc_set_avatar(member_id: i64, avatar: Option<&str>) -> OcMember
            = opencredit::set_avatar;
        conn          fn oc_login(email: &str) -> Option<(OcMember, String)> = opencredit::login;
        snapshot      fn oc_search_members(email: Option<&str>, query: Option<&str>, page: Page)
            -> (Vec<OcMember>, u64) = opencredit::search_members;
        conn          fn oc_managed(manager_id: i64) -> Vec<i64> = opencredit::managed;
        conn          fn oc_member_emails(member_id: i64) -> Vec<OcEmail>
            = opencredit::member_emails;
        write         fn oc_add_email(member_id: i64, email: &str, token_hash: &str) -> OcEmail
            = opencredit::add_email;
        conn          fn oc_reissue_email_link(member_id: i64, email: &str, token_hash: &str)
            -> Option<OcEmail> = opencredit::reissue_email_link;
        conn          fn oc_verify_email(token_hash: &str, now: DateTime<Utc>) -> Option<OcEmail>
            = opencredit::verify_email;
        conn          fn oc_create_token(token: OcToken) -> () = opencredit::create_token;
        conn          fn oc_token(token_hash: &str) -> Option<OcToken> = opencredit::token;
        write         fn oc_create_badge(member_id: i64, fields: OcBadgeFields) -> OcBadge
            = opencredit::create_badge;
        conn          fn oc_update_badge(id: i64, fields: OcBadgeFields) -> OcBadge
            = opencredit::update_badge;
        conn          fn oc_badge(id: i64) -> Option<OcBadge> = opencredit::get_badge;
        snapshot      fn oc_list_badges(member_id: Option<i64>, page: Page) -> (Vec<OcBadge>, u64)
            = opencredit::list_badges;
        write         fn oc_delete_badge(id: i64) -> bool = opencredit::delete_badge;
        conn          fn oc_email(email: &str) -> Option<OcEmail> = opencredit::get_email;
        write         fn oc_give(new: NewOcMemberBadge) -> OcMemberBadge = opencredit::give;
        conn          fn oc_member_badge(id: i64) -> Option<OcMemberBadge>
            = opencredit::get_member_badge;
        snapshot      fn oc_member_badges(member_id: i64, status: Option<&str>, page: Page)
            -> (Vec<OcMemberBadge>, u64) = opencredit::member_badges;
        conn          fn oc_set_member_badge_status(id: i64, status: &str) -> OcMemberBadge
            = opencredit::set_member_badge_status;
        write         fn oc_delete_member_badge(id: i64) -> bool = opencredit::delete_member_badge;
        write         fn oc_sync_awards(limit: u32) -> OcAwardSync = opencredit::sync_awards;
    }
}

forward! {
    impl OpenBadgesStore for PgStore {
        conn          fn ob_keys() -> Vec<ObKey> = openbadges::keys;
        write         fn ob_add_key(key: NewObKey, only_if_none: bool, now: DateTime<Utc>)
            -> ObKey = openbadges::add_key;
        write         fn ob_claim(
            holder: &str,
            limit: u32,
            list_size: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Option<ObWork> = openbadges::claim;
        write         fn ob_complete(
            holder: &str,
            work: &ObWork,
            signed: Vec<SignedCredential>,
            now: DateTime<Utc>
        ) -> Option<ObCompleted> = openbadges::complete;
        conn          fn ob_lists_to_sign(limit: u32) -> Vec<ObStatusList>
            = openbadges::lists_to_sign;
        conn          fn ob_store_status_list(
            id: i64,
            version: i64,
            document: String,
            now: DateTime<Utc>
        ) -> bool = openbadges::store_status_list;
        conn          fn ob_status_list(id: i64) -> ObStatusList = openbadges::status_list;
        conn          fn ob_credential(credential_id: &str) -> ObCredential
            = openbadges::credential_by_id;
        conn          fn ob_credential_of_award(award_id: &str) -> Option<ObCredential>
            = openbadges::credential_of_award;
        conn          fn ob_credential_ids(award_ids: &[String]) -> HashMap<String, String>
            = openbadges::credential_ids;
        conn          fn ob_totals() -> ObTotals = openbadges::totals;
        conn          fn ob_backlog() -> u64 = openbadges::backlog;
    }
}

forward! {
    impl BackfillStore for PgStore {
        conn          fn inbox_bounds() -> InboxBounds = backfill::inbox_bounds;

        async fn scan_inbox(
            &self,
            scan: InboxScan,
            visitor: Box<dyn InboxVisitor>,
        ) -> Result<Box<dyn InboxVisitor>> {
            backfill::scan_inbox(&mut *self.conn().await?, scan, visitor).await
        }

        conn          fn latest_awards(template_id: &str)
            -> HashMap<String, accolade_domain::backfill::Held> = backfill::latest_awards;
        conn          fn event_ids(seqs: &[i64]) -> HashMap<i64, String> = backfill::event_ids;
        write         fn create_backfill(new: NewBackfill, now: DateTime<Utc>) -> Backfill
            = backfill::create;
        conn          fn get_backfill(id: &str) -> Backfill = backfill::get;
        conn          fn list_backfills(template_id: Option<&str>, page: Page) -> Paged<Backfill>
            = backfill::list;
        write         fn cancel_backfill(id: &str, now: DateTime<Utc>) -> Backfill
            = backfill::cancel;
        write         fn claim_backfill(holder: &str, only: Option<&str>,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Option<Backfill> = backfill::claim;
        write         fn backfill_progress(
            id: &str,
            holder: &str,
            phase: BackfillPhase,
            events_scanned: i64,
            events_total: i64,
            learners_total: i64,
            lease_until: DateTime<Utc>,
            now: DateTime<Utc>
        ) -> Option<Backfill> = backfill::progress;
        write         fn backfill_apply(
            id: &str,
            holder: &str,
            learners: Vec<String>,
            replayer: Arc<accolade_domain::backfill::Replayer>,
            lease_until: DateTime<Utc>,
            now: DateTime<Utc>
        ) -> Option<BackfillStep> = backfill::apply;
        write         fn finish_backfill(
            id: &str,
            holder: &str,
            state: BackfillState,
            error: Option<String>,
            now: DateTime<Utc>
        ) -> Option<Backfill> = backfill::finish;
    }
}
