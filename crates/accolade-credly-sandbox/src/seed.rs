//! The seed: organizations, tokens and badge templates the sandbox starts
//! with, loadable from JSON or TOML, plus the built-in demo seed and the bulk
//! template generator used by benchmarks.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

use crate::util::{det_uuid, new_id, splitmix64};

/// Organization id of [`Seed::demo`].
pub const DEMO_ORG_ID: &str = "acc01ade-0000-4000-8000-000000000001";
/// Authorization token of [`Seed::demo`] (valid for 180 days from sandbox start).
pub const DEMO_TOKEN: &str = "accolade-demo-token";
/// OAuth client id of [`Seed::demo`]'s organization.
pub const DEMO_CLIENT_ID: &str = "accolade-demo-client";
/// OAuth client secret of [`Seed::demo`]'s organization.
pub const DEMO_CLIENT_SECRET: &str = "accolade-demo-client-secret";
/// Name of the organization in [`Seed::demo`].
pub const DEMO_ORG_NAME: &str = "Accolade Demo Org";

/// Valid badge template states.
pub const TEMPLATE_STATES: [&str; 3] = ["draft", "active", "archived"];

/// Everything the sandbox starts with. Every field has a default, so `{}` is a valid (empty) seed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    /// Organizations with their tokens and webhook URL.
    pub organizations: Vec<SeedOrganization>,
    /// Badge templates (each names its organization; may be left empty when there is one org).
    pub templates: Vec<SeedTemplate>,
    /// Optional bulk generation of templates (benchmarks).
    pub generate: Option<Generate>,
}

/// One organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedOrganization {
    /// Organization id (a UUID string). Default: a random UUID.
    pub id: String,
    /// Display name. Default: `"Sandbox Organization"`.
    pub name: String,
    /// Authorization tokens that act as this organization.
    pub tokens: Vec<SeedToken>,
    /// Where webhooks are POSTed. Default: none (events are still recorded).
    pub webhook_url: Option<String>,
    /// OAuth applications of this organization: their client credentials get Bearer access
    /// tokens at `POST /oauth/token` that act as this organization. Default: none.
    pub oauth_clients: Vec<SeedOAuthClient>,
}

impl Default for SeedOrganization {
    fn default() -> Self {
        SeedOrganization {
            id: new_id(),
            name: "Sandbox Organization".to_owned(),
            tokens: Vec::new(),
            webhook_url: None,
            oauth_clients: Vec::new(),
        }
    }
}

/// One OAuth application (client credentials grant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedOAuthClient {
    /// The client id (Credly's `uid`).
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// Lifetime of the access tokens issued to this client, in seconds. Default: 7200, Credly's
    /// two hours; tests set a few seconds to see tokens expire.
    #[serde(default)]
    pub access_token_lifetime_secs: Option<u64>,
}

impl SeedOAuthClient {
    /// A client whose tokens live the default two hours.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        SeedOAuthClient {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            access_token_lifetime_secs: None,
        }
    }
}

/// One authorization token (sent as the HTTP Basic username).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedToken {
    /// The token value.
    pub token: String,
    /// Expiry. Default: `created_at` + 180 days (Credly's token lifetime).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time. Default: when the sandbox starts.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl SeedToken {
    /// A token created now that expires after the default 180 days.
    pub fn new(token: impl Into<String>) -> Self {
        SeedToken {
            token: token.into(),
            expires_at: None,
            created_at: None,
        }
    }
}

/// One badge template. Used both in seeds and by [`crate::Sandbox::upsert_template`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedTemplate {
    /// Template id. Default: a random UUID (upsert creates a new template).
    pub id: Option<String>,
    /// Owning organization. May be empty in a seed with exactly one organization.
    pub organization_id: String,
    /// Display name. Default: `"Untitled Template"`.
    pub name: String,
    /// `draft`, `active` or `archived`. Default: `active`.
    pub state: String,
    /// Description text. Default: empty.
    pub description: String,
    /// Image URL. Default: an SVG served by the sandbox at `/images/{id}/image.svg`.
    pub image_url: Option<String>,
    /// Allow issuing the same template twice to one recipient. Default: false. (Extension.)
    pub allow_duplicate_badges: bool,
    /// Skill names (`skills` in the template object). Default: none. (Extension.)
    pub skills: Vec<String>,
    /// Creation time. Default: sandbox start (seed) or now (upsert). (Extension.)
    pub created_at: Option<DateTime<Utc>>,
    /// Last change. Default: `created_at` (seed) or now (upsert). (Extension.)
    pub updated_at: Option<DateTime<Utc>>,
}

impl Default for SeedTemplate {
    fn default() -> Self {
        SeedTemplate {
            id: None,
            organization_id: String::new(),
            name: "Untitled Template".to_owned(),
            state: "active".to_owned(),
            description: String::new(),
            image_url: None,
            allow_duplicate_badges: false,
            skills: Vec::new(),
            created_at: None,
            updated_at: None,
        }
    }
}

/// Bulk template generation for benchmarks: deterministic ids, names, timestamps and states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Generate {
    /// Target organization. May be empty in a seed with exactly one organization.
    pub organization_id: String,
    /// How many templates to generate. Default: 100.
    pub templates: usize,
    /// Share of `active` templates, 0.0..=1.0 (rounded to the nearest count and spread
    /// evenly); the rest alternate `draft` / `archived`. Default: 0.6.
    pub active_share: f64,
}

impl Default for Generate {
    fn default() -> Self {
        Generate {
            organization_id: String::new(),
            templates: 100,
            active_share: 0.6,
        }
    }
}

const TOPICS: [&str; 16] = [
    "Rust",
    "Kubernetes",
    "Data Privacy",
    "Cloud Security",
    "Project Management",
    "Machine Learning",
    "Accessibility",
    "Incident Response",
    "PostgreSQL",
    "Technical Writing",
    "Network Engineering",
    "UX Research",
    "DevOps",
    "Agile Coaching",
    "Data Visualization",
    "Site Reliability",
];
const LEVELS: [&str; 5] = [
    "Foundations",
    "Practitioner",
    "Professional",
    "Expert",
    "Champion",
];

impl Generate {
    /// Number of `active` templates this generator produces.
    pub fn active_count(&self) -> usize {
        let share = if self.active_share.is_finite() {
            self.active_share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((self.templates as f64) * share).round() as usize
    }

    /// Expands into concrete templates for `organization_id` (or `default_org` when empty).
    pub fn expand(&self, default_org: &str) -> Vec<SeedTemplate> {
        let org = if self.organization_id.is_empty() {
            default_org
        } else {
            &self.organization_id
        };
        let n = self.templates;
        let active = self.active_count();
        let epoch = Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap();
        let mut inactive_seen = 0usize;
        (0..n)
            .map(|i| {
                // Bresenham spread: exactly `active` of the `n` templates are active.
                let is_active = (i + 1) * active / n.max(1) > i * active / n.max(1);
                let state = if is_active {
                    "active"
                } else {
                    inactive_seen += 1;
                    if inactive_seen % 2 == 1 {
                        "draft"
                    } else {
                        "archived"
                    }
                };
                let h = splitmix64(i as u64 ^ 0xACC0_1ADE);
                let topic = TOPICS[(h % TOPICS.len() as u64) as usize];
                let level = LEVELS[((h >> 8) % LEVELS.len() as u64) as usize];
                let name = format!("{topic} {level} {:05}", i + 1);
                let created = epoch + Duration::minutes(i as i64 * 7);
                let updated = created + Duration::minutes(((h >> 16) % (60 * 24 * 90)) as i64);
                SeedTemplate {
                    id: Some(det_uuid(org, i as u64)),
                    organization_id: org.to_owned(),
                    description: format!(
                        "Generated template {} of {n}: awarded for {topic} at {level} level.",
                        i + 1
                    ),
                    name,
                    state: state.to_owned(),
                    image_url: None,
                    allow_duplicate_badges: false,
                    skills: vec![topic.to_owned()],
                    created_at: Some(created),
                    updated_at: Some(updated),
                }
            })
            .collect()
    }
}

impl Seed {
    /// The demo seed: one organization ([`DEMO_ORG_NAME`], [`DEMO_ORG_ID`], token
    /// [`DEMO_TOKEN`], OAuth client [`DEMO_CLIENT_ID`] / [`DEMO_CLIENT_SECRET`]) with six
    /// templates covering all three states.
    pub fn demo() -> Seed {
        let at = |y, m, d| Some(Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap());
        let t = |n: u64,
                 name: &str,
                 state: &str,
                 description: &str,
                 skills: &[&str],
                 created: Option<DateTime<Utc>>,
                 updated: Option<DateTime<Utc>>| SeedTemplate {
            id: Some(format!("acc01ade-7e70-4000-8000-{n:012}")),
            organization_id: DEMO_ORG_ID.to_owned(),
            name: name.to_owned(),
            state: state.to_owned(),
            description: description.to_owned(),
            image_url: None,
            allow_duplicate_badges: false,
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            created_at: created,
            updated_at: updated,
        };
        Seed {
            organizations: vec![SeedOrganization {
                id: DEMO_ORG_ID.to_owned(),
                name: DEMO_ORG_NAME.to_owned(),
                tokens: vec![SeedToken::new(DEMO_TOKEN)],
                webhook_url: None,
                oauth_clients: vec![SeedOAuthClient::new(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)],
            }],
            templates: vec![
                t(
                    1,
                    "Rust Fundamentals",
                    "active",
                    "Awarded to people who completed the Rust Fundamentals course and its final project.",
                    &["Rust", "Systems Programming"],
                    at(2025, 1, 10),
                    at(2025, 2, 1),
                ),
                t(
                    2,
                    "Async Rust in Production",
                    "active",
                    "Earners designed, built and operated an asynchronous Rust service under load.",
                    &["Rust", "Concurrency", "Tokio"],
                    at(2025, 1, 12),
                    at(2025, 2, 3),
                ),
                t(
                    3,
                    "Kubernetes Operations Specialist",
                    "active",
                    "Demonstrates day-two operations of Kubernetes clusters: upgrades, backups and incident handling.",
                    &["Kubernetes", "Operations"],
                    at(2025, 1, 15),
                    at(2025, 2, 5),
                ),
                t(
                    4,
                    "Data Privacy Champion",
                    "active",
                    "Recognises staff who completed the data protection programme and lead privacy reviews.",
                    &["Data Privacy", "GDPR"],
                    at(2025, 1, 20),
                    at(2025, 2, 7),
                ),
                t(
                    5,
                    "Cloud Security Practitioner",
                    "draft",
                    "Draft: hands-on cloud security assessment. Not yet published.",
                    &["Cloud Security"],
                    at(2025, 2, 10),
                    at(2025, 2, 10),
                ),
                t(
                    6,
                    "Legacy Systems Workshop",
                    "archived",
                    "Retired workshop on maintaining legacy systems; kept for existing earners.",
                    &["Teamwork"],
                    at(2023, 5, 2),
                    at(2024, 6, 30),
                ),
            ],
            generate: None,
        }
    }

    /// Loads a seed from a `.json` or `.toml` file (chosen by extension) and validates it.
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading seed file {}", path.display()))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let seed: Seed = match ext.as_deref() {
            Some("json") => serde_json::from_str(&text)
                .with_context(|| format!("parsing JSON seed {}", path.display()))?,
            Some("toml") => toml::from_str(&text)
                .with_context(|| format!("parsing TOML seed {}", path.display()))?,
            _ => bail!("seed file {} must end in .json or .toml", path.display()),
        };
        seed.validate()
            .with_context(|| format!("invalid seed {}", path.display()))?;
        Ok(seed)
    }

    /// Checks ids, states and references. [`crate::Sandbox::new`] tolerates what this rejects
    /// (it creates missing organizations), so call this on untrusted input.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut ids = HashSet::new();
        let mut clients = HashSet::new();
        for org in &self.organizations {
            if org.id.trim().is_empty() {
                bail!("organization {:?} has an empty id", org.name);
            }
            if !ids.insert(org.id.as_str()) {
                bail!("duplicate organization id {}", org.id);
            }
            for t in &org.tokens {
                if t.token.trim().is_empty() {
                    bail!("organization {} has an empty token", org.id);
                }
            }
            for c in &org.oauth_clients {
                if c.client_id.trim().is_empty() || c.client_secret.trim().is_empty() {
                    bail!(
                        "organization {} has an OAuth client with an empty id or secret",
                        org.id
                    );
                }
                if !clients.insert(c.client_id.as_str()) {
                    bail!("duplicate OAuth client id {}", c.client_id);
                }
            }
        }
        let single = self.organizations.len() == 1;
        for t in &self.templates {
            if !TEMPLATE_STATES.contains(&t.state.as_str()) {
                bail!(
                    "template {:?} has state {:?}; expected draft, active or archived",
                    t.name,
                    t.state
                );
            }
            if t.organization_id.is_empty() {
                if !single {
                    bail!(
                        "template {:?} needs organization_id (the seed has {} organizations)",
                        t.name,
                        self.organizations.len()
                    );
                }
            } else if !ids.contains(t.organization_id.as_str()) {
                bail!(
                    "template {:?} names unknown organization {}",
                    t.name,
                    t.organization_id
                );
            }
        }
        if let Some(g) = &self.generate {
            if !(0.0..=1.0).contains(&g.active_share) {
                bail!("generate.active_share must be within 0.0..=1.0");
            }
            if g.organization_id.is_empty() {
                if !single {
                    bail!("generate needs organization_id when the seed has several organizations");
                }
            } else if !ids.contains(g.organization_id.as_str()) {
                bail!("generate names unknown organization {}", g.organization_id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_valid_and_covers_all_states() {
        let d = Seed::demo();
        d.validate().unwrap();
        for s in TEMPLATE_STATES {
            assert!(d.templates.iter().any(|t| t.state == s), "{s}");
        }
        assert_eq!(d.organizations[0].id, DEMO_ORG_ID);
        for t in &d.templates {
            uuid::Uuid::parse_str(t.id.as_deref().unwrap()).unwrap();
        }
    }

    #[test]
    fn generate_counts() {
        let g = Generate {
            organization_id: "o".into(),
            templates: 2500,
            active_share: 0.6,
        };
        let ts = g.expand("x");
        assert_eq!(ts.len(), 2500);
        assert_eq!(ts.iter().filter(|t| t.state == "active").count(), 1500);
        assert_eq!(ts.iter().filter(|t| t.state == "draft").count(), 500);
        assert_eq!(ts.iter().filter(|t| t.state == "archived").count(), 500);
        assert_eq!(ts, g.expand("x"), "deterministic");
        let names: HashSet<_> = ts.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 2500);
    }

    #[test]
    fn generate_edges() {
        let all = Generate {
            organization_id: String::new(),
            templates: 7,
            active_share: 1.0,
        };
        let ts = all.expand("org");
        assert!(ts
            .iter()
            .all(|t| t.state == "active" && t.organization_id == "org"));
        let none = Generate {
            active_share: 0.0,
            ..all.clone()
        };
        assert!(none.expand("o").iter().all(|t| t.state != "active"));
        let empty = Generate {
            templates: 0,
            ..all
        };
        assert!(empty.expand("o").is_empty());
    }
}
