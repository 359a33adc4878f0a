//! Two instances of the released binary on one PostgreSQL database, both consuming the event bus,
//! taking HTTP events, issuing to the Credly sandbox and publishing badge events, while one or the
//! other is killed with SIGKILL again and again, during ingest and issuing. At the end every
//! event is in the inbox exactly once, every learner holds one award that reached Credly exactly
//! once (one badge each, its id stored), each award is published to the stream once, and nothing
//! is left pending: no job, no unacknowledged stream entry, no unpublished event.
//!
//! HTTP batches and the consumer's reads are large enough (64 events or more) to go through the
//! learner lanes, so a kill also lands between lanes' commits.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use accolade_eventbus::{encode_entry, SchemaRegistry};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::bus::badge_events;
use crate::credly_crash::{
    configure, event, late_sandbox, start_with, user, wait_ready, Api, Server, LEASE_SECS, ORG,
    TEMPLATE,
};
use crate::helpers::{
    cli_token, crash_seed, free_port, fresh_pg_database, passing, post_until_acknowledged, unique,
};

const REDIS: &str = "redis://127.0.0.1:6379/0";
/// Learners, one award (and one Credly badge) each: the even ones pass through the event bus,
/// the odd ones over HTTP.
const LEARNERS: usize = 400;
/// Events for no badge (another course) on the stream; half as many over HTTP. They keep both
/// instances ingesting through the kill rounds. The stream stays below the 10,000 entries the
/// publisher trims it to, so every badge event published can be read back.
const FILLER: usize = 8_000;
/// Stream entries are written in chunks of this many, HTTP events sent in batches of this many
/// (lanes need 64), with a pause after each.
const STREAM_CHUNK: usize = 300;
const HTTP_BATCH: usize = 100;
const PAUSE_MS: u64 = 120;
/// Kill-and-restart rounds, alternating between the two instances.
const KILLS: usize = 6;

fn settings<'a>(prefix: &'a str, consumer: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ACCOLADE_EVENT_BUS__ENABLED", "true"),
        ("ACCOLADE_EVENT_BUS__REDIS_URL", REDIS),
        ("ACCOLADE_EVENT_BUS__PREFIX", prefix),
        ("ACCOLADE_EVENT_BUS__CONSUMER", consumer),
        ("ACCOLADE_EVENT_BUS__BATCH_SIZE", "200"),
        ("ACCOLADE_EVENT_BUS__BLOCK_MS", "100"),
        // A killed consumer's unacknowledged reads are taken over by the other one soon.
        ("ACCOLADE_EVENT_BUS__CLAIM_IDLE_SECS", "2"),
        ("ACCOLADE_DATABASE__EVENT_LANES", "3"),
    ]
}

fn start(
    dir: &Path,
    db: &str,
    port: u16,
    credly: &str,
    prefix: &str,
    who: &str,
    n: usize,
) -> Server {
    start_with(
        dir,
        db,
        port,
        credly,
        &format!("{who}-{n}"),
        &settings(prefix, who),
    )
}

/// An event for no badge (another course) from learner `k % LEARNERS`, with that learner's own
/// LMS user id (Credly refuses a second badge for one `issuer_earner_id`).
fn filler(tag: &str, i: usize) -> Value {
    let k = i % LEARNERS;
    let mut e = passing(
        &format!("cluster-{tag}-{i}"),
        &user(k),
        "course-v1:Other+Course+Run",
        true,
    );
    e["data"]["course_passing_status"]["user"]["id"] = json!(1000 + k);
    e
}

/// Learners of `parity` (0: even, 1: odd) with their passing events spread among `n` filler
/// events, in the order they are sent.
fn events(parity: usize, tag: &str, n: usize) -> Vec<Value> {
    let mut out: Vec<Value> = (0..n).map(|i| filler(tag, i)).collect();
    for k in (parity..LEARNERS).step_by(2) {
        out.insert(k * n / LEARNERS, event(k));
    }
    out
}

/// The LMS writes to the stream while the instances run: chunks with pauses.
async fn publish_stream(mut conn: redis::aio::MultiplexedConnection, stream: String) {
    let registry = SchemaRegistry::builtin();
    for chunk in events(0, "bus", FILLER).chunks(STREAM_CHUNK) {
        let mut pipe = redis::pipe();
        for e in chunk {
            let mut e = e.clone();
            e["sourcehost"] = json!("lms");
            let fields = encode_entry(&registry, &e, "lms", "11.2.0").unwrap();
            let cmd = pipe.cmd("XADD").arg(&stream).arg("*");
            for (k, v) in &fields {
                cmd.arg(k.as_str()).arg(v.as_slice());
            }
        }
        let _: Vec<String> = pipe.query_async(&mut conn).await.unwrap();
        tokio::time::sleep(Duration::from_millis(PAUSE_MS)).await;
    }
}

/// The odd learners' events over HTTP, in batches to one instance then the other, each retried
/// until acknowledged (its instance may be dead or restarting).
async fn send_http(api: Api, bases: [String; 2]) {
    let mut turn = 0;
    for batch in events(1, "http", FILLER / 2).chunks(HTTP_BATCH) {
        turn += 1;
        let batch = Value::from(batch.to_vec());
        let n = batch.as_array().map_or(0, Vec::len) as u64;
        // Batches alternate between the instances; one whose instance is dead waits for its
        // restart, as a client pinned to it would.
        post_until_acknowledged(&api.client, &api.token, &bases[turn % 2], &batch, n, 50).await;
        tokio::time::sleep(Duration::from_millis(PAUSE_MS)).await;
    }
}

/// (entries read, pending, lag) of the consumer group.
async fn group(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> (u64, u64, u64) {
    let info: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap_or_default();
    let Some(g) = info.first() else {
        return (0, 0, u64::MAX);
    };
    let number = |k: &str| match g.get(k) {
        Some(redis::Value::Int(n)) => *n as u64,
        _ => u64::MAX,
    };
    (number("entries-read"), number("pending"), number("lag"))
}

/// `SELECT count(*)` from a table of the test database, through psql.
fn count(db: &str, table: &str, filter: &str) -> u64 {
    let out = std::process::Command::new("psql")
        .args([
            db,
            "-Atc",
            &format!("SELECT count(*) FROM {table} {filter}"),
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_killed_during_ingest_and_issuing_lose_nothing() {
    let began = Instant::now();
    let Some(db) = fresh_pg_database().await else {
        return;
    };
    let mut conn = match redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
    {
        Ok(c) => c,
        Err(e) => {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Redis: {e}");
            eprintln!("SKIPPED: Redis not reachable: {e}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("accolade-cluster-crash-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(crash_seed("CLUSTER_CRASH_SEED", "cluster_crash"));
    let (sandbox, credly, serving) = late_sandbox().await;

    let prefix = format!("cluster{}", unique());
    let stream = format!("{prefix}-learning-badges-lifecycle");
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token: cli_token(&db, "cluster-crash"),
    };
    let names = ["a", "b"];
    let ports = [free_port(), free_port()];
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let mut starts = [0usize; 2];
    let mut servers: Vec<Server> = Vec::new();
    for i in 0..2 {
        let mut s = start(&dir, &db, ports[i], &credly, &prefix, names[i], 0);
        wait_ready(&api.client, &mut s).await;
        servers.push(s);
    }
    configure(&api, &bases[0]).await;

    // The LMS writes to the stream and HTTP clients send batches, all through the kill rounds.
    let writer = tokio::spawn(publish_stream(conn.clone(), stream.clone()));
    let sender = tokio::spawn(send_http(api.clone(), bases.clone()));
    let on_stream = FILLER + LEARNERS / 2;

    // Kill one instance, then the other, at random moments; each comes back on its port with
    // its consumer name.
    let mut mid_work = 0;
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..=1_200))).await;
        let i = round % 2;
        servers[i].child.kill().expect("SIGKILL");
        let _ = servers[i].child.wait();
        let (read, pending, _) = group(&mut conn, &stream).await;
        let issuing = count(
            &db,
            "jobs",
            "WHERE kind = 'credly.issue' AND status <> 'succeeded'",
        );
        eprintln!(
            "kill {round} ({}): stream read {read}, pending {pending}; issue jobs open {issuing}",
            names[i]
        );
        if (read as usize) < on_stream || pending > 0 || issuing > 0 {
            mid_work += 1;
        }
        starts[i] += 1;
        servers[i] = start(&dir, &db, ports[i], &credly, &prefix, names[i], starts[i]);
        wait_ready(&api.client, &mut servers[i]).await;
    }
    assert!(mid_work > 0, "no kill landed while there was work left");
    tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("every HTTP batch acknowledged")
        .unwrap();
    writer.await.unwrap();

    // Both run undisturbed until everything has settled.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, pending, lag) = group(&mut conn, &stream).await;
        let open = count(&db, "jobs", "WHERE status <> 'succeeded'");
        let unpublished = count(&db, "outgoing_events", "WHERE published_at IS NULL");
        let published = badge_events(&mut conn, &stream).await.len();
        if pending == 0 && lag == 0 && open == 0 && unpublished == 0 && published >= LEARNERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not settle: stream pending {pending}, lag {lag}; jobs open {open}; \
             unpublished {unpublished}, published {published}; logs: {} / {}",
            std::fs::read_to_string(&servers[0].log).unwrap_or_default(),
            std::fs::read_to_string(&servers[1].log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every event applied once: the inbox holds each sent event, and the dashboard total agrees.
    let sent = on_stream + FILLER / 2 + LEARNERS / 2;
    assert_eq!(count(&db, "inbox_events", "") as usize, sent);
    let total = std::process::Command::new("psql")
        .args([
            &db,
            "-Atc",
            "SELECT value FROM counters WHERE name = 'events'",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&total.stdout).trim(),
        sent.to_string(),
        "the dashboard's event total counts each event once"
    );

    // Credly: one live badge per learner, created once.
    let badges = sandbox.badges(ORG);
    let mut badge_of: HashMap<String, String> = HashMap::new();
    for b in &badges {
        let email = b["recipient_email"].as_str().unwrap().to_ascii_lowercase();
        assert_eq!(b["badge_template"]["id"], TEMPLATE, "{b}");
        let id = b["id"].as_str().unwrap().to_string();
        if let Some(other) = badge_of.insert(email.clone(), id) {
            panic!("two Credly badges for {email}: {other} and {b}");
        }
    }
    assert_eq!(badges.len(), LEARNERS, "one Credly badge per learner");
    assert_eq!(sandbox.stats().issued, LEARNERS as u64);

    // Accolade: one award per learner, holding that learner's badge id; one succeeded job each.
    let awards = api
        .all(&bases[1], &format!("/awards?template={TEMPLATE}"))
        .await;
    assert_eq!(awards.len(), LEARNERS, "one award per learner");
    let mut learners = HashSet::new();
    for a in &awards {
        let learner = a["learner"].as_str().unwrap();
        assert!(learners.insert(learner.to_string()), "two awards: {a}");
        assert_eq!(
            badge_of.get(&format!("{learner}@example.com")),
            a["external_id"].as_str().map(str::to_string).as_ref(),
            "the award stores its learner's Credly badge: {a}"
        );
    }
    let jobs = api.all(&bases[1], "/jobs?kind=credly.issue").await;
    assert_eq!(jobs.len(), LEARNERS, "one credly.issue job per award");
    assert!(jobs.iter().all(|j| j["status"] == "succeeded"));

    // The stream: each award published once, by whichever instance held the publisher lease.
    let mut published: Vec<String> = badge_events(&mut conn, &stream)
        .await
        .iter()
        .map(|e| {
            assert_eq!(
                e["event_type"], "org.openedx.learning.badge.awarded.v1",
                "{e}"
            );
            e["data"]["badge"]["user"]["pii"]["username"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    published.sort();
    let mut expected: Vec<String> = (0..LEARNERS).map(user).collect();
    expected.sort();
    assert_eq!(published, expected, "each award published exactly once");
    let info: HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        info.get("entries-added"),
        Some(&redis::Value::Int((on_stream + LEARNERS) as i64)),
        "the LMS's entries and one badge event per award were ever added"
    );

    eprintln!(
        "cluster_crash: {KILLS} kills ({mid_work} mid-work), {sent} events, {LEARNERS} awards, \
         issue requests {}, duplicates refused (reconciled) {}; lease {LEASE_SECS}s; {:.1?}",
        sandbox
            .stats()
            .requests
            .get("issue_badge")
            .copied()
            .unwrap_or(0),
        sandbox.stats().duplicates_refused,
        began.elapsed()
    );
    drop(servers);
    serving.abort();
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
