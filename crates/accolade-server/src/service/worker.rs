//! The outbox worker: claims due jobs with a lease, runs them with no transaction open, and
//! records the result. Failures are retried on `worker.retry_schedule` with ±20% jitter; after the
//! last delay a job is `dead` (visible in the API, retryable by hand).
//!
//! This runner handles the jobs of local templates (Accolade is the issuer, so issuing is
//! recording the issue time). Credly jobs (`credly.*`) are left for the Credly worker.

use std::time::Duration;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::{kind, Job};
use accolade_store::{Delivery, JobResult, Store};
use chrono::Utc;
use rand::Rng;

use crate::state::AppState;

const KINDS: [&str; 2] = [kind::ISSUE_AWARD, kind::REVOKE_AWARD];
const CLAIM_BATCH: u32 = 64;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    poll_loop(&state, "outbox worker", run_once).await
}

/// Runs `pass` again and again until shutdown: at once while it finds work, after
/// `worker.poll_interval_ms` when it found none or failed (failures are logged, not fatal).
pub async fn poll_loop<'a, F, Fut>(state: &'a AppState, what: &'static str, mut pass: F)
where
    F: FnMut(&'a AppState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + 'a,
{
    let poll = Duration::from_millis(state.config.worker.poll_interval_ms);
    loop {
        let worked = match pass(state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "{what} pass failed");
                0
            }
        };
        if worked == 0 {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    }
}

/// Claims and runs one batch of due jobs; returns how many ran.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let now = Utc::now();
    let lease = chrono::Duration::seconds(state.config.worker.lease_secs as i64);
    let jobs = state
        .store
        .claim_jobs(&KINDS, CLAIM_BATCH, now, now + lease)
        .await?;
    let schedule = state.config.retry_schedule()?;
    for job in &jobs {
        let result = match execute(&*state.store, job).await {
            Ok(()) => JobResult::Succeeded,
            Err(e) => failure(job, &e, &schedule),
        };
        if let JobResult::Dead { error } = &result {
            tracing::error!(job.id = %job.id, job.kind = %job.kind, error = %error, "job {} is dead", job.id);
        }
        state.store.finish_job(&job.id, result, Utc::now()).await?;
    }
    Ok(jobs.len())
}

fn failure(job: &Job, e: &anyhow::Error, schedule: &[Duration]) -> JobResult {
    let attempt = job.attempts.max(1) as usize;
    match schedule.get(attempt - 1) {
        Some(delay) => JobResult::Retry {
            run_at: Utc::now() + jittered(*delay),
            error: format!("{e:#}"),
        },
        None => JobResult::Dead {
            error: format!("{e:#}"),
        },
    }
}

/// `delay` ± 20%.
pub fn jittered(delay: Duration) -> chrono::Duration {
    let factor = rand::rng().random_range(0.8..=1.2);
    chrono::Duration::milliseconds((delay.as_millis() as f64 * factor) as i64)
}

async fn execute(store: &dyn Store, job: &Job) -> anyhow::Result<()> {
    let award_id = job
        .payload
        .get("award_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("job payload has no award_id"))?;
    match job.kind.as_str() {
        kind::ISSUE_AWARD => {
            store
                .record_delivery(
                    award_id,
                    Delivery {
                        state: AwardState::Awarded,
                        issued_at: Some(Utc::now()),
                        external_id: None,
                        external_state: None,
                    },
                )
                .await?;
            Ok(())
        }
        // A local revocation is complete once recorded; nothing external to call.
        kind::REVOKE_AWARD => Ok(()),
        other => anyhow::bail!("no handler for job kind {other}"),
    }
}

/// Used by tests and the CLI to drain the queue synchronously.
pub async fn drain(state: &AppState) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = run_once(state).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}
