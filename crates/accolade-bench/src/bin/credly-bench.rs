//! Credly bridge benchmarks against the bundled Credly sandbox (in this process, on 127.0.0.1):
//!
//! - `sync`: one organization with 2,500 active templates (50 pages of 50); time of the first
//!   sync (creates all) and of a re-sync (all unchanged), through `POST …/sync`.
//! - `issue`: awards for N learners with the rate limiter off; badges issued per second on the
//!   sandbox in steady state (between 10% and 90% of N).
//! - `limit`: the same with `credly.rate_limit_per_second = R`; observed rate and its ratio to R.
//!
//! `cargo run --release -p accolade-bench --bin credly-bench -- --binary target/release/accolade`
//! (or `scripts/bench-credly`). Prints one `RESULT` line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use accolade_bench::server::{call, start_server_on, wait_ready, Server};
use accolade_credly_sandbox::{
    Generate, RunningSandbox, Sandbox, Seed, SeedOrganization, SeedToken,
};
use anyhow::Context;
use clap::Parser;
use reqwest::Method;
use serde_json::{json, Value};

const ORG: &str = "b3ec0000-0000-4000-8000-000000000001";
const KEY: &str = "bench-key-0000-0001";
const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
const COURSE: &str = "course-v1:BenchX+Credly+2026";

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Accolade's database: `sqlite` (the default), `postgres` (a fresh database on
    /// 127.0.0.1:5432, dropped afterwards) or `postgres://URL`.
    #[arg(long, default_value = "sqlite")]
    database: accolade_bench::server::Database,
    /// Active templates on the sandbox.
    #[arg(long, default_value_t = 2_500)]
    templates: usize,
    /// Badges to issue in the unlimited phase.
    #[arg(long, default_value_t = 5_000)]
    badges: usize,
    /// Requests per second in the rate-limited phase.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// Badges to issue in the rate-limited phase (at `rate` per second).
    #[arg(long, default_value_t = 500)]
    limited_badges: usize,
}

async fn sandbox(templates: usize) -> anyhow::Result<RunningSandbox> {
    let org = ORG.to_string();
    let seed = Seed {
        organizations: vec![SeedOrganization {
            id: org.clone(),
            name: "Bench Org".into(),
            tokens: vec![SeedToken::new(KEY)],
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: Vec::new(),
        generate: Some(Generate {
            organization_id: org,
            templates,
            active_share: 1.0,
        }),
    };
    Sandbox::start(seed).await
}

async fn server(args: &Args, sb: &RunningSandbox, rate: u32) -> anyhow::Result<Server> {
    let env = [
        ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.clone()),
        ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", rate.to_string()),
        ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "20".to_string()),
    ];
    let s = start_server_on(&args.binary, &env, &args.database)?;
    Ok(s)
}

async fn add_org(client: &reqwest::Client, s: &Server) -> anyhow::Result<()> {
    wait_ready(client, &s.base).await?;
    call(
        client,
        s,
        Method::POST,
        "/api/v1/credly/organizations",
        json!({"uuid": ORG, "api_key": KEY}),
    )
    .await?;
    Ok(())
}

async fn sync(client: &reqwest::Client, s: &Server) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let v = call(
        client,
        s,
        Method::POST,
        &format!("/api/v1/credly/organizations/{}/sync", ORG),
        json!({}),
    )
    .await?;
    Ok((v, started.elapsed().as_secs_f64() * 1000.0))
}

/// Gives the first synced template a requirement and activates it; returns its id.
async fn badge_template(client: &reqwest::Client, s: &Server) -> anyhow::Result<String> {
    let list = call(
        client,
        s,
        Method::GET,
        "/api/v1/templates?origin=credly&limit=1",
        Value::Null,
    )
    .await?;
    let id = list["data"][0]["id"]
        .as_str()
        .context("a synced template")?
        .to_string();
    call(client, s, Method::POST, &format!("/api/v1/templates/{id}/requirements"), json!({
        "event_type": PASSING,
        "rules": [{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": COURSE}],
    })).await?;
    call(
        client,
        s,
        Method::POST,
        &format!("/api/v1/templates/{id}/activate"),
        json!({}),
    )
    .await?;
    Ok(id)
}

async fn send_awards(
    client: &reqwest::Client,
    s: &Server,
    from: usize,
    n: usize,
) -> anyhow::Result<()> {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| json!({
                "id": format!("credly-bench-{i}"), "event_type": PASSING, "time": "2026-08-20T14:03:27.000000+00:00",
                "source": "openedx/lms/web", "minorversion": 0,
                "data": {"course_passing_status": {"course": {"course_key": COURSE}, "is_passing": true,
                    "user": {"id": i, "is_active": true, "pii": {"username": format!("learner{i}"), "email": format!("learner{i}@example.com"), "name": format!("Learner {i}")}}}}
            }))
            .collect();
        call(
            client,
            s,
            Method::POST,
            "/api/v1/events",
            Value::Array(events),
        )
        .await?;
    }
    Ok(())
}

/// Issued-per-second between 10% and 90% of `n` new badges on the sandbox.
async fn issue_rate(sb: &RunningSandbox, base: u64, n: usize) -> anyhow::Result<f64> {
    let (lo, hi) = (base + (n as u64) / 10, base + (n as u64) * 9 / 10);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut t_lo = None;
    loop {
        let issued = sb.sandbox.stats().issued;
        if t_lo.is_none() && issued >= lo {
            t_lo = Some((Instant::now(), issued));
        }
        if issued >= hi {
            let (t0, i0) = t_lo.context("low mark")?;
            return Ok((issued - i0) as f64 / t0.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {issued} of {} badges issued in time",
            base + n as u64
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut results = Vec::new();

    // Sync and unlimited issuing.
    let sb = sandbox(args.templates).await?;
    let s = server(&args, &sb, 0).await?;
    add_org(&client, &s).await?;
    let (first, first_ms) = sync(&client, &s).await?;
    let (again, again_ms) = sync(&client, &s).await?;
    println!("sync: {} templates in {} pages, first {first_ms:.0} ms ({first}); re-sync {again_ms:.0} ms ({again})", args.templates, first["pages"]);
    results.push(format!(
        "sync_first_ms={first_ms:.0} sync_again_ms={again_ms:.0}"
    ));
    badge_template(&client, &s).await?;
    let before = sb.sandbox.stats().issued;
    let sending = send_awards(&client, &s, 0, args.badges);
    let (sent, rate) = tokio::join!(sending, issue_rate(&sb, before, args.badges));
    sent?;
    let rate = rate?;
    println!("issue (limiter off): {rate:.0} badges/s");
    results.push(format!("issue_per_sec={rate:.0}"));
    drop(s);

    // Rate-limited issuing.
    let sb2 = sandbox(10).await?;
    let s2 = server(&args, &sb2, args.rate).await?;
    add_org(&client, &s2).await?;
    sync(&client, &s2).await?;
    badge_template(&client, &s2).await?;
    let before = sb2.sandbox.stats().issued;
    let sending = send_awards(&client, &s2, 0, args.limited_badges);
    let (sent, limited) = tokio::join!(sending, issue_rate(&sb2, before, args.limited_badges));
    sent?;
    let limited = limited?;
    let ratio = limited / f64::from(args.rate);
    println!(
        "issue (limit {} /s): {limited:.1} badges/s = {:.1}% of the limit",
        args.rate,
        ratio * 100.0
    );
    results.push(format!(
        "limited_per_sec={limited:.1} limited_ratio={ratio:.3}"
    ));
    println!("RESULT {}", results.join(" "));
    Ok(())
}
