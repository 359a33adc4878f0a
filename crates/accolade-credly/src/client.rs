//! The HTTP client. One `CredlyClient` is shared by every organization; credentials travel with
//! each call.

use std::time::Duration;

use base64::Engine;
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::error::CredlyError;
use crate::types::*;

/// Templates per page when listing (Credly's documented default).
const PER_PAGE: u32 = 50;
/// Pages fetched at once after the first one told us how many there are.
const PAGE_CONCURRENCY: usize = 4;
/// Upper bound on pages followed, so a misbehaving server cannot keep a sync running forever.
const MAX_PAGES: u32 = 10_000;

/// What a call authenticates with. Credly accepts either method on the same `/v1` paths.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// An organization's authorization token ("API key"), sent as HTTP Basic `base64("token:")`.
    AuthorizationToken(&'a str),
    /// An OAuth 2.0 access token (client credentials grant), sent as `Authorization: Bearer …`.
    AccessToken(&'a str),
}

/// An organization's id and the secret a call sends for it.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub org_id: &'a str,
    pub secret: Secret<'a>,
}

impl<'a> Credentials<'a> {
    /// Authenticates with an authorization token (HTTP Basic).
    pub const fn token(org_id: &'a str, api_key: &'a str) -> Self {
        Credentials {
            org_id,
            secret: Secret::AuthorizationToken(api_key),
        }
    }

    /// Authenticates with an OAuth access token (Bearer).
    pub const fn bearer(org_id: &'a str, access_token: &'a str) -> Self {
        Credentials {
            org_id,
            secret: Secret::AccessToken(access_token),
        }
    }

    /// The `Authorization` header value, marked sensitive so it never shows in debug output.
    fn header(&self) -> Result<HeaderValue, CredlyError> {
        let text = match self.secret {
            Secret::AuthorizationToken(key) => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
            ),
            Secret::AccessToken(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            CredlyError::Config("the credentials contain invalid characters".into())
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match self.secret {
            Secret::AuthorizationToken(_) => "authorization token",
            Secret::AccessToken(_) => "access token",
        };
        f.debug_struct("Credentials")
            .field("org_id", &self.org_id)
            .field("method", &method)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct CredlyClient {
    http: reqwest::Client,
    base: Url,
    /// The OAuth token endpoint; without one, requesting an access token is a configuration
    /// error (see `oauth.rs`).
    pub(crate) token_url: Option<Url>,
    /// A client that never follows redirects, for the token endpoint: a 307/308 would carry the
    /// form body, client secret included, to wherever the answer points.
    pub(crate) token_http: reqwest::Client,
}

impl CredlyClient {
    /// `api_base_url` like `https://api.credly.com/v1/` (a missing trailing slash is added).
    pub fn new(api_base_url: &str, timeout: Duration) -> Result<Self, CredlyError> {
        let mut s = api_base_url.trim().to_string();
        if !s.ends_with('/') {
            s.push('/');
        }
        let base = Url::parse(&s)
            .map_err(|e| CredlyError::Config(format!("api_base_url `{api_base_url}`: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CredlyError::Config(format!(
                "api_base_url `{api_base_url}` must be http(s)"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("accolade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CredlyError::Config(e.to_string()))?;
        let token_http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("accolade/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CredlyError::Config(e.to_string()))?;
        Ok(CredlyClient {
            http,
            base,
            token_url: None,
            token_http,
        })
    }

    /// Sets the OAuth token endpoint, e.g. `https://www.credly.com/oauth/token`. Like the API
    /// base URL it comes from the operator's configuration only, never from an answer.
    pub fn with_token_url(mut self, token_url: &str) -> Result<Self, CredlyError> {
        let url = Url::parse(token_url.trim())
            .map_err(|e| CredlyError::Config(format!("oauth_token_url `{token_url}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(CredlyError::Config(format!(
                "oauth_token_url `{token_url}` must be an http(s) URL"
            )));
        }
        self.token_url = Some(url);
        Ok(self)
    }

    pub fn api_base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The OAuth token endpoint in use, if one is set.
    pub fn token_url(&self) -> Option<&str> {
        self.token_url.as_ref().map(Url::as_str)
    }

    fn org_url(&self, cred: Credentials<'_>, rest: &str) -> Result<Url, CredlyError> {
        // The org id goes into a path segment: refuse anything but a plain id so a crafted value
        // cannot point the request (and the key) elsewhere.
        if cred.org_id.is_empty()
            || !cred
                .org_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(CredlyError::Config(format!(
                "`{}` is not a valid organization id",
                cred.org_id
            )));
        }
        self.base
            .join(&format!("organizations/{}/{rest}", cred.org_id))
            .map_err(|e| CredlyError::Config(e.to_string()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        cred: Credentials<'_>,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<Envelope<T>, CredlyError> {
        let auth = cred.header()?;
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport(e, url.host_str().unwrap_or("?")))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(e, url.host_str().unwrap_or("?")))?;
        tracing::debug!(%method, path = url.path(), status, "credly call");
        if !(200..300).contains(&status) {
            return Err(CredlyError::from_status(
                status,
                error_message(&bytes),
                retry_after,
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CredlyError::Decode(format!("{} {}: {e}", method, url.path())))
    }

    /// `GET /organizations/{org}`: checks the key and returns the organization's name.
    pub async fn organization(&self, cred: Credentials<'_>) -> Result<Organization, CredlyError> {
        let url = self.org_url(cred, "")?;
        Ok(self.call(cred, Method::GET, url, None).await?.data)
    }

    /// `POST /organizations/{org}/authorization_tokens/rotate`, authenticated with the token to
    /// rotate and sent without a body (as the known clients do). Credly answers the new token in
    /// `data.token`, and the old one stops working at once: the caller must store the new token
    /// before anything else. An answer without a token is an error (`Decode`), whatever its
    /// status. The expiry is Credly's `expires_at`, else 180 days from now.
    pub async fn rotate_authorization_token(
        &self,
        cred: Credentials<'_>,
    ) -> Result<RotatedToken, CredlyError> {
        if !matches!(cred.secret, Secret::AuthorizationToken(_)) {
            return Err(CredlyError::Config(
                "only an authorization token can be rotated".into(),
            ));
        }
        let url = self.org_url(cred, "authorization_tokens/rotate")?;
        let env: Envelope<Option<AuthorizationToken>> =
            self.call(cred, Method::POST, url, None).await?;
        let data = env.data.unwrap_or(AuthorizationToken {
            id: None,
            token: None,
            created_at: None,
            expires_at: None,
        });
        let token = data
            .token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CredlyError::Decode("the rotate answer has no data.token".into()))?;
        let now = chrono::Utc::now();
        let created_at = data.created_at.unwrap_or(now);
        Ok(RotatedToken {
            token,
            created_at,
            expires_at: data
                .expires_at
                .unwrap_or(now + chrono::Duration::days(crate::KEY_LIFETIME_DAYS)),
        })
    }

    /// One template of the organization (any state), or none: used to learn the organization's
    /// name from the template's owner when `GET /organizations/{org}` refuses an OAuth token
    /// (reference: credly-auth.md §4.2).
    pub async fn any_template(
        &self,
        cred: Credentials<'_>,
    ) -> Result<Option<BadgeTemplate>, CredlyError> {
        let mut url = self.org_url(cred, "badge_templates")?;
        url.query_pairs_mut().append_pair("per", "1");
        let env: Envelope<Vec<BadgeTemplate>> = self.call(cred, Method::GET, url, None).await?;
        Ok(env.data.into_iter().next())
    }

    /// `GET /organizations/{org}/authorization_tokens`.
    pub async fn authorization_tokens(
        &self,
        cred: Credentials<'_>,
    ) -> Result<Vec<AuthorizationToken>, CredlyError> {
        let url = self.org_url(cred, "authorization_tokens")?;
        Ok(self.call(cred, Method::GET, url, None).await?.data)
    }

    fn templates_url(&self, cred: Credentials<'_>, page: u32) -> Result<Url, CredlyError> {
        let mut url = self.org_url(cred, "badge_templates")?;
        url.query_pairs_mut()
            .append_pair("filter", "state::active")
            .append_pair("sort", "created_at")
            .append_pair("per", &PER_PAGE.to_string())
            .append_pair("page", &page.to_string());
        Ok(url)
    }

    async fn templates_at(
        &self,
        cred: Credentials<'_>,
        url: Url,
    ) -> Result<TemplatePage, CredlyError> {
        let env: Envelope<Vec<BadgeTemplate>> = self.call(cred, Method::GET, url, None).await?;
        let meta = env.metadata.unwrap_or_default();
        Ok(TemplatePage {
            templates: env.data,
            total_pages: meta.total_pages.unwrap_or(0),
            next_page_url: meta.next_page_url,
        })
    }

    /// Every template of the organization whose state is `active`, across all pages, and the
    /// number of pages fetched. After the first page, the remaining pages are fetched a few at a
    /// time by number; when Credly does not say how many pages there are, `next_page_url` is
    /// followed (only on the API's own host, so the key never goes elsewhere).
    pub async fn active_templates(
        &self,
        cred: Credentials<'_>,
    ) -> Result<(Vec<BadgeTemplate>, u32), CredlyError> {
        let first = self
            .templates_at(cred, self.templates_url(cred, 1)?)
            .await?;
        let mut pages = 1u32;
        let mut all = first.templates;
        if first.total_pages > 1 {
            let total = first.total_pages.min(MAX_PAGES);
            let urls: Vec<Url> = (2..=total)
                .map(|p| self.templates_url(cred, p))
                .collect::<Result<_, _>>()?;
            let rest: Vec<TemplatePage> = stream::iter(urls)
                .map(|u| self.templates_at(cred, u))
                .buffered(PAGE_CONCURRENCY)
                .try_collect()
                .await?;
            pages += rest.len() as u32;
            all.extend(rest.into_iter().flat_map(|p| p.templates));
        } else if first.total_pages == 0 {
            let mut next = first.next_page_url;
            while let Some(n) = next.take() {
                if pages >= MAX_PAGES {
                    return Err(CredlyError::Decode(format!(
                        "more than {MAX_PAGES} pages of templates"
                    )));
                }
                let url = self.same_origin(&n)?;
                let page = self.templates_at(cred, url).await?;
                pages += 1;
                next = page.next_page_url.filter(|_| !page.templates.is_empty());
                all.extend(page.templates);
            }
        }
        // Defensive: the filter is Credly's job, but a template that is not active must never be
        // imported as if it were; and a template that moved between pages during the listing
        // must not count twice.
        let mut seen = std::collections::HashSet::new();
        all.retain(|t| t.state == "active" && seen.insert(t.id.clone()));
        Ok((all, pages))
    }

    fn same_origin(&self, next: &str) -> Result<Url, CredlyError> {
        let url = Url::parse(next)
            .map_err(|e| CredlyError::Decode(format!("next_page_url `{next}`: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(CredlyError::Decode(format!(
                "next_page_url `{next}` points away from {}",
                self.base
            )));
        }
        Ok(url)
    }

    /// `GET /organizations/{org}/events/{id}`: confirms a webhook notification.
    pub async fn event(&self, cred: Credentials<'_>, id: &str) -> Result<Event, CredlyError> {
        let url = self.org_url(cred, &format!("events/{}", path_segment(id)?))?;
        Ok(self.call(cred, Method::GET, url, None).await?.data)
    }

    /// `POST /organizations/{org}/badges`.
    pub async fn issue_badge(
        &self,
        cred: Credentials<'_>,
        issue: &IssueBadge,
    ) -> Result<IssuedBadge, CredlyError> {
        let url = self.org_url(cred, "badges")?;
        let body = serde_json::to_value(issue).map_err(|e| CredlyError::Config(e.to_string()))?;
        Ok(self.call(cred, Method::POST, url, Some(body)).await?.data)
    }

    /// Finds the recipient's badge of a template (used to reconcile a duplicate-issue 422).
    /// Revoked badges are skipped: a duplicate is always against a live one.
    pub async fn find_badge(
        &self,
        cred: Credentials<'_>,
        template_id: &str,
        recipient_email: &str,
    ) -> Result<Option<IssuedBadge>, CredlyError> {
        let mut url = self.org_url(cred, "badges")?;
        url.query_pairs_mut()
            .append_pair(
                "filter",
                &format!("badge_template_id::{template_id}|recipient_email::{recipient_email}"),
            )
            .append_pair("sort", "-issued_at");
        let env: Envelope<Vec<IssuedBadge>> = self.call(cred, Method::GET, url, None).await?;
        Ok(env.data.into_iter().find(|b| b.state != "revoked"))
    }

    /// `PUT /organizations/{org}/badges/{id}/revoke`.
    pub async fn revoke_badge(
        &self,
        cred: Credentials<'_>,
        badge_id: &str,
        reason: &str,
    ) -> Result<IssuedBadge, CredlyError> {
        let url = self.org_url(cred, &format!("badges/{}/revoke", path_segment(badge_id)?))?;
        let body =
            serde_json::json!({"reason": reason, "suppress_revoke_notification_email": false});
        Ok(self.call(cred, Method::PUT, url, Some(body)).await?.data)
    }
}

fn path_segment(id: &str) -> Result<&str, CredlyError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(id)
    } else {
        Err(CredlyError::Config(format!(
            "`{id}` is not a valid Credly id"
        )))
    }
}

pub(crate) fn transport(e: reqwest::Error, host: &str) -> CredlyError {
    if e.is_timeout() {
        CredlyError::Timeout
    } else {
        // The host, not the URL: short, and free of query strings. The source says why.
        let cause = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        CredlyError::Network(format!("{host}: {}{cause}", e.without_url()))
    }
}

/// `Retry-After` as seconds (the HTTP-date form is turned into a delay from now).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Credly's `data.message`, else a short prefix of the body.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for ptr in ["/data/message", "/message", "/error"] {
            if let Some(m) = v.pointer(ptr).and_then(|m| m.as_str()) {
                return m.to_string();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn error_messages_come_from_the_envelope() {
        assert_eq!(
            error_message(br#"{"data":{"message":"User already has this badge"}}"#),
            "User already has this badge"
        );
        assert_eq!(
            error_message(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn org_ids_cannot_escape_the_path() {
        let c = CredlyClient::new("http://127.0.0.1:9/v1", Duration::from_secs(1)).unwrap();
        let bad = Credentials::token("../../admin", "k");
        assert!(matches!(c.org_url(bad, ""), Err(CredlyError::Config(_))));
        let good = Credentials::token("37659132-1c9e-4aba-8849-d1e4cb175e67", "k");
        assert_eq!(
            c.org_url(good, "badges").unwrap().as_str(),
            "http://127.0.0.1:9/v1/organizations/37659132-1c9e-4aba-8849-d1e4cb175e67/badges"
        );
    }
}
