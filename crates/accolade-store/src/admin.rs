//! Local admin accounts and their browser sessions (the `/admin` web UI).
//!
//! Passwords arrive here already hashed (argon2, by the server); session ids arrive as their
//! SHA-256, so neither a password nor a usable session cookie is ever stored.

use chrono::{DateTime, Utc};

/// An admin account.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminUser {
    pub id: String,
    /// Unique, compared exactly (the CLI lower-cases it on creation).
    pub username: String,
    /// PHC string (`$argon2id$…`).
    pub password_hash: String,
    /// Consecutive failed logins since the last success.
    pub failed_logins: i64,
    /// Logins are refused until then (backoff after repeated failures).
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What a login attempt did to the account.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginOutcome {
    /// Resets the failure count and lock; records the login time.
    Succeeded { at: DateTime<Utc> },
}

/// The answer to "may this sign-in check a password?" (`Store::count_admin_login_attempt`).
#[derive(Debug, Clone, PartialEq)]
pub enum LoginAttempt {
    /// The attempt was counted as a failure until it succeeds (the count includes it, and the
    /// lock of `accolade_domain::login::lock_until` is set when it reached the threshold): the
    /// password may be checked once.
    Counted(AdminUser),
    /// The account is locked until then; nothing was counted and no password may be checked.
    Locked { until: DateTime<Utc> },
}

/// A browser session of an admin.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSession {
    /// Hex SHA-256 of the session cookie's value (the value itself is never stored).
    pub id_hash: String,
    pub user_id: String,
    /// Filled from the account when read; ignored on create.
    pub username: String,
    /// Token every form of this session must carry.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
