//! Event-bus consumer benchmark: the real `accolade serve` with the consumer enabled and the
//! issue-1 benchmark configuration consumes N course-passing entries (2,000 learners, 25 courses,
//! 10% failing) encoded exactly as edx-event-bus-redis writes them. Prints events/s from the
//! first to the last durable, acknowledged entry.
//!
//! Needs Redis on 127.0.0.1:6379.
//! `cargo run --release -p accolade-bench --bin bus-bench -- --binary target/release/accolade`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use accolade_bench::server::{start_server_on, wait_ready};
use accolade_bench::workload::{configure, course, COURSES, PASSING};
use accolade_eventbus::{encode_entry, SchemaRegistry};
use clap::Parser;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "target/release/accolade")]
    binary: PathBuf,
    /// Accolade's database: `sqlite` (the default), `postgres` (a fresh database on
    /// 127.0.0.1:5432, dropped afterwards) or `postgres://URL`.
    #[arg(long, default_value = "sqlite")]
    database: accolade_bench::server::Database,
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    #[arg(long, default_value_t = 2_000)]
    learners: usize,
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    redis: String,
}

/// A course-passing event for a learner and course (the shape edx-platform sends), mostly passing.
fn event(n: usize, learner: usize, course_idx: usize, passing: bool) -> Value {
    json!({
        "id": format!("5a1f3c2e-6f7b-11f0-8d3a-{n:012x}"),
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

/// Stream entries encoded exactly as edx-event-bus-redis writes them.
/// One stream entry's fields.
type Entry = Vec<(String, Vec<u8>)>;

fn entries(n: usize, learners: usize) -> anyhow::Result<Vec<Entry>> {
    let registry = SchemaRegistry::builtin();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    (0..n)
        .map(|i| {
            let e = event(
                i,
                next() as usize % learners,
                next() as usize % COURSES,
                next() % 10 != 0,
            );
            encode_entry(&registry, &e, "lms-bench", "11.2.0").map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let prefix = format!("bench{}", std::process::id());
    let stream = format!("{prefix}-learning-badges-lifecycle");
    let client = redis::Client::open(args.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let encoded = entries(args.events, args.learners)?;
    let env = [
        ("ACCOLADE_EVENT_BUS__ENABLED", "true".to_string()),
        ("ACCOLADE_EVENT_BUS__REDIS_URL", args.redis.clone()),
        ("ACCOLADE_EVENT_BUS__PREFIX", prefix.clone()),
        ("ACCOLADE_EVENT_BUS__BATCH_SIZE", "2000".to_string()),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let server = start_server_on(&args.binary, &env, &args.database)?;
    wait_ready(&http, &server.base).await?;
    configure(&http, &server).await?;
    // Write while the consumer reads (pipelined XADDs are far faster than consumption).
    let started = Instant::now();
    for chunk in encoded.chunks(1000) {
        let mut pipe = redis::pipe();
        for fields in chunk {
            let cmd = pipe.cmd("XADD").arg(&stream).arg("*");
            for (k, v) in fields {
                cmd.arg(k.as_str()).arg(v.as_slice());
            }
        }
        let _: Vec<String> = pipe.query_async(&mut conn).await?;
    }
    println!(
        "wrote {} entries to {stream} in {:.1}s",
        args.events,
        started.elapsed().as_secs_f64()
    );
    // Wait for the group to have acknowledged everything.
    let t0 = started;
    let mut first = None;
    loop {
        let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let (delivered, pending) = info
            .groups
            .first()
            .map(|g| (g.entries_read.unwrap_or(0), g.pending))
            .unwrap_or((0, 0));
        if first.is_none() && delivered > 0 {
            first = Some(Instant::now());
        }
        if delivered >= args.events && pending == 0 {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(900),
            "not consumed in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let rate = args.events as f64 / secs.max(1e-9);
    println!(
        "consumed {} entries durably in {secs:.2}s = {rate:.0} events/s",
        args.events
    );
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await?;
    println!("RESULT bus_events_per_sec={rate:.0}");
    Ok(())
}
