//! Learners and their progress.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiQuery;
use crate::error::ApiResult;
use crate::service::learners;
use crate::service::progress::{self, ProgressView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_learners))
        .routes(routes!(get_learner))
        .routes(routes!(get_learner_progress))
        .routes(routes!(get_progress))
}

#[utoipa::path(get, path = "/learners", tag = "learners", params(PageQuery),
    responses((status = 200, body = ListBody<LearnerBody>)), security(("bearer" = [])))]
pub async fn list_learners(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ListBody<LearnerBody>>> {
    let page = learners::list(&*state.store, q.page()?).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

#[utoipa::path(get, path = "/learners/{username}", tag = "learners", params(("username" = String, Path)),
    responses((status = 200, body = LearnerBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_learner(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<LearnerBody>> {
    Ok(Json(learners::get(&*state.store, &username).await?.into()))
}

/// Progress of a learner on every template: fulfilled requirements and the events that did it.
#[utoipa::path(get, path = "/learners/{username}/progress", tag = "learners", params(("username" = String, Path)),
    responses((status = 200, body = ProgressView), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_learner_progress(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> ApiResult<Json<ProgressView>> {
    Ok(Json(progress::for_learner(&*state.store, &username).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// Learner username.
    pub learner: String,
}

/// Same as `/learners/{username}/progress`, addressed by query parameter.
#[utoipa::path(get, path = "/progress", tag = "learners", params(ProgressQuery),
    responses((status = 200, body = ProgressView), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_progress(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ProgressQuery>,
) -> ApiResult<Json<ProgressView>> {
    Ok(Json(
        progress::for_learner(&*state.store, &q.learner).await?,
    ))
}
