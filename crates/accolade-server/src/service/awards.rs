//! Awards: listing, reading one with its outbox jobs, and the manual changes (award a template
//! to a learner, revoke an award) with their reason, metrics and outbox effects. The JSON API and
//! the admin UI both award and revoke through here.

use accolade_domain::award::Award;
use accolade_domain::outbox::Job;
use accolade_store::{AwardFilter, ManualChange, Page, Paged, Store, StoreError};
use chrono::{DateTime, Timelike, Utc};

use crate::metrics as m;

/// Longest reason, in characters as sent.
const REASON_MAX: usize = 1000;
/// Longest learner username, in bytes.
const LEARNER_MAX: usize = 255;

/// Why a manual change is refused.
#[derive(Debug, thiserror::Error)]
pub enum AwardError {
    /// `invalid_reason`
    #[error("a reason of 1-1000 characters is required")]
    InvalidReason,
    /// `invalid_learner`
    #[error("learner must be a username of 1-255 bytes")]
    InvalidLearner,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who changes an award by hand; recorded with the reason.
#[derive(Debug, Clone, Copy)]
pub enum ChangedBy<'a> {
    /// A caller of the JSON API: the reason is kept as given.
    Api,
    /// An admin signed in to the web UI: named after the reason.
    Admin(&'a str),
}

/// An award and its outbox jobs (issue, and revoke once revoked).
#[derive(Debug)]
pub struct AwardWithJobs {
    pub award: Award,
    pub jobs: Vec<Job>,
}

/// A reason of 1-1000 characters as sent (kept trimmed), not blank.
fn reason(given: &str) -> Result<String, AwardError> {
    let r = given.trim();
    if r.is_empty() || given.chars().count() > REASON_MAX {
        return Err(AwardError::InvalidReason);
    }
    Ok(r.to_string())
}

/// Now, at the microsecond precision both databases store, so the award returned by a manual
/// change equals the one read back later.
fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Awards, newest first (all episodes, revoked ones included).
pub async fn list(
    store: &dyn Store,
    filter: &AwardFilter,
    page: Page,
) -> Result<Paged<Award>, StoreError> {
    store.list_awards(filter, page).await
}

pub async fn get(store: &dyn Store, id: &str) -> Result<Award, StoreError> {
    store.get_award(id).await
}

/// An award with its outbox jobs.
pub async fn with_jobs(store: &dyn Store, id: &str) -> Result<AwardWithJobs, StoreError> {
    let award = store.get_award(id).await?;
    let jobs = store.jobs_of_award(id).await?;
    Ok(AwardWithJobs { award, jobs })
}

/// Awards a template to a learner by hand: a new episode, delivered through the outbox.
/// Refused with a conflict while the learner holds it.
pub async fn award(
    store: &dyn Store,
    template_id: &str,
    learner: &str,
    given_reason: &str,
) -> Result<Award, AwardError> {
    let reason = reason(given_reason)?;
    let username = learner.trim();
    if username.is_empty() || learner.len() > LEARNER_MAX {
        return Err(AwardError::InvalidLearner);
    }
    let change = ManualChange {
        reason,
        at: now_micros(),
    };
    let award = store.award_manually(template_id, username, change).await?;
    m::manual_award();
    Ok(award)
}

/// Revokes an award by hand (the revocation goes through the outbox). Refused with a conflict
/// when it is revoked already.
pub async fn revoke(
    store: &dyn Store,
    id: &str,
    given_reason: &str,
    by: ChangedBy<'_>,
) -> Result<Award, AwardError> {
    let reason = reason(given_reason)?;
    let reason = match by {
        ChangedBy::Api => reason,
        ChangedBy::Admin(username) => format!("{reason} (by {username} in the admin UI)"),
    };
    let change = ManualChange {
        reason,
        at: now_micros(),
    };
    let award = store.revoke_award(id, change).await?;
    m::manual_revoke();
    Ok(award)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_and_neither_blank_nor_too_long() {
        assert_eq!(reason("  left the course ").unwrap(), "left the course");
        assert!(matches!(reason("   "), Err(AwardError::InvalidReason)));
        assert!(reason(&"x".repeat(1000)).is_ok());
        assert!(matches!(
            reason(&"x".repeat(1001)),
            Err(AwardError::InvalidReason)
        ));
    }
}
