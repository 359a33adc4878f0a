//! The two cookies of the admin UI and the few lines that read and write them.
//!
//! - `accolade_session`: the session id (random 32 bytes, base64url). Only its SHA-256 is stored.
//! - `accolade_login_csrf`: the login form's CSRF token (double submit: the form carries the same
//!   value), since there is no session yet to hold it.
//!
//! Both are `HttpOnly` (no script reads them), `SameSite=Strict` (never sent on a cross-site
//! request, the first line against CSRF), scoped to `/admin`, and `Secure` when the request came
//! over TLS (directly or as reported by a proxy's `X-Forwarded-Proto: https`).

use axum::http::header::{COOKIE, HOST};
use axum::http::request::Parts;
use axum::http::HeaderMap;

/// The login form's CSRF token is made like session ids are.
pub use crate::service::admin_sessions::random_token;

pub const SESSION: &str = "accolade_session";
pub const LOGIN_CSRF: &str = "accolade_login_csrf";

/// A cookie's value from the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// True when the request reached us over TLS, as far as we can tell.
pub fn is_tls(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set(name: &str, value: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Equal strings, compared in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host the request was sent to (for logs only).
pub fn host(headers: &HeaderMap) -> &str {
    headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cookie_among_several_headers_and_pairs() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; accolade_session=xyz".parse().unwrap());
        h.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(get(&h, SESSION), Some("xyz"));
        assert_eq!(get(&h, "b"), Some("2"));
        assert_eq!(get(&h, "c"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_scoped() {
        let c = set(SESSION, "v", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(c.contains("Path=/admin") && c.ends_with("; Secure"));
        assert!(!set(SESSION, "v", 60, false).contains("Secure"));
    }

    #[test]
    fn tokens_are_random_and_compare_exactly() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same("abc", "abcd"));
    }
}
