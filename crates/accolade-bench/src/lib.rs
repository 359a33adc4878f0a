//! Shared parts of the benchmark drivers (`accolade-bench`, `credly-bench`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod server;
pub mod workload;
