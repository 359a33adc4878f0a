//! Rules as code: what applying a file's desired state of one template changes. Both stores load
//! the template's stored configuration, ask [`plan`] here, and write the plan in one transaction.
//!
//! Requirements and penalties are matched to stored ones by `key`, so their ids (and learners'
//! progress, which refers to requirement ids) survive re-applying the same file; stored ones the
//! file does not name, unkeyed ones included, are deleted. Everything the file says is checked
//! before anything is written.

use std::collections::{HashMap, HashSet};

use crate::event::validate_event_type;
use crate::rules::DataRule;
use crate::template::{validate_name, Group, NewTemplate, Requirement, TemplateConfig};
use crate::DomainError;

/// The desired state of one template as written in a rules-as-code file.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredTemplate {
    pub template: NewTemplate,
    pub requirements: Vec<DesiredRequirement>,
    pub penalties: Vec<DesiredPenalty>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRequirement {
    pub key: String,
    pub event_type: String,
    pub description: String,
    pub group: Group,
    pub rules: Vec<DataRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPenalty {
    pub key: String,
    pub event_type: String,
    pub description: String,
    pub rules: Vec<DataRule>,
    pub requirement_keys: Vec<String>,
}

/// Why a file cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyRefusal {
    #[error("template {id} has origin {stored}, the file says {file}")]
    OriginMismatch {
        id: String,
        stored: &'static str,
        file: &'static str,
    },
    #[error(
        "penalty `{penalty}` names requirement key `{key}`, which this template does not have"
    )]
    UnknownRequirementKey { penalty: String, key: String },
    #[error(transparent)]
    Invalid(#[from] DomainError),
}

impl ApplyRefusal {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApplyRefusal::OriginMismatch { .. } => "origin_mismatch",
            ApplyRefusal::UnknownRequirementKey { .. } => "unknown_requirement_key",
            ApplyRefusal::Invalid(e) => e.code(),
        }
    }
}

/// What to write, in this order: the template, deletions, requirements, penalties.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyPlan {
    /// The template's own fields (`id` always set); created when `create`, else updated.
    pub template: NewTemplate,
    pub create: bool,
    /// Ids of stored requirements the file does not name.
    pub delete_requirements: Vec<String>,
    pub requirements: Vec<RequirementWrite>,
    /// Ids of stored penalties the file does not name.
    pub delete_penalties: Vec<String>,
    /// Each desired penalty with the id of the stored one of its key, if any. Its requirement
    /// keys name requirements of this plan; the store maps them to ids once they are written.
    pub penalties: Vec<(Option<String>, DesiredPenalty)>,
}

/// One requirement to write.
#[derive(Debug, Clone, PartialEq)]
pub enum RequirementWrite {
    /// The stored requirement of this key, with the file's fields.
    Update(Requirement),
    Create(DesiredRequirement),
}

impl RequirementWrite {
    pub fn key(&self) -> &str {
        match self {
            RequirementWrite::Update(r) => r.key.as_deref().unwrap_or_default(),
            RequirementWrite::Create(r) => &r.key,
        }
    }
}

/// Plans applying `desired` as template `id` over its stored configuration (`None` when it does
/// not exist yet).
pub fn plan(
    desired: DesiredTemplate,
    id: String,
    current: Option<&TemplateConfig>,
) -> Result<ApplyPlan, ApplyRefusal> {
    let DesiredTemplate {
        mut template,
        requirements,
        penalties,
    } = desired;
    validate_name("name", &template.name)?;
    template.criteria = crate::expiry::criteria(template.criteria.take())?;
    if let Some(c) = current {
        if c.template.origin != template.origin {
            return Err(ApplyRefusal::OriginMismatch {
                id,
                stored: c.template.origin.as_str(),
                file: template.origin.as_str(),
            });
        }
    }
    for r in &requirements {
        r.rules.iter().try_for_each(DataRule::validate)?;
        validate_event_type(&r.event_type)?;
    }
    let keys: HashSet<&str> = requirements.iter().map(|r| r.key.as_str()).collect();
    for p in &penalties {
        if let Some(k) = p
            .requirement_keys
            .iter()
            .find(|k| !keys.contains(k.as_str()))
        {
            return Err(ApplyRefusal::UnknownRequirementKey {
                penalty: p.key.clone(),
                key: k.clone(),
            });
        }
    }

    let stored_reqs = current.map_or(&[][..], |c| &c.requirements[..]);
    let stored_pens = current.map_or(&[][..], |c| &c.penalties[..]);
    let mut kept_req: HashMap<&str, &Requirement> = HashMap::new();
    let mut delete_requirements = Vec::new();
    for r in stored_reqs {
        match r.key.as_deref().filter(|k| keys.contains(k)) {
            Some(k) => {
                kept_req.insert(k, r);
            }
            None => delete_requirements.push(r.id.clone()),
        }
    }
    let pen_keys: HashSet<&str> = penalties.iter().map(|p| p.key.as_str()).collect();
    let mut kept_pen: HashMap<&str, &str> = HashMap::new();
    let mut delete_penalties = Vec::new();
    for p in stored_pens {
        match p.key.as_deref().filter(|k| pen_keys.contains(k)) {
            Some(k) => {
                kept_pen.insert(k, &p.id);
            }
            None => delete_penalties.push(p.id.clone()),
        }
    }
    let requirements = requirements
        .into_iter()
        .map(|r| match kept_req.get(r.key.as_str()) {
            Some(old) => RequirementWrite::Update(Requirement {
                event_type: r.event_type,
                description: r.description,
                group: r.group,
                rules: r.rules,
                ..(*old).clone()
            }),
            None => RequirementWrite::Create(r),
        })
        .collect();
    let penalties = penalties
        .into_iter()
        .map(|p| (kept_pen.get(p.key.as_str()).map(|s| s.to_string()), p))
        .collect();
    Ok(ApplyPlan {
        template: NewTemplate {
            id: Some(id),
            ..template
        },
        create: current.is_none(),
        delete_requirements,
        requirements,
        delete_penalties,
        penalties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Origin, Penalty, Template};
    use chrono::Utc;
    use proptest::prelude::*;

    fn new_template(origin: Origin) -> NewTemplate {
        NewTemplate {
            id: None,
            name: "Badge".into(),
            description: String::new(),
            image_url: None,
            origin,
            provider_state: String::new(),
            is_active: true,
            allow_reaward: false,
            organization_id: None,
            expires_after: None,
            criteria: None,
        }
    }

    fn req(key: &str, event_type: &str) -> DesiredRequirement {
        DesiredRequirement {
            key: key.into(),
            event_type: event_type.into(),
            description: format!("{key} desc"),
            group: Group::try_from("A".to_string()).unwrap(),
            rules: vec![],
        }
    }

    fn pen(key: &str, reqs: &[&str]) -> DesiredPenalty {
        DesiredPenalty {
            key: key.into(),
            event_type: "e.fail".into(),
            description: String::new(),
            rules: vec![],
            requirement_keys: reqs.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn stored(reqs: &[(&str, Option<&str>)], pens: &[(&str, Option<&str>)]) -> TemplateConfig {
        TemplateConfig {
            template: Template {
                id: "t".into(),
                name: "Badge".into(),
                description: String::new(),
                image_url: None,
                origin: Origin::Local,
                provider_state: String::new(),
                is_active: true,
                allow_reaward: false,
                organization_id: None,
                expires_after: None,
                criteria: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            requirements: reqs
                .iter()
                .map(|(id, key)| Requirement {
                    id: id.to_string(),
                    template_id: "t".into(),
                    key: key.map(str::to_string),
                    event_type: "e.old".into(),
                    description: String::new(),
                    group: Group::try_from("B".to_string()).unwrap(),
                    rules: vec![],
                })
                .collect(),
            penalties: pens
                .iter()
                .map(|(id, key)| Penalty {
                    id: id.to_string(),
                    template_id: "t".into(),
                    key: key.map(str::to_string),
                    event_type: "e.fail".into(),
                    description: String::new(),
                    rules: vec![],
                    requirement_ids: vec![],
                })
                .collect(),
        }
    }

    fn desired(reqs: Vec<DesiredRequirement>, pens: Vec<DesiredPenalty>) -> DesiredTemplate {
        DesiredTemplate {
            template: new_template(Origin::Local),
            requirements: reqs,
            penalties: pens,
        }
    }

    #[test]
    fn a_new_template_creates_everything() {
        let p = plan(
            desired(vec![req("a", "e.pass")], vec![pen("p", &["a"])]),
            "t".into(),
            None,
        )
        .unwrap();
        assert!(p.create);
        assert_eq!(p.template.id.as_deref(), Some("t"));
        assert!(matches!(&p.requirements[..], [RequirementWrite::Create(r)] if r.key == "a"));
        assert_eq!(p.penalties, vec![(None, pen("p", &["a"]))]);
        assert!(p.delete_requirements.is_empty() && p.delete_penalties.is_empty());
    }

    #[test]
    fn keys_keep_ids_and_unnamed_or_unkeyed_rows_go() {
        let current = stored(
            &[("r1", Some("a")), ("r2", Some("gone")), ("r3", None)],
            &[("p1", Some("p")), ("p2", None)],
        );
        let p = plan(
            desired(
                vec![req("a", "e.pass"), req("b", "e.pass")],
                vec![pen("p", &["a", "b"]), pen("q", &[])],
            ),
            "t".into(),
            Some(&current),
        )
        .unwrap();
        assert!(!p.create);
        assert_eq!(p.delete_requirements, ["r2", "r3"]);
        assert_eq!(p.delete_penalties, ["p2"]);
        match &p.requirements[..] {
            [RequirementWrite::Update(a), RequirementWrite::Create(b)] => {
                assert_eq!((a.id.as_str(), a.event_type.as_str()), ("r1", "e.pass"));
                assert_eq!(a.group.to_string(), "A");
                assert_eq!(b.key, "b");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.penalties[0].0.as_deref(), Some("p1"));
        assert_eq!(p.penalties[1].0, None);
    }

    #[test]
    fn refusals_come_before_any_write() {
        let current = stored(&[], &[]);
        let mut credly = desired(vec![], vec![]);
        credly.template.origin = Origin::Credly;
        let e = plan(credly, "t".into(), Some(&current)).unwrap_err();
        assert_eq!(e.code(), "origin_mismatch");
        assert_eq!(
            e.to_string(),
            "template t has origin local, the file says credly"
        );

        let e = plan(
            desired(vec![req("a", "e.pass")], vec![pen("p", &["zz"])]),
            "t".into(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), "unknown_requirement_key");
        assert_eq!(
            e.to_string(),
            "penalty `p` names requirement key `zz`, which this template does not have"
        );

        let e = plan(
            desired(vec![req("a", "bad type!")], vec![]),
            "t".into(),
            None,
        );
        assert_eq!(e.unwrap_err().code(), "invalid_event_type");
        let mut blank = desired(vec![], vec![]);
        blank.template.name = "  ".into();
        assert_eq!(
            plan(blank, "t".into(), None).unwrap_err().code(),
            "invalid_field"
        );
    }

    proptest! {
        /// Applying a file over any stored state names every desired key once, keeps the id of
        /// every stored row whose key the file names and deletes every other stored row.
        #[test]
        fn every_stored_row_is_kept_by_key_or_deleted(
            stored_keys in proptest::collection::vec(proptest::option::of("[a-d]"), 0..6),
            desired_keys in proptest::collection::btree_set("[a-f]", 0..6),
        ) {
            // Stored keys are unique per template; unkeyed rows may be many.
            let mut seen = HashSet::new();
            let rows: Vec<(String, Option<&str>)> = stored_keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.as_ref().is_none_or(|k| seen.insert(k.clone())))
                .map(|(i, k)| (format!("r{i}"), k.as_deref()))
                .collect();
            let refs: Vec<(&str, Option<&str>)> =
                rows.iter().map(|(id, k)| (id.as_str(), *k)).collect();
            let current = stored(&refs, &[]);
            let reqs = desired_keys.iter().map(|k| req(k, "e.pass")).collect();
            let p = plan(desired(reqs, vec![]), "t".into(), Some(&current)).unwrap();
            let planned: Vec<&str> = p.requirements.iter().map(RequirementWrite::key).collect();
            let want: Vec<&str> = desired_keys.iter().map(String::as_str).collect();
            prop_assert_eq!(planned, want);
            for (id, key) in &refs {
                let kept = p.requirements.iter().any(|w| matches!(w, RequirementWrite::Update(r) if r.id == *id));
                let deleted = p.delete_requirements.iter().any(|d| d == id);
                prop_assert!(kept != deleted);
                prop_assert_eq!(kept, key.is_some_and(|k| desired_keys.contains(k)));
            }
        }
    }
}
