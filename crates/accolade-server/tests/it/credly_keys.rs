//! An expired Credly key, end to end through the real binary: `accolade serve` against the
//! Credly sandbox; the organization's key expires; an award's issue job is deferred waiting for
//! a new key; the operator rotates the key (over HTTP, or with `accolade credly rotate-key`) and
//! the badge reaches Credly within seconds, not after the ten-minute deferral.

use std::time::Duration;

use accolade_credly_sandbox::{RunningSandbox, Sandbox, Seed, SeedOrganization, SeedTemplate};
use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{passing, DEMO};
use crate::process::{eventually, Operator, Served};

const ORG: &str = "3e9a1f0c-6b2d-4c8e-a7f5-1d0b9c8e7a6f";
const TEMPLATE: &str = "00000000-0000-4000-8000-0000000be11e";
/// The first key: valid when the organization is added, expired a few seconds later.
const SHORT_KEY: &str = "short-lived-key-0001";
const NEW_KEY: &str = "rotated-key-0002";
/// How long the first key lives: enough to add the organization and configure its template.
const SHORT_LIFE: chrono::Duration = chrono::Duration::seconds(6);
/// A released job runs on the worker's next poll (100 ms here); this leaves room for a busy
/// machine and is far below the ten-minute deferral.
const RELEASE_WITHIN: Duration = Duration::from_secs(8);

async fn sandbox() -> RunningSandbox {
    Sandbox::start(Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Rotation Org".into(),
            tokens: Vec::new(),
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: vec![SeedTemplate {
            id: Some(TEMPLATE.into()),
            organization_id: ORG.into(),
            name: "Key rotation".into(),
            state: "active".into(),
            description: "Issued once the key is rotated".into(),
            image_url: Some("https://images.example/k.png".into()),
            ..Default::default()
        }],
        generate: None,
    })
    .await
    .unwrap()
}

/// A server against the sandbox whose organization's key has expired, with an award of its
/// Credly template waiting for a new key (its issue job deferred, nothing sent to Credly).
async fn award_waiting_for_a_new_key(work: &Operator, sb: &RunningSandbox) -> Served {
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
    let expires_at = Utc::now() + SHORT_LIFE;
    sb.sandbox.add_token(ORG, SHORT_KEY, Some(expires_at));
    let (s, org) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": ORG, "api_key": SHORT_KEY})),
        )
        .await;
    assert_eq!(s, 201, "{org}");
    crate::credly_mock::sync_and_activate(&server, ORG, TEMPLATE).await;

    // The key expires; only then does the learner pass.
    let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
    let (_, o) = server
        .api("GET", &format!("/credly/organizations/{ORG}"), None)
        .await;
    assert_eq!(o["key"]["level"], "expired", "{o}");
    let (s, r) = server
        .api("POST", "/events", Some(passing("ev-1", "ada", DEMO, true)))
        .await;
    assert_eq!(s, 202, "{r}");
    let api = &server;
    let job = eventually(
        Duration::from_secs(15),
        "the issue job is deferred for the expired key",
        || async move {
            let (_, jobs) = api.api("GET", "/jobs?kind=credly.issue", None).await;
            let job = jobs["data"].get(0)?.clone();
            let waiting = job["status"] == "pending"
                && job["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("expired"));
            waiting.then_some(job)
        },
    )
    .await;
    assert_eq!(job["attempts"], 0, "a deferral uses no attempt: {job}");
    let run_at: chrono::DateTime<Utc> = job["run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        run_at > Utc::now() + chrono::Duration::minutes(5),
        "the job waits for the key: {job}"
    );
    assert!(sb.sandbox.badges(ORG).is_empty(), "nothing reached Credly");
    sb.sandbox.add_token(ORG, NEW_KEY, None);
    server
}

/// Waits until the learner's badge is on Credly and the award records it.
async fn badge_reaches_credly(server: &Served, sb: &RunningSandbox, how: &str) {
    let badge = eventually(
        RELEASE_WITHIN,
        &format!("the waiting badge reaches Credly after a rotation {how}"),
        || async move { sb.sandbox.badges(ORG).first().cloned() },
    )
    .await;
    assert_eq!(badge["recipient_email"], "ada@example.com");
    let badge_id = &badge["id"];
    let award: Value = eventually(
        Duration::from_secs(5),
        "the award records the Credly badge",
        || async move {
            let (_, awards) = server.api("GET", "/awards?learner=ada", None).await;
            let a = awards["data"].get(0)?.clone();
            (a["external_id"] == *badge_id).then_some(a)
        },
    )
    .await;
    assert_eq!(award["state"], "pending", "{award}");
    let (_, jobs) = server.api("GET", "/jobs?kind=credly.issue", None).await;
    assert_eq!(jobs["data"][0]["status"], "succeeded", "{jobs}");
    assert_eq!(sb.sandbox.badges(ORG).len(), 1, "issued once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_expired_key_over_http_releases_the_waiting_award_at_once() {
    let sb = sandbox().await;
    let work = Operator::new("credly-rotate-http");
    let server = award_waiting_for_a_new_key(&work, &sb).await;
    let (s, o) = server
        .api(
            "POST",
            &format!("/credly/organizations/{ORG}/key"),
            Some(json!({"api_key": NEW_KEY})),
        )
        .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["key"]["level"], "ok", "{o}");
    badge_reaches_credly(&server, &sb, "over HTTP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_an_expired_key_with_the_cli_releases_the_waiting_award_at_once() {
    let sb = sandbox().await;
    let work = Operator::new("credly-rotate-cli");
    let server = award_waiting_for_a_new_key(&work, &sb).await;
    // Another process, as an operator would run it next to the server.
    let out = work.ok_env(
        &["credly", "rotate-key", "--uuid", ORG],
        &[
            ("ACCOLADE_CREDLY_API_KEY", NEW_KEY),
            ("ACCOLADE_CREDLY__API_BASE_URL", &sb.api_base_url),
        ],
    );
    assert!(out.contains(ORG), "{out}");
    badge_reaches_credly(&server, &sb, "with `accolade credly rotate-key`").await;
}
