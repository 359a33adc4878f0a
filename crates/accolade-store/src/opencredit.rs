//! Records of the Open Credit-style API (`/v1.1`): apps, members (users and the organizations
//! they manage), their email addresses, access tokens and badges.
//!
//! Ids are integers, as in Credly's Open Credit API. Secrets (app secrets, passwords, tokens,
//! verification links) arrive here already hashed by the server and are never stored in clear.

use chrono::{DateTime, Utc};

/// A registered app; every `/v1.1` request carries its key and secret.
#[derive(Debug, Clone, PartialEq)]
pub struct OcApp {
    pub id: i64,
    pub name: String,
    /// Public key (sent as `X-Api-Key`), unique.
    pub api_key: String,
    /// Hex SHA-256 of the secret (sent as `X-Api-Secret`).
    pub secret_hash: String,
    /// `sandbox`, `light`, `medium`, `heavy` or `enterprise`.
    pub tier: String,
    pub created_at: DateTime<Utc>,
}

/// A member: a user (logs in with email and password) or an organization (managed by users).
#[derive(Debug, Clone, PartialEq)]
pub struct OcMember {
    pub id: i64,
    pub is_organization: bool,
    /// The primary address (users always have one; organizations may not).
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    /// Base name of the stored avatar image, if any.
    pub avatar: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How long an unverified claim on an address holds: after it, a new registration or addition
/// of the address takes it over (an address must not be blocked by someone who cannot verify
/// it). A verified new claim (Heavy and Enterprise apps) takes over at once.
pub const UNVERIFIED_CLAIM_DAYS: i64 = 7;

/// A registration: a user, and with `organization_name` also the organization the user manages.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOcMember {
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub organization_name: Option<String>,
    /// Create the address verified (Heavy and Enterprise apps may); else `verify_token_hash`
    /// names the link that verifies it.
    pub verified: bool,
    pub verify_token_hash: Option<String>,
}

/// A member's email address and whether it is verified.
#[derive(Debug, Clone, PartialEq)]
pub struct OcEmail {
    pub member_id: i64,
    pub email: String,
    pub verified_at: Option<DateTime<Utc>>,
}

/// An issued access or refresh token (stored by its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct OcToken {
    pub token_hash: String,
    pub member_id: i64,
    pub app_id: i64,
    /// `access` or `refresh`.
    pub kind: String,
    pub expires_at: DateTime<Utc>,
}

/// The editable fields of a badge (rich text already sanitised by the server).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OcBadgeFields {
    pub title: String,
    pub short_description: String,
    pub description: String,
    pub criteria: String,
    pub evidence_prompt: String,
    /// Base name of the stored image (served as `<image>.png` and `<image>_<code>.png`).
    pub image: Option<String>,
    /// Seconds a given badge stays valid; 0 = never expires.
    pub expires_in: i64,
    /// Comma-separated category names.
    pub categories: String,
    pub is_giveable: bool,
    /// The local rules-engine template this badge stands for, if any: awards of the template
    /// become member badges of this badge.
    pub template_id: Option<String>,
}

/// A badge (the credit definition) created by a member.
#[derive(Debug, Clone, PartialEq)]
pub struct OcBadge {
    pub id: i64,
    /// The member that created it (an organization when created on its behalf).
    pub member_id: i64,
    pub fields: OcBadgeFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Credit given: a badge issued to a recipient address.
#[derive(Debug, Clone, PartialEq)]
pub struct OcMemberBadge {
    pub id: i64,
    pub badge_id: i64,
    /// The member that gave it (an organization when given on its behalf).
    pub giver_id: i64,
    /// The recipient's address (lower-case); its owner is the recipient.
    pub email: String,
    /// The giver named the recipient by this address, so showing it to the giver reveals
    /// nothing new. False when given to a member id (the address then is the member's, which
    /// the giver must not learn) and for award badges; rows older than migration 0011 are false.
    pub addressed_by_email: bool,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    pub testimonial: String,
    pub evidence: String,
    /// The rules-engine award it was given for (automatic awards), if any.
    pub award_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What one pass of the award bridge did (`Store::oc_sync_awards`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OcAwardSync {
    /// Member badges given for new awards.
    pub given: u64,
    /// Member badges withdrawn because their award was revoked.
    pub withdrawn: u64,
}

/// A badge to give.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOcMemberBadge {
    pub badge_id: i64,
    pub giver_id: i64,
    pub email: String,
    /// The giver typed `email` (rather than naming a member): see
    /// [`OcMemberBadge::addressed_by_email`].
    pub addressed_by_email: bool,
    pub testimonial: String,
    pub evidence: String,
}
