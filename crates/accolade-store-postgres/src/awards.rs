//! Learners, progress and awards, including manual award and revocation and delivery results.
//! Writers lock the learner's row first, like event batches (see `effects.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use accolade_domain::award::Award;
use accolade_domain::engine::{RuleIndex, TemplateInfo};
use accolade_domain::event::LearnerData;
use accolade_domain::manual;
use accolade_domain::template::{Template, TemplateConfig};
use accolade_store::Entity;
use accolade_store::{
    AwardFilter, Delivery, Fulfillment, Learner, ManualChange, Page, Paged, StoreError,
};
use chrono::Utc;
use sqlx::PgConnection;

use crate::config;
use crate::effects::{lock_learners, Changes};
use crate::rows::{
    self, award_columns, db, is_unique_violation, learner_columns, micros, opt_text, text,
};

type Result<T> = std::result::Result<T, StoreError>;

pub async fn get_learner(c: &mut PgConnection, username: &str) -> Result<Learner> {
    let row = sqlx::query(concat!(
        "SELECT ",
        learner_columns!(),
        " FROM learners WHERE username = $1"
    ))
    .bind(text(username))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Learner))?;
    rows::learner(&row).map_err(db)
}

pub async fn list_learners(c: &mut PgConnection, page: Page) -> Result<Paged<Learner>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        learner_columns!(),
        " FROM learners ORDER BY username LIMIT $1 OFFSET $2"
    ))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, rows::learner)?))
}

pub async fn fulfillments(c: &mut PgConnection, username: &str) -> Result<Vec<Fulfillment>> {
    let found: Vec<(String, String, Option<String>, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT template_id, requirement_id, event_id, fulfilled_at FROM fulfillments \
         WHERE learner = $1 ORDER BY template_id, fulfilled_at",
    )
    .bind(text(username))
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(found
        .into_iter()
        .map(
            |(template_id, requirement_id, event_id, fulfilled_at)| Fulfillment {
                template_id,
                requirement_id,
                event_id,
                fulfilled_at,
            },
        )
        .collect())
}

pub async fn list_awards(
    c: &mut PgConnection,
    f: &AwardFilter,
    page: Page,
) -> Result<Paged<Award>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        award_columns!(),
        " FROM awards WHERE ($1::text IS NULL OR learner = $1) \
         AND ($2::text IS NULL OR template_id = $2) AND ($3::text IS NULL OR state = $3) \
         ORDER BY id DESC LIMIT $4 OFFSET $5"
    ))
    .bind(opt_text(f.learner.as_deref()))
    .bind(opt_text(f.template_id.as_deref()))
    .bind(f.state.map(|s| s.as_str()))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, rows::award)?))
}

pub async fn get_award(c: &mut PgConnection, id: &str) -> Result<Award> {
    let row = sqlx::query(concat!(
        "SELECT ",
        award_columns!(),
        " FROM awards WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Award))?;
    rows::award(&row).map_err(db)
}

/// Template facts for outbox payloads, from the database (manual changes may concern inactive
/// templates, which the rules index does not hold).
async fn template_info(c: &mut PgConnection, template_id: &str) -> Result<Arc<TemplateInfo>> {
    let template_id = &*text(template_id);
    let cfg = config::template_config(c, template_id).await?;
    let index = RuleIndex::build(
        0,
        &[TemplateConfig {
            template: Template {
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

/// Locks the learner's row, creating it when the learner sent no event yet, and returns its data.
async fn lock_learner(c: &mut PgConnection, username: &str) -> Result<LearnerData> {
    let blank = LearnerData {
        username: text(username).into_owned(),
        lms_user_id: None,
        email: None,
        name: None,
        is_active: Some(true),
    };
    lock_learners(c, [&blank], Utc::now()).await?;
    let stored = get_learner(c, &blank.username).await?;
    Ok(LearnerData {
        lms_user_id: stored.lms_user_id,
        email: stored.email,
        name: stored.name,
        ..blank
    })
}

pub async fn award_manually(
    c: &mut PgConnection,
    template_id: &str,
    username: &str,
    change: ManualChange,
) -> Result<Award> {
    let info = template_info(c, template_id).await?;
    let learner = lock_learner(c, username).await?;
    let mut changes = Changes::default();
    let latest = changes.latest_award(c, template_id, username).await?;
    let episode = manual::award_episode(username, latest.as_ref())?;
    let award = changes.award(&info, &learner, episode, change.at, None, None, change.at);
    changes.flush(c, 0).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::already_awarded()
        } else {
            db(e)
        }
    })?;
    tracing::info!(award.id = %award.id, reason = %change.reason, "manual award {}", award.id);
    Ok(award)
}

pub async fn revoke_award(
    c: &mut PgConnection,
    award_id: &str,
    change: ManualChange,
) -> Result<Award> {
    let seen = get_award(c, award_id).await?;
    let learner = lock_learner(c, &seen.learner).await?;
    // Read again under the learner's lock: an event batch may have revoked it meanwhile.
    let award = get_award(c, award_id).await?;
    manual::check_revoke(&award)?;
    let info = template_info(c, &award.template_id).await?;
    let mut changes = Changes::default();
    let revoked = changes.revoke(&info, &learner, award, &change.reason, change.at);
    changes.flush(c, 0).await.map_err(db)?;
    Ok(revoked)
}

/// The expiry sweep (see `AwardStore::notify_expired_awards`): one UPDATE … RETURNING marks the
/// awards in the transaction that writes their `badge.expired` events. Rows another transaction
/// holds are skipped (a concurrent sweep, an event batch revoking one): such a sweep never waits
/// on a lock, so it cannot deadlock with a batch, and an award marked by a sweep that committed
/// meanwhile fails the re-checked condition (`NOT expiry_notified`) and is left out.
pub async fn notify_expired(
    c: &mut PgConnection,
    now: chrono::DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Award>> {
    let found = sqlx::query(concat!(
        "UPDATE awards SET expiry_notified = true WHERE id IN (SELECT id FROM awards \
         WHERE expires_at IS NOT NULL AND NOT expiry_notified AND state <> 'revoked' \
         AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        award_columns!()
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut awards = rows::all(found, rows::award)?;
    awards.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
    let mut templates: HashMap<String, Template> = HashMap::new();
    let mut events = Vec::with_capacity(awards.len());
    for a in &awards {
        if !templates.contains_key(&a.template_id) {
            let t = config::template(c, &a.template_id).await?;
            templates.insert(a.template_id.clone(), t);
        }
        let stored = get_learner(c, &a.learner).await?;
        let learner = LearnerData {
            username: stored.username,
            lms_user_id: stored.lms_user_id,
            email: stored.email,
            name: stored.name,
            is_active: Some(true),
        };
        events.extend(accolade_domain::outbox::expired_event(
            a,
            &templates[&a.template_id],
            &learner,
        ));
    }
    if !events.is_empty() {
        sqlx::query(
            "INSERT INTO outgoing_events (id, event_type, award_id, time, payload) \
             SELECT e.id, e.event_type, e.award_id, e.time, e.payload::jsonb \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) \
             AS e(id, event_type, award_id, time, payload)",
        )
        .bind(events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.award_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| micros(e.time)).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| rows::json_str(&e.payload))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *c)
        .await
        .map_err(db)?;
    }
    Ok(awards)
}

/// Records a delivery result. A revoked award keeps its `revoked` state.
pub async fn record_delivery(c: &mut PgConnection, award_id: &str, d: Delivery) -> Result<Award> {
    let learner: String = sqlx::query_scalar("SELECT learner FROM awards WHERE id = $1")
        .bind(text(award_id))
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Award))?;
    lock_learner(c, &learner).await?;
    let row = sqlx::query(concat!(
        "UPDATE awards SET state = CASE WHEN state = 'revoked' THEN state ELSE $2 END, \
         issued_at = coalesce($3, issued_at), external_id = coalesce($4, external_id), \
         external_state = coalesce($5, external_state), updated_at = $6 WHERE id = $1 RETURNING ",
        award_columns!()
    ))
    .bind(text(award_id))
    .bind(d.state.as_str())
    .bind(d.issued_at.map(micros))
    .bind(opt_text(d.external_id.as_deref()))
    .bind(opt_text(d.external_state.as_deref()))
    .bind(micros(Utc::now()))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    rows::award(&row).map_err(db)
}
