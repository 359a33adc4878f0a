//! The event path: inbox insert (dedup by id), rules evaluation, progress, awards and revocations
//! with their outbox rows, all in the caller's single transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use accolade_domain::award::{Award, AwardState};
use accolade_domain::decision::{self, Decision, Latest};
use accolade_domain::engine::{step_from, RuleIndex, TemplateInfo};
use accolade_domain::event::{IncomingEvent, LearnerData};
use accolade_domain::outbox::{effects_of, NewJob, OutgoingEvent};
use accolade_store::{EventOutcome, Page, Paged, RejectedEvent, StoreError, StoredEvent};
use chrono::{DateTime, Utc};
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};

use crate::config;
use crate::progress_cache::ProgressCache;
use crate::rows::{self, db, ts};

type Result<T> = std::result::Result<T, StoreError>;

/// The statements of the event path, each taken from rusqlite's statement cache once per batch
/// and held until the batch ends. `prepare_cached` hashes and compares the whole SQL text to take
/// a statement out of the cache and again to put it back; at several statements per event that
/// was a twentieth of the single writer's time.
pub struct Statements<'c> {
    c: &'c Connection,
    held: [Option<CachedStatement<'c>>; SQL.len()],
}

#[derive(Clone, Copy)]
enum Sql {
    InsertEvent,
    LastEventSeq,
    SetHead,
    UpsertLearner,
    AllFulfilled,
    InsertFulfilment,
    DeleteFulfilment,
    LatestEpisode,
    LatestAward,
    InsertAward,
    RevokeAward,
    InsertJob,
    InsertOutgoing,
}

/// The text of each [`Sql`], in its order.
const SQL: [&str; 13] = [
    "INSERT INTO inbox_events (id, event_type, learner, time, received_at, body, prev_seq) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
    "SELECT last_event_seq FROM learners WHERE username = ?1",
    "UPDATE learners SET last_event_seq = ?2 WHERE username = ?1",
    "INSERT INTO learners (username, lms_user_id, email, name, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (username) DO UPDATE SET \
     lms_user_id = coalesce(excluded.lms_user_id, lms_user_id), \
     email = coalesce(excluded.email, email), name = coalesce(excluded.name, name), \
     updated_at = excluded.updated_at",
    "SELECT template_id, requirement_id FROM fulfillments WHERE learner = ?1",
    "INSERT INTO fulfillments (learner, template_id, requirement_id, event_id, fulfilled_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    "DELETE FROM fulfillments WHERE learner = ?1 AND template_id = ?2 AND requirement_id = ?3",
    "SELECT episode, state = 'revoked' FROM awards WHERE learner = ?2 AND template_id = ?1 \
     ORDER BY episode DESC LIMIT 1",
    LATEST_AWARD,
    "INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at, issued_at, event_id, updated_at, expires_at, backfill_id) \
     VALUES (?1, ?2, ?3, ?4, 'awarded', ?5, ?6, ?7, ?8, ?6, ?9, ?10)",
    "UPDATE awards SET state = 'revoked', revoked_at = ?2, revoke_reason = ?3, updated_at = ?2 WHERE id = ?1",
    "INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)",
    "INSERT INTO outgoing_events (id, event_type, award_id, time, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
];

const LATEST_AWARD: &str = concat!(
    "SELECT ",
    crate::rows::award_columns!(),
    " FROM awards WHERE learner = ?2 AND template_id = ?1 ORDER BY episode DESC LIMIT 1"
);

impl<'c> Statements<'c> {
    pub fn new(c: &'c Connection) -> Self {
        Statements {
            c,
            held: Default::default(),
        }
    }

    fn get(&mut self, which: Sql) -> Result<&mut CachedStatement<'c>> {
        let slot = &mut self.held[which as usize];
        if slot.is_none() {
            *slot = Some(self.c.prepare_cached(SQL[which as usize]).map_err(db)?);
        }
        Ok(slot.as_mut().expect("prepared just above"))
    }
}

/// The index for the configuration committed as of this transaction.
/// The index for the configuration committed as of this transaction: `cached` when its version
/// is current, else a rebuilt one (which the caller stores in its `IndexCache`).
pub fn current_index(c: &Connection, cached: Arc<RuleIndex>) -> Result<Arc<RuleIndex>> {
    let version = config::version(c)?;
    if cached.version == version {
        return Ok(cached);
    }
    let index = Arc::new(RuleIndex::build(version, &config::active_configs(c)?));
    tracing::info!(config.version = version, "rules index rebuilt");
    Ok(index)
}

pub fn process(
    c: &Connection,
    events: &[IncomingEvent],
    index: &RuleIndex,
    known_learners: &HashMap<String, LearnerData>,
    new_learners: &mut HashMap<String, LearnerData>,
    progress: &mut ProgressCache,
) -> Result<Vec<EventOutcome>> {
    let now = Utc::now();
    let now_text = ts(now);
    let mut outcomes = Vec::with_capacity(events.len());
    let mut st = Statements::new(c);
    // Each new event links to the learner's previous one; the heads that moved are written to
    // `learners` once per learner at the end (see migration 0007).
    let mut moved: HashSet<&str> = HashSet::new();
    let (mut awards, mut revocations) = (0, 0);
    for ev in events {
        let username = ev.learner.username.as_str();
        let prev = progress.head(username, || last_event_seq(&mut st, username))?;
        let inserted = st
            .get(Sql::InsertEvent)?
            .execute(params![
                ev.id,
                ev.event_type,
                username,
                ts(ev.time),
                now_text,
                ev.body_text(),
                prev
            ])
            .map_err(db)?;
        if inserted == 0 {
            outcomes.push(EventOutcome::Duplicate);
            continue;
        }
        progress.set_head(username, c.last_insert_rowid());
        moved.insert(username);
        // Learner rows are refreshed only when their data changed since this process last
        // wrote them (the caller adds `new_learners` to its cache after the commit).
        let username = &ev.learner.username;
        let last_written = new_learners
            .get(username)
            .or_else(|| known_learners.get(username));
        if last_written != Some(&ev.learner) {
            upsert_learner(&mut st, &ev.learner, &now_text)?;
            new_learners.insert(username.clone(), ev.learner.clone());
        }
        let mut awarded = Vec::new();
        let mut revoked = Vec::new();
        for hit in index.hits(&ev.event_type, &ev.payload, ev.matches.as_ref()) {
            let info = hit.template;
            let entry = progress.entry(username, &info.id, prev.is_none(), || {
                all_fulfilled(&mut st, username)
            })?;
            let was_complete = match entry.complete {
                Some((version, complete)) if version == index.version => complete,
                _ => info.is_complete(entry.fulfilled.iter().map(String::as_str)),
            };
            let s = step_from(&hit, &entry.fulfilled, was_complete);
            entry.complete = Some((index.version, s.is_complete));
            for r in &s.added {
                entry.fulfilled.insert(r.clone());
            }
            for r in &s.removed {
                entry.fulfilled.remove(r);
            }
            for r in &s.added {
                st.get(Sql::InsertFulfilment)?
                    .execute(params![username, info.id, r, ev.id, ts(ev.time)])
                    .map_err(db)?;
            }
            for r in &s.removed {
                st.get(Sql::DeleteFulfilment)?
                    .execute(params![username, info.id, r])
                    .map_err(db)?;
            }
            // What the step means for the badge (accolade_domain::decision); the learner's
            // award history is read only when the answer depends on it.
            let award = match Decision::of(&s, !hit.fulfilled.is_empty()) {
                Decision::Award => true,
                Decision::AwardIfNeverHeld if !entry.ever_awarded => {
                    let never = latest_episode(&mut st, &info.id, username)?.is_none();
                    entry.ever_awarded = !never;
                    never
                }
                Decision::Revoke => {
                    let reason = decision::revocation_reason(&ev.id);
                    if let Some(a) = revoke_current(&mut st, info, &ev.learner, &reason, now)? {
                        revoked.push(a);
                    }
                    false
                }
                Decision::AwardIfNeverHeld | Decision::Nothing => false,
            };
            if award {
                if let Some(a) =
                    award_on_completion(&mut st, info, &ev.learner, ev.time, Some(&ev.id), now)?
                {
                    awarded.push(a);
                }
                entry.ever_awarded = true;
            }
        }
        awards += awarded.len() as i64;
        revocations += revoked.len() as i64;
        outcomes.push(EventOutcome::Accepted { awarded, revoked });
    }
    count(c, awards, revocations)?;
    for username in moved {
        let seq = progress.head(username, || last_event_seq(&mut st, username))?;
        st.get(Sql::SetHead)?
            .execute(params![username, seq])
            .map_err(db)?;
    }
    Ok(outcomes)
}

/// The seq of the learner's newest event, if any (the head of their chain).
fn last_event_seq(st: &mut Statements<'_>, username: &str) -> Result<Option<i64>> {
    st.get(Sql::LastEventSeq)?
        .query_row([username], |r| r.get(0))
        .optional()
        .map(Option::flatten)
        .map_err(db)
}

fn upsert_learner(st: &mut Statements<'_>, l: &LearnerData, now: &str) -> Result<()> {
    st.get(Sql::UpsertLearner)?
        .execute(params![l.username, l.lms_user_id, l.email, l.name, now])
        .map_err(db)?;
    Ok(())
}

/// Ensures a learner row exists (manual awards name learners that sent no event yet).
pub fn ensure_learner(c: &Connection, username: &str) -> Result<LearnerData> {
    let found = c
        .prepare_cached("SELECT lms_user_id, email, name FROM learners WHERE username = ?1")
        .and_then(|mut s| {
            s.query_row([username], |r| {
                Ok(LearnerData {
                    username: username.to_string(),
                    lms_user_id: r.get(0)?,
                    email: r.get(1)?,
                    name: r.get(2)?,
                    is_active: Some(true),
                })
            })
            .optional()
        })
        .map_err(db)?;
    match found {
        Some(l) => Ok(l),
        None => {
            let l = LearnerData {
                username: username.to_string(),
                lms_user_id: None,
                email: None,
                name: None,
                is_active: Some(true),
            };
            upsert_learner(&mut Statements::new(c), &l, &ts(Utc::now()))?;
            Ok(l)
        }
    }
}

/// All of a learner's fulfilments: (template id, requirement id).
fn all_fulfilled(st: &mut Statements<'_>, learner: &str) -> Result<Vec<(String, String)>> {
    st.get(Sql::AllFulfilled)?
        .query_map([learner], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(db)
}

/// The learner's latest award episode of a template.
pub fn latest_award(
    st: &mut Statements<'_>,
    template_id: &str,
    learner: &str,
) -> Result<Option<Award>> {
    st.get(Sql::LatestAward)?
        .query_row(params![template_id, learner], rows::award)
        .optional()
        .map_err(db)
}

/// The learner's latest award episode of a template and whether it is revoked: what the award
/// decision needs, without reading and parsing the whole row.
fn latest_episode(
    st: &mut Statements<'_>,
    template_id: &str,
    learner: &str,
) -> Result<Option<Latest>> {
    st.get(Sql::LatestEpisode)?
        .query_row(params![template_id, learner], |r| {
            Ok(Latest {
                episode: r.get(0)?,
                revoked: r.get(1)?,
            })
        })
        .optional()
        .map_err(db)
}

/// Awards on an incomplete→complete edge, unless the learner already holds the badge or the
/// template forbids earning it again after a revocation.
fn award_on_completion(
    st: &mut Statements<'_>,
    info: &TemplateInfo,
    learner: &LearnerData,
    earned_at: DateTime<Utc>,
    event_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let latest = latest_episode(st, &info.id, &learner.username)?;
    let Some(episode) = decision::episode_on_completion(latest, info.allow_reaward) else {
        return Ok(None);
    };
    insert_award(st, info, learner, episode, earned_at, event_id, None, now).map(|a| Some(a.id))
}

/// Writes a new award episode with its job and outgoing event; the caller adds it to the
/// dashboard counters ([`count`]).
#[allow(clippy::too_many_arguments)]
pub fn insert_award(
    st: &mut Statements<'_>,
    info: &TemplateInfo,
    learner: &LearnerData,
    episode: i64,
    earned_at: DateTime<Utc>,
    event_id: Option<&str>,
    backfill_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Award> {
    let award = Award {
        id: accolade_domain::ids::uuid(),
        template_id: info.id.clone(),
        learner: learner.username.clone(),
        episode,
        state: AwardState::Awarded,
        earned_at,
        awarded_at: now,
        issued_at: accolade_domain::outbox::done_in_place(info.origin).then_some(now),
        revoked_at: None,
        revoke_reason: None,
        event_id: event_id.map(str::to_string),
        external_id: None,
        external_state: None,
        // Fixed now: a later change of the template's expiry does not move it.
        expires_at: info.expires_at(earned_at),
        backfill_id: backfill_id.map(str::to_string),
    };
    st.get(Sql::InsertAward)?
        .execute(params![
            award.id,
            award.template_id,
            award.learner,
            episode,
            ts(earned_at),
            ts(now),
            award.issued_at.map(ts),
            award.event_id,
            award.expires_at.map(ts),
            award.backfill_id
        ])
        .map_err(|e| {
            if crate::rows::is_unique_violation(&e) {
                StoreError::already_awarded()
            } else {
                db(e)
            }
        })?;
    let (job, event) = effects_of(&award, info, learner, false, now);
    enqueue(st, &job, &event, now)?;
    Ok(award)
}

/// Revokes the learner's current award of the template, if there is one.
fn revoke_current(
    st: &mut Statements<'_>,
    info: &TemplateInfo,
    learner: &LearnerData,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    match latest_award(st, &info.id, &learner.username)? {
        Some(a) if a.state != AwardState::Revoked => {
            revoke(st, info, learner, a, reason, now).map(|a| Some(a.id))
        }
        _ => Ok(None),
    }
}

/// Revokes `award` with its job and outgoing event; the caller adds it to the dashboard
/// counters ([`count`]).
pub fn revoke(
    st: &mut Statements<'_>,
    info: &TemplateInfo,
    learner: &LearnerData,
    mut award: Award,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Award> {
    st.get(Sql::RevokeAward)?
        .execute(params![award.id, ts(now), reason])
        .map_err(db)?;
    award.state = AwardState::Revoked;
    award.revoked_at = Some(now);
    award.revoke_reason = Some(reason.to_string());
    let (job, event) = effects_of(&award, info, learner, true, now);
    enqueue(st, &job, &event, now)?;
    Ok(award)
}

/// Adds to the dashboard counters, in the transaction of the awards and revocations they count
/// (the event path adds a batch's totals once; the callers of [`insert_award`] and [`revoke`]
/// must call this).
pub fn count(c: &Connection, awarded: i64, revoked: i64) -> Result<()> {
    let mut s = c
        .prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")
        .map_err(db)?;
    for (name, n) in [("awards", awarded), ("awards_revoked", revoked)] {
        if n > 0 {
            s.execute(params![name, n]).map_err(db)?;
        }
    }
    Ok(())
}

fn enqueue(
    st: &mut Statements<'_>,
    job: &NewJob,
    event: &OutgoingEvent,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = ts(now);
    let (status, attempts) = if job.done {
        ("succeeded", 1)
    } else {
        ("pending", 0)
    };
    st.get(Sql::InsertJob)?
        .execute(params![
            job.id,
            job.kind,
            job.payload,
            status,
            attempts,
            now
        ])
        .map_err(db)?;
    insert_outgoing(st, event)
}

/// Writes an outgoing event (with an award's job, or alone: `badge.expired`).
pub fn insert_outgoing(st: &mut Statements<'_>, event: &OutgoingEvent) -> Result<()> {
    st.get(Sql::InsertOutgoing)?
        .execute(params![
            event.id,
            event.event_type,
            event.award_id,
            ts(event.time),
            event.payload
        ])
        .map_err(db)?;
    Ok(())
}

pub fn record_rejected(c: &Connection, rejected: &[RejectedEvent]) -> Result<()> {
    let mut s = c
        .prepare_cached(
            "INSERT INTO rejected_events (event_id, event_type, code, detail, source, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db)?;
    for r in rejected {
        s.execute(params![
            r.event_id,
            r.event_type,
            r.code,
            r.detail,
            r.source,
            ts(r.received_at)
        ])
        .map_err(db)?;
    }
    Ok(())
}

pub fn list_events(
    c: &Connection,
    learner: Option<&str>,
    page: Page,
) -> Result<Paged<StoredEvent>> {
    let cols = "id, event_type, learner, time, received_at, body";
    let rows: Vec<StoredEvent> = match learner {
        // Follow the learner's chain from the newest event (one rowid lookup per event).
        Some(l) => c
            .prepare_cached(&format!(
                "WITH RECURSIVE chain(seq, n) AS ( \
                     SELECT last_event_seq, 0 FROM learners \
                     WHERE username = ?1 AND last_event_seq IS NOT NULL \
                     UNION ALL \
                     SELECT e.prev_seq, chain.n + 1 FROM chain JOIN inbox_events e ON e.seq = chain.seq \
                     WHERE e.prev_seq IS NOT NULL AND chain.n + 1 < ?2 + ?3) \
                 SELECT {cols} FROM chain JOIN inbox_events USING (seq) \
                 ORDER BY chain.n LIMIT ?2 OFFSET ?3"
            ))
            .and_then(|mut s| {
                s.query_map(params![l, page.fetch(), page.offset as i64], rows::stored_event)?.collect()
            }),
        None => c
            .prepare_cached(&format!("SELECT {cols} FROM inbox_events ORDER BY seq DESC LIMIT ?1 OFFSET ?2"))
            .and_then(|mut s| {
                s.query_map(params![page.fetch(), page.offset as i64], rows::stored_event)?.collect()
            }),
    }
    .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn list_rejected(c: &Connection, page: Page) -> Result<Paged<RejectedEvent>> {
    let rows: Vec<RejectedEvent> = c
        .prepare_cached(
            "SELECT event_id, event_type, code, detail, source, received_at FROM rejected_events \
             ORDER BY seq DESC LIMIT ?1 OFFSET ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![page.fetch(), page.offset as i64], rows::rejected)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(rows))
}
