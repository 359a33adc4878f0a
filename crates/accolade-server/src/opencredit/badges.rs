//! Badges (the credit definitions): create, update (`POST /badges/{id}`, as Open Credit does),
//! get, list, delete, and the badges a member created.
//!
//! Only `description`, `criteria` and `evidence_prompt` accept rich text (seed 001): illegal
//! tags or attributes are refused with a 400 naming them, an over-long value is cut with its
//! tags closed, and answers strip every tag unless the request sends `X-Allow-Html: 1`. Every
//! other field refuses markup. Badge data is never cacheable (`Cache-Control: no-store`).

use accolade_opencredit::images::{ImageKind, Limits};
use accolade_opencredit::richtext;
use accolade_store::{OcBadge, OcBadgeFields};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::envelope::{Caching, OcError, OcResult, Ok, Paging};
use super::media;
use super::members::{base_url, paging};
use super::params::Params;
use crate::state::AppState;

pub const MAX_TITLE: usize = 128;
pub const MAX_SHORT_DESCRIPTION: usize = 128;
pub const MAX_RICH: usize = 500;
/// Open Credit's longest expiry (about 51 years), in seconds.
pub const MAX_EXPIRES_IN: i64 = 1_609_462_800;
const RICH_FIELDS: [&str; 3] = ["description", "criteria", "evidence_prompt"];

pub fn limits(state: &AppState) -> Limits {
    Limits {
        max_bytes: state.config.opencredit.max_image_bytes,
        max_side: state.config.opencredit.max_image_side,
        max_pixels: state.config.opencredit.max_image_pixels,
    }
}

pub fn badge_json(b: &OcBadge, allow_html: bool, base: &str) -> Value {
    let rich = |s: &str| {
        if allow_html {
            s.to_string()
        } else {
            richtext::strip(s)
        }
    };
    let f = &b.fields;
    json!({
        "id": b.id,
        "member_id": b.member_id,
        "title": f.title,
        "short_description": f.short_description,
        "description": rich(&f.description),
        "criteria": rich(&f.criteria),
        "evidence_prompt": rich(&f.evidence_prompt),
        "image_url": f.image.as_deref().map(|n| media::url(base, ImageKind::Badge, n)),
        "expires_in": f.expires_in,
        "categories": f.categories.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
        "is_giveable": f.is_giveable,
        "template_id": f.template_id,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    })
}

/// The id of a local rules-engine template (the badge then stands for it: its awards become
/// member badges); 400 for unknown ids and Credly templates.
async fn local_template(state: &AppState, id: &str) -> OcResult<String> {
    let unknown = || {
        OcError::field(
            "template_id",
            "UNKNOWN_TEMPLATE",
            "is not the id of a local badge template",
        )
    };
    match state.store.get_template(id).await {
        Result::Ok(t) if t.template.origin == accolade_domain::template::Origin::Local => {
            Result::Ok(t.template.id)
        }
        Result::Ok(_) | Err(accolade_store::StoreError::NotFound { .. }) => Err(unknown()),
        Err(e) => Err(e.into()),
    }
}

/// Applies the given parameters to `f` (absent ones keep their value).
async fn apply_fields(
    state: &AppState,
    ctx: &Ctx,
    params: &Params,
    f: &mut OcBadgeFields,
    image_required: bool,
) -> OcResult<()> {
    if let Some(t) = params.plain("title", MAX_TITLE)? {
        f.title = t;
    }
    if f.title.is_empty() {
        return Err(OcError::field("title", "MISSING_PARAMETER", "is required"));
    }
    if let Some(s) = params.plain("short_description", MAX_SHORT_DESCRIPTION)? {
        f.short_description = s;
    }
    for field in RICH_FIELDS {
        if let Some(v) = params.get(field) {
            let stored = richtext::sanitize(v, MAX_RICH).map_err(|e| {
                let mut err = OcError::field(field, "ILLEGAL_HTML", e.to_string());
                err.more_info = json!({ field: e.to_string(), "illegal_tags": e.tags, "illegal_attributes": e.attributes });
                err
            })?;
            match field {
                "description" => f.description = stored,
                "criteria" => f.criteria = stored,
                _ => f.evidence_prompt = stored,
            }
        }
    }
    if let Some(n) = params.int("expires_in")? {
        if !(0..=MAX_EXPIRES_IN).contains(&n) {
            return Err(OcError::field(
                "expires_in",
                "INVALID_PARAMETER",
                format!("must be between 0 (never) and {MAX_EXPIRES_IN} seconds"),
            ));
        }
        f.expires_in = n;
    }
    if let Some(c) = params.plain("categories", 1000)? {
        f.categories = c
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",");
    }
    if let Some(g) = params.bool("is_giveable")? {
        f.is_giveable = g;
    }
    if let Some(t) = params.get("template_id") {
        // Linking makes the badge's creator the giver of every award of the template (with the
        // learners' addresses): only the operator's own, Enterprise apps may do it.
        if ctx.tier != accolade_opencredit::tiers::Tier::Enterprise {
            return Err(OcError::forbidden(
                "TEMPLATE_LINK_NOT_ALLOWED",
                "only Enterprise apps may link a badge to a rules-engine template",
            ));
        }
        f.template_id = if t.is_empty() {
            None
        } else {
            Some(local_template(state, t).await?)
        };
    }
    let limits = limits(state);
    match media::upload(params, "attachment", limits)? {
        Some(bytes) => {
            let store = &state.opencredit.media;
            let workers = &state.opencredit.images;
            f.image = Some(
                media::store(
                    workers,
                    store,
                    ImageKind::Badge,
                    bytes,
                    limits,
                    "attachment",
                )
                .await?,
            );
        }
        None if image_required => {
            return Err(OcError::field(
                "attachment",
                "MISSING_PARAMETER",
                "an image is required (multipart file or base64 string)",
            ))
        }
        None => {}
    }
    Result::Ok(())
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let owner = ctx.acting(&state, &params).await?;
        let mut fields = OcBadgeFields {
            is_giveable: true,
            ..OcBadgeFields::default()
        };
        apply_fields(&state, &ctx, &params, &mut fields, true).await?;
        let badge = state.store.oc_create_badge(owner, fields).await?;
        Result::Ok(Ok::new(json!(badge.id), Caching::NoStore))
    }
    .await;
    ctx.finish(result)
}

async fn owned(state: &AppState, ctx: &Ctx, id: &str) -> OcResult<OcBadge> {
    let id = super::params::parse_id(id, "badge")?;
    let badge = state
        .store
        .oc_badge(id)
        .await?
        .ok_or_else(|| OcError::not_found("badge"))?;
    if !ctx.may_manage(state, badge.member_id).await? {
        return Err(OcError::forbidden(
            "NOT_OWNER",
            "only the member that created the badge (or a user managing it) may change it",
        ));
    }
    Result::Ok(badge)
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let badge = owned(&state, &ctx, &id).await?;
        let mut fields = badge.fields.clone();
        apply_fields(&state, &ctx, &params, &mut fields, false).await?;
        let badge = state.store.oc_update_badge(badge.id, fields).await?;
        Result::Ok(Ok::new(json!(badge.id), Caching::NoStore))
    }
    .await;
    ctx.finish(result)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let id = super::params::parse_id(&id, "badge")?;
        let badge = state
            .store
            .oc_badge(id)
            .await?
            .ok_or_else(|| OcError::not_found("badge"))?;
        Result::Ok(Ok::new(
            badge_json(&badge, ctx.allow_html, &base_url(&state)),
            Caching::NoStore,
        ))
    }
    .await;
    ctx.finish(result)
}

async fn list_of(state: &AppState, ctx: &Ctx, params: &Params, member: Option<i64>) -> OcResult {
    let (page, number) = paging(params)?;
    let (badges, total) = state.store.oc_list_badges(member, page).await?;
    let base = base_url(state);
    Result::Ok(Ok::list(
        badges
            .iter()
            .map(|b| badge_json(b, ctx.allow_html, &base))
            .collect(),
        Paging {
            page: number,
            per_page: u64::from(page.limit),
            total_results: total,
        },
        Caching::NoStore,
    ))
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let member = params.int("member_id")?;
        list_of(&state, &ctx, &params, member).await
    }
    .await;
    ctx.finish(result)
}

pub async fn created(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let member = ctx.acting(&state, &params).await?;
        list_of(&state, &ctx, &params, Some(member)).await
    }
    .await;
    ctx.finish(result)
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let badge = owned(&state, &ctx, &id).await?;
        state.store.oc_delete_badge(badge.id).await?;
        Result::Ok(Ok::new(json!(badge.id), Caching::NoStore))
    }
    .await;
    ctx.finish(result)
}
