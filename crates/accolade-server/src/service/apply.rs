//! Rules as code: `accolade apply -f rules.toml [--dry-run]`.
//!
//! The file describes templates with their requirements (each with a file-local `key`) and
//! penalties (which name requirement keys). Applying makes each named template's configuration
//! equal to the file, idempotently: requirements and penalties are matched by key, so their ids
//! (and learners' progress) survive; ones missing from the file are removed. A template without
//! `uuid` is identified by its name among local templates. The format is documented in
//! `docs/rules-as-code.md`.

use std::collections::HashSet;

use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin, TemplateConfig};
use accolade_store::{
    DesiredPenalty, DesiredRequirement, DesiredTemplate, NewTemplate, Page, Store, StoreError,
    TemplateFilter,
};
use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub template: Vec<TemplateSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub uuid: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub image_url: Option<String>,
    #[serde(default = "local")]
    pub origin: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default = "yes")]
    pub allow_reaward: bool,
    #[serde(default)]
    pub requirement: Vec<RequirementSpec>,
    #[serde(default)]
    pub penalty: Vec<PenaltySpec>,
}

fn local() -> String {
    "local".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementSpec {
    pub key: String,
    pub event_type: String,
    pub group: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PenaltySpec {
    pub key: Option<String>,
    pub event_type: String,
    #[serde(default)]
    pub description: String,
    pub requirements: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub path: String,
    pub op: String,
    #[serde(default)]
    pub value: String,
}

/// Parses and validates a rules file into desired templates (template ids still unresolved).
pub fn parse(text: &str) -> anyhow::Result<Vec<DesiredTemplate>> {
    let file: RulesFile = toml::from_str(text).context("the rules file is not valid")?;
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (ti, t) in file.template.into_iter().enumerate() {
        let at = format!("template #{} (`{}`)", ti + 1, t.name);
        accolade_domain::template::validate_name("name", &t.name).with_context(|| at.clone())?;
        if !names.insert(t.uuid.clone().unwrap_or_else(|| t.name.clone())) {
            bail!("{at}: the same template appears twice in the file");
        }
        if let Some(u) = &t.uuid {
            if !accolade_domain::ids::is_uuid(u) {
                bail!("{at}: uuid `{u}` is not a UUID");
            }
        }
        let origin = Origin::parse(&t.origin).with_context(|| at.clone())?;
        if origin == Origin::Credly && t.uuid.is_none() {
            bail!("{at}: a credly template must name its Credly template uuid");
        }
        let explicit: Vec<Group> = t
            .requirement
            .iter()
            .filter_map(|r| r.group.as_deref())
            .map(Group::parse)
            .collect::<Result<_, _>>()
            .with_context(|| at.clone())?;
        let mut used: HashSet<Group> = explicit.into_iter().collect();
        let mut keys = HashSet::new();
        let mut requirements = Vec::new();
        for r in t.requirement {
            let rat = format!("{at}, requirement `{}`", r.key);
            if r.key.trim().is_empty() || !keys.insert(r.key.clone()) {
                bail!("{rat}: every requirement needs a key, unique within its template");
            }
            accolade_domain::event::validate_event_type(&r.event_type)
                .with_context(|| rat.clone())?;
            let group = match r.group.as_deref() {
                Some(g) => Group::parse(g).with_context(|| rat.clone())?,
                None => {
                    let g = Group::next_free(used.iter().copied()).with_context(|| rat.clone())?;
                    used.insert(g);
                    g
                }
            };
            requirements.push(DesiredRequirement {
                key: r.key,
                event_type: r.event_type,
                description: r.description,
                group,
                rules: rules(&r.rules).with_context(|| rat.clone())?,
            });
        }
        let mut penalties = Vec::new();
        let mut pkeys = HashSet::new();
        for (pi, p) in t.penalty.into_iter().enumerate() {
            let key = p.key.unwrap_or_else(|| format!("penalty-{}", pi + 1));
            let pat = format!("{at}, penalty `{key}`");
            if !pkeys.insert(key.clone()) {
                bail!("{pat}: penalty keys must be unique within a template");
            }
            accolade_domain::event::validate_event_type(&p.event_type)
                .with_context(|| pat.clone())?;
            if p.requirements.is_empty() {
                bail!("{pat}: a penalty must name at least one requirement key");
            }
            for k in &p.requirements {
                if !keys.contains(k) {
                    bail!(
                        "{pat}: names requirement key `{k}`, which this template does not define"
                    );
                }
            }
            penalties.push(DesiredPenalty {
                key,
                event_type: p.event_type,
                description: p.description,
                rules: rules(&p.rules).with_context(|| pat.clone())?,
                requirement_keys: p.requirements,
            });
        }
        out.push(DesiredTemplate {
            template: NewTemplate {
                id: t.uuid.map(|u| u.to_ascii_lowercase()),
                name: t.name.trim().to_string(),
                description: t.description,
                image_url: t.image_url,
                origin,
                provider_state: "active".into(),
                is_active: t.active,
                allow_reaward: t.allow_reaward,
                organization_id: None,
            },
            requirements,
            penalties,
        });
    }
    Ok(out)
}

fn rules(specs: &[RuleSpec]) -> Result<Vec<DataRule>, accolade_domain::DomainError> {
    specs
        .iter()
        .map(|r| DataRule::new(&r.path, &r.op, &r.value))
        .collect()
}

/// Finds the existing template a desired one refers to.
async fn resolve(store: &dyn Store, d: &DesiredTemplate) -> anyhow::Result<Option<TemplateConfig>> {
    if let Some(id) = &d.template.id {
        return match store.get_template(id).await {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    let filter = TemplateFilter {
        origin: Some(Origin::Local),
        search: Some(d.template.name.clone()),
        ..Default::default()
    };
    let page = store
        .list_templates(&filter, Page::new(Some(500), None))
        .await?;
    let same: Vec<_> = page
        .items
        .into_iter()
        .filter(|t| t.name == d.template.name)
        .collect();
    match same.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(store.get_template(&one.id).await?)),
        _ => bail!(
            "several local templates are named `{}`; add its uuid to the file",
            d.template.name
        ),
    }
}

/// Lines describing what applying `d` over `current` changes (empty when nothing).
pub fn diff(current: Option<&TemplateConfig>, d: &DesiredTemplate) -> Vec<String> {
    let name = &d.template.name;
    let Some(cur) = current else {
        let mut lines = vec![format!(
            "+ template `{name}` (new, {})",
            if d.template.is_active {
                "active"
            } else {
                "inactive"
            }
        )];
        for r in &d.requirements {
            lines.push(format!(
                "  + requirement `{}` group {} on {} ({} rules)",
                r.key,
                r.group,
                r.event_type,
                r.rules.len()
            ));
        }
        for p in &d.penalties {
            lines.push(format!(
                "  + penalty `{}` on {} resets {:?}",
                p.key, p.event_type, p.requirement_keys
            ));
        }
        return lines;
    };
    let mut lines = Vec::new();
    let t = &cur.template;
    if t.name != d.template.name {
        lines.push(format!("  ~ name `{}` -> `{}`", t.name, d.template.name));
    }
    if t.description != d.template.description {
        lines.push("  ~ description changed".to_string());
    }
    if t.image_url != d.template.image_url {
        lines.push("  ~ image_url changed".to_string());
    }
    if t.is_active != d.template.is_active {
        lines.push(format!(
            "  ~ active {} -> {}",
            t.is_active, d.template.is_active
        ));
    }
    if t.allow_reaward != d.template.allow_reaward {
        lines.push(format!(
            "  ~ allow_reaward {} -> {}",
            t.allow_reaward, d.template.allow_reaward
        ));
    }
    for r in &d.requirements {
        match cur
            .requirements
            .iter()
            .find(|c| c.key.as_deref() == Some(r.key.as_str()))
        {
            None => lines.push(format!(
                "  + requirement `{}` group {} on {}",
                r.key, r.group, r.event_type
            )),
            Some(c) => {
                if c.event_type != r.event_type
                    || c.group != r.group
                    || c.rules != r.rules
                    || c.description != r.description
                {
                    lines.push(format!("  ~ requirement `{}` changed", r.key));
                }
            }
        }
    }
    for c in &cur.requirements {
        if !c
            .key
            .as_deref()
            .is_some_and(|k| d.requirements.iter().any(|r| r.key == k))
        {
            lines.push(format!(
                "  - requirement `{}` ({})",
                c.key.clone().unwrap_or_else(|| c.id.clone()),
                c.event_type
            ));
        }
    }
    let key_of = |id: &str| {
        cur.requirements
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.key.clone())
    };
    for p in &d.penalties {
        match cur
            .penalties
            .iter()
            .find(|c| c.key.as_deref() == Some(p.key.as_str()))
        {
            None => lines.push(format!("  + penalty `{}` on {}", p.key, p.event_type)),
            Some(c) => {
                let mut linked: Vec<String> = c
                    .requirement_ids
                    .iter()
                    .filter_map(|id| key_of(id))
                    .collect();
                linked.sort();
                let mut want = p.requirement_keys.clone();
                want.sort();
                if c.event_type != p.event_type
                    || c.rules != p.rules
                    || c.description != p.description
                    || linked != want
                {
                    lines.push(format!("  ~ penalty `{}` changed", p.key));
                }
            }
        }
    }
    for c in &cur.penalties {
        if !c
            .key
            .as_deref()
            .is_some_and(|k| d.penalties.iter().any(|p| p.key == k))
        {
            lines.push(format!(
                "  - penalty `{}`",
                c.key.clone().unwrap_or_else(|| c.id.clone())
            ));
        }
    }
    if !lines.is_empty() {
        lines.insert(0, format!("~ template `{name}` ({})", t.id));
    }
    lines
}

/// The result of an apply run.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub lines: Vec<String>,
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// Applies (or with `dry_run` only describes) a parsed rules file.
pub async fn apply(
    store: &dyn Store,
    desired: Vec<DesiredTemplate>,
    dry_run: bool,
) -> anyhow::Result<ApplyReport> {
    let mut report = ApplyReport::default();
    for mut d in desired {
        let current = resolve(store, &d).await?;
        let lines = diff(current.as_ref(), &d);
        match (&current, lines.is_empty()) {
            (None, _) => report.created += 1,
            (Some(_), true) => {
                report.unchanged += 1;
                report
                    .lines
                    .push(format!("= template `{}` unchanged", d.template.name));
                continue;
            }
            (Some(_), false) => report.changed += 1,
        }
        report.lines.extend(lines);
        if !dry_run {
            if let Some(c) = &current {
                d.template.id = Some(c.template.id.clone());
            }
            store.apply_template(d).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[template]]
name = "Demo course completion"
active = true
[[template.requirement]]
key = "demo"
event_type = "org.openedx.learning.course.passing.status.updated.v1"
description = "Passed the Demo course"
rules = [ { path = "is_passing", op = "=", value = "true" },
          { path = "course.course_key", op = "=", value = "course-v1:OpenedX+DemoX+Demo_Course" } ]
[[template.requirement]]
key = "other"
event_type = "org.openedx.learning.course.passing.status.updated.v1"
[[template.penalty]]
event_type = "org.openedx.learning.course.passing.status.updated.v1"
requirements = ["demo"]
rules = [ { path = "is_passing", op = "=", value = "false" } ]
"#;

    #[test]
    fn parses_the_documented_format_and_assigns_free_groups() {
        let d = parse(SAMPLE).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].requirements[0].group.letter(), 'A');
        assert_eq!(d[0].requirements[1].group.letter(), 'B');
        assert_eq!(d[0].penalties[0].key, "penalty-1");
        assert!(d[0].template.is_active);
        assert_eq!(diff(None, &d[0]).len(), 4);
    }

    #[test]
    fn refuses_bad_files_with_the_place() {
        let bad_key = SAMPLE.replace("requirements = [\"demo\"]", "requirements = [\"nope\"]");
        assert!(format!("{:#}", parse(&bad_key).unwrap_err()).contains("`nope`"));
        let bad_op = SAMPLE.replace(
            "op = \"=\", value = \"false\"",
            "op = \"~\", value = \"false\"",
        );
        assert!(format!("{:#}", parse(&bad_op).unwrap_err()).contains("unknown operator"));
        let bad_group = SAMPLE.replace("key = \"other\"", "key = \"other\"\ngroup = \"AA\"");
        assert!(format!("{:#}", parse(&bad_group).unwrap_err()).contains("invalid group"));
        assert!(parse("[[template]]\nname = \"x\"\nbogus = 1").is_err());
    }
}
