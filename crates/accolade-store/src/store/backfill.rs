//! Backfills: scanning the inbox, the backfill job's lifecycle, and its apply steps.

use std::collections::HashMap;
use std::sync::Arc;

use accolade_domain::backfill::{Held, Replayer};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::backfill::*;
use crate::models::{Page, Paged};

/// The inbox read for previews, and backfill jobs.
///
/// A job is claimed with a lease like other work; every write of a running job names its
/// `holder` and does nothing (returns `None`) when the lease is someone else's, so a worker that
/// lost its lease stops. An apply step is one transaction: the learners' progress and awards
/// and the job's cursor and totals commit together, so a crash repeats at most the step that did
/// not commit, and a repeated step finds its learners already done.
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// The inbox's lowest and highest `seq`.
    async fn inbox_bounds(&self) -> Result<InboxBounds>;

    /// Calls `visitor` for each row `scan` selects, in `seq` order, on a thread of its own (see
    /// [`InboxVisitor`]), and hands it back.
    async fn scan_inbox(
        &self,
        scan: InboxScan,
        visitor: Box<dyn InboxVisitor>,
    ) -> Result<Box<dyn InboxVisitor>>;

    /// Each learner's latest award of a template (revoked or not).
    async fn latest_awards(&self, template_id: &str) -> Result<HashMap<String, Held>>;

    /// Event ids by inbox `seq` (unknown ones are left out).
    async fn event_ids(&self, seqs: &[i64]) -> Result<HashMap<i64, String>>;

    /// Queues a backfill. `Conflict` (`backfill_running`) while another of the same template is
    /// queued or running; `NotFound(Template)` for an unknown template.
    async fn create_backfill(&self, new: NewBackfill, now: DateTime<Utc>) -> Result<Backfill>;

    /// `NotFound(Backfill)` if unknown.
    async fn get_backfill(&self, id: &str) -> Result<Backfill>;

    /// Newest first; with a template id, only that template's.
    async fn list_backfills(
        &self,
        template_id: Option<&str>,
        page: Page,
    ) -> Result<Paged<Backfill>>;

    /// Asks a backfill to stop: a queued one is cancelled at once, a running one at its next
    /// step. `Conflict` (`backfill_finished`) when it has ended.
    async fn cancel_backfill(&self, id: &str, now: DateTime<Utc>) -> Result<Backfill>;

    /// Takes the oldest queued backfill, or a running one whose lease has expired (a killed
    /// worker's), for `holder` until `lease_until`, marking it running; with `only`, that one
    /// backfill or none.
    async fn claim_backfill(
        &self,
        holder: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Backfill>>;

    /// Records scan progress (or the move to the apply phase with `learners_total`) and
    /// extends the lease. `None` when the lease is not `holder`'s.
    #[allow(clippy::too_many_arguments)]
    async fn backfill_progress(
        &self,
        id: &str,
        holder: &str,
        phase: BackfillPhase,
        events_scanned: i64,
        events_total: i64,
        learners_total: i64,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Backfill>>;

    /// One apply step, in one transaction: for each of `learners` (ascending, all after the
    /// job's cursor), reads their events of the replayer's types (at or after the job's
    /// `since`), replays them in event-time order, sets their progress of the template to the
    /// replayed one, and awards (`earned_at` and `event_id` of the completing event, marked
    /// with the backfill's id) or, when the job says so, revokes, as
    /// `accolade_domain::backfill::verdict` decides, with outbox jobs and outgoing events as
    /// for live awards; then moves the cursor to the last learner done, adds the totals and
    /// extends the lease. It may stop after a prefix of `learners` (at least one) to let live
    /// event batches have the database (SQLite: as soon as one waits for the writer);
    /// `BackfillStep::learners` says how many it did. `None`, writing nothing, when the lease is
    /// not `holder`'s.
    async fn backfill_apply(
        &self,
        id: &str,
        holder: &str,
        learners: Vec<String>,
        replayer: Arc<Replayer>,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<BackfillStep>>;

    /// Ends a running backfill (`Succeeded`, `Failed` with `error`, or `Cancelled`) and
    /// releases it. `None` when the lease is not `holder`'s.
    async fn finish_backfill(
        &self,
        id: &str,
        holder: &str,
        state: BackfillState,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Backfill>>;
}
