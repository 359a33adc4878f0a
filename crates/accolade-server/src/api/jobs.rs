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
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct JobQuery {
    /// `pending`, `running`, `succeeded` or `dead`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
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
    let page = state
        .store
        .list_jobs(&filter, accolade_store::Page::new(q.limit, q.offset))
        .await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobBody>> {
    Ok(Json(state.store.get_job(&id).await?.into()))
}

/// Run a dead (or waiting) job again now.
#[utoipa::path(post, path = "/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path)),
    responses((status = 200, body = JobBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobBody>> {
    Ok(Json(state.store.retry_job(&id).await?.into()))
}
