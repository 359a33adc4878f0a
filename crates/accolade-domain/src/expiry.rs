//! How long an award stays valid: a template's `expires_after` (`"365d"`, `"12h"`, …) and the
//! `expires_at` it gives an award, fixed when the award is made (`earned_at + expires_after`),
//! so that a later change of the template never moves the expiry of awards already made.
//!
//! The text is a whole number of 1 to 6 digits without leading zeros, followed by one unit: `s`
//! (seconds), `m` (minutes), `h` (hours) or `d` (days), nothing else (no spaces, no `ms`, no
//! bare number): [`EXPIRES_AFTER_PATTERN`] says exactly the same, and the admin API's OpenAPI
//! document states it. The configuration's duration parser accepts more (`500ms`, `10`,
//! surrounding spaces) and lives with the server; an expiry is written into rules files and
//! API calls and read back as given, so its form is kept strict and stored as written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// [`ExpiresAfter::parse`] as an ECMA-262 pattern.
pub const EXPIRES_AFTER_PATTERN: &str = r"^[1-9][0-9]{0,5}[smhd]$";

/// Largest amount of a unit (six digits: 999999d is about 2,700 years, well inside the range of
/// a timestamp).
const MAX_AMOUNT: u32 = 999_999;

/// The unit of an [`ExpiresAfter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl ExpiryUnit {
    fn letter(self) -> char {
        match self {
            ExpiryUnit::Seconds => 's',
            ExpiryUnit::Minutes => 'm',
            ExpiryUnit::Hours => 'h',
            ExpiryUnit::Days => 'd',
        }
    }

    fn seconds(self) -> i64 {
        match self {
            ExpiryUnit::Seconds => 1,
            ExpiryUnit::Minutes => 60,
            ExpiryUnit::Hours => 3_600,
            ExpiryUnit::Days => 86_400,
        }
    }
}

/// A template's award lifetime, e.g. `365d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExpiresAfter {
    amount: u32,
    unit: ExpiryUnit,
}

impl ExpiresAfter {
    /// Parses `365d`, `90d`, `12h`, `30m` or `45s` (see the module documentation); anything else
    /// is `invalid_expires_after`.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::InvalidExpiresAfter(text.to_string());
        let unit = match text.chars().last() {
            Some('s') => ExpiryUnit::Seconds,
            Some('m') => ExpiryUnit::Minutes,
            Some('h') => ExpiryUnit::Hours,
            Some('d') => ExpiryUnit::Days,
            _ => return Err(bad()),
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty()
            || digits.len() > 6
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let amount: u32 = digits.parse().map_err(|_| bad())?;
        if !(1..=MAX_AMOUNT).contains(&amount) {
            return Err(bad());
        }
        Ok(ExpiresAfter { amount, unit })
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> i64 {
        i64::from(self.amount) * self.unit.seconds()
    }

    /// When an award earned at `earned_at` expires.
    pub fn expires_at(self, earned_at: DateTime<Utc>) -> DateTime<Utc> {
        // At most 999999 days: always in range of a `DateTime` that is itself in range.
        earned_at
            .checked_add_signed(chrono::Duration::seconds(self.seconds()))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl std::fmt::Display for ExpiresAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.letter())
    }
}

impl std::str::FromStr for ExpiresAfter {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExpiresAfter::parse(s)
    }
}

impl TryFrom<String> for ExpiresAfter {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ExpiresAfter::parse(&s)
    }
}

impl From<ExpiresAfter> for String {
    fn from(e: ExpiresAfter) -> String {
        e.to_string()
    }
}

/// Longest operator-written criteria text, in characters.
pub const MAX_CRITERIA_CHARS: usize = 10_000;

/// Checks a template's criteria text (Markdown, for the Open Badges achievement's
/// `criteria.narrative`): at most [`MAX_CRITERIA_CHARS`] characters as given. A blank text
/// means none (the narrative is then written from the requirements), so it becomes `None`.
pub fn criteria(text: Option<String>) -> Result<Option<String>, DomainError> {
    match text {
        Some(t) if t.chars().count() > MAX_CRITERIA_CHARS => Err(DomainError::InvalidCriteria(
            format!("at most {MAX_CRITERIA_CHARS} characters"),
        )),
        Some(t) if t.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn units_and_amounts() {
        let secs = |t: &str| ExpiresAfter::parse(t).unwrap().seconds();
        assert_eq!(secs("365d"), 365 * 86_400);
        assert_eq!(secs("90d"), 90 * 86_400);
        assert_eq!(secs("12h"), 12 * 3_600);
        assert_eq!(secs("30m"), 1_800);
        assert_eq!(secs("1s"), 1);
        assert_eq!(secs("999999d"), 999_999 * 86_400);
    }

    #[test]
    fn anything_else_is_refused_with_its_code() {
        for bad in [
            "", "d", "0d", "00d", "01d", "1", "365", "1000000d", "1.5d", "-1d", "+1d", " 1d",
            "1d ", "1 d", "1D", "1w", "1y", "500ms", "1dd", "１d", "1ｄ",
        ] {
            let e = ExpiresAfter::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_expires_after", "{bad:?}");
        }
    }

    #[test]
    fn it_reads_back_as_written_and_serialises_as_text() {
        let e: ExpiresAfter = "365d".parse().unwrap();
        assert_eq!(e.to_string(), "365d");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"365d\"");
        let back: ExpiresAfter = serde_json::from_str("\"12h\"").unwrap();
        assert_eq!(back.to_string(), "12h");
        assert!(serde_json::from_str::<ExpiresAfter>("\"12 h\"").is_err());
    }

    #[test]
    fn expiry_is_earned_at_plus_the_lifetime() {
        let earned = DateTime::parse_from_rfc3339("2026-08-20T14:03:27.512345Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = ExpiresAfter::parse("2d").unwrap().expires_at(earned);
        assert_eq!(at.to_rfc3339(), "2026-08-22T14:03:27.512345+00:00");
        let far = ExpiresAfter::parse("999999d").unwrap().expires_at(earned);
        assert!(far > earned);
    }

    #[test]
    fn criteria_are_at_most_ten_thousand_characters_and_blank_is_none() {
        assert_eq!(criteria(None), Ok(None));
        assert_eq!(criteria(Some("  \n".into())), Ok(None));
        let long = "é".repeat(MAX_CRITERIA_CHARS);
        assert_eq!(criteria(Some(long.clone())), Ok(Some(long.clone())));
        let e = criteria(Some(format!("{long}x"))).unwrap_err();
        assert_eq!(e.code(), "invalid_criteria");
    }

    proptest! {
        /// The pattern documented for the API and the parser agree on every short string of
        /// the relevant characters.
        #[test]
        fn parser_matches_its_documented_pattern(text in "[0-9smhd .-]{0,9}") {
            let by_pattern = text.len() >= 2
                && text.len() <= 7
                && text[..text.len() - 1].bytes().all(|b| b.is_ascii_digit())
                && !text.starts_with('0')
                && "smhd".contains(&text[text.len() - 1..]);
            prop_assert_eq!(ExpiresAfter::parse(&text).is_ok(), by_pattern);
        }
    }
}
