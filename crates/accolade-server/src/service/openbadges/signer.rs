//! The threads that sign credentials and status lists, at the lowest CPU priority.
//!
//! Signing is CPU work with no deadline tighter than a second, while event ingest is the hot
//! path: on a machine the two share, every core a signature takes is a core a commit waits for.
//! These threads run at nice 19, so the kernel gives ingest (and every request) the cores first
//! and signing takes what is left; when nothing else runs they sign at full speed. They are
//! their own threads, not the blocking pool's, so the lowered priority never leaks into other
//! blocking work.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// A small pool of low-priority threads, started on first use.
pub struct Signer {
    threads: usize,
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl Signer {
    pub fn new(threads: usize) -> Signer {
        Signer {
            threads: threads.max(1),
            queue: OnceLock::new(),
        }
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn sender(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for n in 0..self.threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("ob-signer-{n}"))
                    .spawn(move || {
                        crate::service::priority::lower_current_thread("Open Badges signing");
                        loop {
                            // The lock is held only while waiting for the next job.
                            let job = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start an Open Badges signing thread");
                }
            }
            tx
        })
    }

    /// Runs `work` on a signing thread and waits for its result.
    pub async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(out);
        });
        self.sender()
            .send(job)
            .map_err(|_| anyhow::anyhow!("the Open Badges signing threads are gone"))?;
        match rx.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => anyhow::bail!("signing panicked"),
            Err(_) => anyhow::bail!("the Open Badges signing thread stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_low_priority_threads_and_panics_are_errors() {
        let signer = Signer::new(2);
        let nice = signer.run(crate::service::priority::current).await.unwrap();
        assert_eq!(nice, if cfg!(target_os = "linux") { 19 } else { 0 });
        assert_eq!(signer.run(|| 2 + 2).await.unwrap(), 4);
        assert!(signer.run(|| panic!("boom")).await.is_err());
        assert_eq!(signer.run(|| "still alive").await.unwrap(), "still alive");
    }
}
