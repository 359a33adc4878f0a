//! Accounts of the admin web UI: how usernames look, creating an account, and setting a new
//! password (which ends the account's sessions and clears a lock). `accolade admin create-user`
//! and `serve --demo` use these; signing in is [`super::admin_sessions`].

use accolade_store::{AdminUser, Store};

use crate::service::password;

/// Longest username.
const USERNAME_MAX: usize = 64;

/// A username that breaks the rule of [`Username::parse`].
#[derive(Debug, thiserror::Error)]
#[error("the username must be 1-64 characters of a-z, 0-9, '.', '_', '-', '@'")]
pub struct InvalidUsername;

/// A name as accounts are looked up: trimmed, lower case.
pub fn normalize(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A valid username, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// 1-64 characters of `a-z`, `0-9`, `.`, `_`, `-`, `@` once normalized.
    pub fn parse(raw: &str) -> Result<Username, InvalidUsername> {
        let name = normalize(raw);
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
        if name.is_empty() || name.len() > USERNAME_MAX || !name.chars().all(allowed) {
            return Err(InvalidUsername);
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes on the blocking pool: argon2 takes a core for a while.
async fn hash(password: &str) -> anyhow::Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || password::hash(&password)).await?
}

/// Creates an account; refused with a conflict when the name is taken.
pub async fn create(
    store: &dyn Store,
    username: &Username,
    password: &str,
) -> anyhow::Result<AdminUser> {
    let hash = hash(password).await?;
    Ok(store.create_admin_user(username.as_str(), &hash).await?)
}

/// Sets a new password: the account's sessions end and a lock is cleared.
pub async fn set_password(
    store: &dyn Store,
    username: &Username,
    password: &str,
) -> anyhow::Result<AdminUser> {
    let hash = hash(password).await?;
    Ok(store.set_admin_password(username.as_str(), &hash).await?)
}

/// Sets a new password on the account, creating it first when there is none.
pub async fn create_or_set_password(
    store: &dyn Store,
    username: &Username,
    password: &str,
) -> anyhow::Result<AdminUser> {
    if store.get_admin_user(username.as_str()).await.is_ok() {
        set_password(store, username, password).await
    } else {
        create(store, username, password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalized_and_checked() {
        assert_eq!(Username::parse(" Ann ").unwrap().as_str(), "ann");
        assert_eq!(Username::parse("a.b_c-d@x").unwrap().as_str(), "a.b_c-d@x");
        for bad in ["", "   ", "ann smith", "ann/x", &"a".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }
}
