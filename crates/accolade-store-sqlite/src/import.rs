//! Imports (`ImportStore`): one organization's share in one transaction, every row inserted only
//! when missing (`INSERT OR IGNORE` on the row's key), so a repeated import changes nothing.

use accolade_store::{ImportCounts, ImportPart, StoreError};
use rusqlite::{params, Connection};

use crate::config::bump_version;
use crate::rows::{db, rules_json, ts};

type Result<T> = std::result::Result<T, StoreError>;

pub fn import_part(c: &Connection, p: &ImportPart) -> Result<ImportCounts> {
    let mut n = ImportCounts::default();
    let now = ts(p.now);
    let org = &p.organization;
    n.organizations = c
        .execute(
            "INSERT OR IGNORE INTO credly_organizations (id, name, api_key_ciphertext, \
             api_key_last4, key_created_at, key_expires_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                org.id,
                org.name,
                org.key.ciphertext,
                org.key.last4,
                ts(org.key.created_at),
                ts(org.key.expires_at),
                now
            ],
        )
        .map_err(db)? as u64;

    let mut template = c
        .prepare_cached(
            "INSERT OR IGNORE INTO templates (id, name, description, image_url, origin, \
             provider_state, is_active, allow_reaward, organization_id, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        )
        .map_err(db)?;
    let mut requirement = c
        .prepare_cached(
            "INSERT OR IGNORE INTO requirements (id, template_id, key, event_type, description, \
             group_letter, rules, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(db)?;
    let mut penalty = c
        .prepare_cached(
            "INSERT OR IGNORE INTO penalties (id, template_id, key, event_type, description, \
             rules, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(db)?;
    let mut link = c
        .prepare_cached(
            "INSERT OR IGNORE INTO penalty_requirements (penalty_id, requirement_id) VALUES (?1, ?2)",
        )
        .map_err(db)?;
    for tc in &p.templates {
        let t = &tc.template;
        n.templates += template
            .execute(params![
                t.id,
                t.name,
                t.description,
                t.image_url,
                t.origin.as_str(),
                t.provider_state,
                t.is_active,
                t.allow_reaward,
                t.organization_id,
                now
            ])
            .map_err(db)? as u64;
        for r in &tc.requirements {
            n.requirements += requirement
                .execute(params![
                    r.id,
                    t.id,
                    r.key,
                    r.event_type,
                    r.description,
                    r.group.to_string(),
                    rules_json(&r.rules),
                    now
                ])
                .map_err(db)? as u64;
        }
        for pe in &tc.penalties {
            let created = penalty
                .execute(params![
                    pe.id,
                    t.id,
                    pe.key,
                    pe.event_type,
                    pe.description,
                    rules_json(&pe.rules),
                    now
                ])
                .map_err(db)?;
            n.penalties += created as u64;
            for rid in &pe.requirement_ids {
                link.execute(params![pe.id, rid]).map_err(db)?;
            }
        }
    }
    if n.templates + n.requirements + n.penalties > 0 {
        bump_version(c)?;
    }

    let mut learner = c
        .prepare_cached(
            "INSERT OR IGNORE INTO learners (username, lms_user_id, email, name, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .map_err(db)?;
    for l in &p.learners {
        n.learners += learner
            .execute(params![l.username, l.lms_user_id, l.email, l.name, now])
            .map_err(db)? as u64;
    }
    let mut fulfil = c
        .prepare_cached(
            "INSERT OR IGNORE INTO fulfillments (learner, template_id, requirement_id, event_id, fulfilled_at) \
             VALUES (?1, ?2, ?3, NULL, ?4)",
        )
        .map_err(db)?;
    for (l, t, r) in &p.fulfilments {
        n.fulfilments += fulfil
            .execute(params![l.as_ref(), t.as_ref(), r.as_ref(), now])
            .map_err(db)? as u64;
    }
    // The event path reads no fulfilments for a learner without an event (`last_event_seq`
    // NULL: they cannot have any). Imported progress has no event: the head 0, which names no
    // event and ends every chain walk, marks it as there to be read.
    let mut mark = c
        .prepare_cached(
            "UPDATE learners SET last_event_seq = 0 WHERE username = ?1 AND last_event_seq IS NULL",
        )
        .map_err(db)?;
    for l in &p.learners {
        mark.execute([&l.username]).map_err(db)?;
    }

    // Awards: skipped when the id or the Credly id is known; the partial unique index
    // (one unrevoked award per learner and template) makes OR IGNORE skip a held one too.
    let mut known = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM awards WHERE id = ?1) \
             OR EXISTS (SELECT 1 FROM awards WHERE external_id = ?2)",
        )
        .map_err(db)?;
    let mut award = c
        .prepare_cached(
            "INSERT OR IGNORE INTO awards (id, template_id, learner, episode, state, earned_at, \
             awarded_at, issued_at, revoked_at, revoke_reason, event_id, external_id, \
             external_state, updated_at) \
             VALUES (?1, ?2, ?3, \
               (SELECT coalesce(max(episode), 0) + 1 FROM awards WHERE learner = ?3 AND template_id = ?2), \
               ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12)",
        )
        .map_err(db)?;
    for a in &p.awards {
        let exists: bool = known
            .query_row(params![a.id, a.external_id], |r| r.get(0))
            .map_err(db)?;
        if exists {
            continue;
        }
        let created = award
            .execute(params![
                a.id,
                a.template_id,
                a.learner,
                a.state.as_str(),
                ts(a.earned_at),
                ts(a.awarded_at),
                a.issued_at.map(ts),
                a.revoked_at.map(ts),
                a.revoke_reason,
                a.external_id,
                a.external_state,
                now
            ])
            .map_err(db)?;
        if created == 1 {
            n.awards += 1;
        } else {
            n.awards_held_already += 1;
        }
    }
    Ok(n)
}
