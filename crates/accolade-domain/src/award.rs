//! Awards (a learner's badge) and their states.
//!
//! An award is one *episode*: earned on an incomplete→complete edge, ended by a revocation on the
//! complete→incomplete edge. A later re-qualification opens a new episode (history is kept)
//! unless the template forbids re-awarding.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lifecycle state of an award.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwardState {
    /// Earned; delivery (Credly issue, event publication) is queued in the outbox.
    Awarded,
    /// A worker is delivering it to the provider.
    Issuing,
    /// Delivered; waiting for the learner (Credly `pending`).
    Pending,
    Accepted,
    Rejected,
    Revoked,
    /// Delivery failed and will be retried.
    Error,
    /// Delivery failed permanently; an operator must act.
    Dead,
}

impl AwardState {
    pub fn as_str(self) -> &'static str {
        match self {
            AwardState::Awarded => "awarded",
            AwardState::Issuing => "issuing",
            AwardState::Pending => "pending",
            AwardState::Accepted => "accepted",
            AwardState::Rejected => "rejected",
            AwardState::Revoked => "revoked",
            AwardState::Error => "error",
            AwardState::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awarded" => AwardState::Awarded,
            "issuing" => AwardState::Issuing,
            "pending" => AwardState::Pending,
            "accepted" => AwardState::Accepted,
            "rejected" => AwardState::Rejected,
            "revoked" => AwardState::Revoked,
            "error" => AwardState::Error,
            "dead" => AwardState::Dead,
            _ => return None,
        })
    }
}

/// An award episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Award {
    pub id: String,
    pub template_id: String,
    pub learner: String,
    pub episode: i64,
    pub state: AwardState,
    /// Time of the event that completed the progress (or of the manual award).
    pub earned_at: DateTime<Utc>,
    /// When Accolade recorded the award.
    pub awarded_at: DateTime<Utc>,
    /// When the provider confirmed issuing it.
    pub issued_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoke_reason: Option<String>,
    /// Event id that completed the progress; `None` for manual awards.
    pub event_id: Option<String>,
    pub external_id: Option<String>,
    pub external_state: Option<String>,
    /// When it stops being valid (`earned_at` + the template's `expires_after` at the time it
    /// was made); `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The backfill that made it, if one did (`earned_at` and `event_id` are then those of the
    /// stored event that completed the replayed progress).
    #[serde(default)]
    pub backfill_id: Option<String>,
}

impl Award {
    /// Whether the award has expired by `now`: its expiry has come and it was not revoked
    /// (a revoked award is revoked, not expired).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.state != AwardState::Revoked && self.expires_at.is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_award_expires_at_its_expiry_unless_revoked() {
        let now = Utc::now();
        let mut a = Award {
            id: "a".into(),
            template_id: "t".into(),
            learner: "ann".into(),
            episode: 1,
            state: AwardState::Awarded,
            earned_at: now,
            awarded_at: now,
            issued_at: None,
            revoked_at: None,
            revoke_reason: None,
            event_id: None,
            external_id: None,
            external_state: None,
            expires_at: None,
            backfill_id: None,
        };
        assert!(!a.is_expired(now));
        a.expires_at = Some(now + chrono::Duration::seconds(1));
        assert!(!a.is_expired(now));
        assert!(a.is_expired(now + chrono::Duration::seconds(1)));
        a.state = AwardState::Revoked;
        assert!(!a.is_expired(now + chrono::Duration::seconds(2)));
    }
}
