//! Giving credit: member badges issued to a recipient address, listed, accepted, rejected and
//! deleted.
//!
//! Who sees a member badge's address: its recipient, and its giver only when the giver typed
//! that address (`email=`) or when it was given for an award (the operator's Enterprise app
//! linked the template, see `awards.rs`). Given to a `member_id`, the address is the member's
//! own, and showing it would let any member learn any other's address by giving them a badge
//! (issue 16, row 3).
//!
//! Seed 001: a member must verify an address before using it to give or receive credit. The
//! giving user's own address must be verified (also when giving for an organization it
//! manages), and a recipient accepts only through a verified address. Accepted member badges may
//! be cached within a session (`Cache-Control: private`); anything else is `no-store`.

use accolade_store::{NewOcMemberBadge, OcMemberBadge};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::badges::badge_json;
use super::ctx::Ctx;
use super::envelope::{Caching, OcError, OcResult, Ok, Paging};
use super::members::{base_url, paging};
use super::params::Params;
use crate::state::AppState;

const MAX_TESTIMONIAL: usize = 1000;
const MAX_EVIDENCE: usize = 2000;

/// A member badge as JSON; `show_email` only for its recipient and, as [`giver_knows_address`]
/// says, its giver (the public list of a member's badges must not reveal the member's
/// addresses).
async fn json_of(
    state: &AppState,
    ctx: &Ctx,
    mb: &OcMemberBadge,
    show_email: bool,
) -> OcResult<Value> {
    let badge = state.store.oc_badge(mb.badge_id).await?;
    Result::Ok(json!({
        "id": mb.id,
        "badge_id": mb.badge_id,
        "badge": badge.map(|b| badge_json(&b, ctx.allow_html, &base_url(state))),
        "giver_id": mb.giver_id,
        "email": show_email.then_some(mb.email.as_str()),
        "status": mb.status,
        "testimonial": mb.testimonial,
        "evidence": mb.evidence,
        "award_id": mb.award_id,
        "created_at": mb.created_at,
        "updated_at": mb.updated_at,
    }))
}

/// Whether the giver may be shown the recipient's address: the giver typed it, or the badge
/// was given for an award of a linked template. Not when given to a member id.
fn giver_knows_address(mb: &OcMemberBadge) -> bool {
    mb.addressed_by_email || mb.award_id.is_some()
}

fn not_verified(what: &str) -> OcError {
    OcError::forbidden(
        "EMAIL_NOT_VERIFIED",
        format!("{what} must be verified first: open the link sent to it"),
    )
}

pub async fn give(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let user = ctx.user()?;
        let giver = ctx.acting(&state, &params).await?;
        let own = user.email.as_deref().unwrap_or("");
        let verified = state
            .store
            .oc_email(own)
            .await?
            .is_some_and(|e| e.verified_at.is_some());
        if !verified {
            return Err(not_verified(&format!("the giver's address {own}")));
        }
        let badge_id = params
            .int("badge_id")?
            .ok_or_else(|| OcError::field("badge_id", "MISSING_PARAMETER", "is required"))?;
        let badge = state
            .store
            .oc_badge(badge_id)
            .await?
            .ok_or_else(|| OcError::not_found("badge"))?;
        if !badge.fields.is_giveable && !ctx.may_manage(&state, badge.member_id).await? {
            return Err(OcError::forbidden(
                "NOT_GIVEABLE",
                "only its creator may give this badge",
            ));
        }
        let addressed_by_email = params.non_empty("email").is_some();
        let email = match (params.non_empty("email"), params.int("member_id")?) {
            (Some(e), _) => {
                let e = e.to_lowercase();
                if e.parse::<lettre::Address>().is_err() {
                    return Err(OcError::field(
                        "email",
                        "INVALID_EMAIL",
                        "is not a valid email address",
                    ));
                }
                e
            }
            (None, Some(id)) => state
                .store
                .oc_member(id)
                .await?
                .and_then(|m| m.email)
                .ok_or_else(|| OcError::not_found("member"))?,
            (None, None) => {
                return Err(OcError::field(
                    "email",
                    "MISSING_PARAMETER",
                    "email or member_id is required",
                ))
            }
        };
        let given = state
            .store
            .oc_give(NewOcMemberBadge {
                badge_id,
                giver_id: giver,
                email: email.clone(),
                addressed_by_email,
                testimonial: params
                    .plain("testimonial", MAX_TESTIMONIAL)?
                    .unwrap_or_default(),
                evidence: params.plain("evidence", MAX_EVIDENCE)?.unwrap_or_default(),
            })
            .await?;
        if params.bool("notify")?.unwrap_or(false) {
            let body = format!(
                "You received the badge \"{}\". Sign in to accept it.",
                badge.fields.title
            );
            if let Err(e) = state
                .opencredit
                .mailer
                .send(&email, "You received a badge", body)
                .await
            {
                tracing::error!(error = %e, "cannot send the badge notification");
            }
        }
        Result::Ok(Ok::new(json!(given.id), Caching::NoStore))
    }
    .await;
    ctx.finish(result)
}

/// The member badge, if the user may see it: its giver (or a user managing the giver) or the
/// owner of its address.
async fn visible(state: &AppState, ctx: &Ctx, id: &str) -> OcResult<(OcMemberBadge, bool)> {
    let id = super::params::parse_id(id, "member badge")?;
    let mb = state
        .store
        .oc_member_badge(id)
        .await?
        .ok_or_else(|| OcError::not_found("member badge"))?;
    let user = ctx.user()?;
    // Only a verified address makes the user the recipient: an unverified one may be a claim
    // on somebody else's address.
    let recipient = state
        .store
        .oc_email(&mb.email)
        .await?
        .is_some_and(|e| e.member_id == user.id && e.verified_at.is_some());
    if recipient || ctx.may_manage(state, mb.giver_id).await? {
        Result::Ok((mb, recipient))
    } else {
        Err(OcError::not_found("member badge"))
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let (mb, recipient) = visible(&state, &ctx, &id).await?;
        let caching = if mb.status == "accepted" {
            Caching::PrivateSession
        } else {
            Caching::NoStore
        };
        let show_email = recipient || giver_knows_address(&mb);
        Result::Ok(Ok::new(
            json_of(&state, &ctx, &mb, show_email).await?,
            caching,
        ))
    }
    .await;
    ctx.finish(result)
}

async fn decide(state: &AppState, ctx: &Ctx, id: &str, status: &str) -> OcResult {
    let user = ctx.user()?;
    let member_badge_id = super::params::parse_id(id, "member badge")?;
    let mb = state
        .store
        .oc_member_badge(member_badge_id)
        .await?
        .ok_or_else(|| OcError::not_found("member badge"))?;
    let address = state.store.oc_email(&mb.email).await?;
    match address {
        // The user holds the address but has not verified it yet (seed 001: no credit
        // through an unverified address, rejecting included).
        Some(e) if e.member_id == user.id && e.verified_at.is_none() => {
            return Err(not_verified(&format!("the address {}", mb.email)));
        }
        Some(e) if e.member_id == user.id => {}
        _ if ctx.may_manage(state, mb.giver_id).await? => {
            return Err(OcError::forbidden(
                "NOT_RECIPIENT",
                "only the recipient may accept or reject a badge",
            ));
        }
        _ => return Err(OcError::not_found("member badge")),
    }
    let mb = state
        .store
        .oc_set_member_badge_status(mb.id, status)
        .await?;
    Result::Ok(Ok::new(
        json!({"id": mb.id, "status": mb.status}),
        Caching::NoStore,
    ))
}

pub async fn accept(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    ctx.finish(decide(&state, &ctx, &id, "accepted").await)
}

pub async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    ctx.finish(decide(&state, &ctx, &id, "rejected").await)
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let (mb, _) = visible(&state, &ctx, &id).await?;
        state.store.oc_delete_member_badge(mb.id).await?;
        Result::Ok(Ok::new(json!(mb.id), Caching::NoStore))
    }
    .await;
    ctx.finish(result)
}

async fn list(
    state: &AppState,
    ctx: &Ctx,
    params: &Params,
    member: i64,
    status: Option<&str>,
    show_email: bool,
) -> OcResult {
    let (page, number) = paging(params)?;
    let (items, total) = state.store.oc_member_badges(member, status, page).await?;
    let mut data = Vec::with_capacity(items.len());
    for mb in &items {
        data.push(json_of(state, ctx, mb, show_email).await?);
    }
    let caching = if status == Some("accepted") {
        Caching::PrivateSession
    } else {
        Caching::NoStore
    };
    Result::Ok(Ok::list(
        data,
        Paging {
            page: number,
            per_page: u64::from(page.limit),
            total_results: total,
        },
        caching,
    ))
}

/// The user's own received badges (any status, or `status=`).
pub async fn mine(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let user = ctx.user()?;
        let status = match params.non_empty("status") {
            None => None,
            Some(s @ ("pending" | "accepted" | "rejected")) => Some(s),
            Some(_) => {
                return Err(OcError::field(
                    "status",
                    "INVALID_PARAMETER",
                    "must be pending, accepted or rejected",
                ))
            }
        };
        list(&state, &ctx, &params, user.id, status, true).await
    }
    .await;
    ctx.finish(result)
}

/// A member's badges as others see them: the accepted ones.
pub async fn of_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let id = super::params::parse_id(&id, "member")?;
        state
            .opencredit
            .member(&*state.store, id)
            .await?
            .ok_or_else(|| OcError::not_found("member"))?;
        list(&state, &ctx, &params, id, Some("accepted"), false).await
    }
    .await;
    ctx.finish(result)
}
