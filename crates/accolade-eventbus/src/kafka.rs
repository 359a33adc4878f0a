//! `event-bus-kafka` framing, for a future Kafka [`EventSource`](crate::EventSource).
//!
//! On Kafka the metadata travels as record headers (`ce_type`, `ce_id`, `ce_source`,
//! `ce_time`, `ce_minorversion`, `sourcehost`, `sourcelib`, plus constant `ce_specversion`,
//! `content-type`, `ce_datacontenttype`), and the value is in Confluent wire format: magic
//! byte `0`, a 4-byte big-endian schema-registry id, then the same schemaless Avro datum that
//! Redis carries in `event_data`. No Kafka client here: these functions work on bytes.

use serde_json::Value as Json;

use crate::decode::{decode_message, DecodeOptions, Payload};
use crate::encode::encode_payload;
use crate::metadata::{self, Offer, RawMetadata};
use crate::{DecodeError, EncodeError, SchemaRegistry};

/// The first byte of a Confluent-framed key or value.
pub const CONFLUENT_MAGIC: u8 = 0;

/// Splits a Confluent-framed key or value into its schema id and Avro datum; `None` when the
/// bytes are shorter than the 5-byte prefix or do not start with the magic byte.
pub fn split_confluent_frame(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [CONFLUENT_MAGIC, a, b, c, d, datum @ ..] => {
            Some((u32::from_be_bytes([*a, *b, *c, *d]), datum))
        }
        _ => None,
    }
}

/// Prefixes an Avro datum with the Confluent framing for `schema_id`.
pub fn confluent_frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + datum.len());
    framed.push(CONFLUENT_MAGIC);
    framed.extend_from_slice(&schema_id.to_be_bytes());
    framed.extend_from_slice(datum);
    framed
}

/// Decodes one event-bus-kafka record (its headers and Confluent-framed value) into the same
/// event JSON as [`decode_entry`](crate::decode_entry).
///
/// The schema id in the frame is not looked up: the datum is read with the registry's schema
/// for `ce_type`, exactly as on Redis (pinning the writer schema per event type). A header
/// that appears twice is `bad_metadata`, as in the Python consumer.
pub fn decode_kafka_record<K, V>(
    registry: &SchemaRegistry,
    headers: &[(K, V)],
    value: &[u8],
) -> Result<Json, DecodeError>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut raw = RawMetadata::default();
    let mut repeated = None;
    for (name, header) in headers {
        if raw.offer(&metadata::KAFKA, name.as_ref(), header.as_ref()) == Offer::Repeated {
            repeated.get_or_insert_with(|| name.as_ref().to_vec());
        }
    }
    if let Some(name) = repeated {
        let event_type = raw
            .event_type
            .and_then(|t| std::str::from_utf8(t).ok())
            .map(str::to_owned);
        let field = [
            metadata::KAFKA.event_type,
            metadata::KAFKA.id,
            metadata::KAFKA.source,
            metadata::KAFKA.time,
            metadata::KAFKA.minorversion,
            metadata::KAFKA.sourcehost,
        ]
        .into_iter()
        .find(|f| f.as_bytes() == name.as_slice())
        .unwrap_or(metadata::KAFKA.event_type);
        return Err(DecodeError::BadMetadata {
            field,
            reason: "the header appears more than once".into(),
            event_type,
        });
    }
    let payload = match split_confluent_frame(value) {
        Some((_, datum)) => Payload::Present(datum),
        None => Payload::Malformed(
            "the value is not in Confluent wire format (magic byte 0 + 4-byte schema id)".into(),
        ),
    };
    decode_message(
        registry,
        &metadata::KAFKA,
        &raw,
        payload,
        DecodeOptions::default(),
    )
}

/// Encodes the `data` of an event (same JSON shape as [`decode_entry`](crate::decode_entry)
/// returns) as a Confluent-framed Kafka value for `schema_id` (the id the schema registry gave
/// the subject `"{topic}-{event_type}.CloudEvent"`).
pub fn encode_kafka_value(
    registry: &SchemaRegistry,
    event: &Json,
    schema_id: u32,
) -> Result<Vec<u8>, EncodeError> {
    let event_type = event
        .get("event_type")
        .and_then(Json::as_str)
        .ok_or_else(|| EncodeError::MissingField("event_type".into()))?;
    let schema = registry
        .get(event_type)
        .ok_or_else(|| EncodeError::UnknownEventType(event_type.to_owned()))?;
    let data = event
        .get("data")
        .ok_or_else(|| EncodeError::MissingField("data".into()))?;
    Ok(confluent_frame(schema_id, &encode_payload(schema, data)?))
}
