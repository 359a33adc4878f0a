//! Values of the outbound-webhook part of the store: subscriptions, deliveries and attempt
//! results. A subscription's signing secret only ever crosses this boundary encrypted.

use accolade_domain::webhook::DeliveryStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A subscription as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    /// `whk_…`
    pub id: String,
    pub url: String,
    /// Event types delivered; empty means every type.
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new subscription. The id is chosen by the caller because the secret is sealed bound to it.
#[derive(Clone, PartialEq)]
pub struct NewWebhook {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    /// The signing secret, sealed by the server's secret box.
    pub secret_ciphertext: Vec<u8>,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .finish_non_exhaustive()
    }
}

/// A partial update of a subscription (the secret changes only by rotation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

/// One event to one subscription, with the outcome of its latest attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    /// `whd_…`; a replay is a new delivery with a new id.
    pub id: String,
    pub webhook_id: String,
    /// The outgoing event's id: the same for every delivery and replay of that event.
    pub event_id: String,
    pub event_type: String,
    /// The delivery this one replays.
    pub replay_of: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: i64,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Set while a worker holds the delivery.
    pub locked_until: Option<DateTime<Utc>>,
    /// The first attempt: retries stop `max_age` after it.
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last answer (none after a network error or timeout).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_response_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery claimed for an attempt, with what is needed to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    pub url: String,
    /// When the event happened (the outgoing event's time).
    pub event_time: DateTime<Utc>,
    /// The outgoing event's payload (openedx-events `BadgeData`).
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub webhook_id: Option<String>,
    pub status: Option<DeliveryStatus>,
}

/// The outcome of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// The attempt number the worker claimed; a result for an older attempt (the lease expired
    /// and another worker took over) is ignored.
    pub attempt: i64,
    pub http_status: Option<i32>,
    /// Error text, already truncated by the caller.
    pub error: Option<String>,
    pub response_ms: i64,
    pub next: AttemptNext,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttemptNext {
    Succeeded,
    RetryAt(DateTime<Utc>),
    Dead,
}

/// What one fan-out pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Outgoing events the cursor moved past.
    pub events: u64,
    /// Deliveries created.
    pub deliveries: u64,
}
