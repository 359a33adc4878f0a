//! The backfill worker: claims a queued backfill (or one a killed instance left running, once
//! its lease has expired), reads the inbox to list the learners with events of the template's
//! types, then applies them in steps.
//!
//! A step is one transaction of the store (`BackfillStore::backfill_apply`) that also moves the
//! job's cursor, so after a crash the next worker scans again and goes on after the cursor:
//! learners applied stay applied, none is applied twice, and a repeated learner would find its
//! badge already matching anyway. Steps are sized to take about [`STEP_TARGET`] each, since a
//! step holds the learners' locks (SQLite: the one writer) that live event batches need: small
//! steps keep ingest latency low while a backfill runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_domain::backfill::Replayer;
use accolade_store::{Backfill, BackfillPhase, BackfillState, StoreError};
use chrono::Utc;

use super::snapshot::{self, Coverage, ScanError, ScanProgress};
use crate::metrics as m;
use crate::state::AppState;

/// How long one apply step should take (its learner count adapts to it).
const STEP_TARGET: Duration = Duration::from_millis(8);
/// Learners per step: first, and the bounds of the adaptation.
const STEP_FIRST: usize = 32;
const STEP_MIN: usize = 4;
const STEP_MAX: usize = 2_048;
/// How often a scan reports progress (and renews its lease).
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let holder = format!("backfill-{}", uuid::Uuid::new_v4().simple());
    let poll = Duration::from_millis(state.config.worker.poll_interval_ms);
    loop {
        match pass(&state, &holder, None).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "backfill pass failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Claims and runs one backfill (with `only`, that one or none); returns whether there was one.
pub async fn pass(state: &AppState, holder: &str, only: Option<&str>) -> anyhow::Result<bool> {
    if state.shutdown.is_cancelled() {
        return Ok(false);
    }
    let now = Utc::now();
    let Some(job) = state
        .store
        .claim_backfill(holder, only, now, now + lease(state))
        .await?
    else {
        return Ok(false);
    };
    tracing::info!(backfill = %job.id, template = %job.template_id, resumed = job.cursor.is_some(), "backfill started");
    let id = job.id.clone();
    match run_job(state, holder, job).await {
        Ok(Some(end)) => finish(state, holder, &id, end, None).await?,
        Ok(None) => {}
        Err(e) => {
            let detail = format!("{e:#}");
            tracing::error!(backfill = %id, error = %detail, "backfill failed");
            finish(state, holder, &id, BackfillState::Failed, Some(detail)).await?;
        }
    }
    Ok(true)
}

fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(state.config.worker.lease_secs.max(5) as i64)
}

async fn finish(
    state: &AppState,
    holder: &str,
    id: &str,
    end: BackfillState,
    error: Option<String>,
) -> anyhow::Result<()> {
    if let Some(b) = state
        .store
        .finish_backfill(id, holder, end, error, Utc::now())
        .await?
    {
        tracing::info!(
            backfill = %b.id,
            state = b.state.as_str(),
            learners = b.learners_done,
            awards = b.awards_made,
            revocations = b.revocations_made,
            "backfill ended"
        );
        metrics::counter!(m::BACKFILLS_FINISHED, "state" => end.as_str()).increment(1);
    }
    Ok(())
}

/// Runs a claimed backfill: `Some(end state)`, or `None` when it stopped without ending (lost
/// lease, shutdown: another run goes on from the cursor).
async fn run_job(
    state: &AppState,
    holder: &str,
    job: Backfill,
) -> anyhow::Result<Option<BackfillState>> {
    let store = &state.store;
    let cfg = match store.get_template(&job.template_id).await {
        Ok(cfg) => cfg,
        Err(StoreError::NotFound { .. }) => anyhow::bail!("the template was deleted"),
        Err(e) => return Err(e.into()),
    };
    let mut version = store.config_version().await?;
    let mut replayer = Arc::new(Replayer::new(&cfg));
    let bounds = store.inbox_bounds().await?;
    let progress = ScanProgress::default();
    let coverage = Coverage {
        event_types: replayer.event_types(),
        paths: replayer.paths().clone(),
        since: job.since,
    };
    let read = snapshot::read(
        store,
        coverage,
        bounds.first - 1,
        bounds.last,
        state.backfills.workers,
        &progress,
    );
    tokio::pin!(read);
    let mut tick = tokio::time::interval(REPORT_EVERY);
    let snap = loop {
        tokio::select! {
            r = &mut read => break r,
            _ = tick.tick() => {
                let done = progress.done.load(Ordering::Relaxed) as i64;
                let total = progress.total.load(Ordering::Relaxed) as i64;
                let now = Utc::now();
                match store
                    .backfill_progress(&job.id, holder, BackfillPhase::Scanning, done, total, job.learners_total, now + lease(state), now)
                    .await?
                {
                    Some(b) if b.cancel_requested || state.shutdown.is_cancelled() => {
                        progress.cancelled.store(true, Ordering::Relaxed)
                    }
                    Some(_) => {}
                    None => progress.cancelled.store(true, Ordering::Relaxed),
                }
            }
        }
    };
    let snap = match snap {
        Ok(s) => s,
        Err(ScanError::Cancelled) => return stopped(state, &job.id).await,
        Err(e) => return Err(e.into()),
    };
    // A million names to copy and a snapshot to free: off the async runtime, at low priority.
    let cursor = job.cursor.clone();
    let (learners, total) = crate::service::priority::run_low("backfill names", move || {
        let learners: Vec<String> = snap
            .learner_names()
            .filter(|l| cursor.as_deref().is_none_or(|c| *l > c))
            .map(str::to_string)
            .collect();
        (learners, snap.learners() as i64)
    })
    .await
    .map_err(anyhow::Error::msg)?;
    let now = Utc::now();
    let Some(_) = store
        .backfill_progress(
            &job.id,
            holder,
            BackfillPhase::Applying,
            progress.total.load(Ordering::Relaxed) as i64,
            progress.total.load(Ordering::Relaxed) as i64,
            total,
            now + lease(state),
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    let mut size = STEP_FIRST;
    let mut at = 0;
    while at < learners.len() {
        if state.shutdown.is_cancelled() {
            return Ok(None);
        }
        // Rules changed while it runs: the rest is applied with the new ones.
        let current = store.config_version().await?;
        if current != version {
            version = current;
            replayer = Arc::new(Replayer::new(&store.get_template(&job.template_id).await?));
        }
        let end = (at + size).min(learners.len());
        let started = Instant::now();
        let now = Utc::now();
        let Some(step) = store
            .backfill_apply(
                &job.id,
                holder,
                learners[at..end].to_vec(),
                replayer.clone(),
                now + lease(state),
                now,
            )
            .await?
        else {
            return Ok(None);
        };
        metrics::counter!(m::BACKFILL_LEARNERS).increment(step.learners as u64);
        metrics::counter!(m::BACKFILL_AWARDS).increment(step.awarded as u64);
        metrics::counter!(m::BACKFILL_REVOCATIONS).increment(step.revoked as u64);
        // A step may do fewer learners than asked (it yields to live events).
        let done = (step.learners.max(1) as usize).min(end - at);
        at += done;
        if step.cancel_requested {
            return Ok(Some(BackfillState::Cancelled));
        }
        let took = started.elapsed().max(Duration::from_micros(100));
        tracing::debug!(
            learners = step.learners,
            ms = took.as_millis() as u64,
            "backfill step"
        );
        let scaled = (done as f64 * STEP_TARGET.as_secs_f64() / took.as_secs_f64()) as usize;
        // Grow at most twofold per step (a fast step on cached pages is no promise).
        size = scaled.clamp(STEP_MIN, (size * 2).min(STEP_MAX));
    }
    Ok(Some(BackfillState::Succeeded))
}

/// A scan stopped early: cancelled (the job ends), or shutdown / lost lease (it does not).
async fn stopped(state: &AppState, id: &str) -> anyhow::Result<Option<BackfillState>> {
    let b = state.store.get_backfill(id).await?;
    Ok(b.cancel_requested.then_some(BackfillState::Cancelled))
}
