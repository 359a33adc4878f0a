//! Badge templates and their awarding configuration: requirements (grouped A–Z), data rules and
//! penalties. Requirements in one group are alternatives (OR); all groups are needed (AND).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::expiry::ExpiresAfter;
use crate::rules::DataRule;
use crate::DomainError;

/// Where a template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Created in Accolade (issued by Accolade itself).
    Local,
    /// Synced from a Credly organization.
    Credly,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Credly => "credly",
        }
    }
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "local" => Ok(Origin::Local),
            "credly" => Ok(Origin::Credly),
            other => Err(DomainError::InvalidField {
                field: "origin",
                reason: format!("`{other}` is not one of local, credly"),
            }),
        }
    }
}

/// A badge template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub origin: Origin,
    /// The provider's state (`draft|active|archived` for Credly); `active` for local templates.
    pub provider_state: String,
    pub is_active: bool,
    /// Whether a learner may earn the badge again after a revocation (a new award episode).
    pub allow_reaward: bool,
    pub organization_id: Option<String>,
    /// How long an award stays valid after it was earned; `None`: it never expires. An award's
    /// expiry is fixed when it is made ([`crate::award::Award::expires_at`]).
    pub expires_after: Option<ExpiresAfter>,
    /// Operator-written Markdown for the Open Badges achievement's `criteria.narrative` (at most
    /// 10,000 characters); `None`: the narrative is written from the requirements.
    pub criteria: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new template.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// Given id (a UUID) or `None` for a generated one.
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub origin: Origin,
    pub provider_state: String,
    pub is_active: bool,
    pub allow_reaward: bool,
    pub organization_id: Option<String>,
    pub expires_after: Option<ExpiresAfter>,
    pub criteria: Option<String>,
}

/// A group letter, `A`..=`Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Group(char);

impl Group {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_uppercase() => Ok(Group(c)),
            _ => Err(DomainError::InvalidGroup(s.to_string())),
        }
    }
    pub fn letter(self) -> char {
        self.0
    }
    /// This group's bit in a set of groups held as a `u32` (A = bit 0 … Z = bit 25).
    pub fn bit(self) -> u32 {
        1 << (self.0 as u32 - 'A' as u32)
    }
    /// The first letter not in `used`.
    pub fn next_free(used: impl IntoIterator<Item = Group>) -> Result<Group, DomainError> {
        let used: std::collections::HashSet<Group> = used.into_iter().collect();
        ('A'..='Z')
            .map(Group)
            .find(|g| !used.contains(g))
            .ok_or(DomainError::NoFreeGroup)
    }
}

impl TryFrom<String> for Group {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Group::parse(&s)
    }
}
impl From<Group> for String {
    fn from(g: Group) -> String {
        g.0.to_string()
    }
}
impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One requirement of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    pub id: String,
    pub template_id: String,
    /// Stable name given by rules-as-code files (`key = "demo"`), unique per template.
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub group: Group,
    pub rules: Vec<DataRule>,
}

/// A penalty: when an event of `event_type` matches all `rules`, the linked requirements are reset
/// for that learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    pub id: String,
    pub template_id: String,
    /// Stable name given by rules-as-code files, unique per template.
    pub key: Option<String>,
    pub event_type: String,
    pub description: String,
    pub rules: Vec<DataRule>,
    pub requirement_ids: Vec<String>,
}

/// A template with everything needed to evaluate it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateConfig {
    pub template: Template,
    pub requirements: Vec<Requirement>,
    pub penalties: Vec<Penalty>,
}

/// Checks a template name: 1–255 characters as given (stores keep it trimmed), not blank, no
/// control characters anywhere. The admin API's OpenAPI document states the same rule
/// ([`NAME_PATTERN`] and the lengths), so it is checked on the name as sent.
pub fn validate_name(field: &'static str, name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(DomainError::InvalidField {
            field,
            reason: "must be 1-255 characters without control characters".into(),
        });
    }
    Ok(())
}

/// [`validate_name`] as an ECMA-262 pattern (with 1-255 characters): no C0/C1 control
/// character, at least one character that is neither whitespace nor a control character.
pub const NAME_PATTERN: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_given() {
        assert!(validate_name("name", " Demo badge ").is_ok());
        assert!(validate_name("name", &"x".repeat(255)).is_ok());
        for bad in ["", "   ", "Demo\n", "\tDemo", "De\u{85}mo"] {
            assert!(validate_name("name", bad).is_err(), "{bad:?}");
        }
        // 255 characters once trimmed, but 256 as sent.
        assert!(validate_name("name", &format!(" {}", "x".repeat(255))).is_err());
    }

    #[test]
    fn groups_are_single_uppercase_letters() {
        assert!(Group::parse("A").is_ok());
        assert!(Group::parse("Z").is_ok());
        for bad in ["", "a", "AA", "1", "Ä", " "] {
            assert_eq!(
                Group::parse(bad).unwrap_err().code(),
                "invalid_group",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn next_free_group_skips_used_letters() {
        let used = [Group::parse("A").unwrap(), Group::parse("C").unwrap()];
        assert_eq!(Group::next_free(used).unwrap().letter(), 'B');
        let all: Vec<Group> = ('A'..='Z')
            .map(|c| Group::parse(&c.to_string()).unwrap())
            .collect();
        assert_eq!(Group::next_free(all).unwrap_err(), DomainError::NoFreeGroup);
    }
}
