#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod opencredit;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod web;

pub use api::build_app;
pub use state::AppState;
