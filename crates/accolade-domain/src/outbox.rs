//! Outbox jobs and outgoing events: the durable record of work that must happen after an award or
//! revocation (deliver to the provider, publish `badge.awarded`/`badge.revoked`). Both are written
//! in the same transaction as the award itself, so nothing is lost between "decided" and "done".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::award::Award;
use crate::engine::TemplateInfo;
use crate::event::LearnerData;
use crate::template::Origin;

pub const BADGE_AWARDED: &str = "org.openedx.learning.badge.awarded.v1";
pub const BADGE_REVOKED: &str = "org.openedx.learning.badge.revoked.v1";

/// Job kinds.
pub mod kind {
    /// Issue an award of a local template (Accolade is the issuer).
    pub const ISSUE_AWARD: &str = "award.issue";
    /// Revoke an award of a local template.
    pub const REVOKE_AWARD: &str = "award.revoke";
    /// Issue an award of a Credly template on Credly.
    pub const CREDLY_ISSUE: &str = "credly.issue";
    /// Revoke an award of a Credly template on Credly.
    pub const CREDLY_REVOKE: &str = "credly.revoke";
    /// Confirm a Credly webhook notification (fetch the event from Credly) and apply it.
    pub const CREDLY_WEBHOOK: &str = "credly.webhook";
}

/// Status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobStatus::Pending,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "dead" => JobStatus::Dead,
            _ => return None,
        })
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub status: JobStatus,
    pub attempts: i64,
    pub run_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub kind: &'static str,
    pub payload: Value,
}

/// An outgoing Open edX event to publish (badge awarded / revoked).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub id: String,
    pub event_type: &'static str,
    pub award_id: String,
    pub time: DateTime<Utc>,
    /// The payload under the data key `badge`, shaped like openedx-events `BadgeData`.
    pub payload: Value,
}

/// Builds the job and outgoing event for an award or revocation of `award`.
pub fn effects_of(
    award: &Award,
    info: &TemplateInfo,
    learner: &LearnerData,
    revoked: bool,
    now: DateTime<Utc>,
) -> (NewJob, OutgoingEvent) {
    let badge = json!({
        "uuid": award.id,
        "user": {
            "id": learner.lms_user_id.unwrap_or(0),
            "is_active": learner.is_active.unwrap_or(true),
            "pii": {
                "username": learner.username,
                "email": learner.email.clone().unwrap_or_default(),
                "name": learner.name.clone().unwrap_or_default(),
            }
        },
        "template": {
            "uuid": info.id,
            "origin": info.origin.as_str(),
            "name": info.name,
            "description": info.description,
            "image_url": info.image_url,
        }
    });
    let (kind, event_type) = match (revoked, info.origin) {
        (false, Origin::Local) => (kind::ISSUE_AWARD, BADGE_AWARDED),
        (true, Origin::Local) => (kind::REVOKE_AWARD, BADGE_REVOKED),
        (false, Origin::Credly) => (kind::CREDLY_ISSUE, BADGE_AWARDED),
        (true, Origin::Credly) => (kind::CREDLY_REVOKE, BADGE_REVOKED),
    };
    let job = NewJob {
        id: crate::ids::award_job_id(&award.id, revoked),
        kind,
        payload: json!({
            "award_id": award.id,
            "template_id": award.template_id,
            "origin": info.origin.as_str(),
            "learner": learner.username,
            "episode": award.episode,
            // The award time, sent to the provider as `issued_at` (never the template's date).
            "issued_at": award.earned_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "reason": award.revoke_reason,
        }),
    };
    let event = OutgoingEvent {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_type,
        award_id: award.id.clone(),
        time: now,
        payload: badge,
    };
    (job, event)
}
