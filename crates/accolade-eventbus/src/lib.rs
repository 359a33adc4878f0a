//! Open edX event-bus codec for Accolade.
//!
//! Open edX services publish learning events on an event bus (`event-bus-redis` today,
//! `event-bus-kafka` elsewhere). Every message carries the event metadata as text and the
//! event data as a *schemaless* Avro binary datum written with the event type's schema.
//! This crate turns such a message into the JSON event that Accolade's HTTP ingest takes,
//! and back:
//!
//! * [`SchemaRegistry`] holds the Avro schema of every known event type (compiled in, plus
//!   any loaded from a folder at runtime) and answers questions about them
//!   ([`SchemaRegistry::data_key`], [`SchemaRegistry::key_paths`]).
//! * [`decode_entry`] decodes one Redis stream entry; [`encode_entry`] produces the field list
//!   that `event-bus-redis` would `XADD`.
//! * [`kafka`] holds the Confluent framing helpers and [`kafka::decode_kafka_record`], for a
//!   future Kafka transport; [`EventSource`] is the transport abstraction.
//!
//! The crate does no I/O on the bus itself: the Redis consumer lives in the server crate.

#![forbid(unsafe_code)]

mod avro_json;
mod decode;
mod encode;
pub mod kafka;
mod metadata;
mod schema;
mod source;

pub use decode::{decode_entry, decode_entry_with, DecodeError, DecodeOptions, Fields};
pub use encode::{encode_entry, EncodeError};
pub use schema::{SchemaError, SchemaRegistry};
pub use source::{full_topic, EventSource};
