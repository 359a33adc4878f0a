//! Signing in and out: the form, its answers and the cookies. What a sign-in checks and does
//! (attempts counted before any password work, the lockout of `accolade_domain::login`, the same
//! answer for unknown accounts and wrong passwords, a brand-new session that ends the one the
//! browser presented) is `service::admin_sessions`.
//!
//! - The login form is protected against CSRF by a double-submit token (cookie + hidden field).
//! - The session id travels only in the `HttpOnly`, `SameSite=Strict` session cookie.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;

use super::cookies;
use super::pages::{error_page, unavailable, LoginPage};
use super::session::{csrf_refused, safe_next, Admin};
use crate::service::admin_sessions::{self, SignInError, SESSION_HOURS};
use crate::service::admin_users;
use crate::state::AppState;

/// The answer when too many sign-ins wait to be checked (a flood), before any is verified.
const BUSY: &str = "Too many sign-ins are being checked right now. Try again in a moment.";

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /admin/login`
pub async fn form(parts: Parts, Query(q): Query<NextQuery>) -> Response {
    let token = cookies::random_token();
    let page = LoginPage {
        csrf: &token,
        next: safe_next(q.next.as_deref()),
        username: "",
        error: None,
    };
    with_login_cookie(page.into_response(), &token, cookies::is_tls(&parts))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /admin/login`
pub async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    Form(f): Form<LoginForm>,
) -> Response {
    let secure = cookies::is_tls(&parts);
    let expected = cookies::get(&parts.headers, cookies::LOGIN_CSRF).unwrap_or("");
    if expected.is_empty() || !cookies::same(&f.csrf, expected) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This sign-in form has expired or did not come from this site. Reload the page and try again.",
        );
    }
    let next = safe_next(f.next.as_deref()).to_string();
    let username = admin_users::normalize(&f.username);
    let now = Utc::now();
    let retry = |status: StatusCode, message: &str| {
        let token = cookies::random_token();
        let page = LoginPage {
            csrf: &token,
            next: &next,
            username: &username,
            error: Some(message),
        };
        with_login_cookie((status, page).into_response(), &token, secure)
    };
    let presented = cookies::get(&parts.headers, cookies::SESSION);
    let signed_in = match admin_sessions::sign_in(
        &*state.store,
        &username,
        &f.password,
        presented,
        now,
    )
    .await
    {
        Ok(s) => s,
        Err(SignInError::Refused) => {
            return retry(StatusCode::UNAUTHORIZED, "Wrong username or password.")
        }
        Err(SignInError::Locked { until }) => {
            let secs = (until - now).num_seconds().max(1);
            return retry(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed sign-ins. Try again in {secs} seconds."),
            );
        }
        Err(SignInError::Busy) => return retry(StatusCode::SERVICE_UNAVAILABLE, BUSY),
        Err(SignInError::Store { context, source }) => return unavailable(context, source),
    };
    let id = signed_in.id;
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    for cookie in [
        cookies::set(cookies::SESSION, &id, SESSION_HOURS * 3600, secure),
        cookies::set(cookies::LOGIN_CSRF, "", 0, secure),
    ] {
        if let Ok(v) = cookie.parse() {
            headers.append(SET_COOKIE, v);
        }
    }
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /admin/logout`
pub async fn logout(
    State(state): State<AppState>,
    admin: Admin,
    Form(f): Form<CsrfForm>,
) -> Response {
    if !admin.csrf_ok(&f.csrf) {
        return csrf_refused();
    }
    admin_sessions::sign_out(&*state.store, &admin.session).await;
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(v) = cookies::set(cookies::SESSION, "", 0, admin.secure).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

fn with_login_cookie(mut response: Response, token: &str, secure: bool) -> Response {
    if let Ok(v) = cookies::set(cookies::LOGIN_CSRF, token, 3600, secure).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}
