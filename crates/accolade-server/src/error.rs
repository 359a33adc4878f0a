//! `ApiError`: the one error type of the JSON API. Every variant maps to an HTTP status and a
//! body `{"code": "...", "detail": "..."}` whose `code` is stable (documented in docs/API.md).
//! Internal errors are opaque to the client and logged once, here.

use accolade_domain::DomainError;
use accolade_store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Error body of every failed API call.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `template_not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The caller is known but may not do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Unavailable(String),
    /// The sender exceeded its budget (429, with `Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// Too much work is waiting to accept more now (503, with `Retry-After`).
    #[error("{detail}")]
    Overloaded {
        code: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    /// An upstream service (Credly) failed or could not be reached.
    #[error("{detail}")]
    BadGateway { code: &'static str, detail: String },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// The stable error code (as in the JSON body), e.g. `credly_key_rejected`.
    pub fn code(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (StatusCode, &str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            ApiError::Overloaded { code, .. } => (StatusCode::SERVICE_UNAVAILABLE, code),
            ApiError::BadGateway { code, .. } => (StatusCode::BAD_GATEWAY, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::BadRequest {
            code: e.code(),
            detail: e.to_string(),
        }
    }
}

/// Store errors map by kind: `NotFound` becomes `<what>_not_found` (404). Call sites that know a
/// missing row means something else map it themselves before `?`.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::NotFound {
                code: what.code(),
                detail: format!("{what} not found"),
            },
            StoreError::Conflict { code, detail } => ApiError::Conflict { code, detail },
            StoreError::Domain(d) => d.into(),
            StoreError::Other(msg) => ApiError::Internal(anyhow::anyhow!(msg)),
            e @ StoreError::Backend { .. } => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let detail = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Overloaded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                code: code.to_string(),
                detail,
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
