//! The webhook worker. Each pass:
//!
//! 1. fans out new outgoing events into deliveries (`Store::fan_out_webhooks`: cursor and
//!    deliveries commit together, so a crash never loses or doubles one);
//! 2. claims due deliveries with a lease (one instance per attempt, as with outbox jobs), sends
//!    them concurrently with no transaction open, and records each outcome: 2xx → `succeeded`;
//!    410 → `dead`; anything else → retried on the configured schedule with ±20% jitter (longer
//!    if the receiver's `Retry-After` asks) until the maximum age after the first attempt, then
//!    `dead`.
//!
//! A delivery is at least once: if this process dies after the receiver answered but before the
//! result is recorded, the attempt is made again when the lease expires. Receivers dedupe on
//! `Accolade-Event-Id`.

use std::collections::HashMap;

use accolade_domain::retry::NextAttempt;
use accolade_store::{AttemptNext, AttemptResult, ClaimedDelivery};
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::sender::{self, Outcome, Sent};
use super::subscriptions;
use super::Webhooks;
use crate::state::AppState;

/// Outgoing events fanned out per pass.
const FAN_OUT_BATCH: u32 = 500;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    crate::service::worker::poll_loop(&state, "webhook worker", 1, run_once).await
}

/// One pass: fan out, then send one batch of due deliveries. Returns the work done (deliveries
/// made, attempts made, one for a full fan-out batch), so the poll loop goes again at once while
/// there is more.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let fanned = state
        .store
        .fan_out_webhooks(FAN_OUT_BATCH, Utc::now())
        .await?;
    if fanned.deliveries > 0 {
        crate::metrics::webhook_deliveries_created(fanned.deliveries);
        tracing::debug!(
            events = fanned.events,
            deliveries = fanned.deliveries,
            "fanned out outgoing events to webhook subscriptions"
        );
    }
    // Come back at once only for real work: deliveries made or sent, or a full fan-out batch (a
    // backlog). A partial batch waits for the poll interval, so a steady stream of awards does
    // not turn into a steady stream of tiny write transactions on the single SQLite writer.
    let backlog = fanned.events >= u64::from(FAN_OUT_BATCH);
    Ok(fanned.deliveries as usize + usize::from(backlog) + deliver(state).await?)
}

/// Claims and sends one batch of due deliveries; returns how many were attempted.
async fn deliver(state: &AppState) -> anyhow::Result<usize> {
    let hooks = &state.webhooks;
    let now = Utc::now();
    let lease = chrono::Duration::from_std(hooks.lease)?;
    let claimed = state
        .store
        .claim_webhook_deliveries(hooks.concurrency as u32, now, now + lease)
        .await?;
    let n = claimed.len();
    // Each subscription's secret is opened once per pass, not once per delivery.
    let mut secrets: HashMap<String, Result<String, String>> = HashMap::new();
    for d in &claimed {
        let id = &d.delivery.webhook_id;
        if !secrets.contains_key(id) {
            let s = subscriptions::secret(&*state.store, &hooks.secrets, id)
                .await
                .map_err(|e| format!("cannot open the subscription's secret: {e:#}"));
            secrets.insert(id.clone(), s);
        }
    }
    let secrets = &secrets;
    futures::stream::iter(claimed)
        .for_each_concurrent(hooks.concurrency, |d| async move {
            let secret = secrets
                .get(&d.delivery.webhook_id)
                .cloned()
                .unwrap_or_else(|| Err("no secret".into()));
            attempt(state, hooks, d, secret).await;
        })
        .await;
    Ok(n)
}

async fn attempt(
    state: &AppState,
    hooks: &Webhooks,
    d: ClaimedDelivery,
    secret: Result<String, String>,
) {
    let sent = match secret {
        Ok(secret) => {
            sender::send(&hooks.client, &hooks.destinations, &d, &secret, Utc::now()).await
        }
        Err(error) => Sent {
            outcome: Outcome::Failed {
                error,
                retry_after: None,
            },
            http_status: None,
            response_ms: 0,
        },
    };
    let now = Utc::now();
    let result = settle(hooks, &d, &sent, now, crate::service::worker::jitter());
    let del = &d.delivery;
    match (&result.next, &result.error) {
        (AttemptNext::Succeeded, _) => {
            crate::metrics::webhook_delivery("succeeded");
            tracing::debug!(webhook.id = %del.webhook_id, delivery.id = %del.id, event.id = %del.event_id,
                attempt = del.attempts, duration_ms = sent.response_ms, "webhook delivery {} succeeded", del.id);
        }
        (AttemptNext::RetryAt(at), error) => {
            crate::metrics::webhook_delivery("failed");
            tracing::warn!(webhook.id = %del.webhook_id, delivery.id = %del.id, event.id = %del.event_id,
                attempt = del.attempts, next_attempt_at = %at, error = error.as_deref().unwrap_or(""),
                "webhook delivery {} failed, will retry", del.id);
        }
        (AttemptNext::Dead, error) => {
            crate::metrics::webhook_delivery("dead");
            tracing::error!(webhook.id = %del.webhook_id, delivery.id = %del.id, event.id = %del.event_id,
                attempt = del.attempts, error = error.as_deref().unwrap_or(""),
                "webhook delivery {} is dead", del.id);
        }
    }
    match state
        .store
        .finish_webhook_attempt(&del.id, result, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(delivery.id = %del.id,
            "webhook delivery {} moved on while it was being sent (its lease expired); result dropped", del.id),
        Err(e) => tracing::warn!(delivery.id = %del.id, error = %e,
            "could not record webhook attempt; it is made again after its lease"),
    }
}

/// Turns an attempt into what is recorded and what happens next.
pub fn settle(
    hooks: &Webhooks,
    d: &ClaimedDelivery,
    sent: &Sent,
    now: DateTime<Utc>,
    jitter: f64,
) -> AttemptResult {
    let (next, error) = match &sent.outcome {
        Outcome::Delivered => (AttemptNext::Succeeded, None),
        Outcome::Gone => (
            AttemptNext::Dead,
            Some("HTTP 410 Gone: the receiver refuses this event for good".to_string()),
        ),
        Outcome::Failed { error, retry_after } => {
            let first = d.delivery.first_attempt_at.unwrap_or(now);
            let next =
                match hooks
                    .policy
                    .next(d.delivery.attempts, first, now, jitter, *retry_after)
                {
                    NextAttempt::At(at) => AttemptNext::RetryAt(at),
                    NextAttempt::GiveUp => AttemptNext::Dead,
                };
            (next, Some(error.clone()))
        }
    };
    AttemptResult {
        attempt: d.delivery.attempts,
        http_status: sent.http_status.map(i32::from),
        error,
        response_ms: sent.response_ms,
        next,
    }
}

/// Runs passes until one finds nothing to do (tests and tools).
pub async fn drain(state: &AppState) -> anyhow::Result<usize> {
    crate::service::worker::drain_with(state, run_once).await
}
