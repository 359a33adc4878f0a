//! Benchmark of the Open Badges 3.0 issuer through the real binary (file-backed SQLite):
//!
//! - signing: N awards are made with issuing off, then the server is started with issuing on
//!   and the time until all N credentials are signed and stored is measured (the issuer works
//!   through its backlog: claim, sign on the blocking pool, commit);
//! - serving: `GET /ob/v3/credentials/{id}` of random credentials by C concurrent clients for S
//!   seconds (requests per second, p50/p99).
//!
//! `cargo run --release -p accolade-bench --bin ob-bench -- --awards 20000` prints
//! `RESULT ob_sign_per_sec=… ob_get_rps=… ob_get_p99_ms=…` (`scripts/bench-openbadges`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_bench::server::{call, start_server, wait_ready, Server};
use accolade_bench::workload::PASSING;
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Awards (one learner each) to sign.
    #[arg(long, default_value_t = 20_000)]
    awards: usize,
    /// Seconds of GET load.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent GET clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

const COURSE: &str = "course-v1:BenchX+OB+2026";

fn event(i: usize) -> Value {
    json!({
        "id": format!("0b0b0b0b-0000-4000-8000-{i:012}"),
        "event_type": PASSING,
        "time": "2026-08-20T14:03:27.512345+00:00",
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": COURSE, "display_name": "", "end": null, "start": null},
            "is_passing": true,
            "user": {"id": i, "is_active": true,
                     "pii": {"email": format!("learner{i}@example.com"), "name": format!("Learner {i}"), "username": format!("learner{i}")}}
        }}
    })
}

/// The `accolade_openbadges_credentials_signed_total` counter.
async fn signed(client: &reqwest::Client, s: &Server) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("accolade_openbadges_credentials_signed_total"))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64)
}

async fn credential_urls(client: &reqwest::Client, s: &Server) -> anyhow::Result<Vec<String>> {
    let mut urls = Vec::new();
    let mut offset = 0;
    loop {
        let page = call(
            client,
            s,
            reqwest::Method::GET,
            &format!("/api/v1/awards?limit=500&offset={offset}"),
            Value::Null,
        )
        .await?;
        for a in page["data"].as_array().context("awards")? {
            if let Some(url) = a["credential_url"].as_str() {
                urls.push(url.to_string());
            }
        }
        match page["next_offset"].as_u64() {
            Some(next) => offset = next as usize,
            None => return Ok(urls),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    let off = [("ACCOLADE_OPENBADGES__ENABLED", "false".to_string())];
    let mut server = start_server(&args.binary, &off)?;
    wait_ready(&client, &server.base).await?;
    let tpl = call(
        &client,
        &server,
        reqwest::Method::POST,
        "/api/v1/templates",
        json!({"name": "Open Badges bench"}),
    )
    .await?;
    let id = tpl["id"].as_str().context("template id")?.to_string();
    call(&client, &server, reqwest::Method::POST, &format!("/api/v1/templates/{id}/requirements"), json!({
        "event_type": PASSING,
        "rules": [{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": COURSE}],
    })).await?;
    call(
        &client,
        &server,
        reqwest::Method::POST,
        &format!("/api/v1/templates/{id}/activate"),
        json!({}),
    )
    .await?;
    for chunk in (0..args.awards).collect::<Vec<_>>().chunks(1000) {
        let body: Vec<Value> = chunk.iter().map(|&i| event(i)).collect();
        let r = client
            .post(format!("{}/api/v1/events", server.base))
            .bearer_auth(&server.token)
            .json(&body)
            .send()
            .await?;
        if r.status() != 202 {
            bail!("ingest answered {}", r.status());
        }
    }
    println!("{} awards made with issuing off", args.awards);

    // Issuing on: the issuer signs the whole backlog.
    server.restart(&args.binary, &[])?;
    let started = Instant::now();
    wait_ready(&client, &server.base).await?;
    loop {
        let n = signed(&client, &server).await?;
        if n >= args.awards as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {n} of {} signed after 10 minutes", args.awards);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sign_secs = started.elapsed().as_secs_f64();
    let sign_rate = args.awards as f64 / sign_secs;
    println!(
        "signing: {} credentials signed and stored in {sign_secs:.2}s = {sign_rate:.0}/s (from server start)",
        args.awards
    );

    let urls = Arc::new(credential_urls(&client, &server).await?);
    if urls.len() != args.awards {
        bail!("{} credential URLs for {} awards", urls.len(), args.awards);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for c in 0..args.concurrency {
        let (client, urls, stop, count) =
            (client.clone(), urls.clone(), stop.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut i = c * 7919;
            while !stop.load(Ordering::Relaxed) {
                i = (i + 104_729) % urls.len();
                let sent = Instant::now();
                let r = client.get(&urls[i]).send().await?;
                if r.status() != 200 {
                    bail!("GET credential answered {}", r.status());
                }
                r.bytes().await?;
                times.push(sent.elapsed().as_secs_f64() * 1000.0);
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    let rps = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    times.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!(
        "serving: GET /ob/v3/credentials/{{id}} {rps:.0} requests/s ({} clients; p50 {p50:.2} ms, p99 {p99:.2} ms)",
        args.concurrency
    );
    println!("RESULT ob_sign_per_sec={sign_rate:.0} ob_get_rps={rps:.0} ob_get_p99_ms={p99:.2}");
    Ok(())
}
