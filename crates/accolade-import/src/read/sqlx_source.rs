//! What the readers share: the row shapes every query returns (plain tuples, so sqlx and rusqlite
//! decode them alike), their conversion into [`crate::source`] values, and [`read_sqlx!`], the
//! body of the two sqlx readers, which differ only in their connection and SQL text.

use crate::source::*;

use super::ReadError;

pub type OrgRow = (i64, String, Option<String>, String, String);
pub type TemplateRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);
pub type RequirementRow = (i64, i64, String, Option<String>, Option<String>);
pub type RuleRow = (i64, i64, String, String, String);
pub type PenaltyRow = (i64, i64, String);
pub type UserRow = (String, String, String, String, Option<String>, Option<i64>);
pub type ProgressRow = (i64, String, Option<i64>);
pub type FulfilmentRow = (i64, Option<i64>);
pub type BadgeRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
);

fn uuid_of(what: &'static str, raw: &str) -> Result<String, ReadError> {
    normalize_uuid(raw).ok_or_else(|| ReadError::Query {
        what,
        detail: format!("`{raw}` is not a UUID"),
    })
}

fn time_of(what: &'static str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, ReadError> {
    parse_time(raw).ok_or_else(|| ReadError::Query {
        what,
        detail: format!("`{raw}` is not a time"),
    })
}

pub fn organization(
    (id, uuid, name, api_key, modified): OrgRow,
) -> Result<Organization, ReadError> {
    Ok(Organization {
        id,
        uuid: uuid_of("badges_credlyorganization.uuid", &uuid)?,
        name,
        api_key,
        modified: time_of("badges_credlyorganization.modified", &modified)?,
    })
}

pub fn template(r: TemplateRow) -> Result<Template, ReadError> {
    let (id, uuid, name, description, icon, origin, state, is_active) = r;
    Ok(Template {
        id,
        uuid: uuid_of("badges_badgetemplate.uuid", &uuid)?,
        name,
        description,
        icon,
        origin,
        state,
        is_active: is_active != 0,
    })
}

pub fn requirement(
    (id, template_id, event_type, description, blend): RequirementRow,
) -> Requirement {
    Requirement {
        id,
        template_id,
        event_type,
        description,
        blend,
    }
}

pub fn rule((id, owner_id, path, operator, value): RuleRow) -> Rule {
    Rule {
        id,
        owner_id,
        path,
        operator,
        value,
    }
}

pub fn penalty((id, template_id, event_type): PenaltyRow) -> Penalty {
    Penalty {
        id,
        template_id,
        event_type,
    }
}

pub fn user((username, email, first_name, last_name, full_name, lms_user_id): UserRow) -> User {
    User {
        username,
        email,
        first_name,
        last_name,
        full_name,
        lms_user_id,
    }
}

pub fn progress((id, username, template_id): ProgressRow) -> Progress {
    Progress {
        id,
        username,
        template_id,
    }
}

pub fn fulfilment((progress_id, requirement_id): FulfilmentRow) -> Fulfilment {
    Fulfilment {
        progress_id,
        requirement_id,
    }
}

pub fn badge(r: BadgeRow) -> Result<CredlyBadge, ReadError> {
    let (id, uuid, username, status, template_id, created, modified, state, external) = r;
    Ok(CredlyBadge {
        id,
        uuid: uuid_of("credentials_usercredential.uuid", &uuid)?,
        username,
        status,
        template_id,
        created: time_of("credentials_usercredential.created", &created)?,
        modified: time_of("credentials_usercredential.modified", &modified)?,
        state,
        external_uuid: match external.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(uuid_of("badges_credlybadge.external_uuid", raw)?),
        },
    })
}

/// The usernames the badge tables name (progress records and badges), each once, sorted: the
/// learners whose `core_user` rows are read.
pub fn named_learners(data: &SourceData) -> Vec<String> {
    let mut names: Vec<&str> = data
        .progress
        .iter()
        .map(|p| p.username.as_str())
        .chain(data.badges.iter().map(|b| b.username.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(str::to_string).collect()
}

/// The body of a sqlx reader: `$tx` is an open transaction, `$sql` the module of the dialect's
/// SQL constants (`ORGS`, `TEMPLATES`, …), `$db` the sqlx database type. Checks the schema, then
/// reads every badge table into a [`SourceData`]; the dialect then reads the users by name
/// (through the unique index on `core_user.username`).
macro_rules! read_sqlx {
    ($tx:expr, $db:ty, $sql:ident) => {{
        use futures::TryStreamExt;
        use $crate::read::sqlx_source as rows;
        use $crate::read::{query_error, ReadError, ACCREDIBLE, REQUIRED};
        use $crate::source::*;

        for (table, columns) in REQUIRED {
            let probe = format!("SELECT {columns} FROM {table} WHERE 1 = 0");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(probe))
                .execute(&mut *$tx)
                .await
            {
                return Err(ReadError::Schema {
                    table: table.to_string(),
                    detail: e.to_string(),
                });
            }
        }
        // PostgreSQL aborts a transaction at its first error, so a missing optional table is
        // found by name, not by a failing probe.
        let mut accredible_present = true;
        for (table, _) in ACCREDIBLE {
            let (n,): (i64,) = sqlx::query_as($sql::TABLE_EXISTS)
                .bind(*table)
                .fetch_one(&mut *$tx)
                .await
                .map_err(|e| query_error("the table list")(e.to_string()))?;
            accredible_present &= n > 0;
        }

        let mut data = SourceData::default();
        macro_rules! all {
            ($what:literal, $q:expr, $row:ty) => {
                sqlx::query_as::<$db, $row>($q)
                    .fetch_all(&mut *$tx)
                    .await
                    .map_err(|e| query_error($what)(e.to_string()))?
            };
        }
        for r in all!("organizations", $sql::ORGS, rows::OrgRow) {
            data.organizations.push(rows::organization(r)?);
        }
        for r in all!("templates", $sql::TEMPLATES, rows::TemplateRow) {
            data.templates.push(rows::template(r)?);
        }
        data.credly_templates = all!("Credly templates", $sql::CREDLY_TEMPLATES, (i64, i64));
        if accredible_present {
            data.accredible_groups = all!("Accredible groups", $sql::ACCREDIBLE_GROUPS, (i64,))
                .into_iter()
                .map(|(id,)| id)
                .collect();
            let (configs, groups, badges): (i64, i64, i64) = all!(
                "Accredible counts",
                $sql::ACCREDIBLE_COUNTS,
                (i64, i64, i64)
            )
            .into_iter()
            .next()
            .unwrap_or_default();
            data.accredible = AccredibleCounts {
                api_configs: configs as u64,
                groups: groups as u64,
                badges: badges as u64,
            };
        }
        data.requirements = all!("requirements", $sql::REQUIREMENTS, rows::RequirementRow)
            .into_iter()
            .map(rows::requirement)
            .collect();
        data.rules = all!("data rules", $sql::RULES, rows::RuleRow)
            .into_iter()
            .map(rows::rule)
            .collect();
        data.penalties = all!("penalties", $sql::PENALTIES, rows::PenaltyRow)
            .into_iter()
            .map(rows::penalty)
            .collect();
        data.penalty_links = all!("penalty requirements", $sql::PENALTY_LINKS, (i64, i64));
        data.penalty_rules = all!("penalty data rules", $sql::PENALTY_RULES, rows::RuleRow)
            .into_iter()
            .map(rows::rule)
            .collect();
        data.progress = all!("progress records", $sql::PROGRESS, rows::ProgressRow)
            .into_iter()
            .map(rows::progress)
            .collect();
        // The largest table: streamed, converted row by row.
        let mut stream =
            sqlx::query_as::<$db, rows::FulfilmentRow>($sql::FULFILMENTS).fetch(&mut *$tx);
        while let Some(r) = stream
            .try_next()
            .await
            .map_err(|e| query_error("fulfilments")(e.to_string()))?
        {
            data.fulfilments.push(rows::fulfilment(r));
        }
        drop(stream);
        for r in all!("Credly badges", $sql::BADGES, rows::BadgeRow) {
            data.badges.push(rows::badge(r)?);
        }
        Ok::<SourceData, ReadError>(data)
    }};
}
pub(crate) use read_sqlx;
