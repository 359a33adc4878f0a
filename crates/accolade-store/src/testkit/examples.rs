//! The configuration examples documented by the Open edX Credentials badges feature, each set up
//! exactly as written (event `C` = course passing status, `X` = CCX passing status), activated,
//! and fed events that must and must not award.

use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::event::IncomingEvent;

use super::support::*;
use crate::{IndexCache, NewRequirement, Store};

/// Sends an event that must award its learner exactly one new badge; returns the award id.
async fn awards(store: &Arc<dyn Store>, index: &IndexCache, event: IncomingEvent) -> String {
    let (id, learner) = (event.id.clone(), event.learner.username.clone());
    let effects = send_one(store, index, event).await;
    assert_eq!(
        effects.awarded.len(),
        1,
        "event {id} must award {learner} exactly once: {effects:?}"
    );
    assert!(
        effects.revoked.is_empty(),
        "event {id} must revoke nothing: {effects:?}"
    );
    let award = store.get_award(&effects.awarded[0]).await.unwrap();
    assert_eq!(award.learner, learner);
    assert_eq!(award.event_id.as_deref(), Some(id.as_str()));
    assert_eq!(award.state, AwardState::Awarded);
    award.id
}

/// Sends an event that must award and revoke nothing.
async fn nothing(store: &Arc<dyn Store>, index: &IndexCache, event: IncomingEvent) {
    let id = event.id.clone();
    let effects = send_one(store, index, event).await;
    assert_nothing(&effects, &format!("event {id}"));
}

/// Configures and activates a one-template example.
async fn example(store: &Arc<dyn Store>, name: &str, requirements: Vec<NewRequirement>) -> String {
    configure_active(store, name, requirements).await.0.id
}

fn c(rules: Vec<accolade_domain::rules::DataRule>) -> NewRequirement {
    requirement(COURSE_PASSING, None, rules)
}

fn x(rules: Vec<accolade_domain::rules::DataRule>) -> NewRequirement {
    requirement(CCX_PASSING, None, rules)
}

/// 1. Any grade update: one requirement on C with no rules.
pub async fn example_01_any_grade_update(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(&store, "Any grade update", vec![c(vec![])]).await;
    nothing(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(3), DEMO_COURSE, true),
    )
    .await;
    awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    awards(&store, &index, passing("e2", "asmith", OTHER_COURSE, false)).await;
    nothing(&store, &index, passing("e3", "jdoe", DEMO_COURSE, false)).await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe", "asmith"]));
    assert_eq!(awards_of(&store, "jdoe").await.len(), 1);
    assert!(awards_of(&store, "akumar").await.is_empty());
}

/// 2. Any course completion: C, `is_passing = true`.
pub async fn example_02_any_course_completion(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Any course",
        vec![c(vec![rule("is_passing", "=", "true")])],
    )
    .await;
    awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    awards(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e3", "bfail", DEMO_COURSE, false)).await;
    nothing(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(3), DEMO_COURSE, true),
    )
    .await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe", "asmith"]));
}

/// 3. Any course except Demo: C, `is_passing = true`, `course.course_key != Demo`.
pub async fn example_03_any_course_except_demo(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Any course but Demo",
        vec![c(vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "!=", DEMO_COURSE),
        ])],
    )
    .await;
    nothing(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    awards(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e3", "bfail", OTHER_COURSE, false)).await;
    awards(&store, &index, passing("e4", "cthird", THIRD_COURSE, true)).await;
    assert_eq!(holders(&store, &t).await, set(&["asmith", "cthird"]));
}

/// 4. Specific course: C, `is_passing = true`, `course.course_key = Demo`.
pub async fn example_04_specific_course(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Demo course",
        vec![c(vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", DEMO_COURSE),
        ])],
    )
    .await;
    awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    nothing(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e3", "bfail", DEMO_COURSE, false)).await;
    nothing(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(1), DEMO_COURSE, true),
    )
    .await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe"]));
}

/// 5. Two specific courses, both required: one requirement per course, in groups A and B.
pub async fn example_05_two_courses_both_required(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Demo and Python",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    nothing(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    nothing(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e3", "cthird", THIRD_COURSE, true)).await;
    assert!(
        holders(&store, &t).await.is_empty(),
        "one of two groups awards nothing"
    );
    awards(&store, &index, passing("e4", "jdoe", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e5", "asmith", DEMO_COURSE, false)).await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe"]));
}

/// 6. One of two courses: both requirements in group A.
pub async fn example_06_one_of_two_courses(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Demo or Python",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("A")),
        ],
    )
    .await;
    awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    awards(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(&store, &index, passing("e3", "cthird", THIRD_COURSE, true)).await;
    nothing(&store, &index, passing("e4", "jdoe", OTHER_COURSE, true)).await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe", "asmith"]));
    assert_eq!(
        awards_of(&store, "jdoe").await.len(),
        1,
        "the second course adds no second badge"
    );
}

/// 7. Any CCX completion: X, `is_passing = true`.
pub async fn example_07_any_ccx_completion(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Any CCX",
        vec![x(vec![rule("is_passing", "=", "true")])],
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(3), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x2", "lchen", &demo_ccx(3), DEMO_COURSE, false),
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x3", "mgarcia", &other_ccx(1), OTHER_COURSE, true),
    )
    .await;
    nothing(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    assert_eq!(holders(&store, &t).await, set(&["akumar", "mgarcia"]));
}

/// 8. Specific CCX: X, `is_passing = true`, `course.ccx_course_key = …+ccx@1`.
pub async fn example_08_specific_ccx(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "CCX 1",
        vec![x(vec![
            rule("is_passing", "=", "true"),
            rule("course.ccx_course_key", "=", &demo_ccx(1)),
        ])],
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(1), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x2", "lchen", &demo_ccx(2), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x3", "mgarcia", &demo_ccx(1), DEMO_COURSE, false),
    )
    .await;
    nothing(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    assert_eq!(holders(&store, &t).await, set(&["akumar"]));
}

/// 9. Any CCX of a master course: X, `is_passing = true`, `course.master_course_key = Demo`.
pub async fn example_09_any_ccx_of_master(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Any Demo CCX",
        vec![x(vec![
            rule("is_passing", "=", "true"),
            rule("course.master_course_key", "=", DEMO_COURSE),
        ])],
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(1), DEMO_COURSE, true),
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x2", "lchen", &demo_ccx(2), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x3", "mgarcia", &other_ccx(1), OTHER_COURSE, true),
    )
    .await;
    nothing(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    nothing(
        &store,
        &index,
        ccx_passing("x4", "bfail", &demo_ccx(1), DEMO_COURSE, false),
    )
    .await;
    assert_eq!(holders(&store, &t).await, set(&["akumar", "lchen"]));
}

/// Example 10, any CCX of the master course except one: example 9 plus
/// `course.ccx_course_key != …+ccx@2`.
pub async fn example_10_ccx_of_master_except_one(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Demo CCX but 2",
        vec![x(vec![
            rule("is_passing", "=", "true"),
            rule("course.master_course_key", "=", DEMO_COURSE),
            rule("course.ccx_course_key", "!=", &demo_ccx(2)),
        ])],
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(1), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x2", "lchen", &demo_ccx(2), DEMO_COURSE, true),
    )
    .await;
    awards(
        &store,
        &index,
        ccx_passing("x3", "mgarcia", &demo_ccx(3), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x4", "bfail", &other_ccx(1), OTHER_COURSE, true),
    )
    .await;
    assert_eq!(holders(&store, &t).await, set(&["akumar", "mgarcia"]));
}

/// Example 11, the master course or any of its CCXs except ccx@3: a C requirement and an X
/// requirement, both in group A.
pub async fn example_11_master_or_ccx_except_3(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let t = example(
        &store,
        "Demo or its CCXs",
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
    )
    .await;
    awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    awards(
        &store,
        &index,
        ccx_passing("x1", "akumar", &demo_ccx(1), DEMO_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x2", "lchen", &demo_ccx(3), DEMO_COURSE, true),
    )
    .await;
    nothing(&store, &index, passing("e2", "asmith", OTHER_COURSE, true)).await;
    nothing(
        &store,
        &index,
        ccx_passing("x3", "mgarcia", &other_ccx(1), OTHER_COURSE, true),
    )
    .await;
    nothing(
        &store,
        &index,
        ccx_passing("x4", "jdoe", &demo_ccx(2), DEMO_COURSE, true),
    )
    .await;
    assert_eq!(holders(&store, &t).await, set(&["jdoe", "akumar"]));
    assert_eq!(awards_of(&store, "jdoe").await.len(), 1);
}

/// The penalty example: on C with `is_passing = false`, reset the course requirement.
pub async fn penalty_example(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure(
        &store,
        "Demo with penalty",
        vec![passed_course(DEMO_COURSE, None)],
    )
    .await;
    store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id]))
        .await
        .unwrap();
    activate(&store, &t.id).await;

    let first = awards(&store, &index, passing("e1", "jdoe", DEMO_COURSE, true)).await;
    nothing(&store, &index, passing("e2", "asmith", DEMO_COURSE, false)).await;
    let fail = send_one(&store, &index, passing("e3", "jdoe", DEMO_COURSE, false)).await;
    assert_eq!(
        fail.revoked,
        vec![first.clone()],
        "failing revokes the badge"
    );
    assert!(fail.awarded.is_empty());
    assert!(holders(&store, &t.id).await.is_empty());
    assert!(
        fulfillments_of(&store, "jdoe").await.is_empty(),
        "the penalty reset the requirement"
    );
    let revoked = store.get_award(&first).await.unwrap();
    assert_eq!(revoked.state, AwardState::Revoked);
    assert!(revoked.revoked_at.is_some());

    let second = awards(&store, &index, passing("e4", "jdoe", DEMO_COURSE, true)).await;
    assert_ne!(second, first);
    assert_eq!(holders(&store, &t.id).await, set(&["jdoe"]));
    assert!(
        awards_of(&store, "asmith").await.is_empty(),
        "never passed, never awarded or revoked"
    );
}
