//! The planner's readings on small hand-made sources (the full sample is in tests/sample.rs).

use super::*;
use crate::source::{
    CredlyBadge, Fulfilment, Organization, Penalty, Progress, Requirement, Rule, SourceData,
    Template,
};

fn at() -> DateTime<Utc> {
    "2026-08-20T10:00:00Z".parse().unwrap()
}

fn rule(id: i64, owner: i64, path: &str, op: &str, value: &str) -> Rule {
    Rule {
        id,
        owner_id: owner,
        path: path.into(),
        operator: op.into(),
        value: value.into(),
    }
}

/// One organization, one active Credly template with requirements in the given blends (each
/// with one `is_passing eq true` rule), one learner with the given fulfilled requirements.
fn source(blends: &[Option<&str>], fulfilled: &[i64]) -> SourceData {
    let requirements: Vec<Requirement> = blends
        .iter()
        .enumerate()
        .map(|(i, b)| Requirement {
            id: i as i64 + 1,
            template_id: 7,
            event_type: "org.openedx.learning.course.passing.status.updated.v1".into(),
            description: None,
            blend: b.map(str::to_string),
        })
        .collect();
    SourceData {
        organizations: vec![Organization {
            id: 1,
            uuid: "466fc89d-4a3b-55b8-87c8-e0c18a4fbb74".into(),
            name: None,
            api_key: "k".into(),
            modified: at(),
        }],
        templates: vec![Template {
            id: 7,
            uuid: "3db85e45-361f-5fa4-868a-4195a7b25164".into(),
            name: "T".into(),
            description: None,
            icon: None,
            origin: Some("credly".into()),
            state: Some("active".into()),
            is_active: true,
        }],
        credly_templates: vec![(7, 1)],
        rules: requirements
            .iter()
            .map(|r| rule(r.id, r.id, "is_passing", "eq", "true"))
            .collect(),
        requirements,
        progress: vec![
            Progress {
                id: 1,
                username: "ana".into(),
                template_id: Some(7),
            },
            // A second progress record of the same learner and template (no unique constraint).
            Progress {
                id: 2,
                username: "ana".into(),
                template_id: Some(7),
            },
        ],
        fulfilments: fulfilled
            .iter()
            .enumerate()
            .map(|(i, r)| Fulfilment {
                progress_id: 1 + (i as i64 % 2),
                requirement_id: Some(*r),
            })
            .collect(),
        ..Default::default()
    }
}

fn opts() -> PlanOptions {
    PlanOptions {
        now: at(),
        ..Default::default()
    }
}

#[test]
fn letters_are_kept_and_other_blends_take_free_letters() {
    let g = |s: &str| Group::parse(s).unwrap();
    let (map, renamed) =
        group_letters(&[Some("B".into()), None, Some("x".into()), Some("B".into())]).unwrap();
    assert_eq!(map[&Some("B".to_string())], g("B"));
    assert_eq!(map[&None], g("A"));
    assert_eq!(map[&Some("x".to_string())], g("C"));
    assert_eq!(renamed, vec![(None, g("A")), (Some("x".into()), g("C"))]);
    let many: Vec<Option<String>> = (0..27).map(|i| Some(format!("g{i}"))).collect();
    assert_eq!(group_letters(&many).unwrap_err(), 27);
}

#[test]
fn ungrouped_requirements_are_one_group_as_credentials_computes_progress() {
    // Two requirements without a group: either completes the template.
    let p = plan(&source(&[None, None], &[2]), &opts()).unwrap();
    assert_eq!(p.report.complete_without_issued_badge.len(), 1);
    assert!(p
        .report
        .notes
        .iter()
        .any(|n| n.contains("without a group form group A")));
    // Groups A and B: both needed.
    let p = plan(&source(&[Some("A"), Some("B")], &[1]), &opts()).unwrap();
    assert!(p.report.complete_without_issued_badge.is_empty());
    let p = plan(&source(&[Some("A"), Some("B")], &[1, 2]), &opts()).unwrap();
    assert_eq!(
        p.report.complete_without_issued_badge[0].why,
        "complete, but no badge was ever recorded (D1/D4)"
    );
}

#[test]
fn duplicate_progress_records_are_one_and_orphans_are_counted() {
    let mut src = source(&[Some("A"), Some("B")], &[1, 1, 2]);
    src.fulfilments.push(Fulfilment {
        progress_id: 1,
        requirement_id: None,
    });
    src.progress.push(Progress {
        id: 3,
        username: "bo".into(),
        template_id: None,
    });
    let p = plan(&src, &opts()).unwrap();
    assert_eq!(p.report.counts.fulfilments, 2);
    assert_eq!(p.report.skipped.duplicate_fulfilments, 1);
    assert_eq!(p.report.skipped.fulfilments_of_deleted_requirements, 1);
    assert_eq!(p.report.skipped.progress_records_without_template, 1);
    assert_eq!(p.parts[0].learners.len(), 1);
    assert_eq!(
        p.parts[0].organization.name,
        "Credly organization 466fc89d-4a3b-55b8-87c8-e0c18a4fbb74"
    );
    assert_eq!(
        p.parts[0].organization.key_expires_at,
        at() + Duration::days(180)
    );
}

#[test]
fn operators_other_than_eq_and_ne_are_refused_and_every_problem_is_listed() {
    let mut src = source(&[Some("A")], &[]);
    src.rules[0].operator = "contains".into();
    src.rules.push(rule(9, 1, "bad path!", "eq", "x"));
    src.organizations[0].api_key = String::new();
    let problems = plan(&src, &opts()).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(matches!(&problems[0], Problem::MissingKey { .. }));
    assert!(problems
        .iter()
        .any(|p| matches!(p, Problem::UnknownOperator { operator, .. } if operator == "contains")));
    assert!(problems
        .iter()
        .any(|p| matches!(p, Problem::BadRule { path, .. } if path == "bad path!")));
    // A key given on the command line stands in for the missing one.
    let mut o = opts();
    src.rules.truncate(1);
    src.rules[0].operator = "ne".into();
    o.org_keys
        .insert(src.organizations[0].uuid.clone(), "given".into());
    let p = plan(&src, &o).unwrap();
    assert_eq!(p.parts[0].organization.api_key, "given");
    assert_eq!(
        p.parts[0].templates[0].requirements[0].rules[0]
            .operator
            .as_str(),
        "!="
    );
}

#[test]
fn penalties_keep_their_template_and_rule_less_ones_are_skipped() {
    let mut src = source(&[Some("A"), Some("B")], &[]);
    src.templates.push(Template {
        id: 8,
        uuid: "9d840197-f47d-511f-91e3-2ff326183aa8".into(),
        ..src.templates[0].clone()
    });
    src.credly_templates.push((8, 1));
    src.requirements.push(Requirement {
        id: 3,
        template_id: 8,
        ..src.requirements[0].clone()
    });
    src.penalties = vec![
        Penalty {
            id: 1,
            template_id: 7,
            event_type: "e".into(),
        },
        Penalty {
            id: 2,
            template_id: 7,
            event_type: "e".into(),
        },
    ];
    src.penalty_rules = vec![rule(1, 1, "is_passing", "eq", "false")];
    src.penalty_links = vec![(1, 1), (1, 2), (2, 1)];
    let p = plan(&src, &opts()).unwrap();
    let t = p.parts[0]
        .templates
        .iter()
        .find(|t| t.template.id.starts_with("3db8"))
        .unwrap();
    assert_eq!(t.penalties.len(), 1, "the rule-less penalty is skipped");
    assert_eq!(t.penalties[0].requirement_ids.len(), 2);
    assert_eq!(p.report.skipped.penalties_without_rules, 1);
    // Resetting another template's requirement is refused.
    src.penalty_links.push((1, 3));
    let problems = plan(&src, &opts()).unwrap_err();
    assert!(
        matches!(
            &problems[0],
            Problem::ForeignPenaltyRequirement { requirement: 3, .. }
        ),
        "{problems:?}"
    );
}

#[test]
fn badges_become_awards_with_their_credly_id_and_state() {
    let mut src = source(&[Some("A")], &[1]);
    let badge = |id: i64, status: &str, state: &str, ext: Option<&str>| CredlyBadge {
        id,
        uuid: format!("00000000-0000-4000-8000-00000000000{id}"),
        username: format!("l{id}"),
        status: status.into(),
        template_id: 7,
        created: at(),
        modified: at() + Duration::days(1),
        state: state.into(),
        external_uuid: ext.map(str::to_string),
    };
    src.badges = vec![
        badge(
            1,
            "awarded",
            "accepted",
            Some("11111111-1111-4111-8111-111111111111"),
        ),
        badge(
            2,
            "revoked",
            "error",
            Some("22222222-2222-4222-8222-222222222222"),
        ),
        badge(3, "awarded", "error", None),
    ];
    let p = plan(&src, &opts()).unwrap();
    let awards = &p.parts[0].awards;
    assert_eq!(awards.len(), 2);
    assert_eq!(awards[0].state, AwardState::Accepted);
    assert_eq!(
        awards[0].id, "00000000-0000-4000-8000-000000000001",
        "Credentials' award UUID is kept"
    );
    assert_eq!(awards[1].state, AwardState::Revoked);
    assert_eq!(awards[1].revoked_at, Some(at() + Duration::days(1)));
    assert_eq!(p.report.revoked_but_live_on_credly.len(), 1);
    assert_eq!(p.report.skipped.badges_without_credly_id, 1);
    assert_eq!(
        p.report.held_but_incomplete, 1,
        "l1 holds it without progress (D1)"
    );
    src.badges[0].status = "pending".into();
    assert!(matches!(
        &plan(&src, &opts()).unwrap_err()[0],
        Problem::UnknownBadgeStatus { .. }
    ));
}
