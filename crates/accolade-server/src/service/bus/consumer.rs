//! The Open edX event-bus consumer for Redis Streams, a drop-in for `edx-event-bus-redis`'s
//! consumer: it reads `<prefix>-<topic>` in a consumer group, decodes each entry exactly as
//! event-bus-redis writes it (text metadata fields + schemaless Avro `event_data`), hands the
//! events to the same group-commit writer as HTTP ingest, and acknowledges entries only after
//! they are durable (accepted, duplicate, or recorded as rejected / dead letter).
//!
//! - Entries of event types nobody configured (`events.types`) are acknowledged and counted.
//! - Entries that cannot be decoded become dead letters (a rejected-event record with the reason
//!   and the raw fields, base64) and are acknowledged: they never block the stream.
//! - Entries a crashed consumer left pending are reclaimed (`XAUTOCLAIM`) once idle for
//!   `event_bus.claim_idle_secs`.
//! - Reading runs ahead of the writer by at most `IN_FLIGHT` batches: while one batch commits the
//!   next is read and decoded, and batches queued together share one commit. Batches are queued
//!   in the order they were read, so a learner's events keep their order. A slow database slows
//!   reading (back-pressure); entries do not pile up in memory.
//! - `XAUTOCLAIM` runs every `claim_idle_secs / 2`, not before every read: it walks the pending
//!   list from its start, which is long while batches are in flight.

use std::time::{Duration, Instant};

use accolade_domain::event::IncomingEvent;
use accolade_eventbus::{decode_entry, SchemaRegistry};
use accolade_store::RejectedEvent;
use base64::Engine;
use chrono::Utc;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamReadOptions, StreamReadReply,
};
use redis::{AsyncCommands, Value};

use tokio::task::JoinSet;

use crate::config::EventBusConfig;
use crate::metrics as m;
use crate::service::admission::{admit, Admission};
use crate::state::AppState;

/// Batches read and queued for the writer but not yet acknowledged, at most.
const IN_FLIGHT: usize = 8;

/// What the read loop carries from one batch to the next.
pub struct Pipeline {
    /// One task per queued batch: waits until it is durable, then acknowledges its entries.
    acks: JoinSet<anyhow::Result<()>>,
    next_claim: Instant,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            acks: JoinSet::new(),
            next_claim: Instant::now(),
        }
    }
}

impl Pipeline {
    /// Waits for every queued batch to be durable and acknowledged.
    pub async fn drain(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.acks.join_next().await {
            done??;
        }
        Ok(())
    }
}

/// One entry as read: its id and raw fields.
struct Entry {
    id: String,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn entry_fields(map: &std::collections::HashMap<String, Value>) -> Vec<(Vec<u8>, Vec<u8>)> {
    map.iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::BulkString(b) => b.clone(),
                Value::SimpleString(s) => s.clone().into_bytes(),
                Value::Int(i) => i.to_string().into_bytes(),
                other => format!("{other:?}").into_bytes(),
            };
            (k.clone().into_bytes(), bytes)
        })
        .collect()
}

/// The consumer's identity and stream.
pub struct Consumer {
    pub stream: String,
    pub group: String,
    pub name: String,
    config: EventBusConfig,
    registry: SchemaRegistry,
}

impl Consumer {
    pub fn new(config: &EventBusConfig, registry: SchemaRegistry) -> Consumer {
        Consumer {
            stream: config.stream(),
            group: config.group.clone(),
            name: config.consumer_name(),
            config: config.clone(),
            registry,
        }
    }

    /// Creates the consumer group when missing (at the start of the stream or at its end).
    pub async fn ensure_group(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let start = if self.config.start_from == "now" {
            "$"
        } else {
            "0"
        };
        let created: redis::RedisResult<()> = conn
            .xgroup_create_mkstream(&self.stream, &self.group, start)
            .await;
        match created {
            Ok(()) => {
                tracing::info!(stream = %self.stream, group = %self.group, start, "created consumer group");
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads one batch and queues it for the writer: first entries other consumers left pending
    /// too long (checked every `claim_idle_secs / 2`), then new ones (blocking up to
    /// `block_ms`). Returns how many entries were read; they are acknowledged by `pipeline`'s
    /// tasks once durable.
    pub async fn run_once(
        &self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
        pipeline: &mut Pipeline,
    ) -> anyhow::Result<usize> {
        // Back-pressure, and the first failure of an earlier batch surfaces here.
        while pipeline.acks.len() >= IN_FLIGHT {
            if let Some(done) = pipeline.acks.join_next().await {
                done??;
            }
        }
        while let Some(done) = pipeline.acks.try_join_next() {
            done??;
        }
        let count = self.config.batch_size;
        let mut entries: Vec<Entry> = Vec::new();
        if Instant::now() >= pipeline.next_claim {
            pipeline.next_claim = Instant::now()
                + Duration::from_millis((self.config.claim_idle_secs * 1000 / 2).max(100));
            let claimed: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    &self.stream,
                    &self.group,
                    &self.name,
                    self.config.claim_idle_secs * 1000,
                    "0-0",
                    StreamAutoClaimOptions::default().count(count),
                )
                .await?;
            entries.extend(claimed.claimed.iter().map(|e| Entry {
                id: e.id.clone(),
                fields: entry_fields(&e.map),
            }));
            if !entries.is_empty() {
                m::bus_reclaimed(entries.len());
                tracing::info!(
                    count = entries.len(),
                    "reclaimed pending entries of another consumer"
                );
                // More may be waiting: look again on the next pass.
                pipeline.next_claim = Instant::now();
            }
        }
        if entries.is_empty() {
            // Without anything in flight, wait for new entries; otherwise just look, so queued
            // batches are acknowledged promptly when the stream is quiet.
            let block = if pipeline.acks.is_empty() {
                self.config.block_ms as usize
            } else {
                1
            };
            let opts = StreamReadOptions::default()
                .group(&self.group, &self.name)
                .count(count)
                .block(block);
            let reply: Option<StreamReadReply> =
                conn.xread_options(&[&self.stream], &[">"], &opts).await?;
            if let Some(reply) = reply {
                for key in reply.keys {
                    entries.extend(key.ids.into_iter().map(|e| Entry {
                        fields: entry_fields(&e.map),
                        id: e.id,
                    }));
                }
            }
        }
        if entries.is_empty() {
            // Nothing new: let the batches in flight finish.
            if let Some(done) = pipeline.acks.join_next().await {
                done??;
            }
            return Ok(0);
        }
        let n = entries.len();
        self.process(state, conn, entries, pipeline).await?;
        Ok(n)
    }

    async fn process(
        &self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
        pipeline: &mut Pipeline,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let rules = state.index.current();
        let mut events: Vec<IncomingEvent> = Vec::with_capacity(entries.len());
        let mut dead: Vec<RejectedEvent> = Vec::new();
        let mut ignored = 0usize;
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        m::events_received(entries.len());
        for e in entries {
            let source = format!("redis:{}/{}", self.stream, e.id);
            match decode_entry(&self.registry, &e.fields) {
                Ok(json) => {
                    let event_type = json
                        .get("event_type")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default();
                    if !state.config.events.is_configured(event_type) {
                        ignored += 1;
                        continue;
                    }
                    match admit(&rules, json, source, now) {
                        Admission::Accepted(ev) => events.push(ev),
                        Admission::Rejected { record, .. } => dead.push(record),
                    }
                }
                Err(err) => {
                    m::bus_dead_letter(err.code());
                    dead.push(RejectedEvent {
                        event_id: None,
                        event_type: err.event_type().map(str::to_string),
                        code: format!("bus_{}", err.code()),
                        detail: format!("{err}; raw entry: {}", raw_fields(&e.fields)),
                        source,
                        received_at: now,
                    });
                }
            }
        }
        if ignored > 0 {
            m::bus_ignored(ignored);
        }
        if !dead.is_empty() {
            state.store.record_rejected(dead).await?;
        }
        // Queued now, in read order; acknowledged only once durable.
        let queued = state.ingest.enqueue(events).await?;
        let mut conn = conn.clone();
        let (stream, group) = (self.stream.clone(), self.group.clone());
        pipeline.acks.spawn(async move {
            queued.wait().await?;
            let _: i64 = conn.xack(&stream, &group, &ids).await?;
            Ok(())
        });
        Ok(())
    }
}

/// The raw fields as JSON `[[name, base64(value)], …]`, so a dead letter can be replayed.
fn raw_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let list: Vec<[String; 2]> = fields
        .iter()
        .map(|(k, v)| [String::from_utf8_lossy(k).into_owned(), b64.encode(v)])
        .collect();
    serde_json::to_string(&list).unwrap_or_default()
}

/// Runs until shutdown, reconnecting with a pause after errors.
pub async fn run(state: AppState, consumer: Consumer) {
    let url = state.config.event_bus.redis_url.clone();
    loop {
        if state.shutdown.is_cancelled() {
            return;
        }
        let result = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            consumer.ensure_group(&mut conn).await?;
            tracing::info!(stream = %consumer.stream, group = %consumer.group, consumer = %consumer.name, "event-bus consumer running");
            let mut pipeline = Pipeline::default();
            let outcome = loop {
                tokio::select! {
                    r = consumer.run_once(&state, &mut conn, &mut pipeline) => {
                        if let Err(e) = r { break Err(e); }
                    }
                    _ = state.shutdown.cancelled() => break anyhow::Ok(()),
                }
            };
            // Acknowledge what is already queued before leaving (bounded: the writer answers
            // every queued batch, also when shutting down).
            let drained =
                tokio::time::timeout(Duration::from_secs(10), pipeline.drain()).await;
            if let Ok(Err(e)) = drained {
                tracing::warn!(error = %e, "event-bus consumer: some batches were not acknowledged; they will be reclaimed");
            }
            outcome
        }
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "event-bus consumer failed; reconnecting in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = state.shutdown.cancelled() => return,
                }
            }
        }
    }
}
