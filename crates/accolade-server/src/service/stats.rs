//! The totals operators watch: events received, awards held and revoked (running counters moved
//! in the transactions that award and revoke), outbox jobs pending and dead. The dashboard,
//! `/metrics` and `accolade doctor` read them here.

use accolade_store::{Store, StoreError, StoreStats};

pub async fn read(store: &dyn Store) -> Result<StoreStats, StoreError> {
    store.stats().await
}
