//! The Open Credit response envelope: `{"meta":{status_code,status,message,more_info},"data"}`,
//! plus a top-level `paging` object on lists. `meta.status_code` always equals the HTTP status.

use axum::http::header::{CACHE_CONTROL, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Paging of a list answer (`page` is 1-based).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
    pub total_results: u64,
}

/// How a successful answer may be cached (seed 001, "Caching Open Credit data").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Tokens do not change under typical use: cacheable by the client.
    Tokens,
    /// Profile data changes: a short lifetime.
    Profile,
    /// Badge data is ephemeral: never cached.
    NoStore,
    /// Accepted member badges: the user's own session may keep them.
    PrivateSession,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::Tokens => "private, max-age=86400",
            Caching::Profile => "private, max-age=60",
            Caching::NoStore => "no-store",
            Caching::PrivateSession => "private, max-age=3600",
        }
    }
}

fn meta(status: StatusCode, status_text: &str, message: &str, more_info: Value) -> Value {
    json!({
        "status_code": status.as_u16(),
        "status": status_text,
        "message": message,
        "more_info": more_info,
    })
}

/// A successful answer.
pub struct Ok {
    data: Value,
    paging: Option<Paging>,
    caching: Caching,
}

impl Ok {
    pub fn new(data: Value, caching: Caching) -> Ok {
        Ok {
            data,
            paging: None,
            caching,
        }
    }

    pub fn list(data: Vec<Value>, paging: Paging, caching: Caching) -> Ok {
        Ok {
            data: Value::Array(data),
            paging: Some(paging),
            caching,
        }
    }
}

impl IntoResponse for Ok {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("meta".into(), meta(StatusCode::OK, "OK", "", Value::Null));
        body.insert("data".into(), self.data);
        if let Some(p) = self.paging {
            let total_pages = p.total_results.div_ceil(p.per_page.max(1));
            body.insert(
                "paging".into(),
                json!({"page": p.page, "per_page": p.per_page, "total_results": p.total_results, "total_pages": total_pages}),
            );
        }
        let mut r = Json(Value::Object(body)).into_response();
        r.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static(self.caching.header()),
        );
        r
    }
}

/// An error answer; `status` is the stable code clients branch on.
#[derive(Debug, Clone)]
pub struct OcError {
    pub http: StatusCode,
    pub status: &'static str,
    pub message: String,
    /// `{field: message}` for validation errors, else null.
    pub more_info: Value,
    pub retry_after: Option<u64>,
}

impl OcError {
    pub fn new(http: StatusCode, status: &'static str, message: impl Into<String>) -> OcError {
        OcError {
            http,
            status,
            message: message.into(),
            more_info: Value::Null,
            retry_after: None,
        }
    }

    /// A 400 naming the offending field.
    pub fn field(field: &str, status: &'static str, message: impl Into<String>) -> OcError {
        let message = message.into();
        let mut e = OcError::new(
            StatusCode::BAD_REQUEST,
            status,
            format!("{field}: {message}"),
        );
        e.more_info = json!({ field: message });
        e
    }

    pub fn bad_request(status: &'static str, message: impl Into<String>) -> OcError {
        OcError::new(StatusCode::BAD_REQUEST, status, message)
    }

    pub fn unauthorized(status: &'static str, message: impl Into<String>) -> OcError {
        OcError::new(StatusCode::UNAUTHORIZED, status, message)
    }

    pub fn forbidden(status: &'static str, message: impl Into<String>) -> OcError {
        OcError::new(StatusCode::FORBIDDEN, status, message)
    }

    pub fn not_found(what: &str) -> OcError {
        OcError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> OcError {
        tracing::error!(error = %e, "open credit request failed");
        OcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error; see the server log",
        )
    }

    /// The throttled answer, exactly as seed 001 gives it (HTTP 401).
    pub fn throttled(retry_after: u64) -> OcError {
        OcError {
            http: StatusCode::UNAUTHORIZED,
            status: "REQUEST_LIMIT_EXCEEDED",
            message: "Too many requests for this app".into(),
            more_info: Value::Null,
            retry_after: Some(retry_after),
        }
    }
}

impl From<accolade_store::StoreError> for OcError {
    fn from(e: accolade_store::StoreError) -> OcError {
        match e {
            accolade_store::StoreError::NotFound { what } => OcError::not_found(what.as_str()),
            accolade_store::StoreError::Conflict { code, detail } => {
                OcError::new(StatusCode::CONFLICT, conflict_status(code), detail)
            }
            other => OcError::internal(other),
        }
    }
}

fn conflict_status(code: &str) -> &'static str {
    match code {
        "email_taken" => "EMAIL_TAKEN",
        "oc_app_exists" => "APP_EXISTS",
        "badge_given" => "BADGE_GIVEN",
        _ => "CONFLICT",
    }
}

/// Marks a response that already is an Open Credit envelope.
#[derive(Debug, Clone, Copy)]
pub struct Enveloped;

/// Outermost middleware: an error answer under `/v1.1` that did not come from a handler (405
/// from routing, 408 from the timeout, 500 from a caught panic) becomes an envelope too. The
/// verification page answers HTML on purpose and is left alone.
pub async fn envelope_everything(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let wrap = path.starts_with("/v1.1/") && !path.starts_with("/v1.1/verify");
    let res = next.run(req).await;
    let status = res.status();
    if !wrap
        || res.extensions().get::<Enveloped>().is_some()
        || !(status.is_client_error() || status.is_server_error())
    {
        return res;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "BAD_REQUEST",
    };
    let message = status.canonical_reason().unwrap_or("error").to_string();
    OcError::new(status, code, message).into_response()
}

impl IntoResponse for OcError {
    fn into_response(self) -> Response {
        let body = json!({
            "meta": meta(self.http, self.status, &self.message, self.more_info),
            "data": Value::Null,
        });
        let mut r = (self.http, Json(body)).into_response();
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        r.extensions_mut().insert(Enveloped);
        r
    }
}

pub type OcResult<T = Ok> = std::result::Result<T, OcError>;
