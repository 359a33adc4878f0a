//! The rules engine: an in-memory index of the active configuration and the pure step function
//! that turns one event into fulfilments, resets and award/revoke transitions.
//!
//! The index is built from a database snapshot ([`TemplateConfig`]s of active templates) and is
//! immutable; storage rebuilds it whenever the configuration version changes, so matching never
//! uses stale rules. Deciding *what* happens is pure and lives here; storage only persists it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expiry::ExpiresAfter;
use crate::rules::{all_match, CompiledRule};
use crate::template::{Group, Origin, TemplateConfig};

/// What the engine needs to know about a template besides its rules.
#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub origin: Origin,
    pub allow_reaward: bool,
    /// The template's award lifetime (awards made now expire this long after they were earned).
    pub expires_after: Option<ExpiresAfter>,
    /// Requirement id → its group.
    pub requirement_groups: HashMap<String, Group>,
    /// Every group the template has; complete when each has a fulfilled requirement.
    pub groups: BTreeSet<Group>,
}

impl TemplateInfo {
    /// The expiry of an award of this template earned at `earned_at`, fixed when it is made.
    pub fn expires_at(&self, earned_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_after.map(|e| e.expires_at(earned_at))
    }

    /// Whether `fulfilled` (requirement ids) covers every group. A template without requirements
    /// is never complete.
    pub fn is_complete<'a>(&self, fulfilled: impl IntoIterator<Item = &'a str>) -> bool {
        self.fulfilled_groups(fulfilled) == self.groups.len() && !self.groups.is_empty()
    }

    /// Number of groups with at least one fulfilled requirement (ids of removed requirements
    /// are ignored).
    pub fn fulfilled_groups<'a>(&self, fulfilled: impl IntoIterator<Item = &'a str>) -> usize {
        // Groups are letters A-Z: a bit each (no set to allocate on the event path).
        fulfilled
            .into_iter()
            .filter_map(|r| self.requirement_groups.get(r))
            .fold(0u32, |mask, g| mask | g.bit())
            .count_ones() as usize
    }
}

#[derive(Debug)]
struct RequirementMatcher {
    template: usize,
    requirement_id: String,
    rules: Vec<CompiledRule>,
}

#[derive(Debug)]
struct PenaltyMatcher {
    template: usize,
    rules: Vec<CompiledRule>,
    requirement_ids: Vec<String>,
}

/// Requirements sharing one equality path, reachable by the payload's value at that path.
#[derive(Debug)]
struct KeyedRequirements {
    path: Vec<String>,
    /// Canonical expected value → indexes into `EventTypeMatchers::requirements`.
    by_value: HashMap<String, Vec<usize>>,
    /// All indexes of this group (used when the payload value is a number, which compares
    /// numerically and so cannot be looked up by text).
    all: Vec<usize>,
}

#[derive(Debug, Default)]
struct EventTypeMatchers {
    requirements: Vec<RequirementMatcher>,
    penalties: Vec<PenaltyMatcher>,
    /// Requirements indexed by their most selective `=` rule: with many requirements on one
    /// event type (e.g. one per course) an event is checked only against the few whose key
    /// value it carries, instead of against all of them.
    keyed: Vec<KeyedRequirements>,
    /// Requirements without an `=` rule, always checked.
    unkeyed: Vec<usize>,
}

impl EventTypeMatchers {
    fn build_keys(&mut self, rules_of: &[Vec<crate::rules::DataRule>]) {
        use crate::rules::Operator;
        // Distinct expected values per equality path, to pick the most selective path.
        let mut distinct: HashMap<&str, HashSet<&str>> = HashMap::new();
        for rules in rules_of {
            for r in rules.iter().filter(|r| r.operator == Operator::Eq) {
                distinct
                    .entry(r.path.as_str())
                    .or_default()
                    .insert(r.value.as_str());
            }
        }
        let mut groups: HashMap<&str, KeyedRequirements> = HashMap::new();
        for (i, rules) in rules_of.iter().enumerate() {
            let best = rules
                .iter()
                .filter(|r| r.operator == Operator::Eq)
                .max_by_key(|r| distinct.get(r.path.as_str()).map_or(0, HashSet::len));
            match best {
                Some(rule) => {
                    let g = groups
                        .entry(rule.path.as_str())
                        .or_insert_with(|| KeyedRequirements {
                            path: rule.path.split('.').map(str::to_string).collect(),
                            by_value: HashMap::new(),
                            all: Vec::new(),
                        });
                    g.by_value
                        .entry(crate::rules::canonical(&rule.value).to_string())
                        .or_default()
                        .push(i);
                    g.all.push(i);
                }
                None => self.unkeyed.push(i),
            }
        }
        self.keyed = groups.into_values().collect();
    }

    /// Indexes of the requirements that may match `payload`, in configuration order.
    fn candidates(&self, payload: &Value) -> Vec<usize> {
        let mut out = self.unkeyed.clone();
        for g in &self.keyed {
            match crate::rules::lookup(payload, &g.path) {
                Some(Value::String(s)) => {
                    if let Some(ids) = g.by_value.get(crate::rules::canonical(s)) {
                        out.extend_from_slice(ids);
                    }
                }
                Some(Value::Bool(b)) => {
                    if let Some(ids) = g.by_value.get(if *b { "True" } else { "False" }) {
                        out.extend_from_slice(ids);
                    }
                }
                Some(Value::Null) | None => {}
                Some(_) => out.extend_from_slice(&g.all),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Immutable index of the active configuration, keyed by event type.
#[derive(Debug, Default)]
pub struct RuleIndex {
    /// Configuration version this index was built from.
    pub version: i64,
    /// Unique per built index in this process: [`Matches`] name the index they were made with.
    build: u64,
    templates: Vec<Arc<TemplateInfo>>,
    by_event_type: HashMap<String, EventTypeMatchers>,
}

/// Which requirements and penalties matched an event, by position in one built index (see
/// [`RuleIndex::matches`]). The HTTP handler computes them while parsing, on its own thread, so
/// the single database writer only assembles the hits; an index rebuilt in between makes them
/// stale, and the writer evaluates the event again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    build: u64,
    requirements: Vec<u32>,
    penalties: Vec<u32>,
}

/// The effect of one event on one template, before looking at stored progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateHit<'a> {
    pub template: &'a Arc<TemplateInfo>,
    /// Requirements whose rules all matched.
    pub fulfilled: Vec<&'a str>,
    /// Requirements reset by a matching penalty.
    pub reset: Vec<&'a str>,
}

impl PartialEq for TemplateInfo {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for TemplateInfo {}

impl RuleIndex {
    /// Builds the index from the active templates. Inactive templates are skipped defensively.
    pub fn build(version: i64, configs: &[TemplateConfig]) -> Self {
        static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let mut index = RuleIndex {
            version,
            build: BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Default::default()
        };
        let mut rules_by_type: HashMap<String, Vec<Vec<crate::rules::DataRule>>> = HashMap::new();
        for cfg in configs.iter().filter(|c| c.template.is_active) {
            let t = index.templates.len();
            let requirement_groups: HashMap<String, Group> = cfg
                .requirements
                .iter()
                .map(|r| (r.id.clone(), r.group))
                .collect();
            index.templates.push(Arc::new(TemplateInfo {
                id: cfg.template.id.clone(),
                name: cfg.template.name.clone(),
                description: cfg.template.description.clone(),
                image_url: cfg.template.image_url.clone(),
                origin: cfg.template.origin,
                allow_reaward: cfg.template.allow_reaward,
                expires_after: cfg.template.expires_after,
                groups: requirement_groups.values().copied().collect(),
                requirement_groups,
            }));
            for r in &cfg.requirements {
                rules_by_type
                    .entry(r.event_type.clone())
                    .or_default()
                    .push(r.rules.clone());
                index
                    .by_event_type
                    .entry(r.event_type.clone())
                    .or_default()
                    .requirements
                    .push(RequirementMatcher {
                        template: t,
                        requirement_id: r.id.clone(),
                        rules: r.rules.iter().map(|x| x.compile()).collect(),
                    });
            }
            for p in &cfg.penalties {
                index
                    .by_event_type
                    .entry(p.event_type.clone())
                    .or_default()
                    .penalties
                    .push(PenaltyMatcher {
                        template: t,
                        rules: p.rules.iter().map(|x| x.compile()).collect(),
                        requirement_ids: p.requirement_ids.clone(),
                    });
            }
        }
        for (event_type, rules) in &rules_by_type {
            if let Some(m) = index.by_event_type.get_mut(event_type) {
                m.build_keys(rules);
            }
        }
        index
    }

    /// Whether any active requirement or penalty listens to this event type.
    pub fn handles(&self, event_type: &str) -> bool {
        self.by_event_type.contains_key(event_type)
    }

    pub fn template(&self, id: &str) -> Option<&Arc<TemplateInfo>> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// Evaluates an event payload against every active requirement and penalty of its type,
    /// grouped by template (in configuration order).
    pub fn evaluate(&self, event_type: &str, payload: &Value) -> Vec<TemplateHit<'_>> {
        self.hits(event_type, payload, None)
    }

    /// The requirements and penalties of the event's type whose rules all match its payload.
    pub fn matches(&self, event_type: &str, payload: &Value) -> Matches {
        let mut out = Matches {
            build: self.build,
            ..Matches::default()
        };
        if let Some(m) = self.by_event_type.get(event_type) {
            for i in m.candidates(payload) {
                if all_match(&m.requirements[i].rules, payload) {
                    out.requirements.push(i as u32);
                }
            }
            for (i, p) in m.penalties.iter().enumerate() {
                if all_match(&p.rules, payload) {
                    out.penalties.push(i as u32);
                }
            }
        }
        out
    }

    /// [`RuleIndex::evaluate`], reusing `matches` when they were made with this very index.
    pub fn hits(
        &self,
        event_type: &str,
        payload: &Value,
        matches: Option<&Matches>,
    ) -> Vec<TemplateHit<'_>> {
        let Some(m) = self.by_event_type.get(event_type) else {
            return Vec::new();
        };
        let fresh;
        let matched = match matches {
            Some(x) if x.build == self.build => x,
            _ => {
                fresh = self.matches(event_type, payload);
                &fresh
            }
        };
        fn slot<'a>(index: &'a RuleIndex, t: usize, hits: &mut Vec<TemplateHit<'a>>) -> usize {
            let template = &index.templates[t];
            match hits.iter().position(|h| Arc::ptr_eq(h.template, template)) {
                Some(i) => i,
                None => {
                    hits.push(TemplateHit {
                        template,
                        fulfilled: Vec::new(),
                        reset: Vec::new(),
                    });
                    hits.len() - 1
                }
            }
        }
        let mut hits: Vec<TemplateHit<'_>> = Vec::new();
        for &i in &matched.requirements {
            let r = &m.requirements[i as usize];
            let h = slot(self, r.template, &mut hits);
            hits[h].fulfilled.push(&r.requirement_id);
        }
        for &i in &matched.penalties {
            let p = &m.penalties[i as usize];
            let h = slot(self, p.template, &mut hits);
            hits[h]
                .reset
                .extend(p.requirement_ids.iter().map(String::as_str));
        }
        hits
    }
}

/// What an event does to one learner's progress on one template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Requirements newly fulfilled by this event.
    pub added: Vec<String>,
    /// Previously fulfilled requirements reset by a penalty.
    pub removed: Vec<String>,
    pub was_complete: bool,
    pub is_complete: bool,
}

impl Step {
    /// Incomplete → complete: award.
    pub fn completes(&self) -> bool {
        !self.was_complete && self.is_complete
    }
    /// Complete → incomplete: revoke.
    pub fn breaks(&self) -> bool {
        self.was_complete && !self.is_complete
    }
}

/// Applies a hit to the learner's stored fulfilled requirements. Requirements are fulfilled
/// first, then penalties reset (so a penalty wins when one event does both), matching the
/// upstream processing order.
pub fn step(hit: &TemplateHit<'_>, before: &HashSet<String>) -> Step {
    step_from(
        hit,
        before,
        hit.template.is_complete(before.iter().map(String::as_str)),
    )
}

/// [`step`] for a caller that knows whether `before` is complete (it keeps that with the
/// progress): a hit that changes nothing then costs no completeness check at all.
pub fn step_from(hit: &TemplateHit<'_>, before: &HashSet<String>, was_complete: bool) -> Step {
    let info = hit.template;
    // Most hits change nothing (the requirement is already fulfilled): no set is built, and
    // completeness is computed once.
    let mut added: Vec<String> = Vec::new();
    for &r in &hit.fulfilled {
        if !before.contains(r) && !added.iter().any(|a| a == r) {
            added.push(r.to_string());
        }
    }
    let mut removed: Vec<String> = Vec::new();
    for &r in &hit.reset {
        if let Some(pos) = added.iter().position(|a| a == r) {
            added.remove(pos);
        } else if before.contains(r) && !removed.iter().any(|x| x == r) {
            removed.push(r.to_string());
        }
    }
    let is_complete = if added.is_empty() && removed.is_empty() {
        was_complete
    } else {
        let kept = before
            .iter()
            .map(String::as_str)
            .filter(|r| !removed.iter().any(|x| x == r));
        info.is_complete(kept.chain(added.iter().map(String::as_str)))
    };
    Step {
        was_complete,
        is_complete,
        added,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::DataRule;
    use crate::template::{Penalty, Requirement, Template};
    use chrono::Utc;
    use serde_json::json;

    fn template(id: &str, active: bool) -> Template {
        Template {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            image_url: None,
            origin: Origin::Local,
            provider_state: "active".into(),
            is_active: active,
            allow_reaward: true,
            organization_id: None,
            expires_after: None,
            criteria: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn req(id: &str, group: &str, course: &str) -> Requirement {
        Requirement {
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
        }
    }

    fn two_groups() -> RuleIndex {
        RuleIndex::build(
            1,
            &[TemplateConfig {
                template: template("t", true),
                requirements: vec![req("a", "A", "c1"), req("b", "B", "c2")],
                penalties: vec![Penalty {
                    id: "p".into(),
                    template_id: "t".into(),
                    key: None,
                    event_type: "pass".into(),
                    description: String::new(),
                    rules: vec![DataRule::new("is_passing", "=", "false").unwrap()],
                    requirement_ids: vec!["a".into(), "b".into()],
                }],
            }],
        )
    }

    #[test]
    fn and_across_groups_awards_only_when_all_fulfilled() {
        let idx = two_groups();
        let mut have = HashSet::new();
        let hits = idx.evaluate("pass", &json!({"is_passing": true, "course": "c1"}));
        let s = step(&hits[0], &have);
        assert!(
            !s.completes(),
            "one of two groups must not award (upstream defect D1)"
        );
        have.extend(s.added);
        let hits = idx.evaluate("pass", &json!({"is_passing": true, "course": "c2"}));
        let s = step(&hits[0], &have);
        assert!(s.completes());
        have.extend(s.added.clone());
        let hits = idx.evaluate("pass", &json!({"is_passing": false, "course": "c2"}));
        let s = step(&hits[0], &have);
        assert!(s.breaks());
        assert_eq!(
            s.removed.len(),
            2,
            "penalty resets both linked requirements"
        );
    }

    #[test]
    fn matches_are_reused_only_by_the_index_that_made_them() {
        let idx = two_groups();
        let c1 = json!({"is_passing": true, "course": "c1"});
        let fail = json!({"is_passing": false, "course": "c2"});
        let m = idx.matches("pass", &c1);
        assert_eq!(idx.hits("pass", &c1, Some(&m)), idx.evaluate("pass", &c1));
        let m = idx.matches("pass", &fail);
        assert_eq!(idx.hits("pass", &fail, Some(&m))[0].reset, vec!["a", "b"]);
        // The writer trusts matches made with its own index (they are not recomputed)...
        assert_eq!(idx.hits("pass", &c1, Some(&m)), idx.evaluate("pass", &fail));
        // ...and ignores those of any other index, even one of the same version.
        let same_version = RuleIndex::build(
            1,
            &[TemplateConfig {
                template: template("t", true),
                requirements: vec![req("a", "A", "c9")],
                penalties: vec![],
            }],
        );
        let stale = idx.matches("pass", &c1);
        assert!(same_version.hits("pass", &c1, Some(&stale)).is_empty());
        let other = same_version.matches("pass", &json!({"is_passing": true, "course": "c9"}));
        assert_eq!(
            same_version.hits(
                "pass",
                &json!({"is_passing": true, "course": "c9"}),
                Some(&other)
            )[0]
            .fulfilled,
            vec!["a"]
        );
    }

    #[test]
    fn inactive_templates_are_not_indexed() {
        let idx = RuleIndex::build(
            1,
            &[TemplateConfig {
                template: template("t", false),
                requirements: vec![req("a", "A", "c1")],
                penalties: vec![],
            }],
        );
        assert!(!idx.handles("pass"));
        assert!(idx
            .evaluate("pass", &json!({"is_passing": true, "course": "c1"}))
            .is_empty());
    }

    #[test]
    fn template_without_requirements_is_never_complete() {
        let info = TemplateInfo {
            id: "t".into(),
            name: "t".into(),
            description: String::new(),
            image_url: None,
            origin: Origin::Local,
            allow_reaward: true,
            expires_after: None,
            requirement_groups: HashMap::new(),
            groups: BTreeSet::new(),
        };
        assert!(!info.is_complete(std::iter::empty()));
    }

    mod keyed_index {
        use super::*;
        use proptest::prelude::*;

        fn value_strategy() -> impl Strategy<Value = serde_json::Value> {
            prop_oneof![
                Just(json!("c1")),
                Just(json!("c2")),
                Just(json!("yes")),
                Just(json!(true)),
                Just(json!(false)),
                Just(json!(5)),
                Just(json!(5.0)),
                Just(json!("5")),
                Just(serde_json::Value::Null),
            ]
        }

        fn expected_strategy() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("c1"),
                Just("c2"),
                Just("true"),
                Just("false"),
                Just("5"),
                Just("5.0")
            ]
            .prop_map(str::to_string)
        }

        proptest! {
            /// The equality-keyed lookup finds exactly the requirements a full scan finds.
            #[test]
            fn keyed_evaluation_equals_full_scan(
                reqs in proptest::collection::vec(
                    proptest::collection::vec((prop_oneof![Just("course"), Just("flag")], prop_oneof![Just("="), Just("!=")], expected_strategy()), 0..3),
                    1..8),
                course in value_strategy(),
                flag in value_strategy(),
            ) {
                let requirements: Vec<Requirement> = reqs.iter().enumerate().map(|(i, rules)| Requirement {
                    id: format!("r{i}"),
                    template_id: "t".into(),
                    key: None,
                    event_type: "e".into(),
                    description: String::new(),
                    group: Group::parse("A").unwrap(),
                    rules: rules.iter().map(|(p, o, v)| DataRule::new(p, o, v).unwrap()).collect(),
                }).collect();
                let cfg = TemplateConfig { template: template("t", true), requirements: requirements.clone(), penalties: vec![] };
                let idx = RuleIndex::build(1, &[cfg]);
                let payload = json!({"course": course, "flag": flag});
                let got: Vec<String> = idx.evaluate("e", &payload).into_iter().flat_map(|h| h.fulfilled.into_iter().map(str::to_string)).collect();
                let want: Vec<String> = requirements.iter()
                    .filter(|r| r.rules.iter().all(|x| x.compile().matches(&payload)))
                    .map(|r| r.id.clone()).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
