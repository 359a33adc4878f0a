//! Penalties: rules that reset linked requirements when an event matches.

use accolade_store::{NewPenalty, PenaltyPatch};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiJson;
use super::requirements::ensure_configured;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_penalty))
        .routes(routes!(get_penalty, update_penalty, delete_penalty))
}

fn non_empty(ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "no_requirements",
            "a penalty must reset at least one requirement",
        ));
    }
    Ok(())
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
    ensure_configured(&state, &b.event_type)?;
    non_empty(&b.requirements)?;
    let new = NewPenalty {
        key: b.key,
        event_type: b.event_type,
        description: b.description,
        rules: rules_from(&b.rules)?,
        requirement_ids: b.requirements,
    };
    let p = state.store.add_penalty(&id, new).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

#[utoipa::path(get, path = "/penalties/{id}", tag = "penalties", params(("id" = String, Path)),
    responses((status = 200, body = PenaltyBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PenaltyBody>> {
    Ok(Json(state.store.get_penalty(&id).await?.into()))
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
    if let Some(e) = &b.event_type {
        ensure_configured(&state, e)?;
    }
    if let Some(ids) = &b.requirements {
        non_empty(ids)?;
    }
    let patch = PenaltyPatch {
        event_type: b.event_type,
        description: b.description,
        rules: b.rules.as_deref().map(rules_from).transpose()?,
        requirement_ids: b.requirements,
    };
    Ok(Json(state.store.update_penalty(&id, patch).await?.into()))
}

#[utoipa::path(delete, path = "/penalties/{id}", tag = "penalties", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_penalty(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
