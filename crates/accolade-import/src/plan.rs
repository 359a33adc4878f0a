//! What the rows of an Open edX Credentials database mean in Accolade: pure, no I/O.
//!
//! [`plan`] checks every row first and refuses the whole import with the list of [`Problem`]s when
//! one would be wrong to import (an unknown operator, a template of an organization the source
//! does not have, a penalty resetting another template's requirement, …). Otherwise it returns
//! one [`PlannedPart`] per organization (written in one transaction each) and a [`Report`]: the
//! counts, what is skipped and why, and the learners whose progress is complete in the source but
//! who hold no issued badge there (Credentials' defects D1/D3/D4 showing).
//!
//! Readings chosen where Credentials is ambiguous (docs/migrate-from-openedx.md explains them):
//! - **Groups.** A template's groups are the distinct `blend` values of its requirements, as
//!   Credentials computes progress. A `blend` that is one letter A-Z keeps it; any other value,
//!   and NULL (Credentials' runtime puts every ungrouped requirement in one group, so they are
//!   ORed) gets the first free letter, reported as renamed.
//! - **Rules.** Credentials' admin stores `eq` and `ne`; they become `=` and `!=`. Values are kept
//!   as stored: Accolade compares them as Credentials does (payload value as Python would print
//!   it, boolean aliases `true True yes Yes +` / `false False no No -`). Any other operator is a
//!   problem: Credentials would run it with Python's string meaning, which no Accolade operator has.
//! - **Rule-less requirements** never match in Credentials (D6) and match every event of their
//!   type in Accolade: imported, and named in the report. **Rule-less penalties** never fire in
//!   Credentials; imported they would reset progress on every event of their type, so they are
//!   skipped and reported.
//! - **Badges.** A Credly badge row with a Credly id becomes an award carrying that id and
//!   Credly state (held when its status is `awarded`, revoked otherwise), with Credentials'
//!   award UUID as its id. A row without a Credly id never reached Credly: no award.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use accolade_domain::award::{Award, AwardState};
use accolade_domain::event::LearnerData;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{
    validate_name, Group, Origin, Penalty, Requirement, Template, TemplateConfig,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::source::{self, AccredibleCounts, SourceData};

/// How long a Credly authorization token lives (Credly's help centre: 180 days from creation).
pub const CREDLY_TOKEN_DAYS: i64 = 180;

/// Why an imported revoked award is revoked.
pub const REVOKED_IN_SOURCE: &str = "revoked in Open edX Credentials (imported)";

/// What the caller knows that the source does not.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub now: DateTime<Utc>,
    /// Event types Accolade accepts (`events.types`): a requirement of another type is imported
    /// and reported, since its events are refused until the type is added.
    pub configured_event_types: Vec<String>,
    /// Credly keys given on the command line, by organization UUID: for organizations whose key
    /// lives in Credentials' settings (an empty `api_key` column), or to replace a stored one.
    pub org_keys: HashMap<String, String>,
}

/// A (learner, template id, requirement id) fulfilment; the strings are shared.
pub type PlannedFulfilment = (Arc<str>, Arc<str>, Arc<str>);

/// A Credly organization to create; `api_key` is secret (never in `Debug` or the report).
#[derive(Clone)]
pub struct PlannedOrganization {
    pub uuid: String,
    pub name: String,
    pub api_key: String,
    /// When the key was last saved in Credentials (its age is not stored there): the estimate
    /// of its creation, so its expiry is at the latest this plus 180 days.
    pub key_created_at: DateTime<Utc>,
    pub key_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PlannedOrganization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedOrganization")
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("key_expires_at", &self.key_expires_at)
            .finish_non_exhaustive()
    }
}

/// One organization's share of the import: written in one transaction.
#[derive(Debug, Clone)]
pub struct PlannedPart {
    pub organization: PlannedOrganization,
    pub templates: Vec<TemplateConfig>,
    pub learners: Vec<LearnerData>,
    pub fulfilments: Vec<PlannedFulfilment>,
    /// Awards with their Credly id; `episode` is left 0 (the store numbers them).
    pub awards: Vec<Award>,
}

/// Why the import is refused. Every problem found is listed, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Problem {
    #[error("organization {id}: `{uuid}` is not a UUID")]
    BadOrganization { id: i64, uuid: String },
    #[error(
        "organization {uuid} ({name}) has no API key in the source (it is configured in \
         Credentials' settings): give it with --org-key {uuid}=KEY"
    )]
    MissingKey { uuid: String, name: String },
    #[error("template {id} `{name}` belongs to organization {organization_id}, which the source does not have")]
    MissingOrganization {
        id: i64,
        name: String,
        organization_id: i64,
    },
    #[error("template {id} `{name}`: {reason}")]
    BadTemplate {
        id: i64,
        name: String,
        reason: String,
    },
    #[error(
        "template `{template}`, requirement {requirement}: unknown operator `{operator}` \
         (Credentials' admin stores only eq and ne)"
    )]
    UnknownOperator {
        template: String,
        requirement: String,
        operator: String,
    },
    #[error("template `{template}`, {owner}: rule on `{path}`: {reason}")]
    BadRule {
        template: String,
        owner: String,
        path: String,
        reason: String,
    },
    #[error("template `{template}`, {owner}: empty event type")]
    EmptyEventType { template: String, owner: String },
    #[error("template `{template}`: {groups} groups, more than the 26 letters A-Z")]
    TooManyGroups { template: String, groups: usize },
    #[error(
        "penalty {penalty} of template `{template}` resets requirement {requirement}, which \
         belongs to {other}"
    )]
    ForeignPenaltyRequirement {
        penalty: i64,
        template: String,
        requirement: i64,
        other: String,
    },
    #[error(
        "Credly badge {id} of {learner}: unknown status `{status}` (expected awarded or revoked)"
    )]
    UnknownBadgeStatus {
        id: i64,
        learner: String,
        status: String,
    },
}

/// A learner listed by the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnerOnTemplate {
    pub learner: String,
    pub template: String,
    pub template_name: String,
    pub template_active: bool,
    pub why: String,
}

/// Source row counts (what was read) and what the import will create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub organizations: u64,
    pub templates: u64,
    pub templates_active: u64,
    pub requirements: u64,
    pub requirements_without_rules: u64,
    pub data_rules: u64,
    pub penalties: u64,
    pub penalty_rules: u64,
    pub penalty_requirement_links: u64,
    pub learners: u64,
    pub progress_records: u64,
    pub fulfilments: u64,
    pub credly_badge_rows: u64,
    pub awards: u64,
    pub awards_held: u64,
    pub awards_revoked: u64,
}

/// Rows of the source that are not imported, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub accredible: AccredibleCounts,
    /// Accredible groups' requirements, penalties and progress records.
    pub accredible_rows: u64,
    /// Templates neither Credly nor Accredible (no provider row).
    pub templates_without_provider: u64,
    pub fulfilments_of_deleted_requirements: u64,
    pub progress_records_without_template: u64,
    /// Fulfilments whose requirement is not of the progress record's template.
    pub fulfilments_of_other_templates: u64,
    /// Duplicate fulfilments (the source has no unique constraint on them).
    pub duplicate_fulfilments: u64,
    /// Credly badges whose template was deleted (D8): the badges still exist on Credly.
    pub badges_of_deleted_templates: u64,
    /// Badge rows that never reached Credly (no Credly id): no award.
    pub badges_without_credly_id: u64,
    pub penalties_without_rules: u64,
    pub penalties_without_requirements: u64,
}

/// Everything the plan says besides what it writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub counts: Counts,
    pub skipped: Skipped,
    /// Plain-language notes: readings chosen, rule-less requirements, renamed groups, event types
    /// to add, the key expiry estimate.
    pub notes: Vec<String>,
    /// Complete in the source, no held badge there: awarded by `--award-complete`.
    pub complete_without_issued_badge: Vec<LearnerOnTemplate>,
    /// Held badges whose progress is not complete (Credentials' D1): kept, reported.
    pub held_but_incomplete: u64,
    /// Revoked in the source while the revocation never reached Credly (state `error`).
    pub revoked_but_live_on_credly: Vec<LearnerOnTemplate>,
}

/// The import, decided.
#[derive(Debug, Clone)]
pub struct Plan {
    pub parts: Vec<PlannedPart>,
    pub report: Report,
}

fn stable_id(prefix: &str, kind: &str, template: &str, source_id: i64) -> String {
    let name = format!("urn:accolade:openedx-credentials:{kind}:{template}:{source_id}");
    format!(
        "{prefix}_{}",
        Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).simple()
    )
}

/// The id an imported requirement gets (stable: importing twice finds it again).
pub fn requirement_id(template_uuid: &str, source_id: i64) -> String {
    stable_id("req", "requirement", template_uuid, source_id)
}

/// The id an imported penalty gets.
pub fn penalty_id(template_uuid: &str, source_id: i64) -> String {
    stable_id("pen", "penalty", template_uuid, source_id)
}

/// Each distinct `blend` value (`None`: no group) with its group letter.
pub type GroupLetters = BTreeMap<Option<String>, Group>;
/// The `blend` values that did not keep their name, with the letter they got.
pub type Renamed = Vec<(Option<String>, Group)>;

/// Maps a template's distinct `blend` values to group letters (see the module doc).
/// Returns the mapping and the renamed values, in the order given.
pub fn group_letters(blends: &[Option<String>]) -> Result<(GroupLetters, Renamed), usize> {
    let distinct: BTreeSet<Option<String>> = blends.iter().cloned().collect();
    if distinct.len() > 26 {
        return Err(distinct.len());
    }
    let mut map = BTreeMap::new();
    for b in &distinct {
        if let Some(g) = b.as_deref().and_then(|s| Group::parse(s).ok()) {
            map.insert(b.clone(), g);
        }
    }
    let mut renamed = Vec::new();
    for b in &distinct {
        if !map.contains_key(b) {
            let g = Group::next_free(map.values().copied()).map_err(|_| distinct.len())?;
            map.insert(b.clone(), g);
            renamed.push((b.clone(), g));
        }
    }
    Ok((map, renamed))
}

fn convert_rule(r: &source::Rule) -> Result<DataRule, Result<String, String>> {
    let op = match r.operator.as_str() {
        "eq" => "=",
        "ne" => "!=",
        other => return Err(Err(other.to_string())),
    };
    DataRule::new(&r.path, op, &r.value).map_err(|e| Ok(e.to_string()))
}

/// A requirement's or penalty's rules; each bad one becomes a problem naming `owner`.
fn convert_rules(
    rules: &[&source::Rule],
    template: &str,
    owner: &str,
    problems: &mut Vec<Problem>,
) -> Vec<DataRule> {
    let mut out = Vec::new();
    for rule in rules {
        match convert_rule(rule) {
            Ok(dr) => out.push(dr),
            Err(Err(operator)) => problems.push(Problem::UnknownOperator {
                template: template.to_string(),
                requirement: owner.to_string(),
                operator,
            }),
            Err(Ok(reason)) => problems.push(Problem::BadRule {
                template: template.to_string(),
                owner: owner.to_string(),
                path: rule.path.clone(),
                reason,
            }),
        }
    }
    out
}

/// Decides the import. Refuses with every problem found, or returns the plan.
pub fn plan(src: &SourceData, opts: &PlanOptions) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut report = Report::default();
    let skipped = &mut report.skipped;
    skipped.accredible = src.accredible;

    // Organizations.
    let mut orgs: BTreeMap<i64, PlannedOrganization> = BTreeMap::new();
    for o in &src.organizations {
        let name = o
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("Credly organization {}", o.uuid));
        let key = opts
            .org_keys
            .get(&o.uuid)
            .cloned()
            .unwrap_or_else(|| o.api_key.trim().to_string());
        if key.is_empty() {
            problems.push(Problem::MissingKey {
                uuid: o.uuid.clone(),
                name: name.clone(),
            });
        }
        orgs.insert(
            o.id,
            PlannedOrganization {
                uuid: o.uuid.clone(),
                name,
                api_key: key,
                key_created_at: o.modified,
                key_expires_at: o.modified + Duration::days(CREDLY_TOKEN_DAYS),
            },
        );
    }

    // Templates: Credly ones are imported; Accredible groups and provider-less rows skipped.
    let credly_org: HashMap<i64, i64> = src.credly_templates.iter().copied().collect();
    let accredible: HashSet<i64> = src.accredible_groups.iter().copied().collect();
    let mut templates: BTreeMap<i64, (i64, TemplateConfig)> = BTreeMap::new();
    for t in &src.templates {
        let Some(&org_id) = credly_org.get(&t.id) else {
            if !accredible.contains(&t.id) {
                skipped.templates_without_provider += 1;
            }
            continue;
        };
        if !orgs.contains_key(&org_id) {
            problems.push(Problem::MissingOrganization {
                id: t.id,
                name: t.name.clone(),
                organization_id: org_id,
            });
            continue;
        }
        if let Err(e) = validate_name("name", &t.name) {
            problems.push(Problem::BadTemplate {
                id: t.id,
                name: t.name.clone(),
                reason: e.to_string(),
            });
            continue;
        }
        let template = Template {
            id: t.uuid.clone(),
            name: t.name.trim().to_string(),
            description: t.description.clone().unwrap_or_default(),
            image_url: t.icon.clone().filter(|i| !i.trim().is_empty()),
            origin: Origin::Credly,
            provider_state: t
                .state
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "active".into()),
            is_active: t.is_active,
            allow_reaward: true,
            organization_id: Some(orgs[&org_id].uuid.clone()),
            expires_after: None,
            criteria: None,
            created_at: opts.now,
            updated_at: opts.now,
        };
        templates.insert(
            t.id,
            (
                org_id,
                TemplateConfig {
                    template,
                    requirements: Vec::new(),
                    penalties: Vec::new(),
                },
            ),
        );
    }
    // Accredible rows are counted and skipped; rows of unknown templates would be a schema fault.
    let on_accredible = |template_id: i64| accredible.contains(&template_id);

    // Requirements and their rules, grouped per template.
    let mut rules_of: HashMap<i64, Vec<&source::Rule>> = HashMap::new();
    for r in &src.rules {
        rules_of.entry(r.owner_id).or_default().push(r);
    }
    let mut reqs_of: BTreeMap<i64, Vec<&source::Requirement>> = BTreeMap::new();
    for r in &src.requirements {
        if templates.contains_key(&r.template_id) {
            reqs_of.entry(r.template_id).or_default().push(r);
        } else if on_accredible(r.template_id) {
            skipped.accredible_rows += 1;
        }
    }
    // Source requirement id -> (template source id, Accolade requirement id, group).
    let mut req_index: HashMap<i64, (i64, Arc<str>, Group)> = HashMap::new();
    let configured: HashSet<&str> = opts
        .configured_event_types
        .iter()
        .map(String::as_str)
        .collect();
    let mut unconfigured: BTreeSet<String> = BTreeSet::new();
    for (tid, reqs) in &reqs_of {
        let (_, cfg) = templates.get_mut(tid).expect("filtered above");
        let tname = cfg.template.name.clone();
        let blends: Vec<Option<String>> = reqs.iter().map(|r| r.blend.clone()).collect();
        let (letters, renamed) = match group_letters(&blends) {
            Ok(x) => x,
            Err(groups) => {
                problems.push(Problem::TooManyGroups {
                    template: tname.clone(),
                    groups,
                });
                continue;
            }
        };
        for (blend, g) in renamed {
            report.notes.push(match blend {
                None => format!(
                    "template `{tname}`: requirements without a group form group {g} (any one of them fulfils it, as Credentials computes progress)"
                ),
                Some(b) => format!("template `{tname}`: group `{b}` is named {g}"),
            });
        }
        for r in reqs {
            let owner = format!("requirement {}", r.id);
            if r.event_type.trim().is_empty() {
                problems.push(Problem::EmptyEventType {
                    template: tname.clone(),
                    owner: owner.clone(),
                });
            }
            let rules = convert_rules(
                rules_of.get(&r.id).map(Vec::as_slice).unwrap_or_default(),
                &tname,
                &format!(
                    "requirement {} ({})",
                    r.id,
                    r.description.clone().unwrap_or_default()
                ),
                &mut problems,
            );
            if rules.is_empty() {
                report.counts.requirements_without_rules += 1;
                report.notes.push(format!(
                    "template `{tname}`: requirement {} has no data rules; Credentials never matched it (D6), Accolade matches every {} event",
                    r.id, r.event_type
                ));
            }
            if !configured.contains(r.event_type.as_str()) {
                unconfigured.insert(r.event_type.clone());
            }
            let group = letters[&r.blend];
            let id = requirement_id(&cfg.template.id, r.id);
            req_index.insert(r.id, (*tid, Arc::from(id.as_str()), group));
            report.counts.requirements += 1;
            report.counts.data_rules += rules.len() as u64;
            cfg.requirements.push(Requirement {
                id,
                template_id: cfg.template.id.clone(),
                key: Some(format!("openedx-{}", r.id)),
                event_type: r.event_type.trim().to_string(),
                description: r.description.clone().unwrap_or_default(),
                group,
                rules,
            });
        }
    }

    // Penalties.
    let mut penalty_rules_of: HashMap<i64, Vec<&source::Rule>> = HashMap::new();
    for r in &src.penalty_rules {
        penalty_rules_of.entry(r.owner_id).or_default().push(r);
    }
    let mut links_of: HashMap<i64, Vec<i64>> = HashMap::new();
    for &(p, r) in &src.penalty_links {
        links_of.entry(p).or_default().push(r);
    }
    let template_name_of_req = |rid: i64| -> String {
        src.requirements
            .iter()
            .find(|r| r.id == rid)
            .and_then(|r| src.templates.iter().find(|t| t.id == r.template_id))
            .map_or_else(
                || "no template (deleted)".to_string(),
                |t| format!("template `{}`", t.name),
            )
    };
    for p in &src.penalties {
        let Some((_, cfg)) = templates.get_mut(&p.template_id) else {
            if on_accredible(p.template_id) {
                skipped.accredible_rows += 1;
            }
            continue;
        };
        let tname = cfg.template.name.clone();
        let owner = format!("penalty {}", p.id);
        if p.event_type.trim().is_empty() {
            problems.push(Problem::EmptyEventType {
                template: tname.clone(),
                owner: owner.clone(),
            });
        }
        let rules = convert_rules(
            penalty_rules_of
                .get(&p.id)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            &tname,
            &owner,
            &mut problems,
        );
        let mut requirement_ids = Vec::new();
        for rid in links_of.get(&p.id).map(Vec::as_slice).unwrap_or_default() {
            match req_index.get(rid) {
                Some((tid, id, _)) if *tid == p.template_id => requirement_ids.push(id.to_string()),
                _ => problems.push(Problem::ForeignPenaltyRequirement {
                    penalty: p.id,
                    template: tname.clone(),
                    requirement: *rid,
                    other: template_name_of_req(*rid),
                }),
            }
        }
        if rules.is_empty() {
            skipped.penalties_without_rules += 1;
            report.notes.push(format!(
                "template `{tname}`: penalty {} has no data rules and is skipped (Credentials never fired it; Accolade would reset progress on every {} event)",
                p.id, p.event_type
            ));
            continue;
        }
        if requirement_ids.is_empty() {
            skipped.penalties_without_requirements += 1;
            report.notes.push(format!(
                "template `{tname}`: penalty {} resets no requirement and is skipped",
                p.id
            ));
            continue;
        }
        if !configured.contains(p.event_type.as_str()) {
            unconfigured.insert(p.event_type.clone());
        }
        report.counts.penalties += 1;
        report.counts.penalty_rules += rules.len() as u64;
        report.counts.penalty_requirement_links += requirement_ids.len() as u64;
        cfg.penalties.push(Penalty {
            id: penalty_id(&cfg.template.id, p.id),
            template_id: cfg.template.id.clone(),
            key: Some(format!("openedx-penalty-{}", p.id)),
            event_type: p.event_type.trim().to_string(),
            description: String::new(),
            rules,
            requirement_ids,
        });
    }
    for t in unconfigured {
        report.notes.push(format!(
            "event type {t} is not in events.types: add it there, or its events are refused"
        ));
    }

    // Badge rows are checked before anything is built from them.
    for b in &src.badges {
        if b.status != "awarded" && b.status != "revoked" {
            problems.push(Problem::UnknownBadgeStatus {
                id: b.id,
                learner: b.username.clone(),
                status: b.status.clone(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Progress: fulfilled requirements per (learner, template), deduplicated.
    let template_ids: HashMap<i64, Arc<str>> = templates
        .iter()
        .map(|(id, (_, c))| (*id, Arc::from(c.template.id.as_str())))
        .collect();
    // Learner names are shared by every row naming them; the number tells them apart cheaply.
    let mut learner_names: HashMap<&str, (u32, Arc<str>)> = HashMap::new();
    report.counts.progress_records = src.progress.len() as u64;
    // Progress record id -> (learner number, learner, template source id): each name interned
    // once per record, not once per fulfilment.
    let mut progress: HashMap<i64, (u32, Arc<str>, i64)> =
        HashMap::with_capacity(src.progress.len());
    for p in &src.progress {
        match p.template_id {
            None => skipped.progress_records_without_template += 1,
            Some(t) if on_accredible(t) => skipped.accredible_rows += 1,
            Some(t) if templates.contains_key(&t) => {
                let (number, learner) = intern(&mut learner_names, &p.username);
                progress.insert(p.id, (number, learner, t));
            }
            Some(_) => {}
        }
    }
    // (learner number, template source id) -> fulfilled groups (bits).
    let mut fulfilled: HashMap<(u32, i64), u32> = HashMap::new();
    let mut seen: HashSet<(u32, i64)> = HashSet::with_capacity(src.fulfilments.len());
    let mut by_org: BTreeMap<i64, Vec<PlannedFulfilment>> = BTreeMap::new();
    for f in &src.fulfilments {
        let Some((number, learner, tid)) = progress.get(&f.progress_id) else {
            continue;
        };
        let Some(rid) = f.requirement_id else {
            skipped.fulfilments_of_deleted_requirements += 1;
            continue;
        };
        let Some((rtid, req, group)) = req_index.get(&rid) else {
            skipped.fulfilments_of_deleted_requirements += 1;
            continue;
        };
        if rtid != tid {
            skipped.fulfilments_of_other_templates += 1;
            continue;
        }
        // Two progress records of one learner and template are one in Accolade.
        if !seen.insert((*number, rid)) {
            skipped.duplicate_fulfilments += 1;
            continue;
        }
        *fulfilled.entry((*number, *tid)).or_default() |= group.bit();
        by_org.entry(templates[tid].0).or_default().push((
            learner.clone(),
            template_ids[tid].clone(),
            req.clone(),
        ));
    }
    report.counts.fulfilments = by_org.values().map(|v| v.len() as u64).sum();
    let groups_of: HashMap<i64, u32> = templates
        .iter()
        .map(|(id, (_, c))| {
            (
                *id,
                c.requirements.iter().fold(0, |acc, r| acc | r.group.bit()),
            )
        })
        .collect();
    let complete = |learner: u32, tid: i64| -> bool {
        let want = groups_of.get(&tid).copied().unwrap_or(0);
        want != 0
            && fulfilled
                .get(&(learner, tid))
                .is_some_and(|have| have & want == want)
    };

    // Issued badges.
    let mut awards_by_org: BTreeMap<i64, Vec<Award>> = BTreeMap::new();
    let mut held: HashSet<(u32, i64)> = HashSet::new();
    let mut source_badge: HashMap<(u32, i64), &source::CredlyBadge> = HashMap::new();
    report.counts.credly_badge_rows = src.badges.len() as u64;
    for b in &src.badges {
        let Some((org, cfg)) = templates.get(&b.template_id) else {
            if on_accredible(b.template_id) {
                skipped.accredible_rows += 1;
            } else {
                skipped.badges_of_deleted_templates += 1;
            }
            continue;
        };
        let (number, _) = intern(&mut learner_names, &b.username);
        source_badge.insert((number, b.template_id), b);
        let Some(external) = &b.external_uuid else {
            skipped.badges_without_credly_id += 1;
            continue;
        };
        let revoked = b.status == "revoked" || b.state == "revoked";
        let state = if revoked {
            AwardState::Revoked
        } else {
            match b.state.as_str() {
                "accepted" | "expired" => AwardState::Accepted,
                "rejected" => AwardState::Rejected,
                _ => AwardState::Pending,
            }
        };
        let on_template = |why: &str| LearnerOnTemplate {
            learner: b.username.clone(),
            template: cfg.template.id.clone(),
            template_name: cfg.template.name.clone(),
            template_active: cfg.template.is_active,
            why: why.to_string(),
        };
        if revoked {
            report.counts.awards_revoked += 1;
            if b.state != "revoked" {
                report.revoked_but_live_on_credly.push(on_template(&format!(
                    "revoked in Credentials, but its Credly revocation failed (state {}): the badge {external} is still live on Credly; revoke it there",
                    b.state
                )));
            }
        } else {
            report.counts.awards_held += 1;
            held.insert((number, b.template_id));
            if !complete(number, b.template_id) {
                report.held_but_incomplete += 1;
            }
        }
        awards_by_org.entry(*org).or_default().push(Award {
            id: b.uuid.clone(),
            template_id: cfg.template.id.clone(),
            learner: b.username.clone(),
            episode: 0,
            state,
            earned_at: b.created,
            awarded_at: b.created,
            issued_at: Some(b.created),
            revoked_at: revoked.then_some(b.modified),
            revoke_reason: revoked.then(|| REVOKED_IN_SOURCE.to_string()),
            event_id: None,
            external_id: Some(external.clone()),
            external_state: Some(b.state.clone()),
            expires_at: None,
            backfill_id: None,
        });
    }
    report.counts.awards = report.counts.awards_held + report.counts.awards_revoked;

    // Complete in the source without a held badge there.
    let mut names: Vec<&str> = vec![""; learner_names.len()];
    for (name, (number, _)) in &learner_names {
        names[*number as usize] = name;
    }
    let mut completes: Vec<(u32, i64)> = fulfilled
        .keys()
        .copied()
        .filter(|&(l, t)| complete(l, t) && !held.contains(&(l, t)))
        .collect();
    completes.sort_by(|a, b| (names[a.0 as usize], a.1).cmp(&(names[b.0 as usize], b.1)));
    for (number, tid) in completes {
        let learner = names[number as usize];
        let cfg = &templates[&tid].1;
        let why = match source_badge.get(&(number, tid)) {
            Some(b) if b.status == "revoked" || b.state == "revoked" => {
                "badge revoked in the source (D3: never re-awarded)".to_string()
            }
            Some(b) => format!(
                "issue to Credly failed, state {}, no Credly id (D4)",
                b.state
            ),
            None => "complete, but no badge was ever recorded (D1/D4)".to_string(),
        };
        report
            .complete_without_issued_badge
            .push(LearnerOnTemplate {
                learner: learner.to_string(),
                template: cfg.template.id.clone(),
                template_name: cfg.template.name.clone(),
                template_active: cfg.template.is_active,
                why,
            });
    }

    // Learners named by what is imported, with Credentials' user data.
    let users: HashMap<&str, &source::User> =
        src.users.iter().map(|u| (u.username.as_str(), u)).collect();
    let learner_data = |name: &str| -> LearnerData {
        let u = users.get(name);
        let full = u
            .and_then(|u| u.full_name.clone())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| {
                u.map(|u| {
                    format!("{} {}", u.first_name.trim(), u.last_name.trim())
                        .trim()
                        .to_string()
                })
                .filter(|n| !n.is_empty())
            });
        LearnerData {
            username: name.to_string(),
            lms_user_id: u.and_then(|u| u.lms_user_id),
            email: u
                .map(|u| u.email.trim().to_string())
                .filter(|e| !e.is_empty()),
            name: full,
            is_active: None,
        }
    };
    let mut all_learners: BTreeSet<Arc<str>> = BTreeSet::new();

    // One part per organization.
    let mut parts = Vec::new();
    for (org_id, org) in orgs {
        let fulfilments = by_org.remove(&org_id).unwrap_or_default();
        let awards = awards_by_org.remove(&org_id).unwrap_or_default();
        let mut names: BTreeSet<Arc<str>> = fulfilments.iter().map(|f| f.0.clone()).collect();
        names.extend(awards.iter().map(|a| Arc::from(a.learner.as_str())));
        // A learner of several organizations is created with the first one's share (the
        // learner row is not tied to an organization).
        names.retain(|n| !all_learners.contains(n));
        let learners = names.iter().map(|n| learner_data(n)).collect();
        all_learners.extend(names);
        let part_templates: Vec<TemplateConfig> = templates
            .values()
            .filter(|(o, _)| *o == org_id)
            .map(|(_, c)| c.clone())
            .collect();
        report.counts.templates += part_templates.len() as u64;
        report.counts.templates_active += part_templates
            .iter()
            .filter(|c| c.template.is_active)
            .count() as u64;
        parts.push(PlannedPart {
            organization: org,
            templates: part_templates,
            learners,
            fulfilments,
            awards,
        });
    }
    report.counts.organizations = parts.len() as u64;
    report.counts.learners = all_learners.len() as u64;
    if !parts.is_empty() {
        report.notes.push(format!(
            "Credentials does not store when a Credly key was made: each key is taken as made when its organization was last saved there, so it expires {CREDLY_TOKEN_DAYS} days later at the latest (see `accolade credly orgs`)"
        ));
    }
    Ok(Plan { parts, report })
}

/// The shared name of a learner and a number telling learners apart cheaply.
fn intern<'a>(names: &mut HashMap<&'a str, (u32, Arc<str>)>, name: &'a str) -> (u32, Arc<str>) {
    let next = names.len() as u32;
    names
        .entry(name)
        .or_insert_with(|| (next, Arc::from(name)))
        .clone()
}

#[cfg(test)]
mod tests;
