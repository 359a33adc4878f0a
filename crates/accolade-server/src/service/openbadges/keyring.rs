//! The issuer's signing keys: generated on first start (one wins when several instances start
//! at once), sealed with the secrets box, rotated on demand (`accolade openbadges rotate-key`),
//! and cached for a few seconds so a rotation by another process is seen without a restart.
//! Retired keys stay in the DID document: credentials they signed still verify.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_openbadges::keys::{self, SigningKey, VerifyingKey};
use accolade_store::{NewObKey, ObKey, Store};
use anyhow::Context;
use chrono::Utc;
use parking_lot::Mutex;

use crate::service::secrets::SecretBox;

/// How long a read of the keys is reused.
const CACHE_FOR: Duration = Duration::from_secs(5);

/// The keys as read from the store, the active one opened.
pub struct Keys {
    /// Every key, oldest first.
    pub all: Vec<ObKey>,
    /// The active key's id and secret.
    pub active_id: String,
    pub active: SigningKey,
}

impl Keys {
    /// The public key of verification method fragment `id`.
    pub fn public(&self, id: &str) -> Option<VerifyingKey> {
        let key = self.all.iter().find(|k| k.id == id)?;
        keys::parse_public_multibase(&key.public_multibase).ok()
    }
}

pub struct KeyRing {
    secrets: SecretBox,
    cached: Mutex<Option<(Instant, Arc<Keys>)>>,
}

fn seal_context(id: &str) -> String {
    format!("openbadges-key:{id}")
}

fn new_key(secrets: &SecretBox) -> NewObKey {
    let key = keys::signing_key(rand::random());
    // A fragment nobody can confuse with another instance's key: the key's own start.
    let public = keys::public_multibase(&key.verifying_key());
    let id = format!("key-{}", &public[public.len() - 8..]);
    NewObKey {
        secret_sealed: secrets.seal(&hex::encode(key.to_bytes()), &seal_context(&id)),
        public_multibase: public,
        id,
    }
}

impl KeyRing {
    pub fn new(secrets: SecretBox) -> KeyRing {
        KeyRing {
            secrets,
            cached: Mutex::new(None),
        }
    }

    /// The keys, from the cache when it is fresh; a key is made if there is none.
    pub async fn get(&self, store: &dyn Store) -> anyhow::Result<Arc<Keys>> {
        if let Some((at, keys)) = &*self.cached.lock() {
            if at.elapsed() < CACHE_FOR {
                return Ok(keys.clone());
            }
        }
        let mut all = store.ob_keys().await?;
        if all.iter().all(|k| k.retired_at.is_some()) {
            let made = store
                .ob_add_key(new_key(&self.secrets), true, Utc::now())
                .await?;
            tracing::info!(key = %made.id, "Open Badges signing key ready");
            all = store.ob_keys().await?;
        }
        let keys = Arc::new(self.open(all)?);
        *self.cached.lock() = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// Makes a new active key; the old one is kept for verification. Returns the new key.
    pub async fn rotate(&self, store: &dyn Store) -> anyhow::Result<ObKey> {
        let key = store
            .ob_add_key(new_key(&self.secrets), false, Utc::now())
            .await?;
        *self.cached.lock() = None;
        Ok(key)
    }

    fn open(&self, all: Vec<ObKey>) -> anyhow::Result<Keys> {
        let active = all
            .iter()
            .find(|k| k.retired_at.is_none())
            .context("no active Open Badges key")?;
        let secret = self
            .secrets
            .open(&active.secret_sealed, &seal_context(&active.id))
            .context("cannot open the Open Badges signing key: is secrets.key the one it was sealed with?")?;
        let bytes: [u8; 32] = hex::decode(secret.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("the stored Open Badges key is not 32 bytes")?;
        let signing = keys::signing_key(bytes);
        anyhow::ensure!(
            keys::public_multibase(&signing.verifying_key()) == active.public_multibase,
            "the stored Open Badges key does not match its public key"
        );
        Ok(Keys {
            active_id: active.id.clone(),
            active: signing,
            all,
        })
    }
}
