//! Helpers shared by the conformance tests: events in the Open edX shape, configuration
//! shorthands that read like the upstream documentation, read helpers that page through whole
//! result sets, and error assertions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use accolade_domain::award::Award;
use accolade_domain::event::IncomingEvent;
use accolade_domain::outbox::Job;
use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Origin, Requirement, Template};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::{
    AwardFilter, EventOutcome, Fulfillment, IndexCache, JobFilter, NewPenalty, NewRequirement,
    NewTemplate, Page, Store, StoreError, StoredEvent,
};

/// The course passing event (`C` in the documentation).
pub const COURSE_PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
/// The CCX passing event (`X` in the documentation).
pub const CCX_PASSING: &str = "org.openedx.learning.ccx.course.passing.status.updated.v1";
/// The course of the documented examples.
pub const DEMO_COURSE: &str = "course-v1:OpenedX+DemoX+Demo_Course";
/// Another course.
pub const OTHER_COURSE: &str = "course-v1:UniX+PY101+2026_T1";
/// A third course.
pub const THIRD_COURSE: &str = "course-v1:UniX+ML201+2026_T2";
/// Time used by events built without an explicit time (a real sample's, with microseconds).
pub const SAMPLE_TIME: &str = "2026-08-20T14:03:27.512345+00:00";

/// `ccx-v1:OpenedX+DemoX+Demo_Course+ccx@{n}`, the n-th CCX of the demo course.
pub fn demo_ccx(n: u32) -> String {
    format!("ccx-v1:OpenedX+DemoX+Demo_Course+ccx@{n}")
}

/// `ccx-v1:UniX+PY101+2026_T1+ccx@{n}`, a CCX of [`OTHER_COURSE`].
pub fn other_ccx(n: u32) -> String {
    format!("ccx-v1:UniX+PY101+2026_T1+ccx@{n}")
}

/// A stable LMS user id derived from the username.
pub fn lms_id(username: &str) -> i64 {
    username
        .bytes()
        .fold(7_i64, |h, b| (h * 31 + i64::from(b)) % 1_000_000)
}

/// `UserData` as Open edX sends it.
pub fn user_data(username: &str) -> Value {
    json!({
        "id": lms_id(username),
        "is_active": true,
        "pii": {
            "username": username,
            "email": format!("{username}@example.com"),
            "name": format!("Learner {username}"),
        }
    })
}

/// Parses an event object, panicking on invalid test data.
pub fn event_from(value: Value) -> IncomingEvent {
    IncomingEvent::from_json(&value).expect("test event must be valid")
}

/// Parses an RFC 3339 time.
pub fn at(time: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(time)
        .expect("valid RFC 3339 time")
        .with_timezone(&Utc)
}

/// A course passing event at a given time.
pub fn passing_at(
    id: &str,
    user: &str,
    course_key: &str,
    is_passing: bool,
    time: &str,
) -> IncomingEvent {
    event_from(json!({
        "id": id,
        "event_type": COURSE_PASSING,
        "time": time,
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": course_key, "display_name": "", "end": null, "start": null},
            "is_passing": is_passing,
            "user": user_data(user),
        }}
    }))
}

/// A course passing event (`is_passing` true or false) at [`SAMPLE_TIME`].
pub fn passing(id: &str, user: &str, course_key: &str, is_passing: bool) -> IncomingEvent {
    passing_at(id, user, course_key, is_passing, SAMPLE_TIME)
}

/// A CCX passing event at a given time.
pub fn ccx_passing_at(
    id: &str,
    user: &str,
    ccx_course_key: &str,
    master_course_key: &str,
    is_passing: bool,
    time: &str,
) -> IncomingEvent {
    event_from(json!({
        "id": id,
        "event_type": CCX_PASSING,
        "time": time,
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {
                "ccx_course_key": ccx_course_key,
                "master_course_key": master_course_key,
                "coach_email": "",
                "display_name": "",
                "end": null,
                "start": null,
                "max_students_allowed": null,
            },
            "is_passing": is_passing,
            "user": user_data(user),
        }}
    }))
}

/// A CCX passing event at [`SAMPLE_TIME`].
pub fn ccx_passing(
    id: &str,
    user: &str,
    ccx_course_key: &str,
    master_course_key: &str,
    is_passing: bool,
) -> IncomingEvent {
    ccx_passing_at(
        id,
        user,
        ccx_course_key,
        master_course_key,
        is_passing,
        SAMPLE_TIME,
    )
}

/// A data rule from its textual parts (`rule("is_passing", "=", "true")`).
pub fn rule(path: &str, op: &str, value: &str) -> DataRule {
    DataRule::new(path, op, value).expect("valid test rule")
}

/// A group letter.
pub fn group(letter: &str) -> Group {
    Group::parse(letter).expect("valid group letter")
}

/// A requirement on `event_type` in `group` (`None`: the next free letter) with `rules`.
pub fn requirement(
    event_type: &str,
    group_letter: Option<&str>,
    rules: Vec<DataRule>,
) -> NewRequirement {
    NewRequirement {
        key: None,
        event_type: event_type.to_string(),
        description: String::new(),
        group: group_letter.map(group),
        rules,
    }
}

/// `is_passing = true` and `course.course_key = {course_key}` on the course event.
pub fn passed_course(course_key: &str, group_letter: Option<&str>) -> NewRequirement {
    requirement(
        COURSE_PASSING,
        group_letter,
        vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", course_key),
        ],
    )
}

/// A penalty on `event_type` with `rules`, resetting `requirement_ids`.
pub fn penalty<S: AsRef<str>>(
    event_type: &str,
    rules: Vec<DataRule>,
    requirement_ids: &[S],
) -> NewPenalty {
    NewPenalty {
        key: None,
        event_type: event_type.to_string(),
        description: String::new(),
        rules,
        requirement_ids: requirement_ids
            .iter()
            .map(|s| s.as_ref().to_string())
            .collect(),
    }
}

/// The documented penalty: on the course event with `is_passing = false`.
pub fn failed_course_penalty<S: AsRef<str>>(requirement_ids: &[S]) -> NewPenalty {
    penalty(
        COURSE_PASSING,
        vec![rule("is_passing", "=", "false")],
        requirement_ids,
    )
}

/// A new local template with the given name, active or not.
pub fn local_template(name: &str, active: bool) -> NewTemplate {
    NewTemplate {
        id: None,
        name: name.to_string(),
        description: format!("{name} description"),
        image_url: None,
        origin: Origin::Local,
        provider_state: "active".into(),
        is_active: active,
        allow_reaward: true,
        organization_id: None,
        expires_after: None,
        criteria: None,
    }
}

/// A new template of a Credly organization, active or not: its jobs call Credly, so they wait
/// in the outbox for a worker (a local template's jobs are done as they are written).
pub fn credly_template(name: &str, active: bool) -> NewTemplate {
    NewTemplate {
        origin: Origin::Credly,
        organization_id: Some("org-1".into()),
        ..local_template(name, active)
    }
}

/// Creates an inactive template with `requirements`, as an operator would before activating it.
pub async fn configure(
    store: &Arc<dyn Store>,
    name: &str,
    requirements: Vec<NewRequirement>,
) -> (Template, Vec<Requirement>) {
    configure_template(store, local_template(name, false), requirements).await
}

/// [`configure`] with a Credly template, whose jobs wait in the outbox.
pub async fn configure_on_credly(
    store: &Arc<dyn Store>,
    name: &str,
    requirements: Vec<NewRequirement>,
) -> (Template, Vec<Requirement>) {
    configure_template(store, credly_template(name, false), requirements).await
}

async fn configure_template(
    store: &Arc<dyn Store>,
    new: NewTemplate,
    requirements: Vec<NewRequirement>,
) -> (Template, Vec<Requirement>) {
    let template = store.create_template(new).await.unwrap();
    let mut created = Vec::new();
    for r in requirements {
        created.push(store.add_requirement(&template.id, r).await.unwrap());
    }
    (template, created)
}

/// Activates a template.
pub async fn activate(store: &Arc<dyn Store>, template_id: &str) {
    let t = store.set_template_active(template_id, true).await.unwrap();
    assert!(t.is_active);
}

/// Creates a template with `requirements` and activates it.
pub async fn configure_active(
    store: &Arc<dyn Store>,
    name: &str,
    requirements: Vec<NewRequirement>,
) -> (Template, Vec<Requirement>) {
    let (t, r) = configure(store, name, requirements).await;
    activate(store, &t.id).await;
    (t, r)
}

/// [`configure_active`] with a Credly template, whose jobs wait in the outbox.
pub async fn configure_active_on_credly(
    store: &Arc<dyn Store>,
    name: &str,
    requirements: Vec<NewRequirement>,
) -> (Template, Vec<Requirement>) {
    let (t, r) = configure_on_credly(store, name, requirements).await;
    activate(store, &t.id).await;
    (t, r)
}

/// Processes a batch.
pub async fn send(
    store: &Arc<dyn Store>,
    index: &IndexCache,
    events: Vec<IncomingEvent>,
) -> Vec<EventOutcome> {
    let n = events.len();
    let out = store.process_events(events, index).await.unwrap();
    assert_eq!(out.len(), n, "one outcome per event");
    out
}

/// Ids of awards made and revoked by one event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    pub awarded: Vec<String>,
    pub revoked: Vec<String>,
}

impl Effects {
    pub fn is_nothing(&self) -> bool {
        self.awarded.is_empty() && self.revoked.is_empty()
    }
}

/// Processes one new event and returns its effects (panics if it was a duplicate).
pub async fn send_one(store: &Arc<dyn Store>, index: &IndexCache, event: IncomingEvent) -> Effects {
    let id = event.id.clone();
    match send(store, index, vec![event]).await.pop() {
        Some(EventOutcome::Accepted { awarded, revoked }) => Effects { awarded, revoked },
        other => panic!("event {id} should be accepted, got {other:?}"),
    }
}

/// Processes one event that must change nothing.
#[track_caller]
pub fn assert_nothing(effects: &Effects, what: &str) {
    assert!(
        effects.is_nothing(),
        "{what}: expected no award and no revocation, got {effects:?}"
    );
}

/// Every award (all episodes, all states), sorted by template, learner and episode.
pub async fn all_awards(store: &Arc<dyn Store>) -> Vec<Award> {
    awards_where(store, &AwardFilter::default()).await
}

/// Checks that a `next_offset` moves forward (so paging helpers cannot loop forever).
#[track_caller]
fn next_page(offset: u64, next: u64) -> u64 {
    assert!(
        next > offset,
        "next_offset {next} does not move past offset {offset}"
    );
    next
}

/// Every award matching `filter`, sorted by template, learner and episode.
pub async fn awards_where(store: &Arc<dyn Store>, filter: &AwardFilter) -> Vec<Award> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_awards(filter, Page::new(Some(Page::MAX_LIMIT), Some(offset)))
            .await
            .unwrap();
        out.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next_page(offset, next),
            None => break,
        }
    }
    out.sort_by(|a, b| {
        (&a.template_id, &a.learner, a.episode).cmp(&(&b.template_id, &b.learner, b.episode))
    });
    out
}

/// A learner's awards (every episode of every template), sorted by template and episode.
pub async fn awards_of(store: &Arc<dyn Store>, learner: &str) -> Vec<Award> {
    awards_where(
        store,
        &AwardFilter {
            learner: Some(learner.to_string()),
            ..Default::default()
        },
    )
    .await
}

/// Learners currently holding (an unrevoked award of) the template.
pub async fn holders(store: &Arc<dyn Store>, template_id: &str) -> BTreeSet<String> {
    awards_where(
        store,
        &AwardFilter {
            template_id: Some(template_id.to_string()),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .filter(|a| a.state != accolade_domain::award::AwardState::Revoked)
    .map(|a| a.learner)
    .collect()
}

/// Every job matching `filter`.
pub async fn jobs_where(store: &Arc<dyn Store>, filter: &JobFilter) -> Vec<Job> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_jobs(filter, Page::new(Some(Page::MAX_LIMIT), Some(offset)))
            .await
            .unwrap();
        out.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next_page(offset, next),
            None => break,
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Every job of one kind, whatever its status.
pub async fn jobs_of_kind(store: &Arc<dyn Store>, kind: &str) -> Vec<Job> {
    jobs_where(
        store,
        &JobFilter {
            kind: Some(kind.to_string()),
            status: None,
        },
    )
    .await
}

/// Every job.
pub async fn all_jobs(store: &Arc<dyn Store>) -> Vec<Job> {
    jobs_where(store, &JobFilter::default()).await
}

/// Every stored event (of one learner, or of all).
pub async fn all_events(store: &Arc<dyn Store>, learner: Option<&str>) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .list_events(learner, Page::new(Some(Page::MAX_LIMIT), Some(offset)))
            .await
            .unwrap();
        out.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next_page(offset, next),
            None => break,
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A learner's fulfilments, sorted by template and requirement.
pub async fn fulfillments_of(store: &Arc<dyn Store>, learner: &str) -> Vec<Fulfillment> {
    let mut f = store.fulfillments(learner).await.unwrap();
    f.sort_by(|a, b| (&a.template_id, &a.requirement_id).cmp(&(&b.template_id, &b.requirement_id)));
    f
}

/// Everything event processing can change, for "nothing changed" checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub awards: Vec<Award>,
    pub jobs: Vec<Job>,
    pub fulfillments: BTreeMap<String, Vec<Fulfillment>>,
    pub events: Vec<StoredEvent>,
}

/// Takes a [`Snapshot`] covering the given learners' fulfilments.
pub async fn snapshot(store: &Arc<dyn Store>, learners: &[&str]) -> Snapshot {
    let mut fulfillments = BTreeMap::new();
    for l in learners {
        fulfillments.insert(l.to_string(), fulfillments_of(store, l).await);
    }
    Snapshot {
        awards: all_awards(store).await,
        jobs: all_jobs(store).await,
        fulfillments,
        events: all_events(store, None).await,
    }
}

/// A sorted set of strings.
pub fn set<S: AsRef<str>>(items: &[S]) -> BTreeSet<String> {
    items.iter().map(|s| s.as_ref().to_string()).collect()
}

/// Asserts `NotFound { what }`.
#[track_caller]
pub fn assert_not_found<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: w }) => {
            assert_eq!(w.as_str(), what, "NotFound names the wrong kind")
        }
        other => panic!("expected NotFound {{ what: {what:?} }}, got {other:?}"),
    }
}

/// Asserts `Conflict { code }`.
#[track_caller]
pub fn assert_conflict<T: Debug>(result: Result<T, StoreError>, code: &str) {
    match result {
        Err(StoreError::Conflict { code: c, .. }) => {
            assert_eq!(c, code, "Conflict has the wrong code")
        }
        other => panic!("expected Conflict {{ code: {code:?} }}, got {other:?}"),
    }
}

/// Asserts a domain validation error with the given code.
#[track_caller]
pub fn assert_domain<T: Debug>(result: Result<T, StoreError>, code: &str) {
    match result {
        Err(StoreError::Domain(e)) => assert_eq!(e.code(), code, "wrong domain error: {e}"),
        other => panic!("expected a domain error {code:?}, got {other:?}"),
    }
}

/// A boxed future, for [`join_all`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls all futures concurrently (on the current task) and returns their outputs in order.
/// Store calls interleave at their await points, so their transactions really overlap.
pub async fn join_all<'a, T>(futures: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    let mut futures: Vec<Option<BoxFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (slot, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(
                outputs
                    .iter_mut()
                    .map(|o| o.take().expect("every future finished"))
                    .collect(),
            )
        }
    })
    .await
}
