//! Admission of incoming events, the same for HTTP ingest (`api/events.rs`) and the event-bus
//! consumer (`service/bus/consumer.rs`): an event that passes validation is matched against the
//! rules here, on the caller's task and off the single database writer; one that does not becomes
//! a [`RejectedEvent`] record (its id and type cut to 255 characters, as stored) and the reason
//! the caller reports.
//!
//! What each source adds on top is its own: HTTP answers the rejected ones by index; the bus
//! first drops entries whose type is not in `events.types` (the bus carries the whole platform's
//! events) and dead-letters entries it cannot decode.

use accolade_domain::engine::RuleIndex;
use accolade_domain::event::IncomingEvent;
use accolade_domain::DomainError;
use accolade_store::RejectedEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest event id and type kept in a rejection record.
const KEPT_CHARS: usize = 255;

/// One event, admitted or not.
#[derive(Debug)]
pub enum Admission {
    /// Valid, with its rule matches.
    Accepted(IncomingEvent),
    /// Invalid: the record to store and the reason.
    Rejected {
        record: RejectedEvent,
        reason: DomainError,
    },
}

/// Validates `value` and matches it against `rules`; `source` names where it came from in the
/// rejection record (`http`, `redis:<stream>/<entry id>`).
pub fn admit(rules: &RuleIndex, value: Value, source: String, now: DateTime<Utc>) -> Admission {
    match IncomingEvent::from_value(value) {
        Ok(mut ev) => {
            ev.matches = Some(rules.matches(&ev.event_type, &ev.payload));
            Admission::Accepted(ev)
        }
        Err((reason, value)) => {
            crate::metrics::event_rejected(reason.code());
            let kept = |field: &str| {
                value
                    .get(field)
                    .and_then(Value::as_str)
                    .map(|s| s.chars().take(KEPT_CHARS).collect::<String>())
            };
            let record = RejectedEvent {
                event_id: kept("id"),
                event_type: kept("event_type"),
                code: reason.code().to_string(),
                detail: reason.to_string(),
                source,
                received_at: now,
            };
            Admission::Rejected { record, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_invalid_event_is_recorded_with_its_id_and_type_cut_to_255_characters() {
        let long = "x".repeat(300);
        let now = Utc::now();
        let out = admit(
            &RuleIndex::default(),
            json!({"id": long, "event_type": long, "data": {}}),
            "http".into(),
            now,
        );
        let Admission::Rejected { record, .. } = out else {
            panic!("{out:?}")
        };
        assert_eq!(record.event_id.as_deref().map(str::len), Some(255));
        assert_eq!(record.event_type.as_deref().map(str::len), Some(255));
        assert_eq!((record.source.as_str(), record.received_at), ("http", now));
    }
}
