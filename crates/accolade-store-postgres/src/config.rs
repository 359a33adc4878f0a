//! Configuration: templates, requirements, data rules, penalties, and rules as code.
//!
//! Every change bumps `config_state.version` in its own transaction, so event processing (in any
//! instance) notices and rebuilds its rules index. Configuration transactions also take an
//! exclusive transaction-level advisory lock ([`CONFIG_LOCK`]) first, while event batches hold it
//! shared: under READ COMMITTED this makes a batch see one configuration from its first statement
//! to its commit (no half-applied change can commit in between), and it serialises configuration
//! writers against each other so they cannot deadlock. Configuration changes are rare; the cost
//! is that a change waits for the batches in flight, a few milliseconds.

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
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{self, db, is_unique_violation, micros, opt_text, template_columns, text};

type Result<T> = std::result::Result<T, StoreError>;

/// Key of the advisory lock that orders configuration changes against event batches
/// (the ASCII bytes of "accolade").
pub const CONFIG_LOCK: i64 = 0x6163_636f_6c61_6465;

/// Takes the configuration lock exclusively (first statement of every configuration change).
pub async fn lock_for_change(c: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CONFIG_LOCK)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

/// How every event batch begins, in one round trip (a simple query may hold several
/// statements): the transaction, generic plans that look rows up by key, and the configuration
/// lock taken shared (the key is [`CONFIG_LOCK`]).
///
/// Generic plans: a batch's statements take arrays, whose sizes change every time, so
/// PostgreSQL would otherwise plan them anew on every execution; for a small batch that
/// planning cost more than running them. A generic plan is made once per connection, from the
/// statistics of that moment: for a table analyzed while empty, a sequential scan looks free,
/// and would stay in the plan while the table grows. So sequential scans are ruled out for the
/// batch (every lookup it makes has an index), and each statement is written so that its rows
/// are found one key at a time rather than by a join over a whole table. Tests check the plans.
pub const BEGIN_EVENT_BATCH: &str = "BEGIN; \
     SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; \
     SELECT pg_advisory_xact_lock_shared(7017561974584206437)";

pub async fn bump_version(c: &mut PgConnection) -> Result<()> {
    sqlx::query("UPDATE config_state SET version = version + 1 WHERE id = 1")
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn version(c: &mut PgConnection) -> Result<i64> {
    sqlx::query_scalar("SELECT version FROM config_state WHERE id = 1")
        .fetch_one(c)
        .await
        .map_err(db)
}

pub async fn template(c: &mut PgConnection, id: &str) -> Result<Template> {
    let row = sqlx::query(concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Template))?;
    rows::template(&row).map_err(db)
}

macro_rules! requirement_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "template_id, ",
            $p,
            "key, ",
            $p,
            "event_type, ",
            $p,
            "description, ",
            $p,
            "group_letter, ",
            $p,
            "rules::text"
        )
    };
}

macro_rules! penalty_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "template_id, ",
            $p,
            "key, ",
            $p,
            "event_type, ",
            $p,
            "description, ",
            $p,
            "rules::text"
        )
    };
}

fn requirement_row(r: &PgRow) -> std::result::Result<Requirement, sqlx::Error> {
    Ok(Requirement {
        id: r.try_get(0)?,
        template_id: r.try_get(1)?,
        key: r.try_get(2)?,
        event_type: r.try_get(3)?,
        description: r.try_get(4)?,
        group: rows::group(r.try_get(5)?)?,
        rules: rows::rules(r.try_get(6)?)?,
    })
}

fn penalty_row(r: &PgRow) -> std::result::Result<Penalty, sqlx::Error> {
    Ok(Penalty {
        id: r.try_get(0)?,
        template_id: r.try_get(1)?,
        key: r.try_get(2)?,
        event_type: r.try_get(3)?,
        description: r.try_get(4)?,
        rules: rows::rules(r.try_get(5)?)?,
        requirement_ids: Vec::new(),
    })
}

/// Loads templates with their requirements and penalties: the one with id `only` or, when it is
/// `None`, every active template. Four statements; callers run them in one transaction.
async fn configs(c: &mut PgConnection, only: Option<&str>) -> Result<Vec<TemplateConfig>> {
    let templates = sqlx::query(concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE ($1::text IS NULL AND is_active) OR id = $1 ORDER BY created_at, id"
    ))
    .bind(opt_text(only))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut configs: Vec<TemplateConfig> = rows::all(templates, rows::template)?
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
    let requirements = sqlx::query(concat!(
        "SELECT ",
        requirement_columns!("r."),
        " FROM requirements r JOIN templates t ON t.id = r.template_id \
         WHERE ($1::text IS NULL AND t.is_active) OR t.id = $1 ORDER BY r.created_at, r.id"
    ))
    .bind(opt_text(only))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    for r in rows::all(requirements, requirement_row)? {
        if let Some(&i) = pos.get(&r.template_id) {
            configs[i].requirements.push(r);
        }
    }
    let penalties = sqlx::query(concat!(
        "SELECT ",
        penalty_columns!("p."),
        " FROM penalties p JOIN templates t ON t.id = p.template_id \
         WHERE ($1::text IS NULL AND t.is_active) OR t.id = $1 ORDER BY p.created_at, p.id"
    ))
    .bind(opt_text(only))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut penalties = rows::all(penalties, penalty_row)?;
    let links: Vec<(String, String)> = sqlx::query_as(
        "SELECT pr.penalty_id, pr.requirement_id FROM penalty_requirements pr \
         JOIN penalties p ON p.id = pr.penalty_id JOIN templates t ON t.id = p.template_id \
         WHERE ($1::text IS NULL AND t.is_active) OR t.id = $1 ORDER BY pr.requirement_id",
    )
    .bind(opt_text(only))
    .fetch_all(&mut *c)
    .await
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

pub async fn active_configs(c: &mut PgConnection) -> Result<Vec<TemplateConfig>> {
    configs(c, None).await
}

pub async fn template_config(c: &mut PgConnection, id: &str) -> Result<TemplateConfig> {
    configs(c, Some(id))
        .await?
        .pop()
        .ok_or(StoreError::not_found(Entity::Template))
}

/// Case-insensitive substring match on template names, Unicode-aware (`FÜR` finds `für`).
///
/// Done here rather than with `ILIKE`, whose case folding depends on the column's collation and
/// the server's locale and ICU support (under "C" it folds ASCII only). Templates number in the
/// hundreds, so a search reads the otherwise filtered list and pages it in memory.
fn name_contains(name: &str, lowered_query: &str) -> bool {
    name.to_lowercase().contains(lowered_query)
}

pub async fn list_templates(
    c: &mut PgConnection,
    f: &TemplateFilter,
    page: Page,
) -> Result<Paged<Template>> {
    let search = f
        .search
        .as_deref()
        .filter(|q| !q.is_empty())
        .map(|q| text(q).to_lowercase());
    // Without a search the database pages; with one, every match is read (LIMIT NULL).
    let (limit, offset) = match search {
        None => (Some(page.fetch()), page.offset as i64),
        Some(_) => (None, 0),
    };
    let found = sqlx::query(concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE ($1::text IS NULL OR origin = $1) \
         AND ($2::boolean IS NULL OR is_active = $2) \
         AND ($3::text IS NULL OR organization_id = $3) \
         AND ($6::text IS NULL OR provider_state = $6) \
         ORDER BY name, id LIMIT $4 OFFSET $5"
    ))
    .bind(f.origin.map(|o| o.as_str()))
    .bind(f.active)
    .bind(opt_text(f.organization_id.as_deref()))
    .bind(limit)
    .bind(offset)
    .bind(opt_text(f.provider_state.as_deref()))
    .fetch_all(c)
    .await
    .map_err(db)?;
    let found = rows::all(found, rows::template)?;
    match search {
        None => Ok(page.finish(found)),
        Some(q) => Ok(page.finish(
            found
                .into_iter()
                .filter(|t| name_contains(&t.name, &q))
                .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(page.fetch()).unwrap_or(usize::MAX))
                .collect(),
        )),
    }
}

pub async fn create_template(c: &mut PgConnection, new: NewTemplate) -> Result<Template> {
    validate_name("name", &new.name)?;
    let criteria = accolade_domain::expiry::criteria(new.criteria)?;
    let id = match new.id {
        Some(id) => id,
        None => accolade_domain::ids::uuid(),
    };
    let now = micros(Utc::now());
    let row = sqlx::query(concat!(
        "INSERT INTO templates (id, name, description, image_url, origin, provider_state, \
         is_active, allow_reaward, organization_id, expires_after, criteria, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING ",
        template_columns!()
    ))
    .bind(text(&id))
    .bind(text(new.name.trim()))
    .bind(text(&new.description))
    .bind(opt_text(new.image_url.as_deref()))
    .bind(new.origin.as_str())
    .bind(text(&new.provider_state))
    .bind(new.is_active)
    .bind(new.allow_reaward)
    .bind(opt_text(new.organization_id.as_deref()))
    .bind(new.expires_after.map(|e| e.to_string()))
    .bind(opt_text(criteria.as_deref()))
    .bind(now)
    .fetch_one(&mut *c)
    .await
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
    bump_version(c).await?;
    rows::template(&row).map_err(db)
}

pub async fn update_template(c: &mut PgConnection, id: &str, p: TemplatePatch) -> Result<Template> {
    let mut t = template(c, id).await?;
    p.apply_to(&mut t)?;
    let row = sqlx::query(concat!(
        "UPDATE templates SET name = $2, description = $3, image_url = $4, allow_reaward = $5, \
         expires_after = $6, criteria = $7, updated_at = $8 WHERE id = $1 RETURNING ",
        template_columns!()
    ))
    .bind(text(id))
    .bind(text(&t.name))
    .bind(text(&t.description))
    .bind(opt_text(t.image_url.as_deref()))
    .bind(t.allow_reaward)
    .bind(t.expires_after.map(|e| e.to_string()))
    .bind(opt_text(t.criteria.as_deref()))
    .bind(micros(Utc::now()))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    bump_version(c).await?;
    rows::template(&row).map_err(db)
}

pub async fn set_active(c: &mut PgConnection, id: &str, active: bool) -> Result<Template> {
    let row = sqlx::query(concat!(
        "UPDATE templates SET is_active = $2, updated_at = $3 WHERE id = $1 RETURNING ",
        template_columns!()
    ))
    .bind(text(id))
    .bind(active)
    .bind(micros(Utc::now()))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Template))?;
    bump_version(c).await?;
    rows::template(&row).map_err(db)
}

async fn used_groups(c: &mut PgConnection, template_id: &str) -> Result<Vec<Group>> {
    let letters: Vec<String> =
        sqlx::query_scalar("SELECT group_letter FROM requirements WHERE template_id = $1")
            .bind(text(template_id))
            .fetch_all(c)
            .await
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

fn validate_rules(rules: &[accolade_domain::rules::DataRule]) -> Result<()> {
    for r in rules {
        r.validate()?;
    }
    Ok(())
}

pub async fn requirement(c: &mut PgConnection, id: &str) -> Result<Requirement> {
    let row = sqlx::query(concat!(
        "SELECT ",
        requirement_columns!(""),
        " FROM requirements WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Requirement))?;
    requirement_row(&row).map_err(db)
}

pub async fn add_requirement(
    c: &mut PgConnection,
    template_id: &str,
    new: NewRequirement,
) -> Result<Requirement> {
    template(c, template_id).await?;
    validate_event_type(&new.event_type)?;
    validate_rules(&new.rules)?;
    let group = match new.group {
        Some(g) => g,
        None => Group::next_free(used_groups(c, template_id).await?)?,
    };
    let row = sqlx::query(concat!(
        "INSERT INTO requirements (id, template_id, key, event_type, description, group_letter, \
         rules, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) RETURNING ",
        requirement_columns!("")
    ))
    .bind(accolade_domain::ids::requirement_id())
    .bind(text(template_id))
    .bind(opt_text(new.key.as_deref()))
    .bind(text(&new.event_type))
    .bind(text(&new.description))
    .bind(group.to_string())
    .bind(rows::rules_json(&new.rules))
    .bind(micros(Utc::now()))
    .fetch_one(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            key_conflict("requirement", &new.key)
        } else {
            db(e)
        }
    })?;
    bump_version(c).await?;
    requirement_row(&row).map_err(db)
}

/// Writes a requirement's editable fields (the key and template never change).
async fn write_requirement(c: &mut PgConnection, r: &Requirement) -> Result<()> {
    sqlx::query(
        "UPDATE requirements SET event_type = $2, description = $3, group_letter = $4, \
         rules = $5::jsonb WHERE id = $1",
    )
    .bind(text(&r.id))
    .bind(text(&r.event_type))
    .bind(text(&r.description))
    .bind(r.group.to_string())
    .bind(rows::rules_json(&r.rules))
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn update_requirement(
    c: &mut PgConnection,
    id: &str,
    p: RequirementPatch,
) -> Result<Requirement> {
    let mut r = requirement(c, id).await?;
    p.apply_to(&mut r)?;
    write_requirement(c, &r).await?;
    bump_version(c).await?;
    Ok(r)
}

/// Deletes a requirement; its penalty links go with it (`ON DELETE CASCADE`), fulfilments stay.
pub async fn delete_requirement(c: &mut PgConnection, id: &str) -> Result<()> {
    let deleted: Option<String> =
        sqlx::query_scalar("DELETE FROM requirements WHERE id = $1 RETURNING id")
            .bind(text(id))
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
    if deleted.is_none() {
        return Err(StoreError::not_found(Entity::Requirement));
    }
    bump_version(c).await
}

pub async fn penalty(c: &mut PgConnection, id: &str) -> Result<Penalty> {
    let row = sqlx::query(concat!(
        "SELECT ",
        penalty_columns!(""),
        " FROM penalties WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Penalty))?;
    let mut p = penalty_row(&row).map_err(db)?;
    p.requirement_ids = sqlx::query_scalar(
        "SELECT requirement_id FROM penalty_requirements WHERE penalty_id = $1 \
         ORDER BY requirement_id",
    )
    .bind(text(id))
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(p)
}

/// Replaces a penalty's linked requirements, which must exist and belong to `template_id`
/// (checked in the given order, so the first bad id is the one reported).
async fn link_requirements(
    c: &mut PgConnection,
    template_id: &str,
    penalty_id: &str,
    ids: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM penalty_requirements WHERE penalty_id = $1")
        .bind(text(penalty_id))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    if ids.is_empty() {
        return Ok(());
    }
    let owners: HashMap<String, String> =
        sqlx::query_as("SELECT id, template_id FROM requirements WHERE id = ANY($1)")
            .bind(ids.iter().map(|i| text(i)).collect::<Vec<_>>())
            .fetch_all(&mut *c)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    let template_id = text(template_id);
    for rid in ids {
        match owners.get(text(rid).as_ref()) {
            None => return Err(StoreError::not_found(Entity::Requirement)),
            Some(owner) if *owner != template_id => {
                return Err(StoreError::Conflict {
                    code: "requirement_of_other_template",
                    detail: format!("requirement {rid} belongs to another template"),
                })
            }
            Some(_) => {}
        }
    }
    sqlx::query(
        "INSERT INTO penalty_requirements (penalty_id, requirement_id) \
         SELECT $1, r FROM unnest($2::text[]) AS r ON CONFLICT DO NOTHING",
    )
    .bind(text(penalty_id))
    .bind(ids.iter().map(|i| text(i)).collect::<Vec<_>>())
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn add_penalty(
    c: &mut PgConnection,
    template_id: &str,
    new: NewPenalty,
) -> Result<Penalty> {
    template(c, template_id).await?;
    validate_event_type(&new.event_type)?;
    validate_rules(&new.rules)?;
    let id = accolade_domain::ids::penalty_id();
    sqlx::query(
        "INSERT INTO penalties (id, template_id, key, event_type, description, rules, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
    )
    .bind(text(&id))
    .bind(text(template_id))
    .bind(opt_text(new.key.as_deref()))
    .bind(text(&new.event_type))
    .bind(text(&new.description))
    .bind(rows::rules_json(&new.rules))
    .bind(micros(Utc::now()))
    .execute(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            key_conflict("penalty", &new.key)
        } else {
            db(e)
        }
    })?;
    link_requirements(c, template_id, &id, &new.requirement_ids).await?;
    bump_version(c).await?;
    penalty(c, &id).await
}

pub async fn update_penalty(c: &mut PgConnection, id: &str, p: PenaltyPatch) -> Result<Penalty> {
    let mut cur = penalty(c, id).await?;
    let mut p = p;
    p.apply_to(&mut cur)?;
    sqlx::query(
        "UPDATE penalties SET event_type = $2, description = $3, rules = $4::jsonb WHERE id = $1",
    )
    .bind(text(id))
    .bind(text(&cur.event_type))
    .bind(text(&cur.description))
    .bind(rows::rules_json(&cur.rules))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    if let Some(ids) = p.requirement_ids {
        link_requirements(c, &cur.template_id, id, &ids).await?;
    }
    bump_version(c).await?;
    penalty(c, id).await
}

pub async fn delete_penalty(c: &mut PgConnection, id: &str) -> Result<()> {
    let deleted: Option<String> =
        sqlx::query_scalar("DELETE FROM penalties WHERE id = $1 RETURNING id")
            .bind(text(id))
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
    if deleted.is_none() {
        return Err(StoreError::not_found(Entity::Penalty));
    }
    bump_version(c).await
}

/// Rules as code: makes one template's configuration equal to `desired`, as planned by
/// [`accolade_domain::rules_apply::plan`] from the stored configuration.
pub async fn apply_template(
    c: &mut PgConnection,
    mut d: DesiredTemplate,
) -> Result<TemplateConfig> {
    // Keys are matched against stored ones, so they take their stored form first.
    for r in &mut d.requirements {
        r.key = text(&r.key).into_owned();
    }
    for p in &mut d.penalties {
        p.key = text(&p.key).into_owned();
        for k in &mut p.requirement_keys {
            *k = text(k).into_owned();
        }
    }
    let id = d
        .template
        .id
        .clone()
        .unwrap_or_else(accolade_domain::ids::uuid);
    let current = match template_config(c, &id).await {
        Ok(found) => Some(found),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let plan = rules_apply::plan(d, id.clone(), current.as_ref())?;
    let nt = plan.template;
    if plan.create {
        create_template(c, nt).await?;
    } else {
        sqlx::query(
            "UPDATE templates SET name = $2, description = $3, image_url = $4, \
             is_active = $5, allow_reaward = $6, expires_after = $7, criteria = $8, \
             updated_at = $9 WHERE id = $1",
        )
        .bind(text(&id))
        .bind(text(nt.name.trim()))
        .bind(text(&nt.description))
        .bind(opt_text(nt.image_url.as_deref()))
        .bind(nt.is_active)
        .bind(nt.allow_reaward)
        .bind(nt.expires_after.map(|e| e.to_string()))
        .bind(opt_text(nt.criteria.as_deref()))
        .bind(micros(Utc::now()))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    }
    for rid in &plan.delete_requirements {
        delete_requirement(c, rid).await?;
    }
    let mut key_to_id: HashMap<String, String> = HashMap::new();
    for w in plan.requirements {
        match w {
            RequirementWrite::Update(r) => {
                write_requirement(c, &r).await?;
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
                )
                .await?;
                key_to_id.insert(r.key, created.id);
            }
        }
    }
    for pid in &plan.delete_penalties {
        delete_penalty(c, pid).await?;
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
                let patch = PenaltyPatch {
                    event_type: Some(p.event_type),
                    description: Some(p.description),
                    rules: Some(p.rules),
                    requirement_ids: Some(req_ids),
                };
                update_penalty(c, &pid, patch).await?;
            }
            None => {
                let new = NewPenalty {
                    key: Some(p.key),
                    event_type: p.event_type,
                    description: p.description,
                    rules: p.rules,
                    requirement_ids: req_ids,
                };
                add_penalty(c, &id, new).await?;
            }
        }
    }
    bump_version(c).await?;
    template_config(c, &id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_batches_lock_the_configuration_key() {
        assert!(BEGIN_EVENT_BATCH.ends_with(&format!("({CONFIG_LOCK})")));
    }
}
