//! The award bridge: local templates of the rules engine are Open Credit badges. A badge created
//! with `template_id` stands for that template; this worker gives a member badge (pending, to the
//! learner's email address) for every unrevoked award of the template, and withdraws it when the
//! award is revoked. The learner accepts it like any other credit, once the address is verified.

use crate::service::worker::poll_loop;
use crate::state::AppState;

/// Awards bridged per pass at most.
const BATCH: u32 = 500;

/// Runs the bridge until shutdown.
pub async fn run(state: AppState) {
    poll_loop(&state, "open credit award bridge", BATCH as usize, run_once).await
}

/// One pass; returns how many member badges it gave or withdrew.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let sync = state.store.oc_sync_awards(BATCH).await?;
    if sync.given + sync.withdrawn > 0 {
        tracing::info!(
            given = sync.given,
            withdrawn = sync.withdrawn,
            "member badges for awards of linked templates"
        );
    }
    Ok((sync.given + sync.withdrawn) as usize)
}
