//! Imports (`ImportStore`): one organization's share in one transaction, every row inserted only
//! when missing (`ON CONFLICT DO NOTHING`), so a repeated import changes nothing. The large sets
//! (learners, fulfilments, awards) go in as arrays, one statement per chunk, not a round trip per
//! row.

use accolade_store::{ImportCounts, ImportPart, StoreError};
use sqlx::PgConnection;

use crate::config::bump_version;
use crate::rows::{self, db, micros, opt_text, text};

type Result<T> = std::result::Result<T, StoreError>;

/// Rows per array statement: bounds the message size of one statement.
const CHUNK: usize = 20_000;

pub async fn import_part(c: &mut PgConnection, p: &ImportPart) -> Result<ImportCounts> {
    let mut n = ImportCounts::default();
    let now = micros(p.now);
    let org = &p.organization;
    n.organizations = sqlx::query(
        "INSERT INTO credly_organizations (id, name, api_key_ciphertext, api_key_last4, \
         key_created_at, key_expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING",
    )
    .bind(text(&org.id))
    .bind(text(&org.name))
    .bind(&org.key.ciphertext)
    .bind(text(&org.key.last4))
    .bind(micros(org.key.created_at))
    .bind(micros(org.key.expires_at))
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(db)?
    .rows_affected();

    for tc in &p.templates {
        let t = &tc.template;
        n.templates += sqlx::query(
            "INSERT INTO templates (id, name, description, image_url, origin, provider_state, \
             is_active, allow_reaward, organization_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING",
        )
        .bind(text(&t.id))
        .bind(text(&t.name))
        .bind(text(&t.description))
        .bind(opt_text(t.image_url.as_deref()))
        .bind(t.origin.as_str())
        .bind(text(&t.provider_state))
        .bind(t.is_active)
        .bind(t.allow_reaward)
        .bind(opt_text(t.organization_id.as_deref()))
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .rows_affected();
        for r in &tc.requirements {
            n.requirements += sqlx::query(
                "INSERT INTO requirements (id, template_id, key, event_type, description, \
                 group_letter, rules, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(text(&r.id))
            .bind(text(&t.id))
            .bind(opt_text(r.key.as_deref()))
            .bind(text(&r.event_type))
            .bind(text(&r.description))
            .bind(r.group.to_string())
            .bind(rows::rules_json(&r.rules))
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db)?
            .rows_affected();
        }
        for pe in &tc.penalties {
            n.penalties += sqlx::query(
                "INSERT INTO penalties (id, template_id, key, event_type, description, rules, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT DO NOTHING",
            )
            .bind(text(&pe.id))
            .bind(text(&t.id))
            .bind(opt_text(pe.key.as_deref()))
            .bind(text(&pe.event_type))
            .bind(text(&pe.description))
            .bind(rows::rules_json(&pe.rules))
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db)?
            .rows_affected();
            sqlx::query(
                "INSERT INTO penalty_requirements (penalty_id, requirement_id) \
                 SELECT $1, r FROM unnest($2::text[]) AS r ON CONFLICT DO NOTHING",
            )
            .bind(text(&pe.id))
            .bind(&pe.requirement_ids)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        }
    }
    if n.templates + n.requirements + n.penalties > 0 {
        bump_version(c).await?;
    }

    for chunk in p.learners.chunks(CHUNK) {
        n.learners += sqlx::query(
            "INSERT INTO learners (username, lms_user_id, email, name, created_at, updated_at) \
             SELECT u, l, e, nm, $5, $5 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) \
             AS x(u, l, e, nm) ON CONFLICT DO NOTHING",
        )
        .bind(chunk.iter().map(|l| text(&l.username)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|l| l.lms_user_id).collect::<Vec<_>>())
        .bind(chunk.iter().map(|l| opt_text(l.email.as_deref())).collect::<Vec<_>>())
        .bind(chunk.iter().map(|l| opt_text(l.name.as_deref())).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .rows_affected();
    }
    for chunk in p.fulfilments.chunks(CHUNK) {
        n.fulfilments += sqlx::query(
            "INSERT INTO fulfillments (learner, template_id, requirement_id, event_id, fulfilled_at) \
             SELECT l, t, r, NULL, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS x(l, t, r) \
             ON CONFLICT DO NOTHING",
        )
        .bind(chunk.iter().map(|f| text(&f.0)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|f| text(&f.1)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|f| text(&f.2)).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .rows_affected();
    }

    // Awards whose id or Credly id is known are left out; of the rest, one the learner already
    // holds unrevoked is skipped by the partial unique index (ON CONFLICT DO NOTHING covers it).
    for chunk in p.awards.chunks(CHUNK) {
        let ids: Vec<_> = chunk.iter().map(|a| text(&a.id)).collect();
        let external: Vec<_> = chunk
            .iter()
            .map(|a| opt_text(a.external_id.as_deref()))
            .collect();
        let known: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM unnest($1::text[], $2::text[]) AS x(id, ext) \
             WHERE EXISTS (SELECT 1 FROM awards a WHERE a.id = x.id) \
                OR EXISTS (SELECT 1 FROM awards a WHERE a.external_id = x.ext)",
        )
        .bind(&ids)
        .bind(&external)
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        let created = sqlx::query(
            "INSERT INTO awards (id, template_id, learner, episode, state, earned_at, awarded_at, \
             issued_at, revoked_at, revoke_reason, event_id, external_id, external_state, updated_at) \
             SELECT x.id, x.t, x.l, \
               (SELECT coalesce(max(a.episode), 0) + 1 FROM awards a WHERE a.learner = x.l AND a.template_id = x.t), \
               x.s, x.e, x.w, x.i, x.r, x.why, NULL, x.ext, x.es, $12 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], \
                         $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[], \
                         $10::text[], $11::text[]) AS x(id, t, l, s, e, w, i, r, why, ext, es) \
             WHERE NOT EXISTS (SELECT 1 FROM awards a WHERE a.id = x.id) \
               AND NOT EXISTS (SELECT 1 FROM awards a WHERE a.external_id = x.ext) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(chunk.iter().map(|a| text(&a.template_id)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| text(&a.learner)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.state.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| micros(a.earned_at)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| micros(a.awarded_at)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.issued_at.map(micros)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| a.revoked_at.map(micros)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|a| opt_text(a.revoke_reason.as_deref())).collect::<Vec<_>>())
        .bind(&external)
        .bind(chunk.iter().map(|a| opt_text(a.external_state.as_deref())).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .rows_affected();
        n.awards += created;
        n.awards_held_already += chunk.len() as u64 - known as u64 - created;
    }
    Ok(n)
}
