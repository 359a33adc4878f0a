//! Issue 16's findings reproduced against the released binary: each test is the attack, and
//! fails on a build without its fix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{passing, rules_passed, DEMO, PASSING};
use crate::process::{eventually, login_csrf, opencredit_post, Operator, Served, ADMIN_PASSWORD};

/// Row 17: the database file (learners' addresses, sealed keys) is created readable by its
/// owner only, and so are SQLite's `-wal` and `-shm` files.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let op = Operator::new("db-mode");
    op.ok(&["migrate"]);
    let _server = op.serve(&[]).await;
    for file in ["accolade.db", "accolade.db-wal", "accolade.db-shm"] {
        let mode = std::fs::metadata(op.path(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {:o}", mode & 0o777);
    }
}

/// Row 14: a `next` with CR/LF or DEL after a good sign-in gave a 500 (session stored, no
/// cookie); it now goes to /admin with the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_next_with_control_characters_goes_to_the_dashboard() {
    let op = Operator::new("login-next");
    op.create_admin("ann");
    let server = op.serve(&[]).await;
    for next in ["/admin/x\r\nSet-Cookie: evil=1", "/admin/\x7f"] {
        let csrf = login_csrf(&server.http, &server.base).await;
        let res = server
            .http
            .post(server.url("/admin/login"))
            .header("cookie", format!("accolade_login_csrf={csrf}"))
            .form(&[
                ("username", "ann"),
                ("password", ADMIN_PASSWORD),
                ("csrf", &csrf),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 303, "{next:?}");
        assert_eq!(res.headers()["location"], "/admin", "{next:?}");
        let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
        assert!(
            cookies
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("accolade_session=")),
            "{cookies:?}"
        );
    }
}

/// Row 5: argon2 ran on the async runtime, so 32 concurrent sign-ins for an unknown account
/// moved `/health/live` from 1 ms to 502 ms (release build). Verification now runs on the
/// blocking pool, one core's worth less than the machine has, so requests keep a core.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_does_not_stall_other_requests() {
    let op = Operator::new("login-burst");
    let server = op.serve(&[]).await;
    let base = server.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm: Vec<_> = (0..32)
        .map(|i| {
            let base = base.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let csrf = login_csrf(&client, &base).await;
                // Sign-ins keep coming while the probe below is timed.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client
                        .post(format!("{base}/admin/login"))
                        .header("cookie", format!("accolade_login_csrf={csrf}"))
                        .form(&[
                            ("username", format!("nobody{i}")),
                            ("password", "a wrong password".to_string()),
                            ("csrf", csrf.clone()),
                        ])
                        .send()
                        .await;
                }
            })
        })
        .collect();
    // Let the burst reach the server, then time the liveness probe while it is checked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for _ in 0..15 {
        let start = Instant::now();
        let res = client.get(server.url("/health/live")).send().await.unwrap();
        assert!(res.status().is_success());
        times.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times.sort();
    let median = times[times.len() / 2];
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in storm {
        s.abort();
    }
    assert!(
        median < Duration::from_millis(150),
        "/health/live median {median:?} during 32 sign-ins: {times:?}"
    );
}

/// Row 8: 40 concurrent wrong passwords for one account were all checked against the stored
/// account read before any failure was written: 11 checks instead of 5, and the lock written
/// from a stale count. Each attempt is now counted before its password is checked, atomically
/// with the lock check: exactly 5 are checked, the rest are refused as locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_get_five_checks_then_the_lock() {
    let op = Operator::new("login-race");
    op.create_admin("ann");
    let server = op.serve(&[]).await;
    let csrf = login_csrf(&server.http, &server.base).await;
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let (http, url, csrf) = (
                server.http.clone(),
                server.url("/admin/login"),
                csrf.clone(),
            );
            tokio::spawn(async move {
                http.post(url)
                    .header("cookie", format!("accolade_login_csrf={csrf}"))
                    .form(&[
                        ("username", "ann".to_string()),
                        ("password", format!("wrong password {i}")),
                        ("csrf", csrf.clone()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, locked), (5, 35), "{statuses:?}");
    // The right password is refused while the lock lasts.
    let res = server
        .http
        .post(server.url("/admin/login"))
        .header("cookie", format!("accolade_login_csrf={csrf}"))
        .form(&[
            ("username", "ann"),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
}

/// Row 9 (webhook part): the unauthenticated Credly webhook logged `organization_id` and
/// `event_type` raw and without a length limit, so a sender could forge log lines. They are now
/// logged escaped, and oversize values are refused with a 400 before anything is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_webhook_fields_cannot_forge_log_lines() {
    let op = Operator::new("webhook-log");
    let server = op.serve(&[]).await;
    let post = |body: serde_json::Value| {
        let http = server.http.clone();
        let url = server.url("/badges/credly/webhook/");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = post(serde_json::json!({
        "id": "e1",
        "organization_id": "org\nFORGED LINE level=error",
        "event_type": "badge_template.created\u{1b}[2J",
        "occurred_at": "2026-12-07T00:00:00Z"
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(serde_json::json!({
        "id": "e2",
        "organization_id": "o".repeat(10_000),
        "event_type": "badge_template.created",
        "occurred_at": "2026-12-07T00:00:00Z"
    }))
    .await;
    assert_eq!(status, 400, "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(log.contains("Credly webhook ignored"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED LINE")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}'), "a raw escape in the log");
    assert!(
        !log.contains(&"o".repeat(200)),
        "the oversize id was logged"
    );
}

/// Row 9 (login part): the username of a failed sign-in was logged raw, so anyone could write
/// lines into the log through the login form. It is logged escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_username_cannot_forge_log_lines() {
    let op = Operator::new("login-log");
    op.create_admin("ann");
    // Unknown accounts are logged at info.
    let server = op.serve_env(&[], &[("ACCOLADE_LOG__LEVEL", "info")]).await;
    for username in [
        "nobody\nFORGED LINE level=error",
        "ann\nFORGED LINE level=error",
        "x\u{1b}[2J",
    ] {
        let csrf = login_csrf(&server.http, &server.base).await;
        let res = server
            .http
            .post(server.url("/admin/login"))
            .header("cookie", format!("accolade_login_csrf={csrf}"))
            .form(&[
                ("username", username),
                ("password", "a wrong password"),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{username:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(log.contains("admin login refused"), "{log}");
    // The form's username is lower-cased before it is logged.
    assert!(
        !log.lines()
            .any(|l| l.to_lowercase().starts_with("forged line")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}'), "a raw escape in the log");
}

/// Row 10: at debug level the request span logged the whole URI, with the access token an Open
/// Credit member may pass in the query string. Only the path is logged now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_tokens_never_reach_the_log() {
    let op = Operator::new("log-query").set("ACCOLADE_LOG__LEVEL", "debug");
    let server = op.serve(&[]).await;
    let res = server
        .http
        .get(server.url("/v1.1/me?access_token=sekrit-token-in-query"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(log.contains("/v1.1/me"), "the request is logged: {log}");
    assert!(!log.contains("sekrit-token-in-query"), "{log}");
}

/// Row 13: `/metrics` was public, and its series name Credly organizations. With
/// `http.metrics_token` set it answers only with that bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_kept_behind_a_token() {
    let op = Operator::new("metrics-token").set("ACCOLADE_HTTP__METRICS_TOKEN", "scrape-me-please");
    let server = op.serve(&[]).await;
    let get = |auth: Option<&str>| {
        let mut req = server.http.get(server.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap() }
    };
    let refused = get(None).await;
    assert_eq!(refused.status().as_u16(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "metrics_token_required");
    assert_eq!(
        get(Some("Bearer wrong-token-value"))
            .await
            .status()
            .as_u16(),
        401
    );
    let ok = get(Some("Bearer scrape-me-please")).await;
    assert_eq!(ok.status().as_u16(), 200);
    assert!(ok.text().await.unwrap().contains("accolade_"));
    // Without the setting it stays public (the default, for a scraper on a private network).
    let open = Operator::new("metrics-open").serve(&[]).await;
    let res = open.http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

/// Row 11: with no header read timeout, 200 slowloris connections (a request head trickled one
/// byte at a time, or nothing at all) stayed open after 90 s. Each must now deliver its head
/// within `http.header_read_timeout_secs` (2 s here) or is closed; silent connections too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let op = Operator::new("slowloris");
    let server = op
        .serve_env(&[], &[("ACCOLADE_HTTP__HEADER_READ_TIMEOUT_SECS", "2")])
        .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                let mut sent = 0;
                let mut buf = [0u8; 512];
                // Odd clients trickle a byte every 100 ms, even ones stay silent; both wait for
                // the server to close (read gives 0 or an error) for at most 15 s.
                let deadline = Instant::now() + Duration::from_secs(15);
                while Instant::now() < deadline {
                    if i % 2 == 1 && sent < head.len() {
                        if conn.write_all(&head[sent..sent + 1]).await.is_err() {
                            return Some(Instant::now());
                        }
                        sent += 1;
                    }
                    match tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
                        // A 408 answer, then the close.
                        Ok(Ok(_)) => {}
                        Err(_) => {}
                    }
                }
                None
            })
        })
        .collect();
    let mut closed_after = Vec::new();
    for c in clients {
        closed_after.push(c.await.unwrap().map(|at| at - started));
    }
    let open = closed_after.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        open, 0,
        "{open} of 200 slow connections still open after 15 s"
    );
    let latest = closed_after.iter().flatten().max().unwrap();
    assert!(*latest < Duration::from_secs(8), "closed after {latest:?}");
    // Normal requests are unaffected.
    let res = reqwest::get(server.url("/health/live")).await.unwrap();
    assert!(res.status().is_success());
}

/// Row 11 (cap): beyond `http.max_connections` new connections wait until one closes, rather
/// than each costing a descriptor and a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let op = Operator::new("conn-cap");
    let server = op
        .serve_env(
            &[],
            &[
                ("ACCOLADE_HTTP__MAX_CONNECTIONS", "3"),
                ("ACCOLADE_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
            ],
        )
        .await;
    // Server::serve_env waited for readiness on a connection of its own; let it close.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let waited = fresh()
        .get(server.url("/health/live"))
        .timeout(Duration::from_millis(800))
        .send()
        .await;
    assert!(
        waited.is_err(),
        "a fourth connection is served only when a slot frees"
    );
    // The silent connections are closed by the header timeout; then requests are served again.
    let started = Instant::now();
    let res = fresh()
        .get(server.url("/health/live"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
}

/// The Credly organization and template of the webhook-flood tests.
const FLOOD_ORG: &str = "5f0c2a9e-1b7d-4e3a-9c6f-2d8b4a1e0f37";
const FLOOD_TEMPLATE: &str = "00000000-0000-4000-8000-0000000f100d";
const FLOOD_KEY: &str = "flood-org-key-0001";

/// A server against the Credly sandbox with an organization whose template is active and awards
/// on a passing grade; `env` is added to its settings.
async fn credly_server(
    name: &str,
    env: &[(&str, &str)],
) -> (accolade_credly_sandbox::RunningSandbox, Operator, Served) {
    use accolade_credly_sandbox::{Sandbox, Seed, SeedOrganization, SeedTemplate};
    let sb = Sandbox::start(Seed {
        organizations: vec![SeedOrganization {
            id: FLOOD_ORG.into(),
            name: "Flooded Org".into(),
            tokens: Vec::new(),
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: vec![SeedTemplate {
            id: Some(FLOOD_TEMPLATE.into()),
            organization_id: FLOOD_ORG.into(),
            name: "Passed the demo course".into(),
            state: "active".into(),
            description: "Awarded on a passing grade".into(),
            image_url: Some("https://images.example/f.png".into()),
            ..Default::default()
        }],
        generate: None,
    })
    .await
    .unwrap();
    sb.sandbox.add_token(FLOOD_ORG, FLOOD_KEY, None);
    let op = Operator::new(name);
    let token = op.token();
    let mut all = vec![
        ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.as_str()),
        ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100"),
    ];
    all.extend_from_slice(env);
    let server = op.serve_env(&[], &all).await.with_token(&token);
    for (path, body, expected) in [
        (
            "/credly/organizations".to_string(),
            Some(json!({"uuid": FLOOD_ORG, "api_key": FLOOD_KEY})),
            201,
        ),
        (format!("/credly/organizations/{FLOOD_ORG}/sync"), None, 200),
        (
            format!("/templates/{FLOOD_TEMPLATE}/requirements"),
            Some(json!({"event_type": PASSING, "rules": rules_passed(DEMO)})),
            201,
        ),
        (format!("/templates/{FLOOD_TEMPLATE}/activate"), None, 200),
    ] {
        let (s, r) = server.api("POST", &path, body).await;
        assert_eq!(s, expected, "{path}: {r}");
    }
    (sb, op, server)
}

/// Posts `n` forged notifications (random event ids) for the flooded organization, 32 at a
/// time; returns how many got each status.
async fn forge_notifications(server: &Served, n: usize) -> std::collections::BTreeMap<u16, usize> {
    use futures::StreamExt;
    let client = reqwest::Client::new();
    let url = server.url("/badges/credly/webhook/");
    let statuses: Vec<u16> = futures::stream::iter(0..n)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .post(url)
                    .json(&serde_json::json!({
                        "id": format!("forged-{i}-{}", uuid::Uuid::new_v4()),
                        "organization_id": FLOOD_ORG,
                        "event_type": "badge.state.changed",
                        "occurred_at": "2026-12-07T00:00:00Z",
                    }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(s).or_insert(0) += 1;
    }
    counts
}

/// Row 1: 3,000 forged Credly webhooks for a configured organization were all queued, and each
/// Credly lookup shared the organization's 10/s limiter and claim order with issuing, so a real
/// award waited 4 min 47 s. Now the organization's unconfirmed backlog is capped (then 503, which
/// Credly retries) and confirmations run on their own lane with their own share of the rate: a
/// real award right after the flood reaches Credly within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_webhooks_do_not_delay_a_real_award() {
    let (sb, _op, server) = credly_server(
        "webhook-flood",
        // The sender-address budget is tested on its own; here every post reaches the receiver.
        &[("ACCOLADE_CREDLY__WEBHOOK_PER_SOURCE_PER_MINUTE", "1000000")],
    )
    .await;
    let counts = forge_notifications(&server, 3000).await;
    // The default backlog cap: 1,000 queued (a few more when posts race the count: at most
    // one per concurrent request), the rest refused for now.
    let queued = counts.get(&200).copied().unwrap_or(0);
    assert!((1000..1032).contains(&queued), "{counts:?}");
    assert_eq!(
        counts.get(&503).copied().unwrap_or(0),
        3000 - queued,
        "{counts:?}"
    );
    let (_, pending) = server
        .api(
            "GET",
            "/jobs?kind=credly.webhook&status=pending&limit=1",
            None,
        )
        .await;
    assert!(
        pending["data"].as_array().is_some_and(|d| !d.is_empty()),
        "the forged ones wait: {pending}"
    );

    let started = Instant::now();
    let (s, r) = server
        .api(
            "POST",
            "/events",
            Some(passing("real-1", "ada", DEMO, true)),
        )
        .await;
    assert_eq!(s, 202, "{r}");
    let sandbox = &sb.sandbox;
    eventually(
        Duration::from_secs(60),
        "the real award reaches Credly",
        || async move { sandbox.badges(FLOOD_ORG).first().cloned() },
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "a real award took {took:?} behind 3,000 forged webhooks"
    );
}

/// Row 1 (per source): one address may post `credly.webhook_per_source_per_minute` notifications
/// a minute; more get 429 `webhook_rate_limited` with Retry-After, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_posting_too_many_webhooks_is_throttled() {
    let (_sb, _op, server) = credly_server(
        "webhook-per-source",
        &[("ACCOLADE_CREDLY__WEBHOOK_PER_SOURCE_PER_MINUTE", "20")],
    )
    .await;
    // The budget is per clock minute: start well inside one so the burst is counted in it.
    crate::opencredit::fresh_minute(20).await;
    let counts = forge_notifications(&server, 30).await;
    let ok = counts.get(&200).copied().unwrap_or(0);
    assert_eq!(
        (ok, counts.get(&429).copied()),
        (20, Some(10)),
        "{counts:?}"
    );
    let res = reqwest::Client::new()
        .post(server.url("/badges/credly/webhook/"))
        .json(&serde_json::json!({"id": "one-more", "organization_id": FLOOD_ORG, "event_type": "badge.state.changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "webhook_rate_limited", "{body}");
    let (_, listed) = server
        .api("GET", "/credly/notifications?limit=100", None)
        .await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        ok,
        "refused posts record nothing"
    );
}

// ---- row 6: outbound webhooks and internal addresses ------------------------------------------

const ALLOW_ENV: &str = "ACCOLADE_WEBHOOKS__ALLOWED_DESTINATIONS";

/// A served binary with an API token, and its webhook subscriptions made through the API.
async fn serve_with_token(op: &Operator, env: &[(&str, &str)]) -> Served {
    let token = op.token();
    op.serve_env(&[], env).await.with_token(&token)
}

/// A badge template for the demo course, then a passing event for `learner`: one award, so one
/// delivery per subscription.
async fn award_through_the_api(server: &Served, learner: &str) {
    let (s, t) = server
        .api(
            "POST",
            "/templates",
            Some(json!({"name": "Demo", "active": false})),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_str().unwrap();
    let (s, r) = server
        .api(
            "POST",
            &format!("/templates/{id}/requirements"),
            Some(json!({"event_type": PASSING, "group": "A", "rules": rules_passed(DEMO)})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = server
        .api(
            "POST",
            &format!("/templates/{id}/activate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = server
        .api(
            "POST",
            "/events",
            Some(json!([passing(
                &format!("ev-{learner}"),
                learner,
                DEMO,
                true
            )])),
        )
        .await;
    assert_eq!(s, 202, "{r}");
}

/// The subscription's deliveries once each has been attempted at least once.
async fn first_attempts(server: &Served, hook: &str) -> Vec<Value> {
    eventually(
        Duration::from_secs(60),
        "a first delivery attempt",
        || async {
            let (s, body) = server
                .api("GET", &format!("/webhooks/{hook}/deliveries"), None)
                .await;
            assert_eq!(s, 200, "{body}");
            let items = body["data"].as_array().unwrap().clone();
            // Claiming counts the attempt before it is made; its outcome (an error, a status
            // or a final state) is written after, so wait for that.
            let attempted = |d: &Value| {
                d["attempts"].as_i64() >= Some(1)
                    && (!d["last_error"].is_null()
                        || !d["last_status"].is_null()
                        || d["status"] != "pending")
            };
            (!items.is_empty() && items.iter().all(attempted)).then_some(items)
        },
    )
    .await
}

/// Row 6 (subscribing): internal URLs were accepted, and the worker then POSTed signed events
/// to loopback services and the cloud metadata endpoint. They are refused with
/// `webhook_destination_private` however the address is written, and a name resolving to
/// loopback is refused too; `webhooks.allowed_destinations` admits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_internal_addresses_are_refused_unless_allowed() {
    let internal = [
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "http://192.168.1.20/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ];
    let op = Operator::new("ssrf-subscribe");
    let server = serve_with_token(&op, &[]).await;
    for url in internal {
        let (s, e) = server
            .api("POST", "/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(
            (s, e["code"].as_str()),
            (400, Some("webhook_destination_private")),
            "{url}: {e}"
        );
    }
    let (_, list) = server.api("GET", "/webhooks", None).await;
    assert_eq!(list["data"], json!([]), "nothing stored");
    // Changing a subscription's URL is checked the same way.
    let (s, public) = server
        .api(
            "POST",
            "/webhooks",
            Some(json!({"url": "https://receiver.example/hook"})),
        )
        .await;
    assert_eq!(s, 201, "{public}");
    let path = format!("/webhooks/{}", public["id"].as_str().unwrap());
    let (s, e) = server
        .api(
            "PATCH",
            &path,
            Some(json!({"url": "http://169.254.169.254/"})),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("webhook_destination_private")),
        "{e}"
    );
    drop(server);

    let allowed = "127.0.0.0/8, 169.254.169.254, localhost, ::1, 10.0.0.0/8, 100.64.0.0/10, \
                   192.168.0.0/16, fd00::/8, 0.0.0.0";
    let server = serve_with_token(&op, &[(ALLOW_ENV, allowed)]).await;
    for url in internal {
        let (s, created) = server
            .api("POST", "/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(s, 201, "{url} with the allow-list: {created}");
    }
}

/// Row 6 (error text): the first ~200 characters of a failing subscriber's answer were stored
/// as the delivery's `last_error`, shown in the API and the admin UI, so a URL aimed at an
/// internal service read its error pages back. Only our own summary is stored now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribers_answer_never_reaches_the_delivery_log() {
    let secret_body =
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY internal trace";
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string(secret_body))
        .mount(&receiver)
        .await;
    let op = Operator::new("ssrf-body");
    op.create_admin("ann");
    // Retried after a second: on a loaded machine an attempt may time out before the receiver
    // answers; the test waits for an attempt that got the 500.
    let server = serve_with_token(
        &op,
        &[
            (ALLOW_ENV, "127.0.0.1"),
            ("ACCOLADE_WEBHOOKS__RETRY_SCHEDULE", "1s"),
        ],
    )
    .await;
    let (s, hook) = server
        .api(
            "POST",
            "/webhooks",
            Some(json!({"url": format!("{}/hook", receiver.uri())})),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    award_through_the_api(&server, "bob").await;
    let hook = hook["id"].as_str().unwrap();
    let server_ref = &server;
    let deliveries = eventually(
        Duration::from_secs(60),
        "an attempt answered 500",
        || async move {
            let d = first_attempts(server_ref, hook).await;
            (d[0]["last_status"] == 500).then_some(d)
        },
    )
    .await;
    assert_eq!(deliveries[0]["last_status"], 500, "{deliveries:?}");
    assert_eq!(
        deliveries[0]["last_error"],
        "HTTP 500 Internal Server Error from the subscriber"
    );
    let one = format!(
        "/webhook-deliveries/{}",
        deliveries[0]["id"].as_str().unwrap()
    );
    let (_, listed) = server.api("GET", &one, None).await;
    let session = server.admin_session("ann").await;
    let (status, page) = server.admin_page(&session, "/admin/webhooks").await;
    assert_eq!(status, 200);
    assert!(page.contains("HTTP 500"), "{page}");
    for shown in [
        serde_json::to_string(&deliveries).unwrap(),
        listed.to_string(),
        page,
    ] {
        assert!(
            !shown.contains("wJalrXUtnFEMI"),
            "the answer leaked: {shown}"
        );
        assert!(
            !shown.contains("internal trace"),
            "the answer leaked: {shown}"
        );
    }
}

/// Row 6 (sending): the destination is checked on every attempt, not only when subscribing, so
/// a name that later resolves to an internal address (DNS rebinding) reaches nothing. Modelled
/// with subscriptions made while loopback was allowed (an IP literal and `localhost`, a name
/// resolving to 127.0.0.1), then a restart without the allow-list: both deliveries fail with
/// our summary and no request reaches the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_is_checked_again_when_sending() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let port = receiver.address().port();
    let op = Operator::new("ssrf-send");
    let server = serve_with_token(&op, &[(ALLOW_ENV, "127.0.0.1, localhost")]).await;
    let mut hooks = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/literal"),
        format!("http://localhost:{port}/name"),
    ] {
        let (s, hook) = server
            .api("POST", "/webhooks", Some(json!({ "url": url })))
            .await;
        assert_eq!(s, 201, "{url}: {hook}");
        hooks.push(hook["id"].as_str().unwrap().to_string());
    }
    drop(server);

    let server = serve_with_token(&op, &[]).await;
    award_through_the_api(&server, "carol").await;
    for hook in &hooks {
        let deliveries = first_attempts(&server, hook).await;
        assert_eq!(deliveries.len(), 1);
        assert_eq!(
            deliveries[0]["last_error"], "destination refused: private address",
            "{hook}: {deliveries:?}"
        );
        assert_eq!(deliveries[0]["last_status"], Value::Null);
        assert_eq!(deliveries[0]["status"], "pending", "retried as usual");
    }
    let got = receiver.received_requests().await.unwrap();
    assert!(got.is_empty(), "a request reached the receiver: {got:?}");
}

// ---- row 3: Open Credit member badges and the recipient's address -----------------------------

const OC_PASSWORD: &str = "correct horse battery staple";

/// An Open Credit app's credentials, for `/v1.1` calls against a served binary.
struct OcApp<'a> {
    server: &'a Served,
    key: String,
    secret: String,
}

impl<'a> OcApp<'a> {
    /// An Enterprise app (it may register members as verified) made through the admin API.
    async fn enterprise(server: &'a Served) -> OcApp<'a> {
        let (s, app) = server
            .api(
                "POST",
                "/opencredit/apps",
                Some(json!({"name": "Hardening", "tier": "enterprise"})),
            )
            .await;
        assert_eq!(s, 201, "{app}");
        OcApp {
            server,
            key: app["api_key"].as_str().unwrap().into(),
            secret: app["api_secret"].as_str().unwrap().into(),
        }
    }

    /// `METHOD /v1.1{path}` with the app's headers and a form body; the status, the JSON and
    /// the raw body text.
    async fn call(&self, method: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value, String) {
        let method: reqwest::Method = method.parse().unwrap();
        let mut req = self
            .server
            .http
            .request(method, self.server.url(&format!("/v1.1{path}")))
            .header("X-Api-Key", &self.key)
            .header("X-Api-Secret", &self.secret);
        if !form.is_empty() {
            req = req.form(form);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    /// Registers a member (verified or not); returns its id and, when verified, an access token.
    async fn member(&self, email: &str, verified: bool) -> (i64, Option<String>) {
        let mut form = vec![
            ("email", email),
            ("password", OC_PASSWORD),
            ("first_name", "Test"),
            ("last_name", "Member"),
        ];
        if verified {
            form.push(("verified", "1"));
        }
        let (s, r, _) = self.call("POST", "/authenticate/register", &form).await;
        assert_eq!(s, 200, "{r}");
        let id = r["data"]["id"].as_i64().unwrap();
        if !verified {
            return (id, None);
        }
        let r = self
            .server
            .http
            .post(self.server.url("/v1.1/authenticate"))
            .header("X-Api-Key", &self.key)
            .header("X-Api-Secret", &self.secret)
            .basic_auth(email, Some(OC_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        (
            id,
            Some(body["data"]["token"].as_str().unwrap().to_string()),
        )
    }
}

fn tiny_png_base64() -> String {
    use base64::Engine;
    let img = image::RgbaImage::from_pixel(40, 40, image::Rgba([20, 120, 200, 255]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Row 3: any member learned any member's address: `POST /v1.1/member_badges` with
/// `member_id=N`, then `GET /v1.1/member_badges/{id}` answered with N's address (verified or
/// not), and the giver could delete the badge afterwards. A giver now sees the address only
/// when they typed it; the recipient still sees their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_to_a_member_id_does_not_reveal_the_members_address() {
    let op = Operator::new("oc-address");
    let server = serve_with_token(&op, &[]).await;
    let oc = OcApp::enterprise(&server).await;
    let (_, giver) = oc.member("mallory@example.org", true).await;
    let giver = giver.unwrap();
    let (bob, bob_token) = oc.member("bob.hidden@example.org", true).await;
    let bob_token = bob_token.unwrap();
    let (carol, _) = oc.member("carol.unverified@example.org", false).await;
    let image = tiny_png_base64();
    let (s, badge, _) = oc
        .call(
            "POST",
            "/badges",
            &[
                ("access_token", &giver),
                ("title", "Kudos"),
                ("attachment", &image),
            ],
        )
        .await;
    assert_eq!(s, 200, "{badge}");
    let badge = badge["data"].as_i64().unwrap().to_string();
    let give = |to: (&'static str, String)| {
        let (giver, badge) = (giver.clone(), badge.clone());
        let oc = &oc;
        async move {
            let form = [
                ("access_token", giver.as_str()),
                ("badge_id", badge.as_str()),
                (to.0, to.1.as_str()),
            ];
            let (s, r, _) = oc.call("POST", "/member_badges", &form).await;
            assert_eq!(s, 200, "{r}");
            r["data"].as_i64().unwrap()
        }
    };
    let get = |id: i64, token: &str| {
        let path = format!("/member_badges/{id}?access_token={token}");
        let oc = &oc;
        async move {
            let (s, body, text) = oc.call("GET", &path, &[]).await;
            assert_eq!(s, 200, "{text}");
            (body, text)
        }
    };

    for (member, address) in [
        (bob, "bob.hidden@example.org"),
        (carol, "carol.unverified@example.org"),
    ] {
        let given = give(("member_id", member.to_string())).await;
        let (body, text) = get(given, &giver).await;
        assert_eq!(body["data"]["email"], Value::Null, "{text}");
        let local_part = address.split('@').next().unwrap();
        assert!(
            !text.to_lowercase().contains(local_part),
            "the giver learned {address}: {text}"
        );
    }
    // The recipient's own view is unchanged.
    let by_id = give(("member_id", bob.to_string())).await;
    let (own, _) = get(by_id, &bob_token).await;
    assert_eq!(own["data"]["email"], "bob.hidden@example.org");
    // Addressed by email, the giver sees the address they typed.
    let by_email = give(("email", "bob.hidden@example.org".to_string())).await;
    let (body, _) = get(by_email, &giver).await;
    assert_eq!(body["data"]["email"], "bob.hidden@example.org");
    let (_, mine, text) = oc
        .call("GET", &format!("/me/badges?access_token={bob_token}"), &[])
        .await;
    assert_eq!(mine["paging"]["total_results"], 3, "{text}");
    assert!(mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|mb| mb["email"] == "bob.hidden@example.org"));
}

// ---- row 12: API tokens with scopes, expiry and revocation ------------------------------------

/// `METHOD /api/v1{path}` with `token`; the status and the JSON body (Null when none).
async fn with_token(
    server: &Served,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            server.url(&format!("/api/v1{path}")),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Row 12: every admin token could do everything, forever: the LMS's ingest token could create
/// webhooks and Enterprise apps, and nothing listed or revoked tokens. Tokens now carry scopes
/// (`events:write`, `read`, `admin`), an optional expiry, and can be listed and revoked (API and
/// CLI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_token_can_send_events_and_nothing_else() {
    let op = Operator::new("token-scopes");
    let admin = op.token();
    let ingest = op
        .ok(&[
            "admin",
            "create-token",
            "--name",
            "lms-ingest",
            "--scope",
            "events:write",
        ])
        .trim()
        .to_string();
    let server = op.serve(&[]).await;

    let (s, r) = with_token(
        &server,
        &ingest,
        "POST",
        "/events",
        Some(passing("ev-1", "ada", DEMO, true)),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    for (method, path, body) in [
        ("GET", "/templates", None),
        ("POST", "/templates", Some(json!({"name": "Sneaky"}))),
        (
            "POST",
            "/webhooks",
            Some(json!({"url": "https://hooks.example/x"})),
        ),
        (
            "POST",
            "/opencredit/apps",
            Some(json!({"name": "Rogue", "tier": "enterprise"})),
        ),
        ("GET", "/tokens", None),
        (
            "POST",
            "/tokens",
            Some(json!({"name": "escalate", "scopes": ["admin"]})),
        ),
    ] {
        let (s, r) = with_token(&server, &ingest, method, path, body).await;
        assert_eq!(
            (s, r["code"].as_str()),
            (403, Some("insufficient_scope")),
            "{method} {path}: {r}"
        );
    }
    let (_, templates) = with_token(&server, &admin, "GET", "/templates", None).await;
    assert_eq!(
        templates["data"].as_array().map(Vec::len),
        Some(0),
        "nothing was created: {templates}"
    );

    // A read token made over the API: reads, cannot write.
    let (s, made) = with_token(
        &server,
        &admin,
        "POST",
        "/tokens",
        Some(json!({"name": "dashboard", "scopes": ["read"], "expires_in": "90d"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let reader = made["secret"].as_str().unwrap().to_string();
    assert!(made["expires_at"].is_string(), "{made}");
    assert_eq!(
        with_token(&server, &reader, "GET", "/templates", None)
            .await
            .0,
        200
    );
    assert_eq!(
        with_token(
            &server,
            &reader,
            "POST",
            "/events",
            Some(passing("ev-2", "bob", DEMO, true))
        )
        .await
        .0,
        403
    );
    let (s, r) = with_token(
        &server,
        &admin,
        "POST",
        "/tokens",
        Some(json!({"name": "x", "scopes": ["root"]})),
    )
    .await;
    assert_eq!((s, r["code"].as_str()), (400, Some("unknown_scope")), "{r}");

    // Listed (never with secrets), then revoked over the API: refused at once.
    let (s, list) = with_token(&server, &admin, "GET", "/tokens", None).await;
    assert_eq!(s, 200, "{list}");
    let names: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["scopes"].clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("test", json!(["admin"])),
            ("lms-ingest", json!(["events:write"])),
            ("dashboard", json!(["read"]))
        ],
        "{list}"
    );
    assert!(
        !list.to_string().contains(&ingest) && !list.to_string().contains("secret"),
        "{list}"
    );
    let ingest_id = list["data"][1]["id"].as_str().unwrap().to_string();
    assert!(
        list["data"][1]["last_used_at"].is_string(),
        "use is recorded: {list}"
    );
    let (s, revoked) = with_token(
        &server,
        &admin,
        "DELETE",
        &format!("/tokens/{ingest_id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, revoked["state"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    let (s, _) = with_token(
        &server,
        &ingest,
        "POST",
        "/events",
        Some(passing("ev-3", "cy", DEMO, true)),
    )
    .await;
    assert_eq!(s, 401, "a revoked token is refused");
    let (s, r) = with_token(&server, &admin, "DELETE", "/tokens/tok_unknown", None).await;
    assert_eq!(
        (s, r["code"].as_str()),
        (404, Some("token_not_found")),
        "{r}"
    );
}

/// Row 12 (CLI, expiry): `accolade admin list-tokens` and `revoke-token` act on the database a
/// running server uses, which refuses the token within its cache period; a token made with
/// `--expires-in` is refused once it has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_are_revoked_from_the_cli() {
    let op = Operator::new("token-cli");
    let short = op
        .ok(&[
            "admin",
            "create-token",
            "--name",
            "short",
            "--scope",
            "read",
            "--expires-in",
            "3s",
        ])
        .trim()
        .to_string();
    let doomed = op
        .ok(&["admin", "create-token", "--name", "doomed"])
        .trim()
        .to_string();
    let server = op.serve(&[]).await;
    assert_eq!(
        with_token(&server, &short, "GET", "/templates", None)
            .await
            .0,
        200
    );
    assert_eq!(
        with_token(&server, &doomed, "GET", "/templates", None)
            .await
            .0,
        200
    );

    let listed = op.ok(&["admin", "list-tokens"]);
    let doomed_id = listed
        .lines()
        .find(|l| l.contains("\tdoomed\t"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("{listed}"))
        .to_string();
    assert!(listed.contains("\tshort\tread\tactive\t"), "{listed}");
    assert!(
        !listed.contains(&doomed) && !listed.contains(&short),
        "no secrets: {listed}"
    );
    op.ok(&["admin", "revoke-token", &doomed_id]);
    assert!(op
        .ok(&["admin", "list-tokens"])
        .contains("\tdoomed\tadmin\trevoked\t"));
    let failed = op.run(&["admin", "revoke-token", "tok_nope"]);
    assert!(!failed.status.success());

    let server = &server;
    let (short, doomed) = (&short, &doomed);
    eventually(
        Duration::from_secs(15),
        "the revoked and the expired token are refused",
        || async move {
            let a = with_token(server, doomed, "GET", "/templates", None)
                .await
                .0;
            let b = with_token(server, short, "GET", "/templates", None).await.0;
            (a == 401 && b == 401).then_some(())
        },
    )
    .await;
}

/// A PNG of one colour, compressed hard: about a thousandth of its decoded size.
fn one_colour_png(width: u32, height: u32) -> Vec<u8> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 60]));
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::NoFilter);
    img.write_with_encoder(encoder).unwrap();
    out
}

/// A lossless WebP of one colour: a few kilobytes whatever its dimensions.
fn one_colour_webp(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 60, 255]));
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
        .unwrap();
    out
}

/// Latencies of `GET /health/live`, one probe every 10 ms until `done` is true and at least
/// `at_least` has passed.
async fn probe_liveness(
    server: &Served,
    at_least: Duration,
    done: impl Fn() -> bool,
) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut times = Vec::new();
    while !(done() && started.elapsed() >= at_least) {
        let t = Instant::now();
        let res = client.get(server.url("/health/live")).send().await.unwrap();
        assert!(res.status().is_success());
        times.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    times.sort();
    times
}

/// The 99th percentile of sorted latencies.
fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

/// An Open Credit answer: the status, `Retry-After` and the envelope.
type OcAnswer = (u16, Option<String>, serde_json::Value);

/// Adds one to its counter when dropped.
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// `n` concurrent `POST /v1.1/badges` with `attachment`; a counter of the answered ones and
/// the tasks (each gives the status, `Retry-After` and the envelope).
fn upload_badges(
    server: &Served,
    app: &crate::process::OcApp,
    token: &str,
    attachment: &str,
    n: usize,
) -> (Arc<AtomicUsize>, Vec<tokio::task::JoinHandle<OcAnswer>>) {
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks = (0..n)
        .map(|i| {
            let (http, base, app) = (server.http.clone(), server.base.clone(), app.clone());
            let (token, attachment, answered) =
                (token.to_string(), attachment.to_string(), answered.clone());
            tokio::spawn(async move {
                // Counted however the upload ends, a failed request included.
                let _answered = CountOnDrop(answered);
                let title = format!("Badge {i}");
                opencredit_post(
                    &http,
                    &base,
                    &app,
                    "/badges",
                    &[
                        ("access_token", &token),
                        ("title", &title),
                        ("attachment", &attachment),
                    ],
                )
                .await
            })
        })
        .collect();
    (answered, tasks)
}

/// Row 4: an image costs by its pixels, not its bytes. A lossless WebP of a few kilobytes
/// declaring 4096 x 4096 (within `max_image_side`) was decoded and rendered in full, each upload
/// on its own blocking thread: 40 at once took the server from 141 MB to 3.87 GB, and the work
/// went on after the requests' 408. Uploads are now checked against the pixel budget (`max_image_pixels`, 2048 x
/// 2048) from their header, before anything is decoded, and refused with 400 IMAGE_TOO_LARGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_image_uploads_cost_neither_memory_nor_liveness() {
    let op = Operator::new("image-bombs");
    let app = op.opencredit_app("enterprise");
    let server = op.serve(&[]).await;
    let token = server.opencredit_member(&app, "ada@example.org").await;
    let bomb = one_colour_webp(4096, 4096);
    assert!(bomb.len() < 10_000, "{} bytes", bomb.len());
    let attachment = base64::engine::general_purpose::STANDARD.encode(&bomb);
    let rss_before = server.memory_kib("VmRSS");
    let (answered, uploads) = upload_badges(&server, &app, &token, &attachment, 40);
    let live = probe_liveness(&server, Duration::from_secs(1), || {
        answered.load(Ordering::Acquire) == 40
    })
    .await;
    let peak = server.memory_kib("VmHWM");
    let answers = futures::future::join_all(uploads).await;
    eprintln!(
        "40 hostile uploads of {} bytes: RSS {} MB before, peak {} MB; /health/live p99 {:?} of {} probes (max {:?})",
        bomb.len(),
        rss_before / 1024,
        peak / 1024,
        p99(&live),
        live.len(),
        live.last().unwrap()
    );
    assert!(peak < 400 * 1024, "peak RSS {} MB", peak / 1024);
    assert!(p99(&live) < Duration::from_millis(100), "{live:?}");
    for answer in answers {
        let (status, _, body) = answer.expect("an answer");
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["meta"]["status"], "IMAGE_TOO_LARGE", "{body}");
        let why = body["meta"]["more_info"]["attachment"].as_str().unwrap();
        assert!(
            why.contains("4096x4096") && why.contains("4194304"),
            "{why}"
        );
    }
    let stored = std::fs::read_dir(op.path("accolade-data/media/badges"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing was rendered");
}

/// `accolade_blocking_jobs_total` of the image workers for one outcome (0 before the first).
async fn image_jobs(server: &Served, outcome: &str) -> u64 {
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("accolade_blocking_jobs_total{"))
        .filter(|l| {
            l.contains(r#"budget="opencredit_images""#)
                && l.contains(&format!(r#"outcome="{outcome}""#))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Row 4, the other half: uploads within the budget still cost a worker each. With one image
/// worker, 40 at once: one runs, 16 wait their turn and are stored, the rest are answered 503
/// IMAGE_QUEUE_FULL at once instead of all being decoded side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_image_uploads_wait_for_an_image_worker_or_are_refused_at_once() {
    let op = Operator::new("image-queue").set("ACCOLADE_OPENCREDIT__IMAGE_WORKERS", "1");
    let app = op.opencredit_app("enterprise");
    let server = op.serve(&[]).await;
    let token = server.opencredit_member(&app, "ada@example.org").await;
    // Exactly the budget: 2048 x 2048.
    let attachment = base64::engine::general_purpose::STANDARD.encode(one_colour_png(2048, 2048));
    let (answered, uploads) = upload_badges(&server, &app, &token, &attachment, 40);
    let live = probe_liveness(&server, Duration::from_secs(1), || {
        answered.load(Ordering::Acquire) == 40
    })
    .await;
    let peak = server.memory_kib("VmHWM");
    let (mut stored, mut busy) = (0, 0);
    for upload in uploads {
        let (status, retry_after, body) = upload.await.unwrap();
        match status {
            200 => {
                assert!(body["data"].is_i64(), "{body}");
                stored += 1;
            }
            503 => {
                assert_eq!(body["meta"]["status"], "IMAGE_QUEUE_FULL", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
                busy += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    eprintln!(
        "40 uploads at the budget: {stored} stored, {busy} busy; peak RSS {} MB; /health/live p99 {:?} of {} probes",
        peak / 1024,
        p99(&live),
        live.len()
    );
    assert!(stored >= 17 && busy >= 1, "{stored} stored, {busy} busy");
    assert_eq!(image_jobs(&server, "busy").await, busy);
    assert_eq!(image_jobs(&server, "done").await, stored);
    assert!(peak < 400 * 1024, "peak RSS {} MB", peak / 1024);
    assert!(p99(&live) < Duration::from_millis(100), "{live:?}");
}

/// Row 4: decoding went on after the request had been answered 408. Now a waiting upload whose
/// request is gone never starts, and a running one stops before its next stage, so the server
/// is idle soon after the last answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_work_stops_when_its_request_times_out() {
    let op = Operator::new("image-timeout")
        .set("ACCOLADE_OPENCREDIT__IMAGE_WORKERS", "1")
        .set("ACCOLADE_HTTP__REQUEST_TIMEOUT_SECS", "1");
    let app = op.opencredit_app("enterprise");
    let server = op.serve(&[]).await;
    let token = server.opencredit_member(&app, "ada@example.org").await;
    let attachment = base64::engine::general_purpose::STANDARD.encode(one_colour_png(2048, 2048));
    let (_, uploads) = upload_badges(&server, &app, &token, &attachment, 12);
    let mut timed_out = 0;
    for upload in uploads {
        let (status, _, body) = upload.await.unwrap();
        assert!(status == 200 || status == 408, "{status}: {body}");
        timed_out += usize::from(status == 408);
    }
    assert!(timed_out >= 1, "no request timed out");
    let cpu_then = server.cpu_time();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cpu_after = server.cpu_time() - cpu_then;
    eprintln!("{timed_out} of 12 uploads timed out; CPU in the 1.5 s after: {cpu_after:?}");
    assert!(cpu_after < Duration::from_millis(500), "{cpu_after:?}");
    assert!(image_jobs(&server, "abandoned").await >= 1);
}
