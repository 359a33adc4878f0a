//! When repeated failed sign-ins lock an admin account, and for how long.
//!
//! Pure policy, shared by the web form (which explains the lock) and the stores (which apply
//! it in the same transaction that counts the attempt, so concurrent attempts cannot read a
//! stale count).

use chrono::{DateTime, Duration, Utc};

/// Failures in a row before the account locks.
pub const LOCK_AFTER: i64 = 5;
const FIRST_LOCK_SECS: i64 = 30;
const MAX_LOCK_SECS: i64 = 15 * 60;

/// When an account with `failures` consecutive failures unlocks (None: not locked). The lock
/// starts at the `LOCK_AFTER`-th failure with 30 s and doubles with each further one, up to 15
/// minutes.
pub fn lock_until(failures: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = (failures - LOCK_AFTER).min(16) as u32;
    let secs = (FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS);
    Some(now + Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_starts_at_the_fifth_failure_and_doubles_up_to_fifteen_minutes() {
        let now = Utc::now();
        assert_eq!(lock_until(0, now), None);
        assert_eq!(lock_until(4, now), None);
        assert_eq!(lock_until(5, now), Some(now + Duration::seconds(30)));
        assert_eq!(lock_until(6, now), Some(now + Duration::seconds(60)));
        assert_eq!(lock_until(10, now), Some(now + Duration::seconds(900)));
        assert_eq!(lock_until(1000, now), Some(now + Duration::seconds(900)));
        assert_eq!(
            lock_until(i64::MAX, now),
            Some(now + Duration::seconds(900))
        );
    }
}
