//! Every store trait, for `use accolade_store::prelude::*;`.
//!
//! [`Store`] is the sum of one trait per area. On an `Arc<dyn Store>` every method resolves
//! without imports (a trait object has its supertraits' methods), but on a concrete store
//! (`SqliteStore`, `PgStore`) or a generic `S: Store` a method of an area's trait is found only
//! when that trait is in scope. Glob-importing this module brings them all.

pub use crate::store::{
    AdminStore, AwardStore, BackfillStore, ConfigStore, CredlyStore, EventStore, ImportStore,
    OpenBadgesStore, OpenCreditStore, OutboxStore, Store, WebhookStore,
};
