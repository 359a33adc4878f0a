//! The control API under `/_sandbox/…` (no authentication; the sandbox only
//! listens on loopback) and the small demo pages a person can click: template
//! images, a badge page and the `accept_badge_url` target.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::faults::Faults;
use crate::model::BadgeState;
use crate::render::json_response;
use crate::seed::SeedTemplate;
use crate::{both, Sandbox};

type CtlResult = Result<Response, ApiError>;

/// Control and demo routes.
pub(crate) fn routes() -> Router<Sandbox> {
    let mut r = Router::new();
    r = both(r, "/_sandbox/health", get(health));
    r = both(r, "/_sandbox/stats", get(stats).delete(reset_stats));
    r = both(r, "/_sandbox/faults", get(get_faults).put(put_faults));
    r = both(r, "/_sandbox/organizations", get(organizations));
    r = both(
        r,
        "/_sandbox/organizations/{org}/templates",
        post(upsert_template),
    );
    r = both(
        r,
        "/_sandbox/organizations/{org}/templates/{id}",
        delete(delete_template),
    );
    r = both(
        r,
        "/_sandbox/organizations/{org}/badges/{id}/state",
        post(set_badge_state),
    );
    r = both(r, "/_sandbox/organizations/{org}/webhook", put(set_webhook));
    r = both(r, "/_sandbox/organizations/{org}/tokens", post(add_token));
    r = both(
        r,
        "/_sandbox/organizations/{org}/oauth_clients",
        post(add_oauth_client),
    );
    r = both(r, "/_sandbox/organizations/{org}/badges", get(badges));
    r = both(r, "/_sandbox/organizations/{org}/events", get(events));
    r.route("/images/{id}/image.svg", get(image))
        .route("/badges/{id}", get(badge_page))
        .route("/badges/{id}/accept", get(accept_page))
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::unprocessable(format!("invalid JSON body: {e}")))
}

fn json_ok(status: StatusCode, v: serde_json::Value) -> CtlResult {
    Ok(json_response(status, &v))
}

async fn health() -> CtlResult {
    json_ok(StatusCode::OK, json!({"status": "ok"}))
}

async fn stats(State(sb): State<Sandbox>) -> Response {
    json_response(StatusCode::OK, &sb.stats())
}

async fn reset_stats(State(sb): State<Sandbox>) -> StatusCode {
    sb.reset_stats();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(sb): State<Sandbox>) -> Response {
    json_response(StatusCode::OK, &sb.faults())
}

async fn put_faults(State(sb): State<Sandbox>, body: Bytes) -> CtlResult {
    let f: Faults = parse_json(&body)?;
    f.validate().map_err(ApiError::unprocessable)?;
    sb.set_faults(f);
    Ok(json_response(StatusCode::OK, &sb.faults()))
}

async fn organizations(State(sb): State<Sandbox>) -> Response {
    let st = sb.inner.state.read();
    let mut list: Vec<serde_json::Value> = st
        .orgs
        .values()
        .map(|o| {
            json!({
                "id": o.info.id,
                "name": o.info.name,
                "webhook_url": o.webhook_url,
                "tokens": o.tokens.iter().map(|t| json!({
                    "token": t.token,
                    "created_at": crate::util::fmt_ts(&t.created_at),
                    "expires_at": crate::util::fmt_ts(&t.expires_at),
                })).collect::<Vec<_>>(),
                "oauth_clients": st.oauth_clients_of(&o.info.id).iter().map(|c| json!({
                    "client_id": c.client_id,
                    "access_token_lifetime_secs": c.lifetime_secs,
                })).collect::<Vec<_>>(),
                "templates": o.templates.len(),
                "badges": o.badges.len(),
                "events": o.events.len(),
            })
        })
        .collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json_response(StatusCode::OK, &list)
}

async fn upsert_template(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    body: Bytes,
) -> CtlResult {
    let mut t: SeedTemplate = parse_json(&body)?;
    t.organization_id = org;
    let changed = sb.inner.state.write().upsert_template(t)?;
    sb.after_change(&changed);
    let status = if changed.event.event_type == "badge_template.created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_ok(
        status,
        json!({
            "id": changed.value,
            "event_id": changed.event.id,
            "event_type": changed.event.event_type,
        }),
    )
}

async fn delete_template(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
) -> CtlResult {
    let changed = sb.inner.state.write().delete_template(&org, &id)?;
    sb.after_change(&changed);
    json_ok(
        StatusCode::OK,
        json!({"id": id, "event_id": changed.event.id, "event_type": changed.event.event_type}),
    )
}

#[derive(Deserialize)]
struct StateBody {
    state: String,
}

async fn set_badge_state(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
    body: Bytes,
) -> CtlResult {
    let b: StateBody = parse_json(&body)?;
    let changed = sb
        .inner
        .state
        .write()
        .set_badge_state(&org, &id, &b.state)?;
    sb.after_change(&changed);
    let badge = crate::render::badge_value(
        &changed.value,
        crate::render::Ctx {
            base: &sb.public_base(),
        },
    );
    json_ok(
        StatusCode::OK,
        json!({"event_id": changed.event.id, "event_type": changed.event.event_type, "badge": badge}),
    )
}

#[derive(Deserialize)]
struct WebhookBody {
    #[serde(default)]
    url: Option<String>,
}

async fn set_webhook(State(sb): State<Sandbox>, Path(org): Path<String>, body: Bytes) -> CtlResult {
    let b: WebhookBody = parse_json(&body)?;
    sb.inner
        .state
        .write()
        .set_webhook_url(&org, b.url.clone())?;
    json_ok(StatusCode::OK, json!({"url": b.url}))
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

async fn add_token(State(sb): State<Sandbox>, Path(org): Path<String>, body: Bytes) -> CtlResult {
    let b: TokenBody = parse_json(&body)?;
    sb.inner
        .state
        .write()
        .add_token(&org, &b.token, b.expires_at)?;
    json_ok(StatusCode::CREATED, json!({"token": b.token}))
}

#[derive(Deserialize)]
struct OAuthClientBody {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    access_token_lifetime_secs: Option<u64>,
}

async fn add_oauth_client(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    body: Bytes,
) -> CtlResult {
    let b: OAuthClientBody = parse_json(&body)?;
    sb.inner.state.write().add_oauth_client(
        &org,
        &b.client_id,
        &b.client_secret,
        b.access_token_lifetime_secs,
    )?;
    json_ok(
        StatusCode::CREATED,
        json!({"client_id": b.client_id, "access_token_lifetime_secs": b.access_token_lifetime_secs
            .unwrap_or(crate::credentials::DEFAULT_ACCESS_TOKEN_LIFETIME_SECS)}),
    )
}

async fn badges(State(sb): State<Sandbox>, Path(org): Path<String>) -> CtlResult {
    sb.inner.state.read().org(&org)?;
    json_ok(StatusCode::OK, serde_json::Value::Array(sb.badges(&org)))
}

async fn events(State(sb): State<Sandbox>, Path(org): Path<String>) -> CtlResult {
    sb.inner.state.read().org(&org)?;
    json_ok(StatusCode::OK, serde_json::Value::Array(sb.events(&org)))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A generated SVG for templates without an `image_url`.
async fn image(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let name = {
        let st = sb.inner.state.read();
        st.orgs
            .values()
            .find_map(|o| o.templates.get(&id).map(|t| t.name.clone()))
    };
    let Some(name) = name else {
        return (StatusCode::NOT_FOUND, "no such template image").into_response();
    };
    let initials: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(3)
        .collect::<String>()
        .to_uppercase();
    let hue = crate::util::fnv1a(&id) % 360;
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="340" height="340" viewBox="0 0 340 340"><title>{title}</title><polygon points="170,10 310,90 310,250 170,330 30,250 30,90" fill="hsl({hue},55%,42%)" stroke="hsl({hue},60%,28%)" stroke-width="10"/><text x="170" y="195" font-family="sans-serif" font-size="92" font-weight="bold" text-anchor="middle" fill="#fff">{initials}</text></svg>"##,
        title = escape(&name),
        initials = escape(&initials),
    );
    let mut resp = svg.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    resp
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
         <p><small>Credly sandbox (not Credly)</small></p><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

fn badge_html(sb: &Sandbox, id: &str) -> Option<(String, BadgeState, String)> {
    let st = sb.inner.state.read();
    let b = st.find_badge(id)?;
    let body = format!(
        "<p><img src=\"/images/{tid}/image.svg\" width=\"120\" alt=\"\"></p>\
         <p><b>{name}</b> issued by {org} to {who} &lt;{email}&gt;.</p><p>State: <b>{state}</b></p>",
        tid = escape(&b.template.id),
        name = escape(&b.template.name),
        org = escape(&b.org.name),
        who = escape(&format!("{} {}", b.first_name, b.last_name)),
        email = escape(&b.recipient_email),
        state = b.state.as_str(),
    );
    Some((b.org.id.clone(), b.state, body))
}

async fn badge_page(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    match badge_html(&sb, &id) {
        Some((_, _, body)) => page("Badge", &body).into_response(),
        None => (StatusCode::NOT_FOUND, page("Badge not found", "")).into_response(),
    }
}

/// `accept_badge_url`: accepting a pending badge records `badge.state.changed` (+ webhook).
async fn accept_page(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let Some((org, state, _)) = badge_html(&sb, &id) else {
        return (StatusCode::NOT_FOUND, page("Badge not found", "")).into_response();
    };
    if state == BadgeState::Pending {
        let changed = sb
            .inner
            .state
            .write()
            .set_badge_state(&org, &id, "accepted");
        if let Ok(changed) = changed {
            sb.after_change(&changed);
        }
    }
    let (state, body) = badge_html(&sb, &id)
        .map(|(_, s, b)| (s, b))
        .unwrap_or((state, String::new()));
    let title = if state == BadgeState::Accepted {
        "Badge accepted"
    } else {
        "Badge not accepted"
    };
    page(title, &body).into_response()
}
