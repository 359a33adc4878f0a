//! The event envelope (`EventsMetadata`) that travels as text beside the Avro payload.
//!
//! Redis carries it as stream-entry fields (`type`, `id`, `source`, `time`, `minorversion`,
//! `sourcehost`, `sourcelib`); Kafka as record headers with a `ce_` prefix on the CloudEvents
//! attributes (`ce_type`, `ce_id`, `ce_source`, `ce_time`, `ce_minorversion`) and bare
//! `sourcehost`/`sourcelib`. This module knows both spellings and checks the values.

use chrono::DateTime;

/// How one transport spells the metadata fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldNames {
    pub(crate) event_type: &'static str,
    pub(crate) id: &'static str,
    pub(crate) source: &'static str,
    pub(crate) time: &'static str,
    pub(crate) minorversion: &'static str,
    pub(crate) sourcehost: &'static str,
    pub(crate) sourcelib: &'static str,
}

/// `event-bus-redis` stream-entry fields.
pub(crate) const REDIS: FieldNames = FieldNames {
    event_type: "type",
    id: "id",
    source: "source",
    time: "time",
    minorversion: "minorversion",
    sourcehost: "sourcehost",
    sourcelib: "sourcelib",
};

/// `event-bus-kafka` record headers.
pub(crate) const KAFKA: FieldNames = FieldNames {
    event_type: "ce_type",
    id: "ce_id",
    source: "ce_source",
    time: "ce_time",
    minorversion: "ce_minorversion",
    sourcehost: "sourcehost",
    sourcelib: "sourcelib",
};

/// The Redis field that holds the Avro payload.
pub(crate) const EVENT_DATA: &str = "event_data";

/// Raw metadata values picked out of a message, not yet checked.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RawMetadata<'a> {
    pub(crate) event_type: Option<&'a [u8]>,
    pub(crate) id: Option<&'a [u8]>,
    pub(crate) source: Option<&'a [u8]>,
    pub(crate) time: Option<&'a [u8]>,
    pub(crate) minorversion: Option<&'a [u8]>,
    pub(crate) sourcehost: Option<&'a [u8]>,
}

impl<'a> RawMetadata<'a> {
    /// Stores `value` when `name` is one of the metadata fields; returns whether it was one.
    /// A repeated field overwrites the earlier value; `previous` reports it.
    pub(crate) fn offer(&mut self, names: &FieldNames, name: &[u8], value: &'a [u8]) -> Offer {
        let slot = if name == names.event_type.as_bytes() {
            &mut self.event_type
        } else if name == names.id.as_bytes() {
            &mut self.id
        } else if name == names.source.as_bytes() {
            &mut self.source
        } else if name == names.time.as_bytes() {
            &mut self.time
        } else if name == names.minorversion.as_bytes() {
            &mut self.minorversion
        } else if name == names.sourcehost.as_bytes() {
            &mut self.sourcehost
        } else {
            return Offer::NotMetadata;
        };
        if slot.replace(value).is_some() {
            Offer::Repeated
        } else {
            Offer::Taken
        }
    }
}

/// What [`RawMetadata::offer`] did with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Taken,
    Repeated,
    NotMetadata,
}

/// `time` must be an ISO-8601 / RFC 3339 timestamp with an offset (Python's
/// `datetime.isoformat()` of an aware datetime is one).
pub(crate) fn check_time(text: &str) -> Result<(), String> {
    DateTime::parse_from_rfc3339(text)
        .map(|_| ())
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp with offset ({e})"))
}

/// `minorversion` is a decimal integer.
pub(crate) fn parse_minorversion(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("`{text}` is not a decimal integer"))
}
