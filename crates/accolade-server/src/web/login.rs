//! Signing in and out.
//!
//! - The login form is protected against CSRF by a double-submit token (cookie + hidden field).
//! - Every successful login gets a brand-new session id, and any session the browser presented
//!   is ended: an id planted before login (session fixation) never becomes a signed-in session.
//! - After `LOCK_AFTER` consecutive failures an account is locked for 30 s, doubling with each
//!   further failure up to 15 minutes; while locked even the right password is refused. Unknown
//!   accounts and wrong passwords get the same answer after the same work.

use accolade_store::{AdminSession, LoginOutcome, StoreError};
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::pages::{error_page, unavailable, LoginPage};
use super::session::{csrf_refused, safe_next, Admin};

/// The answer when too many sign-ins wait to be checked (a flood), before any is verified.
const BUSY: &str = "Too many sign-ins are being checked right now. Try again in a moment.";
use super::{cookies, password};
use crate::state::AppState;

/// Failures in a row before the account locks.
pub const LOCK_AFTER: i64 = 5;
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
const FIRST_LOCK_SECS: i64 = 30;
const MAX_LOCK_SECS: i64 = 15 * 60;

/// When an account with `failures` consecutive failures unlocks (None: not locked).
pub fn lock_until(failures: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if failures < LOCK_AFTER {
        return None;
    }
    let doublings = (failures - LOCK_AFTER).min(16) as u32;
    let secs = (FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS);
    Some(now + Duration::seconds(secs))
}

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
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        let secs = (until - now).num_seconds().max(1);
        tracing::warn!(username = ?username, "admin login refused: account locked");
        return retry(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many failed sign-ins. Try again in {secs} seconds."),
        );
    }
    let matches = match password::verify_off_runtime(&f.password, Some(&user.password_hash)).await {
        Ok(m) => m,
        Err(password::Busy) => return retry(StatusCode::SERVICE_UNAVAILABLE, BUSY),
    };
    if !matches {
        let failures = user.failed_logins + 1;
        let locked = lock_until(failures, now);
        if let Err(e) = state
            .store
            .record_admin_login(
                &user.id,
                LoginOutcome::Failed {
                    locked_until: locked,
                },
            )
            .await
        {
            tracing::error!(error = %e, "admin login: cannot record the failure");
        }
        tracing::warn!(username = ?username, failures, locked = locked.is_some(), "admin login refused: wrong password");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_starts_at_the_fifth_failure_and_doubles_up_to_fifteen_minutes() {
        let now = Utc::now();
        assert_eq!(lock_until(4, now), None);
        assert_eq!(lock_until(5, now), Some(now + Duration::seconds(30)));
        assert_eq!(lock_until(6, now), Some(now + Duration::seconds(60)));
        assert_eq!(lock_until(10, now), Some(now + Duration::seconds(900)));
        assert_eq!(lock_until(1000, now), Some(now + Duration::seconds(900)));
    }
}
