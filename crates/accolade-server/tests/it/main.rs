//! The one integration-test binary of accolade-server (every file under tests/ would be another
//! binary to link). Modules group tests by concern; `helpers` builds a `TestApp`.

mod admin_templates;
mod admin_ui;
mod api;
mod backfill;
mod browser;
mod bus;
mod bus_crash;
mod cluster_crash;
mod crash;
mod credly;
mod credly_crash;
mod credly_keys;
mod credly_mock;
mod credly_oauth;
mod credly_rotation;
mod expiry;
mod hardening;
mod helpers;
mod import;
mod ingest;
mod openbadges;
mod opencredit;
mod operator_bus;
mod operator_config;
mod operator_demo;
mod process;
mod readme;
mod rules_as_code;
mod webhooks;
