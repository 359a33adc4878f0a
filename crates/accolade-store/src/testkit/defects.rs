//! The defects D1–D6 of the reference implementation (openedx/credentials `b6dcad5c`), one test
//! each, proving Accolade does not have them.

use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::{kind, JobStatus};
use chrono::{Duration, Utc};
use serde_json::json;

use super::support::*;
use crate::{EventOutcome, IndexCache, JobFilter, JobResult, NewTemplate, Store, TemplatePatch};
use accolade_domain::template::Origin;

/// D1: with groups A AND B, completing A alone awards nothing (no award, no job); completing
/// both awards exactly once.
pub async fn d1_one_group_of_two_awards_nothing(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure_active(
        &store,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    assert_nothing(
        &send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await,
        "group A only",
    );
    assert!(
        all_awards(&store).await.is_empty(),
        "group A alone must not award"
    );
    assert!(
        all_jobs(&store).await.is_empty(),
        "group A alone must not queue a provider call"
    );
    assert_eq!(
        fulfillments_of(&store, "jdoe").await.len(),
        1,
        "but A is recorded as fulfilled"
    );

    let done = send_one(&store, &index, passing("e2", "jdoe", OTHER_COURSE, true)).await;
    assert_eq!(done.awarded.len(), 1);
    assert_nothing(
        &send_one(&store, &index, passing("e3", "jdoe", DEMO_COURSE, true)).await,
        "passing A again",
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert_eq!(all_awards(&store).await.len(), 1);
    assert_eq!(
        jobs_of_kind(&store, kind::ISSUE_AWARD).await.len(),
        1,
        "exactly one issue job"
    );
}

/// D2: a penalty resetting two requirements revokes once (one revoke job); a learner who never
/// completed the badge is neither revoked nor given a revoke job.
pub async fn d2_penalty_on_two_requirements_revokes_once(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(
        &store,
        "A and B with penalty",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id, &reqs[1].id]))
        .await
        .unwrap();
    activate(&store, &t.id).await;

    send(
        &store,
        &index,
        vec![
            passing("e1", "jdoe", DEMO_COURSE, true),
            passing("e2", "jdoe", OTHER_COURSE, true),
            passing("e3", "asmith", DEMO_COURSE, true),
        ],
    )
    .await;
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    let award = awards_of(&store, "jdoe").await.remove(0);

    let fail = send_one(&store, &index, passing("e4", "jdoe", DEMO_COURSE, false)).await;
    assert_eq!(
        fail.revoked,
        vec![award.id.clone()],
        "one revocation for two reset requirements"
    );
    assert!(
        fulfillments_of(&store, "jdoe").await.is_empty(),
        "both linked requirements were reset"
    );
    let revoke_jobs = jobs_of_kind(&store, kind::REVOKE_AWARD).await;
    assert_eq!(
        revoke_jobs.len(),
        1,
        "exactly one revoke job: {revoke_jobs:?}"
    );
    assert_eq!(revoke_jobs[0].payload["award_id"], json!(award.id));
    assert_eq!(
        store.get_award(&award.id).await.unwrap().state,
        AwardState::Revoked
    );
    assert_eq!(
        awards_of(&store, "jdoe").await.len(),
        1,
        "revocation does not create a row"
    );

    // Failing again while already revoked: nothing.
    assert_nothing(
        &send_one(&store, &index, passing("e5", "jdoe", OTHER_COURSE, false)).await,
        "second failure",
    );
    // Partially or never completed learners: no revocation, no award row, no job.
    assert_nothing(
        &send_one(&store, &index, passing("e6", "asmith", DEMO_COURSE, false)).await,
        "partial learner",
    );
    assert_nothing(
        &send_one(&store, &index, passing("e7", "newbie", DEMO_COURSE, false)).await,
        "new learner",
    );
    assert!(awards_of(&store, "asmith").await.is_empty());
    assert!(awards_of(&store, "newbie").await.is_empty());
    assert_eq!(jobs_of_kind(&store, kind::REVOKE_AWARD).await.len(), 1);
    assert_eq!(
        all_jobs(&store).await.len(),
        2,
        "one issue and one revoke job in total"
    );
}

/// D3: after a revocation, re-qualifying awards a new episode with the history kept; with
/// `allow_reaward = false` it does not.
pub async fn d3_requalifying_after_revocation_awards_again(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (again, r) = configure(
        &store,
        "Re-earnable",
        vec![passed_course(DEMO_COURSE, None)],
    )
    .await;
    store
        .add_penalty(&again.id, failed_course_penalty(&[&r[0].id]))
        .await
        .unwrap();
    activate(&store, &again.id).await;
    let (once, r) = configure(&store, "Once only", vec![passed_course(DEMO_COURSE, None)]).await;
    store
        .add_penalty(&once.id, failed_course_penalty(&[&r[0].id]))
        .await
        .unwrap();
    store
        .update_template(
            &once.id,
            TemplatePatch {
                allow_reaward: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    activate(&store, &once.id).await;

    let t1 = "2026-03-01T10:00:00+00:00";
    let t2 = "2026-03-02T10:00:00+00:00";
    let t3 = "2026-03-03T10:00:00+00:00";
    assert_eq!(
        send_one(
            &store,
            &index,
            passing_at("e1", "jdoe", DEMO_COURSE, true, t1)
        )
        .await
        .awarded
        .len(),
        2
    );
    assert_eq!(
        send_one(
            &store,
            &index,
            passing_at("e2", "jdoe", DEMO_COURSE, false, t2)
        )
        .await
        .revoked
        .len(),
        2
    );
    let third = send_one(
        &store,
        &index,
        passing_at("e3", "jdoe", DEMO_COURSE, true, t3),
    )
    .await;
    assert_eq!(
        third.awarded.len(),
        1,
        "only the re-earnable template awards again"
    );

    let history = awards_where(
        &store,
        &crate::AwardFilter {
            template_id: Some(again.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(history.len(), 2, "both episodes are kept: {history:?}");
    assert_eq!((history[0].episode, history[1].episode), (1, 2));
    assert_eq!(history[0].state, AwardState::Revoked);
    assert!(history[0].revoked_at.is_some());
    assert!(history[0].revoke_reason.is_some());
    assert_eq!(history[0].earned_at, at(t1));
    assert_eq!(history[1].state, AwardState::Awarded);
    assert_eq!(history[1].earned_at, at(t3));
    assert_eq!(history[1].event_id.as_deref(), Some("e3"));
    assert_eq!(third.awarded, vec![history[1].id.clone()]);
    assert_ne!(history[0].id, history[1].id);

    let once_history = awards_where(
        &store,
        &crate::AwardFilter {
            template_id: Some(once.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(once_history.len(), 1);
    assert_eq!(once_history[0].state, AwardState::Revoked);
    assert!(holders(&store, &once.id).await.is_empty());
    let issue_jobs = jobs_of_kind(&store, kind::ISSUE_AWARD).await;
    assert_eq!(
        issue_jobs.len(),
        3,
        "issue jobs: 2 first awards + 1 re-award"
    );
    assert_eq!(
        issue_jobs
            .iter()
            .filter(|j| j.payload["template_id"] == json!(once.id))
            .count(),
        1,
        "no second issue job when re-awarding is off"
    );
}

/// D4: an award of a provider's (Credly) template always comes with a pending `credly.issue` job
/// written with it; a job made dead can be retried by an operator and claimed again; replaying
/// the event never awards twice.
pub async fn d4_award_leaves_a_retryable_issue_job(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = store
        .create_template(NewTemplate {
            origin: Origin::Credly,
            organization_id: Some("org-1".into()),
            ..local_template("Demo on Credly", true)
        })
        .await
        .unwrap();
    store
        .add_requirement(&t.id, passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    let event = passing("e1", "jdoe", DEMO_COURSE, true);
    let effects = send_one(&store, &index, event.clone()).await;
    let award_id = effects.awarded[0].clone();

    let pending = jobs_where(
        &store,
        &JobFilter {
            status: Some(JobStatus::Pending),
            kind: None,
        },
    )
    .await;
    assert_eq!(pending.len(), 1, "exactly one job: {pending:?}");
    let job = &pending[0];
    assert_eq!(job.kind, kind::CREDLY_ISSUE);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.payload["award_id"], json!(award_id));
    assert_eq!(job.payload["template_id"], json!(t.id));
    assert_eq!(job.payload["learner"], json!("jdoe"));
    assert_eq!(job.payload["episode"], json!(1));

    // A worker claims it, the provider fails for good: dead.
    let now = Utc::now() + Duration::seconds(1);
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, job.id);
    assert_eq!(claimed[0].status, JobStatus::Running);
    assert_eq!(claimed[0].attempts, 1);
    store
        .finish_job(
            &job.id,
            JobResult::Dead {
                error: "credly: 500".into(),
            },
            now,
        )
        .await
        .unwrap();
    let dead = store.get_job(&job.id).await.unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("credly: 500"));
    let later = now + Duration::hours(2);
    assert!(
        store
            .claim_jobs(
                &[kind::CREDLY_ISSUE],
                10,
                later,
                later + Duration::seconds(60)
            )
            .await
            .unwrap()
            .is_empty(),
        "a dead job is never claimed by itself"
    );

    // Replaying the event does not award again (and does not need to: the job is there).
    assert_eq!(
        send(&store, &index, vec![event]).await,
        vec![EventOutcome::Duplicate]
    );
    assert_nothing(
        &send_one(
            &store,
            &index,
            passing("e1-resent", "jdoe", DEMO_COURSE, true),
        )
        .await,
        "the same pass under a new id",
    );
    assert_eq!(all_awards(&store).await.len(), 1);
    assert_eq!(all_jobs(&store).await.len(), 1);

    // The operator retries it: pending again, attempts kept, claimable now.
    let retried = store.retry_job(&job.id).await.unwrap();
    assert_eq!(retried.status, JobStatus::Pending);
    assert_eq!(
        retried.attempts, 1,
        "a manual retry keeps the attempt count"
    );
    let now = Utc::now() + Duration::seconds(1);
    let again = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, job.id);
    assert_eq!(again[0].attempts, 2);
    store
        .finish_job(&job.id, JobResult::Succeeded, now)
        .await
        .unwrap();
    assert_eq!(
        store.get_job(&job.id).await.unwrap().status,
        JobStatus::Succeeded
    );
    assert_eq!(
        store.get_award(&award_id).await.unwrap().state,
        AwardState::Awarded
    );
}

/// D5: the `issued_at` sent to the provider is the time of the event that completed the badge,
/// not the template's creation time (nor the first event's).
pub async fn d5_issued_at_is_the_completing_event_time(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure_active(
        &store,
        "Two courses",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    let first = "2024-03-05T10:20:30+00:00";
    let completing = "2024-04-07T08:09:10+00:00";
    send_one(
        &store,
        &index,
        passing_at("e1", "jdoe", DEMO_COURSE, true, first),
    )
    .await;
    let done = send_one(
        &store,
        &index,
        passing_at("e2", "jdoe", OTHER_COURSE, true, completing),
    )
    .await;
    let award = store.get_award(&done.awarded[0]).await.unwrap();
    assert_eq!(award.earned_at, at(completing));

    let jobs = jobs_of_kind(&store, kind::ISSUE_AWARD).await;
    assert_eq!(jobs.len(), 1);
    let issued_at = jobs[0].payload["issued_at"]
        .as_str()
        .expect("issue job carries issued_at");
    assert_eq!(
        at(issued_at),
        at(completing),
        "issued_at must be the completing event's time"
    );
    assert_ne!(at(issued_at), t.created_at);
    assert_ne!(at(issued_at), at(first));
}

/// D6: a requirement without rules matches every event of its type, whatever the payload.
pub async fn d6_requirement_without_rules_matches_any_event_of_its_type(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure_active(
        &store,
        "Any CCX event",
        vec![requirement(CCX_PASSING, None, vec![])],
    )
    .await;
    assert!(reqs[0].rules.is_empty());
    assert_eq!(
        send_one(
            &store,
            &index,
            ccx_passing("x1", "akumar", &demo_ccx(3), DEMO_COURSE, true)
        )
        .await
        .awarded
        .len(),
        1
    );
    assert_eq!(
        send_one(
            &store,
            &index,
            ccx_passing("x2", "lchen", &demo_ccx(3), DEMO_COURSE, false)
        )
        .await
        .awarded
        .len(),
        1
    );
    let bare = event_from(json!({
        "id": "x3",
        "event_type": CCX_PASSING,
        "time": SAMPLE_TIME,
        "data": {"course_passing_status": {"user": user_data("mgarcia")}}
    }));
    assert_eq!(
        send_one(&store, &index, bare).await.awarded.len(),
        1,
        "even a payload with nothing but the user"
    );
    assert_nothing(
        &send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await,
        "another event type",
    );
    assert_eq!(
        holders(&store, &t.id).await,
        set(&["akumar", "lchen", "mgarcia"])
    );
}

/// A learner who fulfilled A of "A and B" is not stranded when the operator deletes B: the next
/// matching event awards the badge that is now complete.
pub async fn deleted_requirement_does_not_strand_learners(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (_, reqs) = configure_active(
        &store,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    assert_nothing(
        &send_one(&store, &index, passing("s1", "jdoe", DEMO_COURSE, true)).await,
        "A only",
    );
    store.delete_requirement(&reqs[1].id).await.unwrap();
    let again = send_one(&store, &index, passing("s2", "jdoe", DEMO_COURSE, true)).await;
    assert_eq!(
        again.awarded.len(),
        1,
        "complete after the deletion: awarded on the next match"
    );
    let third = send_one(&store, &index, passing("s3", "jdoe", DEMO_COURSE, true)).await;
    assert!(third.awarded.is_empty(), "and only once");
}

/// A group added to an active template makes a holder's progress incomplete without an event;
/// a penalty after that is no complete→incomplete edge, so it revokes nothing. (The SQLite
/// writer keeps completeness with its cached progress: this fails if that is not recomputed
/// after a configuration change.)
pub async fn group_added_after_the_award_is_no_edge_for_a_penalty(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) =
        configure_active(&store, "A", vec![passed_course(DEMO_COURSE, Some("A"))]).await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[reqs[0].id.as_str()]))
        .await
        .unwrap();
    let first = send_one(&store, &index, passing("g1", "jdoe", DEMO_COURSE, true)).await;
    assert_eq!(first.awarded.len(), 1, "A alone completes the template");
    store
        .add_requirement(&t.id, passed_course(OTHER_COURSE, Some("B")))
        .await
        .unwrap();
    assert_nothing(
        &send_one(&store, &index, passing("g2", "jdoe", DEMO_COURSE, false)).await,
        "progress was already incomplete (A of A and B): the penalty is no edge",
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert_nothing(
        &send_one(&store, &index, passing("g3", "jdoe", OTHER_COURSE, true)).await,
        "B alone, A was reset",
    );
    assert_nothing(
        &send_one(&store, &index, passing("g4", "jdoe", DEMO_COURSE, true)).await,
        "complete again, but the badge was never revoked",
    );
}
