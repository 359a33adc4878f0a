//! Row mapping, column lists, timestamp and error conversions between PostgreSQL and the domain.
//!
//! Column lists are macros rather than constants so that `concat!` can splice them into
//! `&'static str` statements: every statement of this crate is a literal with `$n` binds, which
//! sqlx prepares once per connection and caches.

use accolade_domain::award::{Award, AwardState};
use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::outbox::{Job, JobStatus};
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin, Template};
use accolade_store::{ApiToken, Learner, RejectedEvent, StoreError, StoredEvent};
use std::borrow::Cow;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;

/// PostgreSQL `text` and `jsonb` cannot hold U+0000 (NUL), and a statement carrying one fails
/// as a whole. This store keeps NUL as U+FFFD (the replacement character) instead: every string
/// from outside passes through [`text`] or [`json_text`] on its way in, lookups included, so a
/// NUL-bearing value is stored, matched and found consistently (and read back with U+FFFD).
pub fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

pub fn opt_text(s: Option<&str>) -> Option<Cow<'_, str>> {
    s.map(text)
}

/// Whether a JSON value holds a NUL in any string or key.
pub fn json_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(json_has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

/// Replaces NUL in every string and key of a JSON value (see [`text`]).
pub fn scrub_json(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(a) => a.iter_mut().for_each(scrub_json),
        Value::Object(m) => {
            *m = std::mem::take(m)
                .into_iter()
                .map(|(k, mut v)| {
                    scrub_json(&mut v);
                    (text(&k).into_owned(), v)
                })
                .collect();
        }
        _ => {}
    }
}

/// JSON text already serialised, made fit for a `$n::jsonb` bind (see [`json_text`]).
pub fn json_str(s: &str) -> String {
    if s.contains("\\u0000") {
        serde_json::from_str::<Value>(s).map_or_else(|_| s.to_string(), |v| json_text(&v))
    } else {
        s.to_string()
    }
}

/// JSON text for a `$n::jsonb` bind (see [`text`]).
pub fn json_text(v: &Value) -> String {
    if json_has_nul(v) {
        let mut clean = v.clone();
        scrub_json(&mut clean);
        clean.to_string()
    } else {
        v.to_string()
    }
}

/// `StoreError` for any database failure.
/// An sqlx error as a [`StoreError::Backend`]: connection and pool failures, serialization
/// failures and deadlocks (SQLSTATE class 40), lost connections (08), exhausted resources (53)
/// and a server shutting down (57P01-57P03) may pass; other refused statements will not.
pub fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend {
        retryable: retryable(&e),
        source: Box::new(e),
    }
}

fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => sqlstate(e).is_some_and(|code| {
            code.starts_with("40")
                || code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// The SQLSTATE of a database error, if `e` is one.
pub fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether `e` is a UNIQUE or PRIMARY KEY violation (SQLSTATE 23505).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).as_deref() == Some("23505")
}

/// A timestamp as PostgreSQL stores it: truncated to whole microseconds (towards the past, as the
/// SQLite store's text format does; sqlx itself would truncate towards 2000-01-01).
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A stored value that does not parse (the database was edited by hand, or is newer).
pub fn bad_value(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("unexpected stored value `{value}`").into(),
    }
}

fn json_error(column: &str, e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    }
}

/// Parses a JSON column selected as text (`col::text`).
pub fn json(column: &str, text: &str) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| json_error(column, e))
}

pub fn rules(text: &str) -> Result<Vec<DataRule>, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| json_error("rules", e))
}

/// Rules as JSON text, bound as `$n::jsonb`.
pub fn rules_json(rules: &[DataRule]) -> String {
    serde_json::to_value(rules)
        .map(|v| json_text(&v))
        .unwrap_or_else(|_| "[]".into())
}

pub fn group(s: &str) -> Result<Group, sqlx::Error> {
    Group::parse(s).map_err(|_| bad_value("group_letter", s))
}

macro_rules! template_columns {
    () => {
        "id, name, description, image_url, origin, provider_state, is_active, allow_reaward, \
         organization_id, created_at, updated_at, expires_after, criteria"
    };
}
pub(crate) use template_columns;

pub fn template(r: &PgRow) -> Result<Template, sqlx::Error> {
    let origin: String = r.try_get(4)?;
    Ok(Template {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        description: r.try_get(2)?,
        image_url: r.try_get(3)?,
        origin: Origin::parse(&origin).map_err(|_| bad_value("origin", &origin))?,
        provider_state: r.try_get(5)?,
        is_active: r.try_get(6)?,
        allow_reaward: r.try_get(7)?,
        organization_id: r.try_get(8)?,
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        expires_after: r
            .try_get::<Option<String>, _>(11)?
            .map(|e| ExpiresAfter::parse(&e).map_err(|_| bad_value("expires_after", &e)))
            .transpose()?,
        criteria: r.try_get(12)?,
    })
}

macro_rules! award_columns {
    () => {
        "id, template_id, learner, episode, state, earned_at, awarded_at, issued_at, revoked_at, \
         revoke_reason, event_id, external_id, external_state, expires_at, backfill_id"
    };
}
pub(crate) use award_columns;

pub fn award(r: &PgRow) -> Result<Award, sqlx::Error> {
    let state: String = r.try_get(4)?;
    Ok(Award {
        id: r.try_get(0)?,
        template_id: r.try_get(1)?,
        learner: r.try_get(2)?,
        episode: r.try_get(3)?,
        state: AwardState::parse(&state).ok_or_else(|| bad_value("state", &state))?,
        earned_at: r.try_get(5)?,
        awarded_at: r.try_get(6)?,
        issued_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
        revoke_reason: r.try_get(9)?,
        event_id: r.try_get(10)?,
        external_id: r.try_get(11)?,
        external_state: r.try_get(12)?,
        expires_at: r.try_get(13)?,
        backfill_id: r.try_get(14)?,
    })
}

macro_rules! job_columns {
    () => {
        "id, kind, payload::text, status, attempts, run_at, locked_until, last_error, created_at"
    };
}
pub(crate) use job_columns;

pub fn job(r: &PgRow) -> Result<Job, sqlx::Error> {
    let status: String = r.try_get(3)?;
    let payload: String = r.try_get(2)?;
    Ok(Job {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        payload: json("payload", &payload)?,
        status: JobStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        attempts: r.try_get(4)?,
        run_at: r.try_get(5)?,
        locked_until: r.try_get(6)?,
        last_error: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

macro_rules! learner_columns {
    () => {
        "username, lms_user_id, email, name, created_at"
    };
}
pub(crate) use learner_columns;

pub fn learner(r: &PgRow) -> Result<Learner, sqlx::Error> {
    Ok(Learner {
        username: r.try_get(0)?,
        lms_user_id: r.try_get(1)?,
        email: r.try_get(2)?,
        name: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

macro_rules! stored_event_columns {
    () => {
        "id, event_type, learner, time, received_at, body::text"
    };
}
pub(crate) use stored_event_columns;

pub fn stored_event(r: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    let body: String = r.try_get(5)?;
    Ok(StoredEvent {
        id: r.try_get(0)?,
        event_type: r.try_get(1)?,
        learner: r.try_get(2)?,
        time: r.try_get(3)?,
        received_at: r.try_get(4)?,
        body: json("body", &body)?,
    })
}

pub fn rejected(r: &PgRow) -> Result<RejectedEvent, sqlx::Error> {
    Ok(RejectedEvent {
        event_id: r.try_get(0)?,
        event_type: r.try_get(1)?,
        code: r.try_get(2)?,
        detail: r.try_get(3)?,
        source: r.try_get(4)?,
        received_at: r.try_get(5)?,
    })
}

macro_rules! token_columns {
    () => {
        "id, name, scopes, created_at, last_used_at, expires_at, revoked_at"
    };
}
pub(crate) use token_columns;

pub fn token(r: &PgRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        scopes: r
            .try_get::<String, _>(2)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        created_at: r.try_get(3)?,
        last_used_at: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

/// Maps every row with `f`, turning decode failures into `StoreError`.
pub fn all<T>(
    rows: Vec<PgRow>,
    f: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| f(r).map_err(db)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn nul_becomes_the_replacement_character_everywhere() {
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        let v = serde_json::json!({"k\u{0}": ["x\u{0}", 1, {"n": "\u{0}"}], "ok": "\\u0000"});
        assert!(json_has_nul(&v));
        let clean: Value = serde_json::from_str(&json_text(&v)).unwrap_or_default();
        assert!(!json_has_nul(&clean));
        assert_eq!(clean["k\u{FFFD}"][2]["n"], "\u{FFFD}");
        // An escaped backslash followed by `u0000` is ordinary text, left alone.
        assert_eq!(clean["ok"], "\\u0000");
    }

    #[test]
    fn timestamps_truncate_towards_the_past() {
        let before_2000 = Utc
            .timestamp_opt(946_684_799, 999_999_999)
            .single()
            .unwrap_or_default();
        assert_eq!(micros(before_2000).timestamp_subsec_nanos(), 999_999_000);
        let after = Utc
            .timestamp_opt(1_800_000_000, 123_456_789)
            .single()
            .unwrap_or_default();
        assert_eq!(micros(after).timestamp_subsec_nanos(), 123_456_000);
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn connection_and_pool_failures_may_pass_refused_statements_do_not() {
        assert!(db(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(db(sqlx::Error::PoolClosed).is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(db(sqlx::Error::Io(io)).is_retryable());
        assert!(!db(sqlx::Error::RowNotFound).is_retryable());
        assert!(!db(sqlx::Error::ColumnNotFound("x".into())).is_retryable());
        let e = db(sqlx::Error::PoolTimedOut);
        assert!(std::error::Error::source(&e).is_some());
    }
}
