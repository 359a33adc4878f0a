//! Issuing and revoking on Credly (the `credly.issue` / `credly.revoke` jobs).
//!
//! Exactly-once on Credly rests on two facts: a job is re-run only when its result was not
//! recorded, and a re-run issue that Credly refuses as a duplicate (422 "already has this badge")
//! is reconciled by finding the existing badge and storing its id instead of failing.
//!
//! The handlers do not write: they return the [`Delivery`] to record, and the worker records it
//! together with the job's result (one commit for many jobs).

use accolade_credly::{credly_time, split_name, CredlyError, IssueBadge};
use accolade_domain::award::{Award, AwardState};
use accolade_store::{Delivery, Store};
use chrono::Utc;

use super::{Credly, CredlyFailure};

/// What a finished handler wants recorded on its award.
pub struct Done {
    pub note: String,
    pub delivery: Option<(String, Delivery)>,
}

impl Done {
    fn note(note: impl Into<String>) -> Done {
        Done {
            note: note.into(),
            delivery: None,
        }
    }
}

fn delivered(badge: &accolade_credly::IssuedBadge) -> Delivery {
    let state = match badge.state.as_str() {
        "accepted" => AwardState::Accepted,
        "rejected" => AwardState::Rejected,
        _ => AwardState::Pending,
    };
    Delivery {
        state,
        issued_at: Some(Utc::now()),
        external_id: Some(badge.id.clone()),
        external_state: Some(badge.state.clone()),
    }
}

/// Issues the award's badge on Credly; the Credly id and state are to be recorded.
pub async fn issue(
    credly: &Credly,
    store: &dyn Store,
    award_id: &str,
) -> Result<Done, CredlyFailure> {
    let award = store.get_award(award_id).await?;
    if let Some(id) = &award.external_id {
        return Ok(Done::note(format!("already issued as {id}")));
    }
    if award.state == AwardState::Revoked {
        return Ok(Done::note(
            "revoked before it was issued; not sent to Credly",
        ));
    }
    let learner = store.get_learner(&award.learner).await?;
    let email = learner
        .email
        .clone()
        .filter(|e| e.contains('@'))
        .ok_or_else(|| CredlyFailure::Invalid {
            code: "learner_without_email",
            detail: format!(
                "learner {} has no email address; Credly needs one",
                award.learner
            ),
        })?;
    let org_id = credly.template_org(store, &award.template_id).await?;
    let (first, last) = split_name(learner.name.as_deref(), &award.learner);
    let request = IssueBadge {
        recipient_email: email.clone(),
        badge_template_id: award.template_id.clone(),
        // The time the learner earned it, never the template's or the delivery's date.
        issued_at: credly_time(award.earned_at),
        issued_to_first_name: first,
        issued_to_last_name: last,
        issuer_earner_id: learner.lms_user_id.map(|id| id.to_string()),
        // The award's own expiry (fixed when it was made); none: the field is left out and
        // Credly applies the template's default.
        expires_at: award.expires_at.map(credly_time),
    };
    let (org, client, request) = (org_id.as_str(), &credly.client, &request);
    let issued = credly
        .with_auth(store, org, |auth| async move {
            credly.pace(org).await;
            client.issue_badge(auth.credentials(org), request).await
        })
        .await;
    let (badge, note) = match issued {
        Ok(b) => (b, "issued"),
        Err(CredlyFailure::Credly(CredlyError::AlreadyIssued(msg))) => {
            let (template, email) = (award.template_id.as_str(), email.as_str());
            let found = credly
                .with_auth(store, org, |auth| async move {
                    credly.pace(org).await;
                    client
                        .find_badge(auth.credentials(org), template, email)
                        .await
                })
                .await?;
            match found {
                Some(b) => (b, "reconciled with the badge Credly already had"),
                None => {
                    return Err(CredlyFailure::Invalid {
                        code: "credly_duplicate_unresolved",
                        detail: format!(
                        "Credly says `{msg}` but lists no live badge of this template for {email}"
                    ),
                    })
                }
            }
        }
        Err(e) => return Err(e),
    };
    crate::metrics::credly_delivery("issue");
    Ok(Done {
        note: format!("{note}: Credly badge {} ({})", badge.id, badge.state),
        delivery: Some((award_id.to_string(), delivered(&badge))),
    })
}

/// Called once an issue is recorded: if the award was revoked while the call was in flight, the
/// revoke job may have found no Credly id yet, so revoke here. Doing it twice is harmless (a
/// second revoke is accepted as done).
pub async fn revoke_if_revoked_meanwhile(
    credly: &Credly,
    store: &dyn Store,
    recorded: &Award,
) -> Result<(), CredlyFailure> {
    let (AwardState::Revoked, Some(badge_id)) = (recorded.state, recorded.external_id.as_deref())
    else {
        return Ok(());
    };
    if recorded.external_state.as_deref() == Some("revoked") {
        return Ok(());
    }
    let org_id = credly.template_org(store, &recorded.template_id).await?;
    let reason = recorded
        .revoke_reason
        .clone()
        .unwrap_or_else(|| "revoked".into());
    let d = revoke_on_credly(credly, store, &org_id, badge_id, &reason).await?;
    store.record_delivery(&recorded.id, d).await?;
    Ok(())
}

/// Revokes the award's badge on Credly (nothing to do if it never reached Credly).
pub async fn revoke(
    credly: &Credly,
    store: &dyn Store,
    award_id: &str,
) -> Result<Done, CredlyFailure> {
    let award = store.get_award(award_id).await?;
    let Some(external_id) = award.external_id.clone() else {
        return Ok(Done::note("never issued on Credly; nothing to revoke"));
    };
    if award.external_state.as_deref() == Some("revoked") {
        return Ok(Done::note(format!(
            "Credly badge {external_id} already revoked"
        )));
    }
    let org_id = credly.template_org(store, &award.template_id).await?;
    let reason = award
        .revoke_reason
        .clone()
        .unwrap_or_else(|| "revoked".into());
    let d = revoke_on_credly(credly, store, &org_id, &external_id, &reason).await?;
    Ok(Done {
        note: format!("Credly badge {external_id} revoked"),
        delivery: Some((award_id.to_string(), d)),
    })
}

async fn revoke_on_credly(
    credly: &Credly,
    store: &dyn Store,
    org_id: &str,
    badge_id: &str,
    reason: &str,
) -> Result<Delivery, CredlyFailure> {
    let client = &credly.client;
    let revoked = credly
        .with_auth(store, org_id, |auth| async move {
            credly.pace(org_id).await;
            client
                .revoke_badge(auth.credentials(org_id), badge_id, reason)
                .await
        })
        .await;
    match revoked {
        Ok(_) => {}
        // Already revoked (a re-run after a crash) or deleted on Credly: the goal is reached.
        Err(CredlyFailure::Credly(CredlyError::Rejected {
            status: 422,
            message,
        })) if message.to_ascii_lowercase().contains("revoked") => {}
        Err(CredlyFailure::Credly(CredlyError::NotFound(_))) => {}
        Err(e) => return Err(e),
    }
    crate::metrics::credly_delivery("revoke");
    Ok(Delivery {
        state: AwardState::Revoked,
        issued_at: None,
        external_id: None,
        external_state: Some("revoked".into()),
    })
}
