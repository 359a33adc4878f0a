//! The storage interface: one trait per area, and [`Store`], which is all of them. Every method is
//! one use case and one transaction, so transactions never cross this boundary and outbox rows
//! are always written atomically with the change that caused them.
//!
//! | area                                       | trait               | file            |
//! |--------------------------------------------|---------------------|-----------------|
//! | templates, requirements, penalties         | [`ConfigStore`]     | `config.rs`     |
//! | event batches, rejected events, event log  | [`EventStore`]      | `events.rs`     |
//! | learners, progress, awards                 | [`AwardStore`]      | `awards.rs`     |
//! | outbox jobs, award deliveries, publication | [`OutboxStore`]     | `outbox.rs`     |
//! | Credly organizations, sync, notifications  | [`CredlyStore`]     | `credly.rs`     |
//! | outbound webhooks                          | [`WebhookStore`]    | `webhooks.rs`   |
//! | admin accounts, sessions, tokens, stats    | [`AdminStore`]      | `admin.rs`      |
//! | the Open Credit-style API (`oc_*`)         | [`OpenCreditStore`] | `opencredit.rs` |
//! | Open Badges 3.0 keys, credentials, status  | [`OpenBadgesStore`] | `openbadges.rs` |
//! | inbox scans, backfill jobs and steps       | [`BackfillStore`]   | `backfill.rs`   |
//! | imports from other badge systems           | [`ImportStore`]     | `import.rs`     |
//!
//! Callers hold an `Arc<dyn Store>`, on which every area's methods can be called without
//! importing the area's trait. Calling them on a concrete store or a generic `S: Store` needs the
//! traits in scope: `use accolade_store::prelude::*;`.

mod admin;
mod awards;
mod backfill;
mod config;
mod credly;
mod events;
mod import;
mod openbadges;
mod opencredit;
mod outbox;
mod webhooks;

use async_trait::async_trait;

use crate::StoreError;

pub use admin::AdminStore;
pub use awards::AwardStore;
pub use backfill::BackfillStore;
pub use config::ConfigStore;
pub use credly::CredlyStore;
pub use events::EventStore;
pub use import::ImportStore;
pub use openbadges::OpenBadgesStore;
pub use opencredit::OpenCreditStore;
pub use outbox::OutboxStore;
pub use webhooks::WebhookStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Resolves when a commit is durable: see [`EventStore::process_events_pipelined`].
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// A whole store: every area's trait, plus what concerns the database as a whole.
#[async_trait]
pub trait Store:
    ConfigStore
    + EventStore
    + AwardStore
    + OutboxStore
    + CredlyStore
    + WebhookStore
    + AdminStore
    + OpenCreditStore
    + OpenBadgesStore
    + BackfillStore
    + ImportStore
    + Send
    + Sync
    + 'static
{
    /// Backend name for logs and `/health/ready` (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// A cheap round trip to the database.
    async fn ping(&self) -> Result<()>;
}
