//! The outbox worker: claims due jobs with a lease, runs them with no transaction open, and
//! records the result. Failures are retried on `worker.retry_schedule` with ±20% jitter; after the
//! last delay a job is `dead` (visible in the API, retryable by hand).
//!
//! This runner handles the jobs of local templates (Accolade is the issuer, so issuing is
//! recording the issue time). Those are normally done in the transaction that writes them
//! (`outbox::done_in_place`), so it only meets local jobs left pending by an earlier version.
//! Credly jobs (`credly.*`) are left for the Credly worker.

use std::sync::Arc;
use std::time::Duration;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::{kind, Job};
use accolade_store::{Decide, Delivery, JobCompletion, JobResult};
use chrono::{DateTime, Utc};
use rand::Rng;

use crate::state::AppState;

const KINDS: [&str; 2] = [kind::ISSUE_AWARD, kind::REVOKE_AWARD];
/// Jobs claimed and recorded per transaction.
const CLAIM_BATCH: u32 = 2000;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    // Again at once only after a full batch: a trickle of awards then costs one transaction per
    // poll interval, not one per pass, on SQLite's single writer.
    poll_loop(&state, "outbox worker", CLAIM_BATCH as usize, run_once).await
}

/// Runs `pass` again and again until shutdown: at once while a pass does at least `full` units
/// of work (more is likely waiting), else after `worker.poll_interval_ms` (also after a failure,
/// which is logged, not fatal).
pub async fn poll_loop<'a, F, Fut>(
    state: &'a AppState,
    what: &'static str,
    full: usize,
    mut pass: F,
) where
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
        if worked < full.max(1) {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    }
}

/// Runs one batch of due jobs; returns how many ran.
///
/// Local jobs need no I/O beyond the database, so the store runs the whole batch in one
/// transaction (`Store::complete_due_jobs`: on SQLite one commit for up to `CLAIM_BATCH` jobs,
/// with no lease to take and release). A transaction per job made the worker hold the single
/// SQLite writer for one fsync per job, delaying event ingest behind it.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let schedule = state.config.retry_schedule()?;
    let issued_at = Utc::now();
    let decide: Decide = Arc::new(move |job: &Job| match execute(job, issued_at) {
        Ok(delivery) => JobCompletion {
            job_id: job.id.clone(),
            result: JobResult::Succeeded,
            delivery,
        },
        Err(e) => {
            let result = failure(job, &e, &schedule);
            if let JobResult::Dead { error } = &result {
                tracing::error!(job.id = %job.id, job.kind = %job.kind, error = %error, "job {} is dead", job.id);
            }
            JobCompletion {
                job_id: job.id.clone(),
                result,
                delivery: None,
            }
        }
    });
    let ran = state
        .store
        .complete_due_jobs(&KINDS, CLAIM_BATCH, Utc::now(), decide)
        .await?;
    Ok(ran)
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

/// What a local job leaves on its award: issuing is recording the issue time (Accolade is the
/// issuer); a local revocation is complete once recorded, with nothing external to call.
fn execute(job: &Job, issued_at: DateTime<Utc>) -> anyhow::Result<Option<(String, Delivery)>> {
    let award_id = job
        .payload
        .get("award_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("job payload has no award_id"))?;
    match job.kind.as_str() {
        kind::ISSUE_AWARD => Ok(Some((
            award_id.to_string(),
            Delivery {
                state: AwardState::Awarded,
                issued_at: Some(issued_at),
                external_id: None,
                external_state: None,
            },
        ))),
        kind::REVOKE_AWARD => Ok(None),
        other => anyhow::bail!("no handler for job kind {other}"),
    }
}

/// Used by tests and the CLI to drain the queue synchronously.
pub async fn drain(state: &AppState) -> anyhow::Result<usize> {
    drain_with(state, run_once).await
}

/// Runs `pass` until one finds nothing to do; returns how much was done in all (the `drain` of
/// every worker).
pub async fn drain_with<'a, F, Fut>(state: &'a AppState, mut pass: F) -> anyhow::Result<usize>
where
    F: FnMut(&'a AppState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + 'a,
{
    let mut total = 0;
    loop {
        let n = pass(state).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accolade_domain::outbox::JobStatus;
    use serde_json::json;

    fn job(kind: &str, payload: serde_json::Value) -> Job {
        Job {
            id: "job_1".into(),
            kind: kind.into(),
            payload,
            status: JobStatus::Pending,
            attempts: 1,
            run_at: Utc::now(),
            locked_until: None,
            last_error: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_pending_local_issue_records_the_issue_time_and_a_revoke_needs_nothing() {
        let at = Utc::now();
        let (award, delivery) = execute(&job(kind::ISSUE_AWARD, json!({"award_id": "a1"})), at)
            .unwrap()
            .unwrap();
        assert_eq!(award, "a1");
        assert_eq!(delivery.issued_at, Some(at));
        assert_eq!(delivery.state, AwardState::Awarded);
        assert!(
            execute(&job(kind::REVOKE_AWARD, json!({"award_id": "a1"})), at)
                .unwrap()
                .is_none()
        );
        assert!(execute(&job(kind::ISSUE_AWARD, json!({})), at).is_err());
        assert!(execute(&job("other.kind", json!({"award_id": "a1"})), at).is_err());
    }
}
