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
//! - Reading waits for the writer: a slow database slows reading (back-pressure), it does not
//!   pile up entries in memory.

use std::time::Duration;

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

use crate::config::EventBusConfig;
use crate::metrics as m;
use crate::state::AppState;

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

    /// Reads and processes one batch: first entries other consumers left pending too long, then
    /// new ones (blocking up to `block_ms`). Returns how many entries were handled.
    pub async fn run_once(
        &self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
    ) -> anyhow::Result<usize> {
        let count = self.config.batch_size;
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
        let mut entries: Vec<Entry> = claimed
            .claimed
            .iter()
            .map(|e| Entry {
                id: e.id.clone(),
                fields: entry_fields(&e.map),
            })
            .collect();
        if !entries.is_empty() {
            m::bus_reclaimed(entries.len());
            tracing::info!(
                count = entries.len(),
                "reclaimed pending entries of another consumer"
            );
        } else {
            let opts = StreamReadOptions::default()
                .group(&self.group, &self.name)
                .count(count)
                .block(self.config.block_ms as usize);
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
            return Ok(0);
        }
        let n = entries.len();
        self.process(state, conn, entries).await?;
        Ok(n)
    }

    async fn process(
        &self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
        entries: Vec<Entry>,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
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
                    if !state.config.events.types.iter().any(|t| t == event_type) {
                        ignored += 1;
                        continue;
                    }
                    match IncomingEvent::from_json(&json) {
                        Ok(ev) => events.push(ev),
                        Err(err) => {
                            m::event_rejected(err.code());
                            dead.push(RejectedEvent {
                                event_id: json
                                    .get("id")
                                    .and_then(|v| v.as_str())
                                    .map(str::to_string),
                                event_type: Some(event_type.to_string()),
                                code: err.code().to_string(),
                                detail: err.to_string(),
                                source,
                                received_at: now,
                            });
                        }
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
        if !events.is_empty() {
            // Returns once the events are durable; only then are the entries acknowledged.
            state.ingest.submit(events).await?;
        }
        let _: i64 = conn.xack(&self.stream, &self.group, &ids).await?;
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
            loop {
                tokio::select! {
                    r = consumer.run_once(&state, &mut conn) => { r?; }
                    _ = state.shutdown.cancelled() => return anyhow::Ok(()),
                }
            }
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
