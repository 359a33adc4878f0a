//! Operations pages: outbox jobs (dead ones retried by hand), events (recent, and rejected with
//! reasons), progress per learner and webhook deliveries. All lists are paged in the database.
//! Awards have their own module, [`super::awards`].

use accolade_domain::outbox::{Job, JobStatus};
use accolade_domain::webhook::DeliveryStatus;
use accolade_store::{DeliveryFilter, JobFilter, Page, StoreError};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::one;
use super::pages::{error_page, pager, render_with, PER_PAGE};
use super::session::{Admin, AdminForm};
use crate::service::webhooks::deliveries;
use crate::service::{events, jobs, progress};
use crate::state::AppState;

pub(super) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// An award's expiry as a line of its timeline (award list and page): "expired …" once it has
/// passed, "expires …" before; none for an award that never expires or was revoked before.
pub(super) fn expiry_line(a: &accolade_domain::award::Award, now: DateTime<Utc>) -> Option<String> {
    let at = a.expires_at?;
    if a.is_expired(now) {
        Some(format!("expired {}", when(Some(at))))
    } else if a.revoked_at.is_none() {
        Some(format!("expires {}", when(Some(at))))
    } else {
        None
    }
}

fn unavailable(e: StoreError) -> Response {
    super::pages::unavailable("admin page: cannot read the database", e)
}

// ---- jobs ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    offset: u64,
}

/// One outbox job as the jobs page and an award's page show it.
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub status: &'static str,
    pub attempts: i64,
    pub run_at: String,
    pub last_error: String,
    pub retryable: bool,
}

impl From<Job> for JobRow {
    fn from(j: Job) -> JobRow {
        JobRow {
            retryable: matches!(j.status, JobStatus::Dead | JobStatus::Pending),
            status: j.status.as_str(),
            id: j.id,
            kind: j.kind,
            attempts: j.attempts,
            run_at: when(Some(j.run_at)),
            last_error: j.last_error.unwrap_or_default(),
        }
    }
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
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let jobs = match jobs::list(&*state.store, &filter, page).await {
        Ok(j) => j,
        Err(e) => return unavailable(e),
    };
    let rows = jobs.items.into_iter().map(JobRow::from).collect();
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
    let notice = match jobs::retry(&*state.store, &id).await {
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
    /// `rejected` lists rejected events; anything else the received ones.
    #[serde(default)]
    show: String,
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
    /// True on the rejected tab.
    pub rejected_tab: bool,
    pub rows: Vec<EventRow>,
    pub rejected: Vec<RejectedRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// `GET /admin/events`: received events, newest first (optionally of one learner), or with
/// `show=rejected` the rejected ones with their codes and reasons. Both paged in the database.
pub async fn events(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<EventQuery>,
) -> Response {
    let rejected_tab = q.show == "rejected";
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let (rows, rejected, next_offset) = if rejected_tab {
        let list = match events::rejected(&*state.store, page).await {
            Ok(l) => l,
            Err(e) => return unavailable(e),
        };
        let rows = list
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
            .collect();
        (Vec::new(), rows, list.next_offset)
    } else {
        let learner = Some(q.learner.trim().to_string()).filter(|s| !s.is_empty());
        let list = match events::list(&*state.store, learner.as_deref(), page).await {
            Ok(l) => l,
            Err(e) => return unavailable(e),
        };
        let rows = list
            .items
            .into_iter()
            .map(|e| EventRow {
                id: e.id,
                event_type: e.event_type,
                learner: e.learner,
                time: when(Some(e.time)),
                received: when(Some(e.received_at)),
            })
            .collect();
        (rows, Vec::new(), list.next_offset)
    };
    let (prev, next) = pager(
        "/admin/events",
        &[("learner", &q.learner), ("show", &q.show)],
        q.offset,
        next_offset,
    );
    render_with(
        StatusCode::OK,
        &EventsPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            learner: q.learner,
            rejected_tab,
            rows,
            rejected,
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
    pub view: Option<progress::ProgressView>,
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
        match progress::for_learner(&*state.store, &learner).await {
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
    let filter = DeliveryFilter {
        webhook_id: None,
        status: DeliveryStatus::parse(&q.status),
    };
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let list = match deliveries::list(&*state.store, &filter, page).await {
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
    let notice = match deliveries::replay(&*state.store, &id).await {
        Ok(d) => (true, format!("Replaying the event as delivery {}.", d.id)),
        Err(StoreError::NotFound { .. }) => {
            return error_page(StatusCode::NOT_FOUND, "There is no delivery with this id.")
        }
        Err(e @ StoreError::Conflict { .. }) => (false, e.to_string()),
        Err(e) => return unavailable(e),
    };
    deliveries_page(&state, admin, DeliveryQuery::default(), Some(notice)).await
}
