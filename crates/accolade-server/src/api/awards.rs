//! Awards: list (by learner, template, state), get, manual award and revoke with a reason.

use accolade_domain::award::AwardState;
use accolade_store::AwardFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::awards::{self, AwardError, ChangedBy};
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

impl From<AwardError> for ApiError {
    fn from(e: AwardError) -> Self {
        match e {
            AwardError::InvalidReason => ApiError::bad_request("invalid_reason", e.to_string()),
            AwardError::InvalidLearner => ApiError::bad_request("invalid_learner", e.to_string()),
            AwardError::Store(e) => e.into(),
        }
    }
}

/// Fills in the links to the awards' Open Badges credentials.
async fn with_credentials(state: &AppState, bodies: &mut [AwardBody]) -> ApiResult<()> {
    let ids: Vec<String> = bodies.iter().map(|b| b.id.clone()).collect();
    let links = crate::service::openbadges::public::credential_links(state, &ids).await?;
    for body in bodies {
        if let Some(credential_id) = links.get(&body.id) {
            body.credential_url = Some(state.openbadges.credential_url(credential_id));
            body.badge_url = Some(state.openbadges.badge_page_url(credential_id));
        }
    }
    Ok(())
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
    let page = awards::list(&*state.store, &filter, page(q.limit, q.offset)?).await?;
    let mut body = ListBody::from_page(page, AwardBody::from);
    with_credentials(&state, &mut body.data).await?;
    Ok(Json(body))
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
    let award = awards::award(&*state.store, &b.template, &b.learner, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(award.into())))
}

#[utoipa::path(get, path = "/awards/{id}", tag = "awards", params(("id" = String, Path)),
    responses((status = 200, body = AwardBody), (status = 404, body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_award(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AwardBody>> {
    let mut body = [AwardBody::from(awards::get(&*state.store, &id).await?)];
    with_credentials(&state, &mut body).await?;
    let [body] = body;
    Ok(Json(body))
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
    let award = awards::revoke(&*state.store, &id, &b.reason, ChangedBy::Api).await?;
    Ok(Json(award.into()))
}
