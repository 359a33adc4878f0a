//! Outbox jobs and outgoing events: the durable record of work that must happen after an award or
//! revocation (deliver to the provider, publish `badge.awarded`/`badge.revoked`). Both are written
//! in the same transaction as the award itself, so nothing is lost between "decided" and "done".
//! An award's expiry writes a `badge.expired` event (no job: nothing is delivered) in the
//! transaction that marks the award as notified ([`expired_event`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::award::Award;
use crate::engine::TemplateInfo;
use crate::event::LearnerData;
use crate::template::{Origin, Template};

pub const BADGE_AWARDED: &str = "org.openedx.learning.badge.awarded.v1";
pub const BADGE_REVOKED: &str = "org.openedx.learning.badge.revoked.v1";
/// An award's `expires_at` has passed (written once per award by the expiry sweep). Not an
/// openedx-events type: the event bus publisher and the Open Badges issuer pass it by.
pub const BADGE_EXPIRED: &str = "org.openedx.learning.badge.expired.v1";

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

/// What a job asks for, read from its kind and payload: one typed value instead of a kind
/// string and field lookups at every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    IssueAward {
        award_id: String,
    },
    RevokeAward {
        award_id: String,
    },
    CredlyIssue {
        award_id: String,
    },
    CredlyRevoke {
        award_id: String,
    },
    CredlyWebhook {
        notification_id: String,
        organization_id: String,
    },
}

/// Why a job cannot be read as a [`Task`] (it is dead at once: retrying will not change it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadJob {
    #[error("no handler for job kind {0}")]
    UnknownKind(String),
    #[error("job payload has no `{0}`")]
    MissingField(&'static str),
}

impl Task {
    pub fn of(job: &Job) -> Result<Task, BadJob> {
        let field = |name: &'static str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(BadJob::MissingField(name))
        };
        Ok(match job.kind.as_str() {
            kind::ISSUE_AWARD => Task::IssueAward {
                award_id: field("award_id")?,
            },
            kind::REVOKE_AWARD => Task::RevokeAward {
                award_id: field("award_id")?,
            },
            kind::CREDLY_ISSUE => Task::CredlyIssue {
                award_id: field("award_id")?,
            },
            kind::CREDLY_REVOKE => Task::CredlyRevoke {
                award_id: field("award_id")?,
            },
            kind::CREDLY_WEBHOOK => Task::CredlyWebhook {
                notification_id: field("notification_id")?,
                organization_id: field("organization_id")?,
            },
            other => return Err(BadJob::UnknownKind(other.to_string())),
        })
    }

    /// The award the task is about, if any.
    pub fn award_id(&self) -> Option<&str> {
        match self {
            Task::IssueAward { award_id }
            | Task::RevokeAward { award_id }
            | Task::CredlyIssue { award_id }
            | Task::CredlyRevoke { award_id } => Some(award_id),
            Task::CredlyWebhook { .. } => None,
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub kind: &'static str,
    /// The payload as JSON text (serialised once, where it is built).
    pub payload: String,
    /// The job's work is done by the transaction that writes it, which stores it as succeeded
    /// (see [`done_in_place`]).
    pub done: bool,
}

/// Whether an award's delivery is complete in the transaction that awards or revokes it. For a
/// local template Accolade is the issuer: issuing is recording the issue time (the award is
/// written with `issued_at` = `awarded_at`) and a revocation has nothing external to call, so
/// the job is written already succeeded, with one attempt. Leaving it pending for the worker
/// cost a second transaction per award on the single SQLite writer (an eighth of the ingest
/// throughput) for the same end state a few milliseconds later. Credly jobs stay pending: they
/// call Credly, with retries.
pub fn done_in_place(origin: Origin) -> bool {
    origin == Origin::Local
}

/// An outgoing Open edX event to publish (badge awarded / revoked).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub id: String,
    pub event_type: &'static str,
    pub award_id: String,
    pub time: DateTime<Utc>,
    /// The payload under the data key `badge`, shaped like openedx-events `BadgeData`, as JSON
    /// text.
    pub payload: String,
}

/// Builds the job and outgoing event for an award or revocation of `award`.
///
/// The payloads are written as JSON text straight from borrowed fields: on the event path a
/// quarter of all events award or revoke, and building `Value` maps first cost as much as the
/// two inserts. Keys are in sorted order, as `serde_json::Value` (a sorted map) writes them.
pub fn effects_of(
    award: &Award,
    info: &TemplateInfo,
    learner: &LearnerData,
    revoked: bool,
    now: DateTime<Utc>,
) -> (NewJob, OutgoingEvent) {
    #[derive(Serialize)]
    struct JobPayload<'a> {
        award_id: &'a str,
        episode: i64,
        // The award time, sent to the provider as `issued_at` (never the template's date).
        issued_at: String,
        learner: &'a str,
        origin: &'a str,
        reason: Option<&'a str>,
        template_id: &'a str,
    }
    let template = BadgeTemplate {
        description: &info.description,
        image_url: info.image_url.as_deref(),
        name: &info.name,
        origin: info.origin.as_str(),
        uuid: &info.id,
    };
    let payload = JobPayload {
        award_id: &award.id,
        episode: award.episode,
        issued_at: award
            .earned_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        learner: &learner.username,
        origin: info.origin.as_str(),
        reason: award.revoke_reason.as_deref(),
        template_id: &award.template_id,
    };
    let (kind, event_type) = match (revoked, info.origin) {
        (false, Origin::Local) => (kind::ISSUE_AWARD, BADGE_AWARDED),
        (true, Origin::Local) => (kind::REVOKE_AWARD, BADGE_REVOKED),
        (false, Origin::Credly) => (kind::CREDLY_ISSUE, BADGE_AWARDED),
        (true, Origin::Credly) => (kind::CREDLY_REVOKE, BADGE_REVOKED),
    };
    let job = NewJob {
        id: crate::ids::award_job_id(&award.id, revoked),
        kind,
        payload: json_text(&payload),
        done: done_in_place(info.origin),
    };
    let event = OutgoingEvent {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_type,
        award_id: award.id.clone(),
        time: now,
        payload: badge_payload(&award.id, template, learner),
    };
    (job, event)
}

/// The `badge.expired` event of an award whose `expires_at` has passed: the same badge payload
/// as its `badge.awarded` event, at the time it expired. `None` for an award without expiry.
pub fn expired_event(
    award: &Award,
    template: &Template,
    learner: &LearnerData,
) -> Option<OutgoingEvent> {
    let expired_at = award.expires_at?;
    let template = BadgeTemplate {
        description: &template.description,
        image_url: template.image_url.as_deref(),
        name: &template.name,
        origin: template.origin.as_str(),
        uuid: &template.id,
    };
    Some(OutgoingEvent {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_type: BADGE_EXPIRED,
        award_id: award.id.clone(),
        time: expired_at,
        payload: badge_payload(&award.id, template, learner),
    })
}

/// The template part of a badge payload.
#[derive(Serialize)]
struct BadgeTemplate<'a> {
    description: &'a str,
    image_url: Option<&'a str>,
    name: &'a str,
    origin: &'a str,
    uuid: &'a str,
}

/// A badge payload (openedx-events `BadgeData`) as JSON text.
fn badge_payload(award_id: &str, template: BadgeTemplate<'_>, learner: &LearnerData) -> String {
    #[derive(Serialize)]
    struct Pii<'a> {
        email: &'a str,
        name: &'a str,
        username: &'a str,
    }
    #[derive(Serialize)]
    struct User<'a> {
        id: i64,
        is_active: bool,
        pii: Pii<'a>,
    }
    #[derive(Serialize)]
    struct Badge<'a> {
        template: BadgeTemplate<'a>,
        user: User<'a>,
        uuid: &'a str,
    }
    json_text(&Badge {
        template,
        user: User {
            id: learner.lms_user_id.unwrap_or(0),
            is_active: learner.is_active.unwrap_or(true),
            pii: Pii {
                email: learner.email.as_deref().unwrap_or_default(),
                name: learner.name.as_deref().unwrap_or_default(),
                username: &learner.username,
            },
        },
        uuid: award_id,
    })
}

/// JSON text of a payload struct (plain fields: serialising cannot fail).
fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::award::AwardState;
    use chrono::TimeZone;
    use serde_json::json;
    use std::collections::{BTreeSet, HashMap};

    fn award(reason: Option<&str>) -> Award {
        Award {
            id: "0192f1d2-3c4d-7e5f-8a9b-0c1d2e3f4a5b".into(),
            template_id: "tpl-1".into(),
            learner: "jdoe".into(),
            episode: 2,
            state: AwardState::Awarded,
            earned_at: Utc.with_ymd_and_hms(2026, 8, 20, 14, 3, 27).unwrap(),
            awarded_at: Utc::now(),
            issued_at: None,
            revoked_at: None,
            revoke_reason: reason.map(str::to_string),
            event_id: None,
            external_id: None,
            external_state: None,
            expires_at: None,
            backfill_id: None,
        }
    }

    fn info(origin: Origin) -> TemplateInfo {
        TemplateInfo {
            id: "tpl-1".into(),
            name: "Demo \"course\"".into(),
            description: "<b>ok</b>".into(),
            image_url: None,
            origin,
            allow_reaward: true,
            expires_after: None,
            requirement_groups: HashMap::new(),
            groups: BTreeSet::new(),
        }
    }

    #[test]
    fn payloads_have_the_documented_shape() {
        let learner = LearnerData {
            username: "jdoe".into(),
            lms_user_id: Some(42),
            email: Some("j@example.com".into()),
            name: None,
            is_active: None,
        };
        let (job, event) = effects_of(
            &award(None),
            &info(Origin::Local),
            &learner,
            false,
            Utc::now(),
        );
        assert_eq!(job.kind, kind::ISSUE_AWARD);
        assert_eq!(event.event_type, BADGE_AWARDED);
        let job_payload: Value = serde_json::from_str(&job.payload).unwrap();
        assert_eq!(
            job_payload,
            json!({"award_id": "0192f1d2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "template_id": "tpl-1",
                   "origin": "local", "learner": "jdoe", "episode": 2,
                   "issued_at": "2026-08-20T14:03:27+00:00", "reason": null})
        );
        // Same text as a `Value` (sorted keys) would give: stored payloads do not change.
        assert_eq!(job.payload, job_payload.to_string());
        let badge: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            badge,
            json!({"uuid": "0192f1d2-3c4d-7e5f-8a9b-0c1d2e3f4a5b",
                   "user": {"id": 42, "is_active": true,
                            "pii": {"username": "jdoe", "email": "j@example.com", "name": ""}},
                   "template": {"uuid": "tpl-1", "origin": "local", "name": "Demo \"course\"",
                                "description": "<b>ok</b>", "image_url": null}})
        );
        assert_eq!(event.payload, badge.to_string());

        let (job, event) = effects_of(
            &award(Some("why")),
            &info(Origin::Credly),
            &learner,
            true,
            Utc::now(),
        );
        assert_eq!(job.kind, kind::CREDLY_REVOKE);
        assert_eq!(event.event_type, BADGE_REVOKED);
        let job_payload: Value = serde_json::from_str(&job.payload).unwrap();
        assert_eq!(job_payload["reason"], json!("why"));
        assert_eq!(job_payload["origin"], json!("credly"));
        assert_eq!(job.id, crate::ids::award_job_id(&award(None).id, true));
    }

    #[test]
    fn an_expired_event_carries_the_awarded_badge_at_its_expiry() {
        let learner = LearnerData {
            username: "jdoe".into(),
            lms_user_id: Some(42),
            email: Some("j@example.com".into()),
            name: Some("J Doe".into()),
            is_active: None,
        };
        let mut a = award(None);
        let (_, awarded) = effects_of(&a, &info(Origin::Local), &learner, false, Utc::now());
        let template = Template {
            id: "tpl-1".into(),
            name: "Demo \"course\"".into(),
            description: "<b>ok</b>".into(),
            image_url: None,
            origin: Origin::Local,
            provider_state: "active".into(),
            is_active: false,
            allow_reaward: true,
            organization_id: None,
            expires_after: None,
            criteria: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert_eq!(expired_event(&a, &template, &learner), None, "no expiry");
        let at = Utc.with_ymd_and_hms(2027, 8, 20, 14, 3, 27).unwrap();
        a.expires_at = Some(at);
        let expired = expired_event(&a, &template, &learner).unwrap();
        assert_eq!(expired.event_type, BADGE_EXPIRED);
        assert_eq!(expired.award_id, a.id);
        assert_eq!(expired.time, at);
        assert_eq!(expired.payload, awarded.payload);
        assert_ne!(expired.id, awarded.id);
    }

    fn job_of(kind: &str, payload: Value) -> Job {
        Job {
            id: "job_1".into(),
            kind: kind.into(),
            payload,
            status: JobStatus::Pending,
            attempts: 0,
            run_at: Utc::now(),
            locked_until: None,
            last_error: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_job_is_read_as_its_task_or_refused_with_a_reason() {
        use serde_json::json;
        let issue = Task::of(&job_of(kind::CREDLY_ISSUE, json!({"award_id": "a1"}))).unwrap();
        assert_eq!(
            issue,
            Task::CredlyIssue {
                award_id: "a1".into()
            }
        );
        assert_eq!(issue.award_id(), Some("a1"));
        let hook = Task::of(&job_of(
            kind::CREDLY_WEBHOOK,
            json!({"notification_id": "n1", "organization_id": "o1", "event_type": "x"}),
        ))
        .unwrap();
        assert_eq!(hook.award_id(), None);
        assert_eq!(
            Task::of(&job_of(kind::CREDLY_REVOKE, json!({}))),
            Err(BadJob::MissingField("award_id"))
        );
        assert_eq!(
            Task::of(&job_of("other.kind", json!({"award_id": "a1"})))
                .unwrap_err()
                .to_string(),
            "no handler for job kind other.kind"
        );
    }
}
