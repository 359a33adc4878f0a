//! Organizations: listing and reading them, adding one with an authorization token or OAuth
//! client credentials (checked against Credly before anything is stored), replacing its
//! credentials, and the key's expiry status (Credly keys live 180 days; OAuth client
//! credentials have no known expiry).

use accolade_credly::{ClientCredentials, Credentials, CredlyError, KEY_LIFETIME_DAYS};
use accolade_store::{
    CredlyKey, CredlyOrganization, NewCredlyOAuthOrganization, NewCredlyOrganization, OAuthClient,
    Store, StoreError,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{Credly, CredlyFailure};

/// Expiry state of an organization's key.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KeyStatus {
    pub expires_at: DateTime<Utc>,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// `ok`, `warning` (within the first configured warning threshold), or `expired`.
    pub level: &'static str,
    /// The smallest configured threshold (days) the key is within, e.g. 7.
    pub threshold: Option<i64>,
}

/// Expiry status against the warning thresholds (e.g. 30, 7, 1 days).
pub fn key_status(expires_at: DateTime<Utc>, now: DateTime<Utc>, warn_days: &[i64]) -> KeyStatus {
    let left = expires_at - now;
    let days_left = left.num_days();
    let threshold = warn_days
        .iter()
        .copied()
        .filter(|d| left <= Duration::days(*d))
        .min();
    let level = if left <= Duration::zero() {
        "expired"
    } else if threshold.is_some() {
        "warning"
    } else {
        "ok"
    };
    KeyStatus {
        expires_at,
        days_left,
        level,
        threshold,
    }
}

/// A UUID in Credly's form (hyphenated, lower case); anything else is returned as given and
/// refused by `validate_input`.
pub fn normalize_id(id: &str) -> String {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.hyphenated().to_string())
        .unwrap_or_else(|_| id.to_string())
}

/// Credentials an operator gives for an organization: one method or the other.
#[derive(Clone, PartialEq, Eq)]
pub enum NewCredentials {
    /// An authorization token ("API key").
    Token(String),
    /// OAuth 2.0 client credentials.
    OAuth {
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for NewCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NewCredentials::Token(_) => "NewCredentials::Token(..)",
            NewCredentials::OAuth { .. } => "NewCredentials::OAuth(..)",
        })
    }
}

/// The credential fields of a request (API body, admin form, CLI flags), as given.
#[derive(Default)]
pub struct CredentialsInput {
    pub api_key: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl CredentialsInput {
    /// Exactly one method, complete: an API key alone, or a client id with its secret.
    /// `credly_auth_mixed` when both methods are given, `credly_auth_incomplete` when neither
    /// is complete; then the values themselves are checked.
    pub fn parse(self) -> Result<NewCredentials, CredlyFailure> {
        let CredentialsInput {
            api_key,
            client_id,
            client_secret,
        } = self;
        let creds = match (api_key, client_id, client_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(CredlyFailure::Invalid {
                    code: "credly_auth_mixed",
                    detail: "give either api_key (an authorization token) or client_id and \
                             client_secret (OAuth client credentials), not both"
                        .into(),
                })
            }
            (Some(key), None, None) => NewCredentials::Token(key),
            (None, Some(client_id), Some(client_secret)) => NewCredentials::OAuth {
                client_id,
                client_secret,
            },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(CredlyFailure::Invalid {
                    code: "credly_auth_incomplete",
                    detail: "OAuth client credentials need both client_id and client_secret".into(),
                })
            }
            (None, None, None) => {
                return Err(CredlyFailure::Invalid {
                    code: "credly_auth_incomplete",
                    detail: "give api_key (an authorization token) or client_id and \
                             client_secret (OAuth client credentials)"
                        .into(),
                })
            }
        };
        creds.validate()?;
        Ok(creds)
    }
}

impl NewCredentials {
    fn validate(&self) -> Result<(), CredlyFailure> {
        match self {
            NewCredentials::Token(key) => validate_key(key),
            NewCredentials::OAuth {
                client_id,
                client_secret,
            } => {
                let bad = |v: &str, min: usize, max: usize| {
                    v.trim().len() < min || v.len() > max || v.chars().any(char::is_control)
                };
                if bad(client_id, 1, 256) {
                    return Err(CredlyFailure::Invalid {
                        code: "invalid_client_id",
                        detail: "the client id must be 1 to 256 printable characters".into(),
                    });
                }
                if bad(client_secret, 8, 512) {
                    return Err(CredlyFailure::Invalid {
                        code: "invalid_client_secret",
                        detail: "the client secret must be 8 to 512 printable characters".into(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// The secret-box context of an organization's OAuth client id and secret: each sealed for its
/// own field, so the two ciphertexts cannot be swapped.
pub fn client_id_context(org_id: &str) -> String {
    format!("{org_id}/oauth_client_id")
}

pub fn client_secret_context(org_id: &str) -> String {
    format!("{org_id}/oauth_client_secret")
}

fn validate_org_id(org_id: &str) -> Result<(), CredlyFailure> {
    if !accolade_domain::ids::is_uuid(org_id) {
        return Err(CredlyFailure::Invalid {
            code: "invalid_organization_id",
            detail: format!("`{org_id}` is not a UUID; Credly organization ids look like 37659132-1c9e-4aba-8849-d1e4cb175e67"),
        });
    }
    Ok(())
}

fn validate_input(org_id: &str, api_key: &str) -> Result<(), CredlyFailure> {
    validate_org_id(org_id)?;
    validate_key(api_key)
}

fn validate_key(api_key: &str) -> Result<(), CredlyFailure> {
    // At most 512 bytes as sent, at least 8 once trimmed (the admin API's document says so).
    let key = api_key.trim();
    if key.len() < 8 || api_key.len() > 512 || api_key.chars().any(|c| c.is_control() || c == ':') {
        return Err(CredlyFailure::Invalid {
            code: "invalid_api_key",
            detail: "the API key must be 8 to 512 printable characters without `:`".into(),
        });
    }
    Ok(())
}

/// Checks the key with Credly and works out its dates: Credly's `expires_at` when the key can
/// list its own tokens, else 180 days from now.
async fn check_key(
    credly: &Credly,
    org_id: &str,
    api_key: &str,
) -> Result<(String, CredlyKey), CredlyFailure> {
    let cred = Credentials::token(org_id, api_key.trim());
    let org = credly
        .client
        .organization(cred)
        .await
        .map_err(|e| match e {
            CredlyError::Unauthorized(m) => CredlyFailure::Credly(CredlyError::Unauthorized(
                format!("the API key is not valid for organization {org_id} ({m})"),
            )),
            CredlyError::NotFound(m) => CredlyFailure::Credly(CredlyError::NotFound(format!(
                "Credly has no organization {org_id} reachable with this key ({m})"
            ))),
            other => CredlyFailure::Credly(other),
        })?;
    let now = Utc::now();
    let reported = match credly.client.authorization_tokens(cred).await {
        Ok(tokens) => tokens
            .into_iter()
            .find(|t| t.token.as_deref() == Some(api_key.trim())),
        // Older or read-only keys may not list tokens; the 180-day rule applies then.
        Err(e) => {
            tracing::debug!(org = org_id, error = %e, "could not read token expiry from Credly");
            None
        }
    };
    let created_at = reported.as_ref().and_then(|t| t.created_at).unwrap_or(now);
    let expires_at = reported
        .and_then(|t| t.expires_at)
        .unwrap_or(created_at + Duration::days(KEY_LIFETIME_DAYS));
    if expires_at <= now {
        return Err(CredlyFailure::Invalid {
            code: "credly_key_expired",
            detail: format!("Credly reports that this key expired on {expires_at}"),
        });
    }
    let key = CredlyKey {
        ciphertext: credly.secrets.seal(api_key.trim(), org_id),
        last4: last4(api_key.trim()),
        created_at,
        expires_at,
    };
    Ok((org.name, key))
}

/// The last four characters of a secret, to tell secrets apart without showing them.
pub fn last4(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Checks OAuth client credentials with Credly (a token is issued for them and reaches the
/// organization) and seals them. The name comes from `GET /organizations/{org}`; when that
/// refuses the token (its scopes may not cover it: credly-auth.md §4.2), from the owner of one
/// of the organization's templates, else it is "Credly organization <uuid>".
async fn check_oauth(
    credly: &Credly,
    org_id: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<(String, OAuthClient), CredlyFailure> {
    let rejected = |detail: String| CredlyFailure::Invalid {
        code: "credly_credentials_rejected",
        detail,
    };
    let token = credly
        .client
        .request_access_token(
            ClientCredentials {
                client_id: client_id.trim(),
                client_secret: client_secret.trim(),
            },
            &credly.config.oauth_scope,
        )
        .await
        .map_err(|e| match e {
            e if e.is_permanent() => rejected(format!(
                "Credly's token endpoint refused these client credentials: {e}"
            )),
            other => CredlyFailure::Credly(other),
        })?;
    let cred = Credentials::bearer(org_id, &token.access_token);
    let not_found = |m: String| {
        CredlyFailure::Credly(CredlyError::NotFound(format!(
            "Credly has no organization {org_id} reachable with this OAuth client ({m})"
        )))
    };
    let name = match credly.client.organization(cred).await {
        Ok(o) => o.name,
        Err(CredlyError::NotFound(m)) => return Err(not_found(m)),
        Err(CredlyError::Unauthorized(_) | CredlyError::Forbidden(_)) => {
            match credly.client.any_template(cred).await {
                Ok(t) => t
                    .and_then(|t| t.owner)
                    .and_then(|o| o.name)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| format!("Credly organization {org_id}")),
                Err(CredlyError::NotFound(m)) => return Err(not_found(m)),
                Err(e @ (CredlyError::Unauthorized(_) | CredlyError::Forbidden(_))) => {
                    return Err(rejected(format!(
                        "the OAuth client's token cannot act for organization {org_id}: {e}"
                    )))
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(other) => return Err(other.into()),
    };
    let client = OAuthClient {
        client_id_ciphertext: credly
            .secrets
            .seal(client_id.trim(), &client_id_context(org_id)),
        client_secret_ciphertext: credly
            .secrets
            .seal(client_secret.trim(), &client_secret_context(org_id)),
        client_id_last4: last4(client_id.trim()),
        created_at: Utc::now(),
    };
    Ok((name, client))
}

/// Every organization, in the order the store keeps them.
pub async fn list(store: &dyn Store) -> Result<Vec<CredlyOrganization>, StoreError> {
    store.list_credly_orgs().await
}

pub async fn get(store: &dyn Store, id: &str) -> Result<CredlyOrganization, StoreError> {
    store.get_credly_org(id).await
}

/// An organization's name, or its id when it cannot be read.
pub async fn name_or_id(store: &dyn Store, id: &str) -> String {
    store
        .get_credly_org(id)
        .await
        .map_or_else(|_| id.to_string(), |o| o.name)
}

/// Whether the stored key or OAuth client of an organization opens with this server's secrets
/// key (after the key file changed, it does not): `Err` says why not. Secrets that cannot be
/// read are not judged.
pub async fn key_opens(credly: &Credly, store: &dyn Store, id: &str) -> Result<(), String> {
    if let Ok(sealed) = store.credly_org_key(id).await {
        return credly
            .secrets
            .open(&sealed, id)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    if let Ok(client) = store.credly_org_oauth_client(id).await {
        for (sealed, context) in [
            (&client.client_id_ciphertext, client_id_context(id)),
            (&client.client_secret_ciphertext, client_secret_context(id)),
        ] {
            credly
                .secrets
                .open(sealed, &context)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Adds an organization after Credly confirmed its credentials and told us its name.
pub async fn add(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    credentials: NewCredentials,
) -> Result<CredlyOrganization, CredlyFailure> {
    let org_id = normalize_id(org_id);
    validate_org_id(&org_id)?;
    credentials.validate()?;
    if store.get_credly_org(&org_id).await.is_ok() {
        return Err(CredlyFailure::Store(accolade_store::StoreError::Conflict {
            code: "organization_exists",
            detail: format!(
                "Credly organization {org_id} is already configured; rotate its key instead"
            ),
        }));
    }
    let org = match credentials {
        NewCredentials::Token(api_key) => {
            let (name, key) = check_key(credly, &org_id, &api_key).await?;
            store
                .add_credly_org(NewCredlyOrganization {
                    id: org_id.clone(),
                    name,
                    key,
                })
                .await?
        }
        NewCredentials::OAuth {
            client_id,
            client_secret,
        } => {
            let (name, client) = check_oauth(credly, &org_id, &client_id, &client_secret).await?;
            store
                .add_credly_oauth_org(NewCredlyOAuthOrganization {
                    id: org_id.clone(),
                    name,
                    client,
                })
                .await?
        }
    };
    tracing::info!(org = %org.id, name = %org.name, auth_method = org.auth_method.as_str(),
        key_expires_at = ?org.key_expires_at, "Credly organization added");
    Ok(org)
}

/// Replaces the key (after checking the new one with Credly): [`replace_credentials`] with a
/// token.
pub async fn rotate_key(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    api_key: &str,
) -> Result<CredlyOrganization, CredlyFailure> {
    validate_input(org_id, api_key)?;
    replace_credentials(
        credly,
        store,
        org_id,
        NewCredentials::Token(api_key.to_string()),
    )
    .await
}

/// Replaces an organization's credentials by a new key or new OAuth client credentials (which
/// may switch its method), after checking them with Credly. Calls in flight keep using the old
/// credentials; every later call reads the new ones, so there is no downtime. Jobs deferred
/// because the old key had expired or the old client was refused are made due at once. The
/// API, the CLI and the admin UI all replace credentials through here.
pub async fn replace_credentials(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    credentials: NewCredentials,
) -> Result<CredlyOrganization, CredlyFailure> {
    validate_org_id(org_id)?;
    credentials.validate()?;
    store.get_credly_org(org_id).await?;
    let org = match credentials {
        NewCredentials::Token(api_key) => {
            let (name, key) = check_key(credly, org_id, &api_key).await?;
            store
                .update_credly_org(org_id, Some(name), Some(key))
                .await?
        }
        NewCredentials::OAuth {
            client_id,
            client_secret,
        } => {
            let (name, client) = check_oauth(credly, org_id, &client_id, &client_secret).await?;
            store
                .set_credly_org_oauth_client(org_id, Some(name), client)
                .await?
        }
    };
    tracing::info!(org = %org.id, auth_method = org.auth_method.as_str(),
        key_expires_at = ?org.key_expires_at, "Credly credentials replaced");
    after_new_credentials(credly, store, &org).await;
    Ok(org)
}

/// What follows stored new credentials: this process forgets the old ones, and the jobs that
/// waited for new ones are due now. The credentials are stored: a failure here must not report
/// the change as failed; the jobs then wait out their deferral (at most ten minutes) and run
/// with the new credentials.
pub(crate) async fn after_new_credentials(
    credly: &Credly,
    store: &dyn Store,
    org: &CredlyOrganization,
) {
    credly.forget_key(&org.id);
    match store
        .release_jobs_waiting_for_key(&org.id, Utc::now())
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(org = %org.id, jobs = n, "{n} Credly job(s) waiting for the new credentials of {} are due now", org.name)
        }
        Err(e) => {
            tracing::error!(org = %org.id, error = %e, "could not release the Credly jobs waiting for new credentials; they run when their deferral ends")
        }
    }
}

/// Logs a warning per organization whose key is within a warning threshold or expired, and
/// updates the `accolade_credly_key_days_left` gauge. Returns the statuses.
pub async fn check_expiry(
    credly: &Credly,
    store: &dyn Store,
) -> anyhow::Result<Vec<(CredlyOrganization, KeyStatus)>> {
    let now = Utc::now();
    let mut out = Vec::new();
    for org in store.list_credly_orgs().await? {
        // OAuth client credentials have no known expiry.
        let Some(expires_at) = org.key_expires_at else {
            continue;
        };
        let s = key_status(expires_at, now, &credly.config.key_warning_days);
        crate::metrics::credly_key_days_left(&org.id, s.days_left);
        match s.level {
            "expired" => {
                tracing::error!(org = %org.id, name = %org.name, expired_at = %s.expires_at,
                "the Credly API key of {} has expired: issuing and sync wait until it is rotated", org.name)
            }
            "warning" => {
                tracing::warn!(org = %org.id, name = %org.name, days_left = s.days_left, expires_at = %s.expires_at,
                "the Credly API key of {} expires in {} day(s); rotate it", org.name, s.days_left)
            }
            _ => {}
        }
        out.push((org, s));
    }
    Ok(out)
}

/// Checks key expiry at start-up and then every 12 hours, logging warnings at the configured
/// thresholds and keeping the gauge current.
pub async fn watch_expiry(state: crate::state::AppState) {
    loop {
        if let Err(e) = check_expiry(&state.credly, &*state.store).await {
            tracing::warn!(error = %e, "could not check Credly key expiry");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(12 * 3600)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pick_the_tightest_window() {
        let now = Utc::now();
        let warn = [30, 7, 1];
        assert_eq!(key_status(now + Duration::days(90), now, &warn).level, "ok");
        let s = key_status(now + Duration::days(20), now, &warn);
        assert_eq!((s.level, s.threshold), ("warning", Some(30)));
        let s = key_status(now + Duration::days(5), now, &warn);
        assert_eq!((s.level, s.threshold), ("warning", Some(7)));
        let s = key_status(now + Duration::hours(12), now, &warn);
        assert_eq!((s.level, s.threshold), ("warning", Some(1)));
        assert_eq!(
            key_status(now - Duration::hours(1), now, &warn).level,
            "expired"
        );
    }

    #[test]
    fn bad_input_is_refused_before_calling_credly() {
        assert!(matches!(
            validate_input("not-a-uuid", "abcdefghij"),
            Err(CredlyFailure::Invalid {
                code: "invalid_organization_id",
                ..
            })
        ));
        assert!(matches!(
            validate_input("37659132-1c9e-4aba-8849-d1e4cb175e67", "short"),
            Err(CredlyFailure::Invalid {
                code: "invalid_api_key",
                ..
            })
        ));
    }

    #[test]
    fn credentials_are_one_complete_method() {
        let input = |k: Option<&str>, i: Option<&str>, s: Option<&str>| CredentialsInput {
            api_key: k.map(Into::into),
            client_id: i.map(Into::into),
            client_secret: s.map(Into::into),
        };
        let code = |r: Result<NewCredentials, CredlyFailure>| match r {
            Err(CredlyFailure::Invalid { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            input(Some("a-key-12345"), None, None).parse().unwrap(),
            NewCredentials::Token("a-key-12345".into())
        );
        assert_eq!(
            input(None, Some("cid"), Some("secret-123"))
                .parse()
                .unwrap(),
            NewCredentials::OAuth {
                client_id: "cid".into(),
                client_secret: "secret-123".into()
            }
        );
        for mixed in [
            input(Some("a-key-12345"), Some("cid"), Some("secret-123")),
            input(Some("a-key-12345"), Some("cid"), None),
            input(Some("a-key-12345"), None, Some("secret-123")),
        ] {
            assert_eq!(code(mixed.parse()), "credly_auth_mixed");
        }
        for half in [
            input(None, Some("cid"), None),
            input(None, None, Some("secret-123")),
            input(None, None, None),
        ] {
            assert_eq!(code(half.parse()), "credly_auth_incomplete");
        }
        assert_eq!(
            code(input(None, Some(""), Some("secret-123")).parse()),
            "invalid_client_id"
        );
        assert_eq!(
            code(input(None, Some("cid"), Some("short")).parse()),
            "invalid_client_secret"
        );
        assert_eq!(
            code(input(Some("x"), None, None).parse()),
            "invalid_api_key"
        );
    }
}
