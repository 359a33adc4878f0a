//! Authentication, organization, tokens, badge template listing and events.

mod common;

use accolade_credly_sandbox::{
    Generate, Seed, SeedOrganization, SeedTemplate, SeedToken, DEMO_ORG_NAME,
};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use common::*;
use serde_json::Value;

#[tokio::test]
async fn basic_auth_variants_are_accepted() {
    let c = Client::demo().await;
    let url = c.org_url("");
    for raw in [format!("{TOKEN}:"), TOKEN.to_owned(), format!("{TOKEN}|")] {
        let r = c
            .http
            .get(&url)
            .header("Authorization", basic(&raw))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "variant {raw:?}");
    }
    // reqwest's own basic_auth (token + empty password) too.
    let r = c
        .http
        .get(&url)
        .basic_auth(TOKEN, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_missing_and_expired_tokens_are_refused() {
    let c = Client::demo().await;
    let url = c.org_url("badge_templates");
    let expect_401 = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, serde_json::json!({"data": {"message": "Unauthorized"}}));
    };
    expect_401(c.http.get(&url).send().await.unwrap()).await;
    expect_401(
        c.http
            .get(&url)
            .header("Authorization", basic("wrong-token:"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect_401(
        c.http
            .get(&url)
            .header("Authorization", "Bearer accolade-demo-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    // An expired token.
    c.sb()
        .add_token(ORG, "old-token", Some(Utc::now() - Duration::minutes(1)));
    expect_401(
        c.http
            .get(&url)
            .header("Authorization", basic("old-token:"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A fresh one added at run time works.
    c.sb().add_token(ORG, "new-token", None);
    let r = c
        .http
        .get(&url)
        .header("Authorization", basic("new-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(c.sb().stats().unauthorized >= 4);
}

#[tokio::test]
async fn token_of_another_org_gets_401_and_unknown_org_404() {
    let mut seed = Seed::demo();
    seed.organizations.push(SeedOrganization {
        id: "b2222222-0000-4000-8000-000000000002".into(),
        name: "Other Org".into(),
        tokens: vec![SeedToken::new("other-token")],
        webhook_url: None,
        oauth_clients: Vec::new(),
    });
    let c = Client::with_seed(seed).await;
    let other = format!(
        "{}organizations/b2222222-0000-4000-8000-000000000002",
        c.running.api_base_url
    );
    // Demo token on the other (existing) org: 401.
    let (s, v) = c.get_json(&other).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["data"]["message"], "Unauthorized");
    // Other token on its own org: 200.
    let r = c
        .http
        .get(&other)
        .header("Authorization", basic("other-token:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Valid token, unknown org: 404 with a message.
    let unknown = format!(
        "{}organizations/00000000-0000-4000-8000-00000000dead/badge_templates",
        c.running.api_base_url
    );
    let (s, v) = c.get_json(&unknown).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["data"]["message"].as_str().unwrap().contains("not found"));
    // Invalid token, unknown org: 401.
    let r = c
        .http
        .get(&unknown)
        .header("Authorization", basic("nope:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // GET /organizations lists what the token can reach.
    let (s, v) = c
        .get_json(&format!("{}organizations", c.running.api_base_url))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], ORG);
}

#[tokio::test]
async fn organization_get_matches_fixture_shape() {
    let c = Client::demo().await;
    c.sb()
        .set_webhook_url(ORG, Some("http://127.0.0.1:9/hook".into()));
    for url in [
        c.org_url(""),
        c.org_url("").trim_end_matches('/').to_owned(),
    ] {
        let (s, v) = c.get_json(&url).await;
        assert_eq!(s, 200, "{url}");
        assert_eq!(v["metadata"], serde_json::json!({}));
        let d = &v["data"];
        assert_eq!(d["id"], ORG);
        assert_eq!(d["name"], DEMO_ORG_NAME);
        assert_eq!(d["webhook_url"], "http://127.0.0.1:9/hook");
        assert_eq!(d["vanity_slug"], "accolade-demo-org");
        for key in [
            "website_url",
            "contact_email",
            "organization_type",
            "allowed_webhooks",
            "created_at",
            "updated_at",
            "vanity_url",
            "verified",
            "photo_url",
            "featured_badge_templates",
        ] {
            assert!(d.get(key).is_some(), "missing {key}");
        }
        assert!(is_credly_ts(d["created_at"].as_str().unwrap()));
    }
}

fn is_credly_ts(s: &str) -> bool {
    // 2025-03-04T14:41:00.000Z
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn authorization_tokens_list() {
    let c = Client::demo().await;
    let (s, v) = c.get_json(&c.org_url("authorization_tokens")).await;
    assert_eq!(s, 200);
    let t = &v["data"][0];
    assert_eq!(t["token"], TOKEN);
    assert_eq!(t["owner_id"], ORG);
    assert_eq!(t["owner"]["type"], "Organization");
    let created = chrono::DateTime::parse_from_rfc3339(t["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_days(), 180);
    assert_eq!(v["metadata"]["total_count"], 1);
    assert_eq!(v["metadata"]["per"], 50);
}

fn bulk_seed(n: usize, share: f64) -> Seed {
    let mut seed = Seed::demo();
    seed.templates.clear();
    seed.generate = Some(Generate {
        organization_id: ORG.into(),
        templates: n,
        active_share: share,
    });
    seed
}

#[tokio::test]
async fn template_pagination_follows_next_page_url_with_filter() {
    let c = Client::with_seed(bulk_seed(230, 0.5)).await;
    let first = c.org_url("badge_templates/?filter=state::active&per=20&sort=name");
    let mut url = Some(first);
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let (s, v) = c.get_json(&u).await;
        assert_eq!(s, 200, "{u}: {v}");
        pages += 1;
        let m = &v["metadata"];
        assert_eq!(m["current_page"], pages);
        assert_eq!(m["total_count"], 115);
        assert_eq!(m["total_pages"], 6);
        assert_eq!(m["per"], 20);
        let data = v["data"].as_array().unwrap();
        assert_eq!(m["count"], data.len());
        for t in data {
            assert_eq!(t["state"], "active");
            seen.push(t["name"].as_str().unwrap().to_owned());
        }
        if pages == 1 {
            assert_eq!(m["previous_page_url"], Value::Null);
        } else {
            let prev = m["previous_page_url"].as_str().unwrap();
            assert!(prev.contains(&format!("page={}", pages - 1)), "{prev}");
        }
        url = m["next_page_url"].as_str().map(str::to_owned);
        if let Some(n) = &url {
            assert!(n.starts_with(&c.running.base_url), "absolute: {n}");
            assert!(n.contains("/badge_templates/?page="), "{n}");
            assert!(n.contains("per=20") && n.contains("sort=name"), "{n}");
            assert!(n.contains("filter=state%3A%3Aactive"), "{n}");
        }
        assert!(pages <= 6, "runaway pagination");
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 115);
    // Links are built from the request's Host header.
    let r = c
        .get(&c.org_url("badge_templates?per=20"))
        .header("Host", "credly.sandbox.test:9999")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let next = v["metadata"]["next_page_url"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "http://credly.sandbox.test:9999/v1/organizations/{ORG}/badge_templates?page=2&per=20"
        )),
        "{next}"
    );
    let mut sorted = seen.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(seen, sorted, "sort=name holds across pages");
    // Page beyond the end: empty, no next link.
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?filter=state::active&per=20&page=9"))
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    assert_eq!(v["metadata"]["next_page_url"], Value::Null);
}

#[tokio::test]
async fn template_filters_per_and_sort() {
    let c = Client::demo().await;
    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Default: all states, -updated_at.
    let (_, v) = c.get_json(&c.org_url("badge_templates")).await;
    assert_eq!(v["metadata"]["total_count"], 6);
    assert_eq!(v["metadata"]["per"], 50);
    assert_eq!(names(&v)[0], "Cloud Security Practitioner");
    assert_eq!(names(&v)[5], "Legacy Systems Workshop");
    // Multi-state filter.
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?filter=state::draft,archived"))
        .await;
    assert_eq!(v["metadata"]["total_count"], 2);
    // Pipe-combined filter (URL-encoded and raw).
    for q in [
        "badge_templates?filter=state%3A%3Aactive%7Cname%3A%3Arust",
        "badge_templates?filter=state::active|name::rust",
    ] {
        let (s, v) = c.get_json(&c.org_url(q)).await;
        assert_eq!(s, 200);
        assert_eq!(
            names(&v),
            ["Async Rust in Production", "Rust Fundamentals"],
            "{q}"
        );
    }
    // Exact name and query (description) filters.
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?filter=name::%22Rust%20Fundamentals%22"))
        .await;
    assert_eq!(names(&v), ["Rust Fundamentals"]);
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?filter=query::kubernetes%20clusters"))
        .await;
    assert_eq!(names(&v), ["Kubernetes Operations Specialist"]);
    // Sorts.
    let (_, v) = c.get_json(&c.org_url("badge_templates?sort=name")).await;
    assert_eq!(names(&v)[0], "Async Rust in Production");
    let (_, v) = c.get_json(&c.org_url("badge_templates?sort=-name")).await;
    assert_eq!(names(&v)[0], "Rust Fundamentals");
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?sort=created_at"))
        .await;
    assert_eq!(names(&v)[0], "Legacy Systems Workshop");
    let (_, v) = c
        .get_json(&c.org_url("badge_templates?sort=updated_at&per=2"))
        .await;
    assert_eq!(names(&v), ["Legacy Systems Workshop", "Rust Fundamentals"]);
    assert_eq!(v["metadata"]["total_pages"], 3);
    // per is capped at 100; bad sort / filter values are 422.
    let (_, v) = c.get_json(&c.org_url("badge_templates?per=500")).await;
    assert_eq!(v["metadata"]["per"], 100);
    let (s, v) = c.get_json(&c.org_url("badge_templates?sort=colour")).await;
    assert_eq!(s, 422);
    assert!(v["data"]["message"].as_str().unwrap().contains("sort"));
    let (s, _) = c
        .get_json(&c.org_url("badge_templates?filter=state::shiny"))
        .await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn template_object_shape_and_single_get() {
    let c = Client::demo().await;
    let (s, v) = c
        .get_json(&c.org_url(&format!("badge_templates/{ACTIVE_1}/")))
        .await;
    assert_eq!(s, 200);
    let t = &v["data"];
    assert_eq!(t["id"], ACTIVE_1);
    assert_eq!(t["name"], "Rust Fundamentals");
    assert_eq!(t["state"], "active");
    assert_eq!(t["vanity_slug"], "rust-fundamentals");
    assert_eq!(t["owner"]["id"], ORG);
    assert_eq!(t["owner"]["type"], "Organization");
    assert_eq!(
        t["skills"],
        serde_json::json!(["Rust", "Systems Programming"])
    );
    assert_eq!(t["allow_duplicate_badges"], false);
    assert_eq!(t["image"]["url"], t["image_url"]);
    assert!(is_credly_ts(t["created_at"].as_str().unwrap()));
    assert_eq!(t["created_at"], "2025-01-10T09:00:00.000Z");
    for key in ["description", "url", "badges_count", "public", "updated_at"] {
        assert!(t.get(key).is_some(), "missing {key}");
    }
    // The default image is served by the sandbox.
    let img = c
        .http
        .get(t["image_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(img.status(), 200);
    assert_eq!(img.headers()["content-type"], "image/svg+xml");
    // Unknown template: 404 with a message.
    let (s, v) = c
        .get_json(&c.org_url("badge_templates/not-a-template"))
        .await;
    assert_eq!(s, 404);
    assert!(v["data"]["message"].is_string());
}

#[tokio::test]
async fn template_events_created_changed_deleted_and_forged_404() {
    let c = Client::demo().await;
    let sb = c.sb();
    let id = sb.upsert_template(SeedTemplate {
        organization_id: ORG.into(),
        name: "Webhook Wrangler".into(),
        state: "active".into(),
        description: "Handles webhooks.".into(),
        ..SeedTemplate::default()
    });
    sb.upsert_template(SeedTemplate {
        id: Some(id.clone()),
        organization_id: ORG.into(),
        name: "Webhook Wrangler".into(),
        state: "archived".into(),
        ..SeedTemplate::default()
    });
    sb.delete_template(ORG, &id);
    let events = sb.events(ORG);
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "badge_template.created",
            "badge_template.changed",
            "badge_template.deleted"
        ]
    );
    for (e, state) in events.iter().zip(["active", "archived", "archived"]) {
        let eid = e["id"].as_str().unwrap();
        let (s, v) = c.get_json(&c.org_url(&format!("events/{eid}/"))).await;
        assert_eq!(s, 200);
        let d = &v["data"];
        assert_eq!(d["id"], eid);
        assert_eq!(d["organization_id"], ORG);
        assert!(is_credly_ts(d["occurred_at"].as_str().unwrap()));
        assert_eq!(d["badge_template"]["id"], id.as_str());
        assert_eq!(d["badge_template"]["state"], state);
        assert_eq!(d["badge_template"]["owner"]["id"], ORG);
        assert!(d.get("badge").is_none());
    }
    // The deleted template is gone from the API.
    let (s, _) = c
        .get_json(&c.org_url(&format!("badge_templates/{id}")))
        .await;
    assert_eq!(s, 404);
    // A made-up event id is 404 (how forged webhooks are detected).
    let (s, v) = c
        .get_json(&c.org_url("events/1079dd43-a124-40c3-9e15-356503975771"))
        .await;
    assert_eq!(s, 404);
    assert!(v["data"]["message"].is_string());
    // The events feed is paginated, newest first by default.
    let (s, v) = c.get_json(&c.org_url("events?per=2")).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"]["total_count"], 3);
    assert_eq!(v["metadata"]["total_pages"], 2);
    assert_eq!(v["data"][0]["event_type"], "badge_template.deleted");
    let (_, v) = c
        .get_json(&c.org_url("events?filter=event_type::badge_template.created&sort=occurred_at"))
        .await;
    assert_eq!(v["metadata"]["total_count"], 1);
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let c = Client::demo().await;
    let (s, v) = c
        .get_json(&format!("{}nothing/here", c.running.api_base_url))
        .await;
    assert_eq!(s, 404);
    assert!(v["data"]["message"].is_string());
}
