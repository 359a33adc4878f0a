//! Every wire sample produced by the real Open edX producer decodes to its documented event,
//! and encodes back to the same bytes.

mod common;

use accolade_eventbus::{decode_entry, encode_entry, kafka, SchemaRegistry};
use common::*;
use serde_json::Value;

#[test]
fn every_wire_sample_decodes_to_its_metadata_and_data() {
    let registry = SchemaRegistry::builtin();
    let files = wire_sample_files();
    assert_eq!(files.len(), 7, "wire-sample files");
    let mut count = 0;
    for (name, file) in &files {
        let event_type = file["event_type"].as_str().unwrap();
        assert_eq!(name, &format!("{event_type}.json"));
        assert_eq!(
            registry.data_key(event_type),
            file["signal_data_key"].as_str(),
            "{name}"
        );
        for sample in file["samples"].as_array().unwrap() {
            let fields = entry_fields(sample);
            // The field order is the documented one.
            let order: Vec<String> = fields
                .iter()
                .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
                .collect();
            let documented: Vec<String> =
                serde_json::from_value(sample["redis"]["entry_fields_in_order"].clone()).unwrap();
            assert_eq!(order, documented, "{name}");
            let event_data = &fields.last().unwrap().1;
            assert_eq!(
                *event_data,
                hex(sample["redis"]["event_data_hex"].as_str().unwrap()),
                "{name}: base64 and hex agree"
            );

            let decoded = decode_entry(&registry, &fields)
                .unwrap_or_else(|e| panic!("{name}: {} ({})", e, e.code()));
            assert_eq!(
                decoded,
                expected_event(sample),
                "{name}: {}",
                sample["description"]
            );
            count += 1;
        }
    }
    assert_eq!(count, 15, "samples decoded");
}

#[test]
fn decoded_data_equals_the_http_samples() {
    let registry = SchemaRegistry::builtin();
    let mut compared = 0;
    for (name, file) in wire_sample_files() {
        let Some(http) = http_samples(&name) else {
            continue;
        };
        for sample in file["samples"].as_array().unwrap() {
            let decoded = decode_entry(&registry, &entry_fields(sample)).unwrap();
            let twin = http["samples"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["metadata"]["id"] == sample["metadata"]["id"])
                .unwrap_or_else(|| panic!("{name}: no HTTP sample {}", sample["metadata"]["id"]));
            assert_eq!(decoded["data"], twin["data"], "{name}");
            for key in [
                "id",
                "event_type",
                "time",
                "source",
                "sourcehost",
                "minorversion",
            ] {
                assert_eq!(decoded[key], twin["metadata"][key], "{name}: {key}");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 15);
}

/// The Python consumer drops falsy values of fields that have a default (`""` → `None`).
/// We return what the producer sent.
#[test]
fn we_keep_what_the_producer_sent_not_what_python_receivers_see() {
    let registry = SchemaRegistry::builtin();
    let mut differing = 0;
    for (name, sample) in all_wire_samples() {
        let Some(python) = sample["redis"].get("python_consumer_sees") else {
            continue;
        };
        let decoded = decode_entry(&registry, &entry_fields(&sample)).unwrap();
        assert_eq!(decoded["data"], sample["data"], "{name}");
        assert_ne!(&decoded["data"], python, "{name}");
        differing += 1;
    }
    assert_eq!(
        differing, 1,
        "one documented difference (badge.revoked sample 2)"
    );
    let (_, revoked) = all_wire_samples()
        .into_iter()
        .find(|(_, s)| s["redis"].get("python_consumer_sees").is_some())
        .unwrap();
    let decoded = decode_entry(&registry, &entry_fields(&revoked)).unwrap();
    let template = &decoded["data"]["badge"]["template"];
    assert_eq!(template["description"], "");
    assert_eq!(template["image_url"], "");
}

#[test]
fn encode_reproduces_every_entry_byte_for_byte() {
    let registry = SchemaRegistry::builtin();
    for (name, sample) in all_wire_samples() {
        let fields = entry_fields(&sample);
        let decoded = decode_entry(&registry, &fields).unwrap();
        let sourcehost = sample["metadata"]["sourcehost"].as_str().unwrap();
        let encoded = encode_entry(&registry, &decoded, sourcehost, &sourcelib(&sample))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = encoded
            .into_iter()
            .map(|(k, v)| (k.into_bytes(), v))
            .collect();
        assert_eq!(encoded, fields, "{name}: {}", sample["description"]);
    }
}

#[test]
fn encode_from_the_http_samples_gives_the_wire_bytes() {
    let registry = SchemaRegistry::builtin();
    for (name, sample) in all_wire_samples() {
        let fields = entry_fields(&sample);
        let http = http_samples(&name).expect("HTTP sample");
        let twin = http["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["metadata"]["id"] == sample["metadata"]["id"])
            .unwrap();
        let mut event = twin["metadata"].clone();
        event["data"] = twin["data"].clone();
        let encoded = encode_entry(
            &registry,
            &event,
            twin["metadata"]["sourcehost"].as_str().unwrap(),
            "11.2.0",
        )
        .unwrap();
        assert_eq!(
            encoded.last().unwrap().1,
            fields.last().unwrap().1,
            "{name}"
        );
    }
}

#[test]
fn badge_events_decode_with_their_schemas() {
    let registry = SchemaRegistry::builtin();
    let samples = all_wire_samples();
    let find = |event_type: &str, index: usize| -> Value {
        let (_, sample) = samples
            .iter()
            .filter(|(name, _)| *name == format!("{event_type}.json"))
            .nth(index)
            .unwrap_or_else(|| panic!("{event_type} sample {index}"));
        decode_entry(&registry, &entry_fields(sample)).unwrap()
    };

    let awarded = find("org.openedx.learning.badge.awarded.v1", 0);
    assert_eq!(
        awarded["event_type"],
        "org.openedx.learning.badge.awarded.v1"
    );
    assert_eq!(awarded["source"], "openedx/credentials/web");
    let badge = &awarded["data"]["badge"];
    assert_eq!(badge["uuid"], "3f0d7c7e-2b8e-4d3a-9c51-8e2f6a1b4c90");
    assert_eq!(badge["user"]["id"], 42);
    assert_eq!(badge["user"]["is_active"], true);
    assert_eq!(badge["user"]["pii"]["username"], "jdoe");
    assert_eq!(badge["template"]["origin"], "credly");
    assert_eq!(badge["template"]["name"], "Demo Course Graduate");
    assert_eq!(
        badge["template"]["image_url"],
        "badge_templates/icons/demo-course-graduate.png"
    );
    assert_eq!(awarded["data"].as_object().unwrap().len(), 1);

    // Optional template fields sent as null (union branch 0).
    let awarded_null = find("org.openedx.learning.badge.awarded.v1", 1);
    let template = &awarded_null["data"]["badge"]["template"];
    assert_eq!(template["origin"], "accredible");
    assert_eq!(template["name"], "Python Basics");
    for key in ["description", "image_url"] {
        assert!(
            template.get(key).is_some_and(Value::is_null),
            "{key} present and null"
        );
    }

    let revoked = find("org.openedx.learning.badge.revoked.v1", 1);
    assert_eq!(
        revoked["event_type"],
        "org.openedx.learning.badge.revoked.v1"
    );
    let badge = &revoked["data"]["badge"];
    assert_eq!(badge["uuid"], "71c0b2f4-5e6d-4a3b-8c9d-1e2f3a4b5c6d");
    assert_eq!(badge["user"]["pii"]["username"], "müller.k");
    assert_eq!(badge["user"]["pii"]["name"], "Katrin Müller");
    assert_eq!(badge["template"]["name"], "Python Basics");
    assert_eq!(badge["template"]["description"], "");
}

#[test]
fn ccx_field_order_differs_and_decodes() {
    let registry = SchemaRegistry::builtin();
    let (_, sample) = all_wire_samples()
        .into_iter()
        .find(|(name, _)| name.starts_with("org.openedx.learning.ccx."))
        .unwrap();
    let decoded = decode_entry(&registry, &entry_fields(&sample)).unwrap();
    let status = &decoded["data"]["course_passing_status"];
    assert_eq!(status["user"]["id"], 77);
    assert!(status["course"]["ccx_course_key"]
        .as_str()
        .unwrap()
        .starts_with("ccx-v1:"));
    // The passing-status schema (course before user) cannot read CCX bytes.
    let mut fields = entry_fields(&sample);
    fields[0].1 = b"org.openedx.learning.course.passing.status.updated.v1".to_vec();
    assert!(decode_entry(&registry, &fields).map_or(true, |wrong| wrong != decoded));
}

#[test]
fn kafka_records_decode_like_redis_entries() {
    let registry = SchemaRegistry::builtin();
    for (name, sample) in all_wire_samples() {
        let k = &sample["kafka"];
        let headers: Vec<(String, Vec<u8>)> = k["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(h, v)| (h.clone(), v.as_str().unwrap().as_bytes().to_vec()))
            .collect();
        let value = base64(k["value_base64"].as_str().unwrap());
        let (schema_id, datum) = kafka::split_confluent_frame(&value).unwrap();
        assert_eq!(
            schema_id,
            k["value_schema_id_mock"].as_u64().unwrap() as u32
        );
        let fields = entry_fields(&sample);
        assert_eq!(datum, fields.last().unwrap().1.as_slice(), "{name}");

        let from_kafka = kafka::decode_kafka_record(&registry, &headers, &value).unwrap();
        let from_redis = decode_entry(&registry, &fields).unwrap();
        assert_eq!(from_kafka, from_redis, "{name}");

        let reencoded = kafka::encode_kafka_value(&registry, &from_kafka, schema_id).unwrap();
        assert_eq!(reencoded, value, "{name}");

        // The key is the Avro string at event_key_field, Confluent-framed too.
        let key = base64(k["key_base64"].as_str().unwrap());
        let (_, key_datum) = kafka::split_confluent_frame(&key).unwrap();
        assert!(!key_datum.is_empty());
    }
}

#[test]
fn kafka_framing_errors() {
    let registry = SchemaRegistry::builtin();
    let (_, sample) = all_wire_samples().into_iter().next().unwrap();
    let headers: Vec<(String, String)> = sample["kafka"]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(h, v)| (h.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let datum = entry_fields(&sample).last().unwrap().1.clone();
    // The bare Redis datum is not a Kafka value.
    let err = kafka::decode_kafka_record(&registry, &headers, &datum[..3]).unwrap_err();
    assert_eq!(err.code(), "bad_avro");
    // A repeated header is refused.
    let mut twice = headers.clone();
    twice.push(("ce_id".into(), "other".into()));
    let framed = kafka::confluent_frame(1, &datum);
    let err = kafka::decode_kafka_record(&registry, &twice, &framed).unwrap_err();
    assert_eq!((err.code(), err.field()), ("bad_metadata", Some("ce_id")));
    // Missing ce_type.
    let without: Vec<_> = headers.iter().filter(|(h, _)| h != "ce_type").collect();
    let without: Vec<(String, String)> = without.into_iter().cloned().collect();
    let err = kafka::decode_kafka_record(&registry, &without, &framed).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("missing_field", Some("ce_type"))
    );
}
