//! Import from Open edX Credentials: read its badges tables and plan what Accolade creates.
//!
//! - [`source`]: the rows read, the same shape from every database;
//! - [`read`]: the source URL, the schema check and one reader per database kind;
//! - [`plan`]: what the rows mean in Accolade (pure: validation, groups, rules, progress, badges,
//!   the report), written by the server's `service::import` through the store.

pub mod plan;
pub mod read;
pub mod source;
