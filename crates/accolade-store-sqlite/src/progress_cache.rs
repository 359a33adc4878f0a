//! An in-memory copy of learners' progress (fulfilled requirements per learner and template), so
//! the event path does not read `fulfillments` for every rule hit.
//!
//! Correctness rests on two facts. Only `process_events` changes fulfilments, and it runs on this
//! process's single writer connection; a batch works on an overlay that is merged into the cache
//! only after its transaction committed. Any other writer (another process on the same file, such
//! as a second server) commits through another connection, which changes SQLite's
//! `PRAGMA data_version` as seen by ours: the cache is then dropped before use.

use std::collections::{HashMap, HashSet};

/// Entries kept at most; beyond that the cache starts over (bounds memory with many learners).
const MAX_ENTRIES: usize = 50_000;

/// (learner, template id).
pub type Key = (String, String);

#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Requirement ids currently fulfilled.
    pub fulfilled: HashSet<String>,
    /// The learner is known to have held an award of the template at some point (awards are
    /// never deleted, so `true` never goes stale).
    pub ever_awarded: bool,
}

#[derive(Debug, Default)]
pub struct ProgressCache {
    data_version: Option<i64>,
    entries: HashMap<Key, Entry>,
}

impl ProgressCache {
    /// Drops everything when another connection has committed since the last batch.
    pub fn validate(&mut self, data_version: i64) {
        if self.data_version != Some(data_version) {
            self.entries.clear();
            self.data_version = Some(data_version);
        }
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Takes in a committed batch's overlay.
    pub fn merge(&mut self, overlay: HashMap<Key, Entry>) {
        if self.entries.len() + overlay.len() > MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.extend(overlay);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_version_drops_the_cache() {
        let mut c = ProgressCache::default();
        c.validate(1);
        let mut overlay = HashMap::new();
        overlay.insert(("ann".to_string(), "t".to_string()), Entry::default());
        c.merge(overlay);
        c.validate(1);
        assert_eq!(c.len(), 1);
        c.validate(2);
        assert_eq!(c.len(), 0);
    }
}
