//! Award pages: the list (state, external id and state, timeline, revoke with a reason) and one
//! award's page with its outbox jobs, where a failed delivery or revocation is retried by hand.

use accolade_domain::award::{Award, AwardState};
use accolade_store::{AwardFilter, Page, StoreError};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::forms::one;
use super::ops::{when, JobRow};
use super::pages::{error_page, pager, render_with, PER_PAGE};
use super::session::{Admin, AdminForm};
use crate::service::awards::{self, AwardError, AwardWithJobs, ChangedBy};
use crate::service::{jobs, templates};
use crate::state::AppState;

fn unavailable(e: impl std::fmt::Display) -> Response {
    super::pages::unavailable("admin award page: cannot read the database", e)
}

/// A notice shown above a page: (success, text).
type Notice = Option<(bool, String)>;

fn status_of(notice: &Notice) -> StatusCode {
    match notice {
        Some((false, _)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    }
}

/// Earned, awarded, issued and revoked (with the reason), as lines.
fn timeline(a: &Award) -> Vec<String> {
    let mut lines = vec![
        format!("earned {}", when(Some(a.earned_at))),
        format!("awarded {}", when(Some(a.awarded_at))),
    ];
    if let Some(t) = a.issued_at {
        lines.push(format!("issued {}", when(Some(t))));
    }
    if let Some(t) = a.revoked_at {
        lines.push(format!(
            "revoked {}: {}",
            when(Some(t)),
            a.revoke_reason.clone().unwrap_or_default()
        ));
    }
    lines.extend(super::ops::expiry_line(a, Utc::now()));
    lines
}

fn external(a: &Award) -> String {
    match (&a.external_id, &a.external_state) {
        (Some(id), Some(s)) => format!("{id} ({s})"),
        (Some(id), None) => id.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    }
}

// ---- list ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct AwardQuery {
    #[serde(default)]
    learner: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    offset: u64,
}

/// One award as the list and the award's page show it.
pub struct AwardRow {
    pub id: String,
    pub learner: String,
    pub template: String,
    pub template_id: String,
    pub episode: i64,
    pub state: &'static str,
    pub revocable: bool,
    pub timeline: Vec<String>,
    pub external: String,
    /// The completing event; empty for a manual award.
    pub event_id: String,
}

impl AwardRow {
    fn of(a: Award, template: String) -> AwardRow {
        AwardRow {
            template,
            external: external(&a),
            timeline: timeline(&a),
            revocable: a.state != AwardState::Revoked,
            state: a.state.as_str(),
            event_id: a.event_id.unwrap_or_default(),
            id: a.id,
            learner: a.learner,
            template_id: a.template_id,
            episode: a.episode,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/awards.html")]
pub struct AwardsPage {
    pub username: String,
    pub csrf: String,
    pub learner: String,
    pub state: String,
    pub rows: Vec<AwardRow>,
    pub notice: Notice,
    pub prev: Option<String>,
    pub next: Option<String>,
}

async fn list_page(state: &AppState, admin: Admin, q: AwardQuery, notice: Notice) -> Response {
    let filter = AwardFilter {
        learner: Some(q.learner.trim().to_string()).filter(|s| !s.is_empty()),
        template_id: None,
        state: AwardState::parse(&q.state),
    };
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let awards = match awards::list(&*state.store, &filter, page).await {
        Ok(a) => a,
        Err(e) => return unavailable(e),
    };
    // A page holds at most PER_PAGE awards of usually few templates: one lookup per template.
    let ids: Vec<&str> = awards
        .items
        .iter()
        .map(|a| a.template_id.as_str())
        .collect();
    let names = templates::names(&*state.store, &ids).await;
    let rows = awards
        .items
        .into_iter()
        .map(|a| {
            let template = names.get(&a.template_id).cloned().unwrap_or_default();
            AwardRow::of(a, template)
        })
        .collect();
    let (prev, next) = pager(
        "/admin/awards",
        &[("learner", &q.learner), ("state", &q.state)],
        q.offset,
        awards.next_offset,
    );
    render_with(
        status_of(&notice),
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
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<AwardQuery>,
) -> Response {
    list_page(&state, admin, q, None).await
}

// ---- one award ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/award.html")]
pub struct AwardPage {
    pub username: String,
    pub csrf: String,
    pub award: AwardRow,
    pub jobs: Vec<JobRow>,
    /// True when a job is dead or waiting for a retry: the retry button is offered.
    pub retryable: bool,
    /// The award's Open Badges 3.0 credential, once signed.
    pub credential: Option<CredentialLinks>,
    pub notice: Notice,
}

/// Where an award's signed Open Badges credential is served.
pub struct CredentialLinks {
    /// The credential document (JSON-LD).
    pub json_url: String,
    /// The learner's public badge page.
    pub page_url: String,
}

/// The links to an award's credential, when it has one (none while it waits to be signed or
/// when issuing is off; a failed read is logged and shows none rather than failing the page).
async fn credential_of(state: &AppState, award_id: &str) -> Option<CredentialLinks> {
    let ids = [award_id.to_string()];
    match crate::service::openbadges::public::credential_links(state, &ids).await {
        Ok(links) => links.get(award_id).map(|credential_id| CredentialLinks {
            json_url: state.openbadges.credential_url(credential_id),
            page_url: state.openbadges.badge_page_url(credential_id),
        }),
        Err(e) => {
            tracing::warn!(award = %award_id, error = %e, "admin award page: cannot read its credential");
            None
        }
    }
}

async fn award_page(state: &AppState, admin: Admin, id: &str, notice: Notice) -> Response {
    let AwardWithJobs { award, jobs } = match awards::with_jobs(&*state.store, id).await {
        Ok(a) => a,
        Err(StoreError::NotFound { .. }) => {
            return error_page(StatusCode::NOT_FOUND, "There is no award with this id.")
        }
        Err(e) => return unavailable(e),
    };
    let template = templates::name_or_id(&*state.store, &award.template_id).await;
    let now = Utc::now();
    let retryable = jobs.iter().any(|j| jobs::is_waiting(j, now));
    let jobs: Vec<JobRow> = jobs.into_iter().map(JobRow::from).collect();
    let credential = credential_of(state, &award.id).await;
    render_with(
        status_of(&notice),
        &AwardPage {
            username: admin.session.username,
            csrf: admin.session.csrf_token,
            retryable,
            jobs,
            credential,
            award: AwardRow::of(award, template),
            notice,
        },
    )
}

/// `GET /admin/awards/{id}`: the award, its timeline and its outbox jobs.
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    admin: Admin,
) -> Response {
    award_page(&state, admin, &id, None).await
}

/// `POST /admin/awards/{id}/retry`: makes the award's dead (or backing-off) jobs due now.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, fields: _ }: AdminForm,
) -> Response {
    let retried: Vec<String> = match jobs::retry_waiting_of_award(&*state.store, &id).await {
        Ok(j) => j.into_iter().map(|j| j.kind).collect(),
        Err(e) => return unavailable(e),
    };
    let notice = if retried.is_empty() {
        (false, "This award has no failed job to retry.".to_string())
    } else {
        tracing::info!(award = %id, admin = %admin.session.username, jobs = ?retried, "award jobs retried by hand");
        (true, format!("Retrying now: {}.", retried.join(", ")))
    };
    award_page(&state, admin, &id, Some(notice)).await
}

/// `POST /admin/awards/{id}/revoke` with a reason; answers with the page the form was on (the
/// list, or the award's page when `back=award`).
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let by = ChangedBy::Admin(&admin.session.username);
    let notice = match awards::revoke(&*state.store, &id, one(&form, "reason"), by).await {
        Ok(a) => (
            true,
            format!(
                "Revoked the award of {} (episode {}).",
                a.learner, a.episode
            ),
        ),
        Err(e @ AwardError::InvalidReason) => (false, e.to_string()),
        Err(AwardError::Store(StoreError::NotFound { .. })) => {
            return error_page(StatusCode::NOT_FOUND, "There is no award with this id.")
        }
        Err(AwardError::Store(e @ StoreError::Conflict { .. })) => (false, e.to_string()),
        Err(e) => return unavailable(e),
    };
    if one(&form, "back") == "award" {
        award_page(&state, admin, &id, Some(notice)).await
    } else {
        let q = AwardQuery {
            learner: one(&form, "learner").to_string(),
            ..Default::default()
        };
        list_page(&state, admin, q, Some(notice)).await
    }
}
