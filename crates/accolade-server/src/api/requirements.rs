//! Requirements of a template and their data rules.

use accolade_domain::template::Group;
use accolade_store::{NewRequirement, RequirementPatch};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiJson;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_requirement))
        .routes(routes!(
            get_requirement,
            update_requirement,
            delete_requirement
        ))
        .routes(routes!(list_rules, replace_rules, add_rule))
        .routes(routes!(delete_rule))
}

/// Refuses event types the operator has not configured (`events.types`).
pub fn ensure_configured(state: &AppState, event_type: &str) -> Result<(), ApiError> {
    accolade_domain::event::validate_event_type(event_type)?;
    if state.config.events.is_configured(event_type) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "event_type_not_configured",
            format!(
                "`{event_type}` is not in events.types; configured: {}",
                state.config.events.types.join(", ")
            ),
        ))
    }
}

/// Add a requirement to a template (group: next free letter when absent).
#[utoipa::path(post, path = "/templates/{id}/requirements", tag = "requirements", params(("id" = String, Path)),
    request_body = CreateRequirement,
    responses((status = 201, body = RequirementBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, description = "template_not_found", body = crate::error::ErrorBody),
              (status = 409, description = "key_taken", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CreateRequirement>,
) -> ApiResult<(StatusCode, Json<RequirementBody>)> {
    ensure_configured(&state, &b.event_type)?;
    let new = NewRequirement {
        key: b.key,
        event_type: b.event_type,
        description: b.description,
        group: b.group.as_deref().map(Group::parse).transpose()?,
        rules: rules_from(&b.rules)?,
    };
    let r = state.store.add_requirement(&id, new).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

#[utoipa::path(get, path = "/requirements/{id}", tag = "requirements", params(("id" = String, Path)),
    responses((status = 200, body = RequirementBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RequirementBody>> {
    Ok(Json(state.store.get_requirement(&id).await?.into()))
}

#[utoipa::path(patch, path = "/requirements/{id}", tag = "requirements", params(("id" = String, Path)),
    request_body = UpdateRequirement,
    responses((status = 200, body = RequirementBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateRequirement>,
) -> ApiResult<Json<RequirementBody>> {
    if let Some(e) = &b.event_type {
        ensure_configured(&state, e)?;
    }
    let patch = RequirementPatch {
        event_type: b.event_type,
        description: b.description,
        group: b.group.as_deref().map(Group::parse).transpose()?,
        rules: b.rules.as_deref().map(rules_from).transpose()?,
    };
    Ok(Json(
        state.store.update_requirement(&id, patch).await?.into(),
    ))
}

/// Delete a requirement; learners' past fulfilments stay in history.
#[utoipa::path(delete, path = "/requirements/{id}", tag = "requirements", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_requirement(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The data rules of a requirement (all must match).
#[utoipa::path(get, path = "/requirements/{id}/rules", tag = "requirements", params(("id" = String, Path)),
    responses((status = 200, body = Vec<RuleBody>), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_rules(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let r = state.store.get_requirement(&id).await?;
    Ok(Json(r.rules.iter().map(RuleBody::from_rule).collect()))
}

/// Replace all data rules of a requirement.
#[utoipa::path(put, path = "/requirements/{id}/rules", tag = "requirements", params(("id" = String, Path)),
    request_body = Vec<RuleBody>,
    responses((status = 200, body = Vec<RuleBody>), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replace_rules(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Vec<RuleBody>>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let rules = rules_from(&b)?;
    let r = state
        .store
        .update_requirement(
            &id,
            RequirementPatch {
                rules: Some(rules),
                ..Default::default()
            },
        )
        .await?;
    Ok(Json(r.rules.iter().map(RuleBody::from_rule).collect()))
}

/// Append one data rule.
#[utoipa::path(post, path = "/requirements/{id}/rules", tag = "requirements", params(("id" = String, Path)),
    request_body = RuleBody,
    responses((status = 201, body = Vec<RuleBody>), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RuleBody>,
) -> ApiResult<(StatusCode, Json<Vec<RuleBody>>)> {
    let rule = b.to_rule()?;
    let mut rules = state.store.get_requirement(&id).await?.rules;
    rules.push(rule);
    let r = state
        .store
        .update_requirement(
            &id,
            RequirementPatch {
                rules: Some(rules),
                ..Default::default()
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(r.rules.iter().map(RuleBody::from_rule).collect()),
    ))
}

/// Remove the data rule at `index` (0-based, as listed).
#[utoipa::path(delete, path = "/requirements/{id}/rules/{index}", tag = "requirements",
    params(("id" = String, Path), ("index" = usize, Path)),
    responses((status = 200, body = Vec<RuleBody>), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let mut rules = state.store.get_requirement(&id).await?.rules;
    let i: usize = index
        .parse()
        .ok()
        .filter(|i| *i < rules.len())
        .ok_or(ApiError::NotFound {
            code: "rule_not_found",
            detail: format!("requirement {id} has no rule at index {index}"),
        })?;
    rules.remove(i);
    let r = state
        .store
        .update_requirement(
            &id,
            RequirementPatch {
                rules: Some(rules),
                ..Default::default()
            },
        )
        .await?;
    Ok(Json(r.rules.iter().map(RuleBody::from_rule).collect()))
}
