//! The Credly bridge: organizations and their keys, template sync, webhook notifications, and
//! issuing/revoking badges through the outbox.
//!
//! - `orgs`: add an organization (checked against Credly) with a key or OAuth client
//!   credentials, replace its credentials, key expiry status.
//! - `auth`: the credential of each call (key or OAuth access token) and the one retry after a
//!   401; `oauth`: the per-organization access-token cache with one request in flight.
//! - `rotation`: rotating a key through Credly, now or automatically before it expires.
//! - `sync`: full template sync of one organization (or all).
//! - `webhook`: record notifications fast; confirm and apply them in a job.
//! - `delivery`: the issue/revoke jobs, with duplicate reconciliation.
//! - `worker`: claims Credly jobs, runs them concurrently under the per-organization rate limit,
//!   and turns failures into retries (backoff + jitter, `Retry-After`), deferrals or dead jobs.

pub mod auth;
pub mod delivery;
pub mod oauth;
pub mod orgs;
pub mod rotation;
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
    /// Each organization's method and decrypted key for a few seconds, so a busy outbox does
    /// not read and decrypt the key for every call. Short enough that a change by another
    /// instance is picked up quickly (a call refused meanwhile reads the key again: `auth.rs`);
    /// a change in this process clears it at once.
    keys: Arc<Mutex<HashMap<String, (auth::CachedAuth, Instant)>>>,
    /// OAuth access tokens per organization (`oauth.rs`).
    tokens: Arc<oauth::AccessTokens>,
    /// Template id -> owning organization (never changes for a synced template).
    template_orgs: Arc<Mutex<HashMap<String, String>>>,
}

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
    /// Credly refused the organization's OAuth client credentials (or they cannot be read):
    /// like an expired key, calls wait until the credentials are replaced.
    #[error("Credly refused the OAuth client credentials of organization {org} ({detail}); replace them (POST /api/v1/credly/organizations/{org}/key or `accolade credly rotate-key --client-id …`)")]
    CredentialsRefused { org: String, detail: String },
    /// Credly refused the key while a rotation of it is under way: the new key is about to be
    /// stored, so the call waits a few seconds instead of failing.
    #[error(
        "the API key of Credly organization {org} is being rotated; the call waits for the new key"
    )]
    Rotating { org: String },
    /// A local resource the call needs is not available now (retryable).
    #[error("{0}")]
    Unavailable(String),
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
        )?
        .with_token_url(config.effective_oauth_token_url())?;
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
            tokens: Arc::default(),
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

    /// Forgets the cached credentials of an organization (after they changed).
    pub fn forget_key(&self, org_id: &str) {
        self.keys.lock().remove(org_id);
        self.tokens.forget(org_id);
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
