//! Tests needing two handles on the same database (two processes or instances). They are not in
//! [`crate::conformance_suite!`] because the suite's constructor makes one fresh store; an
//! implementation calls them with two handles it opened on one fresh database.

use std::sync::Arc;

use super::support::*;
use crate::{EventOutcome, IndexCache, RequirementPatch, Store};

/// A rule change committed through handle `b` is used by the very next batch processed through
/// handle `a`, whose index cache was already built from the old rules.
pub async fn rule_change_via_other_handle(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let index = IndexCache::new();
    let (t, reqs) = configure_active(&b, "Changing", vec![passed_course(DEMO_COURSE, None)]).await;
    assert_eq!(
        send_one(&a, &index, passing("e1", "u1", DEMO_COURSE, true))
            .await
            .awarded
            .len(),
        1
    );
    b.update_requirement(
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
    assert_nothing(
        &send_one(&a, &index, passing("e2", "u2", DEMO_COURSE, true)).await,
        "old rule via handle a",
    );
    assert_eq!(
        send_one(&a, &index, passing("e3", "u3", OTHER_COURSE, true))
            .await
            .awarded
            .len(),
        1
    );
    b.set_template_active(&t.id, false).await.unwrap();
    assert_nothing(
        &send_one(&a, &index, passing("e4", "u4", OTHER_COURSE, true)).await,
        "deactivated via b",
    );
    assert_eq!(holders(&a, &t.id).await, set(&["u1", "u3"]));
    assert_eq!(holders(&b, &t.id).await, set(&["u1", "u3"]));
}

/// Two handles processing the two halves of many learners' badges at the same time award each
/// learner exactly once, and a duplicate delivered to both is processed once.
pub async fn two_handles_award_exactly_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let (index_a, index_b) = (IndexCache::new(), IndexCache::new());
    let (t, _) = configure_active(
        &a,
        "A and B",
        vec![
            passed_course(DEMO_COURSE, Some("A")),
            passed_course(OTHER_COURSE, Some("B")),
        ],
    )
    .await;
    let learners: Vec<String> = (0..10).map(|i| format!("learner{i}")).collect();
    let mut futures: Vec<BoxFuture<'_, Vec<EventOutcome>>> = Vec::new();
    for l in &learners {
        let (ea, eb) = (
            passing(&format!("{l}-a"), l, DEMO_COURSE, true),
            passing(&format!("{l}-b"), l, OTHER_COURSE, true),
        );
        let dup = passing(&format!("{l}-dup"), l, THIRD_COURSE, true);
        let dup2 = dup.clone();
        let (a, b, ia, ib) = (&a, &b, &index_a, &index_b);
        futures.push(Box::pin(async move {
            a.process_events(vec![ea, dup], ia).await.unwrap()
        }));
        futures.push(Box::pin(async move {
            b.process_events(vec![eb, dup2], ib).await.unwrap()
        }));
    }
    let outcomes: Vec<EventOutcome> = join_all(futures).await.into_iter().flatten().collect();
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == EventOutcome::Duplicate)
        .count();
    assert_eq!(
        duplicates,
        learners.len(),
        "each doubly delivered event is processed once"
    );
    assert_eq!(holders(&a, &t.id).await, set(&learners));
    assert_eq!(all_awards(&b).await.len(), learners.len());
}
