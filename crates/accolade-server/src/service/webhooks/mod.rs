//! Signed outbound webhooks: subscribers receive Accolade's `badge.awarded` / `badge.revoked`
//! events as signed JSON POSTs, retried with backoff for days, with a delivery log and replay.
//!
//! - `destination`: which addresses webhooks may reach (public ones, plus
//!   `webhooks.allowed_destinations`), checked when subscribing and again when sending;
//! - `subscriptions`: subscribe, list, change, delete, with validation, secret generation and
//!   sealing (the API, the CLI and the admin UI call these);
//! - `deliveries`: the delivery log: list, read, replay;
//! - `signature`: the `Accolade-Signature` header;
//! - `sender`: one HTTP attempt and how its answer is classified;
//! - `worker`: fans outgoing events out into deliveries and sends due deliveries under a lease.
//!
//! The event hot path is not involved: awards already write an `outgoing_events` row in their
//! transaction; the worker turns those into deliveries afterwards (`Store::fan_out_webhooks`).

pub mod deliveries;
pub mod destination;
pub mod sender;
pub mod signature;
pub mod subscriptions;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use accolade_domain::retry::RetryPolicy;

use crate::config::WebhooksConfig;
use crate::service::secrets::SecretBox;
use destination::Destinations;

/// Shared by handlers, CLI and the worker.
#[derive(Clone)]
pub struct Webhooks {
    /// No redirects, per-request timeout, connects only to allowed destinations.
    pub client: reqwest::Client,
    /// Where webhooks may go besides public addresses (`webhooks.allowed_destinations`).
    pub destinations: Arc<Destinations>,
    /// Seals and opens subscription secrets.
    pub secrets: SecretBox,
    pub policy: RetryPolicy,
    /// How long a claimed delivery is leased: longer than a request can take, so another
    /// instance never sends the same attempt while this one still waits for an answer.
    pub lease: Duration,
    /// Deliveries claimed and sent at once.
    pub concurrency: usize,
}

impl Webhooks {
    pub fn new(
        config: &WebhooksConfig,
        worker_lease_secs: u64,
        secrets: SecretBox,
    ) -> anyhow::Result<Webhooks> {
        let timeout = Duration::from_secs(config.timeout_secs);
        let destinations = Arc::new(Destinations::parse(&config.allowed_destinations)?);
        Ok(Webhooks {
            client: sender::client(timeout, destinations.clone())?,
            destinations,
            secrets,
            policy: config.retry_policy()?,
            // One claimed batch is sent in one concurrent round, so the lease covers one request
            // timeout plus the time to record the results, with room to spare.
            lease: Duration::from_secs(worker_lease_secs)
                .max(timeout * 2 + Duration::from_secs(30)),
            concurrency: config.concurrency,
        })
    }
}
