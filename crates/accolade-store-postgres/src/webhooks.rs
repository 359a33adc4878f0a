//! Outbound webhooks on PostgreSQL: subscriptions, the fan-out of outgoing events into deliveries
//! and the delivery queue.
//!
//! Fan-out locks the single cursor row first, so instances take turns, and reads outgoing events
//! in `(tx, id)` order up to the oldest running transaction (see migration `0004_webhooks.sql`
//! for why a plain sequence would skip events). Claiming uses `FOR UPDATE SKIP LOCKED` like the
//! job queue, and commits at once: no transaction stays open across the HTTP call.

use accolade_domain::webhook::{wants, DeliveryStatus};
use accolade_store::Entity;
use accolade_store::{
    AttemptNext, AttemptResult, ClaimedDelivery, DeliveryFilter, FanOut, NewWebhook, Page, Paged,
    StoreError, Webhook, WebhookDelivery, WebhookPatch,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{self, db, micros, opt_text, text};

type Result<T> = std::result::Result<T, StoreError>;

macro_rules! webhook_columns {
    () => {
        "id, url, event_types, description, active, created_at, updated_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_id, event_type, replay_of, status, attempts, next_attempt_at, \
         locked_until, first_attempt_at, last_attempt_at, last_status, last_error, \
         last_response_ms, created_at, delivered_at"
    };
}

fn webhook(r: &PgRow) -> std::result::Result<Webhook, sqlx::Error> {
    Ok(Webhook {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        event_types: r.try_get("event_types")?,
        description: r.try_get("description")?,
        active: r.try_get("active")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn delivery(r: &PgRow) -> std::result::Result<WebhookDelivery, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        webhook_id: r.try_get("webhook_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        replay_of: r.try_get("replay_of")?,
        // The CHECK constraint admits only the three known states.
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Dead),
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        locked_until: r.try_get("locked_until")?,
        first_attempt_at: r.try_get("first_attempt_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_status: r.try_get("last_status")?,
        last_error: r.try_get("last_error")?,
        last_response_ms: r.try_get("last_response_ms")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn texts(v: &[String]) -> Vec<String> {
    v.iter().map(|s| text(s).into_owned()).collect()
}

pub async fn create(c: &mut PgConnection, new: NewWebhook) -> Result<Webhook> {
    let row = sqlx::query(concat!(
        "INSERT INTO webhooks (id, url, event_types, description, active, secret_ciphertext, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
        webhook_columns!()
    ))
    .bind(text(&new.id))
    .bind(text(&new.url))
    .bind(texts(&new.event_types))
    .bind(text(&new.description))
    .bind(new.active)
    .bind(&new.secret_ciphertext)
    .bind(micros(Utc::now()))
    .fetch_one(c)
    .await
    .map_err(db)?;
    webhook(&row).map_err(db)
}

pub async fn list(c: &mut PgConnection, page: Page) -> Result<Paged<Webhook>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks ORDER BY created_at, id LIMIT $1 OFFSET $2"
    ))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, webhook)?))
}

pub async fn get(c: &mut PgConnection, id: &str) -> Result<Webhook> {
    let row = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Webhook))?;
    webhook(&row).map_err(db)
}

pub async fn update(c: &mut PgConnection, id: &str, patch: WebhookPatch) -> Result<Webhook> {
    let row = sqlx::query(concat!(
        "UPDATE webhooks SET url = coalesce($2, url), event_types = coalesce($3, event_types), \
         description = coalesce($4, description), active = coalesce($5, active), updated_at = $6 \
         WHERE id = $1 RETURNING ",
        webhook_columns!()
    ))
    .bind(text(id))
    .bind(opt_text(patch.url.as_deref()))
    .bind(patch.event_types.as_deref().map(texts))
    .bind(opt_text(patch.description.as_deref()))
    .bind(patch.active)
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Webhook))?;
    webhook(&row).map_err(db)
}

pub async fn delete(c: &mut PgConnection, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(text(id))
        .execute(c)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(Entity::Webhook));
    }
    Ok(())
}

pub async fn secret(c: &mut PgConnection, id: &str) -> Result<Vec<u8>> {
    sqlx::query_scalar("SELECT secret_ciphertext FROM webhooks WHERE id = $1")
        .bind(text(id))
        .fetch_optional(c)
        .await
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Webhook))
}

pub async fn set_secret(c: &mut PgConnection, id: &str, ciphertext: Vec<u8>) -> Result<Webhook> {
    let row = sqlx::query(concat!(
        "UPDATE webhooks SET secret_ciphertext = $2, updated_at = $3 WHERE id = $1 RETURNING ",
        webhook_columns!()
    ))
    .bind(text(id))
    .bind(ciphertext)
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Webhook))?;
    webhook(&row).map_err(db)
}

/// One fan-out pass; run inside a transaction (the cursor row stays locked until it commits).
pub async fn fan_out(c: &mut PgConnection, limit: u32, now: DateTime<Utc>) -> Result<FanOut> {
    let (last_tx, last_id): (i64, String) =
        sqlx::query_as("SELECT last_tx, last_id FROM webhook_cursor WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
    let events: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT tx, id, event_type FROM outgoing_events \
         WHERE (tx, id) > ($1, $2) AND tx < txid_snapshot_xmin(txid_current_snapshot()) \
         ORDER BY tx, id LIMIT $3",
    )
    .bind(last_tx)
    .bind(&last_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let Some((tx, id, _)) = events.last() else {
        return Ok(FanOut::default());
    };
    let subscribers: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT id, event_types FROM webhooks WHERE active")
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
    let (mut ids, mut hooks, mut event_ids, mut types) = (vec![], vec![], vec![], vec![]);
    for (_, event_id, event_type) in &events {
        for (webhook_id, wanted) in &subscribers {
            if wants(wanted, event_type) {
                ids.push(accolade_domain::ids::webhook_delivery_id());
                hooks.push(webhook_id.clone());
                event_ids.push(event_id.clone());
                types.push(event_type.clone());
            }
        }
    }
    let created = if ids.is_empty() {
        0
    } else {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, status, \
             next_attempt_at, created_at, updated_at) \
             SELECT d.id, d.webhook_id, d.event_id, d.event_type, 'pending', $5, $5, $5 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
             AS d(id, webhook_id, event_id, event_type) ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(&hooks)
        .bind(&event_ids)
        .bind(&types)
        .bind(micros(now))
        .execute(&mut *c)
        .await
        .map_err(db)?
        .rows_affected()
    };
    sqlx::query("UPDATE webhook_cursor SET last_tx = $1, last_id = $2 WHERE id = 1")
        .bind(tx)
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(FanOut {
        events: events.len() as u64,
        deliveries: created,
    })
}

pub async fn claim(
    c: &mut PgConnection,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedDelivery>> {
    // `locked_until` marks an attempt in flight; an expired one belongs to a worker that died.
    let found = sqlx::query(concat!(
        "WITH due AS (\
             SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.active \
             AND (d.locked_until IS NULL OR d.locked_until <= $1) \
             ORDER BY d.next_attempt_at, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED), \
         claimed AS (\
             UPDATE webhook_deliveries SET locked_until = $2, attempts = attempts + 1, \
             first_attempt_at = coalesce(first_attempt_at, $1), last_attempt_at = $1, \
             updated_at = $1 WHERE id IN (SELECT id FROM due) RETURNING ",
        delivery_columns!(),
        ") SELECT claimed.*, w.url, e.time AS event_time, e.payload FROM claimed \
         JOIN webhooks w ON w.id = claimed.webhook_id \
         JOIN outgoing_events e ON e.id = claimed.event_id \
         ORDER BY claimed.next_attempt_at, claimed.id"
    ))
    .bind(micros(now))
    .bind(micros(lease_until))
    .bind(i64::from(limit))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows::all(found, |r| {
        Ok(ClaimedDelivery {
            delivery: delivery(r)?,
            url: r.try_get("url")?,
            event_time: r.try_get("event_time")?,
            payload: r.try_get("payload")?,
        })
    })
}

pub async fn finish(
    c: &mut PgConnection,
    id: &str,
    r: AttemptResult,
    now: DateTime<Utc>,
) -> Result<bool> {
    let now = micros(now);
    let (status, next, delivered) = match r.next {
        AttemptNext::Succeeded => ("succeeded", None, Some(now)),
        AttemptNext::RetryAt(at) => ("pending", Some(micros(at)), None),
        AttemptNext::Dead => ("dead", None, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, locked_until = NULL, \
         last_status = $5, last_error = $6, last_response_ms = $7, \
         delivered_at = coalesce($8, delivered_at), updated_at = $9 \
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
    )
    .bind(text(id))
    .bind(r.attempt)
    .bind(status)
    .bind(next)
    .bind(r.http_status)
    .bind(opt_text(r.error.as_deref()))
    .bind(r.response_ms)
    .bind(delivered)
    .bind(now)
    .execute(c)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub async fn list_deliveries(
    c: &mut PgConnection,
    f: &DeliveryFilter,
    page: Page,
) -> Result<Paged<WebhookDelivery>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries WHERE ($1::text IS NULL OR webhook_id = $1) \
         AND ($2::text IS NULL OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(opt_text(f.webhook_id.as_deref()))
    .bind(f.status.map(DeliveryStatus::as_str))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, delivery)?))
}

pub async fn get_delivery(c: &mut PgConnection, id: &str) -> Result<WebhookDelivery> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM webhook_deliveries WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::WebhookDelivery))?;
    delivery(&row).map_err(db)
}

pub async fn replay(c: &mut PgConnection, id: &str, now: DateTime<Utc>) -> Result<WebhookDelivery> {
    let row = sqlx::query(concat!(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, replay_of, status, \
         next_attempt_at, created_at, updated_at) \
         SELECT $2, webhook_id, event_id, event_type, id, 'pending', $3, $3, $3 \
         FROM webhook_deliveries WHERE id = $1 RETURNING ",
        delivery_columns!()
    ))
    .bind(text(id))
    .bind(accolade_domain::ids::webhook_delivery_id())
    .bind(micros(now))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::WebhookDelivery))?;
    delivery(&row).map_err(db)
}
