//! Administration: the web UI's accounts and sessions, API tokens, and the store's statistics.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::admin::*;
use crate::models::*;

/// Admin accounts and sessions, API tokens, statistics.
#[async_trait]
pub trait AdminStore: Send + Sync {
    // ---- admin web UI accounts and sessions ----------------------------------------------

    /// Creates an admin account; `admin_user_exists` (conflict) when the username is taken.
    async fn create_admin_user(&self, username: &str, password_hash: &str) -> Result<AdminUser>;

    /// Replaces an account's password hash and ends all its sessions; not found when unknown.
    async fn set_admin_password(&self, username: &str, password_hash: &str) -> Result<AdminUser>;

    /// The account with this exact username; not found when unknown.
    async fn get_admin_user(&self, username: &str) -> Result<AdminUser>;

    /// Records the result of a login attempt on an account (see [`LoginOutcome`]).
    async fn record_admin_login(&self, user_id: &str, outcome: LoginOutcome) -> Result<AdminUser>;

    /// Before a password is checked: refuses when the account is locked at `now`, otherwise
    /// counts the attempt as a failure and applies `accolade_domain::login::lock_until` to the new
    /// count, atomically (concurrent attempts are serialized on the account), so a burst of
    /// guesses gets exactly `LOCK_AFTER` checks. A success then resets the count.
    async fn count_admin_login_attempt(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginAttempt>;

    /// Stores a new session (its `username` is ignored).
    async fn create_admin_session(&self, session: AdminSession) -> Result<()>;

    /// The session with this id hash if it exists and has not expired at `now`, with the
    /// account's username filled in.
    async fn get_admin_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AdminSession>>;

    /// Ends a session (logout); ending an unknown session is not an error.
    async fn delete_admin_session(&self, id_hash: &str) -> Result<()>;

    /// Deletes sessions that expired before `now`; returns how many.
    async fn purge_admin_sessions(&self, now: DateTime<Utc>) -> Result<u64>;

    // ---- API tokens, stats -----------------------------------------------------------------

    async fn create_api_token(&self, token: NewApiToken) -> Result<ApiToken>;

    /// Finds a token by the SHA-256 of its secret (also when expired or revoked: the caller
    /// decides).
    async fn find_api_token(&self, secret_hash: &str) -> Result<Option<ApiToken>>;

    /// Every token, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>>;

    /// Revokes a token at `at` (a second revocation keeps the first time). `NotFound` ("api
    /// token") when there is no such token.
    async fn revoke_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<ApiToken>;

    /// Records that the token was used at `at`.
    async fn touch_api_token(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    async fn stats(&self) -> Result<StoreStats>;
}
