//! Backfills: the inbox scan, backfill jobs (queue, lease, cancel, resume after the cursor),
//! and apply steps giving exactly what live processing gives, once.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::backfill::Replayer;
use accolade_domain::event::IncomingEvent;
use chrono::{DateTime, Duration, Utc};

use super::support::*;
use crate::{
    Backfill, BackfillPhase, BackfillState, InboxScan, InboxVisitor, IndexCache, ManualChange,
    NewBackfill, NewPenalty, NewRequirement, ScannedRow, Store, StoreError,
};

/// Collects what a scan hands over.
#[derive(Default)]
struct Rows(Vec<(i64, String, String, DateTime<Utc>)>);

impl InboxVisitor for Rows {
    fn visit(&mut self, row: ScannedRow<'_>) {
        self.0.push((
            row.seq,
            row.learner.to_string(),
            row.event_type.to_string(),
            row.time,
        ));
        assert!(
            row.body.contains(row.learner),
            "the body is the stored event"
        );
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

async fn scan(
    store: &Arc<dyn Store>,
    scan: InboxScan,
) -> Vec<(i64, String, String, DateTime<Utc>)> {
    let v = store
        .scan_inbox(scan, Box::<Rows>::default())
        .await
        .unwrap();
    v.into_any().downcast::<Rows>().unwrap().0
}

fn new_backfill(template_id: &str, since: Option<DateTime<Utc>>, revoke: bool) -> NewBackfill {
    NewBackfill {
        template_id: template_id.to_string(),
        since,
        revoke,
        reason: "test".into(),
        requested_by: "testkit".into(),
    }
}

/// Runs a backfill as the server's worker does: queue, claim, list the learners with events of
/// the template's types, apply them `step` at a time, finish.
async fn run_backfill(
    store: &Arc<dyn Store>,
    template_id: &str,
    since: Option<DateTime<Utc>>,
    revoke: bool,
) -> Backfill {
    let now = Utc::now();
    let b = store
        .create_backfill(new_backfill(template_id, since, revoke), now)
        .await
        .unwrap();
    let lease = now + Duration::seconds(60);
    let claimed = store
        .claim_backfill("w", Some(&b.id), now, lease)
        .await
        .unwrap()
        .expect("the queued backfill is claimed");
    assert_eq!(claimed.state, BackfillState::Running);
    apply_all(store, &claimed, "w", 3).await;
    store
        .finish_backfill(&b.id, "w", BackfillState::Succeeded, None, Utc::now())
        .await
        .unwrap()
        .unwrap()
}

/// The learners a backfill of the template replays (events of its types since `since`).
async fn learners_of(
    store: &Arc<dyn Store>,
    replayer: &Replayer,
    since: Option<DateTime<Utc>>,
) -> Vec<String> {
    let bounds = store.inbox_bounds().await.unwrap();
    let rows = scan(
        store,
        InboxScan {
            event_types: replayer.event_types(),
            after: 0,
            until: bounds.last,
            since,
        },
    )
    .await;
    let set: BTreeSet<String> = rows.into_iter().map(|r| r.1).collect();
    set.into_iter().collect()
}

/// Applies every learner after the job's cursor, `step` at a time.
async fn apply_all(store: &Arc<dyn Store>, job: &Backfill, holder: &str, step: usize) {
    let cfg = store.get_template(&job.template_id).await.unwrap();
    let replayer = Arc::new(Replayer::new(&cfg));
    let learners: Vec<String> = learners_of(store, &replayer, job.since)
        .await
        .into_iter()
        .filter(|l| job.cursor.as_deref().is_none_or(|c| l.as_str() > c))
        .collect();
    let now = Utc::now();
    store
        .backfill_progress(
            &job.id,
            holder,
            BackfillPhase::Applying,
            1,
            1,
            learners.len() as i64,
            now + Duration::seconds(60),
            now,
        )
        .await
        .unwrap()
        .expect("the holder's lease");
    for chunk in learners.chunks(step) {
        let now = Utc::now();
        store
            .backfill_apply(
                &job.id,
                holder,
                chunk.to_vec(),
                replayer.clone(),
                now + Duration::seconds(60),
                now,
            )
            .await
            .unwrap()
            .expect("the holder's lease");
    }
}

/// A history touching every documented example: course and CCX passing events, passes and
/// failures, in arrival order = time order.
fn history() -> Vec<IncomingEvent> {
    let mut n = 0;
    let mut time = || {
        n += 1;
        format!("2026-03-01T10:{:02}:{:02}.000000+00:00", n / 60, n % 60)
    };
    let mut out = Vec::new();
    for (i, (user, course, pass)) in [
        ("jdoe", DEMO_COURSE, true),
        ("asmith", OTHER_COURSE, true),
        ("bfail", DEMO_COURSE, false),
        ("cthird", THIRD_COURSE, true),
        ("jdoe", OTHER_COURSE, true),
        ("asmith", DEMO_COURSE, false),
        ("dlate", DEMO_COURSE, true),
        ("dlate", DEMO_COURSE, false),
        ("erepeat", DEMO_COURSE, true),
        ("erepeat", DEMO_COURSE, false),
        ("erepeat", DEMO_COURSE, true),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(passing_at(&format!("c{i}"), user, course, pass, &time()));
    }
    for (i, (user, ccx, master, pass)) in [
        ("akumar", demo_ccx(1), DEMO_COURSE, true),
        ("bccx", demo_ccx(2), DEMO_COURSE, true),
        ("cccx", demo_ccx(3), DEMO_COURSE, true),
        ("dccx", other_ccx(1), OTHER_COURSE, true),
        ("eccx", demo_ccx(1), DEMO_COURSE, false),
        ("jdoe", demo_ccx(3), DEMO_COURSE, true),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(ccx_passing_at(
            &format!("x{i}"),
            user,
            &ccx,
            master,
            pass,
            &time(),
        ));
    }
    out
}

fn c(rules: Vec<accolade_domain::rules::DataRule>) -> NewRequirement {
    requirement(COURSE_PASSING, None, rules)
}

fn x(rules: Vec<accolade_domain::rules::DataRule>) -> NewRequirement {
    requirement(CCX_PASSING, None, rules)
}

/// The documented examples' requirements (and the penalty example's), as in `examples.rs`.
fn documented() -> Vec<(&'static str, Vec<NewRequirement>, bool)> {
    vec![
        ("01", vec![c(vec![])], false),
        ("02", vec![c(vec![rule("is_passing", "=", "true")])], false),
        (
            "03",
            vec![c(vec![
                rule("is_passing", "=", "true"),
                rule("course.course_key", "!=", DEMO_COURSE),
            ])],
            false,
        ),
        (
            "04",
            vec![c(vec![
                rule("is_passing", "=", "true"),
                rule("course.course_key", "=", DEMO_COURSE),
            ])],
            false,
        ),
        (
            "05",
            vec![
                passed_course(DEMO_COURSE, Some("A")),
                passed_course(OTHER_COURSE, Some("B")),
            ],
            false,
        ),
        (
            "06",
            vec![
                passed_course(DEMO_COURSE, Some("A")),
                passed_course(OTHER_COURSE, Some("A")),
            ],
            false,
        ),
        ("07", vec![x(vec![rule("is_passing", "=", "true")])], false),
        (
            "08",
            vec![x(vec![
                rule("is_passing", "=", "true"),
                rule("course.ccx_course_key", "=", &demo_ccx(1)),
            ])],
            false,
        ),
        (
            "09",
            vec![x(vec![
                rule("is_passing", "=", "true"),
                rule("course.master_course_key", "=", DEMO_COURSE),
            ])],
            false,
        ),
        (
            "10",
            vec![x(vec![
                rule("is_passing", "=", "true"),
                rule("course.master_course_key", "=", DEMO_COURSE),
                rule("course.ccx_course_key", "!=", &demo_ccx(2)),
            ])],
            false,
        ),
        (
            "11",
            vec![
                requirement(
                    COURSE_PASSING,
                    Some("A"),
                    vec![
                        rule("is_passing", "=", "true"),
                        rule("course.course_key", "=", DEMO_COURSE),
                    ],
                ),
                requirement(
                    CCX_PASSING,
                    Some("A"),
                    vec![
                        rule("is_passing", "=", "true"),
                        rule("course.master_course_key", "=", DEMO_COURSE),
                        rule("course.ccx_course_key", "!=", &demo_ccx(3)),
                    ],
                ),
            ],
            false,
        ),
        ("penalty", vec![passed_course(DEMO_COURSE, None)], true),
    ]
}

/// Creates a template with the requirements (and, with `penalty`, the failed-course penalty on
/// the first); returns its id and requirement ids in order.
async fn make(
    store: &Arc<dyn Store>,
    name: &str,
    requirements: Vec<NewRequirement>,
    penalty: bool,
    active: bool,
) -> (String, Vec<String>) {
    let (t, reqs) = if active {
        configure_active(store, name, requirements).await
    } else {
        configure(store, name, requirements).await
    };
    if penalty {
        let p: NewPenalty = failed_course_penalty(&[&reqs[0].id]);
        store.add_penalty(&t.id, p).await.unwrap();
    }
    (t.id, reqs.into_iter().map(|r| r.id).collect())
}

/// Each learner's fulfilled requirements of a template, by requirement position.
async fn progress(
    store: &Arc<dyn Store>,
    template_id: &str,
    reqs: &[String],
    learners: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<usize>> {
    let mut out = BTreeMap::new();
    for l in learners {
        let f = store.fulfillments(l).await.unwrap();
        let set: BTreeSet<usize> = f
            .iter()
            .filter(|f| f.template_id == template_id)
            .map(|f| reqs.iter().position(|r| *r == f.requirement_id).unwrap())
            .collect();
        if !set.is_empty() {
            out.insert(l.clone(), set);
        }
    }
    out
}

/// Each documented example, backfilled over a stored history, gives exactly the holders,
/// progress and award times that live processing of the same history gave a twin template
/// that was active all along; the awards name the backfill and the completing event.
pub async fn backfill_equals_live_processing_for_every_documented_example(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let mut pairs = Vec::new();
    for (name, reqs, penalty) in documented() {
        let live = make(&store, &format!("{name} live"), reqs.clone(), penalty, true).await;
        let back = make(&store, &format!("{name} backfilled"), reqs, penalty, false).await;
        pairs.push((name, live, back));
    }
    let history = history();
    let learners: BTreeSet<String> = history.iter().map(|e| e.learner.username.clone()).collect();
    send(&store, &index, history).await;
    for (name, live, back) in &pairs {
        assert!(
            holders(&store, &back.0).await.is_empty(),
            "{name}: inactive, nothing yet"
        );
        activate(&store, &back.0).await;
        let done = run_backfill(&store, &back.0, None, false).await;
        let want = holders(&store, &live.0).await;
        assert_eq!(holders(&store, &back.0).await, want, "example {name}");
        assert_eq!(done.awards_made, want.len() as i64, "example {name}");
        assert_eq!(
            progress(&store, &back.0, &back.1, &learners).await,
            progress(&store, &live.0, &live.1, &learners).await,
            "example {name}: progress"
        );
        for l in &want {
            let of = |t: &str| {
                let t = t.to_string();
                let store = store.clone();
                let l = l.clone();
                async move {
                    awards_of(&store, &l)
                        .await
                        .into_iter()
                        .filter(|a| a.template_id == t)
                        .collect::<Vec<_>>()
                }
            };
            let (a, b) = (of(&live.0).await, of(&back.0).await);
            assert_eq!(b.len(), 1, "{name} {l}: one award by the backfill");
            let (a, b) = (a.last().unwrap(), &b[0]);
            assert_eq!(
                (a.earned_at, &a.event_id),
                (b.earned_at, &b.event_id),
                "{name} {l}"
            );
            assert_eq!(b.backfill_id.as_deref(), Some(done.id.as_str()));
            assert!(a.backfill_id.is_none());
        }
    }
}

/// Penalties in the history apply in event-time order, not arrival order: a failure that
/// arrived first but happened after the pass revokes; one that happened before does not.
pub async fn backfill_applies_penalties_in_event_time_order(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = make(
        &store,
        "Demo",
        vec![passed_course(DEMO_COURSE, None)],
        true,
        false,
    )
    .await;
    send(
        &store,
        &index,
        vec![
            // ann: failed at 11:00, passed at 10:00 (arrived in the other order): fails last.
            passing_at("a2", "ann", DEMO_COURSE, false, "2026-03-01T11:00:00Z"),
            passing_at("a1", "ann", DEMO_COURSE, true, "2026-03-01T10:00:00Z"),
            // bob: failed at 10:00, passed at 11:00: passes last.
            passing_at("b2", "bob", DEMO_COURSE, true, "2026-03-01T11:00:00Z"),
            passing_at("b1", "bob", DEMO_COURSE, false, "2026-03-01T10:00:00Z"),
        ],
    )
    .await;
    activate(&store, &t).await;
    run_backfill(&store, &t, None, false).await;
    assert_eq!(holders(&store, &t).await, set(&["bob"]));
    let bob = awards_of(&store, "bob").await;
    assert_eq!(bob[0].event_id.as_deref(), Some("b2"));
    assert_eq!(bob[0].earned_at, at("2026-03-01T11:00:00Z"));
    assert!(store.fulfillments("ann").await.unwrap().is_empty());
}

/// `since` limits the history replayed; learners whose events are all older are untouched.
pub async fn backfill_since_limits_the_history(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = make(
        &store,
        "Both",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
        false,
        false,
    )
    .await;
    send(
        &store,
        &index,
        vec![
            passing_at("o1", "old", DEMO_COURSE, true, "2025-01-01T00:00:00Z"),
            passing_at("o2", "old", OTHER_COURSE, true, "2025-01-02T00:00:00Z"),
            passing_at("m1", "mixed", DEMO_COURSE, true, "2025-01-01T00:00:00Z"),
            passing_at("m2", "mixed", OTHER_COURSE, true, "2026-02-01T00:00:00Z"),
            passing_at("n1", "new", DEMO_COURSE, true, "2026-02-01T00:00:00Z"),
            passing_at("n2", "new", OTHER_COURSE, true, "2026-02-02T00:00:00Z"),
        ],
    )
    .await;
    let since = at("2026-01-01T00:00:00Z");
    let seen = scan(
        &store,
        InboxScan {
            event_types: vec![COURSE_PASSING.into()],
            after: 0,
            until: store.inbox_bounds().await.unwrap().last,
            since: Some(since),
        },
    )
    .await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    activate(&store, &t).await;
    let done = run_backfill(&store, &t, Some(since), false).await;
    assert_eq!(holders(&store, &t).await, set(&["new"]));
    assert_eq!(
        done.learners_done, 2,
        "mixed and new are replayed; old is not"
    );
    let mixed: Vec<String> = store
        .fulfillments("mixed")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.event_id.unwrap_or_default())
        .collect();
    assert_eq!(mixed, vec!["m2".to_string()], "only the newer pass counts");
}

/// Applying a learner twice awards once; holders who no longer qualify are revoked only when
/// asked, and a manual award never; a revoked learner the template does not let earn it again
/// is not awarded.
pub async fn backfill_is_exactly_once_and_revokes_only_when_asked(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = make(
        &store,
        "Demo",
        vec![passed_course(DEMO_COURSE, None)],
        false,
        true,
    )
    .await;
    send(
        &store,
        &index,
        vec![
            passing("e1", "ann", DEMO_COURSE, true),
            passing("e2", "bob", DEMO_COURSE, true),
        ],
    )
    .await;
    let change = || ManualChange {
        reason: "test".into(),
        at: Utc::now(),
    };
    store.award_manually(&t, "mia", change()).await.unwrap();
    // The rules change: now a pass of the other course is needed; ann and bob no longer qualify.
    let cfg = store.get_template(&t).await.unwrap();
    store
        .delete_requirement(&cfg.requirements[0].id)
        .await
        .unwrap();
    store
        .add_requirement(&t, passed_course(OTHER_COURSE, None))
        .await
        .unwrap();
    send(
        &store,
        &index,
        vec![passing("e3", "cat", OTHER_COURSE, true)],
    )
    .await;
    let before = holders(&store, &t).await;
    assert_eq!(before, set(&["ann", "bob", "cat", "mia"]));
    let kept = run_backfill(&store, &t, None, false).await;
    assert_eq!((kept.awards_made, kept.revocations_made), (0, 0));
    assert_eq!(
        holders(&store, &t).await,
        before,
        "nothing revoked unless asked"
    );
    let revoked = run_backfill(&store, &t, None, true).await;
    assert_eq!(revoked.revocations_made, 2);
    assert_eq!(
        holders(&store, &t).await,
        set(&["cat", "mia"]),
        "the manual award stays"
    );
    let ann = awards_of(&store, "ann").await;
    assert_eq!(ann[0].state, AwardState::Revoked);
    assert!(ann[0]
        .revoke_reason
        .as_deref()
        .unwrap()
        .contains(&revoked.id));
    // Applying the same learners again changes nothing.
    let again = run_backfill(&store, &t, None, true).await;
    assert_eq!((again.awards_made, again.revocations_made), (0, 0));
    assert_eq!(awards_of(&store, "cat").await.len(), 1);
}

/// Jobs: one open per template, cancel (queued at once, running at its next step, ended refused),
/// the lease (another holder writes nothing), and a resumed job going on after its cursor.
pub async fn backfill_jobs_lease_cancel_and_resume(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = make(
        &store,
        "Demo",
        vec![passed_course(DEMO_COURSE, None)],
        false,
        true,
    )
    .await;
    let unknown = store
        .create_backfill(new_backfill("nope", None, false), Utc::now())
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    let b = store
        .create_backfill(new_backfill(&t, None, false), Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (b.state, b.phase),
        (BackfillState::Queued, BackfillPhase::Scanning)
    );
    let twice = store
        .create_backfill(new_backfill(&t, None, false), Utc::now())
        .await;
    assert!(
        matches!(
            &twice,
            Err(StoreError::Conflict {
                code: "backfill_running",
                ..
            })
        ),
        "{twice:?}"
    );
    let cancelled = store.cancel_backfill(&b.id, Utc::now()).await.unwrap();
    assert_eq!(cancelled.state, BackfillState::Cancelled);
    assert!(matches!(
        store.cancel_backfill(&b.id, Utc::now()).await,
        Err(StoreError::Conflict {
            code: "backfill_finished",
            ..
        })
    ));
    assert!(store
        .claim_backfill("w", None, Utc::now(), Utc::now() + Duration::seconds(60))
        .await
        .unwrap()
        .is_none());

    let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let events: Vec<IncomingEvent> = users
        .iter()
        .map(|u| passing(&format!("e-{u}"), u, DEMO_COURSE, true))
        .collect();
    // Stored while the template was inactive: nobody holds it yet.
    store.set_template_active(&t, false).await.unwrap();
    send(&store, &index, events).await;
    store.set_template_active(&t, true).await.unwrap();
    let now = Utc::now();
    let b = store
        .create_backfill(new_backfill(&t, None, false), now)
        .await
        .unwrap();
    let short = store
        .claim_backfill("w1", None, now, now + Duration::milliseconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(short.id, b.id);
    let cfg = store.get_template(&t).await.unwrap();
    let replayer = Arc::new(Replayer::new(&cfg));
    let step = store
        .backfill_apply(&b.id, "w1", users[..2].to_vec(), replayer.clone(), now, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((step.learners, step.awarded), (2, 2));
    // w1's lease runs out; w2 takes over, and w1 can no longer write.
    let now = Utc::now() + Duration::seconds(1);
    let resumed = store
        .claim_backfill("w2", None, now, now + Duration::seconds(60))
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(resumed.cursor.as_deref(), Some("u1"));
    assert_eq!((resumed.learners_done, resumed.awards_made), (2, 2));
    assert!(store
        .backfill_apply(&b.id, "w1", users[2..].to_vec(), replayer.clone(), now, now)
        .await
        .unwrap()
        .is_none());
    apply_all(&store, &resumed, "w2", 2).await;
    let mid = store.get_backfill(&b.id).await.unwrap();
    assert_eq!((mid.learners_done, mid.awards_made), (6, 6));
    assert_eq!(mid.phase, BackfillPhase::Applying);
    assert_eq!(holders(&store, &t).await.len(), 6);
    // A running job asked to cancel says so at its next step.
    store.cancel_backfill(&b.id, Utc::now()).await.unwrap();
    let step = store
        .backfill_apply(&b.id, "w2", vec![], replayer, now, now)
        .await
        .unwrap()
        .unwrap();
    assert!(step.cancel_requested);
    let end = store
        .finish_backfill(&b.id, "w2", BackfillState::Cancelled, None, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.state, BackfillState::Cancelled);
    assert!(end.finished_at.is_some());
    let listed = store
        .list_backfills(Some(&t), crate::Page::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.items[0].id, b.id, "newest first");
}

/// The scan reads the selected event types in a `seq` range, in order, with bodies; the
/// latest award per learner and event ids by `seq` are read back.
pub async fn scan_inbox_reads_types_and_ranges(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, _) = make(
        &store,
        "Demo",
        vec![passed_course(DEMO_COURSE, None)],
        false,
        true,
    )
    .await;
    send(&store, &index, history()).await;
    let bounds = store.inbox_bounds().await.unwrap();
    assert!(bounds.last >= bounds.first && bounds.first > 0);
    let all = scan(
        &store,
        InboxScan {
            event_types: vec![COURSE_PASSING.into(), CCX_PASSING.into()],
            after: bounds.first - 1,
            until: bounds.last,
            since: None,
        },
    )
    .await;
    assert_eq!(all.len(), history().len());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in seq order");
    let ccx = scan(
        &store,
        InboxScan {
            event_types: vec![CCX_PASSING.into()],
            after: bounds.first - 1,
            until: bounds.last,
            since: None,
        },
    )
    .await;
    assert_eq!(ccx.len(), 6);
    assert!(ccx.iter().all(|r| r.2 == CCX_PASSING));
    let middle = all[3].0;
    let part = scan(
        &store,
        InboxScan {
            event_types: vec![COURSE_PASSING.into(), CCX_PASSING.into()],
            after: middle,
            until: middle + 2,
            since: None,
        },
    )
    .await;
    assert_eq!(part.len(), 2);
    assert!(part.iter().all(|r| r.0 > middle && r.0 <= middle + 2));
    let ids = store.event_ids(&[all[0].0, all[1].0, -5]).await.unwrap();
    assert_eq!(ids.len(), 2);
    // Each seq names the event the scan read under it (a store may number one batch's learners
    // in any order, each learner's events in input order: PostgreSQL's learner lanes do).
    for row in &all[..2] {
        let sent = history()
            .into_iter()
            .find(|e| e.id == ids[&row.0])
            .expect("a sent event");
        assert_eq!(sent.learner.username, row.1);
        assert_eq!(sent.event_type, row.2);
    }
    assert_ne!(ids[&all[0].0], ids[&all[1].0]);
    let held = store.latest_awards(&t).await.unwrap();
    let holders_now: BTreeSet<String> = held
        .iter()
        .filter(|(_, h)| !h.revoked)
        .map(|(l, _)| l.clone())
        .collect();
    assert_eq!(holders_now, holders(&store, &t).await);
    assert!(held.values().all(|h| !h.manual));
    let _: HashMap<String, _> = held;
}
