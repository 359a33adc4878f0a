#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod admin;
mod awards;
mod checkpoint;
mod config;
mod credly;
mod events;
mod jobs;
pub mod migrate;
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
    c.busy_timeout(std::time::Duration::from_millis(o.busy_timeout_ms))?;
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
            r.busy_timeout(std::time::Duration::from_millis(options.busy_timeout_ms))
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
                _checkpointer: checkpoint::Checkpointer::start(
                    path,
                    std::time::Duration::from_millis(options.busy_timeout_ms),
                )
                .map_err(StoreError::Other)?,
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
            let mut conn = inner.writer.lock();
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(rows::db))
            .await
    }

    async fn config_version(&self) -> Result<i64> {
        self.read(config::version).await
    }

    async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)> {
        // One transaction so the version and the rows agree.
        self.write(|c| Ok((config::version(c)?, config::active_configs(c)?)))
            .await
    }

    async fn list_templates(&self, filter: &TemplateFilter, page: Page) -> Result<Paged<Template>> {
        let filter = filter.clone();
        self.read(move |c| config::list_templates(c, &filter, page))
            .await
    }

    async fn get_template(&self, id: &str) -> Result<TemplateConfig> {
        let id = id.to_string();
        self.read(move |c| config::template_config(c, &id)).await
    }

    async fn create_template(&self, new: NewTemplate) -> Result<Template> {
        self.write(move |c| config::create_template(c, new)).await
    }

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<Template> {
        let id = id.to_string();
        self.write(move |c| config::update_template(c, &id, patch))
            .await
    }

    async fn set_template_active(&self, id: &str, active: bool) -> Result<Template> {
        let id = id.to_string();
        self.write(move |c| config::set_active(c, &id, active))
            .await
    }

    async fn add_requirement(&self, template_id: &str, new: NewRequirement) -> Result<Requirement> {
        let id = template_id.to_string();
        self.write(move |c| config::add_requirement(c, &id, new))
            .await
    }

    async fn get_requirement(&self, id: &str) -> Result<Requirement> {
        let id = id.to_string();
        self.read(move |c| config::requirement(c, &id)).await
    }

    async fn update_requirement(&self, id: &str, patch: RequirementPatch) -> Result<Requirement> {
        let id = id.to_string();
        self.write(move |c| config::update_requirement(c, &id, patch))
            .await
    }

    async fn delete_requirement(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| config::delete_requirement(c, &id))
            .await
    }

    async fn add_penalty(&self, template_id: &str, new: NewPenalty) -> Result<Penalty> {
        let id = template_id.to_string();
        self.write(move |c| config::add_penalty(c, &id, new)).await
    }

    async fn get_penalty(&self, id: &str) -> Result<Penalty> {
        let id = id.to_string();
        self.read(move |c| config::penalty(c, &id)).await
    }

    async fn update_penalty(&self, id: &str, patch: PenaltyPatch) -> Result<Penalty> {
        let id = id.to_string();
        self.write(move |c| config::update_penalty(c, &id, patch))
            .await
    }

    async fn delete_penalty(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| config::delete_penalty(c, &id)).await
    }

    async fn apply_template(&self, desired: DesiredTemplate) -> Result<TemplateConfig> {
        self.write(move |c| config::apply_template(c, desired))
            .await
    }

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

    async fn list_events(&self, learner: Option<&str>, page: Page) -> Result<Paged<StoredEvent>> {
        let learner = learner.map(str::to_string);
        self.read(move |c| events::list_events(c, learner.as_deref(), page))
            .await
    }

    async fn list_rejected(&self, page: Page) -> Result<Paged<RejectedEvent>> {
        self.read(move |c| events::list_rejected(c, page)).await
    }

    async fn get_learner(&self, username: &str) -> Result<Learner> {
        let u = username.to_string();
        self.read(move |c| awards::get_learner(c, &u)).await
    }

    async fn list_learners(&self, page: Page) -> Result<Paged<Learner>> {
        self.read(move |c| awards::list_learners(c, page)).await
    }

    async fn fulfillments(&self, username: &str) -> Result<Vec<Fulfillment>> {
        let u = username.to_string();
        self.read(move |c| awards::fulfillments(c, &u)).await
    }

    async fn list_awards(&self, filter: &AwardFilter, page: Page) -> Result<Paged<Award>> {
        let filter = filter.clone();
        self.read(move |c| awards::list_awards(c, &filter, page))
            .await
    }

    async fn get_award(&self, id: &str) -> Result<Award> {
        let id = id.to_string();
        self.read(move |c| awards::get_award(c, &id)).await
    }

    async fn award_manually(
        &self,
        template_id: &str,
        username: &str,
        change: ManualChange,
    ) -> Result<Award> {
        let (t, u) = (template_id.to_string(), username.to_string());
        self.write(move |c| awards::award_manually(c, &t, &u, change))
            .await
    }

    async fn revoke_award(&self, award_id: &str, change: ManualChange) -> Result<Award> {
        let id = award_id.to_string();
        self.write(move |c| awards::revoke_award(c, &id, change))
            .await
    }

    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>> {
        let filter = filter.clone();
        self.read(move |c| jobs::list_jobs(c, &filter, page)).await
    }

    async fn get_job(&self, id: &str) -> Result<Job> {
        let id = id.to_string();
        self.read(move |c| jobs::get_job(c, &id)).await
    }

    async fn retry_job(&self, id: &str) -> Result<Job> {
        let id = id.to_string();
        self.write(move |c| jobs::retry_job(c, &id)).await
    }

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

    async fn finish_job(&self, id: &str, result: JobResult, now: DateTime<Utc>) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| jobs::finish_job(c, &id, result, now))
            .await
    }

    async fn release_jobs_waiting_for_key(&self, org_id: &str, now: DateTime<Utc>) -> Result<u64> {
        let org_id = org_id.to_string();
        self.write(move |c| jobs::release_waiting_for_key(c, &org_id, now))
            .await
    }

    async fn record_delivery(&self, award_id: &str, delivery: Delivery) -> Result<Award> {
        let id = award_id.to_string();
        self.write(move |c| awards::record_delivery(c, &id, delivery))
            .await
    }

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

    async fn add_credly_org(&self, new: NewCredlyOrganization) -> Result<CredlyOrganization> {
        self.write(move |c| credly::add_org(c, new)).await
    }

    async fn update_credly_org(
        &self,
        id: &str,
        name: Option<String>,
        key: Option<CredlyKey>,
    ) -> Result<CredlyOrganization> {
        let id = id.to_string();
        self.write(move |c| credly::update_org(c, &id, name, key))
            .await
    }

    async fn get_credly_org(&self, id: &str) -> Result<CredlyOrganization> {
        let id = id.to_string();
        self.read(move |c| credly::get_org(c, &id)).await
    }

    async fn list_credly_orgs(&self) -> Result<Vec<CredlyOrganization>> {
        self.read(credly::list_orgs).await
    }

    async fn credly_org_key(&self, id: &str) -> Result<Vec<u8>> {
        let id = id.to_string();
        self.read(move |c| credly::org_key(c, &id)).await
    }

    async fn sync_credly_templates(
        &self,
        org_id: &str,
        active: Vec<ProviderTemplate>,
        pages: u32,
        dry_run: bool,
    ) -> Result<SyncSummary> {
        let org_id = org_id.to_string();
        self.write(move |c| credly::sync_templates(c, &org_id, active, pages, dry_run))
            .await
    }

    async fn apply_credly_template(
        &self,
        org_id: &str,
        template: ProviderTemplate,
    ) -> Result<(Option<Template>, TemplateChange)> {
        let org_id = org_id.to_string();
        self.write(move |c| credly::apply_template(c, &org_id, template))
            .await
    }

    async fn record_credly_notification(&self, n: NewCredlyNotification) -> Result<bool> {
        self.write(move |c| credly::record_notification(c, n)).await
    }

    async fn finish_credly_notification(&self, id: &str, status: &str, detail: &str) -> Result<()> {
        let (id, status, detail) = (id.to_string(), status.to_string(), detail.to_string());
        self.write(move |c| credly::finish_notification(c, &id, &status, &detail))
            .await
    }

    async fn list_credly_notifications(&self, page: Page) -> Result<Paged<CredlyNotification>> {
        self.read(move |c| credly::list_notifications(c, page))
            .await
    }

    async fn count_pending_credly_notifications(&self, organization_id: &str) -> Result<u64> {
        let org = organization_id.to_string();
        self.read(move |c| credly::count_pending_notifications(c, &org))
            .await
    }

    async fn prune_credly_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        self.write(move |c| credly::prune_notifications(c, before))
            .await
    }

    async fn set_award_external_state(
        &self,
        external_id: &str,
        state: &str,
    ) -> Result<Option<Award>> {
        let (id, state) = (external_id.to_string(), state.to_string());
        self.write(move |c| credly::set_external_state(c, &id, &state))
            .await
    }

    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        self.write(move |c| webhooks::create(c, new)).await
    }

    async fn list_webhooks(&self, page: Page) -> Result<Paged<Webhook>> {
        self.read(move |c| webhooks::list(c, page)).await
    }

    async fn get_webhook(&self, id: &str) -> Result<Webhook> {
        let id = id.to_string();
        self.read(move |c| webhooks::get(c, &id)).await
    }

    async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> Result<Webhook> {
        let id = id.to_string();
        self.write(move |c| webhooks::update(c, &id, patch)).await
    }

    async fn delete_webhook(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| webhooks::delete(c, &id)).await
    }

    async fn webhook_secret(&self, id: &str) -> Result<Vec<u8>> {
        let id = id.to_string();
        self.read(move |c| webhooks::secret(c, &id)).await
    }

    async fn set_webhook_secret(&self, id: &str, secret_ciphertext: Vec<u8>) -> Result<Webhook> {
        let id = id.to_string();
        self.write(move |c| webhooks::set_secret(c, &id, secret_ciphertext))
            .await
    }

    async fn fan_out_webhooks(&self, limit: u32, now: DateTime<Utc>) -> Result<FanOut> {
        self.write(move |c| webhooks::fan_out(c, limit, now)).await
    }

    async fn claim_webhook_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.write(move |c| webhooks::claim(c, limit, now, lease_until))
            .await
    }

    async fn finish_webhook_attempt(
        &self,
        id: &str,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| webhooks::finish(c, &id, result, now))
            .await
    }

    async fn list_webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<WebhookDelivery>> {
        let filter = filter.clone();
        self.read(move |c| webhooks::list_deliveries(c, &filter, page))
            .await
    }

    async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery> {
        let id = id.to_string();
        self.read(move |c| webhooks::get_delivery(c, &id)).await
    }

    async fn replay_webhook_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery> {
        let id = id.to_string();
        self.write(move |c| webhooks::replay(c, &id, now)).await
    }

    async fn oc_create_app(
        &self,
        name: &str,
        api_key: &str,
        secret_hash: &str,
        tier: &str,
    ) -> Result<OcApp> {
        let (n, k, h, t) = (
            name.to_string(),
            api_key.to_string(),
            secret_hash.to_string(),
            tier.to_string(),
        );
        self.write(move |c| opencredit::create_app(c, &n, &k, &h, &t))
            .await
    }

    async fn oc_app_by_key(&self, api_key: &str) -> Result<Option<OcApp>> {
        let k = api_key.to_string();
        self.read(move |c| opencredit::app_by_key(c, &k)).await
    }

    async fn oc_set_app_tier(&self, app: &str, tier: &str) -> Result<OcApp> {
        let (a, t) = (app.to_string(), tier.to_string());
        self.write(move |c| opencredit::set_app_tier(c, &a, &t))
            .await
    }

    async fn oc_list_apps(&self) -> Result<Vec<OcApp>> {
        self.read(opencredit::list_apps).await
    }

    async fn oc_register(&self, new: NewOcMember) -> Result<(OcMember, Option<OcMember>)> {
        self.write(move |c| opencredit::register(c, new)).await
    }

    async fn oc_member(&self, id: i64) -> Result<Option<OcMember>> {
        self.read(move |c| opencredit::get_member(c, id)).await
    }

    async fn oc_set_avatar(&self, member_id: i64, avatar: Option<&str>) -> Result<OcMember> {
        let a = avatar.map(str::to_string);
        self.write(move |c| opencredit::set_avatar(c, member_id, a.as_deref()))
            .await
    }

    async fn oc_login(&self, email: &str) -> Result<Option<(OcMember, String)>> {
        let e = email.to_string();
        self.read(move |c| opencredit::login(c, &e)).await
    }

    async fn oc_search_members(
        &self,
        email: Option<&str>,
        query: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMember>, u64)> {
        let (e, q) = (email.map(str::to_string), query.map(str::to_string));
        self.read(move |c| opencredit::search_members(c, e.as_deref(), q.as_deref(), page))
            .await
    }

    async fn oc_managed(&self, manager_id: i64) -> Result<Vec<i64>> {
        self.read(move |c| opencredit::managed(c, manager_id)).await
    }

    async fn oc_member_emails(&self, member_id: i64) -> Result<Vec<OcEmail>> {
        self.read(move |c| opencredit::member_emails(c, member_id))
            .await
    }

    async fn oc_add_email(&self, member_id: i64, email: &str, token_hash: &str) -> Result<OcEmail> {
        let (e, h) = (email.to_string(), token_hash.to_string());
        self.write(move |c| opencredit::add_email(c, member_id, &e, &h))
            .await
    }

    async fn oc_reissue_email_link(
        &self,
        member_id: i64,
        email: &str,
        token_hash: &str,
    ) -> Result<Option<OcEmail>> {
        let (e, h) = (email.to_string(), token_hash.to_string());
        self.write(move |c| opencredit::reissue_email_link(c, member_id, &e, &h))
            .await
    }

    async fn oc_verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OcEmail>> {
        let h = token_hash.to_string();
        self.write(move |c| opencredit::verify_email(c, &h, now))
            .await
    }

    async fn oc_create_token(&self, token: OcToken) -> Result<()> {
        self.write(move |c| opencredit::create_token(c, token))
            .await
    }

    async fn oc_token(&self, token_hash: &str) -> Result<Option<OcToken>> {
        let h = token_hash.to_string();
        self.read(move |c| opencredit::token(c, &h)).await
    }

    async fn oc_create_badge(&self, member_id: i64, fields: OcBadgeFields) -> Result<OcBadge> {
        self.write(move |c| opencredit::create_badge(c, member_id, fields))
            .await
    }

    async fn oc_update_badge(&self, id: i64, fields: OcBadgeFields) -> Result<OcBadge> {
        self.write(move |c| opencredit::update_badge(c, id, fields))
            .await
    }

    async fn oc_badge(&self, id: i64) -> Result<Option<OcBadge>> {
        self.read(move |c| opencredit::get_badge(c, id)).await
    }

    async fn oc_list_badges(
        &self,
        member_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<OcBadge>, u64)> {
        self.read(move |c| opencredit::list_badges(c, member_id, page))
            .await
    }

    async fn oc_delete_badge(&self, id: i64) -> Result<bool> {
        self.write(move |c| opencredit::delete_badge(c, id)).await
    }

    async fn oc_email(&self, email: &str) -> Result<Option<OcEmail>> {
        let e = email.to_string();
        self.read(move |c| opencredit::get_email(c, &e)).await
    }

    async fn oc_give(&self, new: NewOcMemberBadge) -> Result<OcMemberBadge> {
        self.write(move |c| opencredit::give(c, new)).await
    }

    async fn oc_member_badge(&self, id: i64) -> Result<Option<OcMemberBadge>> {
        self.read(move |c| opencredit::get_member_badge(c, id))
            .await
    }

    async fn oc_member_badges(
        &self,
        member_id: i64,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMemberBadge>, u64)> {
        let st = status.map(str::to_string);
        self.read(move |c| opencredit::member_badges(c, member_id, st.as_deref(), page))
            .await
    }

    async fn oc_set_member_badge_status(&self, id: i64, status: &str) -> Result<OcMemberBadge> {
        let st = status.to_string();
        self.write(move |c| opencredit::set_member_badge_status(c, id, &st))
            .await
    }

    async fn oc_delete_member_badge(&self, id: i64) -> Result<bool> {
        self.write(move |c| opencredit::delete_member_badge(c, id))
            .await
    }

    async fn oc_sync_awards(&self, limit: u32) -> Result<OcAwardSync> {
        self.write(move |c| opencredit::sync_awards(c, limit)).await
    }

    async fn create_admin_user(&self, username: &str, password_hash: &str) -> Result<AdminUser> {
        let (u, h) = (username.to_string(), password_hash.to_string());
        self.write(move |c| admin::create_user(c, &u, &h)).await
    }

    async fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<AdminUser> {
        let (u, h) = (username.to_string(), password_hash.to_string());
        self.write(move |c| admin::set_password(c, &u, &h)).await
    }

    async fn get_admin_user(&self, username: &str) -> Result<AdminUser> {
        let u = username.to_string();
        self.read(move |c| admin::get_user(c, &u)).await
    }

    async fn record_admin_login(&self, user_id: &str, outcome: LoginOutcome) -> Result<AdminUser> {
        let id = user_id.to_string();
        self.write(move |c| admin::record_login(c, &id, outcome))
            .await
    }

    async fn count_admin_login_attempt(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginAttempt> {
        let id = user_id.to_string();
        self.write(move |c| admin::count_attempt(c, &id, now)).await
    }

    async fn create_admin_session(&self, session: AdminSession) -> Result<()> {
        self.write(move |c| admin::create_session(c, session)).await
    }

    async fn get_admin_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSession>> {
        let h = id_hash.to_string();
        self.read(move |c| admin::get_session(c, &h, now)).await
    }

    async fn delete_admin_session(&self, id_hash: &str) -> Result<()> {
        let h = id_hash.to_string();
        self.write(move |c| admin::delete_session(c, &h)).await
    }

    async fn purge_admin_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write(move |c| admin::purge_sessions(c, now)).await
    }

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken> {
        self.write(move |c| jobs::create_token(c, token)).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(jobs::list_tokens).await
    }

    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken> {
        let id = id.to_string();
        self.write(move |c| jobs::revoke_token(c, &id, at)).await
    }

    async fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| jobs::touch_token(c, &id, at)).await
    }

    async fn find_api_token(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        let h = secret_hash.to_string();
        self.read(move |c| jobs::find_token(c, &h)).await
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.read(jobs::stats).await
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
