//! Issue 16's findings reproduced against the released binary: each test is the attack, and
//! fails on a build without its fix.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;

use crate::process::{login_csrf, opencredit_post, Operator, Served, ADMIN_PASSWORD};

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
