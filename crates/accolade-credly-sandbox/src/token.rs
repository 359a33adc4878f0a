//! `POST /oauth/token`: the client credentials grant (credly-auth.md §4.3–4.4).
//!
//! Both encodings seen in Credly clients are accepted: the parameters as a form or as a JSON
//! body, and the client's id and secret either among them or as HTTP Basic. The answer is
//! `{"access_token", "token_type": "Bearer", "expires_in", "scope", "created_at"}`; refusals
//! use RFC 6749's error body (`{"error", "error_description"}`): 401 `invalid_client`, 400
//! `unsupported_grant_type` or `invalid_scope`. The API's faults (latency, `fail_next`, the
//! rate limit, the error rate) apply here too, so clients can be tested against an unreliable
//! token endpoint.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::auth::client_from_headers;
use crate::credentials::Refusal;
use crate::params::Params;
use crate::render::json_response;
use crate::stats::{Counters, Route};
use crate::Sandbox;

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut resp = json_response(
        status,
        &json!({"error": code, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Credly sandbox OAuth\""),
        );
    }
    resp
}

/// The token endpoint.
pub(crate) async fn token(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    sb.inner.counters.hit(Route::OAuthToken);
    if let Err(injected) = crate::api::apply_faults(&sb).await {
        return injected;
    }
    let params = match Params::merge(&[], &headers, &body) {
        Ok(p) => p,
        Err(e) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.message);
        }
    };
    let (id, secret) = match client_from_headers(&headers) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (params.str("client_id"), params.str("client_secret")),
    };
    let grant = params.str("grant_type");
    let scope = params.str("scope");
    let issued = sb.inner.state.write().issue_access_token(
        id.as_deref(),
        secret.as_deref(),
        grant.as_deref(),
        scope.as_deref(),
        chrono::Utc::now(),
    );
    match issued {
        Ok(t) => {
            Counters::bump(&sb.inner.counters.access_tokens_issued);
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": t.access_token,
                    "token_type": "Bearer",
                    "expires_in": t.expires_in,
                    "scope": t.scope,
                    "created_at": t.created_at.timestamp(),
                }),
            )
        }
        Err(refusal) => {
            Counters::bump(&sb.inner.counters.token_requests_refused);
            match refusal {
                Refusal::InvalidClient => oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication failed: unknown client, wrong secret or no client authentication.",
                ),
                Refusal::UnsupportedGrantType => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "Only grant_type=client_credentials is supported.",
                ),
                Refusal::InvalidScope(s) => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("The scope {s:?} is not one Credly offers."),
                ),
            }
        }
    }
}
