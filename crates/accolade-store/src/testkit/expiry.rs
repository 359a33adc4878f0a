//! Award expiry (issue 18): a template's `expires_after` and `criteria` are stored and read back;
//! an award's `expires_at` is fixed when it is made, on the event path and by a manual award, from
//! the template's `expires_after` at that moment; the expiry sweep marks each expired award once
//! and writes exactly one `badge.expired` outgoing event for it (also when called again or by
//! several callers at once), and never for a revoked award.
//!
//! The sweep takes its `now` as an argument, so the tests move time instead of waiting.

use std::collections::BTreeMap;
use std::sync::Arc;

use accolade_domain::award::{Award, AwardState};
use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::outbox::{BADGE_AWARDED, BADGE_EXPIRED};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::support::*;
use crate::{
    DesiredRequirement, DesiredTemplate, IndexCache, ManualChange, NewTemplate, PendingPublication,
    Store, TemplatePatch,
};

fn lifetime(text: &str) -> ExpiresAfter {
    ExpiresAfter::parse(text).unwrap()
}

/// A local template awarded for passing the demo course, with this expiry.
async fn expiring(store: &Arc<dyn Store>, name: &str, expires_after: Option<&str>) -> String {
    let new = NewTemplate {
        expires_after: expires_after.map(lifetime),
        ..local_template(name, false)
    };
    let t = store.create_template(new).await.unwrap();
    store
        .add_requirement(&t.id, passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    activate(store, &t.id).await;
    t.id
}

/// The learner's one award of the template.
async fn award_of(store: &Arc<dyn Store>, template_id: &str, learner: &str) -> Award {
    let mut found: Vec<Award> = awards_of(store, learner)
        .await
        .into_iter()
        .filter(|a| a.template_id == template_id)
        .collect();
    assert_eq!(found.len(), 1, "{learner}: {found:?}");
    found.remove(0)
}

/// Every outgoing event not yet published, by type.
async fn outgoing(store: &Arc<dyn Store>) -> BTreeMap<String, Vec<PendingPublication>> {
    let mut by_type: BTreeMap<String, Vec<PendingPublication>> = BTreeMap::new();
    for e in store.unpublished_events(10_000).await.unwrap() {
        by_type.entry(e.event_type.clone()).or_default().push(e);
    }
    by_type
}

/// Learners passing the demo course, one event each, at `time`.
async fn pass_at(store: &Arc<dyn Store>, learners: &[&str], time: &str) {
    let index = IndexCache::new();
    for l in learners {
        send_one(
            store,
            &index,
            passing_at(&format!("exp-{l}"), l, DEMO_COURSE, true, time),
        )
        .await;
    }
}

fn day(n: i64) -> Duration {
    Duration::days(n)
}

/// `expires_after` and `criteria` are stored with a template, changed and cleared by a patch,
/// and written by rules as code; a criteria text over 10,000 characters is refused.
pub async fn template_expiry_and_criteria_are_stored(store: Arc<dyn Store>) {
    let t = store
        .create_template(NewTemplate {
            expires_after: Some(lifetime("365d")),
            criteria: Some("Pass the **final exam**.\n\n- with 80%".into()),
            ..local_template("Expiring", false)
        })
        .await
        .unwrap();
    assert_eq!(t.expires_after, Some(lifetime("365d")));
    assert_eq!(
        t.criteria.as_deref(),
        Some("Pass the **final exam**.\n\n- with 80%")
    );
    assert_eq!(store.get_template(&t.id).await.unwrap().template, t);
    let plain = store
        .create_template(local_template("Plain", false))
        .await
        .unwrap();
    assert_eq!((plain.expires_after, plain.criteria), (None, None));

    let u = store
        .update_template(
            &t.id,
            TemplatePatch {
                expires_after: Some(Some(lifetime("12h"))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.expires_after, Some(lifetime("12h")));
    assert_eq!(u.criteria, t.criteria, "unpatched fields stay");
    let u = store
        .update_template(
            &t.id,
            TemplatePatch {
                expires_after: Some(None),
                criteria: Some(Some("   ".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (u.expires_after, u.criteria.clone()),
        (None, None),
        "Some(None) clears the expiry; a blank criteria text is none"
    );
    assert_eq!(store.get_template(&t.id).await.unwrap().template, u);
    let too_long = store
        .update_template(
            &t.id,
            TemplatePatch {
                criteria: Some(Some("x".repeat(10_001))),
                ..Default::default()
            },
        )
        .await;
    assert_domain(too_long, "invalid_criteria");
    assert_eq!(store.get_template(&t.id).await.unwrap().template, u);

    let applied = store
        .apply_template(DesiredTemplate {
            template: NewTemplate {
                expires_after: Some(lifetime("90d")),
                criteria: Some("Written by hand.".into()),
                ..local_template("As code", true)
            },
            requirements: vec![DesiredRequirement {
                key: "demo".into(),
                event_type: COURSE_PASSING.into(),
                description: String::new(),
                group: group("A"),
                rules: vec![rule("course.course_key", "=", DEMO_COURSE)],
            }],
            penalties: vec![],
        })
        .await
        .unwrap();
    assert_eq!(applied.template.expires_after, Some(lifetime("90d")));
    assert_eq!(
        applied.template.criteria.as_deref(),
        Some("Written by hand.")
    );
    let again = store
        .apply_template(DesiredTemplate {
            template: NewTemplate {
                id: Some(applied.template.id.clone()),
                ..local_template("As code", true)
            },
            requirements: vec![],
            penalties: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        (again.template.expires_after, again.template.criteria),
        (None, None),
        "a file without them clears them"
    );
}

/// An award's `expires_at` is `earned_at + expires_after` as the template said when it was made:
/// on the event path and for a manual award. Changing the template later moves no existing award;
/// a template without expiry gives none.
pub async fn expiry_is_fixed_when_the_award_is_made(store: Arc<dyn Store>) {
    let t = expiring(&store, "Yearly", Some("365d")).await;
    let never = expiring(&store, "Forever", None).await;
    pass_at(&store, &["ann"], "2026-01-10T08:00:00.250000+00:00").await;
    let ann = award_of(&store, &t, "ann").await;
    assert_eq!(ann.earned_at, at("2026-01-10T08:00:00.250000+00:00"));
    assert_eq!(ann.expires_at, Some(ann.earned_at + day(365)));
    assert_eq!(award_of(&store, &never, "ann").await.expires_at, None);

    store
        .update_template(
            &t,
            TemplatePatch {
                expires_after: Some(Some(lifetime("2h"))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    pass_at(&store, &["bob"], "2026-02-01T00:00:00+00:00").await;
    let bob = award_of(&store, &t, "bob").await;
    assert_eq!(
        bob.expires_at,
        Some(at("2026-02-01T02:00:00+00:00")),
        "the changed expiry applies to new awards"
    );
    assert_eq!(
        store.get_award(&ann.id).await.unwrap().expires_at,
        ann.expires_at,
        "an existing award keeps its expiry"
    );

    let manual = store
        .award_manually(
            &t,
            "cy",
            ManualChange {
                reason: "by hand".into(),
                at: at("2026-03-01T12:00:00+00:00"),
            },
        )
        .await
        .unwrap();
    assert_eq!(manual.expires_at, Some(at("2026-03-01T14:00:00+00:00")));
    assert_eq!(store.get_award(&manual.id).await.unwrap(), manual);
    let manual_never = store
        .award_manually(
            &never,
            "cy",
            ManualChange {
                reason: "by hand".into(),
                at: at("2026-03-01T12:00:00+00:00"),
            },
        )
        .await
        .unwrap();
    assert_eq!(manual_never.expires_at, None);

    store
        .update_template(
            &t,
            TemplatePatch {
                expires_after: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    pass_at(&store, &["dee"], "2026-02-01T00:00:00+00:00").await;
    assert_eq!(award_of(&store, &t, "dee").await.expires_at, None);
    assert_eq!(
        store.get_award(&bob.id).await.unwrap().expires_at,
        bob.expires_at
    );
}

/// The sweep notifies each award whose expiry has come exactly once, earliest first, at most
/// `limit` per call, with one `badge.expired` event carrying the badge at its expiry time;
/// awards not yet expired, without expiry or revoked are left alone.
pub async fn expiry_sweep_notifies_each_expired_award_once(store: Arc<dyn Store>) {
    let t = expiring(&store, "Monthly", Some("30d")).await;
    let never = expiring(&store, "Forever", None).await;
    let earned = "2026-01-01T00:00:00+00:00";
    pass_at(&store, &["ann", "bob", "cy", "dee"], earned).await;
    let by: BTreeMap<String, Award> = awards_by(&store, &t, &["ann", "bob", "cy", "dee"]).await;
    let expiry = at(earned) + day(30);
    assert!(by.values().all(|a| a.expires_at == Some(expiry)));
    // Dee's is revoked before it expires: it is never notified.
    store
        .revoke_award(
            &by["dee"].id,
            ManualChange {
                reason: "gone".into(),
                at: at("2026-01-15T00:00:00+00:00"),
            },
        )
        .await
        .unwrap();
    let before = outgoing(&store).await;
    assert!(!before.contains_key(BADGE_EXPIRED));

    let early = store
        .notify_expired_awards(expiry - Duration::microseconds(1), 100)
        .await
        .unwrap();
    assert!(early.is_empty(), "not expired yet: {early:?}");

    let first = store.notify_expired_awards(expiry, 2).await.unwrap();
    assert_eq!(first.len(), 2, "at most `limit` per call");
    let second = store.notify_expired_awards(expiry, 2).await.unwrap();
    assert_eq!(second.len(), 1, "the rest");
    let third = store
        .notify_expired_awards(expiry + day(1000), 100)
        .await
        .unwrap();
    assert!(third.is_empty(), "each award once: {third:?}");
    let mut notified: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|a| a.learner.as_str())
        .collect();
    notified.sort_unstable();
    assert_eq!(notified, ["ann", "bob", "cy"]);
    for a in first.iter().chain(&second) {
        assert_eq!(a.expires_at, Some(expiry));
        assert_eq!(
            a.state,
            AwardState::Awarded,
            "the award itself is unchanged"
        );
        assert!(a.is_expired(expiry));
    }

    let after = outgoing(&store).await;
    let expired = &after[BADGE_EXPIRED];
    assert_eq!(expired.len(), 3, "one event per expired award");
    let awarded: BTreeMap<&str, &PendingPublication> = after[BADGE_AWARDED]
        .iter()
        .map(|e| (e.award_id.as_str(), e))
        .collect();
    for e in expired {
        assert_eq!(e.time, expiry, "the event's time is the expiry");
        let award = awarded[e.award_id.as_str()];
        assert_eq!(e.payload, award.payload, "the badge as awarded");
        assert_eq!(e.payload["uuid"], json!(e.award_id));
        assert_eq!(e.payload["template"]["uuid"], json!(t));
        assert_ne!(e.id, award.id);
    }
    assert!(!expired.iter().any(|e| e.award_id == by["dee"].id));
    assert_eq!(
        after[BADGE_AWARDED].len(),
        before[BADGE_AWARDED].len(),
        "nothing else was written"
    );
    assert_eq!(award_of(&store, &never, "ann").await.expires_at, None);
}

/// The awards of `template_id` to each learner.
async fn awards_by(
    store: &Arc<dyn Store>,
    template_id: &str,
    learners: &[&str],
) -> BTreeMap<String, Award> {
    let mut out = BTreeMap::new();
    for l in learners {
        out.insert(l.to_string(), award_of(store, template_id, l).await);
    }
    out
}

/// Sweeps called at the same time never notify an award twice: together they write exactly one
/// event per expired award.
pub async fn concurrent_expiry_sweeps_notify_once(store: Arc<dyn Store>) {
    concurrent_sweeps(store.clone(), store).await;
}

/// [`concurrent_expiry_sweeps_notify_once`] with two handles on one database (two processes or
/// instances); called by the implementations with their own pair of handles.
pub async fn concurrent_sweeps(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let t = expiring(&a, "Hourly", Some("1h")).await;
    let learners: Vec<String> = (0..24).map(|i| format!("learner{i:02}")).collect();
    let names: Vec<&str> = learners.iter().map(String::as_str).collect();
    pass_at(&a, &names, "2026-01-01T00:00:00+00:00").await;
    let now: DateTime<Utc> = at("2026-01-01T01:00:00+00:00");
    let mut sweeps: Vec<BoxFuture<'_, Vec<Award>>> = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { &a } else { &b };
        sweeps.push(Box::pin(async move {
            let mut mine = Vec::new();
            // Bounded: a sweep that never runs dry would notify again and again.
            for _ in 0..100 {
                let got = store.notify_expired_awards(now, 5).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
            panic!("the sweep never ran dry: awards are notified again and again")
        }));
    }
    let notified: Vec<Award> = join_all(sweeps).await.into_iter().flatten().collect();
    let mut ids: Vec<&str> = notified.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "an award notified twice");
    assert_eq!(ids.len(), learners.len(), "every expired award is notified");
    let events = outgoing(&b).await;
    let mut expired: Vec<&str> = events[BADGE_EXPIRED]
        .iter()
        .map(|e| e.award_id.as_str())
        .collect();
    expired.sort_unstable();
    assert_eq!(expired, ids, "exactly one badge.expired event per award");
    assert_eq!(
        award_of(&b, &t, "learner00").await.expires_at,
        Some(now),
        "read back through the other handle"
    );
}
