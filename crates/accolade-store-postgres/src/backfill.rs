//! Backfills on PostgreSQL: the inbox scan of a preview (pages of rows, each handed to the
//! visitor on a blocking thread), backfill jobs, and apply steps. A step locks its learners'
//! rows in username order first, like an event batch (see `events.rs`), so a live batch for
//! one of them runs wholly before or after the step.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::backfill::{self, Held, Hit, Replayer, Verdict};
use accolade_domain::event::LearnerData;
use accolade_store::{
    Backfill, BackfillPhase, BackfillState, BackfillStep, Entity, InboxBounds, InboxScan,
    InboxVisitor, NewBackfill, Page, Paged, ScannedRow, StoreError,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::effects::Changes;
use crate::rows::{self, db, micros, text};

type Result<T> = std::result::Result<T, StoreError>;

/// Rows per page of a scan.
const PAGE: i64 = 5_000;

/// The columns [`row`] reads (a macro, so the SQL stays a constant built with `concat!`).
macro_rules! columns {
    () => {
        "id, template_id, state, phase, since, revoke, reason, requested_by, events_scanned, \
         events_total, learners_total, learners_done, awards_made, revocations_made, cursor, \
         cancel_requested, error, created_at, started_at, finished_at, updated_at, \
         phase_started_at, done_at_phase_start"
    };
}

fn row(r: &PgRow) -> std::result::Result<Backfill, sqlx::Error> {
    let state: String = r.try_get(2)?;
    let phase: String = r.try_get(3)?;
    Ok(Backfill {
        id: r.try_get(0)?,
        template_id: r.try_get(1)?,
        state: BackfillState::parse(&state).ok_or_else(|| rows::bad_value("state", &state))?,
        phase: BackfillPhase::parse(&phase).ok_or_else(|| rows::bad_value("phase", &phase))?,
        since: r.try_get(4)?,
        revoke: r.try_get(5)?,
        reason: r.try_get(6)?,
        requested_by: r.try_get(7)?,
        events_scanned: r.try_get(8)?,
        events_total: r.try_get(9)?,
        learners_total: r.try_get(10)?,
        learners_done: r.try_get(11)?,
        awards_made: r.try_get(12)?,
        revocations_made: r.try_get(13)?,
        cursor: r.try_get(14)?,
        cancel_requested: r.try_get(15)?,
        error: r.try_get(16)?,
        created_at: r.try_get(17)?,
        started_at: r.try_get(18)?,
        finished_at: r.try_get(19)?,
        updated_at: r.try_get(20)?,
        phase_started_at: r.try_get(21)?,
        done_at_phase_start: r.try_get(22)?,
    })
}

pub async fn inbox_bounds(c: &mut PgConnection) -> Result<InboxBounds> {
    let (first, last): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(min(seq), 0)::int8, coalesce(max(seq), 0)::int8 FROM inbox_events",
    )
    .fetch_one(c)
    .await
    .map_err(db)?;
    Ok(InboxBounds { first, last })
}

/// Reads the rows in pages (keyset on `seq`) and hands them to the visitor on a thread of the
/// scan's own (its CPU work stays off the async runtime, and the visitor may lower the thread's
/// priority), the next page being read while the visitor works on one.
pub async fn scan_inbox(
    c: &mut PgConnection,
    scan: InboxScan,
    mut visitor: Box<dyn InboxVisitor>,
) -> Result<Box<dyn InboxVisitor>> {
    type Page = Vec<(i64, String, String, DateTime<Utc>, String)>;
    let (pages, inbox) = std::sync::mpsc::sync_channel::<Page>(2);
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("inbox-scan".into())
        .spawn(move || {
            visitor.begin();
            for page in inbox {
                for (seq, learner, event_type, time, body) in &page {
                    visitor.visit(ScannedRow {
                        seq: *seq,
                        learner,
                        event_type,
                        time: *time,
                        body,
                    });
                }
            }
            let _ = done.send(visitor);
        })
        .map_err(|e| StoreError::Other(format!("cannot start a scan thread: {e}")))?;
    let mut after = scan.after;
    loop {
        let page: Page = sqlx::query_as(
            "SELECT seq, learner, event_type, time, body::text FROM inbox_events \
             WHERE seq > $1 AND seq <= $2 AND event_type = ANY($3) \
             AND ($4::timestamptz IS NULL OR time >= $4) ORDER BY seq LIMIT $5",
        )
        .bind(after)
        .bind(scan.until)
        .bind(&scan.event_types)
        .bind(scan.since)
        .bind(PAGE)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        let full = page.len() as i64 == PAGE;
        if let Some(last) = page.last() {
            after = last.0;
            // A full channel waits for the visitor (back-pressure), off the async runtime.
            let pages = pages.clone();
            tokio::task::spawn_blocking(move || pages.send(page))
                .await
                .map_err(|e| StoreError::Other(format!("scan hand-over failed: {e}")))?
                .map_err(|_| StoreError::Other("the scan thread stopped".into()))?;
        }
        if !full {
            break;
        }
    }
    drop(pages);
    finished
        .await
        .map_err(|_| StoreError::Other("the scan thread panicked".into()))
}

pub async fn latest_awards(
    c: &mut PgConnection,
    template_id: &str,
) -> Result<HashMap<String, Held>> {
    let found: Vec<(String, i64, bool, bool)> = sqlx::query_as(
        "SELECT DISTINCT ON (learner) learner, episode, state = 'revoked', event_id IS NULL \
         FROM awards WHERE template_id = $1 ORDER BY learner, episode DESC",
    )
    .bind(text(template_id))
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(found
        .into_iter()
        .map(|(learner, episode, revoked, manual)| {
            (
                learner,
                Held {
                    episode,
                    revoked,
                    manual,
                },
            )
        })
        .collect())
}

pub async fn event_ids(c: &mut PgConnection, seqs: &[i64]) -> Result<HashMap<i64, String>> {
    let found: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, id FROM inbox_events WHERE seq = ANY($1)")
            .bind(seqs)
            .fetch_all(c)
            .await
            .map_err(db)?;
    Ok(found.into_iter().collect())
}

pub async fn create(
    c: &mut PgConnection,
    new: NewBackfill,
    now: DateTime<Utc>,
) -> Result<Backfill> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM templates WHERE id = $1)")
        .bind(text(&new.template_id))
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
    if !exists {
        return Err(StoreError::not_found(Entity::Template));
    }
    let id = accolade_domain::ids::uuid();
    let inserted = sqlx::query(
        "INSERT INTO backfills (id, template_id, state, since, revoke, reason, requested_by, \
         created_at, updated_at) VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $7) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(text(&new.template_id))
    .bind(new.since.map(micros))
    .bind(new.revoke)
    .bind(text(&new.reason))
    .bind(text(&new.requested_by))
    .bind(micros(now))
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict {
            code: "backfill_running",
            detail: "a backfill of this template is already queued or running".into(),
        });
    }
    get(c, &id).await
}

pub async fn get(c: &mut PgConnection, id: &str) -> Result<Backfill> {
    let found = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM backfills WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    found
        .as_ref()
        .map(row)
        .transpose()
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Backfill))
}

pub async fn list(
    c: &mut PgConnection,
    template_id: Option<&str>,
    page: Page,
) -> Result<Paged<Backfill>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM backfills WHERE $1::text IS NULL OR template_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(template_id.map(text))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, row)?))
}

pub async fn cancel(c: &mut PgConnection, id: &str, now: DateTime<Utc>) -> Result<Backfill> {
    let found = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM backfills WHERE id = $1 FOR UPDATE"
    ))
    .bind(text(id))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let b = found
        .as_ref()
        .map(row)
        .transpose()
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Backfill))?;
    if b.state.is_final() {
        return Err(StoreError::Conflict {
            code: "backfill_finished",
            detail: format!("the backfill has ended ({})", b.state.as_str()),
        });
    }
    sqlx::query(
        "UPDATE backfills SET cancel_requested = true, updated_at = $2, \
         state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END, \
         finished_at = CASE WHEN state = 'queued' THEN $2 ELSE finished_at END WHERE id = $1",
    )
    .bind(text(id))
    .bind(micros(now))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    get(c, id).await
}

pub async fn claim(
    c: &mut PgConnection,
    holder: &str,
    only: Option<&str>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE backfills SET state = 'running', holder = $1, lease_until = $3, \
         started_at = coalesce(started_at, $2), updated_at = $2, phase = 'scanning', \
         events_scanned = 0, phase_started_at = $2, done_at_phase_start = learners_done \
         WHERE id = ( \
         SELECT id FROM backfills WHERE ($4::text IS NULL OR id = $4) AND (state = 'queued' \
         OR (state = 'running' AND (lease_until IS NULL OR lease_until <= $2))) \
         ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id",
    )
    .bind(text(holder))
    .bind(micros(now))
    .bind(micros(lease_until))
    .bind(only.map(text))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    match id {
        Some(id) => get(c, &id).await.map(Some),
        None => Ok(None),
    }
}

/// Locks the backfill row and says whether `holder` holds it running.
async fn holds(c: &mut PgConnection, id: &str, holder: &str) -> Result<bool> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT state = 'running' AND holder = $2 FROM backfills WHERE id = $1 FOR UPDATE",
    )
    .bind(text(id))
    .bind(text(holder))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    Ok(found == Some(true))
}

#[allow(clippy::too_many_arguments)]
pub async fn progress(
    c: &mut PgConnection,
    id: &str,
    holder: &str,
    phase: BackfillPhase,
    events_scanned: i64,
    events_total: i64,
    learners_total: i64,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    if !holds(c, id, holder).await? {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE backfills SET \
         phase_started_at = CASE WHEN phase = $2 THEN phase_started_at ELSE $7 END, \
         done_at_phase_start = CASE WHEN phase = $2 THEN done_at_phase_start ELSE learners_done END, \
         phase = $2, events_scanned = $3, events_total = $4, \
         learners_total = $5, lease_until = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(text(id))
    .bind(phase.as_str())
    .bind(events_scanned)
    .bind(events_total)
    .bind(learners_total)
    .bind(micros(lease_until))
    .bind(micros(now))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    get(c, id).await.map(Some)
}

pub async fn finish(
    c: &mut PgConnection,
    id: &str,
    holder: &str,
    state: BackfillState,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    if !holds(c, id, holder).await? {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE backfills SET state = $2, error = $3, holder = NULL, lease_until = NULL, \
         finished_at = $4, updated_at = $4 WHERE id = $1",
    )
    .bind(text(id))
    .bind(state.as_str())
    .bind(error.as_deref().map(text))
    .bind(micros(now))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    get(c, id).await.map(Some)
}

/// A learner's stored event of the template's types, for the replay.
struct Stored {
    id: String,
    time: DateTime<Utc>,
    hit: Hit,
}

/// One apply step (see `BackfillStore::backfill_apply`).
pub async fn apply(
    c: &mut PgConnection,
    id: &str,
    holder: &str,
    learners: Vec<String>,
    replayer: Arc<Replayer>,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<BackfillStep>> {
    if !holds(c, id, holder).await? {
        return Ok(None);
    }
    let job = get(c, id).await?;
    let info = replayer.info.clone();
    // The learners' rows, locked in username order as event batches lock them.
    type LearnerRow = (String, Option<i64>, Option<String>, Option<String>);
    let data: Vec<LearnerRow> = sqlx::query_as(
        "SELECT username, lms_user_id, email, name FROM learners WHERE username = ANY($1) \
         ORDER BY username COLLATE \"C\" FOR UPDATE",
    )
    .bind(&learners)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let data: HashMap<String, LearnerData> = data
        .into_iter()
        .map(|(username, lms_user_id, email, name)| {
            (
                username.clone(),
                LearnerData {
                    username,
                    lms_user_id,
                    email,
                    name,
                    is_active: Some(true),
                },
            )
        })
        .collect();
    let found: Vec<(String, i64, String, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT learner, seq, id, event_type, time, body::text FROM inbox_events \
         WHERE learner = ANY($1) AND event_type = ANY($2) \
         AND ($3::timestamptz IS NULL OR time >= $3) ORDER BY learner, time, seq",
    )
    .bind(&learners)
    .bind(replayer.event_types())
    .bind(job.since)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let had: Vec<(String, String)> = sqlx::query_as(
        "SELECT learner, requirement_id FROM fulfillments \
         WHERE learner = ANY($1) AND template_id = $2",
    )
    .bind(&learners)
    .bind(text(&info.id))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    // Replaying is CPU work: off the async runtime.
    let r = replayer.clone();
    let mut events: HashMap<String, Vec<Stored>> = tokio::task::spawn_blocking(move || {
        let mut out: HashMap<String, Vec<Stored>> = HashMap::new();
        for (learner, _seq, id, event_type, time, body) in found {
            let payload = r
                .paths()
                .payload_of_event(&body)
                .map_err(|e| StoreError::Other(format!("stored event is not JSON: {e}")))?;
            let hit = r.hit(&event_type, &payload);
            out.entry(learner)
                .or_default()
                .push(Stored { id, time, hit });
        }
        Ok::<_, StoreError>(out)
    })
    .await
    .map_err(|e| StoreError::Other(format!("replay panicked: {e}")))??;
    let mut had_by: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (l, r) in &had {
        had_by.entry(l.as_str()).or_default().insert(r.as_str());
    }
    let pairs = learners
        .iter()
        .map(|l| (l.as_str(), info.id.as_str()))
        .collect();
    let mut changes = Changes::default();
    changes.preload_latest(c, &pairs).await?;
    let mut step = BackfillStep::default();
    for learner in &learners {
        let stored = events.remove(learner).unwrap_or_default();
        step.learners += 1;
        step.events += stored.len() as i64;
        let outcome = replayer.replay(stored.iter().map(|e| &e.hit));
        let want: HashMap<&str, &Stored> = outcome
            .fulfilled_by
            .iter()
            .map(|(r, i)| (r.as_str(), &stored[*i]))
            .collect();
        let had = had_by.remove(learner.as_str()).unwrap_or_default();
        for r in replayer.requirement_ids(&replayer.bits_of(had.iter().copied())) {
            if !want.contains_key(r) {
                changes.unfulfil(learner, &info.id, r);
            }
        }
        for (r, e) in &want {
            if !had.contains(*r) {
                changes.fulfil(learner, &info.id, r, &e.id, e.time);
            }
        }
        let latest = changes.latest_award(c, &info.id, learner).await?;
        let held = latest.as_ref().map(|a| Held {
            episode: a.episode,
            revoked: a.state == AwardState::Revoked,
            manual: a.event_id.is_none(),
        });
        let Some(learner_data) = data.get(learner) else {
            continue;
        };
        match backfill::verdict(&outcome, held, info.allow_reaward) {
            (Verdict::Award, episode) => {
                // A replay that holds the badge names the event that completed it.
                let Some(by) = outcome.completed_by.map(|i| &stored[i]) else {
                    continue;
                };
                changes.award(
                    &info,
                    learner_data,
                    episode,
                    by.time,
                    Some(&by.id),
                    Some(id),
                    now,
                );
                step.awarded += 1;
            }
            (Verdict::Revoke, _) if job.revoke => {
                // A learner who holds the badge has an award.
                let Some(award) = latest else { continue };
                let reason = backfill::revocation_reason(id);
                changes.revoke(&info, learner_data, award, &reason, now);
                step.revoked += 1;
            }
            _ => {}
        }
    }
    changes.flush(c, 0).await.map_err(db)?;
    let cancel: bool = sqlx::query_scalar(
        "UPDATE backfills SET cursor = coalesce($2, cursor), learners_done = learners_done + $3, \
         awards_made = awards_made + $4, revocations_made = revocations_made + $5, \
         lease_until = $6, updated_at = $7 WHERE id = $1 RETURNING cancel_requested",
    )
    .bind(text(id))
    .bind(learners.last())
    .bind(step.learners)
    .bind(step.awarded)
    .bind(step.revoked)
    .bind(micros(lease_until))
    .bind(micros(now))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    step.cancel_requested = cancel;
    Ok(Some(step))
}
