//! When a failed attempt is tried again and when it is given up: one policy type for every
//! worker that retries (outbound webhook deliveries, Credly jobs on the outbox).
//!
//! The policy is pure (the caller passes the clock and the jitter factor) so that both stores'
//! conformance tests and the server's workers apply exactly the same schedule.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// When to try a failed attempt again.
///
/// Attempt `n` (1-based) that failed waits `schedule[n-1]`, and once the schedule is used up
/// `then_every` (or, without it, is not retried: the work is dead); a retry that would fall
/// later than `max_age` after the first attempt is not made either. The webhook defaults
/// ([`RetryPolicy::default`]) are roughly 1m, 5m, 30m, 2h, 6h, 12h, then daily, for three days;
/// Credly jobs use `worker.retry_schedule` alone ([`RetryPolicy::schedule_only`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
    pub then_every: Option<Duration>,
    pub max_age: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(n * 60);
        RetryPolicy {
            schedule: vec![m(1), m(5), m(30), m(120), m(360), m(720)],
            then_every: Some(m(1440)),
            max_age: Some(m(72 * 60)),
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
    /// Retries after each delay of `schedule` in turn, then gives up.
    pub fn schedule_only(schedule: Vec<Duration>) -> Self {
        RetryPolicy {
            schedule,
            then_every: None,
            max_age: None,
        }
    }

    /// The base delay after failed attempt number `attempt` (1-based), or `None` when no retry
    /// follows it.
    pub fn delay(&self, attempt: i64) -> Option<Duration> {
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        self.schedule.get(i).copied().or(self.then_every)
    }

    /// Decides what follows failed attempt `attempt`, first tried at `first_attempt_at`.
    ///
    /// `jitter` scales the base delay (the caller draws it, e.g. from 0.8..=1.2, so retries of
    /// much work that failed together spread out). `retry_after` is the other side's own
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
        let Some(delay) = self.delay(attempt) else {
            return NextAttempt::GiveUp;
        };
        let base = delay.as_secs_f64() * jitter.clamp(0.0, 10.0);
        let mut wait = Duration::try_from_secs_f64(base).unwrap_or(Duration::MAX);
        if let Some(asked) = retry_after {
            wait = wait.max(asked);
        }
        // Absurd settings (centuries) overflow the calendar: no deadline, or no retry.
        let deadline = self
            .max_age
            .and_then(|age| chrono::Duration::from_std(age).ok())
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
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedule_then_daily_until_max_age() {
        let p = RetryPolicy::default();
        let mins: Vec<u64> = (1..=9)
            .map(|a| p.delay(a).unwrap().as_secs() / 60)
            .collect();
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
    fn a_schedule_alone_gives_up_when_it_is_used_up_however_old_the_work() {
        let p = RetryPolicy::schedule_only(vec![Duration::from_secs(5), Duration::from_secs(30)]);
        let first = t0();
        let later = first + chrono::Duration::days(400);
        assert_eq!(
            p.next(2, first, later, 1.0, None),
            NextAttempt::At(later + chrono::Duration::seconds(30))
        );
        assert_eq!(p.next(3, first, later, 1.0, None), NextAttempt::GiveUp);
        // Retry-After cannot bring back a retry the schedule does not have.
        assert_eq!(
            p.next(3, first, later, 1.0, Some(Duration::from_secs(1))),
            NextAttempt::GiveUp
        );
        assert_eq!(RetryPolicy::schedule_only(vec![]).delay(1), None);
    }

    proptest! {
        /// A retry is never earlier than the jittered delay nor than Retry-After, and never
        /// after the deadline.
        #[test]
        fn retries_wait_at_least_the_backoff_and_respect_the_deadline(
            attempt in 1i64..20,
            elapsed_s in 0i64..(5 * 86_400),
            jitter in 0.8f64..1.2,
            asked_s in proptest::option::of(0u64..100_000),
        ) {
            let p = RetryPolicy::default();
            let first = t0();
            let now = first + chrono::Duration::seconds(elapsed_s);
            let asked = asked_s.map(Duration::from_secs);
            match p.next(attempt, first, now, jitter, asked) {
                NextAttempt::At(at) => {
                    let waited = (at - now).to_std().unwrap();
                    let base = p.delay(attempt).unwrap().as_secs_f64() * jitter;
                    prop_assert!(waited.as_secs_f64() + 1e-3 >= base);
                    prop_assert!(asked.is_none_or(|a| waited >= a));
                    prop_assert!(at <= first + chrono::Duration::hours(72));
                }
                NextAttempt::GiveUp => {
                    let base = p.delay(attempt).unwrap().as_secs_f64() * jitter;
                    let wait = base.max(asked_s.unwrap_or(0) as f64);
                    prop_assert!(elapsed_s as f64 + wait > 72.0 * 3600.0 - 1e-3);
                }
            }
        }
    }
}
