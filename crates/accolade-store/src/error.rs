//! Storage errors. Call sites decide what a `NotFound` or `Conflict` means for their caller; there
//! is deliberately no blanket mapping to HTTP statuses here.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The addressed row does not exist (`what` names its kind).
    #[error("{what} not found")]
    NotFound { what: Entity },
    /// A uniqueness or state rule refused the change.
    #[error("conflict: {detail}")]
    Conflict { code: &'static str, detail: String },
    /// A domain validation failed inside a store operation (e.g. no free group letter).
    #[error(transparent)]
    Domain(#[from] accolade_domain::DomainError),
    /// The database failed the call (unreachable, busy, a statement refused). `retryable`: the
    /// same call may succeed later unchanged (a lost connection, a lock or serialization
    /// conflict, an exhausted pool), as the backend's error code says; otherwise retrying will
    /// not help. The backend's error is kept as the source.
    #[error("storage failure: {source}")]
    Backend {
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Anything else: stored data that cannot be read back, a task that failed.
    #[error("storage failure: {0}")]
    Other(String),
}

/// A rules-as-code file that cannot be applied: an invalid value is a validation error, the
/// rest conflicts with its own code.
impl From<accolade_domain::rules_apply::ApplyRefusal> for StoreError {
    fn from(r: accolade_domain::rules_apply::ApplyRefusal) -> Self {
        use accolade_domain::rules_apply::ApplyRefusal;
        match r {
            ApplyRefusal::Invalid(e) => StoreError::Domain(e),
            other => StoreError::Conflict {
                code: other.code(),
                detail: other.to_string(),
            },
        }
    }
}

/// A refused manual award or revocation is a conflict with its own code.
impl From<accolade_domain::manual::ManualRefusal> for StoreError {
    fn from(r: accolade_domain::manual::ManualRefusal) -> Self {
        StoreError::Conflict {
            code: r.code(),
            detail: r.to_string(),
        }
    }
}

impl StoreError {
    pub fn not_found(what: Entity) -> Self {
        StoreError::NotFound { what }
    }

    /// Whether the same call may succeed if made again later (see [`StoreError::Backend`]).
    /// Not-found, conflicts and validation failures never do; `Other` is treated as transient
    /// (a failed task, data that may be repaired) as it was before errors carried this.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Other(_) => true,
            StoreError::NotFound { .. } | StoreError::Conflict { .. } | StoreError::Domain(_) => {
                false
            }
        }
    }

    /// A second unrevoked award of one template to one learner, refused by the database.
    pub fn already_awarded() -> Self {
        StoreError::Conflict {
            code: "already_awarded",
            detail: "the learner already holds this badge".into(),
        }
    }
}

/// The kinds of row a [`StoreError::NotFound`] can name, each with its stable error code, so an
/// edge maps "not found" by kind rather than by message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    AdminUser,
    ApiToken,
    App,
    Award,
    Backfill,
    Badge,
    Credential,
    CredlyNotification,
    CredlyOrganization,
    Job,
    Learner,
    Member,
    MemberBadge,
    Penalty,
    Requirement,
    StatusList,
    Template,
    Webhook,
    WebhookDelivery,
}

impl Entity {
    /// How messages name it (`template`, `webhook delivery`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::AdminUser => "admin user",
            Entity::ApiToken => "api token",
            Entity::App => "app",
            Entity::Award => "award",
            Entity::Backfill => "backfill",
            Entity::Badge => "badge",
            Entity::Credential => "credential",
            Entity::CredlyNotification => "credly notification",
            Entity::CredlyOrganization => "credly organization",
            Entity::Job => "job",
            Entity::Learner => "learner",
            Entity::Member => "member",
            Entity::MemberBadge => "member badge",
            Entity::Penalty => "penalty",
            Entity::Requirement => "requirement",
            Entity::StatusList => "status list",
            Entity::Template => "template",
            Entity::Webhook => "webhook",
            Entity::WebhookDelivery => "webhook delivery",
        }
    }

    /// The admin API's stable error code for it (`template_not_found`, …); `not_found` for
    /// kinds the admin API does not address.
    pub fn code(self) -> &'static str {
        match self {
            Entity::Template => "template_not_found",
            Entity::Requirement => "requirement_not_found",
            Entity::Penalty => "penalty_not_found",
            Entity::Award => "award_not_found",
            Entity::Backfill => "backfill_not_found",
            Entity::Job => "job_not_found",
            Entity::Learner => "learner_not_found",
            Entity::CredlyOrganization => "organization_not_found",
            Entity::CredlyNotification => "notification_not_found",
            Entity::Webhook => "webhook_not_found",
            Entity::WebhookDelivery => "webhook_delivery_not_found",
            Entity::ApiToken => "token_not_found",
            Entity::Credential => "credential_not_found",
            Entity::StatusList => "status_list_not_found",
            Entity::AdminUser
            | Entity::App
            | Entity::Badge
            | Entity::Member
            | Entity::MemberBadge => "not_found",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
