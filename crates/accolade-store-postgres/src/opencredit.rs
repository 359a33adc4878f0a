//! Records of the Open Credit-style API on PostgreSQL (apps, members, addresses, tokens, badges).
//!
//! Ids come from identity columns. A registration (user, organization, addresses, management
//! link) runs in one transaction opened by the store.

use accolade_store::Entity;
use accolade_store::{
    NewOcMember, NewOcMemberBadge, OcApp, OcAwardSync, OcBadge, OcBadgeFields, OcEmail, OcMember,
    OcMemberBadge, OcToken, Page, StoreError,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{db, is_unique_violation, micros, opt_text, text};

type Result<T> = std::result::Result<T, StoreError>;

// Column lists and filters are macros so queries stay `&'static str` (sqlx refuses SQL built at
// run time unless audited).
macro_rules! app_columns {
    () => {
        "id, name, api_key, secret_hash, tier, created_at"
    };
}
macro_rules! member_columns {
    () => {
        "id, is_organization, email, first_name, last_name, display_name, created_at, avatar"
    };
}
macro_rules! badge_columns {
    () => {
        "id, member_id, title, short_description, description, criteria, evidence_prompt, \
         image, expires_in, categories, is_giveable, created_at, updated_at, template_id"
    };
}
macro_rules! member_badge_columns {
    () => {
        "id, badge_id, giver_id, email, status, testimonial, evidence, created_at, updated_at, \
         award_id, addressed_by_email"
    };
}
macro_rules! member_filter {
    () => {
        "($1::text IS NULL OR id IN (SELECT member_id FROM oc_emails WHERE email = lower($1))) \
         AND ($2::text IS NULL OR strpos(lower(display_name || ' ' || first_name || ' ' || \
         last_name), lower($2)) > 0)"
    };
}

fn app(r: &PgRow) -> std::result::Result<OcApp, sqlx::Error> {
    Ok(OcApp {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        api_key: r.try_get("api_key")?,
        secret_hash: r.try_get("secret_hash")?,
        tier: r.try_get("tier")?,
        created_at: r.try_get("created_at")?,
    })
}

fn member(r: &PgRow) -> std::result::Result<OcMember, sqlx::Error> {
    Ok(OcMember {
        id: r.try_get("id")?,
        is_organization: r.try_get("is_organization")?,
        email: r.try_get("email")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        display_name: r.try_get("display_name")?,
        created_at: r.try_get("created_at")?,
        avatar: r.try_get("avatar")?,
    })
}

fn badge(r: &PgRow) -> std::result::Result<OcBadge, sqlx::Error> {
    Ok(OcBadge {
        id: r.try_get("id")?,
        member_id: r.try_get("member_id")?,
        fields: OcBadgeFields {
            title: r.try_get("title")?,
            short_description: r.try_get("short_description")?,
            description: r.try_get("description")?,
            criteria: r.try_get("criteria")?,
            evidence_prompt: r.try_get("evidence_prompt")?,
            image: r.try_get("image")?,
            expires_in: r.try_get("expires_in")?,
            categories: r.try_get("categories")?,
            is_giveable: r.try_get("is_giveable")?,
            template_id: r.try_get("template_id")?,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn email(r: &PgRow) -> std::result::Result<OcEmail, sqlx::Error> {
    Ok(OcEmail {
        member_id: r.try_get("member_id")?,
        email: r.try_get("email")?,
        verified_at: r.try_get("verified_at")?,
    })
}

fn email_taken(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            code: "email_taken",
            detail: "a member already uses this email address".into(),
        }
    } else {
        db(e)
    }
}

fn template_linked(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            code: "template_linked",
            detail: "another badge already stands for this template".into(),
        }
    } else {
        db(e)
    }
}

pub async fn create_app(
    c: &mut PgConnection,
    name: &str,
    api_key: &str,
    secret_hash: &str,
    tier: &str,
) -> Result<OcApp> {
    let row = sqlx::query(concat!(
        "INSERT INTO oc_apps (name, api_key, secret_hash, tier, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING ",
        app_columns!()
    ))
    .bind(text(name))
    .bind(text(api_key))
    .bind(text(secret_hash))
    .bind(text(tier))
    .bind(micros(Utc::now()))
    .fetch_one(c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "oc_app_exists",
                detail: "an app with this key exists".into(),
            }
        } else {
            db(e)
        }
    })?;
    app(&row).map_err(db)
}

pub async fn app_by_key(c: &mut PgConnection, api_key: &str) -> Result<Option<OcApp>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        app_columns!(),
        " FROM oc_apps WHERE api_key = $1"
    ))
    .bind(text(api_key))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(app).transpose().map_err(db)
}

pub async fn set_app_tier(c: &mut PgConnection, which: &str, tier: &str) -> Result<OcApp> {
    let row = sqlx::query(concat!(
        "UPDATE oc_apps SET tier = $2 WHERE api_key = $1 OR id::text = $1 RETURNING ",
        app_columns!()
    ))
    .bind(text(which))
    .bind(text(tier))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    app(&row.ok_or_else(|| StoreError::not_found(Entity::App))?).map_err(db)
}

pub async fn list_apps(c: &mut PgConnection) -> Result<Vec<OcApp>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        app_columns!(),
        " FROM oc_apps ORDER BY id"
    ))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.iter()
        .map(app)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)
}

async fn insert_member(
    c: &mut PgConnection,
    is_organization: bool,
    address: Option<&str>,
    password_hash: Option<&str>,
    names: (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<OcMember> {
    let row = sqlx::query(concat!(
        "INSERT INTO oc_members (is_organization, email, password_hash, first_name, last_name, \
         display_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        member_columns!()
    ))
    .bind(is_organization)
    .bind(opt_text(address))
    .bind(opt_text(password_hash))
    .bind(text(names.0))
    .bind(text(names.1))
    .bind(text(names.2))
    .bind(now)
    .fetch_one(c)
    .await
    .map_err(db)?;
    member(&row).map_err(db)
}

pub async fn register(
    c: &mut PgConnection,
    new: NewOcMember,
) -> Result<(OcMember, Option<OcMember>)> {
    let now = micros(Utc::now());
    let user = insert_member(
        c,
        false,
        Some(&new.email),
        Some(&new.password_hash),
        (&new.first_name, &new.last_name, &new.display_name),
        now,
    )
    .await?;
    release_stale_claim(&mut *c, &new.email, new.verified, now).await?;
    sqlx::query(
        "INSERT INTO oc_emails (email, member_id, verified_at, token_hash, claimed_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(text(&new.email))
    .bind(user.id)
    .bind(new.verified.then_some(now))
    .bind(if new.verified {
        None
    } else {
        new.verify_token_hash.as_deref().map(text)
    })
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(email_taken)?;
    let org = match new.organization_name {
        Some(name) => {
            let org = insert_member(c, true, None, None, ("", "", &name), now).await?;
            sqlx::query("INSERT INTO oc_managers (manager_id, member_id) VALUES ($1, $2)")
                .bind(user.id)
                .bind(org.id)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            Some(org)
        }
        None => None,
    };
    Ok((user, org))
}

pub async fn get_member(c: &mut PgConnection, id: i64) -> Result<Option<OcMember>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        member_columns!(),
        " FROM oc_members WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(member).transpose().map_err(db)
}

pub async fn set_avatar(
    c: &mut PgConnection,
    member_id: i64,
    avatar: Option<&str>,
) -> Result<OcMember> {
    let row = sqlx::query(concat!(
        "UPDATE oc_members SET avatar = $2 WHERE id = $1 RETURNING ",
        member_columns!()
    ))
    .bind(member_id)
    .bind(opt_text(avatar))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    member(&row.ok_or_else(|| StoreError::not_found(Entity::Member))?).map_err(db)
}

pub async fn login(c: &mut PgConnection, address: &str) -> Result<Option<(OcMember, String)>> {
    let row = sqlx::query(
        "SELECT m.id, m.is_organization, m.email, m.first_name, m.last_name, m.display_name, \
         m.created_at, m.avatar, m.password_hash FROM oc_emails e JOIN oc_members m ON m.id = e.member_id \
         WHERE e.email = lower($1) AND m.password_hash IS NOT NULL",
    )
    .bind(text(address))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((
            member(&r).map_err(db)?,
            r.try_get("password_hash").map_err(db)?,
        ))),
    }
}

pub async fn search_members(
    c: &mut PgConnection,
    address: Option<&str>,
    query: Option<&str>,
    page: Page,
) -> Result<(Vec<OcMember>, u64)> {
    let total: i64 = sqlx::query_scalar(concat!(
        "SELECT count(*) FROM oc_members WHERE ",
        member_filter!()
    ))
    .bind(opt_text(address))
    .bind(opt_text(query))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        member_columns!(),
        " FROM oc_members WHERE ",
        member_filter!(),
        " ORDER BY id LIMIT $3 OFFSET $4"
    ))
    .bind(opt_text(address))
    .bind(opt_text(query))
    .bind(i64::from(page.limit))
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    let items = rows
        .iter()
        .map(member)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)?;
    Ok((items, total as u64))
}

pub async fn managed(c: &mut PgConnection, manager_id: i64) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT member_id FROM oc_managers WHERE manager_id = $1 ORDER BY member_id")
        .bind(manager_id)
        .fetch_all(c)
        .await
        .map_err(db)
}

pub async fn member_emails(c: &mut PgConnection, member_id: i64) -> Result<Vec<OcEmail>> {
    let rows = sqlx::query(
        "SELECT member_id, email, verified_at FROM oc_emails WHERE member_id = $1 ORDER BY email",
    )
    .bind(member_id)
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows.iter()
        .map(email)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)
}

pub async fn add_email(
    c: &mut PgConnection,
    member_id: i64,
    address: &str,
    token_hash: &str,
) -> Result<OcEmail> {
    if get_member(&mut *c, member_id).await?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let now = micros(Utc::now());
    release_stale_claim(&mut *c, address, false, now).await?;
    let row = sqlx::query(
        "INSERT INTO oc_emails (email, member_id, token_hash, claimed_at) VALUES ($1, $2, $3, $4) \
         RETURNING member_id, email, verified_at",
    )
    .bind(text(address))
    .bind(member_id)
    .bind(text(token_hash))
    .bind(now)
    .fetch_one(c)
    .await
    .map_err(email_taken)?;
    email(&row).map_err(db)
}

/// Removes an unverified claim on `address` that is older than `UNVERIFIED_CLAIM_DAYS` (or any
/// unverified claim, when the new one is verified), so the new claim can take the address.
async fn release_stale_claim(
    c: &mut PgConnection,
    address: &str,
    verified: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let before = now - chrono::Duration::days(accolade_store::UNVERIFIED_CLAIM_DAYS);
    let released: Option<i64> = sqlx::query_scalar(
        "DELETE FROM oc_emails WHERE email = $1 AND verified_at IS NULL \
         AND ($3 OR claimed_at < $2) RETURNING member_id",
    )
    .bind(text(address))
    .bind(before)
    .bind(verified)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    if let Some(member) = released {
        sqlx::query("UPDATE oc_members SET email = NULL WHERE id = $1 AND email = $2")
            .bind(member)
            .bind(text(address))
            .execute(c)
            .await
            .map_err(db)?;
    }
    Ok(())
}

pub async fn reissue_email_link(
    c: &mut PgConnection,
    member_id: i64,
    address: &str,
    token_hash: &str,
) -> Result<Option<OcEmail>> {
    let row = sqlx::query(
        "UPDATE oc_emails SET token_hash = $3 WHERE member_id = $1 AND email = lower($2) \
         AND verified_at IS NULL RETURNING member_id, email, verified_at",
    )
    .bind(member_id)
    .bind(text(address))
    .bind(text(token_hash))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(email).transpose().map_err(db)
}

pub async fn verify_email(
    c: &mut PgConnection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<OcEmail>> {
    let row = sqlx::query(
        "UPDATE oc_emails SET verified_at = coalesce(verified_at, $2), token_hash = NULL \
         WHERE token_hash = $1 RETURNING member_id, email, verified_at",
    )
    .bind(text(token_hash))
    .bind(micros(now))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(email).transpose().map_err(db)
}

pub async fn create_token(c: &mut PgConnection, t: OcToken) -> Result<()> {
    sqlx::query(
        "INSERT INTO oc_tokens (token_hash, member_id, app_id, kind, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(text(&t.token_hash))
    .bind(t.member_id)
    .bind(t.app_id)
    .bind(text(&t.kind))
    .bind(micros(t.expires_at))
    .execute(c)
    .await
    .map_err(db)?;
    Ok(())
}

pub async fn token(c: &mut PgConnection, token_hash: &str) -> Result<Option<OcToken>> {
    let row = sqlx::query(
        "SELECT token_hash, member_id, app_id, kind, expires_at FROM oc_tokens WHERE token_hash = $1",
    )
    .bind(text(token_hash))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.map(|r| {
        Ok(OcToken {
            token_hash: r.try_get("token_hash")?,
            member_id: r.try_get("member_id")?,
            app_id: r.try_get("app_id")?,
            kind: r.try_get("kind")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
    .map_err(db)
}

/// Binds $2..$12 of the badge insert and update: the fields, the time, the template link.
fn bind_fields<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    f: &'q OcBadgeFields,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(text(&f.title))
        .bind(text(&f.short_description))
        .bind(text(&f.description))
        .bind(text(&f.criteria))
        .bind(text(&f.evidence_prompt))
        .bind(opt_text(f.image.as_deref()))
        .bind(f.expires_in)
        .bind(text(&f.categories))
        .bind(f.is_giveable)
        .bind(micros(Utc::now()))
        .bind(opt_text(f.template_id.as_deref()))
}

pub async fn create_badge(
    c: &mut PgConnection,
    member_id: i64,
    f: OcBadgeFields,
) -> Result<OcBadge> {
    if get_member(&mut *c, member_id).await?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let query = sqlx::query(concat!(
        "INSERT INTO oc_badges (member_id, title, short_description, description, criteria, \
         evidence_prompt, image, expires_in, categories, is_giveable, created_at, updated_at, \
         template_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) RETURNING ",
        badge_columns!()
    ))
    .bind(member_id);
    let row = bind_fields(query, &f)
        .fetch_one(c)
        .await
        .map_err(template_linked)?;
    badge(&row).map_err(db)
}

pub async fn update_badge(c: &mut PgConnection, id: i64, f: OcBadgeFields) -> Result<OcBadge> {
    let query = sqlx::query(concat!(
        "UPDATE oc_badges SET title = $2, short_description = $3, description = $4, \
         criteria = $5, evidence_prompt = $6, image = $7, expires_in = $8, categories = $9, \
         is_giveable = $10, updated_at = $11, template_id = $12 WHERE id = $1 RETURNING ",
        badge_columns!()
    ))
    .bind(id);
    let row = bind_fields(query, &f)
        .fetch_optional(c)
        .await
        .map_err(template_linked)?;
    badge(&row.ok_or_else(|| StoreError::not_found(Entity::Badge))?).map_err(db)
}

pub async fn get_badge(c: &mut PgConnection, id: i64) -> Result<Option<OcBadge>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        badge_columns!(),
        " FROM oc_badges WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(badge).transpose().map_err(db)
}

pub async fn list_badges(
    c: &mut PgConnection,
    member_id: Option<i64>,
    page: Page,
) -> Result<(Vec<OcBadge>, u64)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM oc_badges WHERE $1::bigint IS NULL OR member_id = $1",
    )
    .bind(member_id)
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        badge_columns!(),
        " FROM oc_badges WHERE $1::bigint IS NULL OR member_id = $1 \
         ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(member_id)
    .bind(i64::from(page.limit))
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    let items = rows
        .iter()
        .map(badge)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)?;
    Ok((items, total as u64))
}

pub async fn delete_badge(c: &mut PgConnection, id: i64) -> Result<bool> {
    let given: i64 =
        sqlx::query_scalar("SELECT count(*) FROM oc_member_badges WHERE badge_id = $1")
            .bind(id)
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
    if given > 0 {
        return Err(StoreError::Conflict {
            code: "badge_given",
            detail: format!(
                "the badge was given {given} times; given badges are never deleted with it"
            ),
        });
    }
    let done = sqlx::query("DELETE FROM oc_badges WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

fn member_badge(r: &PgRow) -> std::result::Result<OcMemberBadge, sqlx::Error> {
    Ok(OcMemberBadge {
        id: r.try_get("id")?,
        badge_id: r.try_get("badge_id")?,
        giver_id: r.try_get("giver_id")?,
        email: r.try_get("email")?,
        status: r.try_get("status")?,
        testimonial: r.try_get("testimonial")?,
        evidence: r.try_get("evidence")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        award_id: r.try_get("award_id")?,
        addressed_by_email: r.try_get("addressed_by_email")?,
    })
}

pub async fn get_email(c: &mut PgConnection, address: &str) -> Result<Option<OcEmail>> {
    let row =
        sqlx::query("SELECT member_id, email, verified_at FROM oc_emails WHERE email = lower($1)")
            .bind(text(address))
            .fetch_optional(c)
            .await
            .map_err(db)?;
    row.as_ref().map(email).transpose().map_err(db)
}

pub async fn give(c: &mut PgConnection, new: NewOcMemberBadge) -> Result<OcMemberBadge> {
    if get_badge(&mut *c, new.badge_id).await?.is_none() {
        return Err(StoreError::not_found(Entity::Badge));
    }
    if get_member(&mut *c, new.giver_id).await?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let row = sqlx::query(concat!(
        "INSERT INTO oc_member_badges (badge_id, giver_id, email, status, testimonial, evidence, \
         created_at, updated_at, addressed_by_email) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $6, $7) RETURNING ",
        member_badge_columns!()
    ))
    .bind(new.badge_id)
    .bind(new.giver_id)
    .bind(text(&new.email))
    .bind(text(&new.testimonial))
    .bind(text(&new.evidence))
    .bind(micros(Utc::now()))
    .bind(new.addressed_by_email)
    .fetch_one(c)
    .await
    .map_err(db)?;
    member_badge(&row).map_err(db)
}

pub async fn get_member_badge(c: &mut PgConnection, id: i64) -> Result<Option<OcMemberBadge>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        member_badge_columns!(),
        " FROM oc_member_badges WHERE id = $1 AND status <> 'deleted'"
    ))
    .bind(id)
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(member_badge).transpose().map_err(db)
}

pub async fn member_badges(
    c: &mut PgConnection,
    member_id: i64,
    status: Option<&str>,
    page: Page,
) -> Result<(Vec<OcMemberBadge>, u64)> {
    // Only verified addresses make a member the recipient; deleted award badges are tombstones.
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM oc_member_badges WHERE email IN \
         (SELECT email FROM oc_emails WHERE member_id = $1 AND verified_at IS NOT NULL) \
         AND status <> 'deleted' AND ($2::text IS NULL OR status = $2)",
    )
    .bind(member_id)
    .bind(opt_text(status))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        member_badge_columns!(),
        " FROM oc_member_badges WHERE email IN (SELECT email FROM oc_emails WHERE member_id = $1 \
         AND verified_at IS NOT NULL) AND status <> 'deleted' \
         AND ($2::text IS NULL OR status = $2) ORDER BY id LIMIT $3 OFFSET $4"
    ))
    .bind(member_id)
    .bind(opt_text(status))
    .bind(i64::from(page.limit))
    .bind(page.offset as i64)
    .fetch_all(c)
    .await
    .map_err(db)?;
    let items = rows
        .iter()
        .map(member_badge)
        .collect::<std::result::Result<_, _>>()
        .map_err(db)?;
    Ok((items, total as u64))
}

pub async fn set_member_badge_status(
    c: &mut PgConnection,
    id: i64,
    status: &str,
) -> Result<OcMemberBadge> {
    let row = sqlx::query(concat!(
        "UPDATE oc_member_badges SET status = $2, updated_at = $3 WHERE id = $1 \
         AND status <> 'deleted' RETURNING ",
        member_badge_columns!()
    ))
    .bind(id)
    .bind(text(status))
    .bind(micros(Utc::now()))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    member_badge(&row.ok_or_else(|| StoreError::not_found(Entity::MemberBadge))?).map_err(db)
}

pub async fn delete_member_badge(c: &mut PgConnection, id: i64) -> Result<bool> {
    // A badge given for an award stays as a tombstone, so the award bridge does not give it
    // again; others are deleted.
    let done = sqlx::query(
        "UPDATE oc_member_badges SET status = 'deleted', updated_at = $2 \
         WHERE id = $1 AND award_id IS NOT NULL AND status <> 'deleted'",
    )
    .bind(id)
    .bind(micros(Utc::now()))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    if done.rows_affected() > 0 {
        return Ok(true);
    }
    let done = sqlx::query("DELETE FROM oc_member_badges WHERE id = $1 AND award_id IS NULL")
        .bind(id)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub async fn sync_awards(c: &mut PgConnection, limit: u32) -> Result<OcAwardSync> {
    let given = sqlx::query(
        "INSERT INTO oc_member_badges (badge_id, giver_id, email, status, testimonial, evidence, \
         created_at, updated_at, award_id) \
         SELECT b.id, b.member_id, lower(l.email), 'pending', '', '', $1, $1, a.id \
         FROM oc_badges b \
         JOIN awards a ON a.template_id = b.template_id AND a.state <> 'revoked' \
         JOIN learners l ON l.username = a.learner \
         WHERE b.template_id IS NOT NULL AND coalesce(l.email, '') <> '' \
         AND NOT EXISTS (SELECT 1 FROM oc_member_badges m WHERE m.award_id = a.id) \
         LIMIT $2 ON CONFLICT (award_id) DO NOTHING",
    )
    .bind(micros(Utc::now()))
    .bind(i64::from(limit))
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();
    let withdrawn = sqlx::query(
        "DELETE FROM oc_member_badges m USING awards a \
         WHERE m.award_id = a.id AND a.state = 'revoked'",
    )
    .execute(c)
    .await
    .map_err(db)?
    .rows_affected();
    Ok(OcAwardSync { given, withdrawn })
}
