//! Seed loading (TOML, JSON, the shipped example), bulk generation, and
//! bounded performance smoke checks.

mod common;

use accolade_credly_sandbox::{Generate, Sandbox, Seed};
use common::{basic, issue_body};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "credly-sandbox-test-{}-{}",
        std::process::id(),
        name.replace('.', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn seed_from_toml_and_json() {
    let toml = r#"
        [[organizations]]
        id = "11111111-0000-4000-8000-000000000001"
        name = "Toml Org"
        webhook_url = "http://127.0.0.1:1/hook"
        tokens = [{ token = "t1", expires_at = "2030-01-01T00:00:00Z" }]

        [[templates]]
        name = "From Toml"
        state = "draft"
    "#;
    let s = Seed::from_file(&temp_file("seed.toml", toml)).unwrap();
    assert_eq!(s.organizations[0].name, "Toml Org");
    assert_eq!(s.organizations[0].tokens[0].token, "t1");
    assert_eq!(
        s.organizations[0].tokens[0]
            .expires_at
            .unwrap()
            .to_rfc3339(),
        "2030-01-01T00:00:00+00:00"
    );
    assert_eq!(s.templates[0].state, "draft");
    assert_eq!(s.templates[0].organization_id, "");

    let json = r#"{
        "organizations": [{"id": "22222222-0000-4000-8000-000000000002", "tokens": [{"token": "j1"}]}],
        "templates": [{"organization_id": "22222222-0000-4000-8000-000000000002", "name": "From Json"}],
        "generate": {"templates": 10, "active_share": 0.5}
    }"#;
    let s = Seed::from_file(&temp_file("seed.json", json)).unwrap();
    assert_eq!(s.organizations[0].name, "Sandbox Organization");
    assert_eq!(s.templates[0].state, "active", "default state");
    assert_eq!(s.generate.as_ref().unwrap().templates, 10);

    // Empty seed, wrong extension, invalid content.
    assert_eq!(
        Seed::from_file(&temp_file("empty.json", "{}")).unwrap(),
        Seed::default()
    );
    assert!(Seed::from_file(&temp_file("seed.yaml", "a: 1")).is_err());
    assert!(Seed::from_file(&temp_file(
        "bad.toml",
        "[[templates]]\nname = \"x\"\nstate = \"shiny\"\n"
    ))
    .is_err());
    assert!(Seed::from_file(&temp_file(
        "orphan.json",
        r#"{"templates":[{"organization_id":"nope","name":"x"}]}"#
    ))
    .is_err());
}

#[test]
fn shipped_example_seed_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/seed.toml");
    let s = Seed::from_file(&path).unwrap();
    assert_eq!(s.organizations.len(), 1);
    assert_eq!(s.organizations[0].tokens.len(), 2);
    assert_eq!(s.templates.len(), 4);
    assert_eq!(s.generate.as_ref().unwrap().templates, 40);
    let sb = Sandbox::new(s);
    assert!(sb.badges("37659132-1c9e-4aba-8849-d1e4cb175e67").is_empty());
}

#[tokio::test]
async fn seeded_toml_serves_over_http() {
    let toml = r#"
        [[organizations]]
        id = "33333333-0000-4000-8000-000000000003"
        name = "Served Org"
        tokens = [{ token = "served" }, { token = "stale", expires_at = "2001-01-01T00:00:00Z" }]
        [[templates]]
        id = "44444444-0000-4000-8000-000000000004"
        name = "Served Template"
        [generate]
        templates = 25
        active_share = 0.2
    "#;
    let seed = Seed::from_file(&temp_file("served.toml", toml)).unwrap();
    let running = Sandbox::start(seed).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}organizations/33333333-0000-4000-8000-000000000003/badge_templates?filter=state::active",
        running.api_base_url
    );
    let v: Value = http
        .get(&url)
        .header("Authorization", basic("served:"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["metadata"]["total_count"], 1 + 5);
    let r = http
        .get(&url)
        .header("Authorization", basic("stale:"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn generate_produces_requested_count_and_mix() {
    let org = "55555555-0000-4000-8000-000000000005";
    let mut seed = Seed::default();
    seed.organizations
        .push(accolade_credly_sandbox::SeedOrganization {
            id: org.into(),
            name: "Bench".into(),
            tokens: vec![accolade_credly_sandbox::SeedToken::new("bench")],
            webhook_url: None,
            oauth_clients: Vec::new(),
        });
    seed.generate = Some(Generate {
        organization_id: org.into(),
        templates: 300,
        active_share: 0.25,
    });
    let running = Sandbox::start(seed).await.unwrap();
    let http = reqwest::Client::new();
    let count = |state: &'static str| {
        let url = format!(
            "{}organizations/{org}/badge_templates?filter=state::{state}&per=1",
            running.api_base_url
        );
        let http = http.clone();
        async move {
            let v: Value = http
                .get(url)
                .header("Authorization", basic("bench"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["metadata"]["total_count"].as_u64().unwrap()
        }
    };
    assert_eq!(count("active").await, 75);
    assert_eq!(count("draft").await, 113);
    assert_eq!(count("archived").await, 112);
    assert_eq!(count("draft,active,archived").await, 300);
}

/// 2,500 templates in 50 pages of 50, sequentially. The brief's target (well
/// under 1 s) is for release builds; debug builds get a generous bound.
#[tokio::test]
async fn listing_2500_templates_in_50_pages_is_fast() {
    let mut seed = Seed::demo();
    seed.templates.clear();
    seed.generate = Some(Generate {
        organization_id: common::ORG.into(),
        templates: 2500,
        active_share: 0.6,
    });
    let running = Sandbox::start(seed).await.unwrap();
    let http = reqwest::Client::new();
    let mut url = Some(format!(
        "{}organizations/{}/badge_templates?per=50",
        running.api_base_url,
        common::ORG
    ));
    let start = Instant::now();
    let mut pages = 0;
    let mut items = 0;
    while let Some(u) = url {
        let v: Value = http
            .get(&u)
            .header("Authorization", basic(common::TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        items += v["data"].as_array().unwrap().len();
        url = v["metadata"]["next_page_url"].as_str().map(str::to_owned);
    }
    let elapsed = start.elapsed();
    eprintln!("2,500 templates / 50 pages: {elapsed:?}");
    assert_eq!((pages, items), (50, 2500));
    let budget = if cfg!(debug_assertions) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    assert!(elapsed < budget, "{elapsed:?}");
}

/// A bounded concurrent issue burst (1,000 requests, 16 clients). Prints the rate;
/// the brief's ≥ 2,000/s target is checked in release builds only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issue_burst() {
    let running = Sandbox::start(Seed::demo()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}organizations/{}/badges",
        running.api_base_url,
        common::ORG
    );
    let total = 1000usize;
    let workers = 16usize;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let http = http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in (w..total).step_by(workers) {
                let r = http
                    .post(&url)
                    .header("Authorization", basic(common::TOKEN))
                    .json(&issue_body(
                        &format!("user{i}@example.com"),
                        common::ACTIVE_1,
                    ))
                    .send()
                    .await
                    .unwrap();
                if r.status() == 201 {
                    ok += 1;
                }
                let _ = r.bytes().await;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    eprintln!("{total} issues with {workers} clients: {elapsed:?} ({rate:.0}/s)");
    assert_eq!(ok, total);
    assert_eq!(running.sandbox.stats().issued, total as u64);
    assert_eq!(running.sandbox.badges(common::ORG).len(), total);
    if !cfg!(debug_assertions) {
        assert!(rate >= 2000.0, "{rate:.0}/s");
    }
}
