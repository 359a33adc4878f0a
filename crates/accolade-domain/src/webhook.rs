//! Outbound webhooks: which event types a subscription may name, the delivery states, and the
//! retry policy that decides when a failed delivery is tried again and when it is given up.
//!
//! The policy is pure (the caller passes the clock and the jitter factor) so that both stores'
//! conformance tests and the server's worker apply exactly the same schedule.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outbox::{BADGE_AWARDED, BADGE_REVOKED};

/// Event types a subscription can ask for (every outgoing event is one of these).
pub const EVENT_TYPES: [&str; 2] = [BADGE_AWARDED, BADGE_REVOKED];

/// True when `event_type` is one webhooks can deliver.
pub fn is_known_event_type(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// Whether a subscription with these event types wants `event_type` (empty = every type).
pub fn wants(event_types: &[String], event_type: &str) -> bool {
    event_types.is_empty() || event_types.iter().any(|t| t == event_type)
}

/// State of one delivery (one event to one subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted under a lease).
    Pending,
    /// A 2xx answer was received.
    Succeeded,
    /// Given up: too old, or the receiver answered 410 Gone.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "succeeded" => DeliveryStatus::Succeeded,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

/// When to try a failed delivery again.
///
/// Attempt `n` (1-based) that failed waits `schedule[n-1]`, and once the schedule is used up
/// `then_every`; a retry that would fall later than `max_age` after the first attempt is not
/// made and the delivery is dead instead. With the defaults this is roughly 1m, 5m, 30m, 2h, 6h,
/// 12h, then daily, for three days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub then_every: Duration,
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        RetryPolicy {
            schedule: vec![m(1), m(5), m(30), m(120), m(360), m(720)],
            then_every: m(1440),
            max_age: m(72 * 60),
        }
    }
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    At(DateTime<Utc>),
    GiveUp,
}

impl RetryPolicy {
    /// The base delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: i64) -> Duration {
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        self.schedule.get(i).copied().unwrap_or(self.then_every)
    }

    /// Decides what follows failed attempt `attempt`, first tried at `first_attempt_at`.
    ///
    /// `jitter` scales the base delay (the caller draws it, e.g. from 0.8..=1.2, so retries of
    /// many deliveries that failed together spread out). `retry_after` is the receiver's own
    /// `Retry-After`; it is honoured when it asks for more than the backoff, but never beyond
    /// `max_age`.
    pub fn next(
        &self,
        attempt: i64,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> NextAttempt {
        let base = self.delay(attempt).as_secs_f64() * jitter.clamp(0.0, 10.0);
        let mut wait = Duration::from_secs_f64(base);
        if let Some(asked) = retry_after {
            wait = wait.max(asked);
        }
        // Absurd settings (centuries) overflow the calendar: no deadline, or no retry.
        let deadline = chrono::Duration::from_std(self.max_age)
            .ok()
            .and_then(|age| first_attempt_at.checked_add_signed(age));
        let at = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|w| now.checked_add_signed(w));
        match (at, deadline) {
            (Some(at), Some(deadline)) if at > deadline => NextAttempt::GiveUp,
            (Some(at), _) => NextAttempt::At(at),
            (None, _) => NextAttempt::GiveUp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedule_then_daily_until_max_age() {
        let p = RetryPolicy::default();
        let mins: Vec<u64> = (1..=9).map(|a| p.delay(a).as_secs() / 60).collect();
        assert_eq!(mins, [1, 5, 30, 120, 360, 720, 1440, 1440, 1440]);
        let first = t0();
        let h = chrono::Duration::hours;
        // Two days in, a daily retry still fits into three days…
        assert_eq!(
            p.next(8, first, first + h(47), 1.0, None),
            NextAttempt::At(first + h(71))
        );
        // …one more would land after 72 h: give up.
        assert_eq!(
            p.next(9, first, first + h(49), 1.0, None),
            NextAttempt::GiveUp
        );
    }

    #[test]
    fn jitter_and_retry_after_stretch_the_wait() {
        let p = RetryPolicy::default();
        let now = t0();
        assert_eq!(
            p.next(1, now, now, 1.2, None),
            NextAttempt::At(now + chrono::Duration::seconds(72))
        );
        assert_eq!(
            p.next(1, now, now, 1.0, Some(Duration::from_secs(600))),
            NextAttempt::At(now + chrono::Duration::seconds(600))
        );
        // A short Retry-After never shortens the backoff.
        assert_eq!(
            p.next(1, now, now, 1.0, Some(Duration::from_secs(1))),
            NextAttempt::At(now + chrono::Duration::seconds(60))
        );
    }

    #[test]
    fn event_type_filter() {
        assert!(wants(&[], BADGE_AWARDED));
        assert!(wants(&[BADGE_REVOKED.to_string()], BADGE_REVOKED));
        assert!(!wants(&[BADGE_REVOKED.to_string()], BADGE_AWARDED));
        assert!(is_known_event_type(BADGE_AWARDED));
        assert!(!is_known_event_type("org.openedx.learning.badge.other.v1"));
    }
}
