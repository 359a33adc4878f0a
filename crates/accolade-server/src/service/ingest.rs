//! Event ingest with group commit.
//!
//! Every accepted event must be durable before it is acknowledged, and a durable commit costs an
//! fsync. One writer task therefore collects the submissions of all concurrent requests (HTTP
//! batch or single-event requests, the event-bus consumer later) and commits them together in one
//! transaction, then answers each submitter. Under load many requests share one fsync; when idle a
//! single event is committed at once. A bounded queue gives back-pressure: when the database
//! cannot keep up, submitters wait and eventually get "unavailable" instead of piling up memory.
//!
//! Commits are pipelined: batches are committed one after another, in arrival order, and each
//! batch is answered once its commit is durable (`Store::process_events_pipelined`). On SQLite
//! the fsync of one batch thus runs while the next one is processed; at most `PENDING_SYNCS`
//! batches wait for their sync at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_domain::event::IncomingEvent;
use accolade_store::{EventOutcome, IndexCache, Store};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::IngestConfig;
use crate::metrics as m;

/// How long a submitter waits for room in the queue before giving up.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Committed batches waiting for durability at most; the writer waits for room beyond that.
const PENDING_SYNCS: usize = 4;
/// A commit slower than this is logged as a warning.
const SLOW_COMMIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event writer is overloaded; retry later")]
    Busy,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("storage failure: {0}")]
    Storage(String),
}

struct Submission {
    events: Vec<IncomingEvent>,
    received: Instant,
    reply: oneshot::Sender<Result<Vec<EventOutcome>, IngestError>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Submission>,
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        index: Arc<IndexCache>,
        config: &IngestConfig,
        shutdown: CancellationToken,
    ) -> Ingest {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let batch_max = config.batch_max_events;
        tokio::spawn(writer(rx, store, index, batch_max, shutdown));
        Ingest { tx }
    }

    /// Stores and processes the events; returns once they are durable (or failed).
    pub async fn submit(
        &self,
        events: Vec<IncomingEvent>,
    ) -> Result<Vec<EventOutcome>, IngestError> {
        self.enqueue(events).await?.wait().await
    }

    /// Queues the events for the writer and returns once they are queued, with a handle that
    /// resolves when they are durable. Batches queued one after the other are committed in that
    /// order, so a caller can keep several in flight without reordering a learner's events.
    pub async fn enqueue(&self, events: Vec<IncomingEvent>) -> Result<Queued, IngestError> {
        if events.is_empty() {
            return Ok(Queued(None));
        }
        let (reply, rx) = oneshot::channel();
        let sub = Submission {
            events,
            received: Instant::now(),
            reply,
        };
        match tokio::time::timeout(ENQUEUE_TIMEOUT, self.tx.send(sub)).await {
            Err(_) => Err(IngestError::Busy),
            Ok(Err(_)) => Err(IngestError::ShuttingDown),
            Ok(Ok(())) => Ok(Queued(Some(rx))),
        }
    }
}

/// Events handed to the writer (see [`Ingest::enqueue`]).
pub struct Queued(Option<oneshot::Receiver<Result<Vec<EventOutcome>, IngestError>>>);

impl Queued {
    /// Waits until the events are durable (or failed).
    pub async fn wait(self) -> Result<Vec<EventOutcome>, IngestError> {
        match self.0 {
            None => Ok(Vec::new()),
            Some(rx) => rx.await.map_err(|_| IngestError::ShuttingDown)?,
        }
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Submission>,
    store: Arc<dyn Store>,
    index: Arc<IndexCache>,
    batch_max: usize,
    shutdown: CancellationToken,
) {
    let pending = Arc::new(tokio::sync::Semaphore::new(PENDING_SYNCS));
    loop {
        let first = tokio::select! {
            s = rx.recv() => s,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut total = first.events.len();
        let mut subs = vec![first];
        while total < batch_max {
            match rx.try_recv() {
                Ok(s) => {
                    total += s.events.len();
                    subs.push(s);
                }
                Err(_) => break,
            }
        }
        let Ok(permit) = pending.clone().acquire_owned().await else {
            break;
        };
        commit(&*store, &index, subs, permit).await;
    }
    // Let the last batches' syncs finish (and their submitters be answered) before returning.
    let _ = pending.acquire_many(PENDING_SYNCS as u32).await;
    // Answer whatever is still queued so no submitter hangs; nothing was acknowledged for them.
    rx.close();
    while let Ok(s) = rx.try_recv() {
        let _ = s.reply.send(Err(IngestError::ShuttingDown));
    }
}

async fn commit(
    store: &dyn Store,
    index: &IndexCache,
    mut subs: Vec<Submission>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // Events move into the store call (no copies: at tens of thousands of events per second the
    // copies cost as much CPU and memory as the rest of the path). Events are validated before
    // they are queued, so a failure here is a storage failure, which every submitter of the batch
    // gets as an error (nothing was acknowledged; they retry).
    let sizes: Vec<usize> = subs.iter().map(|s| s.events.len()).collect();
    let all: Vec<IncomingEvent> = subs
        .iter_mut()
        .flat_map(|s| std::mem::take(&mut s.events))
        .collect();
    let started = Instant::now();
    let count = all.len();
    let result = store.process_events_pipelined(all, index).await;
    if started.elapsed() > SLOW_COMMIT {
        tracing::warn!(
            duration_ms = started.elapsed().as_millis() as u64,
            events = count,
            "event commit was slow (is the disk saturated?)"
        );
    }
    tracing::debug!(
        events = count,
        submissions = subs.len(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "batch committed"
    );
    match result {
        Ok((outcomes, durable)) => {
            // Answered from a task once durable, so the writer can commit the next batch now.
            tokio::spawn(async move {
                let synced = durable.await;
                drop(permit);
                match synced {
                    Ok(()) => {
                        let mut rest = outcomes.into_iter();
                        for (s, n) in subs.into_iter().zip(sizes) {
                            let mine: Vec<EventOutcome> = rest.by_ref().take(n).collect();
                            finish(s, Ok(mine));
                        }
                    }
                    Err(e) => {
                        // Committed but maybe not durable: nothing is acknowledged; submitters
                        // retry and the inbox answers their events as duplicates.
                        tracing::error!(error = %e, events = count, "event commit could not be made durable");
                        for s in subs {
                            finish(s, Err(IngestError::Storage(e.to_string())));
                        }
                    }
                }
            });
        }
        Err(e) => {
            tracing::error!(error = %e, events = count, "event commit failed");
            for s in subs {
                finish(s, Err(IngestError::Storage(e.to_string())));
            }
        }
    }
}

fn finish(s: Submission, result: Result<Vec<EventOutcome>, IngestError>) {
    if let Ok(outcomes) = &result {
        let elapsed = s.received.elapsed().as_secs_f64();
        for o in outcomes {
            m::event_processed(o, elapsed);
        }
    }
    let _ = s.reply.send(result);
}
