//! Learning events sent over HTTP, and the inbox as operators read it. Ingest admits each event
//! (`service::admission`, shared with the event-bus consumer), records the rejected ones with
//! their reason, and hands the rest to the group-commit writer (`service::ingest`), answering
//! once they are durable. The listings serve the JSON API and the admin UI.

use accolade_store::{EventOutcome, Page, Paged, RejectedEvent, Store, StoreError, StoredEvent};
use chrono::Utc;
use serde_json::Value;

use crate::metrics as m;
use crate::service::admission::{admit, Admission};
use crate::service::ingest::IngestError;
use crate::state::AppState;

/// Why a request's events were not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestFailure {
    /// More events than `ingest.max_events_per_request` (`too_many_events`).
    #[error("at most {max} events per request, got {got}")]
    TooMany { max: usize, got: usize },
    /// The rejections could not be recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer refused the batch (busy, shutting down) or failed to store it.
    #[error(transparent)]
    Writer(#[from] IngestError),
}

/// An event refused at admission: its position in the request and why.
#[derive(Debug)]
pub struct Rejection {
    pub index: usize,
    pub code: String,
    pub detail: String,
}

/// What became of a request's events.
#[derive(Debug)]
pub struct Ingested {
    /// Stored and processed (durable).
    pub accepted: usize,
    /// Already processed earlier (nothing changed).
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
}

/// Ingests the events of one HTTP request, in order.
pub async fn ingest(state: &AppState, items: Vec<Value>) -> Result<Ingested, IngestFailure> {
    let max = state.config.ingest.max_events_per_request;
    if items.len() > max {
        return Err(IngestFailure::TooMany {
            max,
            got: items.len(),
        });
    }
    m::events_received(items.len());
    let now = Utc::now();
    let mut events = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    let mut records = Vec::new();
    // Rules are matched here, on the request's task, not on the single database writer's (which
    // evaluates again only if the index is rebuilt before the batch commits).
    let rules = state.index.current();
    for (index, item) in items.into_iter().enumerate() {
        match admit(&rules, item, "http".into(), now) {
            Admission::Accepted(ev) => events.push(ev),
            Admission::Rejected { record, reason } => {
                rejected.push(Rejection {
                    index,
                    code: record.code.clone(),
                    detail: reason.to_string(),
                });
                records.push(record);
            }
        }
    }
    if !records.is_empty() {
        tracing::info!(count = records.len(), "events rejected at ingest");
        state.store.record_rejected(records).await?;
    }
    let outcomes = state.ingest.submit(events).await?;
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == EventOutcome::Duplicate)
        .count();
    Ok(Ingested {
        accepted: outcomes.len() - duplicates,
        duplicates,
        rejected,
    })
}

/// Events in the inbox, newest first (optionally of one learner).
pub async fn list(
    store: &dyn Store,
    learner: Option<&str>,
    page: Page,
) -> Result<Paged<StoredEvent>, StoreError> {
    store.list_events(learner, page).await
}

/// Events refused at ingest, newest first, with the reason.
pub async fn rejected(store: &dyn Store, page: Page) -> Result<Paged<RejectedEvent>, StoreError> {
    store.list_rejected(page).await
}
