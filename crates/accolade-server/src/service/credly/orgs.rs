//! Organizations: listing and reading them, adding one (checked against Credly before anything
//! is stored), rotating its key, and the key's expiry status (Credly keys live 180 days).

use accolade_credly::{Credentials, CredlyError, KEY_LIFETIME_DAYS};
use accolade_store::{CredlyKey, CredlyOrganization, NewCredlyOrganization, Store, StoreError};
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

fn validate_input(org_id: &str, api_key: &str) -> Result<(), CredlyFailure> {
    if !accolade_domain::ids::is_uuid(org_id) {
        return Err(CredlyFailure::Invalid {
            code: "invalid_organization_id",
            detail: format!("`{org_id}` is not a UUID; Credly organization ids look like 37659132-1c9e-4aba-8849-d1e4cb175e67"),
        });
    }
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
    let cred = Credentials {
        org_id,
        api_key: api_key.trim(),
    };
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
            .find(|t| t.token.as_deref() == Some(cred.api_key)),
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
    let last4: String = {
        let chars: Vec<char> = cred.api_key.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    let key = CredlyKey {
        ciphertext: credly.secrets.seal(cred.api_key, org_id),
        last4,
        created_at,
        expires_at,
    };
    Ok((org.name, key))
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

/// Whether the stored key of an organization opens with this server's secrets key (after the
/// key file changed, it does not): `Err` says why not. A key that cannot be read is not judged.
pub async fn key_opens(credly: &Credly, store: &dyn Store, id: &str) -> Result<(), String> {
    match store.credly_org_key(id).await {
        Ok(sealed) => credly
            .secrets
            .open(&sealed, id)
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}

/// Adds an organization after Credly confirmed the key and told us its name.
pub async fn add(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    api_key: &str,
) -> Result<CredlyOrganization, CredlyFailure> {
    let org_id = normalize_id(org_id);
    validate_input(&org_id, api_key)?;
    if store.get_credly_org(&org_id).await.is_ok() {
        return Err(CredlyFailure::Store(accolade_store::StoreError::Conflict {
            code: "organization_exists",
            detail: format!(
                "Credly organization {org_id} is already configured; rotate its key instead"
            ),
        }));
    }
    let (name, key) = check_key(credly, &org_id, api_key).await?;
    let org = store
        .add_credly_org(NewCredlyOrganization {
            id: org_id.clone(),
            name,
            key,
        })
        .await?;
    tracing::info!(org = %org.id, name = %org.name, key_expires_at = %org.key_expires_at, "Credly organization added");
    Ok(org)
}

/// Replaces the key (after checking the new one with Credly). Calls in flight keep using the
/// old key; every later call reads the new one, so there is no downtime. Jobs deferred because
/// the old key had expired are made due at once. The API, the CLI and the admin UI all rotate
/// through here.
pub async fn rotate_key(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    api_key: &str,
) -> Result<CredlyOrganization, CredlyFailure> {
    validate_input(org_id, api_key)?;
    store.get_credly_org(org_id).await?;
    let (name, key) = check_key(credly, org_id, api_key).await?;
    let org = store
        .update_credly_org(org_id, Some(name), Some(key))
        .await?;
    credly.forget_key(org_id);
    tracing::info!(org = %org.id, key_expires_at = %org.key_expires_at, "Credly API key rotated");
    // The key is stored: a failure here must not report the rotation as failed. The jobs then
    // wait out their deferral (at most ten minutes) and run with the new key.
    match store.release_jobs_waiting_for_key(org_id, Utc::now()).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(org = %org.id, jobs = n, "{n} Credly job(s) waiting for the new key of {} are due now", org.name)
        }
        Err(e) => {
            tracing::error!(org = %org.id, error = %e, "could not release the Credly jobs waiting for the new key; they run when their deferral ends")
        }
    }
    Ok(org)
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
        let s = key_status(org.key_expires_at, now, &credly.config.key_warning_days);
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
}
