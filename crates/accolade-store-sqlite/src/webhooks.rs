//! Outbound webhooks on SQLite: subscriptions, the fan-out of outgoing events into deliveries
//! (a rowid cursor advanced in the same transaction), and the delivery queue (claim with a lease
//! by `UPDATE … RETURNING`, finish, replay).
//!
//! Every write goes through the store's one writer connection, so the cursor read, the inserts
//! and the cursor update of a fan-out cannot interleave with another fan-out.

use accolade_domain::webhook::{wants, DeliveryStatus};
use accolade_store::Entity;
use accolade_store::{
    AttemptNext, AttemptResult, ClaimedDelivery, DeliveryFilter, FanOut, NewWebhook, Page, Paged,
    StoreError, Webhook, WebhookDelivery, WebhookPatch,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::rows::{db, opt_ts, parse_ts, ts};

type Result<T> = std::result::Result<T, StoreError>;

const WEBHOOK_COLUMNS: &str = "id, url, event_types, description, active, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, replay_of, status, \
     attempts, next_attempt_at, locked_until, first_attempt_at, last_attempt_at, last_status, \
     last_error, last_response_ms, created_at, delivered_at";

fn webhook(r: &Row<'_>) -> rusqlite::Result<Webhook> {
    let types: String = r.get(2)?;
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        description: r.get(3)?,
        active: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
        updated_at: parse_ts(&r.get::<_, String>(6)?)?,
    })
}

fn delivery(r: &Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    let status: String = r.get(5)?;
    Ok(WebhookDelivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        event_type: r.get(3)?,
        replay_of: r.get(4)?,
        // The CHECK constraint admits only the three known states.
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Dead),
        attempts: r.get(6)?,
        next_attempt_at: opt_ts(r.get(7)?)?,
        locked_until: opt_ts(r.get(8)?)?,
        first_attempt_at: opt_ts(r.get(9)?)?,
        last_attempt_at: opt_ts(r.get(10)?)?,
        last_status: r.get(11)?,
        last_error: r.get(12)?,
        last_response_ms: r.get(13)?,
        created_at: parse_ts(&r.get::<_, String>(14)?)?,
        delivered_at: opt_ts(r.get(15)?)?,
    })
}

fn types_json(types: &[String]) -> String {
    serde_json::to_string(types).unwrap_or_else(|_| "[]".into())
}

pub fn create(c: &Connection, new: NewWebhook) -> Result<Webhook> {
    let now = ts(Utc::now());
    c.execute(
        "INSERT INTO webhooks (id, url, event_types, description, active, secret_ciphertext, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            new.id,
            new.url,
            types_json(&new.event_types),
            new.description,
            new.active,
            new.secret_ciphertext,
            now
        ],
    )
    .map_err(db)?;
    get(c, &new.id)
}

pub fn list(c: &Connection, page: Page) -> Result<Paged<Webhook>> {
    let rows: Vec<Webhook> = c
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id LIMIT ?1 OFFSET ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![page.fetch(), page.offset as i64], webhook)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn get(c: &Connection, id: &str) -> Result<Webhook> {
    c.prepare_cached(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], webhook).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Webhook))
}

pub fn update(c: &Connection, id: &str, patch: WebhookPatch) -> Result<Webhook> {
    let mut w = get(c, id)?;
    if let Some(url) = patch.url {
        w.url = url;
    }
    if let Some(types) = patch.event_types {
        w.event_types = types;
    }
    if let Some(d) = patch.description {
        w.description = d;
    }
    if let Some(a) = patch.active {
        w.active = a;
    }
    c.execute(
        "UPDATE webhooks SET url = ?2, event_types = ?3, description = ?4, active = ?5, \
         updated_at = ?6 WHERE id = ?1",
        params![
            id,
            w.url,
            types_json(&w.event_types),
            w.description,
            w.active,
            ts(Utc::now())
        ],
    )
    .map_err(db)?;
    get(c, id)
}

pub fn delete(c: &Connection, id: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM webhooks WHERE id = ?1", [id])
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::not_found(Entity::Webhook));
    }
    Ok(())
}

pub fn secret(c: &Connection, id: &str) -> Result<Vec<u8>> {
    c.prepare_cached("SELECT secret_ciphertext FROM webhooks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Webhook))
}

pub fn set_secret(c: &Connection, id: &str, ciphertext: Vec<u8>) -> Result<Webhook> {
    let n = c
        .execute(
            "UPDATE webhooks SET secret_ciphertext = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, ciphertext, ts(Utc::now())],
        )
        .map_err(db)?;
    if n == 0 {
        return Err(StoreError::not_found(Entity::Webhook));
    }
    get(c, id)
}

pub fn fan_out(c: &Connection, limit: u32, now: DateTime<Utc>) -> Result<FanOut> {
    let cursor: i64 = c
        .query_row(
            "SELECT last_rowid FROM webhook_cursor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    let subscribed: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM webhooks WHERE active)",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !subscribed {
        // Nobody to deliver to: skip to the newest event in one step instead of reading every
        // event in batches, each batch a commit that holds the single writer during bursts.
        let skipped = c
            .prepare_cached(
                "UPDATE webhook_cursor SET last_rowid = (SELECT max(rowid) FROM outgoing_events) \
                 WHERE id = 1 AND (SELECT max(rowid) FROM outgoing_events) > last_rowid \
                 RETURNING last_rowid",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
            .map_err(db)?;
        return Ok(FanOut {
            events: skipped.map_or(0, |last| (last - cursor) as u64),
            deliveries: 0,
        });
    }
    let events: Vec<(i64, String, String)> = c
        .prepare_cached(
            "SELECT rowid, id, event_type FROM outgoing_events WHERE rowid > ?1 \
             ORDER BY rowid LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![cursor, i64::from(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(db)?;
    let Some((last, _, _)) = events.last() else {
        return Ok(FanOut::default());
    };
    let subscribers: Vec<(String, Vec<String>)> = c
        .prepare_cached("SELECT id, event_types FROM webhooks WHERE active")
        .and_then(|mut s| {
            s.query_map([], |r| {
                let types: String = r.get(1)?;
                Ok((r.get(0)?, serde_json::from_str(&types).unwrap_or_default()))
            })?
            .collect()
        })
        .map_err(db)?;
    let now = ts(now);
    let mut insert = c
        .prepare_cached(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, status, \
             next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5) \
             ON CONFLICT DO NOTHING",
        )
        .map_err(db)?;
    let mut created = 0;
    for (_, event_id, event_type) in &events {
        for (webhook_id, types) in &subscribers {
            if wants(types, event_type) {
                let id = accolade_domain::ids::webhook_delivery_id();
                created += insert
                    .execute(params![id, webhook_id, event_id, event_type, now])
                    .map_err(db)? as u64;
            }
        }
    }
    c.execute(
        "UPDATE webhook_cursor SET last_rowid = ?1 WHERE id = 1",
        [last],
    )
    .map_err(db)?;
    Ok(FanOut {
        events: events.len() as u64,
        deliveries: created,
    })
}

pub fn claim(
    c: &Connection,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedDelivery>> {
    let now = ts(now);
    // `locked_until` marks an attempt in flight; an expired one belongs to a worker that died.
    let claimed: Vec<WebhookDelivery> = c
        .prepare_cached(&format!(
            "UPDATE webhook_deliveries SET locked_until = ?2, attempts = attempts + 1, \
             first_attempt_at = coalesce(first_attempt_at, ?1), last_attempt_at = ?1, updated_at = ?1 \
             WHERE id IN (SELECT x.id FROM webhook_deliveries x JOIN webhooks w ON w.id = x.webhook_id \
                 WHERE x.status = 'pending' AND x.next_attempt_at <= ?1 AND w.active \
                 AND (x.locked_until IS NULL OR x.locked_until <= ?1) \
                 ORDER BY x.next_attempt_at LIMIT ?3) \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_map(params![now, ts(lease_until), i64::from(limit)], delivery)?
                .collect()
        })
        .map_err(db)?;
    let mut context = c
        .prepare_cached(
            "SELECT w.url, e.time, e.payload FROM webhooks w, outgoing_events e \
             WHERE w.id = ?1 AND e.id = ?2",
        )
        .map_err(db)?;
    let mut out = Vec::with_capacity(claimed.len());
    for d in claimed {
        let (url, time, payload): (String, String, String) = context
            .query_row(params![d.webhook_id, d.event_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db)?;
        out.push(ClaimedDelivery {
            delivery: d,
            url,
            event_time: parse_ts(&time).map_err(db)?,
            payload: serde_json::from_str(&payload).unwrap_or_default(),
        });
    }
    Ok(out)
}

pub fn finish(c: &Connection, id: &str, r: AttemptResult, now: DateTime<Utc>) -> Result<bool> {
    let now = ts(now);
    let (status, next, delivered) = match r.next {
        AttemptNext::Succeeded => ("succeeded", None, Some(now.clone())),
        AttemptNext::RetryAt(at) => ("pending", Some(ts(at)), None),
        AttemptNext::Dead => ("dead", None, None),
    };
    let n = c
        .execute(
            "UPDATE webhook_deliveries SET status = ?3, next_attempt_at = ?4, locked_until = NULL, \
             last_status = ?5, last_error = ?6, last_response_ms = ?7, \
             delivered_at = coalesce(?8, delivered_at), updated_at = ?9 \
             WHERE id = ?1 AND attempts = ?2 AND status = 'pending'",
            params![
                id,
                r.attempt,
                status,
                next,
                r.http_status,
                r.error,
                r.response_ms,
                delivered,
                now
            ],
        )
        .map_err(db)?;
    Ok(n > 0)
}

pub fn list_deliveries(
    c: &Connection,
    f: &DeliveryFilter,
    page: Page,
) -> Result<Paged<WebhookDelivery>> {
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(w) = &f.webhook_id {
        sql.push_str(" AND webhook_id = ?");
        args.push(w.clone().into());
    }
    if let Some(s) = f.status {
        sql.push_str(" AND status = ?");
        args.push(s.as_str().to_string().into());
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?");
    args.push(page.fetch().into());
    args.push((page.offset as i64).into());
    let rows: Vec<WebhookDelivery> = c
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map(params_from_iter(args), delivery)?.collect())
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn get_delivery(c: &Connection, id: &str) -> Result<WebhookDelivery> {
    c.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], delivery).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::WebhookDelivery))
}

pub fn replay(c: &Connection, id: &str, now: DateTime<Utc>) -> Result<WebhookDelivery> {
    let original = get_delivery(c, id)?;
    let new_id = accolade_domain::ids::webhook_delivery_id();
    let now = ts(now);
    c.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, replay_of, status, \
         next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
        params![
            new_id,
            original.webhook_id,
            original.event_id,
            original.event_type,
            original.id,
            now
        ],
    )
    .map_err(db)?;
    get_delivery(c, &new_id)
}
