//! Credly organizations, template sync and webhook notifications.
//!
//! Template sync and webhook template changes are configuration changes: the caller runs them in
//! a transaction holding the configuration lock exclusively (see `config.rs`), and they bump
//! `config_state.version` when an active template is deactivated.

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
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::config::{self, bump_version};
use crate::rows::{
    self, award_columns, db, is_unique_violation, json_text, micros, opt_text, template_columns,
    text,
};

type Result<T> = std::result::Result<T, StoreError>;

macro_rules! org_columns {
    () => {
        "id, name, auth_method, api_key_last4, key_created_at, key_expires_at, \
         oauth_client_id_last4, oauth_created_at, rotation_lease_until, last_rotation_at, \
         last_rotation_trigger, last_rotation_result, last_rotation_detail, last_sync_at, \
         last_sync_summary::text, created_at, updated_at"
    };
}

macro_rules! notification_columns {
    () => {
        "id, organization_id, event_type, occurred_at, received_at, status, detail, processed_at"
    };
}

fn org_row(r: &PgRow) -> std::result::Result<CredlyOrganization, sqlx::Error> {
    let method: String = r.try_get(2)?;
    let last_rotation = match r.try_get::<Option<DateTime<Utc>>, _>(9)? {
        Some(at) => {
            let trigger: String = r.try_get(10)?;
            let result: String = r.try_get(11)?;
            Some(KeyRotation {
                at,
                trigger: RotationTrigger::parse(&trigger)
                    .ok_or_else(|| rows::bad_value("last_rotation_trigger", &trigger))?,
                ok: result == "ok",
                detail: r.try_get(12)?,
            })
        }
        None => None,
    };
    let summary: Option<String> = r.try_get(14)?;
    Ok(CredlyOrganization {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        auth_method: CredlyAuthMethod::parse(&method)
            .ok_or_else(|| rows::bad_value("auth_method", &method))?,
        api_key_last4: r.try_get(3)?,
        key_created_at: r.try_get(4)?,
        key_expires_at: r.try_get(5)?,
        oauth_client_id_last4: r.try_get(6)?,
        oauth_created_at: r.try_get(7)?,
        rotation_lease_until: r.try_get(8)?,
        last_rotation,
        last_sync_at: r.try_get(13)?,
        last_sync: summary.and_then(|s| serde_json::from_str(&s).ok()),
        created_at: r.try_get(15)?,
        updated_at: r.try_get(16)?,
    })
}

fn notification_row(r: &PgRow) -> std::result::Result<CredlyNotification, sqlx::Error> {
    Ok(CredlyNotification {
        id: r.try_get(0)?,
        organization_id: r.try_get(1)?,
        event_type: r.try_get(2)?,
        occurred_at: r.try_get(3)?,
        received_at: r.try_get(4)?,
        status: r.try_get(5)?,
        detail: r.try_get(6)?,
        processed_at: r.try_get(7)?,
    })
}

fn org_not_found() -> StoreError {
    StoreError::not_found(Entity::CredlyOrganization)
}

pub async fn get_org(c: &mut PgConnection, id: &str) -> Result<CredlyOrganization> {
    let row = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM credly_organizations WHERE id = $1"
    ))
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or_else(org_not_found)?;
    org_row(&row).map_err(db)
}

pub async fn list_orgs(c: &mut PgConnection) -> Result<Vec<CredlyOrganization>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        org_columns!(),
        " FROM credly_organizations ORDER BY name, id"
    ))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows::all(found, org_row)
}

fn exists(id: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| {
        if is_unique_violation(&e) {
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

pub async fn add_org(
    c: &mut PgConnection,
    new: NewCredlyOrganization,
) -> Result<CredlyOrganization> {
    let row = sqlx::query(concat!(
        "INSERT INTO credly_organizations (id, name, auth_method, api_key_ciphertext, \
         api_key_last4, key_created_at, key_expires_at, created_at, updated_at) \
         VALUES ($1, $2, 'token', $3, $4, $5, $6, $7, $7) RETURNING ",
        org_columns!()
    ))
    .bind(text(&new.id))
    .bind(text(&new.name))
    .bind(&new.key.ciphertext)
    .bind(text(&new.key.last4))
    .bind(micros(new.key.created_at))
    .bind(micros(new.key.expires_at))
    .bind(micros(Utc::now()))
    .fetch_one(c)
    .await
    .map_err(exists(&new.id))?;
    org_row(&row).map_err(db)
}

pub async fn add_oauth_org(
    c: &mut PgConnection,
    new: NewCredlyOAuthOrganization,
) -> Result<CredlyOrganization> {
    let row = sqlx::query(concat!(
        "INSERT INTO credly_organizations (id, name, auth_method, oauth_client_id_ciphertext, \
         oauth_client_secret_ciphertext, oauth_client_id_last4, oauth_created_at, created_at, \
         updated_at) VALUES ($1, $2, 'oauth', $3, $4, $5, $6, $7, $7) RETURNING ",
        org_columns!()
    ))
    .bind(text(&new.id))
    .bind(text(&new.name))
    .bind(&new.client.client_id_ciphertext)
    .bind(&new.client.client_secret_ciphertext)
    .bind(text(&new.client.client_id_last4))
    .bind(micros(new.client.created_at))
    .bind(micros(Utc::now()))
    .fetch_one(c)
    .await
    .map_err(exists(&new.id))?;
    org_row(&row).map_err(db)
}

/// Renames and/or rotates the key in one statement; `updated_at` moves only when something was
/// given (as in the SQLite store, which runs no update then). A key switches an OAuth
/// organization to the token method and drops its client.
pub async fn update_org(
    c: &mut PgConnection,
    id: &str,
    name: Option<String>,
    key: Option<CredlyKey>,
) -> Result<CredlyOrganization> {
    let row = sqlx::query(concat!(
        "UPDATE credly_organizations SET name = coalesce($2, name), \
         auth_method = CASE WHEN $3::bytea IS NULL THEN auth_method ELSE 'token' END, \
         api_key_ciphertext = coalesce($3, api_key_ciphertext), \
         api_key_last4 = coalesce($4, api_key_last4), \
         key_created_at = coalesce($5, key_created_at), \
         key_expires_at = coalesce($6, key_expires_at), \
         oauth_client_id_ciphertext = CASE WHEN $3::bytea IS NULL \
             THEN oauth_client_id_ciphertext END, \
         oauth_client_secret_ciphertext = CASE WHEN $3::bytea IS NULL \
             THEN oauth_client_secret_ciphertext END, \
         oauth_client_id_last4 = CASE WHEN $3::bytea IS NULL THEN oauth_client_id_last4 END, \
         oauth_created_at = CASE WHEN $3::bytea IS NULL THEN oauth_created_at END, \
         updated_at = CASE WHEN $2::text IS NULL AND $3::bytea IS NULL THEN updated_at ELSE $7 END \
         WHERE id = $1 RETURNING ",
        org_columns!()
    ))
    .bind(text(id))
    .bind(opt_text(name.as_deref()))
    .bind(key.as_ref().map(|k| k.ciphertext.as_slice()))
    .bind(key.as_ref().map(|k| text(&k.last4)))
    .bind(key.as_ref().map(|k| micros(k.created_at)))
    .bind(key.as_ref().map(|k| micros(k.expires_at)))
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or_else(org_not_found)?;
    org_row(&row).map_err(db)
}

pub async fn set_oauth_client(
    c: &mut PgConnection,
    id: &str,
    name: Option<String>,
    client: OAuthClient,
) -> Result<CredlyOrganization> {
    let row = sqlx::query(concat!(
        "UPDATE credly_organizations SET auth_method = 'oauth', name = coalesce($2, name), \
         oauth_client_id_ciphertext = $3, oauth_client_secret_ciphertext = $4, \
         oauth_client_id_last4 = $5, oauth_created_at = $6, api_key_ciphertext = NULL, \
         api_key_last4 = NULL, key_created_at = NULL, key_expires_at = NULL, \
         rotation_lease_until = NULL, updated_at = $7 WHERE id = $1 RETURNING ",
        org_columns!()
    ))
    .bind(text(id))
    .bind(opt_text(name.as_deref()))
    .bind(&client.client_id_ciphertext)
    .bind(&client.client_secret_ciphertext)
    .bind(text(&client.client_id_last4))
    .bind(micros(client.created_at))
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or_else(org_not_found)?;
    org_row(&row).map_err(db)
}

fn other_method(id: &str, has: &str) -> StoreError {
    StoreError::Conflict {
        code: "credly_auth_method",
        detail: format!("Credly organization {id} authenticates with {has}"),
    }
}

pub async fn org_key(c: &mut PgConnection, id: &str) -> Result<Vec<u8>> {
    let key: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT api_key_ciphertext FROM credly_organizations WHERE id = $1")
            .bind(text(id))
            .fetch_optional(c)
            .await
            .map_err(db)?
            .ok_or_else(org_not_found)?;
    key.ok_or_else(|| other_method(id, "OAuth client credentials, not a key"))
}

pub async fn org_oauth_client(c: &mut PgConnection, id: &str) -> Result<OAuthClient> {
    let row = sqlx::query(
        "SELECT oauth_client_id_ciphertext, oauth_client_secret_ciphertext, \
         oauth_client_id_last4, oauth_created_at FROM credly_organizations WHERE id = $1",
    )
    .bind(text(id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or_else(org_not_found)?;
    let cid: Option<Vec<u8>> = row.try_get(0).map_err(db)?;
    let secret: Option<Vec<u8>> = row.try_get(1).map_err(db)?;
    let last4: Option<String> = row.try_get(2).map_err(db)?;
    let created: Option<DateTime<Utc>> = row.try_get(3).map_err(db)?;
    match (cid, secret, last4, created) {
        (Some(client_id_ciphertext), Some(client_secret_ciphertext), Some(last4), Some(at)) => {
            Ok(OAuthClient {
                client_id_ciphertext,
                client_secret_ciphertext,
                client_id_last4: last4,
                created_at: at,
            })
        }
        _ => Err(other_method(id, "a key, not OAuth client credentials")),
    }
}

pub async fn claim_rotation(
    c: &mut PgConnection,
    id: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    due_before: Option<DateTime<Utc>>,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE credly_organizations SET rotation_lease_until = $3 WHERE id = $1 \
         AND auth_method = 'token' \
         AND (rotation_lease_until IS NULL OR rotation_lease_until <= $2) \
         AND ($4::timestamptz IS NULL OR key_expires_at < $4)",
    )
    .bind(text(id))
    .bind(micros(now))
    .bind(micros(lease_until))
    .bind(due_before.map(micros))
    .execute(c)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(n == 1)
}

pub async fn finish_rotation(
    c: &mut PgConnection,
    id: &str,
    rotation: KeyRotation,
    new_key: Option<CredlyKey>,
) -> Result<CredlyOrganization> {
    if let Some(k) = new_key {
        update_org(c, id, None, Some(k)).await?;
    }
    let row = sqlx::query(concat!(
        "UPDATE credly_organizations SET rotation_lease_until = NULL, last_rotation_at = $2, \
         last_rotation_trigger = $3, last_rotation_result = $4, last_rotation_detail = $5, \
         updated_at = $6 WHERE id = $1 RETURNING ",
        org_columns!()
    ))
    .bind(text(id))
    .bind(micros(rotation.at))
    .bind(rotation.trigger.as_str())
    .bind(if rotation.ok { "ok" } else { "failed" })
    .bind(opt_text(rotation.detail.as_deref()))
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or_else(org_not_found)?;
    org_row(&row).map_err(db)
}

/// The organization's Credly templates by id.
async fn org_templates(c: &mut PgConnection, org_id: &str) -> Result<HashMap<String, Template>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE organization_id = $1 AND origin = 'credly'"
    ))
    .bind(text(org_id))
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(rows::all(found, rows::template)?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect())
}

/// The template with this id, if there is one.
async fn find_template(c: &mut PgConnection, id: &str) -> Result<Option<Template>> {
    match config::template(c, id).await {
        Ok(t) => Ok(Some(t)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The provider's values as this store keeps them (NUL as U+FFFD, see `rows::text`), so they
/// compare equal to what was stored from them.
fn clean(p: ProviderTemplate) -> ProviderTemplate {
    ProviderTemplate {
        id: text(&p.id).into_owned(),
        name: text(&p.name).into_owned(),
        description: text(&p.description).into_owned(),
        image_url: opt_text(p.image_url.as_deref()).map(|s| s.into_owned()),
        state: text(&p.state).into_owned(),
    }
}

fn conflict(f: Foreign) -> StoreError {
    StoreError::Conflict {
        code: "template_exists",
        detail: f.to_string(),
    }
}

/// The template with this id, unless it is taken outside this organization's Credly templates.
async fn existing(c: &mut PgConnection, org_id: &str, id: &str) -> Result<Option<Template>> {
    check_foreign(find_template(c, id).await?, org_id, id).map_err(conflict)
}

async fn insert_provider_template(
    c: &mut PgConnection,
    org_id: &str,
    p: &ProviderTemplate,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO templates (id, name, description, image_url, origin, provider_state, \
         is_active, allow_reaward, organization_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'credly', $5, FALSE, TRUE, $6, $7, $7)",
    )
    .bind(&p.id)
    .bind(stored_name(p))
    .bind(&p.description)
    .bind(p.image_url.as_deref())
    .bind(&p.state)
    .bind(text(org_id))
    .bind(micros(Utc::now()))
    .execute(c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
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
/// Returns whether the template was active (then the configuration version must move).
async fn update_provider_template(
    c: &mut PgConnection,
    t: &Template,
    p: &ProviderTemplate,
) -> Result<bool> {
    let deactivate = deactivates(t, p);
    sqlx::query(
        "UPDATE templates SET name = $2, description = $3, image_url = $4, provider_state = $5, \
         is_active = CASE WHEN $6 THEN FALSE ELSE is_active END, updated_at = $7 WHERE id = $1",
    )
    .bind(&t.id)
    .bind(stored_name(p))
    .bind(&p.description)
    .bind(p.image_url.as_deref())
    .bind(&p.state)
    .bind(deactivate)
    .bind(micros(Utc::now()))
    .execute(c)
    .await
    .map_err(db)?;
    // Active templates feed the rules index (names and images go into outbox payloads):
    // any change to one means a rebuild, so the caller bumps the configuration version.
    Ok(t.is_active)
}

pub async fn sync_templates(
    c: &mut PgConnection,
    org_id: &str,
    active: Vec<ProviderTemplate>,
    pages: u32,
    dry_run: bool,
) -> Result<SyncSummary> {
    let org_id = &*text(org_id);
    get_org(c, org_id).await?;
    let known = org_templates(c, org_id).await?;
    let plan = plan_sync(known, active.into_iter().map(clean).collect());
    let mut config_changed = false;
    for step in &plan.steps {
        match step {
            SyncStep::Create(p) => {
                // Checked on a dry run too, so that it fails where the real run would.
                existing(c, org_id, &p.id).await?;
                if !dry_run {
                    insert_provider_template(c, org_id, p).await?;
                }
            }
            SyncStep::Update { current, to } | SyncStep::Deactivate { current, to } => {
                if !dry_run {
                    config_changed |= update_provider_template(c, current, to).await?;
                }
            }
        }
    }
    let summary = SyncSummary::of(&plan, pages);
    if !dry_run {
        if config_changed {
            bump_version(c).await?;
        }
        let summary_json = serde_json::to_value(summary).unwrap_or_default();
        sqlx::query(
            "UPDATE credly_organizations SET last_sync_at = $2, last_sync_summary = $3::jsonb, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(org_id)
        .bind(micros(Utc::now()))
        .bind(json_text(&summary_json))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    }
    Ok(summary)
}

pub async fn apply_template(
    c: &mut PgConnection,
    org_id: &str,
    p: ProviderTemplate,
) -> Result<(Option<Template>, TemplateChange)> {
    let org_id = &*text(org_id);
    get_org(c, org_id).await?;
    let p = clean(p);
    let id = p.id.clone();
    let change = match plan_apply(existing(c, org_id, &id).await?, p) {
        ApplyStep::Missing => return Ok((None, TemplateChange::Missing)),
        ApplyStep::Create(p) => {
            insert_provider_template(c, org_id, &p).await?;
            TemplateChange::Created
        }
        ApplyStep::Update { current, to } => {
            if update_provider_template(c, &current, &to).await? {
                bump_version(c).await?;
            }
            TemplateChange::Updated
        }
        ApplyStep::Unchanged => TemplateChange::Unchanged,
    };
    Ok((Some(config::template(c, &id).await?), change))
}

/// Inserts the notification and, only when it is new, the job that confirms and applies it.
pub async fn record_notification(c: &mut PgConnection, n: NewCredlyNotification) -> Result<bool> {
    let received_at = micros(n.received_at);
    let inserted = sqlx::query(
        "INSERT INTO credly_notifications (id, organization_id, event_type, occurred_at, \
         received_at, status) VALUES ($1, $2, $3, $4, $5, 'received') ON CONFLICT (id) DO NOTHING",
    )
    .bind(text(&n.id))
    .bind(text(&n.organization_id))
    .bind(text(&n.event_type))
    .bind(opt_text(n.occurred_at.as_deref()))
    .bind(received_at)
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    let payload = serde_json::json!({
        "notification_id": n.id,
        "organization_id": n.organization_id,
        "event_type": n.event_type,
    });
    sqlx::query(
        "INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3::jsonb, 'pending', 0, $4, $4, $4)",
    )
    .bind(accolade_domain::ids::job_id())
    .bind(kind::CREDLY_WEBHOOK)
    .bind(json_text(&payload))
    .bind(received_at)
    .execute(c)
    .await
    .map_err(db)?;
    Ok(true)
}

pub async fn count_pending_notifications(
    c: &mut PgConnection,
    organization_id: &str,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM credly_notifications WHERE organization_id = $1 AND status = 'received'",
    )
    .bind(text(organization_id))
    .fetch_one(c)
    .await
    .map_err(db)?;
    Ok(n as u64)
}

pub async fn prune_notifications(c: &mut PgConnection, before: DateTime<Utc>) -> Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM credly_notifications WHERE status <> 'received' AND processed_at < $1",
    )
    .bind(micros(before))
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();
    sqlx::query("DELETE FROM jobs WHERE kind = $1 AND status = 'succeeded' AND updated_at < $2")
        .bind(kind::CREDLY_WEBHOOK)
        .bind(micros(before))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(deleted)
}

pub async fn finish_notification(
    c: &mut PgConnection,
    id: &str,
    status: &str,
    detail: &str,
) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE credly_notifications SET status = $2, detail = $3, processed_at = $4 WHERE id = $1",
    )
    .bind(text(id))
    .bind(text(status))
    .bind(text(detail))
    .bind(micros(Utc::now()))
    .execute(c)
    .await
    .map_err(db)?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::not_found(Entity::CredlyNotification));
    }
    Ok(())
}

pub async fn list_notifications(
    c: &mut PgConnection,
    page: Page,
) -> Result<Paged<CredlyNotification>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        notification_columns!(),
        " FROM credly_notifications ORDER BY received_at DESC, id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(page.fetch())
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(page.finish(rows::all(found, notification_row)?))
}

/// Sets the provider state of the awards with this external id (their learners' rows are locked
/// first, as every award writer does) and returns the latest of them.
pub async fn set_external_state(
    c: &mut PgConnection,
    external_id: &str,
    state: &str,
) -> Result<Option<Award>> {
    let external_id = &*text(external_id);
    sqlx::query(
        "SELECT username FROM learners WHERE username IN \
         (SELECT learner FROM awards WHERE external_id = $1) ORDER BY username FOR UPDATE",
    )
    .bind(external_id)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    let changed = sqlx::query(
        "UPDATE awards SET external_state = $2, updated_at = $3 WHERE external_id = $1",
    )
    .bind(external_id)
    .bind(text(state))
    .bind(micros(Utc::now()))
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        award_columns!(),
        " FROM awards WHERE external_id = $1 ORDER BY episode DESC, id DESC LIMIT 1"
    ))
    .bind(external_id)
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(rows::award).transpose().map_err(db)
}
