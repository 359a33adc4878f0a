//! Outbound webhooks: which event types a subscription may name and the delivery states. When a
//! failed delivery is tried again is [`crate::retry::RetryPolicy`]'s decision.

use crate::outbox::{BADGE_AWARDED, BADGE_EXPIRED, BADGE_REVOKED};

/// Event types a subscription can ask for (every outgoing event is one of these).
pub const EVENT_TYPES: [&str; 3] = [BADGE_AWARDED, BADGE_REVOKED, BADGE_EXPIRED];

/// True when `event_type` is one webhooks can deliver.
pub fn is_known_event_type(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// Whether a subscription with these event types wants `event_type` (empty = every type).
pub fn wants(event_types: &[String], event_type: &str) -> bool {
    event_types.is_empty() || event_types.iter().any(|t| t == event_type)
}

/// State of one delivery (one event to one subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted under a lease).
    Pending,
    /// A 2xx answer was received.
    Succeeded,
    /// Given up: too old, or the receiver answered 410 Gone.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "succeeded" => DeliveryStatus::Succeeded,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_filter() {
        assert!(wants(&[], BADGE_AWARDED));
        assert!(wants(&[BADGE_REVOKED.to_string()], BADGE_REVOKED));
        assert!(!wants(&[BADGE_REVOKED.to_string()], BADGE_AWARDED));
        assert!(is_known_event_type(BADGE_AWARDED));
        assert!(is_known_event_type(BADGE_EXPIRED));
        assert!(!is_known_event_type("org.openedx.learning.badge.other.v1"));
    }
}
