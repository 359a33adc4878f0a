//! The admin API: authentication, CRUD, error codes for bad input (and that bad input changes
//! nothing), awards, jobs and the OpenAPI document.

use axum::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_needs_a_token() {
    let app = TestApp::new().await;
    for (method, uri) in [
        ("GET", "/api/v1/templates"),
        ("POST", "/api/v1/templates"),
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/awards"),
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/learners"),
        ("GET", "/api/v1/events/rejected"),
    ] {
        let (s, body) = app.raw(method, uri, Some(b"{}".to_vec()), false).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(body["code"], "unauthorized");
    }
    let mut bad = TestApp::new().await;
    bad.token = "acl_0000".into();
    assert_eq!(
        bad.get("/api/v1/templates").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Health, metrics and the OpenAPI document are public.
    assert_eq!(
        app.raw("GET", "/health/live", None, false).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.raw("GET", "/health/ready", None, false).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.raw("GET", "/api/v1/openapi.json", None, false).await.0,
        StatusCode::OK
    );
}

/// (method, uri, body, expected status, expected code)
type BadCase = (
    &'static str,
    String,
    Option<Vec<u8>>,
    StatusCode,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_coded_4xx_and_changes_nothing() {
    let app = TestApp::new().await;
    let t = app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    let version = app.state.store.config_version().await.unwrap();
    let cases: Vec<BadCase> = vec![
        ("POST", "/api/v1/templates".into(), Some(b"{\"name\":".to_vec()), StatusCode::BAD_REQUEST, "malformed_json"),
        ("POST", "/api/v1/templates".into(), Some(br#"{"name": 5}"#.to_vec()), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/api/v1/templates".into(), Some(br#"{"name": "x", "surprise": 1}"#.to_vec()), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/api/v1/templates".into(), Some(br#"{"name": ""}"#.to_vec()), StatusCode::BAD_REQUEST, "invalid_field"),
        ("POST", "/api/v1/templates".into(), Some(br#"{"name": "x", "origin": "credly"}"#.to_vec()), StatusCode::BAD_REQUEST, "origin_not_creatable"),
        ("POST", "/api/v1/templates".into(), Some(vec![0xff, 0xfe]), StatusCode::BAD_REQUEST, "malformed_json"),
        ("GET", "/api/v1/templates/00000000-0000-0000-0000-000000000000".into(), None, StatusCode::NOT_FOUND, "template_not_found"),
        ("POST", "/api/v1/templates/nope/activate".into(), None, StatusCode::NOT_FOUND, "template_not_found"),
        (
            "POST",
            "/api/v1/templates/nope/requirements".into(),
            Some(json!({"event_type": PASSING}).to_string().into_bytes()),
            StatusCode::NOT_FOUND,
            "template_not_found",
        ),
        ("GET", "/api/v1/requirements/req_nope".into(), None, StatusCode::NOT_FOUND, "requirement_not_found"),
        ("PATCH", "/api/v1/requirements/req_nope".into(), Some(b"{}".to_vec()), StatusCode::NOT_FOUND, "requirement_not_found"),
        ("DELETE", "/api/v1/penalties/pen_nope".into(), None, StatusCode::NOT_FOUND, "penalty_not_found"),
        (
            "POST",
            format!("/api/v1/templates/{t}/requirements"),
            Some(json!({"event_type": PASSING, "group": "AA"}).to_string().into_bytes()),
            StatusCode::BAD_REQUEST,
            "invalid_group",
        ),
        (
            "POST",
            format!("/api/v1/templates/{t}/requirements"),
            Some(json!({"event_type": PASSING, "group": "a"}).to_string().into_bytes()),
            StatusCode::BAD_REQUEST,
            "invalid_group",
        ),
        (
            "POST",
            format!("/api/v1/templates/{t}/requirements"),
            Some(json!({"event_type": PASSING, "rules": [{"path": "is_passing", "op": "~=", "value": "x"}]}).to_string().into_bytes()),
            StatusCode::BAD_REQUEST,
            "unknown_operator",
        ),
        (
            "POST",
            format!("/api/v1/templates/{t}/requirements"),
            Some(json!({"event_type": "org.example.not.configured.v1"}).to_string().into_bytes()),
            StatusCode::BAD_REQUEST,
            "event_type_not_configured",
        ),
        (
            "POST",
            format!("/api/v1/templates/{t}/penalties"),
            Some(json!({"event_type": PASSING, "requirements": ["req_nope"]}).to_string().into_bytes()),
            StatusCode::NOT_FOUND,
            "requirement_not_found",
        ),
        (
            "POST",
            format!("/api/v1/templates/{t}/penalties"),
            Some(json!({"event_type": PASSING, "requirements": []}).to_string().into_bytes()),
            StatusCode::BAD_REQUEST,
            "no_requirements",
        ),
        ("GET", "/api/v1/awards?state=shiny".into(), None, StatusCode::BAD_REQUEST, "invalid_state"),
        ("GET", "/api/v1/awards?limit=many".into(), None, StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/api/v1/awards/nope".into(), None, StatusCode::NOT_FOUND, "award_not_found"),
        ("POST", "/api/v1/awards/nope/revoke".into(), Some(br#"{"reason":"x"}"#.to_vec()), StatusCode::NOT_FOUND, "award_not_found"),
        ("POST", "/api/v1/jobs/nope/retry".into(), None, StatusCode::NOT_FOUND, "job_not_found"),
        ("GET", "/api/v1/nowhere".into(), None, StatusCode::NOT_FOUND, "route_not_found"),
        ("POST", "/api/v1/events".into(), Some(b"42".to_vec()), StatusCode::BAD_REQUEST, "invalid_body"),
        ("POST", "/api/v1/events".into(), Some(b"[{]".to_vec()), StatusCode::BAD_REQUEST, "malformed_json"),
    ];
    for (method, uri, body, status, code) in cases {
        let (s, b) = app.raw(method, &uri, body, true).await;
        assert_eq!(
            (s, b["code"].as_str().unwrap_or("")),
            (status, code),
            "{method} {uri}: {b}"
        );
        assert!(
            b["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {uri} has a detail"
        );
    }
    assert_eq!(
        app.state.store.config_version().await.unwrap(),
        version,
        "bad input changed the configuration"
    );
    let (_, list) = app.get("/api/v1/templates").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (_, detail) = app.get(&format!("/api/v1/templates/{t}")).await;
    assert_eq!(detail["requirements"].as_array().unwrap().len(), 1);
    assert_eq!(detail["penalties"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused_with_413() {
    let app = TestApp::new().await;
    let big = vec![b' '; 10 * 1024 * 1024];
    let (s, b) = app.raw("POST", "/api/v1/events", Some(big), true).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(b["code"], "body_too_large");
    let (_, events) = app.get("/api/v1/events").await;
    assert!(events["data"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_requirements_rules_and_penalties_round_trip() {
    let app = TestApp::new().await;
    let (s, t) = app
        .post(
            "/api/v1/templates",
            json!({"name": "Two courses", "description": "<b>x</b>"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        t["is_active"], false,
        "templates start inactive unless asked"
    );
    let id = t["id"].as_str().unwrap();
    let uri = format!("/api/v1/templates/{id}/requirements");
    let (_, a) = app
        .post(
            &uri,
            json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
        )
        .await;
    let (_, b) = app
        .post(
            &uri,
            json!({"event_type": PASSING, "description": "second"}),
        )
        .await;
    assert_eq!(a["group"], "A", "first free letter");
    assert_eq!(b["group"], "B", "next free letter");
    let rid = b["id"].as_str().unwrap();
    let (s, rules) = app
        .post(
            &format!("/api/v1/requirements/{rid}/rules"),
            json!({"path": "grade", "op": ">=", "value": "0.8"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let (s, rules) = app
        .request(
            "DELETE",
            &format!("/api/v1/requirements/{rid}/rules/0"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(rules.as_array().unwrap().is_empty());
    let (s, _) = app
        .request(
            "DELETE",
            &format!("/api/v1/requirements/{rid}/rules/7"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = app
        .post(&format!("/api/v1/templates/{id}/penalties"), json!({"event_type": PASSING, "requirements": [a["id"]], "rules": [{"path": "is_passing", "op": "=", "value": "false"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (_, detail) = app.get(&format!("/api/v1/templates/{id}")).await;
    assert_eq!(detail["requirements"].as_array().unwrap().len(), 2);
    assert_eq!(detail["penalties"][0]["requirements"][0], a["id"]);
    let (_, listed) = app.get("/api/v1/templates?active=false&q=two").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let (_, listed) = app.get("/api/v1/templates?active=true").await;
    assert!(listed["data"].as_array().unwrap().is_empty());
    let (s, _) = app
        .request(
            "DELETE",
            &format!("/api/v1/penalties/{}", p["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awards_list_has_the_documented_shape_and_manual_changes_work() {
    let app = TestApp::new().await;
    let t = app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    app.send(passing("e1", "jdoe", DEMO, true)).await;
    let awards = app.awards("jdoe").await;
    assert_eq!(awards.len(), 1);
    let a = &awards[0];
    for key in [
        "template",
        "learner",
        "state",
        "earned_at",
        "awarded_at",
        "revoked_at",
    ] {
        assert!(a.get(key).is_some(), "award has {key}: {a}");
    }
    assert_eq!(a["template"], t.as_str());
    assert_eq!(a["state"], "awarded");
    assert_eq!(
        a["earned_at"], "2026-08-20T14:03:27.512345Z",
        "earned_at is the completing event's time"
    );
    // Manual revoke with a reason, then refusing a second revoke.
    let aid = a["id"].as_str().unwrap();
    let (s, r) = app
        .post(
            &format!("/api/v1/awards/{aid}/revoke"),
            json!({"reason": "cheating"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "revoked");
    assert_eq!(r["revoke_reason"], "cheating");
    let (s, r) = app
        .post(
            &format!("/api/v1/awards/{aid}/revoke"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str().unwrap()),
        (StatusCode::CONFLICT, "already_revoked")
    );
    let (s, r) = app
        .post(
            &format!("/api/v1/awards/{aid}/revoke"),
            json!({"reason": "  "}),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str().unwrap()),
        (StatusCode::BAD_REQUEST, "invalid_reason")
    );
    // Manual award: a new episode; a second one is a conflict.
    let (s, m) = app
        .post(
            "/api/v1/awards",
            json!({"template": t, "learner": "jdoe", "reason": "appeal granted"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["episode"], 2);
    let (s, m) = app
        .post(
            "/api/v1/awards",
            json!({"template": t, "learner": "jdoe", "reason": "again"}),
        )
        .await;
    assert_eq!(
        (s, m["code"].as_str().unwrap()),
        (StatusCode::CONFLICT, "already_awarded")
    );
    let (s, m) = app
        .post(
            "/api/v1/awards",
            json!({"template": "nope", "learner": "jdoe", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (s, m["code"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "template_not_found")
    );
    assert_eq!(
        app.awards("jdoe").await.len(),
        2,
        "history keeps both episodes"
    );
    // Every award and revoke left an outbox job, done as it was written: for a local template
    // Accolade is the issuer, so nothing is left for a worker.
    let (_, jobs) = app.get("/api/v1/jobs?status=succeeded").await;
    assert_eq!(jobs["data"].as_array().unwrap().len(), 3);
    let (_, jobs) = app.get("/api/v1/jobs?status=pending").await;
    assert_eq!(jobs["data"].as_array().unwrap().len(), 0);
    let current = app
        .awards("jdoe")
        .await
        .into_iter()
        .find(|a| a["state"] == "awarded")
        .unwrap();
    assert!(
        current["issued_at"].is_string() && current["issued_at"] == current["awarded_at"],
        "issued as it was awarded: {current}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_which_event_fulfilled_which_requirement() {
    let app = TestApp::new().await;
    app.template(
        "Both",
        &[
            ("A", rules_passed(DEMO)),
            ("B", rules_passed("course-v1:X+Y+Z")),
        ],
    )
    .await;
    app.send(passing("ev-a", "kim", DEMO, true)).await;
    let (s, p) = app.get("/api/v1/learners/kim/progress").await;
    assert_eq!(s, StatusCode::OK);
    let t = &p["templates"][0];
    assert_eq!(t["ratio"], 0.5);
    assert_eq!(t["complete"], false);
    let fulfilled: Vec<_> = t["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fulfilled"] == true)
        .collect();
    assert_eq!(fulfilled.len(), 1);
    assert_eq!(fulfilled[0]["event_id"], "ev-a");
    let (s, p2) = app.get("/api/v1/progress?learner=kim").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p2, p);
    assert_eq!(
        app.get("/api/v1/progress?learner=nobody").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/progress").await.1["code"], "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_the_resources() {
    let app = TestApp::new().await;
    let (_, doc) = app.raw("GET", "/api/v1/openapi.json", None, false).await;
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/events",
        "/templates",
        "/templates/{id}/activate",
        "/templates/{id}/requirements",
        "/requirements/{id}/rules",
        "/templates/{id}/penalties",
        "/awards",
        "/awards/{id}/revoke",
        "/jobs/{id}/retry",
        "/learners/{username}/progress",
        "/opencredit/apps",
        "/opencredit/apps/{app}/tier",
    ] {
        assert!(paths.contains_key(p), "openapi documents {p}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// Issue 16 row 16: a parameter is declared `in: path` only when its name is a `{placeholder}`
/// of the path (query strings used to be declared as path parameters), every placeholder is
/// declared, and every operation behind the bearer token documents its 401 with the error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_declares_parameters_where_they_are_and_every_401() {
    let app = TestApp::new().await;
    let (_, doc) = app.raw("GET", "/api/v1/openapi.json", None, false).await;
    let error_body = "#/components/schemas/ErrorBody";
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let at = format!("{} {path}", method.to_uppercase());
            let mut declared = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let placeholder = format!("{{{name}}}");
                match p["in"].as_str() {
                    Some("path") if !path.contains(&placeholder) => {
                        problems.push(format!("{at}: `{name}` is declared in: path"))
                    }
                    Some("path") => declared.push(placeholder),
                    Some(_) if path.contains(&placeholder) => {
                        problems.push(format!("{at}: `{name}` is a path parameter"))
                    }
                    _ => {}
                }
            }
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                if !declared.iter().any(|d| d == seg) {
                    problems.push(format!("{at}: {seg} is not declared"));
                }
            }
            let secured = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if !secured {
                problems.push(format!("{at}: no bearer security"));
                continue;
            }
            let schema = &op["responses"]["401"]["content"]["application/json"]["schema"];
            if schema["$ref"] != error_body {
                problems.push(format!("{at}: no 401 with the error body"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The document is public and the token check is not a route of its own.
    let (s, _) = app.raw("GET", "/api/v1/templates", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// The bounds the OpenAPI document declares are the ones enforced: a page is 1-500 rows at an
/// offset below 2^63 (a larger one used to reach the database as a negative number), names and
/// reasons are measured as sent, and a template's UUID is stored in its hyphenated form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_bounds_are_enforced() {
    let app = TestApp::new().await;
    for uri in [
        "/api/v1/templates?limit=0",
        "/api/v1/awards?limit=501",
        "/api/v1/jobs?offset=9223372036854775808",
        "/api/v1/events?offset=18446744073709551615",
        "/api/v1/learners?limit=-1",
    ] {
        let (s, body) = app.get(uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "invalid_query", "{uri}");
    }
    let (s, _) = app
        .get("/api/v1/events?limit=500&offset=9223372036854775807")
        .await;
    assert_eq!(s, StatusCode::OK);

    let long = format!(" {}", "x".repeat(255));
    let (s, body) = app.post("/api/v1/templates", json!({"name": long})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_field");
    let (s, body) = app
        .post("/api/v1/templates", json!({"name": "Demo\n"}))
        .await;
    assert_eq!(body["code"], "invalid_field", "{s} {body}");

    let (s, t) = app
        .post(
            "/api/v1/templates",
            json!({"name": "Braced", "uuid": "{0192F1D2-3C4D-7E5F-8A9B-0C1D2E3F4A5B}"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["id"], "0192f1d2-3c4d-7e5f-8a9b-0c1d2e3f4a5b");

    let reason = format!("{} ", "r".repeat(1000));
    let (s, body) = app
        .post(
            "/api/v1/awards",
            json!({"template": t["id"], "learner": "ann", "reason": reason}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_events_awards_and_rejections() {
    let app = TestApp::new().await;
    accolade_server::metrics::handle();
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    app.send(json!([passing("m1", "ann", DEMO, true), {"id": "m2", "event_type": PASSING, "time": "2026-01-01T00:00:00+00:00", "data": {"course_passing_status": {"is_passing": true}}}])).await;
    let (s, text) = app.raw("GET", "/metrics", None, false).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    for name in [
        "accolade_events_received_total",
        "accolade_events_accepted_total",
        "accolade_events_rejected_total{code=\"missing_user_data\"}",
        "accolade_awards_total",
        "accolade_event_processing_seconds_bucket",
        "accolade_outbox_depth",
    ] {
        assert!(text.contains(name), "/metrics has {name}");
    }
}
