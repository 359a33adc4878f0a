//! Accounts and browser sessions of the `/admin` web UI on PostgreSQL.
//!
//! A password change updates the account and deletes its sessions; the store runs it in one
//! transaction so no session outlives the password it was opened with. Login results are applied
//! with a single `UPDATE … RETURNING` each, the failure count incremented in SQL, so concurrent
//! attempts on one account cannot lose a failure.

use accolade_domain::login::lock_until;
use accolade_store::Entity;
use accolade_store::{AdminSession, AdminUser, LoginAttempt, LoginOutcome, StoreError};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{db, is_unique_violation, micros, sqlstate, text};

type Result<T> = std::result::Result<T, StoreError>;

macro_rules! user_columns {
    () => {
        "id, username, password_hash, failed_logins, locked_until, last_login_at, created_at"
    };
}

fn user(r: &PgRow) -> std::result::Result<AdminUser, sqlx::Error> {
    Ok(AdminUser {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        failed_logins: r.try_get("failed_logins")?,
        locked_until: r.try_get("locked_until")?,
        last_login_at: r.try_get("last_login_at")?,
        created_at: r.try_get("created_at")?,
    })
}

fn not_found() -> StoreError {
    StoreError::not_found(Entity::AdminUser)
}

fn found(row: Option<PgRow>) -> Result<AdminUser> {
    user(&row.ok_or_else(not_found)?).map_err(db)
}

pub async fn create_user(
    c: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> Result<AdminUser> {
    let row = sqlx::query(concat!(
        "INSERT INTO admin_users (id, username, password_hash, failed_logins, created_at) \
         VALUES ($1, $2, $3, 0, $4) RETURNING ",
        user_columns!()
    ))
    .bind(accolade_domain::ids::admin_user_id())
    .bind(text(username))
    .bind(text(password_hash))
    .bind(micros(Utc::now()))
    .fetch_one(c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "admin_user_exists",
                detail: format!("admin user {username} already exists"),
            }
        } else {
            db(e)
        }
    })?;
    user(&row).map_err(db)
}

/// Run by the store inside a transaction (see the module documentation).
pub async fn set_password(
    c: &mut PgConnection,
    username: &str,
    password_hash: &str,
) -> Result<AdminUser> {
    // A new password is also the way out of a lock-out, so the failure count goes too.
    let row = sqlx::query(concat!(
        "UPDATE admin_users SET password_hash = $2, failed_logins = 0, locked_until = NULL \
         WHERE username = $1 RETURNING ",
        user_columns!()
    ))
    .bind(text(username))
    .bind(text(password_hash))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let u = found(row)?;
    // Whoever knew the old password may hold a session: end them all.
    sqlx::query("DELETE FROM admin_sessions WHERE user_id = $1")
        .bind(&u.id)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(u)
}

pub async fn get_user(c: &mut PgConnection, username: &str) -> Result<AdminUser> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM admin_users WHERE username = $1"
    ))
    .bind(text(username))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    found(row)
}

pub async fn record_login(
    c: &mut PgConnection,
    user_id: &str,
    outcome: LoginOutcome,
) -> Result<AdminUser> {
    let LoginOutcome::Succeeded { at } = outcome;
    let row = sqlx::query(concat!(
        "UPDATE admin_users SET failed_logins = 0, locked_until = NULL, \
         last_login_at = $2 WHERE id = $1 RETURNING ",
        user_columns!()
    ))
    .bind(text(user_id))
    .bind(micros(at))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    found(row)
}

/// Runs in a transaction that holds the account's row lock (`FOR UPDATE`) from the lock check
/// to the increment, so concurrent attempts are counted one after the other.
pub async fn count_attempt(
    c: &mut PgConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<LoginAttempt> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_columns!(),
        " FROM admin_users WHERE id = $1 FOR UPDATE"
    ))
    .bind(text(user_id))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    let current = found(row)?;
    if let Some(until) = current.locked_until.filter(|u| *u > now) {
        return Ok(LoginAttempt::Locked { until });
    }
    let failures = current.failed_logins + 1;
    let row = sqlx::query(concat!(
        "UPDATE admin_users SET failed_logins = $2, locked_until = $3 WHERE id = $1 RETURNING ",
        user_columns!()
    ))
    .bind(text(user_id))
    .bind(failures)
    .bind(lock_until(failures, now).map(micros))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    found(row).map(LoginAttempt::Counted)
}

pub async fn create_session(c: &mut PgConnection, session: AdminSession) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(text(&session.id_hash))
    .bind(text(&session.user_id))
    .bind(text(&session.csrf_token))
    .bind(micros(session.created_at))
    .bind(micros(session.expires_at))
    .execute(c)
    .await
    .map_err(|e| {
        // 23503: foreign key violation, i.e. the account does not exist (any more).
        if sqlstate(&e).as_deref() == Some("23503") {
            not_found()
        } else {
            db(e)
        }
    })?;
    Ok(())
}

pub async fn get_session(
    c: &mut PgConnection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AdminSession>> {
    let row = sqlx::query(
        "SELECT s.id_hash, s.user_id, u.username, s.csrf_token, s.created_at, s.expires_at \
         FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2",
    )
    .bind(text(id_hash))
    .bind(micros(now))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    let Some(r) = row else {
        return Ok(None);
    };
    let session = (|| {
        Ok::<_, sqlx::Error>(AdminSession {
            id_hash: r.try_get("id_hash")?,
            user_id: r.try_get("user_id")?,
            username: r.try_get("username")?,
            csrf_token: r.try_get("csrf_token")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })()
    .map_err(db)?;
    Ok(Some(session))
}

pub async fn delete_session(c: &mut PgConnection, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
        .bind(text(id_hash))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn purge_sessions(c: &mut PgConnection, now: DateTime<Utc>) -> Result<u64> {
    // `<=`: exactly the sessions `get_session` no longer returns at `now`.
    let done = sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
        .bind(micros(now))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(done.rows_affected())
}
