//! The admin web UI under `/admin`: server-rendered pages (askama), no JavaScript build step.
//!
//! Security, in one place: every page but the login form takes the [`session::Admin`]
//! extractor; every form carries a CSRF token; cookies are `HttpOnly` + `SameSite=Strict`; and
//! every answer carries a Content-Security-Policy that allows only this origin's own scripts,
//! styles and forms, and no framing.

pub mod awards;
pub mod backfill;
pub mod badge;
pub mod bulk;
pub mod cookies;
pub mod credly;
pub mod forms;
pub mod login;
pub mod ops;
pub mod pages;
pub mod requirements;
pub mod session;
pub mod templates;

/// Passwords are a service (the CLI and the Open Credit API hash them too); reachable here as
/// before.
pub use crate::service::password;

use axum::extract::Request;
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The Content-Security-Policy of every `/admin` answer.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

const STYLESHEET: &str = include_str!("../../static/admin.css");

/// The `/admin` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/", get(|| async { Redirect::permanent("/admin") }))
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/logout", axum::routing::post(login::logout))
        .route("/admin/credly", get(credly::list).post(credly::add))
        .route(
            "/admin/credly/sync",
            axum::routing::post(credly::sync_selected),
        )
        .route(
            "/admin/credly/{id}/key",
            axum::routing::post(credly::rotate),
        )
        .route(
            "/admin/credly/{id}/rotate",
            axum::routing::post(credly::rotate_now),
        )
        .route("/admin/awards", get(awards::list))
        .route("/admin/awards/{id}", get(awards::detail))
        .route("/admin/awards/{id}/revoke", post(awards::revoke))
        .route("/admin/awards/{id}/retry", post(awards::retry))
        .route("/admin/jobs", get(ops::jobs))
        .route("/admin/jobs/{id}/retry", axum::routing::post(ops::retry))
        .route("/admin/events", get(ops::events))
        .route("/admin/progress", get(ops::progress))
        .route("/admin/webhooks", get(ops::deliveries))
        .route("/admin/webhooks/{id}/replay", post(ops::replay))
        .route("/admin/templates", get(templates::list))
        .route("/admin/templates/{id}", get(templates::detail))
        .route(
            "/admin/templates/{id}/active",
            axum::routing::post(templates::set_active),
        )
        .route(
            "/admin/templates/{id}/requirements",
            post(requirements::add),
        )
        .route(
            "/admin/templates/{id}/requirements/{requirement}/delete",
            post(requirements::delete),
        )
        .route(
            "/admin/templates/{id}/penalties",
            post(requirements::add_penalty),
        )
        .route("/admin/templates/{id}/explain", post(requirements::explain))
        .route("/admin/templates/{id}/expiry", post(templates::set_expiry))
        .route(
            "/admin/templates/{id}/criteria",
            post(templates::set_criteria),
        )
        .route(
            "/admin/templates/{id}/backfill",
            get(backfill::preview).post(backfill::start),
        )
        .route(
            "/admin/templates/{id}/would-hold",
            post(backfill::would_hold),
        )
        .route("/admin/templates/{id}/bulk", post(bulk::run))
        .route("/admin/backfills/{id}", get(backfill::detail))
        .route("/admin/backfills/{id}/cancel", post(backfill::cancel))
        .route("/admin/static/admin.js", get(backfill::script))
        .route("/admin/static/admin.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
}

async fn stylesheet() -> Response {
    stylesheet_response(STYLESHEET)
}

/// A stylesheet compiled into the binary, cached for an hour.
pub(crate) fn stylesheet_response(css: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        css,
    )
        .into_response()
}

/// What one family of pages sends with every answer.
pub(crate) struct PageHeaders {
    pub csp: &'static str,
    pub referrer: &'static str,
    /// `Cache-Control` unless the handler set its own.
    pub cache: &'static str,
}

/// Adds a page family's headers, and what every page sends: no MIME sniffing, no framing.
pub(crate) fn protect(response: &mut Response, page: &PageHeaders) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page.csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(page.referrer),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(page.cache));
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    // Pages show account data: never keep them in shared caches or the back-forward cache.
    protect(
        &mut response,
        &PageHeaders {
            csp: CSP,
            referrer: "same-origin",
            cache: "no-store",
        },
    );
    response
}
