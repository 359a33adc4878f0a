//! Prometheus metrics: names, the recorder and the helpers that update them. Names are
//! `accolade_*`; `/metrics` renders them in the Prometheus text format.

use std::sync::OnceLock;

use accolade_store::EventOutcome;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("accolade_event_processing_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(h) => h,
            // Another recorder is installed (only possible in tests); render an empty registry.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Events received by any ingest path, before validation.
pub fn events_received(n: usize) {
    counter!("accolade_events_received_total").increment(n as u64);
}

/// An event refused at ingest, by reason code.
pub fn event_rejected(code: &str) {
    counter!("accolade_events_rejected_total", "code" => code.to_string()).increment(1);
}

/// A processed event: accepted or duplicate, awards and revocations, latency to commit.
pub fn event_processed(outcome: &EventOutcome, seconds: f64) {
    match outcome {
        EventOutcome::Accepted { awarded, revoked } => {
            counter!("accolade_events_accepted_total").increment(1);
            if !awarded.is_empty() {
                counter!("accolade_awards_total").increment(awarded.len() as u64);
            }
            if !revoked.is_empty() {
                counter!("accolade_revokes_total").increment(revoked.len() as u64);
            }
        }
        EventOutcome::Duplicate => counter!("accolade_events_duplicate_total").increment(1),
    }
    histogram!("accolade_event_processing_seconds").record(seconds);
}

pub fn manual_award() {
    counter!("accolade_awards_total").increment(1);
}

pub fn manual_revoke() {
    counter!("accolade_revokes_total").increment(1);
}

/// Gauges read from the database at scrape time.
pub fn set_store_gauges(stats: &accolade_store::StoreStats) {
    gauge!("accolade_outbox_depth").set(stats.outbox_pending as f64);
    gauge!("accolade_outbox_dead").set(stats.outbox_dead as f64);
    gauge!("accolade_awards_active").set(stats.awards_active as f64);
}

/// Days until an organization's Credly key expires (negative once expired).
pub fn credly_key_days_left(org: &str, days: i64) {
    gauge!("accolade_credly_key_days_left", "organization" => org.to_string()).set(days as f64);
}

/// A finished template sync and how long it took.
pub fn credly_sync(org: &str, seconds: f64) {
    counter!("accolade_credly_syncs_total", "organization" => org.to_string()).increment(1);
    histogram!("accolade_credly_sync_seconds").record(seconds);
}

/// A webhook notification, by what became of it (queued, duplicate, ignored, applied, rejected).
pub fn credly_webhook(status: &str) {
    counter!("accolade_credly_webhooks_total", "status" => status.to_string()).increment(1);
}

/// A badge issued or revoked on Credly.
pub fn credly_delivery(action: &'static str) {
    counter!("accolade_credly_deliveries_total", "action" => action).increment(1);
}

/// A rotation of an organization's authorization token through Credly, by result (`ok`,
/// `failed`) and trigger (`manual`, `auto`).
pub fn credly_key_rotation(result: &'static str, trigger: &'static str) {
    counter!("accolade_credly_key_rotations_total", "result" => result, "trigger" => trigger)
        .increment(1);
}

/// A request to Credly's OAuth token endpoint, by result (`ok`, `failed`), and its duration.
pub fn credly_token_request(result: &'static str, seconds: f64) {
    counter!("accolade_credly_token_requests_total", "result" => result).increment(1);
    histogram!("accolade_credly_token_request_seconds").record(seconds);
}

/// A failed Credly job attempt, by error code and what happens next (retry, dead, deferred).
pub fn credly_job_failure(code: &str, outcome: &'static str) {
    counter!("accolade_credly_job_failures_total", "code" => code.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Event-bus entries taken over from a consumer that did not acknowledge them in time.
pub fn bus_reclaimed(n: usize) {
    counter!("accolade_bus_reclaimed_total").increment(n as u64);
}

/// Event-bus entries of event types nobody configured (acknowledged, not processed).
pub fn bus_ignored(n: usize) {
    counter!("accolade_bus_ignored_total").increment(n as u64);
}

/// An event-bus entry that could not be decoded (kept as a dead letter), by reason.
pub fn bus_dead_letter(code: &str) {
    counter!("accolade_bus_dead_letters_total", "code" => code.to_string()).increment(1);
}

/// Awards the expiry sweep found expired (each with its one `badge.expired` event).
pub fn awards_expired(n: usize) {
    if n > 0 {
        counter!("accolade_awards_expired_total").increment(n as u64);
    }
}

/// Badge events published to the event bus.
pub fn bus_published(n: usize) {
    counter!("accolade_bus_published_total").increment(n as u64);
}

/// 1 while this instance holds the event-bus publisher lease, else 0.
pub fn bus_publisher_leader(leader: bool) {
    gauge!("accolade_bus_publisher_leader").set(if leader { 1.0 } else { 0.0 });
}

/// Webhook deliveries created by fan-out (one per event and matching subscription).
pub fn webhook_deliveries_created(n: u64) {
    counter!("accolade_webhook_deliveries_created_total").increment(n);
}

/// A finished webhook attempt: `succeeded`, `failed` (a retry is scheduled) or `dead`.
pub fn webhook_delivery(outcome: &'static str) {
    counter!("accolade_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

/// A job of a blocking-pool budget (`service/blocking.rs`, e.g. `opencredit_images`), by what
/// became of it: `done`, `busy` (refused, the wait was full) or `abandoned` (its request went
/// away before or while it ran).
pub fn blocking_job(budget: &'static str, outcome: &'static str) {
    counter!("accolade_blocking_jobs_total", "budget" => budget, "outcome" => outcome).increment(1);
}

/// Open Badges credentials signed and stored.
pub const OB_CREDENTIALS_SIGNED: &str = "accolade_openbadges_credentials_signed_total";
/// Open Badges credentials whose status bit was set (revoked).
pub const OB_CREDENTIALS_REVOKED: &str = "accolade_openbadges_credentials_revoked_total";
/// Status list credentials (re-)signed.
pub const OB_STATUS_LISTS_SIGNED: &str = "accolade_openbadges_status_lists_signed_total";

/// Backfills queued (API, CLI, admin UI, activation, rules as code).
pub const BACKFILLS_QUEUED: &str = "accolade_backfills_queued_total";
/// Backfills ended, by state (`succeeded`, `failed`, `cancelled`).
pub const BACKFILLS_FINISHED: &str = "accolade_backfills_finished_total";
/// Awards and revocations made by backfills.
pub const BACKFILL_AWARDS: &str = "accolade_backfill_awards_total";
pub const BACKFILL_REVOCATIONS: &str = "accolade_backfill_revocations_total";
/// Learners replayed and written by backfill apply steps.
pub const BACKFILL_LEARNERS: &str = "accolade_backfill_learners_total";
