//! SQLite sources (Credentials' own test settings, small installs), read with rusqlite. Django
//! stores UUIDs there as 32 hex digits and times as text; the planner normalises both.

use rusqlite::{Connection, OpenFlags, Row};

use crate::source::*;

use super::sqlx_source as rows;
use super::{ReadError, ACCREDIBLE, REQUIRED};

const ORGS: &str =
    "SELECT id, uuid, name, api_key, modified FROM badges_credlyorganization ORDER BY id";
const TEMPLATES: &str = "SELECT id, uuid, name, description, icon, origin, state, is_active \
    FROM badges_badgetemplate ORDER BY id";
const CREDLY_TEMPLATES: &str =
    "SELECT badgetemplate_ptr_id, organization_id FROM badges_credlybadgetemplate";
const ACCREDIBLE_GROUPS: &str = "SELECT badgetemplate_ptr_id FROM badges_accrediblegroup";
const ACCREDIBLE_COUNTS: &str = "SELECT (SELECT COUNT(*) FROM badges_accredibleapiconfig), \
    (SELECT COUNT(*) FROM badges_accrediblegroup), (SELECT COUNT(*) FROM badges_accrediblebadge)";
const REQUIREMENTS: &str = "SELECT id, template_id, event_type, description, blend \
    FROM badges_badgerequirement ORDER BY id";
const RULES: &str =
    "SELECT id, requirement_id, data_path, operator, value FROM badges_datarule ORDER BY id";
const PENALTIES: &str = "SELECT id, template_id, event_type FROM badges_badgepenalty ORDER BY id";
const PENALTY_LINKS: &str = "SELECT badgepenalty_id, badgerequirement_id \
    FROM badges_badgepenalty_requirements ORDER BY id";
const PENALTY_RULES: &str =
    "SELECT id, penalty_id, data_path, operator, value FROM badges_penaltydatarule ORDER BY id";
const USERS: &str = "SELECT username, u.email, u.first_name, u.last_name, u.full_name, u.lms_user_id \
    FROM core_user u JOIN \
    (SELECT username FROM badges_badgeprogress UNION SELECT username FROM credentials_usercredential) n \
    USING (username)";
const PROGRESS: &str = "SELECT id, username, template_id FROM badges_badgeprogress ORDER BY id";
const FULFILMENTS: &str = "SELECT progress_id, requirement_id FROM badges_fulfillment ORDER BY id";
const BADGES: &str = "SELECT uc.id, uc.uuid, uc.username, uc.status, uc.credential_id, \
    uc.created, uc.modified, cb.state, cb.external_uuid \
    FROM badges_credlybadge cb JOIN credentials_usercredential uc ON uc.id = cb.usercredential_ptr_id \
    ORDER BY uc.id";

pub fn read(path: &str, shown: &str) -> Result<SourceData, ReadError> {
    if !std::path::Path::new(path).is_file() {
        return Err(ReadError::Unreachable {
            url: shown.to_string(),
            detail: "no such file".into(),
        });
    }
    let mut c =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
            ReadError::Unreachable {
                url: shown.to_string(),
                detail: e.to_string(),
            }
        })?;
    for (table, columns) in REQUIRED {
        if let Err(e) = c.prepare(&format!("SELECT {columns} FROM {table} WHERE 1 = 0")) {
            return Err(ReadError::Schema {
                table: table.to_string(),
                detail: e.to_string(),
            });
        }
    }
    let accredible_present = ACCREDIBLE.iter().all(|(t, c0)| {
        c.prepare(&format!("SELECT {c0} FROM {t} WHERE 1 = 0"))
            .is_ok()
    });
    // One read transaction: one snapshot, even with Credentials writing (WAL).
    let tx = c.transaction().map_err(q("the SQLite source"))?;
    let mut data = SourceData::default();
    for r in all(&tx, "organizations", ORGS, |r| {
        Ok((r.get(0)?, text(r, 1)?, r.get(2)?, r.get(3)?, text(r, 4)?))
    })? {
        data.organizations.push(rows::organization(r)?);
    }
    for r in all(&tx, "templates", TEMPLATES, |r| {
        Ok((
            r.get(0)?,
            text(r, 1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })? {
        data.templates.push(rows::template(r)?);
    }
    data.credly_templates = all(&tx, "Credly templates", CREDLY_TEMPLATES, |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    if accredible_present {
        data.accredible_groups = all(&tx, "Accredible groups", ACCREDIBLE_GROUPS, |r| r.get(0))?;
        let (configs, groups, badges): (i64, i64, i64) = tx
            .query_row(ACCREDIBLE_COUNTS, [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(q("Accredible counts"))?;
        data.accredible = AccredibleCounts {
            api_configs: configs as u64,
            groups: groups as u64,
            badges: badges as u64,
        };
    }
    data.requirements = all(&tx, "requirements", REQUIREMENTS, |r| {
        Ok(rows::requirement((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
        )))
    })?;
    let rule = |r: &Row<'_>| {
        Ok(rows::rule((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            text(r, 4)?,
        )))
    };
    data.rules = all(&tx, "data rules", RULES, rule)?;
    data.penalties = all(&tx, "penalties", PENALTIES, |r| {
        Ok(rows::penalty((r.get(0)?, r.get(1)?, r.get(2)?)))
    })?;
    data.penalty_links = all(&tx, "penalty requirements", PENALTY_LINKS, |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    data.penalty_rules = all(&tx, "penalty data rules", PENALTY_RULES, rule)?;
    data.users = all(&tx, "users", USERS, |r| {
        Ok(rows::user((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        )))
    })?;
    data.progress = all(&tx, "progress records", PROGRESS, |r| {
        Ok(rows::progress((r.get(0)?, r.get(1)?, r.get(2)?)))
    })?;
    data.fulfilments = all(&tx, "fulfilments", FULFILMENTS, |r| {
        Ok(rows::fulfilment((r.get(0)?, r.get(1)?)))
    })?;
    for r in all(&tx, "Credly badges", BADGES, |r| {
        Ok((
            r.get(0)?,
            text(r, 1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            text(r, 5)?,
            text(r, 6)?,
            r.get(7)?,
            r.get::<_, Option<String>>(8)?,
        ))
    })? {
        data.badges.push(rows::badge(r)?);
    }
    Ok(data)
}

/// A column read as text whatever its storage class (a value typed by hand may be stored as a
/// number: `'+'` stays text, `1` becomes `"1"`).
fn text(r: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => String::new(),
    })
}

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> ReadError {
    move |e| ReadError::Query {
        what,
        detail: e.to_string(),
    }
}

fn all<T>(
    c: &Connection,
    what: &'static str,
    sql: &str,
    mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, ReadError> {
    let mut stmt = c.prepare(sql).map_err(q(what))?;
    let rows = stmt.query_map([], |r| map(r)).map_err(q(what))?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(q(what))
}
