//! Property test: random configurations and random pass/fail histories, checked against a small
//! reference model written independently of the rules engine.
//!
//! The model knows only the documented semantics: requirements in one group are alternatives,
//! all groups are needed; a matching penalty resets its linked requirements (after this event's
//! fulfilments, so it wins); a badge is awarded on the incomplete→complete edge unless the
//! learner holds it (or held it and re-awarding is off), and revoked on the complete→incomplete
//! edge if held. The store must agree on who holds which badge, on every award episode and its
//! `earned_at`, and on the number of issue and revoke jobs; replaying every event afterwards
//! must change nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use accolade_domain::award::AwardState;
use accolade_domain::event::IncomingEvent;
use accolade_domain::outbox::kind;
use accolade_store::testkit::support::*;
use accolade_store::{EventOutcome, IndexCache, NewRequirement, Store, TemplatePatch};
use accolade_store_sqlite::{SqliteOptions, SqliteStore};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

const COURSES: [&str; 3] = [DEMO_COURSE, OTHER_COURSE, THIRD_COURSE];
const GROUPS: [&str; 3] = ["A", "B", "C"];

/// One requirement: the course it is about, its group, and whether it needs a pass
/// (`is_passing = true` and the course) or takes any grade update of the course.
#[derive(Debug, Clone)]
struct RequirementSpec {
    group: usize,
    course: usize,
    any_grade: bool,
}

#[derive(Debug, Clone)]
struct TemplateSpec {
    requirements: Vec<RequirementSpec>,
    /// A penalty on `is_passing = false`, resetting the requirements flagged here.
    penalty: Option<Vec<bool>>,
    allow_reaward: bool,
}

#[derive(Debug, Clone)]
struct EventSpec {
    learner: usize,
    course: usize,
    pass: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    templates: Vec<TemplateSpec>,
    events: Vec<EventSpec>,
    /// Sizes of the consecutive batches the events are sent in (cycled).
    batches: Vec<usize>,
}

fn requirement_spec() -> impl Strategy<Value = RequirementSpec> {
    (0..GROUPS.len(), 0..COURSES.len(), prop::bool::weighted(0.2)).prop_map(
        |(group, course, any_grade)| RequirementSpec {
            group,
            course,
            any_grade,
        },
    )
}

fn template_spec() -> impl Strategy<Value = TemplateSpec> {
    prop::collection::vec(requirement_spec(), 1..=4)
        .prop_flat_map(|requirements| {
            let n = requirements.len();
            (
                Just(requirements),
                prop::option::of(prop::collection::vec(any::<bool>(), n)),
                prop::bool::weighted(0.75),
            )
        })
        .prop_map(|(requirements, penalty, allow_reaward)| TemplateSpec {
            requirements,
            penalty: penalty.map(|mut links| {
                if !links.iter().any(|l| *l) {
                    links[0] = true;
                }
                links
            }),
            allow_reaward,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (prop::collection::vec(template_spec(), 1..=3), 1..=4_usize)
        .prop_flat_map(|(templates, learners)| {
            let event = (0..learners, 0..COURSES.len(), prop::bool::weighted(0.65)).prop_map(
                |(learner, course, pass)| EventSpec {
                    learner,
                    course,
                    pass,
                },
            );
            (
                Just(templates),
                prop::collection::vec(event, 1..40),
                prop::collection::vec(1..=5_usize, 1..8),
            )
        })
        .prop_map(|(templates, events, batches)| Scenario {
            templates,
            events,
            batches,
        })
}

fn learner(i: usize) -> String {
    format!("learner{i}")
}

fn event_time(i: usize) -> DateTime<Utc> {
    at("2026-01-01T00:00:00+00:00") + Duration::seconds(i as i64 + 1)
}

fn event(i: usize, e: &EventSpec) -> IncomingEvent {
    let time = event_time(i).to_rfc3339();
    passing_at(
        &format!("ev-{i}"),
        &learner(e.learner),
        COURSES[e.course],
        e.pass,
        &time,
    )
}

/// What the model (or the store) says happened.
#[derive(Debug, Clone, PartialEq, Default)]
struct Outcome {
    /// (learner, template) pairs holding an unrevoked award.
    holding: BTreeSet<(usize, usize)>,
    /// `earned_at` of every award episode, in episode order.
    episodes: BTreeMap<(usize, usize), Vec<DateTime<Utc>>>,
    issue_jobs: usize,
    revoke_jobs: usize,
}

/// The reference model: plain sets, no rules engine.
fn model(s: &Scenario) -> Outcome {
    let mut fulfilled: HashMap<(usize, usize), BTreeSet<usize>> = HashMap::new();
    let mut out = Outcome::default();
    for (i, e) in s.events.iter().enumerate() {
        for (t, spec) in s.templates.iter().enumerate() {
            let matched: Vec<usize> = spec
                .requirements
                .iter()
                .enumerate()
                .filter(|(_, r)| r.course == e.course && (e.pass || r.any_grade))
                .map(|(k, _)| k)
                .collect();
            let reset: Vec<usize> = match (&spec.penalty, e.pass) {
                (Some(links), false) => (0..links.len()).filter(|k| links[*k]).collect(),
                _ => Vec::new(),
            };
            if matched.is_empty() && reset.is_empty() {
                continue;
            }
            let complete = |set: &BTreeSet<usize>| {
                spec.requirements
                    .iter()
                    .map(|r| r.group)
                    .all(|g| set.iter().any(|k| spec.requirements[*k].group == g))
            };
            let before = fulfilled.get(&(e.learner, t)).cloned().unwrap_or_default();
            let mut after = before.clone();
            after.extend(matched);
            for k in reset {
                after.remove(&k);
            }
            let key = (e.learner, t);
            let held = out.holding.contains(&key);
            if !complete(&before) && complete(&after) {
                let earned_before = out.episodes.get(&key).is_some_and(|v| !v.is_empty());
                if !held && (!earned_before || spec.allow_reaward) {
                    out.holding.insert(key);
                    out.episodes.entry(key).or_default().push(event_time(i));
                    out.issue_jobs += 1;
                }
            } else if complete(&before) && !complete(&after) && held {
                out.holding.remove(&key);
                out.revoke_jobs += 1;
            }
            fulfilled.insert(key, after);
        }
    }
    out
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn fresh_path() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "accolade-prop-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Configures the store, sends the events in batches, reads back the outcome, then replays
/// everything and reports whether the replay changed anything.
async fn run(s: Scenario, store: Arc<dyn Store>) -> Result<(Outcome, bool), String> {
    let mut template_index: HashMap<String, usize> = HashMap::new();
    for (t, spec) in s.templates.iter().enumerate() {
        let requirements: Vec<NewRequirement> = spec
            .requirements
            .iter()
            .map(|r| {
                let mut rules = vec![rule("course.course_key", "=", COURSES[r.course])];
                if !r.any_grade {
                    rules.insert(0, rule("is_passing", "=", "true"));
                }
                requirement(COURSE_PASSING, Some(GROUPS[r.group]), rules)
            })
            .collect();
        let (template, created) = configure(&store, &format!("T{t}"), requirements).await;
        if let Some(links) = &spec.penalty {
            let ids: Vec<&str> = created
                .iter()
                .zip(links)
                .filter(|(_, l)| **l)
                .map(|(r, _)| r.id.as_str())
                .collect();
            store
                .add_penalty(&template.id, failed_course_penalty(&ids))
                .await
                .map_err(|e| e.to_string())?;
        }
        if !spec.allow_reaward {
            let patch = TemplatePatch {
                allow_reaward: Some(false),
                ..Default::default()
            };
            store
                .update_template(&template.id, patch)
                .await
                .map_err(|e| e.to_string())?;
        }
        activate(&store, &template.id).await;
        template_index.insert(template.id, t);
    }

    let index = IndexCache::new();
    let events: Vec<IncomingEvent> = s
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| event(i, e))
        .collect();
    let mut rest = events.as_slice();
    let mut sizes = s.batches.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
        let (batch, tail) = rest.split_at(n);
        let out = store
            .process_events(batch.to_vec(), &index)
            .await
            .map_err(|e| e.to_string())?;
        if out.contains(&EventOutcome::Duplicate) {
            return Err(format!("a new event was reported as a duplicate: {out:?}"));
        }
        rest = tail;
    }

    let mut observed = Outcome::default();
    for a in all_awards(&store).await {
        let t = template_index[&a.template_id];
        let l: usize = a
            .learner
            .trim_start_matches("learner")
            .parse()
            .map_err(|_| "bad learner")?;
        if a.state != AwardState::Revoked && !observed.holding.insert((l, t)) {
            return Err(format!("two unrevoked awards for {} on T{t}", a.learner));
        }
        observed
            .episodes
            .entry((l, t))
            .or_default()
            .push(a.earned_at);
    }
    observed.issue_jobs = jobs_of_kind(&store, kind::ISSUE_AWARD).await.len();
    observed.revoke_jobs = jobs_of_kind(&store, kind::REVOKE_AWARD).await.len();

    let learners: Vec<String> = (0..4).map(learner).collect();
    let names: Vec<&str> = learners.iter().map(String::as_str).collect();
    let before = snapshot(&store, &names).await;
    for batch in events.chunks(7) {
        let out = store
            .process_events(batch.to_vec(), &index)
            .await
            .map_err(|e| e.to_string())?;
        if out.iter().any(|o| *o != EventOutcome::Duplicate) {
            return Err(format!("a replayed event was processed again: {out:?}"));
        }
    }
    let unchanged = snapshot(&store, &names).await == before;
    Ok((observed, unchanged))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_agrees_with_reference_model(s in scenario()) {
        let path = fresh_path();
        let options = SqliteOptions { synchronous: "NORMAL".into(), ..SqliteOptions::default() };
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&path.join("prop.db"), &options).expect("open sqlite"));
        let result = runtime()
            .block_on(runtime().spawn(run(s.clone(), store)))
            .map_err(|e| format!("the run panicked: {e}"));
        let _ = std::fs::remove_dir_all(&path);
        let (observed, replay_unchanged) = result.and_then(|r| r).map_err(TestCaseError::fail)?;
        let expected = model(&s);
        prop_assert_eq!(&observed.holding, &expected.holding, "who holds which badge");
        prop_assert_eq!(&observed.episodes, &expected.episodes, "award episodes and earned_at");
        prop_assert_eq!(observed.issue_jobs, expected.issue_jobs, "issue jobs");
        prop_assert_eq!(observed.revoke_jobs, expected.revoke_jobs, "revoke jobs");
        prop_assert!(replay_unchanged, "replaying every event changed the store");
    }
}
