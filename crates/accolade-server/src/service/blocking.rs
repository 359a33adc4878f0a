//! CPU-heavy work (decoding and rendering uploaded images, password hashes) off the async
//! runtime, within a budget.
//!
//! Work of this kind takes a core for a long time: on the async runtime it stalls every other
//! request, and started without a limit on the blocking pool (up to 512 threads) a burst of it
//! takes all cores and its memory adds up. A [`Budget`] instead runs at most `workers` jobs at
//! once on the blocking pool (by default one fewer than the machine has cores, so requests keep
//! one), lets at most `max_waiting` callers wait for a turn and refuses the rest at once
//! ([`Refused::Busy`], answered 503) instead of queueing without bound.
//!
//! The caller's future owns the job: when it is dropped (the client went away, or the request
//! timed out with 408) a job still waiting is never started, and a running job finds its
//! [`CancellationToken`] cancelled and stops at its next check between stages. Its slot is held
//! by the job itself, so it is given back as soon as the work stops, and only then.
//!
//! `web/password.rs` runs argon2 sign-in checks on a budget of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Why a job did not run to its end for its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every worker is busy and `max_waiting` callers already wait: nothing was started.
    Busy,
    /// The job panicked (logged).
    Failed,
}

/// A bounded set of workers on the blocking pool with a bounded wait for a turn.
pub struct Budget {
    /// Names the budget in logs and metrics.
    name: &'static str,
    workers: usize,
    slots: Arc<Semaphore>,
    max_waiting: usize,
    waiting: AtomicUsize,
}

/// The number of workers for a configured value: itself, or for 0 one fewer than the
/// machine's cores (at least 1).
pub fn workers_for(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// One caller counted as waiting for a turn; uncounted when dropped, which happens too when the
/// caller's future is dropped while it waits (then its job never starts: counted as abandoned).
struct WaitingTurn<'a> {
    budget: &'a Budget,
    got_a_turn: bool,
}

impl Drop for WaitingTurn<'_> {
    fn drop(&mut self) {
        self.budget.waiting.fetch_sub(1, Ordering::AcqRel);
        if !self.got_a_turn {
            crate::metrics::blocking_job(self.budget.name, "abandoned");
        }
    }
}

impl Budget {
    /// `workers` jobs at once (at least 1), `max_waiting` callers waiting for a turn.
    pub fn new(name: &'static str, workers: usize, max_waiting: usize) -> Budget {
        let workers = workers.max(1);
        Budget {
            name,
            workers,
            slots: Arc::new(Semaphore::new(workers)),
            max_waiting,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Jobs run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Callers waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Runs `work` on the blocking pool when a worker is free. `work` gets the job's token,
    /// cancelled once this future is dropped; it should check it between stages and give up.
    /// `Err(Busy)` at once when the wait is full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Refused>
    where
        F: FnOnce(&CancellationToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = {
            let counted = self
                .waiting
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_waiting).then_some(n + 1)
                });
            if counted.is_err() {
                crate::metrics::blocking_job(self.name, "busy");
                return Err(Refused::Busy);
            }
            let mut turn = WaitingTurn {
                budget: self,
                got_a_turn: false,
            };
            let permit = self.slots.clone().acquire_owned().await;
            turn.got_a_turn = true;
            // The semaphore is never closed.
            permit.map_err(|_| Refused::Busy)?
        };
        let cancel = CancellationToken::new();
        let _cancel_when_dropped = cancel.clone().drop_guard();
        let name = self.name;
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if cancel.is_cancelled() {
                crate::metrics::blocking_job(name, "abandoned");
                return None;
            }
            let out = work(&cancel);
            let outcome = if cancel.is_cancelled() {
                "abandoned"
            } else {
                "done"
            };
            crate::metrics::blocking_job(name, outcome);
            Some(out)
        });
        match job.await {
            Ok(Some(out)) => Ok(out),
            // Only a job whose caller is gone is skipped, and that caller is this future.
            Ok(None) => Err(Refused::Failed),
            Err(e) => {
                tracing::error!(budget = name, error = %e, "blocking job failed");
                Err(Refused::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_workers_and_the_wait_callers_are_refused_at_once() {
        let budget = Arc::new(Budget::new("test", 1, 2));
        let release = Arc::new(AtomicBool::new(false));
        let mut held = Vec::new();
        // One runs and two wait.
        for _ in 0..3 {
            let (budget, release) = (budget.clone(), release.clone());
            held.push(tokio::spawn(async move {
                budget
                    .run(move |_| {
                        while !release.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    })
                    .await
            }));
        }
        while budget.waiting() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = std::time::Instant::now();
        assert_eq!(budget.run(|_| ()).await, Err(Refused::Busy));
        assert!(started.elapsed() < Duration::from_millis(100));
        release.store(true, Ordering::Release);
        for h in held {
            assert_eq!(h.await.unwrap(), Ok(()));
        }
        assert_eq!(budget.waiting(), 0);
        assert_eq!(budget.run(|_| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_caller_cancels_its_job_and_frees_its_turn() {
        let budget = Arc::new(Budget::new("test", 1, 1));
        let stopped = Arc::new(AtomicBool::new(false));
        let running = {
            let (budget, stopped) = (budget.clone(), stopped.clone());
            tokio::spawn(async move {
                budget
                    .run(move |cancel| {
                        // A job of many stages, checking between them.
                        while !cancel.is_cancelled() {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        stopped.store(true, Ordering::Release);
                    })
                    .await
            })
        };
        // A second caller waits for the only worker, then goes away.
        let started = Arc::new(AtomicBool::new(false));
        let waiting = {
            let (budget, started) = (budget.clone(), started.clone());
            tokio::spawn(async move {
                budget
                    .run(move |_| started.store(true, Ordering::Release))
                    .await
            })
        };
        while budget.waiting() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(budget.waiting(), 0, "the wait is given back");
        running.abort();
        let _ = running.await;
        for _ in 0..200 {
            if stopped.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            stopped.load(Ordering::Acquire),
            "the running job saw its token"
        );
        // The slot is free again, and the abandoned caller's job never ran.
        assert_eq!(budget.run(|_| 1).await, Ok(1));
        assert!(!started.load(Ordering::Acquire));
    }

    #[test]
    fn zero_workers_means_one_fewer_than_the_cores() {
        assert_eq!(workers_for(3), 3);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(workers_for(0), cores.saturating_sub(1).max(1));
    }
}
