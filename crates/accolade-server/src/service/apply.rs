//! Rules as code: `accolade apply -f rules.toml [--dry-run]`.
//!
//! The file describes templates with their requirements (each with a file-local `key`) and
//! penalties (which name requirement keys). Applying makes each named template's configuration
//! equal to the file, idempotently: requirements and penalties are matched by key, so their ids
//! (and learners' progress) survive; ones missing from the file are removed. A template without
//! `uuid` is identified by its name among local templates. A Credly template is named by its
//! `uuid` and must have been synced: its name, description and image are Credly's, so the file
//! sets only its requirements, penalties and switches, and a differing name, description or
//! image in the file is reported and not applied. Every template is matched to the database
//! before anything is written. The format is documented in `docs/rules-as-code.md`.

use std::collections::HashSet;

use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin, TemplateConfig};
use accolade_store::{
    DesiredPenalty, DesiredRequirement, DesiredTemplate, NewTemplate, Page, Store, StoreError,
    TemplateFilter,
};
use anyhow::{bail, Context};
use serde::Deserialize;

use crate::config::EventsConfig;

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
    /// Required for a local template; a Credly template's name comes from Credly.
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    #[serde(default = "local")]
    pub origin: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default = "yes")]
    pub allow_reaward: bool,
    /// When this file activates the template (it was new or inactive), also backfill it: award
    /// the learners whose stored events already earn it (docs/backfill.md).
    #[serde(default)]
    pub backfill: bool,
    /// How long an award stays valid (`365d`, `12h`, …); absent: awards never expire.
    pub expires_after: Option<String>,
    /// Operator-written criteria (Markdown) for the Open Badges achievement; absent: written
    /// from the requirements.
    pub criteria: Option<String>,
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

/// One `[[template]]` of a rules file, validated but not yet matched to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTemplate {
    /// Where the template is in the file, for messages: ``template #2 (`Name`)``, or
    /// ``template #3 (uuid `…`)`` for a Credly template.
    pub at: String,
    /// What the file asks for. For a Credly template the name, description and image are filled
    /// in from the synced template when it is applied.
    pub desired: DesiredTemplate,
    /// For a Credly template: the name, description and image the file gives, compared with
    /// Credly's and never applied.
    pub credly_given: CredlyFields,
    /// Backfill when this file activates the template.
    pub backfill: bool,
}

/// Fields of a Credly template that belong to Credly (sync keeps them current).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredlyFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
}

/// Parses and validates a rules file (template ids still unresolved).
pub fn parse(text: &str) -> anyhow::Result<Vec<FileTemplate>> {
    let file: RulesFile = toml::from_str(text).context("the rules file is not valid")?;
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (ti, t) in file.template.into_iter().enumerate() {
        let position = format!("template #{}", ti + 1);
        let origin = Origin::parse(&t.origin).with_context(|| position.clone())?;
        let at = match (origin, &t.uuid, &t.name) {
            (Origin::Credly, Some(u), _) => format!("{position} (uuid `{u}`)"),
            (Origin::Credly, None, _) => {
                bail!("{position}: a credly template must name its Credly template uuid")
            }
            (Origin::Local, _, Some(name)) => format!("{position} (`{name}`)"),
            (Origin::Local, _, None) => bail!(
                "{position}: a local template needs a `name` (only a credly template takes its \
                 name from Credly)"
            ),
        };
        if origin == Origin::Local {
            let name = t.name.as_deref().unwrap_or_default();
            accolade_domain::template::validate_name("name", name).with_context(|| at.clone())?;
        }
        let identity = t
            .uuid
            .clone()
            .or_else(|| t.name.clone())
            .unwrap_or_default();
        if !names.insert(identity) {
            bail!("{at}: the same template appears twice in the file");
        }
        if let Some(u) = &t.uuid {
            if !accolade_domain::ids::is_uuid(u) {
                bail!("{at}: uuid `{u}` is not a UUID");
            }
        }
        let expires_after = t
            .expires_after
            .as_deref()
            .map(ExpiresAfter::parse)
            .transpose()
            .with_context(|| at.clone())?;
        let criteria =
            accolade_domain::expiry::criteria(t.criteria.clone()).with_context(|| at.clone())?;
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
        let credly_given = match origin {
            Origin::Credly => CredlyFields {
                name: t.name.clone(),
                description: t.description.clone(),
                image_url: t.image_url.clone(),
            },
            Origin::Local => CredlyFields::default(),
        };
        out.push(FileTemplate {
            at,
            desired: DesiredTemplate {
                template: NewTemplate {
                    id: t.uuid.map(|u| u.to_ascii_lowercase()),
                    name: t.name.unwrap_or_default().trim().to_string(),
                    description: t.description.unwrap_or_default(),
                    image_url: t.image_url,
                    origin,
                    provider_state: "active".into(),
                    is_active: t.active,
                    allow_reaward: t.allow_reaward,
                    organization_id: None,
                    expires_after,
                    criteria,
                },
                requirements,
                penalties,
            },
            credly_given,
            backfill: t.backfill,
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
    if t.expires_after != d.template.expires_after {
        let shown =
            |e: Option<ExpiresAfter>| e.map_or_else(|| "never".to_string(), |e| e.to_string());
        lines.push(format!(
            "  ~ expires_after {} -> {} (for awards made from now on)",
            shown(t.expires_after),
            shown(d.template.expires_after)
        ));
    }
    if t.criteria != d.template.criteria {
        lines.push("  ~ criteria changed".to_string());
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

/// Matches a file template to the database and checks that its origin agrees. A Credly
/// template must exist (synced); it takes its name, description and image from there, and
/// each one the file gives differently becomes a note. Returns the current configuration, the
/// template to apply and the notes.
async fn plan(
    store: &dyn Store,
    t: FileTemplate,
) -> anyhow::Result<(Option<TemplateConfig>, DesiredTemplate, Vec<String>)> {
    let FileTemplate {
        at,
        mut desired,
        credly_given,
        backfill: _,
    } = t;
    let current = resolve(store, &desired).await.with_context(|| at.clone())?;
    let origin = desired.template.origin;
    match &current {
        Some(c) if c.template.origin != origin => bail!(
            "{at}: template {} is a {} template, the file says origin = \"{}\"",
            c.template.id,
            c.template.origin.as_str(),
            origin.as_str()
        ),
        None if origin == Origin::Credly => bail!(
            "{at}: there is no Credly template with this uuid; sync its organization first \
             (`accolade credly sync`): a Credly template's name, description and image come \
             from Credly"
        ),
        _ => {}
    }
    let mut notes = Vec::new();
    if let (Origin::Credly, Some(c)) = (origin, &current) {
        let synced = &c.template;
        let label = format!("template `{}` ({})", synced.name, synced.id);
        let not_applied = "not applied: a Credly template keeps what Credly says (sync updates it)";
        if let Some(name) = &credly_given.name {
            if name.trim() != synced.name {
                notes.push(format!(
                    "! {label}: the file's name `{}` is {not_applied}",
                    name.trim()
                ));
            }
        }
        if credly_given
            .description
            .as_ref()
            .is_some_and(|d| *d != synced.description)
        {
            notes.push(format!(
                "! {label}: the file's description is {not_applied}"
            ));
        }
        if credly_given
            .image_url
            .as_ref()
            .is_some_and(|u| Some(u) != synced.image_url.as_ref())
        {
            notes.push(format!("! {label}: the file's image_url is {not_applied}"));
        }
        desired.template.name = synced.name.clone();
        desired.template.description = synced.description.clone();
        desired.template.image_url = synced.image_url.clone();
    }
    Ok((current, desired, notes))
}

/// The first event type a requirement or penalty of `templates` listens to that
/// `events.types` does not list, with where it is (`at`): such a file is refused as a whole.
pub fn unconfigured<'a>(
    templates: &'a [FileTemplate],
    events: &EventsConfig,
) -> Option<(&'a str, &'a str)> {
    templates.iter().find_map(|t| {
        let d = &t.desired;
        d.requirements
            .iter()
            .map(|r| r.event_type.as_str())
            .chain(d.penalties.iter().map(|p| p.event_type.as_str()))
            .find(|e| !events.is_configured(e))
            .map(|e| (t.at.as_str(), e))
    })
}

/// The result of an apply run.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub lines: Vec<String>,
    pub created: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Fields the file gives a Credly template that were not applied (each also has a `!` line).
    pub ignored: usize,
    /// Backfills queued (`backfill = true` on a template this run activated).
    pub backfills: Vec<String>,
}

/// Applies (or with `dry_run` only describes) a parsed rules file. Every template is matched to
/// the database first, so a template that cannot be applied stops the run before anything is
/// written.
pub async fn apply(
    store: &dyn Store,
    file: Vec<FileTemplate>,
    dry_run: bool,
) -> anyhow::Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let mut planned = Vec::with_capacity(file.len());
    for t in file {
        let backfill = t.backfill;
        planned.push((plan(store, t).await?, backfill));
    }
    for ((current, mut d, notes), backfill) in planned {
        // Backfilled when this run activates it (not again on every run of the same file).
        let activates =
            d.template.is_active && !current.as_ref().is_some_and(|c| c.template.is_active);
        report.ignored += notes.len();
        let lines = diff(current.as_ref(), &d);
        match (&current, lines.is_empty()) {
            (None, _) => report.created += 1,
            (Some(_), true) => {
                report.unchanged += 1;
                report
                    .lines
                    .push(format!("= template `{}` unchanged", d.template.name));
                report.lines.extend(notes);
                continue;
            }
            (Some(_), false) => report.changed += 1,
        }
        report.lines.extend(lines);
        report.lines.extend(notes);
        let name = d.template.name.clone();
        if dry_run {
            if backfill && activates {
                report
                    .lines
                    .push(format!("+ backfill of `{name}` when it is activated"));
            }
            continue;
        }
        if let Some(c) = &current {
            d.template.id = Some(c.template.id.clone());
        }
        let applied = store.apply_template(d).await?;
        if backfill && activates {
            let queued = store
                .create_backfill(
                    accolade_store::NewBackfill {
                        template_id: applied.template.id.clone(),
                        since: None,
                        revoke: false,
                        reason: "activated by a rules file".into(),
                        requested_by: "rules-as-code".into(),
                    },
                    chrono::Utc::now(),
                )
                .await;
            match queued {
                Ok(b) => {
                    report.backfills.push(b.id.clone());
                    report
                        .lines
                        .push(format!("+ backfill {} of `{name}` queued", b.id));
                }
                Err(accolade_store::StoreError::Conflict { detail, .. }) => report
                    .lines
                    .push(format!("! backfill of `{name}`: {detail}")),
                Err(e) => return Err(e.into()),
            }
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
        let f = parse(SAMPLE).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].at, "template #1 (`Demo course completion`)");
        let d = &f[0].desired;
        assert_eq!(d.requirements[0].group.letter(), 'A');
        assert_eq!(d.requirements[1].group.letter(), 'B');
        assert_eq!(d.penalties[0].key, "penalty-1");
        assert!(d.template.is_active);
        assert_eq!(diff(None, d).len(), 4);
    }

    const CREDLY: &str = r#"
[[template]]
uuid = "6B1C2D3E-4F50-4A6B-8C7D-9E0F1A2B3C4D"
origin = "credly"
active = true
[[template.requirement]]
key = "demo"
event_type = "org.openedx.learning.course.passing.status.updated.v1"
"#;

    #[test]
    fn a_credly_template_needs_only_its_uuid() {
        let f = parse(CREDLY).unwrap();
        assert_eq!(
            f[0].at,
            "template #1 (uuid `6B1C2D3E-4F50-4A6B-8C7D-9E0F1A2B3C4D`)"
        );
        let t = &f[0].desired.template;
        assert_eq!(
            t.id.as_deref(),
            Some("6b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
        );
        assert_eq!((t.origin, t.is_active), (Origin::Credly, true));
        assert_eq!(f[0].credly_given, CredlyFields::default());
        let named = CREDLY.replace("active = true", "active = true\nname = \"Mine\"");
        assert_eq!(
            parse(&named).unwrap()[0].credly_given.name.as_deref(),
            Some("Mine")
        );
        let no_uuid = CREDLY.replace("uuid = \"6B1C2D3E-4F50-4A6B-8C7D-9E0F1A2B3C4D\"\n", "");
        assert!(format!("{:#}", parse(&no_uuid).unwrap_err())
            .contains("must name its Credly template uuid"));
    }

    #[test]
    fn expiry_and_criteria_are_read_checked_and_diffed() {
        let text = SAMPLE.replace(
            "active = true",
            "active = true\nexpires_after = \"365d\"\ncriteria = \"\"\"\nPass it.\n\"\"\"",
        );
        let f = parse(&text).unwrap();
        let t = &f[0].desired.template;
        assert_eq!(
            t.expires_after.map(|e| e.to_string()).as_deref(),
            Some("365d")
        );
        assert_eq!(t.criteria.as_deref(), Some("Pass it.\n"));
        for bad in ["0d", "365 d", "1y", ""] {
            let text = SAMPLE.replace(
                "active = true",
                &format!("active = true\nexpires_after = \"{bad}\""),
            );
            let e = format!("{:#}", parse(&text).unwrap_err());
            assert!(
                e.starts_with("template #1 (`Demo course completion`): invalid expires_after"),
                "{e}"
            );
        }
        let long = SAMPLE.replace(
            "active = true",
            &format!("active = true\ncriteria = \"{}\"", "x".repeat(10_001)),
        );
        let e = format!("{:#}", parse(&long).unwrap_err());
        assert!(e.contains("invalid criteria"), "{e}");

        let now = chrono::Utc::now();
        let current = TemplateConfig {
            template: accolade_domain::template::Template {
                id: "t".into(),
                name: t.name.clone(),
                description: t.description.clone(),
                image_url: None,
                origin: Origin::Local,
                provider_state: "active".into(),
                is_active: true,
                allow_reaward: true,
                organization_id: None,
                expires_after: Some(ExpiresAfter::parse("30d").unwrap()),
                criteria: None,
                created_at: now,
                updated_at: now,
            },
            requirements: vec![],
            penalties: vec![],
        };
        let lines = diff(Some(&current), &f[0].desired);
        assert!(
            lines.contains(&"  ~ expires_after 30d -> 365d (for awards made from now on)".into()),
            "{lines:?}"
        );
        assert!(lines.contains(&"  ~ criteria changed".into()), "{lines:?}");
    }

    #[test]
    fn a_local_template_without_a_name_is_refused_by_position() {
        let text = format!("{SAMPLE}\n[[template]]\nactive = true\n");
        let e = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            e.starts_with("template #2: a local template needs a `name`"),
            "{e}"
        );
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
