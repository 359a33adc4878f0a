//! The expiry sweep: every `worker.expiry_check_interval` (30 s by default), awards whose
//! `expires_at` has passed are marked notified and each gets exactly one `badge.expired`
//! outgoing event (`Store::notify_expired_awards`: one statement marks them in the transaction
//! that writes the events). There is no claim or lease: several instances may sweep at once
//! and still write each event once. Webhook subscribers receive the events through the usual
//! fan-out; the event-bus publisher and the Open Badges issuer pass them by. An award shows
//! `expired` from its `expires_at` on, whether or not the sweep has run yet: the flag is computed
//! when the award is read.

use chrono::Utc;

use crate::state::AppState;

/// Awards marked per transaction.
const BATCH: u32 = 500;

/// One sweep: marks every award expired by now (in batches); returns how many.
pub async fn sweep(state: &AppState) -> anyhow::Result<usize> {
    let now = Utc::now();
    let mut total = 0;
    loop {
        let notified = state.store.notify_expired_awards(now, BATCH).await?;
        for a in &notified {
            tracing::info!(award.id = %a.id, template = %a.template_id, learner = %a.learner,
                "award {} expired", a.id);
        }
        total += notified.len();
        crate::metrics::awards_expired(notified.len());
        if notified.len() < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Runs [`sweep`] until shutdown, every `worker.expiry_check_interval` (a failed sweep is
/// logged and tried again at the next one).
pub async fn run(state: AppState) {
    let every = match state.config.expiry_check_interval() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "expiry sweep not started");
            return;
        }
    };
    loop {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "expiry sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}
