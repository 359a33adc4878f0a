#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod admin;
mod backfill;
mod error;
mod import;
mod index_cache;
mod models;
mod openbadges;
mod opencredit;
pub mod prelude;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod webhooks;

pub use admin::*;
pub use backfill::*;
pub use error::{Entity, StoreError};
pub use import::*;
pub use index_cache::IndexCache;
pub use models::*;
pub use openbadges::*;
pub use opencredit::*;
pub use store::{
    AdminStore, AwardStore, BackfillStore, ConfigStore, CredlyStore, Durable, EventStore,
    ImportStore, OpenBadgesStore, OpenCreditStore, OutboxStore, Store, WebhookStore,
};
pub use webhooks::*;
