//! Rotating an organization's authorization token through Credly (issue 20).
//!
//! Against wiremock, in process: a rotation failing half-way (500, a timeout, an answer without
//! a token) keeps the old key stored and usable, and the automatic pass tries once; a job
//! refused with a key replaced while it was in flight retries with the new key instead of
//! going dead; a second rotation while one runs is refused. Through the real binary against the
//! Credly sandbox: rotate now over HTTP, with `accolade credly rotate`, from the admin UI, and
//! automatically at start with `ACCOLADE_CREDLY__AUTO_ROTATE_DAYS`; each time the old token is
//! refused by the sandbox, the new one works and badges go on reaching Credly.

use std::time::Duration;

use accolade_credly_sandbox::{
    RunningSandbox, Sandbox, Seed, SeedOrganization, SeedTemplate, SeedToken,
};
use accolade_server::config::Config;
use accolade_server::service::credly::{rotation, worker};
use axum::http::StatusCode;
use base64::Engine;
use chrono::Utc;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::credly_mock::{demo_template, hits, passing};
use crate::helpers::{TestApp, DEMO};
use crate::process::{eventually, Operator, Served};

const ORG: &str = "2b7c9d1e-3f4a-4b5c-8d6e-7f8091a2b3c4";
const OLD: &str = "old-token-aaaa1111";
const NEW: &str = "new-token-bbbb2222";

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{token}:"))
    )
}

fn rotate_path() -> String {
    format!("/v1/organizations/{ORG}/authorization_tokens/rotate")
}

fn badges_path() -> String {
    format!("/v1/organizations/{ORG}/badges")
}

async fn app_for(server: &MockServer, auto_rotate_days: u32) -> TestApp {
    let mut config = Config::defaults();
    config.credly.api_base_url = format!("{}/v1/", server.uri());
    config.credly.rate_limit_per_second = 0;
    config.credly.timeout_secs = 1;
    config.credly.auto_rotate_days = auto_rotate_days;
    config.worker.retry_schedule = vec!["1s".into(); 5];
    TestApp::with_config(config).await
}

/// Adds the organization with the old token, which Credly reports to expire in `days_left`
/// days, then forgets the mocks so each test counts only its own requests.
async fn token_org(server: &MockServer, app: &TestApp, days_left: i64) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .and(header("authorization", basic(OLD).as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "Token Org"}})),
        )
        .mount(server)
        .await;
    let expires = Utc::now() + chrono::Duration::days(days_left);
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/authorization_tokens")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": "t-1", "token": OLD, "created_at": (expires - chrono::Duration::days(180)).to_rfc3339(),
            "expires_at": expires.to_rfc3339()}]})))
        .mount(server)
        .await;
    let (s, org) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": OLD}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    assert_eq!(org["api_key"], "…1111");
    server.reset().await;
}

fn rotated(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {
        "id": "t-2", "token": token, "created_at": Utc::now().to_rfc3339(),
        "expires_at": (Utc::now() + chrono::Duration::days(180)).to_rfc3339()}, "metadata": {}}))
}

async fn org(app: &TestApp) -> Value {
    app.get(&format!("/api/v1/credly/organizations/{ORG}"))
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_failing_half_way_keeps_the_old_key_in_use() {
    // The recorder must be there before anything is counted.
    accolade_server::metrics::handle();
    let server = MockServer::start().await;
    let app = app_for(&server, 30).await;
    token_org(&server, &app, 10).await;
    demo_template(&app, ORG, "Rotation badge").await;
    let failures = [
        (
            "500",
            ResponseTemplate::new(500).set_body_json(json!({"data": {"message": "boom"}})),
        ),
        ("timeout", rotated(NEW).set_delay(Duration::from_secs(3))),
        (
            "no token",
            ResponseTemplate::new(200).set_body_json(json!({"data": {"id": "t-2"}})),
        ),
    ];
    for (what, answer) in failures {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path(rotate_path()))
            .respond_with(answer)
            .mount(&server)
            .await;
        // The automatic pass: the key is due (10 days left, rule 30), one attempt only.
        let pass = rotation::auto_pass(&app.state.credly, &*app.state.store, 30)
            .await
            .unwrap();
        assert_eq!(pass.len(), 1, "{what}");
        assert!(pass[0].1.is_err(), "{what}");
        assert_eq!(
            hits(&server, &rotate_path()).await,
            1,
            "{what}: no second attempt in a pass"
        );
        let o = org(&app).await;
        assert_eq!(o["api_key"], "…1111", "{what}: the old key stays");
        assert_eq!(o["rotation"]["last"]["result"], "failed", "{what}: {o}");
        assert_eq!(o["rotation"]["last"]["trigger"], "auto", "{what}");
        assert_eq!(
            o["rotation"]["in_progress"], false,
            "{what}: the lease is freed"
        );
        assert!(
            o["rotation"]["last"]["detail"]
                .as_str()
                .unwrap()
                .contains("old token stays"),
            "{what}: {o}"
        );

        // By hand: a 502 that says Credly failed; still the old key.
        let (s, r) = app
            .post(
                &format!("/api/v1/credly/organizations/{ORG}/key/rotate"),
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_GATEWAY, "{what}: {r}");
        assert_eq!(org(&app).await["api_key"], "…1111", "{what}");
    }
    // The old key is still the one used, and it works.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", basic(OLD).as_str()))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "b-1", "state": "pending"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    app.send(passing("ev-1", "ada", DEMO, true)).await;
    worker::drain(&app.state).await.unwrap();
    assert_eq!(app.awards("ada").await[0]["external_id"], "b-1");
    let metrics = accolade_server::metrics::handle().render();
    assert!(
        metrics.contains("accolade_credly_key_rotations_total{result=\"failed\",trigger=\"auto\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_refused_with_a_key_replaced_in_flight_retries_with_the_new_key() {
    let server = MockServer::start().await;
    let app = app_for(&server, 0).await;
    token_org(&server, &app, 100).await;
    demo_template(&app, ORG, "Rotation badge").await;
    // The issue call leaves with the old key and is answered (401) after the rotation.
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", basic(OLD).as_str()))
        .respond_with(ResponseTemplate::new(401).set_delay(Duration::from_millis(800)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", basic(NEW).as_str()))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "b-1", "state": "pending"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(rotate_path()))
        .and(header("authorization", basic(OLD).as_str()))
        .respond_with(rotated(NEW).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&server)
        .await;
    app.send(passing("ev-1", "ada", DEMO, true)).await;
    let state = app.state.clone();
    let drain = tokio::spawn(async move { worker::drain(&state).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Rotating: a second rotation meanwhile is refused.
    let rotate = format!("/api/v1/credly/organizations/{ORG}/key/rotate");
    let (first, second) = tokio::join!(app.post(&rotate, json!({})), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        app.post(&rotate, json!({})).await
    });
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["api_key"], "…2222");
    assert_eq!(first.1["rotation"]["last"]["result"], "ok");
    assert_eq!(first.1["rotation"]["last"]["trigger"], "manual");
    assert_eq!(
        (second.0, second.1["code"].as_str()),
        (StatusCode::CONFLICT, Some("credly_rotation_in_progress")),
        "{}",
        second.1
    );
    drain.await.unwrap();
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue").await;
    let job = &jobs["data"][0];
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_i64()),
        (Some("succeeded"), Some(1)),
        "{job}"
    );
    assert_eq!(app.awards("ada").await[0]["external_id"], "b-1");
    assert_eq!(hits(&server, &rotate_path()).await, 1);
}

// ---- through the binary, against the sandbox ------------------------------------------------

const SB_TEMPLATE: &str = "00000000-0000-4000-8000-00000000b07a";

async fn sandbox(token_expires_in: chrono::Duration) -> RunningSandbox {
    Sandbox::start(Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Rotating Org".into(),
            tokens: vec![SeedToken {
                token: OLD.into(),
                expires_at: Some(Utc::now() + token_expires_in),
                created_at: Some(Utc::now() + token_expires_in - chrono::Duration::days(180)),
            }],
            ..SeedOrganization::default()
        }],
        templates: vec![SeedTemplate {
            id: Some(SB_TEMPLATE.into()),
            organization_id: ORG.into(),
            name: "Rotated badge".into(),
            image_url: Some("https://images.example/r.png".into()),
            ..Default::default()
        }],
        generate: None,
    })
    .await
    .unwrap()
}

fn env(sb: &RunningSandbox) -> Vec<(&'static str, String)> {
    vec![
        ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.clone()),
        ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0".into()),
        ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100".into()),
    ]
}

async fn serve(work: &Operator, sb: &RunningSandbox, extra: &[(&'static str, &str)]) -> Served {
    let token = work.token();
    let mut vars = env(sb);
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    work.serve_env(&[], &vars).await.with_token(&token)
}

/// Syncs the sandbox's template and activates it (the organization is added).
async fn activate(server: &Served) {
    crate::credly_mock::sync_and_activate(server, ORG, SB_TEMPLATE).await;
}

/// Whether the sandbox accepts `token` for the organization.
async fn sandbox_accepts(sb: &RunningSandbox, token: &str) -> bool {
    reqwest::Client::new()
        .get(format!("{}organizations/{ORG}", sb.api_base_url))
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

/// The sandbox replaced the old token by exactly one new one, which the server stored.
async fn replaced_in_the_sandbox(sb: &RunningSandbox, org: &Value) -> String {
    let tokens = sb.sandbox.tokens(ORG);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let new = tokens[0].clone();
    assert_ne!(new, OLD);
    assert!(
        !sandbox_accepts(sb, OLD).await,
        "the old token is refused at once"
    );
    assert!(sandbox_accepts(sb, &new).await, "the new token works");
    assert_eq!(
        org["api_key"],
        format!("…{}", &new[new.len() - 4..]),
        "{org}"
    );
    assert!(
        !org.to_string().contains(&new),
        "the token itself is never shown: {org}"
    );
    new
}

/// A learner passes; the badge reaches the sandbox (with the new token: the old one is gone).
async fn badge_after_rotation(server: &Served, sb: &RunningSandbox, learner: &str) {
    let before = sb.sandbox.badges(ORG).len();
    let (s, r) = server
        .api(
            "POST",
            "/events",
            Some(passing(&format!("ev-{learner}"), learner, DEMO, true)),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    eventually(
        Duration::from_secs(10),
        "the badge reaches the sandbox",
        || async { (sb.sandbox.badges(ORG).len() == before + 1).then_some(()) },
    )
    .await;
    let (_, jobs) = server
        .api("GET", "/jobs?kind=credly.issue&status=dead", None)
        .await;
    assert_eq!(jobs["data"], json!([]), "no job went dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_now_over_http_and_in_the_admin_ui_replaces_the_token_at_credly() {
    let sb = sandbox(chrono::Duration::days(100)).await;
    let work = Operator::new("credly-rotate-now");
    work.create_admin("ops");
    let server = serve(&work, &sb, &[]).await;
    let (s, org) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": ORG, "api_key": OLD})),
        )
        .await;
    assert_eq!(s, 201, "{org}");
    activate(&server).await;

    let (s, org) = server
        .api(
            "POST",
            &format!("/credly/organizations/{ORG}/key/rotate"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{org}");
    assert_eq!(org["rotation"]["last"]["result"], "ok");
    assert_eq!(org["rotation"]["last"]["trigger"], "manual");
    assert!(org["key"]["days_left"].as_i64().unwrap() >= 179, "{org}");
    let first = replaced_in_the_sandbox(&sb, &org).await;
    badge_after_rotation(&server, &sb, "ada").await;

    // The admin UI: the organization shows its rotation, and its button rotates again.
    let session = server.admin_session("ops").await;
    let (s, page) = server.admin_page(&session, "/admin/credly").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("new token stored") && page.contains("(manual)"),
        "{page}"
    );
    assert!(page.contains("Automatic rotation</dt><dd>off"), "{page}");
    assert!(!page.contains(&first), "the token is never shown");
    let (s, page) = server
        .admin_form(&session, &format!("/admin/credly/{ORG}/rotate"), &[])
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("Rotated the token of Rotating Org"), "{page}");
    let (_, org) = server
        .api("GET", &format!("/credly/organizations/{ORG}"), None)
        .await;
    let second = replaced_in_the_sandbox(&sb, &org).await;
    assert_ne!(second, first);
    assert!(!sandbox_accepts(&sb, &first).await);
    badge_after_rotation(&server, &sb, "bob").await;
    // Without the CSRF token the form is refused and nothing rotates.
    let r = server
        .http
        .post(server.url(&format!("/admin/credly/{ORG}/rotate")))
        .header("cookie", &session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(sb.sandbox.tokens(ORG), vec![second]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_with_the_cli_next_to_a_running_server_keeps_badges_flowing() {
    let sb = sandbox(chrono::Duration::days(100)).await;
    let work = Operator::new("credly-rotate-cli");
    let server = serve(&work, &sb, &[]).await;
    let (s, org) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": ORG, "api_key": OLD})),
        )
        .await;
    assert_eq!(s, 201, "{org}");
    activate(&server).await;
    // The server uses (and caches) the old key.
    badge_after_rotation(&server, &sb, "ada").await;
    let out = work.ok_env(
        &["credly", "rotate", "--uuid", ORG],
        &[("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url)],
    );
    assert!(
        out.contains(ORG) && out.contains("(manual)") && out.contains(" ok "),
        "{out}"
    );
    let (_, org) = server
        .api("GET", &format!("/credly/organizations/{ORG}"), None)
        .await;
    let new = replaced_in_the_sandbox(&sb, &org).await;
    assert!(!out.contains(&new), "the CLI never prints the token: {out}");
    // The server still had the old key in memory: its next call is refused (401), reads the
    // new key and goes through; the job neither dies nor waits.
    badge_after_rotation(&server, &sb, "bob").await;
    let (_, jobs) = server.api("GET", "/jobs?kind=credly.issue", None).await;
    assert!(
        jobs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "succeeded" && j["attempts"] == 1),
        "{jobs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_rotation_replaces_a_key_near_expiry_at_start() {
    // Five days left; the rule says rotate with fewer than 30.
    let sb = sandbox(chrono::Duration::days(5)).await;
    let work = Operator::new("credly-rotate-auto");
    work.create_admin("ops");
    // Added before the server starts (its check runs at start, then hourly).
    let out = work.ok_env(
        &["credly", "add-org", "--uuid", ORG],
        &[
            ("ACCOLADE_CREDLY_API_KEY", OLD),
            ("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url),
        ],
    );
    assert!(out.contains("(5 days") || out.contains("(4 days"), "{out}");
    let server = serve(&work, &sb, &[("ACCOLADE_CREDLY__AUTO_ROTATE_DAYS", "30")]).await;
    let api = &server;
    let org = eventually(
        Duration::from_secs(15),
        "the automatic rotation",
        || async move {
            let (_, org) = api
                .api("GET", &format!("/credly/organizations/{ORG}"), None)
                .await;
            (org["rotation"]["last"]["result"] == "ok").then_some(org)
        },
    )
    .await;
    assert_eq!(org["rotation"]["last"]["trigger"], "auto");
    assert_eq!(org["rotation"]["auto"], true);
    assert_eq!(org["rotation"]["auto_rotate_days"], 30);
    assert!(org["key"]["days_left"].as_i64().unwrap() >= 179, "{org}");
    let next: chrono::DateTime<Utc> = org["rotation"]["next_auto_rotation_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > Utc::now() + chrono::Duration::days(149), "{org}");
    replaced_in_the_sandbox(&sb, &org).await;
    activate(&server).await;
    badge_after_rotation(&server, &sb, "ada").await;

    let session = server.admin_session("ops").await;
    let (_, page) = server.admin_page(&session, "/admin/credly").await;
    assert!(
        page.contains("(automatic)") && page.contains("new token stored"),
        "{page}"
    );
    assert!(page.contains("on: will rotate after"), "{page}");
    let (_, metrics) = server.admin_page("", "/metrics").await;
    assert!(
        metrics.contains("accolade_credly_key_rotations_total{result=\"ok\",trigger=\"auto\"} 1"),
        "{metrics}"
    );
    let log = server.log();
    assert!(
        !log.contains(OLD)
            && !sb
                .sandbox
                .tokens(ORG)
                .iter()
                .any(|t| log.contains(t.as_str())),
        "a token was logged:\n{log}"
    );
}
