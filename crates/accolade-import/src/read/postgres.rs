//! PostgreSQL sources. Integers are widened to `bigint`, UUIDs and times turned into text, so
//! the rows have the same shape as from the other databases.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::{ConnectOptions, Connection};

use crate::source::SourceData;

use super::sqlx_source::{named_learners, read_sqlx, user, UserRow};
use super::{ReadError, CONNECT_TIMEOUT};

mod sql {
    pub const TABLE_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.tables \
        WHERE table_schema = current_schema() AND table_name = $1";
    pub const ORGS: &str = "SELECT id::bigint, uuid::text, name, api_key, \
        to_char(modified AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') \
        FROM badges_credlyorganization ORDER BY id";
    pub const TEMPLATES: &str = "SELECT id::bigint, uuid::text, name, description, icon, origin, \
        state, (CASE WHEN is_active THEN 1 ELSE 0 END)::bigint FROM badges_badgetemplate ORDER BY id";
    pub const CREDLY_TEMPLATES: &str =
        "SELECT badgetemplate_ptr_id::bigint, organization_id::bigint FROM badges_credlybadgetemplate";
    pub const ACCREDIBLE_GROUPS: &str =
        "SELECT badgetemplate_ptr_id::bigint FROM badges_accrediblegroup";
    pub const ACCREDIBLE_COUNTS: &str = "SELECT \
        (SELECT COUNT(*) FROM badges_accredibleapiconfig), \
        (SELECT COUNT(*) FROM badges_accrediblegroup), \
        (SELECT COUNT(*) FROM badges_accrediblebadge)";
    pub const REQUIREMENTS: &str =
        "SELECT id::bigint, template_id::bigint, event_type, description, \
        blend FROM badges_badgerequirement ORDER BY id";
    pub const RULES: &str =
        "SELECT id::bigint, requirement_id::bigint, data_path, operator, value \
        FROM badges_datarule ORDER BY id";
    pub const PENALTIES: &str =
        "SELECT id::bigint, template_id::bigint, event_type FROM badges_badgepenalty ORDER BY id";
    pub const PENALTY_LINKS: &str = "SELECT badgepenalty_id::bigint, badgerequirement_id::bigint \
        FROM badges_badgepenalty_requirements ORDER BY id";
    pub const PENALTY_RULES: &str =
        "SELECT id::bigint, penalty_id::bigint, data_path, operator, value \
        FROM badges_penaltydatarule ORDER BY id";
    pub const PROGRESS: &str =
        "SELECT id::bigint, username, template_id::bigint FROM badges_badgeprogress ORDER BY id";
    pub const FULFILMENTS: &str =
        "SELECT progress_id::bigint, requirement_id::bigint FROM badges_fulfillment ORDER BY id";
    pub const BADGES: &str = "SELECT uc.id::bigint, uc.uuid::text, uc.username, uc.status, \
        uc.credential_id::bigint, \
        to_char(uc.created AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
        to_char(uc.modified AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
        cb.state, cb.external_uuid::text \
        FROM badges_credlybadge cb JOIN credentials_usercredential uc ON uc.id = cb.usercredential_ptr_id \
        ORDER BY uc.id";
}

pub async fn read(url: &str, shown: &str) -> Result<SourceData, ReadError> {
    let unreachable = |detail: String| ReadError::Unreachable {
        url: shown.to_string(),
        detail,
    };
    let options =
        PgConnectOptions::from_str(url).map_err(|e| ReadError::BadUrl(format!("{shown}: {e}")))?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| unreachable(e.to_string()))?;
    let mut tx = conn.begin().await.map_err(|e| unreachable(e.to_string()))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut data = read_sqlx!(tx, Postgres, sql)?;
    // By name, through the unique index, in one statement with the names as an array.
    let rows = sqlx::query_as::<Postgres, UserRow>(
        "SELECT username, email, first_name, last_name, full_name, lms_user_id::bigint \
         FROM core_user WHERE username = ANY($1)",
    )
    .bind(named_learners(&data))
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| ReadError::Query {
        what: "users",
        detail: e.to_string(),
    })?;
    data.users = rows.into_iter().map(user).collect();
    tx.rollback().await.ok();
    conn.close().await.ok();
    Ok(data)
}
