//! Outbox jobs as operators see them: listing, reading one, and retrying by hand (one job, every
//! dead job, or the failed jobs of one award). Used by the JSON API, the admin UI and
//! `accolade jobs`.

use accolade_domain::outbox::{Job, JobStatus};
use accolade_store::{JobFilter, Page, Paged, Store, StoreError};
use chrono::{DateTime, Utc};

pub async fn list(
    store: &dyn Store,
    filter: &JobFilter,
    page: Page,
) -> Result<Paged<Job>, StoreError> {
    store.list_jobs(filter, page).await
}

pub async fn get(store: &dyn Store, id: &str) -> Result<Job, StoreError> {
    store.get_job(id).await
}

/// Makes a dead (or waiting) job run now; its attempt count is kept.
pub async fn retry(store: &dyn Store, id: &str) -> Result<Job, StoreError> {
    store.retry_job(id).await
}

/// The ids of every dead job, read page by page.
pub async fn dead_ids(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let filter = JobFilter {
        status: Some(JobStatus::Dead),
        kind: None,
    };
    let mut ids = Vec::new();
    let mut offset = None;
    loop {
        let page = store
            .list_jobs(&filter, Page::new(Some(Page::MAX_LIMIT), offset))
            .await?;
        ids.extend(page.items.into_iter().map(|j| j.id));
        match page.next_offset {
            Some(o) => offset = Some(o),
            None => return Ok(ids),
        }
    }
}

/// A job an operator can hurry: dead, or backing off after a failed attempt.
pub fn is_waiting(job: &Job, now: DateTime<Utc>) -> bool {
    job.status == JobStatus::Dead
        || (job.status == JobStatus::Pending && job.attempts > 0 && job.run_at > now)
}

/// Makes the award's waiting jobs (see [`is_waiting`]) due now; returns the jobs retried. A job
/// that finished between the read and the retry is skipped.
pub async fn retry_waiting_of_award(
    store: &dyn Store,
    award_id: &str,
) -> Result<Vec<Job>, StoreError> {
    let now = Utc::now();
    let mut retried = Vec::new();
    for job in store.jobs_of_award(award_id).await? {
        if !is_waiting(&job, now) {
            continue;
        }
        match store.retry_job(&job.id).await {
            Ok(j) => retried.push(j),
            Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(retried)
}
