//! `AppState`: what every handler, worker and CLI command shares.

use std::sync::Arc;

use accolade_store::{IndexCache, Store};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::service::auth::TokenCache;
use crate::service::credly::Credly;
use crate::service::ingest::Ingest;
use crate::service::openbadges::OpenBadges;
use crate::service::secrets::SecretBox;
use crate::service::webhooks::Webhooks;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The rules index, rebuilt from the database when the configuration version changes.
    pub index: Arc<IndexCache>,
    /// The group-commit event writer.
    pub ingest: Ingest,
    /// The Credly bridge (client, key encryption, rate limiter).
    pub credly: Credly,
    /// Outbound webhooks (HTTP client, secret sealing, retry policy).
    pub webhooks: Webhooks,
    /// The Open Credit API's limiter, mailer and caches.
    pub opencredit: Arc<crate::opencredit::runtime::OpenCredit>,
    /// The Open Badges 3.0 issuer (keys, documents, proof checks).
    pub openbadges: Arc<OpenBadges>,
    /// Backfills and previews (the preview budget and the editor's cached snapshot).
    pub backfills: crate::service::backfill::cache::Backfills,
    /// Recently verified admin tokens.
    pub tokens: TokenCache,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// What this process runs besides the HTTP API, set once by `accolade serve` (readiness
    /// reports it, so an operator of several instances sees which one does what).
    pub roles: std::sync::OnceLock<Vec<&'static str>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state (loading the secrets key) and starts the ingest writer task.
    pub fn new(store: Arc<dyn Store>, config: Config) -> anyhow::Result<AppState> {
        let secrets = SecretBox::load(&config.secrets, &config.database.url)?;
        let webhooks = Webhooks::new(&config.webhooks, config.worker.lease_secs, secrets.clone())?;
        let openbadges = Arc::new(OpenBadges::new(&config, secrets.clone())?);
        let credly = Credly::new(config.credly.clone(), secrets)?;
        let index = Arc::new(IndexCache::new());
        let shutdown = CancellationToken::new();
        let ingest = Ingest::start(
            store.clone(),
            index.clone(),
            &config.ingest,
            shutdown.clone(),
        );
        let opencredit = Arc::new(crate::opencredit::runtime::OpenCredit::new(
            &config.opencredit,
        )?);
        Ok(AppState(Arc::new(Inner {
            store,
            config: Arc::new(config),
            index,
            ingest,
            credly,
            webhooks,
            opencredit,
            openbadges,
            backfills: Default::default(),
            tokens: TokenCache::default(),
            shutdown,
            roles: std::sync::OnceLock::new(),
        })))
    }
}
