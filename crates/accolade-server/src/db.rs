//! Opens the configured store: the backend is chosen by the URL scheme.

use std::sync::Arc;

use accolade_store::Store;
use accolade_store_postgres::{PgOptions, PgStore};
use accolade_store_sqlite::{path_from_url, SqliteOptions, SqliteStore};
use anyhow::Context;

use crate::config::{redact_url, DatabaseConfig};

pub async fn open(db: &DatabaseConfig) -> anyhow::Result<Arc<dyn Store>> {
    if db.url.starts_with("sqlite:") {
        let path = path_from_url(&db.url);
        let options = SqliteOptions {
            auto_migrate: db.auto_migrate,
            synchronous: db.sqlite_synchronous.to_ascii_uppercase(),
            page_size: db.sqlite_page_size,
            ..Default::default()
        };
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, &options))
            .await?
            .with_context(|| format!("opening {}", redact_url(&db.url)))?;
        tracing::info!(path = %store.path().display(), "using SQLite");
        Ok(Arc::new(store))
    } else {
        let options = PgOptions {
            auto_migrate: db.auto_migrate,
            max_connections: db.max_connections,
            event_lanes: db.event_lanes as usize,
            ..Default::default()
        };
        let store = PgStore::connect(&db.url, &options)
            .await
            .with_context(|| format!("connecting to {}", redact_url(&db.url)))?;
        tracing::info!(url = %redact_url(&db.url), "using PostgreSQL");
        Ok(Arc::new(store))
    }
}

/// Applies pending migrations; returns how many ran.
pub async fn migrate(db: &DatabaseConfig) -> anyhow::Result<usize> {
    if db.url.starts_with("sqlite:") {
        let path = path_from_url(&db.url);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteOptions {
            page_size: db.sqlite_page_size,
            ..Default::default()
        };
        Ok(tokio::task::spawn_blocking(move || SqliteStore::migrate(&path, &options)).await??)
    } else {
        Ok(PgStore::migrate(&db.url).await?)
    }
}
