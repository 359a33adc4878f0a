//! Admin API tokens: creation (the secret is shown once; only its SHA-256 is stored), scopes,
//! expiry and revocation, and verification with a short-lived in-memory cache so the ingest
//! path does not pay a database read per request.
//!
//! Scopes:
//! - `events:write`: `POST /api/v1/events` only (what an LMS or event relay needs);
//! - `read`: every `GET` of `/api/v1` except the token list;
//! - `admin`: everything, including managing tokens (the scope of tokens made before scopes
//!   existed).
//!
//! A revoked or expired token is refused at once in the process that revoked it and within
//! `CACHE_TTL` in every other instance.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accolade_store::{ApiToken, NewApiToken, Store, StoreError};
use axum::http::Method;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Tokens start with this prefix so secret scanners and humans recognise them.
pub const TOKEN_PREFIX: &str = "acl_";
/// How long a verified token is trusted without reading it again: the longest a revocation
/// made by another instance takes to apply here.
const CACHE_TTL: Duration = Duration::from_secs(10);
const CACHE_MAX: usize = 10_000;
/// Longest accepted token name.
const NAME_MAX: usize = 100;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    EventsWrite,
    Read,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::EventsWrite, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EventsWrite => "events:write",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }

    /// The scope a request to `/api/v1{path}` needs.
    pub fn needed_for(method: &Method, path: &str) -> Scope {
        let path = path.trim_end_matches('/');
        if method == Method::POST && path == "/events" {
            Scope::EventsWrite
        } else if method == Method::POST && path == "/openbadges/verify" {
            // Checking a credential changes nothing: a read token may do it.
            Scope::Read
        } else if (method == Method::GET || method == Method::HEAD)
            && !(path == "/tokens" || path.starts_with("/tokens/"))
        {
            Scope::Read
        } else {
            Scope::Admin
        }
    }
}

/// Whether a token with `granted` scopes may do what `needed` covers (`admin` covers all).
pub fn allows(granted: &[String], needed: Scope) -> bool {
    granted
        .iter()
        .filter_map(|g| Scope::parse(g))
        .any(|g| g == Scope::Admin || g == needed)
}

/// Why a token cannot be made or changed as asked.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct TokenRequestError {
    pub code: &'static str,
    pub detail: String,
}

fn invalid(code: &'static str, detail: impl Into<String>) -> TokenRequestError {
    TokenRequestError {
        code,
        detail: detail.into(),
    }
}

/// Checks a token request: a name of 1–100 characters, known scopes (none given: `admin`),
/// an expiry in the future.
pub fn new_token_request(
    name: &str,
    scopes: &[String],
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(String, Vec<String>), TokenRequestError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_token_name",
            format!("a token name must be 1-{NAME_MAX} printable characters"),
        ));
    }
    let mut parsed = Vec::new();
    for s in scopes {
        let scope = Scope::parse(s).ok_or_else(|| {
            let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            invalid(
                "unknown_scope",
                format!("unknown scope {s:?}; scopes are {}", known.join(", ")),
            )
        })?;
        parsed.push(scope);
    }
    if parsed.is_empty() {
        parsed.push(Scope::Admin);
    }
    parsed.sort();
    parsed.dedup();
    if expires_at.is_some_and(|at| at <= now) {
        return Err(invalid(
            "invalid_expiry",
            "the expiry must be in the future",
        ));
    }
    Ok((
        name.to_string(),
        parsed.iter().map(|s| s.as_str().to_string()).collect(),
    ))
}

/// Hex SHA-256: the stored form of every secret (admin tokens, app secrets, Open Credit tokens
/// and verification links).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes as hex: the body of every secret this service hands out.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Why a token was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTokenError {
    #[error(transparent)]
    Invalid(#[from] TokenRequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a token; returns it with the secret, which is never retrievable again.
pub async fn create_token(
    store: &dyn Store,
    name: &str,
    scopes: &[String],
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiToken, String), CreateTokenError> {
    let (name, scopes) = new_token_request(name, scopes, expires_at, Utc::now())?;
    let secret = format!("{TOKEN_PREFIX}{}", random_secret());
    let token = store
        .create_api_token(NewApiToken {
            name,
            secret_hash: hash_secret(&secret),
            scopes,
            expires_at,
        })
        .await?;
    tracing::info!(token.id = %token.id, scopes = ?token.scopes, "API token created");
    Ok((token, secret))
}

/// `now + text` for a lifetime such as `90d`, `12h` or `30m` (at most ten years).
pub fn expires_at(text: &str) -> Result<DateTime<Utc>, TokenRequestError> {
    let bad = || {
        invalid(
            "invalid_expiry",
            format!("`expires_in` must be a lifetime such as 90d, 12h or 30m, not {text:?}"),
        )
    };
    let lifetime = crate::config::parse_duration(text).map_err(|_| bad())?;
    // Ten years at most: beyond that "expiry" means none, and the arithmetic stays in range.
    if lifetime.is_zero() || lifetime > Duration::from_secs(10 * 366 * 86_400) {
        return Err(bad());
    }
    Ok(Utc::now() + chrono::Duration::from_std(lifetime).map_err(|_| bad())?)
}

/// Every token, oldest first (revoked and expired ones included).
pub async fn list_tokens(store: &dyn Store) -> Result<Vec<ApiToken>, StoreError> {
    store.list_api_tokens().await
}

/// Revokes a token: refused from now on, at once by this process (`cache` forgets it) and
/// within `CACHE_TTL` by every other instance. It stays in the list.
pub async fn revoke_token(
    store: &dyn Store,
    cache: &TokenCache,
    id: &str,
) -> Result<ApiToken, StoreError> {
    let token = store.revoke_api_token(id, Utc::now()).await?;
    cache.forget(&token.id);
    tracing::info!(token.id = %token.id, "API token revoked");
    Ok(token)
}

/// Whether a token is accepted at `now`.
pub fn is_live(token: &ApiToken, now: DateTime<Utc>) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now)
}

/// A token's state at `now`: `active`, `expired` or `revoked`.
pub fn state_of(token: &ApiToken, now: DateTime<Utc>) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if is_live(token, now) {
        "active"
    } else {
        "expired"
    }
}

/// Verified tokens by secret hash, and when they were read.
#[derive(Default)]
pub struct TokenCache {
    verified: Mutex<HashMap<String, (Instant, ApiToken)>>,
}

impl TokenCache {
    /// The token if `secret` is a token that is neither revoked nor expired.
    pub async fn verify(
        &self,
        store: &dyn Store,
        secret: &str,
    ) -> anyhow::Result<Option<ApiToken>> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let now = Utc::now();
        if let Some((at, token)) = self.verified.lock().get(&hash) {
            if at.elapsed() < CACHE_TTL {
                return Ok(is_live(token, now).then(|| token.clone()));
            }
        }
        let Some(token) = store.find_api_token(&hash).await? else {
            return Ok(None);
        };
        if is_live(&token, now) {
            // Last use is recorded once per cache period, not per request.
            if let Err(e) = store.touch_api_token(&token.id, now).await {
                tracing::warn!(token.id = %token.id, error = %e, "cannot record a token's use");
            }
        }
        let mut cache = self.verified.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), token.clone()));
        Ok(is_live(&token, now).then_some(token))
    }

    /// Drops a token from the cache (after it was revoked here).
    pub fn forget(&self, token_id: &str) {
        self.verified.lock().retain(|_, (_, t)| t.id != token_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_route_needs_the_narrowest_scope_that_covers_it() {
        use Scope::*;
        for (method, path, needed) in [
            (Method::POST, "/events", EventsWrite),
            (Method::POST, "/events/", EventsWrite),
            (Method::GET, "/events", Read),
            (Method::GET, "/templates/t1", Read),
            (Method::HEAD, "/awards", Read),
            (Method::POST, "/templates", Admin),
            (Method::POST, "/webhooks", Admin),
            (Method::DELETE, "/events", Admin),
            (Method::GET, "/tokens", Admin),
            (Method::GET, "/tokens/tok_1", Admin),
            (Method::POST, "/opencredit/apps", Admin),
        ] {
            assert_eq!(Scope::needed_for(&method, path), needed, "{method} {path}");
        }
    }

    #[test]
    fn admin_covers_everything_and_other_scopes_only_themselves() {
        for needed in Scope::ALL {
            assert!(allows(&scopes(&["admin"]), needed));
        }
        let ingest = scopes(&["events:write"]);
        assert!(allows(&ingest, Scope::EventsWrite));
        assert!(!allows(&ingest, Scope::Read));
        assert!(!allows(&ingest, Scope::Admin));
        assert!(!allows(&scopes(&["read"]), Scope::EventsWrite));
        assert!(!allows(
            &scopes(&["root", "events:writ"]),
            Scope::EventsWrite
        ));
        assert!(!allows(&[], Scope::Read));
    }

    #[test]
    fn requests_are_checked_and_scopes_normalised() {
        let now = Utc::now();
        let (name, s) = new_token_request(
            " lms ",
            &scopes(&["read", "events:write", "read"]),
            None,
            now,
        )
        .unwrap();
        assert_eq!(
            (name.as_str(), s),
            ("lms", scopes(&["events:write", "read"]))
        );
        assert_eq!(
            new_token_request("x", &[], None, now).unwrap().1,
            scopes(&["admin"])
        );
        let code = |r: Result<_, TokenRequestError>| r.unwrap_err().code;
        assert_eq!(
            code(new_token_request("", &[], None, now)),
            "invalid_token_name"
        );
        assert_eq!(
            code(new_token_request(&"n".repeat(101), &[], None, now)),
            "invalid_token_name"
        );
        assert_eq!(
            code(new_token_request("a\nb", &[], None, now)),
            "invalid_token_name"
        );
        assert_eq!(
            code(new_token_request("x", &scopes(&["root"]), None, now)),
            "unknown_scope"
        );
        assert_eq!(
            code(new_token_request("x", &[], Some(now), now)),
            "invalid_expiry"
        );
    }

    #[test]
    fn revoked_and_expired_tokens_are_not_live() {
        let now = Utc::now();
        let token = ApiToken {
            id: "tok_1".into(),
            name: "t".into(),
            scopes: scopes(&["admin"]),
            created_at: now,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        };
        assert!(is_live(&token, now));
        let later = now + chrono::Duration::hours(1);
        let expiring = ApiToken {
            expires_at: Some(later),
            ..token.clone()
        };
        assert!(is_live(&expiring, now));
        assert!(!is_live(&expiring, later));
        let revoked = ApiToken {
            revoked_at: Some(now),
            ..token
        };
        assert!(!is_live(&revoked, now));
    }
}
