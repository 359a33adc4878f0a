//! Badge templates: list with filters, create (local), get with requirements and penalties,
//! update, activate and deactivate.

use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::template::Origin;
use accolade_store::{TemplateFilter, TemplatePatch};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::*;
use super::extract::{ApiJson, ApiQuery, OptionalJson};
use crate::error::{ApiError, ApiResult};
use crate::service::templates::{self, NewLocalTemplate, TemplateError};
use crate::state::AppState;

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::NotCreatable => {
                ApiError::bad_request("origin_not_creatable", e.to_string())
            }
            TemplateError::InvalidUuid(_) => ApiError::bad_request("invalid_uuid", e.to_string()),
            TemplateError::Store(e) => e.into(),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template))
        .routes(routes!(activate_template))
        .routes(routes!(deactivate_template))
}

/// An `expires_after` as sent (`365d`, …; null: never), or `invalid_expires_after`.
fn expires_after(text: Option<&str>) -> Result<Option<ExpiresAfter>, ApiError> {
    Ok(text.map(ExpiresAfter::parse).transpose()?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    #[param(schema_with = origin)]
    pub origin: Option<String>,
    /// Only active (`true`) or inactive (`false`) templates.
    pub active: Option<bool>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// Owning Credly organization.
    pub organization: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

fn origin() -> utoipa::openapi::Object {
    one_of_strings(
        &["local", "credly"],
        false,
        "Only templates of this origin.",
    )
}

/// List templates.
#[utoipa::path(get, path = "/templates", tag = "templates", params(TemplateQuery),
    responses((status = 200, body = ListBody<TemplateBody>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_templates(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> ApiResult<Json<ListBody<TemplateBody>>> {
    let filter = TemplateFilter {
        origin: q.origin.as_deref().map(Origin::parse).transpose()?,
        active: q.active,
        search: q.q.clone(),
        organization_id: q.organization.clone(),
        provider_state: None,
    };
    let page = templates::list(&*state.store, &filter, page(q.limit, q.offset)?).await?;
    Ok(Json(ListBody::from_page(page, Into::into)))
}

/// Create a local template (inactive unless `active` is true).
#[utoipa::path(post, path = "/templates", tag = "templates", request_body = CreateTemplate,
    responses((status = 201, body = TemplateBody), (status = 400, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTemplate>,
) -> ApiResult<(StatusCode, Json<TemplateBody>)> {
    let new = NewLocalTemplate {
        origin: body.origin.as_deref().map(Origin::parse).transpose()?,
        uuid: body.uuid,
        name: body.name,
        description: body.description,
        image_url: body.image_url,
        active: body.active,
        allow_reaward: body.allow_reaward,
        expires_after: expires_after(body.expires_after.as_deref())?,
        criteria: accolade_domain::expiry::criteria(body.criteria)?,
    };
    let t = templates::create_local(&*state.store, new).await?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// A template with its requirements and penalties.
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateDetailBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateDetailBody>> {
    Ok(Json(templates::get(&*state.store, &id).await?.into()))
}

/// Change a template's name, description, image, re-award switch, expiry (for awards made from
/// then on) or criteria.
#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", params(("id" = String, Path)),
    request_body = UpdateTemplate,
    responses((status = 200, body = TemplateBody), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateTemplate>,
) -> ApiResult<Json<TemplateBody>> {
    let patch = TemplatePatch {
        name: b.name,
        description: b.description,
        image_url: b.image_url.map(Some),
        allow_reaward: b.allow_reaward,
        expires_after: b
            .expires_after
            .map(|e| expires_after(e.as_deref()))
            .transpose()?,
        criteria: b
            .criteria
            .map(accolade_domain::expiry::criteria)
            .transpose()?,
    };
    Ok(Json(
        templates::update(&*state.store, &id, patch).await?.into(),
    ))
}

/// Options of an activation (the body may be left out).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// Also backfill: award the learners whose stored events already earn the badge (see
    /// `POST /templates/{id}/backfill`). The template is active first, so events arriving
    /// meanwhile count live and the backfill re-reads each learner's events as it writes.
    #[serde(default)]
    pub backfill: bool,
    /// The backfill's `since`.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// The backfill's `revoke`.
    #[serde(default)]
    pub revoke: bool,
    /// The backfill's `reason`.
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

/// An activated template, with the backfill queued with it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ActivatedBody {
    #[serde(flatten)]
    pub template: TemplateBody,
    /// The backfill queued by `{"backfill": true}` (see `GET /backfills/{id}`).
    #[schema(value_type = Option<super::backfills::BackfillBody>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<crate::service::backfill::BackfillView>,
}

/// Activate: the template takes part in event processing from the next event on; with
/// `{"backfill": true}` a backfill is queued too.
#[utoipa::path(post, path = "/templates/{id}/activate", tag = "templates", params(("id" = String, Path)),
    request_body(content = Option<ActivateRequest>, description = "optional"),
    responses((status = 200, body = ActivatedBody),
        (status = 400, body = crate::error::ErrorBody, description = "invalid_since, invalid_reason"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "backfill_running")),
    security(("bearer" = [])))]
pub async fn activate_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<ActivateRequest>,
) -> ApiResult<Json<ActivatedBody>> {
    super::backfills::check_reason(b.reason.as_deref())?;
    let start = b.backfill.then(|| crate::service::backfill::StartRequest {
        since: b.since,
        revoke: b.revoke,
        reason: b.reason.clone().unwrap_or_default(),
        requested_by: "api".into(),
    });
    let (template, backfill) = crate::service::backfill::activate(&state, &id, start).await?;
    Ok(Json(ActivatedBody {
        template: template.into(),
        backfill,
    }))
}

/// Deactivate: events stop counting for it; issued badges are kept.
#[utoipa::path(post, path = "/templates/{id}/deactivate", tag = "templates", params(("id" = String, Path)),
    responses((status = 200, body = TemplateBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn deactivate_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<TemplateBody>> {
    Ok(Json(
        templates::set_active(&*state.store, &id, false)
            .await?
            .into(),
    ))
}
