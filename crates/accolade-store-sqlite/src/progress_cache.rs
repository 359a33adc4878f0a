//! An in-memory copy of learners' progress (fulfilled requirements per learner and template), so
//! the event path does not read `fulfillments` for every rule hit.
//!
//! Correctness rests on two facts. Only `process_events` changes fulfilments, and it runs on this
//! process's single writer connection: a batch changes the cached entries as it changes the rows,
//! and if its transaction fails the whole cache is dropped (rare, and the rows are the truth).
//! Any other writer (another process on the same file, such as a second server) commits through
//! another connection, which changes SQLite's `PRAGMA data_version` as seen by ours: the cache is
//! then dropped before use.
//!
//! Entries are kept per learner, then per template, so a lookup borrows the event's strings
//! instead of allocating a key for every rule hit.
//!
//! It also keeps the head of each learner's event chain (`learners.last_event_seq`, see
//! migration 0007), which only `process_events` moves, under the same rules.

use std::collections::{HashMap, HashSet};

/// Entries kept at most; beyond that the cache starts over (bounds memory with many learners).
const MAX_ENTRIES: usize = 50_000;

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
    entries: usize,
    /// learner → template id → entry.
    learners: HashMap<String, HashMap<String, Entry>>,
    /// learner → seq of their newest event (None: no event yet).
    heads: HashMap<String, Option<i64>>,
}

impl ProgressCache {
    /// Called at the start of each batch: drops everything when another connection has committed
    /// since the last batch, or when the cache has grown past its bound.
    pub fn validate(&mut self, data_version: i64) {
        if self.data_version != Some(data_version)
            || self.entries > MAX_ENTRIES
            || self.heads.len() > MAX_ENTRIES
        {
            self.clear();
            self.data_version = Some(data_version);
        }
    }

    /// Forgets everything (after a failed transaction, whose changes the entries may hold).
    pub fn clear(&mut self) {
        self.learners.clear();
        self.heads.clear();
        self.entries = 0;
        self.data_version = None;
    }

    /// The entry of `learner` and `template`, read with `load` when it is not cached.
    pub fn entry<E>(
        &mut self,
        learner: &str,
        template: &str,
        load: impl FnOnce() -> Result<Entry, E>,
    ) -> Result<&mut Entry, E> {
        if !self.learners.contains_key(learner) {
            self.learners.insert(learner.to_string(), HashMap::new());
        }
        let templates = self.learners.get_mut(learner).expect("inserted just above");
        if !templates.contains_key(template) {
            templates.insert(template.to_string(), load()?);
            self.entries += 1;
        }
        Ok(templates.get_mut(template).expect("inserted just above"))
    }

    /// The head of the learner's event chain, read with `load` when it is not cached.
    pub fn head<E>(
        &mut self,
        learner: &str,
        load: impl FnOnce() -> Result<Option<i64>, E>,
    ) -> Result<Option<i64>, E> {
        if let Some(h) = self.heads.get(learner) {
            return Ok(*h);
        }
        let h = load()?;
        self.heads.insert(learner.to_string(), h);
        Ok(h)
    }

    /// Records a new head (after `head` was read for this learner).
    pub fn set_head(&mut self, learner: &str, seq: i64) {
        match self.heads.get_mut(learner) {
            Some(h) => *h = Some(seq),
            None => {
                self.heads.insert(learner.to_string(), Some(seq));
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_empty() -> Result<Entry, ()> {
        Ok(Entry::default())
    }

    #[test]
    fn a_new_data_version_drops_the_cache() {
        let mut c = ProgressCache::default();
        c.validate(1);
        c.entry("ann", "t", load_empty).unwrap();
        c.validate(1);
        assert_eq!(c.len(), 1);
        c.validate(2);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn cached_entries_are_not_loaded_again_and_keep_changes() {
        let mut c = ProgressCache::default();
        c.validate(1);
        c.entry("ann", "t", load_empty)
            .unwrap()
            .fulfilled
            .insert("r1".into());
        let e = c
            .entry("ann", "t", || -> Result<Entry, ()> {
                panic!("loaded twice")
            })
            .unwrap();
        assert!(e.fulfilled.contains("r1"));
        c.clear();
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_failed_load_caches_nothing() {
        let mut c = ProgressCache::default();
        c.validate(1);
        assert!(c.entry("ann", "t", || Err::<Entry, _>("db")).is_err());
        assert_eq!(c.len(), 0);
    }
}
