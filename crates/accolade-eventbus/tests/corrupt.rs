//! Entries that cannot be decoded give the right `DecodeError::code()`.

mod common;

use accolade_eventbus::{decode_entry, decode_entry_with, DecodeOptions, SchemaRegistry};
use common::passing_status_fields;

const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";

fn without(name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    passing_status_fields()
        .into_iter()
        .filter(|(k, _)| k != name.as_bytes())
        .collect()
}

fn with(name: &str, value: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    passing_status_fields()
        .into_iter()
        .map(|(k, v)| {
            if k == name.as_bytes() {
                (k, value.to_vec())
            } else {
                (k, v)
            }
        })
        .collect()
}

fn event_data() -> Vec<u8> {
    passing_status_fields().last().unwrap().1.clone()
}

#[test]
fn missing_event_data() {
    let err = decode_entry(&SchemaRegistry::builtin(), &without("event_data")).unwrap_err();
    assert_eq!(err.code(), "missing_field");
    assert_eq!(err.field(), Some("event_data"));
    assert_eq!(err.event_type(), Some(PASSING));
    assert!(err.to_string().contains("event_data"));
}

#[test]
fn missing_type() {
    let err = decode_entry(&SchemaRegistry::builtin(), &without("type")).unwrap_err();
    assert_eq!(err.code(), "missing_field");
    assert_eq!(err.field(), Some("type"));
    assert_eq!(err.event_type(), None);
}

#[test]
fn missing_id_and_time() {
    let registry = SchemaRegistry::builtin();
    for name in ["id", "time"] {
        let err = decode_entry(&registry, &without(name)).unwrap_err();
        assert_eq!((err.code(), err.field()), ("missing_field", Some(name)));
    }
}

#[test]
fn optional_metadata_may_be_absent() {
    let registry = SchemaRegistry::builtin();
    let mut fields = passing_status_fields();
    fields.retain(|(k, _)| {
        !matches!(
            k.as_slice(),
            b"source" | b"sourcehost" | b"minorversion" | b"sourcelib"
        )
    });
    let event = decode_entry(&registry, &fields).unwrap();
    assert_eq!(event["source"], "");
    assert_eq!(event["sourcehost"], "");
    assert_eq!(event["minorversion"], 0);
}

#[test]
fn unknown_type() {
    let err = decode_entry(
        &SchemaRegistry::builtin(),
        &with("type", b"org.openedx.learning.something.else.v1"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "unknown_event_type");
    assert_eq!(
        err.event_type(),
        Some("org.openedx.learning.something.else.v1")
    );
    // Unknown types are reported before anything else is checked.
    let mut fields = with("type", b"org.example.other.v1");
    fields.retain(|(k, _)| k != b"event_data" && k != b"id");
    let err = decode_entry(&SchemaRegistry::builtin(), &fields).unwrap_err();
    assert_eq!(err.code(), "unknown_event_type");
    assert_eq!(
        decode_entry(&SchemaRegistry::empty(), &passing_status_fields())
            .unwrap_err()
            .code(),
        "unknown_event_type"
    );
}

#[test]
fn truncated_avro_at_every_length() {
    let registry = SchemaRegistry::builtin();
    let data = event_data();
    for len in 0..data.len() {
        let result = decode_entry(&registry, &with("event_data", &data[..len]));
        let err = result.expect_err(&format!("{len} of {} bytes must not decode", data.len()));
        assert_eq!(err.code(), "bad_avro", "{len}: {err}");
        assert_eq!(err.event_type(), Some(PASSING));
    }
}

#[test]
fn trailing_garbage() {
    let registry = SchemaRegistry::builtin();
    let mut data = event_data();
    data.extend_from_slice(b"\x02garbage");
    let fields = with("event_data", &data);
    // Strict decoding refuses it...
    let err = decode_entry_with(&registry, &fields, DecodeOptions::strict()).unwrap_err();
    assert_eq!(err.code(), "bad_avro");
    assert!(err.to_string().contains("8 bytes left"), "{err}");
    // ...the default, like fastavro's schemaless_reader, reads the known fields and ignores the
    // rest (a newer producer may append a top-level key).
    let event = decode_entry(&registry, &fields).unwrap();
    let clean = decode_entry(&registry, &passing_status_fields()).unwrap();
    assert_eq!(event, clean);
}

#[test]
fn wrong_bytes() {
    let registry = SchemaRegistry::builtin();
    let mut data = event_data();
    data[0] = 7; // a boolean must be 0 or 1
    assert_eq!(
        decode_entry(&registry, &with("event_data", &data))
            .unwrap_err()
            .code(),
        "bad_avro"
    );
    let mut data = event_data();
    data[3] = 0xff; // invalid UTF-8 inside course_key
    assert_eq!(
        decode_entry(&registry, &with("event_data", &data))
            .unwrap_err()
            .code(),
        "bad_avro"
    );
    // A string length far beyond the data.
    let mut data = event_data();
    data[1] = 0xfe;
    assert_eq!(
        decode_entry(&registry, &with("event_data", &data))
            .unwrap_err()
            .code(),
        "bad_avro"
    );
    // Absurd string lengths (up to the 64-bit varint limit) fail fast.
    for length in [
        [0xfe, 0xff, 0xff, 0xff, 0x0f].as_slice(),
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    ] {
        let mut data = vec![0x01];
        data.extend_from_slice(length);
        data.extend_from_slice(b"course-v1:x");
        let started = std::time::Instant::now();
        let err = decode_entry(&registry, &with("event_data", &data)).unwrap_err();
        assert_eq!(err.code(), "bad_avro", "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    // Negative length.
    let mut data = event_data();
    data[1] = 0x01;
    assert_eq!(
        decode_entry(&registry, &with("event_data", &data))
            .unwrap_err()
            .code(),
        "bad_avro"
    );
}

#[test]
fn non_utf8_metadata() {
    let registry = SchemaRegistry::builtin();
    for name in ["id", "source", "time", "minorversion", "sourcehost"] {
        let err = decode_entry(&registry, &with(name, b"bad\xff\xfe")).unwrap_err();
        assert_eq!((err.code(), err.field()), ("not_utf8", Some(name)));
        assert_eq!(err.event_type(), Some(PASSING));
    }
    let err = decode_entry(&registry, &with("type", b"org.\xff")).unwrap_err();
    assert_eq!((err.code(), err.event_type()), ("not_utf8", None));
}

#[test]
fn bad_metadata() {
    let registry = SchemaRegistry::builtin();
    for (name, value) in [
        ("time", b"2026-08-20 14:03:27".as_slice()),
        ("time", b"yesterday"),
        ("minorversion", b"one"),
        ("id", b""),
    ] {
        let err = decode_entry(&registry, &with(name, value)).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("bad_metadata", Some(name)),
            "{err}"
        );
    }
}

#[test]
fn fields_are_read_by_name_in_any_order() {
    let registry = SchemaRegistry::builtin();
    let mut fields = passing_status_fields();
    fields.reverse();
    fields.push((b"extra".to_vec(), b"\xff".to_vec()));
    assert_eq!(
        decode_entry(&registry, &fields).unwrap(),
        decode_entry(&registry, &passing_status_fields()).unwrap()
    );
}
