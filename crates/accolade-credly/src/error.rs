//! Errors of Credly calls, classified for retry decisions.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredlyError {
    /// 401: the key is wrong, revoked or expired, or not valid for this organization.
    #[error("Credly refused the API key (401): {0}")]
    Unauthorized(String),
    /// 403: the key lacks a permission (e.g. not write-enabled).
    #[error("the API key lacks permission for this call (403): {0}")]
    Forbidden(String),
    /// 404: unknown organization, template, badge or event.
    #[error("not found on Credly (404): {0}")]
    NotFound(String),
    /// 422 "User already has this badge".
    #[error("the recipient already has this badge on Credly: {0}")]
    AlreadyIssued(String),
    /// Any other 4xx except 408 and 429: the request itself is wrong; retrying will not help.
    #[error("Credly rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// 429 (optionally with the `Retry-After` Credly sent).
    #[error("Credly is rate limiting (429){}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx.
    #[error("Credly failed ({status}): {message}")]
    Server {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer in time (or 408).
    #[error("Credly did not answer in time")]
    Timeout,
    /// Could not connect or the connection broke.
    #[error("could not reach Credly: {0}")]
    Network(String),
    /// Credly answered something we cannot read.
    #[error("unexpected answer from Credly: {0}")]
    Decode(String),
    /// A bad base URL or similar local mistake.
    #[error("Credly client configuration: {0}")]
    Config(String),
}

impl CredlyError {
    /// True when retrying the same request cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CredlyError::Unauthorized(_)
                | CredlyError::Forbidden(_)
                | CredlyError::NotFound(_)
                | CredlyError::AlreadyIssued(_)
                | CredlyError::Rejected { .. }
                | CredlyError::Decode(_)
                | CredlyError::Config(_)
        )
    }

    /// The delay Credly asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CredlyError::RateLimited { retry_after } | CredlyError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A stable machine-readable code (API answers, metrics labels).
    pub fn code(&self) -> &'static str {
        match self {
            CredlyError::Unauthorized(_) => "credly_unauthorized",
            CredlyError::Forbidden(_) => "credly_forbidden",
            CredlyError::NotFound(_) => "credly_not_found",
            CredlyError::AlreadyIssued(_) => "credly_already_issued",
            CredlyError::Rejected { .. } => "credly_rejected",
            CredlyError::RateLimited { .. } => "credly_rate_limited",
            CredlyError::Server { .. } => "credly_server_error",
            CredlyError::Timeout => "credly_timeout",
            CredlyError::Network(_) => "credly_unreachable",
            CredlyError::Decode(_) => "credly_bad_answer",
            CredlyError::Config(_) => "credly_config",
        }
    }

    /// Classifies a non-success HTTP answer. `message` is Credly's `data.message` (or the body).
    pub fn from_status(status: u16, message: String, retry_after: Option<Duration>) -> Self {
        match status {
            401 => CredlyError::Unauthorized(message),
            403 => CredlyError::Forbidden(message),
            404 => CredlyError::NotFound(message),
            408 => CredlyError::Timeout,
            429 => CredlyError::RateLimited { retry_after },
            422 if message
                .to_ascii_lowercase()
                .contains("already has this badge") =>
            {
                CredlyError::AlreadyIssued(message)
            }
            400..=499 => CredlyError::Rejected { status, message },
            _ => CredlyError::Server {
                status,
                message,
                retry_after,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_retry_rules() {
        let perm = |s: u16, m: &str| CredlyError::from_status(s, m.into(), None).is_permanent();
        assert!(perm(401, "bad"));
        assert!(perm(403, "no"));
        assert!(perm(404, "gone"));
        assert!(perm(400, "bad request"));
        assert!(perm(422, "Badge template is archived"));
        assert!(!perm(408, ""));
        assert!(!perm(429, ""));
        assert!(!perm(500, ""));
        assert!(!perm(503, ""));
        assert_eq!(
            CredlyError::from_status(422, "User already has this badge".into(), None),
            CredlyError::AlreadyIssued("User already has this badge".into())
        );
        let limited = CredlyError::from_status(429, String::new(), Some(Duration::from_secs(7)));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
    }
}
