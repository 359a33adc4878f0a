//! Operator actions and the outbox: manual award and revocation, delivery results, job claiming
//! with leases, finishing and retrying jobs, rules as code (`apply_template`), API tokens,
//! rejected events and counters.

use std::collections::BTreeSet;
use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::{kind, Job, JobStatus};
use accolade_domain::template::Origin;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;

use super::support::*;
use crate::{
    Delivery, DesiredPenalty, DesiredRequirement, DesiredTemplate, IndexCache, JobFilter,
    JobResult, ManualChange, NewApiToken, Page, RejectedEvent, Store, StoreStats,
};

const UNKNOWN_ID: &str = "00000000-0000-7000-8000-000000000000";

fn change(reason: &str, time: &str) -> ManualChange {
    ManualChange {
        reason: reason.to_string(),
        at: at(time),
    }
}

/// A time safely after every job written so far, at microsecond precision (what both databases
/// store), so lease times compare exactly.
fn now_after_writes() -> DateTime<Utc> {
    (Utc::now() + Duration::seconds(1)).trunc_subsecs(6)
}

/// An active Credly template on the demo course awarded to `n` learners: `n` pending issue jobs.
async fn issue_jobs(store: &Arc<dyn Store>, n: usize) -> Vec<Job> {
    let index = IndexCache::new();
    configure_active_on_credly(store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let events = (0..n)
        .map(|i| passing(&format!("e{i}"), &format!("learner{i}"), DEMO_COURSE, true))
        .collect();
    send(store, &index, events).await;
    let jobs = jobs_of_kind(store, kind::CREDLY_ISSUE).await;
    assert_eq!(jobs.len(), n);
    assert!(jobs
        .iter()
        .all(|j| j.status == JobStatus::Pending && j.attempts == 0 && j.locked_until.is_none()));
    jobs
}

fn ids(jobs: &[Job]) -> BTreeSet<String> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

/// A manual award opens an episode with an issue job; awarding a learner who holds the badge is
/// `Conflict("already_awarded")`; an event completing it afterwards adds nothing.
pub async fn manual_award_and_conflict(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure(&store, "Speaker", vec![passed_course(DEMO_COURSE, None)]).await;
    let a = store
        .award_manually(
            &t.id,
            "mlearner",
            change("conference speaker", "2026-05-01T12:00:00+00:00"),
        )
        .await
        .unwrap();
    assert_eq!(
        a.template_id, t.id,
        "manual awards work on inactive templates too"
    );
    assert_eq!(a.learner, "mlearner");
    assert_eq!(a.episode, 1);
    assert_eq!(a.state, AwardState::Awarded);
    assert_eq!(a.event_id, None);
    assert_eq!(a.earned_at, at("2026-05-01T12:00:00+00:00"));
    assert_eq!(a.revoked_at, None);
    assert_eq!(store.get_award(&a.id).await.unwrap(), a);
    assert!(
        store.get_learner("mlearner").await.is_ok(),
        "the learner now exists"
    );
    let jobs = jobs_of_kind(&store, kind::ISSUE_AWARD).await;
    assert_eq!(jobs.len(), 1, "a manual award writes its issue job");
    assert_eq!(jobs[0].payload["award_id"], json!(a.id));
    assert_eq!(
        (jobs[0].status, jobs[0].attempts),
        (JobStatus::Succeeded, 1),
        "a local template's issue is done as it is written"
    );
    assert_eq!(a.issued_at, Some(a.awarded_at));

    assert_conflict(
        store
            .award_manually(
                &t.id,
                "mlearner",
                change("again", "2026-05-02T12:00:00+00:00"),
            )
            .await,
        "already_awarded",
    );
    activate(&store, &t.id).await;
    assert_nothing(
        &send_one(&store, &index, passing("e1", "mlearner", DEMO_COURSE, true)).await,
        "already held",
    );
    assert_eq!(all_awards(&store).await.len(), 1);
    assert_eq!(
        all_jobs(&store).await.len(),
        1,
        "refused or redundant awards write no job"
    );
}

/// A manual revocation records reason and time and writes a revoke job; revoking again is
/// `Conflict("already_revoked")`; a manual award afterwards opens episode 2.
pub async fn manual_revoke_and_conflict(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let award = send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true))
        .await
        .awarded
        .remove(0);
    let r = store
        .revoke_award(
            &award,
            change("academic misconduct", "2026-06-01T00:00:00+00:00"),
        )
        .await
        .unwrap();
    assert_eq!(r.id, award);
    assert_eq!(r.state, AwardState::Revoked);
    assert_eq!(r.revoke_reason.as_deref(), Some("academic misconduct"));
    assert_eq!(r.revoked_at, Some(at("2026-06-01T00:00:00+00:00")));
    assert_eq!(store.get_award(&award).await.unwrap(), r);
    let revokes = jobs_of_kind(&store, kind::REVOKE_AWARD).await;
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].payload["award_id"], json!(award));
    assert_eq!(revokes[0].payload["reason"], json!("academic misconduct"));

    assert_conflict(
        store
            .revoke_award(&award, change("twice", "2026-06-02T00:00:00+00:00"))
            .await,
        "already_revoked",
    );
    assert_eq!(jobs_of_kind(&store, kind::REVOKE_AWARD).await.len(), 1);
    let own: Vec<_> = store
        .jobs_of_award(&award)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.kind, j.payload["award_id"].clone()))
        .collect();
    assert_eq!(
        own,
        vec![
            (kind::ISSUE_AWARD.to_string(), json!(award)),
            (kind::REVOKE_AWARD.to_string(), json!(award))
        ],
        "an award's jobs are found from the award: delivery, then revocation"
    );
    assert!(store.jobs_of_award(UNKNOWN_ID).await.unwrap().is_empty());
    assert_not_found(
        store
            .revoke_award(UNKNOWN_ID, change("x", "2026-06-02T00:00:00+00:00"))
            .await,
        "award",
    );

    let again = store
        .award_manually(
            &t.id,
            "jdoe",
            change("appeal upheld", "2026-07-01T00:00:00+00:00"),
        )
        .await
        .unwrap();
    assert_eq!(again.episode, 2);
    assert_ne!(again.id, award);
    assert_eq!(
        store.get_award(&award).await.unwrap().state,
        AwardState::Revoked,
        "history is kept"
    );
    let revoked = awards_where(
        &store,
        &crate::AwardFilter {
            state: Some(AwardState::Revoked),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        revoked.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![award.clone()]
    );
    let current = awards_where(
        &store,
        &crate::AwardFilter {
            state: Some(AwardState::Awarded),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        current.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![again.id.clone()]
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
}

/// Unknown ids are `NotFound` with the right kind.
pub async fn unknown_ids_are_not_found(store: Arc<dyn Store>) {
    let now = Utc::now();
    assert_not_found(store.get_award(UNKNOWN_ID).await, "award");
    assert_not_found(
        store
            .record_delivery(
                UNKNOWN_ID,
                Delivery {
                    state: AwardState::Pending,
                    issued_at: None,
                    external_id: None,
                    external_state: None,
                },
            )
            .await,
        "award",
    );
    assert_not_found(store.get_job("job_unknown").await, "job");
    assert_not_found(store.retry_job("job_unknown").await, "job");
    assert_not_found(
        store
            .finish_job("job_unknown", JobResult::Succeeded, now)
            .await,
        "job",
    );
    assert_not_found(store.get_requirement("req_unknown").await, "requirement");
    assert_not_found(store.get_penalty("pen_unknown").await, "penalty");
    assert_not_found(store.get_learner("nobody").await, "learner");
}

/// Delivery results update the award; a revoked award stays revoked whatever arrives late.
pub async fn record_delivery_keeps_revoked_state(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let id = send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true))
        .await
        .awarded
        .remove(0);
    let issued = at("2026-08-20T14:05:00+00:00");
    let a = store
        .record_delivery(
            &id,
            Delivery {
                state: AwardState::Pending,
                issued_at: Some(issued),
                external_id: Some("cred-badge-1".into()),
                external_state: Some("pending".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(a.state, AwardState::Pending);
    assert_eq!(a.issued_at, Some(issued));
    assert_eq!(a.external_id.as_deref(), Some("cred-badge-1"));
    assert_eq!(a.external_state.as_deref(), Some("pending"));
    let a = store
        .record_delivery(
            &id,
            Delivery {
                state: AwardState::Accepted,
                issued_at: None,
                external_id: None,
                external_state: Some("accepted".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(a.state, AwardState::Accepted);
    assert_eq!(
        a.issued_at,
        Some(issued),
        "absent values keep what is known"
    );
    assert_eq!(a.external_id.as_deref(), Some("cred-badge-1"));
    assert_eq!(a.external_state.as_deref(), Some("accepted"));

    store
        .revoke_award(&id, change("misconduct", "2026-09-01T00:00:00+00:00"))
        .await
        .unwrap();
    let a = store
        .record_delivery(
            &id,
            Delivery {
                state: AwardState::Accepted,
                issued_at: None,
                external_id: None,
                external_state: Some("revoked".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        a.state,
        AwardState::Revoked,
        "a late delivery result does not un-revoke"
    );
    assert_eq!(a.external_state.as_deref(), Some("revoked"));
    assert_eq!(store.get_award(&id).await.unwrap(), a);
}

/// Claiming hands out each due job once, marks it running with the lease, counts the attempt,
/// and honours the kind filter and the limit.
pub async fn claim_jobs_returns_each_due_job_once(store: Arc<dyn Store>) {
    let jobs = issue_jobs(&store, 3).await;
    let now = now_after_writes();
    let lease = now + Duration::seconds(30);
    assert!(
        store
            .claim_jobs(&[kind::CREDLY_REVOKE], 10, now, lease)
            .await
            .unwrap()
            .is_empty(),
        "kind filter"
    );
    assert!(
        store
            .claim_jobs(&[], 10, now, lease)
            .await
            .unwrap()
            .is_empty(),
        "no kinds, no jobs"
    );
    let early = jobs.iter().map(|j| j.run_at).min().unwrap() - Duration::seconds(60);
    assert!(
        store
            .claim_jobs(
                &[kind::CREDLY_ISSUE],
                10,
                early,
                early + Duration::seconds(30)
            )
            .await
            .unwrap()
            .is_empty(),
        "jobs are not due before their run_at"
    );

    let first = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 2, now, lease)
        .await
        .unwrap();
    assert_eq!(first.len(), 2, "the limit is respected");
    for j in &first {
        assert_eq!(j.status, JobStatus::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.locked_until, Some(lease));
        assert_eq!(store.get_job(&j.id).await.unwrap(), *j);
    }
    let second = store
        .claim_jobs(&[kind::CREDLY_ISSUE, kind::CREDLY_REVOKE], 2, now, lease)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, lease)
        .await
        .unwrap()
        .is_empty());
    let mut claimed = ids(&first);
    claimed.extend(ids(&second));
    assert_eq!(claimed, ids(&jobs), "every job claimed exactly once");
}

/// A crashed worker's jobs come back when their lease expires, not before.
pub async fn expired_lease_is_claimable_again(store: Arc<dyn Store>) {
    let jobs = issue_jobs(&store, 2).await;
    let now = now_after_writes();
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ids(&jobs));
    let during = now + Duration::seconds(10);
    assert!(
        store
            .claim_jobs(
                &[kind::CREDLY_ISSUE],
                10,
                during,
                during + Duration::seconds(30)
            )
            .await
            .unwrap()
            .is_empty(),
        "a leased job is not handed out twice"
    );
    let after = now + Duration::seconds(31);
    let reclaimed = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE],
            10,
            after,
            after + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&reclaimed),
        ids(&jobs),
        "expired leases are claimable again"
    );
    assert!(reclaimed
        .iter()
        .all(|j| j.attempts == 2 && j.locked_until == Some(after + Duration::seconds(30))));
}

/// `finish_job`: succeeded jobs are done, retried jobs wait for their `run_at`, dead jobs wait for
/// an operator; `retry_job` refuses succeeded jobs.
pub async fn finish_job_succeeded_retry_dead(store: Arc<dyn Store>) {
    issue_jobs(&store, 3).await;
    let now = now_after_writes();
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 3, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let (ok, retry, dead) = (&claimed[0].id, &claimed[1].id, &claimed[2].id);
    let retry_at = now + Duration::hours(1);
    store
        .finish_job(ok, JobResult::Succeeded, now)
        .await
        .unwrap();
    store
        .finish_job(
            retry,
            JobResult::Retry {
                run_at: retry_at,
                error: "credly: 429".into(),
            },
            now,
        )
        .await
        .unwrap();
    store
        .finish_job(
            dead,
            JobResult::Dead {
                error: "credly: 400 bad request".into(),
            },
            now,
        )
        .await
        .unwrap();

    let j = store.get_job(ok).await.unwrap();
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(j.locked_until, None);
    let j = store.get_job(retry).await.unwrap();
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.run_at, retry_at);
    assert_eq!(j.last_error.as_deref(), Some("credly: 429"));
    assert_eq!(j.attempts, 1);
    assert_eq!(j.locked_until, None);
    let j = store.get_job(dead).await.unwrap();
    assert_eq!(j.status, JobStatus::Dead);
    assert_eq!(j.last_error.as_deref(), Some("credly: 400 bad request"));

    let mid = now + Duration::minutes(30);
    assert!(
        store
            .claim_jobs(&[kind::CREDLY_ISSUE], 10, mid, mid + Duration::seconds(30))
            .await
            .unwrap()
            .is_empty(),
        "nothing is due before the retry time"
    );
    let later = now + Duration::hours(2);
    let due = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE],
            10,
            later,
            later + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(ids(&due), set(&[retry]), "only the retried job comes back");
    assert_eq!(due[0].attempts, 2);

    assert_conflict(store.retry_job(ok).await, "job_not_retryable");
    let revived = store.retry_job(dead).await.unwrap();
    assert_eq!(revived.status, JobStatus::Pending);
    assert_eq!(revived.attempts, 1);
}

/// `list_jobs` filters by status and kind and pages.
pub async fn list_jobs_filters_by_status_and_kind(store: Arc<dyn Store>) {
    let jobs = issue_jobs(&store, 4).await;
    let award = all_awards(&store).await.remove(0);
    store
        .revoke_award(&award.id, change("test", "2026-06-01T00:00:00+00:00"))
        .await
        .unwrap();
    let now = now_after_writes();
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 3, now, now + Duration::seconds(30))
        .await
        .unwrap();
    store
        .finish_job(&claimed[0].id, JobResult::Succeeded, now)
        .await
        .unwrap();
    store
        .finish_job(&claimed[1].id, JobResult::Dead { error: "x".into() }, now)
        .await
        .unwrap();
    let by_status = |status: JobStatus| {
        let store = store.clone();
        async move {
            jobs_where(
                &store,
                &JobFilter {
                    status: Some(status),
                    kind: None,
                },
            )
            .await
        }
    };
    assert_eq!(
        ids(&by_status(JobStatus::Succeeded).await),
        set(&[&claimed[0].id])
    );
    assert_eq!(
        ids(&by_status(JobStatus::Dead).await),
        set(&[&claimed[1].id])
    );
    assert_eq!(
        ids(&by_status(JobStatus::Running).await),
        set(&[&claimed[2].id])
    );
    let pending = by_status(JobStatus::Pending).await;
    assert_eq!(
        pending.len(),
        2,
        "one unclaimed issue job and the revoke job"
    );
    assert!(pending.iter().all(|j| j.status == JobStatus::Pending));
    let revokes = jobs_of_kind(&store, kind::CREDLY_REVOKE).await;
    assert_eq!(revokes.len(), 1);
    assert_eq!(
        jobs_of_kind(&store, kind::CREDLY_ISSUE).await.len(),
        jobs.len()
    );
    let both = jobs_where(
        &store,
        &JobFilter {
            status: Some(JobStatus::Pending),
            kind: Some(kind::CREDLY_ISSUE.into()),
        },
    )
    .await;
    assert_eq!(both.len(), 1);
    let page = store
        .list_jobs(&JobFilter::default(), Page::new(Some(3), None))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.next_offset, Some(3));
    let rest = store
        .list_jobs(&JobFilter::default(), Page::new(Some(3), Some(3)))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert_eq!(rest.next_offset, None);
}

/// Workers claiming at the same time never get the same job.
pub async fn concurrent_claims_never_share_a_job(store: Arc<dyn Store>) {
    let jobs = issue_jobs(&store, 20).await;
    let now = now_after_writes();
    let lease = now + Duration::seconds(60);
    let store_ref = &store;
    let mut futures: Vec<BoxFuture<'_, Vec<Job>>> = Vec::new();
    for _ in 0..4 {
        futures.push(Box::pin(async move {
            let mut mine = Vec::new();
            // Bounded, so a store that hands jobs out again fails instead of looping forever.
            for _ in 0..20 {
                let got = store_ref
                    .claim_jobs(&[kind::CREDLY_ISSUE], 3, now, lease)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got);
            }
            mine
        }));
    }
    let all: Vec<Job> = join_all(futures).await.into_iter().flatten().collect();
    assert_eq!(all.len(), jobs.len(), "each job handed out exactly once");
    assert_eq!(ids(&all), ids(&jobs));
}

fn desired(
    id: &str,
    name: &str,
    requirements: Vec<DesiredRequirement>,
    penalties: Vec<DesiredPenalty>,
) -> DesiredTemplate {
    DesiredTemplate {
        template: crate::NewTemplate {
            id: Some(id.to_string()),
            ..local_template(name, true)
        },
        requirements,
        penalties,
    }
}

fn desired_course(key: &str, letter: &str, course_key: &str) -> DesiredRequirement {
    DesiredRequirement {
        key: key.to_string(),
        event_type: COURSE_PASSING.to_string(),
        description: format!("passed {course_key}"),
        group: group(letter),
        rules: vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", course_key),
        ],
    }
}

fn desired_penalty(key: &str, requirement_keys: &[&str]) -> DesiredPenalty {
    DesiredPenalty {
        key: key.to_string(),
        event_type: COURSE_PASSING.to_string(),
        description: "failed".into(),
        rules: vec![rule("is_passing", "=", "false")],
        requirement_keys: requirement_keys.iter().map(|s| s.to_string()).collect(),
    }
}

/// Requirement ids by key.
type IdsByKey = std::collections::BTreeMap<String, String>;
/// Each penalty's key with the keys of the requirements it resets.
type PenaltyLinks = Vec<(String, BTreeSet<String>)>;

/// Ids by key, and the penalties' linked keys.
fn keyed(cfg: &accolade_domain::template::TemplateConfig) -> (IdsByKey, PenaltyLinks) {
    let reqs: std::collections::BTreeMap<String, String> = cfg
        .requirements
        .iter()
        .map(|r| {
            (
                r.key.clone().expect("applied requirements have keys"),
                r.id.clone(),
            )
        })
        .collect();
    let by_id: std::collections::BTreeMap<&String, &String> =
        reqs.iter().map(|(k, v)| (v, k)).collect();
    let mut pens: Vec<(String, BTreeSet<String>)> = cfg
        .penalties
        .iter()
        .map(|p| {
            (
                p.key.clone().expect("applied penalties have keys"),
                p.requirement_ids.iter().map(|r| by_id[r].clone()).collect(),
            )
        })
        .collect();
    pens.sort();
    (reqs, pens)
}

/// `apply_template` creates a whole configuration; applying the same desired state again keeps
/// every id and the learners' progress.
pub async fn apply_template_creates_and_is_idempotent(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let id = accolade_domain::ids::uuid();
    let want = desired(
        &id,
        "Demo and Python",
        vec![
            desired_course("demo", "A", DEMO_COURSE),
            desired_course("python", "B", OTHER_COURSE),
        ],
        vec![desired_penalty("fail", &["demo", "python"])],
    );
    let cfg = store.apply_template(want.clone()).await.unwrap();
    assert_eq!(cfg.template.id, id);
    assert_eq!(cfg.template.name, "Demo and Python");
    assert!(cfg.template.is_active);
    assert_eq!(cfg.template.origin, Origin::Local);
    let (reqs, pens) = keyed(&cfg);
    assert_eq!(
        reqs.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["demo", "python"])
    );
    assert_eq!(pens, vec![("fail".to_string(), set(&["demo", "python"]))]);
    let demo = cfg
        .requirements
        .iter()
        .find(|r| r.key.as_deref() == Some("demo"))
        .unwrap();
    assert_eq!(demo.group.letter(), 'A');
    assert_eq!(demo.event_type, COURSE_PASSING);
    assert_eq!(
        demo.rules,
        vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", DEMO_COURSE)
        ]
    );
    assert_eq!(store.get_template(&id).await.unwrap(), cfg);

    send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    let progress = fulfillments_of(&store, "jdoe").await;
    assert_eq!(progress.len(), 1);

    let again = store.apply_template(want).await.unwrap();
    assert_eq!(
        keyed(&again),
        (reqs.clone(), pens),
        "re-applying keeps every id"
    );
    assert_eq!(again.penalties[0].id, cfg.penalties[0].id);
    let mut a = again.requirements.clone();
    let mut b = cfg.requirements.clone();
    a.sort_by(|x, y| x.id.cmp(&y.id));
    b.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(a, b, "re-applying the same state changes no requirement");
    assert_eq!(
        fulfillments_of(&store, "jdoe").await,
        progress,
        "progress is kept"
    );
    assert_eq!(
        send_one(&store, &index, passing("e2", "jdoe", OTHER_COURSE, true))
            .await
            .awarded
            .len(),
        1,
        "the kept progress counts"
    );

    // Without an id, a template is created with a generated one.
    let mut anonymous = desired(
        "unused",
        "Generated id",
        vec![desired_course("demo", "A", DEMO_COURSE)],
        vec![],
    );
    anonymous.template.id = None;
    let created = store.apply_template(anonymous).await.unwrap();
    assert_ne!(created.template.id, id);
    assert!(!created.template.id.is_empty());
    assert_eq!(created.requirements.len(), 1);
}

/// A requirement absent from the desired state is deleted (and unlinked); changed fields of kept
/// keys are updated in place.
pub async fn apply_template_removes_absent_requirements(store: Arc<dyn Store>) {
    let id = accolade_domain::ids::uuid();
    let cfg = store
        .apply_template(desired(
            &id,
            "Demo and Python",
            vec![
                desired_course("demo", "A", DEMO_COURSE),
                desired_course("python", "B", OTHER_COURSE),
            ],
            vec![desired_penalty("fail", &["demo", "python"])],
        ))
        .await
        .unwrap();
    let (reqs, _) = keyed(&cfg);
    let mut demo = desired_course("demo", "C", THIRD_COURSE);
    demo.description = "now the third course".into();
    let after = store
        .apply_template(desired(
            &id,
            "Renamed",
            vec![demo],
            vec![desired_penalty("fail", &["demo"])],
        ))
        .await
        .unwrap();
    assert_eq!(after.template.name, "Renamed");
    assert_eq!(after.requirements.len(), 1);
    let kept = &after.requirements[0];
    assert_eq!(kept.id, reqs["demo"], "a kept key keeps its id");
    assert_eq!(kept.group.letter(), 'C');
    assert_eq!(kept.description, "now the third course");
    assert_eq!(
        kept.rules,
        vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", THIRD_COURSE)
        ]
    );
    assert_not_found(store.get_requirement(&reqs["python"]).await, "requirement");
    assert_eq!(after.penalties.len(), 1);
    assert_eq!(
        after.penalties[0].requirement_ids,
        vec![reqs["demo"].clone()]
    );

    let bare = store
        .apply_template(desired(
            &id,
            "Renamed",
            vec![desired_course("demo", "C", THIRD_COURSE)],
            vec![],
        ))
        .await
        .unwrap();
    assert!(
        bare.penalties.is_empty(),
        "a penalty absent from the desired state is deleted"
    );
}

/// A penalty naming a requirement key the desired state lacks is `Conflict("unknown_requirement_key")`
/// and changes nothing.
pub async fn apply_template_rejects_unknown_requirement_key(store: Arc<dyn Store>) {
    let id = accolade_domain::ids::uuid();
    let before = store
        .apply_template(desired(
            &id,
            "Demo",
            vec![desired_course("demo", "A", DEMO_COURSE)],
            vec![desired_penalty("fail", &["demo"])],
        ))
        .await
        .unwrap();
    let version = store.config_version().await.unwrap();
    assert_conflict(
        store
            .apply_template(desired(
                &id,
                "Changed name",
                vec![desired_course("python", "A", OTHER_COURSE)],
                vec![desired_penalty("fail", &["demo"])],
            ))
            .await,
        "unknown_requirement_key",
    );
    assert_eq!(
        store.get_template(&id).await.unwrap(),
        before,
        "a refused apply changes nothing"
    );
    assert_eq!(store.config_version().await.unwrap(), version);

    let other = accolade_domain::ids::uuid();
    assert_conflict(
        store
            .apply_template(desired(
                &other,
                "New",
                vec![],
                vec![desired_penalty("fail", &["nope"])],
            ))
            .await,
        "unknown_requirement_key",
    );
    assert_not_found(store.get_template(&other).await, "template");
}

fn new_token(name: &str, hash: &str, scopes: &[&str]) -> NewApiToken {
    NewApiToken {
        name: name.into(),
        secret_hash: hash.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at: None,
    }
}

/// API tokens are found by the hash of their secret, with their scopes and expiry.
pub async fn api_tokens_are_found_by_hash(store: Arc<dyn Store>) {
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let expires = Utc::now().trunc_subsecs(6) + Duration::days(90);
    let token = store
        .create_api_token(NewApiToken {
            expires_at: Some(expires),
            ..new_token("ci deploy", hash, &["events:write", "read"])
        })
        .await
        .unwrap();
    assert_eq!(token.name, "ci deploy");
    assert_eq!(token.scopes, ["events:write", "read"]);
    assert_eq!(token.expires_at, Some(expires));
    assert!(!token.id.is_empty());
    assert_eq!((token.last_used_at, token.revoked_at), (None, None));
    let other = store
        .create_api_token(new_token(
            "admin",
            "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
            &["admin"],
        ))
        .await
        .unwrap();
    assert_ne!(other.id, token.id);
    assert_eq!(other.expires_at, None);
    assert_eq!(store.find_api_token(hash).await.unwrap(), Some(token));
    assert_eq!(store.find_api_token("0000").await.unwrap(), None);
}

/// Tokens are listed oldest first; revoking keeps the token (with the first revocation time)
/// and an unknown id is `NotFound`; use is recorded.
pub async fn api_tokens_are_listed_revoked_and_touched(store: Arc<dyn Store>) {
    let a = store
        .create_api_token(new_token("lms ingest", "aa", &["events:write"]))
        .await
        .unwrap();
    let b = store
        .create_api_token(new_token("ops", "bb", &["admin"]))
        .await
        .unwrap();
    let listed = store.list_api_tokens().await.unwrap();
    assert_eq!(listed, [a.clone(), b.clone()]);

    let at = Utc::now().trunc_subsecs(6);
    let revoked = store.revoke_api_token(&a.id, at).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    let again = store
        .revoke_api_token(&a.id, at + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at), "the first revocation stands");
    assert_eq!(store.find_api_token("aa").await.unwrap(), Some(revoked));
    assert_not_found(store.revoke_api_token("tok_unknown", at).await, "api token");

    store.touch_api_token(&b.id, at).await.unwrap();
    let used = store.find_api_token("bb").await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(at));
    assert_eq!(store.list_api_tokens().await.unwrap().len(), 2);
}

/// Rejected events are recorded with their reason and listed.
pub async fn rejected_events_are_recorded(store: Arc<dyn Store>) {
    let r1 = RejectedEvent {
        event_id: Some("bad-1".into()),
        event_type: Some(COURSE_PASSING.into()),
        code: "missing_user_data".into(),
        detail: "event carries no user data".into(),
        source: "http".into(),
        received_at: at("2026-08-20T14:00:00+00:00"),
    };
    let r2 = RejectedEvent {
        event_id: None,
        event_type: None,
        code: "invalid_json".into(),
        detail: "expected value at line 1 column 1".into(),
        source: "redis:openedx-learning-badges".into(),
        received_at: at("2026-08-20T14:00:01.000001+00:00"),
    };
    store
        .record_rejected(vec![r1.clone(), r2.clone()])
        .await
        .unwrap();
    store.record_rejected(vec![]).await.unwrap();
    let mut listed = store.list_rejected(Page::default()).await.unwrap().items;
    listed.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(listed, vec![r2, r1]);
    let page = store.list_rejected(Page::new(Some(1), None)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next_offset, Some(1));
    assert!(
        all_events(&store, None).await.is_empty(),
        "rejected events are not in the inbox"
    );
}

/// Counters for the dashboard follow events, awards and jobs.
pub async fn stats_follow_events_awards_and_jobs(store: Arc<dyn Store>) {
    assert_eq!(store.stats().await.unwrap(), StoreStats::default());
    let index = IndexCache::new();
    let (t, reqs) =
        configure_on_credly(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id]))
        .await
        .unwrap();
    activate(&store, &t.id).await;
    send(
        &store,
        &index,
        vec![
            passing("e1", "jdoe", DEMO_COURSE, true),
            passing("e2", "asmith", DEMO_COURSE, true),
            passing("e3", "jdoe", DEMO_COURSE, false),
            passing("e3", "jdoe", DEMO_COURSE, false),
        ],
    )
    .await;
    let s = store.stats().await.unwrap();
    assert_eq!(s.events, 3);
    assert_eq!(s.awards_active, 1);
    assert_eq!(s.awards_revoked, 1);
    assert_eq!(s.outbox_pending, 3);
    assert_eq!(s.outbox_dead, 0);
    let now = now_after_writes();
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 1, now, now + Duration::seconds(30))
        .await
        .unwrap();
    store
        .finish_job(
            &claimed[0].id,
            JobResult::Dead {
                error: "gone".into(),
            },
            now,
        )
        .await
        .unwrap();
    let s = store.stats().await.unwrap();
    assert_eq!(s.outbox_pending, 2);
    assert_eq!(s.outbox_dead, 1);
    // Manual changes and an award revoked within its own batch count too.
    let manual = store
        .award_manually(
            &t.id,
            "cdoe",
            change("by hand", "2026-06-01T00:00:00+00:00"),
        )
        .await
        .unwrap();
    send(
        &store,
        &index,
        vec![
            passing("e4", "dlee", DEMO_COURSE, true),
            passing("e5", "dlee", DEMO_COURSE, false),
        ],
    )
    .await;
    let s = store.stats().await.unwrap();
    assert_eq!((s.awards_active, s.awards_revoked), (2, 2));
    store
        .revoke_award(&manual.id, change("undo", "2026-06-02T00:00:00+00:00"))
        .await
        .unwrap();
    let s = store.stats().await.unwrap();
    let all = all_awards(&store).await;
    let revoked = all
        .iter()
        .filter(|a| a.state == AwardState::Revoked)
        .count() as i64;
    assert_eq!(
        (s.awards_active, s.awards_revoked),
        (all.len() as i64 - revoked, revoked),
        "the running totals equal a count of the awards"
    );
    assert_eq!((s.awards_active, s.awards_revoked), (1, 3));
    assert!(store.ping().await.is_ok());
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
}

/// Outgoing badge events wait for the event-bus producer, oldest first, until marked published.
pub async fn outgoing_events_wait_until_published(store: Arc<dyn Store>) {
    let index = crate::IndexCache::new();
    configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    send_one(&store, &index, passing("e1", "ann", DEMO_COURSE, true)).await;
    send_one(&store, &index, passing("e2", "bob", DEMO_COURSE, true)).await;
    let pending = store.unpublished_events(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending[0].time <= pending[1].time, "oldest first");
    assert_eq!(
        pending[0].event_type,
        "org.openedx.learning.badge.awarded.v1"
    );
    assert_eq!(pending[0].payload["user"]["pii"]["username"], "ann");
    assert_eq!(store.unpublished_events(1).await.unwrap().len(), 1, "limit");
    store
        .mark_published(vec![pending[0].id.clone()], chrono::Utc::now())
        .await
        .unwrap();
    let left = store.unpublished_events(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, pending[1].id);
}
