//! Organizations that authenticate with OAuth 2.0 client credentials (issue 20).
//!
//! Against wiremock, in process, counting requests: the body of `POST /credly/organizations`
//! (one complete method or a stable 4xx), a 401 answered by exactly one token refresh and one
//! retry, jobs of one organization sharing one token request, the token endpoint down (jobs
//! retry, none dead, none lost), and refused client credentials (jobs wait for new ones).
//! Through the real binary against the Credly sandbox: an organization added with client
//! credentials issues with Bearer tokens, and goes on issuing after its tokens expire.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use accolade_credly_sandbox::{
    RunningSandbox, Sandbox, Seed, SeedOAuthClient, SeedOrganization, SeedTemplate,
};
use accolade_server::config::Config;
use accolade_server::service::credly::worker;
use axum::http::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::credly_mock::{demo_template, hits, passing};
use crate::helpers::{TestApp, DEMO};
use crate::process::{eventually, Operator};

const ORG: &str = "6a1f3c2e-9b8d-4e7f-a6c5-4d3b2a1f0e9d";
const CLIENT_ID: &str = "oauth-client-uid-7f3a";
const CLIENT_SECRET: &str = "oauth-client-secret-b29c41";

/// Answers the token endpoint with `at-1`, `at-2`, … (two hours each), counting requests.
struct Tokens(AtomicUsize);

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": format!("at-{n}"), "token_type": "Bearer", "expires_in": 7200,
            "scope": "badge_templates issued_badges events"
        }))
    }
}

/// A TestApp against the mock: no rate limit, a 1 s timeout, retries a second apart.
async fn app_for(server: &MockServer) -> TestApp {
    let mut config = Config::defaults();
    config.credly.api_base_url = format!("{}/v1/", server.uri());
    config.credly.oauth_token_url = format!("{}/oauth/token", server.uri());
    config.credly.rate_limit_per_second = 0;
    config.credly.timeout_secs = 1;
    config.worker.retry_schedule = vec!["1s".into(); 5];
    TestApp::with_config(config).await
}

fn badges_path() -> String {
    format!("/v1/organizations/{ORG}/badges")
}

/// Adds the OAuth organization through the API (the mock answers its checks), then forgets
/// every mock and request so each test counts only its own.
async fn oauth_org(server: &MockServer, app: &TestApp) -> Value {
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-check", "token_type": "Bearer", "expires_in": 7200}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .and(header("authorization", "Bearer at-check"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "OAuth Org"}})),
        )
        .mount(server)
        .await;
    let (s, org) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{org}");
    server.reset().await;
    org
}

fn issued(n: usize) -> ResponseTemplate {
    ResponseTemplate::new(201)
        .set_body_json(json!({"data": {"id": format!("b-{n}"), "state": "pending"}}))
}

async fn jobs(app: &TestApp) -> Vec<Value> {
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue&limit=100").await;
    jobs["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_takes_one_complete_method_and_never_shows_the_secrets() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    let refused = [
        (
            json!({"uuid": ORG, "api_key": "a-key-12345678", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            "credly_auth_mixed",
        ),
        (
            json!({"uuid": ORG, "api_key": "a-key-12345678", "client_secret": CLIENT_SECRET}),
            "credly_auth_mixed",
        ),
        (
            json!({"uuid": ORG, "client_id": CLIENT_ID}),
            "credly_auth_incomplete",
        ),
        (
            json!({"uuid": ORG, "client_secret": CLIENT_SECRET}),
            "credly_auth_incomplete",
        ),
        (json!({"uuid": ORG}), "credly_auth_incomplete"),
        (
            json!({"uuid": ORG, "client_id": "", "client_secret": CLIENT_SECRET}),
            "invalid_client_id",
        ),
        (
            json!({"uuid": ORG, "client_id": CLIENT_ID, "client_secret": "short"}),
            "invalid_client_secret",
        ),
        (
            json!({"uuid": "acme", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            "invalid_organization_id",
        ),
    ];
    for (body, code) in refused {
        let (s, r) = app.post("/api/v1/credly/organizations", body.clone()).await;
        assert_eq!(
            (s, r["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {r}"
        );
    }
    let (s, r) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": "x"}),
        )
        .await;
    assert!(s.is_client_error(), "unknown field: {s} {r}");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing was sent to Credly"
    );
    let (_, list) = app.get("/api/v1/credly/organizations").await;
    assert_eq!(list["data"], json!([]), "nothing was stored");

    // Refused by the token endpoint: a 400 that says so, nothing stored.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let (s, r) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "client_id": CLIENT_ID, "client_secret": "wrong-secret-123"}),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("credly_credentials_rejected")),
        "{r}"
    );
    assert!(!r.to_string().contains("wrong-secret-123"), "{r}");

    // Accepted: the token was requested as a form with the credentials in the body; the
    // organization shows its method and the id's last four characters only.
    server.reset().await;
    let org = oauth_org(&server, &app).await;
    assert_eq!(org["auth_method"], "oauth");
    assert_eq!(org["client_id"], "…7f3a");
    assert_eq!(org["api_key"], Value::Null);
    assert_eq!(org["key"], Value::Null);
    assert_eq!(org["rotation"]["auto"], false);
    assert_eq!(org["name"], "OAuth Org");
    let (_, again) = app
        .get(&format!("/api/v1/credly/organizations/{ORG}"))
        .await;
    for shown in [&org, &again] {
        let text = shown.to_string();
        assert!(
            !text.contains(CLIENT_ID) && !text.contains(CLIENT_SECRET),
            "{text}"
        );
    }
    // An OAuth organization has no token to rotate.
    let (s, r) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/key/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::CONFLICT, Some("credly_auth_method")),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_request_is_a_form_with_the_credentials_in_the_body() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    oauth_org(&server, &app).await;
    let id = demo_template(&app, ORG, "OAuth badge").await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(issued(1))
        .expect(1)
        .mount(&server)
        .await;
    app.send(passing("ev-1", "ada", DEMO, true)).await;
    worker::drain(&app.state).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let token = requests
        .iter()
        .find(|r| r.url.path() == "/oauth/token")
        .unwrap();
    let form: Vec<(String, String)> = form_urlencoded::parse(&token.body).into_owned().collect();
    assert_eq!(
        form,
        [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("scope", "badge_templates issued_badges events"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let issue = requests
        .iter()
        .find(|r| r.url.path() == badges_path())
        .unwrap();
    let body: Value = serde_json::from_slice(&issue.body).unwrap();
    assert_eq!(body["badge_template_id"], json!(id));
    assert_eq!(app.awards("ada").await[0]["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_gets_exactly_one_token_refresh_and_one_retry() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    oauth_org(&server, &app).await;
    demo_template(&app, ORG, "OAuth badge").await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    // Credly stops honouring the first token before its expires_in runs out.
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"data": {"message": "Unauthorized"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", "Bearer at-2"))
        .respond_with(issued(1))
        .mount(&server)
        .await;
    app.send(passing("ev-1", "ada", DEMO, true)).await;
    worker::drain(&app.state).await.unwrap();
    assert_eq!(
        hits(&server, "/oauth/token").await,
        2,
        "the first token and one refresh"
    );
    assert_eq!(
        hits(&server, &badges_path()).await,
        2,
        "the call and one retry"
    );
    let job = &jobs(&app).await[0];
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_i64()),
        (Some("succeeded"), Some(1)),
        "{job}"
    );
    assert_eq!(app.awards("ada").await[0]["external_id"], "b-1");

    // A token refused again right after a refresh is not refreshed forever: one refresh, one
    // retry, then the 401 stands (a permanent failure).
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Tokens(AtomicUsize::new(10)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    app.send(passing("ev-2", "bob", DEMO, true)).await;
    worker::drain(&app.state).await.unwrap();
    assert_eq!(
        hits(&server, "/oauth/token").await,
        1,
        "at-2 was dropped; one new token"
    );
    assert_eq!(hits(&server, &badges_path()).await, 2);
    let bob = jobs(&app)
        .await
        .into_iter()
        .find(|j| j["status"] == "dead")
        .unwrap();
    assert!(bob["last_error"].as_str().unwrap().contains("401"), "{bob}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_of_an_organization_share_one_token_request() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    oauth_org(&server, &app).await;
    demo_template(&app, ORG, "OAuth badge").await;
    // A slow token endpoint: every job of the batch asks for a token while it is in flight.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(move |_: &Request| {
            issued(n.fetch_add(1, Ordering::SeqCst)).set_delay(Duration::from_millis(100))
        })
        .mount(&server)
        .await;
    let events: Vec<Value> = (0..20)
        .map(|i| passing(&format!("ev-{i}"), &format!("learner{i}"), DEMO, true))
        .collect();
    app.send(Value::Array(events)).await;
    assert_eq!(worker::drain(&app.state).await.unwrap(), 20);
    assert_eq!(hits(&server, "/oauth/token").await, 1);
    assert_eq!(hits(&server, &badges_path()).await, 20);
    assert!(jobs(&app).await.iter().all(|j| j["status"] == "succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_retries_jobs_and_loses_none() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    oauth_org(&server, &app).await;
    demo_template(&app, ORG, "OAuth badge").await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        // Slow as well as down, so the three jobs are all waiting on the one request.
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_string("<html>down</html>")
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&server)
        .await;
    app.send(json!([
        passing("ev-1", "ada", DEMO, true),
        passing("ev-2", "bob", DEMO, true),
        passing("ev-3", "cy", DEMO, true),
    ]))
    .await;
    worker::drain(&app.state).await.unwrap();
    // The three jobs ran together and shared the one failed request.
    assert_eq!(hits(&server, "/oauth/token").await, 1);
    assert_eq!(hits(&server, &badges_path()).await, 0);
    let waiting = jobs(&app).await;
    assert_eq!(waiting.len(), 3);
    for j in &waiting {
        assert_eq!(
            (j["status"].as_str(), j["attempts"].as_i64()),
            (Some("pending"), Some(1)),
            "{j}"
        );
        assert!(j["last_error"].as_str().unwrap().contains("503"), "{j}");
    }
    // Unreachable is retryable too.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    worker::drain(&app.state).await.unwrap();
    for j in jobs(&app).await {
        assert_eq!(
            (j["status"].as_str(), j["attempts"].as_i64()),
            (Some("pending"), Some(2)),
            "{j}"
        );
    }
    // The endpoint is back: every award reaches Credly, none dead.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .respond_with(move |_: &Request| issued(n.fetch_add(1, Ordering::SeqCst)))
        .mount(&server)
        .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    worker::drain(&app.state).await.unwrap();
    assert_eq!(hits(&server, "/oauth/token").await, 1);
    assert_eq!(hits(&server, &badges_path()).await, 3);
    for learner in ["ada", "bob", "cy"] {
        assert_eq!(
            app.awards(learner).await[0]["state"],
            "pending",
            "{learner}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_client_credentials_make_jobs_wait_for_new_ones() {
    let server = MockServer::start().await;
    let app = app_for(&server).await;
    oauth_org(&server, &app).await;
    demo_template(&app, ORG, "OAuth badge").await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .mount(&server)
        .await;
    app.send(json!([
        passing("ev-1", "ada", DEMO, true),
        passing("ev-2", "bob", DEMO, true)
    ]))
    .await;
    worker::drain(&app.state).await.unwrap();
    assert_eq!(
        hits(&server, "/oauth/token").await,
        1,
        "one refusal, remembered"
    );
    for j in jobs(&app).await {
        assert_eq!(
            (j["status"].as_str(), j["attempts"].as_i64()),
            (Some("pending"), Some(0)),
            "{j}"
        );
        assert!(
            j["last_error"]
                .as_str()
                .unwrap()
                .contains("refused the OAuth client credentials"),
            "{j}"
        );
        let run_at: chrono::DateTime<chrono::Utc> = j["run_at"].as_str().unwrap().parse().unwrap();
        assert!(
            run_at > chrono::Utc::now() + chrono::Duration::minutes(5),
            "{j}"
        );
    }
    let (s, r) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::CONFLICT, Some("credly_credentials_refused")),
        "{r}"
    );

    // New client credentials: checked, stored, and the waiting jobs go out at once.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(Tokens(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "OAuth Org"}})),
        )
        .mount(&server)
        .await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path(badges_path()))
        .respond_with(move |_: &Request| issued(n.fetch_add(1, Ordering::SeqCst)))
        .mount(&server)
        .await;
    let (s, org) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/key"),
            json!({"client_id": "oauth-client-uid-new1", "client_secret": "a-new-client-secret"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{org}");
    assert_eq!(org["client_id"], "…new1");
    assert_eq!(worker::drain(&app.state).await.unwrap(), 2);
    for learner in ["ada", "bob"] {
        assert_eq!(
            app.awards(learner).await[0]["state"],
            "pending",
            "{learner}"
        );
    }
}

/// The sandbox's organization, with an OAuth client whose tokens live `token_secs` and no
/// authorization token at all: whatever reaches it went with a Bearer token.
async fn oauth_sandbox(token_secs: u64) -> RunningSandbox {
    Sandbox::start(Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Sandbox OAuth Org".into(),
            oauth_clients: vec![SeedOAuthClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                access_token_lifetime_secs: Some(token_secs),
            }],
            ..SeedOrganization::default()
        }],
        templates: vec![SeedTemplate {
            id: Some("00000000-0000-4000-8000-00000000a0a7".into()),
            organization_id: ORG.into(),
            name: "Bearer badge".into(),
            image_url: Some("https://images.example/b.png".into()),
            ..Default::default()
        }],
        generate: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_organization_issues_with_bearer_tokens_and_outlives_them() {
    const TEMPLATE: &str = "00000000-0000-4000-8000-00000000a0a7";
    let sb = oauth_sandbox(2).await;
    let work = Operator::new("credly-oauth");
    let token = work.token();
    let server = work
        .serve_env(
            &[],
            &[
                ("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url),
                ("ACCOLADE_CREDLY__OAUTH_TOKEN_URL", &sb.oauth_token_url),
                ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0"),
                ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100"),
            ],
        )
        .await
        .with_token(&token);
    let (s, org) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": ORG, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(s, 201, "{org}");
    assert_eq!(
        (org["auth_method"].as_str(), org["name"].as_str()),
        (Some("oauth"), Some("Sandbox OAuth Org"))
    );
    crate::credly_mock::sync_and_activate(&server, ORG, TEMPLATE).await;

    let (s, _) = server
        .api("POST", "/events", Some(passing("ev-1", "ada", DEMO, true)))
        .await;
    assert_eq!(s, 202);
    eventually(
        Duration::from_secs(10),
        "ada's badge reaches the sandbox",
        || async { (sb.sandbox.badges(ORG).len() == 1).then_some(()) },
    )
    .await;
    let issued_before = sb.sandbox.stats().access_tokens_issued;
    // The tokens live two seconds: the next badge needs a new one, and gets it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, _) = server
        .api("POST", "/events", Some(passing("ev-2", "bob", DEMO, true)))
        .await;
    assert_eq!(s, 202);
    eventually(
        Duration::from_secs(10),
        "bob's badge reaches the sandbox",
        || async { (sb.sandbox.badges(ORG).len() == 2).then_some(()) },
    )
    .await;
    let stats = sb.sandbox.stats();
    assert!(stats.access_tokens_issued > issued_before, "{stats:?}");
    assert_eq!(
        stats.requests.get("oauth_token").copied(),
        Some(stats.access_tokens_issued)
    );
    let (_, jobs) = server.api("GET", "/jobs?kind=credly.issue", None).await;
    assert!(
        jobs["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "succeeded" && j["attempts"] == 1),
        "{jobs}"
    );
    let log = server.log();
    assert!(
        !log.contains(CLIENT_SECRET),
        "the secret was logged:\n{log}"
    );
    // The organization list never shows the secrets either.
    let out = work.ok(&["credly", "orgs"]);
    assert!(
        out.contains("OAuth client …7f3a") && !out.contains(CLIENT_SECRET),
        "{out}"
    );
}
