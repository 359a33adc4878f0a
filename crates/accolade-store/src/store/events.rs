//! Events: processing batches (the hot path), rejected events, and the event log.

use accolade_domain::event::IncomingEvent;
use async_trait::async_trait;

use super::{Durable, Result};
use crate::models::*;
use crate::IndexCache;

/// Incoming events: processing them into fulfilments and awards, and reading them back.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records and processes a batch of events in one transaction: inbox insert (duplicates by
    /// id are skipped), fulfilments, resets, awards and revocations with their outbox jobs and
    /// outgoing events. Returns one outcome per input, in order. The rules index is rebuilt from
    /// the database inside the transaction when the configuration changed.
    async fn process_events(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<Vec<EventOutcome>>;

    /// `process_events` for a pipelined caller: returns once the batch is committed, with a
    /// future that resolves when the commit is durable. Outcomes must not be acknowledged before
    /// it resolves; meanwhile the caller may already commit its next batch (SQLite: the WAL fsync
    /// of one batch overlaps the processing of the next). By default the commit is already
    /// durable when this returns.
    async fn process_events_pipelined(
        &self,
        events: Vec<IncomingEvent>,
        index: &IndexCache,
    ) -> Result<(Vec<EventOutcome>, Durable)> {
        let outcomes = self.process_events(events, index).await?;
        let done: Durable = Box::pin(async { Ok(()) });
        Ok((outcomes, done))
    }

    async fn record_rejected(&self, rejected: Vec<RejectedEvent>) -> Result<()>;

    async fn list_events(&self, learner: Option<&str>, page: Page) -> Result<Paged<StoredEvent>>;

    async fn list_rejected(&self, page: Page) -> Result<Paged<RejectedEvent>>;
}
