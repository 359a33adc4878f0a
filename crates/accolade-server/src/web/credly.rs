//! Credly organizations: the list with key expiry and last sync, the add form (UUID + API key,
//! checked with Credly before anything is stored), key rotation, and sync of one or several
//! selected organizations with the summary of what changed (seed 000's admin flow).

use accolade_store::CredlyOrganization;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::forms::one;
use super::pages::{render_with, unavailable};
use super::session::{Admin, AdminForm};
use crate::error::ApiError;
use crate::service::credly::{orgs, sync};
use crate::state::AppState;

/// One organization row.
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub last4: String,
    pub expires: String,
    pub days_left: i64,
    pub level: &'static str,
    pub last_sync_at: String,
    pub last_sync: String,
    /// Credly's dashboard page of the organization.
    pub credly_url: String,
}

/// What the last action did, shown above the list.
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

#[derive(Template)]
#[template(path = "admin/credly.html")]
pub struct CredlyPage {
    pub username: String,
    pub csrf: String,
    pub orgs: Vec<OrgView>,
    pub notices: Vec<Notice>,
    /// The organization id typed into the add form (kept after an error; never the key).
    pub new_id: String,
}

fn view(o: CredlyOrganization, warn_days: &[i64]) -> OrgView {
    let k = orgs::key_status(o.key_expires_at, Utc::now(), warn_days);
    OrgView {
        credly_url: format!(
            "https://www.credly.com/mgmt/organizations/{}/badges/templates",
            o.id
        ),
        last_sync: o.last_sync.map_or_else(String::new, |s| {
            format!(
                "{} created, {} updated, {} deactivated, {} unchanged ({} pages)",
                s.created, s.updated, s.deactivated, s.unchanged, s.pages
            )
        }),
        last_sync_at: o.last_sync_at.map_or_else(
            || "never".into(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        expires: o.key_expires_at.format("%Y-%m-%d").to_string(),
        days_left: k.days_left,
        level: k.level,
        id: o.id,
        name: o.name,
        last4: o.api_key_last4,
    }
}

async fn page(state: &AppState, admin: Admin, notices: Vec<Notice>, new_id: String) -> Response {
    let status = if notices.iter().any(|n| !n.ok) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    match orgs::list(&*state.store).await {
        Ok(list) => render_with(
            status,
            &CredlyPage {
                username: admin.session.username,
                csrf: admin.session.csrf_token,
                orgs: list
                    .into_iter()
                    .map(|o| view(o, &state.config.credly.key_warning_days))
                    .collect(),
                notices,
                new_id,
            },
        ),
        Err(e) => unavailable("credly page: cannot list organizations", e),
    }
}

/// The message an operator needs from a failed Credly action (code and precise detail).
fn failure(e: crate::service::credly::CredlyFailure) -> Notice {
    let e = ApiError::from(e);
    Notice {
        ok: false,
        text: format!("{} ({})", e, e.code()),
    }
}

/// `GET /admin/credly`
pub async fn list(State(state): State<AppState>, admin: Admin) -> Response {
    page(&state, admin, Vec::new(), String::new()).await
}

/// `POST /admin/credly` (add an organization)
pub async fn add(
    State(state): State<AppState>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let id = one(&form, "organization_id").trim().to_string();
    let key = one(&form, "api_key").trim().to_string();
    let notice = match orgs::add(&state.credly, &*state.store, &id, &key).await {
        Ok(org) => Notice {
            ok: true,
            text: format!(
                "Added {} (key ending {}, expires {}).",
                org.name,
                org.api_key_last4,
                org.key_expires_at.format("%Y-%m-%d")
            ),
        },
        Err(e) => failure(e),
    };
    let keep = if notice.ok { String::new() } else { id };
    page(&state, admin, vec![notice], keep).await
}

/// `POST /admin/credly/{id}/key` (rotate the key)
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let key = one(&form, "api_key").trim().to_string();
    let notice = match orgs::rotate_key(&state.credly, &*state.store, &id, &key).await {
        Ok(org) => Notice {
            ok: true,
            text: format!(
                "New key for {} (ending {}, expires {}).",
                org.name,
                org.api_key_last4,
                org.key_expires_at.format("%Y-%m-%d")
            ),
        },
        Err(e) => failure(e),
    };
    page(&state, admin, vec![notice], String::new()).await
}

/// `POST /admin/credly/sync` (the selected organizations, one after the other)
pub async fn sync_selected(
    State(state): State<AppState>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let dry_run = one(&form, "dry_run") == "1";
    let selected: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "org")
        .map(|(_, v)| v.as_str())
        .collect();
    if selected.is_empty() {
        let notice = Notice {
            ok: false,
            text: "Select at least one organization to sync.".into(),
        };
        return page(&state, admin, vec![notice], String::new()).await;
    }
    let mut notices = Vec::new();
    for org in selected {
        let name = orgs::name_or_id(&*state.store, org).await;
        notices.push(match sync::sync_org(&state.credly, &*state.store, org, dry_run).await {
            Ok(s) => Notice {
                ok: true,
                text: format!(
                    "{}{name}: {} created (inactive), {} updated, {} deactivated, {} unchanged, {} page(s) read.",
                    if dry_run { "Dry run, nothing saved. " } else { "" },
                    s.created, s.updated, s.deactivated, s.unchanged, s.pages
                ),
            },
            Err(e) => {
                let mut n = failure(e);
                n.text = format!("{name}: {}", n.text);
                n
            }
        });
    }
    page(&state, admin, notices, String::new()).await
}
