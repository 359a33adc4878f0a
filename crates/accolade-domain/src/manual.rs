//! Manual awards and revocations by an operator (API, admin UI, CLI): when they are refused and
//! which award episode a manual award opens. Both stores load the learner's latest award, ask
//! here, and write. A manual award overrides the template's re-award rule (an operator decided),
//! but never gives a learner a second unrevoked award of one template.

use crate::award::{Award, AwardState};

/// Why a manual change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManualRefusal {
    #[error("{learner} already holds this badge (award {award_id})")]
    AlreadyAwarded { learner: String, award_id: String },
    #[error("award {award_id} is already revoked")]
    AlreadyRevoked { award_id: String },
}

impl ManualRefusal {
    /// The stable error code (`already_awarded`, `already_revoked`).
    pub fn code(&self) -> &'static str {
        match self {
            ManualRefusal::AlreadyAwarded { .. } => "already_awarded",
            ManualRefusal::AlreadyRevoked { .. } => "already_revoked",
        }
    }
}

/// The episode a manual award of `learner` opens, given their latest award of the template:
/// the first, or the one after a revoked award; refused while one is held.
pub fn award_episode(learner: &str, latest: Option<&Award>) -> Result<i64, ManualRefusal> {
    match latest {
        None => Ok(1),
        Some(a) if a.state == AwardState::Revoked => Ok(a.episode + 1),
        Some(a) => Err(ManualRefusal::AlreadyAwarded {
            learner: learner.to_string(),
            award_id: a.id.clone(),
        }),
    }
}

/// Whether `award` may be revoked by hand (not when it already is).
pub fn check_revoke(award: &Award) -> Result<(), ManualRefusal> {
    if award.state == AwardState::Revoked {
        return Err(ManualRefusal::AlreadyRevoked {
            award_id: award.id.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn award(episode: i64, state: AwardState) -> Award {
        Award {
            id: format!("a{episode}"),
            template_id: "t".into(),
            learner: "ann".into(),
            episode,
            state,
            earned_at: Utc::now(),
            awarded_at: Utc::now(),
            issued_at: None,
            revoked_at: None,
            revoke_reason: None,
            event_id: None,
            external_id: None,
            external_state: None,
            expires_at: None,
            backfill_id: None,
        }
    }

    #[test]
    fn a_manual_award_opens_the_next_episode_unless_one_is_held() {
        assert_eq!(award_episode("ann", None), Ok(1));
        assert_eq!(
            award_episode("ann", Some(&award(2, AwardState::Revoked))),
            Ok(3)
        );
        for held in [AwardState::Awarded, AwardState::Pending, AwardState::Error] {
            let refusal = award_episode("ann", Some(&award(2, held))).unwrap_err();
            assert_eq!(refusal.code(), "already_awarded");
            assert_eq!(
                refusal.to_string(),
                "ann already holds this badge (award a2)"
            );
        }
    }

    #[test]
    fn only_an_unrevoked_award_can_be_revoked() {
        assert_eq!(check_revoke(&award(1, AwardState::Awarded)), Ok(()));
        let refusal = check_revoke(&award(1, AwardState::Revoked)).unwrap_err();
        assert_eq!(refusal.code(), "already_revoked");
        assert_eq!(refusal.to_string(), "award a1 is already revoked");
    }
}
