//! MySQL and MariaDB sources (Tutor's default). UUID columns are MariaDB's native `uuid` or
//! `char(32)`: `CAST(… AS CHAR)` reads either as text. Times are formatted by the server, so no
//! time zone conversion happens on the way (Credentials stores UTC). The connection speaks
//! `utf8mb4` (sqlx's default), so 4-byte characters in usernames arrive intact.

use std::str::FromStr;

use sqlx::mysql::{MySql, MySqlConnectOptions};
use sqlx::{ConnectOptions, Connection};

use crate::source::SourceData;

use super::sqlx_source::{named_learners, read_sqlx, user, UserRow};
use super::{ReadError, CONNECT_TIMEOUT};

/// Names per `core_user` query (bound parameters; MySQL allows 65,535).
const USERS_PER_QUERY: usize = 2_000;

mod sql {
    pub const TABLE_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.tables \
        WHERE table_schema = DATABASE() AND table_name = ?";
    pub const ORGS: &str = "SELECT CAST(id AS SIGNED), CAST(uuid AS CHAR), name, api_key, \
        DATE_FORMAT(modified, '%Y-%m-%d %H:%i:%s.%f') FROM badges_credlyorganization ORDER BY id";
    pub const TEMPLATES: &str =
        "SELECT CAST(id AS SIGNED), CAST(uuid AS CHAR), name, description, \
        icon, origin, state, CAST(is_active AS SIGNED) FROM badges_badgetemplate ORDER BY id";
    pub const CREDLY_TEMPLATES: &str = "SELECT CAST(badgetemplate_ptr_id AS SIGNED), \
        CAST(organization_id AS SIGNED) FROM badges_credlybadgetemplate";
    pub const ACCREDIBLE_GROUPS: &str =
        "SELECT CAST(badgetemplate_ptr_id AS SIGNED) FROM badges_accrediblegroup";
    pub const ACCREDIBLE_COUNTS: &str = "SELECT \
        (SELECT COUNT(*) FROM badges_accredibleapiconfig), \
        (SELECT COUNT(*) FROM badges_accrediblegroup), \
        (SELECT COUNT(*) FROM badges_accrediblebadge)";
    pub const REQUIREMENTS: &str = "SELECT CAST(id AS SIGNED), CAST(template_id AS SIGNED), \
        event_type, description, blend FROM badges_badgerequirement ORDER BY id";
    pub const RULES: &str =
        "SELECT CAST(id AS SIGNED), CAST(requirement_id AS SIGNED), data_path, \
        operator, value FROM badges_datarule ORDER BY id";
    pub const PENALTIES: &str =
        "SELECT CAST(id AS SIGNED), CAST(template_id AS SIGNED), event_type \
        FROM badges_badgepenalty ORDER BY id";
    pub const PENALTY_LINKS: &str = "SELECT CAST(badgepenalty_id AS SIGNED), \
        CAST(badgerequirement_id AS SIGNED) FROM badges_badgepenalty_requirements ORDER BY id";
    pub const PENALTY_RULES: &str = "SELECT CAST(id AS SIGNED), CAST(penalty_id AS SIGNED), \
        data_path, operator, value FROM badges_penaltydatarule ORDER BY id";
    pub const PROGRESS: &str = "SELECT CAST(id AS SIGNED), username, CAST(template_id AS SIGNED) \
        FROM badges_badgeprogress ORDER BY id";
    pub const FULFILMENTS: &str =
        "SELECT CAST(progress_id AS SIGNED), CAST(requirement_id AS SIGNED) \
        FROM badges_fulfillment ORDER BY id";
    pub const BADGES: &str = "SELECT CAST(uc.id AS SIGNED), CAST(uc.uuid AS CHAR), uc.username, \
        uc.status, CAST(uc.credential_id AS SIGNED), \
        DATE_FORMAT(uc.created, '%Y-%m-%d %H:%i:%s.%f'), \
        DATE_FORMAT(uc.modified, '%Y-%m-%d %H:%i:%s.%f'), cb.state, CAST(cb.external_uuid AS CHAR) \
        FROM badges_credlybadge cb JOIN credentials_usercredential uc ON uc.id = cb.usercredential_ptr_id \
        ORDER BY uc.id";
}

pub async fn read(url: &str, shown: &str) -> Result<SourceData, ReadError> {
    let unreachable = |detail: String| ReadError::Unreachable {
        url: shown.to_string(),
        detail,
    };
    let options = MySqlConnectOptions::from_str(url)
        .map_err(|e| ReadError::BadUrl(format!("{shown}: {e}")))?
        .charset("utf8mb4");
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| unreachable(e.to_string()))?;
    let mut tx = conn.begin().await.map_err(|e| unreachable(e.to_string()))?;
    // InnoDB's REPEATABLE READ: every query below sees the snapshot the first one took.
    let mut data = read_sqlx!(tx, MySql, sql)?;
    // By name, a chunk at a time: MariaDB ran `username IN (SELECT … UNION …)` as a dependent
    // subquery per user, and even a join with the distinct names took 4.6 s for 250,000 learners
    // (a temporary table deduplicating utf8mb4 strings); the unique index answers each name.
    for chunk in named_learners(&data).chunks(USERS_PER_QUERY) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let q = format!(
            "SELECT username, email, first_name, last_name, full_name, \
             CAST(lms_user_id AS SIGNED) FROM core_user WHERE username IN ({marks})"
        );
        let mut query = sqlx::query_as::<MySql, UserRow>(sqlx::AssertSqlSafe(q));
        for name in chunk {
            query = query.bind(name);
        }
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| ReadError::Query {
                what: "users",
                detail: e.to_string(),
            })?;
        data.users.extend(rows.into_iter().map(user));
    }
    tx.rollback().await.ok();
    conn.close().await.ok();
    Ok(data)
}
