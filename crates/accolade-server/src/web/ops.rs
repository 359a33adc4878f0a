//! Operations pages: awards (state, external id and state, timeline, revoke with a reason),
//! outbox jobs (dead ones retried by hand) and events (recent, and rejected with reasons). All
//! lists are paged in the database.

use std::collections::HashMap;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::JobStatus;
use accolade_store::{AwardFilter, JobFilter, ManualChange, Page, StoreError};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::one;
use super::pages::{error_page, pager, render_with, PER_PAGE};
use super::session::{Admin, AdminForm};
use crate::state::AppState;

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn unavailable(e: StoreError) -> Response {
    super::pages::unavailable("admin page: cannot read the database", e)
}

// ---- awards -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct AwardQuery {
    #[serde(default)]
    learner: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    offset: u64,
}

pub struct AwardRow {
    pub id: String,
    pub learner: String,
    pub template: String,
    pub template_id: String,
    pub episode: i64,
    pub state: &'static str,
    pub revocable: bool,
    /// Timeline lines: earned, awarded, issued, revoked (with the reason).
    pub timeline: Vec<String>,
    pub external: String,
}

#[derive(Template)]
#[template(path = "admin/awards.html")]
pub struct AwardsPage {
    pub username: String,
    pub csrf: String,
    pub learner: String,
    pub state: String,
    pub rows: Vec<AwardRow>,
    pub notice: Option<(bool, String)>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

async fn awards_page(
    state: &AppState,
    admin: Admin,
    q: AwardQuery,
    notice: Option<(bool, String)>,
) -> Response {
    let filter = AwardFilter {
        learner: Some(q.learner.trim().to_string()).filter(|s| !s.is_empty()),
        template_id: None,
        state: AwardState::parse(&q.state),
    };
    let awards = match state
        .store
        .list_awards(&filter, Page::new(Some(PER_PAGE), Some(q.offset)))
        .await
    {
        Ok(a) => a,
        Err(e) => return unavailable(e),
    };
    let mut names: HashMap<String, String> = HashMap::new();
    for a in &awards.items {
        if !names.contains_key(&a.template_id) {
            let name = state
                .store
                .get_template(&a.template_id)
                .await
                .map_or_else(|_| a.template_id.clone(), |t| t.template.name);
            names.insert(a.template_id.clone(), name);
        }
    }
    let rows = awards
        .items
        .into_iter()
        .map(|a| {
            let mut timeline = vec![
                format!("earned {}", when(Some(a.earned_at))),
                format!("awarded {}", when(Some(a.awarded_at))),
            ];
            if let Some(t) = a.issued_at {
                timeline.push(format!("issued {}", when(Some(t))));
            }
            if let Some(t) = a.revoked_at {
                timeline.push(format!(
                    "revoked {}: {}",
                    when(Some(t)),
                    a.revoke_reason.clone().unwrap_or_default()
                ));
            }
            AwardRow {
                template: names.get(&a.template_id).cloned().unwrap_or_default(),
                external: match (&a.external_id, &a.external_state) {
                    (Some(id), Some(s)) => format!("{id} ({s})"),
                    (Some(id), None) => id.clone(),
                    (None, Some(s)) => s.clone(),
                    (None, None) => String::new(),
                },
                revocable: a.state != AwardState::Revoked,
                state: a.state.as_str(),
                id: a.id,
                learner: a.learner,
                template_id: a.template_id,
                episode: a.episode,
                timeline,
            }
        })
        .collect();
    let (prev, next) = pager(
        "/admin/awards",
        &[("learner", &q.learner), ("state", &q.state)],
        q.offset,
        awards.next_offset,
    );
    let status = match &notice {
        Some((false, _)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    render_with(
        status,
        &AwardsPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            learner: q.learner,
            state: q.state,
            rows,
            notice,
            prev,
            next,
        },
    )
}

/// `GET /admin/awards`
pub async fn awards(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AwardQuery>,
) -> Response {
    awards_page(&state, admin, q, None).await
}

/// `POST /admin/awards/{id}/revoke` with a reason.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let reason = match crate::api::awards::reason(one(&form, "reason")) {
        Ok(r) => format!("{r} (by {} in the admin UI)", admin.session.username),
        Err(e) => {
            return awards_page(
                &state,
                admin,
                AwardQuery::default(),
                Some((false, e.to_string())),
            )
            .await
        }
    };
    let notice = match state
        .store
        .revoke_award(
            &id,
            ManualChange {
                reason,
                at: crate::api::awards::now_micros(),
            },
        )
        .await
    {
        Ok(a) => {
            crate::metrics::manual_revoke();
            (
                true,
                format!(
                    "Revoked the award of {} (episode {}).",
                    a.learner, a.episode
                ),
            )
        }
        Err(StoreError::NotFound { .. }) => {
            return error_page(StatusCode::NOT_FOUND, "There is no award with this id.")
        }
        Err(e @ StoreError::Conflict { .. }) => (false, e.to_string()),
        Err(e) => return unavailable(e),
    };
    let q = AwardQuery {
        learner: one(&form, "learner").to_string(),
        ..Default::default()
    };
    awards_page(&state, admin, q, Some(notice)).await
}

// ---- jobs ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    offset: u64,
}

pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub status: &'static str,
    pub attempts: i64,
    pub run_at: String,
    pub last_error: String,
    pub retryable: bool,
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
pub struct JobsPage {
    pub username: String,
    pub csrf: String,
    pub status: String,
    pub rows: Vec<JobRow>,
    pub notice: Option<(bool, String)>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

async fn jobs_page(
    state: &AppState,
    admin: Admin,
    q: JobQuery,
    notice: Option<(bool, String)>,
) -> Response {
    let filter = JobFilter {
        status: JobStatus::parse(&q.status),
        kind: None,
    };
    let jobs = match state
        .store
        .list_jobs(&filter, Page::new(Some(PER_PAGE), Some(q.offset)))
        .await
    {
        Ok(j) => j,
        Err(e) => return unavailable(e),
    };
    let rows = jobs
        .items
        .into_iter()
        .map(|j| JobRow {
            retryable: matches!(j.status, JobStatus::Dead | JobStatus::Pending),
            status: j.status.as_str(),
            id: j.id,
            kind: j.kind,
            attempts: j.attempts,
            run_at: when(Some(j.run_at)),
            last_error: j.last_error.unwrap_or_default(),
        })
        .collect();
    let (prev, next) = pager(
        "/admin/jobs",
        &[("status", &q.status)],
        q.offset,
        jobs.next_offset,
    );
    render_with(
        StatusCode::OK,
        &JobsPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            status: q.status,
            rows,
            notice,
            prev,
            next,
        },
    )
}

/// `GET /admin/jobs`
pub async fn jobs(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<JobQuery>,
) -> Response {
    jobs_page(&state, admin, q, None).await
}

/// `POST /admin/jobs/{id}/retry`
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let notice = match state.store.retry_job(&id).await {
        Ok(j) => (true, format!("Job {} is due again now.", j.id)),
        Err(StoreError::NotFound { .. }) => {
            return error_page(StatusCode::NOT_FOUND, "There is no job with this id.")
        }
        Err(e @ StoreError::Conflict { .. }) => (false, e.to_string()),
        Err(e) => return unavailable(e),
    };
    let q = JobQuery {
        status: one(&form, "status").to_string(),
        offset: 0,
    };
    jobs_page(&state, admin, q, Some(notice)).await
}

// ---- events -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    learner: String,
    #[serde(default)]
    offset: u64,
}

pub struct EventRow {
    pub id: String,
    pub event_type: String,
    pub learner: String,
    pub time: String,
    pub received: String,
}

pub struct RejectedRow {
    pub event_id: String,
    pub event_type: String,
    pub code: String,
    pub detail: String,
    pub source: String,
    pub received: String,
}

#[derive(Template)]
#[template(path = "admin/events.html")]
pub struct EventsPage {
    pub username: String,
    pub csrf: String,
    pub learner: String,
    pub rows: Vec<EventRow>,
    pub rejected: Vec<RejectedRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// `GET /admin/events`: recent accepted events (optionally of one learner) and the latest
/// rejected ones with their reasons.
pub async fn events(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<EventQuery>,
) -> Response {
    let learner = Some(q.learner.trim().to_string()).filter(|s| !s.is_empty());
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let (events, rejected) = match tokio::try_join!(
        state.store.list_events(learner.as_deref(), page),
        state.store.list_rejected(Page::new(Some(20), None))
    ) {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let (prev, next) = pager(
        "/admin/events",
        &[("learner", &q.learner)],
        q.offset,
        events.next_offset,
    );
    render_with(
        StatusCode::OK,
        &EventsPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            learner: q.learner,
            rows: events
                .items
                .into_iter()
                .map(|e| EventRow {
                    id: e.id,
                    event_type: e.event_type,
                    learner: e.learner,
                    time: when(Some(e.time)),
                    received: when(Some(e.received_at)),
                })
                .collect(),
            rejected: rejected
                .items
                .into_iter()
                .map(|r| RejectedRow {
                    event_id: r.event_id.unwrap_or_default(),
                    event_type: r.event_type.unwrap_or_default(),
                    code: r.code,
                    detail: r.detail.chars().take(300).collect(),
                    source: r.source,
                    received: when(Some(r.received_at)),
                })
                .collect(),
            prev,
            next,
        },
    )
}

// ---- progress -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct ProgressQuery {
    #[serde(default)]
    learner: String,
}

#[derive(Template)]
#[template(path = "admin/progress.html")]
pub struct ProgressPage {
    pub username: String,
    pub csrf: String,
    pub learner: String,
    /// None before a learner was asked for.
    pub view: Option<crate::service::progress::ProgressView>,
    pub missing: bool,
}

/// `GET /admin/progress?learner=…`: per template, which requirements the learner fulfilled and
/// by which event.
pub async fn progress(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<ProgressQuery>,
) -> Response {
    let learner = q.learner.trim().to_string();
    let (view, missing) = if learner.is_empty() {
        (None, false)
    } else {
        match crate::service::progress::for_learner(&*state.store, &learner).await {
            Ok(v) => (Some(v), false),
            Err(StoreError::NotFound { .. }) => (None, true),
            Err(e) => return unavailable(e),
        }
    };
    render_with(
        if missing {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        },
        &ProgressPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            learner,
            view,
            missing,
        },
    )
}

// ---- webhook deliveries -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct DeliveryQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    offset: u64,
}

pub struct DeliveryRow {
    pub id: String,
    pub webhook: String,
    pub event: String,
    pub event_type: String,
    pub status: &'static str,
    pub attempts: i64,
    pub last: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "admin/deliveries.html")]
pub struct DeliveriesPage {
    pub username: String,
    pub csrf: String,
    pub status: String,
    pub rows: Vec<DeliveryRow>,
    pub notice: Option<(bool, String)>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

async fn deliveries_page(
    state: &AppState,
    admin: Admin,
    q: DeliveryQuery,
    notice: Option<(bool, String)>,
) -> Response {
    use accolade_domain::webhook::DeliveryStatus;
    let filter = accolade_store::DeliveryFilter {
        webhook_id: None,
        status: DeliveryStatus::parse(&q.status),
    };
    let list = match state
        .store
        .list_webhook_deliveries(&filter, Page::new(Some(PER_PAGE), Some(q.offset)))
        .await
    {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let rows = list
        .items
        .into_iter()
        .map(|d| DeliveryRow {
            last: match (d.last_status, &d.last_error) {
                (Some(code), _) => format!(
                    "HTTP {code}{}",
                    d.last_response_ms
                        .map_or_else(String::new, |ms| format!(" in {ms} ms"))
                ),
                (None, Some(e)) => e.chars().take(200).collect(),
                (None, None) => String::new(),
            },
            next: when(d.next_attempt_at),
            status: d.status.as_str(),
            id: d.id,
            webhook: d.webhook_id,
            event: d.event_id,
            event_type: d.event_type,
            attempts: d.attempts,
        })
        .collect();
    let (prev, next) = pager(
        "/admin/webhooks",
        &[("status", &q.status)],
        q.offset,
        list.next_offset,
    );
    render_with(
        StatusCode::OK,
        &DeliveriesPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            status: q.status,
            rows,
            notice,
            prev,
            next,
        },
    )
}

/// `GET /admin/webhooks`: the delivery log of outbound webhooks.
pub async fn deliveries(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<DeliveryQuery>,
) -> Response {
    deliveries_page(&state, admin, q, None).await
}

/// `POST /admin/webhooks/{id}/replay`: sends the delivery's event again (a new delivery).
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, fields: _ }: AdminForm,
) -> Response {
    let notice = match state.store.replay_webhook_delivery(&id, Utc::now()).await {
        Ok(d) => (true, format!("Replaying the event as delivery {}.", d.id)),
        Err(StoreError::NotFound { .. }) => {
            return error_page(StatusCode::NOT_FOUND, "There is no delivery with this id.")
        }
        Err(e @ StoreError::Conflict { .. }) => (false, e.to_string()),
        Err(e) => return unavailable(e),
    };
    deliveries_page(&state, admin, DeliveryQuery::default(), Some(notice)).await
}
