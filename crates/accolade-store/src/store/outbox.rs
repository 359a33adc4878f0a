//! The outbox: jobs the workers claim and finish, award deliveries, and outgoing events waiting
//! to be published.

use accolade_domain::award::Award;
use accolade_domain::outbox::Job;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::models::*;
use crate::StoreError;

/// Outbox jobs, award deliveries and outgoing event publication.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<Paged<Job>>;

    async fn get_job(&self, id: &str) -> Result<Job>;

    /// The delivery job of an award and, once revoked, its revocation job (oldest first). Found
    /// by primary key: award jobs are named after their award (`ids::award_job_id`).
    async fn jobs_of_award(&self, award_id: &str) -> Result<Vec<Job>> {
        let mut jobs = Vec::with_capacity(2);
        for revoked in [false, true] {
            match self
                .get_job(&accolade_domain::ids::award_job_id(award_id, revoked))
                .await
            {
                Ok(j) => jobs.push(j),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(jobs)
    }

    /// Makes a dead (or pending) job run now, without resetting its attempt count.
    async fn retry_job(&self, id: &str) -> Result<Job>;

    /// Claims up to `limit` due jobs of the given kinds with a lease until `lease_until`
    /// (expired leases are claimable again: a crashed worker's jobs are not stuck).
    async fn claim_jobs(
        &self,
        kinds: &[&str],
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Job>>;

    /// Records the result of a claimed job.
    async fn finish_job(&self, id: &str, result: JobResult, now: DateTime<Utc>) -> Result<()>;

    /// Records several finished jobs and their deliveries in one transaction (workers group their
    /// results so a busy outbox costs one commit per batch, not two per job). Jobs or awards that
    /// no longer exist are skipped. Returns, per item, the award as recorded (or `None`).
    async fn finish_jobs(
        &self,
        items: Vec<JobCompletion>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Award>>>;

    /// Makes the pending jobs that wait for `org_id`'s key (deferred with
    /// [`JobResult::Defer`]`{ waiting_for_key: Some(org_id), .. }`) due at `now` and clears
    /// their mark; called once the key was rotated. Jobs of other organizations, running
    /// (leased) and finished jobs are left alone. Returns how many jobs were released.
    async fn release_jobs_waiting_for_key(&self, org_id: &str, now: DateTime<Utc>) -> Result<u64>;

    /// Records a delivery result on an award (state, provider id and state, issue time).
    /// A revoked award keeps its `revoked` state.
    async fn record_delivery(&self, award_id: &str, delivery: Delivery) -> Result<Award>;

    /// Outgoing badge events not yet published, oldest first.
    async fn unpublished_events(&self, limit: u32) -> Result<Vec<PendingPublication>>;

    /// Marks outgoing events as published.
    async fn mark_published(&self, ids: Vec<String>, at: DateTime<Utc>) -> Result<()>;
}
