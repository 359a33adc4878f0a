//! Backfill and preview: one template's current rules replayed over a learner's stored events,
//! and what that means for the badge they hold today.
//!
//! A [`Replayer`] is built from one template's configuration. It turns each stored event into a
//! [`Hit`]: the template's requirements the event fulfils and those its penalties reset, as
//! bit sets. [`Replayer::replay`] runs a learner's hits in event-time order from no progress,
//! exactly as live processing would have ([`crate::engine::step_from`] and
//! [`crate::decision`]): progress after a hit is `(before | fulfilled) & !reset`, an award on
//! the incomplete → complete edge (unless the learner holds it, or lost it and the template
//! forbids earning it again), a revocation on complete → incomplete. [`verdict`] compares the
//! replayed outcome with the learner's actual latest award.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::decision;
use crate::engine::{RuleIndex, TemplateInfo};
use crate::rules::CompiledRule;
use crate::sparse_json::PathTree;
use crate::template::{Template, TemplateConfig};

/// One event's effect on the template: requirement bits fulfilled and reset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hit {
    pub fulfilled: Vec<u64>,
    pub reset: Vec<u64>,
}

impl Hit {
    /// Whether the event changes nothing (fulfils and resets no requirement).
    pub fn is_empty(&self) -> bool {
        self.fulfilled.iter().chain(&self.reset).all(|w| *w == 0)
    }
}

#[derive(Debug)]
struct TypeRules {
    /// (requirement bit, its rules).
    requirements: Vec<(usize, Vec<CompiledRule>)>,
    /// (rules, the bits a match resets).
    penalties: Vec<(Vec<CompiledRule>, Vec<u64>)>,
}

/// One template's rules, ready to replay stored events.
#[derive(Debug)]
pub struct Replayer {
    /// The template as the engine knows it (re-award rule, expiry, groups).
    pub info: Arc<TemplateInfo>,
    /// Requirement ids by bit.
    requirement_ids: Vec<String>,
    /// Words of 64 bits per requirement set.
    words: usize,
    /// Per group, its requirements' bits.
    groups: Vec<Vec<u64>>,
    by_type: HashMap<String, TypeRules>,
    paths: PathTree,
}

fn set_bit(words: &mut [u64], bit: usize) {
    words[bit / 64] |= 1 << (bit % 64);
}

fn has_bit(words: &[u64], bit: usize) -> bool {
    words[bit / 64] & (1 << (bit % 64)) != 0
}

impl Replayer {
    /// Builds the replayer of a template's current configuration, active or not.
    pub fn new(cfg: &TemplateConfig) -> Replayer {
        let active = TemplateConfig {
            template: Template {
                is_active: true,
                ..cfg.template.clone()
            },
            ..cfg.clone()
        };
        let info = RuleIndex::build(0, std::slice::from_ref(&active))
            .template(&cfg.template.id)
            .cloned()
            .expect("an active template is indexed");
        let requirement_ids: Vec<String> = cfg.requirements.iter().map(|r| r.id.clone()).collect();
        let words = requirement_ids.len().div_ceil(64).max(1);
        let bit_of: HashMap<&str, usize> = requirement_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut groups: HashMap<crate::template::Group, Vec<u64>> = HashMap::new();
        let mut by_type: HashMap<String, TypeRules> = HashMap::new();
        let mut paths = PathTree::default();
        for (bit, r) in cfg.requirements.iter().enumerate() {
            set_bit(groups.entry(r.group).or_insert_with(|| vec![0; words]), bit);
            for rule in &r.rules {
                paths.add(&rule.path.split('.').collect::<Vec<_>>());
            }
            by_type
                .entry(r.event_type.clone())
                .or_insert_with(|| TypeRules {
                    requirements: Vec::new(),
                    penalties: Vec::new(),
                })
                .requirements
                .push((bit, r.rules.iter().map(|x| x.compile()).collect()));
        }
        for p in &cfg.penalties {
            let mut mask = vec![0; words];
            for id in &p.requirement_ids {
                if let Some(&bit) = bit_of.get(id.as_str()) {
                    set_bit(&mut mask, bit);
                }
            }
            for rule in &p.rules {
                paths.add(&rule.path.split('.').collect::<Vec<_>>());
            }
            by_type
                .entry(p.event_type.clone())
                .or_insert_with(|| TypeRules {
                    requirements: Vec::new(),
                    penalties: Vec::new(),
                })
                .penalties
                .push((p.rules.iter().map(|x| x.compile()).collect(), mask));
        }
        let mut groups: Vec<(crate::template::Group, Vec<u64>)> = groups.into_iter().collect();
        groups.sort_by_key(|(g, _)| *g);
        Replayer {
            info,
            requirement_ids,
            words,
            groups: groups.into_iter().map(|(_, m)| m).collect(),
            by_type,
            paths,
        }
    }

    /// The event types the template's requirements and penalties listen to, sorted.
    pub fn event_types(&self) -> Vec<String> {
        let mut t: Vec<String> = self.by_type.keys().cloned().collect();
        t.sort();
        t
    }

    /// The payload paths the rules look at (see [`PathTree::payload_of_event`]).
    pub fn paths(&self) -> &PathTree {
        &self.paths
    }

    /// Words per requirement set.
    pub fn words(&self) -> usize {
        self.words
    }

    /// The requirement ids of a set of bits, in configuration order.
    pub fn requirement_ids(&self, bits: &[u64]) -> Vec<&str> {
        (0..self.requirement_ids.len())
            .filter(|&b| has_bit(bits, b))
            .map(|b| self.requirement_ids[b].as_str())
            .collect()
    }

    /// The bit set of the given requirement ids (unknown ids are left out).
    pub fn bits_of<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
        let ids: HashSet<&str> = ids.into_iter().collect();
        let mut bits = vec![0; self.words];
        for (b, id) in self.requirement_ids.iter().enumerate() {
            if ids.contains(id.as_str()) {
                set_bit(&mut bits, b);
            }
        }
        bits
    }

    /// What an event of `event_type` with `payload` does to the template.
    pub fn hit(&self, event_type: &str, payload: &Value) -> Hit {
        let mut hit = Hit {
            fulfilled: vec![0; self.words],
            reset: vec![0; self.words],
        };
        if let Some(rules) = self.by_type.get(event_type) {
            for (bit, r) in &rules.requirements {
                if r.iter().all(|x| x.matches(payload)) {
                    set_bit(&mut hit.fulfilled, *bit);
                }
            }
            for (r, mask) in &rules.penalties {
                if r.iter().all(|x| x.matches(payload)) {
                    for (w, m) in hit.reset.iter_mut().zip(mask) {
                        *w |= m;
                    }
                }
            }
        }
        hit
    }

    /// Whether every group has a fulfilled requirement (a template without requirements is
    /// never complete).
    pub fn is_complete(&self, bits: &[u64]) -> bool {
        !self.groups.is_empty()
            && self
                .groups
                .iter()
                .all(|g| g.iter().zip(bits).any(|(m, b)| m & b != 0))
    }

    /// Replays a learner's hits, in the order given (event time, then arrival), from no
    /// progress and no award.
    pub fn replay<'h>(&self, hits: impl IntoIterator<Item = &'h Hit>) -> Outcome {
        let mut state = vec![0u64; self.words];
        let mut by = vec![None; self.requirement_ids.len()];
        let mut out = Outcome {
            fulfilled: Vec::new(),
            fulfilled_by: Vec::new(),
            holds: false,
            completed_by: None,
            awards: 0,
            revocations: 0,
        };
        let mut latest: Option<decision::Latest> = None;
        let mut was_complete = false;
        for (i, hit) in hits.into_iter().enumerate() {
            for (b, by) in by.iter_mut().enumerate() {
                if has_bit(&hit.reset, b) {
                    *by = None;
                } else if !has_bit(&state, b) && has_bit(&hit.fulfilled, b) {
                    *by = Some(i);
                }
            }
            for ((s, f), r) in state.iter_mut().zip(&hit.fulfilled).zip(&hit.reset) {
                *s = (*s | f) & !r;
            }
            let is_complete = self.is_complete(&state);
            if !was_complete && is_complete {
                if let Some(episode) =
                    decision::episode_on_completion(latest, self.info.allow_reaward)
                {
                    latest = Some(decision::Latest {
                        episode,
                        revoked: false,
                    });
                    out.completed_by = Some(i);
                    out.awards += 1;
                }
            } else if was_complete && !is_complete && decision::holds(latest) {
                if let Some(l) = latest.as_mut() {
                    l.revoked = true;
                }
                out.revocations += 1;
            }
            was_complete = is_complete;
        }
        out.holds = decision::holds(latest);
        if !out.holds {
            out.completed_by = None;
        }
        out.fulfilled_by = by
            .iter()
            .enumerate()
            .filter_map(|(b, i)| i.map(|i| (self.requirement_ids[b].clone(), i)))
            .collect();
        out.fulfilled = state;
        out
    }
}

/// A learner's replayed outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The requirements fulfilled at the end, as bits.
    pub fulfilled: Vec<u64>,
    /// Each fulfilled requirement with the hit (position in the replayed sequence) that
    /// fulfilled it.
    pub fulfilled_by: Vec<(String, usize)>,
    /// Whether the learner would hold the badge now.
    pub holds: bool,
    /// The hit that completed the progress of the award they would hold.
    pub completed_by: Option<usize>,
    /// Awards and revocations the replay went through.
    pub awards: u32,
    pub revocations: u32,
}

/// The learner's actual latest award of the template, as a backfill needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub episode: i64,
    pub revoked: bool,
    /// Made by hand (no completing event): a backfill never revokes it.
    pub manual: bool,
}

/// Where a learner stands after comparing the replay with their actual badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Holds the badge and would hold it.
    Unchanged,
    /// Would hold it and does not: awarded by a backfill (with this episode).
    Award,
    /// Holds it and would not: revoked only when the backfill is asked to revoke.
    Revoke,
    /// Would hold it, but lost it before and the template forbids earning it again.
    NotReawardable,
    /// Holds it by a manual award and would not: kept, never revoked by a backfill.
    ManualKept,
    /// Neither holds nor would hold it.
    NotQualified,
}

/// Compares a replayed outcome with the learner's latest award; returns the verdict and, for
/// [`Verdict::Award`], the episode to open.
pub fn verdict(outcome: &Outcome, latest: Option<Held>, allow_reaward: bool) -> (Verdict, i64) {
    let holds_now = latest.is_some_and(|l| !l.revoked);
    match (outcome.holds, holds_now) {
        (true, true) => (Verdict::Unchanged, 0),
        (true, false) => {
            let latest = latest.map(|l| decision::Latest {
                episode: l.episode,
                revoked: l.revoked,
            });
            match decision::episode_on_completion(latest, allow_reaward) {
                Some(e) => (Verdict::Award, e),
                None => (Verdict::NotReawardable, 0),
            }
        }
        (false, true) if latest.is_some_and(|l| l.manual) => (Verdict::ManualKept, 0),
        (false, true) => (Verdict::Revoke, 0),
        (false, false) => (Verdict::NotQualified, 0),
    }
}

/// The reason recorded on an award a backfill revokes.
pub fn revocation_reason(backfill_id: &str) -> String {
    format!("no longer qualifies under the current rules (backfill {backfill_id})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{step_from, RuleIndex};
    use crate::rules::DataRule;
    use crate::template::{Group, Origin, Penalty, Requirement};
    use chrono::Utc;
    use proptest::prelude::*;
    use serde_json::json;

    fn config(allow_reaward: bool) -> TemplateConfig {
        let req = |id: &str, group: &str, course: &str| Requirement {
            id: id.into(),
            template_id: "t".into(),
            key: None,
            event_type: "pass".into(),
            description: String::new(),
            group: Group::parse(group).unwrap(),
            rules: vec![
                DataRule::new("is_passing", "=", "true").unwrap(),
                DataRule::new("course", "=", course).unwrap(),
            ],
        };
        TemplateConfig {
            template: Template {
                id: "t".into(),
                name: "t".into(),
                description: String::new(),
                image_url: None,
                origin: Origin::Local,
                provider_state: "active".into(),
                is_active: false,
                allow_reaward,
                organization_id: None,
                expires_after: None,
                criteria: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            // A and (B or C).
            requirements: vec![req("a", "A", "A"), req("b", "B", "B"), req("c", "B", "C")],
            penalties: vec![Penalty {
                id: "p".into(),
                template_id: "t".into(),
                key: None,
                event_type: "fail".into(),
                description: String::new(),
                rules: vec![DataRule::new("course", "=", "A").unwrap()],
                requirement_ids: vec!["a".into()],
            }],
        }
    }

    /// Event kinds of the property test: pass A, B, C; fail A (penalty); pass D (no effect).
    fn event(kind: u8) -> (&'static str, Value) {
        match kind % 5 {
            0 => ("pass", json!({"is_passing": true, "course": "A"})),
            1 => ("pass", json!({"is_passing": true, "course": "B"})),
            2 => ("pass", json!({"is_passing": true, "course": "C"})),
            3 => ("fail", json!({"course": "A"})),
            _ => ("pass", json!({"is_passing": true, "course": "D"})),
        }
    }

    #[test]
    fn replays_groups_penalties_and_re_awards() {
        let r = Replayer::new(&config(true));
        assert_eq!(r.event_types(), vec!["fail", "pass"]);
        let hits: Vec<Hit> = [0, 2, 3, 0]
            .iter()
            .map(|k| {
                let (t, p) = event(*k);
                r.hit(t, &p)
            })
            .collect();
        let o = r.replay(&hits);
        assert!(o.holds);
        assert_eq!((o.awards, o.revocations), (2, 1));
        assert_eq!(o.completed_by, Some(3));
        assert_eq!(r.requirement_ids(&o.fulfilled), vec!["a", "c"]);
        assert_eq!(
            o.fulfilled_by,
            vec![("a".to_string(), 3), ("c".to_string(), 1)]
        );
        // Without re-awarding the second completion gives nothing.
        let r = Replayer::new(&config(false));
        let o = r.replay(&hits);
        assert!(!o.holds);
        assert_eq!((o.awards, o.revocations, o.completed_by), (1, 1, None));
    }

    #[test]
    fn the_sparse_payload_gives_the_same_hits() {
        let r = Replayer::new(&config(true));
        let body = json!({"data": {"k": {"is_passing": true, "course": "A", "x": [1, 2]}},
                          "id": "e", "event_type": "pass"})
        .to_string();
        let sparse = r.paths().payload_of_event(&body).unwrap();
        assert_eq!(sparse, json!({"is_passing": true, "course": "A"}));
        assert_eq!(r.hit("pass", &sparse), r.hit("pass", &event(0).1));
    }

    #[test]
    fn verdicts() {
        let o = |holds| Outcome {
            fulfilled: vec![0],
            fulfilled_by: vec![],
            holds,
            completed_by: None,
            awards: 0,
            revocations: 0,
        };
        let held = |revoked, manual| {
            Some(Held {
                episode: 2,
                revoked,
                manual,
            })
        };
        assert_eq!(verdict(&o(true), None, false), (Verdict::Award, 1));
        assert_eq!(
            verdict(&o(true), held(false, false), true).0,
            Verdict::Unchanged
        );
        assert_eq!(
            verdict(&o(true), held(true, false), true),
            (Verdict::Award, 3)
        );
        assert_eq!(
            verdict(&o(true), held(true, false), false).0,
            Verdict::NotReawardable
        );
        assert_eq!(
            verdict(&o(false), held(false, false), true).0,
            Verdict::Revoke
        );
        assert_eq!(
            verdict(&o(false), held(false, true), true).0,
            Verdict::ManualKept
        );
        assert_eq!(
            verdict(&o(false), held(true, false), true).0,
            Verdict::NotQualified
        );
        assert_eq!(verdict(&o(false), None, true).0, Verdict::NotQualified);
    }

    proptest! {
        /// Replaying a learner's events gives what live processing of the same events (the
        /// engine's step and the award decision, from no progress) would have: whether they
        /// hold the badge, their progress, and how many awards and revocations happened.
        #[test]
        fn replay_equals_live_processing(
            kinds in prop::collection::vec(0u8..5, 0..24),
            allow_reaward in any::<bool>(),
        ) {
            let cfg = TemplateConfig {
                template: Template { is_active: true, ..config(allow_reaward).template },
                ..config(allow_reaward)
            };
            let index = RuleIndex::build(1, std::slice::from_ref(&cfg));
            let replayer = Replayer::new(&cfg);
            let mut progress: HashSet<String> = HashSet::new();
            let mut latest: Option<decision::Latest> = None;
            let (mut awards, mut revocations) = (0, 0);
            let mut hits = Vec::new();
            for k in &kinds {
                let (t, payload) = event(*k);
                hits.push(replayer.hit(t, &payload));
                for hit in index.evaluate(t, &payload) {
                    let was = hit.template.is_complete(progress.iter().map(String::as_str));
                    let s = step_from(&hit, &progress, was);
                    for r in &s.removed { progress.remove(r); }
                    for r in &s.added { progress.insert(r.clone()); }
                    match decision::Decision::of(&s, !hit.fulfilled.is_empty()) {
                        decision::Decision::Award => {
                            if let Some(e) = decision::episode_on_completion(latest, allow_reaward) {
                                latest = Some(decision::Latest { episode: e, revoked: false });
                                awards += 1;
                            }
                        }
                        decision::Decision::AwardIfNeverHeld if latest.is_none() => {
                            latest = Some(decision::Latest { episode: 1, revoked: false });
                            awards += 1;
                        }
                        decision::Decision::Revoke if decision::holds(latest) => {
                            latest.as_mut().unwrap().revoked = true;
                            revocations += 1;
                        }
                        _ => {}
                    }
                }
            }
            let o = replayer.replay(&hits);
            prop_assert_eq!(o.holds, decision::holds(latest));
            prop_assert_eq!((o.awards, o.revocations), (awards, revocations));
            let mut replayed: Vec<&str> = replayer.requirement_ids(&o.fulfilled);
            let mut live: Vec<&str> = progress.iter().map(String::as_str).collect();
            replayed.sort();
            live.sort();
            prop_assert_eq!(replayed, live);
        }
    }
}
