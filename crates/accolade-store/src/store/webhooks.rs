//! Outbound webhooks: subscriptions, their signing secrets, fan-out and deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::models::*;
use crate::webhooks::*;

/// Outbound webhook subscriptions and deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook>;

    async fn list_webhooks(&self, page: Page) -> Result<Paged<Webhook>>;

    async fn get_webhook(&self, id: &str) -> Result<Webhook>;

    async fn update_webhook(&self, id: &str, patch: WebhookPatch) -> Result<Webhook>;

    /// Deletes a subscription and its delivery log.
    async fn delete_webhook(&self, id: &str) -> Result<()>;

    /// The subscription's sealed signing secret.
    async fn webhook_secret(&self, id: &str) -> Result<Vec<u8>>;

    /// Replaces the sealed signing secret (rotation).
    async fn set_webhook_secret(&self, id: &str, secret_ciphertext: Vec<u8>) -> Result<Webhook>;

    /// Moves the webhook cursor past up to `limit` outgoing events, in commit order, creating one
    /// pending delivery (due `now`) per event and active subscription that wants its type, in
    /// one transaction with the cursor. Concurrent calls never create a delivery twice.
    async fn fan_out_webhooks(&self, limit: u32, now: DateTime<Utc>) -> Result<FanOut>;

    /// Claims up to `limit` due pending deliveries of active subscriptions with a lease until
    /// `lease_until`, counting an attempt and setting the first-attempt time if unset. A delivery
    /// whose lease expired is claimable again.
    async fn claim_webhook_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// Records an attempt's outcome and releases the lease. Returns `false` (and changes
    /// nothing) when the delivery has moved on since `result.attempt` was claimed.
    async fn finish_webhook_attempt(
        &self,
        id: &str,
        result: AttemptResult,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Newest first.
    async fn list_webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: Page,
    ) -> Result<Paged<WebhookDelivery>>;

    async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery>;

    /// Sends a delivery's event again: a new pending delivery (new id, same event id,
    /// `replay_of` = `id`) due `now`, with a fresh attempt cycle.
    async fn replay_webhook_delivery(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookDelivery>;
}
