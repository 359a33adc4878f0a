//! The pages: askama templates under `templates/admin/` (HTML-escaped by default, so names and
//! descriptions from the database or from Credly cannot inject markup) and their handlers.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::session::Admin;
use crate::service::credly::orgs::{self, key_status};
use crate::service::stats;
use crate::state::AppState;

/// Renders a template, or a plain 500 if rendering fails (a bug, logged).
fn render(t: &impl Template) -> Response {
    render_with(StatusCode::OK, t)
}

/// Renders a template with the given status.
pub fn render_with(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response()
        }
    }
}

macro_rules! page {
    ($t:ty) => {
        impl IntoResponse for $t {
            fn into_response(self) -> Response {
                render(&self)
            }
        }
    };
}

#[derive(Template)]
#[template(path = "admin/login.html")]
pub struct LoginPage<'a> {
    pub csrf: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}
page!(LoginPage<'_>);

#[derive(Template)]
#[template(path = "admin/error.html")]
pub struct ErrorPage<'a> {
    pub status: u16,
    pub message: &'a str,
}
page!(ErrorPage<'_>);

/// A short page explaining why a request was refused.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        ErrorPage {
            status: status.as_u16(),
            message,
        },
    )
        .into_response()
}

/// The page shown when the database fails; the error is logged with `context`, not shown.
pub fn unavailable(context: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{context}");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is not available; try again shortly.",
    )
}

/// Rows per page of every admin list.
pub const PER_PAGE: u32 = 50;

/// Previous/next links of a list at `offset` whose next page starts at `next`, keeping the
/// non-empty filters of `query`.
pub fn pager(
    base: &str,
    query: &[(&str, &str)],
    offset: u64,
    next: Option<u64>,
) -> (Option<String>, Option<String>) {
    let link = |o: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
            s.append_pair(k, v);
        }
        if o > 0 {
            s.append_pair("offset", &o.to_string());
        }
        let q = s.finish();
        if q.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{q}")
        }
    };
    (
        (offset > 0).then(|| link(offset.saturating_sub(PER_PAGE as u64))),
        next.map(link),
    )
}

/// One Credly organization as the dashboard shows it.
pub struct OrgRow {
    pub id: String,
    pub name: String,
    /// Days until the key expires; `None` for OAuth client credentials (no known expiry).
    pub days_left: Option<i64>,
    pub level: &'static str,
    pub last_sync: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
pub struct Dashboard {
    pub username: String,
    pub csrf: String,
    pub events: i64,
    pub awards_active: i64,
    pub awards_revoked: i64,
    pub outbox_pending: i64,
    pub outbox_dead: i64,
    pub orgs: Vec<OrgRow>,
    /// Organizations whose key expires within the warning window or has expired.
    pub expiring: Vec<String>,
}
page!(Dashboard);

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "never".to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// `GET /admin`
pub async fn dashboard(State(state): State<AppState>, admin: Admin) -> Response {
    let store = &*state.store;
    let (stats, orgs) = match tokio::try_join!(stats::read(store), orgs::list(store)) {
        Ok(v) => v,
        Err(e) => {
            return unavailable("dashboard: cannot read the database", e);
        }
    };
    let now = Utc::now();
    let warn_days = &state.config.credly.key_warning_days;
    let orgs: Vec<OrgRow> = orgs
        .into_iter()
        .map(|o| {
            let k = o.key_expires_at.map(|at| key_status(at, now, warn_days));
            OrgRow {
                id: o.id,
                name: o.name,
                days_left: k.as_ref().map(|k| k.days_left),
                level: k.map_or("ok", |k| k.level),
                last_sync: when(o.last_sync_at),
            }
        })
        .collect();
    let expiring = orgs
        .iter()
        .filter(|o| o.level != "ok")
        .map(|o| {
            format!(
                "{} ({} days left)",
                o.name,
                o.days_left.unwrap_or_default().max(0)
            )
        })
        .collect();
    Dashboard {
        username: admin.session.username,
        csrf: admin.session.csrf_token,
        events: stats.events,
        awards_active: stats.awards_active,
        awards_revoked: stats.awards_revoked,
        outbox_pending: stats.outbox_pending,
        outbox_dead: stats.outbox_dead,
        orgs,
        expiring,
    }
    .into_response()
}
