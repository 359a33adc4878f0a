//! A client for the parts of Credly's Web Service API v1 that Accolade uses: read the
//! organization, list badge templates (all pages, `state::active`), fetch events (webhook
//! confirmation), issue, find and revoke badges.
//!
//! Every call returns a [`CredlyError`] that says whether retrying can help
//! ([`CredlyError::is_permanent`]) and how long Credly asked to wait
//! ([`CredlyError::retry_after`]); the outbox worker decides from that. An organization
//! authenticates with an authorization token ("API key"), sent as HTTP Basic (`base64("key:")`),
//! or with an OAuth access token obtained with its client credentials (`oauth.rs`), sent as
//! `Bearer`; either header is marked sensitive so it never appears in debug output. Authorization
//! tokens can be rotated through Credly ([`CredlyClient::rotate_authorization_token`]).
#![forbid(unsafe_code)]

mod client;
mod error;
pub mod oauth;
mod types;

pub use client::{Credentials, CredlyClient, Secret};
pub use error::CredlyError;
pub use oauth::{AccessToken, ClientCredentials};
pub use types::*;

/// Credly's production API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.credly.com/v1/";
/// Credly's production web host (dashboard links).
pub const DEFAULT_BASE_URL: &str = "https://credly.com/";
/// Credly's sandbox API.
pub const SANDBOX_API_BASE_URL: &str = "https://sandbox-api.credly.com/v1/";
/// Credly's sandbox web host.
pub const SANDBOX_BASE_URL: &str = "https://sandbox.credly.com/";
/// Credly's OAuth token endpoint: on the web host, not the API host, as Credly's OAuth page says
/// (credly-auth.md §4.3).
pub const DEFAULT_OAUTH_TOKEN_URL: &str = "https://www.credly.com/oauth/token";
/// The token endpoint assumed for Credly's sandbox. Nothing documents one; this is the
/// production rule (the web host) applied to the sandbox's web host, so it stays overridable.
pub const SANDBOX_OAUTH_TOKEN_URL: &str = "https://sandbox.credly.com/oauth/token";
/// Scopes requested with client credentials: templates (sync), issued badges (issue, revoke)
/// and events (confirming webhook notifications).
pub const DEFAULT_OAUTH_SCOPE: &str = "badge_templates issued_badges events";
/// Credly keys live this long unless Credly reports an `expires_at`.
pub const KEY_LIFETIME_DAYS: i64 = 180;
