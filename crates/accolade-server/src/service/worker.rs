//! What every worker shares: the poll loop, draining (tests and the CLI) and retry jitter.
//!
//! The jobs of local templates need no worker: they are done in the transaction that writes
//! them (`outbox::done_in_place`), and migration 0014 completed any an earlier version left
//! pending. Credly jobs run in `service/credly/worker.rs`, webhook deliveries in
//! `service/webhooks/worker.rs`.

use std::time::Duration;

use rand::Rng;

use crate::state::AppState;

/// Runs `pass` again and again until shutdown: at once while a pass does at least `full` units
/// of work (more is likely waiting), else after `worker.poll_interval_ms` (also after a failure,
/// which is logged, not fatal).
pub async fn poll_loop<'a, F, Fut>(
    state: &'a AppState,
    what: &'static str,
    full: usize,
    mut pass: F,
) where
    F: FnMut(&'a AppState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + 'a,
{
    let poll = Duration::from_millis(state.config.worker.poll_interval_ms);
    loop {
        let worked = match pass(state).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "{what} pass failed");
                0
            }
        };
        if worked < full.max(1) {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    }
}

/// A jitter factor for a retry delay (± 20%), so work that failed together does not come back
/// together (see [`accolade_domain::retry::RetryPolicy::next`]).
pub fn jitter() -> f64 {
    rand::rng().random_range(0.8..=1.2)
}

/// `delay` ± 20%.
pub fn jittered(delay: Duration) -> chrono::Duration {
    chrono::Duration::milliseconds((delay.as_millis() as f64 * jitter()) as i64)
}

/// Runs `pass` until one finds nothing to do; returns how much was done in all (the `drain` of
/// every worker).
pub async fn drain_with<'a, F, Fut>(state: &'a AppState, mut pass: F) -> anyhow::Result<usize>
where
    F: FnMut(&'a AppState) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + 'a,
{
    let mut total = 0;
    loop {
        let n = pass(state).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..200 {
            let ms = jittered(Duration::from_millis(1000)).num_milliseconds();
            assert!((800..=1200).contains(&ms), "{ms}");
        }
    }
}
