//! Backfill and preview (docs/backfill.md): a template's current rules applied to the learners
//! who already have stored events, as if the template had been active since a given time.
//!
//! - A **preview** ([`preview`]) reads the inbox into a [`snapshot::Snapshot`], replays every
//!   learner from no progress ([`accolade_domain::backfill`]) and compares with the badges they
//!   hold: who would hold it, be awarded, lose it, stay as they are. It writes nothing. The last
//!   snapshot is kept and reused while it covers the rules' event types and paths, so the admin
//!   editor's live count ([`would_hold`]) costs a replay, not a read of the inbox.
//! - A **backfill** ([`start`]) is a job ([`worker`]): the same scan to list the learners, then
//!   apply steps of a few hundred learners each, one transaction per step, which re-read each
//!   learner's events under the learner's lock and write progress and awards; see
//!   `BackfillStore::backfill_apply` for why live events are neither lost nor doubled.

pub mod cache;
mod error;
pub mod snapshot;
pub mod worker;

pub use cache::Backfills;
pub use error::{BackfillError, SAMPLE_MAX};

use std::time::Instant;

use accolade_domain::backfill::{verdict, Held, Replayer, Verdict};
use accolade_domain::template::TemplateConfig;
use accolade_store::{
    Backfill, BackfillPhase, BackfillState, NewBackfill, Page, Paged, StoreError,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use snapshot::{Coverage, Snapshot};

use crate::state::AppState;

/// Learners named per kind in a preview when not asked.
pub const SAMPLE_DEFAULT: usize = 10;
/// Longest reason, in characters as sent.
const REASON_MAX: usize = 1000;

/// A learner named in a preview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub learner: String,
    /// The stored event whose replay completed the badge (learners who would hold it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<CompletingEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompletingEvent {
    pub event_id: String,
    pub time: DateTime<Utc>,
}

/// Learners named per kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Samples {
    pub to_award: Vec<Sample>,
    pub to_revoke: Vec<Sample>,
    pub unchanged: Vec<Sample>,
    pub not_reawardable: Vec<Sample>,
}

/// What a backfill of a template would do now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub template_id: String,
    pub since: Option<DateTime<Utc>>,
    /// Stored events of the template's event types read (at or after `since`).
    pub events_scanned: u64,
    /// Of those, events that fulfil or reset one of its requirements.
    pub events_matched: u64,
    /// Learners with at least one event of its types: the learners a backfill replays.
    pub learners: u64,
    /// Replayed learners whose history earns the badge now.
    pub would_hold: u64,
    /// Would hold it and do not: a backfill awards them.
    pub to_award: u64,
    /// Hold it by an event-made award and would not: revoked only by a backfill with `revoke`.
    pub to_revoke: u64,
    /// Hold it and would hold it.
    pub unchanged: u64,
    /// Would hold it but lost it before, and the template does not allow earning it again.
    pub not_reawardable: u64,
    /// Hold it by a manual award and would not: a backfill never revokes those.
    pub manual_kept: u64,
    /// Hold it but have no event of its types in the replayed history: untouched.
    pub holders_without_events: u64,
    pub samples: Samples,
    /// The inbox was read up to this position (`seq`); later events are not in the preview.
    pub inbox_until: i64,
    /// Whether the inbox was read for this preview (`false`: an earlier read was reused).
    pub fresh_scan: bool,
    pub elapsed_ms: u64,
}

/// A preview request.
#[derive(Debug, Clone, Default)]
pub struct PreviewRequest {
    pub since: Option<DateTime<Utc>>,
    /// Learners named per kind (default 10, at most 100).
    pub sample: Option<usize>,
    /// Answer from the last read of the inbox when it covers the rules' event types and paths,
    /// reading only the events stored since (what the admin editor's live count does); else the
    /// whole inbox is read.
    pub reuse: bool,
}

fn check_since(since: Option<DateTime<Utc>>) -> Result<(), BackfillError> {
    if since.is_some_and(|s| s > Utc::now()) {
        return Err(BackfillError::InvalidSince);
    }
    Ok(())
}

/// What a replay of `cfg` needs read.
fn coverage_of(replayer: &Replayer, since: Option<DateTime<Utc>>) -> Coverage {
    Coverage {
        event_types: replayer.event_types(),
        paths: replayer.paths().clone(),
        since,
    }
}

/// Previews a backfill of a template's current configuration (active or not). Writes nothing.
pub async fn preview(
    state: &AppState,
    template_id: &str,
    req: &PreviewRequest,
) -> Result<Preview, BackfillError> {
    let sample = req.sample.unwrap_or(SAMPLE_DEFAULT);
    if sample > SAMPLE_MAX {
        return Err(BackfillError::InvalidSample);
    }
    check_since(req.since)?;
    let cfg = state.store.get_template(template_id).await?;
    preview_config(state, &cfg, req.since, sample, req.reuse).await
}

/// [`preview`] of a configuration as given (the editor's draft).
pub async fn preview_config(
    state: &AppState,
    cfg: &TemplateConfig,
    since: Option<DateTime<Utc>>,
    sample: usize,
    reuse: bool,
) -> Result<Preview, BackfillError> {
    let started = Instant::now();
    let replayer = Replayer::new(cfg);
    let (snap, fresh) = state
        .backfills
        .snapshot(&state.store, coverage_of(&replayer, since), reuse)
        .await?;
    let held = state.store.latest_awards(&cfg.template.id).await?;
    let p = Preview {
        template_id: cfg.template.id.clone(),
        since,
        events_scanned: 0,
        events_matched: 0,
        learners: snap.learners() as u64,
        would_hold: 0,
        to_award: 0,
        to_revoke: 0,
        unchanged: 0,
        not_reawardable: 0,
        manual_kept: 0,
        holders_without_events: 0,
        samples: Samples::default(),
        inbox_until: snap.until,
        fresh_scan: fresh,
        elapsed_ms: 0,
    };
    // Replaying is CPU work (a second per million learners or so): off the async runtime, at
    // the lowest priority so live events keep the cores.
    let (mut p, pending) = crate::service::priority::run_low("backfill replay", move || {
        tally(p, &snap, &replayer, held, sample)
    })
    .await
    .map_err(BackfillError::Scan)?;
    let seqs: Vec<i64> = pending
        .iter()
        .flat_map(|(_, by)| by.iter().flatten().map(|(seq, _)| *seq))
        .collect();
    let ids = state.store.event_ids(&seqs).await?;
    let mut kinds = pending.into_iter().map(|(mut names, by)| {
        for (s, b) in names.iter_mut().zip(by) {
            s.completed_by = b.and_then(|(seq, time)| {
                ids.get(&seq).map(|id| CompletingEvent {
                    event_id: id.clone(),
                    time,
                })
            });
        }
        names
    });
    p.samples = Samples {
        to_award: kinds.next().unwrap_or_default(),
        to_revoke: kinds.next().unwrap_or_default(),
        unchanged: kinds.next().unwrap_or_default(),
        not_reawardable: kinds.next().unwrap_or_default(),
    };
    p.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(p)
}

/// Learners named per kind, with their completing event by `seq` (named once all are known).
type Named = (Vec<Sample>, Vec<Option<(i64, DateTime<Utc>)>>);

/// Replays every learner of the snapshot and counts the verdicts into `p`.
fn tally(
    mut p: Preview,
    snap: &Snapshot,
    replayer: &Replayer,
    mut held: std::collections::HashMap<String, Held>,
    sample: usize,
) -> (Preview, Vec<Named>) {
    let allow = replayer.info.allow_reaward;
    let mut pending: Vec<Named> = vec![(Vec::new(), Vec::new()); 4];
    p.events_matched = snap.replay(replayer, |r| {
        let latest: Option<Held> = held.remove(r.learner);
        if r.outcome.holds {
            p.would_hold += 1;
        }
        let (v, _) = verdict(&r.outcome, latest, allow);
        let slot = match v {
            Verdict::Award => {
                p.to_award += 1;
                Some(0)
            }
            Verdict::Revoke => {
                p.to_revoke += 1;
                Some(1)
            }
            Verdict::Unchanged => {
                p.unchanged += 1;
                Some(2)
            }
            Verdict::NotReawardable => {
                p.not_reawardable += 1;
                Some(3)
            }
            Verdict::ManualKept => {
                p.manual_kept += 1;
                None
            }
            Verdict::NotQualified => None,
        };
        if let Some(k) = slot {
            let (names, by) = &mut pending[k];
            if names.len() < sample {
                names.push(Sample {
                    learner: r.learner.to_string(),
                    completed_by: None,
                });
                by.push(r.completed_by);
            }
        }
    });
    p.events_scanned = snap.events;
    p.holders_without_events = held.values().filter(|h| !h.revoked).count() as u64;
    (p, pending)
}

/// The editor's live count: learners whose stored history earns the badge under `draft`.
pub async fn would_hold(
    state: &AppState,
    draft: &TemplateConfig,
) -> Result<Preview, BackfillError> {
    preview_config(state, draft, None, 0, true).await
}

/// A backfill request.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub since: Option<DateTime<Utc>>,
    pub revoke: bool,
    pub reason: String,
    pub requested_by: String,
}

/// Queues a backfill of an active template; a worker runs it.
pub async fn start(
    state: &AppState,
    template_id: &str,
    req: StartRequest,
) -> Result<Backfill, BackfillError> {
    check_since(req.since)?;
    if req.reason.chars().count() > REASON_MAX {
        return Err(BackfillError::InvalidReason);
    }
    let cfg = state.store.get_template(template_id).await?;
    if !cfg.template.is_active {
        return Err(BackfillError::TemplateInactive);
    }
    let b = state
        .store
        .create_backfill(
            NewBackfill {
                template_id: template_id.to_string(),
                since: req.since,
                revoke: req.revoke,
                reason: req.reason.trim().to_string(),
                requested_by: req.requested_by,
            },
            Utc::now(),
        )
        .await?;
    tracing::info!(backfill = %b.id, template = %template_id, revoke = b.revoke, "backfill queued");
    metrics::counter!(crate::metrics::BACKFILLS_QUEUED).increment(1);
    Ok(b)
}

/// Activates a template and, with `backfill`, queues its backfill in the same call: the
/// template is active first, so no event falls between the two (events arriving meanwhile count
/// live; the backfill re-reads each learner's events as it writes them). The backfill's options
/// are checked before anything changes.
pub async fn activate(
    state: &AppState,
    template_id: &str,
    backfill: Option<StartRequest>,
) -> Result<(accolade_domain::template::Template, Option<BackfillView>), BackfillError> {
    if let Some(req) = &backfill {
        check_since(req.since)?;
        if req.reason.chars().count() > REASON_MAX {
            return Err(BackfillError::InvalidReason);
        }
    }
    let template = crate::service::templates::set_active(&*state.store, template_id, true).await?;
    let queued = match backfill {
        Some(req) => Some(BackfillView::of(
            start(state, template_id, req).await?,
            Utc::now(),
        )),
        None => None,
    };
    Ok((template, queued))
}

/// A backfill with how far it is and how long it should still take.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillView {
    #[serde(flatten)]
    pub backfill: Backfill,
    /// Share done of the current phase, 0-100.
    pub percent: u8,
    /// Seconds left in the current phase at the rate so far (absent until measurable).
    pub eta_seconds: Option<u64>,
}

impl BackfillView {
    pub fn of(b: Backfill, now: DateTime<Utc>) -> BackfillView {
        let (done, total) = match b.phase {
            BackfillPhase::Scanning => (b.events_scanned, b.events_total),
            BackfillPhase::Applying => (b.learners_done, b.learners_total),
        };
        let percent = match b.state {
            BackfillState::Succeeded => 100,
            _ if total <= 0 => 0,
            _ => ((done.min(total) * 100) / total) as u8,
        };
        // The rate since the job (re)started its current phase: `phase_started_at`.
        let eta_seconds = match (b.state, b.phase_started_at) {
            (BackfillState::Running, Some(at)) if done > 0 && total > done => {
                let secs = (now - at).num_milliseconds().max(1) as f64 / 1000.0;
                let done_here = match b.phase {
                    BackfillPhase::Scanning => done,
                    BackfillPhase::Applying => (done - b.done_at_phase_start).max(0),
                };
                (done_here > 0)
                    .then(|| ((total - done) as f64 * secs / done_here as f64).ceil() as u64)
            }
            _ => None,
        };
        BackfillView {
            backfill: b,
            percent,
            eta_seconds,
        }
    }
}

pub async fn get(state: &AppState, id: &str) -> Result<BackfillView, StoreError> {
    Ok(BackfillView::of(
        state.store.get_backfill(id).await?,
        Utc::now(),
    ))
}

pub async fn list(
    state: &AppState,
    template_id: Option<&str>,
    page: Page,
) -> Result<Paged<BackfillView>, StoreError> {
    let now = Utc::now();
    let found = state.store.list_backfills(template_id, page).await?;
    Ok(Paged {
        items: found
            .items
            .into_iter()
            .map(|b| BackfillView::of(b, now))
            .collect(),
        next_offset: found.next_offset,
    })
}

/// Cancels a queued backfill, or asks a running one to stop after its current step (what it
/// applied stays applied).
pub async fn cancel(state: &AppState, id: &str) -> Result<BackfillView, StoreError> {
    let b = state.store.cancel_backfill(id, Utc::now()).await?;
    tracing::info!(backfill = %b.id, "backfill cancellation asked for");
    Ok(BackfillView::of(b, Utc::now()))
}
