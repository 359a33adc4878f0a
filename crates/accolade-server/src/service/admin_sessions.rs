//! Signing in to the admin web UI, and its sessions.
//!
//! - After `LOCK_AFTER` consecutive failures an account is locked for 30 s, doubling with each
//!   further failure up to 15 minutes (`accolade_domain::login`); while locked even the right
//!   password is refused. Every attempt is counted in the store *before* its password is checked,
//!   in one transaction with the lock check, so a burst of concurrent guesses gets exactly
//!   `LOCK_AFTER` checks, not one per request that read the account before the lock was written.
//!   A success resets the count.
//! - Unknown accounts and wrong passwords get the same answer after the same work.
//! - Every sign-in gets a brand-new session id, and the session the browser presented (maybe
//!   planted: session fixation) ends. Only the SHA-256 of a session id is stored.
//!
//! The cookies that carry the ids, CSRF and the pages are `web/`'s.

use accolade_store::{AdminSession, LoginAttempt, LoginOutcome, Store, StoreError};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::service::password;
use crate::state::AppState;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

/// A new random token: 32 bytes, base64url without padding (cookie- and form-safe). Session ids
/// and CSRF tokens are these.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a session id.
fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Why a sign-in did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown account or wrong password (the caller cannot tell which).
    #[error("wrong username or password")]
    Refused,
    /// Too many failures: nothing is checked until then.
    #[error("the account is locked until {until}")]
    Locked { until: DateTime<Utc> },
    /// Too many sign-ins wait to be checked (a flood); this one was not.
    #[error("too many sign-ins are being checked")]
    Busy,
    /// The database failed at the step `context` names.
    #[error("{context}: {source}")]
    Store {
        context: &'static str,
        source: StoreError,
    },
}

fn store_failed(context: &'static str) -> impl FnOnce(StoreError) -> SignInError {
    move |source| SignInError::Store { context, source }
}

/// A new session: `id` goes to the browser, `session` is what the store keeps.
#[derive(Debug)]
pub struct SignedIn {
    pub id: String,
    pub session: AdminSession,
}

/// Checks `password` for the account `username` (already normalized, see
/// `admin_users::normalize`) and opens a session, ending `presented` (the session id the
/// browser brought along), if any.
pub async fn sign_in(
    store: &dyn Store,
    username: &str,
    password: &str,
    presented: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SignedIn, SignInError> {
    let user = match store.get_admin_user(username).await {
        Ok(u) => u,
        Err(StoreError::NotFound { .. }) => {
            password::verify_off_runtime(password, None)
                .await
                .map_err(|password::Busy| SignInError::Busy)?;
            tracing::info!(username = ?username, "admin login refused: unknown account");
            return Err(SignInError::Refused);
        }
        Err(e) => return Err(store_failed("admin login: cannot read the account")(e)),
    };
    // Count the attempt (or find the account locked) before any password work.
    let counted = match store.count_admin_login_attempt(&user.id, now).await {
        Ok(LoginAttempt::Counted(counted)) => counted,
        Ok(LoginAttempt::Locked { until }) => {
            tracing::warn!(username = ?username, "admin login refused: account locked");
            return Err(SignInError::Locked { until });
        }
        Err(e) => return Err(store_failed("admin login: cannot count the attempt")(e)),
    };
    let matches = password::verify_off_runtime(password, Some(&user.password_hash))
        .await
        .map_err(|password::Busy| SignInError::Busy)?;
    if !matches {
        let (failures, locked) = (counted.failed_logins, counted.locked_until.is_some());
        tracing::warn!(username = ?username, failures, locked, "admin login refused: wrong password");
        return Err(SignInError::Refused);
    }
    if let Some(old) = presented {
        let _ = store.delete_admin_session(&hash_id(old)).await;
    }
    let id = random_token();
    let session = AdminSession {
        id_hash: hash_id(&id),
        user_id: user.id.clone(),
        username: user.username.clone(),
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    let stored = async {
        store.create_admin_session(session.clone()).await?;
        store
            .record_admin_login(&user.id, LoginOutcome::Succeeded { at: now })
            .await
    };
    stored
        .await
        .map_err(store_failed("admin login: cannot store the session"))?;
    tracing::info!(username = %username, "admin signed in");
    Ok(SignedIn { id, session })
}

/// The live session with this id, if any.
pub async fn current(
    store: &dyn Store,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<AdminSession>, StoreError> {
    store.get_admin_session(&hash_id(id), now).await
}

/// Ends a session (a failure is logged: the cookie goes anyway, and the session expires).
pub async fn sign_out(store: &dyn Store, session: &AdminSession) {
    if let Err(e) = store.delete_admin_session(&session.id_hash).await {
        tracing::error!(error = %e, "admin logout: cannot delete the session");
    }
    tracing::info!(username = %session.username, "admin signed out");
}

/// Deletes expired sessions hourly until shutdown (they are refused anyway; this keeps the table
/// small).
pub async fn purge_expired(state: AppState) {
    loop {
        match state.store.purge_admin_sessions(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired admin sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired admin sessions"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}
