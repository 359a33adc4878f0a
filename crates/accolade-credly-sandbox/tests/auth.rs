//! The sandbox's credentials: the OAuth token endpoint (form or JSON body, client credentials
//! in the body or as HTTP Basic, refusals), Bearer tokens on the API until they expire, OAuth
//! clients from the seed and the control API, rotating an authorization token (the old one is
//! refused at once), and faults on both new endpoints.

mod common;

use std::time::Duration;

use accolade_credly_sandbox::{Faults, Seed, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET};
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

async fn token_request(c: &Client, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let _ = c;
    let r = req.send().await.expect("request");
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn token_url(c: &Client) -> String {
    c.running.oauth_token_url.clone()
}

async fn bearer_get(c: &Client, token: &str) -> StatusCode {
    let r = c
        .http
        .get(c.org_url("badge_templates"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    StatusCode::from_u16(r.status().as_u16()).unwrap()
}

#[tokio::test]
async fn the_token_endpoint_takes_forms_json_and_basic() {
    let c = Client::demo().await;
    // Form, credentials in the body (the documented parameters).
    let (s, form) = token_request(
        &c,
        c.http.post(token_url(&c)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("scope", "badge_templates issued_badges"),
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{form}");
    assert_eq!(form["token_type"], "Bearer");
    assert_eq!(form["expires_in"], 7200);
    assert_eq!(form["scope"], "badge_templates issued_badges");
    assert!(form["created_at"].as_i64().unwrap() > 1_700_000_000);
    // JSON, as MSR sends it.
    let (s, js) = token_request(
        &c,
        c.http.post(token_url(&c)).json(&json!({
            "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET, "scope": "events"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{js}");
    // Form with the client as HTTP Basic, as Open edX's draft sends it.
    let (s, basic) = token_request(
        &c,
        c.http
            .post(token_url(&c))
            .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{basic}");
    let tokens: Vec<&str> = [&form, &js, &basic]
        .iter()
        .map(|t| t["access_token"].as_str().unwrap())
        .collect();
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2]);
    for t in &tokens {
        assert_eq!(bearer_get(&c, t).await, StatusCode::OK);
    }
    assert_eq!(c.sb().stats().access_tokens_issued, 3);
    assert_eq!(c.sb().stats().requests.get("oauth_token"), Some(&3));
}

#[tokio::test]
async fn the_token_endpoint_refuses_with_rfc_6749_errors() {
    let c = Client::demo().await;
    let refused = [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", "wrong"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "client_credentials")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", "badge_templates read"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ];
    for (form, status, code) in refused {
        let (s, body) = token_request(&c, c.http.post(token_url(&c)).form(&form)).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{form:?}: {body}"
        );
        assert!(body["error_description"].is_string());
    }
    assert_eq!(c.sb().stats().token_requests_refused, 5);
    assert_eq!(c.sb().stats().access_tokens_issued, 0);
}

#[tokio::test]
async fn bearer_tokens_expire_and_act_for_their_organization_only() {
    let c = Client::demo().await;
    c.sb()
        .add_oauth_client(ORG, "short-lived", "short-secret", Some(1));
    let (s, t) = token_request(
        &c,
        c.http.post(token_url(&c)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "short-lived"),
            ("client_secret", "short-secret"),
        ]),
    )
    .await;
    assert_eq!(
        (s, t["expires_in"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{t}"
    );
    let token = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(bearer_get(&c, &token).await, StatusCode::OK);
    // The organization list knows the token's organization.
    let r = c
        .http
        .get(format!("{}organizations", c.running.api_base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], ORG);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        bearer_get(&c, &token).await,
        StatusCode::UNAUTHORIZED,
        "expired"
    );
    assert_eq!(
        bearer_get(&c, "sandbox-at-unknown").await,
        StatusCode::UNAUTHORIZED
    );
    // Rotating needs the token itself, not an access token.
    let (s, t) = token_request(
        &c,
        c.http
            .post(token_url(&c))
            .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let r = c
        .http
        .post(c.org_url("authorization_tokens/rotate"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // `expire_all_tokens` covers access tokens too.
    c.sb().set_faults(Faults {
        expire_all_tokens: true,
        ..Faults::default()
    });
    assert_eq!(
        bearer_get(&c, t["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn oauth_clients_come_from_the_seed_and_the_control_api() {
    let mut seed = Seed::demo();
    seed.organizations[0].oauth_clients[0].access_token_lifetime_secs = Some(60);
    let c = Client::with_seed(seed).await;
    let r = c
        .http
        .post(format!(
            "{}_sandbox/organizations/{ORG}/oauth_clients",
            c.running.base_url
        ))
        .json(&json!({"client_id": "ctl-client", "client_secret": "ctl-secret", "access_token_lifetime_secs": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let orgs: Value = c
        .http
        .get(format!("{}_sandbox/organizations", c.running.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        orgs[0]["oauth_clients"],
        json!([
            {"client_id": DEMO_CLIENT_ID, "access_token_lifetime_secs": 60},
            {"client_id": "ctl-client", "access_token_lifetime_secs": 5},
        ])
    );
    assert!(
        !orgs.to_string().contains(DEMO_CLIENT_SECRET),
        "secrets are not listed"
    );
    let (s, t) = token_request(
        &c,
        c.http.post(token_url(&c)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "ctl-client"),
            ("client_secret", "ctl-secret"),
        ]),
    )
    .await;
    assert_eq!(
        (s, t["expires_in"].as_u64()),
        (StatusCode::OK, Some(5)),
        "{t}"
    );
    // An unknown organization is refused.
    let r = c
        .http
        .post(format!(
            "{}_sandbox/organizations/nope/oauth_clients",
            c.running.base_url
        ))
        .json(&json!({"client_id": "x", "client_secret": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn rotating_answers_the_new_token_and_ends_the_old_one_at_once() {
    let c = Client::demo().await;
    let r = c
        .http
        .post(c.org_url("authorization_tokens/rotate"))
        .header("Authorization", basic(&format!("{TOKEN}:")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    let new = body["data"]["token"].as_str().unwrap().to_string();
    assert_ne!(new, TOKEN);
    assert_eq!(body["data"]["owner_id"], ORG);
    let expires: chrono::DateTime<chrono::Utc> = body["data"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        expires > chrono::Utc::now() + chrono::Duration::days(179),
        "{body}"
    );
    // The old token is refused everywhere, the new one works.
    let (s, _) = c.get_json(&c.org_url("badge_templates")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let r = c
        .http
        .get(c.org_url("badge_templates"))
        .header("Authorization", basic(&format!("{new}:")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(c.sb().tokens(ORG), vec![new.clone()]);
    let stats = c.sb().stats();
    assert_eq!(
        (
            stats.tokens_rotated,
            stats.requests.get("rotate_authorization_token")
        ),
        (1, Some(&1))
    );
    // A second rotation with the old token: refused, nothing changes.
    let r = c
        .http
        .post(c.org_url("authorization_tokens/rotate"))
        .header("Authorization", basic(&format!("{TOKEN}:")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(c.sb().tokens(ORG), vec![new]);
}

#[tokio::test]
async fn faults_apply_to_the_token_and_rotate_endpoints() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        fail_next: vec![503, 500],
        ..Faults::default()
    });
    let (s, _) = token_request(
        &c,
        c.http.post(token_url(&c)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let r = c
        .http
        .post(c.org_url("authorization_tokens/rotate"))
        .header("Authorization", basic(&format!("{TOKEN}:")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(
        c.sb().tokens(ORG),
        vec![TOKEN.to_string()],
        "nothing rotated"
    );
    assert_eq!(c.sb().stats().injected_5xx, 2);
    // Latency too.
    c.sb().set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    let (s, _) = token_request(
        &c,
        c.http
            .post(token_url(&c))
            .basic_auth(DEMO_CLIENT_ID, Some(DEMO_CLIENT_SECRET))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
