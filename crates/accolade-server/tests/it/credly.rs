//! The Credly bridge against the bundled Credly sandbox (and wiremock for faults it cannot
//! count): organizations, sync, webhooks, issuing and revoking, retries, reconciliation, dead
//! jobs and expired keys.

use accolade_credly_sandbox::{
    Faults, RunningSandbox, Sandbox, Seed, SeedOrganization, SeedTemplate, SeedToken,
};
use accolade_server::config::Config;
use accolade_server::service::credly::worker;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const ORG: &str = "5c1d2b9e-8a7f-4c3e-9b1a-0d2e3f4a5b6c";
pub(crate) const KEY: &str = "sandbox-key-0001-abcd";

pub(crate) fn seed(templates: &[(&str, &str)]) -> Seed {
    Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Example Org".into(),
            tokens: vec![SeedToken {
                token: KEY.into(),
                expires_at: None,
                created_at: None,
            }],
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: templates
            .iter()
            .map(|(id, state)| SeedTemplate {
                id: Some((*id).into()),
                organization_id: ORG.into(),
                name: format!("Template {id}"),
                state: (*state).into(),
                description: "From the sandbox".into(),
                image_url: Some("https://images.example/t.png".into()),
                ..Default::default()
            })
            .collect(),
        generate: None,
    }
}

pub(crate) fn tid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A TestApp whose Credly client points at `api_base_url`, with retries due at once.
pub(crate) async fn app_for(api_base_url: &str) -> TestApp {
    let mut config = Config::defaults();
    config.credly.api_base_url = api_base_url.into();
    config.credly.rate_limit_per_second = 0;
    config.credly.timeout_secs = 1;
    config.worker.retry_schedule = vec!["0s".into(), "0s".into(), "0s".into()];
    TestApp::with_config(config).await
}

async fn add_org(app: &TestApp) -> Value {
    let (s, body) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": KEY}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body
}

pub(crate) async fn sandbox(templates: &[(&str, &str)]) -> RunningSandbox {
    Sandbox::start(seed(templates)).await.unwrap()
}

async fn drain(app: &TestApp) -> usize {
    worker::drain(&app.state).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_organization_checks_the_key_and_never_shows_it() {
    let sb = sandbox(&[]).await;
    let app = app_for(&sb.api_base_url).await;
    // Wrong key: refused, saying which check failed.
    let (s, body) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": "wrong-key-123456"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "credly_key_rejected");
    // Not a UUID: refused before calling Credly.
    let (s, body) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": "acme", "api_key": KEY}),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_organization_id"))
    );
    // A well-formed UUID Credly does not know (with a key that is valid elsewhere).
    let (s, body) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": "11111111-2222-4333-8444-555555555555", "api_key": KEY}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        matches!(
            body["code"].as_str(),
            Some("credly_org_not_found" | "credly_key_rejected")
        ),
        "{body}"
    );
    assert!(app.get("/api/v1/credly/organizations").await.1["data"]
        .as_array()
        .unwrap()
        .is_empty());
    // Good key: stored with Credly's name; only the last four characters come back.
    let org = add_org(&app).await;
    assert_eq!(org["name"], "Example Org");
    assert_eq!(org["api_key"], "…abcd");
    assert!(!org.to_string().contains(KEY));
    assert_eq!(org["key"]["level"], "ok");
    assert!(org["key"]["days_left"].as_i64().unwrap() >= 179);
    let (s, list) = app.get("/api/v1/credly/organizations").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!list.to_string().contains(KEY));
    // Encrypted at rest.
    let sealed = app.state.store.credly_org_key(ORG).await.unwrap();
    assert!(!sealed.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    // Twice: conflict.
    let (s, body) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": KEY}),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("organization_exists"))
    );
    // Unknown fields and malformed bodies: 400, nothing added.
    let (s, _) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": KEY, "extra": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_imports_active_templates_from_every_page_inactive_and_resync_reconciles() {
    // 120 active, 30 draft, 30 archived: 3 pages of active ones at 50 per page.
    let mut list: Vec<(String, &str)> = Vec::new();
    for n in 0..180u32 {
        let state = match n % 6 {
            4 => "draft",
            5 => "archived",
            _ => "active",
        };
        list.push((tid(n), state));
    }
    let refs: Vec<(&str, &str)> = list.iter().map(|(i, s)| (i.as_str(), *s)).collect();
    let sb = sandbox(&refs).await;
    let app = app_for(&sb.api_base_url).await;
    add_org(&app).await;
    let sync_uri = format!("/api/v1/credly/organizations/{ORG}/sync");

    let (s, dry) = app
        .post(&format!("{sync_uri}?dry_run=true"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["created"].as_u64(), dry["dry_run"].as_bool()),
        (Some(120), Some(true))
    );
    assert!(app.get("/api/v1/templates?origin=credly").await.1["data"]
        .as_array()
        .unwrap()
        .is_empty());

    let (s, sum) = app.post(&sync_uri, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    assert_eq!(
        sum,
        json!({"dry_run": false, "created": 120, "updated": 0, "deactivated": 0, "unchanged": 0, "pages": 3})
    );
    let (_, page) = app.get("/api/v1/templates?origin=credly&limit=500").await;
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 120);
    assert!(data
        .iter()
        .all(|t| t["is_active"] == false && t["provider_state"] == "active"));

    // An operator configures and activates one; then Credly renames one and archives another.
    let kept = tid(0);
    let (s, r) = app
        .post(
            &format!("/api/v1/templates/{kept}/requirements"),
            json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        app.post(&format!("/api/v1/templates/{kept}/activate"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    sb.sandbox.upsert_template(SeedTemplate {
        id: Some(tid(1)),
        organization_id: ORG.into(),
        name: "Renamed on Credly".into(),
        state: "active".into(),
        description: "From the sandbox".into(),
        image_url: Some("https://images.example/t.png".into()),
        ..Default::default()
    });
    sb.sandbox.upsert_template(SeedTemplate {
        id: Some(kept.clone()),
        organization_id: ORG.into(),
        name: format!("Template {kept}"),
        state: "archived".into(),
        description: "From the sandbox".into(),
        image_url: Some("https://images.example/t.png".into()),
        ..Default::default()
    });
    let (_, sum) = app.post(&sync_uri, json!({})).await;
    assert_eq!(
        (
            sum["created"].as_u64(),
            sum["updated"].as_u64(),
            sum["deactivated"].as_u64(),
            sum["unchanged"].as_u64()
        ),
        (Some(0), Some(1), Some(1), Some(118)),
        "{sum}"
    );
    let (_, renamed) = app.get(&format!("/api/v1/templates/{}", tid(1))).await;
    assert_eq!(renamed["name"], "Renamed on Credly");
    let (_, archived) = app.get(&format!("/api/v1/templates/{kept}")).await;
    assert_eq!(archived["is_active"], false);
    assert_eq!(archived["provider_state"], "inactive");
    assert_eq!(
        archived["requirements"].as_array().unwrap().len(),
        1,
        "configuration is kept"
    );
    // The organization remembers its last sync.
    let (_, org) = app
        .get(&format!("/api/v1/credly/organizations/{ORG}"))
        .await;
    assert_eq!(org["last_sync"]["deactivated"], 1);
    assert!(org["last_sync_at"].is_string());
}

async fn notify(app: &TestApp, id: &str, event_type: &str, org: &str) -> (StatusCode, Value) {
    app.raw(
        "POST",
        "/badges/credly/webhook/",
        Some(json!({"id": id, "organization_id": org, "event_type": event_type, "occurred_at": "2026-11-29T10:00:00.000Z"}).to_string().into_bytes()),
        false,
    )
    .await
}

fn last_event(sb: &RunningSandbox) -> (String, String) {
    let events = sb.sandbox.events(ORG);
    let e = events.last().expect("the sandbox recorded an event");
    (
        e["id"].as_str().unwrap().to_string(),
        e["event_type"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_confirmed_with_credly_and_applied_once() {
    let sb = sandbox(&[]).await;
    let app = app_for(&sb.api_base_url).await;
    add_org(&app).await;
    let id = tid(7);
    let tpl = |name: &str, state: &str| SeedTemplate {
        id: Some(id.clone()),
        organization_id: ORG.into(),
        name: name.into(),
        state: state.into(),
        description: String::new(),
        image_url: None,
        ..Default::default()
    };

    // created
    sb.sandbox.upsert_template(tpl("Webhook badge", "active"));
    let (ev, ty) = last_event(&sb);
    assert_eq!(ty, "badge_template.created");
    let (s, r) = notify(&app, &ev, &ty, ORG).await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("queued")),
        "{r}"
    );
    let (s, r) = notify(&app, &ev, &ty, ORG).await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert_eq!(
        drain(&app).await,
        1,
        "one job for two identical notifications"
    );
    let (s, t) = app.get(&format!("/api/v1/templates/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (t["name"].as_str(), t["is_active"].as_bool()),
        (Some("Webhook badge"), Some(false))
    );

    // changed (renamed, then archived while active)
    assert_eq!(
        app.post(&format!("/api/v1/templates/{id}/activate"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    sb.sandbox
        .upsert_template(tpl("Webhook badge v2", "archived"));
    let (ev, ty) = last_event(&sb);
    assert_eq!(ty, "badge_template.changed");
    notify(&app, &ev, &ty, ORG).await;
    drain(&app).await;
    let (_, t) = app.get(&format!("/api/v1/templates/{id}")).await;
    assert_eq!(
        (
            t["name"].as_str(),
            t["is_active"].as_bool(),
            t["provider_state"].as_str()
        ),
        (Some("Webhook badge v2"), Some(false), Some("archived"))
    );

    // deleted: marked, configuration kept
    sb.sandbox.delete_template(ORG, &id);
    let (ev, ty) = last_event(&sb);
    assert_eq!(ty, "badge_template.deleted");
    notify(&app, &ev, &ty, ORG).await;
    drain(&app).await;
    let (_, t) = app.get(&format!("/api/v1/templates/{id}")).await;
    assert_eq!(t["provider_state"], "deleted");

    // A forged notification (an id Credly does not know) changes nothing.
    let before = app.get(&format!("/api/v1/templates/{id}")).await.1;
    let (s, r) = notify(
        &app,
        "99999999-9999-4999-8999-999999999999",
        "badge_template.changed",
        ORG,
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("queued")));
    drain(&app).await;
    assert_eq!(app.get(&format!("/api/v1/templates/{id}")).await.1, before);
    let (_, notes) = app.get("/api/v1/credly/notifications").await;
    let forged = notes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "99999999-9999-4999-8999-999999999999")
        .unwrap();
    assert_eq!(forged["status"], "rejected");

    // Unknown organization / event type: 200 with the reason, nothing recorded.
    let (s, r) = notify(
        &app,
        "e-1",
        "badge_template.created",
        "11111111-2222-4333-8444-555555555555",
    )
    .await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("ignored")),
        "{r}"
    );
    let (s, r) = notify(&app, "e-2", "employee.created", ORG).await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("ignored")));
    // Both paths of the receiver work; malformed bodies get a 400.
    let (s, _) = app
        .raw(
            "POST",
            "/badges/credly/webhook",
            Some(b"{not json".to_vec()),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Syncs one active template, gives it a requirement, activates it; returns its id.
async fn credly_template(app: &TestApp, sb: &RunningSandbox) -> String {
    let _ = sb;
    add_org(app).await;
    let (s, sum) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    let id = tid(1);
    let (s, r) = app
        .post(
            &format!("/api/v1/templates/{id}/requirements"),
            json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, r) = app
        .post(&format!("/api/v1/templates/{id}/penalties"), json!({"event_type": PASSING, "rules": [{"path": "is_passing", "op": "=", "value": "false"}], "requirements": [r["id"]]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(
        app.post(&format!("/api/v1/templates/{id}/activate"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    id
}

fn named_passing(id: &str, user: &str, is_passing: bool) -> Value {
    let mut e = passing(id, user, DEMO, is_passing);
    e["data"]["course_passing_status"]["user"]["pii"]["name"] = json!("Ada King Lovelace");
    e["time"] = json!("2026-08-20T14:03:27.000000+00:00");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awards_are_issued_and_revoked_on_credly() {
    let sb = sandbox(&[(&tid(1), "active")]).await;
    let app = app_for(&sb.api_base_url).await;
    let template = credly_template(&app, &sb).await;
    app.send(named_passing("ev-1", "ada", true)).await;
    assert_eq!(drain(&app).await, 1);
    let badges = sb.sandbox.badges(ORG);
    assert_eq!(badges.len(), 1);
    let b = &badges[0];
    assert_eq!(b["recipient_email"], "ada@example.com");
    assert_eq!(b["issued_to_first_name"], "Ada King");
    assert_eq!(b["issued_to_last_name"], "Lovelace");
    assert_eq!(b["badge_template"]["id"], template.as_str());
    assert!(
        b["issued_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-08-20T14:03:27"),
        "issued_at is the award time: {b}"
    );
    let award = &app.awards("ada").await[0];
    assert_eq!(award["external_id"], b["id"]);
    assert_eq!(
        (award["state"].as_str(), award["external_state"].as_str()),
        (Some("pending"), Some("pending"))
    );

    // Credly reports the learner accepted it.
    sb.sandbox
        .set_badge_state(ORG, b["id"].as_str().unwrap(), "accepted");
    let (ev, ty) = last_event(&sb);
    assert_eq!(ty, "badge.state.changed");
    notify(&app, &ev, &ty, ORG).await;
    drain(&app).await;
    let award = &app.awards("ada").await[0];
    assert_eq!(
        (award["state"].as_str(), award["external_state"].as_str()),
        (Some("accepted"), Some("accepted"))
    );

    // Failing again revokes it, on Credly too, with the reason.
    app.send(named_passing("ev-2", "ada", false)).await;
    assert_eq!(drain(&app).await, 1);
    let b = &sb.sandbox.badges(ORG)[0];
    assert_eq!(b["state"], "revoked");
    assert!(
        b["revocation_reason"].as_str().unwrap().contains("ev-2"),
        "{b}"
    );
    assert_eq!(app.awards("ada").await[0]["state"], "revoked");
    assert_eq!(sb.sandbox.stats().issued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_issue_is_reconciled_with_the_existing_badge() {
    let sb = sandbox(&[(&tid(1), "active")]).await;
    let app = app_for(&sb.api_base_url).await;
    credly_template(&app, &sb).await;
    // The badge already exists on Credly (e.g. issued before a crash lost our record of it).
    let client =
        accolade_credly::CredlyClient::new(&sb.api_base_url, std::time::Duration::from_secs(2))
            .unwrap();
    let cred = accolade_credly::Credentials::token(ORG, KEY);
    let existing = client
        .issue_badge(
            cred,
            &accolade_credly::IssueBadge {
                recipient_email: "ada@example.com".into(),
                badge_template_id: tid(1),
                issued_at: "2026-08-20 14:03:27 +0000".into(),
                issued_to_first_name: "Ada".into(),
                issued_to_last_name: "Lovelace".into(),
                issuer_earner_id: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    app.send(named_passing("ev-1", "ada", true)).await;
    drain(&app).await;
    let award = &app.awards("ada").await[0];
    assert_eq!(award["external_id"].as_str(), Some(existing.id.as_str()));
    assert_eq!(sb.sandbox.badges(ORG).len(), 1, "no second badge");
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue").await;
    assert_eq!(jobs["data"][0]["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_ends_dead_and_a_manual_retry_delivers() {
    let sb = sandbox(&[(&tid(1), "active")]).await;
    let app = app_for(&sb.api_base_url).await;
    credly_template(&app, &sb).await;
    sb.sandbox.set_faults(Faults {
        fail_next: vec![400],
        ..Faults::default()
    });
    app.send(named_passing("ev-1", "ada", true)).await;
    drain(&app).await;
    let (_, jobs) = app.get("/api/v1/jobs?status=dead").await;
    let dead = &jobs["data"][0];
    assert_eq!(dead["kind"], "credly.issue");
    assert_eq!(dead["attempts"], 1, "a 400 is not retried");
    assert!(
        dead["last_error"].as_str().unwrap().contains("400"),
        "{dead}"
    );
    assert_eq!(app.awards("ada").await[0]["state"], "dead");
    let (s, _) = app
        .post(
            &format!("/api/v1/jobs/{}/retry", dead["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    drain(&app).await;
    assert_eq!(app.awards("ada").await[0]["state"], "pending");
    assert_eq!(sb.sandbox.badges(ORG).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_makes_work_wait_not_fail() {
    let sb = sandbox(&[(&tid(1), "active")]).await;
    let app = app_for(&sb.api_base_url).await;
    credly_template(&app, &sb).await;
    // Our record says the key expired yesterday.
    let org = app.state.store.get_credly_org(ORG).await.unwrap();
    let sealed = app.state.store.credly_org_key(ORG).await.unwrap();
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    app.state
        .store
        .update_credly_org(
            ORG,
            None,
            Some(accolade_store::CredlyKey {
                ciphertext: sealed,
                last4: org.api_key_last4.clone().unwrap(),
                created_at: past - chrono::Duration::days(180),
                expires_at: past,
            }),
        )
        .await
        .unwrap();
    // Decrypted keys are reused for a few seconds; the expiry was changed behind their back.
    app.state.credly.forget_key(ORG);
    let (_, o) = app
        .get(&format!("/api/v1/credly/organizations/{ORG}"))
        .await;
    assert_eq!(o["key"]["level"], "expired");
    let (s, body) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("credly_key_expired"))
    );

    app.send(named_passing("ev-1", "ada", true)).await;
    drain(&app).await;
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue").await;
    let job = &jobs["data"][0];
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_i64()),
        (Some("pending"), Some(0)),
        "{job}"
    );
    assert!(job["last_error"].as_str().unwrap().contains("expired"));
    assert!(sb.sandbox.badges(ORG).is_empty());
    // A new key: the waiting award goes out at once, with no retry by hand.
    let (s, o) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/key"),
            json!({"api_key": KEY}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["key"]["level"], "ok");
    assert_eq!(drain(&app).await, 1);
    assert_eq!(sb.sandbox.badges(ORG).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_counted() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // Credly answers 500, then 429 with Retry-After, then hangs past the timeout, then issues.
    let server = MockServer::start().await;
    let template_id = tid(1);
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "Mocked"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path(format!("/v1/organizations/{ORG}/badge_templates")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": template_id, "name": "T", "state": "active"}], "metadata": {"total_pages": 1}})))
        .mount(&server).await;
    let badges = format!("/v1/organizations/{ORG}/badges");
    Mock::given(method("POST"))
        .and(path(badges.clone()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges.clone()))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges.clone()))
        .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(3)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(badges.clone()))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "b-1", "state": "pending"}})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let app = app_for(&format!("{}/v1/", server.uri())).await;
    let (s, _) = app
        .post(
            "/api/v1/credly/organizations",
            json!({"uuid": ORG, "api_key": KEY}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = app
        .post(
            &format!("/api/v1/credly/organizations/{ORG}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.post(
        &format!("/api/v1/templates/{template_id}/requirements"),
        json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
    )
    .await;
    app.post(
        &format!("/api/v1/templates/{template_id}/activate"),
        json!({}),
    )
    .await;
    app.send(named_passing("ev-1", "ada", true)).await;

    // 500 → retried (award shows `error` meanwhile).
    worker::run_once(&app.state, &worker::ISSUING)
        .await
        .unwrap();
    assert_eq!(app.awards("ada").await[0]["state"], "error");
    // 429 with Retry-After: 1 → not due before a second has passed.
    worker::run_once(&app.state, &worker::ISSUING)
        .await
        .unwrap();
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue").await;
    let run_at =
        chrono::DateTime::parse_from_rfc3339(jobs["data"][0]["run_at"].as_str().unwrap()).unwrap();
    assert!(
        run_at > chrono::Utc::now() + chrono::Duration::milliseconds(500),
        "Retry-After honoured: {jobs}"
    );
    assert_eq!(
        worker::run_once(&app.state, &worker::ISSUING)
            .await
            .unwrap(),
        0,
        "not due yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Timeout (1 s client timeout) → retried; then success.
    worker::run_once(&app.state, &worker::ISSUING)
        .await
        .unwrap();
    worker::run_once(&app.state, &worker::ISSUING)
        .await
        .unwrap();
    let award = &app.awards("ada").await[0];
    assert_eq!(
        (award["external_id"].as_str(), award["state"].as_str()),
        (Some("b-1"), Some("pending"))
    );
    let (_, jobs) = app.get("/api/v1/jobs?kind=credly.issue").await;
    assert_eq!(
        (
            jobs["data"][0]["status"].as_str(),
            jobs["data"][0]["attempts"].as_i64()
        ),
        (Some("succeeded"), Some(4))
    );
    server.verify().await;
}
