//! How calls to Credly authenticate: the organization's credential for its next call (its
//! decrypted authorization token, or an OAuth access token from [`super::oauth`]), and the one
//! retry after Credly answers 401.
//!
//! A 401 does not always mean the credential is bad for good:
//! - an access token may have expired early, or been revoked: the cached token is dropped, a
//!   new one requested (once, shared by every job of the organization) and the call repeated
//!   once;
//! - an authorization token may have been rotated while the call was in flight (by this process,
//!   by the CLI, or by another instance whose new key this process has not read yet, since
//!   decrypted keys are cached for a few seconds): the key is read again and, if it changed, the
//!   call is repeated once with the new key. If it did not change but a rotation is running
//!   (its lease is held), Credly may have replaced the key a moment before we store it: the call
//!   is deferred for a few seconds rather than failed;
//! - otherwise the 401 stands, and with it the usual classification (permanent).
//!
//! Errors of the token endpoint are not the call's: a refusal of the client credentials
//! becomes [`CredlyFailure::CredentialsRefused`] (jobs wait for new credentials, as for an
//! expired key), an outage stays retryable.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use accolade_credly::{ClientCredentials, Credentials, CredlyError};
use accolade_store::{CredlyAuthMethod, Store};
use chrono::Utc;

use super::oauth::TokenFailure;
use super::orgs::{client_id_context, client_secret_context};
use super::{Credly, CredlyFailure};

/// The credential one call sends, owned so that a retry can use another.
#[derive(Clone, PartialEq, Eq)]
pub enum CallAuth {
    /// An authorization token (HTTP Basic).
    Key(Arc<str>),
    /// An OAuth access token (Bearer).
    Bearer(Arc<str>),
}

impl CallAuth {
    /// The client's credentials for `org_id`.
    pub fn credentials<'a>(&'a self, org_id: &'a str) -> Credentials<'a> {
        match self {
            CallAuth::Key(k) => Credentials::token(org_id, k),
            CallAuth::Bearer(t) => Credentials::bearer(org_id, t),
        }
    }
}

impl std::fmt::Debug for CallAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallAuth::Key(_) => "CallAuth::Key(..)",
            CallAuth::Bearer(_) => "CallAuth::Bearer(..)",
        })
    }
}

/// A decrypted key and its expiry, or the mark of an OAuth organization, with when it was read.
#[derive(Clone)]
pub(super) enum CachedAuth {
    Key {
        key: Arc<str>,
        expires_at: chrono::DateTime<Utc>,
    },
    OAuth,
}

impl Credly {
    /// The credential for the organization's next call. An expired key is
    /// [`CredlyFailure::KeyExpired`]: calls must wait for a new key instead of failing one by
    /// one.
    pub async fn auth(&self, store: &dyn Store, org_id: &str) -> Result<CallAuth, CredlyFailure> {
        match self.cached_auth(store, org_id).await? {
            CachedAuth::Key { key, expires_at } => {
                if expires_at <= Utc::now() {
                    return Err(CredlyFailure::KeyExpired {
                        org: org_id.to_string(),
                        expired_at: expires_at,
                    });
                }
                Ok(CallAuth::Key(key))
            }
            CachedAuth::OAuth => self.access_token(store, org_id).await.map(CallAuth::Bearer),
        }
    }

    /// The organization's method and, for a key, the decrypted key: from the short cache, else
    /// from the store.
    async fn cached_auth(
        &self,
        store: &dyn Store,
        org_id: &str,
    ) -> Result<CachedAuth, CredlyFailure> {
        if let Some((auth, at)) = self.keys.lock().get(org_id).cloned() {
            if at.elapsed() < super::KEY_CACHE_TTL {
                return Ok(auth);
            }
        }
        let org = store.get_credly_org(org_id).await?;
        let auth = match (org.auth_method, org.key_expires_at) {
            (CredlyAuthMethod::Token, Some(expires_at)) => {
                if expires_at <= Utc::now() {
                    // Not decrypted, not cached: nothing can use it, and a rotation must be
                    // seen at once.
                    return Err(CredlyFailure::KeyExpired {
                        org: org.id,
                        expired_at: expires_at,
                    });
                }
                let sealed = store.credly_org_key(org_id).await?;
                let key = self
                    .secrets
                    .open(&sealed, org_id)
                    .map_err(|e| CredlyFailure::Internal(format!("organization {org_id}: {e}")))?;
                CachedAuth::Key {
                    key: Arc::from(key.as_str()),
                    expires_at,
                }
            }
            (CredlyAuthMethod::Token, None) => {
                return Err(CredlyFailure::Internal(format!(
                    "organization {org_id} has no key"
                )))
            }
            (CredlyAuthMethod::OAuth, _) => CachedAuth::OAuth,
        };
        self.keys
            .lock()
            .insert(org_id.to_string(), (auth.clone(), Instant::now()));
        Ok(auth)
    }

    /// An access token for an OAuth organization (see `oauth.rs`).
    async fn access_token(
        &self,
        store: &dyn Store,
        org_id: &str,
    ) -> Result<Arc<str>, CredlyFailure> {
        let outcome = self
            .tokens
            .get(org_id, || async {
                let sealed = store.credly_org_oauth_client(org_id).await.map_err(|e| {
                    TokenFailure::Local {
                        retryable: e.is_retryable(),
                        detail: format!("the OAuth client of organization {org_id}: {e}"),
                    }
                })?;
                let open = |c: &[u8], context: String| {
                    self.secrets
                        .open(c, &context)
                        .map_err(|e| TokenFailure::Local {
                            retryable: false,
                            detail: format!("the OAuth client of organization {org_id}: {e}"),
                        })
                };
                let (id, secret) = (
                    open(&sealed.client_id_ciphertext, client_id_context(org_id))?,
                    open(
                        &sealed.client_secret_ciphertext,
                        client_secret_context(org_id),
                    )?,
                );
                let started = Instant::now();
                let token = self
                    .client
                    .request_access_token(
                        ClientCredentials {
                            client_id: &id,
                            client_secret: &secret,
                        },
                        &self.config.oauth_scope,
                    )
                    .await;
                crate::metrics::credly_token_request(
                    if token.is_ok() { "ok" } else { "failed" },
                    started.elapsed().as_secs_f64(),
                );
                token.map_err(TokenFailure::from)
            })
            .await;
        outcome.map_err(|e| token_failure(org_id, e))
    }

    /// Runs `call` with the organization's credential; after a 401, once more with a fresh
    /// credential when there is one (see the module docs).
    pub async fn with_auth<T, F, Fut>(
        &self,
        store: &dyn Store,
        org_id: &str,
        call: F,
    ) -> Result<T, CredlyFailure>
    where
        F: Fn(CallAuth) -> Fut,
        Fut: Future<Output = Result<T, CredlyError>>,
    {
        let first = self.auth(store, org_id).await?;
        match call(first.clone()).await {
            Err(CredlyError::Unauthorized(message)) => {
                match self.after_unauthorized(store, org_id, &first).await? {
                    Some(second) => {
                        tracing::info!(
                            org = org_id,
                            "Credly refused the credential with 401; retrying once with a fresh one"
                        );
                        call(second).await.map_err(Into::into)
                    }
                    None => Err(CredlyError::Unauthorized(message).into()),
                }
            }
            other => other.map_err(Into::into),
        }
    }

    /// A credential other than `used` to retry with, if there is one.
    async fn after_unauthorized(
        &self,
        store: &dyn Store,
        org_id: &str,
        used: &CallAuth,
    ) -> Result<Option<CallAuth>, CredlyFailure> {
        if let CallAuth::Bearer(token) = used {
            self.tokens.invalidate(org_id, token).await;
        }
        self.keys.lock().remove(org_id);
        let fresh = self.auth(store, org_id).await?;
        if &fresh != used {
            return Ok(Some(fresh));
        }
        // The same key again: is it being replaced right now?
        let org = store.get_credly_org(org_id).await?;
        if org.rotation_lease_until.is_some_and(|t| t > Utc::now()) {
            return Err(CredlyFailure::Rotating {
                org: org_id.to_string(),
            });
        }
        Ok(None)
    }
}

/// A failed token request in the bridge's terms: the credentials refused (or unusable, e.g.
/// they no longer open with this server's secrets key) is a state the operator resolves, like
/// an expired key; an outage stays a retryable Credly error.
fn token_failure(org_id: &str, e: TokenFailure) -> CredlyFailure {
    if e.is_refusal() {
        return CredlyFailure::CredentialsRefused {
            org: org_id.to_string(),
            detail: e.to_string(),
        };
    }
    match e {
        TokenFailure::Credly(e) => CredlyFailure::Credly(e),
        TokenFailure::Local { detail, .. } => CredlyFailure::Unavailable(detail),
    }
}
