//! Storage errors. Call sites decide what a `NotFound` or `Conflict` means for their caller; there
//! is deliberately no blanket mapping to HTTP statuses here.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The addressed row does not exist (`what` names the kind, e.g. `template`).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness or state rule refused the change.
    #[error("conflict: {detail}")]
    Conflict { code: &'static str, detail: String },
    /// A domain validation failed inside a store operation (e.g. no free group letter).
    #[error(transparent)]
    Domain(#[from] accolade_domain::DomainError),
    /// Anything else: the database is unreachable, a query failed, the data is corrupt.
    #[error("storage failure: {0}")]
    Other(String),
}

impl StoreError {
    pub fn not_found(what: &'static str) -> Self {
        StoreError::NotFound { what }
    }

    /// A second unrevoked award of one template to one learner, refused by the database.
    pub fn already_awarded() -> Self {
        StoreError::Conflict {
            code: "already_awarded",
            detail: "the learner already holds this badge".into(),
        }
    }
}
