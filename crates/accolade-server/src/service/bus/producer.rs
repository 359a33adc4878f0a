//! Publishes Accolade's `org.openedx.learning.badge.awarded.v1` / `.revoked.v1` events (written
//! to `outgoing_events` with each award and revocation) to the same stream, in the wire format
//! edx-event-bus-redis uses (metadata fields + schemaless Avro per the badge schemas).
//!
//! At least once: an event is marked published after its XADD; a crash in between publishes it
//! again with the same event id, which Open edX consumers treat as the same event. Run it on one
//! instance (`event_bus.publish`), so order is kept.

use std::time::Duration;

use accolade_eventbus::{encode_entry, SchemaRegistry};
use chrono::{SecondsFormat, Utc};
use redis::aio::MultiplexedConnection;
use serde_json::json;

use crate::state::AppState;

/// Events read per pass.
const BATCH: u32 = 500;
/// The openedx-events version whose wire format we write (the `sourcelib` field).
const SOURCELIB: &str = "11.2.0";

/// Publishes one batch; returns how many events went out.
pub async fn run_once(
    state: &AppState,
    registry: &SchemaRegistry,
    conn: &mut MultiplexedConnection,
) -> anyhow::Result<usize> {
    let pending = state.store.unpublished_events(BATCH).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let stream = state.config.event_bus.stream();
    let host = state.config.event_bus.consumer_name();
    let mut pipe = redis::pipe();
    let mut ids = Vec::with_capacity(pending.len());
    for p in &pending {
        let event = json!({
            "id": p.id,
            "event_type": p.event_type,
            "time": p.time.to_rfc3339_opts(SecondsFormat::Micros, false),
            "source": "accolade",
            "sourcehost": host,
            "minorversion": 0,
            "data": {"badge": p.payload},
        });
        let fields = encode_entry(registry, &event, &host, SOURCELIB)
            .map_err(|e| anyhow::anyhow!("encoding outgoing event {}: {e}", p.id))?;
        let cmd = pipe
            .cmd("XADD")
            .arg(&stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(10_000)
            .arg("*");
        for (k, v) in &fields {
            cmd.arg(k.as_str()).arg(v.as_slice());
        }
        ids.push(p.id.clone());
    }
    let _: Vec<String> = pipe.query_async(conn).await?;
    let n = ids.len();
    state.store.mark_published(ids, Utc::now()).await?;
    crate::metrics::bus_published(n);
    Ok(n)
}

/// Runs until shutdown; reconnects after errors.
pub async fn run(state: AppState, registry: SchemaRegistry) {
    let url = state.config.event_bus.redis_url.clone();
    let idle = Duration::from_millis(state.config.worker.poll_interval_ms);
    loop {
        let result = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            loop {
                let n = run_once(&state, &registry, &mut conn).await?;
                if n == 0 {
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = state.shutdown.cancelled() => return anyhow::Ok(()),
                    }
                }
            }
        }
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "event-bus producer failed; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = state.shutdown.cancelled() => return,
                }
            }
        }
    }
}
