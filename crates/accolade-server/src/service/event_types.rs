//! The event types requirements and penalties may listen to: those the operator configured in
//! `events.types`. A [`ConfiguredEventType`] is made only by [`ConfiguredEventType::check`], so
//! every use case that takes one (adding or changing a requirement or a penalty) knows the check
//! was done, once, whichever of the API or the admin UI asked.

use accolade_domain::DomainError;

use crate::config::EventsConfig;

/// Why an event type cannot be used by a requirement or a penalty.
#[derive(Debug, thiserror::Error)]
pub enum EventTypeError {
    /// Not an event type at all (`invalid_event_type`).
    #[error(transparent)]
    Invalid(DomainError),
    /// A valid event type the operator has not configured.
    #[error("`{event_type}` is not in events.types; configured: {}", configured.join(", "))]
    NotConfigured {
        event_type: String,
        configured: Vec<String>,
    },
}

/// An event type listed in `events.types`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredEventType(String);

impl ConfiguredEventType {
    /// Accepts `event_type` when `events.types` lists it. A configured type is a valid one (the
    /// configuration is refused otherwise), so only an unlisted type is checked for being
    /// malformed, which keeps that the first thing a caller hears of.
    pub fn check(events: &EventsConfig, event_type: &str) -> Result<Self, EventTypeError> {
        if events.is_configured(event_type) {
            return Ok(ConfiguredEventType(event_type.to_string()));
        }
        accolade_domain::event::validate_event_type(event_type).map_err(EventTypeError::Invalid)?;
        Err(EventTypeError::NotConfigured {
            event_type: event_type.to_string(),
            configured: events.types.clone(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> EventsConfig {
        let mut events = crate::config::Config::defaults().events;
        events.types = vec!["org.example.passed.v1".into()];
        events
    }

    #[test]
    fn only_configured_types_pass_and_malformed_ones_say_so() {
        let events = events();
        let ok = ConfiguredEventType::check(&events, "org.example.passed.v1").unwrap();
        assert_eq!(ok.as_str(), "org.example.passed.v1");
        assert!(matches!(
            ConfiguredEventType::check(&events, "org.example.other.v1"),
            Err(EventTypeError::NotConfigured { .. })
        ));
        assert!(matches!(
            ConfiguredEventType::check(&events, "no dots"),
            Err(EventTypeError::Invalid(_))
        ));
    }
}
