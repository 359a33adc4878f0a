//! Use cases shared by the JSON API, the admin UI, the CLI and the workers. Handlers stay thin:
//! they translate HTTP, HTML or command-line input into these calls and the results back.

pub mod admin_sessions;
pub mod admin_users;
pub mod admission;
pub mod apply;
pub mod auth;
pub mod awards;
pub mod backfill;
pub mod blocking;
pub mod bulk;
pub mod bus;
pub mod checks;
pub mod credly;
pub mod event_types;
pub mod events;
pub mod expiry;
pub mod explain;
pub mod import;
pub mod ingest;
pub mod jobs;
pub mod learners;
pub mod openbadges;
pub mod password;
pub mod penalties;
pub mod priority;
pub mod progress;
pub mod requirements;
pub mod secrets;
pub mod stats;
pub mod templates;
pub mod webhooks;
pub mod worker;
