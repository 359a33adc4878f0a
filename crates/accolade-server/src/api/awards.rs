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
        .routes(routes!(bulk_awards))
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

/// A list of learners to award or revoke by hand.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAwards {
    /// `award` or `revoke`.
    #[schema(pattern = "^(award|revoke)$")]
    pub action: String,
    /// The learners' usernames (at most 10,000) ...
    pub learners: Option<Vec<String>>,
    /// ... or the list as a file holds it: CSV with the usernames in the first column (a
    /// `username` header is skipped) or a JSON array.
    pub list: Option<String>,
    /// Why (1-1000 characters), kept with each change.
    pub reason: String,
    /// Only report what would change.
    #[serde(default)]
    pub dry_run: bool,
}

impl From<crate::service::bulk::BulkError> for ApiError {
    fn from(e: crate::service::bulk::BulkError) -> Self {
        use crate::service::bulk::BulkError;
        match e {
            BulkError::InvalidList(_) => {
                ApiError::bad_request("invalid_learner_list", e.to_string())
            }
            BulkError::TooMany(_) => ApiError::bad_request("too_many_learners", e.to_string()),
            BulkError::InvalidLearner(_) => ApiError::bad_request("invalid_learner", e.to_string()),
            BulkError::Award(e) => e.into(),
            BulkError::Store(e) => e.into(),
        }
    }
}

/// Award or revoke a template by hand for a list of learners, each exactly once (sending the
/// list again changes nothing more); with `dry_run`, only what would change. Everything is
/// checked first: a bad learner or reason refuses the whole list.
#[utoipa::path(post, path = "/templates/{id}/awards/bulk", tag = "awards", params(("id" = String, Path)),
    request_body = BulkAwards,
    responses((status = 200, body = Object, description = "per learner: awarded, revoked, would_award, would_revoke, already_holds, not_holding"),
        (status = 400, body = crate::error::ErrorBody, description = "invalid_learner_list, too_many_learners, invalid_learner, invalid_reason, invalid_action"),
        (status = 404, body = crate::error::ErrorBody, description = "template_not_found")),
    security(("bearer" = [])))]
pub async fn bulk_awards(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<BulkAwards>,
) -> ApiResult<Json<crate::service::bulk::BulkReport>> {
    use crate::service::bulk::{self, BulkAction, BulkRequest};
    let action = match b.action.as_str() {
        "award" => BulkAction::Award,
        "revoke" => BulkAction::Revoke,
        other => {
            return Err(ApiError::bad_request(
                "invalid_action",
                format!("action must be award or revoke, not `{other}`"),
            ))
        }
    };
    let learners = match (b.learners, b.list) {
        (Some(l), None) => l,
        (None, Some(text)) => bulk::parse_list(&text)?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_learner_list",
                "send either `learners` (an array) or `list` (CSV or JSON text)",
            ))
        }
    };
    let req = BulkRequest {
        action,
        learners,
        reason: b.reason,
        dry_run: b.dry_run,
    };
    Ok(Json(
        bulk::run(&*state.store, &id, req, ChangedBy::Api).await?,
    ))
}
