//! WAL checkpoints on a background thread, off the writer's path.
//!
//! With SQLite's automatic checkpoint, the connection whose commit crosses the threshold copies
//! the whole WAL into the database file and fsyncs it before its commit returns: every few
//! seconds one batch of events waits tens of milliseconds longer, which is what set the p99
//! ingest latency. Here the writer never checkpoints (`wal_autocheckpoint = 0`); a thread with
//! its own connection runs a `PASSIVE` checkpoint whenever something was committed since its last
//! look. `PASSIVE` never blocks the writer.
//!
//! SQLite starts the WAL over from its beginning only when a write begins after every frame was
//! copied. With commits arriving while a passive run copies (at 1,000 events/s a commit lands
//! every millisecond), that moment rarely comes and the WAL keeps growing. Once it holds more
//! than `WAL_RESTART_BYTES` of frames, the thread runs a `RESTART` checkpoint, which holds
//! writers back only while it copies the few frames the passive runs have not copied yet
//! (measured: 2–10 ms every few seconds at 1,000 events/s).
//!
//! The WAL file is reused, never shrunk: `journal_size_limit` truncated a file a burst had grown
//! to hundreds of MiB inside the next commit, which then took 100–170 ms.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

/// How often the thread looks for new commits.
const INTERVAL: Duration = Duration::from_millis(200);
/// How soon it looks again while the writer commits faster than one pass copies (a backfill's
/// bulk writes): the passive runs keep up, so a `RESTART` finds little left to copy.
const CATCH_UP: Duration = Duration::from_millis(10);
/// How long a `RESTART` waits for readers to leave the WAL (it holds writers back meanwhile);
/// when they do not, it gives up and is tried again later.
const RESTART_WAIT: Duration = Duration::from_millis(5);
/// WAL content beyond which a `RESTART` checkpoint makes the writer start the file over.
const WAL_RESTART_BYTES: u64 = 256 * 1024 * 1024;

/// Handle to the checkpoint thread; dropping it stops the thread.
pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`.
    pub fn start(path: &Path, busy_timeout: Duration) -> Result<Checkpointer, String> {
        let setup = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(busy_timeout)?;
            // This connection never writes rows; make sure closing it never checkpoints on
            // SQLite's own schedule either.
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            Ok(conn)
        };
        let conn = setup().map_err(|e| format!("checkpoint connection: {e}"))?;
        // Only a RESTART ever waits (PASSIVE never does): keep its hold on writers short.
        conn.busy_timeout(RESTART_WAIT)
            .map_err(|e| format!("checkpoint connection: {e}"))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(conn, &stop))
                .map_err(|e| format!("checkpoint thread: {e}"))?
        };
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock() = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: Connection, stop: &(Mutex<bool>, Condvar)) {
    let (flag, cv) = stop;
    let mut last_version: Option<i64> = None;
    let mut wait = INTERVAL;
    loop {
        {
            let mut stopped = flag.lock();
            if !*stopped {
                cv.wait_for(&mut stopped, wait);
            }
            if *stopped {
                return;
            }
        }
        // `data_version` changes whenever another connection committed.
        let version: i64 = match conn.query_row("PRAGMA data_version", [], |r| r.get(0)) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "checkpoint: cannot read data_version");
                continue;
            }
        };
        if last_version == Some(version) {
            continue;
        }
        last_version = Some(version);
        let passive = checkpoint(&conn, "PASSIVE");
        // Frames left uncopied by commits that landed meanwhile: look again soon.
        wait = match passive {
            Ok((_, log, copied)) if log - copied > 1_000 => CATCH_UP,
            _ => INTERVAL,
        };
        match passive {
            // `log` counts the frames in use since the WAL last started over, whatever the size
            // of the file (which SQLite reuses rather than shrinks).
            Ok((_, log, _)) if log * page_size(&conn) > WAL_RESTART_BYTES as i64 => {
                let started = std::time::Instant::now();
                match checkpoint(&conn, "RESTART") {
                    Ok(_) => tracing::debug!(
                        ms = started.elapsed().as_millis() as u64,
                        "wal checkpoint (RESTART)"
                    ),
                    // Readers kept it from finishing within RESTART_WAIT: next time.
                    Err(e) => tracing::debug!(error = %e, "wal checkpoint (RESTART) deferred"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "wal checkpoint failed"),
        }
    }
}

/// Runs one checkpoint: `(busy, frames in the WAL, frames copied)`.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

fn page_size(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = std::env::temp_dir().join(format!("accolade-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("c.db");
        let w = Connection::open(&db).unwrap();
        w.pragma_update(None, "journal_mode", "WAL").unwrap();
        w.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        w.execute_batch("CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(300000));")
            .unwrap();
        let db_len = || std::fs::metadata(&db).unwrap().len();
        // With autocheckpoint off, the rows live only in the WAL.
        assert!(db_len() < 300_000, "database file {} bytes", db_len());
        let _cp = Checkpointer::start(&db, Duration::from_secs(5)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while db_len() < 300_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the background thread did not checkpoint"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
