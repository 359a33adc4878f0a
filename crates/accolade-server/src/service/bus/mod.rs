//! The Open edX event bus: the Redis Streams consumer (`consumer`) and the producer of
//! Accolade's badge events (`producer`). Decoding and the Avro
//! schemas live in the `accolade-eventbus` crate, which also holds the `EventSource` trait a
//! Kafka source would implement (see docs/kafka.md).

pub mod consumer;
pub mod producer;

use accolade_eventbus::SchemaRegistry;

use crate::config::Config;

/// The built-in schemas plus the operator's `event_bus.schema_dir`.
pub fn registry(config: &Config) -> anyhow::Result<SchemaRegistry> {
    let mut registry = SchemaRegistry::builtin();
    let dir = &config.event_bus.schema_dir;
    if !dir.as_os_str().is_empty() {
        let n = registry
            .load_dir(dir)
            .map_err(|e| anyhow::anyhow!("event_bus.schema_dir {}: {e}", dir.display()))?;
        tracing::info!(dir = %dir.display(), schemas = n, "loaded extra event schemas");
    }
    Ok(registry)
}
