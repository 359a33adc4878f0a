//! A client for the parts of Credly's Web Service API v1 that Accolade uses: read the
//! organization, list badge templates (all pages, `state::active`), fetch events (webhook
//! confirmation), issue, find and revoke badges.
//!
//! Every call returns a [`CredlyError`] that says whether retrying can help
//! ([`CredlyError::is_permanent`]) and how long Credly asked to wait
//! ([`CredlyError::retry_after`]); the outbox worker decides from that. The API key is sent as
//! HTTP Basic (`base64("key:")`), marked sensitive so it never appears in debug output.
#![forbid(unsafe_code)]

mod client;
mod error;
mod types;

pub use client::{Credentials, CredlyClient};
pub use error::CredlyError;
pub use types::*;

/// Credly's production API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.credly.com/v1/";
/// Credly's production web host (dashboard links).
pub const DEFAULT_BASE_URL: &str = "https://credly.com/";
/// Credly's sandbox API.
pub const SANDBOX_API_BASE_URL: &str = "https://sandbox-api.credly.com/v1/";
/// Credly's sandbox web host.
pub const SANDBOX_BASE_URL: &str = "https://sandbox.credly.com/";
/// Credly keys live this long unless Credly reports an `expires_at`.
pub const KEY_LIFETIME_DAYS: i64 = 180;
