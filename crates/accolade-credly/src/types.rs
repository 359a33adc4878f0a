//! The Credly objects Accolade reads and writes. Only the fields Accolade uses are named; Credly
//! adds fields over time and clients must ignore unknown ones, which serde does by default.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// `{"data": …, "metadata": …}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<T> {
    pub data: T,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// Pagination metadata of list answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    pub count: Option<u64>,
    pub current_page: Option<u32>,
    pub total_count: Option<u64>,
    pub total_pages: Option<u32>,
    pub per: Option<u32>,
    pub next_page_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuthorizationToken {
    pub id: Option<String>,
    pub token: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Owner {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The new authorization token a rotation returned, with its dates.
#[derive(Clone, PartialEq)]
pub struct RotatedToken {
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for RotatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedToken")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BadgeTemplate {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `draft`, `active` or `archived`.
    #[serde(default)]
    pub state: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub description: String,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub owner: Option<Owner>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// One page of templates.
#[derive(Debug, Clone)]
pub struct TemplatePage {
    pub templates: Vec<BadgeTemplate>,
    pub total_pages: u32,
    pub next_page_url: Option<String>,
}

/// An event from `GET /organizations/{org}/events/{id}`: the affected resource sits next to the
/// envelope fields under `badge_template` or `badge`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub badge_template: Option<BadgeTemplate>,
    #[serde(default)]
    pub badge: Option<IssuedBadge>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssuedBadge {
    pub id: String,
    /// `pending`, `accepted`, `rejected`, `revoked`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub recipient_email: Option<String>,
    #[serde(default)]
    pub badge_template: Option<BadgeTemplate>,
}

/// `POST /organizations/{org}/badges`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueBadge {
    pub recipient_email: String,
    pub badge_template_id: String,
    /// The award time, in Credly's documented `YYYY-MM-DD HH:MM:SS ±HHMM` form.
    pub issued_at: String,
    pub issued_to_first_name: String,
    pub issued_to_last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_earner_id: Option<String>,
    /// When the badge expires, in the `issued_at` form; left out when the award does not expire
    /// (Credly then applies the template's default expiry; `null` would mean the same, `false`
    /// none at all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Formats a time as Credly's `issued_at` (`2025-03-04 09:41:00 +0000`).
pub fn credly_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(0).expect("zero offset"))
        .format("%Y-%m-%d %H:%M:%S %z")
        .to_string()
}

/// Splits a display name into Credly's first and last name, falling back to the username for
/// whatever is missing (Credly requires both).
pub fn split_name(name: Option<&str>, username: &str) -> (String, String) {
    let name = name.map(str::trim).unwrap_or_default();
    match name.rsplit_once(char::is_whitespace) {
        Some((first, last)) if !first.trim().is_empty() && !last.trim().is_empty() => {
            (first.trim().to_string(), last.trim().to_string())
        }
        _ if !name.is_empty() => (name.to_string(), username.to_string()),
        _ => (username.to_string(), username.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn issued_at_uses_credlys_documented_format() {
        let t = Utc.with_ymd_and_hms(2025, 3, 4, 14, 41, 0).unwrap();
        assert_eq!(credly_time(t), "2025-03-04 14:41:00 +0000");
    }

    #[test]
    fn expires_at_is_sent_only_when_the_award_expires() {
        let mut issue = IssueBadge {
            recipient_email: "ada@example.com".into(),
            badge_template_id: "t".into(),
            issued_at: "2025-03-04 14:41:00 +0000".into(),
            issued_to_first_name: "Ada".into(),
            issued_to_last_name: "Lovelace".into(),
            issuer_earner_id: None,
            expires_at: None,
        };
        let body = serde_json::to_value(&issue).unwrap();
        assert!(body.get("expires_at").is_none(), "{body}");
        issue.expires_at = Some(credly_time(
            Utc.with_ymd_and_hms(2026, 3, 4, 14, 41, 0).unwrap(),
        ));
        let body = serde_json::to_value(&issue).unwrap();
        assert_eq!(body["expires_at"], "2026-03-04 14:41:00 +0000");
    }

    #[test]
    fn names_split_with_username_fallback() {
        assert_eq!(
            split_name(Some("Ada King Lovelace"), "ada"),
            ("Ada King".into(), "Lovelace".into())
        );
        assert_eq!(
            split_name(Some("Plato"), "plato1"),
            ("Plato".into(), "plato1".into())
        );
        assert_eq!(split_name(Some("  "), "bob"), ("bob".into(), "bob".into()));
        assert_eq!(split_name(None, "bob"), ("bob".into(), "bob".into()));
    }

    #[test]
    fn fixture_template_page_parses() {
        let body = include_str!("../tests/fixtures/badge_templates_page1.json");
        let env: Envelope<Vec<BadgeTemplate>> = serde_json::from_str(body).unwrap();
        assert!(!env.data.is_empty());
        assert!(env.metadata.unwrap().total_pages.is_some());
    }
}
