//! The rows an import reads from an Open edX Credentials database, as plain values: the same
//! shape whichever database (MySQL/MariaDB, PostgreSQL, SQLite) they came from. Readers
//! (`crate::read`) fill it; the planner (`crate::plan`) decides what they mean.
//!
//! Ids are the source's integer primary keys. UUIDs are normalised to the hyphenated lower-case
//! form (the source may hold them as a native `uuid` or as 32 hex digits). Times are UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

/// `badges_credlyorganization`.
#[derive(Clone, PartialEq)]
pub struct Organization {
    pub id: i64,
    pub uuid: String,
    pub name: Option<String>,
    /// The Credly authorization token, stored in plain text by Credentials. Never printed:
    /// `Debug` shows only whether it is set.
    pub api_key: String,
    pub modified: DateTime<Utc>,
}

impl std::fmt::Debug for Organization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Organization")
            .field("id", &self.id)
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    "(empty)"
                } else {
                    "(set)"
                },
            )
            .field("modified", &self.modified)
            .finish()
    }
}

/// `badges_badgetemplate` (any provider).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub origin: Option<String>,
    pub state: Option<String>,
    pub is_active: bool,
}

/// `badges_badgerequirement`.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub id: i64,
    pub template_id: i64,
    pub event_type: String,
    pub description: Option<String>,
    /// The group (`blend`): any string or none.
    pub blend: Option<String>,
}

/// `badges_datarule` (owner = requirement) or `badges_penaltydatarule` (owner = penalty).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub owner_id: i64,
    pub path: String,
    pub operator: String,
    pub value: String,
}

/// `badges_badgepenalty`.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalty {
    pub id: i64,
    pub template_id: i64,
    pub event_type: String,
}

/// `core_user`, only the learners the badge tables name.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub full_name: Option<String>,
    pub lms_user_id: Option<i64>,
}

/// `badges_badgeprogress`: one learner's progress record on one template.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub id: i64,
    pub username: String,
    /// `None` when the template was deleted (Credentials sets NULL).
    pub template_id: Option<i64>,
}

/// `badges_fulfillment`: one requirement done within a progress record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fulfilment {
    pub progress_id: i64,
    /// `None` when the requirement was deleted.
    pub requirement_id: Option<i64>,
}

/// `badges_credlybadge` joined to its `credentials_usercredential`.
#[derive(Debug, Clone, PartialEq)]
pub struct CredlyBadge {
    pub id: i64,
    /// Credentials' own id of the award (`credentials_usercredential.uuid`).
    pub uuid: String,
    pub username: String,
    /// `awarded` or `revoked`.
    pub status: String,
    /// The template's id (a generic foreign key: may name a deleted template).
    pub template_id: i64,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// The Credly state Credentials last recorded.
    pub state: String,
    /// Credly's badge id; `None`: never issued on Credly.
    pub external_uuid: Option<String>,
}

/// Accredible configuration found in the source: counted and reported as skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccredibleCounts {
    pub api_configs: u64,
    pub groups: u64,
    pub badges: u64,
}

/// Everything read from the source.
#[derive(Debug, Clone, Default)]
pub struct SourceData {
    pub organizations: Vec<Organization>,
    pub templates: Vec<Template>,
    /// `badges_credlybadgetemplate`: (template id, organization id).
    pub credly_templates: Vec<(i64, i64)>,
    /// Template ids that are Accredible groups.
    pub accredible_groups: Vec<i64>,
    pub accredible: AccredibleCounts,
    pub requirements: Vec<Requirement>,
    pub rules: Vec<Rule>,
    pub penalties: Vec<Penalty>,
    /// `badges_badgepenalty_requirements`: (penalty id, requirement id).
    pub penalty_links: Vec<(i64, i64)>,
    pub penalty_rules: Vec<Rule>,
    pub users: Vec<User>,
    pub progress: Vec<Progress>,
    pub fulfilments: Vec<Fulfilment>,
    pub badges: Vec<CredlyBadge>,
}

/// A UUID as the source spells it (native `uuid`, 32 hex digits, any case) in the hyphenated
/// lower-case form; `None` if it is not a UUID.
pub fn normalize_uuid(raw: &str) -> Option<String> {
    uuid::Uuid::parse_str(raw.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A source timestamp (UTC): RFC 3339, or `YYYY-MM-DD HH:MM:SS[.ffffff]` as MySQL and Django's
/// SQLite backend write it.
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    let bare = raw.trim_end_matches('Z').trim_end_matches("+00:00");
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(bare, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_read_in_both_spellings() {
        let want = Some("466fc89d-4a3b-55b8-87c8-e0c18a4fbb74".to_string());
        assert_eq!(normalize_uuid("466fc89d-4a3b-55b8-87c8-e0c18a4fbb74"), want);
        assert_eq!(normalize_uuid("466FC89D4A3B55B887C8E0C18A4FBB74"), want);
        assert_eq!(normalize_uuid("not-a-uuid"), None);
    }

    #[test]
    fn times_are_read_as_each_database_writes_them() {
        let want = "2026-08-20T14:03:27.512345Z";
        for raw in [
            "2026-08-20 14:03:27.512345",
            "2026-08-20T14:03:27.512345Z",
            "2026-08-20 14:03:27.512345+00:00",
        ] {
            let t = parse_time(raw).unwrap();
            assert_eq!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), want);
        }
        assert!(parse_time("2026-08-20 14:03:27").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
