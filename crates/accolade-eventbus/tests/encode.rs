//! Encoding events given as HTTP-ingest JSON.

mod common;

use accolade_eventbus::{decode_entry, encode_entry, SchemaRegistry};
use serde_json::json;

fn passing_event() -> serde_json::Value {
    json!({
        "id": "5a1f3c2e-6f7b-11f0-8d3a-0242ac12000a",
        "event_type": "org.openedx.learning.course.passing.status.updated.v1",
        "time": "2026-08-20T14:03:27.512345+00:00",
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "is_passing": true,
            "course": {"course_key": "course-v1:OpenedX+DemoX+Demo_Course", "display_name": ""},
            "user": {"id": 42, "is_active": true,
                     "pii": {"username": "jdoe", "email": "jdoe@example.com", "name": "Jane Doe"}}
        }}
    })
}

#[test]
fn field_order_and_optional_defaults() {
    let registry = SchemaRegistry::builtin();
    // start/end are absent: they take their default (null), as the real producer sends.
    let fields = encode_entry(
        &registry,
        &passing_event(),
        "lms-6f7c9d8b57-x2k9q",
        "11.2.0",
    )
    .unwrap();
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "type",
            "id",
            "source",
            "time",
            "minorversion",
            "sourcehost",
            "sourcelib",
            "event_data"
        ]
    );
    let wire = common::passing_status_fields();
    let wire_names: Vec<&[u8]> = wire.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(
        wire_names,
        names.iter().map(|n| n.as_bytes()).collect::<Vec<_>>()
    );
    for ((_, ours), (_, theirs)) in fields.iter().zip(&wire) {
        assert_eq!(ours, theirs);
    }
}

#[test]
fn encode_errors() {
    let registry = SchemaRegistry::builtin();
    let code = |event: serde_json::Value| {
        encode_entry(&registry, &event, "h", "11.2.0")
            .unwrap_err()
            .code()
    };
    let mut e = passing_event();
    e["event_type"] = json!("org.example.unknown.v1");
    assert_eq!(code(e), "unknown_event_type");

    let mut e = passing_event();
    e["data"]["course_passing_status"]["user"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let err = encode_entry(&registry, &e, "h", "1").unwrap_err();
    assert_eq!(err.code(), "missing_field");
    assert!(
        err.to_string()
            .contains("data.course_passing_status.user.id"),
        "{err}"
    );

    let mut e = passing_event();
    e["data"]["course_passing_status"]["is_passing"] = json!("yes");
    let err = encode_entry(&registry, &e, "h", "1").unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert!(
        err.to_string()
            .contains("data.course_passing_status.is_passing"),
        "{err}"
    );

    let mut e = passing_event();
    e["data"]["course_passing_status"]["course"]["start"] = json!(5);
    assert_eq!(code(e), "invalid_field");

    let mut e = passing_event();
    e.as_object_mut().unwrap().remove("id");
    assert_eq!(code(e), "missing_field");

    let mut e = passing_event();
    e["time"] = json!("not a time");
    assert_eq!(code(e), "invalid_field");

    assert_eq!(code(json!([1, 2])), "invalid_field");
}

#[test]
fn time_is_normalised_to_python_isoformat_utc() {
    let registry = SchemaRegistry::builtin();
    let mut e = passing_event();
    e["time"] = json!("2026-08-20T16:03:27.5+02:00");
    let fields = encode_entry(&registry, &e, "h", "11.2.0").unwrap();
    assert_eq!(fields[3].1, b"2026-08-20T14:03:27.500000+00:00");
    let fields: Vec<(Vec<u8>, Vec<u8>)> = fields
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v))
        .collect();
    let back = decode_entry(&registry, &fields).unwrap();
    assert_eq!(back["time"], "2026-08-20T14:03:27.500000+00:00");
    assert_eq!(back["sourcehost"], "h");
}
