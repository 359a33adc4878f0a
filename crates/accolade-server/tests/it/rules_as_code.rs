//! Rules as code: every TOML block of docs/rules-as-code.md applies, re-applying is a no-op,
//! dry runs change nothing, and an applied example behaves as documented.

use accolade_server::service::apply;
use serde_json::json;

use crate::helpers::*;

fn doc_blocks() -> Vec<String> {
    let doc = include_str!("../../../../docs/rules-as-code.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// The uuid the Credly block of the document names.
const DOC_CREDLY_UUID: &str = "7f22890d-0af1-4545-a10b-6ab0de74e395";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_block_applies_idempotently() {
    let blocks = doc_blocks();
    assert_eq!(
        blocks.len(),
        14,
        "format + Credly template + 11 examples + penalty example"
    );
    let app = TestApp::new().await;
    let store = &*app.state.store;
    // The Credly block configures a synced template: here one as a sync would have made it.
    let synced = store
        .create_template(accolade_store::NewTemplate {
            id: Some(DOC_CREDLY_UUID.into()),
            ..accolade_store::testkit::support::credly_template("Synced on Credly", false)
        })
        .await
        .unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let desired = apply::parse(block)
            .unwrap_or_else(|e| panic!("block {i} does not parse: {e:#}\n{block}"));
        let credly = block.contains(DOC_CREDLY_UUID);
        let before = store.config_version().await.unwrap();
        let dry = apply::apply(store, desired, true).await.unwrap();
        let new_or_changed = if credly { dry.changed } else { dry.created };
        assert_eq!(new_or_changed, 1, "block {i}: {:?}", dry.lines);
        assert_eq!(
            store.config_version().await.unwrap(),
            before,
            "a dry run changed the database"
        );
        let report = apply::apply(store, apply::parse(block).unwrap(), false)
            .await
            .unwrap();
        let new_or_changed = if credly {
            report.changed
        } else {
            report.created
        };
        assert_eq!(new_or_changed, 1);
        let again = apply::apply(store, apply::parse(block).unwrap(), false)
            .await
            .unwrap();
        assert_eq!(
            (again.created, again.changed, again.unchanged),
            (0, 0, 1),
            "block {i} re-applied: {:?}",
            again.lines
        );
    }
    let t = store.get_template(DOC_CREDLY_UUID).await.unwrap().template;
    assert_eq!((t.name, t.is_active), (synced.name, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_file_keeps_progress_and_reports_the_diff() {
    let app = TestApp::new().await;
    let store = &*app.state.store;
    let v1 = r#"
[[template]]
name = "Two courses"
active = true
[[template.requirement]]
key = "demo"
event_type = "org.openedx.learning.course.passing.status.updated.v1"
rules = [ { path = "is_passing", op = "=", value = "true" }, { path = "course.course_key", op = "=", value = "course-v1:OpenedX+DemoX+Demo_Course" } ]
[[template.requirement]]
key = "py"
event_type = "org.openedx.learning.course.passing.status.updated.v1"
rules = [ { path = "is_passing", op = "=", value = "true" }, { path = "course.course_key", op = "=", value = "course-v1:UniX+PY101+2026_T1" } ]
"#;
    apply::apply(store, apply::parse(v1).unwrap(), false)
        .await
        .unwrap();
    app.send(passing("p1", "ann", DEMO, true)).await;
    let got = app.awards("ann").await;
    assert!(
        got.is_empty(),
        "groups A and B: one course is not enough: {got:?} {:?}",
        store.active_config().await.unwrap()
    );
    // Version 2 changes the second course; the `demo` requirement keeps its id and ann's progress.
    let v2 = v1.replace(
        "course-v1:UniX+PY101+2026_T1",
        "course-v1:UniX+PY102+2026_T1",
    );
    let report = apply::apply(store, apply::parse(&v2).unwrap(), false)
        .await
        .unwrap();
    assert_eq!(report.changed, 1);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("requirement `py` changed")),
        "{:?}",
        report.lines
    );
    app.send(passing("p2", "ann", "course-v1:UniX+PY102+2026_T1", true))
        .await;
    assert_eq!(
        app.awards("ann").await.len(),
        1,
        "progress on `demo` survived the re-apply"
    );
    // Dropping a requirement from the file removes it.
    let v3 = v2
        .split("[[template.requirement]]\nkey = \"py\"")
        .next()
        .unwrap()
        .to_string();
    let report = apply::apply(store, apply::parse(&v3).unwrap(), true)
        .await
        .unwrap();
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("- requirement `py`")),
        "{:?}",
        report.lines
    );
    let _ = json!({});
}

const CREDLY_ORG: &str = "c0ffee00-1d2e-4f3a-8b4c-5d6e7f8a9b0c";
const CREDLY_KEY: &str = "apply-sandbox-key-0001";
const CREDLY_TEMPLATE: &str = "00000000-0000-4000-8000-00000000a991";
const NOT_SYNCED: &str = "00000000-0000-4000-8000-00000000dead";

fn credly_seed() -> accolade_credly_sandbox::Seed {
    use accolade_credly_sandbox::{Seed, SeedOrganization, SeedTemplate, SeedToken};
    Seed {
        organizations: vec![SeedOrganization {
            id: CREDLY_ORG.into(),
            name: "Apply Org".into(),
            tokens: vec![SeedToken::new(CREDLY_KEY)],
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: vec![SeedTemplate {
            id: Some(CREDLY_TEMPLATE.into()),
            organization_id: CREDLY_ORG.into(),
            name: "Cloud Basics".into(),
            state: "active".into(),
            description: "Named and described on Credly".into(),
            image_url: Some("https://images.example/cloud.png".into()),
            ..Default::default()
        }],
        generate: None,
    }
}

/// A rules file holding the synced Credly template by uuid (plus `extra` lines on it), with
/// requirements and `active`.
fn credly_rules(extra: &str) -> String {
    format!(
        "[[template]]\nuuid = \"{CREDLY_TEMPLATE}\"\norigin = \"credly\"\nactive = true\n{extra}\
         [[template.requirement]]\nkey = \"demo\"\nevent_type = \"{PASSING}\"\n\
         rules = [ {{ path = \"is_passing\", op = \"=\", value = \"true\" }}, \
         {{ path = \"course.course_key\", op = \"=\", value = \"{DEMO}\" }} ]\n"
    )
}

async fn credly_template(server: &crate::process::Served) -> serde_json::Value {
    let (s, t) = server
        .api("GET", &format!("/templates/{CREDLY_TEMPLATE}"), None)
        .await;
    assert_eq!(s, 200, "{t}");
    t
}

/// The operator syncs a Credly organization with the CLI, then configures one of its templates
/// with `accolade apply -f` from a file that gives only its uuid, requirements and `active`:
/// it applies, and the template keeps Credly's name, description and image. A different name
/// in the file is reported and not applied; a local template without a name is refused by its
/// position; an unsynced Credly uuid stops the run before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_configures_a_synced_credly_template_by_uuid_and_keeps_its_name() {
    use crate::process::{eventually, Operator};
    let sb = accolade_credly_sandbox::Sandbox::start(credly_seed())
        .await
        .unwrap();
    let work = Operator::new("apply-credly");
    let credly_env = [
        ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.as_str()),
        ("ACCOLADE_CREDLY_API_KEY", CREDLY_KEY),
    ];
    work.ok_env(&["credly", "add-org", "--uuid", CREDLY_ORG], &credly_env);
    work.ok_env(&["credly", "sync"], &credly_env);

    let rules = work.write_file("rules.toml", &credly_rules(""));
    let rules = rules.to_str().unwrap();
    let out = work.ok_env(&["apply", "-f", rules], &[]);
    assert!(
        out.contains("~ template `Cloud Basics`") && out.contains("0 created, 1 changed"),
        "{out}"
    );
    assert!(!out.contains('!'), "nothing to report: {out}");

    let token = work.token();
    let server = work
        .serve_env(
            &[],
            &[
                ("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url),
                ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0"),
                ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100"),
            ],
        )
        .await
        .with_token(&token);
    let t = credly_template(&server).await;
    assert_eq!(t["name"], "Cloud Basics", "{t}");
    assert_eq!(t["description"], "Named and described on Credly");
    assert_eq!(t["image_url"], "https://images.example/cloud.png");
    assert_eq!(
        (t["origin"].as_str(), t["is_active"].as_bool()),
        (Some("credly"), Some(true))
    );
    assert_eq!(t["organization_id"], CREDLY_ORG);
    assert_eq!(t["requirements"][0]["key"], "demo", "{t}");
    // The rule works: a passing learner is awarded and the badge issued on Credly.
    let (s, r) = server
        .api("POST", "/events", Some(passing("ap-1", "ada", DEMO, true)))
        .await;
    assert_eq!(s, 202, "{r}");
    let sandbox = &sb.sandbox;
    eventually(
        std::time::Duration::from_secs(10),
        "the badge is issued on Credly",
        || async move { sandbox.badges(CREDLY_ORG).first().cloned() },
    )
    .await;

    // Re-applied: unchanged. With a name of its own: reported, not applied.
    let out = work.ok_env(&["apply", "-f", rules], &[]);
    assert!(out.contains("0 created, 0 changed, 1 unchanged"), "{out}");
    std::fs::write(
        rules,
        credly_rules("name = \"Renamed in the file\"\ndescription = \"Ours\"\n"),
    )
    .unwrap();
    let out = work.ok_env(&["apply", "-f", rules], &[]);
    assert!(
        out.contains(&format!(
            "! template `Cloud Basics` ({CREDLY_TEMPLATE}): the file's name `Renamed in the file` is not applied"
        )) && out.contains("the file's description is not applied"),
        "{out}"
    );
    assert!(
        out.contains("1 unchanged; 2 Credly field(s) in the file not applied"),
        "{out}"
    );
    let t = credly_template(&server).await;
    assert_eq!(
        (t["name"].as_str(), t["description"].as_str()),
        (Some("Cloud Basics"), Some("Named and described on Credly"))
    );

    // A local template without a name is refused, named by its position.
    let no_name = format!("{}[[template]]\nactive = true\n", credly_rules(""));
    std::fs::write(rules, no_name).unwrap();
    let out = work.run_env(&["apply", "-f", rules], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("template #2: a local template needs a `name`"),
        "{err}"
    );

    // A Credly uuid that was never synced stops the run before the template ahead of it is
    // written.
    let unsynced = format!(
        "[[template]]\nname = \"Written first\"\n\
         [[template]]\nuuid = \"{NOT_SYNCED}\"\norigin = \"credly\"\n"
    );
    std::fs::write(rules, unsynced).unwrap();
    let out = work.run_env(&["apply", "-f", rules], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "template #2 (uuid `{NOT_SYNCED}`): there is no Credly template with this uuid"
        )),
        "{err}"
    );
    let (_, listed) = server.api("GET", "/templates?q=Written", None).await;
    assert_eq!(listed["data"], json!([]), "nothing was written");
}
