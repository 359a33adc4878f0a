//! Awards: list (by learner, template, state), get, manual award and revoke with a reason.

use accolade_domain::award::AwardState;
use accolade_store::{AwardFilter, ManualChange};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Timelike, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::metrics as m;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_awards, create_award))
        .routes(routes!(get_award))
        .routes(routes!(revoke_award))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AwardQuery {
    /// Learner username.
    pub learner: Option<String>,
    /// Template id.
    pub template: Option<String>,
    #[param(schema_with = award_state)]
    pub state: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

fn award_state() -> utoipa::openapi::Object {
    one_of_strings(
        &[
            "awarded", "issuing", "pending", "accepted", "rejected", "revoked", "error", "dead",
        ],
        false,
        "Only awards in this state.",
    )
}

/// Now, at the microsecond precision both databases store, so the award returned by a manual
/// change equals the one read back later.
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// A reason of 1-1000 characters as sent (stored trimmed), not blank.
pub(crate) fn reason(given: &str) -> Result<String, ApiError> {
    let r = given.trim();
    if r.is_empty() || given.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "a reason of 1-1000 characters is required",
        ));
    }
    Ok(r.to_string())
}

/// List awards, newest first (all episodes, revoked ones included).
#[utoipa::path(get, path = "/awards", tag = "awards", params(AwardQuery),
    responses((status = 200, body = ListBody<AwardBody>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_awards(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AwardQuery>,
) -> ApiResult<Json<ListBody<AwardBody>>> {
    let award_state = match q.state.as_deref() {
        Some(s) => Some(AwardState::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_state", format!("unknown award state `{s}`"))
        })?),
        None => None,
    };
    let filter = AwardFilter {
        learner: q.learner.clone(),
        template_id: q.template.clone(),
        state: award_state,
    };
    let page = state
        .store
        .list_awards(&filter, page(q.limit, q.offset)?)
        .await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

/// Award a template to a learner by hand (a new episode; delivery goes through the outbox).
#[utoipa::path(post, path = "/awards", tag = "awards", request_body = CreateAward,
    responses((status = 201, body = AwardBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_award(
    State(state): State<AppState>,
    ApiJson(b): ApiJson<CreateAward>,
) -> ApiResult<(StatusCode, Json<AwardBody>)> {
    let reason = reason(&b.reason)?;
    let learner = b.learner.trim();
    if learner.is_empty() || b.learner.len() > 255 {
        return Err(ApiError::bad_request(
            "invalid_learner",
            "learner must be a username of 1-255 bytes",
        ));
    }
    let award = state
        .store
        .award_manually(
            &b.template,
            learner,
            ManualChange {
                reason,
                at: now_micros(),
            },
        )
        .await?;
    m::manual_award();
    Ok((StatusCode::CREATED, Json(award.into())))
}

#[utoipa::path(get, path = "/awards/{id}", tag = "awards", params(("id" = String, Path)),
    responses((status = 200, body = AwardBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_award(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AwardBody>> {
    Ok(Json(state.store.get_award(&id).await?.into()))
}

/// Revoke an award by hand with a reason.
#[utoipa::path(post, path = "/awards/{id}/revoke", tag = "awards", params(("id" = String, Path)), request_body = RevokeAward,
    responses((status = 200, body = AwardBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_award(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RevokeAward>,
) -> ApiResult<Json<AwardBody>> {
    let reason = reason(&b.reason)?;
    let award = state
        .store
        .revoke_award(
            &id,
            ManualChange {
                reason,
                at: now_micros(),
            },
        )
        .await?;
    m::manual_revoke();
    Ok(Json(award.into()))
}
