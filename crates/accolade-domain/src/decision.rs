//! What one event's hit on a template does to the learner's badge: award, revoke or nothing,
//! and which award episode an award opens. Both stores run [`engine::step`](crate::engine::step)
//! on the learner's progress, ask here, load the learner's latest award only when the answer
//! needs it, and write. The rules:
//!
//! - Award on the incomplete → complete edge.
//! - Also award when progress is already complete but the learner never held the badge (a
//!   requirement was deleted or regrouped after they fulfilled the rest), as soon as an event
//!   fulfils a requirement of the template again: a "stranded" learner is not left waiting for an
//!   edge that will never come.
//! - Revoke on the complete → incomplete edge (a penalty reset a requirement).
//! - An award is never made while the learner holds the badge, and after a revocation only when
//!   the template allows earning it again.

use crate::award::{Award, AwardState};
use crate::engine::Step;

/// What a hit asks for, before the learner's award history is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Progress became complete: award (see [`episode_on_completion`]).
    Award,
    /// Progress was and is complete and the event fulfilled a requirement: award only if the
    /// learner never held this badge (any episode, revoked or not).
    AwardIfNeverHeld,
    /// Progress became incomplete: revoke the award the learner holds, if any.
    Revoke,
    /// Nothing changes for the badge.
    Nothing,
}

impl Decision {
    /// Decides from the step and whether the event fulfilled any requirement of the template.
    pub fn of(step: &Step, fulfilled_any: bool) -> Decision {
        if step.completes() {
            Decision::Award
        } else if step.is_complete && fulfilled_any {
            Decision::AwardIfNeverHeld
        } else if step.breaks() {
            Decision::Revoke
        } else {
            Decision::Nothing
        }
    }
}

/// The learner's latest award episode of a template, as far as an award decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    pub episode: i64,
    pub revoked: bool,
}

impl Latest {
    pub fn of(award: &Award) -> Latest {
        Latest {
            episode: award.episode,
            revoked: award.state == AwardState::Revoked,
        }
    }
}

/// The episode an award on completion opens, or `None` when none is made: the learner holds the
/// badge, or it was revoked and the template does not allow earning it again.
pub fn episode_on_completion(latest: Option<Latest>, allow_reaward: bool) -> Option<i64> {
    match latest {
        None => Some(1),
        Some(l) if !l.revoked => None,
        Some(_) if !allow_reaward => None,
        Some(l) => Some(l.episode + 1),
    }
}

/// Whether a revocation applies: only to an award the learner holds.
pub fn holds(latest: Option<Latest>) -> bool {
    latest.is_some_and(|l| !l.revoked)
}

/// The reason recorded on an award revoked because an event broke the learner's progress.
pub fn revocation_reason(event_id: &str) -> String {
    format!("progress became incomplete (event {event_id})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step(was: bool, is: bool) -> Step {
        Step {
            was_complete: was,
            is_complete: is,
            ..Step::default()
        }
    }

    #[test]
    fn edges_award_and_revoke() {
        assert_eq!(Decision::of(&step(false, true), true), Decision::Award);
        // A penalty and a fulfilment in one event can complete without a net fulfilment.
        assert_eq!(Decision::of(&step(false, true), false), Decision::Award);
        assert_eq!(Decision::of(&step(true, false), false), Decision::Revoke);
        assert_eq!(Decision::of(&step(true, false), true), Decision::Revoke);
    }

    #[test]
    fn complete_progress_awards_a_stranded_learner_only_when_an_event_fulfils_something() {
        assert_eq!(
            Decision::of(&step(true, true), true),
            Decision::AwardIfNeverHeld
        );
        assert_eq!(Decision::of(&step(true, true), false), Decision::Nothing);
        assert_eq!(Decision::of(&step(false, false), true), Decision::Nothing);
    }

    #[test]
    fn episodes_follow_the_re_award_rule() {
        let held = Latest {
            episode: 2,
            revoked: false,
        };
        let revoked = Latest {
            episode: 2,
            revoked: true,
        };
        assert_eq!(episode_on_completion(None, false), Some(1));
        assert_eq!(episode_on_completion(Some(held), true), None);
        assert_eq!(episode_on_completion(Some(revoked), false), None);
        assert_eq!(episode_on_completion(Some(revoked), true), Some(3));
        assert!(holds(Some(held)));
        assert!(!holds(Some(revoked)));
        assert!(!holds(None));
        assert_eq!(
            revocation_reason("e-1"),
            "progress became incomplete (event e-1)"
        );
    }

    proptest! {
        /// Over any sequence of completeness changes, the badge is held exactly when the last
        /// decision that changed anything was an award, episodes count up from 1 without gaps,
        /// and no learner ever holds two awards at once.
        #[test]
        fn a_learner_never_holds_two_awards_and_episodes_count_up(
            changes in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..40),
            allow_reaward in any::<bool>(),
        ) {
            let mut complete = false;
            let mut latest: Option<Latest> = None;
            for (next, fulfilled_any) in changes {
                let s = step(complete, next);
                complete = next;
                match Decision::of(&s, fulfilled_any) {
                    Decision::Award => {
                        if let Some(e) = episode_on_completion(latest, allow_reaward) {
                            prop_assert!(!holds(latest));
                            prop_assert_eq!(e, latest.map_or(1, |l| l.episode + 1));
                            latest = Some(Latest { episode: e, revoked: false });
                        }
                    }
                    Decision::AwardIfNeverHeld => {
                        prop_assert!(s.was_complete && s.is_complete);
                        if latest.is_none() {
                            latest = Some(Latest { episode: 1, revoked: false });
                        }
                    }
                    Decision::Revoke => {
                        prop_assert!(!s.is_complete);
                        if let Some(l) = latest.as_mut() {
                            l.revoked = true;
                        }
                    }
                    Decision::Nothing => prop_assert!(!s.completes() && !s.breaks()),
                }
                // Whoever holds the badge has complete progress.
                prop_assert!(!holds(latest) || complete);
                if !allow_reaward {
                    prop_assert!(latest.is_none_or(|l| l.episode == 1));
                }
            }
        }
    }
}
