//! How a connection waits for a lock another connection holds: a try every millisecond,
//! instead of SQLite's default backoff.
//!
//! The default busy handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries, so a writer that
//! meets a lock held for 20 ms (the checkpoint thread's `RESTART`, which holds writers back)
//! tries again only after 33 ms, and one held for 35 ms after 53 ms: every event batch queued
//! behind it waited up to half as long again as the lock was held. Trying every millisecond
//! makes the wait the hold plus at most about a millisecond; the cost, a wake-up per
//! millisecond, is paid only while some other connection holds a lock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::Connection;

/// Tries before giving up (SQLITE_BUSY): the longest busy timeout any store of this process
/// was opened with, in milliseconds (a plain `fn` handler cannot carry its own).
static LIMIT_MS: AtomicU32 = AtomicU32::new(0);

/// Tries a `RESTART` checkpoint makes for the writer lock and for readers to leave the WAL
/// (it holds writers back while it waits for readers).
const RESTART_TRIES: i32 = 5;

/// Polls every millisecond for up to `timeout`.
pub fn wait_up_to(c: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    LIMIT_MS.fetch_max(ms, Ordering::Relaxed);
    c.busy_handler(Some(poll))
}

/// Polls every millisecond, [`RESTART_TRIES`] times (the checkpoint connection).
pub fn wait_briefly(c: &Connection) -> rusqlite::Result<()> {
    c.busy_handler(Some(poll_briefly))
}

fn poll(tries: i32) -> bool {
    if u32::try_from(tries).unwrap_or(u32::MAX) >= LIMIT_MS.load(Ordering::Relaxed) {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

fn poll_briefly(tries: i32) -> bool {
    if tries >= RESTART_TRIES {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A writer blocked by another connection's lock takes it within milliseconds of its
    /// release: held 55 ms, SQLite's default backoff would try at 53 and then 78 ms (23 ms
    /// late). A lock never released is given up after the timeout.
    #[test]
    fn a_released_lock_is_taken_at_once_and_a_held_one_times_out() {
        let dir = std::env::temp_dir().join(format!("accolade-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("b.db");
        let holder = Connection::open(&db).unwrap();
        holder.pragma_update(None, "journal_mode", "WAL").unwrap();
        holder.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let waiter = Connection::open(&db).unwrap();
        wait_up_to(&waiter, Duration::from_millis(300)).unwrap();

        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(55));
            holder.execute_batch("COMMIT").unwrap();
            (holder, Instant::now())
        });
        waiter.execute_batch("BEGIN IMMEDIATE").unwrap();
        let acquired = Instant::now();
        waiter.execute_batch("COMMIT").unwrap();
        let (holder, released) = release.join().unwrap();
        let late = acquired.saturating_duration_since(released);
        assert!(
            late < Duration::from_millis(12),
            "took the lock {late:?} after its release"
        );

        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Instant::now();
        let err = waiter.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(dir);
    }
}
