//! Configuration: templates, requirements, data rules, penalties. Every change bumps
//! `config_state.version` in the same transaction so event processing rebuilds its index.

use std::collections::HashMap;

use accolade_domain::event::validate_event_type;
use accolade_domain::rules_apply::{self, RequirementWrite};
use accolade_domain::template::{
    validate_name, Group, Penalty, Requirement, Template, TemplateConfig,
};
use accolade_store::Entity;
use accolade_store::{
    DesiredTemplate, NewPenalty, NewRequirement, NewTemplate, Page, Paged, PenaltyPatch,
    RequirementPatch, StoreError, TemplateFilter, TemplatePatch,
};
use chrono::Utc;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::rows::{self, db, is_unique_violation, ts, TEMPLATE_COLUMNS};

type Result<T> = std::result::Result<T, StoreError>;

pub fn bump_version(c: &Connection) -> Result<()> {
    c.execute(
        "UPDATE config_state SET version = version + 1 WHERE id = 1",
        [],
    )
    .map_err(db)?;
    Ok(())
}

pub fn version(c: &Connection) -> Result<i64> {
    c.query_row("SELECT version FROM config_state WHERE id = 1", [], |r| {
        r.get(0)
    })
    .map_err(db)
}

pub fn template(c: &Connection, id: &str) -> Result<Template> {
    c.prepare_cached(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], rows::template).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Template))
}

fn requirement_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Requirement> {
    Ok(Requirement {
        id: r.get(0)?,
        template_id: r.get(1)?,
        key: r.get(2)?,
        event_type: r.get(3)?,
        description: r.get(4)?,
        group: rows::group(&r.get::<_, String>(5)?)?,
        rules: rows::rules(&r.get::<_, String>(6)?)?,
    })
}

const REQUIREMENT_COLUMNS: &str =
    "id, template_id, key, event_type, description, group_letter, rules";
const PENALTY_COLUMNS: &str = "id, template_id, key, event_type, description, rules";

fn penalty_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Penalty> {
    Ok(Penalty {
        id: r.get(0)?,
        template_id: r.get(1)?,
        key: r.get(2)?,
        event_type: r.get(3)?,
        description: r.get(4)?,
        rules: rows::rules(&r.get::<_, String>(5)?)?,
        requirement_ids: Vec::new(),
    })
}

/// Loads requirements and penalties for the templates selected by `where_clause`.
fn configs_where(c: &Connection, where_clause: &str, args: &[&str]) -> Result<Vec<TemplateConfig>> {
    let templates: Vec<Template> = c
        .prepare(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE {where_clause} ORDER BY created_at, id"
        ))
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), rows::template)?
                .collect()
        })
        .map_err(db)?;
    let mut configs: Vec<TemplateConfig> = templates
        .into_iter()
        .map(|template| TemplateConfig {
            template,
            requirements: vec![],
            penalties: vec![],
        })
        .collect();
    let pos: HashMap<String, usize> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.template.id.clone(), i))
        .collect();
    let requirements: Vec<Requirement> = c
        .prepare(&format!(
            "SELECT {REQUIREMENT_COLUMNS} FROM requirements WHERE template_id IN \
             (SELECT id FROM templates WHERE {where_clause}) ORDER BY created_at, id"
        ))
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), requirement_row)?
                .collect()
        })
        .map_err(db)?;
    for r in requirements {
        if let Some(&i) = pos.get(&r.template_id) {
            configs[i].requirements.push(r);
        }
    }
    let mut penalties: Vec<Penalty> = c
        .prepare(&format!(
            "SELECT {PENALTY_COLUMNS} FROM penalties WHERE template_id IN \
             (SELECT id FROM templates WHERE {where_clause}) ORDER BY created_at, id"
        ))
        .and_then(|mut s| s.query_map(params_from_iter(args), penalty_row)?.collect())
        .map_err(db)?;
    let links: Vec<(String, String)> = c
        .prepare(&format!(
            "SELECT pr.penalty_id, pr.requirement_id FROM penalty_requirements pr \
             JOIN penalties p ON p.id = pr.penalty_id WHERE p.template_id IN \
             (SELECT id FROM templates WHERE {where_clause}) ORDER BY pr.requirement_id"
        ))
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(db)?;
    let mut by_penalty: HashMap<String, Vec<String>> = HashMap::new();
    for (p, r) in links {
        by_penalty.entry(p).or_default().push(r);
    }
    for p in penalties.iter_mut() {
        p.requirement_ids = by_penalty.remove(&p.id).unwrap_or_default();
    }
    for p in penalties {
        if let Some(&i) = pos.get(&p.template_id) {
            configs[i].penalties.push(p);
        }
    }
    Ok(configs)
}

pub fn active_configs(c: &Connection) -> Result<Vec<TemplateConfig>> {
    configs_where(c, "is_active = 1", &[])
}

pub fn template_config(c: &Connection, id: &str) -> Result<TemplateConfig> {
    configs_where(c, "id = ?1", &[id])?
        .pop()
        .ok_or(StoreError::not_found(Entity::Template))
}

pub fn list_templates(c: &Connection, f: &TemplateFilter, page: Page) -> Result<Paged<Template>> {
    let mut sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(o) = f.origin {
        sql.push_str(" AND origin = ?");
        args.push(o.as_str().to_string().into());
    }
    if let Some(a) = f.active {
        sql.push_str(" AND is_active = ?");
        args.push(i64::from(a).into());
    }
    if let Some(q) = f.search.as_deref().filter(|q| !q.is_empty()) {
        sql.push_str(" AND fold(name) LIKE ? ESCAPE '\\'");
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(format!("%{escaped}%").into());
    }
    if let Some(o) = &f.organization_id {
        sql.push_str(" AND organization_id = ?");
        args.push(o.clone().into());
    }
    if let Some(p) = &f.provider_state {
        sql.push_str(" AND provider_state = ?");
        args.push(p.clone().into());
    }
    sql.push_str(" ORDER BY name, id LIMIT ? OFFSET ?");
    args.push(page.fetch().into());
    args.push((page.offset as i64).into());
    let rows: Vec<Template> = c
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map(params_from_iter(args), rows::template)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn create_template(c: &Connection, new: NewTemplate) -> Result<Template> {
    validate_name("name", &new.name)?;
    let criteria = accolade_domain::expiry::criteria(new.criteria)?;
    let id = match new.id {
        Some(id) => id,
        None => accolade_domain::ids::uuid(),
    };
    let now = ts(Utc::now());
    c.execute(
        "INSERT INTO templates (id, name, description, image_url, origin, provider_state, \
         is_active, allow_reaward, organization_id, expires_after, criteria, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            id,
            new.name.trim(),
            new.description,
            new.image_url,
            new.origin.as_str(),
            new.provider_state,
            new.is_active,
            new.allow_reaward,
            new.organization_id,
            new.expires_after.map(|e| e.to_string()),
            criteria,
            now
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "template_exists",
                detail: format!("template {id} already exists"),
            }
        } else {
            db(e)
        }
    })?;
    bump_version(c)?;
    template(c, &id)
}

pub fn update_template(c: &Connection, id: &str, p: TemplatePatch) -> Result<Template> {
    let mut t = template(c, id)?;
    p.apply_to(&mut t)?;
    c.execute(
        "UPDATE templates SET name = ?2, description = ?3, image_url = ?4, allow_reaward = ?5, \
         expires_after = ?6, criteria = ?7, updated_at = ?8 WHERE id = ?1",
        params![
            id,
            t.name,
            t.description,
            t.image_url,
            t.allow_reaward,
            t.expires_after.map(|e| e.to_string()),
            t.criteria,
            ts(Utc::now())
        ],
    )
    .map_err(db)?;
    bump_version(c)?;
    template(c, id)
}

pub fn set_active(c: &Connection, id: &str, active: bool) -> Result<Template> {
    template(c, id)?;
    c.execute(
        "UPDATE templates SET is_active = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, active, ts(Utc::now())],
    )
    .map_err(db)?;
    bump_version(c)?;
    template(c, id)
}

fn used_groups(c: &Connection, template_id: &str) -> Result<Vec<Group>> {
    let letters: Vec<String> = c
        .prepare_cached("SELECT group_letter FROM requirements WHERE template_id = ?1")
        .and_then(|mut s| s.query_map([template_id], |r| r.get(0))?.collect())
        .map_err(db)?;
    letters.iter().map(|l| rows::group(l).map_err(db)).collect()
}

fn key_conflict(what: &str, key: &Option<String>) -> StoreError {
    StoreError::Conflict {
        code: "key_taken",
        detail: format!(
            "{what} key `{}` is already used in this template",
            key.clone().unwrap_or_default()
        ),
    }
}

pub fn requirement(c: &Connection, id: &str) -> Result<Requirement> {
    c.prepare_cached(&format!(
        "SELECT {REQUIREMENT_COLUMNS} FROM requirements WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], requirement_row).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Requirement))
}

pub fn add_requirement(
    c: &Connection,
    template_id: &str,
    new: NewRequirement,
) -> Result<Requirement> {
    template(c, template_id)?;
    validate_event_type(&new.event_type)?;
    for r in &new.rules {
        r.validate()?;
    }
    let group = match new.group {
        Some(g) => g,
        None => Group::next_free(used_groups(c, template_id)?)?,
    };
    let id = accolade_domain::ids::requirement_id();
    c.execute(
        "INSERT INTO requirements (id, template_id, key, event_type, description, group_letter, rules, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            template_id,
            new.key,
            new.event_type,
            new.description,
            group.to_string(),
            rows::rules_json(&new.rules),
            ts(Utc::now())
        ],
    )
    .map_err(|e| if is_unique_violation(&e) { key_conflict("requirement", &new.key) } else { db(e) })?;
    bump_version(c)?;
    requirement(c, &id)
}

pub fn update_requirement(c: &Connection, id: &str, p: RequirementPatch) -> Result<Requirement> {
    let mut r = requirement(c, id)?;
    p.apply_to(&mut r)?;
    c.execute(
        "UPDATE requirements SET event_type = ?2, description = ?3, group_letter = ?4, rules = ?5 WHERE id = ?1",
        params![id, r.event_type, r.description, r.group.to_string(), rows::rules_json(&r.rules)],
    )
    .map_err(db)?;
    bump_version(c)?;
    Ok(r)
}

pub fn delete_requirement(c: &Connection, id: &str) -> Result<()> {
    requirement(c, id)?;
    c.execute(
        "DELETE FROM penalty_requirements WHERE requirement_id = ?1",
        [id],
    )
    .map_err(db)?;
    c.execute("DELETE FROM requirements WHERE id = ?1", [id])
        .map_err(db)?;
    bump_version(c)
}

pub fn penalty(c: &Connection, id: &str) -> Result<Penalty> {
    let mut p = c
        .prepare_cached(&format!(
            "SELECT {PENALTY_COLUMNS} FROM penalties WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([id], penalty_row).optional())
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::Penalty))?;
    p.requirement_ids = c
        .prepare_cached("SELECT requirement_id FROM penalty_requirements WHERE penalty_id = ?1 ORDER BY requirement_id")
        .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
        .map_err(db)?;
    Ok(p)
}

fn link_requirements(
    c: &Connection,
    template_id: &str,
    penalty_id: &str,
    ids: &[String],
) -> Result<()> {
    c.execute(
        "DELETE FROM penalty_requirements WHERE penalty_id = ?1",
        [penalty_id],
    )
    .map_err(db)?;
    for rid in ids {
        let r = requirement(c, rid)?;
        if r.template_id != template_id {
            return Err(StoreError::Conflict {
                code: "requirement_of_other_template",
                detail: format!("requirement {rid} belongs to another template"),
            });
        }
        c.execute(
            "INSERT OR IGNORE INTO penalty_requirements (penalty_id, requirement_id) VALUES (?1, ?2)",
            params![penalty_id, rid],
        )
        .map_err(db)?;
    }
    Ok(())
}

pub fn add_penalty(c: &Connection, template_id: &str, new: NewPenalty) -> Result<Penalty> {
    template(c, template_id)?;
    validate_event_type(&new.event_type)?;
    for r in &new.rules {
        r.validate()?;
    }
    let id = accolade_domain::ids::penalty_id();
    c.execute(
        "INSERT INTO penalties (id, template_id, key, event_type, description, rules, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            template_id,
            new.key,
            new.event_type,
            new.description,
            rows::rules_json(&new.rules),
            ts(Utc::now())
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            key_conflict("penalty", &new.key)
        } else {
            db(e)
        }
    })?;
    link_requirements(c, template_id, &id, &new.requirement_ids)?;
    bump_version(c)?;
    penalty(c, &id)
}

pub fn update_penalty(c: &Connection, id: &str, p: PenaltyPatch) -> Result<Penalty> {
    let mut cur = penalty(c, id)?;
    let mut p = p;
    p.apply_to(&mut cur)?;
    c.execute(
        "UPDATE penalties SET event_type = ?2, description = ?3, rules = ?4 WHERE id = ?1",
        params![
            id,
            cur.event_type,
            cur.description,
            rows::rules_json(&cur.rules)
        ],
    )
    .map_err(db)?;
    if let Some(ids) = p.requirement_ids {
        link_requirements(c, &cur.template_id, id, &ids)?;
    }
    bump_version(c)?;
    penalty(c, id)
}

pub fn delete_penalty(c: &Connection, id: &str) -> Result<()> {
    penalty(c, id)?;
    c.execute("DELETE FROM penalties WHERE id = ?1", [id])
        .map_err(db)?;
    bump_version(c)
}

/// Rules as code: makes one template's configuration equal to `desired`, as planned by
/// [`accolade_domain::rules_apply::plan`] from the stored configuration.
pub fn apply_template(c: &Connection, d: DesiredTemplate) -> Result<TemplateConfig> {
    let id = d
        .template
        .id
        .clone()
        .unwrap_or_else(accolade_domain::ids::uuid);
    let current = match template_config(c, &id) {
        Ok(found) => Some(found),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let plan = rules_apply::plan(d, id.clone(), current.as_ref())?;
    let nt = plan.template;
    if plan.create {
        create_template(c, nt)?;
    } else {
        c.execute(
            "UPDATE templates SET name = ?2, description = ?3, image_url = ?4, is_active = ?5, \
             allow_reaward = ?6, expires_after = ?7, criteria = ?8, updated_at = ?9 WHERE id = ?1",
            params![
                id,
                nt.name.trim(),
                nt.description,
                nt.image_url,
                nt.is_active,
                nt.allow_reaward,
                nt.expires_after.map(|e| e.to_string()),
                nt.criteria,
                ts(Utc::now())
            ],
        )
        .map_err(db)?;
    }
    for rid in &plan.delete_requirements {
        delete_requirement(c, rid)?;
    }
    let mut key_to_id: HashMap<String, String> = HashMap::new();
    for w in plan.requirements {
        match w {
            RequirementWrite::Update(r) => {
                c.execute(
                    "UPDATE requirements SET event_type = ?2, description = ?3, group_letter = ?4, rules = ?5 WHERE id = ?1",
                    params![r.id, r.event_type, r.description, r.group.to_string(), rows::rules_json(&r.rules)],
                )
                .map_err(db)?;
                key_to_id.insert(r.key.unwrap_or_default(), r.id);
            }
            RequirementWrite::Create(r) => {
                let created = add_requirement(
                    c,
                    &id,
                    NewRequirement {
                        key: Some(r.key.clone()),
                        event_type: r.event_type,
                        description: r.description,
                        group: Some(r.group),
                        rules: r.rules,
                    },
                )?;
                key_to_id.insert(r.key, created.id);
            }
        }
    }
    for pid in &plan.delete_penalties {
        delete_penalty(c, pid)?;
    }
    for (stored, p) in plan.penalties {
        // The plan checked that every key names one of its requirements.
        let req_ids: Vec<String> = p
            .requirement_keys
            .iter()
            .filter_map(|k| key_to_id.get(k).cloned())
            .collect();
        match stored {
            Some(pid) => {
                update_penalty(
                    c,
                    &pid,
                    PenaltyPatch {
                        event_type: Some(p.event_type),
                        description: Some(p.description),
                        rules: Some(p.rules),
                        requirement_ids: Some(req_ids),
                    },
                )?;
            }
            None => {
                add_penalty(
                    c,
                    &id,
                    NewPenalty {
                        key: Some(p.key),
                        event_type: p.event_type,
                        description: p.description,
                        rules: p.rules,
                        requirement_ids: req_ids,
                    },
                )?;
            }
        }
    }
    bump_version(c)?;
    template_config(c, &id)
}
