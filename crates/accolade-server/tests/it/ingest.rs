//! Event ingest over HTTP: single and batch, duplicates, rejections with reasons, durability
//! before the answer.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_event_and_batches_are_accepted_and_deduplicated() {
    let app = TestApp::new().await;
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    let r = app.send(passing("s1", "ann", DEMO, true)).await;
    assert_eq!(r, json!({"accepted": 1, "duplicates": 0, "rejected": []}));
    let r = app
        .send(json!([
            passing("s1", "ann", DEMO, true),
            passing("s2", "bob", DEMO, true),
            passing("s2", "bob", DEMO, true)
        ]))
        .await;
    assert_eq!(r["accepted"], 1);
    assert_eq!(
        r["duplicates"], 2,
        "a replay and an in-batch repeat are both duplicates"
    );
    assert_eq!(app.awards("ann").await.len(), 1);
    assert_eq!(app.awards("bob").await.len(), 1);
    let (_, events) = app.get("/api/v1/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2);
    let r = app.send(json!([])).await;
    assert_eq!(r["accepted"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_user_data_are_rejected_with_a_reason_and_recorded() {
    let app = TestApp::new().await;
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    let mut no_user = passing("r1", "ann", DEMO, true);
    no_user["data"]["course_passing_status"]
        .as_object_mut()
        .unwrap()
        .remove("user");
    let mut bad_time = passing("r2", "ann", DEMO, true);
    bad_time["time"] = json!("tuesday");
    let r = app
        .send(json!([
            no_user,
            passing("ok", "ann", DEMO, true),
            bad_time,
            "not an object"
        ]))
        .await;
    assert_eq!(r["accepted"], 1);
    let rejected = r["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 3);
    assert_eq!(rejected[0]["index"], 0);
    assert_eq!(rejected[0]["code"], "missing_user_data");
    assert_eq!(rejected[1]["index"], 2);
    assert_eq!(rejected[1]["code"], "invalid_field");
    assert_eq!(rejected[2]["index"], 3);
    let (s, list) = app.get("/api/v1/events/rejected").await;
    assert_eq!(s, StatusCode::OK);
    let list = list["data"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list
        .iter()
        .any(|e| e["event_id"] == "r1" && e["code"] == "missing_user_data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_events_in_one_request_are_refused() {
    let mut config = accolade_server::config::Config::defaults();
    config.ingest.max_events_per_request = 3;
    let app = TestApp::with_config(config).await;
    let events: Vec<_> = (0..4)
        .map(|i| passing(&format!("x{i}"), "ann", DEMO, true))
        .collect();
    let (s, b) = app.post("/api/v1/events", json!(events)).await;
    assert_eq!(
        (s, b["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "too_many_events")
    );
    let (_, list) = app.get("/api/v1/events").await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_event_requests_share_commits_and_all_land() {
    let app = std::sync::Arc::new(TestApp::new().await);
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    let mut handles = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            app.send(passing(&format!("c{i}"), &format!("u{i}"), DEMO, true))
                .await
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap()["accepted"], 1);
    }
    let (_, awards) = app.get("/api/v1/awards?limit=500").await;
    assert_eq!(awards["data"].as_array().unwrap().len(), 200);
}
