//! Per-app rate limits of the Open Credit API (seed 001, "Rate limiting").
//!
//! Unauthenticated requests are counted per app, authenticated ones per app and user, against
//! the app's tier (Sandbox 20, Light 120, Medium 240, Heavy 480 per minute; Enterprise is not
//! limited). The tier is read from the app on every request, so a tier change applies to the
//! next request.
//!
//! Counting is a fixed window of one clock minute per subject: at most N requests from
//! hh:mm:00 to hh:mm:59, the N+1st refused with `Retry-After` = seconds to the next minute. (A
//! token bucket such as governor's GCRA refills continuously, so it lets more than N through
//! within 60 seconds; the seed's numbers are requests per minute.) The counter lives in this
//! process, or in Redis when `opencredit.rate_limit_redis_url` is set, so that every instance
//! shares the counts (`INCR` + `EXPIRE` on a key per subject and minute). If Redis cannot be
//! reached the request is let through and a warning is logged: an outage of the counter store
//! must not take the API down with it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accolade_opencredit::tiers::Tier;
use tokio::sync::Mutex;

/// Who a request is counted for. Apps are named by their API key, which is random and unique
/// across deployments (ids restart at 1 in every database, and deployments may share a Redis).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    App(String),
    User { app: String, member: i64 },
}

impl Subject {
    fn key(&self) -> String {
        match self {
            Subject::App(app) => app.clone(),
            Subject::User { app, member } => format!("{app}:m{member}"),
        }
    }
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per minute of the tier (`None`: not limited).
    pub limit: Option<u32>,
    pub remaining: u32,
    /// Seconds until a refused request may be retried (or the window resets).
    pub reset_secs: u64,
}

impl Decision {
    /// The decision for unlimited tiers (and when limiting is off).
    pub fn unlimited() -> Decision {
        Decision {
            allowed: true,
            limit: None,
            remaining: 0,
            reset_secs: 0,
        }
    }
}

/// Longest wait for Redis (connect, or one answer) before a request is let through.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Shards of the in-process counter (one lock each, so concurrent requests rarely wait).
const SHARDS: usize = 16;

/// Counts per key within the current minute.
#[derive(Default)]
struct Shard {
    minute: u64,
    counts: HashMap<String, u64>,
}

pub struct Limiter {
    local: Vec<parking_lot::Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    redis: Option<RedisCounter>,
}

/// The current clock minute and the seconds left in it.
fn window() -> (u64, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    (now / 60, 60 - now % 60)
}

struct RedisCounter {
    client: redis::Client,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl Limiter {
    pub fn new(redis_url: &str) -> anyhow::Result<Limiter> {
        let local = (0..SHARDS).map(|_| Default::default()).collect();
        let redis = if redis_url.is_empty() {
            None
        } else {
            Some(RedisCounter {
                client: redis::Client::open(redis_url)?,
                conn: Mutex::new(None),
            })
        };
        Ok(Limiter {
            local,
            hasher: Default::default(),
            redis,
        })
    }

    /// Counts one request of `subject` against `tier`.
    pub async fn check(&self, tier: Tier, subject: &Subject) -> Decision {
        let Some(limit) = tier.per_minute() else {
            return Decision::unlimited();
        };
        // The tier is part of the key: a tier change starts a fresh count under the new limit.
        self.count(format!("{}:{}", tier.as_str(), subject.key()), limit)
            .await
    }

    /// Counts one event under `key` against `limit` per clock minute (shared through Redis
    /// when configured, like the tiers).
    pub async fn count(&self, key: String, limit: u32) -> Decision {
        if let Some(redis) = &self.redis {
            match redis.count(&key).await {
                Ok((count, reset_secs)) => {
                    return Decision {
                        allowed: count <= u64::from(limit),
                        limit: Some(limit),
                        remaining: u64::from(limit).saturating_sub(count) as u32,
                        reset_secs,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate-limit counter in Redis unavailable; request let through");
                    return Decision {
                        allowed: true,
                        limit: Some(limit),
                        remaining: 0,
                        reset_secs: 60,
                    };
                }
            }
        }
        let (minute, reset_secs) = window();
        let count = self.count_local(key, minute);
        Decision {
            allowed: count <= u64::from(limit),
            limit: Some(limit),
            remaining: u64::from(limit).saturating_sub(count) as u32,
            reset_secs,
        }
    }

    /// Adds one to the key's count in `minute`; a new minute starts every shard afresh.
    fn count_local(&self, key: String, minute: u64) -> u64 {
        let shard_index = self.hasher.hash_one(&key) as usize % SHARDS;
        let mut shard = self.local[shard_index].lock();
        // Only a newer minute resets: a request that read the clock just before the minute
        // turned, and locks after a request of the new minute, counts in the new one.
        if minute > shard.minute {
            shard.minute = minute;
            shard.counts.clear();
        }
        let count = shard.counts.entry(key).or_insert(0);
        *count += 1;
        *count
    }
}

impl RedisCounter {
    /// Adds one to the key's current one-minute window; returns the count and the seconds left
    /// in the window.
    async fn count(&self, key: &str) -> anyhow::Result<(u64, u64)> {
        let (minute, reset) = window();
        let redis_key = format!("accolade:oc:rl:{key}:{minute}");
        let existing = self.conn.lock().await.clone();
        let mut conn = match existing {
            Some(c) => c,
            None => {
                // Connect without holding the lock, with short timeouts: an unreachable Redis
                // must cost a request at most this long, not stall every request behind it.
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(REDIS_TIMEOUT)
                    .set_response_timeout(REDIS_TIMEOUT);
                let c = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                *self.conn.lock().await = Some(c.clone());
                c
            }
        };
        let result: redis::RedisResult<(u64, i64)> = redis::pipe()
            .atomic()
            .incr(&redis_key, 1u64)
            .expire(&redis_key, 120)
            .query_async(&mut conn)
            .await;
        match result {
            Ok((count, _)) => Ok((count, reset)),
            Err(e) => {
                // Reconnect on the next request.
                *self.conn.lock().await = None;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for a new minute when the current one is about to end (a test must not straddle
    /// two windows).
    pub async fn fresh_window(needed_secs: u64) {
        let (_, left) = window();
        if left < needed_secs {
            tokio::time::sleep(Duration::from_secs(left)).await;
        }
    }

    #[tokio::test]
    async fn each_tier_allows_its_number_then_refuses() {
        fresh_window(3).await;
        let limiter = Limiter::new("").unwrap();
        for (tier, n) in [
            (Tier::Sandbox, 20),
            (Tier::Light, 120),
            (Tier::Medium, 240),
            (Tier::Heavy, 480),
        ] {
            let subject = Subject::App("ak_1".into());
            for i in 1..=n {
                let d = limiter.check(tier, &subject).await;
                assert!(d.allowed, "{tier} request {i} of {n}");
                assert_eq!(d.remaining, n - i, "{tier} request {i}");
            }
            let refused = limiter.check(tier, &subject).await;
            assert!(!refused.allowed, "{tier} request {}", n + 1);
            assert!((1..=60).contains(&refused.reset_secs), "{refused:?}");
            assert!(
                !limiter.check(tier, &subject).await.allowed,
                "still refused"
            );
        }
        for _ in 0..2_000 {
            assert!(
                limiter
                    .check(Tier::Enterprise, &Subject::App("ak_1".into()))
                    .await
                    .allowed
            );
        }
    }

    #[tokio::test]
    async fn users_and_apps_are_counted_apart() {
        fresh_window(3).await;
        let limiter = Limiter::new("").unwrap();
        let app = Subject::App("ak_7".into());
        let ada = Subject::User {
            app: "ak_7".into(),
            member: 1,
        };
        let bob = Subject::User {
            app: "ak_7".into(),
            member: 2,
        };
        for _ in 0..20 {
            assert!(limiter.check(Tier::Sandbox, &ada).await.allowed);
        }
        assert!(!limiter.check(Tier::Sandbox, &ada).await.allowed);
        assert!(limiter.check(Tier::Sandbox, &bob).await.allowed);
        assert!(limiter.check(Tier::Sandbox, &app).await.allowed);
        assert!(
            limiter
                .check(Tier::Sandbox, &Subject::App("ak_8".into()))
                .await
                .allowed
        );
    }
}
