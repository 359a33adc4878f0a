//! The backfill service's part of `AppState`: one preview reads the inbox at a time, and the
//! last read is kept for the next preview (the admin editor's live count), extended with the
//! events stored since when its coverage serves.

use std::sync::Arc;

use accolade_store::Store;

use super::error::BackfillError;
use super::snapshot::{self, Coverage, ScanProgress, Snapshot};

/// A snapshot of more events than this is not kept for the editor (about 28 bytes each, plus
/// the distinct inputs).
const CACHE_MAX_EVENTS: usize = 4_000_000;

/// The backfill service's shared parts (in `AppState`).
pub struct Backfills {
    /// One preview reads the inbox at a time (each takes every core it may for seconds).
    previews: tokio::sync::Semaphore,
    /// The last snapshot a preview read, for the next one (see the module docs).
    cached: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    /// Scans in parallel per read of the inbox.
    pub(crate) workers: usize,
}

impl Default for Backfills {
    fn default() -> Self {
        Backfills {
            previews: tokio::sync::Semaphore::new(1),
            cached: tokio::sync::Mutex::new(None),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

impl Backfills {
    /// A snapshot serving `need` and current with the inbox: the cached one (extended to the
    /// inbox's end when events arrived since), or a new read. Returns whether it read.
    pub(super) async fn snapshot(
        &self,
        store: &Arc<dyn Store>,
        need: Coverage,
        reuse: bool,
    ) -> Result<(Arc<Snapshot>, bool), BackfillError> {
        let _turn = self
            .previews
            .try_acquire()
            .map_err(|_| BackfillError::Busy)?;
        let bounds = store.inbox_bounds().await?;
        let mut cached = self.cached.lock().await;
        if let Some(s) = cached
            .as_ref()
            .filter(|s| reuse && s.coverage.serves(&need))
        {
            if s.until >= bounds.last {
                return Ok((s.clone(), false));
            }
            let progress = ScanProgress::default();
            let newer = Arc::new(
                snapshot::extend(store, s.clone(), bounds.last, self.workers, &progress).await?,
            );
            *cached = (newer.records() <= CACHE_MAX_EVENTS).then(|| newer.clone());
            return Ok((newer, false));
        }
        // Read what the cached snapshot covered too, so the editor's next change of rules
        // likely needs no new read.
        let coverage = match cached.as_ref() {
            Some(s) if s.coverage.since == need.since => union(&s.coverage, &need),
            _ => need,
        };
        let progress = ScanProgress::default();
        let read = snapshot::read(
            store,
            coverage,
            bounds.first - 1,
            bounds.last,
            self.workers,
            &progress,
        )
        .await?;
        let read = Arc::new(read);
        *cached = (read.records() <= CACHE_MAX_EVENTS).then(|| read.clone());
        Ok((read, true))
    }
}

/// The event types and paths of both.
fn union(a: &Coverage, b: &Coverage) -> Coverage {
    let mut event_types = a.event_types.clone();
    event_types.extend(b.event_types.iter().cloned());
    event_types.sort();
    event_types.dedup();
    let mut paths = a.paths.clone();
    paths.merge(&b.paths);
    Coverage {
        event_types,
        paths,
        since: a.since,
    }
}
