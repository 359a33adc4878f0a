//! Why a preview or a backfill is refused (its own file so that the state's parts need no
//! service that imports the state).

use accolade_store::StoreError;

use super::snapshot::ScanError;

/// Largest `sample` of a preview.
pub const SAMPLE_MAX: usize = 100;

/// Why a preview or backfill is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// `backfill_busy` (503): another preview is reading the inbox.
    #[error("another preview is running; try again in a few seconds")]
    Busy,
    /// `template_inactive` (409): only an active template's backfill writes.
    #[error("the template is not active: activate it with a backfill (POST /api/v1/templates/{{id}}/activate {{\"backfill\": true}}) or preview with dry_run")]
    TemplateInactive,
    /// `invalid_sample`
    #[error("sample must be 0-{SAMPLE_MAX}")]
    InvalidSample,
    /// `invalid_reason`
    #[error("reason must be at most 1000 characters")]
    InvalidReason,
    /// `invalid_since`
    #[error("since must not be in the future")]
    InvalidSince,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the inbox failed: {0}")]
    Scan(String),
}

impl From<ScanError> for BackfillError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Store(e) => BackfillError::Store(e),
            other => BackfillError::Scan(other.to_string()),
        }
    }
}
