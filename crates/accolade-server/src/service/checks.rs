//! The checks of `accolade doctor` and their outcome [`Level`]. The CLI runs them in order and
//! adds the Open Credit API's own (`opencredit::checks`), which share [`Level`] without depending
//! on the CLI. Each check returns one line per finding.

use accolade_domain::webhook::DeliveryStatus;
use accolade_store::{DeliveryFilter, Page, Store};

use crate::service::credly::{orgs, Credly};
use crate::service::stats;

/// How a `doctor` check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// One finding.
pub type Finding = (Level, String);

/// The database answers.
pub async fn database(store: &dyn Store) -> Finding {
    match store.ping().await {
        Ok(()) => (
            Level::Ok,
            format!("database reachable ({})", store.backend()),
        ),
        Err(e) => (Level::Fail, format!("database: {e}")),
    }
}

/// Every Credly organization's key: expiry against the warning thresholds, and whether it opens
/// with this server's secrets key.
pub async fn credly_keys(credly: &Credly, store: &dyn Store) -> anyhow::Result<Vec<Finding>> {
    let mut out = Vec::new();
    let statuses = orgs::check_expiry(credly, store).await?;
    // Organizations with OAuth client credentials: no expiry to check, but their secrets must
    // open.
    let oauth: Vec<_> = store
        .list_credly_orgs()
        .await?
        .into_iter()
        .filter(|o| o.auth_method == accolade_store::CredlyAuthMethod::OAuth)
        .collect();
    if statuses.is_empty() && oauth.is_empty() {
        out.push((Level::Ok, "no Credly organization configured".into()));
    }
    for org in oauth {
        out.push((
            Level::Ok,
            format!(
                "Credly organization {} ({}) uses OAuth client credentials (no expiry)",
                org.name, org.id
            ),
        ));
        if let Err(e) = orgs::key_opens(credly, store, &org.id).await {
            out.push((
                Level::Fail,
                format!("OAuth client of {} cannot be decrypted: {e}", org.id),
            ));
        }
    }
    for (org, s) in statuses {
        let line = format!(
            "Credly key of {} ({}) expires {} ({} days)",
            org.name,
            org.id,
            s.expires_at.format("%Y-%m-%d"),
            s.days_left
        );
        match s.level {
            "ok" => out.push((Level::Ok, line)),
            "warning" => out.push((Level::Warn, format!("{line}: rotate it soon"))),
            _ => out.push((
                Level::Fail,
                format!("{line}: expired, issuing and sync wait for a new key"),
            )),
        }
        if let Err(e) = orgs::key_opens(credly, store, &org.id).await {
            out.push((
                Level::Fail,
                format!("key of {} cannot be decrypted: {e}", org.id),
            ));
        }
    }
    Ok(out)
}

/// Dead outbox jobs wait for an operator.
pub async fn dead_jobs(store: &dyn Store) -> anyhow::Result<Finding> {
    let stats = stats::read(store).await?;
    Ok(if stats.outbox_dead > 0 {
        (
            Level::Warn,
            format!(
                "{} dead job(s): `accolade jobs list` and `accolade jobs retry`",
                stats.outbox_dead
            ),
        )
    } else {
        (
            Level::Ok,
            format!("no dead jobs ({} pending)", stats.outbox_pending),
        )
    })
}

/// Dead webhook deliveries wait for an operator (counted up to 100).
pub async fn dead_deliveries(store: &dyn Store) -> anyhow::Result<Finding> {
    let filter = DeliveryFilter {
        webhook_id: None,
        status: Some(DeliveryStatus::Dead),
    };
    let dead = store
        .list_webhook_deliveries(&filter, Page::new(Some(100), None))
        .await?;
    Ok(if dead.items.is_empty() {
        (Level::Ok, "no dead webhook deliveries".into())
    } else {
        let more = if dead.next_offset.is_some() { "+" } else { "" };
        (
            Level::Warn,
            format!(
                "{}{more} dead webhook deliveries: `accolade webhooks deliveries` and \
                 `accolade webhooks replay`, or /admin/webhooks",
                dead.items.len()
            ),
        )
    })
}

/// The Open Badges issuer: its signing key opens with this server's secrets key, and how many
/// awards wait to be signed.
pub async fn openbadges(
    ob: &crate::service::openbadges::OpenBadges,
    store: &dyn Store,
) -> anyhow::Result<Vec<Finding>> {
    if !ob.enabled {
        return Ok(vec![(Level::Ok, "Open Badges issuing is off".into())]);
    }
    let mut out = Vec::new();
    let https = ob.base.starts_with("https://");
    out.push((
        Level::Ok,
        format!(
            "Open Badges issuer {}{}",
            ob.did,
            if https {
                ""
            } else {
                " (not https: fine for trying, but did:web verifiers need http.public_base_url to be an https host name)"
            }
        ),
    ));
    if store.ob_keys().await?.is_empty() {
        out.push((
            Level::Ok,
            "Open Badges signing key: none yet (made on the first `accolade serve`)".into(),
        ));
    } else {
        match ob.keys.get(store).await {
            Ok(keys) => out.push((
                Level::Ok,
                format!(
                    "Open Badges signing key {} opens ({} key(s) in the DID document)",
                    keys.active_id,
                    keys.all.len()
                ),
            )),
            Err(e) => out.push((Level::Fail, format!("Open Badges signing key: {e:#}"))),
        }
    }
    let backlog = store.ob_backlog().await?;
    out.push(if backlog > 10_000 {
        (
            Level::Warn,
            format!("{backlog} award events wait for the Open Badges issuer (is a server with workers running?)"),
        )
    } else {
        (Level::Ok, format!("{backlog} award events wait for the Open Badges issuer"))
    });
    Ok(out)
}
