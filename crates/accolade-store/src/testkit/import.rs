//! Imports from another badge system (`ImportStore`): what one organization's share creates, a
//! dry run writing nothing, a repeat changing nothing, awards never duplicated, and learners
//! continuing from their imported progress under live processing.

use std::sync::Arc;

use accolade_domain::award::{Award, AwardState};
use accolade_domain::event::LearnerData;
use accolade_domain::template::{Origin, Penalty, Requirement, Template, TemplateConfig};

use super::support::*;
use crate::{
    AwardFilter, CredlyKey, ImportCounts, ImportPart, IndexCache, NewCredlyOrganization, Store,
};

const ORG: &str = "466fc89d-4a3b-55b8-87c8-e0c18a4fbb74";
const TEMPLATE: &str = "3db85e45-361f-5fa4-868a-4195a7b25164";

fn imported_award(id: &str, learner: &str, credly_id: &str, state: AwardState) -> Award {
    let revoked = state == AwardState::Revoked;
    Award {
        id: id.into(),
        template_id: TEMPLATE.into(),
        learner: learner.into(),
        episode: 0,
        state,
        earned_at: at("2026-03-01T10:00:00Z"),
        awarded_at: at("2026-03-01T10:00:00Z"),
        issued_at: Some(at("2026-03-01T10:00:00Z")),
        revoked_at: revoked.then(|| at("2026-04-01T10:00:00Z")),
        revoke_reason: revoked.then(|| "revoked in the source".to_string()),
        event_id: None,
        external_id: Some(credly_id.into()),
        external_state: Some(state.as_str().into()),
        expires_at: None,
        backfill_id: None,
    }
}

/// Acme's share: one active Credly template (A: pass the demo course, B: pass the other course;
/// a penalty resetting A), ana with A done, bo with A done and the badge held on Credly, cy with
/// a revoked badge.
fn part() -> ImportPart {
    let now = at("2026-12-01T00:00:00Z");
    let req = |id: &str, g: &str, course: &str| Requirement {
        id: id.into(),
        template_id: TEMPLATE.into(),
        key: Some(format!("openedx-{id}")),
        event_type: COURSE_PASSING.into(),
        description: format!("pass {course}"),
        group: group(g),
        rules: vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", course),
        ],
    };
    let learner = |u: &str| LearnerData {
        username: u.into(),
        lms_user_id: Some(lms_id(u)),
        email: Some(format!("{u}@example.org")),
        name: Some(u.to_uppercase()),
        is_active: None,
    };
    let f = |l: &str, r: &str| -> (Arc<str>, Arc<str>, Arc<str>) {
        (l.into(), TEMPLATE.into(), r.into())
    };
    ImportPart {
        organization: NewCredlyOrganization {
            id: ORG.into(),
            name: "Acme Learning".into(),
            key: CredlyKey {
                ciphertext: vec![9, 8, 7, 6],
                last4: "6b4a".into(),
                created_at: at("2026-08-01T00:00:00Z"),
                expires_at: at("2027-01-28T00:00:00Z"),
            },
        },
        templates: vec![TemplateConfig {
            template: Template {
                id: TEMPLATE.into(),
                name: "Full-Stack Developer".into(),
                description: "Two courses".into(),
                image_url: Some("https://images.example/fs.png".into()),
                origin: Origin::Credly,
                provider_state: "active".into(),
                is_active: true,
                allow_reaward: true,
                organization_id: Some(ORG.into()),
                expires_after: None,
                criteria: None,
                created_at: now,
                updated_at: now,
            },
            requirements: vec![
                req("req_a", "A", DEMO_COURSE),
                req("req_b", "B", OTHER_COURSE),
            ],
            penalties: vec![Penalty {
                id: "pen_1".into(),
                template_id: TEMPLATE.into(),
                key: Some("openedx-penalty-1".into()),
                event_type: COURSE_PASSING.into(),
                description: String::new(),
                rules: vec![
                    rule("is_passing", "=", "false"),
                    rule("course.course_key", "=", DEMO_COURSE),
                ],
                requirement_ids: vec!["req_a".into()],
            }],
        }],
        learners: ["ana", "bo", "cy"].into_iter().map(learner).collect(),
        fulfilments: vec![f("ana", "req_a"), f("bo", "req_a")],
        awards: vec![
            imported_award(
                "00000000-0000-4000-8000-0000000000b0",
                "bo",
                "11111111-1111-4111-8111-111111111111",
                AwardState::Pending,
            ),
            imported_award(
                "00000000-0000-4000-8000-0000000000c0",
                "cy",
                "22222222-2222-4222-8222-222222222222",
                AwardState::Revoked,
            ),
        ],
        now,
    }
}

const CREATED: ImportCounts = ImportCounts {
    organizations: 1,
    templates: 1,
    requirements: 2,
    penalties: 1,
    learners: 3,
    fulfilments: 2,
    awards: 2,
    awards_held_already: 0,
};

pub async fn import_dry_run_writes_nothing(store: Arc<dyn Store>) {
    let version = store.config_version().await.unwrap();
    let counts = store.import_part(part(), true).await.unwrap();
    assert_eq!(counts, CREATED, "a dry run counts what a real run creates");
    assert_not_found(store.get_template(TEMPLATE).await, "template");
    assert!(
        store.get_credly_org(ORG).await.is_err(),
        "no organization after a dry run"
    );
    assert!(fulfillments_of(&store, "ana").await.is_empty());
    assert!(all_awards(&store).await.is_empty());
    assert_eq!(store.config_version().await.unwrap(), version);
}

pub async fn import_creates_every_row_and_a_repeat_changes_nothing(store: Arc<dyn Store>) {
    let version = store.config_version().await.unwrap();
    assert_eq!(store.import_part(part(), false).await.unwrap(), CREATED);
    assert!(
        store.config_version().await.unwrap() > version,
        "the rules index must reload"
    );

    let want = &part().templates[0];
    let got = store.get_template(TEMPLATE).await.unwrap();
    assert_eq!(got.template.name, want.template.name);
    assert_eq!(got.template.origin, Origin::Credly);
    assert_eq!(got.template.organization_id.as_deref(), Some(ORG));
    assert!(got.template.is_active);
    assert_eq!(got.template.image_url, want.template.image_url);
    let mut reqs = got.requirements.clone();
    reqs.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(reqs, want.requirements);
    assert_eq!(got.penalties, want.penalties);
    let org = store.get_credly_org(ORG).await.unwrap();
    assert_eq!(
        (org.name.as_str(), org.api_key_last4.as_deref()),
        ("Acme Learning", Some("6b4a"))
    );
    assert_eq!(org.key_expires_at, Some(at("2027-01-28T00:00:00Z")));
    assert_eq!(store.credly_org_key(ORG).await.unwrap(), vec![9, 8, 7, 6]);
    let ana = store.get_learner("ana").await.unwrap();
    assert_eq!(
        (ana.email.as_deref(), ana.name.as_deref()),
        (Some("ana@example.org"), Some("ANA"))
    );
    let f = fulfillments_of(&store, "ana").await;
    assert_eq!(f.len(), 1);
    assert_eq!(
        (
            f[0].template_id.as_str(),
            f[0].requirement_id.as_str(),
            f[0].event_id.as_deref()
        ),
        (TEMPLATE, "req_a", None)
    );
    let bo = awards_of(&store, "bo").await;
    assert_eq!(bo.len(), 1);
    assert_eq!(bo[0].id, "00000000-0000-4000-8000-0000000000b0");
    assert_eq!((bo[0].state, bo[0].episode), (AwardState::Pending, 1));
    assert_eq!(
        bo[0].external_id.as_deref(),
        Some("11111111-1111-4111-8111-111111111111")
    );
    assert_eq!(bo[0].external_state.as_deref(), Some("pending"));
    let cy = awards_of(&store, "cy").await;
    assert_eq!(
        (cy[0].state, cy[0].revoked_at),
        (AwardState::Revoked, Some(at("2026-04-01T10:00:00Z")))
    );
    assert!(
        all_jobs(&store).await.is_empty(),
        "importing sends nothing to Credly"
    );

    let version = store.config_version().await.unwrap();
    let before = snapshot(&store, &["ana", "bo", "cy"]).await;
    let again = store.import_part(part(), false).await.unwrap();
    assert!(again.is_empty(), "a repeated import created {again:?}");
    assert_eq!(snapshot(&store, &["ana", "bo", "cy"]).await, before);
    assert_eq!(store.config_version().await.unwrap(), version);
}

pub async fn imported_progress_continues_under_live_processing(store: Arc<dyn Store>) {
    store.import_part(part(), false).await.unwrap();
    let index = IndexCache::new();
    // ana had A: passing the other course completes the template: awarded once, for Credly.
    let e = send_one(&store, &index, passing("e1", "ana", OTHER_COURSE, true)).await;
    assert_eq!(
        e.awarded.len(),
        1,
        "ana completes from her imported progress"
    );
    assert_eq!(
        jobs_of_kind(&store, accolade_domain::outbox::kind::CREDLY_ISSUE)
            .await
            .len(),
        1
    );
    // bo holds the badge already: completing makes no second award and no Credly job.
    assert_nothing(
        &send_one(&store, &index, passing("e2", "bo", OTHER_COURSE, true)).await,
        "bo holds it",
    );
    assert_eq!(awards_of(&store, "bo").await.len(), 1);
    // The imported penalty resets ana's A: her award is revoked.
    let e = send_one(&store, &index, passing("e3", "ana", DEMO_COURSE, false)).await;
    assert_eq!(e.revoked.len(), 1);
    // cy's badge was revoked in the source: earning it anew is a second episode.
    send_one(&store, &index, passing("e4", "cy", DEMO_COURSE, true)).await;
    let e = send_one(&store, &index, passing("e5", "cy", OTHER_COURSE, true)).await;
    assert_eq!(e.awarded.len(), 1);
    let held = awards_where(
        &store,
        &AwardFilter {
            learner: Some("cy".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(held.iter().map(|a| a.episode).max(), Some(2));
}

pub async fn import_never_duplicates_an_award(store: Arc<dyn Store>) {
    store.import_part(part(), false).await.unwrap();
    // The same Credly badge under another id (a second source, or a changed source): skipped.
    let mut p = part();
    p.awards = vec![imported_award(
        "00000000-0000-4000-8000-0000000000d0",
        "dee",
        "11111111-1111-4111-8111-111111111111",
        AwardState::Pending,
    )];
    assert_eq!(store.import_part(p, false).await.unwrap().awards, 0);
    // A learner who earned the badge in Accolade meanwhile: not given a second one.
    let index = IndexCache::new();
    send_one(&store, &index, passing("e1", "ana", OTHER_COURSE, true)).await;
    let mut p = part();
    p.awards = vec![imported_award(
        "00000000-0000-4000-8000-0000000000e0",
        "ana",
        "33333333-3333-4333-8333-333333333333",
        AwardState::Accepted,
    )];
    let counts = store.import_part(p, false).await.unwrap();
    assert_eq!((counts.awards, counts.awards_held_already), (0, 1));
    assert_eq!(awards_of(&store, "ana").await.len(), 1);
}
