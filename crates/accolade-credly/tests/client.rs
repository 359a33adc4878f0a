//! The client against wiremock: wire format, pagination, error classification.

use std::time::Duration;

use accolade_credly::{ClientCredentials, Credentials, CredlyClient, CredlyError, IssueBadge};
use serde_json::json;
use wiremock::matchers::{body_partial_json, body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORG: &str = "37659132-1c9e-4aba-8849-d1e4cb175e67";
const CRED: Credentials<'static> = Credentials::token(ORG, "secret-key");

fn client(server: &MockServer) -> CredlyClient {
    CredlyClient::new(&format!("{}/v1", server.uri()), Duration::from_secs(2)).unwrap()
}

fn template(id: usize, state: &str) -> serde_json::Value {
    json!({"id": format!("00000000-0000-0000-0000-{id:012}"), "name": format!("T{id}"), "state": state,
           "description": null, "image_url": "https://img.example/x.png", "owner": {"id": ORG}})
}

#[tokio::test]
async fn organization_sends_basic_auth_with_empty_password() {
    let server = MockServer::start().await;
    // base64("secret-key:")
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .and(header("authorization", "Basic c2VjcmV0LWtleTo="))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "Example Org"}, "metadata": {}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let org = client(&server).organization(CRED).await.unwrap();
    assert_eq!(org.name, "Example Org");
}

#[tokio::test]
async fn all_pages_are_fetched_and_only_active_templates_kept() {
    let server = MockServer::start().await;
    for page in 1..=3u32 {
        let items: Vec<_> = (0..2)
            .map(|i| {
                template(
                    (page as usize) * 10 + i,
                    if i == 1 && page == 2 {
                        "archived"
                    } else {
                        "active"
                    },
                )
            })
            .collect();
        Mock::given(method("GET"))
            .and(path(format!("/v1/organizations/{ORG}/badge_templates")))
            .and(query_param("filter", "state::active"))
            .and(query_param("page", page.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": items,
                "metadata": {"current_page": page, "total_pages": 3, "per": 50, "next_page_url": null}
            })))
            .expect(1)
            .mount(&server)
            .await;
    }
    let (templates, pages) = client(&server).active_templates(CRED).await.unwrap();
    assert_eq!(pages, 3);
    assert_eq!(templates.len(), 5, "the archived one is dropped");
    assert!(templates.iter().all(|t| t.state == "active"));
    assert_eq!(
        templates[0].description, "",
        "null description reads as empty"
    );
}

#[tokio::test]
async fn next_page_url_to_another_host_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/badge_templates")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [template(1, "active")],
            "metadata": {"next_page_url": "https://evil.example/steal"}
        })))
        .mount(&server)
        .await;
    let err = client(&server).active_templates(CRED).await.unwrap_err();
    assert!(
        matches!(err, CredlyError::Decode(ref m) if m.contains("points away")),
        "{err}"
    );
}

#[tokio::test]
async fn errors_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/organizations/{ORG}/badges")))
        .and(body_partial_json(
            json!({"recipient_email": "dup@example.com", "issued_at": "2025-03-04 14:41:00 +0000"}),
        ))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"data": {"message": "User already has this badge"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/organizations/{ORG}/badges")))
        .and(body_partial_json(
            json!({"recipient_email": "slow@example.com"}),
        ))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/organizations/{ORG}/badges")))
        .and(body_partial_json(
            json!({"recipient_email": "down@example.com"}),
        ))
        .respond_with(ResponseTemplate::new(503).set_body_string("maintenance"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/organizations/{ORG}/badges")))
        .and(body_partial_json(
            json!({"recipient_email": "hang@example.com"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let c = client(&server);
    let issue = |email: &str| IssueBadge {
        recipient_email: email.into(),
        badge_template_id: "t".into(),
        issued_at: "2025-03-04 14:41:00 +0000".into(),
        issued_to_first_name: "A".into(),
        issued_to_last_name: "B".into(),
        issuer_earner_id: None,
        expires_at: None,
    };
    let dup = c
        .issue_badge(CRED, &issue("dup@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(dup, CredlyError::AlreadyIssued(_)));
    let limited = c
        .issue_badge(CRED, &issue("slow@example.com"))
        .await
        .unwrap_err();
    assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    assert!(!limited.is_permanent());
    let down = c
        .issue_badge(CRED, &issue("down@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(down, CredlyError::Server { status: 503, .. }));
    let hang = c
        .issue_badge(CRED, &issue("hang@example.com"))
        .await
        .unwrap_err();
    assert_eq!(hang, CredlyError::Timeout);
}

fn oauth_client(server: &MockServer) -> CredlyClient {
    client(server)
        .with_token_url(&format!("{}/oauth/token", server.uri()))
        .unwrap()
}

const CLIENT: ClientCredentials<'static> = ClientCredentials {
    client_id: "client-uid-1",
    client_secret: "client-secret-1",
};

#[tokio::test]
async fn token_request_is_a_form_post_and_the_token_is_sent_as_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "grant_type=client_credentials&client_id=client-uid-1&client_secret=client-secret-1\
             &scope=badge_templates+issued_badges+events",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 7200,
                   "scope": "badge_templates issued_badges events", "created_at": 1783328400}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/organizations/{ORG}/")))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": {"id": ORG, "name": "Example Org"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = oauth_client(&server);
    let token = c
        .request_access_token(CLIENT, accolade_credly::DEFAULT_OAUTH_SCOPE)
        .await
        .unwrap();
    assert_eq!(token.expires_in, Some(7200));
    assert!(!format!("{token:?}{CLIENT:?}").contains("at-1"));
    assert!(!format!("{CLIENT:?}").contains("client-secret-1"));
    let org = c
        .organization(Credentials::bearer(ORG, &token.access_token))
        .await
        .unwrap();
    assert_eq!(org.name, "Example Org");
}

#[tokio::test]
async fn token_endpoint_failures_keep_the_retry_classification() {
    let server = MockServer::start().await;
    let c = oauth_client(&server);
    let answer = |status: u16, body: serde_json::Value| {
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .up_to_n_times(1)
    };
    answer(
        401,
        json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
    )
    .mount(&server)
    .await;
    let refused = c.request_access_token(CLIENT, "").await.unwrap_err();
    assert!(
        matches!(refused, CredlyError::Unauthorized(ref m) if m.contains("invalid_client")),
        "{refused:?}"
    );
    assert!(!refused.to_string().contains("client-secret-1"));
    answer(503, json!({})).mount(&server).await;
    let down = c.request_access_token(CLIENT, "").await.unwrap_err();
    assert!(matches!(down, CredlyError::Server { status: 503, .. }));
    assert!(!down.is_permanent());
    answer(200, json!({"token_type": "Bearer"}))
        .mount(&server)
        .await;
    let empty = c.request_access_token(CLIENT, "").await.unwrap_err();
    assert!(matches!(empty, CredlyError::Decode(_)), "{empty:?}");
    // A redirect is not followed: it would carry the secret elsewhere.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", "http://127.0.0.1:9/steal"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let moved = c.request_access_token(CLIENT, "").await.unwrap_err();
    assert!(
        matches!(moved, CredlyError::Rejected { status: 307, .. }),
        "{moved:?}"
    );
    // Nothing listens: retryable.
    let nowhere = CredlyClient::new("http://127.0.0.1:9/v1", Duration::from_secs(1))
        .unwrap()
        .with_token_url("http://127.0.0.1:9/oauth/token")
        .unwrap();
    let unreachable = nowhere.request_access_token(CLIENT, "").await.unwrap_err();
    assert!(!unreachable.is_permanent(), "{unreachable:?}");
    // No token URL configured: a configuration error, before anything is sent.
    let unset = client(&server).request_access_token(CLIENT, "").await;
    assert!(matches!(unset, Err(CredlyError::Config(_))));
}

#[tokio::test]
async fn rotation_returns_the_new_token_and_its_expiry() {
    let server = MockServer::start().await;
    // base64("old-token-1:")
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/organizations/{ORG}/authorization_tokens/rotate"
        )))
        .and(header("authorization", "Basic b2xkLXRva2VuLTE6"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "id": "0f6c2a3e-5b1d-4c1e-9a57-1d2b3c4d5e6f", "token": "new-token-2",
            "created_at": "2026-07-05T09:00:00.000Z", "expires_at": "2027-01-01T09:00:00.000Z"},
            "metadata": {}})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let old = Credentials::token(ORG, "old-token-1");
    let rotated = c.rotate_authorization_token(old).await.unwrap();
    assert_eq!(rotated.token, "new-token-2");
    assert_eq!(rotated.expires_at.to_rfc3339(), "2027-01-01T09:00:00+00:00");
    assert!(!format!("{rotated:?}").contains("new-token-2"));

    // Without an expiry: 180 days from now.
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/organizations/{ORG}/authorization_tokens/rotate"
        )))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"data": {"token": "new-token-3"}})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let rotated = c.rotate_authorization_token(old).await.unwrap();
    let days = (rotated.expires_at - chrono::Utc::now()).num_days();
    assert!((179..=180).contains(&days), "{days}");

    // A success without a token is not a rotation.
    Mock::given(method("POST"))
        .and(path(format!(
            "/v1/organizations/{ORG}/authorization_tokens/rotate"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {}})))
        .mount(&server)
        .await;
    let err = c.rotate_authorization_token(old).await.unwrap_err();
    assert!(matches!(err, CredlyError::Decode(_)), "{err:?}");

    // Only a token can rotate itself.
    let bearer = c
        .rotate_authorization_token(Credentials::bearer(ORG, "at"))
        .await
        .unwrap_err();
    assert!(matches!(bearer, CredlyError::Config(_)));
}
