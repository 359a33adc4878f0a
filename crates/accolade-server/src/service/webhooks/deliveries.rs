//! The delivery log as operators use it: listing deliveries (of one subscription or all),
//! reading one, and replaying one, which sends its event again as a new delivery with the same
//! event id. Used by the JSON API, the admin UI and `accolade webhooks`.

use accolade_domain::webhook::DeliveryStatus;
use accolade_store::{DeliveryFilter, Page, Paged, Store, StoreError, WebhookDelivery};
use chrono::Utc;

/// Deliveries, newest first.
pub async fn list(
    store: &dyn Store,
    filter: &DeliveryFilter,
    page: Page,
) -> Result<Paged<WebhookDelivery>, StoreError> {
    store.list_webhook_deliveries(filter, page).await
}

/// The deliveries of one subscription, newest first; an unknown subscription is not found
/// (rather than an empty list).
pub async fn of_webhook(
    store: &dyn Store,
    webhook_id: &str,
    status: Option<DeliveryStatus>,
    page: Page,
) -> Result<Paged<WebhookDelivery>, StoreError> {
    store.get_webhook(webhook_id).await?;
    let filter = DeliveryFilter {
        webhook_id: Some(webhook_id.to_string()),
        status,
    };
    store.list_webhook_deliveries(&filter, page).await
}

pub async fn get(store: &dyn Store, id: &str) -> Result<WebhookDelivery, StoreError> {
    store.get_webhook_delivery(id).await
}

/// Sends the delivery's event again now: a new delivery (new id, `replay_of` set, a fresh
/// attempt cycle) with the same event id, so receivers can recognise it.
pub async fn replay(store: &dyn Store, id: &str) -> Result<WebhookDelivery, StoreError> {
    let d = store.replay_webhook_delivery(id, Utc::now()).await?;
    tracing::info!(delivery.id = %d.id, replay_of = %id, "webhook delivery {id} replayed as {}", d.id);
    Ok(d)
}
