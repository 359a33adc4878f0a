//! A Credly-compatible fake server (the "Credly sandbox") for Accolade's tests,
//! benchmarks and `accolade serve --demo`: the Credly Web Service API v1 flow
//! (organization, badge templates, issue/list/revoke badges, events, webhooks)
//! in memory, with no Credly account and no network.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use accolade_credly_sandbox::{Sandbox, Seed, DEMO_ORG_ID, DEMO_TOKEN};
//! let running = Sandbox::start(Seed::demo()).await?;
//! let url = format!("{}organizations/{DEMO_ORG_ID}/badge_templates", running.api_base_url);
//! let page: serde_json::Value = reqwest::Client::new()
//!     .get(url)
//!     .basic_auth(DEMO_TOKEN, Some(""))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert!(page["data"].is_array());
//! # Ok(()) }
//! ```
//!
//! Authentication: HTTP Basic with the token as the username; `base64("token:")`,
//! `base64("token")` and `base64("token|")` are accepted; or `Bearer` with an access
//! token from `POST /oauth/token` (client credentials of an organization's OAuth client).
//! Unknown or expired tokens get 401. A valid token used on another existing organization
//! also gets **401** (not 403). A valid token on an unknown organization gets 404.
//! `POST /v1/organizations/{org}/authorization_tokens/rotate` replaces the token it is
//! called with; the old one is refused at once.

#![forbid(unsafe_code)]

mod api;
mod auth;
pub mod cli;
mod control;
mod credentials;
mod error;
mod faults;
mod listing;
mod model;
mod params;
mod render;
mod seed;
mod stats;
mod token;
mod util;
mod webhook;

use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;

pub use credentials::{DEFAULT_ACCESS_TOKEN_LIFETIME_SECS, SCOPES as OAUTH_SCOPES};
pub use error::ApiError;
pub use faults::{Faults, RateLimitFault};
pub use listing::{DEFAULT_PER, MAX_PER};
pub use model::DEFAULT_TOKEN_LIFETIME_DAYS;
pub use params::parse_time;
pub use seed::{
    Generate, Seed, SeedOAuthClient, SeedOrganization, SeedTemplate, SeedToken, DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET, DEMO_ORG_ID, DEMO_ORG_NAME, DEMO_TOKEN, TEMPLATE_STATES,
};
pub use stats::{Stats, WebhookDelivery, WEBHOOK_LOG_LEN};
pub use webhook::{
    ATTEMPT_TIMEOUT as WEBHOOK_ATTEMPT_TIMEOUT, RETRY_DELAYS_MS as WEBHOOK_RETRY_DELAYS_MS,
};

use faults::FaultEngine;
use model::{Changed, State};
use render::Ctx;
use stats::Counters;
use webhook::Webhooks;

/// Fallback base URL for links when neither a `Host` header nor a served address is known.
const FALLBACK_BASE: &str = "http://127.0.0.1/";

/// The sandbox: state, faults and counters. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub state: RwLock<State>,
    pub faults: FaultEngine,
    pub counters: Counters,
    pub webhooks: Webhooks,
    public_base: RwLock<Option<String>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("public_base", &self.public_base())
            .finish_non_exhaustive()
    }
}

/// A sandbox serving on `127.0.0.1` in a background task; dropping it stops the server.
#[derive(Debug)]
pub struct RunningSandbox {
    /// The sandbox (for control helpers).
    pub sandbox: Sandbox,
    /// `http://127.0.0.1:PORT/`.
    pub base_url: String,
    /// `base_url` + `v1/` (what a Credly client uses as its API base).
    pub api_base_url: String,
    /// `base_url` + `oauth/token` (the OAuth token endpoint).
    pub oauth_token_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn both(
    router: Router<Sandbox>,
    path: &str,
    m: MethodRouter<Sandbox>,
) -> Router<Sandbox> {
    router.route(path, m.clone()).route(&format!("{path}/"), m)
}

impl Sandbox {
    /// Builds a sandbox from a seed. Templates naming an unknown organization create it
    /// (with a warning); use [`Seed::validate`] to reject such seeds instead.
    pub fn new(seed: Seed) -> Sandbox {
        Sandbox {
            inner: Arc::new(Inner {
                state: RwLock::new(State::from_seed(seed)),
                faults: FaultEngine::new(Faults::default()),
                counters: Counters::default(),
                webhooks: Webhooks::default(),
                public_base: RwLock::new(None),
            }),
        }
    }

    /// All routes: `/v1/…` (Credly API), `/_sandbox/…` (control) and the demo pages.
    pub fn router(&self) -> Router {
        let mut v1 = Router::new();
        v1 = both(v1, "/v1/organizations", get(api::list_organizations));
        v1 = both(v1, "/v1/organizations/{org}", get(api::get_organization));
        v1 = both(
            v1,
            "/v1/organizations/{org}/authorization_tokens",
            get(api::list_authorization_tokens),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/authorization_tokens/rotate",
            post(api::rotate_authorization_token),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/badge_templates",
            get(api::list_badge_templates),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/badge_templates/{id}",
            get(api::get_badge_template),
        );
        v1 = both(v1, "/v1/organizations/{org}/events", get(api::list_events));
        v1 = both(
            v1,
            "/v1/organizations/{org}/events/{id}",
            get(api::get_event),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/badges",
            get(api::list_badges).merge(post(api::issue_badge)),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/badges/{id}",
            get(api::get_badge),
        );
        v1 = both(
            v1,
            "/v1/organizations/{org}/badges/{id}/revoke",
            put(api::revoke_badge),
        );
        let v1 = v1.route_layer(axum::middleware::from_fn_with_state(
            self.clone(),
            api::guard,
        ));
        let oauth = both(Router::new(), "/oauth/token", post(token::token));
        Router::new()
            .merge(v1)
            .merge(oauth)
            .merge(control::routes())
            .fallback(api::not_found)
            .layer(axum::middleware::from_fn(api::log_requests))
            .with_state(self.clone())
    }

    /// Serves on `listener` until the future is dropped or the listener fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            let host = if addr.ip().is_unspecified() {
                SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
            } else {
                addr
            };
            *self.inner.public_base.write() = Some(format!("http://{host}/"));
        }
        let router = self.router();
        axum::serve(listener, router).await
    }

    /// Binds `127.0.0.1:0`, serves in a background task and returns a handle.
    pub async fn start(seed: Seed) -> anyhow::Result<RunningSandbox> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sandbox = Sandbox::new(seed);
        let base_url = format!("http://{addr}/");
        *sandbox.inner.public_base.write() = Some(base_url.clone());
        let task = tokio::spawn(sandbox.clone().serve(listener));
        Ok(RunningSandbox {
            sandbox,
            api_base_url: format!("{base_url}v1/"),
            oauth_token_url: format!("{base_url}oauth/token"),
            base_url,
            addr,
            task,
        })
    }

    /// The base URL links are built from when a request has no `Host` header
    /// (and for [`Sandbox::badges`] / [`Sandbox::events`]).
    pub fn public_base(&self) -> String {
        self.inner
            .public_base
            .read()
            .clone()
            .unwrap_or_else(|| FALLBACK_BASE.to_owned())
    }

    /// Replaces the fault configuration (and resets the fault counters).
    pub fn set_faults(&self, f: Faults) {
        self.inner.faults.set(f);
    }

    /// The current fault configuration (`fail_next` shows the statuses not yet used).
    pub fn faults(&self) -> Faults {
        self.inner.faults.get()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.inner.counters.reset();
    }

    /// Records the event of a change and queues its webhook.
    pub(crate) fn after_change<T>(&self, c: &Changed<T>) {
        Counters::bump(&self.inner.counters.events);
        if let Some(url) = &c.webhook_url {
            webhook::enqueue(self, webhook::Job::new(&c.event, url.clone()));
        }
    }

    /// Creates (no or unknown `id`) or changes a template; records
    /// `badge_template.created` / `badge_template.changed` and delivers the webhook.
    /// Returns the template id. An empty `organization_id` means the only organization
    /// (when there is exactly one). On a change, omitted `created_at` keeps the old value
    /// and `updated_at` becomes now.
    ///
    /// # Panics
    /// On an unknown organization, an invalid state or an empty name
    /// (see [`Sandbox::try_upsert_template`]).
    pub fn upsert_template(&self, t: SeedTemplate) -> String {
        self.try_upsert_template(t)
            .unwrap_or_else(|e| panic!("upsert_template: {}", e.message))
    }

    /// Like [`Sandbox::upsert_template`], returning errors instead of panicking.
    pub fn try_upsert_template(&self, t: SeedTemplate) -> Result<String, ApiError> {
        let changed = self.inner.state.write().upsert_template(t)?;
        self.after_change(&changed);
        Ok(changed.value)
    }

    /// Deletes a template; records `badge_template.deleted` (the event still carries
    /// the template) and delivers the webhook.
    ///
    /// # Panics
    /// On an unknown organization or template (see [`Sandbox::try_delete_template`]).
    pub fn delete_template(&self, org: &str, id: &str) {
        self.try_delete_template(org, id)
            .unwrap_or_else(|e| panic!("delete_template: {}", e.message))
    }

    /// Like [`Sandbox::delete_template`], returning errors instead of panicking.
    pub fn try_delete_template(&self, org: &str, id: &str) -> Result<(), ApiError> {
        let changed = self.inner.state.write().delete_template(org, id)?;
        self.after_change(&changed);
        Ok(())
    }

    /// Moves a pending badge to `accepted` or `rejected`; records `badge.state.changed`
    /// and delivers the webhook.
    ///
    /// # Panics
    /// On an unknown organization or badge, a state other than accepted/rejected, or a
    /// badge that is not pending (see [`Sandbox::try_set_badge_state`]).
    pub fn set_badge_state(&self, org: &str, badge_id: &str, state: &str) {
        self.try_set_badge_state(org, badge_id, state)
            .unwrap_or_else(|e| panic!("set_badge_state: {}", e.message))
    }

    /// Like [`Sandbox::set_badge_state`], returning errors instead of panicking.
    pub fn try_set_badge_state(
        &self,
        org: &str,
        badge_id: &str,
        state: &str,
    ) -> Result<(), ApiError> {
        let changed = self
            .inner
            .state
            .write()
            .set_badge_state(org, badge_id, state)?;
        self.after_change(&changed);
        Ok(())
    }

    /// Sets or clears an organization's webhook URL.
    ///
    /// # Panics
    /// On an unknown organization.
    pub fn set_webhook_url(&self, org: &str, url: Option<String>) {
        self.inner
            .state
            .write()
            .set_webhook_url(org, url)
            .unwrap_or_else(|e| panic!("set_webhook_url: {}", e.message))
    }

    /// Adds (or replaces) an OAuth client of an organization; its access tokens live
    /// `access_token_lifetime_secs` (default two hours).
    ///
    /// # Panics
    /// On an unknown organization or an empty id or secret.
    pub fn add_oauth_client(
        &self,
        org: &str,
        client_id: &str,
        client_secret: &str,
        access_token_lifetime_secs: Option<u64>,
    ) {
        self.inner
            .state
            .write()
            .add_oauth_client(org, client_id, client_secret, access_token_lifetime_secs)
            .unwrap_or_else(|e| panic!("add_oauth_client: {}", e.message))
    }

    /// The organization's authorization tokens that have not expired, newest first (a
    /// rotation's new token comes first).
    pub fn tokens(&self, org: &str) -> Vec<String> {
        let st = self.inner.state.read();
        let Some(o) = st.orgs.get(org) else {
            return Vec::new();
        };
        let now = Utc::now();
        let mut live: Vec<_> = o.tokens.iter().filter(|t| t.expires_at > now).collect();
        live.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        live.into_iter().map(|t| t.token.clone()).collect()
    }

    /// Adds (or replaces) a token; `expires_at` defaults to now + 180 days.
    ///
    /// # Panics
    /// On an unknown organization or an empty token.
    pub fn add_token(&self, org: &str, token: &str, expires_at: Option<DateTime<Utc>>) {
        self.inner
            .state
            .write()
            .add_token(org, token, expires_at)
            .unwrap_or_else(|e| panic!("add_token: {}", e.message))
    }

    /// Issued badges of an organization, oldest first, as the API serves them
    /// (empty for an unknown organization).
    pub fn badges(&self, org: &str) -> Vec<serde_json::Value> {
        let items: Vec<_> = match self.inner.state.read().orgs.get(org) {
            Some(o) => o.badges.clone(),
            None => return Vec::new(),
        };
        let base = self.public_base();
        items
            .iter()
            .map(|b| render::badge_value(b, Ctx { base: &base }))
            .collect()
    }

    /// Recorded events of an organization, oldest first, as `GET …/events/{id}` serves
    /// their `data` (empty for an unknown organization).
    pub fn events(&self, org: &str) -> Vec<serde_json::Value> {
        let items: Vec<_> = match self.inner.state.read().orgs.get(org) {
            Some(o) => o.events.clone(),
            None => return Vec::new(),
        };
        let base = self.public_base();
        items
            .iter()
            .map(|e| render::event_value(e, Ctx { base: &base }))
            .collect()
    }
}
