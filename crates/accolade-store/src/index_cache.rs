//! The cached rules index shared by the event path.
//!
//! Every configuration change bumps a version number in the database in the same transaction.
//! Event processing reads that version inside its own transaction and rebuilds the index when it
//! differs, so every instance (several processes on one PostgreSQL) always evaluates the rules
//! that were committed before its transaction began: no stale rules, no pub/sub needed.

use std::sync::Arc;

use accolade_domain::engine::RuleIndex;
use parking_lot::RwLock;

#[derive(Debug, Default)]
pub struct IndexCache {
    current: RwLock<Arc<RuleIndex>>,
}

impl IndexCache {
    pub fn new() -> Self {
        IndexCache {
            current: RwLock::new(Arc::new(RuleIndex::build(-1, &[]))),
        }
    }

    /// The index if it was built from `version`.
    pub fn get_if(&self, version: i64) -> Option<Arc<RuleIndex>> {
        let cur = self.current.read();
        (cur.version == version).then(|| cur.clone())
    }

    /// The current index, whatever its version (for read-only views such as "explain").
    pub fn current(&self) -> Arc<RuleIndex> {
        self.current.read().clone()
    }

    pub fn set(&self, index: Arc<RuleIndex>) {
        *self.current.write() = index;
    }
}
