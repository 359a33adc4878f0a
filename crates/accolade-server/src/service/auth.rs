//! Admin API tokens: creation (the secret is shown once; only its SHA-256 is stored) and
//! verification with a short-lived in-memory cache so the ingest path does not pay a database
//! read per request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accolade_store::{ApiToken, Store};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Tokens start with this prefix so secret scanners and humans recognise them.
pub const TOKEN_PREFIX: &str = "acl_";
const CACHE_TTL: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 10_000;

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

/// Creates a token; returns it with the secret, which is never retrievable again.
pub async fn create_token(store: &dyn Store, name: &str) -> anyhow::Result<(ApiToken, String)> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        anyhow::bail!("token name must be 1-100 characters");
    }
    let secret = format!("{TOKEN_PREFIX}{}", random_secret());
    let token = store.create_api_token(name, &hash_secret(&secret)).await?;
    Ok((token, secret))
}

/// Verified token hashes and when they were verified.
#[derive(Default)]
pub struct TokenCache {
    verified: Mutex<HashMap<String, (Instant, String)>>,
}

impl TokenCache {
    /// The token's id if `secret` is a valid token.
    pub async fn verify(&self, store: &dyn Store, secret: &str) -> anyhow::Result<Option<String>> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        if let Some((at, id)) = self.verified.lock().get(&hash) {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(id.clone()));
            }
        }
        let found = store.find_api_token(&hash).await?;
        if let Some(t) = &found {
            let mut cache = self.verified.lock();
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (Instant::now(), t.id.clone()));
        }
        Ok(found.map(|t| t.id))
    }
}
