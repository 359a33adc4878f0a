//! The schema registry: one Avro writer schema per event type, parsed once.
//!
//! Open edX generates each event's schema from its signal: a record named `CloudEvent` whose
//! namespace is the event type and whose single field is the signal's data key (e.g.
//! `course_passing_status`). The schemas are compiled in from `schemas/*.avsc` (copies of the
//! openedx-events 11.2.0 schemas) and more can be loaded from a folder at runtime.
//!
//! At load time every named-type reference (`"UserData"` used a second time) is inlined and
//! every name fully qualified, so decoding needs no name table and allocates no names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use apache_avro::schema::{Name, NamespaceRef, RecordSchema, ResolvedSchema, UnionSchema};
use apache_avro::Schema;

const BUILTIN: &[(&str, &str)] = &[
    (
        "org.openedx.learning.auth.session.login.completed.v1",
        include_str!("../schemas/org.openedx.learning.auth.session.login.completed.v1.avsc"),
    ),
    (
        "org.openedx.learning.badge.awarded.v1",
        include_str!("../schemas/org.openedx.learning.badge.awarded.v1.avsc"),
    ),
    (
        "org.openedx.learning.badge.revoked.v1",
        include_str!("../schemas/org.openedx.learning.badge.revoked.v1.avsc"),
    ),
    (
        "org.openedx.learning.ccx.course.passing.status.updated.v1",
        include_str!("../schemas/org.openedx.learning.ccx.course.passing.status.updated.v1.avsc"),
    ),
    (
        "org.openedx.learning.certificate.changed.v1",
        include_str!("../schemas/org.openedx.learning.certificate.changed.v1.avsc"),
    ),
    (
        "org.openedx.learning.certificate.created.v1",
        include_str!("../schemas/org.openedx.learning.certificate.created.v1.avsc"),
    ),
    (
        "org.openedx.learning.certificate.revoked.v1",
        include_str!("../schemas/org.openedx.learning.certificate.revoked.v1.avsc"),
    ),
    (
        "org.openedx.learning.course.enrollment.changed.v1",
        include_str!("../schemas/org.openedx.learning.course.enrollment.changed.v1.avsc"),
    ),
    (
        "org.openedx.learning.course.enrollment.created.v1",
        include_str!("../schemas/org.openedx.learning.course.enrollment.created.v1.avsc"),
    ),
    (
        "org.openedx.learning.course.passing.status.updated.v1",
        include_str!("../schemas/org.openedx.learning.course.passing.status.updated.v1.avsc"),
    ),
    (
        "org.openedx.learning.course.persistent_grade_summary.changed.v1",
        include_str!(
            "../schemas/org.openedx.learning.course.persistent_grade_summary.changed.v1.avsc"
        ),
    ),
    (
        "org.openedx.learning.course.unenrollment.completed.v1",
        include_str!("../schemas/org.openedx.learning.course.unenrollment.completed.v1.avsc"),
    ),
    (
        "org.openedx.learning.program.certificate.awarded.v1",
        include_str!("../schemas/org.openedx.learning.program.certificate.awarded.v1.avsc"),
    ),
    (
        "org.openedx.learning.program.certificate.revoked.v1",
        include_str!("../schemas/org.openedx.learning.program.certificate.revoked.v1.avsc"),
    ),
    (
        "org.openedx.learning.student.registration.completed.v1",
        include_str!("../schemas/org.openedx.learning.student.registration.completed.v1.avsc"),
    ),
];

/// A schema that cannot be loaded; the message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The folder or a file in it could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid Avro schema.
    #[error("{} is not a valid Avro schema: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// The file is valid Avro but cannot describe an Open edX event.
    #[error("{} does not describe an Open edX event: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// Two files in the folder define the same event type.
    #[error("{} and {} both define event type `{event_type}`", first.display(), second.display())]
    Duplicate {
        event_type: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// One compiled event schema.
#[derive(Debug)]
pub(crate) struct EventSchema {
    pub(crate) event_type: String,
    /// Name of the first (normally only) field of the top-level record.
    pub(crate) data_key: String,
    /// The writer schema with references inlined and names fully qualified.
    pub(crate) schema: Schema,
    /// Dot paths of the leaves under the data key, in schema order.
    pub(crate) leaf_paths: Vec<String>,
}

/// Compiled-in schemas (`schemas/*.avsc`) plus ones loaded from a folder at runtime.
///
/// Cloning is cheap (the compiled schemas are shared).
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    schemas: BTreeMap<String, Arc<EventSchema>>,
}

impl SchemaRegistry {
    /// A registry with no schema at all.
    pub fn empty() -> SchemaRegistry {
        SchemaRegistry::default()
    }

    /// The compiled-in schemas (parsed once per process).
    pub fn builtin() -> SchemaRegistry {
        static BUILTIN_SCHEMAS: OnceLock<BTreeMap<String, Arc<EventSchema>>> = OnceLock::new();
        let schemas = BUILTIN_SCHEMAS.get_or_init(|| {
            BUILTIN
                .iter()
                .map(|(stem, text)| {
                    let compiled = compile(text, stem).unwrap_or_else(|reason| {
                        panic!("built-in schema {stem}.avsc is invalid: {reason:?}")
                    });
                    (compiled.event_type.clone(), Arc::new(compiled))
                })
                .collect()
        });
        SchemaRegistry {
            schemas: schemas.clone(),
        }
    }

    /// Adds every `*.avsc` file in `dir` and returns how many were added.
    ///
    /// The event type is the namespace of the schema's top-level `CloudEvent` record, as
    /// openedx-events writes it; for a schema without that shape it is the file name without
    /// `.avsc`. A loaded schema replaces a compiled-in one of the same event type. Nothing is
    /// added when any file fails; the error names the file.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, SchemaError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SchemaError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            if path.extension().is_some_and(|ext| ext == "avsc") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut loaded: BTreeMap<String, (PathBuf, EventSchema)> = BTreeMap::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let compiled = compile(&text, &stem).map_err(|problem| match problem {
                Problem::Parse(reason) => SchemaError::Parse {
                    path: path.clone(),
                    reason,
                },
                Problem::Unsupported(reason) => SchemaError::Unsupported {
                    path: path.clone(),
                    reason,
                },
            })?;
            if let Some((first, _)) = loaded.get(&compiled.event_type) {
                return Err(SchemaError::Duplicate {
                    event_type: compiled.event_type,
                    first: first.clone(),
                    second: path,
                });
            }
            loaded.insert(compiled.event_type.clone(), (path, compiled));
        }
        let count = loaded.len();
        for (event_type, (_, compiled)) in loaded {
            self.schemas.insert(event_type, Arc::new(compiled));
        }
        Ok(count)
    }

    /// The known event types, sorted.
    pub fn event_types(&self) -> Vec<String> {
        self.schemas.keys().cloned().collect()
    }

    /// Whether a schema is known for `event_type`.
    pub fn contains(&self, event_type: &str) -> bool {
        self.schemas.contains_key(event_type)
    }

    /// The signal's data key, e.g. `course_passing_status` (the single top-level field of the
    /// schema's record).
    pub fn data_key(&self, event_type: &str) -> Option<&str> {
        self.get(event_type).map(|s| s.data_key.as_str())
    }

    /// Dot paths of every leaf field under the data key, relative to it (e.g. `is_passing`,
    /// `course.course_key`, `user.pii.email`), in schema order, minus those listed in `ignored`
    /// (exact paths). A nullable record (`["null", "UserData"]`) is descended into.
    pub fn key_paths(&self, event_type: &str, ignored: &[String]) -> Option<Vec<String>> {
        self.get(event_type).map(|s| {
            s.leaf_paths
                .iter()
                .filter(|path| !ignored.iter().any(|i| i == *path))
                .cloned()
                .collect()
        })
    }

    pub(crate) fn get(&self, event_type: &str) -> Option<&EventSchema> {
        self.schemas.get(event_type).map(Arc::as_ref)
    }
}

/// Why a schema text was refused.
#[derive(Debug)]
enum Problem {
    Parse(String),
    Unsupported(String),
}

/// Parses and checks one schema; `fallback_event_type` is used when the schema does not name
/// its event type (openedx-events' `CloudEvent` record in the event type's namespace).
fn compile(text: &str, fallback_event_type: &str) -> Result<EventSchema, Problem> {
    let parsed = Schema::parse_str(text).map_err(|e| Problem::Parse(e.to_string()))?;
    let Schema::Record(top) = &parsed else {
        return Err(Problem::Unsupported(
            "the top-level schema must be a record".into(),
        ));
    };
    let event_type = match top.name.namespace() {
        Some(ns) if top.name.name() == "CloudEvent" && !ns.is_empty() => ns.to_owned(),
        _ => fallback_event_type.to_owned(),
    };
    if event_type.is_empty() {
        return Err(Problem::Unsupported("no event type".into()));
    }
    let Some(first) = top.fields.first() else {
        return Err(Problem::Unsupported(
            "the top-level record has no field (the data key)".into(),
        ));
    };
    let data_key = first.name.clone();
    let resolved = ResolvedSchema::new(&parsed).map_err(|e| Problem::Parse(e.to_string()))?;
    let schema = inline(&parsed, None, resolved.get_names(), &mut Vec::new())?;
    let mut leaf_paths = Vec::new();
    if let Schema::Record(flat_top) = &schema {
        if let Some(record) = flat_top.fields.first().and_then(|f| record_of(&f.schema)) {
            collect_leaves(record, "", &mut leaf_paths);
        }
    }
    Ok(EventSchema {
        event_type,
        data_key,
        schema,
        leaf_paths,
    })
}

/// Copies `schema` with every `Ref` replaced by the referenced definition and every name fully
/// qualified. Recursive types cannot be inlined and are refused (Open edX has none).
fn inline(
    schema: &Schema,
    namespace: NamespaceRef<'_>,
    names: &HashMap<Name, &Schema>,
    stack: &mut Vec<Name>,
) -> Result<Schema, Problem> {
    Ok(match schema {
        Schema::Ref { name } => {
            let full = name.fully_qualified_name(namespace).into_owned();
            let target = names
                .get(&full)
                .ok_or_else(|| Problem::Parse(format!("unknown type `{}`", full.fullname(None))))?;
            inline(target, full.namespace(), names, stack)?
        }
        Schema::Record(record) => {
            let full = record.name.fully_qualified_name(namespace).into_owned();
            if stack.contains(&full) {
                return Err(Problem::Unsupported(format!(
                    "record `{}` is recursive",
                    full.fullname(None)
                )));
            }
            stack.push(full.clone());
            let mut copy = record.clone();
            copy.name = full.clone();
            for field in &mut copy.fields {
                field.schema = inline(&field.schema, full.namespace(), names, stack)?;
            }
            stack.pop();
            Schema::Record(copy)
        }
        Schema::Union(union) => {
            let variants = union
                .variants()
                .iter()
                .map(|v| inline(v, namespace, names, stack))
                .collect::<Result<Vec<_>, _>>()?;
            Schema::Union(UnionSchema::new(variants).map_err(|e| Problem::Parse(e.to_string()))?)
        }
        Schema::Array(array) => {
            let mut copy = array.clone();
            copy.items = Box::new(inline(&array.items, namespace, names, stack)?);
            Schema::Array(copy)
        }
        Schema::Map(map) => {
            let mut copy = map.clone();
            copy.types = Box::new(inline(&map.types, namespace, names, stack)?);
            Schema::Map(copy)
        }
        Schema::Enum(e) => {
            let mut copy = e.clone();
            copy.name = e.name.fully_qualified_name(namespace).into_owned();
            Schema::Enum(copy)
        }
        Schema::Fixed(f) => {
            let mut copy = f.clone();
            copy.name = f.name.fully_qualified_name(namespace).into_owned();
            Schema::Fixed(copy)
        }
        other => other.clone(),
    })
}

/// The record behind `schema`: itself, or the only non-null branch of a union.
fn record_of(schema: &Schema) -> Option<&RecordSchema> {
    match schema {
        Schema::Record(record) => Some(record),
        Schema::Union(union) => {
            let mut non_null = union.variants().iter().filter(|v| **v != Schema::Null);
            match (non_null.next(), non_null.next()) {
                (Some(Schema::Record(record)), None) => Some(record),
                _ => None,
            }
        }
        _ => None,
    }
}

fn collect_leaves(record: &RecordSchema, prefix: &str, out: &mut Vec<String>) {
    for field in &record.fields {
        let path = if prefix.is_empty() {
            field.name.clone()
        } else {
            format!("{prefix}.{}", field.name)
        };
        match record_of(&field.schema) {
            Some(inner) => collect_leaves(inner, &path, out),
            None => out.push(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_match_their_files() {
        for (stem, text) in BUILTIN {
            let compiled = compile(text, "unused").expect("valid");
            assert_eq!(compiled.event_type, *stem);
        }
    }

    #[test]
    fn references_are_inlined() {
        let registry = SchemaRegistry::builtin();
        let enrollment = registry
            .get("org.openedx.learning.course.enrollment.created.v1")
            .expect("known");
        assert!(!format!("{:?}", enrollment.schema).contains("Ref"));
        let paths = registry
            .key_paths("org.openedx.learning.course.enrollment.created.v1", &[])
            .expect("known");
        assert!(paths.contains(&"created_by.pii.username".to_string()));
    }

    #[test]
    fn registry_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SchemaRegistry>();
    }
}
