//! Event processing: exactly-once by event id, award times, active templates only, rule changes
//! visible to the very next batch, concurrency, and what the inbox, learners and fulfilments show.

use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::event::IncomingEvent;
use accolade_domain::outbox::kind;

use super::support::*;
use crate::{EventOutcome, IndexCache, Page, RequirementPatch, Store};

/// Replaying an event id inside the same batch is a `Duplicate` and changes nothing, even when
/// the body differs (the id is the dedup key).
pub async fn replay_in_same_batch_is_duplicate(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let e1 = passing("e1", "jdoe", DEMO_COURSE, true);
    let same_id_other_body = passing("e1", "asmith", DEMO_COURSE, true);
    let out = send(
        &store,
        &index,
        vec![e1.clone(), e1.clone(), same_id_other_body],
    )
    .await;
    assert!(
        matches!(&out[0], EventOutcome::Accepted { awarded, .. } if awarded.len() == 1),
        "{out:?}"
    );
    assert_eq!(out[1], EventOutcome::Duplicate);
    assert_eq!(
        out[2],
        EventOutcome::Duplicate,
        "dedup is by event id, whatever the body"
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert_eq!(all_awards(&store).await.len(), 1);
    assert_eq!(all_jobs(&store).await.len(), 1);
    assert_eq!(all_events(&store, None).await.len(), 1);
    assert_eq!(fulfillments_of(&store, "jdoe").await.len(), 1);
    assert!(fulfillments_of(&store, "asmith").await.is_empty());
}

/// Replaying events in later batches is a `Duplicate` and changes nothing: no re-fulfilment, no
/// second award, no resurrected revocation, no new jobs.
pub async fn replay_in_later_batch_is_duplicate(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(
        &store,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id]))
        .await
        .unwrap();
    activate(&store, &t.id).await;
    let e1 = passing_at("e1", "jdoe", DEMO_COURSE, true, "2026-01-01T00:00:01+00:00");
    let e2 = passing_at(
        "e2",
        "jdoe",
        OTHER_COURSE,
        true,
        "2026-01-01T00:00:02+00:00",
    );
    let e3 = passing_at(
        "e3",
        "jdoe",
        DEMO_COURSE,
        false,
        "2026-01-01T00:00:03+00:00",
    );
    send(&store, &index, vec![e1.clone(), e2.clone()]).await;
    let before_fail = snapshot(&store, &["jdoe"]).await;
    assert_eq!(before_fail.awards.len(), 1);
    assert_eq!(
        send(&store, &index, vec![e2.clone()]).await,
        vec![EventOutcome::Duplicate]
    );
    assert_eq!(
        send(&store, &index, vec![e1.clone(), e2.clone()]).await,
        vec![EventOutcome::Duplicate; 2]
    );
    assert_eq!(
        snapshot(&store, &["jdoe"]).await,
        before_fail,
        "replays changed something"
    );

    let revoked = send_one(&store, &index, e3.clone()).await;
    assert_eq!(revoked.revoked.len(), 1);
    let after_fail = snapshot(&store, &["jdoe"]).await;
    // Replaying the pass that completed it must not re-fulfil and re-award.
    let replay = send(&store, &index, vec![e1.clone(), e2, e3, e1]).await;
    assert_eq!(replay, vec![EventOutcome::Duplicate; 4]);
    assert_eq!(
        snapshot(&store, &["jdoe"]).await,
        after_fail,
        "replays changed something"
    );
    assert!(holders(&store, &t.id).await.is_empty());
}

/// `earned_at` is the time of the event that completed the progress (to the microsecond), not
/// the time it was processed; `awarded_at` is when Accolade recorded it.
pub async fn earned_at_is_time_of_completing_event(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active(
        &store,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    let t1 = "2025-11-02T09:15:00.250000+00:00";
    let t2 = "2025-11-03T17:45:12.512345+02:00";
    send_one(
        &store,
        &index,
        passing_at("e1", "jdoe", DEMO_COURSE, true, t1),
    )
    .await;
    let before = chrono::Utc::now();
    let done = send_one(
        &store,
        &index,
        passing_at("e2", "jdoe", OTHER_COURSE, true, t2),
    )
    .await;
    let award = store.get_award(&done.awarded[0]).await.unwrap();
    assert_eq!(
        award.earned_at,
        at(t2),
        "earned_at is the completing event's time"
    );
    assert_eq!(award.episode, 1);
    assert_eq!(award.event_id.as_deref(), Some("e2"));
    assert!(
        award.awarded_at >= before - chrono::Duration::seconds(5),
        "awarded_at is the processing time"
    );
    assert_eq!(
        award.issued_at,
        Some(award.awarded_at),
        "a local template's award is issued as it is awarded (Accolade is the issuer)"
    );
    assert_eq!(award.revoked_at, None);
}

/// A local template's outbox jobs are written already done: the award is issued in the same
/// transaction and a revocation has nothing external to call, so no worker pass is needed and
/// none is pending. The jobs are still written, one per award and one per revocation.
pub async fn local_jobs_are_done_in_the_awarding_transaction(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (_, reqs) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    store
        .add_penalty(&reqs[0].template_id, failed_course_penalty(&[&reqs[0].id]))
        .await
        .unwrap();
    let awarded = send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    let revoked = send_one(&store, &index, passing("e2", "jdoe", DEMO_COURSE, false)).await;
    assert_eq!(revoked.revoked, awarded.awarded);
    let award = store.get_award(&awarded.awarded[0]).await.unwrap();
    assert_eq!(award.issued_at, Some(award.awarded_at));
    let jobs = all_jobs(&store).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        assert!(
            job.kind == kind::ISSUE_AWARD || job.kind == kind::REVOKE_AWARD,
            "{job:?}"
        );
        assert_eq!(
            job.status,
            accolade_domain::outbox::JobStatus::Succeeded,
            "{job:?}"
        );
        assert_eq!(job.attempts, 1, "{job:?}");
        assert_eq!(job.payload["award_id"], serde_json::json!(award.id));
    }
    let now = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(
        store
            .claim_jobs(
                &[kind::ISSUE_AWARD, kind::REVOKE_AWARD],
                10,
                now,
                now + chrono::Duration::seconds(60)
            )
            .await
            .unwrap()
            .is_empty(),
        "nothing left for a worker"
    );
}

/// An inactive template takes no part: no fulfilment, no award.
pub async fn inactive_template_is_ignored(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure(&store, "Inactive", vec![passed_course(DEMO_COURSE, None)]).await;
    assert_nothing(
        &send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await,
        "inactive template",
    );
    assert!(holders(&store, &t.id).await.is_empty());
    assert!(
        fulfillments_of(&store, "jdoe").await.is_empty(),
        "no progress on inactive templates"
    );
    assert!(all_jobs(&store).await.is_empty());
    assert_eq!(
        all_events(&store, None).await.len(),
        1,
        "the event itself is still recorded"
    );
}

/// Deactivating stops processing but keeps issued awards (even against a matching penalty);
/// reactivating resumes for new events, not retroactively.
pub async fn deactivating_keeps_awards_and_reactivating_resumes(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id]))
        .await
        .unwrap();
    activate(&store, &t.id).await;
    let award = send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true))
        .await
        .awarded
        .remove(0);

    store.set_template_active(&t.id, false).await.unwrap();
    assert_eq!(
        store.get_award(&award).await.unwrap().state,
        AwardState::Awarded,
        "deactivation keeps awards"
    );
    assert_nothing(
        &send_one(&store, &index, passing("e2", "jdoe", DEMO_COURSE, false)).await,
        "penalty while inactive",
    );
    assert_nothing(
        &send_one(&store, &index, passing("e3", "asmith", DEMO_COURSE, true)).await,
        "pass while inactive",
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert_eq!(
        store.get_award(&award).await.unwrap().state,
        AwardState::Awarded
    );

    store.set_template_active(&t.id, true).await.unwrap();
    assert_eq!(
        holders(&store, &t.id).await,
        set(&["jdoe"]),
        "reactivation does not replay missed events"
    );
    assert_eq!(
        send_one(&store, &index, passing("e4", "asmith", DEMO_COURSE, true))
            .await
            .awarded
            .len(),
        1
    );
    assert_eq!(
        send_one(&store, &index, passing("e5", "jdoe", DEMO_COURSE, false))
            .await
            .revoked,
        vec![award]
    );
    assert_eq!(holders(&store, &t.id).await, set(&["asmith"]));
}

/// A rule change is used by the very next `process_events` with the same `IndexCache` (no stale
/// rules): updated rules, an added group, a deleted requirement, a deactivation.
pub async fn rule_change_applies_to_next_batch(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure_active(
        &store,
        "Changing",
        vec![passed_course(DEMO_COURSE, Some("A"))],
    )
    .await;
    assert_nothing(
        &send_one(&store, &index, passing("e1", "u1", OTHER_COURSE, true)).await,
        "old rules",
    );

    store
        .update_requirement(
            &reqs[0].id,
            RequirementPatch {
                rules: Some(vec![
                    rule("is_passing", "=", "true"),
                    rule("course.course_key", "=", OTHER_COURSE),
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        send_one(&store, &index, passing("e2", "u2", OTHER_COURSE, true))
            .await
            .awarded
            .len(),
        1,
        "new rules"
    );
    assert_nothing(
        &send_one(&store, &index, passing("e3", "u3", DEMO_COURSE, true)).await,
        "the old rule is gone",
    );

    let b = store
        .add_requirement(&t.id, passed_course(THIRD_COURSE, Some("B")))
        .await
        .unwrap();
    assert_nothing(
        &send_one(&store, &index, passing("e4", "u4", OTHER_COURSE, true)).await,
        "group B now needed",
    );
    assert_eq!(
        send_one(&store, &index, passing("e5", "u4", THIRD_COURSE, true))
            .await
            .awarded
            .len(),
        1
    );

    store.delete_requirement(&b.id).await.unwrap();
    assert_eq!(
        send_one(&store, &index, passing("e6", "u5", OTHER_COURSE, true))
            .await
            .awarded
            .len(),
        1
    );

    store.set_template_active(&t.id, false).await.unwrap();
    assert_nothing(
        &send_one(&store, &index, passing("e7", "u6", OTHER_COURSE, true)).await,
        "deactivated",
    );

    store.set_template_active(&t.id, true).await.unwrap();
    store
        .update_requirement(
            &reqs[0].id,
            RequirementPatch {
                event_type: Some(CCX_PASSING.into()),
                rules: Some(vec![
                    rule("is_passing", "=", "true"),
                    rule("course.master_course_key", "=", OTHER_COURSE),
                ]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_nothing(
        &send_one(&store, &index, passing("e8", "u7", OTHER_COURSE, true)).await,
        "event type changed",
    );
    assert_eq!(
        send_one(
            &store,
            &index,
            ccx_passing("x1", "u7", &other_ccx(1), OTHER_COURSE, true)
        )
        .await
        .awarded
        .len(),
        1,
        "the new event type counts"
    );
    assert_eq!(holders(&store, &t.id).await, set(&["u2", "u4", "u5", "u7"]));
}

/// One event can complete several templates; each gets its award and job.
pub async fn one_event_completes_several_templates(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (a, _) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let (b, _) = configure_active(
        &store,
        "Any",
        vec![requirement(COURSE_PASSING, None, vec![])],
    )
    .await;
    let (c, _) = configure_active(&store, "Other", vec![passed_course(OTHER_COURSE, None)]).await;
    let done = send_one(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    assert_eq!(done.awarded.len(), 2);
    assert_eq!(holders(&store, &a.id).await, set(&["jdoe"]));
    assert_eq!(holders(&store, &b.id).await, set(&["jdoe"]));
    assert!(holders(&store, &c.id).await.is_empty());
    assert_eq!(jobs_of_kind(&store, kind::ISSUE_AWARD).await.len(), 2);
}

/// Later events in one batch see the effects of earlier ones (same learner twice in a batch).
pub async fn batch_sees_its_own_effects(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(
        &store,
        "A and B",
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
    let out = send(
        &store,
        &index,
        vec![
            passing("e1", "jdoe", DEMO_COURSE, true),
            passing("e2", "jdoe", OTHER_COURSE, true),
            passing("e3", "jdoe", DEMO_COURSE, false),
            passing("e4", "jdoe", DEMO_COURSE, true),
            passing("e5", "jdoe", OTHER_COURSE, true),
        ],
    )
    .await;
    let counts: Vec<(usize, usize)> = out
        .iter()
        .map(|o| match o {
            EventOutcome::Accepted { awarded, revoked } => (awarded.len(), revoked.len()),
            EventOutcome::Duplicate => panic!("no duplicates here"),
        })
        .collect();
    assert_eq!(counts, vec![(0, 0), (1, 0), (0, 1), (0, 0), (1, 0)]);
    let history = awards_of(&store, "jdoe").await;
    assert_eq!(
        history
            .iter()
            .map(|a| (a.episode, a.state))
            .collect::<Vec<_>>(),
        vec![(1, AwardState::Revoked), (2, AwardState::Awarded)]
    );
}

/// Sends one batch, retrying (as at-least-once delivery would) when the store reports a
/// transient failure; a store may refuse a conflicting transaction but must never lose or double
/// an effect.
async fn deliver(
    store: &Arc<dyn Store>,
    index: &IndexCache,
    events: Vec<IncomingEvent>,
) -> Vec<EventOutcome> {
    let mut last = None;
    for _ in 0..5 {
        match store.process_events(events.clone(), index).await {
            Ok(out) => return out,
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => panic!("process_events failed: {e:?}"),
        }
    }
    panic!("process_events kept failing: {last:?}")
}

/// Two batches completing the two groups of the same learner's badge, processed concurrently
/// (e.g. by two instances), award exactly once: neither may miss the other's fulfilment.
pub async fn concurrent_batches_award_exactly_once(store: Arc<dyn Store>) {
    let index_a = IndexCache::new();
    let index_b = IndexCache::new();
    let (t, _) = configure_active(
        &store,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    let learners: Vec<String> = (0..12).map(|i| format!("learner{i}")).collect();
    let mut futures: Vec<BoxFuture<'_, Vec<EventOutcome>>> = Vec::new();
    for l in &learners {
        let a = vec![passing(&format!("{l}-a"), l, DEMO_COURSE, true)];
        let b = vec![passing(&format!("{l}-b"), l, OTHER_COURSE, true)];
        futures.push(Box::pin(deliver(&store, &index_a, a)));
        futures.push(Box::pin(deliver(&store, &index_b, b)));
    }
    join_all(futures).await;
    let holders = holders(&store, &t.id).await;
    assert_eq!(
        holders,
        set(&learners),
        "every learner completed both groups"
    );
    assert_eq!(
        all_awards(&store).await.len(),
        learners.len(),
        "exactly one award each"
    );
    assert_eq!(
        jobs_of_kind(&store, kind::ISSUE_AWARD).await.len(),
        learners.len()
    );
}

/// The same event delivered twice at the same time (two consumers) is processed once.
pub async fn concurrent_duplicate_is_processed_once(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let mut futures: Vec<BoxFuture<'_, Vec<EventOutcome>>> = Vec::new();
    for _ in 0..4 {
        futures.push(Box::pin(deliver(
            &store,
            &index,
            vec![passing("e1", "jdoe", DEMO_COURSE, true)],
        )));
    }
    let outcomes: Vec<EventOutcome> = join_all(futures).await.into_iter().flatten().collect();
    let accepted = outcomes
        .iter()
        .filter(|o| matches!(o, EventOutcome::Accepted { .. }))
        .count();
    assert_eq!(
        accepted, 1,
        "exactly one delivery is processed: {outcomes:?}"
    );
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert_eq!(all_awards(&store).await.len(), 1);
    assert_eq!(all_jobs(&store).await.len(), 1);
    assert_eq!(all_events(&store, None).await.len(), 1);
}

/// `fulfillments` lists which event fulfilled which requirement, and when.
pub async fn fulfillments_name_the_event(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(
        &store,
        "A and B",
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
    let (ta, tb) = (
        "2026-02-01T08:00:00.000001+00:00",
        "2026-02-02T08:00:00+00:00",
    );
    send_one(
        &store,
        &index,
        passing_at("e1", "jdoe", DEMO_COURSE, true, ta),
    )
    .await;
    let f = fulfillments_of(&store, "jdoe").await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].template_id, t.id);
    assert_eq!(f[0].requirement_id, reqs[0].id);
    assert_eq!(f[0].event_id.as_deref(), Some("e1"));
    assert_eq!(f[0].fulfilled_at, at(ta));

    // Passing the same course again keeps the original fulfilment.
    send_one(
        &store,
        &index,
        passing("e1-again", "jdoe", DEMO_COURSE, true),
    )
    .await;
    send_one(
        &store,
        &index,
        passing_at("e2", "jdoe", OTHER_COURSE, true, tb),
    )
    .await;
    let f = fulfillments_of(&store, "jdoe").await;
    let by_requirement: std::collections::BTreeMap<
        &str,
        (Option<&str>, chrono::DateTime<chrono::Utc>),
    > = f
        .iter()
        .map(|x| {
            (
                x.requirement_id.as_str(),
                (x.event_id.as_deref(), x.fulfilled_at),
            )
        })
        .collect();
    assert_eq!(by_requirement.len(), 2);
    assert_eq!(by_requirement[reqs[0].id.as_str()], (Some("e1"), at(ta)));
    assert_eq!(by_requirement[reqs[1].id.as_str()], (Some("e2"), at(tb)));

    assert!(
        fulfillments_of(&store, "asmith").await.is_empty(),
        "unknown learners have none"
    );
    send_one(&store, &index, passing("e3", "jdoe", DEMO_COURSE, false)).await;
    assert!(
        fulfillments_of(&store, "jdoe").await.is_empty(),
        "the penalty reset both"
    );
}

/// The inbox keeps every accepted event (matching a template or not), listable per learner,
/// with its body; duplicates are stored once.
pub async fn events_are_listed_by_learner(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let e1 = passing("e1", "jdoe", DEMO_COURSE, true);
    let e2 = passing_at(
        "e2",
        "asmith",
        OTHER_COURSE,
        false,
        "2026-08-21T08:00:00+00:00",
    );
    let e3 = ccx_passing("x1", "jdoe", &demo_ccx(3), DEMO_COURSE, true);
    send(&store, &index, vec![e1.clone(), e2.clone(), e3.clone()]).await;
    send(&store, &index, vec![e1.clone()]).await;

    let jdoe = all_events(&store, Some("jdoe")).await;
    assert_eq!(
        jdoe.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e1", "x1"]
    );
    let all = all_events(&store, None).await;
    assert_eq!(all.len(), 3, "duplicates are stored once");
    for original in [&e1, &e2, &e3] {
        let stored = all.iter().find(|s| s.id == original.id).expect("stored");
        assert_eq!(stored.event_type, original.event_type);
        assert_eq!(stored.learner, original.learner.username);
        assert_eq!(stored.time, original.time);
        let parsed =
            IncomingEvent::from_json(&stored.body).expect("the stored body is a valid event");
        assert_eq!(&parsed, original, "the body round-trips");
    }
    assert!(all_events(&store, Some("nobody")).await.is_empty());
    let page = store
        .list_events(None, Page::new(Some(2), None))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_offset, Some(2));
    let rest = store
        .list_events(None, Page::new(Some(2), Some(2)))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_offset, None);
}

/// Learners are created from the events' user data and kept up to date.
pub async fn learners_are_recorded_from_events(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    send(
        &store,
        &index,
        vec![
            passing("e1", "jdoe", DEMO_COURSE, true),
            ccx_passing("x1", "akumar", &demo_ccx(3), DEMO_COURSE, true),
        ],
    )
    .await;
    let l = store.get_learner("jdoe").await.unwrap();
    assert_eq!(l.username, "jdoe");
    assert_eq!(l.lms_user_id, Some(lms_id("jdoe")));
    assert_eq!(l.email.as_deref(), Some("jdoe@example.com"));
    assert_eq!(l.name.as_deref(), Some("Learner jdoe"));
    assert_not_found(store.get_learner("ghost").await, "learner");
    let all = store.list_learners(Page::default()).await.unwrap();
    assert_eq!(
        all.items
            .iter()
            .map(|l| l.username.clone())
            .collect::<std::collections::BTreeSet<_>>(),
        set(&["akumar", "jdoe"])
    );

    let with_email = |id: &str, email: &str| {
        let mut e = passing(id, "jdoe", DEMO_COURSE, true);
        e.learner.email = Some(email.to_string());
        e.payload["user"]["pii"]["email"] = serde_json::json!(email);
        e
    };
    send(
        &store,
        &index,
        vec![with_email("e2", "jane@new.example.com")],
    )
    .await;
    assert_eq!(
        store.get_learner("jdoe").await.unwrap().email.as_deref(),
        Some("jane@new.example.com"),
        "learner data follows the latest event"
    );
    send(&store, &index, vec![with_email("e3", "jdoe@example.com")]).await;
    assert_eq!(
        store.get_learner("jdoe").await.unwrap().email.as_deref(),
        Some("jdoe@example.com"),
        "changing back to earlier data is an update too"
    );
    // The same within one batch: the last event's data wins.
    send(
        &store,
        &index,
        vec![
            with_email("e4", "jane@new.example.com"),
            with_email("e5", "jdoe@example.com"),
            with_email("e6", "jane@new.example.com"),
        ],
    )
    .await;
    assert_eq!(
        store.get_learner("jdoe").await.unwrap().email.as_deref(),
        Some("jane@new.example.com")
    );
    // An event without the field leaves the last value given; a repeat of a stored event, or of
    // one earlier in the batch, changes nothing.
    let mut no_email = passing("e8", "jdoe", DEMO_COURSE, true);
    no_email.learner.email = None;
    send(
        &store,
        &index,
        vec![
            with_email("e7", "first@example.com"),
            with_email("e9", "j.doe@example.com"),
            no_email,
            with_email("e4", "stored@example.com"),
            with_email("e7", "repeat@example.com"),
        ],
    )
    .await;
    let l = store.get_learner("jdoe").await.unwrap();
    assert_eq!(l.email.as_deref(), Some("j.doe@example.com"));
    assert_eq!(l.name.as_deref(), Some("Learner jdoe"));
}

/// An empty batch is fine and changes nothing.
pub async fn empty_batch_is_a_no_op(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    assert!(store
        .process_events(vec![], &index)
        .await
        .unwrap()
        .is_empty());
    assert!(all_events(&store, None).await.is_empty());
    assert_eq!(store.stats().await.unwrap().events, 0);
}

/// A large batch (as a busy consumer hands over) is processed in one call: one outcome per
/// event, every award and job written.
pub async fn large_batch_is_processed(store: Arc<dyn Store>) {
    const N: usize = 3000;
    let index = IndexCache::new();
    let (t, _) = configure_active(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let mut events: Vec<IncomingEvent> = (0..N)
        .map(|i| {
            passing(
                &format!("big-{i}"),
                &format!("learner{i}"),
                DEMO_COURSE,
                true,
            )
        })
        .collect();
    events.push(events[0].clone());
    let out = send(&store, &index, events).await;
    assert_eq!(out.len(), N + 1);
    assert_eq!(out[N], EventOutcome::Duplicate);
    let awarded = out
        .iter()
        .filter(|o| matches!(o, EventOutcome::Accepted { awarded, .. } if awarded.len() == 1))
        .count();
    assert_eq!(awarded, N);
    assert_eq!(holders(&store, &t.id).await.len(), N);
    assert_eq!(jobs_of_kind(&store, kind::ISSUE_AWARD).await.len(), N);
    assert_eq!(store.stats().await.unwrap().events, N as i64);
}

/// Text from the outside (quotes, non-Latin scripts, emoji, a NUL in a learner's display name)
/// is stored and matched verbatim, never breaking a batch.
pub async fn unusual_text_is_stored_verbatim(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let course = "course-v1:Ünï+Cöde's_\"100%\"+2026";
    let (t, _) = configure_active(&store, "Unicode", vec![passed_course(course, None)]).await;
    let user = "o'brien; DROP TABLE awards;--";
    let mut quoted = passing("evt 1 ü 'x'", user, course, true);
    quoted.learner.name = Some("Ŝtéphane 学生 🎓".into());
    quoted.payload["user"]["pii"]["name"] = serde_json::json!("Ŝtéphane 学生 🎓");
    // Re-parse after editing so the stored text (`raw`) matches the edited fields.
    let quoted = IncomingEvent::from_json(&quoted.to_json()).unwrap();
    let mut nul = passing("evt-nul", "nul-name", course, true);
    nul.payload["user"]["pii"]["name"] = serde_json::json!("Nul\u{0}Name");
    // NUL cannot be stored by every backend: the parser refuses it with a reason.
    assert_eq!(
        IncomingEvent::from_json(&nul.to_json()).unwrap_err().code(),
        "invalid_event"
    );
    let nul = passing("evt-nul", "nul-name", course, true);
    let out = store
        .process_events(vec![quoted.clone(), nul], &index)
        .await;
    let out = out.expect("unusual text must not fail the batch");
    assert!(out
        .iter()
        .all(|o| matches!(o, EventOutcome::Accepted { awarded, .. } if awarded.len() == 1)));
    assert_eq!(holders(&store, &t.id).await, set(&[user, "nul-name"]));
    let stored = all_events(&store, Some(user)).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, "evt 1 ü 'x'");
    assert_eq!(IncomingEvent::from_json(&stored[0].body).unwrap(), quoted);
    assert_eq!(
        store.get_learner(user).await.unwrap().name.as_deref(),
        Some("Ŝtéphane 学生 🎓")
    );
    assert_eq!(all_events(&store, Some("nul-name")).await.len(), 1);
    assert_nothing(
        &send_one(
            &store,
            &index,
            passing("evt-2", "other", "course-v1:Unï+Cöde's_\"100%\"+2026", true),
        )
        .await,
        "a different spelling is a different course",
    );
}
