//! Validation errors of the domain. Each variant has a stable machine code (see `code()`), which
//! the HTTP edge returns as `{"code": …}` and which is part of the public API contract.

use thiserror::Error;

/// Why a domain value was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DomainError {
    #[error(
        "unknown operator `{0}`; use one of =, !=, in, not_in, exists, not_exists, <, <=, >, >="
    )]
    UnknownOperator(String),
    #[error("invalid key path `{0}`: use dot-separated names such as `course.course_key`")]
    InvalidPath(String),
    #[error("operator `{op}` needs a value")]
    MissingValue { op: String },
    #[error("operator `{op}` compares numbers but `{value}` is not a number")]
    NotANumber { op: String, value: String },
    #[error("invalid group `{0}`: a group is one letter A-Z")]
    InvalidGroup(String),
    #[error("all 26 groups A-Z are in use")]
    NoFreeGroup,
    #[error("invalid event type `{0}`")]
    InvalidEventType(String),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("event carries no user data (no object with pii.username in the payload)")]
    MissingUserData,
    #[error("{field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error(
        "invalid expires_after `{0}`: use a whole number and one unit, s, m, h or d \
         (e.g. 365d, 12h, 30m), or null for never"
    )]
    InvalidExpiresAfter(String),
    #[error("invalid criteria: {0}")]
    InvalidCriteria(String),
}

impl DomainError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::UnknownOperator(_) => "unknown_operator",
            DomainError::InvalidPath(_) => "invalid_path",
            DomainError::MissingValue { .. } => "missing_value",
            DomainError::NotANumber { .. } => "not_a_number",
            DomainError::InvalidGroup(_) => "invalid_group",
            DomainError::NoFreeGroup => "no_free_group",
            DomainError::InvalidEventType(_) => "invalid_event_type",
            DomainError::InvalidEvent(_) => "invalid_event",
            DomainError::MissingUserData => "missing_user_data",
            DomainError::InvalidField { .. } => "invalid_field",
            DomainError::InvalidExpiresAfter(_) => "invalid_expires_after",
            DomainError::InvalidCriteria(_) => "invalid_criteria",
        }
    }
}
