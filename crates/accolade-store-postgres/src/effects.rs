//! The writes one transaction decides on, collected in memory and flushed in one set-based
//! statement (`unnest` of arrays; two when existing awards are revoked) instead of one round trip
//! per row.
//!
//! Why this is safe: every writer of a learner's progress and awards (event batches, manual
//! awards and revocations, delivery results) first locks that learner's row, so while a
//! transaction holds the lock nobody else changes the rows it read, and the in-memory view
//! (fulfilled requirements, latest award episode) stays exact until the commit. The partial unique
//! index `awards_one_active` remains the last line of defence against a duplicate active award.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use accolade_domain::award::{Award, AwardState};
use accolade_domain::engine::TemplateInfo;
use accolade_domain::event::LearnerData;
use accolade_domain::outbox::{effects_of, kind, NewJob, OutgoingEvent};
use accolade_store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use crate::rows::{self, award_columns, db, json_str, micros, text};

type Result<T> = std::result::Result<T, StoreError>;

/// Net change of one fulfilment row (learner, template, requirement) within the transaction.
#[derive(Debug)]
struct FulfilmentChange {
    /// The row existed when the transaction first touched it.
    existed: bool,
    /// It was reset at some point (so an existing row must go).
    removed: bool,
    /// The event that (last) fulfilled it, and when: the row to write.
    added: Option<(String, DateTime<Utc>)>,
}

/// Pending writes of one transaction, plus the latest award episode of every (template, learner)
/// it looked at.
#[derive(Debug, Default)]
pub struct Changes {
    fulfilments: BTreeMap<(String, String, String), FulfilmentChange>,
    latest: HashMap<(String, String), Option<Award>>,
    /// New award rows, in their final state (an award revoked in the same batch is written
    /// revoked).
    awards: Vec<Award>,
    new_award_pos: HashMap<String, usize>,
    /// Existing awards to revoke: (id, reason, time).
    revocations: Vec<(String, String, DateTime<Utc>)>,
    jobs: Vec<(NewJob, DateTime<Utc>)>,
    events: Vec<OutgoingEvent>,
}

impl Changes {
    /// Records that `event_id` fulfilled a requirement the learner did not have.
    pub fn fulfil(
        &mut self,
        learner: &str,
        template_id: &str,
        requirement_id: &str,
        event_id: &str,
        at: DateTime<Utc>,
    ) {
        let key = (
            learner.to_string(),
            template_id.to_string(),
            requirement_id.to_string(),
        );
        let change = self.fulfilments.entry(key).or_insert(FulfilmentChange {
            existed: false,
            removed: false,
            added: None,
        });
        change.added = Some((event_id.to_string(), at));
    }

    /// Records that a penalty reset a requirement the learner had.
    pub fn unfulfil(&mut self, learner: &str, template_id: &str, requirement_id: &str) {
        let key = (
            learner.to_string(),
            template_id.to_string(),
            requirement_id.to_string(),
        );
        let change = self.fulfilments.entry(key).or_insert(FulfilmentChange {
            existed: true,
            removed: false,
            added: None,
        });
        change.removed = true;
        change.added = None;
    }

    /// Loads the latest award episode of every (learner, template) pair in one statement, so
    /// that award decisions in a batch cost no further round trips.
    pub async fn preload_latest(
        &mut self,
        c: &mut PgConnection,
        pairs: &BTreeSet<(&str, &str)>,
    ) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let found = sqlx::query(concat!(
            "SELECT DISTINCT ON (template_id, learner) ",
            award_columns!(),
            " FROM awards WHERE (learner, template_id) IN \
             (SELECT * FROM unnest($1::text[], $2::text[])) \
             ORDER BY template_id, learner, episode DESC"
        ))
        .bind(pairs.iter().map(|p| text(p.0)).collect::<Vec<_>>())
        .bind(pairs.iter().map(|p| text(p.1)).collect::<Vec<_>>())
        .fetch_all(c)
        .await
        .map_err(db)?;
        for (learner, template_id) in pairs {
            self.latest
                .insert((template_id.to_string(), learner.to_string()), None);
        }
        for award in rows::all(found, rows::award)? {
            self.latest.insert(
                (award.template_id.clone(), award.learner.clone()),
                Some(award),
            );
        }
        Ok(())
    }

    /// The learner's latest award episode of a template, as of this transaction.
    pub async fn latest_award(
        &mut self,
        c: &mut PgConnection,
        template_id: &str,
        learner: &str,
    ) -> Result<Option<Award>> {
        let key = (template_id.to_string(), learner.to_string());
        if let Some(found) = self.latest.get(&key) {
            return Ok(found.clone());
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            award_columns!(),
            " FROM awards WHERE template_id = $1 AND learner = $2 ORDER BY episode DESC LIMIT 1"
        ))
        .bind(text(template_id))
        .bind(text(learner))
        .fetch_optional(c)
        .await
        .map_err(db)?;
        let found = row.as_ref().map(rows::award).transpose().map_err(db)?;
        self.latest.insert(key, found.clone());
        Ok(found)
    }

    /// A new award episode, with its delivery job and `badge.awarded` event.
    #[allow(clippy::too_many_arguments)]
    pub fn award(
        &mut self,
        info: &TemplateInfo,
        learner: &LearnerData,
        episode: i64,
        earned_at: DateTime<Utc>,
        event_id: Option<&str>,
        backfill_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Award {
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
        let (job, event) = effects_of(&award, info, learner, false, now);
        self.jobs.push((job, now));
        self.events.push(event);
        self.new_award_pos
            .insert(award.id.clone(), self.awards.len());
        self.awards.push(award.clone());
        self.latest.insert(
            (award.template_id.clone(), award.learner.clone()),
            Some(award.clone()),
        );
        award
    }

    /// Revokes `award`, with its revocation job and `badge.revoked` event.
    pub fn revoke(
        &mut self,
        info: &TemplateInfo,
        learner: &LearnerData,
        mut award: Award,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Award {
        award.state = AwardState::Revoked;
        award.revoked_at = Some(now);
        award.revoke_reason = Some(reason.to_string());
        match self.new_award_pos.get(&award.id) {
            Some(&i) => self.awards[i] = award.clone(),
            None => self
                .revocations
                .push((award.id.clone(), reason.to_string(), now)),
        }
        let (job, event) = effects_of(&award, info, learner, true, now);
        self.jobs.push((job, now));
        self.events.push(event);
        self.latest.insert(
            (award.template_id.clone(), award.learner.clone()),
            Some(award.clone()),
        );
        award
    }

    /// Loads, in one statement, what an event batch decides on for every (learner, template)
    /// pair: the requirements the learner has fulfilled (returned) and the latest award episode
    /// (kept here, as [`Changes::preload_latest`] does). One round trip instead of two.
    pub async fn load_progress(
        &mut self,
        c: &mut PgConnection,
        pairs: &BTreeSet<(&str, &str)>,
    ) -> Result<HashMap<(String, String), HashSet<String>>> {
        let mut progress: HashMap<(String, String), HashSet<String>> = HashMap::new();
        if pairs.is_empty() {
            return Ok(progress);
        }
        // The award's columns come first so that `rows::award` reads them by position; with no
        // award they are all NULL.
        let found = sqlx::query(PROGRESS)
            .bind(pairs.iter().map(|p| text(p.0)).collect::<Vec<_>>())
            .bind(pairs.iter().map(|p| text(p.1)).collect::<Vec<_>>())
            .fetch_all(c)
            .await
            .map_err(db)?;
        for row in &found {
            let learner: String = row.try_get(AWARD_COLUMNS).map_err(db)?;
            let template_id: String = row.try_get(AWARD_COLUMNS + 1).map_err(db)?;
            let done: Vec<String> = row.try_get(AWARD_COLUMNS + 2).map_err(db)?;
            let has_award = row.try_get::<Option<String>, _>(0).map_err(db)?.is_some();
            let latest = if has_award {
                Some(rows::award(row).map_err(db)?)
            } else {
                None
            };
            self.latest
                .insert((template_id.clone(), learner.clone()), latest);
            if !done.is_empty() {
                progress.insert((learner, template_id), done.into_iter().collect());
            }
        }
        Ok(progress)
    }

    /// Writes everything in one statement, plus one before it when existing awards are
    /// revoked: revocations must be visible before new awards are inserted, so that a new
    /// episode never meets its predecessor still active in `awards_one_active` (the parts of
    /// one statement run in no fixed order). `events` is added to the dashboard's event total.
    pub async fn flush(
        self,
        c: &mut PgConnection,
        events: i64,
    ) -> std::result::Result<(), sqlx::Error> {
        type Key = (String, String, String);
        if !self.revocations.is_empty() {
            let ids: Vec<&str> = self.revocations.iter().map(|r| r.0.as_str()).collect();
            let reasons: Vec<_> = self.revocations.iter().map(|r| text(&r.1)).collect();
            let times: Vec<DateTime<Utc>> = self.revocations.iter().map(|r| micros(r.2)).collect();
            sqlx::query(
                "UPDATE awards a SET state = 'revoked', revoked_at = r.at, revoke_reason = r.reason, \
                 updated_at = r.at FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS r(id, reason, at) \
                 WHERE a.id = r.id",
            )
            .bind(ids)
            .bind(reasons)
            .bind(times)
            .execute(&mut *c)
            .await?;
        }
        // Three disjoint sets of fulfilment rows: reset ones go, reset-and-fulfilled-again ones
        // get the new event, new ones are inserted. Disjoint, because two parts of one statement
        // must not touch the same row.
        let mut gone: Vec<&Key> = Vec::new();
        let mut renewed: Vec<(&Key, &(String, DateTime<Utc>))> = Vec::new();
        let mut added: Vec<(&Key, &(String, DateTime<Utc>))> = Vec::new();
        for (key, change) in &self.fulfilments {
            match (&change.added, change.existed && change.removed) {
                (None, true) => gone.push(key),
                (Some(a), true) => renewed.push((key, a)),
                (Some(a), false) => added.push((key, a)),
                (None, false) => {}
            }
        }
        // Dashboard totals: each award and each revocation wrote exactly one job.
        let revoked = self
            .jobs
            .iter()
            .filter(|(job, _)| matches!(job.kind, kind::REVOKE_AWARD | kind::CREDLY_REVOKE))
            .count() as i64;
        let awarded = self.jobs.len() as i64 - revoked;
        let counters: Vec<(&str, i64)> = [
            ("awards", awarded),
            ("awards_revoked", revoked),
            ("events", events),
        ]
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .collect();
        if gone.is_empty()
            && renewed.is_empty()
            && added.is_empty()
            && self.awards.is_empty()
            && self.jobs.is_empty()
            && self.events.is_empty()
            && counters.is_empty()
        {
            return Ok(());
        }
        let (a, j, e) = (&self.awards, &self.jobs, &self.events);
        sqlx::query(FLUSH)
            .bind(gone.iter().map(|k| k.0.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|k| k.1.as_str()).collect::<Vec<_>>())
            .bind(gone.iter().map(|k| k.2.as_str()).collect::<Vec<_>>())
            .bind(
                renewed
                    .iter()
                    .map(|(k, _)| k.0.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                renewed
                    .iter()
                    .map(|(k, _)| k.1.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                renewed
                    .iter()
                    .map(|(k, _)| k.2.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                renewed
                    .iter()
                    .map(|(_, a)| a.0.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(renewed.iter().map(|(_, a)| micros(a.1)).collect::<Vec<_>>())
            .bind(added.iter().map(|(k, _)| k.0.as_str()).collect::<Vec<_>>())
            .bind(added.iter().map(|(k, _)| k.1.as_str()).collect::<Vec<_>>())
            .bind(added.iter().map(|(k, _)| k.2.as_str()).collect::<Vec<_>>())
            .bind(added.iter().map(|(_, a)| a.0.as_str()).collect::<Vec<_>>())
            .bind(added.iter().map(|(_, a)| micros(a.1)).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.id.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.template_id.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.learner.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.episode).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.state.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|a| micros(a.earned_at)).collect::<Vec<_>>())
            .bind(a.iter().map(|a| micros(a.awarded_at)).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|a| a.revoked_at.map(micros))
                    .collect::<Vec<_>>(),
            )
            .bind(
                a.iter()
                    .map(|a| a.revoke_reason.as_deref().map(text))
                    .collect::<Vec<_>>(),
            )
            .bind(a.iter().map(|a| a.event_id.as_deref()).collect::<Vec<_>>())
            .bind(
                a.iter()
                    .map(|a| micros(a.revoked_at.unwrap_or(a.awarded_at)))
                    .collect::<Vec<_>>(),
            )
            .bind(
                a.iter()
                    .map(|a| a.issued_at.map(micros))
                    .collect::<Vec<_>>(),
            )
            .bind(
                a.iter()
                    .map(|a| a.expires_at.map(micros))
                    .collect::<Vec<_>>(),
            )
            .bind(
                a.iter()
                    .map(|a| a.backfill_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(j.iter().map(|(job, _)| job.id.as_str()).collect::<Vec<_>>())
            .bind(j.iter().map(|(job, _)| job.kind).collect::<Vec<_>>())
            .bind(
                j.iter()
                    .map(|(job, _)| json_str(&job.payload))
                    .collect::<Vec<_>>(),
            )
            .bind(j.iter().map(|(_, at)| micros(*at)).collect::<Vec<_>>())
            .bind(j.iter().map(|(job, _)| job.done).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.event_type).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.award_id.as_str()).collect::<Vec<_>>())
            .bind(e.iter().map(|e| micros(e.time)).collect::<Vec<_>>())
            .bind(e.iter().map(|e| json_str(&e.payload)).collect::<Vec<_>>())
            .bind(counters.iter().map(|c| c.0).collect::<Vec<_>>())
            .bind(counters.iter().map(|c| c.1).collect::<Vec<_>>())
            .execute(&mut *c)
            .await?;
        Ok(())
    }
}

/// See [`Changes::load_progress`]. Per pair, the award and the fulfilments are looked up by key
/// (`LATERAL … LIMIT 1` and a correlated subquery), so even a generic plan reads no more.
pub(crate) const PROGRESS: &str = concat!(
    "SELECT a.*, p.learner, p.template_id, ARRAY(SELECT f.requirement_id FROM fulfillments f \
     WHERE f.learner = p.learner AND f.template_id = p.template_id) \
     FROM unnest($1::text[], $2::text[]) AS p(learner, template_id) \
     LEFT JOIN LATERAL (SELECT ",
    award_columns!(),
    " FROM awards WHERE template_id = p.template_id AND learner = p.learner \
     ORDER BY episode DESC LIMIT 1) a ON true"
);

/// Columns of `award_columns!()`.
const AWARD_COLUMNS: usize = 15;

/// Every write of a transaction but revocations, as one statement (one round trip). Empty
/// arrays make a part a no-op.
///
/// Event batches run it with a generic plan (see [`crate::config::BEGIN_EVENT_BATCH`]), made
/// once per connection from whatever statistics exist then, often none. So the rows to delete
/// or renew are found one key at a time (`LATERAL … LIMIT 1`, which the planner cannot turn
/// into a hash join over the whole table) and then addressed by `ctid`; a test checks the plan. The counter rows are locked by a sorted `FOR UPDATE` first, so
/// all transactions take them in one order (name order) and never deadlock over them; being in
/// the last statement, they stay locked only until the commit.
pub(crate) const FLUSH: &str = "WITH \
    gone AS (DELETE FROM fulfillments f USING (SELECT x.row_id \
        FROM unnest($1::text[], $2::text[], $3::text[]) AS d(learner, template_id, requirement_id), \
        LATERAL (SELECT ctid AS row_id FROM fulfillments WHERE learner = d.learner \
        AND template_id = d.template_id AND requirement_id = d.requirement_id LIMIT 1) x) k \
        WHERE f.ctid = k.row_id), \
    renewed AS (UPDATE fulfillments f SET event_id = k.event_id, fulfilled_at = k.at \
        FROM (SELECT x.row_id, r.event_id, r.at \
        FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) \
        AS r(learner, template_id, requirement_id, event_id, at), \
        LATERAL (SELECT ctid AS row_id FROM fulfillments WHERE learner = r.learner \
        AND template_id = r.template_id AND requirement_id = r.requirement_id LIMIT 1) x) k \
        WHERE f.ctid = k.row_id), \
    added AS (INSERT INTO fulfillments (learner, template_id, requirement_id, event_id, fulfilled_at) \
        SELECT * FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[]) \
        ON CONFLICT DO NOTHING), \
    new_awards AS (INSERT INTO awards (id, template_id, learner, episode, state, earned_at, \
        awarded_at, revoked_at, revoke_reason, event_id, updated_at, issued_at, expires_at, backfill_id) \
        SELECT * FROM unnest($14::text[], $15::text[], $16::text[], $17::int8[], $18::text[], \
        $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::text[], $23::text[], \
        $24::timestamptz[], $25::timestamptz[], $26::timestamptz[], $27::text[])), \
    new_jobs AS (INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at) \
        SELECT j.id, j.kind, j.payload::jsonb, \
        CASE WHEN j.done THEN 'succeeded' ELSE 'pending' END, j.done::int, j.at, j.at, j.at \
        FROM unnest($28::text[], $29::text[], $30::text[], $31::timestamptz[], $32::bool[]) \
        AS j(id, kind, payload, at, done)), \
    new_events AS (INSERT INTO outgoing_events (id, event_type, award_id, time, payload) \
        SELECT e.id, e.event_type, e.award_id, e.time, e.payload::jsonb \
        FROM unnest($33::text[], $34::text[], $35::text[], $36::timestamptz[], $37::text[]) \
        AS e(id, event_type, award_id, time, payload)), \
    totals AS (UPDATE counters c SET value = c.value + d.delta \
        FROM (SELECT name FROM counters WHERE name = ANY($38::text[]) ORDER BY name FOR UPDATE) l, \
        unnest($38::text[], $39::int8[]) AS d(name, delta) \
        WHERE c.name = l.name AND d.name = l.name) \
    SELECT 1";

/// How every learner upsert ends: each field keeps its old value where the new one is empty, and
/// a row whose data does not change is locked (`ON CONFLICT DO UPDATE` locks the row whether or
/// not its `WHERE` holds) but not rewritten.
macro_rules! learner_upsert_on_conflict {
    () => {
        "ON CONFLICT (username) DO UPDATE SET \
         lms_user_id = coalesce(excluded.lms_user_id, learners.lms_user_id), \
         email = coalesce(excluded.email, learners.email), \
         name = coalesce(excluded.name, learners.name), updated_at = excluded.updated_at \
         WHERE (coalesce(excluded.lms_user_id, learners.lms_user_id), \
         coalesce(excluded.email, learners.email), coalesce(excluded.name, learners.name)) \
         IS DISTINCT FROM (learners.lms_user_id, learners.email, learners.name)"
    };
}
pub(crate) use learner_upsert_on_conflict;

/// The learner fields an event batch writes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LearnerFields<'a> {
    pub lms_user_id: Option<i64>,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Learner data to write: per username, the last non-empty value of each field in `learners`
/// order (what one upsert per event with `coalesce(new, old)` would leave).
pub fn merge_learners<'a>(
    learners: impl IntoIterator<Item = &'a LearnerData>,
) -> BTreeMap<&'a str, LearnerFields<'a>> {
    let mut merged: BTreeMap<&str, LearnerFields<'_>> = BTreeMap::new();
    for l in learners {
        let m = merged.entry(l.username.as_str()).or_default();
        m.lms_user_id = l.lms_user_id.or(m.lms_user_id);
        m.email = l.email.as_deref().or(m.email);
        m.name = l.name.as_deref().or(m.name);
    }
    merged
}

/// Upserts and thereby row-locks the given learners, in username (byte) order: transactions that
/// share learners queue on the first shared one instead of deadlocking. A row whose data does not
/// change is locked but not rewritten.
pub async fn lock_learners<'a>(
    c: &mut PgConnection,
    learners: impl IntoIterator<Item = &'a LearnerData>,
    now: DateTime<Utc>,
) -> Result<()> {
    let merged = merge_learners(learners);
    if merged.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = merged.keys().copied().collect();
    let ids: Vec<Option<i64>> = merged.values().map(|m| m.lms_user_id).collect();
    let emails: Vec<Option<&str>> = merged.values().map(|m| m.email).collect();
    let full_names: Vec<Option<&str>> = merged.values().map(|m| m.name).collect();
    sqlx::query(concat!(
        "INSERT INTO learners (username, lms_user_id, email, name, created_at, updated_at) \
         SELECT l.username, l.lms_user_id, l.email, l.name, $5, $5 \
         FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[]) AS l(username, lms_user_id, email, name) \
         ORDER BY l.username COLLATE \"C\" ",
        learner_upsert_on_conflict!()
    ))
    .bind(names)
    .bind(ids)
    .bind(emails)
    .bind(full_names)
    .bind(micros(now))
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learner(name: &str, id: Option<i64>, email: Option<&str>) -> LearnerData {
        LearnerData {
            username: name.to_string(),
            lms_user_id: id,
            email: email.map(str::to_string),
            name: None,
            is_active: None,
        }
    }

    #[test]
    fn learners_merge_to_the_last_known_value_in_username_order() {
        let events = [
            learner("zoe", Some(1), Some("old@example.org")),
            learner("amy", None, None),
            learner("zoe", None, Some("new@example.org")),
            learner("zoe", Some(2), None),
        ];
        let merged = merge_learners(&events);
        assert_eq!(merged.keys().copied().collect::<Vec<_>>(), ["amy", "zoe"]);
        assert_eq!(
            merged["zoe"],
            LearnerFields {
                lms_user_id: Some(2),
                email: Some("new@example.org"),
                name: None
            }
        );
        assert_eq!(merged["amy"], LearnerFields::default());
    }

    #[test]
    fn fulfilment_changes_net_out() {
        let t = Utc::now();
        let mut c = Changes::default();
        // Existing row reset, then fulfilled again: delete and insert.
        c.unfulfil("l", "t", "r1");
        c.fulfil("l", "t", "r1", "e2", t);
        // New row fulfilled, then reset: nothing to write.
        c.fulfil("l", "t", "r2", "e1", t);
        c.unfulfil("l", "t", "r2");
        let r1 = &c.fulfilments[&("l".into(), "t".into(), "r1".into())];
        assert!(r1.existed && r1.removed && r1.added.is_some());
        let r2 = &c.fulfilments[&("l".into(), "t".into(), "r2".into())];
        assert!(!r2.existed && r2.added.is_none());
    }
}
