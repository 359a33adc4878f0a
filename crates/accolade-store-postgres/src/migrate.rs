//! Schema migrations and server checks.
//!
//! The files in `migrations/` carry the same names as the SQLite crate's (same version, same
//! purpose) and are embedded at build time with `sqlx::migrate!`, which records them in
//! `_sqlx_migrations` with a checksum and serialises concurrent runs with an advisory lock.
//! Deployments with several instances set `database.auto_migrate = false` and run
//! `accolade migrate` once per release; an instance then refuses to start on an older schema.

use accolade_store::StoreError;
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};

type Result<T> = std::result::Result<T, StoreError>;

/// Every migration of this crate.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Oldest supported server (`server_version_num`): PostgreSQL 12.
pub const MIN_SERVER_VERSION: i32 = 120_000;

/// Refuses servers older than [`MIN_SERVER_VERSION`].
pub async fn check_server_version(c: &mut PgConnection) -> Result<()> {
    let (num, text): (i32, String) = sqlx::query_as(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
    )
    .fetch_one(c)
    .await
    .map_err(|e| StoreError::Other(format!("cannot read the PostgreSQL server version: {e}")))?;
    if num < MIN_SERVER_VERSION {
        return Err(StoreError::Other(format!(
            "PostgreSQL {text} is too old: Accolade needs PostgreSQL 12 or newer"
        )));
    }
    Ok(())
}

/// Versions and checksums of the migrations recorded as applied (none on an empty database).
async fn applied(c: &mut PgConnection) -> Result<Vec<(i64, Vec<u8>)>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *c)
        .await
        .map_err(|e| StoreError::Other(format!("cannot read the migration history: {e}")))?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(c)
        .await
        .map_err(|e| StoreError::Other(format!("cannot read the migration history: {e}")))
}

/// Applies pending migrations; returns how many ran.
pub async fn run(pool: &PgPool) -> Result<usize> {
    let before = {
        let mut c = pool.acquire().await.map_err(crate::rows::db)?;
        applied(&mut c).await?.len()
    };
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| StoreError::Other(format!("PostgreSQL migration failed: {e}")))?;
    let mut c = pool.acquire().await.map_err(crate::rows::db)?;
    Ok(applied(&mut c).await?.len().saturating_sub(before))
}

/// Fails unless every migration of this build is applied, unchanged.
pub async fn check(c: &mut PgConnection) -> Result<()> {
    let applied = applied(c).await?;
    for m in MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        match applied.iter().find(|(v, _)| *v == m.version) {
            None => {
                return Err(StoreError::Other(format!(
                    "the database schema is not up to date (migration {} `{}` is not applied): \
                     run `accolade migrate` or set database.auto_migrate = true",
                    m.version, m.description
                )))
            }
            Some((_, sum)) if sum.as_slice() != &*m.checksum => {
                return Err(StoreError::Other(format!(
                    "migration {} `{}` was changed after it was applied",
                    m.version, m.description
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}
