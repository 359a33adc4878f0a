//! The client against wiremock: wire format, pagination, error classification.

use std::time::Duration;

use accolade_credly::{Credentials, CredlyClient, CredlyError, IssueBadge};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORG: &str = "37659132-1c9e-4aba-8849-d1e4cb175e67";
const CRED: Credentials<'static> = Credentials {
    org_id: ORG,
    api_key: "secret-key",
};

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
