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
    CredlyAuthMethod, CredlyKey, CredlyNotification, CredlyOrganization, KeyRotation,
    NewCredlyNotification, NewCredlyOAuthOrganization, NewCredlyOrganization, OAuthClient, Page,
    Paged, ProviderTemplate, RotationTrigger, StoreError, SyncSummary, TemplateChange,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::config::{bump_version, template};
use crate::rows::{self, db, opt_ts, parse_ts, ts, AWARD_COLUMNS, TEMPLATE_COLUMNS};

type Result<T> = std::result::Result<T, StoreError>;

const ORG_COLUMNS: &str = "id, name, auth_method, api_key_last4, key_created_at, key_expires_at, \
     oauth_client_id_last4, oauth_created_at, rotation_lease_until, last_rotation_at, \
     last_rotation_trigger, last_rotation_result, last_rotation_detail, last_sync_at, \
     last_sync_summary, created_at, updated_at";

fn org_row(r: &Row<'_>) -> rusqlite::Result<CredlyOrganization> {
    let text_err = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    let method: String = r.get(2)?;
    let last_rotation = match opt_ts(r.get(9)?)? {
        Some(at) => {
            let trigger: String = r.get(10)?;
            let result: String = r.get(11)?;
            Some(KeyRotation {
                at,
                trigger: RotationTrigger::parse(&trigger)
                    .ok_or_else(|| text_err(10, "rotation trigger"))?,
                ok: result == "ok",
                detail: r.get(12)?,
            })
        }
        None => None,
    };
    let summary: Option<String> = r.get(14)?;
    Ok(CredlyOrganization {
        id: r.get(0)?,
        name: r.get(1)?,
        auth_method: CredlyAuthMethod::parse(&method).ok_or_else(|| text_err(2, "auth method"))?,
        api_key_last4: r.get(3)?,
        key_created_at: opt_ts(r.get(4)?)?,
        key_expires_at: opt_ts(r.get(5)?)?,
        oauth_client_id_last4: r.get(6)?,
        oauth_created_at: opt_ts(r.get(7)?)?,
        rotation_lease_until: opt_ts(r.get(8)?)?,
        last_rotation,
        last_sync_at: opt_ts(r.get(13)?)?,
        last_sync: summary.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: parse_ts(&r.get::<_, String>(15)?)?,
        updated_at: parse_ts(&r.get::<_, String>(16)?)?,
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

fn exists(id: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if rows::is_unique_violation(&e) {
            StoreError::Conflict {
                code: "organization_exists",
                detail: format!(
                    "Credly organization {id} is already configured; rotate its key instead"
                ),
            }
        } else {
            db(e)
        }
    }
}

pub fn add_org(c: &Connection, new: NewCredlyOrganization) -> Result<CredlyOrganization> {
    let now = ts(Utc::now());
    c.execute(
        "INSERT INTO credly_organizations (id, name, auth_method, api_key_ciphertext, \
         api_key_last4, key_created_at, key_expires_at, created_at, updated_at) \
         VALUES (?1, ?2, 'token', ?3, ?4, ?5, ?6, ?7, ?7)",
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
    .map_err(exists(&new.id))?;
    get_org(c, &new.id)
}

pub fn add_oauth_org(
    c: &Connection,
    new: NewCredlyOAuthOrganization,
) -> Result<CredlyOrganization> {
    let now = ts(Utc::now());
    c.execute(
        "INSERT INTO credly_organizations (id, name, auth_method, oauth_client_id_ciphertext, \
         oauth_client_secret_ciphertext, oauth_client_id_last4, oauth_created_at, created_at, \
         updated_at) VALUES (?1, ?2, 'oauth', ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            new.id,
            new.name,
            new.client.client_id_ciphertext,
            new.client.client_secret_ciphertext,
            new.client.client_id_last4,
            ts(new.client.created_at),
            now
        ],
    )
    .map_err(exists(&new.id))?;
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
        set_key(c, id, &k, &now)?;
    }
    get_org(c, id)
}

/// Writes a key (switching an OAuth organization to the token method).
fn set_key(c: &Connection, id: &str, k: &CredlyKey, now: &str) -> Result<()> {
    c.execute(
        "UPDATE credly_organizations SET auth_method = 'token', api_key_ciphertext = ?2, \
         api_key_last4 = ?3, key_created_at = ?4, key_expires_at = ?5, \
         oauth_client_id_ciphertext = NULL, oauth_client_secret_ciphertext = NULL, \
         oauth_client_id_last4 = NULL, oauth_created_at = NULL, updated_at = ?6 WHERE id = ?1",
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
    Ok(())
}

pub fn set_oauth_client(
    c: &Connection,
    id: &str,
    name: Option<String>,
    client: OAuthClient,
) -> Result<CredlyOrganization> {
    get_org(c, id)?;
    c.execute(
        "UPDATE credly_organizations SET auth_method = 'oauth', name = coalesce(?2, name), \
         oauth_client_id_ciphertext = ?3, oauth_client_secret_ciphertext = ?4, \
         oauth_client_id_last4 = ?5, oauth_created_at = ?6, api_key_ciphertext = NULL, \
         api_key_last4 = NULL, key_created_at = NULL, key_expires_at = NULL, \
         rotation_lease_until = NULL, updated_at = ?7 WHERE id = ?1",
        params![
            id,
            name,
            client.client_id_ciphertext,
            client.client_secret_ciphertext,
            client.client_id_last4,
            ts(client.created_at),
            ts(Utc::now())
        ],
    )
    .map_err(db)?;
    get_org(c, id)
}

fn other_method(id: &str, has: &str) -> StoreError {
    StoreError::Conflict {
        code: "credly_auth_method",
        detail: format!("Credly organization {id} authenticates with {has}"),
    }
}

pub fn org_key(c: &Connection, id: &str) -> Result<Vec<u8>> {
    let key: Option<Vec<u8>> = c
        .query_row(
            "SELECT api_key_ciphertext FROM credly_organizations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::CredlyOrganization))?;
    key.ok_or_else(|| other_method(id, "OAuth client credentials, not a key"))
}

pub fn org_oauth_client(c: &Connection, id: &str) -> Result<OAuthClient> {
    type Sealed = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        Option<String>,
    );
    let (cid, secret, last4, created): Sealed = c
        .query_row(
            "SELECT oauth_client_id_ciphertext, oauth_client_secret_ciphertext, \
             oauth_client_id_last4, oauth_created_at FROM credly_organizations WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(db)?
        .ok_or(StoreError::not_found(Entity::CredlyOrganization))?;
    match (cid, secret, last4, created) {
        (Some(client_id_ciphertext), Some(client_secret_ciphertext), Some(last4), Some(at)) => {
            Ok(OAuthClient {
                client_id_ciphertext,
                client_secret_ciphertext,
                client_id_last4: last4,
                created_at: parse_ts(&at).map_err(db)?,
            })
        }
        _ => Err(other_method(id, "a key, not OAuth client credentials")),
    }
}

pub fn claim_rotation(
    c: &Connection,
    id: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    due_before: Option<DateTime<Utc>>,
) -> Result<bool> {
    // Timestamps are stored as fixed-width RFC 3339 text (rows::ts), so text order is time order.
    let n = c
        .execute(
            "UPDATE credly_organizations SET rotation_lease_until = ?3 WHERE id = ?1 \
             AND auth_method = 'token' \
             AND (rotation_lease_until IS NULL OR rotation_lease_until <= ?2) \
             AND (?4 IS NULL OR key_expires_at < ?4)",
            params![id, ts(now), ts(lease_until), due_before.map(ts)],
        )
        .map_err(db)?;
    Ok(n == 1)
}

pub fn finish_rotation(
    c: &Connection,
    id: &str,
    rotation: KeyRotation,
    new_key: Option<CredlyKey>,
) -> Result<CredlyOrganization> {
    get_org(c, id)?;
    let now = ts(Utc::now());
    if let Some(k) = &new_key {
        set_key(c, id, k, &now)?;
    }
    c.execute(
        "UPDATE credly_organizations SET rotation_lease_until = NULL, last_rotation_at = ?2, \
         last_rotation_trigger = ?3, last_rotation_result = ?4, last_rotation_detail = ?5, \
         updated_at = ?6 WHERE id = ?1",
        params![
            id,
            ts(rotation.at),
            rotation.trigger.as_str(),
            if rotation.ok { "ok" } else { "failed" },
            rotation.detail,
            now
        ],
    )
    .map_err(db)?;
    get_org(c, id)
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
