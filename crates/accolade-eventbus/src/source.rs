//! The transport abstraction: where raw event-bus messages come from.
//!
//! Redis Streams is the transport today (its implementation lives in the server crate, which
//! owns the Redis client); Kafka can be added later behind the same trait (see `KAFKA.md`).
//! A consumer loop only needs: fetch a batch, decode each message with the shared
//! [`SchemaRegistry`], hand the events on, acknowledge the batch.

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
