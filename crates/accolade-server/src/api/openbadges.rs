//! Open Badges 3.0 over HTTP: the public documents (DID document, achievements, credentials,
//! status lists, baked images) and `POST /api/v1/openbadges/verify`. The learner's badge page
//! is HTML and lives in `web/badge.rs`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::service::openbadges::public::{self, PublicError, Received};
use crate::state::AppState;

/// Verifiable credentials (VC Data Model 2.0 §6.3 media type).
const VC_MEDIA_TYPE: &str = "application/vc+ld+json";
const LD_MEDIA_TYPE: &str = "application/ld+json";
/// Credentials and their baked images never change once signed.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Status lists change on every revocation: verifiers must see a revocation within seconds.
const REVALIDATE: &str = "no-cache";

impl From<PublicError> for ApiError {
    fn from(e: PublicError) -> Self {
        match e {
            PublicError::Store(e) => e.into(),
            PublicError::Disabled => ApiError::NotFound {
                code: "openbadges_disabled",
                detail: e.to_string(),
            },
            PublicError::Busy => ApiError::Overloaded {
                code: "verification_busy",
                detail: e.to_string(),
                retry_after_secs: 1,
            },
            PublicError::Unreadable(detail) => ApiError::BadRequest {
                code: "credential_unreadable",
                detail,
            },
            PublicError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The public documents (no token).
pub fn public_router(did_path: &str) -> Router<AppState> {
    let mut router = Router::new()
        .route("/.well-known/did.json", get(did_document))
        .route("/ob/v3/achievements/{template_id}", get(achievement))
        .route(
            "/ob/v3/achievements/{template_id}/image.svg",
            get(achievement_image),
        )
        .route("/ob/v3/credentials/{id}", get(credential))
        .route("/ob/v3/credentials/{id}/baked.png", get(baked_png))
        .route("/ob/v3/credentials/{id}/baked.svg", get(baked_svg))
        .route("/ob/v3/status/{list_id}", get(status_list));
    if did_path != "/.well-known/did.json" {
        router = router.route(did_path, get(did_document));
    }
    router
}

/// `POST /api/v1/openbadges/verify` (behind the token check).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

fn typed(body: impl IntoResponse, media: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn did_document(State(state): State<AppState>) -> ApiResult<Response> {
    let doc = public::did_document(&state).await?;
    Ok(typed(
        serde_json::to_string(&doc).map_err(|e| ApiError::Internal(e.into()))?,
        "application/did+json",
        "public, max-age=60",
    ))
}

async fn achievement(
    State(state): State<AppState>,
    Path(template_id): Path<String>,
) -> ApiResult<Response> {
    let doc = public::achievement(&state, &template_id).await?;
    Ok(typed(
        serde_json::to_string(&doc).map_err(|e| ApiError::Internal(e.into()))?,
        LD_MEDIA_TYPE,
        "public, max-age=60",
    ))
}

async fn achievement_image(
    State(state): State<AppState>,
    Path(template_id): Path<String>,
) -> ApiResult<Response> {
    let svg = public::achievement_image(&state, &template_id).await?;
    Ok(typed(svg, "image/svg+xml", "public, max-age=3600"))
}

async fn credential(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let signed = public::signed(&state, &id).await?;
    Ok(typed(
        axum::body::Body::from(axum::body::Bytes::copy_from_slice(
            signed.document.as_bytes(),
        )),
        VC_MEDIA_TYPE,
        IMMUTABLE,
    ))
}

async fn baked_png(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let png = public::baked_png(&state, &id).await?;
    let mut response = typed(png, "image/png", IMMUTABLE);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"badge.png\""),
    );
    Ok(response)
}

async fn baked_svg(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let svg = public::baked_svg(&state, &id).await?;
    let mut response = typed(svg, "image/svg+xml", IMMUTABLE);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"badge.svg\""),
    );
    Ok(response)
}

async fn status_list(
    State(state): State<AppState>,
    Path(list_id): Path<String>,
) -> ApiResult<Response> {
    let doc = public::status_list(&state, &list_id).await?;
    Ok(typed(doc, VC_MEDIA_TYPE, REVALIDATE))
}

/// Verify a received Open Badges 3.0 credential: send the credential as JSON
/// (`application/json`, `application/ld+json` or `application/vc+ld+json`), or a baked badge
/// (`image/png`, `image/svg+xml`). The answer lists every check (contexts, type, proof,
/// validity, status) with its outcome and a verdict: `valid` when all passed, `invalid` when any
/// failed, `unknown` when a key or status list could not be resolved without a network fetch
/// (this server resolves its own keys and lists and did:key; it fetches nothing).
#[utoipa::path(post, path = "/openbadges/verify", tag = "openbadges",
    request_body(description = "The credential (JSON) or a baked PNG/SVG", content(
        (Object = "application/json"), (Object = "application/ld+json"),
        (Object = "application/vc+ld+json"), (Vec<u8> = "image/png"), (String = "image/svg+xml"))),
    responses((status = 200, body = VerificationBody),
              (status = 400, body = crate::error::ErrorBody, description = "credential_unreadable or unsupported_media_type"),
              (status = 503, body = crate::error::ErrorBody, description = "verification_busy")),
    security(("bearer" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<VerificationBody>> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let received = match media.as_str() {
        "application/json" | "application/ld+json" | "application/vc+ld+json" => {
            Received::Json(body.to_vec())
        }
        "image/png" => Received::Png(body.to_vec()),
        "image/svg+xml" => Received::Svg(body.to_vec()),
        other => {
            return Err(ApiError::BadRequest {
                code: "unsupported_media_type",
                detail: format!(
                    "send the credential as application/json (or ld+json, vc+ld+json), image/png \
                     or image/svg+xml, not `{other}`"
                ),
            })
        }
    };
    let report = public::verify_received(&state, received).await?;
    Ok(Json(VerificationBody::from(report)))
}

/// The outcome of `POST /openbadges/verify`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerificationBody {
    /// `valid`, `invalid` or `unknown`.
    pub verdict: String,
    pub checks: Vec<CheckBody>,
    pub credential_id: Option<String>,
    pub issuer: Option<String>,
    pub achievement: Option<String>,
}

/// One check of a verification.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CheckBody {
    /// `contexts`, `type`, `proof`, `validity` or `status`.
    pub check: String,
    /// `passed`, `failed` or `unknown`.
    pub outcome: String,
    pub detail: String,
}

impl From<accolade_openbadges::verify::Report> for VerificationBody {
    fn from(r: accolade_openbadges::verify::Report) -> Self {
        let text = |v: &dyn erased::AsJson| v.as_json();
        VerificationBody {
            verdict: text(&r.verdict),
            checks: r
                .checks
                .into_iter()
                .map(|c| CheckBody {
                    check: c.check.to_string(),
                    outcome: text(&c.outcome),
                    detail: c.detail,
                })
                .collect(),
            credential_id: r.credential_id,
            issuer: r.issuer,
            achievement: r.achievement,
        }
    }
}

mod erased {
    /// The snake_case name serde gives a unit enum variant.
    pub trait AsJson {
        fn as_json(&self) -> String;
    }
    impl<T: serde::Serialize> AsJson for T {
        fn as_json(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }
    }
}
