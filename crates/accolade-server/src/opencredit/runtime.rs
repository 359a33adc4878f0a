//! What the `/v1.1` handlers share at run time: the rate limiter, the mailer, the image store
//! and workers, and short-lived caches of tokens and members. Held by `AppState`; it depends on
//! none of the handlers, so the state does not either.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accolade_store::{OcMember, OcToken, Store, StoreError};
use parking_lot::Mutex;

use super::media_store::{self, MediaStore};
use super::{limiter, mail};
use crate::config::OpenCreditConfig;

/// Tokens kept in memory at most (they never change, so the cache is only bounded).
const TOKEN_CACHE_MAX: usize = 100_000;
/// Members are re-read after this long (profiles change, seed 001: cache them briefly).
const MEMBER_TTL: Duration = Duration::from_secs(2);

/// What the `/v1.1` handlers share.
pub struct OpenCredit {
    pub limiter: limiter::Limiter,
    pub mailer: mail::Mailer,
    /// Where images are stored (media_root or an S3-compatible bucket).
    pub media: MediaStore,
    /// Workers that decode and render uploads, and the bounded wait for them.
    pub images: crate::service::blocking::Budget,
    tokens: Mutex<HashMap<String, OcToken>>,
    members: Mutex<HashMap<i64, (Instant, OcMember)>>,
}

impl OpenCredit {
    pub fn new(config: &OpenCreditConfig) -> anyhow::Result<OpenCredit> {
        Ok(OpenCredit {
            limiter: limiter::Limiter::new(&config.rate_limit_redis_url)?,
            mailer: mail::Mailer::new(&config.mail)?,
            media: MediaStore::new(config)?,
            images: media_store::image_budget(config),
            tokens: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
        })
    }

    /// A token by hash, from memory when it was seen before.
    pub async fn token(
        &self,
        store: &dyn Store,
        hash: &str,
    ) -> Result<Option<OcToken>, StoreError> {
        if let Some(t) = self.tokens.lock().get(hash) {
            return Ok(Some(t.clone()));
        }
        let found = store.oc_token(hash).await?;
        if let Some(t) = &found {
            let mut cache = self.tokens.lock();
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash.to_string(), t.clone());
        }
        Ok(found)
    }

    /// Drops a member from the cache (after a change made here).
    pub fn forget_member(&self, id: i64) {
        self.members.lock().remove(&id);
    }

    /// A member by id, from memory when read within the last two seconds.
    pub async fn member(&self, store: &dyn Store, id: i64) -> Result<Option<OcMember>, StoreError> {
        if let Some((at, m)) = self.members.lock().get(&id) {
            if at.elapsed() < MEMBER_TTL {
                return Ok(Some(m.clone()));
            }
        }
        let found = store.oc_member(id).await?;
        if let Some(m) = &found {
            let mut cache = self.members.lock();
            if cache.len() >= TOKEN_CACHE_MAX {
                cache.clear();
            }
            cache.insert(id, (Instant::now(), m.clone()));
        }
        Ok(found)
    }
}
