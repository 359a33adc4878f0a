//! Credly webhooks. Credly signs nothing, so a notification is only a hint: it is recorded (once
//! per event id) with a job, answered at once, and the job fetches the event from Credly with the
//! organization's own key. Only what Credly confirms is applied.
//!
//! What a forged flood can cost is bounded: per sender address and minute (the HTTP handler),
//! per organization by the number of notifications waiting to be confirmed
//! (`credly.webhook_max_pending`, then 503: Credly retries for 25 days, so a real one refused
//! now arrives again), and in Credly calls by the webhook lane's own share of the organization's
//! rate (`worker::WEBHOOKS`). Settled notifications are pruned after the retention period.

use accolade_credly::CredlyError;
use accolade_domain::award::AwardState;
use accolade_store::{
    CredlyNotification, Delivery, NewCredlyNotification, Page, Paged, Store, StoreError,
    TemplateChange,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::sync::provider_template;
use super::{Credly, CredlyFailure};

/// Event types Accolade acts on.
pub const HANDLED: [&str; 4] = [
    "badge_template.created",
    "badge_template.changed",
    "badge_template.deleted",
    "badge.state.changed",
];

/// The body Credly POSTs.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    #[serde(default)]
    pub occurred_at: Option<String>,
}

/// What the receiver did with a notification (the webhook's answer body).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// `queued`, `duplicate` or `ignored`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Notifications received, newest first, with what became of them.
pub async fn notifications(
    store: &dyn Store,
    page: Page,
) -> Result<Paged<CredlyNotification>, StoreError> {
    store.list_credly_notifications(page).await
}

/// Records a notification for processing. Unknown organizations and event types are answered
/// (Credly must not retry them for 25 days) and logged, and change nothing.
pub async fn receive(
    store: &dyn Store,
    n: Notification,
    max_pending: u64,
) -> Result<Receipt, CredlyFailure> {
    let ignored = |reason: String| {
        // Debug formatting escapes control characters: an unauthenticated sender cannot forge
        // log lines with `\n` or terminal escapes.
        tracing::warn!(event.id = ?n.id, org = ?n.organization_id, event_type = ?n.event_type, "Credly webhook ignored: {reason}");
        crate::metrics::credly_webhook("ignored");
        Ok(Receipt {
            status: "ignored",
            reason: Some(reason),
        })
    };
    if n.id.trim().is_empty() || n.id.len() > 100 {
        return Err(CredlyFailure::Invalid {
            code: "invalid_event_id",
            detail: "`id` must be Credly's event id".into(),
        });
    }
    // Credly's ids and type names are short; anything long is not from Credly and is refused
    // before it is logged or looked up.
    for (field, value) in [
        ("organization_id", &n.organization_id),
        ("event_type", &n.event_type),
    ] {
        if value.len() > 100 {
            return Err(CredlyFailure::Invalid {
                code: "invalid_notification",
                detail: format!("`{field}` is longer than 100 bytes"),
            });
        }
    }
    if !HANDLED.contains(&n.event_type.as_str()) {
        return ignored(format!("event type {:?} is not handled", n.event_type));
    }
    let org_id = super::orgs::normalize_id(&n.organization_id);
    if store.get_credly_org(&org_id).await.is_err() {
        return ignored(format!(
            "organization {:?} is not configured",
            n.organization_id
        ));
    }
    let pending = store.count_pending_credly_notifications(&org_id).await?;
    if pending >= max_pending {
        tracing::warn!(org = %org_id, pending, "Credly webhook refused: too many notifications of this organization wait to be confirmed");
        crate::metrics::credly_webhook("refused");
        return Err(CredlyFailure::Backlog {
            detail: format!(
                "{pending} notifications of this organization wait to be confirmed; send it again later"
            ),
        });
    }
    let fresh = store
        .record_credly_notification(NewCredlyNotification {
            id: n.id.clone(),
            organization_id: org_id,
            event_type: n.event_type.clone(),
            occurred_at: n.occurred_at.clone(),
            received_at: Utc::now(),
        })
        .await?;
    crate::metrics::credly_webhook(if fresh { "queued" } else { "duplicate" });
    Ok(Receipt {
        status: if fresh { "queued" } else { "duplicate" },
        reason: None,
    })
}

/// The job: confirm the event with Credly and apply it. `Ok` means the notification is settled
/// (applied, or rejected because Credly does not confirm it); `Err` means try again.
pub async fn process(
    credly: &Credly,
    store: &dyn Store,
    notification_id: &str,
    org_id: &str,
) -> Result<String, CredlyFailure> {
    let client = &credly.client;
    let confirmed = credly
        .with_auth(store, org_id, |auth| async move {
            credly.pace_webhook(org_id).await;
            client
                .event(auth.credentials(org_id), notification_id)
                .await
        })
        .await;
    let event = match confirmed {
        Ok(e) => e,
        Err(CredlyFailure::Credly(CredlyError::NotFound(_))) => {
            let detail = "Credly does not confirm this event (404); nothing changed".to_string();
            store
                .finish_credly_notification(notification_id, "rejected", &detail)
                .await?;
            tracing::warn!(
                event.id = notification_id,
                org = org_id,
                "forged or unknown Credly webhook rejected"
            );
            crate::metrics::credly_webhook("rejected");
            return Ok(detail);
        }
        Err(e) => return Err(e),
    };
    let mismatch = event
        .organization_id
        .as_deref()
        .is_some_and(|o| !o.eq_ignore_ascii_case(org_id));
    if mismatch || event.id != notification_id {
        let detail = "the confirmed event belongs to another organization or id".to_string();
        store
            .finish_credly_notification(notification_id, "rejected", &detail)
            .await?;
        return Ok(detail);
    }
    let (status, detail) = apply(store, org_id, event).await?;
    store
        .finish_credly_notification(notification_id, status, &detail)
        .await?;
    crate::metrics::credly_webhook(status);
    Ok(detail)
}

async fn apply(
    store: &dyn Store,
    org_id: &str,
    event: accolade_credly::Event,
) -> Result<(&'static str, String), CredlyFailure> {
    match event.event_type.as_str() {
        t @ ("badge_template.created" | "badge_template.changed" | "badge_template.deleted") => {
            let Some(bt) = event.badge_template else {
                return Ok(("ignored", format!("{t} event without badge_template")));
            };
            if bt
                .owner
                .as_ref()
                .is_some_and(|o| !o.id.eq_ignore_ascii_case(org_id))
            {
                return Ok((
                    "ignored",
                    format!("template {} belongs to another organization", bt.id),
                ));
            }
            let mut p = provider_template(bt);
            if t == "badge_template.deleted" {
                p.state = "deleted".into();
            }
            let id = p.id.clone();
            let (tpl, change) = store.apply_credly_template(org_id, p).await?;
            let what = match change {
                TemplateChange::Created => "created (inactive)",
                TemplateChange::Updated => "updated",
                TemplateChange::Unchanged => "unchanged",
                TemplateChange::Missing => "not present here",
            };
            let active = tpl
                .map(|t| {
                    if t.is_active {
                        ", active"
                    } else {
                        ", inactive"
                    }
                })
                .unwrap_or_default();
            Ok(("applied", format!("template {id} {what}{active}")))
        }
        "badge.state.changed" => {
            let Some(badge) = event.badge else {
                return Ok(("ignored", "badge.state.changed without badge".into()));
            };
            match store
                .set_award_external_state(&badge.id, &badge.state)
                .await?
            {
                Some(award) => {
                    let state = match badge.state.as_str() {
                        "pending" => Some(AwardState::Pending),
                        "accepted" => Some(AwardState::Accepted),
                        "rejected" => Some(AwardState::Rejected),
                        _ => None,
                    };
                    if let Some(state) = state {
                        store
                            .record_delivery(
                                &award.id,
                                Delivery {
                                    state,
                                    issued_at: None,
                                    external_id: None,
                                    external_state: None,
                                },
                            )
                            .await?;
                    }
                    Ok((
                        "applied",
                        format!("award {} is now {} on Credly", award.id, badge.state),
                    ))
                }
                None => Ok(("ignored", format!("no award has Credly badge {}", badge.id))),
            }
        }
        other => Ok(("ignored", format!("event type `{other}` is not handled"))),
    }
}
