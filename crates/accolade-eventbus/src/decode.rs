//! Decoding an `event-bus-redis` stream entry into the JSON event Accolade ingests.
//!
//! The entry holds the metadata as UTF-8 text fields and `event_data`, a schemaless Avro
//! binary datum written with the event type's schema. The result has the shape of Accolade's
//! HTTP ingest body: `{"id","event_type","time","source","sourcehost","minorversion","data"}`,
//! where `data` maps the signal's data key to the payload.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use serde_json::{Map, Value as Json};

use crate::avro_json::avro_to_json;
use crate::metadata::{self, FieldNames, Offer, RawMetadata};
use crate::schema::{EventSchema, SchemaRegistry};

/// A stream entry as read from Redis: field name → raw bytes, in entry order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The reason an entry cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A required field is absent: `type`, `id`, `time` or `event_data` (Kafka: `ce_type`,
    /// `ce_id`, `ce_time`).
    #[error("the message has no `{field}` field")]
    MissingField {
        field: &'static str,
        event_type: Option<String>,
    },
    /// No schema is known for the event type; such entries are normally skipped.
    #[error("no schema is known for event type `{event_type}`")]
    UnknownEventType { event_type: String },
    /// The payload is not a valid datum of the event type's schema (truncated, wrong bytes,
    /// invalid UTF-8 in a string, or not in Confluent framing on Kafka).
    #[error("the `{event_type}` payload is not valid Avro for its schema: {reason}")]
    BadAvro { event_type: String, reason: String },
    /// A metadata field has an unusable value (`time` not RFC 3339, `minorversion` not an
    /// integer, empty `id`, a repeated Kafka header).
    #[error("metadata field `{field}` is invalid: {reason}")]
    BadMetadata {
        field: &'static str,
        reason: String,
        event_type: Option<String>,
    },
    /// A metadata field is not UTF-8 text.
    #[error("metadata field `{field}` is not UTF-8 text")]
    NotUtf8 {
        field: &'static str,
        event_type: Option<String>,
    },
}

impl DecodeError {
    /// A stable machine code: `missing_field`, `unknown_event_type`, `bad_avro`,
    /// `bad_metadata` or `not_utf8`.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::UnknownEventType { .. } => "unknown_event_type",
            DecodeError::BadAvro { .. } => "bad_avro",
            DecodeError::BadMetadata { .. } => "bad_metadata",
            DecodeError::NotUtf8 { .. } => "not_utf8",
        }
    }

    /// The entry's event type, when it could be read.
    pub fn event_type(&self) -> Option<&str> {
        match self {
            DecodeError::UnknownEventType { event_type }
            | DecodeError::BadAvro { event_type, .. } => Some(event_type),
            DecodeError::MissingField { event_type, .. }
            | DecodeError::BadMetadata { event_type, .. }
            | DecodeError::NotUtf8 { event_type, .. } => event_type.as_deref(),
        }
    }

    /// The metadata field concerned, for `missing_field`, `bad_metadata` and `not_utf8`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DecodeError::MissingField { field, .. }
            | DecodeError::BadMetadata { field, .. }
            | DecodeError::NotUtf8 { field, .. } => Some(field),
            DecodeError::UnknownEventType { .. } | DecodeError::BadAvro { .. } => None,
        }
    }
}

/// Choices for [`decode_entry_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Refuse (`bad_avro`) a payload with bytes left over after the schema's last field.
    ///
    /// Off by default, like the Python consumer (fastavro's `schemaless_reader` ignores them):
    /// openedx-events may append new top-level keys to a signal, which a producer with a newer
    /// schema writes after the fields known here.
    pub reject_trailing_bytes: bool,
}

impl DecodeOptions {
    /// Options that refuse trailing bytes.
    pub fn strict() -> DecodeOptions {
        DecodeOptions {
            reject_trailing_bytes: true,
        }
    }
}

/// Decodes one event-bus-redis entry into the Open edX event JSON that Accolade's HTTP ingest
/// takes: `{"id","event_type","time","source","sourcehost","minorversion","data":{<data_key>:
/// {...}}}`.
///
/// Fields are read by name (when one is repeated, the last value wins); unknown fields are
/// ignored. `time` is kept as the text the producer wrote;
/// `minorversion` becomes a number (0 when absent); `source` and `sourcehost` are `""` when
/// absent. Optional Avro fields (`["null", T]`) become `null` or the bare value, and an empty
/// string stays `""` (the Python consumer turns it into `None`; we keep what was sent).
/// Trailing bytes after the payload are ignored, see [`DecodeOptions`].
pub fn decode_entry(
    registry: &SchemaRegistry,
    fields: &[(Vec<u8>, Vec<u8>)],
) -> Result<Json, DecodeError> {
    decode_entry_with(registry, fields, DecodeOptions::default())
}

/// [`decode_entry`] with explicit [`DecodeOptions`].
pub fn decode_entry_with(
    registry: &SchemaRegistry,
    fields: &[(Vec<u8>, Vec<u8>)],
    options: DecodeOptions,
) -> Result<Json, DecodeError> {
    let mut raw = RawMetadata::default();
    let mut event_data = None;
    for (name, value) in fields {
        if raw.offer(&metadata::REDIS, name, value) == Offer::NotMetadata
            && name.as_slice() == metadata::EVENT_DATA.as_bytes()
        {
            event_data = Some(value.as_slice());
        }
    }
    let payload = match event_data {
        Some(bytes) => Payload::Present(bytes),
        None => Payload::Missing(metadata::EVENT_DATA),
    };
    decode_message(registry, &metadata::REDIS, &raw, payload, options)
}

/// Where the payload bytes stand once the transport framing is removed.
#[derive(Debug, Clone)]
pub(crate) enum Payload<'a> {
    Present(&'a [u8]),
    Missing(&'static str),
    Malformed(String),
}

/// Checks the metadata, decodes the payload and builds the event JSON.
pub(crate) fn decode_message<'a>(
    registry: &SchemaRegistry,
    names: &FieldNames,
    raw: &RawMetadata<'a>,
    payload: Payload<'_>,
    options: DecodeOptions,
) -> Result<Json, DecodeError> {
    let event_type = match raw.event_type {
        None => {
            return Err(DecodeError::MissingField {
                field: names.event_type,
                event_type: None,
            })
        }
        Some(bytes) => std::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8 {
            field: names.event_type,
            event_type: None,
        })?,
    };
    let Some(schema) = registry.get(event_type) else {
        return Err(DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        });
    };
    let text = |field: &'static str, value: Option<&'a [u8]>| match value {
        None => Ok(None),
        Some(bytes) => std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| DecodeError::NotUtf8 {
                field,
                event_type: Some(event_type.to_owned()),
            }),
    };
    let missing = |field: &'static str| DecodeError::MissingField {
        field,
        event_type: Some(event_type.to_owned()),
    };
    let bad = |field: &'static str, reason: String| DecodeError::BadMetadata {
        field,
        reason,
        event_type: Some(event_type.to_owned()),
    };

    let id = text(names.id, raw.id)?.ok_or_else(|| missing(names.id))?;
    if id.is_empty() {
        return Err(bad(names.id, "is empty".into()));
    }
    let time = text(names.time, raw.time)?.ok_or_else(|| missing(names.time))?;
    metadata::check_time(time).map_err(|reason| bad(names.time, reason))?;
    let source = text(names.source, raw.source)?.unwrap_or_default();
    let sourcehost = text(names.sourcehost, raw.sourcehost)?.unwrap_or_default();
    let minorversion = match text(names.minorversion, raw.minorversion)? {
        None => 0,
        Some(t) => {
            metadata::parse_minorversion(t).map_err(|reason| bad(names.minorversion, reason))?
        }
    };

    let bytes = match payload {
        Payload::Present(bytes) => bytes,
        Payload::Missing(field) => return Err(missing(field)),
        Payload::Malformed(reason) => {
            return Err(DecodeError::BadAvro {
                event_type: event_type.to_owned(),
                reason,
            })
        }
    };
    let data = decode_payload(schema, bytes, options).map_err(|reason| DecodeError::BadAvro {
        event_type: event_type.to_owned(),
        reason,
    })?;

    let mut event = Map::new();
    event.insert("id".into(), Json::String(id.to_owned()));
    event.insert("event_type".into(), Json::String(event_type.to_owned()));
    event.insert("time".into(), Json::String(time.to_owned()));
    event.insert("source".into(), Json::String(source.to_owned()));
    event.insert("sourcehost".into(), Json::String(sourcehost.to_owned()));
    event.insert("minorversion".into(), Json::from(minorversion));
    event.insert("data".into(), data);
    Ok(Json::Object(event))
}

/// Decodes the Avro datum into the `data` object (the top-level record: data key → payload).
fn decode_payload(
    schema: &EventSchema,
    bytes: &[u8],
    options: DecodeOptions,
) -> Result<Json, String> {
    // The compiled schema has no references left, so an empty name table is enough and
    // building the reader costs no allocation.
    let names = ResolvedSchema::new_with_schemata(Vec::new()).map_err(|e| e.to_string())?;
    let reader = GenericDatumReader::builder(&schema.schema)
        .resolved_writer_schemata(names)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rest = bytes;
    let value = reader.read_value(&mut rest).map_err(|e| e.to_string())?;
    if options.reject_trailing_bytes && !rest.is_empty() {
        return Err(format!(
            "{} bytes left after the last field of the schema",
            rest.len()
        ));
    }
    avro_to_json(&schema.schema, value)
}
