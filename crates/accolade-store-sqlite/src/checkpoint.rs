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
//! A passive run syncs the database file only when it reached the WAL's end, which under steady
//! commits it never does, so the pages it copies stay unsynced until the `RESTART`, which syncs
//! them all while it holds writers back: during a backfill (about 100 MB copied between two
//! `RESTART`s) that sync took 41–45 ms, and live events waited behind it. The thread therefore
//! syncs the file itself, holding no lock, every `SYNC_EVERY_FRAMES` copied frames and just
//! before a `RESTART`; the `RESTART` then takes 0–7 ms.
//!
//! The WAL file is reused, never shrunk: `journal_size_limit` truncated a file a burst had grown
//! to hundreds of MiB inside the next commit, which then took 100–170 ms.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use crate::busy;

/// How often the thread looks for new commits.
const INTERVAL: Duration = Duration::from_millis(200);
/// How soon it looks again while the writer commits faster than one pass copies (a backfill's
/// bulk writes): the passive runs keep up, so a `RESTART` finds little left to copy.
const CATCH_UP: Duration = Duration::from_millis(10);
/// Frames copied into the database file after which the thread syncs it, so no one sync (the
/// `RESTART`'s least of all) writes out seconds of a backfill's pages at once.
const SYNC_EVERY_FRAMES: i64 = 2_048;
/// WAL content beyond which a `RESTART` checkpoint makes the writer start the file over.
const WAL_RESTART_BYTES: u64 = 256 * 1024 * 1024;

/// Handle to the checkpoint thread; dropping it stops the thread.
pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`.
    pub fn start(path: &Path) -> Result<Checkpointer, String> {
        let setup = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            // This connection never writes rows; make sure closing it never checkpoints on
            // SQLite's own schedule either.
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            Ok(conn)
        };
        let conn = setup().map_err(|e| format!("checkpoint connection: {e}"))?;
        // The database file, to sync what passive runs copied into it (see `run`).
        let file = std::fs::File::open(path).map_err(|e| format!("checkpoint: {e}"))?;
        // Only a RESTART ever waits (PASSIVE never does), for the writer lock and then, holding
        // writers back, for readers to leave the WAL: a few millisecond tries, then it gives up
        // and is tried again later.
        busy::wait_briefly(&conn).map_err(|e| format!("checkpoint connection: {e}"))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(conn, &file, &stop))
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

fn run(conn: Connection, file: &std::fs::File, stop: &(Mutex<bool>, Condvar)) {
    let (flag, cv) = stop;
    let mut last_version: Option<i64> = None;
    let mut wait = INTERVAL;
    // Frames passive runs copied into the database file since it was last synced.
    let mut unsynced: i64 = 0;
    let mut last_copied: i64 = 0;
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
        let started = std::time::Instant::now();
        let passive = checkpoint(&conn, "PASSIVE");
        if let Ok((_, log, copied)) = passive {
            tracing::trace!(
                ms = started.elapsed().as_millis() as u64,
                log,
                copied,
                "wal checkpoint (PASSIVE)"
            );
            // `copied` counts from the WAL's last start over.
            unsynced += if copied >= last_copied {
                copied - last_copied
            } else {
                copied
            };
            last_copied = copied;
            if unsynced >= SYNC_EVERY_FRAMES {
                sync(file);
                unsynced = 0;
            }
        }
        // Frames left uncopied by commits that landed meanwhile: look again soon.
        wait = match passive {
            Ok((_, log, copied)) if log - copied > 1_000 => CATCH_UP,
            _ => INTERVAL,
        };
        match passive {
            // `log` counts the frames in use since the WAL last started over, whatever the size
            // of the file (which SQLite reuses rather than shrinks).
            Ok((_, log, _)) if log * page_size(&conn) > WAL_RESTART_BYTES as i64 => {
                // A passive run syncs the database file only when it copied the WAL to its very
                // end, which under steady commits it never does: the pages it copied are synced
                // by the RESTART, while it holds writers back (measured: fsync 41-45 ms for
                // the ~100 MB a backfill copies between two RESTARTs). Sync them first, holding
                // no lock, then copy what landed meanwhile: the RESTART is left a few frames.
                let synced = std::time::Instant::now();
                sync(file);
                unsynced = 0;
                let synced_ms = synced.elapsed().as_millis() as u64;
                let _ = checkpoint(&conn, "PASSIVE");
                let started = std::time::Instant::now();
                match checkpoint(&conn, "RESTART") {
                    // `busy`: it copied what it could but readers (or the writer) kept it from
                    // finishing; the WAL is not started over and the next pass tries again.
                    Ok((busy, log, copied)) => tracing::debug!(
                        ms = started.elapsed().as_millis() as u64,
                        synced_ms,
                        busy,
                        log,
                        copied,
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

/// Syncs the database file (the pages passive runs copied), holding no lock.
fn sync(file: &std::fs::File) {
    if let Err(e) = file.sync_data() {
        tracing::warn!(error = %e, "checkpoint: cannot sync the database file");
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
        let _cp = Checkpointer::start(&db).unwrap();
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
