//! Row mapping and value conversions between SQLite and domain types.

use accolade_domain::award::{Award, AwardState};
use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::outbox::{Job, JobStatus};
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin, Template};
use accolade_store::{ApiToken, Learner, RejectedEvent, StoreError, StoredEvent};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;

/// Formats a timestamp so that lexical order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

pub fn opt_ts(s: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

#[derive(Debug)]
struct BadValue(String);
impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected stored value `{}`", self.0)
    }
}
impl std::error::Error for BadValue {}

/// A rusqlite error as a [`StoreError::Backend`]: busy or locked database files and I/O
/// failures may pass; a refused statement (constraint, misuse, corrupt file) will not.
pub fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        retryable: retryable(&e),
        source: Box::new(e),
    }
}

fn retryable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory
            )
    )
}

/// Whether a rusqlite error is a UNIQUE/PRIMARY KEY violation.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

pub const TEMPLATE_COLUMNS: &str = "id, name, description, image_url, origin, provider_state, \
     is_active, allow_reaward, organization_id, created_at, updated_at, expires_after, criteria";

pub fn template(r: &Row<'_>) -> rusqlite::Result<Template> {
    let origin: String = r.get(4)?;
    Ok(Template {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        image_url: r.get(3)?,
        origin: Origin::parse(&origin).map_err(|_| conversion(BadValue(origin)))?,
        provider_state: r.get(5)?,
        is_active: r.get(6)?,
        allow_reaward: r.get(7)?,
        organization_id: r.get(8)?,
        created_at: parse_ts(&r.get::<_, String>(9)?)?,
        updated_at: parse_ts(&r.get::<_, String>(10)?)?,
        expires_after: r
            .get::<_, Option<String>>(11)?
            .map(|e| ExpiresAfter::parse(&e).map_err(|_| conversion(BadValue(e))))
            .transpose()?,
        criteria: r.get(12)?,
    })
}

pub fn rules(json: &str) -> rusqlite::Result<Vec<DataRule>> {
    serde_json::from_str(json).map_err(conversion)
}

pub fn rules_json(rules: &[DataRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

pub fn group(s: &str) -> rusqlite::Result<Group> {
    Group::parse(s).map_err(|_| conversion(BadValue(s.to_string())))
}

/// The columns [`award`] reads, as a macro so constant SQL can be built with `concat!`.
macro_rules! award_columns {
    () => {
        "id, template_id, learner, episode, state, earned_at, awarded_at, \
         issued_at, revoked_at, revoke_reason, event_id, external_id, external_state, expires_at, backfill_id"
    };
}
pub(crate) use award_columns;

pub const AWARD_COLUMNS: &str = award_columns!();

pub fn award(r: &Row<'_>) -> rusqlite::Result<Award> {
    let state: String = r.get(4)?;
    Ok(Award {
        id: r.get(0)?,
        template_id: r.get(1)?,
        learner: r.get(2)?,
        episode: r.get(3)?,
        state: AwardState::parse(&state).ok_or_else(|| conversion(BadValue(state)))?,
        earned_at: parse_ts(&r.get::<_, String>(5)?)?,
        awarded_at: parse_ts(&r.get::<_, String>(6)?)?,
        issued_at: opt_ts(r.get(7)?)?,
        revoked_at: opt_ts(r.get(8)?)?,
        revoke_reason: r.get(9)?,
        event_id: r.get(10)?,
        external_id: r.get(11)?,
        external_state: r.get(12)?,
        expires_at: opt_ts(r.get(13)?)?,
        backfill_id: r.get(14)?,
    })
}

pub const JOB_COLUMNS: &str =
    "id, kind, payload, status, attempts, run_at, locked_until, last_error, created_at";

pub fn job(r: &Row<'_>) -> rusqlite::Result<Job> {
    let status: String = r.get(3)?;
    let payload: String = r.get(2)?;
    Ok(Job {
        id: r.get(0)?,
        kind: r.get(1)?,
        payload: serde_json::from_str(&payload).map_err(conversion)?,
        status: JobStatus::parse(&status).ok_or_else(|| conversion(BadValue(status)))?,
        attempts: r.get(4)?,
        run_at: parse_ts(&r.get::<_, String>(5)?)?,
        locked_until: opt_ts(r.get(6)?)?,
        last_error: r.get(7)?,
        created_at: parse_ts(&r.get::<_, String>(8)?)?,
    })
}

pub const LEARNER_COLUMNS: &str = "username, lms_user_id, email, name, created_at";

pub fn learner(r: &Row<'_>) -> rusqlite::Result<Learner> {
    Ok(Learner {
        username: r.get(0)?,
        lms_user_id: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        created_at: parse_ts(&r.get::<_, String>(4)?)?,
    })
}

pub fn stored_event(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let body: String = r.get(5)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        event_type: r.get(1)?,
        learner: r.get(2)?,
        time: parse_ts(&r.get::<_, String>(3)?)?,
        received_at: parse_ts(&r.get::<_, String>(4)?)?,
        body: serde_json::from_str(&body).map_err(conversion)?,
    })
}

pub fn rejected(r: &Row<'_>) -> rusqlite::Result<RejectedEvent> {
    Ok(RejectedEvent {
        event_id: r.get(0)?,
        event_type: r.get(1)?,
        code: r.get(2)?,
        detail: r.get(3)?,
        source: r.get(4)?,
        received_at: parse_ts(&r.get::<_, String>(5)?)?,
    })
}

pub fn token(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: r
            .get::<_, String>(2)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        created_at: parse_ts(&r.get::<_, String>(3)?)?,
        last_used_at: opt_ts(r.get(4)?)?,
        expires_at: opt_ts(r.get(5)?)?,
        revoked_at: opt_ts(r.get(6)?)?,
    })
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_io_failures_may_pass_refused_statements_do_not() {
        use rusqlite::ffi;
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_FULL,
        ] {
            assert!(db(failure(code)).is_retryable(), "{code}");
        }
        for code in [
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_MISUSE,
            ffi::SQLITE_CORRUPT,
        ] {
            assert!(!db(failure(code)).is_retryable(), "{code}");
        }
        assert!(!db(rusqlite::Error::QueryReturnedNoRows).is_retryable());
        // The backend's error stays reachable as the source.
        let e = db(failure(ffi::SQLITE_BUSY));
        assert!(std::error::Error::source(&e).is_some());
    }
}
