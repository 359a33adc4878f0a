//! Records of the Open Credit-style API on SQLite (apps, members, addresses, tokens, badges).
//!
//! Ids are rowids. Every function runs in the transaction the store opened for it, so a
//! registration's user, organization, addresses and management link commit together.

use accolade_store::Entity;
use accolade_store::{
    NewOcMember, NewOcMemberBadge, OcApp, OcAwardSync, OcBadge, OcBadgeFields, OcEmail, OcMember,
    OcMemberBadge, OcToken, Page, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::rows::{db, is_unique_violation, opt_ts, parse_ts, ts};

type Result<T> = std::result::Result<T, StoreError>;

const APP_COLUMNS: &str = "id, name, api_key, secret_hash, tier, created_at";
const MEMBER_COLUMNS: &str =
    "id, is_organization, email, first_name, last_name, display_name, created_at, avatar";
const BADGE_COLUMNS: &str = "id, member_id, title, short_description, description, criteria, \
     evidence_prompt, image, expires_in, categories, is_giveable, created_at, updated_at, \
     template_id";

fn app(r: &Row<'_>) -> rusqlite::Result<OcApp> {
    Ok(OcApp {
        id: r.get(0)?,
        name: r.get(1)?,
        api_key: r.get(2)?,
        secret_hash: r.get(3)?,
        tier: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
    })
}

fn member(r: &Row<'_>) -> rusqlite::Result<OcMember> {
    Ok(OcMember {
        id: r.get(0)?,
        is_organization: r.get(1)?,
        email: r.get(2)?,
        first_name: r.get(3)?,
        last_name: r.get(4)?,
        display_name: r.get(5)?,
        created_at: parse_ts(&r.get::<_, String>(6)?)?,
        avatar: r.get(7)?,
    })
}

fn badge(r: &Row<'_>) -> rusqlite::Result<OcBadge> {
    Ok(OcBadge {
        id: r.get(0)?,
        member_id: r.get(1)?,
        fields: OcBadgeFields {
            title: r.get(2)?,
            short_description: r.get(3)?,
            description: r.get(4)?,
            criteria: r.get(5)?,
            evidence_prompt: r.get(6)?,
            image: r.get(7)?,
            expires_in: r.get(8)?,
            categories: r.get(9)?,
            is_giveable: r.get(10)?,
            template_id: r.get(13)?,
        },
        created_at: parse_ts(&r.get::<_, String>(11)?)?,
        updated_at: parse_ts(&r.get::<_, String>(12)?)?,
    })
}

fn email(r: &Row<'_>) -> rusqlite::Result<OcEmail> {
    Ok(OcEmail {
        member_id: r.get(0)?,
        email: r.get(1)?,
        verified_at: opt_ts(r.get(2)?)?,
    })
}

fn email_taken(e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            code: "email_taken",
            detail: "a member already uses this email address".into(),
        }
    } else {
        db(e)
    }
}

fn template_linked(e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            code: "template_linked",
            detail: "another badge already stands for this template".into(),
        }
    } else {
        db(e)
    }
}

pub fn create_app(
    c: &Connection,
    name: &str,
    api_key: &str,
    secret_hash: &str,
    tier: &str,
) -> Result<OcApp> {
    c.query_row(
        &format!(
            "INSERT INTO oc_apps (name, api_key, secret_hash, tier, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {APP_COLUMNS}"
        ),
        params![name, api_key, secret_hash, tier, ts(Utc::now())],
        app,
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "oc_app_exists",
                detail: "an app with this key exists".into(),
            }
        } else {
            db(e)
        }
    })
}

pub fn app_by_key(c: &Connection, api_key: &str) -> Result<Option<OcApp>> {
    c.prepare_cached(&format!(
        "SELECT {APP_COLUMNS} FROM oc_apps WHERE api_key = ?1"
    ))
    .and_then(|mut s| s.query_row([api_key], app).optional())
    .map_err(db)
}

pub fn set_app_tier(c: &Connection, which: &str, tier: &str) -> Result<OcApp> {
    c.query_row(
        &format!(
            "UPDATE oc_apps SET tier = ?2 WHERE api_key = ?1 OR CAST(id AS TEXT) = ?1 \
             RETURNING {APP_COLUMNS}"
        ),
        params![which, tier],
        app,
    )
    .optional()
    .map_err(db)?
    .ok_or_else(|| StoreError::not_found(Entity::App))
}

pub fn list_apps(c: &Connection) -> Result<Vec<OcApp>> {
    let mut s = c
        .prepare(&format!("SELECT {APP_COLUMNS} FROM oc_apps ORDER BY id"))
        .map_err(db)?;
    let rows = s.query_map([], app).map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

fn insert_member(
    c: &Connection,
    is_organization: bool,
    email: Option<&str>,
    password_hash: Option<&str>,
    names: (&str, &str, &str),
    now: &str,
) -> Result<OcMember> {
    c.query_row(
        &format!(
            "INSERT INTO oc_members (is_organization, email, password_hash, first_name, \
             last_name, display_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             RETURNING {MEMBER_COLUMNS}"
        ),
        params![
            is_organization,
            email,
            password_hash,
            names.0,
            names.1,
            names.2,
            now
        ],
        member,
    )
    .map_err(db)
}

pub fn register(c: &Connection, new: NewOcMember) -> Result<(OcMember, Option<OcMember>)> {
    let now = Utc::now();
    let now_text = ts(now);
    let user = insert_member(
        c,
        false,
        Some(&new.email),
        Some(&new.password_hash),
        (&new.first_name, &new.last_name, &new.display_name),
        &now_text,
    )?;
    release_stale_claim(c, &new.email, new.verified, now)?;
    c.execute(
        "INSERT INTO oc_emails (email, member_id, verified_at, token_hash, claimed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            new.email,
            user.id,
            new.verified.then(|| now_text.clone()),
            if new.verified {
                None
            } else {
                new.verify_token_hash
            },
            now_text,
        ],
    )
    .map_err(email_taken)?;
    let org = match new.organization_name {
        Some(name) => {
            let org = insert_member(c, true, None, None, ("", "", &name), &now_text)?;
            c.execute(
                "INSERT INTO oc_managers (manager_id, member_id) VALUES (?1, ?2)",
                params![user.id, org.id],
            )
            .map_err(db)?;
            Some(org)
        }
        None => None,
    };
    Ok((user, org))
}

pub fn get_member(c: &Connection, id: i64) -> Result<Option<OcMember>> {
    c.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM oc_members WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], member).optional())
    .map_err(db)
}

pub fn set_avatar(c: &Connection, member_id: i64, avatar: Option<&str>) -> Result<OcMember> {
    c.query_row(
        &format!("UPDATE oc_members SET avatar = ?2 WHERE id = ?1 RETURNING {MEMBER_COLUMNS}"),
        params![member_id, avatar],
        member,
    )
    .optional()
    .map_err(db)?
    .ok_or_else(|| StoreError::not_found(Entity::Member))
}

pub fn login(c: &Connection, address: &str) -> Result<Option<(OcMember, String)>> {
    c.query_row(
        "SELECT m.id, m.is_organization, m.email, m.first_name, m.last_name, m.display_name, \
         m.created_at, m.avatar, m.password_hash FROM oc_emails e \
         JOIN oc_members m ON m.id = e.member_id \
         WHERE e.email = fold(?1) AND m.password_hash IS NOT NULL",
        [address],
        |r| Ok((member(r)?, r.get::<_, String>(8)?)),
    )
    .optional()
    .map_err(db)
}

pub fn search_members(
    c: &Connection,
    address: Option<&str>,
    query: Option<&str>,
    page: Page,
) -> Result<(Vec<OcMember>, u64)> {
    let filter = "(?1 IS NULL OR m.id IN (SELECT member_id FROM oc_emails WHERE email = fold(?1))) \
         AND (?2 IS NULL OR instr(fold(m.display_name || ' ' || m.first_name || ' ' || m.last_name), fold(?2)) > 0)";
    let total: i64 = c
        .query_row(
            &format!("SELECT count(*) FROM oc_members m WHERE {filter}"),
            params![address, query],
            |r| r.get(0),
        )
        .map_err(db)?;
    let mut s = c
        .prepare(&format!(
            "SELECT {} FROM oc_members m WHERE {filter} ORDER BY m.id LIMIT ?3 OFFSET ?4",
            MEMBER_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .map_err(db)?;
    let rows = s
        .query_map(
            params![address, query, page.limit, page.offset as i64],
            member,
        )
        .map_err(db)?;
    let items = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
    Ok((items, total as u64))
}

pub fn managed(c: &Connection, manager_id: i64) -> Result<Vec<i64>> {
    let mut s = c
        .prepare_cached(
            "SELECT member_id FROM oc_managers WHERE manager_id = ?1 ORDER BY member_id",
        )
        .map_err(db)?;
    let rows = s.query_map([manager_id], |r| r.get(0)).map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub fn member_emails(c: &Connection, member_id: i64) -> Result<Vec<OcEmail>> {
    let mut s = c
        .prepare_cached(
            "SELECT member_id, email, verified_at FROM oc_emails WHERE member_id = ?1 ORDER BY email",
        )
        .map_err(db)?;
    let rows = s.query_map([member_id], email).map_err(db)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db)
}

pub fn add_email(
    c: &Connection,
    member_id: i64,
    address: &str,
    token_hash: &str,
) -> Result<OcEmail> {
    if get_member(c, member_id)?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let now = Utc::now();
    release_stale_claim(c, address, false, now)?;
    c.query_row(
        "INSERT INTO oc_emails (email, member_id, token_hash, claimed_at) VALUES (?1, ?2, ?3, ?4) \
         RETURNING member_id, email, verified_at",
        params![address, member_id, token_hash, ts(now)],
        email,
    )
    .map_err(email_taken)
}

/// Removes an unverified claim on `address` that is older than [`UNVERIFIED_CLAIM_DAYS`] (or
/// any unverified claim, when the new one is verified), so the new claim can take the address.
fn release_stale_claim(
    c: &Connection,
    address: &str,
    verified: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let before = ts(now - chrono::Duration::days(accolade_store::UNVERIFIED_CLAIM_DAYS));
    let released: Option<i64> = c
        .query_row(
            "DELETE FROM oc_emails WHERE email = ?1 AND verified_at IS NULL \
             AND (?3 OR claimed_at < ?2) RETURNING member_id",
            params![address, before, verified],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    if let Some(member) = released {
        c.execute(
            "UPDATE oc_members SET email = NULL WHERE id = ?1 AND email = ?2",
            params![member, address],
        )
        .map_err(db)?;
    }
    Ok(())
}

pub fn reissue_email_link(
    c: &Connection,
    member_id: i64,
    address: &str,
    token_hash: &str,
) -> Result<Option<OcEmail>> {
    c.query_row(
        "UPDATE oc_emails SET token_hash = ?3 WHERE member_id = ?1 AND email = fold(?2) \
         AND verified_at IS NULL RETURNING member_id, email, verified_at",
        params![member_id, address, token_hash],
        email,
    )
    .optional()
    .map_err(db)
}

pub fn verify_email(
    c: &Connection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<OcEmail>> {
    c.query_row(
        "UPDATE oc_emails SET verified_at = coalesce(verified_at, ?2), token_hash = NULL \
         WHERE token_hash = ?1 RETURNING member_id, email, verified_at",
        params![token_hash, ts(now)],
        email,
    )
    .optional()
    .map_err(db)
}

pub fn create_token(c: &Connection, t: OcToken) -> Result<()> {
    c.execute(
        "INSERT INTO oc_tokens (token_hash, member_id, app_id, kind, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            t.token_hash,
            t.member_id,
            t.app_id,
            t.kind,
            ts(t.expires_at)
        ],
    )
    .map_err(db)?;
    Ok(())
}

pub fn token(c: &Connection, token_hash: &str) -> Result<Option<OcToken>> {
    c.prepare_cached(
        "SELECT token_hash, member_id, app_id, kind, expires_at FROM oc_tokens WHERE token_hash = ?1",
    )
    .and_then(|mut s| {
        s.query_row([token_hash], |r| {
            Ok(OcToken {
                token_hash: r.get(0)?,
                member_id: r.get(1)?,
                app_id: r.get(2)?,
                kind: r.get(3)?,
                expires_at: parse_ts(&r.get::<_, String>(4)?)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

pub fn create_badge(c: &Connection, member_id: i64, f: OcBadgeFields) -> Result<OcBadge> {
    if get_member(c, member_id)?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let now = ts(Utc::now());
    c.query_row(
        &format!(
            "INSERT INTO oc_badges (member_id, title, short_description, description, criteria, \
             evidence_prompt, image, expires_in, categories, is_giveable, created_at, updated_at, \
             template_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12) \
             RETURNING {BADGE_COLUMNS}"
        ),
        params![
            member_id,
            f.title,
            f.short_description,
            f.description,
            f.criteria,
            f.evidence_prompt,
            f.image,
            f.expires_in,
            f.categories,
            f.is_giveable,
            now,
            f.template_id
        ],
        badge,
    )
    .map_err(template_linked)
}

pub fn update_badge(c: &Connection, id: i64, f: OcBadgeFields) -> Result<OcBadge> {
    c.query_row(
        &format!(
            "UPDATE oc_badges SET title = ?2, short_description = ?3, description = ?4, \
             criteria = ?5, evidence_prompt = ?6, image = ?7, expires_in = ?8, categories = ?9, \
             is_giveable = ?10, updated_at = ?11, template_id = ?12 WHERE id = ?1 \
             RETURNING {BADGE_COLUMNS}"
        ),
        params![
            id,
            f.title,
            f.short_description,
            f.description,
            f.criteria,
            f.evidence_prompt,
            f.image,
            f.expires_in,
            f.categories,
            f.is_giveable,
            ts(Utc::now()),
            f.template_id
        ],
        badge,
    )
    .optional()
    .map_err(template_linked)?
    .ok_or_else(|| StoreError::not_found(Entity::Badge))
}

pub fn get_badge(c: &Connection, id: i64) -> Result<Option<OcBadge>> {
    c.prepare_cached(&format!(
        "SELECT {BADGE_COLUMNS} FROM oc_badges WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], badge).optional())
    .map_err(db)
}

pub fn list_badges(
    c: &Connection,
    member_id: Option<i64>,
    page: Page,
) -> Result<(Vec<OcBadge>, u64)> {
    let total: i64 = c
        .query_row(
            "SELECT count(*) FROM oc_badges WHERE ?1 IS NULL OR member_id = ?1",
            [member_id],
            |r| r.get(0),
        )
        .map_err(db)?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {BADGE_COLUMNS} FROM oc_badges WHERE ?1 IS NULL OR member_id = ?1 \
             ORDER BY id LIMIT ?2 OFFSET ?3"
        ))
        .map_err(db)?;
    let rows = s
        .query_map(params![member_id, page.limit, page.offset as i64], badge)
        .map_err(db)?;
    let items = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
    Ok((items, total as u64))
}

pub fn delete_badge(c: &Connection, id: i64) -> Result<bool> {
    let given: i64 = c
        .query_row(
            "SELECT count(*) FROM oc_member_badges WHERE badge_id = ?1",
            [id],
            |r| r.get(0),
        )
        .map_err(db)?;
    if given > 0 {
        return Err(StoreError::Conflict {
            code: "badge_given",
            detail: format!(
                "the badge was given {given} times; given badges are never deleted with it"
            ),
        });
    }
    let n = c
        .execute("DELETE FROM oc_badges WHERE id = ?1", [id])
        .map_err(db)?;
    Ok(n > 0)
}

const MEMBER_BADGE_COLUMNS: &str = "id, badge_id, giver_id, email, status, testimonial, \
     evidence, created_at, updated_at, award_id, addressed_by_email";

fn member_badge(r: &Row<'_>) -> rusqlite::Result<OcMemberBadge> {
    Ok(OcMemberBadge {
        id: r.get(0)?,
        badge_id: r.get(1)?,
        giver_id: r.get(2)?,
        email: r.get(3)?,
        status: r.get(4)?,
        testimonial: r.get(5)?,
        evidence: r.get(6)?,
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
        updated_at: parse_ts(&r.get::<_, String>(8)?)?,
        award_id: r.get(9)?,
        addressed_by_email: r.get(10)?,
    })
}

pub fn get_email(c: &Connection, address: &str) -> Result<Option<OcEmail>> {
    c.prepare_cached("SELECT member_id, email, verified_at FROM oc_emails WHERE email = fold(?1)")
        .and_then(|mut s| s.query_row([address], email).optional())
        .map_err(db)
}

pub fn give(c: &Connection, new: NewOcMemberBadge) -> Result<OcMemberBadge> {
    if get_badge(c, new.badge_id)?.is_none() {
        return Err(StoreError::not_found(Entity::Badge));
    }
    if get_member(c, new.giver_id)?.is_none() {
        return Err(StoreError::not_found(Entity::Member));
    }
    let now = ts(Utc::now());
    c.query_row(
        &format!(
            "INSERT INTO oc_member_badges (badge_id, giver_id, email, status, testimonial, \
             evidence, created_at, updated_at, addressed_by_email) \
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?6, ?7) RETURNING {MEMBER_BADGE_COLUMNS}"
        ),
        params![
            new.badge_id,
            new.giver_id,
            new.email,
            new.testimonial,
            new.evidence,
            now,
            new.addressed_by_email
        ],
        member_badge,
    )
    .map_err(db)
}

pub fn get_member_badge(c: &Connection, id: i64) -> Result<Option<OcMemberBadge>> {
    c.prepare_cached(&format!(
        "SELECT {MEMBER_BADGE_COLUMNS} FROM oc_member_badges WHERE id = ?1 AND status <> 'deleted'"
    ))
    .and_then(|mut s| s.query_row([id], member_badge).optional())
    .map_err(db)
}

pub fn member_badges(
    c: &Connection,
    member_id: i64,
    status: Option<&str>,
    page: Page,
) -> Result<(Vec<OcMemberBadge>, u64)> {
    // Only verified addresses make a member the recipient (an unverified one may be a claim
    // on somebody else's address); deleted award badges are tombstones, never listed.
    let filter = "email IN (SELECT email FROM oc_emails WHERE member_id = ?1 \
                  AND verified_at IS NOT NULL) AND status <> 'deleted' \
                  AND (?2 IS NULL OR status = ?2)";
    let total: i64 = c
        .query_row(
            &format!("SELECT count(*) FROM oc_member_badges WHERE {filter}"),
            params![member_id, status],
            |r| r.get(0),
        )
        .map_err(db)?;
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {MEMBER_BADGE_COLUMNS} FROM oc_member_badges WHERE {filter} \
             ORDER BY id LIMIT ?3 OFFSET ?4"
        ))
        .map_err(db)?;
    let rows = s
        .query_map(
            params![member_id, status, page.limit, page.offset as i64],
            member_badge,
        )
        .map_err(db)?;
    let items = rows.collect::<rusqlite::Result<_>>().map_err(db)?;
    Ok((items, total as u64))
}

pub fn set_member_badge_status(c: &Connection, id: i64, status: &str) -> Result<OcMemberBadge> {
    c.query_row(
        &format!(
            "UPDATE oc_member_badges SET status = ?2, updated_at = ?3 WHERE id = ?1 \
             AND status <> 'deleted' RETURNING {MEMBER_BADGE_COLUMNS}"
        ),
        params![id, status, ts(Utc::now())],
        member_badge,
    )
    .optional()
    .map_err(db)?
    .ok_or_else(|| StoreError::not_found(Entity::MemberBadge))
}

pub fn delete_member_badge(c: &Connection, id: i64) -> Result<bool> {
    // A badge given for an award stays as a tombstone, so the award bridge does not give it
    // again; others are deleted.
    let n = c
        .execute(
            "UPDATE oc_member_badges SET status = 'deleted', updated_at = ?2 \
             WHERE id = ?1 AND award_id IS NOT NULL AND status <> 'deleted'",
            params![id, ts(Utc::now())],
        )
        .map_err(db)?;
    if n > 0 {
        return Ok(true);
    }
    let n = c
        .execute(
            "DELETE FROM oc_member_badges WHERE id = ?1 AND award_id IS NULL",
            [id],
        )
        .map_err(db)?;
    Ok(n > 0)
}

/// One member badge per unrevoked award of a linked template that has none yet (?1 = now,
/// ?2 = limit).
const GIVE_FOR_AWARDS: &str = "INSERT INTO oc_member_badges (badge_id, giver_id, email, status, \
     testimonial, evidence, created_at, updated_at, award_id) \
     SELECT b.id, b.member_id, fold(l.email), 'pending', '', '', ?1, ?1, a.id \
     FROM oc_badges b \
     CROSS JOIN awards a ON a.template_id = b.template_id AND a.state <> 'revoked' \
     JOIN learners l ON l.username = a.learner \
     WHERE b.template_id IS NOT NULL AND coalesce(l.email, '') <> '' \
     AND NOT EXISTS (SELECT 1 FROM oc_member_badges m WHERE m.award_id = a.id) \
     LIMIT ?2";

pub fn sync_awards(c: &Connection, limit: u32) -> Result<OcAwardSync> {
    let now = ts(Utc::now());
    // Linked badges first (CROSS JOIN fixes the order in SQLite), then their templates' awards
    // from the partial index awards_one_active (template_id, learner) WHERE state <> 'revoked'.
    // Left to itself the planner scanned every award on every pass, under the write lock.
    let given = c
        .execute(GIVE_FOR_AWARDS, params![now, limit])
        .map_err(db)?;
    let withdrawn = c
        .execute(
            "DELETE FROM oc_member_badges WHERE award_id IS NOT NULL AND award_id IN \
             (SELECT a.id FROM awards a WHERE a.id = oc_member_badges.award_id \
              AND a.state = 'revoked')",
            [],
        )
        .map_err(db)?;
    Ok(OcAwardSync {
        given: given as u64,
        withdrawn: withdrawn as u64,
    })
}

#[cfg(test)]
mod tests {
    /// The award bridge's pass starts from the (few) linked badges, never from all awards.
    #[test]
    fn the_award_bridge_does_not_scan_awards() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrate::run(&mut c).unwrap();
        crate::register_functions(&c).unwrap();
        c.execute_batch("ANALYZE").unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", super::GIVE_FOR_AWARDS);
        let plan: Vec<String> = c
            .prepare(&sql)
            .unwrap()
            .query_map(rusqlite::params!["now", 10], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(plan.iter().all(|s| !s.starts_with("SCAN a")), "{plan:?}");
        assert!(
            plan.iter()
                .any(|s| s.contains("SEARCH a USING INDEX awards_one_active")),
            "{plan:?}"
        );
    }
}
