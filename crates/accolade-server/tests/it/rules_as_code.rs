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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_block_applies_idempotently() {
    let blocks = doc_blocks();
    assert_eq!(blocks.len(), 13, "format + 11 examples + penalty example");
    let app = TestApp::new().await;
    let store = &*app.state.store;
    for (i, block) in blocks.iter().enumerate() {
        let desired = apply::parse(block)
            .unwrap_or_else(|e| panic!("block {i} does not parse: {e:#}\n{block}"));
        let before = store.config_version().await.unwrap();
        let dry = apply::apply(store, desired, true).await.unwrap();
        assert_eq!(dry.created, 1, "block {i}: {:?}", dry.lines);
        assert_eq!(
            store.config_version().await.unwrap(),
            before,
            "a dry run changed the database"
        );
        let report = apply::apply(store, apply::parse(block).unwrap(), false)
            .await
            .unwrap();
        assert_eq!(report.created, 1);
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
