//! Shared helpers: the reference samples copied under `tests/data/` and a small base64 decoder.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every `wire-samples/*.json` file, as (file name, parsed JSON), sorted by name.
pub fn wire_sample_files() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(data_dir().join("wire-samples"))
        .expect("wire-samples folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no wire samples found");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable sample");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("sample is JSON"))
        })
        .collect()
}

/// The matching `samples/<event_type>.json`, when it exists.
pub fn http_samples(file_name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(data_dir().join("samples").join(file_name)).ok()?;
    Some(serde_json::from_str(&text).expect("sample is JSON"))
}

/// Standard base64 (with padding) to bytes.
pub fn base64(text: &str) -> Vec<u8> {
    fn sextet(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    }
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= sextet(c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The stream-entry field list from a sample's `xadd_argv_base64`: drops `XADD <stream>`, the
/// `MAXLEN ~ N` trim clause and the `*` id, then pairs the rest.
pub fn entry_fields(sample: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let argv: Vec<Vec<u8>> = sample["redis"]["xadd_argv_base64"]
        .as_array()
        .expect("xadd_argv_base64")
        .iter()
        .map(|a| base64(a.as_str().expect("base64 text")))
        .collect();
    assert_eq!(argv[0], b"XADD");
    let mut rest = &argv[2..];
    if rest.first().map(Vec::as_slice) == Some(b"MAXLEN".as_slice()) {
        rest = &rest[1..];
        if matches!(rest.first().map(Vec::as_slice), Some(b"~") | Some(b"=")) {
            rest = &rest[1..];
        }
        rest = &rest[1..]; // N
    }
    assert_eq!(rest[0], b"*", "entry id");
    let rest = &rest[1..];
    assert_eq!(rest.len() % 2, 0, "field/value pairs");
    rest.chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// The HTTP-ingest JSON we expect for a sample: its `metadata` and `data`.
pub fn expected_event(sample: &Value) -> Value {
    let m = &sample["metadata"];
    serde_json::json!({
        "id": m["id"],
        "event_type": m["event_type"],
        "time": m["time"],
        "source": m["source"],
        "sourcehost": m["sourcehost"],
        "minorversion": m["minorversion"],
        "data": sample["data"],
    })
}

/// `sourcelib` as the producer wrote it (`[11, 2, 0]` → `"11.2.0"`).
pub fn sourcelib(sample: &Value) -> String {
    sample["metadata"]["sourcelib"]
        .as_array()
        .expect("sourcelib list")
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Every (file name, sample) pair of every wire-sample file.
pub fn all_wire_samples() -> Vec<(String, Value)> {
    wire_sample_files()
        .into_iter()
        .flat_map(|(name, file)| {
            file["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| (name.clone(), s.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A passing-status entry decoded from the first wire sample.
pub fn passing_status_fields() -> Vec<(Vec<u8>, Vec<u8>)> {
    let (_, sample) = all_wire_samples()
        .into_iter()
        .find(|(name, _)| name == "org.openedx.learning.course.passing.status.updated.v1.json")
        .expect("passing-status sample");
    entry_fields(&sample)
}
