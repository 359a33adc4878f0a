//! Benchmark of the Open Credit API: authenticated `GET /v1.1/badges/{id}` against the real
//! binary (file-backed SQLite), with an Enterprise app, rate limiting on and then off, plus the
//! cost of one counting limiter decision (a limited tier) measured in-process.
//!
//! `cargo run --release -p accolade-bench --bin oc-bench -- --seconds 5 --concurrency 32`
//! prints `RESULT get_badge_rps_limits_on=… get_badge_rps_limits_off=… limiter_overhead_pct=…
//! limiter_check_ns=…`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_bench::server::{call, start_server_on, wait_ready, Server};
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

/// A 1x1 PNG (the smallest valid badge image).
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Accolade's database: `sqlite` (the default), `postgres` (a fresh database on
    /// 127.0.0.1:5432, dropped afterwards) or `postgres://URL`.
    #[arg(long, default_value = "sqlite")]
    database: accolade_bench::server::Database,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

struct Fixture {
    key: String,
    secret: String,
    token: String,
    badge: i64,
}

async fn oc_post(
    client: &reqwest::Client,
    s: &Server,
    f: &Fixture,
    path: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let r = client
        .post(format!("{}{path}", s.base))
        .header("X-Api-Key", &f.key)
        .header("X-Api-Secret", &f.secret)
        .form(form)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("{path} answered {status}: {v}");
    }
    Ok(v)
}

async fn setup(client: &reqwest::Client, s: &Server) -> anyhow::Result<Fixture> {
    let app = call(
        client,
        s,
        reqwest::Method::POST,
        "/api/v1/opencredit/apps",
        json!({"name": "bench", "tier": "enterprise"}),
    )
    .await?;
    let mut f = Fixture {
        key: app["api_key"].as_str().context("api_key")?.to_string(),
        secret: app["api_secret"]
            .as_str()
            .context("api_secret")?
            .to_string(),
        token: String::new(),
        badge: 0,
    };
    oc_post(
        client,
        s,
        &f,
        "/v1.1/authenticate/register",
        &[
            ("email", "bench@example.org"),
            ("password", "a long enough bench password"),
            ("first_name", "Bench"),
            ("last_name", "Mark"),
            ("verified", "1"),
        ],
    )
    .await?;
    let auth = oc_post(
        client,
        s,
        &f,
        "/v1.1/authenticate",
        &[
            ("email", "bench@example.org"),
            ("password", "a long enough bench password"),
        ],
    )
    .await?;
    f.token = auth["data"]["token"].as_str().context("token")?.to_string();
    let badge = oc_post(
        client,
        s,
        &f,
        "/v1.1/badges",
        &[
            ("access_token", f.token.as_str()),
            ("title", "Benchmark badge"),
            ("short_description", "Read many times"),
            (
                "description",
                "<p>Passed <b>every</b> module of the course</p><ul><li>one</li><li>two</li></ul>",
            ),
            ("criteria", "<p>Score at least 80%</p>"),
            ("attachment", PNG_1X1),
        ],
    )
    .await?;
    f.badge = badge["data"].as_i64().context("badge id")?;
    Ok(f)
}

/// Requests per second of authenticated badge reads over `seconds`.
async fn load(
    client: &reqwest::Client,
    s: &Server,
    f: &Fixture,
    args: &Args,
) -> anyhow::Result<f64> {
    let url = format!(
        "{}/v1.1/badges/{}?access_token={}",
        s.base, f.badge, f.token
    );
    // Warm-up: caches, connections.
    for _ in 0..200 {
        client
            .get(&url)
            .header("X-Api-Key", &f.key)
            .header("X-Api-Secret", &f.secret)
            .send()
            .await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, key, secret, done) = (
            client.clone(),
            url.clone(),
            f.key.clone(),
            f.secret.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = client
                    .get(&url)
                    .header("X-Api-Key", &key)
                    .header("X-Api-Secret", &secret)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("GET badge answered {}", r.status());
                }
                r.bytes().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn phase(client: &reqwest::Client, args: &Args, limits: bool) -> anyhow::Result<f64> {
    let s = start_server_on(
        &args.binary,
        &[("ACCOLADE_OPENCREDIT__RATE_LIMITS", limits.to_string())],
        &args.database,
    )?;
    wait_ready(client, &s.base).await?;
    let f = setup(client, &s).await?;
    let rps = load(client, &s, &f, args).await?;
    println!("GET /v1.1/badges/{{id}} (Enterprise app, access token, rate limiting {}): {rps:.0} requests/s", if limits { "on" } else { "off" });
    Ok(rps)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let on = phase(&client, &args, true).await?;
    let off = phase(&client, &args, false).await?;
    // One counting decision of a limited tier (what every Sandbox…Heavy request pays).
    let limiter = accolade_server::opencredit::limiter::Limiter::new("")?;
    let n = 1_000_000u64;
    let started = Instant::now();
    for i in 0..n {
        let subject = accolade_server::opencredit::limiter::Subject::User {
            app: "ak_bench".into(),
            member: (i % 10_000) as i64,
        };
        let _ = limiter
            .check(accolade_opencredit::tiers::Tier::Heavy, &subject)
            .await;
    }
    let check_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let overhead = (off - on) / off * 100.0;
    println!("limiter: {check_ns:.0} ns per counting decision; Enterprise with limits on vs off: {overhead:.1}% slower");
    println!(
        "RESULT get_badge_rps_limits_on={on:.0} get_badge_rps_limits_off={off:.0} limiter_overhead_pct={overhead:.1} limiter_check_ns={check_ns:.0}"
    );
    Ok(())
}
