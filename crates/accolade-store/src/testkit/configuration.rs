//! Configuration: templates (create, get, list with filters and pages, update, activation),
//! requirements (default group letters), penalties (linked requirements) and the configuration
//! version that event processing uses to rebuild its rules index.

use std::collections::BTreeSet;
use std::sync::Arc;

use accolade_domain::rules::DataRule;
use accolade_domain::template::Origin;

use super::support::*;
use crate::{
    NewRequirement, NewTemplate, Page, PenaltyPatch, RequirementPatch, Store, StoreError,
    TemplateFilter, TemplatePatch,
};

pub async fn create_and_list_templates(store: Arc<dyn Store>) {
    let t = store
        .create_template(local_template("Demo", false))
        .await
        .unwrap();
    let page = store
        .list_templates(&TemplateFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, t.id);
    assert!(!page.items[0].is_active);
    assert_eq!(page.next_offset, None);
}

/// Created templates come back with every field as given; a given id is kept and may not be
/// reused; a blank name is refused and creates nothing.
pub async fn create_template_keeps_fields(store: Arc<dyn Store>) {
    let id = accolade_domain::ids::uuid();
    let new = NewTemplate {
        id: Some(id.clone()),
        name: "Python Basics".into(),
        description: "Passed Python für Einsteiger".into(),
        image_url: Some("https://images.example.com/py.png".into()),
        origin: Origin::Credly,
        provider_state: "draft".into(),
        is_active: true,
        allow_reaward: false,
        organization_id: Some("org-1".into()),
        expires_after: None,
        criteria: None,
    };
    let t = store.create_template(new.clone()).await.unwrap();
    assert_eq!(t.id, id);
    assert_eq!(t.name, "Python Basics");
    assert_eq!(t.description, "Passed Python für Einsteiger");
    assert_eq!(
        t.image_url.as_deref(),
        Some("https://images.example.com/py.png")
    );
    assert_eq!(t.origin, Origin::Credly);
    assert_eq!(t.provider_state, "draft");
    assert!(t.is_active);
    assert!(!t.allow_reaward);
    assert_eq!(t.organization_id.as_deref(), Some("org-1"));
    assert_eq!(store.get_template(&id).await.unwrap().template, t);

    let generated = store
        .create_template(local_template("Generated", false))
        .await
        .unwrap();
    assert!(!generated.id.is_empty());
    assert_ne!(generated.id, id);

    assert_conflict(store.create_template(new).await, "template_exists");
    let blank = store.create_template(local_template("  ", false)).await;
    assert!(
        blank.is_err(),
        "a blank name must be refused, got {blank:?}"
    );
    let all = store
        .list_templates(&TemplateFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2, "refused creations leave nothing behind");
}

/// `list_templates` filters by origin, activity, organization, provider state and a case-insensitive name
/// substring (with `%` and `_` taken literally), and pages through everything exactly once.
pub async fn template_filters_and_pagination(store: Arc<dyn Store>) {
    let specs: [(&str, Origin, bool, Option<&str>); 8] = [
        ("Alpha Badge", Origin::Local, true, None),
        ("Beta Badge", Origin::Credly, false, Some("org-1")),
        ("Gamma", Origin::Local, false, None),
        ("alphabet soup", Origin::Local, true, None),
        ("Score 50% club", Origin::Local, false, None),
        ("Score 500 club", Origin::Credly, false, Some("org-2")),
        ("Under_score", Origin::Local, false, None),
        ("Underxscore", Origin::Local, false, None),
    ];
    for (name, origin, active, org) in specs {
        store
            .create_template(NewTemplate {
                origin,
                organization_id: org.map(str::to_string),
                // One Credly template that Credly no longer lists.
                provider_state: if name == "Score 500 club" {
                    "inactive"
                } else {
                    "active"
                }
                .into(),
                ..local_template(name, active)
            })
            .await
            .unwrap();
    }
    let names = |filter: TemplateFilter| {
        let store = store.clone();
        async move {
            let page = store
                .list_templates(&filter, Page::new(Some(100), None))
                .await
                .unwrap();
            assert_eq!(page.next_offset, None);
            page.items
                .into_iter()
                .map(|t| t.name)
                .collect::<BTreeSet<String>>()
        }
    };
    assert_eq!(
        names(TemplateFilter {
            origin: Some(Origin::Credly),
            ..Default::default()
        })
        .await,
        set(&["Beta Badge", "Score 500 club"])
    );
    assert_eq!(
        names(TemplateFilter {
            origin: Some(Origin::Local),
            ..Default::default()
        })
        .await
        .len(),
        6
    );
    assert_eq!(
        names(TemplateFilter {
            active: Some(true),
            ..Default::default()
        })
        .await,
        set(&["Alpha Badge", "alphabet soup"])
    );
    assert_eq!(
        names(TemplateFilter {
            active: Some(false),
            ..Default::default()
        })
        .await
        .len(),
        6
    );
    assert_eq!(
        names(TemplateFilter {
            search: Some("ALPHA".into()),
            ..Default::default()
        })
        .await,
        set(&["Alpha Badge", "alphabet soup"]),
        "search is a case-insensitive substring of the name"
    );
    assert_eq!(
        names(TemplateFilter {
            search: Some("50%".into()),
            ..Default::default()
        })
        .await,
        set(&["Score 50% club"]),
        "`%` in a search is literal"
    );
    assert_eq!(
        names(TemplateFilter {
            search: Some("under_".into()),
            ..Default::default()
        })
        .await,
        set(&["Under_score"]),
        "`_` in a search is literal"
    );
    assert_eq!(
        names(TemplateFilter {
            organization_id: Some("org-1".into()),
            ..Default::default()
        })
        .await,
        set(&["Beta Badge"])
    );
    assert_eq!(
        names(TemplateFilter {
            origin: Some(Origin::Local),
            active: Some(true),
            search: Some("soup".into()),
            organization_id: None,
            provider_state: None,
        })
        .await,
        set(&["alphabet soup"])
    );
    assert!(names(TemplateFilter {
        search: Some("nothing like it".into()),
        ..Default::default()
    })
    .await
    .is_empty());

    assert_eq!(
        names(TemplateFilter {
            provider_state: Some("inactive".into()),
            ..Default::default()
        })
        .await,
        set(&["Score 500 club"]),
        "filter by the provider's state"
    );
    assert_eq!(
        names(TemplateFilter {
            origin: Some(Origin::Credly),
            provider_state: Some("active".into()),
            ..Default::default()
        })
        .await,
        set(&["Beta Badge"])
    );

    // Pages of 3: 3 + 3 + 2, each template exactly once.
    let mut seen = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let page = store
            .list_templates(&TemplateFilter::default(), Page::new(Some(3), Some(offset)))
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|t| t.id));
        match page.next_offset {
            Some(next) => {
                assert_eq!(next, offset + 3, "next_offset follows the page");
                offset = next;
            }
            None => break,
        }
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        8,
        "no template twice across pages"
    );
    let exact = store
        .list_templates(&TemplateFilter::default(), Page::new(Some(8), None))
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 8);
    assert_eq!(
        exact.next_offset, None,
        "no next page when the last page is exactly full"
    );
    let beyond = store
        .list_templates(&TemplateFilter::default(), Page::new(Some(5), Some(8)))
        .await
        .unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.next_offset, None);
}

/// The name search ignores case for every letter, not only ASCII (operators search for
/// "für", "ÉCOLE" or "ÖSTERREICH" in template names synced from Credly).
pub async fn template_search_ignores_case_beyond_ascii(store: Arc<dyn Store>) {
    for name in [
        "Python für Einsteiger",
        "École d'été",
        "Österreich Akademie",
        "Plain",
    ] {
        store
            .create_template(local_template(name, false))
            .await
            .unwrap();
    }
    let search = |q: &str| {
        let store = store.clone();
        let filter = TemplateFilter {
            search: Some(q.to_string()),
            ..Default::default()
        };
        async move {
            let page = store
                .list_templates(&filter, Page::default())
                .await
                .unwrap();
            page.items
                .into_iter()
                .map(|t| t.name)
                .collect::<BTreeSet<String>>()
        }
    };
    assert_eq!(search("für").await, set(&["Python für Einsteiger"]));
    assert_eq!(search("FÜR").await, set(&["Python für Einsteiger"]));
    assert_eq!(search("école").await, set(&["École d'été"]));
    assert_eq!(search("ÉTÉ").await, set(&["École d'été"]));
    assert_eq!(search("österreich").await, set(&["Österreich Akademie"]));
}

/// `get_template` returns the template with its requirements and penalties.
pub async fn get_template_returns_configuration(store: Arc<dyn Store>) {
    let (t, reqs) = configure(
        &store,
        "Two courses",
        vec![
            passed_course(DEMO_COURSE, None),
            passed_course(OTHER_COURSE, None),
        ],
    )
    .await;
    let p = store
        .add_penalty(&t.id, failed_course_penalty(&[&reqs[0].id, &reqs[1].id]))
        .await
        .unwrap();
    let cfg = store.get_template(&t.id).await.unwrap();
    assert_eq!(cfg.template, t);
    let mut got = cfg.requirements.clone();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = reqs.clone();
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, want);
    assert_eq!(cfg.penalties.len(), 1);
    assert_eq!(cfg.penalties[0].id, p.id);
    assert_eq!(
        cfg.penalties[0]
            .requirement_ids
            .iter()
            .collect::<BTreeSet<_>>(),
        reqs.iter().map(|r| &r.id).collect::<BTreeSet<_>>()
    );
}

/// Every operation addressing an unknown template says `NotFound { what: Entity::Template }`.
pub async fn unknown_template_is_not_found(store: Arc<dyn Store>) {
    let id = "00000000-0000-7000-8000-000000000000";
    assert_not_found(store.get_template(id).await, "template");
    assert_not_found(
        store.update_template(id, TemplatePatch::default()).await,
        "template",
    );
    assert_not_found(store.set_template_active(id, true).await, "template");
    assert_not_found(
        store
            .add_requirement(id, passed_course(DEMO_COURSE, None))
            .await,
        "template",
    );
    assert_not_found(
        store
            .add_penalty(id, failed_course_penalty::<&str>(&[]))
            .await,
        "template",
    );
    assert_not_found(
        store
            .award_manually(
                id,
                "jdoe",
                crate::ManualChange {
                    reason: "test".into(),
                    at: at(SAMPLE_TIME),
                },
            )
            .await,
        "template",
    );
}

/// `update_template` changes only the given fields.
pub async fn update_template_fields(store: Arc<dyn Store>) {
    let t = store
        .create_template(NewTemplate {
            image_url: Some("https://img/a.png".into()),
            ..local_template("Old", true)
        })
        .await
        .unwrap();
    let u = store
        .update_template(
            &t.id,
            TemplatePatch {
                name: Some("New name".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.name, "New name");
    assert_eq!(u.description, t.description, "unpatched fields stay");
    assert_eq!(u.image_url, t.image_url);
    assert!(u.allow_reaward);
    assert!(u.is_active, "updating fields does not change activation");
    let u = store
        .update_template(
            &t.id,
            TemplatePatch {
                name: None,
                description: Some("Now with a description".into()),
                image_url: Some(None),
                allow_reaward: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.name, "New name");
    assert_eq!(u.description, "Now with a description");
    assert_eq!(u.image_url, None, "Some(None) clears the image");
    assert!(!u.allow_reaward);
    assert!(u.updated_at >= t.updated_at);
    assert_eq!(store.get_template(&t.id).await.unwrap().template, u);
    let blank = store
        .update_template(
            &t.id,
            TemplatePatch {
                name: Some(String::new()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        blank.is_err(),
        "a blank name must be refused, got {blank:?}"
    );
    assert_eq!(
        store.get_template(&t.id).await.unwrap().template.name,
        "New name"
    );
}

/// Activation and deactivation are visible in `get_template`, list filters and `active_config`.
pub async fn activate_and_deactivate_template(store: Arc<dyn Store>) {
    let (a, _) = configure(&store, "A", vec![passed_course(DEMO_COURSE, None)]).await;
    let (b, _) = configure(&store, "B", vec![passed_course(OTHER_COURSE, None)]).await;
    let active_ids = || {
        let store = store.clone();
        async move {
            let (_, cfgs) = store.active_config().await.unwrap();
            cfgs.into_iter()
                .map(|c| c.template.id)
                .collect::<BTreeSet<String>>()
        }
    };
    assert!(
        active_ids().await.is_empty(),
        "new templates here are inactive"
    );
    let t = store.set_template_active(&a.id, true).await.unwrap();
    assert!(t.is_active);
    assert!(store.get_template(&a.id).await.unwrap().template.is_active);
    assert_eq!(active_ids().await, set(&[&a.id]));
    let (_, cfgs) = store.active_config().await.unwrap();
    assert_eq!(
        cfgs[0].requirements.len(),
        1,
        "active_config carries the requirements"
    );
    store.set_template_active(&b.id, true).await.unwrap();
    assert_eq!(active_ids().await, set(&[&a.id, &b.id]));
    let t = store.set_template_active(&a.id, false).await.unwrap();
    assert!(!t.is_active);
    assert_eq!(active_ids().await, set(&[&b.id]));
    let inactive = store
        .list_templates(
            &TemplateFilter {
                active: Some(false),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        inactive
            .items
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    // Idempotent.
    store.set_template_active(&a.id, false).await.unwrap();
    assert_eq!(active_ids().await, set(&[&b.id]));
}

/// Requirements: explicit group, default next free letter (A, B, then skipping used letters and
/// reusing freed ones), get, update, delete, key uniqueness and validation.
pub async fn requirement_crud_and_default_groups(store: Arc<dyn Store>) {
    let t = store
        .create_template(local_template("Groups", false))
        .await
        .unwrap();
    let add = |r: NewRequirement| {
        let store = store.clone();
        let id = t.id.clone();
        async move { store.add_requirement(&id, r).await }
    };
    let a = add(passed_course(DEMO_COURSE, None)).await.unwrap();
    assert_eq!(
        a.group.letter(),
        'A',
        "the first requirement defaults to group A"
    );
    let b = add(passed_course(OTHER_COURSE, None)).await.unwrap();
    assert_eq!(
        b.group.letter(),
        'B',
        "the next one to the next free letter"
    );
    let d = add(passed_course(THIRD_COURSE, Some("D"))).await.unwrap();
    assert_eq!(d.group.letter(), 'D');
    let c = add(passed_course(THIRD_COURSE, None)).await.unwrap();
    assert_eq!(c.group.letter(), 'C', "C is still free");
    let e = add(passed_course(THIRD_COURSE, None)).await.unwrap();
    assert_eq!(e.group.letter(), 'E', "D is taken, so E");
    let also_a = add(passed_course(OTHER_COURSE, Some("A"))).await.unwrap();
    assert_eq!(
        also_a.group.letter(),
        'A',
        "an explicit group may be shared (OR)"
    );

    assert_eq!(a.template_id, t.id);
    assert_eq!(a.event_type, COURSE_PASSING);
    assert_eq!(
        a.rules,
        vec![
            rule("is_passing", "=", "true"),
            rule("course.course_key", "=", DEMO_COURSE)
        ]
    );
    assert_eq!(store.get_requirement(&a.id).await.unwrap(), a);

    let updated = store
        .update_requirement(
            &b.id,
            RequirementPatch {
                description: Some("any other course".into()),
                group: Some(group("F")),
                rules: Some(vec![rule("course.course_key", "!=", DEMO_COURSE)]),
                event_type: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.description, "any other course");
    assert_eq!(updated.group.letter(), 'F');
    assert_eq!(
        updated.rules,
        vec![rule("course.course_key", "!=", DEMO_COURSE)]
    );
    assert_eq!(updated.event_type, COURSE_PASSING, "unpatched fields stay");
    assert_eq!(store.get_requirement(&b.id).await.unwrap(), updated);
    let no_rules = store
        .update_requirement(
            &b.id,
            RequirementPatch {
                rules: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(no_rules.rules.is_empty(), "rules can be cleared");

    // B was freed by the move to F: the next default takes it.
    let b2 = add(passed_course(OTHER_COURSE, None)).await.unwrap();
    assert_eq!(b2.group.letter(), 'B');

    store.delete_requirement(&c.id).await.unwrap();
    assert_not_found(store.get_requirement(&c.id).await, "requirement");
    assert_not_found(store.delete_requirement(&c.id).await, "requirement");
    assert_not_found(
        store
            .update_requirement(&c.id, RequirementPatch::default())
            .await,
        "requirement",
    );
    let c2 = add(passed_course(THIRD_COURSE, None)).await.unwrap();
    assert_eq!(
        c2.group.letter(),
        'C',
        "a deleted requirement frees its letter"
    );
    assert_eq!(
        store.get_template(&t.id).await.unwrap().requirements.len(),
        7
    );

    // Keys are unique per template, not across templates.
    let keyed = NewRequirement {
        key: Some("demo".into()),
        ..passed_course(DEMO_COURSE, None)
    };
    let k = add(keyed.clone()).await.unwrap();
    assert_eq!(k.key.as_deref(), Some("demo"));
    assert_conflict(add(keyed.clone()).await, "key_taken");
    let other = store
        .create_template(local_template("Other", false))
        .await
        .unwrap();
    store.add_requirement(&other.id, keyed).await.unwrap();

    // Validation: bad event type, bad rule; nothing is stored.
    let before = store.get_template(&t.id).await.unwrap().requirements.len();
    assert_domain(
        add(requirement("not an event type", None, vec![])).await,
        "invalid_event_type",
    );
    let bad_rule = DataRule {
        path: "course..course_key".into(),
        ..rule("a", "=", "b")
    };
    assert_domain(
        add(requirement(COURSE_PASSING, None, vec![bad_rule.clone()])).await,
        "invalid_path",
    );
    assert_domain(
        store
            .update_requirement(
                &a.id,
                RequirementPatch {
                    rules: Some(vec![bad_rule]),
                    ..Default::default()
                },
            )
            .await,
        "invalid_path",
    );
    assert_eq!(
        store.get_requirement(&a.id).await.unwrap(),
        a,
        "a refused update changes nothing"
    );
    assert_eq!(
        store.get_template(&t.id).await.unwrap().requirements.len(),
        before
    );
}

/// Penalties link requirements of their own template; unknown requirements are `NotFound`,
/// another template's are a `Conflict`, and refused changes leave nothing behind.
pub async fn penalty_links_requirements(store: Arc<dyn Store>) {
    let (t, reqs) = configure(
        &store,
        "T",
        vec![
            passed_course(DEMO_COURSE, None),
            passed_course(OTHER_COURSE, None),
        ],
    )
    .await;
    let (r1, r2) = (&reqs[0].id, &reqs[1].id);
    let (u, foreign) = configure(&store, "U", vec![passed_course(DEMO_COURSE, None)]).await;
    let r3 = &foreign[0].id;

    let p = store
        .add_penalty(&t.id, failed_course_penalty(&[r1, r2]))
        .await
        .unwrap();
    assert_eq!(p.template_id, t.id);
    assert_eq!(p.event_type, COURSE_PASSING);
    assert_eq!(p.rules, vec![rule("is_passing", "=", "false")]);
    assert_eq!(
        p.requirement_ids.iter().collect::<BTreeSet<_>>(),
        [r1, r2].into_iter().collect::<BTreeSet<_>>()
    );
    let got = store.get_penalty(&p.id).await.unwrap();
    assert_eq!(got.id, p.id);
    assert_eq!(
        got.requirement_ids.iter().collect::<BTreeSet<_>>(),
        [r1, r2].into_iter().collect::<BTreeSet<_>>()
    );

    let p2 = store
        .update_penalty(
            &p.id,
            PenaltyPatch {
                requirement_ids: Some(vec![r2.clone()]),
                rules: Some(vec![rule("is_passing", "=", "no")]),
                description: Some("failed".into()),
                event_type: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(p2.requirement_ids, vec![r2.clone()]);
    assert_eq!(p2.rules, vec![rule("is_passing", "=", "no")]);
    assert_eq!(p2.description, "failed");
    assert_eq!(
        store.get_penalty(&p.id).await.unwrap().requirement_ids,
        vec![r2.clone()]
    );

    // Unknown requirement: NotFound, and no half-created penalty.
    assert_not_found(
        store
            .add_penalty(
                &t.id,
                failed_course_penalty(&[r1.as_str(), "req_does_not_exist"]),
            )
            .await,
        "requirement",
    );
    assert_eq!(store.get_template(&t.id).await.unwrap().penalties.len(), 1);
    assert_not_found(
        store
            .update_penalty(
                &p.id,
                PenaltyPatch {
                    requirement_ids: Some(vec!["req_nope".into()]),
                    ..Default::default()
                },
            )
            .await,
        "requirement",
    );
    // Another template's requirement: Conflict, nothing changed.
    assert_conflict(
        store.add_penalty(&t.id, failed_course_penalty(&[r3])).await,
        "requirement_of_other_template",
    );
    assert_eq!(store.get_template(&t.id).await.unwrap().penalties.len(), 1);
    assert_eq!(store.get_template(&u.id).await.unwrap().penalties.len(), 0);
    assert_conflict(
        store
            .update_penalty(
                &p.id,
                PenaltyPatch {
                    requirement_ids: Some(vec![r1.clone(), r3.clone()]),
                    ..Default::default()
                },
            )
            .await,
        "requirement_of_other_template",
    );
    assert_eq!(
        store.get_penalty(&p.id).await.unwrap().requirement_ids,
        vec![r2.clone()],
        "refused update changed links"
    );

    // Deleting a requirement unlinks it.
    store.delete_requirement(r2).await.unwrap();
    assert!(store
        .get_penalty(&p.id)
        .await
        .unwrap()
        .requirement_ids
        .is_empty());

    store.delete_penalty(&p.id).await.unwrap();
    assert_not_found(store.get_penalty(&p.id).await, "penalty");
    assert_not_found(store.delete_penalty(&p.id).await, "penalty");
    assert_not_found(
        store.update_penalty(&p.id, PenaltyPatch::default()).await,
        "penalty",
    );
    assert!(store
        .get_template(&t.id)
        .await
        .unwrap()
        .penalties
        .is_empty());
    assert!(
        store.get_requirement(r1).await.is_ok(),
        "deleting a penalty keeps its requirements"
    );
}

/// Every configuration change increases the configuration version; reads, refused changes and
/// event processing do not.
pub async fn config_version_increases_on_every_change(store: Arc<dyn Store>) {
    let mut last = store.config_version().await.unwrap();
    let check = |last: &mut i64, now: i64, what: &str, changed: bool| {
        if changed {
            assert!(
                now > *last,
                "{what} must increase the configuration version ({last} -> {now})"
            );
        } else {
            assert_eq!(
                now, *last,
                "{what} must not change the configuration version"
            );
        }
        *last = now;
    };
    let t = store
        .create_template(local_template("V", false))
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "create_template",
        true,
    );
    store
        .update_template(
            &t.id,
            TemplatePatch {
                name: Some("V2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "update_template",
        true,
    );
    store.set_template_active(&t.id, true).await.unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "set_template_active",
        true,
    );
    let r = store
        .add_requirement(&t.id, passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "add_requirement",
        true,
    );
    let r2 = store
        .add_requirement(&t.id, passed_course(OTHER_COURSE, None))
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "add_requirement",
        true,
    );
    store
        .update_requirement(
            &r.id,
            RequirementPatch {
                description: Some("d".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "update_requirement",
        true,
    );
    let p = store
        .add_penalty(&t.id, failed_course_penalty(&[&r.id]))
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "add_penalty",
        true,
    );
    store
        .update_penalty(
            &p.id,
            PenaltyPatch {
                requirement_ids: Some(vec![r.id.clone(), r2.id.clone()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "update_penalty",
        true,
    );
    store.delete_requirement(&r2.id).await.unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "delete_requirement",
        true,
    );
    store.delete_penalty(&p.id).await.unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "delete_penalty",
        true,
    );
    store
        .apply_template(crate::DesiredTemplate {
            template: local_template("Applied", true),
            requirements: vec![],
            penalties: vec![],
        })
        .await
        .unwrap();
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "apply_template",
        true,
    );

    // Reads, refused changes and events leave it alone.
    store.get_template(&t.id).await.unwrap();
    store
        .list_templates(&TemplateFilter::default(), Page::default())
        .await
        .unwrap();
    store.active_config().await.unwrap();
    let refused = store
        .add_penalty(&t.id, failed_course_penalty(&["req_missing"]))
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound { .. })));
    let index = crate::IndexCache::new();
    send(
        &store,
        &index,
        vec![passing("v-e1", "jdoe", DEMO_COURSE, true)],
    )
    .await;
    check(
        &mut last,
        store.config_version().await.unwrap(),
        "reads, a refused change and events",
        false,
    );
    let (version, _) = store.active_config().await.unwrap();
    assert_eq!(version, last, "active_config reports the current version");
}
