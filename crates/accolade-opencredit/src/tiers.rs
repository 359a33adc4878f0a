//! Rate-limit tiers of apps (seed 001, "Rate limiting").
//!
//! Unauthenticated calls are counted per app, authenticated calls per app and user; each tier
//! allows the same number per minute for both. Enterprise apps are not limited.

use std::fmt;
use std::str::FromStr;

/// An app's usage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Sandbox,
    Light,
    Medium,
    Heavy,
    Enterprise,
}

/// All tiers, smallest first.
pub const TIERS: [Tier; 5] = [
    Tier::Sandbox,
    Tier::Light,
    Tier::Medium,
    Tier::Heavy,
    Tier::Enterprise,
];

impl Tier {
    /// Requests allowed per minute (per app, or per app and user), `None` for no limit.
    pub fn per_minute(self) -> Option<u32> {
        match self {
            Tier::Sandbox => Some(20),
            Tier::Light => Some(120),
            Tier::Medium => Some(240),
            Tier::Heavy => Some(480),
            Tier::Enterprise => None,
        }
    }

    /// Whether apps of this tier may create members whose email is already verified (seed 001:
    /// "Partner and Enterprise level apps"; Heavy is Accolade's partner level).
    pub fn may_create_verified_members(self) -> bool {
        matches!(self, Tier::Heavy | Tier::Enterprise)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Sandbox => "sandbox",
            Tier::Light => "light",
            Tier::Medium => "medium",
            Tier::Heavy => "heavy",
            Tier::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}; expected one of sandbox, light, medium, heavy, enterprise")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Tier, UnknownTier> {
        TIERS
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownTier(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_numbers() {
        assert_eq!(Tier::Sandbox.per_minute(), Some(20));
        assert_eq!(Tier::Light.per_minute(), Some(120));
        assert_eq!(Tier::Medium.per_minute(), Some(240));
        assert_eq!(Tier::Heavy.per_minute(), Some(480));
        assert_eq!(Tier::Enterprise.per_minute(), None);
    }

    #[test]
    fn parse_round_trip() {
        for t in TIERS {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
            assert_eq!(t.as_str().to_uppercase().parse::<Tier>(), Ok(t));
        }
        assert!("gold".parse::<Tier>().is_err());
    }
}
