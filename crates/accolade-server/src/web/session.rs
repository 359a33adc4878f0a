//! The signed-in admin as an extractor: every `/admin` page except the login form takes an
//! [`Admin`], so a route cannot forget the check. Without a valid session a page request is sent
//! to the login form; any other request is refused.

use accolade_store::AdminSession;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;

use super::cookies;
use super::pages::{error_page, unavailable};
use crate::service::admin_sessions;
use crate::state::AppState;

/// A valid session of an admin account.
pub struct Admin {
    pub session: AdminSession,
    /// The request came over TLS (cookies set in the answer get `Secure`).
    pub secure: bool,
}

impl Admin {
    /// True when a form carries this session's CSRF token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        cookies::same(token, &self.session.csrf_token)
    }
}

/// A signed-in admin's form post whose CSRF token was checked: handlers of state-changing forms
/// take this instead of [`Admin`], so none can forget the check.
pub struct AdminForm {
    pub admin: Admin,
    /// The decoded form fields (see `forms`).
    pub fields: Vec<(String, String)>,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = super::forms::fields(&bytes);
        if !admin.csrf_ok(super::forms::one(&fields, "csrf")) {
            return Err(csrf_refused());
        }
        Ok(AdminForm { admin, fields })
    }
}

/// The answer to a form without the right CSRF token.
pub fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired or did not come from this site. Reload the page and try again.",
    )
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let secure = cookies::is_tls(parts);
        let Some(id) = cookies::get(&parts.headers, cookies::SESSION) else {
            return Err(not_signed_in(parts));
        };
        match admin_sessions::current(&*state.store, id, Utc::now()).await {
            Ok(Some(session)) => Ok(Admin { session, secure }),
            Ok(None) => Err(not_signed_in(parts)),
            Err(e) => Err(unavailable("cannot read the admin session", e)),
        }
    }
}

/// Page requests go to the login form (and come back afterwards); anything else is refused.
fn not_signed_in(parts: &Parts) -> Response {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/admin");
        Redirect::to(&format!("/admin/login?next={}", encode(next))).into_response()
    } else {
        error_page(
            StatusCode::UNAUTHORIZED,
            "You are not signed in (or your session has ended). Sign in and try again.",
        )
    }
}

/// Percent-encodes a path for a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: only a local `/admin` path, never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        // Printable ASCII only: a control character (CR, LF, DEL) cannot go into the Location
        // header, and answering with it failed after the session was stored.
        Some(n)
            if (n == "/admin" || n.starts_with("/admin/"))
                && !n.contains("//")
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/admin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_admin_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/admin/templates?q=x")),
            "/admin/templates?q=x"
        );
        assert_eq!(safe_next(Some("https://evil.example/admin")), "/admin");
        assert_eq!(safe_next(Some("//evil.example")), "/admin");
        assert_eq!(safe_next(Some("/admin//evil.example")), "/admin");
        assert_eq!(safe_next(Some("/adminx")), "/admin");
        assert_eq!(safe_next(None), "/admin");
        assert_eq!(safe_next(Some("/admin/x\r\nSet-Cookie: a=b")), "/admin");
        assert_eq!(safe_next(Some("/admin/\x7f")), "/admin");
        assert_eq!(safe_next(Some("/admin/a b")), "/admin");
        assert_eq!(encode("/admin?a=1&b"), "/admin%3Fa%3D1%26b");
    }
}
