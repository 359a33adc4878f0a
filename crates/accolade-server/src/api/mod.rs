//! The admin JSON API under `/api/v1` and the application router.
//!
//! Routes and the OpenAPI document come from the same `#[utoipa::path]` annotations, so the
//! document served at `/api/v1/openapi.json` cannot drift from the router. Everything under
//! `/api/v1` except the document needs a bearer token (`accolade admin create-token`).

pub mod awards;
pub mod backfills;
pub mod credly;
pub mod dto;
pub mod events;
pub mod extract;
pub mod health;
pub mod jobs;
pub mod learners;
pub mod openbadges;
pub mod penalties;
pub mod requirements;
pub mod templates;
mod tokens;
pub mod webhooks;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::service::auth::{self, Scope};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Accolade admin API", description = "Badge templates, requirements, events, progress and awards. Errors are `{\"code\",\"detail\"}` with the codes listed in docs/API.md."),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    tags((name = "events"), (name = "templates"), (name = "requirements"), (name = "penalties"),
         (name = "learners"), (name = "awards"), (name = "jobs"), (name = "credly"), (name = "webhooks"), (name = "opencredit"), (name = "tokens"), (name = "openbadges"), (name = "backfills"))
)]
struct ApiDoc;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The `/api/v1` routes and their OpenAPI document.
fn api_v1() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(events::router())
        .merge(templates::router())
        .merge(requirements::router())
        .merge(penalties::router())
        .merge(learners::router())
        .merge(awards::router())
        .merge(backfills::router())
        .merge(jobs::router())
        .merge(credly::router())
        .merge(webhooks::router())
        .merge(tokens::router())
        .merge(openbadges::router())
        .merge(crate::opencredit::apps::admin_router())
        .split_for_parts();
    document_shared_answers(&mut doc);
    (router, doc)
}

/// Narrows the `event_type` of requirement and penalty bodies to the configured `events.types`
/// (anything else is refused with `event_type_not_configured`), in the document this server
/// serves.
fn document_configured_event_types(doc: &mut utoipa::openapi::OpenApi, types: &[String]) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;

    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    for (name, nullable) in [
        ("CreateRequirement", false),
        ("UpdateRequirement", true),
        ("CreatePenalty", false),
        ("UpdatePenalty", true),
    ] {
        if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(name) {
            if let Some(field) = body.properties.get_mut("event_type") {
                *field = dto::one_of_strings(
                    &types,
                    nullable,
                    "One of the configured events.types (else event_type_not_configured).",
                )
                .into();
            }
        }
    }
}

/// Adds the answers that come from layers and extractors shared by every route rather than
/// from a handler, to each operation that can get them (an answer a handler already documents,
/// usually with its codes, is kept):
/// - 401 `unauthorized` and 403 `insufficient_scope` from [`require_token`], for every
///   operation with bearer security;
/// - 400 (`malformed_json`, `invalid_body`, `unsupported_media_type`) from `ApiJson`, and 413
///   `body_too_large` from the body limit, for every operation with a request body;
/// - 400 `invalid_query` from `ApiQuery`, for every operation with query parameters.
fn document_shared_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let answers = &mut op.responses.responses;
            let mut add = |status: &str, description: &str| {
                answers
                    .entry(status.to_string())
                    .or_insert_with(|| error(description).into());
            };
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(
                    "401",
                    "unauthorized: missing, unknown, expired or revoked bearer token",
                );
                add(
                    "403",
                    "insufficient_scope: the token's scopes do not cover this operation",
                );
            }
            if op.request_body.is_some() {
                add(
                    "400",
                    "malformed_json, invalid_body, unsupported_media_type or a field's own code",
                );
                add("413", "body_too_large: larger than http.max_body_bytes");
            }
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            if has_query {
                add(
                    "400",
                    "invalid_query: a query parameter of the wrong type or range",
                );
            }
        }
    }
}

/// The OpenAPI document (also printed by tests and docs tooling).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_v1().1
}

/// Builds the whole HTTP application.
pub fn build_app(state: AppState) -> Router {
    let (api, mut doc) = api_v1();
    document_configured_event_types(&mut doc, &state.config.events.types);
    let doc = std::sync::Arc::new(doc);
    let api = api
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route(
            "/openapi.json",
            get(move || async move { Json((*doc).clone()) }),
        );
    let limit = state.config.http.max_body_bytes;
    let timeout = Duration::from_secs(state.config.http.request_timeout_secs);
    let open_credit = if state.config.opencredit.enabled {
        crate::opencredit::router()
    } else {
        Router::new()
    };
    Router::new()
        .nest("/api/v1", api)
        .nest("/v1.1", open_credit)
        .merge(health::router())
        .merge(openbadges::public_router(&state.openbadges.did_document_path()))
        .merge(credly::webhook_router())
        .merge(crate::web::router())
        .merge(crate::web::badge::router())
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // The span names the path, not the whole URI: Open Credit members may send their
        // access token in the query string, and it must not reach the logs.
        .layer(TraceLayer::new_for_http().make_span_with(
            |req: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            },
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(middleware::from_fn(
            crate::opencredit::envelope::envelope_everything,
        ))
}

async fn not_found() -> Response {
    ApiError::NotFound {
        code: "route_not_found",
        detail: "no such endpoint".into(),
    }
    .into_response()
}

/// Bearer-token check for every `/api/v1` route.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let secret = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let token = match state.tokens.verify(&*state.store, secret).await {
        Ok(Some(token)) => token,
        Ok(None) => return ApiError::Unauthorized.into_response(),
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    // Nested under /api/v1, the router sees the rest of the path.
    let path = req.uri().path();
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let needed = Scope::needed_for(req.method(), path);
    if !auth::allows(&token.scopes, needed) {
        return ApiError::Forbidden {
            code: "insufficient_scope",
            detail: format!(
                "token {} has the scopes [{}]; {} {path} needs `{}` (or `admin`)",
                token.id,
                token.scopes.join(", "),
                req.method(),
                needed.as_str()
            ),
        }
        .into_response();
    }
    next.run(req).await
}
