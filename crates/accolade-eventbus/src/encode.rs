//! Encoding an event into the field list that `event-bus-redis` writes with `XADD`.
//!
//! This is what an Open edX service's producer would write for the same event, byte for
//! byte: the metadata as UTF-8 text fields and the `data` object as a schemaless Avro datum of
//! the event type's schema (no container header, no magic byte, no schema id).

use apache_avro::schema::ResolvedSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde_json::Value as Json;

use crate::avro_json::{json_to_avro, JsonToAvroError};
use crate::metadata;
use crate::schema::{EventSchema, SchemaRegistry};

/// The reason an event cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A required member is absent (`event_type`, `id`, `time`, `data`, or a required payload
    /// field such as `data.course_passing_status.user.id`).
    #[error("the event has no `{0}`")]
    MissingField(String),
    /// No schema is known for the event type.
    #[error("no schema is known for event type `{0}`")]
    UnknownEventType(String),
    /// A member has the wrong type or value (the path names it).
    #[error("`{path}` is invalid: {reason}")]
    InvalidField { path: String, reason: String },
    /// apache-avro refused the datum.
    #[error("Avro encoding failed: {0}")]
    Avro(String),
}

impl EncodeError {
    /// A stable machine code: `missing_field`, `unknown_event_type`, `invalid_field` or
    /// `bad_avro`.
    pub fn code(&self) -> &'static str {
        match self {
            EncodeError::MissingField(_) => "missing_field",
            EncodeError::UnknownEventType(_) => "unknown_event_type",
            EncodeError::InvalidField { .. } => "invalid_field",
            EncodeError::Avro(_) => "bad_avro",
        }
    }
}

/// Encodes an event (same JSON shape as [`decode_entry`](crate::decode_entry) returns) as the
/// XADD field list event-bus-redis writes, in its field order: `type, id, source, time,
/// minorversion, sourcehost, sourcelib, event_data`.
///
/// `sourcehost` (the producing host) and `sourcelib` (the producer's openedx-events version
/// text, e.g. `"11.2.0"`) are parameters; a `sourcehost` member of the event is ignored.
/// `time` is written as given when it is already Python's `isoformat()` of a UTC time
/// (`…T…+00:00`); any other RFC 3339 time is converted to UTC and written that way, as the
/// Python consumer requires UTC. `source` defaults to `""`, `minorversion` to 0. Payload
/// fields absent from the JSON take their schema default (`null` for optional ones); members
/// the schema does not know are ignored.
pub fn encode_entry(
    registry: &SchemaRegistry,
    event: &Json,
    sourcehost: &str,
    sourcelib: &str,
) -> Result<Vec<(String, Vec<u8>)>, EncodeError> {
    let Json::Object(object) = event else {
        return Err(EncodeError::InvalidField {
            path: String::new(),
            reason: "an event must be a JSON object".into(),
        });
    };
    let string = |name: &str, required: bool| -> Result<Option<&str>, EncodeError> {
        match object.get(name) {
            None | Some(Json::Null) if required => Err(EncodeError::MissingField(name.into())),
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(EncodeError::InvalidField {
                path: name.into(),
                reason: "must be a string".into(),
            }),
        }
    };
    let event_type = string("event_type", true)?.unwrap_or_default();
    let schema = registry
        .get(event_type)
        .ok_or_else(|| EncodeError::UnknownEventType(event_type.to_owned()))?;
    let id = string("id", true)?.unwrap_or_default();
    if id.is_empty() {
        return Err(EncodeError::InvalidField {
            path: "id".into(),
            reason: "is empty".into(),
        });
    }
    let time = wire_time(string("time", true)?.unwrap_or_default())?;
    let source = string("source", false)?.unwrap_or_default();
    let minorversion = match object.get("minorversion") {
        None | Some(Json::Null) => 0,
        Some(Json::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
        Some(Json::String(s)) => {
            metadata::parse_minorversion(s).map_err(|reason| EncodeError::InvalidField {
                path: "minorversion".into(),
                reason,
            })?
        }
        Some(_) => {
            return Err(EncodeError::InvalidField {
                path: "minorversion".into(),
                reason: "must be an integer".into(),
            })
        }
    };
    let data = object
        .get("data")
        .ok_or_else(|| EncodeError::MissingField("data".into()))?;
    let event_data = encode_payload(schema, data)?;

    let names = &metadata::REDIS;
    Ok(vec![
        (names.event_type.into(), event_type.as_bytes().to_vec()),
        (names.id.into(), id.as_bytes().to_vec()),
        (names.source.into(), source.as_bytes().to_vec()),
        (names.time.into(), time.into_bytes()),
        (
            names.minorversion.into(),
            minorversion.to_string().into_bytes(),
        ),
        (names.sourcehost.into(), sourcehost.as_bytes().to_vec()),
        (names.sourcelib.into(), sourcelib.as_bytes().to_vec()),
        (metadata::EVENT_DATA.into(), event_data),
    ])
}

/// Encodes the `data` object (data key → payload) as the schemaless Avro datum.
pub(crate) fn encode_payload(schema: &EventSchema, data: &Json) -> Result<Vec<u8>, EncodeError> {
    let mut path = vec!["data".to_owned()];
    let value = json_to_avro(&schema.schema, data, &mut path).map_err(|e| match e {
        JsonToAvroError::Missing(path) => EncodeError::MissingField(path),
        JsonToAvroError::Invalid { path, reason } => EncodeError::InvalidField { path, reason },
    })?;
    let names = ResolvedSchema::new_with_schemata(Vec::new())
        .map_err(|e| EncodeError::Avro(e.to_string()))?;
    GenericDatumWriter::builder(&schema.schema)
        .resolved_schemata(names)
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .map_err(|e| EncodeError::Avro(e.to_string()))
}

/// The `time` text to write: kept when it is already UTC in Python's `isoformat()` shape,
/// otherwise the same instant re-written that way.
fn wire_time(text: &str) -> Result<String, EncodeError> {
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|e| EncodeError::InvalidField {
        path: "time".into(),
        reason: format!("`{text}` is not an RFC 3339 timestamp with offset ({e})"),
    })?;
    if text.ends_with("+00:00") && text.as_bytes().get(10) == Some(&b'T') {
        return Ok(text.to_owned());
    }
    Ok(python_isoformat(parsed.with_timezone(&Utc)))
}

/// Python's `datetime.isoformat()` of a UTC datetime: microseconds, omitted when zero.
fn python_isoformat(time: DateTime<Utc>) -> String {
    let time = time
        .with_nanosecond(time.nanosecond() / 1_000 * 1_000)
        .unwrap_or(time);
    let format = if time.nanosecond() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    time.to_rfc3339_opts(format, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text_is_kept_or_made_python_like() {
        for (given, written) in [
            (
                "2026-08-20T14:03:27.512345+00:00",
                "2026-08-20T14:03:27.512345+00:00",
            ),
            ("2026-08-21T08:00:00+00:00", "2026-08-21T08:00:00+00:00"),
            ("2026-08-21T08:00:00Z", "2026-08-21T08:00:00+00:00"),
            (
                "2026-08-21T10:00:00.5+02:00",
                "2026-08-21T08:00:00.500000+00:00",
            ),
            (
                "2026-08-21T08:00:00.123456789Z",
                "2026-08-21T08:00:00.123456+00:00",
            ),
        ] {
            assert_eq!(wire_time(given).expect(given), written);
        }
        assert_eq!(
            wire_time("yesterday").map_err(|e| e.code()),
            Err("invalid_field")
        );
    }
}
