//! Badge events reach the Open edX event bus from the released binary (defect 1 of issue 15:
//! the publisher was never started): `accolade serve` with `ACCOLADE_EVENT_BUS__ENABLED=true`
//! publishes an award made over HTTP, one made from a bus event, and a revocation, each once;
//! two instances on one database publish every event once, and the survivor takes over when the
//! publishing one is killed; SIGKILL during publishing never publishes an event twice.

use std::collections::HashMap;
use std::time::Duration;

use accolade_eventbus::{encode_entry, SchemaRegistry};
use serde_json::{json, Value};

use crate::bus::badge_events;
use crate::helpers::{passing, unique, DEMO};
use crate::process::{eventually, Operator, Served};

const REDIS: &str = "redis://127.0.0.1:6379/0";

async fn redis() -> Option<redis::aio::MultiplexedConnection> {
    match redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
    {
        Ok(c) => Some(c),
        Err(e) => {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Redis: {e}");
            eprintln!("SKIPPED: Redis not reachable: {e}");
            None
        }
    }
}

/// An operator with the bus on (its own stream) and a Demo template with a penalty for failing.
fn bus_operator(name: &str) -> (Operator, String) {
    let prefix = format!("op{}", unique());
    let op = Operator::new(name)
        .set("ACCOLADE_EVENT_BUS__ENABLED", "true")
        .set("ACCOLADE_EVENT_BUS__REDIS_URL", REDIS)
        .set("ACCOLADE_EVENT_BUS__PREFIX", &prefix)
        .set("ACCOLADE_EVENT_BUS__BLOCK_MS", "100")
        .set("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50");
    let stream = format!("{prefix}-learning-badges-lifecycle");
    (op, stream)
}

fn apply_demo_rules(op: &Operator) {
    let rules = op.path("rules.toml");
    std::fs::write(&rules, crate::helpers::demo_rules_with_penalty()).unwrap();
    op.ok(&["apply", "-f", rules.to_str().unwrap()]);
}

async fn send(server: &Served, token: &str, events: Value) {
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/events"))
        .bearer_auth(token)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202, "{}", res.text().await.unwrap());
}

/// (event type suffix, username) of each badge event on the stream.
async fn published(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
) -> Vec<(String, String)> {
    badge_events(conn, stream)
        .await
        .iter()
        .map(|e| {
            let t = e["event_type"].as_str().unwrap();
            let user = e["data"]["badge"]["user"]["pii"]["username"]
                .as_str()
                .unwrap();
            (
                t.trim_start_matches("org.openedx.learning.badge.")
                    .to_string(),
                user.to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_awards_from_http_and_the_bus_and_revocations_once() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let (op, stream) = bus_operator("publish");
    apply_demo_rules(&op);
    let token = op.token();
    let server = op.serve(&[]).await;
    let ready: Value = reqwest::get(server.url("/health/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["roles"],
        json!(["api", "workers", "consumer", "publisher"]),
        "{ready}"
    );

    send(&server, &token, json!([passing("h1", "ann", DEMO, true)])).await;
    // bob passes through the event bus, as the LMS would send it.
    let mut event = passing("5a1f3c2e-6f7b-11f0-8d3a-0242ac120001", "bob", DEMO, true);
    event["sourcehost"] = json!("lms");
    let fields = encode_entry(&SchemaRegistry::builtin(), &event, "lms", "11.2.0").unwrap();
    let mut xadd = redis::cmd("XADD");
    xadd.arg(&stream).arg("*");
    for (k, v) in &fields {
        xadd.arg(k.as_str()).arg(v.as_slice());
    }
    let _: String = xadd.query_async(&mut conn).await.unwrap();
    eventually(Duration::from_secs(20), "bob's award published", || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move { (published(&mut conn, &stream).await.len() == 2).then_some(()) }
    })
    .await;
    send(&server, &token, json!([passing("h2", "ann", DEMO, false)])).await;
    eventually(
        Duration::from_secs(20),
        "ann's revocation published",
        || {
            let mut conn = conn.clone();
            let stream = stream.clone();
            async move { (published(&mut conn, &stream).await.len() == 3).then_some(()) }
        },
    )
    .await;
    // Nothing more comes: each event once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = published(&mut conn, &stream).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("awarded.v1".into(), "ann".into()),
            ("awarded.v1".into(), "bob".into()),
            ("revoked.v1".into(), "ann".into()),
        ]
    );
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("accolade_bus_publisher_leader 1"),
        "{metrics}"
    );
}

/// Whether this server says it holds the publisher lease.
async fn is_leader(server: &Served) -> bool {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.contains("accolade_bus_publisher_leader 1")
}

fn learners(from: usize, to: usize) -> Value {
    Value::Array(
        (from..to)
            .map(|i| passing(&format!("ev-{i}"), &format!("u{i}"), DEMO, true))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publish_each_event_once_and_the_survivor_takes_over() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let Some(db) = crate::helpers::fresh_pg_database().await else {
        return;
    };
    let (op, stream) = bus_operator("publish-two");
    let op = op
        .set("ACCOLADE_DATABASE__URL", db)
        .set("ACCOLADE_DATABASE__AUTO_MIGRATE", "false");
    op.ok(&["migrate"]);
    apply_demo_rules(&op);
    let token = op.token();
    let a = op.serve(&[]).await;
    let b = op.serve(&[]).await;
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        send(server, &token, learners(i * 50, (i + 1) * 50)).await;
    }
    let count = |n: usize| {
        let conn = conn.clone();
        let stream = stream.clone();
        move || {
            let mut conn = conn.clone();
            let stream = stream.clone();
            async move { (published(&mut conn, &stream).await.len() >= n).then_some(()) }
        }
    };
    eventually(Duration::from_secs(30), "300 awards published", count(300)).await;
    let leaders = [is_leader(&a).await, is_leader(&b).await];
    assert_eq!(leaders.iter().filter(|l| **l).count(), 1, "{leaders:?}");

    // The publishing instance dies; the other takes over within the lease.
    let (mut dead, survivor) = if leaders[0] { (a, b) } else { (b, a) };
    dead.kill();
    send(&survivor, &token, learners(300, 400)).await;
    eventually(
        Duration::from_secs(30),
        "the survivor publishes",
        count(400),
    )
    .await;
    assert!(is_leader(&survivor).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (kind, user) in published(&mut conn, &stream).await {
        assert_eq!(kind, "awarded.v1");
        *seen.entry(user).or_default() += 1;
    }
    assert_eq!(seen.len(), 400);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_publishing_publishes_every_event_exactly_once() {
    let Some(mut conn) = redis().await else {
        return;
    };
    let (op, stream) = bus_operator("publish-kill");
    // A fixed instance name: a restarted instance takes its own lease back at once.
    let op = op.set("ACCOLADE_EVENT_BUS__CONSUMER", "instance-1");
    apply_demo_rules(&op);
    let token = op.token();
    // 3,000 awards made with the bus off, so they wait to be published.
    {
        let quiet = op.clone().set("ACCOLADE_EVENT_BUS__ENABLED", "false");
        let server = quiet.serve(&[]).await;
        send(&server, &token, learners(0, 3000)).await;
    }
    // Killed at different moments while it works through them (500 per batch).
    for round in 0..8u64 {
        let mut server = op.serve(&[]).await;
        tokio::time::sleep(Duration::from_millis(5 + 15 * round)).await;
        server.kill();
    }
    let _server = op.serve(&[]).await;
    let done = eventually(Duration::from_secs(30), "3,000 published", || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move {
            let got = published(&mut conn, &stream).await;
            (got.len() >= 3000).then_some(got)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = published(&mut conn, &stream).await;
    assert_eq!(got.len(), done.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, user) in got {
        *seen.entry(user).or_default() += 1;
    }
    assert_eq!(seen.len(), 3000);
    assert!(seen.values().all(|n| *n == 1), "an event published twice");
}

/// A Redis of the test's own, started late on a port of its own.
struct LateRedis(std::process::Child);

impl Drop for LateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_waits_out_a_redis_outage_and_then_publishes() {
    if redis().await.is_none() {
        return;
    }
    let port = crate::helpers::free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let (op, stream) = bus_operator("publish-outage");
    let op = op.set("ACCOLADE_EVENT_BUS__REDIS_URL", &url);
    apply_demo_rules(&op);
    let token = op.token();
    // Redis is down: the server still starts and accepts events over HTTP.
    let server = op.serve(&[]).await;
    send(&server, &token, json!([passing("o1", "ann", DEMO, true)])).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _redis = LateRedis(
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH"),
    );
    let conn = eventually(Duration::from_secs(10), "the late Redis", || {
        let url = url.clone();
        async move {
            let client = redis::Client::open(url.as_str()).ok()?;
            client.get_multiplexed_async_connection().await.ok()
        }
    })
    .await;
    let got = eventually(Duration::from_secs(45), "ann's award published", || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move {
            let got = published(&mut conn, &stream).await;
            (!got.is_empty()).then_some(got)
        }
    })
    .await;
    assert_eq!(got, [("awarded.v1".to_string(), "ann".to_string())]);
    assert!(
        server
            .log()
            .contains("event-bus publisher failed; retrying"),
        "the outage is logged: {}",
        server.log()
    );
}
