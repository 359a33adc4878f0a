//! Badge templates: the list with search and filters (organization, origin, active, Credly
//! state shown per row) and server-side pagination, so it stays fast with tens of thousands of
//! templates.

use accolade_domain::template::Origin;
use accolade_store::{Page, TemplateFilter};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::pages::{error_page, render_with};
use super::session::Admin;
use crate::state::AppState;

/// Rows per page.
const PER_PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    offset: u64,
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub origin: &'static str,
    pub org: String,
    pub provider_state: String,
    pub active: bool,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "admin/templates.html")]
pub struct TemplatesPage {
    pub username: String,
    pub csrf: String,
    pub q: String,
    pub origin: String,
    pub active: String,
    pub org: String,
    /// (id, name) of every organization, for the filter.
    pub orgs: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub first: u64,
    pub last: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// The list URL for the same filters at another offset.
fn link(q: &ListQuery, offset: u64) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &q.q),
        ("origin", &q.origin),
        ("active", &q.active),
        ("org", &q.org),
    ] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if offset > 0 {
        s.append_pair("offset", &offset.to_string());
    }
    let query = s.finish();
    if query.is_empty() {
        "/admin/templates".into()
    } else {
        format!("/admin/templates?{query}")
    }
}

/// `GET /admin/templates`
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(q): Query<ListQuery>,
) -> Response {
    // Unknown filter values are ignored rather than refused: this is a page a person edits.
    let filter = TemplateFilter {
        origin: match q.origin.as_str() {
            "local" => Some(Origin::Local),
            "credly" => Some(Origin::Credly),
            _ => None,
        },
        active: match q.active.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        search: Some(q.q.trim().to_string()).filter(|s| !s.is_empty()),
        organization_id: Some(q.org.clone()).filter(|s| !s.is_empty()),
    };
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let (templates, orgs) = match tokio::try_join!(
        state.store.list_templates(&filter, page),
        state.store.list_credly_orgs()
    ) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "templates page: cannot read the database");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not available; try again shortly.",
            );
        }
    };
    let names: std::collections::HashMap<&str, &str> = orgs
        .iter()
        .map(|o| (o.id.as_str(), o.name.as_str()))
        .collect();
    let rows: Vec<Row> = templates
        .items
        .iter()
        .map(|t| Row {
            id: t.id.clone(),
            name: t.name.clone(),
            origin: t.origin.as_str(),
            org: t
                .organization_id
                .as_deref()
                .map(|id| names.get(id).copied().unwrap_or(id).to_string())
                .unwrap_or_default(),
            provider_state: t.provider_state.clone(),
            active: t.is_active,
            updated: t.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect();
    let first = if rows.is_empty() { 0 } else { q.offset + 1 };
    let last = q.offset + rows.len() as u64;
    let page = TemplatesPage {
        username: admin.session.username,
        csrf: admin.session.csrf_token,
        prev: (q.offset > 0).then(|| link(&q, q.offset.saturating_sub(PER_PAGE as u64))),
        next: templates.next_offset.map(|o| link(&q, o)),
        orgs: orgs.into_iter().map(|o| (o.id, o.name)).collect(),
        q: q.q,
        origin: q.origin,
        active: q.active,
        org: q.org,
        rows,
        first,
        last,
    };
    render_with(StatusCode::OK, &page)
}
