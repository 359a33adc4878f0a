//! Access tokens of organizations that authenticate with OAuth client credentials: one cache
//! entry per organization, reused until shortly before it expires
//! ([`accolade_credly::oauth::reuse_for`]), and one token request at a time per organization.
//!
//! Why single flight: when a token expires, every job of the organization in flight (up to 64)
//! needs a new one at the same moment. They queue on the organization's slot; the first makes
//! the request and the others take its outcome, a token or a failure, instead of sending 64
//! requests (or, with the endpoint down, waiting out 64 timeouts one after the other). A
//! refusal of the client credentials is kept for [`REFUSAL_TTL`], so a backlog of jobs that all
//! find the credentials refused asks Credly once, not once per job.
//!
//! The entries live in this process; each instance has its own, which costs one token request
//! per instance and token lifetime.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_credly::{AccessToken, CredlyError};
use parking_lot::Mutex;

/// How long a refusal of the client credentials is answered from memory.
pub const REFUSAL_TTL: Duration = Duration::from_secs(30);

/// An access token and until when it is used.
#[derive(Clone)]
struct Cached {
    token: Arc<str>,
    until: Instant,
}

/// Why a token could not be had: a Credly error, or a local one (reading or opening the
/// stored client credentials).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenFailure {
    Credly(CredlyError),
    Local { detail: String, retryable: bool },
}

impl TokenFailure {
    /// Whether asking again cannot help until the credentials change.
    pub fn is_refusal(&self) -> bool {
        match self {
            TokenFailure::Credly(e) => e.is_permanent(),
            TokenFailure::Local { retryable, .. } => !retryable,
        }
    }
}

impl std::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenFailure::Credly(e) => e.fmt(f),
            TokenFailure::Local { detail, .. } => f.write_str(detail),
        }
    }
}

impl From<CredlyError> for TokenFailure {
    fn from(e: CredlyError) -> Self {
        TokenFailure::Credly(e)
    }
}

#[derive(Default)]
struct SlotState {
    token: Option<Cached>,
    /// The outcome of the last request when it failed, with the request's number and time.
    failure: Option<(u64, TokenFailure, Instant)>,
}

/// One organization's entry: the lock is held for the duration of a token request.
#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<SlotState>,
    /// Token requests finished so far: a caller that waited while one ran takes its outcome.
    requests: AtomicU64,
}

/// The per-organization access tokens of this process.
#[derive(Default)]
pub struct AccessTokens {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl AccessTokens {
    fn slot(&self, org_id: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .entry(org_id.to_string())
            .or_default()
            .clone()
    }

    /// The organization's token: the cached one while it is fresh, else the outcome of one
    /// `request` shared by every caller waiting meanwhile.
    pub async fn get<F, Fut>(&self, org_id: &str, request: F) -> Result<Arc<str>, TokenFailure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, TokenFailure>>,
    {
        let slot = self.slot(org_id);
        let seen = slot.requests.load(Ordering::Acquire);
        let mut st = slot.state.lock().await;
        let now = Instant::now();
        if let Some(c) = st.token.as_ref().filter(|c| c.until > now) {
            return Ok(c.token.clone());
        }
        if let Some((n, e, at)) = &st.failure {
            // A request finished while this caller waited: its failure is this caller's too.
            // A refusal stands a little longer for everyone.
            let shared = *n > seen;
            let refused = e.is_refusal() && at.elapsed() < REFUSAL_TTL;
            if shared || refused {
                return Err(e.clone());
            }
        }
        let started = Instant::now();
        let outcome = request().await;
        let n = slot.requests.fetch_add(1, Ordering::AcqRel) + 1;
        match outcome {
            Ok(t) => {
                let token: Arc<str> = Arc::from(t.access_token.as_str());
                st.token = Some(Cached {
                    token: token.clone(),
                    until: started + accolade_credly::oauth::reuse_for(t.expires_in),
                });
                st.failure = None;
                Ok(token)
            }
            Err(e) => {
                st.token = None;
                st.failure = Some((n, e.clone(), Instant::now()));
                Err(e)
            }
        }
    }

    /// Drops the organization's token if it is still `used` (Credly refused it): the next
    /// [`AccessTokens::get`] requests a new one. A token another caller already replaced stays.
    pub async fn invalidate(&self, org_id: &str, used: &str) {
        let slot = self.slot(org_id);
        let mut st = slot.state.lock().await;
        if st.token.as_ref().is_some_and(|c| &*c.token == used) {
            st.token = None;
        }
    }

    /// Forgets everything about the organization (its credentials changed).
    pub fn forget(&self, org_id: &str) {
        self.slots.lock().remove(org_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn token(value: &str, expires_in: u64) -> AccessToken {
        AccessToken {
            access_token: value.into(),
            expires_in: Some(expires_in),
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_request() {
        let tokens = Arc::new(AccessTokens::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (tokens, calls) = (tokens.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                tokens
                    .get("org", || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(token("t1", 7200))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(&*t.await.unwrap().unwrap(), "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiters_share_a_failure_and_later_callers_try_again() {
        let tokens = Arc::new(AccessTokens::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (tokens, calls) = (tokens.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                tokens
                    .get("org", || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(CredlyError::Timeout.into())
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(
                t.await.unwrap().unwrap_err(),
                TokenFailure::Credly(CredlyError::Timeout)
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the endpoint is asked once"
        );
        // A retryable failure is not remembered for later callers.
        let t = tokens
            .get("org", || async { Ok(token("t2", 7200)) })
            .await
            .unwrap();
        assert_eq!(&*t, "t2");
    }

    #[tokio::test]
    async fn a_refusal_is_remembered_briefly() {
        let tokens = AccessTokens::default();
        let refused = TokenFailure::Credly(CredlyError::Unauthorized("invalid_client".into()));
        let r = tokens.get("org", || async { Err(refused.clone()) }).await;
        assert_eq!(r.unwrap_err(), refused);
        let again = tokens
            .get("org", || async { panic!("not asked again within the TTL") })
            .await;
        assert_eq!(again.unwrap_err(), refused);
        // New credentials: forgotten, asked again.
        tokens.forget("org");
        let t = tokens
            .get("org", || async { Ok(token("t3", 7200)) })
            .await
            .unwrap();
        assert_eq!(&*t, "t3");
    }

    #[tokio::test]
    async fn tokens_are_reused_until_their_margin_and_invalidated_only_if_unchanged() {
        let tokens = AccessTokens::default();
        let t = tokens
            .get("org", || async { Ok(token("short", 1)) })
            .await
            .unwrap();
        assert_eq!(&*t, "short");
        // 1 s lifetime, reused for 0.9 s.
        let same = tokens
            .get("org", || async { panic!("still fresh") })
            .await
            .unwrap();
        assert_eq!(&*same, "short");
        tokio::time::sleep(Duration::from_millis(950)).await;
        let next = tokens
            .get("org", || async { Ok(token("next", 7200)) })
            .await
            .unwrap();
        assert_eq!(&*next, "next");
        // A caller that used the old token does not drop the new one.
        tokens.invalidate("org", "short").await;
        let kept = tokens
            .get("org", || async { panic!("kept") })
            .await
            .unwrap();
        assert_eq!(&*kept, "next");
        tokens.invalidate("org", "next").await;
        let fresh = tokens
            .get("org", || async { Ok(token("fresh", 7200)) })
            .await
            .unwrap();
        assert_eq!(&*fresh, "fresh");
    }
}
