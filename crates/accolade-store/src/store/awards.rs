//! Learners, their progress, and awards (reading them, and awarding or revoking by hand).

use accolade_domain::award::Award;
use async_trait::async_trait;

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
}
