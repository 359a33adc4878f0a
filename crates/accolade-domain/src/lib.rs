#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod award;
pub mod backfill;
pub mod credly_sync;
pub mod decision;
pub mod engine;
pub mod error;
pub mod event;
pub mod expiry;
pub mod ids;
pub mod login;
pub mod manual;
pub mod outbox;
pub mod retry;
pub mod rules;
pub mod rules_apply;
pub mod sparse_json;
pub mod template;
pub mod webhook;

pub use error::DomainError;
