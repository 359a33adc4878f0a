//! Outbox jobs: list, inspect, retry dead ones.

use accolade_domain::outbox::JobStatus;
use accolade_store::JobFilter;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiQuery;
use crate::error::{ApiError, ApiResult};
use crate::service::jobs;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    #[param(schema_with = job_status)]
    pub status: Option<String>,
    /// Only jobs of this kind, e.g. `credly.issue`.
    pub kind: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

fn job_status() -> utoipa::openapi::Object {
    one_of_strings(
        &["pending", "running", "succeeded", "dead"],
        false,
        "Only jobs in this status.",
    )
}

#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = ListBody<JobBody>), (status = 400, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_jobs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Json<ListBody<JobBody>>> {
    let status = match q.status.as_deref() {
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_status", format!("unknown job status `{s}`"))
        })?),
        None => None,
    };
    let filter = JobFilter {
        status,
        kind: q.kind.clone(),
    };
    let page = jobs::list(&*state.store, &filter, page(q.limit, q.offset)?).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobBody>> {
    Ok(Json(jobs::get(&*state.store, &id).await?.into()))
}

/// Run a dead (or waiting) job again now.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobBody>> {
    Ok(Json(jobs::retry(&*state.store, &id).await?.into()))
}
