//! Conversion between apache-avro [`Value`]s and the plain JSON view of an event payload.
//!
//! The JSON view is the dict openedx-events feeds to fastavro: records are objects, a union
//! `["null", T]` is `null` or the bare value (no Avro-JSON `{"string": ...}` wrapper), `long`
//! is an integer, `double` a number, strings stay strings. Both directions walk the schema
//! beside the value, so a value can never be written under the wrong type.

use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::{Map, Number, Value as Json};

/// Converts a decoded datum to JSON, consuming it (strings and field names are moved, not
/// copied).
///
/// apache-avro decodes a string cut short by the end of the input as `Null` instead of
/// failing; a `Null` where the schema wants anything but `null` is therefore reported as
/// truncated data.
pub(crate) fn avro_to_json(schema: &Schema, value: Value) -> Result<Json, String> {
    Ok(match value {
        Value::Null => match schema {
            Schema::Null => Json::Null,
            _ => return Err("the data ends in the middle of a value".into()),
        },
        Value::Record(fields) => {
            let Schema::Record(record) = schema else {
                return Err(mismatch(schema, "record"));
            };
            if fields.len() != record.fields.len() {
                return Err("record has the wrong number of fields".into());
            }
            let mut object = Map::new();
            for ((name, value), field) in fields.into_iter().zip(&record.fields) {
                let json = avro_to_json(&field.schema, value)?;
                object.insert(name, json);
            }
            Json::Object(object)
        }
        Value::Union(index, inner) => {
            let Schema::Union(union) = schema else {
                return Err(mismatch(schema, "union"));
            };
            let variant = union
                .variants()
                .get(index as usize)
                .ok_or_else(|| format!("union branch {index} does not exist"))?;
            avro_to_json(variant, *inner)?
        }
        Value::Array(items) => {
            let Schema::Array(array) = schema else {
                return Err(mismatch(schema, "array"));
            };
            Json::Array(
                items
                    .into_iter()
                    .map(|item| avro_to_json(&array.items, item))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Map(entries) => {
            let Schema::Map(map) = schema else {
                return Err(mismatch(schema, "map"));
            };
            let mut object = Map::new();
            for (key, value) in entries {
                let json = avro_to_json(&map.types, value)?;
                object.insert(key, json);
            }
            Json::Object(object)
        }
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) | Value::Date(i) | Value::TimeMillis(i) => Json::from(i),
        Value::Long(i)
        | Value::TimeMicros(i)
        | Value::TimestampMillis(i)
        | Value::TimestampMicros(i)
        | Value::TimestampNanos(i)
        | Value::LocalTimestampMillis(i)
        | Value::LocalTimestampMicros(i)
        | Value::LocalTimestampNanos(i) => Json::from(i),
        // JSON has no NaN or infinity; such a number becomes `null`.
        Value::Float(f) => float(f64::from(f)),
        Value::Double(f) => float(f),
        Value::String(s) | Value::Enum(_, s) => Json::String(s),
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => Json::String(bytes_as_text(&bytes)),
        Value::Uuid(uuid) => Json::String(uuid.to_string()),
        Value::BigDecimal(decimal) => Json::String(decimal.to_string()),
        Value::Decimal(decimal) => {
            let bytes: Vec<u8> = Vec::try_from(&decimal).map_err(|e| e.to_string())?;
            Json::String(bytes_as_text(&bytes))
        }
        Value::Duration(duration) => serde_json::json!({
            "months": u32::from(duration.months()),
            "days": u32::from(duration.days()),
            "millis": u32::from(duration.millis()),
        }),
    })
}

fn float(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// Avro's JSON convention for bytes: one character per byte (U+0000..U+00FF).
fn bytes_as_text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn text_as_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

fn mismatch(schema: &Schema, found: &str) -> String {
    format!("found a {found} where the schema has {schema:?}")
}

/// A JSON value that does not fit the schema, with the dot path where it happened.
#[derive(Debug)]
pub(crate) enum JsonToAvroError {
    /// A required record field is absent.
    Missing(String),
    /// The value has the wrong type or range.
    Invalid { path: String, reason: String },
}

/// Converts the JSON view of a datum to an apache-avro [`Value`] for `schema`.
///
/// Absent record fields take the schema default (`null` for the optional fields); fields the
/// schema does not know are ignored. `path` is the dot path of `json`, used in errors.
pub(crate) fn json_to_avro(
    schema: &Schema,
    json: &Json,
    path: &mut Vec<String>,
) -> Result<Value, JsonToAvroError> {
    let invalid = |path: &[String], reason: String| JsonToAvroError::Invalid {
        path: path.join("."),
        reason,
    };
    Ok(match schema {
        Schema::Null => match json {
            Json::Null => Value::Null,
            _ => return Err(invalid(path, "must be null".into())),
        },
        Schema::Boolean => match json {
            Json::Bool(b) => Value::Boolean(*b),
            _ => return Err(invalid(path, "must be a boolean".into())),
        },
        Schema::Int | Schema::Date | Schema::TimeMillis => {
            let i = json
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| invalid(path, "must be a 32-bit integer".into()))?;
            match schema {
                Schema::Date => Value::Date(i),
                Schema::TimeMillis => Value::TimeMillis(i),
                _ => Value::Int(i),
            }
        }
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => {
            let i = json
                .as_i64()
                .ok_or_else(|| invalid(path, "must be a 64-bit integer".into()))?;
            match schema {
                Schema::TimeMicros => Value::TimeMicros(i),
                Schema::TimestampMillis => Value::TimestampMillis(i),
                Schema::TimestampMicros => Value::TimestampMicros(i),
                Schema::TimestampNanos => Value::TimestampNanos(i),
                Schema::LocalTimestampMillis => Value::LocalTimestampMillis(i),
                Schema::LocalTimestampMicros => Value::LocalTimestampMicros(i),
                Schema::LocalTimestampNanos => Value::LocalTimestampNanos(i),
                _ => Value::Long(i),
            }
        }
        Schema::Float | Schema::Double => {
            let f = json
                .as_f64()
                .ok_or_else(|| invalid(path, "must be a number".into()))?;
            if matches!(schema, Schema::Float) {
                // Narrowing is what a float field means.
                #[allow(clippy::cast_possible_truncation)]
                Value::Float(f as f32)
            } else {
                Value::Double(f)
            }
        }
        Schema::String => match json {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(invalid(path, "must be a string".into())),
        },
        Schema::Uuid(_) => match json.as_str().map(apache_avro::Uuid::parse_str) {
            Some(Ok(uuid)) => Value::Uuid(uuid),
            _ => return Err(invalid(path, "must be a UUID string".into())),
        },
        Schema::Bytes => match json.as_str().and_then(text_as_bytes) {
            Some(bytes) => Value::Bytes(bytes),
            None => return Err(invalid(path, "must be a string of bytes".into())),
        },
        Schema::Fixed(fixed) => match json.as_str().and_then(text_as_bytes) {
            Some(bytes) if bytes.len() == fixed.size => Value::Fixed(fixed.size, bytes),
            _ => {
                return Err(invalid(
                    path,
                    format!("must be a string of {} bytes", fixed.size),
                ))
            }
        },
        Schema::Enum(e) => {
            let symbol = json.as_str().unwrap_or_default();
            match e.symbols.iter().position(|s| s == symbol) {
                Some(index) => Value::Enum(index as u32, symbol.to_owned()),
                None => {
                    return Err(invalid(
                        path,
                        format!("must be one of {}", e.symbols.join(", ")),
                    ))
                }
            }
        }
        Schema::Array(array) => {
            let Json::Array(items) = json else {
                return Err(invalid(path, "must be an array".into()));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                out.push(json_to_avro(&array.items, item, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        Schema::Map(map) => {
            let Json::Object(entries) = json else {
                return Err(invalid(path, "must be an object".into()));
            };
            let mut out = std::collections::HashMap::with_capacity(entries.len());
            for (key, item) in entries {
                path.push(key.clone());
                out.insert(key.clone(), json_to_avro(&map.types, item, path)?);
                path.pop();
            }
            Value::Map(out)
        }
        Schema::Record(record) => record_to_avro(record, json, path)?,
        Schema::Union(union) => {
            let variants = union.variants();
            if json.is_null() {
                match variants.iter().position(|v| *v == Schema::Null) {
                    Some(i) => Value::Union(i as u32, Box::new(Value::Null)),
                    None => return Err(invalid(path, "must not be null".into())),
                }
            } else {
                let mut first_error = None;
                let mut chosen = None;
                for (i, variant) in variants.iter().enumerate() {
                    if *variant == Schema::Null {
                        continue;
                    }
                    match json_to_avro(variant, json, path) {
                        Ok(value) => {
                            chosen = Some(Value::Union(i as u32, Box::new(value)));
                            break;
                        }
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                match (chosen, first_error) {
                    (Some(value), _) => value,
                    (None, Some(e)) if variants.len() <= 2 => return Err(e),
                    _ => return Err(invalid(path, "matches no branch of its union".into())),
                }
            }
        }
        Schema::Decimal(_) | Schema::BigDecimal | Schema::Duration(_) | Schema::Ref { .. } => {
            return Err(invalid(
                path,
                format!("encoding {schema:?} is not supported"),
            ))
        }
    })
}

fn record_to_avro(
    record: &RecordSchema,
    json: &Json,
    path: &mut Vec<String>,
) -> Result<Value, JsonToAvroError> {
    let Json::Object(object) = json else {
        return Err(JsonToAvroError::Invalid {
            path: path.join("."),
            reason: "must be an object".into(),
        });
    };
    let mut fields = Vec::with_capacity(record.fields.len());
    for field in &record.fields {
        path.push(field.name.clone());
        let value = match (object.get(&field.name), &field.default) {
            (Some(value), _) => json_to_avro(&field.schema, value, path)?,
            (None, Some(default)) => json_to_avro(&field.schema, default, path)?,
            (None, None) => return Err(JsonToAvroError::Missing(path.join("."))),
        };
        path.pop();
        fields.push((field.name.clone(), value));
    }
    Ok(Value::Record(fields))
}
