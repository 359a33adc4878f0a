//! The Credly bridge: organizations and their keys, template sync, webhook notifications, and
//! issuing/revoking badges through the outbox.
//!
//! - `orgs`: add an organization (checked against Credly), rotate its key, key expiry status.
//! - `sync`: full template sync of one organization (or all).
//! - `webhook`: record notifications fast; confirm and apply them in a job.
//! - `delivery`: the issue/revoke jobs, with duplicate reconciliation.
//! - `worker`: claims Credly jobs, runs them concurrently under the per-organization rate limit,
//!   and turns failures into retries (backoff + jitter, `Retry-After`), deferrals or dead jobs.

pub mod delivery;
pub mod orgs;
pub mod sync;
pub mod webhook;
pub mod worker;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use accolade_credly::{CredlyClient, CredlyError};
use accolade_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::CredlyConfig;
use crate::service::secrets::SecretBox;

/// Shared by handlers, CLI and workers.
#[derive(Clone)]
pub struct Credly {
    pub client: CredlyClient,
    pub secrets: SecretBox,
    pub config: Arc<CredlyConfig>,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// Webhook confirmation calls per organization, on top of `limiter`: the share of the
    /// organization's budget that notifications (which anyone can send) may use.
    webhook_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// Decrypted keys for a few seconds, so a busy outbox does not read and decrypt the key for
    /// every call. Short enough that a rotation by another instance is picked up quickly (the old
    /// key keeps working meanwhile); a rotation in this process clears it at once.
    keys: Arc<Mutex<HashMap<String, CachedKey>>>,
    /// Template id -> owning organization (never changes for a synced template).
    template_orgs: Arc<Mutex<HashMap<String, String>>>,
}

/// A decrypted key, its expiry, and when it was read.
type CachedKey = (String, DateTime<Utc>, Instant);

/// How long a decrypted key is reused.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);

/// Why a Credly operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CredlyFailure {
    #[error(transparent)]
    Credly(#[from] CredlyError),
    #[error("the API key of Credly organization {org} expired on {expired_at}; rotate it (POST /api/v1/credly/organizations/{org}/key or `accolade credly rotate-key`)")]
    KeyExpired {
        org: String,
        expired_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{detail}")]
    Invalid { code: &'static str, detail: String },
    /// Too many webhook notifications wait to be confirmed; the sender should retry later.
    #[error("{detail}")]
    Backlog { detail: String },
    #[error("{0}")]
    Internal(String),
}

impl Credly {
    pub fn new(config: CredlyConfig, secrets: SecretBox) -> anyhow::Result<Credly> {
        let client = CredlyClient::new(
            config.effective_api_base_url(),
            Duration::from_secs(config.timeout_secs),
        )?;
        // Burst of one: requests are spread evenly, so the observed rate matches the setting.
        let limiter = NonZeroU32::new(config.rate_limit_per_second).map(|n| {
            Arc::new(RateLimiter::keyed(
                Quota::per_second(n).allow_burst(NonZeroU32::MIN),
            ))
        });
        let lookups = NonZeroU32::new(config.webhook_lookups_per_second).unwrap_or(NonZeroU32::MIN);
        let webhook_limiter = Arc::new(RateLimiter::keyed(
            Quota::per_second(lookups).allow_burst(NonZeroU32::MIN),
        ));
        Ok(Credly {
            client,
            secrets,
            config: Arc::new(config),
            limiter,
            webhook_limiter,
            keys: Arc::default(),
            template_orgs: Arc::default(),
        })
    }

    /// Waits for the organization's rate limiter (no-op when it is off).
    pub async fn pace(&self, org_id: &str) {
        if let Some(l) = &self.limiter {
            l.until_key_ready(&org_id.to_string()).await;
        }
    }

    /// Waits for a webhook confirmation call's turn: first the webhook share, then the
    /// organization's limiter like any call. Only one confirmation per organization waits on the
    /// shared limiter at a time, so issuing never queues behind a flood of notifications.
    pub async fn pace_webhook(&self, org_id: &str) {
        self.webhook_limiter
            .until_key_ready(&org_id.to_string())
            .await;
        self.pace(org_id).await;
    }

    /// The organization's API key, unless it has expired (then calls must wait for a rotation
    /// instead of failing one by one).
    pub async fn api_key(&self, store: &dyn Store, org_id: &str) -> Result<String, CredlyFailure> {
        if let Some((key, expires_at, at)) = self.keys.lock().get(org_id).cloned() {
            if at.elapsed() < KEY_CACHE_TTL && expires_at > Utc::now() {
                return Ok(key);
            }
        }
        let org = store.get_credly_org(org_id).await?;
        if org.key_expires_at <= Utc::now() {
            return Err(CredlyFailure::KeyExpired {
                org: org.id,
                expired_at: org.key_expires_at,
            });
        }
        let sealed = store.credly_org_key(org_id).await?;
        let key = self
            .secrets
            .open(&sealed, org_id)
            .map_err(|e| CredlyFailure::Internal(format!("organization {org_id}: {e}")))?;
        self.keys.lock().insert(
            org_id.to_string(),
            (key.clone(), org.key_expires_at, Instant::now()),
        );
        Ok(key)
    }

    /// Forgets cached keys (after a rotation).
    pub fn forget_key(&self, org_id: &str) {
        self.keys.lock().remove(org_id);
    }

    /// The Credly organization that owns a template.
    pub async fn template_org(
        &self,
        store: &dyn Store,
        template_id: &str,
    ) -> Result<String, CredlyFailure> {
        if let Some(org) = self.template_orgs.lock().get(template_id).cloned() {
            return Ok(org);
        }
        let template = store.get_template(template_id).await?.template;
        let org = template
            .organization_id
            .ok_or_else(|| CredlyFailure::Invalid {
                code: "template_without_organization",
                detail: format!("template {template_id} has no Credly organization"),
            })?;
        self.template_orgs
            .lock()
            .insert(template_id.to_string(), org.clone());
        Ok(org)
    }

    /// Link to a template's page on the Credly dashboard.
    pub fn dashboard_url(&self, org_id: &str, template_id: &str) -> String {
        let base = self.config.effective_base_url().trim_end_matches('/');
        format!("{base}/mgmt/organizations/{org_id}/badges/templates/{template_id}/details")
    }
}
