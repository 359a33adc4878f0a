//! Models of backfills: a scan of the inbox for a preview, and the backfill job that applies one
//! template's current rules to the learners who already have events (see
//! `accolade_domain::backfill` for the replay itself, and `docs/backfill.md`).

use std::any::Any;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which inbox rows a scan reads: events of `event_types` with `after < seq <= until` and
/// `time >= since`, in `seq` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxScan {
    pub event_types: Vec<String>,
    pub after: i64,
    pub until: i64,
    pub since: Option<DateTime<Utc>>,
}

/// One inbox row as a scan hands it to its visitor, borrowed from the database's row.
#[derive(Debug, Clone, Copy)]
pub struct ScannedRow<'a> {
    pub seq: i64,
    pub learner: &'a str,
    pub event_type: &'a str,
    pub time: DateTime<Utc>,
    /// The stored event, as text (`IncomingEvent::to_json`).
    pub body: &'a str,
}

/// What a scan calls for each row. Every call runs on a thread the store starts for this scan
/// alone and ends after it, so `begin` (called on it before the first row) may change the
/// thread for good, e.g. lower its CPU priority. The store hands the visitor back when the scan
/// is done; [`InboxVisitor::into_any`] recovers the caller's type.
pub trait InboxVisitor: Send + 'static {
    fn visit(&mut self, row: ScannedRow<'_>);
    fn begin(&mut self) {}
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// The inbox's extent: the lowest and highest `seq` stored (`(0, 0)` when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InboxBounds {
    pub first: i64,
    pub last: i64,
}

/// The state of a backfill job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl BackfillState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Queued => "queued",
            BackfillState::Running => "running",
            BackfillState::Succeeded => "succeeded",
            BackfillState::Failed => "failed",
            BackfillState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => BackfillState::Queued,
            "running" => BackfillState::Running,
            "succeeded" => BackfillState::Succeeded,
            "failed" => BackfillState::Failed,
            "cancelled" => BackfillState::Cancelled,
            _ => return None,
        })
    }
    /// Whether the job has ended (no worker will touch it again).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BackfillState::Succeeded | BackfillState::Failed | BackfillState::Cancelled
        )
    }
}

/// Where a running backfill is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillPhase {
    /// Reading the inbox to find the learners with events of the template's types.
    Scanning,
    /// Replaying and writing, learner by learner in username order.
    Applying,
}

impl BackfillPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillPhase::Scanning => "scanning",
            BackfillPhase::Applying => "applying",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scanning" => BackfillPhase::Scanning,
            "applying" => BackfillPhase::Applying,
            _ => return None,
        })
    }
}

/// A backfill job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backfill {
    pub id: String,
    pub template_id: String,
    pub state: BackfillState,
    pub phase: BackfillPhase,
    /// Replay only events at or after this time; `None`: all stored events.
    pub since: Option<DateTime<Utc>>,
    /// Revoke the badge of holders who no longer qualify (never manual awards).
    pub revoke: bool,
    pub reason: String,
    /// Who asked for it (`admin:<name>`, `token:<name>`, `cli`).
    pub requested_by: String,
    /// Inbox rows read so far in the scan, of `events_total` (the inbox's seq span when it
    /// started).
    pub events_scanned: i64,
    pub events_total: i64,
    /// Learners found by the scan, and done by the apply phase.
    pub learners_total: i64,
    pub learners_done: i64,
    pub awards_made: i64,
    pub revocations_made: i64,
    /// The last learner applied (usernames in byte order); the apply phase resumes after it.
    #[serde(skip)]
    pub cursor: Option<String>,
    pub cancel_requested: bool,
    /// When the current phase began (a restarted job scans again), and the learners done then:
    /// the rate an ETA is estimated from.
    pub phase_started_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub done_at_phase_start: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A backfill to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBackfill {
    pub template_id: String,
    pub since: Option<DateTime<Utc>>,
    pub revoke: bool,
    pub reason: String,
    pub requested_by: String,
}

/// What one apply step did (also added to the job's totals, in the step's transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BackfillStep {
    pub learners: i64,
    pub events: i64,
    pub awarded: i64,
    pub revoked: i64,
    /// Whether cancellation was asked for (the worker stops after this step).
    pub cancel_requested: bool,
}
