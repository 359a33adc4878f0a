//! OAuth 2.0 client credentials, Credly's alternative to authorization tokens
//! (shared/reference/credly-auth.md §4): the token request and how long an access token may be
//! reused.
//!
//! The request follows the documented parameter list in the RFC 6749 default encoding: one
//! form-urlencoded body with `grant_type=client_credentials`, `client_id`, `client_secret` and
//! `scope`. It goes to the configured token URL only, on a client that follows no redirects.
//!
//! Errors keep the crate's retry classification: no answer, 408, 429 and 5xx are retryable; a
//! refusal of the client (401, or 400 with `invalid_client`, `invalid_grant` or
//! `unauthorized_client`) is [`CredlyError::Unauthorized`]; other 4xx are
//! [`CredlyError::Rejected`]; a 2xx without `access_token` is [`CredlyError::Decode`].

use std::time::Duration;

use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde::Deserialize;

use crate::client::{parse_retry_after, transport, CredlyClient};
use crate::error::CredlyError;

/// An OAuth application's client id and secret.
#[derive(Clone, Copy)]
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

impl std::fmt::Debug for ClientCredentials<'_> {
    // Neither value reaches a log line: the id is half of the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials").finish_non_exhaustive()
    }
}

/// An access token and the lifetime the token endpoint gave it.
#[derive(Clone, PartialEq)]
pub struct AccessToken {
    pub access_token: String,
    /// Seconds the token lives (`expires_in`); `None` when the answer has no such field.
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// The lifetime assumed when the token answer has no `expires_in`: Credly's (and Doorkeeper's)
/// two hours, as the known clients assume (credly-auth.md §4.4).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
/// A cached token is dropped this long before it expires, so a call never leaves with a token
/// that expires on the way...
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// ...or this share of its lifetime, when that is shorter (a token living seconds, as the
/// sandbox can issue, is still used for most of its life).
pub const REFRESH_MARGIN_SHARE: f64 = 0.1;

/// How long a token answered with `expires_in` may be reused from the moment it was requested:
/// its lifetime less [`REFRESH_MARGIN`], or less [`REFRESH_MARGIN_SHARE`] of it when that is
/// shorter. A token without a lifetime is taken to live [`DEFAULT_TOKEN_LIFETIME`]; one with a
/// lifetime of 0 is not reused.
pub fn reuse_for(expires_in: Option<u64>) -> Duration {
    let life = expires_in.map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    let margin = REFRESH_MARGIN.min(life.mul_f64(REFRESH_MARGIN_SHARE));
    life.saturating_sub(margin)
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// RFC 6749 §5.2 error body.
#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `expires_in` as a number of seconds (some servers send it as a string).
fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Classifies a refused token request. `error` codes that mean "this client may not have a
/// token" count as 401, whatever status carried them, so they read as refused credentials.
fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> CredlyError {
    let parsed: Option<TokenError> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|e| e.error.clone());
    let message = match &parsed {
        Some(TokenError {
            error: Some(code),
            error_description,
        }) => match error_description {
            Some(d) => format!("{code}: {d}"),
            None => code.clone(),
        },
        _ => crate::client::error_message(body),
    };
    // Short, and never an echo of a request: the token endpoint answers only codes and prose.
    let message: String = message.chars().take(200).collect();
    let refused = matches!(
        code.as_deref(),
        Some("invalid_client" | "invalid_grant" | "unauthorized_client")
    );
    if refused && (400..500).contains(&status) {
        return CredlyError::Unauthorized(message);
    }
    CredlyError::from_status(status, message, retry_after)
}

impl CredlyClient {
    /// Requests an access token with the client credentials grant for `scope` (space-separated
    /// scope names) at the configured token URL.
    pub async fn request_access_token(
        &self,
        client: ClientCredentials<'_>,
        scope: &str,
    ) -> Result<AccessToken, CredlyError> {
        let url = self
            .token_url
            .clone()
            .ok_or_else(|| CredlyError::Config("no OAuth token URL is configured".into()))?;
        let host = url.host_str().unwrap_or("?").to_string();
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id),
            ("client_secret", client.client_secret),
        ];
        if !scope.trim().is_empty() {
            form.push(("scope", scope.trim()));
        }
        let resp = self
            .token_http
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(e, &host))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| transport(e, &host))?;
        tracing::debug!(status, host = %host, "credly token request");
        if (300..400).contains(&status) {
            // Not followed (see `token_http`): a moved token endpoint is a configuration matter.
            return Err(CredlyError::Rejected {
                status,
                message: "the token endpoint answered with a redirect, which is not followed"
                    .into(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(classify(status, &bytes, retry_after));
        }
        let answer: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| CredlyError::Decode(format!("token answer: {e}")))?;
        let access_token = answer
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| CredlyError::Decode("the token answer has no access_token".into()))?;
        Ok(AccessToken {
            access_token,
            expires_in: answer.expires_in.as_ref().and_then(seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_reused_until_shortly_before_it_expires() {
        // Two hours: dropped a minute early.
        assert_eq!(reuse_for(Some(7200)), Duration::from_secs(7140));
        // No lifetime given: Credly's two hours.
        assert_eq!(reuse_for(None), Duration::from_secs(7140));
        // Ten minutes: still a minute early.
        assert_eq!(reuse_for(Some(600)), Duration::from_secs(540));
        // Short lifetimes keep 90% of their life rather than nothing.
        assert_eq!(reuse_for(Some(300)), Duration::from_secs(270));
        assert_eq!(reuse_for(Some(3)), Duration::from_millis(2700));
        // A token that lives for no time is not reused.
        assert_eq!(reuse_for(Some(0)), Duration::ZERO);
    }

    #[test]
    fn refused_clients_read_as_unauthorized_and_outages_as_retryable() {
        let refused = classify(
            400,
            br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
            None,
        );
        assert_eq!(
            refused,
            CredlyError::Unauthorized("invalid_client: Client authentication failed".into())
        );
        assert!(refused.is_permanent());
        assert!(matches!(
            classify(401, b"{}", None),
            CredlyError::Unauthorized(_)
        ));
        let scope = classify(400, br#"{"error":"invalid_scope"}"#, None);
        assert_eq!(
            scope,
            CredlyError::Rejected {
                status: 400,
                message: "invalid_scope".into()
            }
        );
        for status in [500, 502, 503, 429, 408] {
            assert!(!classify(status, b"<html>down</html>", None).is_permanent());
        }
        let limited = classify(429, b"", Some(Duration::from_secs(3)));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn lifetimes_are_read_as_numbers_or_strings() {
        assert_eq!(seconds(&serde_json::json!(7200)), Some(7200));
        assert_eq!(seconds(&serde_json::json!("60")), Some(60));
        assert_eq!(seconds(&serde_json::json!(-1)), None);
        assert_eq!(seconds(&serde_json::json!(null)), None);
    }
}
