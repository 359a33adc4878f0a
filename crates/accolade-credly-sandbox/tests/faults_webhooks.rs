//! Fault injection, the control API and webhook delivery.

mod common;

use accolade_credly_sandbox::{Faults, RateLimitFault, SeedTemplate};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn latency_is_applied_to_api_only() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let t = Instant::now();
    let (s, _) = c.get_json(&c.org_url("")).await;
    assert_eq!(s, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    // Control routes are not delayed.
    let t = Instant::now();
    let r = c
        .http
        .get(format!("{}_sandbox/stats", c.running.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn fail_next_statuses_come_in_order() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        fail_next: vec![500, 429, 503, 404],
        ..Faults::default()
    });
    let mut got = Vec::new();
    for _ in 0..5 {
        let r = c.get(&c.org_url("badge_templates")).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        got.push(r.status().as_u16());
    }
    assert_eq!(got, [500, 429, 503, 404, 200]);
    assert!(c.sb().faults().fail_next.is_empty());
    let st = c.sb().stats();
    assert_eq!(st.injected_5xx, 2);
    assert_eq!(st.injected_429, 1);
    assert_eq!(st.injected_other, 1);
    assert_eq!(st.requests["list_badge_templates"], 5);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        rate_limit: Some(RateLimitFault {
            max_per_second: Some(3),
            retry_after_secs: 7,
        }),
        ..Faults::default()
    });
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let r = c.get(&c.org_url("")).send().await.unwrap();
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|h| h.to_str().unwrap().to_owned());
            let v: Value = r.json().await.unwrap();
            assert!(v["data"]["message"]
                .as_str()
                .unwrap()
                .contains("Rate limit"));
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    // The six requests take far less than a second, so they share one window
    // (a window boundary in between can only let more through, never fewer).
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("7"));
    assert!(c.sb().stats().injected_429 >= 1);
    // Throttle everything.
    c.sb().set_faults(Faults {
        rate_limit: Some(RateLimitFault {
            max_per_second: None,
            retry_after_secs: 2,
        }),
        ..Faults::default()
    });
    let r = c.get(&c.org_url("")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
}

#[tokio::test]
async fn error_rate_fails_the_configured_share() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        error_rate: 0.3,
        ..Faults::default()
    });
    let mut failed = 0;
    for _ in 0..200 {
        let r = c.get(&c.org_url("")).send().await.unwrap();
        match r.status().as_u16() {
            503 => failed += 1,
            200 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(failed, 60, "deterministic share");
    assert_eq!(c.sb().stats().injected_5xx, 60);
}

#[tokio::test]
async fn expire_all_tokens_gives_401_until_cleared() {
    let c = Client::demo().await;
    c.sb().set_faults(Faults {
        expire_all_tokens: true,
        ..Faults::default()
    });
    let (s, v) = c.get_json(&c.org_url("")).await;
    assert_eq!(s, 401);
    assert_eq!(v["data"]["message"], "Unauthorized");
    c.sb().set_faults(Faults::default());
    let (s, _) = c.get_json(&c.org_url("")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn control_api_over_http() {
    let c = Client::demo().await;
    let base = &c.running.base_url;
    let http = &c.http;
    // Faults.
    let r = http
        .put(format!("{base}_sandbox/faults"))
        .json(&json!({"fail_next": [502]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.get(&c.org_url("")).send().await.unwrap().status(), 502);
    let r = http
        .put(format!("{base}_sandbox/faults"))
        .json(&json!({"error_rate": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    http.put(format!("{base}_sandbox/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    // Templates: create, change, delete.
    let r = http
        .post(format!("{base}_sandbox/organizations/{ORG}/templates"))
        .json(&json!({"name": "Control Template", "state": "draft"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let tid = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["event_type"], "badge_template.created");
    let r = http
        .post(format!("{base}_sandbox/organizations/{ORG}/templates"))
        .json(&json!({"id": tid, "name": "Control Template", "state": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["event_type"], "badge_template.changed");
    let (_, t) = c
        .get_json(&c.org_url(&format!("badge_templates/{tid}")))
        .await;
    assert_eq!(t["data"]["state"], "active");
    assert!(t["data"]["state_updated_at"].is_string());
    let r = http
        .post(format!("{base}_sandbox/organizations/{ORG}/templates"))
        .json(&json!({"name": "Bad", "state": "shiny"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // Badge state.
    let b = c.issue_ok("ctl@example.com", &tid).await;
    let bid = b["id"].as_str().unwrap();
    let r = http
        .post(format!(
            "{base}_sandbox/organizations/{ORG}/badges/{bid}/state"
        ))
        .json(&json!({"state": "rejected"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["badge"]["state"], "rejected");
    let r = http
        .post(format!(
            "{base}_sandbox/organizations/{ORG}/badges/{bid}/state"
        ))
        .json(&json!({"state": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "only pending badges change state");
    // Badges listing.
    let v: Value = http
        .get(format!("{base}_sandbox/organizations/{ORG}/badges"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["state"], "rejected");
    // Delete.
    let r = http
        .delete(format!(
            "{base}_sandbox/organizations/{ORG}/templates/{tid}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(format!(
            "{base}_sandbox/organizations/{ORG}/templates/{tid}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Tokens.
    let r = http
        .post(format!("{base}_sandbox/organizations/{ORG}/tokens"))
        .json(&json!({"token": "ctl-token", "expires_at": "2000-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .get(c.org_url(""))
        .header("Authorization", basic("ctl-token:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "expired token");
    http.post(format!("{base}_sandbox/organizations/{ORG}/tokens"))
        .json(&json!({"token": "ctl-token"}))
        .send()
        .await
        .unwrap();
    let r = http
        .get(c.org_url(""))
        .header("Authorization", basic("ctl-token:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "re-added without expiry");
    // Webhook URL.
    let r = http
        .put(format!("{base}_sandbox/organizations/{ORG}/webhook"))
        .json(&json!({"url": "http://127.0.0.1:9/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, o) = c.get_json(&c.org_url("")).await;
    assert_eq!(o["data"]["webhook_url"], "http://127.0.0.1:9/x");
    http.put(format!("{base}_sandbox/organizations/{ORG}/webhook"))
        .json(&json!({"url": null}))
        .send()
        .await
        .unwrap();
    // Events and stats.
    let v: Value = http
        .get(format!("{base}_sandbox/organizations/{ORG}/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 5);
    let st: Value = http
        .get(format!("{base}_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["issued"], 1);
    assert_eq!(st["events"], 5);
    assert_eq!(st["injected_5xx"], 1);
    let r = http
        .get(format!("{base}_sandbox/organizations/nope/badges"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn webhooks_post_exactly_four_keys_and_events_resolve() {
    let c = Client::demo().await;
    let mut rx = Receiver::start(&[]).await;
    c.sb().set_webhook_url(ORG, Some(rx.url.clone()));
    let tid = c.sb().upsert_template(SeedTemplate {
        organization_id: ORG.into(),
        name: "Hooked".into(),
        ..SeedTemplate::default()
    });
    let b = c.issue_ok("hook@example.com", &tid).await;
    c.sb()
        .set_badge_state(ORG, b["id"].as_str().unwrap(), "accepted");
    c.sb().delete_template(ORG, &tid);
    let want = [
        "badge_template.created",
        "badge.created",
        "badge.state.changed",
        "badge_template.deleted",
    ];
    for kind in want {
        let (ctype, body) = rx.next().await;
        assert!(ctype.starts_with("application/json"), "{ctype}");
        let obj = body.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["event_type", "id", "occurred_at", "organization_id"]);
        assert_eq!(body["event_type"], kind, "in order");
        assert_eq!(body["organization_id"], ORG);
        // The receiver re-fetches the event, as Open edX does.
        let (s, ev) = c
            .get_json(&c.org_url(&format!("events/{}/", body["id"].as_str().unwrap())))
            .await;
        assert_eq!(s, 200);
        assert_eq!(ev["data"]["event_type"], kind);
        assert_eq!(ev["data"]["occurred_at"], body["occurred_at"]);
        if kind.starts_with("badge_template") {
            assert_eq!(ev["data"]["badge_template"]["id"], tid.as_str());
        } else {
            assert_eq!(ev["data"]["badge"]["id"], b["id"]);
        }
    }
    // Deliveries are recorded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.sb().stats().webhook_delivered < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = c.sb().stats();
    assert_eq!(st.webhook_delivered, 4);
    assert_eq!(st.webhook_failed, 0);
    assert_eq!(st.webhooks.len(), 4);
    assert!(st.webhooks.iter().all(|d| d.delivered && d.attempts == 1));
}

#[tokio::test]
async fn webhooks_are_retried_until_200() {
    let c = Client::demo().await;
    let mut rx = Receiver::start(&[500, 204]).await;
    c.sb().set_webhook_url(ORG, Some(rx.url.clone()));
    c.sb().upsert_template(SeedTemplate {
        organization_id: ORG.into(),
        name: "Retried".into(),
        ..SeedTemplate::default()
    });
    let (_, first) = rx.next().await;
    let (_, second) = rx.next().await;
    let (_, third) = rx.next().await;
    assert_eq!(first, second);
    assert_eq!(second, third);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.sb().stats().webhook_delivered < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = c.sb().stats();
    assert_eq!(st.webhook_attempts, 3);
    assert_eq!(st.webhooks[0].attempts, 3);
    assert!(st.webhooks[0].delivered);
}

#[tokio::test]
async fn unreachable_webhook_gives_up_and_is_recorded() {
    let c = Client::demo().await;
    // A port nothing listens on (bound, then released).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    drop(l);
    c.sb().set_webhook_url(ORG, Some(url));
    c.sb().upsert_template(SeedTemplate {
        organization_id: ORG.into(),
        name: "Lost".into(),
        ..SeedTemplate::default()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.sb().stats().webhook_failed < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = c.sb().stats();
    assert_eq!(st.webhook_failed, 1);
    assert_eq!(st.webhooks[0].attempts, 4);
    assert!(st.webhooks[0].error.is_some());
    // The event itself is still recorded and fetchable.
    assert_eq!(c.sb().events(ORG).len(), 1);
}

#[tokio::test]
async fn control_extras_health_faults_stats_orgs_and_pages() {
    let c = Client::demo().await;
    let base = &c.running.base_url;
    let http = &c.http;
    let get = |path: String| async move {
        let r = http.get(path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    let (s, body) = get(format!("{base}_sandbox/health/")).await;
    assert_eq!((s, body.as_str()), (200, r#"{"status":"ok"}"#));
    c.sb().set_faults(Faults {
        latency_ms: 5,
        fail_next: vec![500, 503],
        ..Faults::default()
    });
    let (s, body) = get(format!("{base}_sandbox/faults")).await;
    assert_eq!(s, 200);
    let f: Faults = serde_json::from_str(&body).unwrap();
    assert_eq!((f.latency_ms, f.fail_next), (5, vec![500, 503]));
    c.sb().set_faults(Faults::default());
    c.get_json(&c.org_url("")).await;
    let (_, body) = get(format!("{base}_sandbox/stats")).await;
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["requests"]["get_organization"], 1);
    let r = http
        .delete(format!("{base}_sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.sb().stats().total_requests, 0);
    let (_, body) = get(format!("{base}_sandbox/organizations")).await;
    let orgs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(orgs[0]["id"], ORG);
    assert_eq!(orgs[0]["tokens"][0]["token"], TOKEN);
    assert_eq!(orgs[0]["templates"], 6);
    // Badge page (badge_url target) and unknown ids.
    let b = c.issue_ok("page@example.com", ACTIVE_1).await;
    let (s, body) = get(format!("{base}badges/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert!(body.contains("Rust Fundamentals") && body.contains("pending"));
    assert_eq!(get(format!("{base}badges/nope")).await.0, 404);
    assert_eq!(get(format!("{base}badges/nope/accept")).await.0, 404);
    assert_eq!(get(format!("{base}images/nope/image.svg")).await.0, 404);
}
