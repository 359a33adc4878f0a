//! Runs the shared store conformance suite against PostgreSQL (a fresh database per test), plus
//! the PostgreSQL-only behaviour: migrations on demand and several concurrent writers.
//!
//! Needs a server at `postgres://postgres@127.0.0.1:5432/test`, or wherever
//! `ACCOLADE_TEST_PG_URL` points; a test fails with a clear message when it is not reachable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use accolade_store::prelude::*;
use accolade_store_postgres::{PgOptions, PgStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Test databases older than this are dropped by the next run (when nobody uses them).
const STALE_AFTER_SECS: u64 = 3600;
const PREFIX: &str = "accolade_t_";

fn admin_url() -> String {
    std::env::var("ACCOLADE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url()).expect("ACCOLADE_TEST_PG_URL is not a valid URL")
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whether a leftover database `accolade_t_<secs>_<pid>_<n>` may be dropped: it is old, or the
/// process that made it is gone. `DROP DATABASE` still refuses one that is in use.
fn is_stale(name: &str, now: u64) -> bool {
    let mut parts = name.trim_start_matches(PREFIX).split('_');
    let secs = parts.next().and_then(|s| s.parse::<u64>().ok());
    let pid = parts.next().and_then(|s| s.parse::<u32>().ok());
    match (secs, pid) {
        (Some(secs), Some(pid)) => {
            now.saturating_sub(secs) > STALE_AFTER_SECS
                || (pid != std::process::id()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists())
        }
        _ => false,
    }
}

async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'accolade\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = unix_secs();
    for name in names.iter().filter(|n| is_stale(n, now)) {
        // Names are ours (digits and underscores), so quoting them is safe.
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\"")))
            .execute(&mut *admin)
            .await;
    }
}

/// Creates an empty database and returns its name.
async fn create_database() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    static CLEANED: AtomicBool = AtomicBool::new(false);
    let url = admin_url();
    let mut admin = PgConnection::connect_with(&admin_options())
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL not reachable at {url}; start it or set ACCOLADE_TEST_PG_URL ({e})")
        });
    if !CLEANED.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&mut admin).await;
    }
    let name = format!(
        "{PREFIX}{}_{}_{}",
        unix_secs(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name} at {url}: {e}"));
    admin.close().await.ok();
    name
}

/// Every batch of two events or more is split into learner lanes, as large batches are in
/// production, so the whole suite runs through them (`postgres::one_transaction_per_batch`
/// covers `event_lanes = 1`).
fn test_options() -> PgOptions {
    PgOptions {
        max_connections: 4,
        event_lanes: 3,
        lane_min_events: 2,
        ..PgOptions::default()
    }
}

async fn fresh_store() -> PgStore {
    let name = create_database().await;
    PgStore::connect_with(admin_options().database(&name), &test_options())
        .await
        .expect("connect to the fresh test database")
}

async fn fresh() -> Arc<dyn Store> {
    Arc::new(fresh_store().await)
}

accolade_store::conformance_suite!(fresh());

/// Two stores (as two instances would open) on one fresh database.
async fn two_instances() -> (Arc<dyn Store>, Arc<dyn Store>) {
    let name = create_database().await;
    let connect = admin_options().database(&name);
    let a = PgStore::connect_with(connect.clone(), &test_options())
        .await
        .expect("connect the first instance");
    let b = PgStore::connect_with(connect, &test_options())
        .await
        .expect("connect the second instance");
    (Arc::new(a), Arc::new(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_change_via_other_handle() {
    let (a, b) = two_instances().await;
    accolade_store::testkit::shared::rule_change_via_other_handle(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_award_exactly_once() {
    let (a, b) = two_instances().await;
    accolade_store::testkit::shared::two_handles_award_exactly_once(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_sweep_expired_awards_once() {
    let (a, b) = two_instances().await;
    accolade_store::testkit::expiry::concurrent_sweeps(a, b).await;
}

/// PostgreSQL-only behaviour.
mod postgres {
    use std::collections::HashSet;

    use accolade_domain::event::IncomingEvent;
    use accolade_domain::rules::DataRule;
    use accolade_domain::template::Group;
    use accolade_store::{
        AwardFilter, EventOutcome, IndexCache, NewRequirement, Page, Store, StoreError,
    };
    use serde_json::json;

    use super::*;

    /// The admin URL with its database replaced by `name`.
    fn url_for(name: &str) -> String {
        let url = admin_url();
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b.to_string(), format!("?{q}")),
            None => (url.clone(), String::new()),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let host_end = base[scheme_end..]
            .find('/')
            .map_or(base.len(), |i| scheme_end + i);
        format!("{}/{name}{query}", &base[..host_end])
    }

    fn event(id: &str, learner: &str, passing: bool) -> IncomingEvent {
        IncomingEvent::from_json(&json!({
            "id": id,
            "event_type": "org.openedx.learning.course.passing.status.updated.v1",
            "time": "2026-05-01T10:00:00.123456789Z",
            "source": "test",
            "data": {"course_passing_status": {
                "is_passing": passing,
                "user": {"id": 7, "is_active": true,
                         "pii": {"username": learner, "email": format!("{learner}@example.org"), "name": "L"}},
                "course": {"course_key": "course-v1:A+B+C"}
            }}
        }))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_run_on_demand_and_are_checked() {
        let name = create_database().await;
        let manual = PgOptions {
            auto_migrate: false,
            ..test_options()
        };
        let refused = PgStore::connect(&url_for(&name), &manual)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("accolade migrate"),
            "unexpected error: {refused}"
        );
        let migrations = accolade_store_postgres::migrate::MIGRATOR.iter().count();
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .count();
        assert_eq!(migrations, files, "every file in migrations/ is embedded");
        assert_eq!(PgStore::migrate(&url_for(&name)).await.unwrap(), migrations);
        assert_eq!(PgStore::migrate(&url_for(&name)).await.unwrap(), 0);
        let store = PgStore::connect(&url_for(&name), &manual).await.unwrap();
        store.ping().await.unwrap();
        assert_eq!(store.backend(), "postgres");
        assert_eq!(store.config_version().await.unwrap(), 1);
    }

    /// Migration 14 completes the local jobs an earlier version left pending, as the retired
    /// worker did (an issue marks the award issued, awarded unless revoked); Credly and dead
    /// jobs are left alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_14_completes_pending_local_jobs() {
        let name = create_database().await;
        let mut c = PgConnection::connect_with(&admin_options().database(&name))
            .await
            .unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let run = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
        for f in files
            .iter()
            .take_while(|f| !f.ends_with("0014_complete_local_jobs.sql"))
        {
            sqlx::raw_sql(AssertSqlSafe(run(f)))
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO templates (id, name, origin, created_at, updated_at)
                 VALUES ('t1', 'T', 'local', now(), now());
             INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at,
                                 updated_at) VALUES
                 ('a1', 't1', 'ann', 1, 'error', now(), now(), now()),
                 ('a2', 't1', 'bob', 1, 'revoked', now(), now(), now()),
                 ('a3', 't1', 'cy', 1, 'pending', now(), now(), now());
             INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at)
                 VALUES
                 ('j1', 'award.issue', '{\"award_id\":\"a1\"}', 'pending', 1, now(), now(), now()),
                 ('j2', 'award.issue', '{\"award_id\":\"a2\"}', 'running', 1, now(), now(), now()),
                 ('j3', 'award.revoke', '{\"award_id\":\"a2\"}', 'pending', 0, now(), now(), now()),
                 ('j4', 'credly.issue', '{\"award_id\":\"a3\"}', 'pending', 0, now(), now(), now()),
                 ('j5', 'award.issue', '{\"award_id\":\"a3\"}', 'dead', 6, now(), now(), now());",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let last = files
            .iter()
            .find(|f| f.ends_with("0014_complete_local_jobs.sql"));
        sqlx::raw_sql(AssertSqlSafe(run(last.expect("migration 14"))))
            .execute(&mut c)
            .await
            .unwrap();
        let awards: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT id, state, issued_at IS NOT NULL FROM awards ORDER BY id")
                .fetch_all(&mut c)
                .await
                .unwrap();
        let awards: Vec<(&str, &str, bool)> = awards
            .iter()
            .map(|(a, s, i)| (a.as_str(), s.as_str(), *i))
            .collect();
        assert_eq!(
            awards,
            [
                ("a1", "awarded", true),
                ("a2", "revoked", true),
                ("a3", "pending", false)
            ]
        );
        let jobs: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM jobs ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let jobs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            jobs,
            [
                ("j1", "succeeded"),
                ("j2", "succeeded"),
                ("j3", "succeeded"),
                ("j4", "pending"),
                ("j5", "dead")
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_urls_and_unreachable_servers_are_clear_errors() {
        let e = PgStore::connect("mysql://nope", &test_options())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Other(_)), "{e}");
        let e = PgStore::connect(
            "postgres://postgres@127.0.0.1:1/none",
            &PgOptions {
                acquire_timeout_secs: 2,
                ..test_options()
            },
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("cannot connect to PostgreSQL"),
            "{e}"
        );
    }

    /// Several "instances" (separate pools and index caches) process overlapping batches for the
    /// same learners at once, with the same event ids in opposite orders: no deadlock, every
    /// event accepted exactly once, and one award per learner.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_instances_award_once() {
        let name = create_database().await;
        let first = PgStore::connect_with(admin_options().database(&name), &test_options())
            .await
            .unwrap();
        let mut t = accolade_store::testkit::local_template("Concurrent", true);
        t.allow_reaward = false;
        let t = first.create_template(t).await.unwrap();
        first
            .add_requirement(
                &t.id,
                NewRequirement {
                    key: None,
                    event_type: "org.openedx.learning.course.passing.status.updated.v1".into(),
                    description: "passes".into(),
                    group: Some(Group::parse("A").unwrap()),
                    rules: vec![DataRule::new("is_passing", "=", "true").unwrap()],
                },
            )
            .await
            .unwrap();

        let learners = ["ann", "bob", "cid", "dee"];
        let mut batches: Vec<Vec<IncomingEvent>> = Vec::new();
        for instance in 0..4 {
            let mut batch: Vec<IncomingEvent> = Vec::new();
            for round in 0..5 {
                for l in learners {
                    // Shared ids (redelivery) plus ids unique to this instance.
                    batch.push(event(&format!("shared-{l}-{round}"), l, true));
                    batch.push(event(&format!("own-{instance}-{l}-{round}"), l, true));
                }
            }
            if instance % 2 == 1 {
                batch.reverse();
            }
            batches.push(batch);
        }
        let mut tasks = Vec::new();
        for batch in batches {
            let store = PgStore::connect_with(admin_options().database(&name), &test_options())
                .await
                .unwrap();
            tasks.push(tokio::spawn(async move {
                let index = IndexCache::new();
                let mut outcomes = Vec::new();
                for chunk in batch.chunks(10) {
                    outcomes.extend(store.process_events(chunk.to_vec(), &index).await.unwrap());
                }
                outcomes
            }));
        }
        let mut accepted = 0;
        let mut awarded = HashSet::new();
        for task in tasks {
            for outcome in task.await.unwrap() {
                if let EventOutcome::Accepted {
                    awarded: a,
                    revoked,
                } = outcome
                {
                    accepted += 1;
                    assert!(revoked.is_empty());
                    awarded.extend(a);
                }
            }
        }
        // 4 learners × 5 rounds × (1 shared + 4 own) distinct ids.
        assert_eq!(accepted, 4 * 5 * 5);
        assert_eq!(awarded.len(), learners.len());
        let awards = first
            .list_awards(&AwardFilter::default(), Page::default())
            .await
            .unwrap();
        assert_eq!(awards.items.len(), learners.len());
        assert_eq!(first.stats().await.unwrap().events, 100);
        // One issue job per award, each done as it was written (local template).
        let jobs = first
            .list_jobs(&Default::default(), Page::default())
            .await
            .unwrap();
        assert_eq!(jobs.items.len(), learners.len());
        assert_eq!(first.stats().await.unwrap().outbox_pending, 0);
    }

    /// `event_lanes = 1`: a multi-event batch is one transaction, with the lanes' semantics
    /// (repeats within the batch are duplicates, a learner's events apply in order), and the
    /// same result as the lanes give.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_transaction_per_batch_and_lanes_agree() {
        let mut finals = Vec::new();
        for lanes in [1, 3] {
            let name = create_database().await;
            let options = PgOptions {
                event_lanes: lanes,
                ..test_options()
            };
            let store = PgStore::connect_with(admin_options().database(&name), &options)
                .await
                .unwrap();
            let t = store
                .create_template(accolade_store::testkit::local_template("Order", true))
                .await
                .unwrap();
            let passing = "org.openedx.learning.course.passing.status.updated.v1";
            let r = store
                .add_requirement(
                    &t.id,
                    NewRequirement {
                        key: None,
                        event_type: passing.into(),
                        description: "passes".into(),
                        group: Some(Group::parse("A").unwrap()),
                        rules: vec![DataRule::new("is_passing", "=", "true").unwrap()],
                    },
                )
                .await
                .unwrap();
            // Failing resets it, which revokes: the order of a learner's events decides.
            store
                .add_penalty(
                    &t.id,
                    accolade_store::NewPenalty {
                        key: None,
                        event_type: passing.into(),
                        description: "fails".into(),
                        rules: vec![DataRule::new("is_passing", "=", "false").unwrap()],
                        requirement_ids: vec![r.id.clone()],
                    },
                )
                .await
                .unwrap();
            // Twenty learners: pass, fail, pass (awarded, revoked, awarded again) or pass,
            // fail (ends revoked), interleaved, plus a repeated id.
            let mut batch = Vec::new();
            for round in 0..3 {
                for l in 0..20 {
                    if round == 2 && l % 2 == 1 {
                        continue;
                    }
                    batch.push(event(&format!("{l}-{round}"), &format!("l{l}"), round != 1));
                }
            }
            batch.push(event("0-0", "l0", true));
            let outcomes = store
                .process_events(batch, &IndexCache::new())
                .await
                .unwrap();
            assert_eq!(outcomes.len(), 51);
            assert_eq!(outcomes[50], EventOutcome::Duplicate);
            let awards = store
                .list_awards(&AwardFilter::default(), Page::default())
                .await
                .unwrap();
            let mut states: Vec<(String, String, i64)> = awards
                .items
                .iter()
                .map(|a| (a.learner.clone(), format!("{:?}", a.state), a.episode))
                .collect();
            states.sort();
            // 20 first awards (revoked) and 10 second ones.
            assert_eq!(states.len(), 30, "{states:?}");
            assert_eq!(store.stats().await.unwrap().events, 50);
            finals.push(states);
        }
        assert_eq!(finals[0], finals[1]);
    }

    /// The generic plan of each event-batch statement (the plan batches run with, made once per
    /// connection) and whether it reads a whole table.
    async fn whole_table_reads(c: &mut PgConnection) -> Vec<String> {
        let mut found = Vec::new();
        let (begin, statements) = accolade_store_postgres::event_batch_statements();
        sqlx::raw_sql(AssertSqlSafe(begin))
            .execute(&mut *c)
            .await
            .unwrap();
        for (name, sql) in statements {
            let params = sql.matches('$').count();
            let prepare = format!("PREPARE {name} AS {sql}");
            sqlx::raw_sql(AssertSqlSafe(prepare))
                .execute(&mut *c)
                .await
                .unwrap();
            let highest = (1..=params)
                .rev()
                .find(|n| sql.contains(&format!("${n}")))
                .unwrap();
            let nulls = vec!["NULL"; highest].join(", ");
            let plan: Vec<String> =
                sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN EXECUTE {name}({nulls})")))
                    .fetch_all(&mut *c)
                    .await
                    .unwrap();
            // Every scan of these tables must have a key condition (index or ctid).
            for (i, line) in plan.iter().enumerate() {
                let Some(table) = ["fulfillments", "awards", "inbox_events", "learners", "jobs"]
                    .into_iter()
                    .find(|t| line.contains("Scan") && line.contains(&format!(" on {t}")))
                else {
                    continue;
                };
                let keyed = plan[i + 1..]
                    .iter()
                    .take_while(|l| !l.contains("->"))
                    .any(|l| l.contains("Cond:"));
                if !keyed {
                    found.push(format!("{name} reads all of {table}:\n{}", plan.join("\n")));
                }
            }
            sqlx::raw_sql(AssertSqlSafe(format!("DEALLOCATE {name}")))
                .execute(&mut *c)
                .await
                .unwrap();
        }
        sqlx::raw_sql("ROLLBACK").execute(&mut *c).await.unwrap();
        found
    }

    /// Event batches use generic plans, made from whatever statistics exist when a connection
    /// first runs a statement: none on a new database, lots later. Either way each statement
    /// must look its rows up by key; a plan that scans a whole table once made batches on a
    /// growing database slower by the minute.
    #[tokio::test]
    async fn event_batch_plans_look_rows_up_by_key() {
        let name = create_database().await;
        PgStore::connect_with(admin_options().database(&name), &test_options())
            .await
            .unwrap();
        let mut c = PgConnection::connect_with(&admin_options().database(&name))
            .await
            .unwrap();
        let empty = whole_table_reads(&mut c).await;
        assert!(empty.is_empty(), "never analyzed: {empty:#?}");
        sqlx::raw_sql(
            "INSERT INTO fulfillments (learner, template_id, requirement_id, event_id, fulfilled_at) \
             SELECT 'l' || l, 't' || t, 'r' || r, 'e', now() \
             FROM generate_series(1, 2000) l, generate_series(1, 20) t, generate_series(1, 3) r; \
             ANALYZE",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let full = whole_table_reads(&mut c).await;
        assert!(full.is_empty(), "120,000 fulfilments: {full:#?}");
    }

    /// The pool skips its liveness ping for connections back in use at once, but pings one idle
    /// for a while: connections the server dropped in the meantime (a restart, an idle timeout)
    /// are replaced without the caller seeing an error.
    #[tokio::test]
    async fn idle_connections_the_server_dropped_are_replaced_unseen() {
        let name = create_database().await;
        let options = PgOptions {
            max_connections: 2,
            ..test_options()
        };
        let store = PgStore::connect_with(admin_options().database(&name), &options)
            .await
            .unwrap();
        store.stats().await.unwrap();
        let mut admin = PgConnection::connect_with(&admin_options()).await.unwrap();
        let dropped: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!dropped.is_empty(), "the store held a connection");
        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        store.stats().await.unwrap();
    }

    /// Migration 0019 turns stored JSONB bodies into text without changing what is served, and
    /// a binary from before it (which inserts `body::jsonb`) can still write to the new column.
    #[tokio::test]
    async fn inbox_bodies_survive_the_move_to_text() {
        let name = create_database().await;
        let store = PgStore::connect_with(admin_options().database(&name), &test_options())
            .await
            .unwrap();
        let mut c = PgConnection::connect_with(&admin_options().database(&name))
            .await
            .unwrap();
        let insert_as_before = |id: &str| {
            format!(
                "INSERT INTO inbox_events (id, event_type, learner, time, received_at, body) \
                 VALUES ('{id}', 't', 'l1', now(), now(), '{{\"id\": \"{id}\", \"n\": [1, 2]}}'::jsonb)"
            )
        };
        // The column as it was before 0019, with a row written then.
        sqlx::raw_sql("ALTER TABLE inbox_events ALTER COLUMN body TYPE JSONB USING body::jsonb")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::raw_sql(AssertSqlSafe(insert_as_before("before")))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!("../migrations/0019_inbox_body_text.sql"))
            .execute(&mut c)
            .await
            .unwrap();
        let kind: String = sqlx::query_scalar(
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'inbox_events' AND column_name = 'body'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(kind, "text");
        sqlx::raw_sql(AssertSqlSafe(insert_as_before("after")))
            .execute(&mut c)
            .await
            .unwrap();
        let events = store.list_events(None, Page::default()).await.unwrap();
        let bodies: Vec<(String, serde_json::Value)> =
            events.items.into_iter().map(|e| (e.id, e.body)).collect();
        assert_eq!(
            bodies,
            vec![
                ("after".to_string(), json!({"id": "after", "n": [1, 2]})),
                ("before".to_string(), json!({"id": "before", "n": [1, 2]})),
            ]
        );
    }
}
