//! Issuing, listing, fetching and revoking badges.

mod common;

use accolade_credly_sandbox::SeedTemplate;
use axum::http::StatusCode;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn issue_returns_201_with_fixture_fields() {
    let c = Client::demo().await;
    let mut body = issue_body("Ada@Example.com", ACTIVE_1);
    body["issuer_earner_id"] = json!("user-4711");
    body["evidence"] =
        json!([{"type": "UrlEvidence", "name": "Final project", "value": "https://example.org/p"}]);
    body["suppress_badge_notification_email"] = json!(true);
    let (s, v) = c.issue(body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["metadata"], json!({}));
    let b = &v["data"];
    uuid::Uuid::parse_str(b["id"].as_str().unwrap()).unwrap();
    assert_eq!(b["state"], "pending");
    assert_eq!(b["recipient_email"], "Ada@Example.com");
    assert_eq!(b["issued_to"], "Ada Lovelace");
    assert_eq!(b["issued_to_first_name"], "Ada");
    assert_eq!(b["issued_to_last_name"], "Lovelace");
    assert_eq!(b["issuer_earner_id"], "user-4711");
    assert_eq!(b["issued_at"], "2025-03-04T14:41:00.000Z");
    assert_eq!(b["issued_at_date"], "2025-03-04");
    assert_eq!(b["expires_at"], Value::Null);
    assert_eq!(b["locale"], "en");
    assert_eq!(b["suppress_badge_notification_email"], true);
    assert_eq!(b["revocation_reason"], Value::Null);
    assert_eq!(b["badge_template"]["id"], ACTIVE_1);
    assert_eq!(b["badge_template"]["badges_count"], 1);
    assert_eq!(b["user"]["email"], "Ada@Example.com");
    assert_eq!(b["created_by"]["id"], ORG);
    assert_eq!(b["issuer"]["entities"][0]["entity"]["id"], ORG);
    assert_eq!(b["evidence"][0]["name"], "Final project");
    assert!(b["evidence"][0]["id"].is_string());
    let accept = b["accept_badge_url"].as_str().unwrap();
    assert!(accept.starts_with(&c.running.base_url) && accept.ends_with("/accept"));
    // Issuing records a fetchable badge.created event.
    let ev = c.sb().events(ORG);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["event_type"], "badge.created");
    let (s, e) = c
        .get_json(&c.org_url(&format!("events/{}", ev[0]["id"].as_str().unwrap())))
        .await;
    assert_eq!(s, 200);
    assert_eq!(e["data"]["badge"]["id"], b["id"]);
    assert!(e["data"].get("badge_template").is_none());
    // Stats.
    let st = c.sb().stats();
    assert_eq!(st.issued, 1);
    assert_eq!(st.requests["issue_badge"], 1);
}

#[tokio::test]
async fn issued_at_is_parsed_leniently_and_normalised() {
    let c = Client::demo().await;
    let cases = [
        ("2025-03-04 09:41:00 -0500", "2025-03-04T14:41:00.000Z"),
        ("2025-03-04T14:41:00Z", "2025-03-04T14:41:00.000Z"),
        ("2025-03-04T15:41:00.250+01:00", "2025-03-04T14:41:00.250Z"),
        ("2025-03-04  02:41:00 pm", "2025-03-04T14:41:00.000Z"),
        ("2025-03-04 14:41:00 +0000", "2025-03-04T14:41:00.000Z"),
        ("2025-03-04 14:41:00 UTC", "2025-03-04T14:41:00.000Z"),
        ("2025-03-04 14:41:00", "2025-03-04T14:41:00.000Z"),
    ];
    for (i, (input, want)) in cases.iter().enumerate() {
        let mut body = issue_body(&format!("p{i}@example.com"), ACTIVE_1);
        body["issued_at"] = json!(input);
        let (s, v) = c.issue(body).await;
        assert_eq!(s, 201, "{input}: {v}");
        assert_eq!(v["data"]["issued_at"], *want, "{input}");
    }
    let mut body = issue_body("bad@example.com", ACTIVE_1);
    body["issued_at"] = json!("next tuesday");
    let (s, v) = c.issue(body).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"].as_str().unwrap().contains("issued_at"));
}

#[tokio::test]
async fn issue_accepts_form_and_query_string_bodies() {
    let c = Client::demo().await;
    let auth = basic(&format!("{TOKEN}:"));
    // Form-encoded body.
    let r = c
        .http
        .post(c.org_url("badges/"))
        .header("Authorization", &auth)
        .form(&[
            ("recipient_email", "form@example.com"),
            ("issued_to_first_name", "Grace"),
            ("issued_to_last_name", "Hopper"),
            ("badge_template_id", ACTIVE_1),
            ("issued_at", "2025-03-04  09:41:00 am"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["recipient_email"], "form@example.com");
    assert_eq!(v["data"]["issued_at"], "2025-03-04T09:41:00.000Z");
    // Query string only, JSON content type, no body.
    let r = c
        .http
        .post(c.org_url("badges"))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .query(&[
            ("recipient_email", "query@example.com"),
            ("issued_to_first_name", "Alan"),
            ("issued_to_last_name", "Turing"),
            ("badge_template_id", ACTIVE_2),
            ("issued_at", "2025-03-04 09:41:00 +0100"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["issued_to"], "Alan Turing");
    assert_eq!(v["data"]["issued_at"], "2025-03-04T08:41:00.000Z");
    // Query and JSON merged (body wins on conflicts).
    let r = c
        .http
        .post(c.org_url("badges"))
        .header("Authorization", &auth)
        .query(&[
            ("badge_template_id", ACTIVE_2),
            ("issued_to_last_name", "Query"),
        ])
        .json(&json!({
            "recipient_email": "merge@example.com",
            "issued_to_first_name": "Merge",
            "issued_to_last_name": "Body",
            "issued_at": "2025-03-04T10:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["badge_template"]["id"], ACTIVE_2);
    assert_eq!(v["data"]["issued_to_last_name"], "Body");
}

#[tokio::test]
async fn issue_validation_is_422_naming_the_problem() {
    let c = Client::demo().await;
    let (s, v) = c.issue(json!({})).await;
    assert_eq!(s, 422);
    let msg = v["data"]["message"].as_str().unwrap();
    for f in [
        "recipient_email",
        "issued_to_first_name",
        "issued_to_last_name",
        "badge_template_id",
        "issued_at",
    ] {
        assert!(msg.contains(f), "{msg} should name {f}");
    }
    let mut body = issue_body("a@example.com", ACTIVE_1);
    body.as_object_mut().unwrap().remove("issued_to_last_name");
    let (s, v) = c.issue(body).await;
    assert_eq!(s, 422);
    assert_eq!(
        v["data"]["message"],
        "Missing required parameter: issued_to_last_name"
    );
    let (s, v) = c.issue(issue_body("not-an-email", ACTIVE_1)).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"]
        .as_str()
        .unwrap()
        .contains("recipient_email"));
    let (s, v) = c
        .issue(issue_body("a@example.com", "no-such-template"))
        .await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"]
        .as_str()
        .unwrap()
        .contains("badge_template_id"));
    assert_eq!(c.sb().stats().issued, 0);
}

#[tokio::test]
async fn archived_and_draft_templates_cannot_issue() {
    let c = Client::demo().await;
    let (s, v) = c.issue(issue_body("a@example.com", ARCHIVED)).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"].as_str().unwrap().contains("archived"));
    let (s, v) = c.issue(issue_body("a@example.com", DRAFT)).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"].is_string());
    // Archiving an active template at run time blocks issuing.
    c.sb().upsert_template(SeedTemplate {
        id: Some(ACTIVE_2.into()),
        organization_id: ORG.into(),
        name: "Async Rust in Production".into(),
        state: "archived".into(),
        ..SeedTemplate::default()
    });
    let (s, _) = c.issue(issue_body("a@example.com", ACTIVE_2)).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn duplicates_are_422_with_the_exact_message() {
    let c = Client::demo().await;
    let first = c.issue_ok("dup@example.com", ACTIVE_1).await;
    // Same template, same email (case-insensitive).
    let (s, v) = c.issue(issue_body("DUP@example.COM", ACTIVE_1)).await;
    assert_eq!(s, 422);
    assert_eq!(
        v,
        json!({"data": {"message": "User already has this badge"}})
    );
    // Same issuer_earner_id, different email.
    let mut a = issue_body("e1@example.com", ACTIVE_2);
    a["issuer_earner_id"] = json!("earner-1");
    assert_eq!(c.issue(a).await.0, 201);
    let mut b = issue_body("e2@example.com", ACTIVE_2);
    b["issuer_earner_id"] = json!("earner-1");
    let (s, v) = c.issue(b).await;
    assert_eq!(s, 422);
    assert_eq!(v["data"]["message"], "User already has this badge");
    // Another template is fine.
    c.issue_ok("dup@example.com", ACTIVE_2).await;
    // After revocation the recipient may get the badge again.
    let (s, _) = c
        .revoke(first["id"].as_str().unwrap(), json!({"reason": "re-issue"}))
        .await;
    assert_eq!(s, 200);
    c.issue_ok("dup@example.com", ACTIVE_1).await;
    assert_eq!(c.sb().stats().duplicates_refused, 2);
    // allow_duplicate_badges lifts the rule.
    let t = c.sb().upsert_template(SeedTemplate {
        organization_id: ORG.into(),
        name: "Attendance".into(),
        allow_duplicate_badges: true,
        ..SeedTemplate::default()
    });
    c.issue_ok("dup@example.com", &t).await;
    c.issue_ok("dup@example.com", &t).await;
}

#[tokio::test]
async fn list_badges_with_filters_sort_and_get() {
    let c = Client::demo().await;
    let a = c.issue_ok("one@example.com", ACTIVE_1).await;
    let b = c.issue_ok("two@example.com", ACTIVE_1).await;
    let d = c.issue_ok("one@example.com", ACTIVE_2).await;
    c.sb()
        .set_badge_state(ORG, b["id"].as_str().unwrap(), "accepted");
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let id = |x: &Value| x["id"].as_str().unwrap().to_owned();
    let (s, v) = c.get_json(&c.org_url("badges")).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"]["total_count"], 3);
    assert_eq!(ids(&v), [id(&d), id(&b), id(&a)], "default -created_at");
    let (_, v) = c.get_json(&c.org_url("badges?sort=created_at")).await;
    assert_eq!(ids(&v), [id(&a), id(&b), id(&d)]);
    let (_, v) = c
        .get_json(&c.org_url("badges/?filter=recipient_email::ONE@example.com&sort=created_at"))
        .await;
    assert_eq!(ids(&v), [id(&a), id(&d)]);
    let (_, v) = c
        .get_json(&c.org_url(&format!("badges?filter=badge_template_id::{ACTIVE_2}")))
        .await;
    assert_eq!(ids(&v), [id(&d)]);
    let (_, v) = c
        .get_json(&c.org_url("badges?filter=state::accepted"))
        .await;
    assert_eq!(ids(&v), [id(&b)]);
    assert!(v["data"][0]["badge_url"].is_string());
    let (_, v) = c
        .get_json(&c.org_url("badges?filter=state::pending,accepted&sort=created_at"))
        .await;
    assert_eq!(v["metadata"]["total_count"], 3);
    let (_, v) = c
        .get_json(&c.org_url(&format!(
            "badges?filter=recipient_email::one@example.com|badge_template_id::{ACTIVE_1}"
        )))
        .await;
    assert_eq!(ids(&v), [id(&a)]);
    let (_, v) = c.get_json(&c.org_url("badges?sort=-issued_at&per=2")).await;
    assert_eq!(v["metadata"]["total_pages"], 2);
    assert!(v["metadata"]["next_page_url"]
        .as_str()
        .unwrap()
        .contains("sort=-issued_at"));
    let (s, _) = c.get_json(&c.org_url("badges?filter=state::lost")).await;
    assert_eq!(s, 422);
    // Single badge.
    let (s, v) = c.get_json(&c.org_url(&format!("badges/{}/", id(&a)))).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["id"], a["id"]);
    let (s, _) = c.get_json(&c.org_url("badges/unknown")).await;
    assert_eq!(s, 404);
    // The Rust API serves the same objects.
    assert_eq!(c.sb().badges(ORG).len(), 3);
}

#[tokio::test]
async fn revoke_requires_reason_and_only_once() {
    let c = Client::demo().await;
    let b = c.issue_ok("rev@example.com", ACTIVE_1).await;
    let id = b["id"].as_str().unwrap();
    let (s, v) = c.revoke(id, json!({})).await;
    assert_eq!(s, 422);
    assert_eq!(v["data"]["message"], "Missing required parameter: reason");
    let (s, v) = c
        .revoke(
            id,
            json!({"reason": "Credential withdrawn after audit", "suppress_revoke_notification_email": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "revoked");
    assert_eq!(
        v["data"]["revocation_reason"],
        "Credential withdrawn after audit"
    );
    assert!(v["data"]["state_updated_at"].is_string());
    assert!(v["data"].get("accept_badge_url").is_none());
    let (s, v) = c.revoke(id, json!({"reason": "again"})).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"].as_str().unwrap().contains("revoked"));
    let (s, _) = c.revoke("no-such-badge", json!({"reason": "x"})).await;
    assert_eq!(s, 404);
    // Query-string revoke (no body), trailing slash.
    let b2 = c.issue_ok("rev2@example.com", ACTIVE_1).await;
    let r = c
        .http
        .put(c.org_url(&format!("badges/{}/revoke/", b2["id"].as_str().unwrap())))
        .header("Authorization", basic(TOKEN))
        .query(&[
            ("reason", "query reason"),
            ("suppress_revoke_notification_email", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["revocation_reason"], "query reason");
    let st = c.sb().stats();
    assert_eq!(st.revoked, 2);
    // Revocation records badge.state.changed.
    let kinds: Vec<_> = c
        .sb()
        .events(ORG)
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "badge.state.changed").count(),
        2
    );
}

#[tokio::test]
async fn accept_page_and_badge_state_changes() {
    let c = Client::demo().await;
    let b = c.issue_ok("acc@example.com", ACTIVE_1).await;
    let r = c
        .http
        .get(b["accept_badge_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Badge accepted"));
    let (_, v) = c
        .get_json(&c.org_url(&format!("badges/{}", b["id"].as_str().unwrap())))
        .await;
    assert_eq!(v["data"]["state"], "accepted");
    let last = c.sb().events(ORG).pop().unwrap();
    assert_eq!(last["event_type"], "badge.state.changed");
    assert_eq!(last["badge"]["state"], "accepted");
    // Not pending any more: the helper refuses (try_ variant reports it).
    assert!(c
        .sb()
        .try_set_badge_state(ORG, b["id"].as_str().unwrap(), "rejected")
        .is_err());
}
