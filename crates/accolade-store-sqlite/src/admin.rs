//! Accounts and browser sessions of the `/admin` web UI on SQLite.
//!
//! Every function runs inside the transaction the store opened for it (`SqliteStore::write` or
//! `read`), so a password change and the end of that account's sessions commit together.
//! Expiry is compared on the stored RFC 3339 text, which [`ts`] formats so that lexical order is
//! time order.

use accolade_domain::login::lock_until;
use accolade_store::Entity;
use accolade_store::{AdminSession, AdminUser, LoginAttempt, LoginOutcome, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::rows::{db, is_unique_violation, opt_ts, parse_ts, ts};

type Result<T> = std::result::Result<T, StoreError>;

const USER_COLUMNS: &str =
    "id, username, password_hash, failed_logins, locked_until, last_login_at, created_at";

fn user(r: &Row<'_>) -> rusqlite::Result<AdminUser> {
    Ok(AdminUser {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        failed_logins: r.get(3)?,
        locked_until: opt_ts(r.get(4)?)?,
        last_login_at: opt_ts(r.get(5)?)?,
        created_at: parse_ts(&r.get::<_, String>(6)?)?,
    })
}

fn not_found() -> StoreError {
    StoreError::not_found(Entity::AdminUser)
}

/// Whether a rusqlite error is a FOREIGN KEY violation (a session for an unknown account).
fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

pub fn create_user(c: &Connection, username: &str, password_hash: &str) -> Result<AdminUser> {
    c.prepare_cached(&format!(
        "INSERT INTO admin_users (id, username, password_hash, failed_logins, created_at) \
         VALUES (?1, ?2, ?3, 0, ?4) RETURNING {USER_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                accolade_domain::ids::admin_user_id(),
                username,
                password_hash,
                ts(Utc::now())
            ],
            user,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "admin_user_exists",
                detail: format!("admin user {username} already exists"),
            }
        } else {
            db(e)
        }
    })
}

pub fn set_password(c: &Connection, username: &str, password_hash: &str) -> Result<AdminUser> {
    // A new password is also the way out of a lock-out, so the failure count goes too.
    let u = c
        .prepare_cached(&format!(
            "UPDATE admin_users SET password_hash = ?2, failed_logins = 0, locked_until = NULL \
             WHERE username = ?1 RETURNING {USER_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(params![username, password_hash], user)
                .optional()
        })
        .map_err(db)?
        .ok_or_else(not_found)?;
    // Whoever knew the old password may hold a session: end them all in the same transaction.
    c.execute("DELETE FROM admin_sessions WHERE user_id = ?1", [&u.id])
        .map_err(db)?;
    Ok(u)
}

pub fn get_user(c: &Connection, username: &str) -> Result<AdminUser> {
    c.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM admin_users WHERE username = ?1"
    ))
    .and_then(|mut s| s.query_row([username], user).optional())
    .map_err(db)?
    .ok_or_else(not_found)
}

pub fn record_login(c: &Connection, user_id: &str, outcome: LoginOutcome) -> Result<AdminUser> {
    let LoginOutcome::Succeeded { at } = outcome;
    c.prepare_cached(&format!(
        "UPDATE admin_users SET failed_logins = 0, locked_until = NULL, \
         last_login_at = ?2 WHERE id = ?1 RETURNING {USER_COLUMNS}"
    ))
    .and_then(|mut s| s.query_row(params![user_id, ts(at)], user).optional())
    .map_err(db)?
    .ok_or_else(not_found)
}

/// Runs in the writer's immediate transaction, so the read, the lock check and the increment
/// are one step for every concurrent attempt.
pub fn count_attempt(c: &Connection, user_id: &str, now: DateTime<Utc>) -> Result<LoginAttempt> {
    let found = c
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM admin_users WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row(params![user_id], user).optional())
        .map_err(db)?
        .ok_or_else(not_found)?;
    if let Some(until) = found.locked_until.filter(|u| *u > now) {
        return Ok(LoginAttempt::Locked { until });
    }
    let failures = found.failed_logins + 1;
    c.prepare_cached(&format!(
        "UPDATE admin_users SET failed_logins = ?2, locked_until = ?3 \
         WHERE id = ?1 RETURNING {USER_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![user_id, failures, lock_until(failures, now).map(ts)],
            user,
        )
    })
    .map(LoginAttempt::Counted)
    .map_err(db)
}

pub fn create_session(c: &Connection, session: AdminSession) -> Result<()> {
    c.execute(
        "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            session.id_hash,
            session.user_id,
            session.csrf_token,
            ts(session.created_at),
            ts(session.expires_at)
        ],
    )
    .map_err(|e| {
        if is_foreign_key_violation(&e) {
            not_found()
        } else {
            db(e)
        }
    })?;
    Ok(())
}

pub fn get_session(
    c: &Connection,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<AdminSession>> {
    c.prepare_cached(
        "SELECT s.id_hash, s.user_id, u.username, s.csrf_token, s.created_at, s.expires_at \
         FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id \
         WHERE s.id_hash = ?1 AND s.expires_at > ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![id_hash, ts(now)], |r| {
            Ok(AdminSession {
                id_hash: r.get(0)?,
                user_id: r.get(1)?,
                username: r.get(2)?,
                csrf_token: r.get(3)?,
                created_at: parse_ts(&r.get::<_, String>(4)?)?,
                expires_at: parse_ts(&r.get::<_, String>(5)?)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

pub fn delete_session(c: &Connection, id_hash: &str) -> Result<()> {
    c.execute("DELETE FROM admin_sessions WHERE id_hash = ?1", [id_hash])
        .map_err(db)?;
    Ok(())
}

pub fn purge_sessions(c: &Connection, now: DateTime<Utc>) -> Result<u64> {
    // `<=`: exactly the sessions `get_session` no longer returns at `now`.
    let n = c
        .execute(
            "DELETE FROM admin_sessions WHERE expires_at <= ?1",
            [ts(now)],
        )
        .map_err(db)?;
    Ok(n as u64)
}
