//! Webhook delivery: one ordered queue per organization, drained by a
//! background task that POSTs `{"id","organization_id","event_type","occurred_at"}`
//! and retries with a short backoff until the receiver answers 200.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;
use std::time::Duration;

use crate::model::EventRec;
use crate::stats::{Counters, WebhookDelivery};
use crate::Sandbox;

/// Delays between attempts; the number of attempts is one more than this.
pub const RETRY_DELAYS_MS: [u64; 3] = [100, 300, 900];
/// Per-attempt timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// One pending delivery.
pub(crate) struct Job {
    url: String,
    id: String,
    organization_id: String,
    event_type: &'static str,
    occurred_at: DateTime<Utc>,
}

impl Job {
    pub fn new(ev: &EventRec, url: String) -> Self {
        Job {
            url,
            id: ev.id.clone(),
            organization_id: ev.org.id.clone(),
            event_type: ev.event_type,
            occurred_at: ev.occurred_at,
        }
    }
}

/// Exactly the four keys Credly posts.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    organization_id: &'a str,
    event_type: &'a str,
    #[serde(serialize_with = "crate::util::ser_ts")]
    occurred_at: DateTime<Utc>,
}

#[derive(Default)]
struct OrgQueue {
    pending: VecDeque<Job>,
    running: bool,
}

/// Delivery queues and the HTTP client.
#[derive(Default)]
pub(crate) struct Webhooks {
    queues: Mutex<HashMap<String, OrgQueue>>,
    client: OnceLock<reqwest::Client>,
}

impl Webhooks {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(ATTEMPT_TIMEOUT)
                .user_agent(concat!(
                    "accolade-credly-sandbox/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .unwrap_or_default()
        })
    }
}

/// Queues a delivery and makes sure a worker drains the organization's queue.
pub(crate) fn enqueue(sb: &Sandbox, job: Job) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(event = %job.id, "no tokio runtime: webhook not delivered");
        sb.inner.counters.record_delivery(WebhookDelivery {
            event_id: job.id,
            event_type: job.event_type.to_owned(),
            organization_id: job.organization_id,
            url: job.url,
            attempts: 0,
            status: None,
            delivered: false,
            error: Some("no tokio runtime to deliver from".into()),
        });
        return;
    };
    let org = job.organization_id.clone();
    let start = {
        let mut queues = sb.inner.webhooks.queues.lock();
        let q = queues.entry(org.clone()).or_default();
        q.pending.push_back(job);
        !std::mem::replace(&mut q.running, true)
    };
    if start {
        let sb = sb.clone();
        handle.spawn(async move {
            let mut guard = RunningGuard {
                sb: sb.clone(),
                org: org.clone(),
                armed: true,
            };
            loop {
                let job = {
                    let mut queues = sb.inner.webhooks.queues.lock();
                    let q = queues.entry(org.clone()).or_default();
                    match q.pending.pop_front() {
                        Some(j) => j,
                        None => {
                            q.running = false;
                            guard.armed = false;
                            return;
                        }
                    }
                };
                deliver(&sb, job).await;
            }
        });
    }
}

/// Clears the `running` flag if the worker is dropped mid-queue (runtime shutdown).
struct RunningGuard {
    sb: Sandbox,
    org: String,
    armed: bool,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Some(q) = self.sb.inner.webhooks.queues.lock().get_mut(&self.org) {
                q.running = false;
            }
        }
    }
}

async fn deliver(sb: &Sandbox, job: Job) {
    let body = Body {
        id: &job.id,
        organization_id: &job.organization_id,
        event_type: job.event_type,
        occurred_at: job.occurred_at,
    };
    let client = sb.inner.webhooks.client();
    let mut attempts = 0u32;
    let mut status = None;
    let mut error = None;
    let mut delivered = false;
    for delay in std::iter::once(0).chain(RETRY_DELAYS_MS) {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        attempts += 1;
        Counters::bump(&sb.inner.counters.webhook_attempts);
        match client.post(&job.url).json(&body).send().await {
            Ok(resp) => {
                status = Some(resp.status().as_u16());
                error = None;
                if resp.status().as_u16() == 200 {
                    delivered = true;
                    break;
                }
            }
            Err(e) => {
                status = None;
                error = Some(e.to_string());
            }
        }
        tracing::debug!(event = %job.id, url = %job.url, ?status, attempt = attempts, "webhook attempt failed");
    }
    if delivered {
        tracing::debug!(event = %job.id, url = %job.url, "webhook delivered");
    } else {
        tracing::warn!(event = %job.id, url = %job.url, ?status, ?error, "webhook delivery gave up");
    }
    sb.inner.counters.record_delivery(WebhookDelivery {
        event_id: job.id.clone(),
        event_type: job.event_type.to_owned(),
        organization_id: job.organization_id.clone(),
        url: job.url.clone(),
        attempts,
        status,
        delivered,
        error,
    });
}
