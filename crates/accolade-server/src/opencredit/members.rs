//! Members: registration (a user, and with `is_organization` also the organization it
//! manages), authentication to access and refresh tokens, the profile (`/me`), public profiles,
//! search, additional addresses and the verification link.

use accolade_opencredit::images::ImageKind;
use accolade_store::{NewOcMember, OcMember, OcToken, Page};
use axum::extract::{Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use super::ctx::{digest, Ctx};
use super::envelope::{Caching, OcError, OcResult, Ok, Paging};
use super::params::Params;
use crate::service::password;
use crate::state::AppState;

/// Longest name field.
const MAX_NAME: usize = 100;

pub use crate::service::auth::random_secret as new_secret;

/// The public view of a member (`base`: see [`base_url`]).
pub fn member_json(m: &OcMember, base: &str) -> Value {
    json!({
        "id": m.id,
        "is_organization": m.is_organization,
        "display_name": m.display_name,
        "first_name": m.first_name,
        "last_name": m.last_name,
        "avatar_url": m.avatar.as_deref().map(|n| super::media::url(base, ImageKind::Avatar, n)),
        "created_at": m.created_at,
    })
}

/// The base URL for links in answers and mail: the configured public address, never the
/// request's `Host` (a forged one would put an attacker's host into verification links).
pub fn base_url(state: &AppState) -> String {
    state.config.public_base_url()
}

/// A name field: no markup, at most `MAX_NAME` characters; empty when absent and optional.
fn name_field(params: &Params, field: &str, required: bool) -> OcResult<String> {
    match params.plain(field, MAX_NAME)?.filter(|v| !v.is_empty()) {
        Some(v) => Result::Ok(v),
        None if required => Err(OcError::field(field, "MISSING_PARAMETER", "is required")),
        None => Result::Ok(String::new()),
    }
}

fn email_field(params: &Params, field: &str) -> OcResult<String> {
    let email = params.required(field)?.to_lowercase();
    if email.parse::<lettre::Address>().is_err() || email.len() > 254 {
        return Err(OcError::field(
            field,
            "INVALID_EMAIL",
            "is not a valid email address",
        ));
    }
    Ok(email)
}

/// Sends the verification link of an address; a failure is logged (the member can ask again).
async fn send_verification(state: &AppState, base: &str, email: &str, secret: &str) {
    let link = format!("{base}/v1.1/verify?token={secret}");
    let body = format!(
        "Please verify this email address to give and receive badges:\n\n{link}\n\n\
         If you did not register, ignore this message."
    );
    if let Err(e) = state
        .opencredit
        .mailer
        .send(email, "Verify your email address", body)
        .await
    {
        tracing::error!(error = %e, "cannot send the verification mail");
    }
}

pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    ctx.finish(register_inner(&state, &ctx, &params).await)
}

async fn register_inner(state: &AppState, ctx: &Ctx, params: &Params) -> OcResult {
    let email = email_field(params, "email")?;
    let password = params
        .raw("password")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| OcError::field("password", "MISSING_PARAMETER", "is required"))?;
    password::check_strength(password)
        .map_err(|m| OcError::field("password", "WEAK_PASSWORD", m))?;
    let first_name = name_field(params, "first_name", true)?;
    let last_name = name_field(params, "last_name", true)?;
    let mut display_name = name_field(params, "display_name", false)?;
    if display_name.is_empty() {
        display_name = format!("{first_name} {last_name}");
    }
    let organization_name = if params.bool("is_organization")?.unwrap_or(false) {
        let name = name_field(params, "organization_name", false)?;
        Some(if name.is_empty() {
            display_name.clone()
        } else {
            name
        })
    } else {
        None
    };
    let verified = params.bool("verified")?.unwrap_or(false);
    if verified && !ctx.tier.may_create_verified_members() {
        return Err(OcError::forbidden(
            "VERIFIED_ACCOUNTS_NOT_ALLOWED",
            "only Heavy (partner) and Enterprise apps may create verified accounts",
        ));
    }
    let password_hash = {
        let p = password.to_string();
        tokio::task::spawn_blocking(move || password::hash(&p))
            .await
            .map_err(OcError::internal)?
            .map_err(OcError::internal)?
    };
    let link = new_secret();
    let (user, org) = state
        .store
        .oc_register(NewOcMember {
            email: email.clone(),
            password_hash,
            first_name,
            last_name,
            display_name,
            organization_name,
            verified,
            verify_token_hash: (!verified).then(|| digest(&link)),
        })
        .await?;
    let base = base_url(state);
    if !verified {
        send_verification(state, &base, &email, &link).await;
    }
    let mut data = member_json(&user, &base);
    data["email"] = json!(email);
    data["verified"] = json!(verified);
    data["organization"] = org.as_ref().map_or(Value::Null, |o| member_json(o, &base));
    Result::Ok(Ok::new(data, Caching::NoStore))
}

/// Email and password from HTTP Basic (`Authorization: Basic base64(email:password)`), as Open
/// Credit clients send them, or from `email` and `password` parameters.
fn credentials(headers: &HeaderMap, params: &Params) -> Option<(String, String)> {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(e, p)| (e.to_string(), p.to_string()))
        });
    basic.or_else(|| {
        Some((
            params.non_empty("email")?.to_string(),
            params.raw("password")?.to_string(),
        ))
    })
}

pub async fn authenticate(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    ctx.finish(authenticate_inner(&state, &ctx, &headers, &params).await)
}

async fn issue_tokens(
    state: &AppState,
    ctx: &Ctx,
    member_id: i64,
    refresh: Option<String>,
) -> OcResult {
    let days = state.config.opencredit.access_token_days;
    let access = new_secret();
    state
        .store
        .oc_create_token(OcToken {
            token_hash: digest(&access),
            member_id,
            app_id: ctx.app.id,
            kind: "access".into(),
            expires_at: Utc::now() + Duration::days(days),
        })
        .await?;
    let refresh = match refresh {
        Some(r) => r,
        None => {
            let r = new_secret();
            state
                .store
                .oc_create_token(OcToken {
                    token_hash: digest(&r),
                    member_id,
                    app_id: ctx.app.id,
                    kind: "refresh".into(),
                    expires_at: Utc::now() + Duration::days(days * 2),
                })
                .await?;
            r
        }
    };
    Result::Ok(Ok::new(
        json!({"token": access, "refresh_token": refresh}),
        Caching::Tokens,
    ))
}

/// Sign-in attempts per member address and clock minute (`POST /v1.1/authenticate`).
const SIGN_INS_PER_MINUTE: u32 = 10;

async fn authenticate_inner(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    params: &Params,
) -> OcResult {
    let invalid = || OcError::unauthorized("INVALID_CREDENTIALS", "wrong email or password");
    let (email, pass) = credentials(headers, params).ok_or_else(|| {
        OcError::unauthorized(
            "CREDENTIALS_REQUIRED",
            "send the member's email and password as HTTP Basic authentication",
        )
    })?;
    // Password guessing: at most SIGN_INS_PER_MINUTE tries per address, whatever the app or
    // instance, before any password work.
    let address = email.to_lowercase();
    let attempt = state
        .opencredit
        .limiter
        .count(format!("signin:{address}"), SIGN_INS_PER_MINUTE)
        .await;
    if !attempt.allowed {
        return Err(OcError::throttled(attempt.reset_secs));
    }
    let found = state.store.oc_login(&address).await?;
    // argon2 off the async runtime, within the same budget as the admin sign-in.
    let ok = crate::service::password::verify_off_runtime(
        &pass,
        found.as_ref().map(|(_, h)| h.as_str()),
    )
    .await
    .map_err(|_| OcError::throttled(1))?;
    match found {
        Some((member, _)) if ok => issue_tokens(state, ctx, member.id, None).await,
        _ => Err(invalid()),
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let raw = params.required("refresh_token")?.to_string();
        let invalid =
            || OcError::unauthorized("INVALID_TOKEN", "the refresh_token is invalid or expired");
        let t = state
            .store
            .oc_token(&digest(&raw))
            .await?
            .ok_or_else(invalid)?;
        if t.kind != "refresh" || t.app_id != ctx.app.id || t.expires_at <= Utc::now() {
            return Err(invalid());
        }
        issue_tokens(&state, &ctx, t.member_id, Some(raw)).await
    }
    .await;
    ctx.finish(result)
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let user = ctx.user()?;
        let emails = state.store.oc_member_emails(user.id).await?;
        let manages = state.store.oc_managed(user.id).await?;
        let mut data = member_json(user, &base_url(&state));
        data["email"] = json!(user.email);
        data["emails"] = emails
            .iter()
            .map(|e| json!({"email": e.email, "verified": e.verified_at.is_some()}))
            .collect();
        data["manages"] = json!(manages);
        Result::Ok(Ok::new(data, Caching::Profile))
    }
    .await;
    ctx.finish(result)
}

pub async fn add_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let user = ctx.user()?;
        let email = email_field(&params, "email")?;
        let link = new_secret();
        state
            .store
            .oc_add_email(user.id, &email, &digest(&link))
            .await?;
        send_verification(&state, &base_url(&state), &email, &link).await;
        Result::Ok(Ok::new(
            json!({"email": email, "verified": false}),
            Caching::NoStore,
        ))
    }
    .await;
    ctx.finish(result)
}

/// `POST /me/emails/resend`: a new verification link for one of the user's unverified
/// addresses (the previous link stops working).
pub async fn resend_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let user = ctx.user()?;
        let email = email_field(&params, "email")?;
        let link = new_secret();
        match state
            .store
            .oc_reissue_email_link(user.id, &email, &digest(&link))
            .await?
        {
            Some(_) => {
                send_verification(&state, &base_url(&state), &email, &link).await;
                Result::Ok(Ok::new(
                    json!({"email": email, "verified": false}),
                    Caching::NoStore,
                ))
            }
            None => Err(OcError::field(
                "email",
                "NOT_AN_UNVERIFIED_ADDRESS",
                "is not an unverified address of this member",
            )),
        }
    }
    .await;
    ctx.finish(result)
}

pub async fn get_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let id = super::params::parse_id(&id, "member")?;
        let m = state
            .opencredit
            .member(&*state.store, id)
            .await?
            .ok_or_else(|| OcError::not_found("member"))?;
        Result::Ok(Ok::new(
            member_json(&m, &base_url(&state)),
            Caching::Profile,
        ))
    }
    .await;
    ctx.finish(result)
}

/// `page` (1-based) and `per_page` (at most 1,000; Open Credit clients ask for 999 and 1000).
pub fn paging(params: &Params) -> OcResult<(Page, u64)> {
    let page = params.int("page")?.unwrap_or(1);
    let per_page = params.int("per_page")?.unwrap_or(10);
    if page < 1 {
        return Err(OcError::field(
            "page",
            "INVALID_PARAMETER",
            "must be at least 1",
        ));
    }
    if !(1..=1000).contains(&per_page) {
        return Err(OcError::field(
            "per_page",
            "INVALID_PARAMETER",
            "must be between 1 and 1000",
        ));
    }
    let offset = (page as u64 - 1)
        .checked_mul(per_page as u64)
        .filter(|o| *o <= i64::MAX as u64)
        .ok_or_else(|| OcError::field("page", "INVALID_PARAMETER", "is too large"))?;
    Result::Ok((
        Page {
            limit: per_page as u32,
            offset,
        },
        page as u64,
    ))
}

pub async fn search(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let (page, number) = paging(&params)?;
        let email = params.non_empty("email").map(str::to_lowercase);
        let (members, total) = state
            .store
            .oc_search_members(email.as_deref(), params.non_empty("query"), page)
            .await?;
        Result::Ok(Ok::list(
            members
                .iter()
                .map(|m| member_json(m, &base_url(&state)))
                .collect(),
            Paging {
                page: number,
                per_page: u64::from(page.limit),
                total_results: total,
            },
            Caching::Profile,
        ))
    }
    .await;
    ctx.finish(result)
}

#[derive(serde::Deserialize)]
pub struct VerifyQuery {
    token: Option<String>,
}

/// The link in the verification mail, opened in a browser: a page with a button. Opening the
/// link changes nothing (mail scanners follow links); pressing the button posts the token.
pub async fn verify_page(Query(q): Query<VerifyQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (StatusCode::NOT_FOUND, Html(UNKNOWN_LINK.to_string())).into_response();
    }
    Html(format!(
        "<!doctype html><title>Verify your address</title>\
         <form method=\"post\" action=\"/v1.1/verify\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p>Confirm that this email address is yours.</p>\
         <button type=\"submit\">Verify my address</button></form>"
    ))
    .into_response()
}

const UNKNOWN_LINK: &str = "<!doctype html><title>Unknown link</title>\
    <p>This verification link is unknown or was already used.</p>";

/// The verification itself (the form of [`verify_page`]).
pub async fn verify(
    State(state): State<AppState>,
    axum::Form(q): axum::Form<VerifyQuery>,
) -> Response {
    let token = q.token.unwrap_or_default();
    match state
        .store
        .oc_verify_email(&digest(token.trim()), Utc::now())
        .await
    {
        Result::Ok(Some(e)) => Html(format!(
            "<!doctype html><title>Address verified</title><p>The address {} is verified. \
             You can now give and receive badges.</p>",
            html_escape(&e.email)
        ))
        .into_response(),
        Result::Ok(None) => (StatusCode::NOT_FOUND, Html(UNKNOWN_LINK.to_string())).into_response(),
        Err(e) => OcError::from(e).into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `POST /me/avatar`: `attachment` (multipart file or base64) becomes the avatar of the acting
/// member (the user, or with `behalf_of` / by default an organization it manages), stored at
/// every avatar size code.
pub async fn set_avatar(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let ctx = load!(state, headers, params);
    let result = async {
        let member = ctx.acting(&state, &params).await?;
        let limits = super::badges::limits(&state);
        let bytes = super::media::upload(&params, "attachment", limits)?.ok_or_else(|| {
            OcError::field(
                "attachment",
                "MISSING_PARAMETER",
                "an image is required (multipart file or base64 string)",
            )
        })?;
        let name = super::media::store(
            &state.opencredit.images,
            &state.opencredit.media,
            ImageKind::Avatar,
            bytes,
            limits,
            "attachment",
        )
        .await?;
        let m = state.store.oc_set_avatar(member, Some(&name)).await?;
        state.opencredit.forget_member(m.id);
        Result::Ok(Ok::new(
            member_json(&m, &base_url(&state)),
            Caching::NoStore,
        ))
    }
    .await;
    ctx.finish(result)
}
