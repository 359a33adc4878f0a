//! The Open Badges 3.0 issuer on PostgreSQL: signing keys, credentials (reserved by a claim,
//! signed once), Bitstring Status Lists, and the issuer's cursor in `outgoing_events`.
//!
//! The issuer follows the outgoing events as the webhook fan-out does: in `(tx, id)` order, only
//! up to the oldest transaction still running (see migration `0004_webhooks.sql`: a sequence
//! would skip events committed late). Signing happens outside any transaction, so it goes in two
//! steps with a lease in between: `claim` locks the cursor row, reads a batch after it, reserves
//! each new award's credential id and status entry and writes the lease; `complete` locks the
//! cursor row again, checks that the cursor and the lease are still the claim's, stores the
//! signed documents, sets the revoked entries' bits and moves the cursor. Locking the cursor row
//! first makes instances take turns: a second claim waits for the first to commit, then sees its
//! live lease and gets nothing. A claim after a lost lease (a crash between the two steps) reads
//! the same events and finds the same reservations, so an award is never signed as two
//! different credentials.

use std::collections::{BTreeMap, HashMap, HashSet};

use accolade_domain::award::Award;
use accolade_domain::outbox::{BADGE_AWARDED, BADGE_REVOKED};
use accolade_domain::template::{Origin, Template};
use accolade_store::{
    Entity, NewObKey, ObCompleted, ObCredential, ObCursor, ObIssue, ObKey, ObStatusList, ObTotals,
    ObWork, SignedCredential, StoreError,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::rows::{self, award_columns, db, is_unique_violation, micros, template_columns, text};

type Result<T> = std::result::Result<T, StoreError>;

/// Random indexes tried in a list before giving up. A list takes entries only while less than
/// half used, so each try hits a free entry with probability above one half.
const INDEX_TRIES: usize = 64;

macro_rules! key_columns {
    () => {
        "id, public_multibase, secret_sealed, created_at, retired_at"
    };
}

macro_rules! credential_columns {
    () => {
        "credential_id, award_id, template_id, learner, document, key_id, status_list, \
         status_index, signed_at, valid_until, revoked_at"
    };
}

macro_rules! list_columns {
    () => {
        "id, size, bits, used, version, signed_version, document, updated_at"
    };
}

fn key(r: &PgRow) -> std::result::Result<ObKey, sqlx::Error> {
    Ok(ObKey {
        id: r.try_get(0)?,
        public_multibase: r.try_get(1)?,
        secret_sealed: r.try_get(2)?,
        created_at: r.try_get(3)?,
        retired_at: r.try_get(4)?,
    })
}

/// A signed credential (selected `WHERE document IS NOT NULL`).
fn credential(r: &PgRow) -> std::result::Result<ObCredential, sqlx::Error> {
    Ok(ObCredential {
        credential_id: r.try_get(0)?,
        award_id: r.try_get(1)?,
        template_id: r.try_get(2)?,
        learner: r.try_get(3)?,
        document: r.try_get(4)?,
        key_id: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        status_list: r.try_get(6)?,
        status_index: r.try_get(7)?,
        signed_at: r.try_get(8)?,
        valid_until: r.try_get(9)?,
        revoked_at: r.try_get(10)?,
    })
}

fn list(r: &PgRow) -> std::result::Result<ObStatusList, sqlx::Error> {
    Ok(ObStatusList {
        id: r.try_get(0)?,
        size: r.try_get(1)?,
        bits: r.try_get(2)?,
        used: r.try_get(3)?,
        version: r.try_get(4)?,
        signed_version: r.try_get(5)?,
        document: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

pub async fn keys(c: &mut PgConnection) -> Result<Vec<ObKey>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        key_columns!(),
        " FROM ob_keys ORDER BY created_at, id"
    ))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows::all(found, key)
}

async fn active_key(c: &mut PgConnection) -> Result<Option<ObKey>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        key_columns!(),
        " FROM ob_keys WHERE retired_at IS NULL"
    ))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(key).transpose().map_err(db)
}

/// Run in a transaction: the table lock makes concurrent additions take turns, so of several
/// instances adding their first key at once, one adds it and the others find it.
pub async fn add_key(
    c: &mut PgConnection,
    new: NewObKey,
    only_if_none: bool,
    now: DateTime<Utc>,
) -> Result<ObKey> {
    sqlx::query("LOCK TABLE ob_keys IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *c)
        .await
        .map_err(db)?;
    if only_if_none {
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ob_keys)")
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
        if any {
            return active_key(c)
                .await?
                .ok_or_else(|| StoreError::Other("every Open Badges key is retired".into()));
        }
    }
    let now = micros(now);
    sqlx::query("UPDATE ob_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db)?;
    sqlx::query(
        "INSERT INTO ob_keys (id, public_multibase, secret_sealed, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(text(&new.id))
    .bind(text(&new.public_multibase))
    .bind(&new.secret_sealed)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict {
                code: "ob_key_exists",
                detail: format!("an Open Badges key {} already exists", new.id),
            }
        } else {
            db(e)
        }
    })?;
    active_key(c)
        .await?
        .ok_or_else(|| StoreError::Other("the added key is not active".into()))
}

/// The cursor row, locked until the transaction ends: where the issuer stands, and the lease on
/// the events after it.
struct Cursor {
    at: ObCursor,
    holder: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

async fn lock_cursor(c: &mut PgConnection) -> Result<Cursor> {
    let (position, id, holder, lease_until): (i64, String, Option<String>, Option<DateTime<Utc>>) =
        sqlx::query_as(
            "SELECT last_position, last_id, holder, lease_until FROM ob_cursor WHERE id = 1 \
             FOR UPDATE",
        )
        .fetch_one(c)
        .await
        .map_err(db)?;
    Ok(Cursor {
        at: ObCursor { position, id },
        holder,
        lease_until,
    })
}

/// Run in a transaction (the cursor row stays locked until it commits).
pub async fn claim(
    c: &mut PgConnection,
    holder: &str,
    limit: u32,
    list_size: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<ObWork>> {
    if list_size == 0 || !list_size.is_multiple_of(8) {
        return Err(StoreError::Other(format!(
            "a status list's size must be a positive multiple of 8, not {list_size}"
        )));
    }
    let holder = text(holder);
    let from = lock_cursor(c).await?;
    if from.holder.as_deref().is_some_and(|h| h != holder)
        && from.lease_until.is_some_and(|until| until > now)
    {
        return Ok(None);
    }
    // (tx, id, event_type, award_id, origin of the award's template)
    let events: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT e.tx, e.id, e.event_type, e.award_id, t.origin FROM outgoing_events e \
         LEFT JOIN awards a ON a.id = e.award_id LEFT JOIN templates t ON t.id = a.template_id \
         WHERE (e.tx, e.id) > ($1, $2) AND e.tx < txid_snapshot_xmin(txid_current_snapshot()) \
         ORDER BY e.tx, e.id LIMIT $3",
    )
    .bind(from.at.position)
    .bind(&from.at.id)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let Some((last_tx, last_id, ..)) = events.last() else {
        return Ok(None);
    };
    let to = ObCursor {
        position: *last_tx,
        id: last_id.clone(),
    };
    let mut to_issue = Vec::new();
    let mut revoked_awards = Vec::new();
    let mut seen = HashSet::new();
    for (_, _, event_type, award_id, origin) in &events {
        if origin.as_deref() != Some(Origin::Local.as_str()) {
            continue;
        }
        if event_type == BADGE_REVOKED {
            if seen.insert((true, award_id.as_str())) {
                revoked_awards.push(award_id.clone());
            }
        } else if event_type == BADGE_AWARDED && seen.insert((false, award_id.as_str())) {
            to_issue.push(award_id.clone());
        }
    }
    let issues = issues(c, &to_issue, list_size, now).await?;
    sqlx::query("UPDATE ob_cursor SET holder = $1, lease_until = $2 WHERE id = 1")
        .bind(&*holder)
        .bind(micros(lease_until))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(Some(ObWork {
        from: from.at,
        to,
        issues,
        revoked_awards,
        events: events.len() as u64,
    }))
}

/// What the credentials of `award_ids` need, in that order, with their reservations (made now
/// for awards that have none). Awards already signed are left out (a credential is signed once).
async fn issues(
    c: &mut PgConnection,
    award_ids: &[String],
    list_size: u32,
    now: DateTime<Utc>,
) -> Result<Vec<ObIssue>> {
    if award_ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(concat!(
        "SELECT ",
        award_columns!(),
        " FROM awards WHERE id = ANY($1)"
    ))
    .bind(award_ids)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut awards: HashMap<String, Award> = rows::all(found, rows::award)?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let template_ids: Vec<String> = awards
        .values()
        .map(|a| a.template_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let found = sqlx::query(concat!(
        "SELECT ",
        template_columns!(),
        " FROM templates WHERE id = ANY($1)"
    ))
    .bind(&template_ids)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let templates: HashMap<String, Template> = rows::all(found, rows::template)?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    let learner_names: Vec<String> = awards
        .values()
        .map(|a| a.learner.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let learners: HashMap<String, (Option<String>, Option<String>)> =
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT username, email, name FROM learners WHERE username = ANY($1)",
        )
        .bind(&learner_names)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(username, email, name)| (username, (email, name)))
        .collect();
    // award_id -> (credential_id, status_list, status_index, signed)
    let reserved: HashMap<String, (String, i64, i64, bool)> =
        sqlx::query_as::<_, (String, String, i64, i64, bool)>(
            "SELECT award_id, credential_id, status_list, status_index, document IS NOT NULL \
             FROM ob_credentials WHERE award_id = ANY($1)",
        )
        .bind(award_ids)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(award, id, list, index, signed)| (award, (id, list, index, signed)))
        .collect();
    let mut lists = Lists::default();
    let mut out = Vec::with_capacity(award_ids.len());
    for award_id in award_ids {
        let Some(award) = awards.remove(award_id) else {
            continue;
        };
        let (credential_id, status_list, status_index) = match reserved.get(award_id) {
            Some((_, _, _, true)) => continue,
            Some((id, list, index, false)) => (id.clone(), *list, *index),
            None => lists.reserve(c, &award, list_size, now).await?,
        };
        let template = templates
            .get(&award.template_id)
            .cloned()
            .ok_or_else(|| StoreError::Other(format!("template of award {award_id} missing")))?;
        let (learner_email, learner_name) =
            learners.get(&award.learner).cloned().unwrap_or_default();
        out.push(ObIssue {
            award,
            template,
            learner_email,
            learner_name,
            credential_id,
            status_list,
            status_index,
        });
    }
    lists.count_used(c, now).await?;
    Ok(out)
}

/// The status list entries reserved by one claim: the list taking entries, and how many each
/// list got (written once at the end).
#[derive(Default)]
struct Lists {
    /// (id, size, used) of the newest list less than half used, once looked up.
    open: Option<(i64, i64, i64)>,
    reserved: BTreeMap<i64, i64>,
}

impl Lists {
    /// Reserves a credential id and a free entry at a random index of the newest status list
    /// that is less than half used (a new list if none is).
    async fn reserve(
        &mut self,
        c: &mut PgConnection,
        award: &Award,
        list_size: u32,
        now: DateTime<Utc>,
    ) -> Result<(String, i64, i64)> {
        let (list_id, size, used) = match self.open {
            Some(open) => open,
            None => self.open_list(c, list_size, now).await?,
        };
        let credential_id = uuid::Uuid::new_v4().hyphenated().to_string();
        for _ in 0..INDEX_TRIES {
            let index = rand::random_range(0..size);
            let inserted = sqlx::query(
                "INSERT INTO ob_credentials (award_id, credential_id, template_id, learner, \
                 status_list, status_index, reserved_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (status_list, status_index) DO NOTHING",
            )
            .bind(&award.id)
            .bind(&credential_id)
            .bind(&award.template_id)
            .bind(&award.learner)
            .bind(list_id)
            .bind(index)
            .bind(micros(now))
            .execute(&mut *c)
            .await
            .map_err(db)?
            .rows_affected();
            if inserted == 1 {
                *self.reserved.entry(list_id).or_default() += 1;
                self.open = Some((list_id, size, used + 1)).filter(|(_, s, u)| u * 2 < *s);
                return Ok((credential_id, list_id, index));
            }
        }
        Err(StoreError::Other(format!(
            "no free entry found in status list {list_id} after {INDEX_TRIES} random tries"
        )))
    }

    /// The newest list less than half used (counting this claim's reservations), or a new one
    /// with every bit clear, to be signed (version 1, never signed).
    async fn open_list(
        &mut self,
        c: &mut PgConnection,
        list_size: u32,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64, i64)> {
        let lists: Vec<(i64, i64, i64)> =
            sqlx::query_as("SELECT id, size, used FROM ob_status_lists ORDER BY id DESC")
                .fetch_all(&mut *c)
                .await
                .map_err(db)?;
        let open = lists.into_iter().find_map(|(id, size, used)| {
            let used = used + self.reserved.get(&id).copied().unwrap_or(0);
            (used * 2 < size).then_some((id, size, used))
        });
        if let Some(open) = open {
            return Ok(open);
        }
        let size = i64::from(list_size);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ob_status_lists (size, bits, used, version, signed_version, updated_at) \
             VALUES ($1, $2, 0, 1, 0, $3) RETURNING id",
        )
        .bind(size)
        .bind(vec![0u8; list_size as usize / 8])
        .bind(micros(now))
        .fetch_one(c)
        .await
        .map_err(db)?;
        Ok((id, size, 0))
    }

    /// Adds the entries reserved to their lists' `used`.
    async fn count_used(&self, c: &mut PgConnection, now: DateTime<Utc>) -> Result<()> {
        for (list_id, n) in &self.reserved {
            sqlx::query(
                "UPDATE ob_status_lists SET used = used + $2, updated_at = $3 WHERE id = $1",
            )
            .bind(list_id)
            .bind(n)
            .bind(micros(now))
            .execute(&mut *c)
            .await
            .map_err(db)?;
        }
        Ok(())
    }
}

/// Run in a transaction (the cursor row stays locked until it commits).
pub async fn complete(
    c: &mut PgConnection,
    holder: &str,
    work: &ObWork,
    signed: Vec<SignedCredential>,
    now: DateTime<Utc>,
) -> Result<Option<ObCompleted>> {
    let at = lock_cursor(c).await?;
    if at.at != work.from || at.holder.as_deref() != Some(&*text(holder)) {
        return Ok(None);
    }
    let now = micros(now);
    let mut done = ObCompleted::default();
    // Documents first: an award revoked in the same batch gets its credential, then its bit.
    if !signed.is_empty() {
        let (mut awards, mut documents, mut keys, mut valid) = (vec![], vec![], vec![], vec![]);
        for s in &signed {
            awards.push(text(&s.award_id).into_owned());
            documents.push(text(&s.document).into_owned());
            keys.push(text(&s.key_id).into_owned());
            valid.push(s.valid_until.map(micros));
        }
        let lists: Vec<i64> = sqlx::query_scalar(
            "UPDATE ob_credentials c SET document = s.document, key_id = s.key_id, \
             valid_until = s.valid_until, signed_at = $5 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
             AS s(award_id, document, key_id, valid_until) \
             WHERE c.award_id = s.award_id AND c.document IS NULL RETURNING c.status_list",
        )
        .bind(&awards)
        .bind(&documents)
        .bind(&keys)
        .bind(&valid)
        .bind(now)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        done.signed = lists.len() as u64;
        let mut issued: BTreeMap<i64, i64> = BTreeMap::new();
        for list_id in lists {
            *issued.entry(list_id).or_default() += 1;
        }
        for (list_id, n) in issued {
            sqlx::query("UPDATE ob_status_lists SET issued = issued + $2 WHERE id = $1")
                .bind(list_id)
                .bind(n)
                .execute(&mut *c)
                .await
                .map_err(db)?;
        }
    }
    if !work.revoked_awards.is_empty() {
        let entries: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE ob_credentials SET revoked_at = $2 \
             WHERE award_id = ANY($1) AND revoked_at IS NULL RETURNING status_list, status_index",
        )
        .bind(&work.revoked_awards)
        .bind(now)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        let mut by_list: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (list_id, index) in entries {
            by_list.entry(list_id).or_default().push(index);
        }
        for (list_id, indexes) in by_list {
            let mut bits: Vec<u8> =
                sqlx::query_scalar("SELECT bits FROM ob_status_lists WHERE id = $1 FOR UPDATE")
                    .bind(list_id)
                    .fetch_one(&mut *c)
                    .await
                    .map_err(db)?;
            for index in &indexes {
                accolade_store::set_status_bit(&mut bits, *index)?;
            }
            let n = indexes.len() as i64;
            done.revoked += n as u64;
            sqlx::query(
                "UPDATE ob_status_lists SET bits = $2, revoked = revoked + $3, \
                 version = version + 1, updated_at = $4 WHERE id = $1",
            )
            .bind(list_id)
            .bind(bits)
            .bind(n)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        }
    }
    sqlx::query(
        "UPDATE ob_cursor SET last_position = $1, last_id = $2, holder = NULL, lease_until = NULL \
         WHERE id = 1",
    )
    .bind(work.to.position)
    .bind(&work.to.id)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(Some(done))
}

/// The status lists changed since their last signature (or never signed), oldest first.
pub async fn lists_to_sign(c: &mut PgConnection, limit: u32) -> Result<Vec<ObStatusList>> {
    let found = sqlx::query(concat!(
        "SELECT ",
        list_columns!(),
        " FROM ob_status_lists WHERE version > signed_version ORDER BY id LIMIT $1"
    ))
    .bind(i64::from(limit))
    .fetch_all(c)
    .await
    .map_err(db)?;
    rows::all(found, list)
}

pub async fn store_status_list(
    c: &mut PgConnection,
    id: i64,
    version: i64,
    document: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE ob_status_lists SET document = $3, signed_version = $2, updated_at = $4 \
         WHERE id = $1 AND signed_version < $2 AND $2 <= version",
    )
    .bind(id)
    .bind(version)
    .bind(text(&document))
    .bind(micros(now))
    .execute(c)
    .await
    .map_err(db)?;
    Ok(done.rows_affected() > 0)
}

pub async fn status_list(c: &mut PgConnection, id: i64) -> Result<ObStatusList> {
    let row = sqlx::query(concat!(
        "SELECT ",
        list_columns!(),
        " FROM ob_status_lists WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::StatusList))?;
    list(&row).map_err(db)
}

pub async fn credential_by_id(c: &mut PgConnection, credential_id: &str) -> Result<ObCredential> {
    let row = sqlx::query(concat!(
        "SELECT ",
        credential_columns!(),
        " FROM ob_credentials WHERE credential_id = $1 AND document IS NOT NULL"
    ))
    .bind(text(credential_id))
    .fetch_optional(c)
    .await
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Credential))?;
    credential(&row).map_err(db)
}

pub async fn credential_of_award(
    c: &mut PgConnection,
    award_id: &str,
) -> Result<Option<ObCredential>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        credential_columns!(),
        " FROM ob_credentials WHERE award_id = $1 AND document IS NOT NULL"
    ))
    .bind(text(award_id))
    .fetch_optional(c)
    .await
    .map_err(db)?;
    row.as_ref().map(credential).transpose().map_err(db)
}

pub async fn credential_ids(
    c: &mut PgConnection,
    award_ids: &[String],
) -> Result<HashMap<String, String>> {
    if award_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = award_ids.iter().map(|a| text(a).into_owned()).collect();
    let found: Vec<(String, String)> = sqlx::query_as(
        "SELECT award_id, credential_id FROM ob_credentials \
         WHERE award_id = ANY($1) AND document IS NOT NULL",
    )
    .bind(&ids)
    .fetch_all(c)
    .await
    .map_err(db)?;
    Ok(found.into_iter().collect())
}

/// From the lists' running counts (a few rows), not by counting credentials.
pub async fn totals(c: &mut PgConnection) -> Result<ObTotals> {
    let (credentials, revoked, lists, unsigned): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(issued), 0)::bigint, coalesce(sum(revoked), 0)::bigint, count(*), \
         count(*) FILTER (WHERE version > signed_version) FROM ob_status_lists",
    )
    .fetch_one(c)
    .await
    .map_err(db)?;
    let count = |v: i64| u64::try_from(v).unwrap_or_default();
    Ok(ObTotals {
        credentials: count(credentials),
        revoked: count(revoked),
        status_lists: count(lists),
        lists_unsigned: count(unsigned),
    })
}

pub async fn backlog(c: &mut PgConnection) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outgoing_events e, ob_cursor c \
         WHERE c.id = 1 AND (e.tx, e.id) > (c.last_position, c.last_id)",
    )
    .fetch_one(c)
    .await
    .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or_default())
}
