//! Backfills on SQLite: the inbox scan of a preview, backfill jobs, and apply steps (one write
//! transaction each on the single writer, so a live event batch runs wholly before or after a
//! step, never in between).

use std::collections::{HashMap, HashSet};

use accolade_domain::backfill::{self, Held, Hit, Replayer, Verdict};
use accolade_store::{
    Backfill, BackfillPhase, BackfillState, BackfillStep, Entity, InboxBounds, InboxScan,
    InboxVisitor, NewBackfill, Page, Paged, ScannedRow, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::events::{self, Statements};
use crate::rows::{self, db, opt_ts, parse_ts, ts};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "id, template_id, state, phase, since, revoke, reason, requested_by, \
     events_scanned, events_total, learners_total, learners_done, awards_made, revocations_made, \
     cursor, cancel_requested, error, created_at, started_at, finished_at, updated_at, \
     phase_started_at, done_at_phase_start";

fn row(r: &Row<'_>) -> rusqlite::Result<Backfill> {
    let bad = |s: String| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("bad backfill state or phase {s}").into(),
        )
    };
    let state: String = r.get(2)?;
    let phase: String = r.get(3)?;
    Ok(Backfill {
        id: r.get(0)?,
        template_id: r.get(1)?,
        state: BackfillState::parse(&state).ok_or_else(|| bad(state.clone()))?,
        phase: BackfillPhase::parse(&phase).ok_or_else(|| bad(phase.clone()))?,
        since: opt_ts(r.get(4)?)?,
        revoke: r.get(5)?,
        reason: r.get(6)?,
        requested_by: r.get(7)?,
        events_scanned: r.get(8)?,
        events_total: r.get(9)?,
        learners_total: r.get(10)?,
        learners_done: r.get(11)?,
        awards_made: r.get(12)?,
        revocations_made: r.get(13)?,
        cursor: r.get(14)?,
        cancel_requested: r.get(15)?,
        error: r.get(16)?,
        created_at: parse_ts(&r.get::<_, String>(17)?)?,
        started_at: opt_ts(r.get(18)?)?,
        finished_at: opt_ts(r.get(19)?)?,
        updated_at: parse_ts(&r.get::<_, String>(20)?)?,
        phase_started_at: opt_ts(r.get(21)?)?,
        done_at_phase_start: r.get(22)?,
    })
}

pub fn inbox_bounds(c: &Connection) -> Result<InboxBounds> {
    c.query_row(
        "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM inbox_events",
        [],
        |r| {
            Ok(InboxBounds {
                first: r.get(0)?,
                last: r.get(1)?,
            })
        },
    )
    .map_err(db)
}

/// Reads the rows `scan` selects straight out of SQLite's row buffers (nothing is copied for
/// rows the visitor does not keep).
pub fn scan_inbox(c: &Connection, scan: &InboxScan, visitor: &mut dyn InboxVisitor) -> Result<()> {
    if scan.event_types.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; scan.event_types.len()].join(", ");
    let mut sql = format!(
        "SELECT seq, learner, event_type, time, body FROM inbox_events \
         WHERE seq > ? AND seq <= ? AND event_type IN ({marks})"
    );
    let mut args: Vec<Sql> = vec![Sql::Integer(scan.after), Sql::Integer(scan.until)];
    args.extend(scan.event_types.iter().map(|t| Sql::Text(t.clone())));
    if let Some(since) = scan.since {
        sql.push_str(" AND time >= ?");
        args.push(Sql::Text(ts(since)));
    }
    sql.push_str(" ORDER BY seq");
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let text = |i: usize| r.get_ref(i).and_then(|v| Ok(v.as_str()?));
        let row = ScannedRow {
            seq: r.get(0).map_err(db)?,
            learner: text(1).map_err(db)?,
            event_type: text(2).map_err(db)?,
            time: parse_ts(text(3).map_err(db)?).map_err(db)?,
            body: text(4).map_err(db)?,
        };
        visitor.visit(row);
    }
    Ok(())
}

pub fn latest_awards(c: &Connection, template_id: &str) -> Result<HashMap<String, Held>> {
    let mut out: HashMap<String, Held> = HashMap::new();
    let mut stmt = c
        .prepare_cached(
            "SELECT learner, episode, state = 'revoked', event_id IS NULL FROM awards \
             WHERE template_id = ?1",
        )
        .map_err(db)?;
    let mut rows = stmt.query([template_id]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let learner: String = r.get(0).map_err(db)?;
        let held = Held {
            episode: r.get(1).map_err(db)?,
            revoked: r.get(2).map_err(db)?,
            manual: r.get(3).map_err(db)?,
        };
        match out.get(&learner) {
            Some(h) if h.episode >= held.episode => {}
            _ => {
                out.insert(learner, held);
            }
        }
    }
    Ok(out)
}

pub fn event_ids(c: &Connection, seqs: &[i64]) -> Result<HashMap<i64, String>> {
    let mut stmt = c
        .prepare_cached("SELECT id FROM inbox_events WHERE seq = ?1")
        .map_err(db)?;
    let mut out = HashMap::new();
    for &seq in seqs {
        if let Some(id) = stmt
            .query_row([seq], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db)?
        {
            out.insert(seq, id);
        }
    }
    Ok(out)
}

pub fn create(c: &Connection, new: NewBackfill, now: DateTime<Utc>) -> Result<Backfill> {
    let exists: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM templates WHERE id = ?1)",
            [&new.template_id],
            |r| r.get(0),
        )
        .map_err(db)?;
    if !exists {
        return Err(StoreError::not_found(Entity::Template));
    }
    let id = accolade_domain::ids::uuid();
    c.execute(
        "INSERT INTO backfills (id, template_id, state, since, revoke, reason, requested_by, \
         created_at, updated_at) VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            id,
            new.template_id,
            new.since.map(ts),
            new.revoke,
            new.reason,
            new.requested_by,
            ts(now)
        ],
    )
    .map_err(|e| {
        if rows::is_unique_violation(&e) {
            StoreError::Conflict {
                code: "backfill_running",
                detail: "a backfill of this template is already queued or running".into(),
            }
        } else {
            db(e)
        }
    })?;
    get(c, &id)
}

pub fn get(c: &Connection, id: &str) -> Result<Backfill> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM backfills WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], row).optional())
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Backfill))
}

pub fn list(c: &Connection, template_id: Option<&str>, page: Page) -> Result<Paged<Backfill>> {
    let found: Vec<Backfill> = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM backfills WHERE ?1 IS NULL OR template_id = ?1 \
             ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))
        .and_then(|mut s| {
            s.query_map(params![template_id, page.fetch(), page.offset as i64], row)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(found))
}

pub fn cancel(c: &Connection, id: &str, now: DateTime<Utc>) -> Result<Backfill> {
    let b = get(c, id)?;
    if b.state.is_final() {
        return Err(StoreError::Conflict {
            code: "backfill_finished",
            detail: format!("the backfill has ended ({})", b.state.as_str()),
        });
    }
    let now = ts(now);
    if b.state == BackfillState::Queued {
        c.execute(
            "UPDATE backfills SET state = 'cancelled', cancel_requested = 1, finished_at = ?2, \
             updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )
    } else {
        c.execute(
            "UPDATE backfills SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )
    }
    .map_err(db)?;
    get(c, id)
}

pub fn claim(
    c: &Connection,
    holder: &str,
    only: Option<&str>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    let now = ts(now);
    let id: Option<String> = c
        .query_row(
            "SELECT id FROM backfills WHERE (?2 IS NULL OR id = ?2) AND (state = 'queued' \
             OR (state = 'running' AND (lease_until IS NULL OR lease_until <= ?1))) \
             ORDER BY created_at, id LIMIT 1",
            params![now, only],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let Some(id) = id else { return Ok(None) };
    c.execute(
        "UPDATE backfills SET state = 'running', holder = ?2, lease_until = ?3, \
         started_at = coalesce(started_at, ?4), updated_at = ?4, phase = 'scanning', \
         events_scanned = 0, phase_started_at = ?4, done_at_phase_start = learners_done \
         WHERE id = ?1",
        params![id, holder, ts(lease_until), now],
    )
    .map_err(db)?;
    get(c, &id).map(Some)
}

/// Whether `holder` holds the running backfill `id`.
fn holds(c: &Connection, id: &str, holder: &str) -> Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM backfills WHERE id = ?1 AND state = 'running' \
         AND holder = ?2)",
        params![id, holder],
        |r| r.get(0),
    )
    .map_err(db)
}

#[allow(clippy::too_many_arguments)]
pub fn progress(
    c: &Connection,
    id: &str,
    holder: &str,
    phase: BackfillPhase,
    events_scanned: i64,
    events_total: i64,
    learners_total: i64,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    if !holds(c, id, holder)? {
        return Ok(None);
    }
    c.execute(
        "UPDATE backfills SET \
         phase_started_at = CASE WHEN phase = ?2 THEN phase_started_at ELSE ?7 END, \
         done_at_phase_start = CASE WHEN phase = ?2 THEN done_at_phase_start ELSE learners_done END, \
         phase = ?2, events_scanned = ?3, events_total = ?4, \
         learners_total = ?5, lease_until = ?6, updated_at = ?7 WHERE id = ?1",
        params![
            id,
            phase.as_str(),
            events_scanned,
            events_total,
            learners_total,
            ts(lease_until),
            ts(now)
        ],
    )
    .map_err(db)?;
    get(c, id).map(Some)
}

pub fn finish(
    c: &Connection,
    id: &str,
    holder: &str,
    state: BackfillState,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<Backfill>> {
    if !holds(c, id, holder)? {
        return Ok(None);
    }
    c.execute(
        "UPDATE backfills SET state = ?2, error = ?3, holder = NULL, lease_until = NULL, \
         finished_at = ?4, updated_at = ?4 WHERE id = ?1",
        params![id, state.as_str(), error, ts(now)],
    )
    .map_err(db)?;
    get(c, id).map(Some)
}

/// The longest an apply step holds the writer.
const STEP_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);
/// The work a step does before it yields to a waiting event batch.
const STEP_MIN: std::time::Duration = std::time::Duration::from_millis(3);

/// A learner's stored event of the template's types, for the replay.
struct Stored {
    seq: i64,
    id: String,
    time: DateTime<Utc>,
    hit: Hit,
}

/// The learner's events of `types` at or after `since`, in event-time order (then arrival),
/// each with its hit, following the learner's chain (migration 0007).
fn learner_events(
    c: &Connection,
    learner: &str,
    types: &HashSet<String>,
    since: Option<DateTime<Utc>>,
    replayer: &Replayer,
) -> Result<Vec<Stored>> {
    let mut stmt = c
        .prepare_cached(
            "WITH RECURSIVE chain(seq) AS ( \
                 SELECT last_event_seq FROM learners \
                 WHERE username = ?1 AND last_event_seq IS NOT NULL \
                 UNION ALL \
                 SELECT e.prev_seq FROM chain JOIN inbox_events e ON e.seq = chain.seq \
                 WHERE e.prev_seq IS NOT NULL) \
             SELECT e.seq, e.id, e.event_type, e.time, e.body FROM chain \
             JOIN inbox_events e USING (seq)",
        )
        .map_err(db)?;
    let mut rows = stmt.query([learner]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        let event_type = r.get_ref(2).and_then(|v| Ok(v.as_str()?)).map_err(db)?;
        if !types.contains(event_type) {
            continue;
        }
        let time = parse_ts(r.get_ref(3).and_then(|v| Ok(v.as_str()?)).map_err(db)?).map_err(db)?;
        if since.is_some_and(|s| time < s) {
            continue;
        }
        let body = r.get_ref(4).and_then(|v| Ok(v.as_str()?)).map_err(db)?;
        let payload = replayer
            .paths()
            .payload_of_event(body)
            .map_err(|e| StoreError::Other(format!("stored event is not JSON: {e}")))?;
        out.push(Stored {
            seq: r.get(0).map_err(db)?,
            id: r.get(1).map_err(db)?,
            time,
            hit: replayer.hit(event_type, &payload),
        });
    }
    out.sort_by_key(|e| (e.time, e.seq));
    Ok(out)
}

/// One apply step (see `BackfillStore::backfill_apply`); returns the learners whose progress
/// it rewrote, for the caller's progress cache, with the step.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    c: &Connection,
    id: &str,
    holder: &str,
    learners: &[String],
    replayer: &Replayer,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
    yield_now: &dyn Fn() -> bool,
) -> Result<Option<BackfillStep>> {
    if !holds(c, id, holder)? {
        return Ok(None);
    }
    let job = get(c, id)?;
    let info = &replayer.info;
    let types: HashSet<String> = replayer.event_types().into_iter().collect();
    let mut step = BackfillStep::default();
    let mut st = Statements::new(c);
    let mut fulfilled_stmt = c
        .prepare_cached(
            "SELECT requirement_id FROM fulfillments WHERE learner = ?1 AND template_id = ?2",
        )
        .map_err(db)?;
    let mut delete = c
        .prepare_cached(
            "DELETE FROM fulfillments WHERE learner = ?1 AND template_id = ?2 \
             AND requirement_id = ?3",
        )
        .map_err(db)?;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO fulfillments (learner, template_id, requirement_id, event_id, \
             fulfilled_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .map_err(db)?;
    let started = std::time::Instant::now();
    let mut last: Option<&String> = None;
    for learner in learners {
        // Live events first: once the step has done a little work, stop as soon as an event
        // batch waits for the writer; stop anyway when the budget is spent. (Always after at
        // least one learner, so the job moves on; yielding at once would make steps so small
        // that their commits, not their learners, took the time.)
        let spent = started.elapsed();
        if last.is_some() && (spent >= STEP_BUDGET || (spent >= STEP_MIN && yield_now())) {
            break;
        }
        last = Some(learner);
        let stored = learner_events(c, learner, &types, job.since, replayer)?;
        step.learners += 1;
        step.events += stored.len() as i64;
        let outcome = replayer.replay(stored.iter().map(|e| &e.hit));
        // Progress: exactly the replayed requirements (other templates' rows untouched).
        let had: HashSet<String> = fulfilled_stmt
            .query_map(params![learner, info.id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(db)?;
        let want: HashMap<&str, &Stored> = outcome
            .fulfilled_by
            .iter()
            .map(|(r, i)| (r.as_str(), &stored[*i]))
            .collect();
        for r in replayer.requirement_ids(&replayer.bits_of(had.iter().map(String::as_str))) {
            if !want.contains_key(r) {
                delete.execute(params![learner, info.id, r]).map_err(db)?;
            }
        }
        for (r, e) in &want {
            if !had.contains(*r) {
                insert
                    .execute(params![learner, info.id, r, e.id, ts(e.time)])
                    .map_err(db)?;
            }
        }
        let latest = events::latest_award(&mut st, &info.id, learner)?;
        let held = latest.as_ref().map(|a| Held {
            episode: a.episode,
            revoked: a.state == accolade_domain::award::AwardState::Revoked,
            manual: a.event_id.is_none(),
        });
        match backfill::verdict(&outcome, held, info.allow_reaward) {
            (Verdict::Award, episode) => {
                // A replay that holds the badge names the event that completed it.
                let Some(by) = outcome.completed_by.map(|i| &stored[i]) else {
                    continue;
                };
                let data = events::ensure_learner(c, learner)?;
                events::insert_award(
                    &mut st,
                    info,
                    &data,
                    episode,
                    by.time,
                    Some(&by.id),
                    Some(id),
                    now,
                )?;
                step.awarded += 1;
            }
            (Verdict::Revoke, _) if job.revoke => {
                // A learner who holds the badge has an award.
                let Some(award) = latest else { continue };
                let data = events::ensure_learner(c, learner)?;
                let reason = backfill::revocation_reason(id);
                events::revoke(&mut st, info, &data, award, &reason, now)?;
                step.revoked += 1;
            }
            _ => {}
        }
    }
    events::count(c, step.awarded, step.revoked)?;
    let cancel: bool = c
        .query_row(
            "UPDATE backfills SET cursor = coalesce(?2, cursor), learners_done = learners_done + ?3, \
             awards_made = awards_made + ?4, revocations_made = revocations_made + ?5, \
             lease_until = ?6, updated_at = ?7 WHERE id = ?1 RETURNING cancel_requested",
            params![
                id,
                last,
                step.learners,
                step.awarded,
                step.revoked,
                ts(lease_until),
                ts(now)
            ],
            |r| r.get(0),
        )
        .map_err(db)?;
    step.cancel_requested = cancel;
    Ok(Some(step))
}
