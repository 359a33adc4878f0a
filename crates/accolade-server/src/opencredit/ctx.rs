//! Who is calling: the app (`X-Api-Key` + `X-Api-Secret`), the member behind an `access_token`
//! if any, the rate-limit decision for them, and on whose behalf the call acts.
//!
//! Every `/v1.1` handler starts with [`Ctx::load`] and ends with [`Ctx::finish`], which adds the
//! rate-limit headers to whatever it answers.

use std::str::FromStr;

use accolade_opencredit::tiers::Tier;
use accolade_store::{OcApp, OcMember};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::envelope::{OcError, OcResult};
use super::limiter::{Decision, Subject};
use super::params::Params;
use crate::state::AppState;

pub use crate::service::auth::hash_secret as digest;

/// Compares two digests without leaking where they differ.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub struct Ctx {
    pub app: OcApp,
    pub tier: Tier,
    /// The member of the `access_token`, when one was sent.
    pub user: Option<OcMember>,
    decision: Decision,
    /// `X-Allow-Html: 1` was sent: rich-text fields come back with their markup.
    pub allow_html: bool,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    // HeaderMap lookups ignore case: `x-api-key` and `X-Api-Key` are the same header.
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl Ctx {
    /// Authenticates the app and the token, and counts the request. The error is a finished
    /// response (a throttled one carries the rate-limit headers).
    pub async fn load(
        state: &AppState,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<Ctx, Response> {
        let app = Self::app(state, headers)
            .await
            .map_err(IntoResponse::into_response)?;
        let tier = Tier::from_str(&app.tier)
            .map_err(|e| OcError::internal(format!("app {}: {e}", app.id)).into_response())?;
        let user = match params.non_empty("access_token") {
            None => None,
            Some(token) => Some(
                Self::member_of_token(state, &app, token)
                    .await
                    .map_err(IntoResponse::into_response)?,
            ),
        };
        let subject = match &user {
            Some(m) => Subject::User {
                app: app.api_key.clone(),
                member: m.id,
            },
            None => Subject::App(app.api_key.clone()),
        };
        let decision = if state.config.opencredit.rate_limits {
            state.opencredit.limiter.check(tier, &subject).await
        } else {
            Decision::unlimited()
        };
        let ctx = Ctx {
            app,
            tier,
            user,
            decision,
            allow_html: header(headers, "x-allow-html") == Some("1"),
        };
        if !decision.allowed {
            return Err(ctx.finish::<super::envelope::Ok>(Err(OcError::throttled(
                decision.reset_secs.max(1),
            ))));
        }
        Ok(ctx)
    }

    async fn app(state: &AppState, headers: &HeaderMap) -> OcResult<OcApp> {
        let (Some(key), Some(secret)) = (
            header(headers, "x-api-key"),
            header(headers, "x-api-secret"),
        ) else {
            return Err(OcError::unauthorized(
                "API_CREDENTIALS_REQUIRED",
                "send the app's X-Api-Key and X-Api-Secret headers",
            ));
        };
        let app = state.store.oc_app_by_key(key).await?;
        match app {
            Some(app) if same_digest(&digest(secret), &app.secret_hash) => Ok(app),
            _ => Err(OcError::unauthorized(
                "INVALID_API_CREDENTIALS",
                "unknown X-Api-Key or wrong X-Api-Secret",
            )),
        }
    }

    async fn member_of_token(state: &AppState, app: &OcApp, token: &str) -> OcResult<OcMember> {
        let invalid =
            || OcError::unauthorized("INVALID_TOKEN", "the access_token is invalid or expired");
        let found = state
            .opencredit
            .token(&*state.store, &digest(token))
            .await?;
        let Some(t) = found else {
            return Err(invalid());
        };
        // Tokens are app-specific (Open Credit) and only access tokens open requests.
        if t.app_id != app.id || t.kind != "access" || t.expires_at <= Utc::now() {
            return Err(invalid());
        }
        state
            .opencredit
            .member(&*state.store, t.member_id)
            .await?
            .ok_or_else(invalid)
    }

    /// The authenticated member, or 401 for calls that need an `access_token`.
    pub fn user(&self) -> OcResult<&OcMember> {
        self.user.as_ref().ok_or_else(|| {
            OcError::unauthorized("TOKEN_REQUIRED", "this call needs an access_token")
        })
    }

    /// The member the call acts for: `behalf_of` when given (the user itself or a member it
    /// manages, else 403), otherwise the organization the user manages, if any, else the user.
    pub async fn acting(&self, state: &AppState, params: &Params) -> OcResult<i64> {
        let user = self.user()?;
        let managed = state.store.oc_managed(user.id).await?;
        match params.int("behalf_of")? {
            Some(id) if id == user.id || managed.contains(&id) => Ok(id),
            Some(id) => Err(OcError::forbidden(
                "BEHALF_OF_NOT_ALLOWED",
                format!("member {} may not act on behalf of member {id}", user.id),
            )),
            None => Ok(managed.first().copied().unwrap_or(user.id)),
        }
    }

    /// Whether the user may act for `member_id` (itself or a member it manages).
    pub async fn may_manage(&self, state: &AppState, member_id: i64) -> OcResult<bool> {
        let user = self.user()?;
        Ok(user.id == member_id || state.store.oc_managed(user.id).await?.contains(&member_id))
    }

    /// The answer, with the rate-limit headers of this request.
    pub fn finish<T: IntoResponse>(&self, result: OcResult<T>) -> Response {
        let mut r = match result {
            Ok(ok) => ok.into_response(),
            Err(e) => e.into_response(),
        };
        if let Some(limit) = self.decision.limit {
            let h = r.headers_mut();
            h.insert("x-ratelimit-limit", HeaderValue::from(limit));
            h.insert(
                "x-ratelimit-remaining",
                HeaderValue::from(self.decision.remaining),
            );
            h.insert(
                "x-ratelimit-reset",
                HeaderValue::from(self.decision.reset_secs),
            );
        }
        r
    }
}
