//! The Open Credit-style API (`/v1.1`): apps, members and their addresses, tokens, badges and
//! member badges, and the bridge from awards to member badges.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::models::*;
use crate::opencredit::*;

/// The Open Credit-style API's data (every method is prefixed `oc_`).
#[async_trait]
pub trait OpenCreditStore: Send + Sync {
    /// Registers an app; `oc_app_exists` (conflict) when the key is taken.
    async fn oc_create_app(
        &self,
        name: &str,
        api_key: &str,
        secret_hash: &str,
        tier: &str,
    ) -> Result<OcApp>;

    async fn oc_app_by_key(&self, api_key: &str) -> Result<Option<OcApp>>;

    /// Changes an app's tier (by id or key); not found when neither matches.
    async fn oc_set_app_tier(&self, app: &str, tier: &str) -> Result<OcApp>;

    async fn oc_list_apps(&self) -> Result<Vec<OcApp>>;

    /// Creates a user (and the organization it manages, if named) in one transaction;
    /// `email_taken` (conflict) when any member already has the address.
    async fn oc_register(&self, new: NewOcMember) -> Result<(OcMember, Option<OcMember>)>;

    async fn oc_member(&self, id: i64) -> Result<Option<OcMember>>;

    /// Sets (or clears) a member's avatar; not found for an unknown member.
    async fn oc_set_avatar(&self, member_id: i64, avatar: Option<&str>) -> Result<OcMember>;

    /// A user by any of its addresses (case-insensitive), with its password hash.
    async fn oc_login(&self, email: &str) -> Result<Option<(OcMember, String)>>;

    /// Members by exact address (case-insensitive) and/or name text, newest last.
    async fn oc_search_members(
        &self,
        email: Option<&str>,
        query: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMember>, u64)>;

    /// Ids of the members a user manages (its organizations).
    async fn oc_managed(&self, manager_id: i64) -> Result<Vec<i64>>;

    async fn oc_member_emails(&self, member_id: i64) -> Result<Vec<OcEmail>>;

    /// Adds an unverified address; `email_taken` (conflict) when any member has it.
    async fn oc_add_email(&self, member_id: i64, email: &str, token_hash: &str) -> Result<OcEmail>;

    /// Replaces the verification link of one of the member's unverified addresses (the old link
    /// stops working); `None` when the member has no such unverified address.
    async fn oc_reissue_email_link(
        &self,
        member_id: i64,
        email: &str,
        token_hash: &str,
    ) -> Result<Option<OcEmail>>;

    /// Marks the address of a verification link verified (once); `None` for an unknown link.
    async fn oc_verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OcEmail>>;

    async fn oc_create_token(&self, token: OcToken) -> Result<()>;

    async fn oc_token(&self, token_hash: &str) -> Result<Option<OcToken>>;

    async fn oc_create_badge(&self, member_id: i64, fields: OcBadgeFields) -> Result<OcBadge>;

    /// Replaces a badge's fields; not found for an unknown or deleted badge.
    async fn oc_update_badge(&self, id: i64, fields: OcBadgeFields) -> Result<OcBadge>;

    async fn oc_badge(&self, id: i64) -> Result<Option<OcBadge>>;

    /// Badges, optionally of one creator, oldest first, with the total count.
    async fn oc_list_badges(
        &self,
        member_id: Option<i64>,
        page: Page,
    ) -> Result<(Vec<OcBadge>, u64)>;

    /// Deletes a badge; false when it did not exist.
    async fn oc_delete_badge(&self, id: i64) -> Result<bool>;

    /// An address and its owner, if any member has it.
    async fn oc_email(&self, email: &str) -> Result<Option<OcEmail>>;

    /// Gives a badge; not found for an unknown badge or giver.
    async fn oc_give(&self, new: NewOcMemberBadge) -> Result<OcMemberBadge>;

    async fn oc_member_badge(&self, id: i64) -> Result<Option<OcMemberBadge>>;

    /// Badges given to any address of `member_id`, optionally of one status, oldest first,
    /// with the total count.
    async fn oc_member_badges(
        &self,
        member_id: i64,
        status: Option<&str>,
        page: Page,
    ) -> Result<(Vec<OcMemberBadge>, u64)>;

    /// Sets the status of a member badge; not found when it does not exist.
    async fn oc_set_member_badge_status(&self, id: i64, status: &str) -> Result<OcMemberBadge>;

    /// Deletes a member badge; false when it did not exist.
    async fn oc_delete_member_badge(&self, id: i64) -> Result<bool>;

    /// The award bridge: gives a member badge (pending, to the learner's email) for up to
    /// `limit` unrevoked awards of templates linked to a badge that have none yet, and
    /// withdraws (deletes) the member badges of revoked awards. Idempotent.
    async fn oc_sync_awards(&self, limit: u32) -> Result<OcAwardSync>;
}
