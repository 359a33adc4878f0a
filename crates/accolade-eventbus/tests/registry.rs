//! Schema registry: built-in schemas, key paths, loading schemas from a folder.

use std::path::PathBuf;

use accolade_eventbus::{decode_entry, encode_entry, SchemaError, SchemaRegistry};

const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
const CCX: &str = "org.openedx.learning.ccx.course.passing.status.updated.v1";

/// A fresh temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "accolade-eventbus-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn builtin_has_every_reference_schema() {
    let registry = SchemaRegistry::builtin();
    let types = registry.event_types();
    assert_eq!(types.len(), 15);
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(types, sorted);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        assert!(registry.contains(&stem), "{stem}");
    }
    assert!(!registry.contains("org.openedx.learning.nothing.v1"));
    assert_eq!(registry.data_key(PASSING), Some("course_passing_status"));
    assert_eq!(registry.data_key(CCX), Some("course_passing_status"));
    assert_eq!(
        registry.data_key("org.openedx.learning.badge.awarded.v1"),
        Some("badge")
    );
    assert_eq!(
        registry.data_key("org.openedx.learning.course.persistent_grade_summary.changed.v1"),
        Some("grade")
    );
    assert_eq!(registry.data_key("nope"), None);
}

#[test]
fn key_paths_for_course_passing_status() {
    let registry = SchemaRegistry::builtin();
    let all = registry.key_paths(PASSING, &[]).unwrap();
    assert_eq!(
        all,
        [
            "is_passing",
            "course.course_key",
            "course.display_name",
            "course.start",
            "course.end",
            "user.id",
            "user.is_active",
            "user.pii.username",
            "user.pii.email",
            "user.pii.name",
        ]
    );
    // Credentials' default BADGES_CONFIG["rules"]["ignored_keypaths"].
    let ignored: Vec<String> = [
        "user.id",
        "user.is_active",
        "user.pii.username",
        "user.pii.email",
        "user.pii.name",
        "course.display_name",
        "course.start",
        "course.end",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        registry.key_paths(PASSING, &ignored).unwrap(),
        ["is_passing", "course.course_key"]
    );
    // Exact paths only: a prefix ignores nothing.
    assert_eq!(
        registry
            .key_paths(PASSING, &["user".into(), "course.course".into()])
            .unwrap(),
        all
    );
    // CCX: is_passing, user, course.
    let ccx = registry.key_paths(CCX, &ignored).unwrap();
    assert_eq!(
        ccx,
        [
            "is_passing",
            "course.ccx_course_key",
            "course.master_course_key",
            "course.coach_email",
            "course.max_students_allowed",
        ]
    );
    assert_eq!(registry.key_paths("nope", &[]), None);
}

const CUSTOM: &str = r#"{
  "name": "CloudEvent",
  "type": "record",
  "namespace": "org.example.learning.streak.reached.v1",
  "fields": [
    {"name": "streak", "type": {
      "name": "StreakData", "type": "record", "fields": [
        {"name": "days", "type": "long"},
        {"name": "score", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "user", "type": {"name": "UserData", "type": "record", "fields": [
          {"name": "id", "type": "long"},
          {"name": "pii", "type": {"name": "UserPersonalData", "type": "record", "fields": [
            {"name": "username", "type": "string"}]}}]}},
        {"name": "mentor", "type": ["null", "UserData"], "default": null}
      ]}}
  ]
}"#;

#[test]
fn load_dir_adds_a_custom_schema() {
    let dir = TempDir::new("custom");
    // The namespace names the event type, whatever the file is called.
    std::fs::write(dir.0.join("streak.avsc"), CUSTOM).unwrap();
    // Without the CloudEvent naming, the file name is the event type.
    std::fs::write(
        dir.0.join("org.example.plain.v1.avsc"),
        r#"{"type":"record","name":"Plain","fields":[{"name":"thing","type":{"type":"record","name":"Thing","fields":[{"name":"n","type":"long"}]}}]}"#,
    )
    .unwrap();
    std::fs::write(dir.0.join("README.txt"), "not a schema").unwrap();

    let mut registry = SchemaRegistry::builtin();
    assert_eq!(registry.load_dir(&dir.0).unwrap(), 2);
    assert_eq!(registry.event_types().len(), 17);
    let event_type = "org.example.learning.streak.reached.v1";
    assert!(registry.contains(event_type));
    assert!(registry.contains("org.example.plain.v1"));
    assert_eq!(registry.data_key(event_type), Some("streak"));
    assert_eq!(
        registry.key_paths(event_type, &[]).unwrap(),
        [
            "days",
            "score",
            "note",
            "user.id",
            "user.pii.username",
            "mentor.id",
            "mentor.pii.username"
        ]
    );

    // And it round-trips through the codec.
    let event = serde_json::json!({
        "id": "1", "event_type": event_type, "time": "2026-01-01T00:00:00+00:00",
        "source": "x", "sourcehost": "h", "minorversion": 0,
        "data": {"streak": {"days": 30, "score": 0.5, "note": null,
            "user": {"id": 7, "pii": {"username": "ann"}},
            "mentor": {"id": 8, "pii": {"username": "bob"}}}}
    });
    let fields = encode_entry(&registry, &event, "h", "11.2.0").unwrap();
    let fields: Vec<(Vec<u8>, Vec<u8>)> = fields
        .into_iter()
        .map(|(k, v)| (k.into_bytes(), v))
        .collect();
    assert_eq!(decode_entry(&registry, &fields).unwrap(), event);
}

#[test]
fn load_dir_rejects_a_malformed_file_by_name() {
    let dir = TempDir::new("bad");
    std::fs::write(dir.0.join("good.avsc"), CUSTOM).unwrap();
    std::fs::write(
        dir.0.join("broken-schema.avsc"),
        r#"{"type": "record", "name": "X", "fields": ["#,
    )
    .unwrap();
    let mut registry = SchemaRegistry::builtin();
    let err = registry.load_dir(&dir.0).unwrap_err();
    assert!(matches!(err, SchemaError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("broken-schema.avsc"), "{err}");
    // Nothing was added.
    assert_eq!(registry.event_types().len(), 15);

    let dir = TempDir::new("unsupported");
    std::fs::write(dir.0.join("just-a-string.avsc"), r#""string""#).unwrap();
    let err = SchemaRegistry::empty().load_dir(&dir.0).unwrap_err();
    assert!(matches!(err, SchemaError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("just-a-string.avsc"), "{err}");

    let dir = TempDir::new("dup");
    std::fs::write(dir.0.join("a.avsc"), CUSTOM).unwrap();
    std::fs::write(dir.0.join("b.avsc"), CUSTOM).unwrap();
    let err = SchemaRegistry::empty().load_dir(&dir.0).unwrap_err();
    assert!(matches!(err, SchemaError::Duplicate { .. }), "{err:?}");

    let err = SchemaRegistry::empty()
        .load_dir(&dir.0.join("missing"))
        .unwrap_err();
    assert!(matches!(err, SchemaError::Io { .. }), "{err:?}");
}

#[test]
fn a_loaded_schema_replaces_a_builtin_one() {
    let dir = TempDir::new("override");
    let text = include_str!("../schemas/org.openedx.learning.badge.awarded.v1.avsc");
    std::fs::write(dir.0.join("badge.avsc"), text).unwrap();
    let mut registry = SchemaRegistry::builtin();
    assert_eq!(registry.load_dir(&dir.0).unwrap(), 1);
    assert_eq!(registry.event_types().len(), 15);
    assert_eq!(
        registry.data_key("org.openedx.learning.badge.awarded.v1"),
        Some("badge")
    );
}
