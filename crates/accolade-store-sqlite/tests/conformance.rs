//! Runs the shared store conformance suite against SQLite (a fresh file per test).

use std::sync::Arc;

use accolade_store::Store;
use accolade_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh() -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(format!("accolade-conf-{}", uuid_like()));
    let store = SqliteStore::open(&dir.join("test.db"), &SqliteOptions::default()).expect("open sqlite");
    Arc::new(store)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

accolade_store::conformance_suite!(fresh());
