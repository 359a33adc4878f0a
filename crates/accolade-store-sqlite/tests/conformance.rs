//! Runs the shared store conformance suite against SQLite (a fresh file per test).

use std::sync::Arc;

use accolade_store::prelude::*;
use accolade_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh() -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(format!("accolade-conf-{}", uuid_like()));
    let store =
        SqliteStore::open(&dir.join("test.db"), &SqliteOptions::default()).expect("open sqlite");
    Arc::new(store)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

accolade_store::conformance_suite!(fresh());

/// Two handles (as two processes would open) on one fresh database file.
fn two_handles() -> (Arc<dyn Store>, Arc<dyn Store>) {
    let path = std::env::temp_dir()
        .join(format!("accolade-conf-{}", uuid_like()))
        .join("test.db");
    let a = SqliteStore::open(&path, &SqliteOptions::default()).expect("open sqlite");
    let b = SqliteStore::open(&path, &SqliteOptions::default()).expect("open sqlite again");
    (Arc::new(a), Arc::new(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_change_via_other_handle() {
    let (a, b) = two_handles();
    accolade_store::testkit::shared::rule_change_via_other_handle(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_award_exactly_once() {
    let (a, b) = two_handles();
    accolade_store::testkit::shared::two_handles_award_exactly_once(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_sweep_expired_awards_once() {
    let (a, b) = two_handles();
    accolade_store::testkit::expiry::concurrent_sweeps(a, b).await;
}

/// `process_events` must not need a multi-threaded runtime (it used `block_in_place` once).
#[tokio::test(flavor = "current_thread")]
async fn process_events_runs_on_a_current_thread_runtime() {
    let store = fresh().await;
    let index = accolade_store::IndexCache::new();
    let ev = accolade_store::testkit::support::passing("ct-1", "ann", "course-v1:A+B+C", true);
    let out = store.process_events(vec![ev], &index).await.unwrap();
    assert_eq!(out.len(), 1);
}

/// The in-memory progress cache of one handle must not survive a change committed by another
/// handle (another process on the same file): a penalty applied through `b` resets what `a`
/// cached, so `a` must not award on stale progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_cache_sees_changes_made_by_another_handle() {
    use accolade_store::testkit::support::*;
    use accolade_store::IndexCache;
    let (a, b) = two_handles();
    let (t, reqs) = configure_active(
        &a,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    a.add_penalty(&t.id, failed_course_penalty(&[reqs[0].id.clone()]))
        .await
        .unwrap();
    let (ia, ib) = (IndexCache::new(), IndexCache::new());
    a.process_events(vec![passing("p1", "ann", DEMO_COURSE, true)], &ia)
        .await
        .unwrap();
    b.process_events(vec![passing("p2", "ann", DEMO_COURSE, false)], &ib)
        .await
        .unwrap();
    let out = a
        .process_events(vec![passing("p3", "ann", OTHER_COURSE, true)], &ia)
        .await
        .unwrap();
    assert_eq!(
        out[0],
        accolade_store::EventOutcome::Accepted {
            awarded: vec![],
            revoked: vec![]
        },
        "A was reset through the other handle; B alone must not award"
    );
}

/// A new file gets the configured page size; an existing file keeps its own when opened with
/// another (SQLite cannot change it in WAL mode, and the store must not try to rewrite it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_file_gets_the_configured_page_size_and_an_existing_one_keeps_its_own() {
    let path = std::env::temp_dir()
        .join(format!("accolade-conf-{}", uuid_like()))
        .join("test.db");
    let page_size = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let options = |page_size| SqliteOptions {
        page_size,
        ..SqliteOptions::default()
    };
    drop(SqliteStore::open(&path, &options(16384)).unwrap());
    assert_eq!(page_size(&path), 16384);
    let again = SqliteStore::open(&path, &options(4096)).unwrap();
    again.config_version().await.unwrap();
    drop(again);
    assert_eq!(page_size(&path), 16384);
    assert_eq!(SqliteOptions::default().page_size, 8192);
}
