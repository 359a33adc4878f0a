//! Outbound webhooks end to end: wiremock is the receiver; an award made through the API is
//! fanned out, signed, sent, retried, replayed, and the subscription API refuses bad input.

use std::time::Duration;

use accolade_server::config::Config;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const AWARDED: &str = "org.openedx.learning.badge.awarded.v1";
const REVOKED: &str = "org.openedx.learning.badge.revoked.v1";

/// Retries after ~50 ms, so a retry test takes moments.
async fn app() -> TestApp {
    app_retrying_after("50ms").await
}

async fn app_retrying_after(delay: &str) -> TestApp {
    let mut config = Config::defaults();
    config.webhooks.retry_schedule = vec![delay.into()];
    config.webhooks.retry_interval = delay.into();
    // wiremock listens on loopback, which is no webhook destination unless allowed.
    config.webhooks.allowed_destinations = vec!["127.0.0.1".into()];
    TestApp::with_config(config).await
}

async fn subscribe(app: &TestApp, url: &str, body: Value) -> Value {
    let mut body = body;
    body["url"] = json!(url);
    let (s, created) = app.post("/api/v1/webhooks", body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    created
}

/// An award of a fresh template to `learner` (one badge.awarded outgoing event).
async fn award(app: &TestApp, learner: &str) {
    let (_, list) = app.get("/api/v1/templates").await;
    if list["data"].as_array().unwrap().is_empty() {
        app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    }
    app.send(json!([passing(
        &format!("ev-{learner}"),
        learner,
        DEMO,
        true
    )]))
    .await;
}

/// Runs worker passes until `done` holds for the subscription's deliveries (or fails after 120 s:
/// on PostgreSQL, fan-out waits for every older transaction in the cluster, and other tests run
/// alongside).
async fn deliver_until(
    app: &TestApp,
    webhook_id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        accolade_server::service::webhooks::worker::drain(&app.state)
            .await
            .unwrap();
        let (s, body) = app
            .get(&format!("/api/v1/webhooks/{webhook_id}/deliveries"))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let items = body["data"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries never got there: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header<'a>(r: &'a wiremock::Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// HMAC-SHA256 computed here, with the hmac crate directly, not with the server's signing code.
fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_signed_over_the_exact_body() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&receiver)
        .await;
    let app = app().await;
    let hook = subscribe(
        &app,
        &format!("{}/hook", receiver.uri()),
        json!({"event_types": [AWARDED]}),
    )
    .await;
    let (id, secret) = (
        hook["id"].as_str().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("whsec_"), "{secret}");
    award(&app, "ann").await;
    let items = deliver_until(&app, id, |d| d.len() == 1 && d[0]["status"] == "succeeded").await;
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["last_status"], 204);

    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let t = header(r, "accolade-timestamp");
    let sig = header(r, "accolade-signature");
    assert_eq!(
        sig,
        format!("t={t},v1={}", expected_signature(secret, t, &r.body))
    );
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp is the send time");
    assert_eq!(header(r, "content-type"), "application/json");
    assert!(header(r, "user-agent").starts_with("Accolade-Webhooks/"));
    assert_eq!(header(r, "accolade-webhook-id"), id);
    assert_eq!(header(r, "accolade-delivery-id"), items[0]["id"]);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(header(r, "accolade-event-id"), body["id"]);
    assert_eq!(body["id"], items[0]["event_id"]);
    assert_eq!(body["type"], AWARDED);
    assert!(body["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["data"]["user"]["pii"]["username"], "ann");
    assert!(body["data"]["uuid"].is_string(), "the award id");
    // Tampering with a byte of the body breaks the signature.
    let mut tampered = r.body.clone();
    tampered[0] = b' ';
    assert_ne!(
        sig,
        format!("t={t},v1={}", expected_signature(secret, t, &tampered))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_until_it_succeeds() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database down"))
        .up_to_n_times(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    // A retry delay long enough to look at the delivery between the two attempts.
    let app = app_retrying_after("1s").await;
    let hook = subscribe(&app, &receiver.uri(), json!({})).await;
    let id = hook["id"].as_str().unwrap();
    award(&app, "bob").await;
    // After the first attempt the delivery waits for its retry, with the failure on record.
    let first = deliver_until(&app, id, |d| d.len() == 1 && d[0]["attempts"] == 1).await;
    let pending = &first[0];
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["last_status"], 500);
    assert_eq!(
        pending["last_error"], "HTTP 500 Internal Server Error from the subscriber",
        "our summary, not the receiver's body"
    );
    assert!(pending["next_attempt_at"].is_string());
    let items = deliver_until(&app, id, |d| d.len() == 1 && d[0]["status"] == "succeeded").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["attempts"], 2);
    assert_eq!(items[0]["last_status"], 200);
    assert!(items[0]["last_error"].is_null());
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    for h in ["accolade-event-id", "accolade-delivery-id"] {
        assert_eq!(
            header(&got[0], h),
            header(&got[1], h),
            "{h} is the same on a retry"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_makes_the_delivery_dead_at_once() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410))
        .expect(1)
        .mount(&receiver)
        .await;
    let app = app().await;
    use accolade_server::cli::{checks, Level};
    let warnings = |report: Vec<(Level, String)>| -> Vec<String> {
        report
            .into_iter()
            .filter(|(l, _)| *l != Level::Ok)
            .map(|(_, line)| line)
            .collect()
    };
    assert!(
        warnings(checks(&app.state).await.unwrap()).is_empty(),
        "doctor is happy before"
    );
    let hook = subscribe(&app, &receiver.uri(), json!({})).await;
    award(&app, "cat").await;
    let items = deliver_until(&app, hook["id"].as_str().unwrap(), |d| {
        d.len() == 1 && d[0]["status"] == "dead"
    })
    .await;
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["last_status"], 410);
    let found = warnings(checks(&app.state).await.unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("1 dead webhook deliveries"),
        "`accolade doctor` reports the dead delivery: {found:?}"
    );
    let (_, hook_now) = app
        .get(&format!(
            "/api/v1/webhooks/{}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        hook_now["active"], true,
        "410 does not disable the subscription"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_sends_a_succeeded_delivery_again() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&receiver)
        .await;
    let app = app().await;
    let hook = subscribe(
        &app,
        &receiver.uri(),
        json!({"event_types": [AWARDED, REVOKED]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    award(&app, "dan").await;
    let first = deliver_until(&app, id, |d| d.len() == 1 && d[0]["status"] == "succeeded").await;
    let original = first[0]["id"].as_str().unwrap();
    let (s, replay) = app
        .post(
            &format!("/api/v1/webhook-deliveries/{original}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{replay}");
    assert_eq!(replay["replay_of"], original);
    assert_eq!(replay["event_id"], first[0]["event_id"]);
    assert_eq!(replay["status"], "pending");
    let all = deliver_until(&app, id, |d| {
        d.len() == 2 && d.iter().all(|x| x["status"] == "succeeded")
    })
    .await;
    let (s, again) = app
        .get(&format!(
            "/api/v1/webhook-deliveries/{}",
            replay["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (again["status"].as_str(), again["attempts"].as_i64()),
        (Some("succeeded"), Some(1))
    );
    assert_eq!(all.len(), 2);
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(
        header(&got[0], "accolade-event-id"),
        header(&got[1], "accolade-event-id")
    );
    assert_ne!(
        header(&got[0], "accolade-delivery-id"),
        header(&got[1], "accolade-delivery-id")
    );
    let (s, e) = app
        .post("/api/v1/webhook-deliveries/whd_nope/replay", json!({}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("webhook_delivery_not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_codes_and_nothing_is_stored() {
    let app = app().await;
    let ok_url = "https://receiver.example/hook";
    let (s, e) = app
        .raw(
            "POST",
            "/api/v1/webhooks",
            Some(b"{\"url\": ".to_vec()),
            true,
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    for (body, code) in [
        (json!({"url": "not a url"}), "invalid_webhook_url"),
        (
            json!({"url": "ftp://receiver.example/"}),
            "invalid_webhook_url",
        ),
        (json!({"url": "https://"}), "invalid_webhook_url"),
        (
            json!({"url": format!("{ok_url}/{}", "x".repeat(2048))}),
            "invalid_webhook_url",
        ),
        (
            json!({"url": ok_url, "event_types": ["org.openedx.learning.course.passing.status.updated.v1"]}),
            "unknown_event_type",
        ),
        (json!({"url": ok_url, "secret": "short"}), "invalid_secret"),
        (json!({"url": ok_url, "colour": "blue"}), "invalid_body"),
        (json!({"event_types": []}), "invalid_body"),
    ] {
        let (s, e) = app.post("/api/v1/webhooks", body.clone()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {e}"
        );
    }
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(list["data"], json!([]), "nothing stored");

    let hook = subscribe(&app, ok_url, json!({})).await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let (s, e) = app
        .request("PATCH", &path, Some(json!({"url": "mailto:x@y"})))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_webhook_url"))
    );
    let (s, e) = app
        .request("PATCH", &path, Some(json!({"event_types": ["nope"]})))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_event_type"))
    );
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged["url"], ok_url);
    assert_eq!(unchanged["event_types"], json!([]));
    let (s, e) = app.get(&format!("{path}/deliveries?status=lost")).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_status"))
    );

    for (m, uri) in [
        ("GET", "/api/v1/webhooks/whk_nope"),
        ("PATCH", "/api/v1/webhooks/whk_nope"),
        ("DELETE", "/api/v1/webhooks/whk_nope"),
        ("POST", "/api/v1/webhooks/whk_nope/rotate-secret"),
        ("GET", "/api/v1/webhooks/whk_nope/deliveries"),
    ] {
        let body = (m == "PATCH").then(|| json!({"active": false}));
        let (s, e) = app.request(m, uri, body).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("webhook_not_found")),
            "{m} {uri}"
        );
    }
    let (s, e) = app.get("/api/v1/webhook-deliveries/whd_nope").await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("webhook_delivery_not_found"))
    );
    let (s, _) = app.raw("GET", "/api/v1/webhooks", None, false).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_is_shown_once_stored_sealed_and_rotatable() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let app = app().await;
    let given = "my-own-secret-0123456789";
    let hook = subscribe(
        &app,
        &receiver.uri(),
        json!({"secret": given, "description": "crm"}),
    )
    .await;
    assert_eq!(hook["secret"], given);
    let id = hook["id"].as_str().unwrap().to_string();
    let (_, one) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    let (_, list) = app.get("/api/v1/webhooks").await;
    let (_, patched) = app
        .request(
            "PATCH",
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"description": "CRM"})),
        )
        .await;
    for shown in [&one, &list, &patched] {
        let text = shown.to_string();
        assert!(!text.contains(given) && !text.contains("secret"), "{text}");
    }
    assert_eq!(patched["description"], "CRM");
    // At rest the secret is sealed, bound to the subscription id.
    let sealed = app.state.store.webhook_secret(&id).await.unwrap();
    assert!(!sealed.windows(given.len()).any(|w| w == given.as_bytes()));
    assert_eq!(
        app.state.webhooks.secrets.open(&sealed, &id).unwrap(),
        given
    );

    let (s, rotated) = app
        .request(
            "POST",
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != given);
    award(&app, "eve").await;
    deliver_until(&app, &id, |d| d.len() == 1 && d[0]["status"] == "succeeded").await;
    let got = receiver.received_requests().await.unwrap();
    let t = header(&got[0], "accolade-timestamp");
    assert_eq!(
        header(&got[0], "accolade-signature"),
        format!(
            "t={t},v1={}",
            expected_signature(new_secret, t, &got[0].body)
        ),
        "signed with the rotated secret"
    );
    let (s, _) = app
        .request("DELETE", &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_routes_are_in_the_openapi_document() {
    let app = app().await;
    let (_, doc) = app.raw("GET", "/api/v1/openapi.json", None, false).await;
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/webhooks",
        "/webhooks/{id}",
        "/webhooks/{id}/rotate-secret",
        "/webhooks/{id}/deliveries",
        "/webhook-deliveries/{id}",
        "/webhook-deliveries/{id}/replay",
    ] {
        assert!(paths.contains_key(p), "openapi documents {p}");
    }
    assert!(paths["/webhooks/{id}"]["patch"].is_object());
    assert!(paths["/webhooks/{id}"]["delete"].is_object());
}

/// The CLI works on the database directly: add (secret printed once), list, deliveries, replay
/// of an unknown delivery, remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_subscriptions() {
    let dir = std::env::temp_dir().join(format!("accolade-it-cli-{}", unique()));
    let db = format!("sqlite://{}/cli.db", dir.display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"))
            .args(args)
            .args(["--database-url", &db])
            .env("ACCOLADE_WEBHOOK_SECRET", "cli-given-secret-0123")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "webhooks",
        "add",
        "--url",
        "https://crm.example/hook",
        "--event-type",
        AWARDED,
    ]);
    assert!(ok, "{err}");
    let id = out.split_whitespace().next().unwrap().to_string();
    assert!(id.starts_with("whk_"), "{out}");
    assert!(
        out.contains("cli-given-secret-0123"),
        "the secret is printed once: {out}"
    );
    let (ok, out, _) = run(&["webhooks", "list"]);
    assert!(ok);
    assert!(
        out.contains(&id) && out.contains(AWARDED) && !out.contains("cli-given-secret"),
        "{out}"
    );
    let (ok, out, _) = run(&[
        "webhooks",
        "deliveries",
        "--webhook",
        &id,
        "--status",
        "dead",
    ]);
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, _, err) = run(&["webhooks", "deliveries", "--status", "lost"]);
    assert!(!ok && err.contains("unknown status"), "{err}");
    let (ok, _, err) = run(&[
        "webhooks",
        "add",
        "--url",
        "https://x.example/",
        "--event-type",
        "nope",
    ]);
    assert!(!ok && err.contains("nope"), "{err}");
    let (ok, _, err) = run(&["webhooks", "replay", "whd_nope"]);
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, _, _) = run(&["webhooks", "remove", &id]);
    assert!(ok);
    let (ok, out, _) = run(&["webhooks", "list"]);
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, _, err) = run(&["webhooks", "remove", &id]);
    assert!(!ok && err.contains("not found"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
