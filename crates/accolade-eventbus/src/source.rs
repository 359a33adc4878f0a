//! The transport abstraction: where raw event-bus messages come from.
//!
//! A consumer loop only needs: fetch a batch, decode each message with the shared
//! [`SchemaRegistry`], hand the events on, acknowledge the batch. Kafka can be added behind this
//! trait (see `KAFKA.md`); `tests/source.rs` drives a transport-independent loop with an
//! in-memory source.
//!
//! The server's Redis Streams consumer (`accolade-server/src/service/bus/consumer.rs`) does not
//! go through it: it reads ahead of the database by several batches and acknowledges each batch
//! from a task of its own once that batch is durable, which `ack(&mut self)` on the one source
//! cannot express. Bringing the two together (an acknowledger handle the source hands out) is
//! for when a second transport is built, so that its shape is decided by two real users.

use std::future::Future;

use crate::{DecodeError, SchemaRegistry};

/// A source of raw event-bus messages (Redis Streams today; Kafka later, see docs/kafka.md).
///
/// A Redis source reads one stream with `XREADGROUP` as its own consumer group; a Kafka source
/// subscribes to one topic with its own `group.id`. Several event types share one stream or
/// topic: messages of types the registry does not know decode to
/// [`DecodeError::UnknownEventType`] and should be acknowledged and skipped.
pub trait EventSource {
    /// One message as the transport delivers it, e.g. a Redis entry id with its
    /// [`Fields`](crate::Fields), or a Kafka record (headers, value, partition, offset).
    type Message: Send;
    /// A transport failure (connection lost, timeout, …); decoding failures are
    /// [`DecodeError`]s instead.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The full stream or topic name read, prefix applied (see [`full_topic`]).
    fn topic(&self) -> &str;

    /// Waits for the next messages, at most `max`; an empty batch means none arrived within
    /// the source's poll timeout. Messages delivered earlier but never acknowledged (after a
    /// crash) come first.
    fn fetch(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Self::Message>, Self::Error>> + Send;

    /// Decodes one message into the event JSON that [`decode_entry`](crate::decode_entry)
    /// returns (Redis: `decode_entry`; Kafka: [`decode_kafka_record`](crate::kafka::decode_kafka_record)).
    fn decode(
        &self,
        registry: &SchemaRegistry,
        message: &Self::Message,
    ) -> Result<serde_json::Value, DecodeError>;

    /// Marks messages as handled so they are not delivered again (Redis `XACK`; Kafka offset
    /// commit). Call it only once the events are stored.
    fn ack(
        &mut self,
        messages: &[Self::Message],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The stream (Redis) or topic (Kafka) name for `topic` under `EVENT_BUS_TOPIC_PREFIX`:
/// `"{prefix}-{topic}"`, or the bare topic when the prefix is empty or absent.
///
/// ```
/// assert_eq!(
///     accolade_eventbus::full_topic(Some("dev"), "learning-badges-lifecycle"),
///     "dev-learning-badges-lifecycle"
/// );
/// assert_eq!(accolade_eventbus::full_topic(None, "t"), "t");
/// ```
pub fn full_topic(prefix: Option<&str>, topic: &str) -> String {
    match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}-{topic}"),
        _ => topic.to_owned(),
    }
}
