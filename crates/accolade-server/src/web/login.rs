//! Signing in and out.
//!
//! - The login form is protected against CSRF by a double-submit token (cookie + hidden field).
//! - Every successful login gets a brand-new session id, and any session the browser presented
//!   is ended: an id planted before login (session fixation) never becomes a signed-in session.
//! - After `LOCK_AFTER` consecutive failures an account is locked for 30 s, doubling with each
//!   further failure up to 15 minutes (`accolade_domain::login`); while locked even the right
//!   password is refused. Every attempt is counted in the store *before* its password is checked,
//!   in one transaction with the lock check, so a burst of concurrent guesses gets exactly
//!   `LOCK_AFTER` checks, not one per request that read the account before the lock was written.
//!   A success resets the count. Unknown accounts and wrong passwords get the same answer after
//!   the same work.

use accolade_store::{AdminSession, LoginAttempt, LoginOutcome, StoreError};
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::pages::{error_page, unavailable, LoginPage};
use super::session::{csrf_refused, safe_next, Admin};

/// The answer when too many sign-ins wait to be checked (a flood), before any is verified.
const BUSY: &str = "Too many sign-ins are being checked right now. Try again in a moment.";
use super::{cookies, password};
use crate::state::AppState;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;

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
    let username = f.username.trim().to_lowercase();
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
    let user = match state.store.get_admin_user(&username).await {
        Ok(u) => u,
        Err(StoreError::NotFound { .. }) => {
            if password::verify_off_runtime(&f.password, None)
                .await
                .is_err()
            {
                return retry(StatusCode::SERVICE_UNAVAILABLE, BUSY);
            }
            tracing::info!(username = ?username, "admin login refused: unknown account");
            return retry(StatusCode::UNAUTHORIZED, "Wrong username or password.");
        }
        Err(e) => {
            return unavailable("admin login: cannot read the account", e);
        }
    };
    // Count the attempt (or find the account locked) before any password work.
    let counted = match state.store.count_admin_login_attempt(&user.id, now).await {
        Ok(LoginAttempt::Counted(counted)) => counted,
        Ok(LoginAttempt::Locked { until }) => {
            let secs = (until - now).num_seconds().max(1);
            tracing::warn!(username = ?username, "admin login refused: account locked");
            return retry(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed sign-ins. Try again in {secs} seconds."),
            );
        }
        Err(e) => return unavailable("admin login: cannot count the attempt", e),
    };
    let matches = match password::verify_off_runtime(&f.password, Some(&user.password_hash)).await {
        Ok(m) => m,
        Err(password::Busy) => return retry(StatusCode::SERVICE_UNAVAILABLE, BUSY),
    };
    if !matches {
        let (failures, locked) = (counted.failed_logins, counted.locked_until.is_some());
        tracing::warn!(username = ?username, failures, locked, "admin login refused: wrong password");
        return retry(StatusCode::UNAUTHORIZED, "Wrong username or password.");
    }
    // A session id the browser brought along (maybe planted) ends here; the new one is fresh.
    if let Some(old) = cookies::get(&parts.headers, cookies::SESSION) {
        let _ = state
            .store
            .delete_admin_session(&cookies::hash_id(old))
            .await;
    }
    let id = cookies::random_token();
    let session = AdminSession {
        id_hash: cookies::hash_id(&id),
        user_id: user.id.clone(),
        username: user.username.clone(),
        csrf_token: cookies::random_token(),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    let stored = async {
        state.store.create_admin_session(session).await?;
        state
            .store
            .record_admin_login(&user.id, LoginOutcome::Succeeded { at: now })
            .await
    };
    if let Err(e) = stored.await {
        return unavailable("admin login: cannot store the session", e);
    }
    tracing::info!(username = %username, "admin signed in");
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
    if let Err(e) = state
        .store
        .delete_admin_session(&admin.session.id_hash)
        .await
    {
        tracing::error!(error = %e, "admin logout: cannot delete the session");
    }
    tracing::info!(username = %admin.session.username, "admin signed out");
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(v) = cookies::set(cookies::SESSION, "", 0, admin.secure).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// Deletes expired sessions hourly (they are refused anyway; this keeps the table small).
pub async fn purge_expired_sessions(state: AppState) {
    loop {
        match state.store.purge_admin_sessions(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired admin sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired admin sessions"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

fn with_login_cookie(mut response: Response, token: &str, secure: bool) -> Response {
    if let Ok(v) = cookies::set(cookies::LOGIN_CSRF, token, 3600, secure).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}
