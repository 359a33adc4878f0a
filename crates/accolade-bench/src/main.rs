#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_bench::server::{start_server_on, wait_ready, Server};
use accolade_bench::workload::{configure, course, COURSES, PASSING};
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    /// The accolade binary to benchmark.
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Learners for the throughput phases.
    #[arg(long, default_value_t = 2_000)]
    learners: usize,
    /// Events in the batch-throughput phase.
    #[arg(long, default_value_t = 200_000)]
    batch_events: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Concurrent clients in the batch phase, a comma list: the phase runs once per count (each
    /// with `batch_events` new events) and reports each, and the best as the ingest capacity.
    /// One 1,000-event request per client is in flight, so 4 clients leave the single writer
    /// waiting for requests part of the time; 16 keep one full group commit queued.
    #[arg(long, default_value = "4,8,16", value_delimiter = ',')]
    batch_clients: Vec<usize>,
    /// Events in the single-event phase.
    #[arg(long, default_value_t = 30_000)]
    single_events: usize,
    /// Concurrent clients in the single-event phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of paced load in the latency phase.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Fulfilments to reach before reading peak RSS (0 skips the phase).
    #[arg(long, default_value_t = 1_000_000)]
    fulfillments: usize,
    /// Only these phases (comma list of batch,single,latency,rss,admin). `admin` needs the
    /// fulfilments of `rss` and adds 10,000 templates before timing the admin pages.
    #[arg(long, default_value = "batch,single,latency,rss")]
    phases: String,
    /// Accolade's database: `sqlite` (a file, the default), `postgres` (a fresh database on
    /// 127.0.0.1:5432, dropped afterwards) or `postgres://URL` (a fresh database on that server).
    #[arg(long, default_value = "sqlite")]
    database: accolade_bench::server::Database,
    /// Instances of `accolade serve` on the one database (PostgreSQL); the clients are spread
    /// over them.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Extra environment of the server, `KEY=VALUE` (repeatable), e.g.
    /// `--server-env ACCOLADE_OPENBADGES__ENABLED=false` for an A/B of Open Badges issuing.
    #[arg(long = "server-env")]
    server_env: Vec<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A realistic course-passing event (the shape edx-platform sends), mostly passing.
fn event(learner: usize, course_idx: usize, passing: bool) -> Value {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    json!({
        "id": format!("5a1f3c2e-6f7b-11f0-{:04x}-{:012x}", (n >> 48) & 0xffff, n & 0xffff_ffff_ffff),
        "event_type": PASSING,
        "time": "2026-08-20T14:03:27.512345+00:00",
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": course(course_idx), "display_name": "", "end": null, "start": null},
            "is_passing": passing,
            "user": {"id": learner, "is_active": true,
                     "pii": {"email": format!("learner{learner}@example.com"), "name": format!("Learner {learner}"), "username": format!("learner{learner}")}}
        }}
    })
}

fn random_event(rng: &mut u64, learners: usize) -> Value {
    // xorshift: deterministic, dependency free.
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let learner = (next() as usize) % learners;
    let c = (next() as usize) % COURSES;
    let passing = next() % 10 != 0;
    event(learner, c, passing)
}

/// Batch ingest throughput with `clients` concurrent clients, and the p50 and p99 of a request's
/// time (sent -> 202 after the durable commit), in ms.
async fn batch_phase(
    client: &reqwest::Client,
    s: &Server,
    args: &Args,
    clients: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    // Another sequence per run of the sweep (each run adds its own events to the same server).
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (clients as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
    let bodies: Vec<Vec<u8>> = (0..args.batch_events / args.batch_size)
        .map(|_| {
            let evs: Vec<Value> = (0..args.batch_size)
                .map(|_| random_event(&mut rng, args.learners))
                .collect();
            serde_json::to_vec(&evs).unwrap_or_default()
        })
        .collect();
    let total = bodies.len() * args.batch_size;
    if total == 0 || clients == 0 {
        bail!(
            "the batch phase needs --batch-events ({}) >= --batch-size ({}) and at least one client",
            args.batch_events,
            args.batch_size
        );
    }
    let started = Instant::now();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    // Clients are spread over every instance (`--instances`).
    let bases = s.bases();
    for k in 0..clients {
        let (client, bodies, next, base, token) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            bases[k % bases.len()].clone(),
            s.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(times);
                };
                let sent = Instant::now();
                let r = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if r.status() != 202 {
                    bail!("batch ingest answered {}", r.status());
                }
                times.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    times.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (times[times.len() / 2], times[(times.len() * 99) / 100]);
    println!(
        "batch ingest: {total} events in {:.2}s = {rate:.0} events/s ({} per request, {clients} clients; request p50 {p50:.1} ms, p99 {p99:.1} ms)",
        started.elapsed().as_secs_f64(),
        args.batch_size,
    );
    Ok((rate, p50, p99))
}

async fn single_phase(client: &reqwest::Client, s: &Server, args: &Args) -> anyhow::Result<f64> {
    let mut rng = 0x1234_5678_9abc_def1u64;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.single_events)
            .map(|_| serde_json::to_vec(&random_event(&mut rng, args.learners)).unwrap_or_default())
            .collect(),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let bases = s.bases();
    for k in 0..args.concurrency {
        let (client, bodies, next, base, token) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            bases[k % bases.len()].clone(),
            s.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let r = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if r.status() != 202 {
                    bail!("single ingest answered {}", r.status());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = args.single_events as f64 / started.elapsed().as_secs_f64();
    println!(
        "single-event requests: {} events in {:.2}s = {rate:.0} events/s ({} concurrent clients)",
        args.single_events,
        started.elapsed().as_secs_f64(),
        args.concurrency
    );
    Ok(rate)
}

async fn latency_phase(
    client: &reqwest::Client,
    s: &Server,
    args: &Args,
) -> anyhow::Result<(f64, f64)> {
    let mut rng = 0x0dd_ba11_cafe_f00du64;
    let total = (args.latency_secs * 1000) as usize;
    let bodies: Vec<Vec<u8>> = (0..total)
        .map(|_| serde_json::to_vec(&random_event(&mut rng, args.learners)).unwrap_or_default())
        .collect();
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    let bases = s.bases();
    for (k, body) in bodies.into_iter().enumerate() {
        interval.tick().await;
        let (client, base, token) = (
            client.clone(),
            bases[k % bases.len()].clone(),
            s.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            if r.status() != 202 {
                bail!("paced ingest answered {}", r.status());
            }
            Ok::<_, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        lat.push(t.await??);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() * 99) / 100];
    println!("latency at 1,000 events/s for {}s (request sent -> 202 after durable commit): p50 {p50:.2} ms, p99 {p99:.2} ms, max {:.2} ms", args.latency_secs, lat[lat.len() - 1]);
    Ok((p50, p99))
}

fn vm_hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("VmHWM")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

async fn rss_phase(client: &reqwest::Client, s: &Server, args: &Args) -> anyhow::Result<f64> {
    // Each passing event of course c fulfils the requirements on c (2 per course here), so
    // learners x courses passing events give 2 x that many fulfilments.
    let per_learner = COURSES * 2;
    let learners = args.fulfillments.div_ceil(per_learner);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(args.batch_size);
    let mut sent = 0usize;
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for l in 0..learners {
        for c in 0..COURSES {
            batch.push(event(1_000_000 + l, c, true));
            if batch.len() == args.batch_size {
                let body = serde_json::to_vec(&std::mem::take(&mut batch))?;
                sent += args.batch_size;
                pending.push(post_body(
                    client.clone(),
                    s.base.clone(),
                    s.token.clone(),
                    body,
                ));
                if pending.len() >= 4 {
                    pending.next().await.context("pending")??;
                }
            }
        }
    }
    if !batch.is_empty() {
        sent += batch.len();
        pending.push(post_body(
            client.clone(),
            s.base.clone(),
            s.token.clone(),
            serde_json::to_vec(&batch)?,
        ));
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    let mib = vm_hwm_kib(s.pid())? as f64 / 1024.0;
    println!("memory: {sent} events from {learners} learners (>= {} fulfilments) in {:.1}s; server peak RSS (VmHWM) {mib:.1} MiB",
        learners * per_learner, started.elapsed().as_secs_f64());
    Ok(mib)
}

async fn post_body(
    client: reqwest::Client,
    base: String,
    token: String,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let r = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    if r.status() != 202 {
        bail!("ingest answered {}", r.status());
    }
    Ok(())
}

/// Waits until the outbox jobs of the earlier phases are done, so the latency phase measures the
/// steady state at its own rate rather than the tail of a 130,000-event burst.
async fn settle(client: &reqwest::Client, s: &Server) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let mut busy = false;
        for status in ["pending", "running"] {
            let body: Value = client
                .get(format!("{}/api/v1/jobs?status={status}&limit=1", s.base))
                .bearer_auth(&s.token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            busy |= body["data"].as_array().is_some_and(|d| !d.is_empty());
        }
        if !busy {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the outbox did not drain within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Steady state also means the background WAL checkpoint has copied the burst into the
    // database file: wait until the server writes less than 1 MiB per half second (at most two
    // minutes). Right after a 200,000-event burst that copy competes with every commit's fsync.
    let pid = s.pid();
    let mut last = written_bytes(pid).unwrap_or(0);
    let quiet_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written_bytes(pid).unwrap_or(0);
        if now.saturating_sub(last) < 1 << 20 || quiet_since.elapsed() > Duration::from_secs(120) {
            break;
        }
        last = now;
    }
    println!(
        "settled: outbox drained and disk writes quiet {:.1}s after the previous phase",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Bytes the process has caused to be written to storage (`/proc/<pid>/io`).
fn written_bytes(pid: u32) -> anyhow::Result<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no write_bytes in /proc/{pid}/io"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let phases: Vec<&str> = args.phases.split(',').map(str::trim).collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    let server_env: Vec<(&str, String)> = args
        .server_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k, v.to_string()))
                .with_context(|| format!("--server-env {kv}: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    if args.instances > 1 && args.database == accolade_bench::server::Database::Sqlite {
        bail!("--instances needs --database postgres: SQLite is one machine's file");
    }
    let mut server = start_server_on(&args.binary, &server_env, &args.database)?;
    wait_ready(&client, &server.base).await?;
    configure(&client, &server).await?;
    // Further instances start on the migrated, configured database.
    server.add_instances(&args.binary, &server_env, args.instances.saturating_sub(1))?;
    for base in server.bases() {
        wait_ready(&client, &base).await?;
    }
    println!(
        "database={} instances={}",
        args.database.name(),
        args.instances
    );
    let mut summary = Vec::new();
    if phases.contains(&"batch") {
        // Every count of the sweep is reported; the best is the capacity figure.
        let mut best = (0.0, 0, 0.0);
        for &clients in &args.batch_clients {
            let (rate, _, p99) = batch_phase(&client, &server, &args, clients).await?;
            summary.push(format!("batch_{clients}_clients={rate:.0}"));
            if rate > best.0 {
                best = (rate, clients, p99);
            }
        }
        summary.push(format!(
            "batch_events_per_sec={:.0} batch_best_clients={} batch_best_request_p99_ms={:.1}",
            best.0, best.1, best.2
        ));
    }
    if phases.contains(&"single") {
        summary.push(format!(
            "single_events_per_sec={:.0}",
            single_phase(&client, &server, &args).await?
        ));
    }
    if phases.contains(&"latency") {
        settle(&client, &server).await?;
        let (p50, p99) = latency_phase(&client, &server, &args).await?;
        summary.push(format!("latency_p50_ms={p50:.2} latency_p99_ms={p99:.2}"));
    }
    // The memory phases run on a fresh server: its peak RSS is then that of holding 1,000,000
    // fulfilments, not that of the throughput phases' requests in flight (up to 16 clients'
    // 1,000-event bodies, parsed, in the batch sweep).
    let server = if phases.contains(&"rss") || phases.contains(&"admin") {
        drop(server);
        let fresh = start_server_on(&args.binary, &server_env, &args.database)?;
        wait_ready(&client, &fresh.base).await?;
        configure(&client, &fresh).await?;
        fresh
    } else {
        server
    };
    if phases.contains(&"rss") && args.fulfillments > 0 {
        summary.push(format!(
            "peak_rss_mib={:.1}",
            rss_phase(&client, &server, &args).await?
        ));
    }
    if phases.contains(&"admin") {
        if !phases.contains(&"rss") {
            rss_phase(&client, &server, &args).await?;
        }
        let started = Instant::now();
        let template = accolade_bench::admin::create_templates(&client, &server, 10_000).await?;
        println!(
            "admin: 10,000 more templates created in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let cookie = accolade_bench::admin::sign_in(&args.binary, &server).await?;
        // A learner of the memory phase: 25 courses passed, 2 requirements each.
        let worst =
            accolade_bench::admin::measure(&client, &server, &cookie, &template, "learner1000007")
                .await?;
        summary.push(format!("admin_page_worst_median_ms={worst:.2}"));
    }
    println!("RESULT {}", summary.join(" "));
    Ok(())
}
