//! The Credly Web Service API v1 routes (`/v1/…`): the guard middleware
//! (per-route counting, faults, authentication) and the handlers.

use axum::body::Bytes;
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{presented, Presented};
use crate::error::ApiError;
use crate::listing::{ListParams, Metadata, ReqCtx};
use crate::model::IssueInput;
use crate::params::Params;
use crate::render::{
    json_response, BadgeView, Envelope, EventView, List, NoMeta, OrgItem, OrgView, TemplateView,
    TokenItem,
};
use crate::stats::{Counters, Route};
use crate::util::new_id;
use crate::Sandbox;

type ApiResult = Result<Response, ApiError>;

/// The credential a request authenticated with (set by [`guard`]).
#[derive(Clone)]
pub(crate) struct AuthToken(pub Presented);

/// Organization id from `/v1/organizations/{org}/…`, if the path has one.
fn org_segment(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/organizations/")?;
    let seg = rest.split('/').next()?;
    (!seg.is_empty()).then(|| crate::util::form_decode(&seg.replace('+', "%2B")))
}

/// Runs before every matched `/v1/…` route: counts it, applies faults, authenticates.
pub(crate) async fn guard(State(sb): State<Sandbox>, mut req: Request, next: Next) -> Response {
    let counters = &sb.inner.counters;
    let is_post = req.method() == Method::POST;
    if let Some(route) = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| Route::from_matched(m.as_str(), is_post))
    {
        counters.hit(route);
    }
    let expire_all_tokens = match apply_faults(&sb).await {
        Ok(expire) => expire,
        Err(injected) => return injected,
    };
    let token = presented(req.headers());
    let org = org_segment(req.uri().path());
    let verdict = match &token {
        None => Err(ApiError::unauthorized()),
        Some(_) if expire_all_tokens => Err(ApiError::unauthorized()),
        Some(t) => sb.inner.state.read().authorize(t, org.as_deref()),
    };
    match verdict {
        Ok(()) => {
            if let Some(t) = token {
                req.extensions_mut().insert(AuthToken(t));
            }
            next.run(req).await
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                Counters::bump(&counters.unauthorized);
            }
            e.into_response()
        }
    }
}

/// Applies the fault configuration to one API request (`/v1/…` and the token endpoint):
/// sleeps for the latency, then answers an injected failure (`Err`, counted), or says whether
/// every token is to be treated as expired.
pub(crate) async fn apply_faults(sb: &Sandbox) -> Result<bool, Response> {
    let counters = &sb.inner.counters;
    let decision = sb.inner.faults.decide();
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(inj) = decision.fail {
        let status = inj.error.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            Counters::bump(&counters.injected_429);
        } else if status.is_server_error() {
            Counters::bump(&counters.injected_5xx);
        } else {
            Counters::bump(&counters.injected_other);
        }
        tracing::debug!(status = status.as_u16(), kind = ?inj.kind, "fault injected");
        return Err(inj.error.into_response());
    }
    Ok(decision.expire_all_tokens)
}

/// Logs every request at debug level.
pub(crate) async fn log_requests(req: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let uri = req.uri().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        %method,
        %uri,
        status = resp.status().as_u16(),
        elapsed_us = start.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// JSON 404 for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("Not found")
}

fn ok<T: serde::Serialize>(body: &T) -> ApiResult {
    Ok(json_response(StatusCode::OK, body))
}

pub(crate) async fn list_organizations(
    State(sb): State<Sandbox>,
    Extension(AuthToken(token)): Extension<AuthToken>,
    rc: ReqCtx,
) -> ApiResult {
    let lp = ListParams::from_ctx(&rc);
    let items: Vec<OrgItem> = {
        let st = sb.inner.state.read();
        let mut orgs = st.orgs_for(&token, chrono::Utc::now());
        orgs.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        orgs.into_iter()
            .map(|o| OrgItem {
                org: o.info.clone(),
                webhook_url: o.webhook_url.clone(),
            })
            .collect()
    };
    page_of_vec(&rc, &lp, items)
}

fn page_of_vec<T: crate::render::Viewable>(rc: &ReqCtx, lp: &ListParams, all: Vec<T>) -> ApiResult {
    let total = all.len();
    let start = (lp.page - 1).saturating_mul(lp.per).min(total);
    let end = start.saturating_add(lp.per).min(total);
    let page = &all[start..end];
    let metadata = Metadata::new(rc, lp, total, page.len());
    ok(&Envelope {
        data: List {
            items: page,
            ctx: rc.ctx(),
        },
        metadata,
    })
}

pub(crate) async fn get_organization(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
) -> ApiResult {
    let st = sb.inner.state.read();
    let o = st.org(&org)?;
    ok(&Envelope {
        data: OrgView {
            org: &o.info,
            webhook_url: o.webhook_url.as_deref(),
            ctx: rc.ctx(),
        },
        metadata: NoMeta {},
    })
}

pub(crate) async fn list_authorization_tokens(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
) -> ApiResult {
    let lp = ListParams::from_ctx(&rc);
    let items: Vec<TokenItem> = {
        let st = sb.inner.state.read();
        let o = st.org(&org)?;
        o.tokens
            .iter()
            .map(|t| TokenItem {
                token: t.clone(),
                org: o.info.clone(),
            })
            .collect()
    };
    page_of_vec(&rc, &lp, items)
}

/// `POST …/authorization_tokens/rotate`: replaces the token the request authenticated with
/// (HTTP Basic) by a new one, answered in `data.token`; the old one is refused from now on. A
/// request with an OAuth access token is refused (403): which token it would rotate is not
/// known (credly-auth.md §8, question 7).
pub(crate) async fn rotate_authorization_token(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    Extension(AuthToken(presented)): Extension<AuthToken>,
    rc: ReqCtx,
) -> ApiResult {
    let Presented::Token(old) = presented else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Rotating needs the authorization token to rotate (HTTP Basic)",
        ));
    };
    let item = {
        let mut st = sb.inner.state.write();
        let token = st.rotate_token(&org, &old)?;
        TokenItem {
            token,
            org: st.org(&org)?.info.clone(),
        }
    };
    Counters::bump(&sb.inner.counters.tokens_rotated);
    ok(&Envelope {
        data: crate::render::Viewable::view(&item, rc.ctx()),
        metadata: NoMeta {},
    })
}

pub(crate) async fn list_badge_templates(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
) -> ApiResult {
    let lp = ListParams::from_ctx(&rc);
    let (sort, desc) = lp.template_sort()?;
    let filter = lp.template_filter()?;
    let (items, total) = sb
        .inner
        .state
        .read()
        .list_templates(&org, &filter, sort, desc, lp.page, lp.per)?;
    let metadata = Metadata::new(&rc, &lp, total, items.len());
    ok(&Envelope {
        data: List {
            items: &items,
            ctx: rc.ctx(),
        },
        metadata,
    })
}

pub(crate) async fn get_badge_template(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
    rc: ReqCtx,
) -> ApiResult {
    let t = {
        let st = sb.inner.state.read();
        st.org(&org)?
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Badge template {id} not found")))?
    };
    ok(&Envelope {
        data: TemplateView {
            t: &t,
            ctx: rc.ctx(),
        },
        metadata: NoMeta {},
    })
}

pub(crate) async fn list_events(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
) -> ApiResult {
    let lp = ListParams::from_ctx(&rc);
    let desc = lp.event_sort_desc()?;
    let types = lp.event_types();
    let (items, total) = sb
        .inner
        .state
        .read()
        .list_events(&org, &types, desc, lp.page, lp.per)?;
    let metadata = Metadata::new(&rc, &lp, total, items.len());
    ok(&Envelope {
        data: List {
            items: &items,
            ctx: rc.ctx(),
        },
        metadata,
    })
}

pub(crate) async fn get_event(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
    rc: ReqCtx,
) -> ApiResult {
    let e = {
        let st = sb.inner.state.read();
        st.org(&org)?
            .event(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Event {id} not found")))?
    };
    ok(&Envelope {
        data: EventView {
            e: &e,
            ctx: rc.ctx(),
        },
        metadata: NoMeta {},
    })
}

pub(crate) async fn list_badges(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
) -> ApiResult {
    let lp = ListParams::from_ctx(&rc);
    let (sort, desc) = lp.badge_sort()?;
    let filter = lp.badge_filter()?;
    let (items, total) = sb
        .inner
        .state
        .read()
        .list_badges(&org, &filter, sort, desc, lp.page, lp.per)?;
    let metadata = Metadata::new(&rc, &lp, total, items.len());
    ok(&Envelope {
        data: List {
            items: &items,
            ctx: rc.ctx(),
        },
        metadata,
    })
}

pub(crate) async fn get_badge(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
    rc: ReqCtx,
) -> ApiResult {
    let b = {
        let st = sb.inner.state.read();
        st.org(&org)?
            .badge(&id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Badge {id} not found")))?
    };
    ok(&Envelope {
        data: BadgeView {
            b: &b,
            ctx: rc.ctx(),
        },
        metadata: NoMeta {},
    })
}

/// Required issue fields, in the order they are reported when missing.
const REQUIRED: [&str; 5] = [
    "recipient_email",
    "issued_to_first_name",
    "issued_to_last_name",
    "badge_template_id",
    "issued_at",
];

fn issue_input(p: &Params) -> Result<IssueInput, ApiError> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|k| p.str(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "Missing required parameter{}: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    let get = |k: &str| p.str(k).unwrap_or_default();
    let email = get("recipient_email");
    let valid_email = email.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
    }) && !email.contains(char::is_whitespace);
    if !valid_email {
        return Err(ApiError::unprocessable(format!(
            "recipient_email is invalid: {email:?} is not an email address"
        )));
    }
    let issued_at = p
        .time("issued_at")?
        .ok_or_else(|| ApiError::unprocessable("Missing required parameter: issued_at"))?;
    let expires_at = p.time("expires_at")?;
    let evidence = match p.0.get("evidence") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                serde_json::Value::Object(obj) => {
                    let mut obj = obj.clone();
                    obj.entry("id")
                        .or_insert_with(|| serde_json::Value::String(new_id()));
                    Ok(serde_json::Value::Object(obj))
                }
                _ => Err(ApiError::unprocessable(
                    "evidence is invalid: expected an array of objects",
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) if s.is_empty() => Vec::new(),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "evidence is invalid: expected an array of objects",
            ))
        }
    };
    Ok(IssueInput {
        recipient_email: email,
        first_name: get("issued_to_first_name"),
        last_name: get("issued_to_last_name"),
        middle_name: p.str("issued_to_middle_name"),
        badge_template_id: get("badge_template_id"),
        issued_at,
        expires_at,
        issuer_earner_id: p.str("issuer_earner_id"),
        locale: p.str("locale").unwrap_or_else(|| "en".to_owned()),
        suppress_badge_notification_email: p
            .bool("suppress_badge_notification_email")?
            .unwrap_or(false),
        country: p.str("country_name").or_else(|| p.str("country")),
        state_or_province: p.str("state_or_province"),
        evidence,
    })
}

pub(crate) async fn issue_badge(
    State(sb): State<Sandbox>,
    Path(org): Path<String>,
    rc: ReqCtx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let params = Params::merge(&rc.query, &headers, &body)?;
    let input = issue_input(&params)?;
    let result = sb.inner.state.write().issue(&org, input);
    let changed = match result {
        Ok(c) => c,
        Err(e) => {
            if e.message == "User already has this badge" {
                Counters::bump(&sb.inner.counters.duplicates_refused);
            }
            return Err(e);
        }
    };
    Counters::bump(&sb.inner.counters.issued);
    sb.after_change(&changed);
    Ok(json_response(
        StatusCode::CREATED,
        &Envelope {
            data: BadgeView {
                b: &changed.value,
                ctx: rc.ctx(),
            },
            metadata: NoMeta {},
        },
    ))
}

pub(crate) async fn revoke_badge(
    State(sb): State<Sandbox>,
    Path((org, id)): Path<(String, String)>,
    rc: ReqCtx,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let params = Params::merge(&rc.query, &headers, &body)?;
    let reason = params
        .str("reason")
        .ok_or_else(|| ApiError::unprocessable("Missing required parameter: reason"))?;
    params.bool("suppress_revoke_notification_email")?;
    let changed = sb.inner.state.write().revoke(&org, &id, reason)?;
    Counters::bump(&sb.inner.counters.revoked);
    sb.after_change(&changed);
    let b: &Arc<_> = &changed.value;
    ok(&Envelope {
        data: BadgeView { b, ctx: rc.ctx() },
        metadata: NoMeta {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_from_path() {
        assert_eq!(
            org_segment("/v1/organizations/abc/badges/").as_deref(),
            Some("abc")
        );
        assert_eq!(org_segment("/v1/organizations/abc").as_deref(), Some("abc"));
        assert_eq!(
            org_segment("/v1/organizations/a%20b").as_deref(),
            Some("a b")
        );
        assert_eq!(org_segment("/v1/organizations"), None);
        assert_eq!(org_segment("/v1/organizations/"), None);
    }
}
