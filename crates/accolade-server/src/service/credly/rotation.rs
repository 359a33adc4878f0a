//! Rotating an organization's authorization token through Credly
//! (`POST /organizations/{org}/authorization_tokens/rotate`): now, on an operator's request, or
//! automatically once fewer than `credly.auto_rotate_days` days are left.
//!
//! Credly ends the old token the moment it answers the new one, so the order matters:
//! 1. claim the organization's rotation lease (a conditional UPDATE): of several instances on
//!    one database, or an operator and the periodic check, one rotates; the automatic claim also
//!    requires the key to be still due, so a key another instance has just rotated is left alone;
//! 2. call Credly with the current token;
//! 3. store the new token, sealed, before anything else (the write is retried for a while: the
//!    old token no longer works), which also frees the lease and records the attempt;
//! 4. then forget the cached key and release the jobs waiting for a key.
//!
//! If the call fails or times out, nothing is stored but the failed attempt: the old token stays
//! and stays in use. (If Credly did rotate and only its answer was lost, the old token is dead
//! and the operator must fetch the current one from Credly; the failure says so.) Calls in
//! flight when the token changes get a 401 and are repeated once with the new token
//! (`auth.rs`). Each attempt is logged without secrets, counted in
//! `accolade_credly_key_rotations_total{result, trigger}` and shown with the organization.

use std::time::Duration;

use accolade_credly::{Credentials, CredlyError};
use accolade_store::{
    CredlyAuthMethod, CredlyKey, CredlyOrganization, KeyRotation, RotationTrigger, Store,
    StoreError,
};
use chrono::{DateTime, Utc};

use super::orgs::{after_new_credentials, last4};
use super::{Credly, CredlyFailure};

/// How long a claim of a rotation lasts: far longer than one call to Credly (`timeout_secs`),
/// and short enough that a crashed instance blocks rotating for a few minutes only.
pub const LEASE: Duration = Duration::from_secs(300);
/// How often instances that run workers look for keys to rotate (also once at start).
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// Delays between attempts to store a new token when the database fails right after Credly
/// answered it (the old token is gone by then).
const STORE_RETRIES: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
];

/// Whether automatic rotation replaces a key now: it is on (`days > 0`), the key still works,
/// and fewer than `days` days are left before it expires.
pub fn due(expires_at: DateTime<Utc>, now: DateTime<Utc>, days: u32) -> bool {
    days > 0 && expires_at > now && expires_at - now < chrono::Duration::days(i64::from(days))
}

/// When automatic rotation will replace a key: the moment fewer than `days` days are left
/// (the first check after it rotates), or `None` when it is off.
pub fn scheduled_at(expires_at: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    (days > 0).then(|| expires_at - chrono::Duration::days(i64::from(days)))
}

/// Rotates the organization's token now (API, admin UI, CLI). `Conflict` when the organization
/// uses OAuth (`credly_auth_method`) or another rotation is under way
/// (`credly_rotation_in_progress`); `KeyExpired` when the token no longer works (Credly cannot
/// rotate it: give a new key instead).
pub async fn rotate_now(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
) -> Result<CredlyOrganization, CredlyFailure> {
    let org = rotatable(store, org_id).await?;
    let now = Utc::now();
    if !store
        .claim_credly_key_rotation(org_id, now, now + lease(), None)
        .await?
    {
        return Err(CredlyFailure::Store(StoreError::Conflict {
            code: "credly_rotation_in_progress",
            detail: format!(
                "the key of Credly organization {org_id} is being rotated right now; look again in a moment"
            ),
        }));
    }
    rotate_claimed(credly, store, &org, RotationTrigger::Manual).await
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).unwrap_or_else(|_| chrono::Duration::minutes(5))
}

/// The organization, if its key can be rotated through Credly.
async fn rotatable(store: &dyn Store, org_id: &str) -> Result<CredlyOrganization, CredlyFailure> {
    let org = store.get_credly_org(org_id).await?;
    match (org.auth_method, org.key_expires_at) {
        (CredlyAuthMethod::OAuth, _) | (_, None) => {
            Err(CredlyFailure::Store(StoreError::Conflict {
                code: "credly_auth_method",
                detail: format!(
                    "Credly organization {org_id} authenticates with OAuth client credentials: \
                     it has no authorization token to rotate"
                ),
            }))
        }
        (CredlyAuthMethod::Token, Some(expired_at)) if expired_at <= Utc::now() => {
            Err(CredlyFailure::KeyExpired {
                org: org.id,
                expired_at,
            })
        }
        _ => Ok(org),
    }
}

/// Rotates a key whose lease this caller holds (see the module docs for the order).
async fn rotate_claimed(
    credly: &Credly,
    store: &dyn Store,
    org: &CredlyOrganization,
    trigger: RotationTrigger,
) -> Result<CredlyOrganization, CredlyFailure> {
    let org_id = org.id.as_str();
    let started = Utc::now();
    let key = match store
        .credly_org_key(org_id)
        .await
        .map_err(CredlyFailure::from)
        .and_then(|sealed| {
            credly
                .secrets
                .open(&sealed, org_id)
                .map_err(|e| CredlyFailure::Internal(format!("organization {org_id}: {e}")))
        }) {
        Ok(k) => k,
        Err(e) => {
            record_failure(store, org, trigger, started, &e.to_string()).await;
            return Err(e);
        }
    };
    credly.pace(org_id).await;
    let rotated = credly
        .client
        .rotate_authorization_token(Credentials::token(org_id, &key))
        .await;
    let rotated = match rotated {
        Ok(r) => r,
        Err(e) => {
            let detail = failure_detail(&e);
            record_failure(store, org, trigger, started, &detail).await;
            return Err(CredlyFailure::Credly(e));
        }
    };
    let new_key = CredlyKey {
        ciphertext: credly.secrets.seal(&rotated.token, org_id),
        last4: last4(&rotated.token),
        created_at: rotated.created_at,
        expires_at: rotated.expires_at,
    };
    let record = KeyRotation {
        at: started,
        trigger,
        ok: true,
        detail: None,
    };
    let stored = store_new_key(store, org_id, record, new_key).await?;
    crate::metrics::credly_key_rotation("ok", trigger.as_str());
    tracing::info!(org = %org_id, trigger = trigger.as_str(), key_last4 = ?stored.api_key_last4,
        key_expires_at = ?stored.key_expires_at,
        "the Credly authorization token of {} was rotated through Credly", stored.name);
    after_new_credentials(credly, store, &stored).await;
    Ok(stored)
}

/// Stores the new token, retrying while the database fails: the old token is already dead.
async fn store_new_key(
    store: &dyn Store,
    org_id: &str,
    record: KeyRotation,
    key: CredlyKey,
) -> Result<CredlyOrganization, CredlyFailure> {
    let mut delays = STORE_RETRIES.iter();
    loop {
        match store
            .finish_credly_key_rotation(org_id, record.clone(), Some(key.clone()))
            .await
        {
            Ok(org) => return Ok(org),
            Err(e) => match delays.next() {
                Some(d) => {
                    tracing::warn!(org = %org_id, error = %e, "storing the rotated Credly token failed; trying again");
                    tokio::time::sleep(*d).await;
                }
                None => {
                    crate::metrics::credly_key_rotation("failed", record.trigger.as_str());
                    tracing::error!(org = %org_id, error = %e,
                        "Credly rotated the authorization token but the new one could not be stored; \
                         the old one no longer works: set the current token from Credly with rotate-key");
                    return Err(CredlyFailure::Internal(format!(
                        "Credly rotated the token of organization {org_id} but storing the new one failed: {e}"
                    )));
                }
            },
        }
    }
}

/// What the operator is told about a failed rotation call.
fn failure_detail(e: &CredlyError) -> String {
    match e {
        CredlyError::Timeout | CredlyError::Network(_) | CredlyError::Decode(_) => format!(
            "{e}. The old token stays in use; if Credly did rotate it and its answer was lost, \
             the old token no longer works: take the current one from Credly (Developers > \
             Authorization Tokens) and set it with rotate-key"
        ),
        CredlyError::Unauthorized(_) => format!(
            "{e}. Credly no longer accepts the current token: take the current one from Credly \
             (Developers > Authorization Tokens) and set it with rotate-key"
        ),
        other => format!("{other}. The old token stays in use"),
    }
}

/// Records a failed attempt (and frees the lease); a failure to record is only logged: the
/// lease then runs out by itself.
async fn record_failure(
    store: &dyn Store,
    org: &CredlyOrganization,
    trigger: RotationTrigger,
    at: DateTime<Utc>,
    detail: &str,
) {
    crate::metrics::credly_key_rotation("failed", trigger.as_str());
    tracing::warn!(org = %org.id, trigger = trigger.as_str(),
        "rotating the Credly authorization token of {} failed half-way: the old token stays until a new one is stored: {detail}",
        org.name);
    let record = KeyRotation {
        at,
        trigger,
        ok: false,
        detail: Some(detail.to_string()),
    };
    if let Err(e) = store
        .finish_credly_key_rotation(&org.id, record, None)
        .await
    {
        tracing::error!(org = %org.id, error = %e, "could not record the failed rotation");
    }
}

/// One pass of automatic rotation: every token organization whose key is due is rotated, at
/// most once (a failure waits for the next pass). Returns what happened per organization
/// rotated or attempted.
pub async fn auto_pass(
    credly: &Credly,
    store: &dyn Store,
    days: u32,
) -> Result<Vec<(String, Result<CredlyOrganization, CredlyFailure>)>, StoreError> {
    let mut out = Vec::new();
    if days == 0 {
        return Ok(out);
    }
    for org in store.list_credly_orgs().await? {
        let (CredlyAuthMethod::Token, Some(expires_at)) = (org.auth_method, org.key_expires_at)
        else {
            continue;
        };
        let now = Utc::now();
        if expires_at <= now {
            tracing::warn!(org = %org.id, "the Credly authorization token of {} has expired and cannot be rotated through Credly; set a new one with rotate-key", org.name);
            continue;
        }
        if !due(expires_at, now, days) {
            continue;
        }
        let due_before = now + chrono::Duration::days(i64::from(days));
        match store
            .claim_credly_key_rotation(&org.id, now, now + lease(), Some(due_before))
            .await
        {
            Ok(true) => {}
            // Another instance (or an operator) is rotating it, or just did.
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(org = %org.id, error = %e, "could not claim the rotation of a Credly key");
                continue;
            }
        }
        let result = rotate_claimed(credly, store, &org, RotationTrigger::Auto).await;
        out.push((org.id.clone(), result));
    }
    Ok(out)
}

/// Automatic rotation in an instance that runs workers: a pass at start, then every hour,
/// while `credly.auto_rotate_days` is above 0.
pub async fn run_auto(state: crate::state::AppState) {
    let days = state.config.credly.auto_rotate_days;
    if days == 0 {
        return;
    }
    loop {
        if let Err(e) = auto_pass(&state.credly, &*state.store, days).await {
            tracing::warn!(error = %e, "automatic Credly key rotation: cannot list organizations");
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_with_fewer_days_left_than_configured() {
        let now = Utc::now();
        let days = chrono::Duration::days;
        // Off.
        assert!(!due(now + days(1), now, 0));
        // 30-day rule.
        assert!(!due(now + days(31), now, 30));
        assert!(
            !due(now + days(30), now, 30),
            "exactly 30 days left is not fewer"
        );
        assert!(due(now + days(30) - chrono::Duration::seconds(1), now, 30));
        assert!(due(now + days(2), now, 30));
        // An expired key cannot rotate itself.
        assert!(!due(now - chrono::Duration::seconds(1), now, 30));
        assert!(!due(now, now, 30));
    }

    #[test]
    fn the_scheduled_rotation_is_the_days_before_expiry() {
        let expires = Utc::now() + chrono::Duration::days(100);
        assert_eq!(scheduled_at(expires, 0), None);
        assert_eq!(
            scheduled_at(expires, 30),
            Some(expires - chrono::Duration::days(30))
        );
        // Once that moment has passed, the key is due.
        let at = scheduled_at(expires, 30).unwrap();
        assert!(!due(expires, at - chrono::Duration::seconds(1), 30));
        assert!(due(expires, at + chrono::Duration::seconds(1), 30));
    }
}
