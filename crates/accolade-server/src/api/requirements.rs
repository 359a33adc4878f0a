//! Requirements of a template and their data rules.

use accolade_domain::template::{Group, Requirement};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::ApiJson;
use crate::error::{ApiError, ApiResult};
use crate::service::event_types::{ConfiguredEventType, EventTypeError};
use crate::service::requirements::{self, Change, Draft, RuleEditError};
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

impl From<EventTypeError> for ApiError {
    fn from(e: EventTypeError) -> Self {
        match e {
            EventTypeError::Invalid(d) => d.into(),
            e @ EventTypeError::NotConfigured { .. } => {
                ApiError::bad_request("event_type_not_configured", e.to_string())
            }
        }
    }
}

/// The event type of a request, if `events.types` lists it.
pub fn configured(state: &AppState, event_type: &str) -> Result<ConfiguredEventType, ApiError> {
    Ok(ConfiguredEventType::check(
        &state.config.events,
        event_type,
    )?)
}

fn rules_body(r: &Requirement) -> Vec<RuleBody> {
    r.rules.iter().map(RuleBody::from_rule).collect()
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
    let draft = Draft {
        event_type: configured(&state, &b.event_type)?,
        key: b.key,
        description: b.description,
        group: b.group.as_deref().map(Group::parse).transpose()?,
        rules: rules_from(&b.rules)?,
    };
    let r = requirements::add(&*state.store, &id, draft).await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

#[utoipa::path(get, path = "/requirements/{id}", tag = "requirements", params(("id" = String, Path)),
    responses((status = 200, body = RequirementBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RequirementBody>> {
    Ok(Json(requirements::get(&*state.store, &id).await?.into()))
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
    let change = Change {
        event_type: b
            .event_type
            .as_deref()
            .map(|e| configured(&state, e))
            .transpose()?,
        description: b.description,
        group: b.group.as_deref().map(Group::parse).transpose()?,
        rules: b.rules.as_deref().map(rules_from).transpose()?,
    };
    Ok(Json(
        requirements::update(&*state.store, &id, change)
            .await?
            .into(),
    ))
}

/// Delete a requirement; learners' past fulfilments stay in history.
#[utoipa::path(delete, path = "/requirements/{id}", tag = "requirements", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_requirement(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    requirements::delete(&*state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The data rules of a requirement (all must match).
#[utoipa::path(get, path = "/requirements/{id}/rules", tag = "requirements", params(("id" = String, Path)),
    responses((status = 200, body = Vec<RuleBody>), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn list_rules(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let r = requirements::get(&*state.store, &id).await?;
    Ok(Json(rules_body(&r)))
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
    let r = requirements::replace_rules(&*state.store, &id, rules).await?;
    Ok(Json(rules_body(&r)))
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
    let r = requirements::add_rule(&*state.store, &id, rule).await?;
    Ok((StatusCode::CREATED, Json(rules_body(&r))))
}

/// Remove the data rule at `index` (0-based, as listed).
#[utoipa::path(delete, path = "/requirements/{id}/rules/{index}", tag = "requirements",
    params(("id" = String, Path), ("index" = usize, Path)),
    responses((status = 200, body = Vec<RuleBody>), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    // An index that is not a number is past the end like any other.
    let i = index.parse().unwrap_or(usize::MAX);
    let r = requirements::remove_rule(&*state.store, &id, i)
        .await
        .map_err(|e| match e {
            // Named as sent, a number or not.
            RuleEditError::NoRule { .. } => ApiError::NotFound {
                code: "rule_not_found",
                detail: format!("requirement {id} has no rule at index {index}"),
            },
            RuleEditError::Store(e) => e.into(),
        })?;
    Ok(Json(rules_body(&r)))
}
