//! The Open Badges 3.0 issuer on SQLite: signing keys, credentials (reserved by a claim, signed
//! once), Bitstring Status Lists, and the issuer's cursor in `outgoing_events`.
//!
//! The issuer follows the outgoing events as the webhook fan-out does, by rowid (the single
//! writer makes rowid order commit order), but in two steps with a lease in between, since
//! signing happens outside any transaction: `claim` reads a batch after the cursor, reserves each
//! new award's credential id and status entry and writes the lease; `complete` checks that the
//! cursor and the lease are still the claim's, stores the signed documents, sets the revoked
//! entries' bits and moves the cursor. A claim after a lost lease (a crash between the two)
//! reads the same events and finds the same reservations, so an award is never signed as two
//! different credentials. Every write goes through the one writer connection (`write`, which
//! makes the commit durable before returning).

use std::collections::{BTreeMap, HashMap, HashSet};

use accolade_domain::outbox::{BADGE_AWARDED, BADGE_REVOKED};
use accolade_domain::template::{Origin, Template};
use accolade_store::{
    Entity, NewObKey, ObCompleted, ObCredential, ObCursor, ObIssue, ObKey, ObStatusList, ObTotals,
    ObWork, SignedCredential, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::rows::{self, db, is_unique_violation, opt_ts, parse_ts, ts, AWARD_COLUMNS};

type Result<T> = std::result::Result<T, StoreError>;

/// Random indexes tried in a list before giving up. A list takes entries only while less than
/// half used, so each try hits a free entry with probability above one half.
const INDEX_TRIES: usize = 64;

const KEY_COLUMNS: &str = "id, public_multibase, secret_sealed, created_at, retired_at";

const CREDENTIAL_COLUMNS: &str = "credential_id, award_id, template_id, learner, document, \
     key_id, status_list, status_index, signed_at, valid_until, revoked_at";

const LIST_COLUMNS: &str = "id, size, bits, used, version, signed_version, document, updated_at";

fn key(r: &Row<'_>) -> rusqlite::Result<ObKey> {
    Ok(ObKey {
        id: r.get(0)?,
        public_multibase: r.get(1)?,
        secret_sealed: r.get(2)?,
        created_at: parse_ts(&r.get::<_, String>(3)?)?,
        retired_at: opt_ts(r.get(4)?)?,
    })
}

/// A signed credential (selected `WHERE document IS NOT NULL`).
fn credential(r: &Row<'_>) -> rusqlite::Result<ObCredential> {
    Ok(ObCredential {
        credential_id: r.get(0)?,
        award_id: r.get(1)?,
        template_id: r.get(2)?,
        learner: r.get(3)?,
        document: r.get(4)?,
        key_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
        status_list: r.get(6)?,
        status_index: r.get(7)?,
        signed_at: parse_ts(&r.get::<_, String>(8)?)?,
        valid_until: opt_ts(r.get(9)?)?,
        revoked_at: opt_ts(r.get(10)?)?,
    })
}

fn list(r: &Row<'_>) -> rusqlite::Result<ObStatusList> {
    Ok(ObStatusList {
        id: r.get(0)?,
        size: r.get(1)?,
        bits: r.get(2)?,
        used: r.get(3)?,
        version: r.get(4)?,
        signed_version: r.get(5)?,
        document: r.get(6)?,
        updated_at: parse_ts(&r.get::<_, String>(7)?)?,
    })
}

pub fn keys(c: &Connection) -> Result<Vec<ObKey>> {
    c.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM ob_keys ORDER BY created_at, id"
    ))
    .and_then(|mut s| s.query_map([], key)?.collect())
    .map_err(db)
}

fn active_key(c: &Connection) -> Result<Option<ObKey>> {
    c.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM ob_keys WHERE retired_at IS NULL"
    ))
    .and_then(|mut s| s.query_row([], key).optional())
    .map_err(db)
}

pub fn add_key(
    c: &Connection,
    new: NewObKey,
    only_if_none: bool,
    now: DateTime<Utc>,
) -> Result<ObKey> {
    if only_if_none {
        let any: bool = c
            .query_row("SELECT EXISTS (SELECT 1 FROM ob_keys)", [], |r| r.get(0))
            .map_err(db)?;
        if any {
            return active_key(c)?
                .ok_or_else(|| StoreError::Other("every Open Badges key is retired".into()));
        }
    }
    let now = ts(now);
    c.execute(
        "UPDATE ob_keys SET retired_at = ?1 WHERE retired_at IS NULL",
        [&now],
    )
    .map_err(db)?;
    c.execute(
        "INSERT INTO ob_keys (id, public_multibase, secret_sealed, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![new.id, new.public_multibase, new.secret_sealed, now],
    )
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
    active_key(c)?.ok_or_else(|| StoreError::Other("the added key is not active".into()))
}

/// The cursor row: where the issuer stands, and the lease on the events after it.
struct Cursor {
    at: ObCursor,
    holder: Option<String>,
    lease_until: Option<DateTime<Utc>>,
}

fn cursor(c: &Connection) -> Result<Cursor> {
    c.query_row(
        "SELECT last_position, last_id, holder, lease_until FROM ob_cursor WHERE id = 1",
        [],
        |r| {
            Ok(Cursor {
                at: ObCursor {
                    position: r.get(0)?,
                    id: r.get(1)?,
                },
                holder: r.get(2)?,
                lease_until: opt_ts(r.get(3)?)?,
            })
        },
    )
    .map_err(db)
}

/// An outgoing event after the cursor, with the origin of its award's template (`None` if the
/// award is unknown).
struct Event {
    rowid: i64,
    id: String,
    event_type: String,
    award_id: String,
    origin: Option<String>,
}

pub fn claim(
    c: &Connection,
    holder: &str,
    limit: u32,
    list_size: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<ObWork>> {
    check_list_size(list_size)?;
    let from = cursor(c)?;
    if from.holder.as_deref().is_some_and(|h| h != holder)
        && from.lease_until.is_some_and(|until| until > now)
    {
        return Ok(None);
    }
    let events: Vec<Event> = c
        .prepare_cached(
            "SELECT e.rowid, e.id, e.event_type, e.award_id, t.origin FROM outgoing_events e \
             LEFT JOIN awards a ON a.id = e.award_id LEFT JOIN templates t ON t.id = a.template_id \
             WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![from.at.position, i64::from(limit)], |r| {
                Ok(Event {
                    rowid: r.get(0)?,
                    id: r.get(1)?,
                    event_type: r.get(2)?,
                    award_id: r.get(3)?,
                    origin: r.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(db)?;
    let Some(last) = events.last() else {
        return Ok(None);
    };
    let to = ObCursor {
        position: last.rowid,
        id: last.id.clone(),
    };
    let now_text = ts(now);
    let mut templates: HashMap<String, Template> = HashMap::new();
    let mut issues = Vec::new();
    let mut revoked_awards = Vec::new();
    let mut seen_issues = HashSet::new();
    let mut seen_revoked = HashSet::new();
    for e in &events {
        if e.origin.as_deref() != Some(Origin::Local.as_str()) {
            continue;
        }
        if e.event_type == BADGE_REVOKED {
            if seen_revoked.insert(e.award_id.as_str()) {
                revoked_awards.push(e.award_id.clone());
            }
            continue;
        }
        if e.event_type != BADGE_AWARDED || !seen_issues.insert(e.award_id.as_str()) {
            continue;
        }
        if let Some(issue) = issue(c, &e.award_id, list_size, &now_text, &mut templates)? {
            issues.push(issue);
        }
    }
    c.execute(
        "UPDATE ob_cursor SET holder = ?1, lease_until = ?2 WHERE id = 1",
        params![holder, ts(lease_until)],
    )
    .map_err(db)?;
    Ok(Some(ObWork {
        from: from.at,
        to,
        issues,
        revoked_awards,
        events: events.len() as u64,
    }))
}

fn check_list_size(list_size: u32) -> Result<()> {
    if list_size == 0 || !list_size.is_multiple_of(8) {
        return Err(StoreError::Other(format!(
            "a status list's size must be a positive multiple of 8, not {list_size}"
        )));
    }
    Ok(())
}

/// What an award's credential needs, with its reservation (made now if it has none). `None` when
/// it is signed already (a credential is signed once) or the award is gone.
fn issue(
    c: &Connection,
    award_id: &str,
    list_size: u32,
    now: &str,
    templates: &mut HashMap<String, Template>,
) -> Result<Option<ObIssue>> {
    let Some(award) = c
        .prepare_cached(&format!("SELECT {AWARD_COLUMNS} FROM awards WHERE id = ?1"))
        .and_then(|mut s| s.query_row([award_id], rows::award).optional())
        .map_err(db)?
    else {
        return Ok(None);
    };
    let reserved: Option<(String, i64, i64, bool)> = c
        .prepare_cached(
            "SELECT credential_id, status_list, status_index, document IS NOT NULL \
             FROM ob_credentials WHERE award_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([award_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(db)?;
    let (credential_id, status_list, status_index) = match reserved {
        Some((_, _, _, true)) => return Ok(None),
        Some((id, list, index, false)) => (id, list, index),
        None => reserve(c, &award, list_size, now)?,
    };
    let template = match templates.get(&award.template_id) {
        Some(t) => t.clone(),
        None => {
            let t = c
                .prepare_cached(&format!(
                    "SELECT {} FROM templates WHERE id = ?1",
                    rows::TEMPLATE_COLUMNS
                ))
                .and_then(|mut s| s.query_row([&award.template_id], rows::template))
                .map_err(db)?;
            templates.insert(t.id.clone(), t.clone());
            t
        }
    };
    let (learner_email, learner_name): (Option<String>, Option<String>) = c
        .prepare_cached("SELECT email, name FROM learners WHERE username = ?1")
        .and_then(|mut s| {
            s.query_row([&award.learner], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db)?
        .unwrap_or_default();
    Ok(Some(ObIssue {
        award,
        template,
        learner_email,
        learner_name,
        credential_id,
        status_list,
        status_index,
    }))
}

/// Reserves a credential id and a free entry at a random index of the newest status list that is
/// less than half used (a new list if none is).
fn reserve(
    c: &Connection,
    award: &accolade_domain::award::Award,
    list_size: u32,
    now: &str,
) -> Result<(String, i64, i64)> {
    let open: Option<(i64, i64)> = c
        .prepare_cached(
            "SELECT id, size FROM ob_status_lists WHERE used * 2 < size ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db)?;
    let (list_id, size) = match open {
        Some(open) => open,
        None => {
            let size = i64::from(list_size);
            let id = c
                .prepare_cached(
                    "INSERT INTO ob_status_lists (size, bits, used, version, signed_version, \
                     updated_at) VALUES (?1, zeroblob(?2), 0, 1, 0, ?3) RETURNING id",
                )
                .and_then(|mut s| s.query_row(params![size, size / 8, now], |r| r.get(0)))
                .map_err(db)?;
            (id, size)
        }
    };
    let credential_id = uuid::Uuid::new_v4().hyphenated().to_string();
    let mut insert = c
        .prepare_cached(
            "INSERT INTO ob_credentials (award_id, credential_id, template_id, learner, \
             status_list, status_index, reserved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (status_list, status_index) DO NOTHING",
        )
        .map_err(db)?;
    for _ in 0..INDEX_TRIES {
        let index = rand::random_range(0..size);
        let inserted = insert
            .execute(params![
                award.id,
                credential_id,
                award.template_id,
                award.learner,
                list_id,
                index,
                now
            ])
            .map_err(db)?;
        if inserted == 1 {
            c.prepare_cached(
                "UPDATE ob_status_lists SET used = used + 1, updated_at = ?2 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![list_id, now]))
            .map_err(db)?;
            return Ok((credential_id, list_id, index));
        }
    }
    Err(StoreError::Other(format!(
        "no free entry found in status list {list_id} after {INDEX_TRIES} random tries"
    )))
}

pub fn complete(
    c: &Connection,
    holder: &str,
    work: &ObWork,
    signed: Vec<SignedCredential>,
    now: DateTime<Utc>,
) -> Result<Option<ObCompleted>> {
    let at = cursor(c)?;
    if at.at != work.from || at.holder.as_deref() != Some(holder) {
        return Ok(None);
    }
    let now = ts(now);
    let mut done = ObCompleted::default();
    // Documents first: an award revoked in the same batch gets its credential, then its bit.
    let mut store = c
        .prepare_cached(
            "UPDATE ob_credentials SET document = ?2, key_id = ?3, valid_until = ?4, \
             signed_at = ?5 WHERE award_id = ?1 AND document IS NULL RETURNING status_list",
        )
        .map_err(db)?;
    let mut issued: BTreeMap<i64, i64> = BTreeMap::new();
    for s in signed {
        let list_id: Option<i64> = store
            .query_row(
                params![s.award_id, s.document, s.key_id, s.valid_until.map(ts), now],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if let Some(list_id) = list_id {
            *issued.entry(list_id).or_default() += 1;
            done.signed += 1;
        }
    }
    for (list_id, n) in issued {
        c.prepare_cached("UPDATE ob_status_lists SET issued = issued + ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![list_id, n]))
            .map_err(db)?;
    }
    let mut revoke = c
        .prepare_cached(
            "UPDATE ob_credentials SET revoked_at = ?2 WHERE award_id = ?1 AND revoked_at IS NULL \
             RETURNING status_list, status_index",
        )
        .map_err(db)?;
    let mut entries: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for award_id in &work.revoked_awards {
        let entry: Option<(i64, i64)> = revoke
            .query_row(params![award_id, now], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db)?;
        if let Some((list_id, index)) = entry {
            entries.entry(list_id).or_default().push(index);
        }
    }
    for (list_id, indexes) in entries {
        let mut bits: Vec<u8> = c
            .query_row(
                "SELECT bits FROM ob_status_lists WHERE id = ?1",
                [list_id],
                |r| r.get(0),
            )
            .map_err(db)?;
        for index in &indexes {
            accolade_store::set_status_bit(&mut bits, *index)?;
        }
        let n = indexes.len() as i64;
        done.revoked += n as u64;
        c.execute(
            "UPDATE ob_status_lists SET bits = ?2, revoked = revoked + ?3, version = version + 1, \
             updated_at = ?4 WHERE id = ?1",
            params![list_id, bits, n, now],
        )
        .map_err(db)?;
    }
    c.execute(
        "UPDATE ob_cursor SET last_position = ?1, last_id = ?2, holder = NULL, lease_until = NULL \
         WHERE id = 1",
        params![work.to.position, work.to.id],
    )
    .map_err(db)?;
    Ok(Some(done))
}

/// The status lists changed since their last signature (or never signed), oldest first.
pub fn lists_to_sign(c: &Connection, limit: u32) -> Result<Vec<ObStatusList>> {
    c.prepare_cached(&format!(
        "SELECT {LIST_COLUMNS} FROM ob_status_lists WHERE version > signed_version \
         ORDER BY id LIMIT ?1"
    ))
    .and_then(|mut s| s.query_map([i64::from(limit)], list)?.collect())
    .map_err(db)
}

pub fn store_status_list(
    c: &Connection,
    id: i64,
    version: i64,
    document: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE ob_status_lists SET document = ?3, signed_version = ?2, updated_at = ?4 \
             WHERE id = ?1 AND signed_version < ?2 AND ?2 <= version",
            params![id, version, document, ts(now)],
        )
        .map_err(db)?;
    Ok(n > 0)
}

pub fn status_list(c: &Connection, id: i64) -> Result<ObStatusList> {
    c.prepare_cached(&format!(
        "SELECT {LIST_COLUMNS} FROM ob_status_lists WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], list).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::StatusList))
}

pub fn credential_by_id(c: &Connection, credential_id: &str) -> Result<ObCredential> {
    c.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM ob_credentials \
         WHERE credential_id = ?1 AND document IS NOT NULL"
    ))
    .and_then(|mut s| s.query_row([credential_id], credential).optional())
    .map_err(db)?
    .ok_or(StoreError::not_found(Entity::Credential))
}

pub fn credential_of_award(c: &Connection, award_id: &str) -> Result<Option<ObCredential>> {
    c.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM ob_credentials \
         WHERE award_id = ?1 AND document IS NOT NULL"
    ))
    .and_then(|mut s| s.query_row([award_id], credential).optional())
    .map_err(db)
}

pub fn credential_ids(c: &Connection, award_ids: &[String]) -> Result<HashMap<String, String>> {
    let mut s = c
        .prepare_cached(
            "SELECT credential_id FROM ob_credentials WHERE award_id = ?1 AND document IS NOT NULL",
        )
        .map_err(db)?;
    let mut out = HashMap::new();
    for award_id in award_ids {
        let found: Option<String> = s
            .query_row([award_id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if let Some(id) = found {
            out.insert(award_id.clone(), id);
        }
    }
    Ok(out)
}

/// From the lists' running counts (a few rows), not by counting credentials.
pub fn totals(c: &Connection) -> Result<ObTotals> {
    let count = |v: i64| u64::try_from(v).unwrap_or_default();
    c.query_row(
        "SELECT coalesce(sum(issued), 0), coalesce(sum(revoked), 0), count(*), \
         coalesce(sum(version > signed_version), 0) FROM ob_status_lists",
        [],
        |r| {
            Ok(ObTotals {
                credentials: count(r.get(0)?),
                revoked: count(r.get(1)?),
                status_lists: count(r.get(2)?),
                lists_unsigned: count(r.get(3)?),
            })
        },
    )
    .map_err(db)
}

pub fn backlog(c: &Connection) -> Result<u64> {
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM outgoing_events \
             WHERE rowid > (SELECT last_position FROM ob_cursor WHERE id = 1)",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    Ok(u64::try_from(n).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim's event read walks the rowid and the primary keys, never scanning awards or
    /// templates.
    #[test]
    fn the_claim_reads_events_by_rowid() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::migrate::run(&mut c).unwrap();
        let plan: Vec<String> = c
            .prepare(
                "EXPLAIN QUERY PLAN SELECT e.rowid, e.id, e.event_type, e.award_id, t.origin \
                 FROM outgoing_events e LEFT JOIN awards a ON a.id = e.award_id \
                 LEFT JOIN templates t ON t.id = a.template_id WHERE e.rowid > ?1 \
                 ORDER BY e.rowid LIMIT ?2",
            )
            .unwrap()
            .query_map(params![0, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|s| s.starts_with("SEARCH e USING INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|s| s.starts_with("SCAN a") || s.starts_with("SCAN t")),
            "{plan:?}"
        );
    }
}
