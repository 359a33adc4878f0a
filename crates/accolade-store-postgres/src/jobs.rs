//! The outbox queue (claim with a lease, finish, retry), admin tokens and counters.
//!
//! Claiming uses `FOR UPDATE SKIP LOCKED`: workers of several instances claim disjoint jobs
//! without waiting on each other, and the claim commits at once, so no transaction stays open
//! across the call to the provider. A job whose lease expired (its worker died) is claimable
//! again.

use accolade_domain::outbox::Job;
use accolade_store::Entity;
use accolade_store::{
    ApiToken, JobFilter, JobResult, NewApiToken, Page, Paged, StoreError, StoreStats,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::rows::{self, db, job_columns, micros, opt_text, text, token_columns};

type Result<T> = std::result::Result<T, StoreError>;

pub async fn list_jobs(c: &mut PgConnection, f: &JobFilter, page: Page) -> Result<Paged<Job>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2) \
         ORDER BY id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(f.status.map(|s| s.as_str()))
    .bind(opt_text(f.kind.as_deref()))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, rows::job)?))
}

pub async fn get_job(c: &mut PgConnection, id: &str) -> Result<Job> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Job))?;
    rows::job(&row).map_err(db)
}

/// Makes a dead or pending job due now (attempts are kept).
pub async fn retry_job(c: &mut PgConnection, id: &str) -> Result<Job> {
    let row = sqlx::query(concat!(
        "UPDATE jobs SET status = 'pending', run_at = $2, locked_until = NULL, updated_at = $2 \
         WHERE id = $1 AND status IN ('dead', 'pending') RETURNING ",
        job_columns!()
    ))
    .bind(text(id))
    .bind(micros(Utc::now()))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    match row {
        Some(row) => rows::job(&row).map_err(db),
        None => {
            let job = get_job(c, id).await?;
            Err(StoreError::Conflict {
                code: "job_not_retryable",
                detail: format!(
                    "job {id} is {}; only dead or pending jobs can be retried",
                    job.status.as_str()
                ),
            })
        }
    }
}

pub async fn claim_jobs(
    c: &mut PgConnection,
    kinds: &[&str],
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Job>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(concat!(
        "WITH due AS (\
             SELECT id FROM jobs WHERE kind = ANY($3) \
             AND ((status = 'pending' AND run_at <= $2) OR (status = 'running' AND locked_until <= $2)) \
             ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (\
             UPDATE jobs SET status = 'running', locked_until = $1, attempts = attempts + 1, \
             updated_at = $2 WHERE id IN (SELECT id FROM due) RETURNING ",
        job_columns!(),
        ") SELECT * FROM claimed ORDER BY run_at, id"
    ))
    .bind(micros(lease_until))
    .bind(micros(now))
    .bind(kinds.iter().map(|k| text(k)).collect::<Vec<_>>())
    .bind(i64::from(limit))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows::all(found, rows::job)
}

pub async fn finish_job(
    c: &mut PgConnection,
    id: &str,
    result: JobResult,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = micros(now);
    let done = match result {
        JobResult::Succeeded => sqlx::query(
            "UPDATE jobs SET status = 'succeeded', locked_until = NULL, last_error = NULL, \
             updated_at = $2, waiting_for_key = NULL WHERE id = $1",
        )
        .bind(text(id))
        .bind(now)
        .execute(c)
        .await,
        JobResult::Retry { run_at, error } => sqlx::query(
            "UPDATE jobs SET status = 'pending', locked_until = NULL, run_at = $2, last_error = $3, \
             updated_at = $4, waiting_for_key = NULL WHERE id = $1",
        )
        .bind(text(id))
        .bind(micros(run_at))
        .bind(text(&error))
        .bind(now)
        .execute(c)
        .await,
        // A job waiting for a key that is current again (rotated while the job ran) is due now.
        JobResult::Defer {
            run_at,
            reason,
            waiting_for_key,
        } => sqlx::query(
            "UPDATE jobs SET status = 'pending', locked_until = NULL, last_error = $3, \
             attempts = greatest(attempts - 1, 0), updated_at = $4, \
             run_at = CASE WHEN rotated.yes THEN $4 ELSE $2 END, \
             waiting_for_key = CASE WHEN rotated.yes THEN NULL ELSE $5 END \
             FROM (SELECT EXISTS (SELECT 1 FROM credly_organizations o \
                 WHERE o.id = $5 AND o.key_expires_at > $4) AS yes) rotated \
             WHERE id = $1",
        )
        .bind(text(id))
        .bind(micros(run_at))
        .bind(text(&reason))
        .bind(now)
        .bind(opt_text(waiting_for_key.as_deref()))
        .execute(c)
        .await,
        JobResult::Dead { error } => sqlx::query(
            "UPDATE jobs SET status = 'dead', locked_until = NULL, last_error = $2, updated_at = $3, \
             waiting_for_key = NULL WHERE id = $1",
        )
        .bind(text(id))
        .bind(text(&error))
        .bind(now)
        .execute(c)
        .await,
    }
    .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found(Entity::Job));
    }
    Ok(())
}

/// Makes the pending jobs waiting for `org_id`'s key due now (a job already due keeps its
/// time) and clears their mark; the `jobs_waiting_for_key` partial index holds only waiting
/// jobs. A job a worker holds (`FOR UPDATE` by a claim in progress) is waited for, then skipped
/// if the claim made it `running`.
pub async fn release_waiting_for_key(
    c: &mut PgConnection,
    org_id: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET run_at = least(run_at, $2), waiting_for_key = NULL, updated_at = $2 \
         WHERE waiting_for_key = $1 AND status = 'pending'",
    )
    .bind(text(org_id))
    .bind(micros(now))
    .execute(c)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

pub async fn create_token(c: &mut PgConnection, t: NewApiToken) -> Result<ApiToken> {
    let row = sqlx::query(concat!(
        "INSERT INTO api_tokens (id, name, secret_hash, scopes, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        token_columns!()
    ))
    .bind(accolade_domain::ids::token_id())
    .bind(text(&t.name))
    .bind(text(&t.secret_hash))
    .bind(t.scopes.join(" "))
    .bind(micros(Utc::now()))
    .bind(t.expires_at.map(micros))
    .fetch_one(c)
    .await
    .map_err(db)?;
    rows::token(&row).map_err(db)
}

pub async fn list_tokens(c: &mut PgConnection) -> Result<Vec<ApiToken>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens ORDER BY created_at, id"
    ))
    .fetch_all(c)
    .await
    .map_err(db)?;
    found
        .iter()
        .map(rows::token)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)
}

pub async fn revoke_token(c: &mut PgConnection, id: &str, at: DateTime<Utc>) -> Result<ApiToken> {
    let row = sqlx::query(concat!(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING ",
        token_columns!()
    ))
    .bind(text(id))
    .bind(micros(at))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    match row {
        Some(r) => rows::token(&r).map_err(db),
        None => Err(StoreError::not_found(Entity::ApiToken)),
    }
}

pub async fn touch_token(c: &mut PgConnection, id: &str, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(text(id))
        .bind(micros(at))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn find_token(c: &mut PgConnection, hash: &str) -> Result<Option<ApiToken>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        token_columns!(),
        " FROM api_tokens WHERE secret_hash = $1"
    ))
    .bind(text(hash))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(rows::token).transpose().map_err(db)
}

/// Counters. `events` counts the inbox rows: unlike SQLite's AUTOINCREMENT, a PostgreSQL
/// sequence has gaps (duplicates and rolled-back batches consume numbers), so `max(seq)` would
/// overcount.
pub async fn stats(c: &mut PgConnection) -> Result<StoreStats> {
    let (outbox_pending, outbox_dead, events, awards_active, awards_revoked): (
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')), \
             (SELECT count(*) FROM jobs WHERE status = 'dead'), \
             (SELECT value FROM counters WHERE name = 'events'), \
             (SELECT coalesce(sum(CASE name WHEN 'awards' THEN value ELSE -value END), 0)::int8 \
              FROM counters WHERE name IN ('awards', 'awards_revoked')), \
             (SELECT value FROM counters WHERE name = 'awards_revoked')",
    )
    .fetch_one(c)
    .await
    .map_err(db)?;
    Ok(StoreStats {
        outbox_pending,
        outbox_dead,
        events,
        awards_active,
        awards_revoked,
    })
}

/// Several job results and their award deliveries in one transaction. The awards' learners are
/// locked first, in username order (the order every writer uses), so concurrent batches and event
/// processing cannot deadlock.
pub async fn finish_jobs(
    c: &mut PgConnection,
    items: Vec<accolade_store::JobCompletion>,
    now: DateTime<Utc>,
) -> Result<Vec<Option<accolade_domain::award::Award>>> {
    let award_ids: Vec<String> = items
        .iter()
        .filter_map(|i| i.delivery.as_ref().map(|(id, _)| text(id).into_owned()))
        .collect();
    if !award_ids.is_empty() {
        let learners: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT learner FROM awards WHERE id = ANY($1)")
                .bind(&award_ids)
                .fetch_all(&mut *c)
                .await
                .map_err(db)?;
        let blanks: Vec<accolade_domain::event::LearnerData> = learners
            .into_iter()
            .map(|username| accolade_domain::event::LearnerData {
                username,
                lms_user_id: None,
                email: None,
                name: None,
                is_active: Some(true),
            })
            .collect();
        crate::effects::lock_learners(&mut *c, blanks.iter(), now).await?;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let award = match item.delivery {
            Some((award_id, d)) => {
                match crate::awards::record_delivery(&mut *c, &award_id, d).await {
                    Ok(a) => Some(a),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        match finish_job(&mut *c, &item.job_id, item.result, now).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        out.push(award);
    }
    Ok(out)
}
