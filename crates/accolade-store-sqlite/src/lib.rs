#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod admin;
mod awards;
mod backfill;
mod busy;
mod checkpoint;
mod config;
mod credly;
mod events;
mod import;
#[macro_use]
mod forward;
mod jobs;
pub mod migrate;
mod openbadges;
mod opencredit;
mod progress_cache;
mod rows;
mod wal_sync;
mod webhooks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use accolade_domain::award::Award;
use accolade_domain::event::{IncomingEvent, LearnerData};
use accolade_domain::outbox::Job;
use accolade_domain::template::{Penalty, Requirement, Template, TemplateConfig};
use accolade_store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

type Result<T> = std::result::Result<T, StoreError>;

/// Learner cache entries kept before the cache is cleared (bounds memory with many learners).
const LEARNER_CACHE_MAX: usize = 100_000;
/// Reader connections kept open.
const READERS: usize = 4;

/// The SQLite store. Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one connection that writes; SQLite allows a single writer at a time anyway, and
    /// serialising here avoids busy-waiting inside SQLite.
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// The learner data this process last wrote per username, to skip redundant upserts.
    known_learners: Mutex<HashMap<String, LearnerData>>,
    /// Event batches waiting for the writer: a backfill step yields to them (see
    /// `backfill::apply`).
    ingest_waiting: std::sync::atomic::AtomicUsize,
    /// Learners' progress as last committed by this process (see `progress_cache`).
    progress: Mutex<progress_cache::ProgressCache>,
    /// Copies the WAL into the database file in the background; stops when the store is dropped.
    _checkpointer: checkpoint::Checkpointer,
    /// With `synchronous = FULL` the writer commits at `NORMAL` and the WAL is fsynced here,
    /// before anything is acknowledged (see `wal_sync`).
    wal_sync: Option<wal_sync::WalSync>,
}

impl Inner {
    /// Makes the commits made so far durable (a no-op unless `wal_sync` is on).
    fn sync_wal(&self) -> Result<()> {
        match &self.wal_sync {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }
}

/// Options for opening the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Run pending migrations on open.
    pub auto_migrate: bool,
    /// `PRAGMA synchronous`: `FULL` (default; every commit reaches the disk) or `NORMAL`.
    pub synchronous: String,
    pub busy_timeout_ms: u64,
    /// Page size of a new database file (an existing file keeps its own). Larger pages mean
    /// fewer WAL frames per commit (each frame is two `write` calls) for more bytes written: on
    /// the ingest path's random writes 8192 commits ~30% fewer frames than 4096 for ~1.4x the
    /// bytes (`examples/process_bench` with `WAL_PROBE=1`).
    pub page_size: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            auto_migrate: true,
            synchronous: "FULL".into(),
            busy_timeout_ms: 5000,
            page_size: 8192,
        }
    }
}

/// Turns `sqlite://path`, `sqlite:path` or a bare path into a file path.
pub fn path_from_url(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or(rest);
    PathBuf::from(rest)
}

fn configure(c: &Connection, o: &SqliteOptions) -> rusqlite::Result<()> {
    busy::wait_up_to(c, std::time::Duration::from_millis(o.busy_timeout_ms))?;
    // Only takes effect on a new, empty file; an existing database keeps its page size.
    c.pragma_update(None, "page_size", o.page_size)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", &o.synchronous)?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    c.pragma_update(None, "temp_store", "MEMORY")?;
    // A 32 MiB page cache per connection keeps the hot B-tree pages (inbox ids, fulfilments,
    // awards) in memory; the 2 MiB default made every lookup a pread through the kernel.
    c.pragma_update(None, "cache_size", -32_768)?;
    // No connection checkpoints on commit: a background thread does (see `checkpoint`), so no
    // writer ever waits for a checkpoint.
    c.pragma_update(None, "wal_autocheckpoint", 0)?;
    c.set_prepared_statement_cache_capacity(64);
    register_functions(c)
}

/// `fold(text)`: Unicode lower-case, so name search ignores case beyond ASCII (SQLite's own
/// `lower()` and `LIKE` only fold ASCII letters).
fn register_functions(c: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    c.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get::<Option<String>>(0)?.map(|s| s.to_lowercase())),
    )
}

/// Event batches at least this large are freed off the writer's path.
const FREE_ELSEWHERE: usize = 256;

impl SqliteStore {
    /// Opens (creating if needed) the database file and its folder.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<Self> {
        if !matches!(
            options.synchronous.to_ascii_uppercase().as_str(),
            "FULL" | "NORMAL" | "EXTRA"
        ) {
            return Err(StoreError::Other(format!(
                "database.sqlite_synchronous must be FULL, NORMAL or EXTRA, not {}",
                options.synchronous
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        create_private(path)?;
        let mut writer = Connection::open(path)
            .map_err(|e| StoreError::Other(format!("cannot open {}: {e}", path.display())))?;
        configure(&writer, options).map_err(rows::db)?;
        if options.auto_migrate {
            let n = migrate::run(&mut writer).map_err(StoreError::Other)?;
            if n > 0 {
                tracing::info!(migrations = n, path = %path.display(), "sqlite migrations applied");
            }
        } else {
            Self::check_migrated(&writer)?;
        }
        let wal_sync = if options.synchronous.eq_ignore_ascii_case("FULL") {
            writer
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(rows::db)?;
            Some(wal_sync::WalSync::new(path))
        } else {
            None
        };
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(rows::db)?;
            busy::wait_up_to(
                &r,
                std::time::Duration::from_millis(options.busy_timeout_ms),
            )
            .map_err(rows::db)?;
            r.set_prepared_statement_cache_capacity(64);
            register_functions(&r).map_err(rows::db)?;
            readers.push(r);
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
                known_learners: Mutex::new(HashMap::new()),
                progress: Mutex::new(progress_cache::ProgressCache::default()),
                ingest_waiting: std::sync::atomic::AtomicUsize::new(0),
                _checkpointer: checkpoint::Checkpointer::start(path).map_err(StoreError::Other)?,
                wal_sync,
            }),
        })
    }

    /// Processes and commits a batch; the commit is durable only after `Inner::sync_wal`.
    async fn commit_events(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<Vec<EventOutcome>> {
        let inner = self.inner.clone();
        let cached = index.current();
        let (result, rebuilt, events) = tokio::task::spawn_blocking(move || {
            let known = std::mem::take(&mut *inner.known_learners.lock());
            let mut new_learners = HashMap::new();
            let mut rebuilt = None;
            use std::sync::atomic::Ordering::SeqCst;
            inner.ingest_waiting.fetch_add(1, SeqCst);
            let mut conn = inner.writer.lock();
            inner.ingest_waiting.fetch_sub(1, SeqCst);
            let mut progress = inner.progress.lock();
            let result = (|| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(rows::db)?;
                let data_version: i64 = tx
                    .query_row("PRAGMA data_version", [], |r| r.get(0))
                    .map_err(rows::db)?;
                progress.validate(data_version);
                let current = events::current_index(&tx, cached.clone())?;
                if !Arc::ptr_eq(&current, &cached) {
                    rebuilt = Some(current.clone());
                }
                let out = events::process(
                    &tx,
                    &events,
                    &current,
                    &known,
                    &mut new_learners,
                    &mut progress,
                )?;
                tx.commit().map_err(rows::db)?;
                Ok(out)
            })();
            if result.is_err() {
                // The entries may hold changes of the rolled-back transaction.
                progress.clear();
            }
            drop(progress);
            drop(conn);
            let mut cache = inner.known_learners.lock();
            *cache = known;
            if result.is_ok() {
                if cache.len() + new_learners.len() > LEARNER_CACHE_MAX {
                    cache.clear();
                }
                cache.extend(new_learners);
            }
            (result, rebuilt, events)
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker panicked: {e}")))?;
        // Freeing thousands of parsed payloads took a twentieth of the writer's time; a large
        // batch is freed elsewhere while the writer goes on with the next one (a small one is
        // cheaper to free here than to hand over).
        if events.len() >= FREE_ELSEWHERE {
            tokio::task::spawn_blocking(move || drop(events));
        }
        if let Some(index_now) = rebuilt {
            index.set(index_now);
        }
        result
    }

    fn check_migrated(c: &Connection) -> Result<()> {
        let applied = migrate::applied(c).unwrap_or_default();
        if applied.len() < migrate::MIGRATIONS.len() {
            return Err(StoreError::Other(
                "the database schema is not up to date: run `accolade migrate` or set database.auto_migrate = true".into(),
            ));
        }
        Ok(())
    }

    /// Applies pending migrations (for `accolade migrate`).
    pub fn migrate(path: &Path, options: &SqliteOptions) -> Result<usize> {
        create_private(path)?;
        let mut c = Connection::open(path).map_err(rows::db)?;
        configure(&c, options).map_err(rows::db)?;
        migrate::run(&mut c).map_err(StoreError::Other)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one write transaction on the writer connection, off the async runtime.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(rows::db)?;
            let changes_before = tx.total_changes();
            let out = f(&tx)?;
            let changed = tx.total_changes() != changes_before;
            tx.commit().map_err(rows::db)?;
            drop(conn);
            // A transaction that changed nothing wrote nothing to sync (the workers' idle polls).
            if changed {
                inner.sync_wal()?;
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker panicked: {e}")))?
    }

    /// Runs `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.readers.lock().pop();
            let conn = match conn {
                Some(c) => c,
                None => {
                    let c =
                        Connection::open_with_flags(&inner.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                            .map_err(rows::db)?;
                    register_functions(&c).map_err(rows::db)?;
                    c
                }
            };
            let out = f(&conn);
            let mut pool = inner.readers.lock();
            if pool.len() < READERS {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker panicked: {e}")))?
    }
}

#[async_trait]
impl ImportStore for SqliteStore {
    async fn import_part(&self, part: ImportPart, dry_run: bool) -> Result<ImportCounts> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(rows::db)?;
            let counts = import::import_part(&tx, &part)?;
            if dry_run {
                tx.rollback().map_err(rows::db)?;
                return Ok(counts);
            }
            tx.commit().map_err(rows::db)?;
            // Fulfilments and awards changed outside `process_events`: this process's copy of
            // learners' progress is stale.
            inner.progress.lock().clear();
            drop(conn);
            inner.sync_wal()?;
            Ok(counts)
        })
        .await
        .map_err(|e| StoreError::Other(format!("sqlite worker panicked: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(rows::db))
            .await
    }
}

// Every other method forwards to a module function (see `forward`), except those written out.

forward! {
    impl ConfigStore for SqliteStore {
        read  fn config_version() -> i64 = config::version;

        async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)> {
            // One transaction so the version and the rows agree.
            self.write(|c| Ok((config::version(c)?, config::active_configs(c)?)))
                .await
        }

        read  fn list_templates(filter: &TemplateFilter, page: Page) -> Paged<Template>
            = config::list_templates;
        read  fn get_template(id: &str) -> TemplateConfig = config::template_config;
        write fn create_template(new: NewTemplate) -> Template = config::create_template;
        write fn update_template(id: &str, patch: TemplatePatch) -> Template
            = config::update_template;
        write fn set_template_active(id: &str, active: bool) -> Template = config::set_active;
        write fn add_requirement(template_id: &str, new: NewRequirement) -> Requirement
            = config::add_requirement;
        read  fn get_requirement(id: &str) -> Requirement = config::requirement;
        write fn update_requirement(id: &str, patch: RequirementPatch) -> Requirement
            = config::update_requirement;
        write fn delete_requirement(id: &str) -> () = config::delete_requirement;
        write fn add_penalty(template_id: &str, new: NewPenalty) -> Penalty = config::add_penalty;
        read  fn get_penalty(id: &str) -> Penalty = config::penalty;
        write fn update_penalty(id: &str, patch: PenaltyPatch) -> Penalty = config::update_penalty;
        write fn delete_penalty(id: &str) -> () = config::delete_penalty;
        write fn apply_template(desired: DesiredTemplate) -> TemplateConfig
            = config::apply_template;
    }
}

forward! {
    impl EventStore for SqliteStore {
        async fn process_events(
            &self,
            events: Vec<IncomingEvent>,
            index: &IndexCache,
        ) -> Result<Vec<EventOutcome>> {
            let outcomes = self.commit_events(events, index).await?;
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.sync_wal())
                .await
                .map_err(|e| StoreError::Other(format!("sqlite sync panicked: {e}")))??;
            Ok(outcomes)
        }

        async fn process_events_pipelined(
            &self,
            events: Vec<IncomingEvent>,
            index: &IndexCache,
        ) -> Result<(Vec<EventOutcome>, accolade_store::Durable)> {
            let outcomes = self.commit_events(events, index).await?;
            let inner = self.inner.clone();
            let durable: accolade_store::Durable = Box::pin(async move {
                tokio::task::spawn_blocking(move || inner.sync_wal())
                    .await
                    .map_err(|e| StoreError::Other(format!("sqlite sync panicked: {e}")))?
            });
            Ok((outcomes, durable))
        }

        async fn record_rejected(&self, rejected: Vec<RejectedEvent>) -> Result<()> {
            self.write(move |c| events::record_rejected(c, &rejected))
                .await
        }

        read  fn list_events(learner: Option<&str>, page: Page) -> Paged<StoredEvent>
            = events::list_events;
        read  fn list_rejected(page: Page) -> Paged<RejectedEvent> = events::list_rejected;
    }
}

forward! {
    impl AwardStore for SqliteStore {
        read  fn get_learner(username: &str) -> Learner = awards::get_learner;
        read  fn list_learners(page: Page) -> Paged<Learner> = awards::list_learners;
        read  fn fulfillments(username: &str) -> Vec<Fulfillment> = awards::fulfillments;
        read  fn list_awards(filter: &AwardFilter, page: Page) -> Paged<Award>
            = awards::list_awards;
        read  fn get_award(id: &str) -> Award = awards::get_award;
        write fn award_manually(template_id: &str, username: &str, change: ManualChange) -> Award
            = awards::award_manually;
        write fn revoke_award(award_id: &str, change: ManualChange) -> Award = awards::revoke_award;
        write fn notify_expired_awards(now: DateTime<Utc>, limit: u32) -> Vec<Award>
            = awards::notify_expired;
    }
}

forward! {
    impl OutboxStore for SqliteStore {
        read  fn list_jobs(filter: &JobFilter, page: Page) -> Paged<Job> = jobs::list_jobs;
        read  fn get_job(id: &str) -> Job = jobs::get_job;
        write fn retry_job(id: &str) -> Job = jobs::retry_job;

        async fn claim_jobs(
            &self,
            kinds: &[&str],
            limit: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
        ) -> Result<Vec<Job>> {
            let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
            self.write(move |c| {
                let k: Vec<&str> = kinds.iter().map(String::as_str).collect();
                jobs::claim_jobs(c, &k, limit, now, lease_until)
            })
            .await
        }

        write fn finish_job(id: &str, result: JobResult, now: DateTime<Utc>) -> ()
            = jobs::finish_job;

        async fn finish_jobs(
            &self,
            items: Vec<JobCompletion>,
            now: DateTime<Utc>,
        ) -> Result<Vec<Option<Award>>> {
            self.write(move |c| {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let award = match item.delivery {
                        Some((award_id, d)) => match awards::record_delivery(c, &award_id, d) {
                            Ok(a) => Some(a),
                            Err(StoreError::NotFound { .. }) => None,
                            Err(e) => return Err(e),
                        },
                        None => None,
                    };
                    match jobs::finish_job(c, &item.job_id, item.result, now) {
                        Ok(()) | Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    out.push(award);
                }
                Ok(out)
            })
            .await
        }

        write fn release_jobs_waiting_for_key(org_id: &str, now: DateTime<Utc>) -> u64
            = jobs::release_waiting_for_key;
        write fn record_delivery(award_id: &str, delivery: Delivery) -> Award
            = awards::record_delivery;

        async fn unpublished_events(&self, limit: u32) -> Result<Vec<PendingPublication>> {
            self.read(move |c| {
                c.prepare_cached(
                    "SELECT id, event_type, award_id, time, payload FROM outgoing_events \
                     WHERE published_at IS NULL ORDER BY time, id LIMIT ?1",
                )
                .and_then(|mut s| {
                    s.query_map([i64::from(limit)], |r| {
                        let payload: String = r.get(4)?;
                        Ok(PendingPublication {
                            id: r.get(0)?,
                            event_type: r.get(1)?,
                            award_id: r.get(2)?,
                            time: rows::parse_ts(&r.get::<_, String>(3)?)?,
                            payload: serde_json::from_str(&payload).unwrap_or_default(),
                        })
                    })?
                    .collect()
                })
                .map_err(rows::db)
            })
            .await
        }

        async fn mark_published(&self, ids: Vec<String>, at: DateTime<Utc>) -> Result<()> {
            self.write(move |c| {
                let mut s = c
                    .prepare_cached("UPDATE outgoing_events SET published_at = ?2 WHERE id = ?1")
                    .map_err(rows::db)?;
                let at = rows::ts(at);
                for id in ids {
                    s.execute(rusqlite::params![id, at]).map_err(rows::db)?;
                }
                Ok(())
            })
            .await
        }
    }
}

forward! {
    impl CredlyStore for SqliteStore {
        write fn add_credly_org(new: NewCredlyOrganization) -> CredlyOrganization = credly::add_org;
        write fn add_credly_oauth_org(new: NewCredlyOAuthOrganization) -> CredlyOrganization
            = credly::add_oauth_org;
        write fn update_credly_org(id: &str, name: Option<String>, key: Option<CredlyKey>)
            -> CredlyOrganization = credly::update_org;
        write fn set_credly_org_oauth_client(id: &str, name: Option<String>, client: OAuthClient)
            -> CredlyOrganization = credly::set_oauth_client;
        read  fn get_credly_org(id: &str) -> CredlyOrganization = credly::get_org;
        read  fn list_credly_orgs() -> Vec<CredlyOrganization> = credly::list_orgs;
        read  fn credly_org_key(id: &str) -> Vec<u8> = credly::org_key;
        read  fn credly_org_oauth_client(id: &str) -> OAuthClient = credly::org_oauth_client;
        write fn claim_credly_key_rotation(
            id: &str,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            due_before: Option<DateTime<Utc>>
        ) -> bool = credly::claim_rotation;
        write fn finish_credly_key_rotation(
            id: &str,
            rotation: KeyRotation,
            new_key: Option<CredlyKey>
        ) -> CredlyOrganization = credly::finish_rotation;
        write fn sync_credly_templates(
            org_id: &str,
            active: Vec<ProviderTemplate>,
            pages: u32,
            dry_run: bool
        ) -> SyncSummary = credly::sync_templates;
        write fn apply_credly_template(org_id: &str, template: ProviderTemplate)
            -> (Option<Template>, TemplateChange) = credly::apply_template;
        write fn record_credly_notification(n: NewCredlyNotification) -> bool
            = credly::record_notification;
        write fn finish_credly_notification(id: &str, status: &str, detail: &str) -> ()
            = credly::finish_notification;
        read  fn list_credly_notifications(page: Page) -> Paged<CredlyNotification>
            = credly::list_notifications;
        read  fn count_pending_credly_notifications(organization_id: &str) -> u64
            = credly::count_pending_notifications;
        write fn prune_credly_notifications(before: DateTime<Utc>) -> u64
            = credly::prune_notifications;
        write fn set_award_external_state(external_id: &str, state: &str) -> Option<Award>
            = credly::set_external_state;
    }
}

forward! {
    impl WebhookStore for SqliteStore {
        write fn create_webhook(new: NewWebhook) -> Webhook = webhooks::create;
        read  fn list_webhooks(page: Page) -> Paged<Webhook> = webhooks::list;
        read  fn get_webhook(id: &str) -> Webhook = webhooks::get;
        write fn update_webhook(id: &str, patch: WebhookPatch) -> Webhook = webhooks::update;
        write fn delete_webhook(id: &str) -> () = webhooks::delete;
        read  fn webhook_secret(id: &str) -> Vec<u8> = webhooks::secret;
        write fn set_webhook_secret(id: &str, secret_ciphertext: Vec<u8>) -> Webhook
            = webhooks::set_secret;
        write fn fan_out_webhooks(limit: u32, now: DateTime<Utc>) -> FanOut = webhooks::fan_out;
        write fn claim_webhook_deliveries(
            limit: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Vec<ClaimedDelivery> = webhooks::claim;
        write fn finish_webhook_attempt(id: &str, result: AttemptResult, now: DateTime<Utc>)
            -> bool = webhooks::finish;
        read  fn list_webhook_deliveries(filter: &DeliveryFilter, page: Page)
            -> Paged<WebhookDelivery> = webhooks::list_deliveries;
        read  fn get_webhook_delivery(id: &str) -> WebhookDelivery = webhooks::get_delivery;
        write fn replay_webhook_delivery(id: &str, now: DateTime<Utc>) -> WebhookDelivery
            = webhooks::replay;
    }
}

forward! {
    impl AdminStore for SqliteStore {
        write fn create_admin_user(username: &str, password_hash: &str) -> AdminUser
            = admin::create_user;
        write fn set_admin_password(username: &str, password_hash: &str) -> AdminUser
            = admin::set_password;
        read  fn get_admin_user(username: &str) -> AdminUser = admin::get_user;
        write fn record_admin_login(user_id: &str, outcome: LoginOutcome) -> AdminUser
            = admin::record_login;
        write fn count_admin_login_attempt(user_id: &str, now: DateTime<Utc>) -> LoginAttempt
            = admin::count_attempt;
        write fn create_admin_session(session: AdminSession) -> () = admin::create_session;
        read  fn get_admin_session(id_hash: &str, now: DateTime<Utc>) -> Option<AdminSession>
            = admin::get_session;
        write fn delete_admin_session(id_hash: &str) -> () = admin::delete_session;
        write fn purge_admin_sessions(now: DateTime<Utc>) -> u64 = admin::purge_sessions;

        write fn create_api_token(token: NewApiToken) -> ApiToken = jobs::create_token;
        read  fn find_api_token(secret_hash: &str) -> Option<ApiToken> = jobs::find_token;
        read  fn list_api_tokens() -> Vec<ApiToken> = jobs::list_tokens;
        write fn revoke_api_token(id: &str, at: DateTime<Utc>) -> ApiToken = jobs::revoke_token;
        write fn touch_api_token(id: &str, at: DateTime<Utc>) -> () = jobs::touch_token;
        read  fn stats() -> StoreStats = jobs::stats;
    }
}

forward! {
    impl OpenCreditStore for SqliteStore {
        write fn oc_create_app(name: &str, api_key: &str, secret_hash: &str, tier: &str) -> OcApp
            = opencredit::create_app;
        read  fn oc_app_by_key(api_key: &str) -> Option<OcApp> = opencredit::app_by_key;
        write fn oc_set_app_tier(app: &str, tier: &str) -> OcApp = opencredit::set_app_tier;
        read  fn oc_list_apps() -> Vec<OcApp> = opencredit::list_apps;
        write fn oc_register(new: NewOcMember) -> (OcMember, Option<OcMember>)
            = opencredit::register;
        read  fn oc_member(id: i64) -> Option<OcMember> = opencredit::get_member;
        write fn oc_set_avatar(member_id: i64, avatar: Option<&str>) -> OcMember
            = opencredit::set_avatar;
        read  fn oc_login(email: &str) -> Option<(OcMember, String)> = opencredit::login;
        read  fn oc_search_members(email: Option<&str>, query: Option<&str>, page: Page)
            -> (Vec<OcMember>, u64) = opencredit::search_members;
        read  fn oc_managed(manager_id: i64) -> Vec<i64> = opencredit::managed;
        read  fn oc_member_emails(member_id: i64) -> Vec<OcEmail> = opencredit::member_emails;
        write fn oc_add_email(member_id: i64, email: &str, token_hash: &str) -> OcEmail
            = opencredit::add_email;
        write fn oc_reissue_email_link(member_id: i64, email: &str, token_hash: &str)
            -> Option<OcEmail> = opencredit::reissue_email_link;
        write fn oc_verify_email(token_hash: &str, now: DateTime<Utc>) -> Option<OcEmail>
            = opencredit::verify_email;
        write fn oc_create_token(token: OcToken) -> () = opencredit::create_token;
        read  fn oc_token(token_hash: &str) -> Option<OcToken> = opencredit::token;
        write fn oc_create_badge(member_id: i64, fields: OcBadgeFields) -> OcBadge
            = opencredit::create_badge;
        write fn oc_update_badge(id: i64, fields: OcBadgeFields) -> OcBadge
            = opencredit::update_badge;
        read  fn oc_badge(id: i64) -> Option<OcBadge> = opencredit::get_badge;
        read  fn oc_list_badges(member_id: Option<i64>, page: Page) -> (Vec<OcBadge>, u64)
            = opencredit::list_badges;
        write fn oc_delete_badge(id: i64) -> bool = opencredit::delete_badge;
        read  fn oc_email(email: &str) -> Option<OcEmail> = opencredit::get_email;
        write fn oc_give(new: NewOcMemberBadge) -> OcMemberBadge = opencredit::give;
        read  fn oc_member_badge(id: i64) -> Option<OcMemberBadge> = opencredit::get_member_badge;
        read  fn oc_member_badges(member_id: i64, status: Option<&str>, page: Page)
            -> (Vec<OcMemberBadge>, u64) = opencredit::member_badges;
        write fn oc_set_member_badge_status(id: i64, status: &str) -> OcMemberBadge
            = opencredit::set_member_badge_status;
        write fn oc_delete_member_badge(id: i64) -> bool = opencredit::delete_member_badge;
        write fn oc_sync_awards(limit: u32) -> OcAwardSync = opencredit::sync_awards;
    }
}

forward! {
    impl OpenBadgesStore for SqliteStore {
        read  fn ob_keys() -> Vec<ObKey> = openbadges::keys;
        write fn ob_add_key(key: NewObKey, only_if_none: bool, now: DateTime<Utc>) -> ObKey
            = openbadges::add_key;
        write fn ob_claim(
            holder: &str,
            limit: u32,
            list_size: u32,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>
        ) -> Option<ObWork> = openbadges::claim;
        write fn ob_complete(
            holder: &str,
            work: &ObWork,
            signed: Vec<SignedCredential>,
            now: DateTime<Utc>
        ) -> Option<ObCompleted> = openbadges::complete;
        read  fn ob_lists_to_sign(limit: u32) -> Vec<ObStatusList> = openbadges::lists_to_sign;
        write fn ob_store_status_list(id: i64, version: i64, document: String, now: DateTime<Utc>)
            -> bool = openbadges::store_status_list;
        read  fn ob_status_list(id: i64) -> ObStatusList = openbadges::status_list;
        read  fn ob_credential(credential_id: &str) -> ObCredential
            = openbadges::credential_by_id;
        read  fn ob_credential_of_award(award_id: &str) -> Option<ObCredential>
            = openbadges::credential_of_award;
        read  fn ob_credential_ids(award_ids: &[String]) -> HashMap<String, String>
            = openbadges::credential_ids;
        read  fn ob_totals() -> ObTotals = openbadges::totals;
        read  fn ob_backlog() -> u64 = openbadges::backlog;
    }
}

/// Creates a new database file readable by its owner only (it holds learners' addresses and
/// sealed keys); SQLite gives its `-wal` and `-shm` files the same mode. An existing file keeps
/// the mode its operator gave it.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Other(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

forward! {
    impl BackfillStore for SqliteStore {
        read  fn inbox_bounds() -> InboxBounds = backfill::inbox_bounds;

        async fn scan_inbox(
            &self,
            scan: InboxScan,
            mut visitor: Box<dyn InboxVisitor>,
        ) -> Result<Box<dyn InboxVisitor>> {
            // A thread and a read-only connection of the scan's own: the visitor may lower the
            // thread's priority, which no pooled thread should keep.
            let path = self.inner.path.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("inbox-scan".into())
                .spawn(move || {
                    let out = (|| {
                        let c = Connection::open_with_flags(
                            &path,
                            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                        )
                        .map_err(rows::db)?;
                        c.pragma_update(None, "cache_size", -32_768).map_err(rows::db)?;
                        visitor.begin();
                        backfill::scan_inbox(&c, &scan, visitor.as_mut())?;
                        Ok(visitor)
                    })();
                    let _ = tx.send(out);
                })
                .map_err(|e| StoreError::Other(format!("cannot start a scan thread: {e}")))?;
            rx.await
                .map_err(|_| StoreError::Other("the scan thread panicked".into()))?
        }

        read  fn latest_awards(template_id: &str) -> HashMap<String, accolade_domain::backfill::Held>
            = backfill::latest_awards;
        read  fn event_ids(seqs: &[i64]) -> HashMap<i64, String> = backfill::event_ids;
        write fn create_backfill(new: NewBackfill, now: DateTime<Utc>) -> Backfill
            = backfill::create;
        read  fn get_backfill(id: &str) -> Backfill = backfill::get;
        read  fn list_backfills(template_id: Option<&str>, page: Page) -> Paged<Backfill>
            = backfill::list;
        write fn cancel_backfill(id: &str, now: DateTime<Utc>) -> Backfill = backfill::cancel;
        write fn claim_backfill(holder: &str, only: Option<&str>, now: DateTime<Utc>, lease_until: DateTime<Utc>)
            -> Option<Backfill> = backfill::claim;
        write fn backfill_progress(
            id: &str,
            holder: &str,
            phase: BackfillPhase,
            events_scanned: i64,
            events_total: i64,
            learners_total: i64,
            lease_until: DateTime<Utc>,
            now: DateTime<Utc>
        ) -> Option<Backfill> = backfill::progress;

        async fn backfill_apply(
            &self,
            id: &str,
            holder: &str,
            learners: Vec<String>,
            replayer: Arc<accolade_domain::backfill::Replayer>,
            lease_until: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<Option<BackfillStep>> {
            let (id, holder) = (id.to_owned(), holder.to_owned());
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
                let mut conn = inner.writer.lock();
                // The step rewrites progress on the writer's own connection, which does not
                // move `data_version`: the cached progress of its learners is dropped here.
                let mut progress = inner.progress.lock();
                let result = (|| {
                    let tx = conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                        .map_err(rows::db)?;
                    let waiting = &inner.ingest_waiting;
                    let out = backfill::apply(
                        &tx,
                        &id,
                        &holder,
                        &learners,
                        &replayer,
                        lease_until,
                        now,
                        &|| waiting.load(std::sync::atomic::Ordering::SeqCst) > 0,
                    )?;
                    tx.commit().map_err(rows::db)?;
                    Ok(out)
                })();
                match &result {
                    Ok(Some(step)) => learners
                        .iter()
                        .take(step.learners as usize)
                        .for_each(|l| progress.forget(l)),
                    Ok(None) => {}
                    Err(_) => progress.clear(),
                }
                drop(progress);
                drop(conn);
                inner.sync_wal()?;
                result
            })
            .await
            .map_err(|e| StoreError::Other(format!("sqlite worker panicked: {e}")))?
        }

        write fn finish_backfill(
            id: &str,
            holder: &str,
            state: BackfillState,
            error: Option<String>,
            now: DateTime<Utc>
        ) -> Option<Backfill> = backfill::finish;
    }
}
