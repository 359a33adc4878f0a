//! The learner's public badge page, `GET /badges/{credential_id}`: the badge, who issued it and
//! when, its criteria, whether it verifies (proof and revocation checked on the server, said
//! plainly), downloads (the credential, baked PNG and SVG) and LinkedIn's "Add to profile" link.
//! It shows nothing about the learner but the name they earned it under (off with
//! `openbadges.show_names = false`); the id in the URL is the credential's random UUID.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::service::openbadges::public::{self, BadgePage, PublicError, Standing};
use crate::state::AppState;

const STYLESHEET: &str = include_str!("../../static/badge.css");

/// The page allows its own stylesheet and images from anywhere over HTTPS (a template's own
/// image), nothing else: no scripts at all.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/badges/{id}", get(page))
        .route("/badges/static/badge.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
}

#[derive(Template)]
#[template(path = "public/badge.html")]
struct BadgeView {
    page: BadgePage,
    standing: &'static str,
    status_title: String,
    status_detail: String,
    earned_iso: String,
    earned_human: String,
    valid_until_human: Option<String>,
}

#[derive(Template)]
#[template(path = "public/not_found.html")]
struct NotFoundView {
    detail: &'static str,
}

async fn page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match public::badge_page(&state, &id).await {
        Ok(page) => render(StatusCode::OK, &view(page)),
        Err(PublicError::Store(accolade_store::StoreError::NotFound { .. }))
        | Err(PublicError::Disabled) => render(
            StatusCode::NOT_FOUND,
            &NotFoundView {
                detail: "There is no badge at this address. Check the link you were given.",
            },
        ),
        Err(PublicError::Busy) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "busy, try again in a moment",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "badge page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn view(page: BadgePage) -> BadgeView {
    let (standing, title, detail) = match page.standing {
        Standing::Valid => (
            "valid",
            "Verified".to_string(),
            format!(
                "The signature by {} checks out and the issuer has not revoked this badge.",
                page.issuer_name
            ),
        ),
        Standing::Revoked => (
            "revoked",
            "Revoked".to_string(),
            format!(
                "{} has revoked this badge; it is no longer valid.",
                page.issuer_name
            ),
        ),
        Standing::Expired => (
            "expired",
            "Expired".to_string(),
            "This badge was valid for a limited time, which has passed.".to_string(),
        ),
        Standing::Invalid => (
            "invalid",
            "Not verified".to_string(),
            "The signature does not match the credential: it may have been altered.".to_string(),
        ),
    };
    BadgeView {
        standing,
        status_title: title,
        status_detail: detail,
        earned_iso: page.earned_at.to_rfc3339(),
        earned_human: page.earned_at.format("%-d %B %Y").to_string(),
        valid_until_human: page.valid_until.map(|t| t.format("%-d %B %Y").to_string()),
        page,
    }
}

fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "badge page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response()
        }
    }
}

async fn stylesheet() -> Response {
    super::stylesheet_response(STYLESHEET)
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    // The standing (revoked, expired) changes: caches ask again each time.
    super::protect(
        &mut response,
        &super::PageHeaders {
            csp: CSP,
            referrer: "no-referrer",
            cache: "no-cache",
        },
    );
    response
}
