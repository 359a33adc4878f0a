//! Benchmark of backfill and preview through the real binary (file-backed SQLite):
//!
//! - **preview**: a database holding `--events` stored events (`--learners` learners, ten
//!   courses, one event type, one in ten a failure) is previewed with
//!   `POST /api/v1/templates/{id}/backfill {"dry_run": true}` right after the server starts
//!   (a fresh read of the inbox), `--repeat` times; events per second = events read / time;
//! - **editor**: on a database of `--editor-events`, a first preview, then the rules changed
//!   (a requirement's course) and previewed again, as the admin editor's live count does: the
//!   second answer reuses the first read;
//! - **apply**: `--apply-learners` learners who each passed both courses are backfilled by
//!   `activate {"backfill": true}`; awards per second over the apply phase (the job's own
//!   times), while a client sends `--live-rate` events per second one request each and records
//!   each request's latency (ingest -> durable commit -> 202).
//!
//! The stored events are written straight into the database file the server created (rows
//! exactly as ingest writes them: the event's JSON with sorted keys, learners' event chains),
//! since ingesting ten million events over HTTP would take minutes per run.
//!
//! `scripts/bench-backfill` prints `RESULT preview_events_per_sec=… preview_secs=…
//! editor_first_ms=… editor_changed_ms=… apply_awards_per_sec=… live_p99_ms=…`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_bench::server::{call, start_server, wait_ready, Server};
use accolade_bench::workload::PASSING;
use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Stored events of the preview database.
    #[arg(long, default_value_t = 10_000_000)]
    events: usize,
    /// Learners they belong to.
    #[arg(long, default_value_t = 1_000_000)]
    learners: usize,
    /// Fresh previews of it (each after a server start).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Stored events of the editor's database.
    #[arg(long, default_value_t = 1_000_000)]
    editor_events: usize,
    /// Learners backfilled in the apply phase (two stored events each).
    #[arg(long, default_value_t = 400_000)]
    apply_learners: usize,
    /// Live events per second sent while the backfill applies.
    #[arg(long, default_value_t = 1_000)]
    live_rate: u64,
    /// Phases to run (comma-separated): preview, editor, apply.
    #[arg(long, default_value = "preview,editor,apply")]
    phases: String,
}

const COURSES: usize = 10;

fn course(c: usize) -> String {
    format!("course-v1:BenchX+C{c}+2026")
}

/// An event as `IncomingEvent::to_json` stores it (keys sorted).
fn body(id: &str, learner: usize, course_key: &str, passing: bool, time: &str) -> String {
    json!({
        "data": {"course_passing_status": {
            "course": {"course_key": course_key, "display_name": "Bench course", "end": null, "start": null},
            "is_passing": passing,
            "user": {"id": learner, "is_active": true,
                     "pii": {"email": format!("learner{learner}@example.com"), "name": format!("Learner {learner}"), "username": format!("learner{learner}")}}
        }},
        "event_type": PASSING,
        "id": id,
        "minorversion": 0,
        "source": "openedx/lms/web",
        "time": time,
    })
    .to_string()
}

/// Writes `events` stored events of `learners` learners into the server's database (stopped).
/// Event k is learner k % learners' (k / learners)-th event, in course (k / learners) % 10;
/// `fail_every` > 0 makes every such event a failure.
fn store_events(
    db: &Path,
    events: usize,
    learners: usize,
    fail_every: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut c = rusqlite::Connection::open(db)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let tx = c.transaction()?;
    let base = tx.query_row("SELECT coalesce(max(seq), 0) FROM inbox_events", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut last: Vec<Option<i64>> = vec![None; learners];
    {
        let mut insert = tx.prepare(
            "INSERT INTO inbox_events (seq, id, event_type, learner, time, received_at, body, prev_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        )?;
        for k in 0..events {
            let l = k % learners;
            let round = k / learners;
            let course_key = course(round % COURSES);
            let passing = !(fail_every > 0 && k % fail_every == fail_every - 1);
            let seq = base + k as i64 + 1;
            let id = format!("bf000000-0000-4000-8000-{seq:012}");
            let time = chrono_like(k as u64);
            insert.execute(rusqlite::params![
                seq,
                id,
                PASSING,
                format!("learner{l}"),
                time,
                body(&id, l, &course_key, passing, &time),
                last[l],
            ])?;
            last[l] = Some(seq);
        }
        let mut learner = tx.prepare(
            "INSERT INTO learners (username, lms_user_id, email, name, created_at, updated_at, last_event_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT (username) DO UPDATE SET last_event_seq = excluded.last_event_seq",
        )?;
        for (l, seq) in last.iter().enumerate() {
            if let Some(seq) = seq {
                learner.execute(rusqlite::params![
                    format!("learner{l}"),
                    l as i64,
                    format!("learner{l}@example.com"),
                    format!("Learner {l}"),
                    "2026-01-01T00:00:00.000000Z",
                    seq
                ])?;
            }
        }
    }
    tx.commit()?;
    c.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    println!(
        "stored {events} events of {learners} learners in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Event times one millisecond apart from 2026-01-01 (RFC 3339 with microseconds, UTC).
fn chrono_like(k: u64) -> String {
    let secs = k / 1000;
    let (d, rem) = (secs / 86_400, secs % 86_400);
    // Days from 2026-01-01 folded into months of 28 days: only the order matters.
    let (month, day) = (d / 28 % 12 + 1, d % 28 + 1);
    let year = 2026 + d / (28 * 12);
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}000Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        k % 1000
    )
}

/// A template "passed course 0 and course 1" with a penalty (failing course 0); returns its
/// id and the requirement ids.
async fn template(client: &reqwest::Client, s: &Server) -> anyhow::Result<(String, Vec<String>)> {
    let t = call(
        client,
        s,
        reqwest::Method::POST,
        "/api/v1/templates",
        json!({"name": "Backfill bench"}),
    )
    .await?;
    let id = t["id"].as_str().context("template id")?.to_string();
    let mut reqs = Vec::new();
    for (c, group) in [(0, "A"), (1, "B")] {
        let r = call(client, s, reqwest::Method::POST, &format!("/api/v1/templates/{id}/requirements"), json!({
            "event_type": PASSING, "group": group,
            "rules": [{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": course(c)}],
        })).await?;
        reqs.push(r["id"].as_str().context("requirement id")?.to_string());
    }
    call(client, s, reqwest::Method::POST, &format!("/api/v1/templates/{id}/penalties"), json!({
        "event_type": PASSING, "requirements": [reqs[0]],
        "rules": [{"path": "is_passing", "op": "=", "value": "false"}, {"path": "course.course_key", "op": "=", "value": course(0)}],
    })).await?;
    Ok((id, reqs))
}

/// A server whose database holds the template and the stored events (server restarted on it).
async fn prepared(
    client: &reqwest::Client,
    args: &Args,
    events: usize,
    learners: usize,
    fail_every: usize,
) -> anyhow::Result<(Server, String, Vec<String>)> {
    let mut off = vec![("ACCOLADE_OPENBADGES__ENABLED", "false".to_string())];
    // BENCH_SERVER_LOG=debug,… sets the server's log filter (to see checkpoints, steps).
    if let Ok(level) = std::env::var("BENCH_SERVER_LOG") {
        off.push(("ACCOLADE_LOG__LEVEL", level));
    }
    let mut s = start_server(&args.binary, &off)?;
    wait_ready(client, &s.base).await?;
    let (t, reqs) = template(client, &s).await?;
    s.stop();
    store_events(&s.dir.join("bench.db"), events, learners, fail_every)?;
    s.restart(&args.binary, &off)?;
    wait_ready(client, &s.base).await?;
    Ok((s, t, reqs))
}

async fn preview(
    client: &reqwest::Client,
    s: &Server,
    t: &str,
    reuse: bool,
) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let p = call(
        client,
        s,
        reqwest::Method::POST,
        &format!("/api/v1/templates/{t}/backfill"),
        json!({"dry_run": true, "sample": 0, "reuse": reuse}),
    )
    .await?;
    Ok((p, started.elapsed().as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(600))
        .build()?;
    let phases: Vec<&str> = args.phases.split(',').map(str::trim).collect();
    let mut result = Vec::new();

    if phases.contains(&"preview") {
        let (mut s, t, _) = prepared(&client, &args, args.events, args.learners, 10).await?;
        let mut rates = Vec::new();
        let mut secs = Vec::new();
        for r in 0..args.repeat {
            if r > 0 {
                s.restart(
                    &args.binary,
                    &[("ACCOLADE_OPENBADGES__ENABLED", "false".to_string())],
                )?;
                wait_ready(&client, &s.base).await?;
            }
            let (p, took) = preview(&client, &s, &t, false).await?;
            let read = p["events_scanned"].as_f64().unwrap_or(0.0);
            println!(
                "preview {}: {read} events of {} learners in {took:.2}s = {:.0} events/s; would hold {}, to award {}",
                r + 1, p["learners"], read / took, p["would_hold"], p["to_award"]
            );
            rates.push(read / took);
            secs.push(took);
        }
        result.push(format!("preview_events_per_sec={:.0}", median(rates)));
        result.push(format!("preview_secs={:.2}", median(secs)));
    }

    if phases.contains(&"editor") {
        let learners = (args.editor_events / 10).max(1);
        let (s, t, reqs) = prepared(&client, &args, args.editor_events, learners, 10).await?;
        let (_, first) = preview(&client, &s, &t, true).await?;
        let mut changed = Vec::new();
        for (i, c) in [2, 3, 1].iter().enumerate() {
            call(&client, &s, reqwest::Method::PATCH, &format!("/api/v1/requirements/{}", reqs[1]), json!({
                "rules": [{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": course(*c)}],
            })).await?;
            let (p, took) = preview(&client, &s, &t, true).await?;
            println!(
                "editor change {}: course {c} -> would hold {} in {:.0} ms (fresh read: {})",
                i + 1,
                p["would_hold"],
                took * 1000.0,
                p["fresh_scan"]
            );
            changed.push(took);
        }
        println!(
            "editor: first preview of {} events {:.0} ms",
            args.editor_events,
            first * 1000.0
        );
        result.push(format!("editor_first_ms={:.0}", first * 1000.0));
        result.push(format!("editor_changed_ms={:.0}", median(changed) * 1000.0));
    }

    if phases.contains(&"apply") {
        // Every learner passed courses 0 and 1: all are awarded.
        let n = args.apply_learners;
        let (s, t, _) = prepared(&client, &args, n * 2, n, 0).await?;
        let s = Arc::new(s);
        let stop = Arc::new(AtomicBool::new(false));
        let live = {
            let (client, s, stop) = (client.clone(), s.clone(), stop.clone());
            let rate = args.live_rate.max(1);
            tokio::spawn(async move {
                let mut times = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut tasks = tokio::task::JoinSet::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    i += 1;
                    let (client, s) = (client.clone(), s.clone());
                    tasks.spawn(async move {
                        let id = format!("11ve0000-0000-4000-8000-{i:012}");
                        let ev: Value = serde_json::from_str(&body(
                            &id,
                            5_000_000 + i,
                            &course(5),
                            true,
                            "2026-12-01T00:00:00.000000Z",
                        ))?;
                        let sent = Instant::now();
                        let at = Utc::now();
                        let r = client
                            .post(format!("{}/api/v1/events", s.base))
                            .bearer_auth(&s.token)
                            .json(&vec![ev])
                            .send()
                            .await?;
                        anyhow::ensure!(r.status() == 202, "live ingest answered {}", r.status());
                        Ok::<(chrono::DateTime<Utc>, f64), anyhow::Error>((
                            at,
                            sent.elapsed().as_secs_f64() * 1000.0,
                        ))
                    });
                    while let Some(done) = tasks.try_join_next() {
                        times.push(done??);
                    }
                }
                while let Some(done) = tasks.join_next().await {
                    times.push(done??);
                }
                Ok::<Vec<(chrono::DateTime<Utc>, f64)>, anyhow::Error>(times)
            })
        };
        // Five seconds of live load alone first, then the backfill.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let a = call(
            &client,
            &s,
            reqwest::Method::POST,
            &format!("/api/v1/templates/{t}/activate"),
            json!({"backfill": true}),
        )
        .await?;
        let id = a["backfill"]["id"]
            .as_str()
            .context("backfill id")?
            .to_string();
        let end = loop {
            let b = call(
                &client,
                &s,
                reqwest::Method::GET,
                &format!("/api/v1/backfills/{id}"),
                Value::Null,
            )
            .await?;
            if b["state"] != "queued" && b["state"] != "running" {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        stop.store(true, Ordering::Relaxed);
        let sent = live.await??;
        anyhow::ensure!(end["state"] == "succeeded", "backfill ended {end}");
        let t0 = chrono::DateTime::parse_from_rfc3339(
            end["phase_started_at"].as_str().context("phase start")?,
        )?;
        let t1 =
            chrono::DateTime::parse_from_rfc3339(end["finished_at"].as_str().context("finish")?)?;
        let secs = (t1 - t0).num_milliseconds() as f64 / 1000.0;
        let awards = end["awards_made"].as_f64().unwrap_or(0.0);
        let started =
            chrono::DateTime::parse_from_rfc3339(end["started_at"].as_str().context("start")?)?;
        // Latencies of the requests sent before the backfill, during its scan, during its apply.
        let pct = |from: Option<chrono::DateTime<chrono::FixedOffset>>,
                   to: Option<chrono::DateTime<chrono::FixedOffset>>| {
            let mut v: Vec<f64> = sent
                .iter()
                .filter(|(at, _)| from.is_none_or(|f| *at >= f) && to.is_none_or(|t| *at < t))
                .map(|(_, ms)| *ms)
                .collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let n = v.len();
            (
                n,
                v.get(n / 2).copied().unwrap_or(0.0),
                v.get(n * 99 / 100).copied().unwrap_or(0.0),
            )
        };
        // BENCH_SLOW=MS prints every request slower than MS (50 when given no number).
        if let Ok(slow) = std::env::var("BENCH_SLOW") {
            let over = slow.parse::<f64>().unwrap_or(50.0);
            let first = sent.iter().map(|(at, _)| *at).min();
            for (at, ms) in sent.iter().filter(|(_, ms)| *ms > over) {
                let off = first.map_or(0, |f| (*at - f).num_milliseconds());
                println!("slow: +{off} ms: {ms:.1} ms");
            }
        }
        // The first second warms the connections up (and the server's caches): not counted.
        let warm = sent
            .iter()
            .map(|(at, _)| *at)
            .min()
            .map(|f| (f + chrono::Duration::seconds(1)).fixed_offset());
        let (n0, p50_0, p99_0) = pct(warm, Some(started));
        let (n1, p50_1, p99_1) = pct(Some(started), Some(t0));
        let (n2, p50_2, p99_2) = pct(Some(t0), Some(t1));
        println!(
            "apply: {awards} awards in {secs:.2}s = {:.0} awards/s",
            awards / secs
        );
        println!(
            "live ingest before the backfill: {n0} requests, p50 {p50_0:.1} ms, p99 {p99_0:.1} ms"
        );
        println!(
            "live ingest during its scan:     {n1} requests, p50 {p50_1:.1} ms, p99 {p99_1:.1} ms"
        );
        println!(
            "live ingest during its apply:    {n2} requests, p50 {p50_2:.1} ms, p99 {p99_2:.1} ms"
        );
        result.push(format!("apply_awards_per_sec={:.0}", awards / secs));
        result.push(format!("live_p99_ms_alone={p99_0:.1}"));
        result.push(format!("live_p99_ms_scan={p99_1:.1}"));
        result.push(format!("live_p99_ms={p99_2:.1}"));
    }
    println!("RESULT {}", result.join(" "));
    Ok(())
}
