//! Unauthenticated operational endpoints: liveness, readiness (database reachable, and the roles
//! this instance runs) and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::metrics;
use crate::service::stats;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
}

async fn live() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    // `api`, and `workers` (outbox, webhooks, expiry, backfills, issuing), `consumer` and
    // `publisher` (event bus) when this instance runs them; `publisher` means it may publish
    // (one instance at a time holds the lease).
    let roles = state.roles.get().cloned().unwrap_or_default();
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": state.store.backend(), "roles": roles})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": state.store.backend()})),
            )
        }
    }
}

async fn render_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wanted = state.config.http.metrics_token.as_bytes();
    if !wanted.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .as_bytes();
        if !same_secret(given, wanted) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"code": "metrics_token_required",
                            "detail": "GET /metrics needs Authorization: Bearer <http.metrics_token>"})),
            )
                .into_response();
        }
    }
    match stats::read(&*state.store).await {
        Ok(stats) => metrics::set_store_gauges(&stats),
        Err(e) => tracing::warn!(error = %e, "could not read store stats for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::handle().render(),
    )
        .into_response()
}

/// Compares two secrets in time that depends on their lengths only, not on where they differ.
fn same_secret(given: &[u8], wanted: &[u8]) -> bool {
    given.len() == wanted.len()
        && given
            .iter()
            .zip(wanted)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
