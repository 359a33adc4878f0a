//! Learners, their progress, and awards (reading them, and awarding or revoking by hand).

use accolade_domain::award::Award;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::models::*;

/// Learners, progress and awards.
#[async_trait]
pub trait AwardStore: Send + Sync {
    async fn get_learner(&self, username: &str) -> Result<Learner>;

    async fn list_learners(&self, page: Page) -> Result<Paged<Learner>>;

    /// Every requirement the learner has currently fulfilled, on all templates.
    async fn fulfillments(&self, username: &str) -> Result<Vec<Fulfillment>>;

    async fn list_awards(&self, filter: &AwardFilter, page: Page) -> Result<Paged<Award>>;

    async fn get_award(&self, id: &str) -> Result<Award>;

    /// Awards the template to a learner by hand (a new episode), with outbox job and event.
    /// Refused with `Conflict` when the learner already holds it.
    async fn award_manually(
        &self,
        template_id: &str,
        username: &str,
        change: ManualChange,
    ) -> Result<Award>;

    /// Revokes an award by hand, with outbox job and event. `Conflict` if already revoked.
    async fn revoke_award(&self, award_id: &str, change: ManualChange) -> Result<Award>;

    /// The expiry sweep: marks up to `limit` unrevoked awards whose `expires_at` is at or before
    /// `now` and that were not notified yet as notified, and writes one `badge.expired`
    /// outgoing event for each, in one transaction; returns them (earliest expiry first). No
    /// claim or lease: the marking statement itself decides, so awards are never notified twice,
    /// even by several instances sweeping at once. Revoked awards are never notified.
    async fn notify_expired_awards(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Award>>;
}
