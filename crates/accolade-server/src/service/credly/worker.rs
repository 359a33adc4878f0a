//! The Credly outbox worker: claims `credly.*` jobs with a lease, runs them concurrently with no
//! transaction open (each call is paced by the organization's rate limiter), and records the
//! result:
//!
//! - success → `succeeded`;
//! - expired key, or OAuth client credentials Credly refuses → deferred (the attempt does not
//!   count; the job is marked as waiting for that organization's key, and new credentials make
//!   it due at once: `orgs::rotate_key`, `rotation::rotate_now`);
//! - a 401 while the organization's key is being rotated → deferred a few seconds, unmarked
//!   (the rotation stores the new key in a moment; see `auth.rs`);
//! - a transient failure (timeout, connection, 408, 429, 5xx, database hiccup) → retried after
//!   the next `worker.retry_schedule` delay with ±20% jitter, or later if Credly sent
//!   `Retry-After`; after the last delay → `dead`;
//! - a permanent failure (other 4xx, bad data) → `dead` at once.
//!
//! Webhook confirmations run on a lane of their own (`WEBHOOKS`): their own claims, a few at a
//! time, each paced by the organization's webhook share before its limiter. Anyone can post a
//! notification, so a flood of them must never stand in front of an issue or revoke job, in the
//! claim order or at the limiter. The same lane deletes settled notifications after
//! `credly.webhook_retention_days`.
//!
//! Dead jobs stay visible (`GET /api/v1/jobs?status=dead`) and are retried by hand
//! (`POST /api/v1/jobs/{id}/retry`, `accolade jobs retry`).

use std::time::Duration;

use accolade_domain::award::{Award, AwardState};
use accolade_domain::outbox::{kind, BadJob, Job, Task};
use accolade_domain::retry::{NextAttempt, RetryPolicy};
use accolade_store::{Delivery, JobCompletion, JobResult, StoreError};
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{delivery, webhook, CredlyFailure};
use crate::service::worker::jitter;
use crate::state::AppState;

/// Every Credly job kind (both lanes).
pub const KINDS: [&str; 3] = [
    kind::CREDLY_ISSUE,
    kind::CREDLY_REVOKE,
    kind::CREDLY_WEBHOOK,
];

/// A set of job kinds claimed and run together.
pub struct Lane {
    pub name: &'static str,
    pub kinds: &'static [&'static str],
    /// Jobs claimed per pass.
    pub batch: u32,
    /// Jobs in flight at once (each mostly waits on Credly).
    pub concurrency: usize,
}

/// Issuing and revoking: what learners wait for.
pub const ISSUING: Lane = Lane {
    name: "Credly worker",
    kinds: &[kind::CREDLY_ISSUE, kind::CREDLY_REVOKE],
    batch: 256,
    concurrency: 64,
};

/// Confirming webhook notifications: bounded by the webhook share of each organization's rate.
pub const WEBHOOKS: Lane = Lane {
    name: "Credly webhook worker",
    kinds: &[kind::CREDLY_WEBHOOK],
    batch: 16,
    concurrency: 4,
};

/// How long a job waits when the organization's key has expired before it looks again, unless
/// a rotation of the key releases it first.
const DEFER_EXPIRED: Duration = Duration::from_secs(600);
/// How long a job refused during a rotation of its organization's key waits before it runs
/// again with the key then stored.
const DEFER_ROTATING: Duration = Duration::from_secs(5);
/// How often settled webhook notifications are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs both lanes, and the pruning of old notifications, until shutdown.
pub async fn run(state: AppState) {
    tokio::join!(
        crate::service::worker::poll_loop(&state, ISSUING.name, 1, |s| run_once(s, &ISSUING)),
        crate::service::worker::poll_loop(&state, WEBHOOKS.name, 1, |s| run_once(s, &WEBHOOKS)),
        prune_periodically(&state),
    );
}

/// Deletes settled webhook notifications older than the retention, now and every hour.
async fn prune_periodically(state: &AppState) {
    loop {
        match prune(state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned settled Credly webhook notifications"),
            Err(e) => tracing::warn!(error = %e, "pruning Credly webhook notifications failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// One pruning pass; returns the notifications deleted.
pub async fn prune(state: &AppState) -> anyhow::Result<u64> {
    let days = i64::from(state.config.credly.webhook_retention_days);
    let before = Utc::now() - chrono::Duration::days(days);
    Ok(state.store.prune_credly_notifications(before).await?)
}

/// Claims and runs one batch of a lane; returns how many jobs ran. Results are recorded by one
/// writer task in group commits (every job waiting at that moment shares one transaction).
pub async fn run_once(state: &AppState, lane: &Lane) -> anyhow::Result<usize> {
    let now = Utc::now();
    let lease = chrono::Duration::seconds(state.config.worker.lease_secs as i64);
    let jobs = state
        .store
        .claim_jobs(lane.kinds, lane.batch, now, now + lease)
        .await?;
    let policy = RetryPolicy::schedule_only(state.config.retry_schedule()?);
    let n = jobs.len();
    let (tx, rx) = mpsc::channel::<Pending>(lane.batch as usize);
    let writer = tokio::spawn(record(state.clone(), rx));
    futures::stream::iter(jobs)
        .for_each_concurrent(lane.concurrency, |job| {
            let (policy, tx) = (&policy, tx.clone());
            async move {
                let outcome = execute(state, &job).await;
                let delivery = outcome.as_ref().ok().and_then(|d| d.delivery.clone());
                let result = settle(&job, outcome.map(|d| d.note), policy);
                let delivery = delivery.or_else(|| failed_delivery(&job, &result));
                let (reply, answer) = oneshot::channel();
                let completion = JobCompletion {
                    job_id: job.id.clone(),
                    result,
                    delivery,
                };
                if tx.send((completion, reply)).await.is_err() {
                    return;
                }
                // After the issue is recorded: revoked while the call was in flight?
                if let Ok(Some(award)) = answer.await {
                    if job.kind == kind::CREDLY_ISSUE {
                        if let Err(e) = delivery::revoke_if_revoked_meanwhile(&state.credly, &*state.store, &award).await {
                            tracing::warn!(award.id = %award.id, error = %e, "revoking an award revoked during its issue failed; its revoke job will retry");
                        }
                    }
                }
            }
        })
        .await;
    drop(tx);
    writer.await?;
    Ok(n)
}

type Pending = (JobCompletion, oneshot::Sender<Option<Award>>);

/// Records completions as they arrive, many per transaction. If a commit fails the jobs keep
/// their lease and run again when it expires (the handlers are idempotent).
async fn record(state: AppState, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let (items, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match state.store.finish_jobs(items, Utc::now()).await {
            Ok(awards) => {
                for (reply, award) in replies.into_iter().zip(awards) {
                    let _ = reply.send(award);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record Credly job results; they run again after their lease");
            }
        }
    }
}

/// The delivery state an issue job leaves on its award when it fails: `error` while retrying,
/// `dead` when given up, so the award list shows what is going on.
fn failed_delivery(job: &Job, result: &JobResult) -> Option<(String, Delivery)> {
    let Ok(Task::CredlyIssue { award_id }) = Task::of(job) else {
        return None;
    };
    let state = match result {
        JobResult::Retry { .. } => AwardState::Error,
        JobResult::Dead { .. } => AwardState::Dead,
        _ => return None,
    };
    Some((
        award_id,
        Delivery {
            state,
            issued_at: None,
            external_id: None,
            external_state: None,
        },
    ))
}

async fn execute(state: &AppState, job: &Job) -> Result<delivery::Done, CredlyFailure> {
    let store = &*state.store;
    let task = Task::of(job).map_err(|e| CredlyFailure::Invalid {
        code: match e {
            BadJob::UnknownKind(_) => "unknown_job_kind",
            BadJob::MissingField(_) => "bad_job_payload",
        },
        detail: e.to_string(),
    })?;
    match task {
        Task::CredlyIssue { award_id } => delivery::issue(&state.credly, store, &award_id).await,
        Task::CredlyRevoke { award_id } => delivery::revoke(&state.credly, store, &award_id).await,
        Task::CredlyWebhook {
            notification_id,
            organization_id,
        } => webhook::process(&state.credly, store, &notification_id, &organization_id)
            .await
            .map(|note| delivery::Done {
                note,
                delivery: None,
            }),
        other => Err(CredlyFailure::Invalid {
            code: "unknown_job_kind",
            detail: format!("the Credly worker does not run {other:?}"),
        }),
    }
}

/// Turns an outcome into the job's next state.
pub fn settle(
    job: &Job,
    outcome: Result<String, CredlyFailure>,
    policy: &RetryPolicy,
) -> JobResult {
    let err = match outcome {
        Ok(note) => {
            tracing::debug!(job.id = %job.id, job.kind = %job.kind, "{note}");
            return JobResult::Succeeded;
        }
        Err(e) => e,
    };
    let (transient, retry_after, code) = match &err {
        CredlyFailure::KeyExpired { org, .. } | CredlyFailure::CredentialsRefused { org, .. } => {
            let code = match err {
                CredlyFailure::KeyExpired { .. } => "credly_key_expired",
                _ => "credly_credentials_refused",
            };
            crate::metrics::credly_job_failure(code, "deferred");
            tracing::warn!(job.id = %job.id, job.kind = %job.kind, "{err}");
            return JobResult::Defer {
                run_at: Utc::now() + chrono::Duration::from_std(DEFER_EXPIRED).unwrap_or_default(),
                reason: err.to_string(),
                waiting_for_key: Some(org.clone()),
            };
        }
        CredlyFailure::Rotating { .. } => {
            crate::metrics::credly_job_failure("credly_key_rotating", "deferred");
            tracing::info!(job.id = %job.id, job.kind = %job.kind, "{err}");
            return JobResult::Defer {
                run_at: Utc::now() + chrono::Duration::from_std(DEFER_ROTATING).unwrap_or_default(),
                reason: err.to_string(),
                waiting_for_key: None,
            };
        }
        CredlyFailure::Unavailable(_) => (true, None, "unavailable"),
        CredlyFailure::Credly(e) => (!e.is_permanent(), e.retry_after(), e.code()),
        CredlyFailure::Store(e) if e.is_retryable() => (true, None, "storage"),
        CredlyFailure::Store(StoreError::NotFound { .. }) => (false, None, "not_found"),
        CredlyFailure::Store(_) => (false, None, "storage"),
        CredlyFailure::Invalid { code, .. } => (false, None, *code),
        CredlyFailure::Backlog { .. } => (true, None, "backlog"),
        CredlyFailure::Internal(_) => (false, None, "internal"),
    };
    let error = err.to_string();
    let attempt = job.attempts.max(1);
    let now = Utc::now();
    let next = match transient {
        true => policy.next(attempt, job.created_at, now, jitter(), retry_after),
        false => NextAttempt::GiveUp,
    };
    match next {
        NextAttempt::At(run_at) => {
            let wait = run_at - now;
            crate::metrics::credly_job_failure(code, "retry");
            tracing::warn!(job.id = %job.id, job.kind = %job.kind, attempt, retry_in_ms = wait.num_milliseconds(), "Credly job failed, will retry: {error}");
            JobResult::Retry { run_at, error }
        }
        _ => {
            crate::metrics::credly_job_failure(code, "dead");
            tracing::error!(job.id = %job.id, job.kind = %job.kind, attempt, "Credly job is dead: {error}");
            JobResult::Dead { error }
        }
    }
}

/// Drains every due Credly job of both lanes (tests and the CLI).
pub async fn drain(state: &AppState) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = crate::service::worker::drain_with(state, |s| run_once(s, &ISSUING)).await?
            + crate::service::worker::drain_with(state, |s| run_once(s, &WEBHOOKS)).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}
