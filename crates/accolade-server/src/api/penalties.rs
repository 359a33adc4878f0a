//! Penalties: rules that reset linked requirements when an event matches.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiJson;
use super::requirements::configured;
use crate::error::{ApiError, ApiResult};
use crate::service::penalties::{self, Change, Draft, PenaltyError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_penalty))
        .routes(routes!(get_penalty, update_penalty, delete_penalty))
}

impl From<PenaltyError> for ApiError {
    fn from(e: PenaltyError) -> Self {
        match e {
            PenaltyError::NoRequirements => ApiError::bad_request("no_requirements", e.to_string()),
            PenaltyError::Store(e) => e.into(),
        }
    }
}

/// Add a penalty to a template.
#[utoipa::path(post, path = "/templates/{id}/penalties", tag = "penalties", params(("id" = String, Path)),
    request_body = CreatePenalty,
    responses((status = 201, body = PenaltyBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CreatePenalty>,
) -> ApiResult<(StatusCode, Json<PenaltyBody>)> {
    let draft = Draft {
        event_type: configured(&state, &b.event_type)?,
        key: b.key,
        description: b.description,
        rules: rules_from(&b.rules)?,
        requirement_ids: b.requirements,
    };
    let p = penalties::add(&*state.store, &id, draft).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/penalties/{id}", tag = "penalties", params(("id" = String, Path)),
    responses((status = 200, body = PenaltyBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PenaltyBody>> {
    Ok(Json(penalties::get(&*state.store, &id).await?.into()))
}

#[utoipa::path(patch, path = "/penalties/{id}", tag = "penalties", params(("id" = String, Path)),
    request_body = UpdatePenalty,
    responses((status = 200, body = PenaltyBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, description = "penalty_not_found, requirement_not_found", body = crate::error::ErrorBody),
              (status = 409, description = "requirement_of_other_template", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdatePenalty>,
) -> ApiResult<Json<PenaltyBody>> {
    let change = Change {
        event_type: b
            .event_type
            .as_deref()
            .map(|e| configured(&state, e))
            .transpose()?,
        description: b.description,
        rules: b.rules.as_deref().map(rules_from).transpose()?,
        requirement_ids: b.requirements,
    };
    Ok(Json(
        penalties::update(&*state.store, &id, change).await?.into(),
    ))
}

#[utoipa::path(delete, path = "/penalties/{id}", tag = "penalties", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    penalties::delete(&*state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
