//! Backfills in the admin UI (docs/backfill.md): a template's backfill preview with the form
//! that runs it, a backfill's progress page (refreshing itself while it runs, with Cancel), and
//! the requirement editor's live count ("would hold this badge now"), which the page's script
//! (`static/admin.js`) asks for as the add-requirement form is edited.

use accolade_domain::template::{Group, Requirement, TemplateConfig};
use accolade_store::StoreError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::forms::one;
use super::pages::{error_page, render_with, unavailable};
use super::session::{Admin, AdminForm};
use crate::service::backfill::{
    self, BackfillError, BackfillView, Preview, PreviewRequest, Sample, StartRequest,
};
use crate::service::templates;
use crate::state::AppState;

/// The editor's script, compiled into the binary.
const SCRIPT: &str = include_str!("../../static/admin.js");

/// `GET /admin/static/admin.js`
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "admin/backfill_preview.html")]
pub struct PreviewPage {
    pub username: String,
    pub csrf: String,
    pub template_id: String,
    pub name: String,
    pub active: bool,
    pub since: Option<String>,
    pub p: Preview,
    pub sample_lists: Vec<(&'static str, Vec<Sample>)>,
}

fn refused(e: BackfillError) -> Response {
    match e {
        BackfillError::Store(StoreError::NotFound { .. }) => error_page(
            StatusCode::NOT_FOUND,
            "There is no badge template or backfill with this id.",
        ),
        BackfillError::Store(e) => unavailable("backfill page: cannot read the database", e),
        BackfillError::Busy => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Another preview is reading the stored events; try again in a few seconds.",
        ),
        other => error_page(StatusCode::UNPROCESSABLE_ENTITY, &other.to_string()),
    }
}

/// `GET /admin/templates/{id}/backfill`: the preview, and the form that runs the backfill.
pub async fn preview(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let since = match q.get("since").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "The start time must be RFC 3339, e.g. 2026-01-01T00:00:00Z.",
                )
            }
        },
    };
    let cfg = match templates::get(&*state.store, &id).await {
        Ok(c) => c,
        Err(e) => return refused(e.into()),
    };
    let req = PreviewRequest {
        since,
        sample: Some(10),
        reuse: true,
    };
    let p = match backfill::preview(&state, &id, &req).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let sample_lists = vec![
        ("would be awarded", p.samples.to_award.clone()),
        ("would lose it (when revoking)", p.samples.to_revoke.clone()),
        ("hold it and would", p.samples.unchanged.clone()),
        (
            "qualify but may not earn it again",
            p.samples.not_reawardable.clone(),
        ),
    ];
    render_with(
        StatusCode::OK,
        &PreviewPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            template_id: id,
            name: cfg.template.name,
            active: cfg.template.is_active,
            since: since.map(|s| s.to_rfc3339()),
            p,
            sample_lists,
        },
    )
}

/// The backfill options of a form (`since`, `revoke`, `reason`).
pub fn start_request(form: &[(String, String)], admin: &str) -> Result<StartRequest, String> {
    let since = match one(form, "since").trim() {
        "" => None,
        s => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    "The start time must be RFC 3339, e.g. 2026-01-01T00:00:00Z.".to_string()
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(StartRequest {
        since,
        revoke: one(form, "revoke") == "1",
        reason: one(form, "reason").trim().to_string(),
        requested_by: format!("admin:{admin}"),
    })
}

/// `POST /admin/templates/{id}/backfill`: queues the backfill and shows its progress.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, fields }: AdminForm,
) -> Response {
    let req = match start_request(&fields, &admin.session.username) {
        Ok(r) => r,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    match backfill::start(&state, &id, req).await {
        Ok(b) => Redirect::to(&format!("/admin/backfills/{}", b.id)).into_response(),
        Err(BackfillError::Store(StoreError::Conflict { detail, .. })) => {
            error_page(StatusCode::CONFLICT, &detail)
        }
        Err(e) => refused(e),
    }
}

#[derive(Template)]
#[template(path = "admin/backfill.html")]
pub struct ProgressPage {
    pub username: String,
    pub csrf: String,
    pub name: String,
    pub b: BackfillView,
    pub running: bool,
    pub notice: Option<(bool, String)>,
}

async fn progress_page(
    state: &AppState,
    admin: Admin,
    id: &str,
    notice: Option<(bool, String)>,
) -> Response {
    let b = match backfill::get(state, id).await {
        Ok(b) => b,
        Err(e) => return refused(e.into()),
    };
    let name = templates::name_or_id(&*state.store, &b.backfill.template_id).await;
    let running = !b.backfill.state.is_final();
    render_with(
        StatusCode::OK,
        &ProgressPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            name,
            b,
            running,
            notice,
        },
    )
}

/// `GET /admin/backfills/{id}`
pub async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    progress_page(&state, admin, &id, None).await
}

/// `POST /admin/backfills/{id}/cancel`
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Response {
    let notice = match backfill::cancel(&state, &id).await {
        Ok(_) => (
            true,
            "Cancellation asked for: the backfill stops after its current step.".to_string(),
        ),
        Err(StoreError::Conflict { detail, .. }) => (false, detail),
        Err(e) => return refused(e.into()),
    };
    progress_page(&state, admin, &id, Some(notice)).await
}

/// The template with the add-requirement form's draft added, when the form holds one (an event
/// type and valid rules); `Err` says why the draft cannot count.
fn with_draft(
    mut cfg: TemplateConfig,
    state: &AppState,
    form: &[(String, String)],
) -> Result<(TemplateConfig, bool), String> {
    let event_type = one(form, "event_type").trim();
    let has_rules = (1..=super::requirements::RULE_ROWS)
        .any(|i| !one(form, &format!("path_{i}")).trim().is_empty());
    if event_type.is_empty() || !(has_rules || one(form, "draft") == "1") {
        return Ok((cfg, false));
    }
    let event_type =
        crate::service::event_types::ConfiguredEventType::check(&state.config.events, event_type)
            .map_err(|_| format!("`{event_type}` is not a configured event type"))?;
    let rules = super::requirements::rules_from(form)?;
    let group = match one(form, "group").trim() {
        "" => {
            Group::next_free(cfg.requirements.iter().map(|r| r.group)).map_err(|e| e.to_string())?
        }
        g => Group::parse(g).map_err(|e| e.to_string())?,
    };
    cfg.requirements.push(Requirement {
        id: "draft".into(),
        template_id: cfg.template.id.clone(),
        key: None,
        event_type: event_type.as_str().to_string(),
        description: String::new(),
        group,
        rules,
    });
    Ok((cfg, true))
}

/// `POST /admin/templates/{id}/would-hold` (the add-requirement form's fields): how many
/// learners' stored events earn the badge under the current rules plus the draft requirement.
/// JSON for the page's script; a page with the count for a browser without it.
pub async fn would_hold(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    AdminForm { admin, fields }: AdminForm,
) -> Response {
    let json_wanted = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let cfg = match templates::get(&*state.store, &id).await {
        Ok(c) => c,
        Err(e) => return refused(e.into()),
    };
    let answer = match with_draft(cfg, &state, &fields) {
        Err(why) => Err((StatusCode::UNPROCESSABLE_ENTITY, why)),
        Ok((draft, with)) => match backfill::would_hold(&state, &draft).await {
            Ok(p) => Ok((p, with)),
            Err(BackfillError::Busy) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "busy: another preview is running".into(),
            )),
            Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        },
    };
    if json_wanted {
        return match answer {
            Ok((p, with)) => Json(json!({
                "would_hold": p.would_hold,
                "learners": p.learners,
                "events_scanned": p.events_scanned,
                "with_draft": with,
                "elapsed_ms": p.elapsed_ms,
            }))
            .into_response(),
            Err((status, why)) => (status, Json(json!({"error": why}))).into_response(),
        };
    }
    let notice = match answer {
        Ok((p, with)) => (
            true,
            format!(
                "{} this badge now: {} learners (of {} with events of its types).",
                if with {
                    "With this requirement, would hold"
                } else {
                    "Would hold"
                },
                p.would_hold,
                p.learners
            ),
        ),
        Err((_, why)) => (false, why),
    };
    super::templates::detail_page(
        &state,
        admin,
        &id,
        super::templates::Extras {
            notice: Some(notice),
            ..Default::default()
        },
    )
    .await
}
