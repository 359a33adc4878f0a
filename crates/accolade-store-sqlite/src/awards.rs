//! Learners, progress and awards (including manual award and revocation).

use std::sync::Arc;

use accolade_domain::award::Award;
use accolade_domain::engine::{RuleIndex, TemplateInfo};
use accolade_domain::manual;
use accolade_store::Entity;
use accolade_store::{
    AwardFilter, Delivery, Fulfillment, Learner, ManualChange, Page, Paged, StoreError,
};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::config;
use crate::events::{
    count, ensure_learner, insert_award, insert_outgoing, latest_award, revoke, Statements,
};
use crate::rows::{self, db, parse_ts, ts, AWARD_COLUMNS, LEARNER_COLUMNS};

type Result<T> = std::result::Result<T, StoreError>;

pub fn get_learner(c: &Connection, username: &str) -> Result<Learner> {
    c.prepare_cached(&format!(
        "SELECT {LEARNER_COLUMNS} FROM learners WHERE username = ?1"
    ))
    .and_then(|mut s| s.query_row([username], rows::learner).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Learner))
}

pub fn list_learners(c: &Connection, page: Page) -> Result<Paged<Learner>> {
    let rows: Vec<Learner> = c
        .prepare_cached(&format!(
            "SELECT {LEARNER_COLUMNS} FROM learners ORDER BY username LIMIT ?1 OFFSET ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![page.fetch(), page.offset as i64], rows::learner)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn fulfillments(c: &Connection, username: &str) -> Result<Vec<Fulfillment>> {
    c.prepare_cached(
        "SELECT template_id, requirement_id, event_id, fulfilled_at FROM fulfillments \
         WHERE learner = ?1 ORDER BY template_id, fulfilled_at",
    )
    .and_then(|mut s| {
        s.query_map([username], |r| {
            Ok(Fulfillment {
                template_id: r.get(0)?,
                requirement_id: r.get(1)?,
                event_id: r.get(2)?,
                fulfilled_at: parse_ts(&r.get::<_, String>(3)?)?,
            })
        })?
        .collect()
    })
    .map_err(db)
}

pub fn list_awards(c: &Connection, f: &AwardFilter, page: Page) -> Result<Paged<Award>> {
    let mut sql = format!("SELECT {AWARD_COLUMNS} FROM awards WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(l) = &f.learner {
        sql.push_str(" AND learner = ?");
        args.push(l.clone().into());
    }
    if let Some(t) = &f.template_id {
        sql.push_str(" AND template_id = ?");
        args.push(t.clone().into());
    }
    if let Some(s) = f.state {
        sql.push_str(" AND state = ?");
        args.push(s.as_str().to_string().into());
    }
    // Ids are UUIDv7 (time ordered): newest first walks the primary key instead of sorting
    // every row (measured: 511 ms for the first page of 500,000 awards, now under 1 ms).
    sql.push_str(" ORDER BY id DESC LIMIT ? OFFSET ?");
    args.push(page.fetch().into());
    args.push((page.offset as i64).into());
    let rows: Vec<Award> = c
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_map(params_from_iter(args), rows::award)?.collect())
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn get_award(c: &Connection, id: &str) -> Result<Award> {
    c.prepare_cached(&format!("SELECT {AWARD_COLUMNS} FROM awards WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], rows::award).optional())
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Award))
}

/// Template facts for outbox payloads, from the database (manual changes may concern inactive
/// templates, which the rules index does not hold).
fn template_info(c: &Connection, template_id: &str) -> Result<Arc<TemplateInfo>> {
    let cfg = config::template_config(c, template_id)?;
    let index = RuleIndex::build(
        0,
        &[accolade_domain::template::TemplateConfig {
            template: accolade_domain::template::Template {
                is_active: true,
                ..cfg.template
            },
            ..cfg
        }],
    );
    index
        .template(template_id)
        .cloned()
        .ok_or(StoreError::not_found(Entity::Template))
}

pub fn award_manually(
    c: &Connection,
    template_id: &str,
    username: &str,
    change: ManualChange,
) -> Result<Award> {
    let info = template_info(c, template_id)?;
    let learner = ensure_learner(c, username)?;
    let latest = latest_award(&mut Statements::new(c), template_id, username)?;
    let episode = manual::award_episode(username, latest.as_ref())?;
    let award = insert_award(
        &mut Statements::new(c),
        &info,
        &learner,
        episode,
        change.at,
        None,
        None,
        change.at,
    )?;
    count(c, 1, 0)?;
    tracing::info!(award.id = %award.id, reason = %change.reason, "manual award {}", award.id);
    Ok(award)
}

pub fn revoke_award(c: &Connection, award_id: &str, change: ManualChange) -> Result<Award> {
    let award = get_award(c, award_id)?;
    manual::check_revoke(&award)?;
    let info = template_info(c, &award.template_id)?;
    let learner = ensure_learner(c, &award.learner)?;
    let award = revoke(
        &mut Statements::new(c),
        &info,
        &learner,
        award,
        &change.reason,
        change.at,
    )?;
    count(c, 0, 1)?;
    Ok(award)
}

/// The expiry sweep (see `AwardStore::notify_expired_awards`): one UPDATE … RETURNING marks the
/// awards, on the single writer, in the transaction that writes their `badge.expired` events.
pub fn notify_expired(
    c: &Connection,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> Result<Vec<Award>> {
    let mut awards: Vec<Award> = c
        .prepare_cached(&format!(
            "UPDATE awards SET expiry_notified = 1 WHERE id IN (SELECT id FROM awards \
             WHERE expires_at IS NOT NULL AND expiry_notified = 0 AND state <> 'revoked' \
             AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2) RETURNING {AWARD_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_map(params![ts(now), i64::from(limit)], rows::award)?
                .collect()
        })
        .map_err(db)?;
    awards.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
    let mut templates: std::collections::HashMap<String, accolade_domain::template::Template> =
        std::collections::HashMap::new();
    let mut st = Statements::new(c);
    for a in &awards {
        if !templates.contains_key(&a.template_id) {
            templates.insert(a.template_id.clone(), config::template(c, &a.template_id)?);
        }
        let learner = ensure_learner(c, &a.learner)?;
        if let Some(event) =
            accolade_domain::outbox::expired_event(a, &templates[&a.template_id], &learner)
        {
            insert_outgoing(&mut st, &event)?;
        }
    }
    Ok(awards)
}

pub fn record_delivery(c: &Connection, award_id: &str, d: Delivery) -> Result<Award> {
    if !apply_delivery(c, award_id, &d)? {
        return Err(StoreError::not_found(Entity::Award));
    }
    get_award(c, award_id)
}

/// Writes a delivery result on an award (a revoked award keeps its state); false when there is
/// no such award. The state is written only when it changes: an UPDATE that names `state`
/// rewrites the `awards_one_active` index entry even when the value stays, and the local worker
/// records thousands of unchanged states per second during a burst.
pub fn apply_delivery(c: &Connection, award_id: &str, d: &Delivery) -> Result<bool> {
    let now = ts(chrono::Utc::now());
    c.prepare_cached("UPDATE awards SET state = ?2 WHERE id = ?1 AND state NOT IN ('revoked', ?2)")
        .and_then(|mut s| s.execute(params![award_id, d.state.as_str()]))
        .map_err(db)?;
    let changed = c
        .prepare_cached(
            "UPDATE awards SET issued_at = coalesce(?2, issued_at), \
             external_id = coalesce(?3, external_id), \
             external_state = coalesce(?4, external_state), updated_at = ?5 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                award_id,
                d.issued_at.map(ts),
                d.external_id,
                d.external_state,
                now
            ])
        })
        .map_err(db)?;
    Ok(changed > 0)
}
