//! Use cases shared by the JSON API, the CLI and the workers. Handlers stay thin and call these.

pub mod admission;
pub mod apply;
pub mod auth;
pub mod blocking;
pub mod bus;
pub mod checks;
pub mod credly;
pub mod ingest;
pub mod progress;
pub mod secrets;
pub mod webhooks;
pub mod worker;
