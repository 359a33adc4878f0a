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
//! instead of allocating a key for every rule hit. A learner's progress is read whole, in one
//! range read of `fulfillments`, the first time the learner is seen (not at all for a learner
//! with no earlier event): during a burst of new learners, one read per template and learner
//! was a tenth of the writer's time.
//!
//! An import gives learners progress without an event; it sets their head to 0 (no event) so
//! their fulfilments are read like anyone else's (`import.rs`).
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
    /// Whether `fulfilled` completes the template, under the rules index of the given version
    /// (a configuration change can move requirements between groups).
    pub complete: Option<(i64, bool)>,
}

#[derive(Debug, Default)]
pub struct ProgressCache {
    data_version: Option<i64>,
    entries: usize,
    /// learner → template id → entry. A learner present here is cached whole: a template
    /// missing from their map has no fulfilment.
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

    /// Forgets a learner's progress (a backfill rewrote it on this connection, which does not
    /// move `data_version`); it is read again on next use. Their chain head stays valid.
    pub fn forget(&mut self, learner: &str) {
        if let Some(templates) = self.learners.remove(learner) {
            self.entries = self.entries.saturating_sub(templates.len());
        }
    }

    /// The entry of `learner` and `template`. The first time the learner is seen, all their
    /// fulfilments (`load`: template id, requirement id) are read at once, or none when the
    /// learner never sent an event before (`no_events`), since they have none.
    pub fn entry<E>(
        &mut self,
        learner: &str,
        template: &str,
        no_events: bool,
        load: impl FnOnce() -> Result<Vec<(String, String)>, E>,
    ) -> Result<&mut Entry, E> {
        if !self.learners.contains_key(learner) {
            let rows = if no_events { Vec::new() } else { load()? };
            let mut templates: HashMap<String, Entry> = HashMap::new();
            for (template, requirement) in rows {
                templates
                    .entry(template)
                    .or_default()
                    .fulfilled
                    .insert(requirement);
            }
            self.entries += templates.len();
            self.learners.insert(learner.to_string(), templates);
        }
        let templates = self.learners.get_mut(learner).expect("inserted just above");
        if !templates.contains_key(template) {
            templates.insert(template.to_string(), Entry::default());
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

    type Rows = Result<Vec<(String, String)>, &'static str>;

    fn none() -> Rows {
        Ok(Vec::new())
    }

    fn never() -> Rows {
        panic!("read again")
    }

    #[test]
    fn a_new_data_version_drops_the_cache() {
        let mut c = ProgressCache::default();
        c.validate(1);
        c.entry("ann", "t", false, none).unwrap();
        c.validate(1);
        assert_eq!(c.len(), 1);
        c.validate(2);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn cached_entries_are_not_loaded_again_and_keep_changes() {
        let mut c = ProgressCache::default();
        c.validate(1);
        c.entry("ann", "t", false, none)
            .unwrap()
            .fulfilled
            .insert("r1".into());
        let e = c.entry("ann", "t", false, never).unwrap();
        assert!(e.fulfilled.contains("r1"));
        c.clear();
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_learner_is_read_whole_once_not_per_template() {
        let mut c = ProgressCache::default();
        c.validate(1);
        let rows = || -> Rows {
            Ok(vec![
                ("t1".into(), "r1".into()),
                ("t2".into(), "r2".into()),
                ("t2".into(), "r3".into()),
            ])
        };
        let t1 = c.entry("ann", "t1", false, rows).unwrap().fulfilled.clone();
        assert_eq!(t1, HashSet::from(["r1".to_string()]));
        assert_eq!(
            c.entry("ann", "t2", false, never).unwrap().fulfilled.len(),
            2
        );
        assert!(c
            .entry("ann", "t3", false, never)
            .unwrap()
            .fulfilled
            .is_empty());
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn a_learner_without_events_is_not_read_at_all() {
        let mut c = ProgressCache::default();
        c.validate(1);
        let e = c.entry("new", "t", true, || -> Rows {
            panic!("a learner with no event has no fulfilment")
        });
        assert!(e.unwrap().fulfilled.is_empty());
    }

    #[test]
    fn a_failed_load_caches_nothing() {
        let mut c = ProgressCache::default();
        c.validate(1);
        assert!(c.entry("ann", "t", false, || Err("db")).is_err());
        assert_eq!(c.len(), 0);
        assert!(c.entry("ann", "t", false, none).is_ok());
    }
}
