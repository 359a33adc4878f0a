//! Template sync: fetch every `active` template of an organization from Credly (all pages) and
//! reconcile the local copies in one transaction (see `Store::sync_credly_templates`).

use accolade_credly::BadgeTemplate;
use accolade_store::{ProviderTemplate, Store, SyncSummary};

use super::{Credly, CredlyFailure};

pub fn provider_template(t: BadgeTemplate) -> ProviderTemplate {
    ProviderTemplate {
        id: t.id,
        name: t.name,
        description: t.description,
        image_url: t.image_url,
        state: t.state,
    }
}

/// Syncs one organization. On `dry_run` the summary says what would change.
pub async fn sync_org(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    dry_run: bool,
) -> Result<SyncSummary, CredlyFailure> {
    let started = std::time::Instant::now();
    let client = &credly.client;
    let (templates, pages) = credly
        .with_auth(store, org_id, |auth| async move {
            client.active_templates(auth.credentials(org_id)).await
        })
        .await?;
    // A template Credly lists for this organization but owned by another one is not ours.
    let (own, foreign): (Vec<_>, Vec<_>) = templates.into_iter().partition(|t| {
        t.owner
            .as_ref()
            .is_none_or(|o| o.id.eq_ignore_ascii_case(org_id))
    });
    if !foreign.is_empty() {
        tracing::warn!(
            org = org_id,
            skipped = foreign.len(),
            "skipped templates owned by another organization"
        );
    }
    let summary = store
        .sync_credly_templates(
            org_id,
            own.into_iter().map(provider_template).collect(),
            pages,
            dry_run,
        )
        .await?;
    crate::metrics::credly_sync(org_id, started.elapsed().as_secs_f64());
    tracing::info!(
        org = org_id,
        dry_run,
        created = summary.created,
        updated = summary.updated,
        deactivated = summary.deactivated,
        unchanged = summary.unchanged,
        pages = summary.pages,
        ms = started.elapsed().as_millis() as u64,
        "Credly template sync"
    );
    Ok(summary)
}

/// Periodic sync of every organization (when `credly.sync_interval` is set).
pub async fn run_periodic(state: crate::state::AppState, every: std::time::Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = state.shutdown.cancelled() => return,
        }
        let orgs = match state.store.list_credly_orgs().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "periodic sync: cannot list organizations");
                continue;
            }
        };
        for org in orgs {
            if let Err(e) = sync_org(&state.credly, &*state.store, &org.id, false).await {
                tracing::warn!(org = %org.id, error = %e, "periodic Credly sync failed");
            }
        }
    }
}
