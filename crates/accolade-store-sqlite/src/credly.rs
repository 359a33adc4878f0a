//! Credly organizations, template sync and webhook notifications.

use std::collections::HashMap;

use accolade_domain::award::Award;
use accolade_domain::credly_sync::{
    check_foreign, deactivates, plan_apply, plan_sync, stored_name, ApplyStep, Foreign, SyncStep,
};
use accolade_domain::outbox::kind;
use accolade_domain::template::Template;
use accolade_store::Entity;
use accolade_store::{
    CredlyKey, CredlyNotification, CredlyOrganization, NewCredlyNotification,
    NewCredlyOrganization, Page, Paged, ProviderTemplate, StoreError, SyncSummary, TemplateChange,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::config::{bump_version, template};
use crate::rows::{self, db, parse_ts, ts, AWARD_COLUMNS, TEMPLATE_COLUMNS};

type Result<T> = std::result::Result<T, StoreError>;

const ORG_COLUMNS: &str = "id, name, api_key_last4, key_created_at, key_expires_at, last_sync_at, \
     last_sync_summary, created_at, updated_at";

fn org_row(r: &Row<'_>) -> rusqlite::Result<CredlyOrganization> {
    let summary: Option<String> = r.get(6)?;
    Ok(CredlyOrganization {
        id: r.get(0)?,
        name: r.get(1)?,
        api_key_last4: r.get(2)?,
        key_created_at: parse_ts(&r.get::<_, String>(3)?)?,
        key_expires_at: parse_ts(&r.get::<_, String>(4)?)?,
        last_sync_at: r
            .get::<_, Option<String>>(5)?
            .map(|s| parse_ts(&s))
            .transpose()?,
        last_sync: summary.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
        updated_at: parse_ts(&r.get::<_, String>(8)?)?,
    })
}

pub fn get_org(c: &Connection, id: &str) -> Result<CredlyOrganization> {
    c.prepare_cached(&format!(
        "SELECT {ORG_COLUMNS} FROM credly_organizations WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], org_row).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::CredlyOrganization))
}

pub fn list_orgs(c: &Connection) -> Result<Vec<CredlyOrganization>> {
    c.prepare_cached(&format!(
        "SELECT {ORG_COLUMNS} FROM credly_organizations ORDER BY name, id"
    ))
    .and_then(|mut s| s.query_map([], org_row)?.collect())
    .map_err(db)
}

pub fn add_org(c: &Connection, new: NewCredlyOrganization) -> Result<CredlyOrganization> {
    let now = ts(Utc::now());
    c.execute(
        "INSERT INTO credly_organizations (id, name, api_key_ciphertext, api_key_last4, \
         key_created_at, key_expires_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            new.id,
            new.name,
            new.key.ciphertext,
            new.key.last4,
            ts(new.key.created_at),
            ts(new.key.expires_at),
            now
        ],
    )
    .map_err(|e| {
        if rows::is_unique_violation(&e) {
            StoreError::Conflict {
                code: "organization_exists",
                detail: format!(
                    "Credly organization {} is already configured; rotate its key instead",
                    new.id
                ),
            }
        } else {
            db(e)
        }
    })?;
    get_org(c, &new.id)
}

pub fn update_org(
    c: &Connection,
    id: &str,
    name: Option<String>,
    key: Option<CredlyKey>,
) -> Result<CredlyOrganization> {
    get_org(c, id)?;
    let now = ts(Utc::now());
    if let Some(name) = name {
        c.execute(
            "UPDATE credly_organizations SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, name, now],
        )
        .map_err(db)?;
    }
    if let Some(k) = key {
        c.execute(
            "UPDATE credly_organizations SET api_key_ciphertext = ?2, api_key_last4 = ?3, \
             key_created_at = ?4, key_expires_at = ?5, updated_at = ?6 WHERE id = ?1",
            params![
                id,
                k.ciphertext,
                k.last4,
                ts(k.created_at),
                ts(k.expires_at),
                now
            ],
        )
        .map_err(db)?;
    }
    get_org(c, id)
}

pub fn org_key(c: &Connection, id: &str) -> Result<Vec<u8>> {
    c.query_row(
        "SELECT api_key_ciphertext FROM credly_organizations WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::CredlyOrganization))
}

fn org_templates(c: &Connection, org_id: &str) -> Result<HashMap<String, Template>> {
    let list: Vec<Template> = c
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE organization_id = ?1 AND origin = 'credly'"
        ))
        .and_then(|mut s| s.query_map([org_id], rows::template)?.collect())
        .map_err(db)?;
    Ok(list.into_iter().map(|t| (t.id.clone(), t)).collect())
}

fn insert_provider_template(c: &Connection, org_id: &str, p: &ProviderTemplate) -> Result<()> {
    let now = ts(Utc::now());
    // A template id is global: if a template with this id exists under another organization or
    // as a local template, that is a conflict an operator must see, not something to overwrite.
    c.execute(
        "INSERT INTO templates (id, name, description, image_url, origin, provider_state, \
         is_active, allow_reaward, organization_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'credly', ?5, 0, 1, ?6, ?7, ?7)",
        params![
            p.id,
            stored_name(p),
            p.description,
            p.image_url,
            p.state,
            org_id,
            now
        ],
    )
    .map_err(|e| {
        if rows::is_unique_violation(&e) {
            conflict(Foreign {
                id: p.id.clone(),
                organization_id: org_id.to_string(),
            })
        } else {
            db(e)
        }
    })?;
    Ok(())
}

/// Writes the provider's fields; deactivates when the provider state is not `active`.
/// Returns whether the template was active: then the rules index (which carries names and images
/// into outbox payloads) must be rebuilt, so the caller bumps the configuration version.
fn update_provider_template(c: &Connection, t: &Template, p: &ProviderTemplate) -> Result<bool> {
    let deactivate = deactivates(t, p);
    c.execute(
        "UPDATE templates SET name = ?2, description = ?3, image_url = ?4, provider_state = ?5, \
         is_active = CASE WHEN ?6 THEN 0 ELSE is_active END, updated_at = ?7 WHERE id = ?1",
        params![
            t.id,
            stored_name(p),
            p.description,
            p.image_url,
            p.state,
            deactivate,
            ts(Utc::now())
        ],
    )
    .map_err(db)?;
    Ok(t.is_active)
}

/// The template with this id, unless it is taken outside this organization's Credly templates.
fn existing(c: &Connection, org_id: &str, id: &str) -> Result<Option<Template>> {
    check_foreign(template(c, id).ok(), org_id, id).map_err(conflict)
}

fn conflict(f: Foreign) -> StoreError {
    StoreError::Conflict {
        code: "template_exists",
        detail: f.to_string(),
    }
}

pub fn sync_templates(
    c: &Connection,
    org_id: &str,
    active: Vec<ProviderTemplate>,
    pages: u32,
    dry_run: bool,
) -> Result<SyncSummary> {
    get_org(c, org_id)?;
    let plan = plan_sync(org_templates(c, org_id)?, active);
    let mut config_changed = false;
    for step in &plan.steps {
        match step {
            SyncStep::Create(p) => {
                // Checked on a dry run too, so that it fails where the real run would.
                existing(c, org_id, &p.id)?;
                if !dry_run {
                    insert_provider_template(c, org_id, p)?;
                }
            }
            SyncStep::Update { current, to } | SyncStep::Deactivate { current, to } => {
                if !dry_run {
                    config_changed |= update_provider_template(c, current, to)?;
                }
            }
        }
    }
    let summary = SyncSummary::of(&plan, pages);
    if !dry_run {
        if config_changed {
            bump_version(c)?;
        }
        let now = ts(Utc::now());
        c.execute(
            "UPDATE credly_organizations SET last_sync_at = ?2, last_sync_summary = ?3, \
             updated_at = ?2 WHERE id = ?1",
            params![
                org_id,
                now,
                serde_json::to_string(&summary).unwrap_or_default()
            ],
        )
        .map_err(db)?;
    }
    Ok(summary)
}

pub fn apply_template(
    c: &Connection,
    org_id: &str,
    p: ProviderTemplate,
) -> Result<(Option<Template>, TemplateChange)> {
    get_org(c, org_id)?;
    let id = p.id.clone();
    let change = match plan_apply(existing(c, org_id, &id)?, p) {
        ApplyStep::Missing => return Ok((None, TemplateChange::Missing)),
        ApplyStep::Create(p) => {
            insert_provider_template(c, org_id, &p)?;
            TemplateChange::Created
        }
        ApplyStep::Update { current, to } => {
            if update_provider_template(c, &current, &to)? {
                bump_version(c)?;
            }
            TemplateChange::Updated
        }
        ApplyStep::Unchanged => TemplateChange::Unchanged,
    };
    Ok((Some(template(c, &id)?), change))
}

pub fn record_notification(c: &Connection, n: NewCredlyNotification) -> Result<bool> {
    let inserted = c
        .execute(
            "INSERT INTO credly_notifications (id, organization_id, event_type, occurred_at,              received_at, status) VALUES (?1, ?2, ?3, ?4, ?5, 'received') ON CONFLICT (id) DO NOTHING",
            params![n.id, n.organization_id, n.event_type, n.occurred_at, ts(n.received_at)],
        )
        .map_err(db)?;
    if inserted == 0 {
        return Ok(false);
    }
    let now = ts(n.received_at);
    let payload = serde_json::json!({
        "notification_id": n.id,
        "organization_id": n.organization_id,
        "event_type": n.event_type,
    });
    c.execute(
        "INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at)          VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4, ?4)",
        params![
            accolade_domain::ids::job_id(),
            kind::CREDLY_WEBHOOK,
            payload.to_string(),
            now
        ],
    )
    .map_err(db)?;
    Ok(true)
}

pub fn count_pending_notifications(c: &Connection, organization_id: &str) -> Result<u64> {
    c.prepare_cached(
        "SELECT COUNT(*) FROM credly_notifications WHERE organization_id = ?1 AND status = 'received'",
    )
    .and_then(|mut s| s.query_row(params![organization_id], |r| r.get::<_, i64>(0)))
    .map(|n| n as u64)
    .map_err(db)
}

pub fn prune_notifications(c: &Connection, before: DateTime<Utc>) -> Result<u64> {
    let cutoff = ts(before);
    let deleted = c
        .execute(
            "DELETE FROM credly_notifications WHERE status <> 'received' AND processed_at < ?1",
            params![cutoff],
        )
        .map_err(db)?;
    c.execute(
        "DELETE FROM jobs WHERE kind = ?1 AND status = 'succeeded' AND updated_at < ?2",
        params![kind::CREDLY_WEBHOOK, cutoff],
    )
    .map_err(db)?;
    Ok(deleted as u64)
}

pub fn finish_notification(c: &Connection, id: &str, status: &str, detail: &str) -> Result<()> {
    let changed = c
        .execute(
            "UPDATE credly_notifications SET status = ?2, detail = ?3, processed_at = ?4 WHERE id = ?1",
            params![id, status, detail, ts(Utc::now())],
        )
        .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::not_found(Entity::CredlyNotification));
    }
    Ok(())
}

fn notification_row(r: &Row<'_>) -> rusqlite::Result<CredlyNotification> {
    Ok(CredlyNotification {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        event_type: r.get(2)?,
        occurred_at: r.get(3)?,
        received_at: parse_ts(&r.get::<_, String>(4)?)?,
        status: r.get(5)?,
        detail: r.get(6)?,
        processed_at: r
            .get::<_, Option<String>>(7)?
            .map(|s| parse_ts(&s))
            .transpose()?,
    })
}

pub fn list_notifications(c: &Connection, page: Page) -> Result<Paged<CredlyNotification>> {
    let rows: Vec<CredlyNotification> = c
        .prepare_cached(
            "SELECT id, organization_id, event_type, occurred_at, received_at, status, detail,              processed_at FROM credly_notifications ORDER BY received_at DESC, id DESC LIMIT ?1 OFFSET ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![page.fetch(), page.offset as i64], notification_row)?
                .collect()
        })
        .map_err(db)?;
    Ok(page.finish(rows))
}

pub fn set_external_state(c: &Connection, external_id: &str, state: &str) -> Result<Option<Award>> {
    let changed = c
        .execute(
            "UPDATE awards SET external_state = ?2, updated_at = ?3 WHERE external_id = ?1",
            params![external_id, state, ts(Utc::now())],
        )
        .map_err(db)?;
    if changed == 0 {
        return Ok(None);
    }
    c.prepare_cached(&format!(
        "SELECT {AWARD_COLUMNS} FROM awards WHERE external_id = ?1 ORDER BY episode DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([external_id], rows::award).optional())
    .map_err(db)
}
