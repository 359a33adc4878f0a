//! Issue 16's findings reproduced against the released binary: each test is the attack, and
//! fails on a build without its fix.

use std::time::{Duration, Instant};

use crate::process::{login_csrf, Operator, ADMIN_PASSWORD};

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
) -> (
    accolade_credly_sandbox::RunningSandbox,
    Operator,
    crate::process::Served,
) {
    use crate::helpers::{rules_passed, DEMO, PASSING};
    use accolade_credly_sandbox::{Sandbox, Seed, SeedOrganization, SeedTemplate};
    use serde_json::json;
    let sb = Sandbox::start(Seed {
        organizations: vec![SeedOrganization {
            id: FLOOD_ORG.into(),
            name: "Flooded Org".into(),
            tokens: Vec::new(),
            webhook_url: None,
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
    let (s, r) = server
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": FLOOD_ORG, "api_key": FLOOD_KEY})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = server
        .api(
            "POST",
            &format!("/credly/organizations/{FLOOD_ORG}/sync"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = server
        .api(
            "POST",
            &format!("/templates/{FLOOD_TEMPLATE}/requirements"),
            Some(json!({"event_type": PASSING, "rules": rules_passed(DEMO)})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = server
        .api(
            "POST",
            &format!("/templates/{FLOOD_TEMPLATE}/activate"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    (sb, op, server)
}

/// Posts `n` forged notifications (random event ids) for the flooded organization, 32 at a
/// time; returns how many got each status.
async fn forge_notifications(
    server: &crate::process::Served,
    n: usize,
) -> std::collections::BTreeMap<u16, usize> {
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
    use crate::helpers::{passing, DEMO};
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
    crate::process::eventually(
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
