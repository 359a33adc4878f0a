//! Backfills: preview (`dry_run`) or queue one for a template, follow it, cancel it
//! (docs/backfill.md).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::ListBody;
use super::extract::{ApiJson, ApiQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::backfill::{self, BackfillError, BackfillView, PreviewRequest, StartRequest};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backfill_template))
        .routes(routes!(list_backfills))
        .routes(routes!(get_backfill))
        .routes(routes!(cancel_backfill))
}

impl From<BackfillError> for ApiError {
    fn from(e: BackfillError) -> Self {
        match e {
            BackfillError::Busy => ApiError::Overloaded {
                code: "backfill_busy",
                detail: e.to_string(),
                retry_after_secs: 5,
            },
            BackfillError::TemplateInactive => ApiError::Conflict {
                code: "template_inactive",
                detail: e.to_string(),
            },
            BackfillError::InvalidSample => ApiError::bad_request("invalid_sample", e.to_string()),
            BackfillError::InvalidReason => ApiError::bad_request("invalid_reason", e.to_string()),
            BackfillError::InvalidSince => ApiError::bad_request("invalid_since", e.to_string()),
            BackfillError::Store(e) => e.into(),
            BackfillError::Scan(detail) => ApiError::Internal(anyhow::anyhow!(detail)),
        }
    }
}

/// A backfill or its preview.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// Only report what a backfill would do (nothing is written); answered at once.
    #[serde(default)]
    pub dry_run: bool,
    /// Replay only events at or after this time (RFC 3339); default: every stored event.
    pub since: Option<DateTime<Utc>>,
    /// Also revoke the badge of holders who no longer qualify (never manual awards).
    #[serde(default)]
    pub revoke: bool,
    /// Why (kept with the backfill; at most 1000 characters).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    /// Learners named per kind in a preview (0-100, default 10).
    #[schema(minimum = 0, maximum = 100)]
    pub sample: Option<u32>,
    /// Preview from the server's last read of the inbox when it covers the rules' event types
    /// and payload paths, reading only events stored since (as the admin editor's live count
    /// does: well under a second after a rule change); default: read the whole inbox.
    #[serde(default)]
    pub reuse: bool,
}

impl BackfillRequest {
    /// The start request of a real backfill.
    pub fn start(&self, requested_by: &str) -> StartRequest {
        StartRequest {
            since: self.since,
            revoke: self.revoke,
            reason: self.reason.clone().unwrap_or_default(),
            requested_by: requested_by.to_string(),
        }
    }
}

/// A reason of at most 1000 characters, or `invalid_reason`.
pub fn check_reason(reason: Option<&str>) -> Result<(), ApiError> {
    match reason {
        Some(r) if r.chars().count() > 1000 => Err(ApiError::bad_request(
            "invalid_reason",
            "reason must be at most 1000 characters",
        )),
        _ => Ok(()),
    }
}

/// The answer of `POST /templates/{id}/backfill`: a 202 with the queued job and its address.
pub fn queued(b: BackfillView) -> Response {
    let location = format!("/api/v1/backfills/{}", b.backfill.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(b),
    )
        .into_response()
}

/// Backfill a template: replay its current rules over the stored events of every learner with
/// events of its types, as if it had been active since `since`. With `dry_run` the answer is
/// the preview (200; nothing is written); otherwise the backfill is queued (202, `Location` of
/// the job; the template must be active) and runs in the background.
#[utoipa::path(post, path = "/templates/{id}/backfill", tag = "backfills",
    params(("id" = String, Path)), request_body = BackfillRequest,
    responses(
        (status = 200, body = PreviewBody, description = "the preview (dry_run)"),
        (status = 202, body = BackfillBody, description = "queued"),
        (status = 400, body = crate::error::ErrorBody, description = "invalid_since, invalid_sample, invalid_reason"),
        (status = 404, body = crate::error::ErrorBody, description = "template_not_found"),
        (status = 409, body = crate::error::ErrorBody, description = "template_inactive, backfill_running"),
        (status = 503, body = crate::error::ErrorBody, description = "backfill_busy")),
    security(("bearer" = [])))]
pub async fn backfill_template(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<BackfillRequest>,
) -> ApiResult<Response> {
    // Checked whatever the request does with it, as the document's maxLength says.
    check_reason(b.reason.as_deref())?;
    if b.dry_run {
        let req = PreviewRequest {
            since: b.since,
            sample: b.sample.map(|s| s as usize),
            reuse: b.reuse,
        };
        let p = backfill::preview(&state, &id, &req).await?;
        return Ok(Json(p).into_response());
    }
    let queued_job = backfill::start(&state, &id, b.start("api")).await?;
    Ok(queued(BackfillView::of(queued_job, Utc::now())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackfillQuery {
    /// Only this template's backfills.
    pub template: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Rows to skip (use `next_offset` of the previous page).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub offset: Option<u64>,
}

/// Backfills, newest first.
#[utoipa::path(get, path = "/backfills", tag = "backfills", params(BackfillQuery),
    responses((status = 200, body = ListBody<BackfillBody>), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_backfills(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<BackfillQuery>,
) -> ApiResult<Json<ListBody<BackfillView>>> {
    let page = super::dto::page(q.limit, q.offset)?;
    let found = backfill::list(&state, q.template.as_deref(), page).await?;
    Ok(Json(ListBody {
        data: found.items,
        next_offset: found.next_offset,
    }))
}

/// A backfill: state, phase, events scanned, learners done, awards made, percent and ETA.
#[utoipa::path(get, path = "/backfills/{id}", tag = "backfills", params(("id" = String, Path)),
    responses((status = 200, body = BackfillBody), (status = 404, body = crate::error::ErrorBody, description = "backfill_not_found")),
    security(("bearer" = [])))]
pub async fn get_backfill(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillView>> {
    Ok(Json(backfill::get(&state, &id).await?))
}

/// Cancel a backfill: a queued one at once, a running one after its current step (what it
/// applied stays applied).
#[utoipa::path(post, path = "/backfills/{id}/cancel", tag = "backfills", params(("id" = String, Path)),
    responses((status = 200, body = BackfillBody),
        (status = 404, body = crate::error::ErrorBody, description = "backfill_not_found"),
        (status = 409, body = crate::error::ErrorBody, description = "backfill_finished")),
    security(("bearer" = [])))]
pub async fn cancel_backfill(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillView>> {
    Ok(Json(backfill::cancel(&state, &id).await?))
}

/// The OpenAPI shape of a backfill job (`BackfillView`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BackfillBody {
    id: String,
    template_id: String,
    #[schema(pattern = "^(queued|running|succeeded|failed|cancelled)$")]
    state: String,
    #[schema(pattern = "^(scanning|applying)$")]
    phase: String,
    since: Option<DateTime<Utc>>,
    revoke: bool,
    reason: String,
    requested_by: String,
    events_scanned: i64,
    events_total: i64,
    learners_total: i64,
    learners_done: i64,
    awards_made: i64,
    revocations_made: i64,
    cancel_requested: bool,
    phase_started_at: Option<DateTime<Utc>>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 100)]
    percent: u8,
    eta_seconds: Option<u64>,
}

/// The OpenAPI shape of a preview ([`Preview`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PreviewBody {
    template_id: String,
    since: Option<DateTime<Utc>>,
    events_scanned: u64,
    events_matched: u64,
    learners: u64,
    would_hold: u64,
    to_award: u64,
    to_revoke: u64,
    unchanged: u64,
    not_reawardable: u64,
    manual_kept: u64,
    holders_without_events: u64,
    samples: SamplesBody,
    inbox_until: i64,
    fresh_scan: bool,
    elapsed_ms: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SamplesBody {
    to_award: Vec<SampleBody>,
    to_revoke: Vec<SampleBody>,
    unchanged: Vec<SampleBody>,
    not_reawardable: Vec<SampleBody>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SampleBody {
    learner: String,
    completed_by: Option<CompletingEventBody>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CompletingEventBody {
    event_id: String,
    time: DateTime<Utc>,
}
