//! A learner's events are chained newest to oldest (migration 0007) instead of indexed: the
//! chain survives a restart (the in-memory head is gone, the stored one is used), another
//! process writing to the same file, and duplicates.

use std::sync::Arc;

use accolade_store::testkit::support::{passing, send};
use accolade_store::{IndexCache, Page, Store};
use accolade_store_sqlite::{SqliteOptions, SqliteStore};

const COURSE: &str = "course-v1:OpenedX+DemoX+Demo_Course";

fn open(path: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(path, &SqliteOptions::default()).expect("open sqlite"))
}

async fn ids(store: &Arc<dyn Store>, learner: &str) -> Vec<String> {
    store
        .list_events(Some(learner), Page::new(Some(100), None))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_survives_restarts_other_writers_and_duplicates() {
    let dir = std::env::temp_dir().join(format!("accolade-chain-{}", std::process::id()));
    let path = dir.join("chain.db");
    let index = IndexCache::new();
    {
        let store = open(&path);
        send(
            &store,
            &index,
            vec![
                passing("a1", "ann", COURSE, true),
                passing("b1", "bob", COURSE, true),
                passing("a2", "ann", COURSE, false),
                passing("a1", "ann", COURSE, true),
            ],
        )
        .await;
        send(&store, &index, vec![passing("a3", "ann", COURSE, true)]).await;
        assert_eq!(ids(&store, "ann").await, ["a3", "a2", "a1"]);
    }
    // A restart: the head comes from the learners table.
    let first = open(&path);
    send(&first, &index, vec![passing("a4", "ann", COURSE, true)]).await;
    // Another process on the same file moves the head; the first one's cached head is stale
    // and must not be used.
    let second = open(&path);
    send(&second, &index, vec![passing("a5", "ann", COURSE, true)]).await;
    send(&first, &index, vec![passing("a6", "ann", COURSE, true)]).await;
    assert_eq!(
        ids(&first, "ann").await,
        ["a6", "a5", "a4", "a3", "a2", "a1"]
    );
    assert_eq!(ids(&second, "bob").await, ["b1"]);
    assert!(ids(&second, "nobody").await.is_empty());
    // Paging walks the chain.
    let page = first
        .list_events(Some("ann"), Page::new(Some(2), Some(2)))
        .await
        .unwrap();
    let paged: Vec<_> = page.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(paged, ["a4", "a3"]);
    assert_eq!(page.next_offset, Some(4));
    let _ = std::fs::remove_dir_all(dir);
}
