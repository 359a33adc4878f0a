//! The event path: inbox insert (dedup by id), rules evaluation, progress, awards and revocations
//! with their outbox rows, all in the caller's single READ COMMITTED transaction.
//!
//! Several instances may process events concurrently on one database. A batch therefore takes
//! its locks in a fixed global order, which rules out deadlocks between batches:
//!
//! 1. the configuration lock, shared (see `config.rs`), so the rules cannot change mid-batch;
//! 2. the inbox rows, inserted in event-id order (a redelivered event makes the second batch wait
//!    for the first and then count it as a duplicate);
//! 3. the learner rows, upserted in username order;
//! 4. everything else (fulfilments, awards, outbox rows), which only holders of the learner's
//!    lock write.
//!
//! Sequence numbers still follow arrival order: the batch draws them in input order before the
//! rows are sorted by id. A batch that loses a race anyway (serialization failure, deadlock with
//! some other client, the `awards_one_active` index refusing a duplicate) fails as a whole with
//! `StoreError::Other`, and the caller retries it.
//!
//! One instance runs a large batch the same way: split into learner lanes
//! ([`split_into_lanes`]), each its own transaction on its own connection, at once. Lanes share
//! no learner, so they meet only on the configuration lock (shared) and the `counters` rows,
//! which every lane locks in name order (award totals, then the event total; see
//! `effects::FLUSH`) in its last statement and holds only until its commit. No lane waits for another outside the database, so every wait is one
//! PostgreSQL can see and a deadlock it would break.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::decision::{self, Decision, Latest};
use accolade_domain::engine::{step, RuleIndex, TemplateHit, TemplateInfo};
use accolade_domain::event::{IncomingEvent, LearnerData};
use accolade_store::{
    EventOutcome, IndexCache, Page, Paged, RejectedEvent, StoreError, StoredEvent,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::config;
use crate::effects::{learner_upsert_on_conflict, Changes};
use crate::rows::{
    self, db, json_has_nul, micros, opt_text, scrub_json, sqlstate, stored_event_columns, text,
};

type Result<T> = std::result::Result<T, StoreError>;

/// The index for the configuration committed as of this transaction (which holds the shared
/// configuration lock, so the version and the rows it loads agree).
/// The index for configuration `version`, read in this transaction (which holds the shared
/// configuration lock, so the version and the rows it loads agree).
async fn index_at(
    c: &mut PgConnection,
    cache: &IndexCache,
    version: i64,
) -> Result<Arc<RuleIndex>> {
    if let Some(index) = cache.get_if(version) {
        return Ok(index);
    }
    let index = Arc::new(RuleIndex::build(version, &config::active_configs(c).await?));
    tracing::info!(config.version = version, "rules index rebuilt");
    cache.set(index.clone());
    Ok(index)
}

/// A batch split into learner lanes (see [`split_into_lanes`]).
pub struct Lanes {
    /// Per lane: the positions in the input of its events, and the events, in input order.
    pub lanes: Vec<(Vec<usize>, Vec<IncomingEvent>)>,
    /// Positions of repeats of an id seen earlier in the batch: duplicates, whatever the lanes do.
    pub repeats: Vec<usize>,
}

/// Splits a batch into at most `lanes` parts by learner, so that each part can be processed in a
/// transaction of its own, concurrently with the others. A learner's events all go to one lane,
/// in input order, so their order holds; two lanes share no learner and so never wait for each
/// other's learner locks. A repeat of an id earlier in the batch goes to no lane (the first
/// occurrence counts, as in one transaction), so lanes cannot race over an id either. Empty
/// lanes are dropped.
pub fn split_into_lanes(events: Vec<IncomingEvent>, lanes: usize) -> Lanes {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let lanes = lanes.max(1);
    let events = match normalize(&events) {
        Cow::Borrowed(_) => events,
        Cow::Owned(clean) => clean,
    };
    // Fixed keys: the same learner lands in the same lane in every batch (not needed for
    // correctness, which only asks for one lane per learner within a batch, but it keeps a
    // learner's rows on one connection's cache).
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let mut seen: HashSet<String> = HashSet::with_capacity(events.len());
    let mut out: Vec<(Vec<usize>, Vec<IncomingEvent>)> =
        (0..lanes).map(|_| (Vec::new(), Vec::new())).collect();
    let mut repeats = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        if !seen.insert(e.id.clone()) {
            repeats.push(i);
            continue;
        }
        let lane = (hasher.hash_one(e.learner.username.as_str()) % lanes as u64) as usize;
        out[lane].0.push(i);
        out[lane].1.push(e);
    }
    out.retain(|(positions, _)| !positions.is_empty());
    Lanes {
        lanes: out,
        repeats,
    }
}

/// Puts the lanes' outcomes back in input order (`total` events; repeats are duplicates).
pub fn merge_lanes(
    total: usize,
    repeats: &[usize],
    lanes: Vec<(Vec<usize>, Vec<EventOutcome>)>,
) -> Vec<EventOutcome> {
    let mut out: Vec<Option<EventOutcome>> = (0..total).map(|_| None).collect();
    for &i in repeats {
        out[i] = Some(EventOutcome::Duplicate);
    }
    for (positions, outcomes) in lanes {
        for (i, o) in positions.into_iter().zip(outcomes) {
            out[i] = Some(o);
        }
    }
    out.into_iter()
        .map(|o| o.unwrap_or(EventOutcome::Duplicate))
        .collect()
}

/// Processes one batch in the current transaction, which must have begun with
/// [`config::BEGIN_EVENT_BATCH`] (the shared configuration lock). Round trips, the cost that
/// dominates small batches: the inbox with the learners' locks and the configuration version,
/// then everyone's progress, then the writes (plus one when existing awards are revoked).
pub async fn process(
    c: &mut PgConnection,
    events: &[IncomingEvent],
    cache: &IndexCache,
) -> Result<Vec<EventOutcome>> {
    let events = &*normalize(events);
    let now = micros(Utc::now());
    let Some((version, accepted)) = insert_inbox(c, events, now).await? else {
        return Ok(Vec::new());
    };
    let fresh = || {
        events
            .iter()
            .zip(&accepted)
            .filter(|(_, a)| **a)
            .map(|(e, _)| e)
    };
    let index = index_at(c, cache, version).await?;

    let hits: Vec<Vec<TemplateHit<'_>>> = events
        .iter()
        .zip(&accepted)
        .map(|(e, a)| {
            if *a {
                index.hits(&e.event_type, &e.payload, e.matches.as_ref())
            } else {
                Vec::new()
            }
        })
        .collect();
    let pairs: BTreeSet<(&str, &str)> = events
        .iter()
        .zip(&hits)
        .flat_map(|(e, hs)| {
            hs.iter()
                .map(|h| (e.learner.username.as_str(), h.template.id.as_str()))
        })
        .collect();
    let mut changes = Changes::default();
    let mut progress = changes.load_progress(c, &pairs).await?;

    let mut outcomes = Vec::with_capacity(events.len());
    for ((ev, is_new), ev_hits) in events.iter().zip(&accepted).zip(&hits) {
        if !is_new {
            outcomes.push(EventOutcome::Duplicate);
            continue;
        }
        let learner = ev.learner.username.as_str();
        let mut awarded = Vec::new();
        let mut revoked = Vec::new();
        for hit in ev_hits {
            let info = hit.template;
            let before = progress
                .entry((learner.to_string(), info.id.clone()))
                .or_default();
            let s = step(hit, before);
            for r in &s.added {
                before.insert(r.clone());
                changes.fulfil(learner, &info.id, r, &ev.id, ev.time);
            }
            for r in &s.removed {
                before.remove(r);
                changes.unfulfil(learner, &info.id, r);
            }
            // What the step means for the badge (accolade_domain::decision); the learner's
            // award history is read only when the answer depends on it.
            let award = match Decision::of(&s, !hit.fulfilled.is_empty()) {
                Decision::Award => true,
                Decision::AwardIfNeverHeld => {
                    changes.latest_award(c, &info.id, learner).await?.is_none()
                }
                Decision::Revoke => {
                    let reason = decision::revocation_reason(&ev.id);
                    let ended =
                        revoke_current(c, &mut changes, info, &ev.learner, &reason, now).await?;
                    revoked.extend(ended);
                    false
                }
                Decision::Nothing => false,
            };
            if award {
                let made = award_on_completion(c, &mut changes, info, &ev.learner, ev, now).await?;
                awarded.extend(made);
            }
        }
        outcomes.push(EventOutcome::Accepted { awarded, revoked });
    }
    // The dashboard's event total goes with the other writes.
    changes
        .flush(c, fresh().count() as i64)
        .await
        .map_err(batch_conflict)?;
    Ok(outcomes)
}

/// The events as PostgreSQL will store them: NUL in any text becomes U+FFFD (see
/// [`rows::text`]), before dedup and rule matching, so both see what the database sees.
fn normalize(events: &[IncomingEvent]) -> Cow<'_, [IncomingEvent]> {
    let has_nul = |e: &IncomingEvent| {
        [
            &e.id,
            &e.event_type,
            &e.source,
            &e.data_key,
            &e.learner.username,
        ]
        .iter()
        .any(|s| s.contains('\0'))
            || [&e.learner.email, &e.learner.name]
                .iter()
                .any(|s| s.as_deref().is_some_and(|s| s.contains('\0')))
            || json_has_nul(&e.payload)
            || e.raw.contains("\\u0000")
    };
    if !events.iter().any(has_nul) {
        return Cow::Borrowed(events);
    }
    let clean = |s: &str| text(s).into_owned();
    Cow::Owned(
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.id = clean(&e.id);
                e.event_type = clean(&e.event_type);
                e.source = clean(&e.source);
                e.data_key = clean(&e.data_key);
                e.learner.username = clean(&e.learner.username);
                e.learner.email = e.learner.email.as_deref().map(clean);
                e.learner.name = e.learner.name.as_deref().map(clean);
                scrub_json(&mut e.payload);
                // The stored text is serialised again from the cleaned fields.
                e.raw = String::new();
                e
            })
            .collect(),
    )
}

/// A failed batch write; races with another instance get a message that says so.
fn batch_conflict(e: sqlx::Error) -> StoreError {
    match sqlstate(&e).as_deref() {
        Some("23505") => StoreError::Other(format!(
            "event batch raced with another transaction (duplicate active award refused); retry: {e}"
        )),
        Some("40001" | "40P01") => {
            StoreError::Other(format!("event batch raced with another transaction; retry: {e}"))
        }
        _ => db(e),
    }
}

/// Inserts the batch into the inbox and upserts (and so row-locks) the learners of the events
/// that are new, in one statement; returns the configuration version and, per input event,
/// whether it is new (false for ids already stored and for repeats within the batch, of which
/// the first occurrence counts). `None` for an empty batch.
///
/// The version is read in this statement's snapshot, taken after the configuration lock (held
/// since `BEGIN`), so it is the version of the rules this batch runs under. The learners are
/// written as [`crate::effects::lock_learners`] does: in username byte order (so transactions
/// sharing learners queue instead of deadlocking), each field the last non-empty value in batch
/// order, a row whose data does not change locked but not rewritten. Progress is read in the
/// next statement, whose snapshot follows the locks.
async fn insert_inbox(
    c: &mut PgConnection,
    events: &[IncomingEvent],
    now: DateTime<Utc>,
) -> Result<Option<(i64, Vec<bool>)>> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
    let first: Vec<bool> = events.iter().map(|e| seen.insert(e.id.as_str())).collect();
    let unique = || {
        events
            .iter()
            .zip(&first)
            .filter(|(_, f)| **f)
            .map(|(e, _)| e)
    };
    if seen.is_empty() {
        return Ok(None);
    }
    let (version, inserted): (i64, Vec<String>) = sqlx::query_as(INSERT_INBOX)
        .bind(unique().map(|e| e.id.as_str()).collect::<Vec<_>>())
        .bind(unique().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(
            unique()
                .map(|e| e.learner.username.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(unique().map(|e| micros(e.time)).collect::<Vec<_>>())
        .bind(unique().map(|e| e.body_text()).collect::<Vec<_>>())
        .bind(now)
        .bind(unique().map(|e| e.learner.lms_user_id).collect::<Vec<_>>())
        .bind(
            unique()
                .map(|e| e.learner.email.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            unique()
                .map(|e| e.learner.name.as_deref())
                .collect::<Vec<_>>(),
        )
        .fetch_one(c)
        .await
        .map_err(batch_conflict)?;
    let inserted: HashSet<String> = inserted.into_iter().collect();
    Ok(Some((
        version,
        events
            .iter()
            .zip(first)
            .map(|(e, f)| f && inserted.contains(&e.id))
            .collect(),
    )))
}

/// See [`insert_inbox`]. Inbox rows are inserted in id order and learners in username order
/// (`COLLATE "C"`, byte order), the lock order every writer keeps; `seq` follows batch order.
pub(crate) const INSERT_INBOX: &str = concat!(
    "WITH \
    batch AS (SELECT nextval('inbox_events_seq') AS seq, b.* \
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], \
        $7::int8[], $8::text[], $9::text[]) \
        WITH ORDINALITY AS b(id, event_type, learner, time, body, lms_user_id, email, name, position) \
        ORDER BY b.position), \
    ins AS (INSERT INTO inbox_events (seq, id, event_type, learner, time, received_at, body) \
        SELECT seq, id, event_type, learner, time, $6, body FROM batch \
        ORDER BY id COLLATE \"C\" \
        ON CONFLICT (id) DO NOTHING RETURNING id), \
    fresh AS (SELECT b.* FROM batch b JOIN ins USING (id)), \
    merged AS (SELECT learner AS username, \
        (array_agg(lms_user_id ORDER BY position DESC) FILTER (WHERE lms_user_id IS NOT NULL))[1] AS lms_user_id, \
        (array_agg(email ORDER BY position DESC) FILTER (WHERE email IS NOT NULL))[1] AS email, \
        (array_agg(name ORDER BY position DESC) FILTER (WHERE name IS NOT NULL))[1] AS name \
        FROM fresh GROUP BY learner), \
    learners_locked AS (INSERT INTO learners (username, lms_user_id, email, name, created_at, updated_at) \
        SELECT username, lms_user_id, email, name, $6, $6 FROM merged \
        ORDER BY username COLLATE \"C\" ",
    learner_upsert_on_conflict!(),
    ") SELECT (SELECT version FROM config_state WHERE id = 1), ARRAY(SELECT id FROM ins)"
);

/// Awards on an incomplete→complete edge, unless the learner already holds the badge or the
/// template forbids earning it again after a revocation.
async fn award_on_completion(
    c: &mut PgConnection,
    changes: &mut Changes,
    info: &TemplateInfo,
    learner: &LearnerData,
    ev: &IncomingEvent,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let latest = changes
        .latest_award(c, &info.id, &learner.username)
        .await?
        .as_ref()
        .map(Latest::of);
    let Some(episode) = decision::episode_on_completion(latest, info.allow_reaward) else {
        return Ok(None);
    };
    Ok(Some(
        changes
            .award(info, learner, episode, ev.time, Some(&ev.id), None, now)
            .id,
    ))
}

/// Revokes the learner's current award of the template, if there is one.
async fn revoke_current(
    c: &mut PgConnection,
    changes: &mut Changes,
    info: &TemplateInfo,
    learner: &LearnerData,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    match changes.latest_award(c, &info.id, &learner.username).await? {
        Some(a) if a.state != AwardState::Revoked => {
            Ok(Some(changes.revoke(info, learner, a, reason, now).id))
        }
        _ => Ok(None),
    }
}

pub async fn record_rejected(c: &mut PgConnection, rejected: &[RejectedEvent]) -> Result<()> {
    if rejected.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rejected_events (event_id, event_type, code, detail, source, received_at) \
         SELECT r.event_id, r.event_type, r.code, r.detail, r.source, r.received_at \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
         WITH ORDINALITY AS r(event_id, event_type, code, detail, source, received_at, position) \
         ORDER BY r.position",
    )
    .bind(rejected.iter().map(|r| opt_text(r.event_id.as_deref())).collect::<Vec<_>>())
    .bind(rejected.iter().map(|r| opt_text(r.event_type.as_deref())).collect::<Vec<_>>())
    .bind(rejected.iter().map(|r| text(&r.code)).collect::<Vec<_>>())
    .bind(rejected.iter().map(|r| text(&r.detail)).collect::<Vec<_>>())
    .bind(rejected.iter().map(|r| text(&r.source)).collect::<Vec<_>>())
    .bind(rejected.iter().map(|r| micros(r.received_at)).collect::<Vec<_>>())
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn list_events(
    c: &mut PgConnection,
    learner: Option<&str>,
    page: Page,
) -> Result<Paged<StoredEvent>> {
    let found = match learner {
        Some(l) => {
            sqlx::query(concat!(
                "SELECT ",
                stored_event_columns!(),
                " FROM inbox_events WHERE learner = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3"
            ))
            .bind(text(l))
            .bind(page.fetch())
            .bind(page.offset as i64)
            .fetch_all(c)
            .await
        }
        None => {
            sqlx::query(concat!(
                "SELECT ",
                stored_event_columns!(),
                " FROM inbox_events ORDER BY seq DESC LIMIT $1 OFFSET $2"
            ))
            .bind(page.fetch())
            .bind(page.offset as i64)
            .fetch_all(c)
            .await
        }
    }
    .map_err(db)?;
    Ok(page.finish(rows::all(found, rows::stored_event)?))
}

pub async fn list_rejected(c: &mut PgConnection, page: Page) -> Result<Paged<RejectedEvent>> {
    let found = sqlx::query(
        "SELECT event_id, event_type, code, detail, source, received_at FROM rejected_events \
         ORDER BY seq DESC LIMIT $1 OFFSET $2",
    )
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, rows::rejected)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn event(id: &str, learner: &str) -> IncomingEvent {
        IncomingEvent::from_json(&json!({
            "id": id,
            "event_type": "org.openedx.learning.course.passing.status.updated.v1",
            "time": "2026-05-01T10:00:00Z",
            "source": "test",
            "data": {"course_passing_status": {
                "is_passing": true,
                "user": {"id": 7, "is_active": true,
                         "pii": {"username": learner, "email": null, "name": null}},
                "course": {"course_key": "course-v1:A+B+C"}
            }}
        }))
        .unwrap()
    }

    #[test]
    fn lanes_keep_each_learner_whole_and_in_order_and_drop_repeats() {
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.push(event(&format!("e{i}"), &format!("learner{}", i % 17)));
        }
        // A repeat of an earlier id, for another learner: the first occurrence counts.
        batch.push(event("e3", "someone-else"));
        let split = split_into_lanes(batch, 4);
        assert_eq!(split.repeats, vec![200]);
        assert!(split.lanes.len() > 1 && split.lanes.len() <= 4);
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut seen = 0;
        for (lane, (positions, events)) in split.lanes.iter().enumerate() {
            assert_eq!(positions.len(), events.len());
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "input order kept"
            );
            for (p, e) in positions.iter().zip(events) {
                assert_eq!(e.id, format!("e{p}"));
                let first = *owner.entry(e.learner.username.clone()).or_insert(lane);
                assert_eq!(first, lane, "{} is in two lanes", e.learner.username);
                seen += 1;
            }
        }
        assert_eq!(seen, 200);
    }

    #[test]
    fn one_lane_or_one_learner_is_the_whole_batch() {
        let batch: Vec<_> = (0..10).map(|i| event(&format!("e{i}"), "amy")).collect();
        let split = split_into_lanes(batch.clone(), 8);
        assert_eq!(split.lanes.len(), 1);
        assert_eq!(split.lanes[0].0, (0..10).collect::<Vec<_>>());
        let mixed: Vec<_> = (0..10)
            .map(|i| event(&format!("e{i}"), &format!("l{i}")))
            .collect();
        assert_eq!(split_into_lanes(mixed, 1).lanes.len(), 1);
    }

    #[test]
    fn merged_outcomes_are_in_input_order() {
        let accepted = |id: &str| EventOutcome::Accepted {
            awarded: vec![id.to_string()],
            revoked: vec![],
        };
        let merged = merge_lanes(
            5,
            &[3],
            vec![
                (vec![1, 4], vec![accepted("b"), EventOutcome::Duplicate]),
                (vec![0, 2], vec![accepted("a"), accepted("c")]),
            ],
        );
        assert_eq!(
            merged,
            vec![
                accepted("a"),
                accepted("b"),
                accepted("c"),
                EventOutcome::Duplicate,
                EventOutcome::Duplicate
            ]
        );
    }
}
