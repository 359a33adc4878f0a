//! Fault injection for `/v1/…` requests: latency, scripted failures
//! (`fail_next`), a per-second rate limit, a deterministic error rate and
//! expiring every token at once.

use axum::http::StatusCode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Faults applied to every `/v1/…` request, in this order: `latency_ms` (sleep), then
/// `fail_next`, then `rate_limit`, then `error_rate`; `expire_all_tokens` makes
/// authentication fail. Control routes (`/_sandbox/…`) are never faulted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Sleep this long before answering each API request.
    pub latency_ms: u64,
    /// Share (0.0..=1.0) of API requests answered `503`. Deterministic: with rate `r`,
    /// request number `n` (counted from the last `set_faults`, starting at 0) fails when
    /// `floor((n+1)·r) > floor(n·r)`, so exactly `floor(N·r)` of the first `N` fail.
    pub error_rate: f64,
    /// Answer `429` beyond a request rate.
    pub rate_limit: Option<RateLimitFault>,
    /// Treat every token as expired (`401`).
    pub expire_all_tokens: bool,
    /// Statuses returned, in order, for the next requests (one status per request),
    /// e.g. `[500, 429, 503]`. `faults()` shows what is left.
    pub fail_next: Vec<u16>,
}

/// A rate limit in fixed one-second windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitFault {
    /// Requests allowed per one-second window; beyond this, `429`.
    /// `None` throttles every request.
    pub max_per_second: Option<u32>,
    /// Value of the `Retry-After` header (seconds).
    pub retry_after_secs: u64,
}

impl Default for RateLimitFault {
    fn default() -> Self {
        RateLimitFault {
            max_per_second: None,
            retry_after_secs: 1,
        }
    }
}

impl Faults {
    /// Checks values a client could get wrong over HTTP.
    pub fn validate(&self) -> Result<(), String> {
        if !self.error_rate.is_finite() || !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be within 0.0..=1.0".into());
        }
        if let Some(bad) = self
            .fail_next
            .iter()
            .find(|s| StatusCode::from_u16(**s).is_err() || **s < 200)
        {
            return Err(format!("fail_next contains an invalid status {bad}"));
        }
        Ok(())
    }
}

/// What the fault engine decided for one request.
pub(crate) struct Decision {
    pub latency: Duration,
    pub expire_all_tokens: bool,
    pub fail: Option<Injected>,
}

/// A failure the engine injected.
pub(crate) struct Injected {
    pub error: ApiError,
    pub kind: InjectedKind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum InjectedKind {
    FailNext,
    RateLimit,
    ErrorRate,
}

struct EngineState {
    faults: Faults,
    fail_next: VecDeque<u16>,
    window_start: Instant,
    window_count: u32,
    error_counter: u64,
}

/// The live fault configuration and its counters.
pub(crate) struct FaultEngine {
    state: Mutex<EngineState>,
}

impl FaultEngine {
    pub fn new(faults: Faults) -> Self {
        let engine = FaultEngine {
            state: Mutex::new(EngineState {
                faults: Faults::default(),
                fail_next: VecDeque::new(),
                window_start: Instant::now(),
                window_count: 0,
                error_counter: 0,
            }),
        };
        engine.set(faults);
        engine
    }

    /// Replaces the configuration and resets all counters.
    pub fn set(&self, mut faults: Faults) {
        let mut st = self.state.lock();
        st.fail_next = faults.fail_next.drain(..).collect();
        st.faults = faults;
        st.window_start = Instant::now();
        st.window_count = 0;
        st.error_counter = 0;
    }

    /// The current configuration (with the `fail_next` statuses not yet used).
    pub fn get(&self) -> Faults {
        let st = self.state.lock();
        let mut f = st.faults.clone();
        f.fail_next = st.fail_next.iter().copied().collect();
        f
    }

    /// Decides the fate of one API request (counts it towards the rate limit and error rate).
    pub fn decide(&self) -> Decision {
        let mut st = self.state.lock();
        let latency = Duration::from_millis(st.faults.latency_ms);
        let expire_all_tokens = st.faults.expire_all_tokens;
        let retry_after = st
            .faults
            .rate_limit
            .as_ref()
            .map_or(1, |r| r.retry_after_secs);
        let mut fail = None;
        if let Some(code) = st.fail_next.pop_front() {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut error = ApiError::new(
                status,
                format!(
                    "{} (injected by the Credly sandbox)",
                    status.canonical_reason().unwrap_or("Error")
                ),
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                error.retry_after = Some(retry_after);
            }
            fail = Some(Injected {
                error,
                kind: InjectedKind::FailNext,
            });
        }
        if fail.is_none() {
            if let Some(rl) = st.faults.rate_limit.clone() {
                let now = Instant::now();
                if now.duration_since(st.window_start) >= Duration::from_secs(1) {
                    st.window_start = now;
                    st.window_count = 0;
                }
                st.window_count = st.window_count.saturating_add(1);
                let over = match rl.max_per_second {
                    Some(max) => st.window_count > max,
                    None => true,
                };
                if over {
                    let mut error = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "Rate limit exceeded. Retry after {} seconds.",
                            rl.retry_after_secs
                        ),
                    );
                    error.retry_after = Some(rl.retry_after_secs);
                    fail = Some(Injected {
                        error,
                        kind: InjectedKind::RateLimit,
                    });
                }
            }
        }
        if fail.is_none() && st.faults.error_rate > 0.0 {
            let n = st.error_counter as f64;
            st.error_counter += 1;
            let r = st.faults.error_rate;
            if ((n + 1.0) * r).floor() > (n * r).floor() {
                fail = Some(Injected {
                    error: ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable (injected by the Credly sandbox)",
                    ),
                    kind: InjectedKind::ErrorRate,
                });
            }
        }
        Decision {
            latency,
            expire_all_tokens,
            fail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_share() {
        let e = FaultEngine::new(Faults {
            fail_next: vec![500, 429],
            error_rate: 0.25,
            ..Faults::default()
        });
        let d = e.decide();
        assert_eq!(d.fail.as_ref().unwrap().error.status, 500);
        let d = e.decide();
        let inj = d.fail.unwrap();
        assert_eq!(inj.error.status, 429);
        assert_eq!(inj.error.retry_after, Some(1));
        assert!(e.get().fail_next.is_empty());
        let failed = (0..100).filter(|_| e.decide().fail.is_some()).count();
        assert_eq!(failed, 25);
    }

    #[test]
    fn rate_limit_window() {
        let e = FaultEngine::new(Faults {
            rate_limit: Some(RateLimitFault {
                max_per_second: Some(3),
                retry_after_secs: 7,
            }),
            ..Faults::default()
        });
        let fails: Vec<_> = (0..5).map(|_| e.decide().fail.is_some()).collect();
        assert_eq!(fails, [false, false, false, true, true]);
    }

    #[test]
    fn validate() {
        assert!(Faults::default().validate().is_ok());
        assert!(Faults {
            error_rate: 1.5,
            ..Faults::default()
        }
        .validate()
        .is_err());
        assert!(Faults {
            fail_next: vec![42],
            ..Faults::default()
        }
        .validate()
        .is_err());
    }
}
