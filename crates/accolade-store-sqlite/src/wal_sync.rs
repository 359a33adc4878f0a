//! Durable commits without fsync inside the writer's critical section.
//!
//! With `synchronous = FULL`, SQLite fsyncs the WAL inside every commit, while it holds the write
//! lock: about 8 ms per commit on the development disk, a tenth of the ingest path's time. The
//! store instead runs the writer connection at `NORMAL` (a commit writes its WAL frames but does
//! not fsync them) and fsyncs the WAL file here before anything is acknowledged: `write` syncs
//! before it returns, and `process_events_pipelined` hands the sync to its caller, which commits
//! the next batch while this one's fsync runs.
//!
//! Why this is as durable as `FULL` for everything acknowledged: `fsync` on any descriptor of a
//! file makes all of that file's data written before the call durable, so once it returns, the
//! frames of every commit that had returned before it are on disk; WAL recovery replays a prefix
//! of valid frames, so an unacknowledged later commit can be lost but never an acknowledged one.
//! The WAL file is only reused after a checkpoint, which (at `NORMAL` too) syncs the WAL before
//! copying and the database file after, and it is deleted only when the last connection closes,
//! while this store keeps its connections open.

use std::fs::File;
use std::path::{Path, PathBuf};

use accolade_store::StoreError;
use parking_lot::Mutex;

pub struct WalSync {
    path: PathBuf,
    /// Opened on first use: the `-wal` file exists once the first write began.
    file: Mutex<Option<File>>,
}

impl WalSync {
    pub fn new(db: &Path) -> WalSync {
        let mut name = db.as_os_str().to_owned();
        name.push("-wal");
        WalSync {
            path: PathBuf::from(name),
            file: Mutex::new(None),
        }
    }

    /// Makes every commit that has returned so far durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut file = self.file.lock();
        if file.is_none() {
            let opened = File::open(&self.path).map_err(|e| {
                StoreError::Other(format!(
                    "cannot open {} to sync it: {e}",
                    self.path.display()
                ))
            })?;
            *file = Some(opened);
        }
        let f = file.as_ref().expect("opened just above");
        f.sync_data()
            .map_err(|e| StoreError::Other(format!("fsync of {} failed: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_the_wal_beside_the_database_and_names_it_when_missing() {
        let dir = std::env::temp_dir().join(format!("accolade-walsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        let w = WalSync::new(&db);
        let err = w.sync().unwrap_err().to_string();
        assert!(err.contains("x.db-wal"), "{err}");
        std::fs::write(dir.join("x.db-wal"), b"frames").unwrap();
        w.sync().unwrap();
        w.sync().unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
