//! Decode throughput for the course-passing-status wire sample (one core).
//!
//! `cargo run --release --example decode_bench [iterations]`

use std::time::Instant;

use accolade_eventbus::{decode_entry, encode_entry, SchemaRegistry};

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let registry = SchemaRegistry::builtin();
    let fields = sample_fields();
    let event = decode_entry(&registry, &fields).expect("the sample decodes");

    // Warm up, then measure.
    for _ in 0..iterations / 10 {
        std::hint::black_box(decode_entry(&registry, std::hint::black_box(&fields)).unwrap());
    }
    let start = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(decode_entry(&registry, std::hint::black_box(&fields)).unwrap());
    }
    let elapsed = start.elapsed();
    report("decode_entry", iterations, elapsed);

    let start = Instant::now();
    for _ in 0..iterations / 4 {
        std::hint::black_box(
            encode_entry(&registry, std::hint::black_box(&event), "lms", "11.2.0").unwrap(),
        );
    }
    report("encode_entry", iterations / 4, start.elapsed());
}

fn report(what: &str, n: u32, elapsed: std::time::Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{what}: {n} entries in {secs:.3} s = {:.0} entries/s ({:.2} µs/entry)",
        f64::from(n) / secs,
        secs * 1e6 / f64::from(n)
    );
}

/// Sample 1 of `tests/data/wire-samples/org.openedx.learning.course.passing.status.updated.v1.json`
/// as the entry Redis returns: the text fields in order, then `event_data`.
fn sample_fields() -> Vec<(Vec<u8>, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wire-samples/org.openedx.learning.course.passing.status.updated.v1.json"
    );
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("wire sample")).expect("JSON");
    let redis = &file["samples"][0]["redis"];
    let text = redis["entry_text_fields"].as_object().expect("text fields");
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = redis["entry_fields_in_order"]
        .as_array()
        .expect("field order")
        .iter()
        .filter_map(|name| {
            let name = name.as_str()?;
            let value = text.get(name)?.as_str()?;
            Some((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
        })
        .collect();
    let hex = redis["event_data_hex"].as_str().expect("event_data_hex");
    let event_data = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    fields.push((b"event_data".to_vec(), event_data));
    assert_eq!(fields.len(), 8);
    fields
}
