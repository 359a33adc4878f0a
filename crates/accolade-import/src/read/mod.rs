//! Reading an Open edX Credentials database: the source URL, the schema check, and one reader per
//! database kind. MySQL/MariaDB and PostgreSQL go through sqlx ([`sqlx_source`]), SQLite through
//! rusqlite ([`sqlite`]: the workspace already links SQLite through it, and sqlx's SQLite driver
//! would link a second copy). All three run the same queries up to the casts each database needs
//! to hand back the same plain values (text UUIDs and times, 64-bit integers).

mod mysql;
mod postgres;
mod sqlite;
mod sqlx_source;

use std::time::Duration;

use crate::source::SourceData;

/// How long connecting to the source may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The tables and columns the import reads, in the order the schema check tries them. A source
/// without one of them is not a Credentials database with the badges app migrated (or is of a
/// version whose tables differ): refused before anything is read.
pub const REQUIRED: &[(&str, &str)] = &[
    (
        "badges_credlyorganization",
        "id, uuid, name, api_key, modified",
    ),
    (
        "badges_badgetemplate",
        "id, uuid, name, description, icon, origin, state, is_active",
    ),
    (
        "badges_credlybadgetemplate",
        "badgetemplate_ptr_id, organization_id",
    ),
    (
        "badges_badgerequirement",
        "id, template_id, event_type, description, blend",
    ),
    (
        "badges_datarule",
        "id, requirement_id, data_path, operator, value",
    ),
    ("badges_badgepenalty", "id, template_id, event_type"),
    (
        "badges_badgepenalty_requirements",
        "badgepenalty_id, badgerequirement_id",
    ),
    (
        "badges_penaltydatarule",
        "id, penalty_id, data_path, operator, value",
    ),
    ("badges_badgeprogress", "id, username, template_id"),
    ("badges_fulfillment", "id, progress_id, requirement_id"),
    (
        "credentials_usercredential",
        "id, uuid, username, status, credential_id, created, modified",
    ),
    (
        "badges_credlybadge",
        "usercredential_ptr_id, state, external_uuid",
    ),
    (
        "core_user",
        "username, email, first_name, last_name, full_name, lms_user_id",
    ),
];

/// Accredible's tables: counted when present (Credentials added them in 2024).
pub const ACCREDIBLE: &[(&str, &str)] = &[
    ("badges_accredibleapiconfig", "id"),
    ("badges_accrediblegroup", "badgetemplate_ptr_id"),
    ("badges_accrediblebadge", "usercredential_ptr_id"),
];

/// Where to read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `mysql://` or `mariadb://`.
    MySql(String),
    /// `postgres://` or `postgresql://`.
    Postgres(String),
    /// `sqlite:PATH` or `sqlite://PATH`: the file path.
    Sqlite(String),
}

impl SourceUrl {
    pub fn parse(raw: &str) -> Result<Self, ReadError> {
        let raw = raw.trim();
        let scheme = raw.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "mysql" => Ok(SourceUrl::MySql(raw.to_string())),
            "mariadb" => Ok(SourceUrl::MySql(format!("mysql{}", &raw["mariadb".len()..]))),
            "postgres" | "postgresql" => Ok(SourceUrl::Postgres(raw.to_string())),
            "sqlite" => {
                let rest = &raw["sqlite:".len()..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() {
                    return Err(ReadError::BadUrl("sqlite: needs a file path (sqlite:/path/to/credentials.db)".into()));
                }
                Ok(SourceUrl::Sqlite(path.to_string()))
            }
            _ => Err(ReadError::BadUrl(format!(
                "unsupported source `{}`: use mysql://USER:PASS@HOST/DB, postgres://USER:PASS@HOST/DB or sqlite:PATH",
                redact(raw)
            ))),
        }
    }

    /// The URL without its password, for messages.
    pub fn display(&self) -> String {
        match self {
            SourceUrl::MySql(u) | SourceUrl::Postgres(u) => redact(u),
            SourceUrl::Sqlite(p) => format!("sqlite:{p}"),
        }
    }
}

impl std::fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `scheme://user:secret@host/db` -> `scheme://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// Why a source could not be read. Messages never hold the password.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    BadUrl(String),
    #[error("cannot reach the source {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "the source is not an Open edX Credentials database with the badges tables this import knows \
         (table {table}: {detail}); check that --from names Credentials' database and that its \
         `badges` app is migrated"
    )]
    Schema { table: String, detail: String },
    #[error("reading {what} from the source failed: {detail}")]
    Query { what: &'static str, detail: String },
}

/// Reads everything the import needs. Read in one transaction where the database allows it, so
/// the rows are one consistent snapshot even while Credentials keeps running.
pub async fn read(url: &SourceUrl) -> Result<SourceData, ReadError> {
    match url {
        SourceUrl::MySql(u) => mysql::read(u, &url.display()).await,
        SourceUrl::Postgres(u) => postgres::read(u, &url.display()).await,
        SourceUrl::Sqlite(p) => {
            let p = p.clone();
            let shown = url.display();
            tokio::task::spawn_blocking(move || sqlite::read(&p, &shown))
                .await
                .map_err(|e| ReadError::Query {
                    what: "the SQLite source",
                    detail: e.to_string(),
                })?
        }
    }
}

fn query_error(what: &'static str) -> impl Fn(String) -> ReadError {
    move |detail| ReadError::Query { what, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_passwords_never_shown() {
        let u = SourceUrl::parse("mysql://root:s3cret@127.0.0.1:3306/credentials").unwrap();
        assert!(matches!(u, SourceUrl::MySql(_)));
        assert_eq!(u.display(), "mysql://root:***@127.0.0.1:3306/credentials");
        assert!(!format!("{u:?}").contains("s3cret"));
        let m = SourceUrl::parse("mariadb://root@db/c").unwrap();
        assert_eq!(m, SourceUrl::MySql("mysql://root@db/c".into()));
        assert!(matches!(
            SourceUrl::parse("postgresql://p@h/d").unwrap(),
            SourceUrl::Postgres(_)
        ));
        assert_eq!(
            SourceUrl::parse("sqlite:/tmp/c.db").unwrap(),
            SourceUrl::Sqlite("/tmp/c.db".into())
        );
        assert_eq!(
            SourceUrl::parse("sqlite:///tmp/c.db").unwrap(),
            SourceUrl::Sqlite("/tmp/c.db".into())
        );
        let err = SourceUrl::parse("oracle://u:pw@h/d")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported source") && !err.contains("pw@"),
            "{err}"
        );
    }
}
