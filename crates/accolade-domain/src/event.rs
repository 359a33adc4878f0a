//! The learning event as Accolade receives it, shaped like an Open edX event:
//! `{"id","event_type","time","source","minorversion","data":{"<data key>":{…payload…}}}`.
//!
//! Parsing validates the envelope and finds the learner (`UserData`) in the payload, so that
//! everything downstream works on a checked [`IncomingEvent`]. HTTP ingest and the event-bus
//! consumer both produce this type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::DomainError;

/// Longest accepted event id, event type or source, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// The learner named by an event's `UserData`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LearnerData {
    pub username: String,
    pub lms_user_id: Option<i64>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub is_active: Option<bool>,
}

/// A validated learning event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingEvent {
    pub id: String,
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub source: String,
    pub minorversion: i64,
    /// The signal's data key, e.g. `course_passing_status`.
    pub data_key: String,
    /// The object under the data key; rule paths are relative to it.
    pub payload: Value,
    pub learner: LearnerData,
    /// The event serialised as stored in the inbox (`to_json()` text), computed once by the
    /// parser so the single database writer does not spend time on it.
    #[serde(skip)]
    pub raw: String,
    /// The rules that matched, when the parser had the rules index at hand (the writer checks
    /// they were made with its index, else it evaluates the event itself).
    #[serde(skip)]
    pub matches: Option<crate::engine::Matches>,
}

impl IncomingEvent {
    /// Parses and validates one event object (a copy of it; see [`IncomingEvent::from_value`]).
    pub fn from_json(value: &Value) -> Result<Self, DomainError> {
        Self::from_value(value.clone()).map_err(|(e, _)| e)
    }

    /// Parses and validates one event object, taking it: the payload moves into the event
    /// instead of being copied (ingest parses tens of thousands of events per second). A
    /// refused event comes back with the error, so the caller can still report its id.
    pub fn from_value(mut value: Value) -> Result<Self, (DomainError, Value)> {
        let checked = match check_envelope(&value) {
            Ok(c) => c,
            Err(e) => return Err((e, value)),
        };
        let Some((data_key, payload)) = value
            .get_mut("data")
            .and_then(Value::as_object_mut)
            .and_then(|data| data.iter_mut().next())
            .map(|(k, v)| (k.clone(), v.take()))
        else {
            // check_envelope found exactly one data key holding an object.
            let e = DomainError::InvalidField {
                field: "data",
                reason: "is empty".into(),
            };
            return Err((e, value));
        };
        let mut event = IncomingEvent {
            id: checked.id,
            event_type: checked.event_type,
            time: checked.time,
            source: checked.source,
            minorversion: checked.minorversion,
            data_key,
            payload,
            learner: checked.learner,
            raw: String::new(),
            matches: None,
        };
        event.raw = event.wire_text();
        // NUL cannot be stored in PostgreSQL text or JSONB; refuse it for every backend alike.
        if event.raw.contains("\\u0000") {
            return Err((
                DomainError::InvalidEvent("the event contains a NUL character (\\u0000)".into()),
                event.to_json(),
            ));
        }
        Ok(event)
    }

    /// The stored text of the event (`raw`, or serialised now when it was not set).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        if self.raw.is_empty() {
            std::borrow::Cow::Owned(self.wire_text())
        } else {
            std::borrow::Cow::Borrowed(&self.raw)
        }
    }

    /// The event back in its wire shape (for storage and replay).
    pub fn to_json(&self) -> Value {
        let mut data = Map::new();
        data.insert(self.data_key.clone(), self.payload.clone());
        serde_json::json!({
            "id": self.id,
            "event_type": self.event_type,
            "time": self.wire_time(),
            "source": self.source,
            "minorversion": self.minorversion,
            "data": data,
        })
    }

    /// `to_json()` as text, written straight from the fields (no copy of the payload). Keys come
    /// in the same (sorted) order as `to_json().to_string()`, so stored bodies do not change.
    fn wire_text(&self) -> String {
        /// `{"<data key>": payload}` without building a map.
        struct Data<'a>(&'a str, &'a Value);
        impl Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(self.0, self.1)?;
                m.end()
            }
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            data: Data<'a>,
            event_type: &'a str,
            id: &'a str,
            minorversion: i64,
            source: &'a str,
            time: String,
        }
        serde_json::to_string(&Wire {
            data: Data(&self.data_key, &self.payload),
            event_type: &self.event_type,
            id: &self.id,
            minorversion: self.minorversion,
            source: &self.source,
            time: self.wire_time(),
        })
        .unwrap_or_else(|_| self.to_json().to_string())
    }

    fn wire_time(&self) -> String {
        self.time
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    }
}

/// The checked envelope of an event, before its payload moves out.
struct Envelope {
    id: String,
    event_type: String,
    time: DateTime<Utc>,
    source: String,
    minorversion: i64,
    learner: LearnerData,
}

fn check_envelope(value: &Value) -> Result<Envelope, DomainError> {
    let obj = value
        .as_object()
        .ok_or_else(|| DomainError::InvalidEvent("an event must be a JSON object".into()))?;
    let id = required_str(obj, "id")?;
    let event_type = required_str(obj, "event_type")?;
    validate_event_type(&event_type)?;
    let time_text = required_str(obj, "time")?;
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map_err(|_| DomainError::InvalidField {
            field: "time",
            reason: format!("`{time_text}` is not an RFC 3339 / ISO 8601 timestamp with offset"),
        })?
        .with_timezone(&Utc);
    let source = match obj.get("source") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= MAX_ID_LEN => s.clone(),
        Some(_) => {
            return Err(DomainError::InvalidField {
                field: "source",
                reason: "must be a string of at most 255 bytes".into(),
            })
        }
    };
    let minorversion = match obj.get("minorversion") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
        Some(Value::String(s)) if s.parse::<i64>().is_ok() => s.parse().unwrap_or_default(),
        Some(_) => {
            return Err(DomainError::InvalidField {
                field: "minorversion",
                reason: "must be an integer".into(),
            })
        }
    };
    let data =
        obj.get("data")
            .and_then(Value::as_object)
            .ok_or_else(|| DomainError::InvalidField {
                field: "data",
                reason: "must be an object holding the signal's data key".into(),
            })?;
    if data.len() != 1 {
        return Err(DomainError::InvalidField {
            field: "data",
            reason: format!(
                "must hold exactly one data key (e.g. `course_passing_status`), found {}",
                data.len()
            ),
        });
    }
    let (data_key, payload) = data.iter().next().ok_or(DomainError::InvalidField {
        field: "data",
        reason: "is empty".into(),
    })?;
    if !payload.is_object() {
        return Err(DomainError::InvalidField {
            field: "data",
            reason: format!("`data.{data_key}` must be an object"),
        });
    }
    let learner = find_user_data(payload).ok_or(DomainError::MissingUserData)?;
    Ok(Envelope {
        id,
        event_type,
        time,
        source,
        minorversion,
        learner,
    })
}

/// Event types look like `org.openedx.learning.course.passing.status.updated.v1`.
pub fn validate_event_type(event_type: &str) -> Result<(), DomainError> {
    let ok = !event_type.is_empty()
        && event_type.len() <= MAX_ID_LEN
        && event_type.split('.').count() >= 2
        && event_type.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidEventType(event_type.to_string()))
    }
}

fn required_str(obj: &Map<String, Value>, field: &'static str) -> Result<String, DomainError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_ID_LEN => Ok(s.clone()),
        Some(Value::String(_)) => Err(DomainError::InvalidField {
            field,
            reason: "must be a non-empty string of at most 255 bytes".into(),
        }),
        Some(_) => Err(DomainError::InvalidField {
            field,
            reason: "must be a string".into(),
        }),
        None => Err(DomainError::InvalidField {
            field,
            reason: "is required".into(),
        }),
    }
}

/// Finds the learner: the payload itself when it is a `UserData` (registration events), else its
/// `user` field, else the first `UserData` found walking the payload breadth first. `user` is
/// tried before the walk so that e.g. an enrollment's `created_by` (staff) is never mistaken for
/// the learner.
pub fn find_user_data(payload: &Value) -> Option<LearnerData> {
    if let Some(l) = as_user_data(payload) {
        return Some(l);
    }
    if let Some(l) = payload.get("user").and_then(as_user_data) {
        return Some(l);
    }
    let mut queue: std::collections::VecDeque<&Value> = payload
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    while let Some(v) = queue.pop_front() {
        if let Some(l) = as_user_data(v) {
            return Some(l);
        }
        if let Value::Object(m) = v {
            queue.extend(m.values());
        }
    }
    None
}

fn as_user_data(v: &Value) -> Option<LearnerData> {
    let pii = v.get("pii")?.as_object()?;
    let username = pii.get("username")?.as_str()?.trim();
    if username.is_empty() || username.len() > MAX_ID_LEN {
        return None;
    }
    let text = |m: &Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(LearnerData {
        username: username.to_string(),
        lms_user_id: v.get("id").and_then(Value::as_i64),
        email: text(pii, "email"),
        name: text(pii, "name"),
        is_active: v.get("is_active").and_then(Value::as_bool),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn passing(id: &str, user: &str, course: &str, passing: bool) -> Value {
        json!({
            "id": id,
            "event_type": "org.openedx.learning.course.passing.status.updated.v1",
            "time": "2026-08-20T14:03:27.512345+00:00",
            "source": "openedx/lms/web",
            "minorversion": 0,
            "data": {"course_passing_status": {
                "course": {"course_key": course, "display_name": "", "end": null, "start": null},
                "is_passing": passing,
                "user": {"id": 42, "is_active": true,
                         "pii": {"email": "jdoe@example.com", "name": "Jane Doe", "username": user}}
            }}
        })
    }

    #[test]
    fn parses_open_edx_shape() {
        let ev = IncomingEvent::from_json(&passing("e1", "jdoe", "course-v1:A+B+C", true)).unwrap();
        assert_eq!(ev.data_key, "course_passing_status");
        assert_eq!(ev.learner.username, "jdoe");
        assert_eq!(ev.learner.lms_user_id, Some(42));
        assert_eq!(ev.payload["is_passing"], json!(true));
        assert_eq!(ev.time.to_rfc3339(), "2026-08-20T14:03:27.512345+00:00");
        let again = IncomingEvent::from_json(&ev.to_json()).unwrap();
        assert_eq!(again, ev);
    }

    #[test]
    fn stored_text_is_the_serialised_wire_shape() {
        // The text written straight from the fields must equal what `to_json()` serialises to,
        // byte for byte (stored bodies and replays must not change with the faster writer).
        let mut v = passing("e\"1", "jdoe", "course-v1:A+B+C", true);
        v["source"] = json!("ünïcode \u{1F600} </script>");
        v["minorversion"] = json!("3");
        let ev = IncomingEvent::from_value(v).unwrap();
        assert_eq!(ev.raw, ev.to_json().to_string());
        assert_eq!(ev.body_text(), ev.to_json().to_string());
    }

    #[test]
    fn a_refused_event_comes_back_with_its_error() {
        let mut v = passing("e1", "jdoe", "c", true);
        v["data"]["course_passing_status"]
            .as_object_mut()
            .unwrap()
            .remove("user");
        let (e, back) = IncomingEvent::from_value(v.clone()).unwrap_err();
        assert_eq!(e, DomainError::MissingUserData);
        assert_eq!(back, v);
        let mut nul = passing("e2", "jdoe", "c\u{0}", true);
        nul["id"] = json!("e2");
        let (e, back) = IncomingEvent::from_value(nul).unwrap_err();
        assert_eq!(e.code(), "invalid_event");
        assert_eq!(back["id"], json!("e2"));
    }

    #[test]
    fn rejects_missing_user_data() {
        let mut v = passing("e1", "jdoe", "c", true);
        v["data"]["course_passing_status"]
            .as_object_mut()
            .unwrap()
            .remove("user");
        assert_eq!(
            IncomingEvent::from_json(&v).unwrap_err(),
            DomainError::MissingUserData
        );
    }

    #[test]
    fn rejects_bad_envelopes() {
        let mut v = passing("e1", "jdoe", "c", true);
        v["time"] = json!("yesterday");
        assert_eq!(
            IncomingEvent::from_json(&v).unwrap_err().code(),
            "invalid_field"
        );
        let mut v = passing("e1", "jdoe", "c", true);
        v["id"] = json!(5);
        assert_eq!(
            IncomingEvent::from_json(&v).unwrap_err().code(),
            "invalid_field"
        );
        let mut v = passing("e1", "jdoe", "c", true);
        v["event_type"] = json!("no spaces allowed");
        assert_eq!(
            IncomingEvent::from_json(&v).unwrap_err().code(),
            "invalid_event_type"
        );
        assert!(IncomingEvent::from_json(&json!([1])).is_err());
    }

    #[test]
    fn learner_is_user_not_created_by() {
        let payload = json!({
            "created_by": {"id": 3, "is_active": true, "pii": {"username": "staff", "email": "", "name": ""}},
            "user": {"id": 9, "is_active": true, "pii": {"username": "learner", "email": "", "name": ""}}
        });
        assert_eq!(find_user_data(&payload).unwrap().username, "learner");
        let registration = json!({"id": 1, "is_active": true, "pii": {"username": "new", "email": "n@x", "name": ""}});
        assert_eq!(find_user_data(&registration).unwrap().username, "new");
        let nested = json!({"program_certificate": {"user": {"pii": {"username": "deep"}}}});
        assert_eq!(find_user_data(&nested).unwrap().username, "deep");
    }
}
