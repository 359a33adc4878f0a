//! Badge templates: the list with search and filters (organization, origin, active, Credly
//! state shown per row) and server-side pagination, so it stays fast with tens of thousands of
//! templates. Only Credly templates have a Credly state: local ones show none, and filtering on
//! a Credly state lists Credly templates only. A template's page also changes its award expiry
//! and its Open Badges criteria text (small forms, CSRF-checked like the others).

use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin};
use accolade_store::{Page, StoreError, TemplateFilter, TemplatePatch};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::pages::{error_page, pager, render_with, unavailable, PER_PAGE};
use super::session::Admin;
use crate::service::credly::orgs;
use crate::service::templates;
use crate::state::AppState;

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
    /// Credly's state of the template (`active`, `inactive`, …).
    #[serde(default)]
    state: String,
    #[serde(default)]
    offset: u64,
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub origin: &'static str,
    pub org: String,
    /// Credly's state of the template; `None` for a local template, which has none.
    pub credly_state: Option<String>,
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
    pub state: String,
    /// (id, name) of every organization, for the filter.
    pub orgs: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub first: u64,
    pub last: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
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
        provider_state: Some(q.state.trim().to_string()).filter(|s| !s.is_empty()),
    };
    let page = Page::new(Some(PER_PAGE), Some(q.offset));
    let store = &*state.store;
    let (templates, orgs) =
        match tokio::try_join!(templates::list(store, &filter, page), orgs::list(store)) {
            Ok(v) => v,
            Err(e) => {
                return unavailable("templates page: cannot read the database", e);
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
            credly_state: (t.origin == Origin::Credly).then(|| t.provider_state.clone()),
            active: t.is_active,
            updated: t.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect();
    let (prev, next) = pager(
        "/admin/templates",
        &[
            ("q", &q.q),
            ("origin", &q.origin),
            ("active", &q.active),
            ("org", &q.org),
            ("state", &q.state),
        ],
        q.offset,
        templates.next_offset,
    );
    let first = if rows.is_empty() { 0 } else { q.offset + 1 };
    let last = q.offset + rows.len() as u64;
    let page = TemplatesPage {
        username: admin.session.username,
        csrf: admin.session.csrf_token,
        prev,
        next,
        orgs: orgs.into_iter().map(|o| (o.id, o.name)).collect(),
        q: q.q,
        origin: q.origin,
        active: q.active,
        org: q.org,
        state: q.state,
        rows,
        first,
        last,
    };
    render_with(StatusCode::OK, &page)
}

/// One requirement or penalty as the detail page lists it.
pub struct RuleSet {
    pub id: String,
    pub group: String,
    pub event_type: String,
    pub description: String,
    /// `path op value` lines; empty means "every event of this type".
    pub rules: Vec<String>,
    /// For penalties: the requirements they reset (group and description).
    pub resets: Vec<String>,
}

/// What a form on the template page left to show: a message, and the explain result.
#[derive(Default)]
pub struct Extras {
    pub notice: Option<(bool, String)>,
    pub explain: Option<super::requirements::Explain>,
    /// The sample event as pasted (kept in the explain box).
    pub sample: String,
}

#[derive(Template)]
#[template(path = "admin/template.html")]
pub struct DetailPage {
    pub username: String,
    pub csrf: String,
    pub t: accolade_domain::template::Template,
    pub org_name: String,
    /// A Credly template: the page shows its Credly section (a local one has no Credly state).
    pub credly: bool,
    pub credly_url: Option<String>,
    pub requirements: Vec<RuleSet>,
    pub penalties: Vec<RuleSet>,
    pub groups: String,
    /// What switching the template on or off will do, in words.
    pub consequence: String,
    pub notice: Option<(bool, String)>,
    /// Requirement ids with their labels (delete buttons, penalty checkboxes).
    pub requirement_ids: Vec<(String, String)>,
    /// Event types offered by the forms.
    pub event_types: Vec<String>,
    /// Key-path suggestions from the event schemas.
    pub key_paths: Vec<String>,
    /// The group a new requirement gets when none is chosen.
    pub next_group: String,
    pub operators: &'static [&'static str],
    pub explain: Option<super::requirements::Explain>,
    pub sample: String,
}

/// A data rule as the pages show it: `path op value`.
pub(super) fn rule_text(r: &DataRule) -> String {
    format!("{} {} {}", r.path, r.operator, r.value)
        .trim_end()
        .to_string()
}

fn rules_text(rules: &[DataRule]) -> Vec<String> {
    rules.iter().map(rule_text).collect()
}

pub async fn detail_page(state: &AppState, admin: Admin, id: &str, extras: Extras) -> Response {
    let config = match templates::get(&*state.store, id).await {
        Ok(c) => c,
        Err(StoreError::NotFound { .. }) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "There is no badge template with this id.",
            )
        }
        Err(e) => {
            return unavailable("template page: cannot read the template", e);
        }
    };
    let t = config.template;
    let org_name = match &t.organization_id {
        Some(org) => orgs::name_or_id(&*state.store, org).await,
        None => String::new(),
    };
    let by_id: std::collections::HashMap<&str, String> = config
        .requirements
        .iter()
        .map(|r| {
            let label = if r.description.is_empty() {
                r.event_type.clone()
            } else {
                r.description.clone()
            };
            (r.id.as_str(), format!("{}: {label}", r.group))
        })
        .collect();
    let mut letters: Vec<String> = config
        .requirements
        .iter()
        .map(|r| r.group.to_string())
        .collect();
    letters.sort();
    letters.dedup();
    let consequence = if t.is_active {
        "Deactivating stops matching new events against this template. Badges already awarded stay awarded; progress is kept for when it is activated again.".to_string()
    } else if config.requirements.is_empty() {
        "This template has no requirements yet: once active, no event can complete it. Add requirements first.".to_string()
    } else {
        format!(
            "Activating starts matching new events against {} requirement(s) in group(s) {}: a learner who fulfils one requirement of every group is awarded the badge{}.",
            config.requirements.len(),
            letters.join(", "),
            if t.origin == Origin::Credly { ", which is then issued on Credly" } else { "" }
        )
    };
    let next_group = Group::next_free(config.requirements.iter().map(|r| r.group))
        .map_or_else(|_| String::new(), |g| g.to_string());
    let requirement_ids = config
        .requirements
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                by_id.get(r.id.as_str()).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let status = match &extras.notice {
        Some((false, _)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let page = DetailPage {
        requirement_ids,
        event_types: state.config.events.types.clone(),
        key_paths: super::requirements::key_paths(&state.config),
        next_group,
        operators: super::requirements::OPERATORS,
        explain: extras.explain,
        sample: extras.sample,
        username: admin.session.username,
        csrf: admin.session.csrf_token,
        credly: t.origin == Origin::Credly,
        credly_url: t.organization_id.as_ref().map(|org| {
            format!(
                "https://www.credly.com/mgmt/organizations/{org}/badges/templates/{}/details",
                t.id
            )
        }),
        org_name,
        requirements: config
            .requirements
            .iter()
            .map(|r| RuleSet {
                id: r.id.clone(),
                group: r.group.to_string(),
                event_type: r.event_type.clone(),
                description: r.description.clone(),
                rules: rules_text(&r.rules),
                resets: Vec::new(),
            })
            .collect(),
        penalties: config
            .penalties
            .iter()
            .map(|p| RuleSet {
                id: p.id.clone(),
                group: String::new(),
                event_type: p.event_type.clone(),
                description: p.description.clone(),
                rules: rules_text(&p.rules),
                resets: p
                    .requirement_ids
                    .iter()
                    .map(|id| {
                        by_id
                            .get(id.as_str())
                            .cloned()
                            .unwrap_or_else(|| id.clone())
                    })
                    .collect(),
            })
            .collect(),
        groups: letters.join(", "),
        consequence,
        notice: extras.notice,
        t,
    };
    render_with(status, &page)
}

/// `GET /admin/templates/{id}`
pub async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    detail_page(&state, admin, &id, Extras::default()).await
}

/// `POST /admin/templates/{id}/active` with `active=true|false` (the confirmed switch).
pub async fn set_active(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    super::session::AdminForm {
        admin,
        fields: form,
    }: super::session::AdminForm,
) -> Response {
    let active = match super::forms::one(&form, "active") {
        "true" => true,
        "false" => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The form must say active=true or active=false.",
            )
        }
    };
    if active && super::forms::one(&form, "backfill") == "1" {
        let req = match super::backfill::start_request(&form, &admin.session.username) {
            Ok(r) => r,
            Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
        };
        return match crate::service::backfill::activate(&state, &id, Some(req)).await {
            Ok((_, Some(b))) => {
                tracing::info!(template = %id, backfill = %b.backfill.id, by = %admin.session.username, "template activated with a backfill from the admin UI");
                axum::response::Redirect::to(&format!("/admin/backfills/{}", b.backfill.id))
                    .into_response()
            }
            Ok((_, None)) => {
                axum::response::Redirect::to(&format!("/admin/templates/{id}")).into_response()
            }
            Err(crate::service::backfill::BackfillError::Store(StoreError::NotFound {
                ..
            })) => error_page(
                StatusCode::NOT_FOUND,
                "There is no badge template with this id.",
            ),
            Err(e) => error_page(StatusCode::CONFLICT, &e.to_string()),
        };
    }
    match templates::set_active(&*state.store, &id, active).await {
        Ok(t) => {
            tracing::info!(template = %t.id, active, by = %admin.session.username, "template switched from the admin UI");
            let notice = if active {
                "Activated: new events are matched from now on."
            } else {
                "Deactivated: issued badges are kept."
            };
            detail_page(
                &state,
                admin,
                &id,
                Extras {
                    notice: Some((true, notice.to_string())),
                    ..Extras::default()
                },
            )
            .await
        }
        Err(StoreError::NotFound { .. }) => error_page(
            StatusCode::NOT_FOUND,
            "There is no badge template with this id.",
        ),
        Err(e) => unavailable("cannot switch the template", e),
    }
}

/// Saves one field of the template from its page: the change, or the reason it was refused as
/// a notice (422); an unknown template is a 404 page.
async fn save(
    state: &AppState,
    admin: Admin,
    id: &str,
    patch: Result<TemplatePatch, String>,
    done: &str,
) -> Response {
    let notice = match patch {
        Err(why) => (false, why),
        Ok(patch) => match templates::update(&*state.store, id, patch).await {
            Ok(t) => {
                tracing::info!(template = %t.id, by = %admin.session.username, "{done} from the admin UI");
                (true, format!("{done}."))
            }
            Err(StoreError::NotFound { .. }) => {
                return error_page(
                    StatusCode::NOT_FOUND,
                    "There is no badge template with this id.",
                )
            }
            Err(StoreError::Domain(e)) => (false, e.to_string()),
            Err(e) => return unavailable("cannot change the template", e),
        },
    };
    detail_page(
        state,
        admin,
        id,
        Extras {
            notice: Some(notice),
            ..Extras::default()
        },
    )
    .await
}

/// `POST /admin/templates/{id}/expiry` with `expires_after` (`365d`, `12h`, …; empty: never).
/// Applies to awards made from then on.
pub async fn set_expiry(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    super::session::AdminForm {
        admin,
        fields: form,
    }: super::session::AdminForm,
) -> Response {
    let patch = match super::forms::one(&form, "expires_after").trim() {
        "" => Ok(None),
        text => ExpiresAfter::parse(text)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
    .map(|e| TemplatePatch {
        expires_after: Some(e),
        ..TemplatePatch::default()
    });
    let done = match &patch {
        Ok(TemplatePatch {
            expires_after: Some(Some(e)),
            ..
        }) => format!("Expiry saved: awards made from now on expire {e} after they are earned"),
        _ => "Expiry removed: awards made from now on never expire".to_string(),
    };
    save(&state, admin, &id, patch, &done).await
}

/// `POST /admin/templates/{id}/criteria` with `criteria` (Markdown; empty: written from the
/// requirements).
pub async fn set_criteria(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    super::session::AdminForm {
        admin,
        fields: form,
    }: super::session::AdminForm,
) -> Response {
    // Browsers send line breaks in a textarea as CRLF.
    let text = super::forms::one(&form, "criteria").replace("\r\n", "\n");
    let patch = accolade_domain::expiry::criteria(Some(text))
        .map(|c| TemplatePatch {
            criteria: Some(c),
            ..TemplatePatch::default()
        })
        .map_err(|e| e.to_string());
    save(&state, admin, &id, patch, "Criteria saved").await
}
