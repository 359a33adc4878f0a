//! Credly organizations: the list with each one's authentication (key expiry, or OAuth client),
//! rotation state and last sync; the add form (UUID and either an API key or OAuth client
//! credentials, checked with Credly before anything is stored); replacing credentials;
//! rotating a key through Credly now; and sync of one or several selected organizations with
//! the summary of what changed (seed 000's admin flow).

use accolade_store::{CredlyAuthMethod, CredlyOrganization};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;

use super::forms::one;
use super::pages::{render_with, unavailable};
use super::session::{Admin, AdminForm};
use crate::config::CredlyConfig;
use crate::error::ApiError;
use crate::service::credly::orgs::CredentialsInput;
use crate::service::credly::{orgs, rotation, sync};
use crate::state::AppState;

/// One organization row.
pub struct OrgView {
    pub id: String,
    pub name: String,
    /// Whether it authenticates with a key (else OAuth client credentials).
    pub token: bool,
    /// `key …abcd` or `OAuth client …wxyz`.
    pub credential: String,
    /// The key's expiry date, or "no expiry (OAuth client)".
    pub expires: String,
    pub days_left: i64,
    pub level: &'static str,
    /// "off", or when automatic rotation will replace the key.
    pub auto_rotation: String,
    /// The last rotation through Credly ("never" when none).
    pub last_rotation: String,
    /// `ok`, `bad` or "" (none), for the style of `last_rotation`.
    pub last_rotation_class: &'static str,
    /// A rotation is under way.
    pub rotating: bool,
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

fn when(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn view(o: CredlyOrganization, config: &CredlyConfig) -> OrgView {
    let now = Utc::now();
    let token = o.auth_method == CredlyAuthMethod::Token;
    let k = o
        .key_expires_at
        .map(|at| orgs::key_status(at, now, &config.key_warning_days));
    let days = config.auto_rotate_days;
    let auto_rotation = match (
        token,
        o.key_expires_at
            .and_then(|at| rotation::scheduled_at(at, days)),
    ) {
        (false, _) => "not applicable (OAuth client)".to_string(),
        (true, None) => "off".to_string(),
        (true, Some(at)) if at <= now => {
            format!("on: due now (fewer than {days} days left), at the next hourly check")
        }
        (true, Some(at)) => format!(
            "on: will rotate after {} (when fewer than {days} days are left)",
            when(at)
        ),
    };
    let (last_rotation, last_rotation_class) = match &o.last_rotation {
        None => ("never".to_string(), ""),
        Some(r) => (
            format!(
                "{} {}, {}{}",
                when(r.at),
                if r.trigger == accolade_store::RotationTrigger::Auto {
                    "(automatic)"
                } else {
                    "(manual)"
                },
                if r.ok {
                    "new token stored"
                } else {
                    "failed: the old token stays"
                },
                r.detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            if r.ok { "ok" } else { "bad" },
        ),
    };
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
        last_sync_at: o.last_sync_at.map_or_else(|| "never".into(), when),
        expires: o.key_expires_at.map_or_else(
            || "no expiry (OAuth client)".into(),
            |at| at.format("%Y-%m-%d").to_string(),
        ),
        days_left: k.as_ref().map_or(0, |k| k.days_left),
        level: k.map_or("ok", |k| k.level),
        credential: match o.auth_method {
            CredlyAuthMethod::Token => format!("key …{}", o.api_key_last4.unwrap_or_default()),
            CredlyAuthMethod::OAuth => {
                format!(
                    "OAuth client …{}",
                    o.oauth_client_id_last4.unwrap_or_default()
                )
            }
        },
        rotating: o.rotation_lease_until.is_some_and(|t| t > now),
        token,
        auto_rotation,
        last_rotation,
        last_rotation_class,
        id: o.id,
        name: o.name,
    }
}

/// The credentials typed into a form, for the method chosen with its radio button: the other
/// method's fields must be empty (they are sent even when hidden).
fn form_credentials(form: &[(String, String)]) -> CredentialsInput {
    let field = |name: &str| Some(one(form, name).trim().to_string()).filter(|v| !v.is_empty());
    let (api_key, client_id, client_secret) =
        (field("api_key"), field("client_id"), field("client_secret"));
    match one(form, "auth_method") {
        "oauth" => CredentialsInput {
            // A key typed as well makes the input mixed, which is refused with its reason.
            api_key,
            client_id: client_id.or(Some(String::new())),
            client_secret: client_secret.or(Some(String::new())),
        },
        _ => CredentialsInput {
            api_key: api_key.or(Some(String::new())),
            client_id,
            client_secret,
        },
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
                    .map(|o| view(o, &state.config.credly))
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
    let added = match form_credentials(&form).parse() {
        Ok(credentials) => orgs::add(&state.credly, &*state.store, &id, credentials).await,
        Err(e) => Err(e),
    };
    let notice = match added {
        Ok(org) => Notice {
            ok: true,
            text: format!("Added {} ({}).", org.name, described(&org)),
        },
        Err(e) => failure(e),
    };
    let keep = if notice.ok { String::new() } else { id };
    page(&state, admin, vec![notice], keep).await
}

/// How an organization's credentials are described in a notice (never the secrets).
fn described(org: &CredlyOrganization) -> String {
    match (org.auth_method, org.key_expires_at) {
        (CredlyAuthMethod::Token, Some(at)) => format!(
            "key ending {}, expires {}",
            org.api_key_last4.as_deref().unwrap_or(""),
            at.format("%Y-%m-%d")
        ),
        _ => format!(
            "OAuth client ending {}",
            org.oauth_client_id_last4.as_deref().unwrap_or("")
        ),
    }
}

/// `POST /admin/credly/{id}/key` (replace the credentials with ones typed in)
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let replaced = match form_credentials(&form).parse() {
        Ok(credentials) => {
            orgs::replace_credentials(&state.credly, &*state.store, &id, credentials).await
        }
        Err(e) => Err(e),
    };
    let notice = match replaced {
        Ok(org) => Notice {
            ok: true,
            text: format!("New credentials for {} ({}).", org.name, described(&org)),
        },
        Err(e) => failure(e),
    };
    page(&state, admin, vec![notice], String::new()).await
}

/// `POST /admin/credly/{id}/rotate` (rotate the key through Credly now)
pub async fn rotate_now(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Response {
    let name = orgs::name_or_id(&*state.store, &id).await;
    let notice = match rotation::rotate_now(&state.credly, &*state.store, &id).await {
        Ok(org) => Notice {
            ok: true,
            text: format!(
                "Rotated the token of {} through Credly: {}. The old token no longer works.",
                org.name,
                described(&org)
            ),
        },
        Err(e) => {
            let mut n = failure(e);
            n.text = format!("{name}: rotation failed, the old token stays: {}", n.text);
            n
        }
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
