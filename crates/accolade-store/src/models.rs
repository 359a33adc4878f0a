//! Values exchanged with the store: inputs of write operations, filters, pages and read models.

use accolade_domain::award::AwardState;
use accolade_domain::event::validate_event_type;
use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::outbox::JobStatus;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{validate_name, Penalty, Requirement, Template};
use accolade_domain::template::{Group, Origin};
use accolade_domain::DomainError;

pub use accolade_domain::rules_apply::{DesiredPenalty, DesiredRequirement, DesiredTemplate};
pub use accolade_domain::template::NewTemplate;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Offset pagination. `limit` is clamped to 1..=500 by [`Page::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

impl Page {
    pub const MAX_LIMIT: u32 = 500;
    pub fn new(limit: Option<u32>, offset: Option<u64>) -> Self {
        Page {
            limit: limit.unwrap_or(50).clamp(1, Self::MAX_LIMIT),
            offset: offset.unwrap_or(0),
        }
    }
    /// Builds a page result from `limit + 1` fetched rows.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> Paged<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        Paged {
            next_offset: more.then_some(self.offset + self.limit as u64),
            items: rows,
        }
    }
    /// Rows to fetch (one more than asked, to know whether another page exists).
    pub fn fetch(&self) -> i64 {
        self.limit as i64 + 1
    }
}

impl Default for Page {
    fn default() -> Self {
        Page::new(None, None)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Offset of the next page, if there is one.
    pub next_offset: Option<u64>,
}

/// A partial update of a template's own fields (`None`: unchanged; `Some(None)` clears an
/// optional field).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplatePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<Option<String>>,
    pub allow_reaward: Option<bool>,
    /// Applies to awards made from then on; existing awards keep their `expires_at`.
    pub expires_after: Option<Option<ExpiresAfter>>,
    /// Checked with [`accolade_domain::expiry::criteria`] by the stores (blank clears it).
    pub criteria: Option<Option<String>>,
}

impl TemplatePatch {
    /// Validates the given fields and applies them to `t` (shared by both stores). The name is
    /// checked as given and stored trimmed.
    pub fn apply_to(self, t: &mut Template) -> Result<(), DomainError> {
        if let Some(n) = self.name {
            validate_name("name", &n)?;
            t.name = n.trim().to_string();
        }
        if let Some(d) = self.description {
            t.description = d;
        }
        if let Some(i) = self.image_url {
            t.image_url = i;
        }
        if let Some(a) = self.allow_reaward {
            t.allow_reaward = a;
        }
        if let Some(e) = self.expires_after {
            t.expires_after = e;
        }
        if let Some(c) = self.criteria {
            t.criteria = accolade_domain::expiry::criteria(c)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateFilter {
    pub origin: Option<Origin>,
    pub active: Option<bool>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub organization_id: Option<String>,
    /// The provider's state, e.g. Credly's `active` or `inactive` (after it stopped listing it).
    pub provider_state: Option<String>,
}

/// A new requirement; `group: None` takes the next free letter.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequirement {
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub group: Option<Group>,
    pub rules: Vec<DataRule>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequirementPatch {
    pub event_type: Option<String>,
    pub description: Option<String>,
    pub group: Option<Group>,
    pub rules: Option<Vec<DataRule>>,
}

impl RequirementPatch {
    /// Validates the given fields and applies them to `r` (shared by both stores).
    pub fn apply_to(self, r: &mut Requirement) -> Result<(), DomainError> {
        if let Some(e) = self.event_type {
            validate_event_type(&e)?;
            r.event_type = e;
        }
        if let Some(d) = self.description {
            r.description = d;
        }
        if let Some(g) = self.group {
            r.group = g;
        }
        if let Some(rules) = self.rules {
            rules.iter().try_for_each(DataRule::validate)?;
            r.rules = rules;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPenalty {
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub rules: Vec<DataRule>,
    pub requirement_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PenaltyPatch {
    pub event_type: Option<String>,
    pub description: Option<String>,
    pub rules: Option<Vec<DataRule>>,
    pub requirement_ids: Option<Vec<String>>,
}

impl PenaltyPatch {
    /// Validates and applies the event type, description and rules to `p`; the caller handles
    /// `requirement_ids`, which needs the database (shared by both stores).
    pub fn apply_to(&mut self, p: &mut Penalty) -> Result<(), DomainError> {
        if let Some(e) = self.event_type.take() {
            validate_event_type(&e)?;
            p.event_type = e;
        }
        if let Some(d) = self.description.take() {
            p.description = d;
        }
        if let Some(rules) = self.rules.take() {
            rules.iter().try_for_each(DataRule::validate)?;
            p.rules = rules;
        }
        Ok(())
    }
}

/// What happened to one event handed to [`crate::EventStore::process_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored and processed; ids of awards made and revoked because of it.
    Accepted {
        awarded: Vec<String>,
        revoked: Vec<String>,
    },
    /// An event with this id was already processed; nothing changed.
    Duplicate,
}

/// An event refused at ingest, kept so operators can see what was dropped and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedEvent {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub code: String,
    pub detail: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
}

/// An event in the inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub learner: String,
    pub time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: serde_json::Value,
}

/// A requirement a learner has fulfilled, and by which event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fulfillment {
    pub template_id: String,
    pub requirement_id: String,
    pub event_id: Option<String>,
    pub fulfilled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwardFilter {
    pub learner: Option<String>,
    pub template_id: Option<String>,
    pub state: Option<AwardState>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub kind: Option<String>,
}

/// A stored learner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Learner {
    pub username: String,
    pub lms_user_id: Option<i64>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An admin API token (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// What the token may do (`events:write`, `read`, `admin`), as given when it was made.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Refreshed when a request reads the token from the store, at most about every ten
    /// seconds per token and instance (the verification cache).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Not accepted from then on (None: no expiry).
    pub expires_at: Option<DateTime<Utc>>,
    /// Set once the token is revoked; it is never accepted again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token to create: its name, the SHA-256 of its secret, scopes and optional expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiToken {
    pub name: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A manual award or revocation.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualChange {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Counters for `/metrics` and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreStats {
    pub outbox_pending: i64,
    pub outbox_dead: i64,
    pub events: i64,
    pub awards_active: i64,
    /// Award episodes that were revoked.
    pub awards_revoked: i64,
}

/// The result of finishing a claimed job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Succeeded,
    /// Try again at `run_at`.
    Retry {
        run_at: DateTime<Utc>,
        error: String,
    },
    /// Give up: the job is dead until an operator retries it.
    Dead {
        error: String,
    },
    /// Not attempted (e.g. the organization's key has expired): wait until `run_at` without
    /// using up an attempt.
    Defer {
        run_at: DateTime<Utc>,
        reason: String,
        /// The Credly organization whose expired key the job waits for: rotating that key makes
        /// it due at once ([`crate::OutboxStore::release_jobs_waiting_for_key`]). If the stored
        /// key is already current when the result is recorded (rotated while the job ran), the
        /// job is due at once and not marked.
        waiting_for_key: Option<String>,
    },
}

/// A finished job with the award delivery it produced, recorded together (see
/// [`crate::OutboxStore::finish_jobs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobCompletion {
    pub job_id: String,
    pub result: JobResult,
    /// `(award id, delivery)` to record on the award first.
    pub delivery: Option<(String, Delivery)>,
}

/// The outcome of delivering an award to its provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub state: AwardState,
    pub issued_at: Option<DateTime<Utc>>,
    pub external_id: Option<String>,
    pub external_state: Option<String>,
}

// ---- Credly -------------------------------------------------------------------------------

/// How a Credly organization authenticates: with an authorization token ("API key", HTTP
/// Basic) or with OAuth 2.0 client credentials (Bearer access tokens). One or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CredlyAuthMethod {
    #[serde(rename = "token")]
    Token,
    #[serde(rename = "oauth")]
    OAuth,
}

impl CredlyAuthMethod {
    /// The stored and shown name: `token` or `oauth`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredlyAuthMethod::Token => "token",
            CredlyAuthMethod::OAuth => "oauth",
        }
    }

    pub fn parse(s: &str) -> Option<CredlyAuthMethod> {
        match s {
            "token" => Some(CredlyAuthMethod::Token),
            "oauth" => Some(CredlyAuthMethod::OAuth),
            _ => None,
        }
    }
}

/// What started a rotation of an authorization token through Credly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RotationTrigger {
    /// An operator (API, admin UI, CLI).
    #[serde(rename = "manual")]
    Manual,
    /// The periodic check (`credly.auto_rotate_days`).
    #[serde(rename = "auto")]
    Auto,
}

impl RotationTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationTrigger::Manual => "manual",
            RotationTrigger::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<RotationTrigger> {
        match s {
            "manual" => Some(RotationTrigger::Manual),
            "auto" => Some(RotationTrigger::Auto),
            _ => None,
        }
    }
}

/// The last rotation attempt of an organization's authorization token (no secret in it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRotation {
    pub at: DateTime<Utc>,
    pub trigger: RotationTrigger,
    /// Whether a new token was stored.
    pub ok: bool,
    /// Why it failed (or a note on success), for the operator.
    pub detail: Option<String>,
}

/// A Credly organization as stored. Its secrets (the API key, or the OAuth client id and
/// secret) are only ever returned encrypted, by [`crate::CredlyStore::credly_org_key`] and
/// [`crate::CredlyStore::credly_org_oauth_client`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredlyOrganization {
    /// Credly's organization UUID.
    pub id: String,
    /// The name Credly reported when the credentials were last checked.
    pub name: String,
    pub auth_method: CredlyAuthMethod,
    /// The last four characters of the key, to tell keys apart (token method only).
    pub api_key_last4: Option<String>,
    /// When the key was made and when it expires (token method only).
    pub key_created_at: Option<DateTime<Utc>>,
    pub key_expires_at: Option<DateTime<Utc>>,
    /// The last four characters of the OAuth client id (OAuth method only).
    pub oauth_client_id_last4: Option<String>,
    /// When the OAuth client credentials were saved (OAuth method only).
    pub oauth_created_at: Option<DateTime<Utc>>,
    /// The last rotation of the key through Credly, if any.
    pub last_rotation: Option<KeyRotation>,
    /// Set while an instance rotates the key (see `claim_credly_key_rotation`).
    pub rotation_lease_until: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync: Option<SyncSummary>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An encrypted API key with its dates.
#[derive(Clone, PartialEq)]
pub struct CredlyKey {
    /// Nonce and ciphertext, as produced by the server's secret box.
    pub ciphertext: Vec<u8>,
    pub last4: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for CredlyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredlyKey")
            .field("last4", &self.last4)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Encrypted OAuth client credentials: the client id and the client secret, each sealed on its
/// own by the server's secret box.
#[derive(Clone, PartialEq)]
pub struct OAuthClient {
    pub client_id_ciphertext: Vec<u8>,
    pub client_secret_ciphertext: Vec<u8>,
    /// The last four characters of the client id, to tell clients apart.
    pub client_id_last4: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id_last4", &self.client_id_last4)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A new organization that authenticates with OAuth client credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredlyOAuthOrganization {
    pub id: String,
    pub name: String,
    pub client: OAuthClient,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewCredlyOrganization {
    pub id: String,
    pub name: String,
    pub key: CredlyKey,
}

/// What a template sync changed (or would change, on a dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SyncSummary {
    pub created: u32,
    pub updated: u32,
    pub deactivated: u32,
    pub unchanged: u32,
    /// Pages fetched from Credly.
    pub pages: u32,
}

impl SyncSummary {
    /// The counts of a planned sync that fetched `pages` pages.
    pub fn of(plan: &accolade_domain::credly_sync::SyncPlan, pages: u32) -> SyncSummary {
        SyncSummary {
            created: plan.created,
            updated: plan.updated,
            deactivated: plan.deactivated,
            unchanged: plan.unchanged,
            pages,
        }
    }
}

pub use accolade_domain::credly_sync::{ProviderTemplate, PROVIDER_STATE_GONE};

/// What applying one provider template did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateChange {
    Created,
    Updated,
    Unchanged,
    /// A change for a template Accolade does not have (e.g. deleting one never synced).
    Missing,
}

/// A Credly webhook notification as received (before it is confirmed with Credly).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCredlyNotification {
    /// Credly's event id.
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    pub occurred_at: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// A recorded webhook notification and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CredlyNotification {
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    pub occurred_at: Option<String>,
    pub received_at: DateTime<Utc>,
    /// `received`, `applied`, `ignored` or `rejected`.
    pub status: String,
    pub detail: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// A badge.awarded / badge.revoked event waiting to be published on the event bus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingPublication {
    pub id: String,
    pub event_type: String,
    pub award_id: String,
    pub time: DateTime<Utc>,
    /// The `badge` data (openedx-events `BadgeData`).
    pub payload: serde_json::Value,
}
