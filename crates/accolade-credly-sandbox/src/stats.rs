//! Request and outcome counters (per route, issued/revoked, injected faults,
//! webhook deliveries), kept in atomics so counting costs no lock.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many webhook deliveries [`Stats::webhooks`] keeps (the most recent ones).
pub const WEBHOOK_LOG_LEN: usize = 200;

/// A snapshot of the sandbox counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// API requests per route name (see [`Route`] names; faulted and refused requests count too).
    pub requests: BTreeMap<String, u64>,
    /// All `/v1/…` requests that matched a route.
    pub total_requests: u64,
    /// Requests refused with 401.
    pub unauthorized: u64,
    /// Badges issued (201 answers).
    pub issued: u64,
    /// Badges revoked (200 answers).
    pub revoked: u64,
    /// Issue requests refused as duplicates.
    pub duplicates_refused: u64,
    /// Injected 5xx answers (`fail_next` 5xx and `error_rate`).
    pub injected_5xx: u64,
    /// Injected 429 answers (`fail_next` 429 and `rate_limit`).
    pub injected_429: u64,
    /// Injected answers with other statuses (`fail_next`, e.g. 401 or 404).
    pub injected_other: u64,
    /// Access tokens issued by `POST /oauth/token`.
    pub access_tokens_issued: u64,
    /// Token requests refused (unknown client, wrong secret, grant or scope).
    pub token_requests_refused: u64,
    /// Authorization tokens rotated.
    pub tokens_rotated: u64,
    /// Events recorded.
    pub events: u64,
    /// Webhook POST attempts (including retries).
    pub webhook_attempts: u64,
    /// Webhooks delivered (receiver answered 200).
    pub webhook_delivered: u64,
    /// Webhooks given up after all retries.
    pub webhook_failed: u64,
    /// The most recent deliveries, oldest first (at most [`WEBHOOK_LOG_LEN`]).
    pub webhooks: Vec<WebhookDelivery>,
}

/// The outcome of one webhook delivery (after retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Event id that was POSTed.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// Organization.
    pub organization_id: String,
    /// Target URL.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last HTTP status received, if any.
    pub status: Option<u16>,
    /// Whether a 200 was received.
    pub delivered: bool,
    /// Last transport error, if any.
    pub error: Option<String>,
}

/// API routes, for per-route counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    ListOrganizations,
    GetOrganization,
    ListAuthorizationTokens,
    ListBadgeTemplates,
    GetBadgeTemplate,
    ListEvents,
    GetEvent,
    IssueBadge,
    ListBadges,
    GetBadge,
    RevokeBadge,
    RotateAuthorizationToken,
    OAuthToken,
}

impl Route {
    const COUNT: usize = 13;
    const ALL: [Route; Route::COUNT] = [
        Route::ListOrganizations,
        Route::GetOrganization,
        Route::ListAuthorizationTokens,
        Route::ListBadgeTemplates,
        Route::GetBadgeTemplate,
        Route::ListEvents,
        Route::GetEvent,
        Route::IssueBadge,
        Route::ListBadges,
        Route::GetBadge,
        Route::RevokeBadge,
        Route::RotateAuthorizationToken,
        Route::OAuthToken,
    ];

    /// Stable name used as the key in [`Stats::requests`].
    pub fn name(self) -> &'static str {
        match self {
            Route::ListOrganizations => "list_organizations",
            Route::GetOrganization => "get_organization",
            Route::ListAuthorizationTokens => "list_authorization_tokens",
            Route::ListBadgeTemplates => "list_badge_templates",
            Route::GetBadgeTemplate => "get_badge_template",
            Route::ListEvents => "list_events",
            Route::GetEvent => "get_event",
            Route::IssueBadge => "issue_badge",
            Route::ListBadges => "list_badges",
            Route::GetBadge => "get_badge",
            Route::RevokeBadge => "revoke_badge",
            Route::RotateAuthorizationToken => "rotate_authorization_token",
            Route::OAuthToken => "oauth_token",
        }
    }

    /// Identifies the route from the matched path pattern and the method.
    pub fn from_matched(pattern: &str, is_post: bool) -> Option<Route> {
        let p = pattern.strip_suffix('/').unwrap_or(pattern);
        Some(match p {
            "/v1/organizations" => Route::ListOrganizations,
            "/v1/organizations/{org}" => Route::GetOrganization,
            "/v1/organizations/{org}/authorization_tokens" => Route::ListAuthorizationTokens,
            "/v1/organizations/{org}/badge_templates" => Route::ListBadgeTemplates,
            "/v1/organizations/{org}/badge_templates/{id}" => Route::GetBadgeTemplate,
            "/v1/organizations/{org}/events" => Route::ListEvents,
            "/v1/organizations/{org}/events/{id}" => Route::GetEvent,
            "/v1/organizations/{org}/badges" if is_post => Route::IssueBadge,
            "/v1/organizations/{org}/badges" => Route::ListBadges,
            "/v1/organizations/{org}/badges/{id}" => Route::GetBadge,
            "/v1/organizations/{org}/badges/{id}/revoke" => Route::RevokeBadge,
            "/v1/organizations/{org}/authorization_tokens/rotate" => {
                Route::RotateAuthorizationToken
            }
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counters.
#[derive(Default)]
pub(crate) struct Counters {
    requests: [AtomicU64; Route::COUNT],
    pub unauthorized: AtomicU64,
    pub issued: AtomicU64,
    pub revoked: AtomicU64,
    pub duplicates_refused: AtomicU64,
    pub injected_5xx: AtomicU64,
    pub injected_429: AtomicU64,
    pub injected_other: AtomicU64,
    pub access_tokens_issued: AtomicU64,
    pub token_requests_refused: AtomicU64,
    pub tokens_rotated: AtomicU64,
    pub events: AtomicU64,
    pub webhook_attempts: AtomicU64,
    pub webhook_delivered: AtomicU64,
    pub webhook_failed: AtomicU64,
    webhooks: Mutex<VecDeque<WebhookDelivery>>,
}

impl Counters {
    pub fn hit(&self, route: Route) {
        self.requests[route.index()].fetch_add(1, Relaxed);
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn record_delivery(&self, d: WebhookDelivery) {
        if d.delivered {
            Self::bump(&self.webhook_delivered);
        } else {
            Self::bump(&self.webhook_failed);
        }
        let mut log = self.webhooks.lock();
        if log.len() == WEBHOOK_LOG_LEN {
            log.pop_front();
        }
        log.push_back(d);
    }

    pub fn snapshot(&self) -> Stats {
        let mut requests = BTreeMap::new();
        let mut total = 0;
        for r in Route::ALL {
            let n = self.requests[r.index()].load(Relaxed);
            total += n;
            if n > 0 {
                requests.insert(r.name().to_owned(), n);
            }
        }
        Stats {
            requests,
            total_requests: total,
            unauthorized: self.unauthorized.load(Relaxed),
            issued: self.issued.load(Relaxed),
            revoked: self.revoked.load(Relaxed),
            duplicates_refused: self.duplicates_refused.load(Relaxed),
            injected_5xx: self.injected_5xx.load(Relaxed),
            injected_429: self.injected_429.load(Relaxed),
            injected_other: self.injected_other.load(Relaxed),
            access_tokens_issued: self.access_tokens_issued.load(Relaxed),
            token_requests_refused: self.token_requests_refused.load(Relaxed),
            tokens_rotated: self.tokens_rotated.load(Relaxed),
            events: self.events.load(Relaxed),
            webhook_attempts: self.webhook_attempts.load(Relaxed),
            webhook_delivered: self.webhook_delivered.load(Relaxed),
            webhook_failed: self.webhook_failed.load(Relaxed),
            webhooks: self.webhooks.lock().iter().cloned().collect(),
        }
    }

    pub fn reset(&self) {
        for c in &self.requests {
            c.store(0, Relaxed);
        }
        for c in [
            &self.unauthorized,
            &self.issued,
            &self.revoked,
            &self.duplicates_refused,
            &self.injected_5xx,
            &self.injected_429,
            &self.injected_other,
            &self.access_tokens_issued,
            &self.token_requests_refused,
            &self.tokens_rotated,
            &self.events,
            &self.webhook_attempts,
            &self.webhook_delivered,
            &self.webhook_failed,
        ] {
            c.store(0, Relaxed);
        }
        self.webhooks.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_and_indices_agree() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(
            Route::from_matched("/v1/organizations/{org}/badges/", true),
            Some(Route::IssueBadge)
        );
        assert_eq!(
            Route::from_matched("/v1/organizations/{org}/badges", false),
            Some(Route::ListBadges)
        );
    }
}
