//! Crash safety: the real binary is killed with SIGKILL again and again while clients send
//! events; clients retry until acknowledged (at-least-once). Afterwards every event was processed
//! exactly once in effect: each learner's pass → fail → pass sequence produced exactly two award
//! episodes and one revocation, never more, never fewer.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{cli_token, free_port, passing, post_until_acknowledged, unique, DEMO};

struct Server {
    child: Child,
    base: String,
}

fn start(db: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .env("ACCOLADE_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start accolade");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_any_moment_loses_nothing_and_duplicates_nothing() {
    let dir = std::env::temp_dir().join(format!("accolade-crash-{}", unique()));
    let db = format!("sqlite://{}/crash.db", dir.display());
    let token = cli_token(&db, "crash");
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, crate::helpers::demo_rules_with_penalty()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args([
            "apply",
            "-f",
            rules.to_str().unwrap(),
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut server = start(&db, port);
    wait_ready(&client, &server.base).await;

    const LEARNERS: usize = 40;
    let base = server.base.clone();
    let mut clients = Vec::new();
    for l in 0..LEARNERS {
        let client = client.clone();
        let base = base.clone();
        let token = token.clone();
        clients.push(tokio::spawn(async move {
            let user = format!("learner{l}");
            for (step, pass) in [true, false, true].into_iter().enumerate() {
                let ev = passing(&format!("{user}-{step}"), &user, DEMO, pass);
                post_until_acknowledged(&client, &token, &base, &ev, 1, 20).await;
                tokio::time::sleep(Duration::from_millis(5 * (l as u64 % 7))).await;
            }
        }));
    }
    // Kill and restart several times while the clients work.
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(150 + 70 * round)).await;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        server = start(&db, port);
        wait_ready(&client, &server.base).await;
    }
    for c in clients {
        tokio::time::timeout(Duration::from_secs(120), c)
            .await
            .expect("clients finish")
            .unwrap();
    }
    // Replay everything once more: all duplicates now.
    for l in 0..LEARNERS {
        let user = format!("learner{l}");
        let evs: Vec<Value> = (0..3)
            .map(|s| passing(&format!("{user}-{s}"), &user, DEMO, s != 1))
            .collect();
        let r: Value = client
            .post(format!("{}/api/v1/events", server.base))
            .bearer_auth(&token)
            .json(&json!(evs))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["duplicates"], 3, "{user}: {r}");
    }
    for l in 0..LEARNERS {
        let user = format!("learner{l}");
        let r: Value = client
            .get(format!("{}/api/v1/awards?learner={user}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let awards = r["data"].as_array().unwrap();
        let states: Vec<(i64, &str)> = awards
            .iter()
            .map(|a| (a["episode"].as_i64().unwrap(), a["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            awards.len(),
            2,
            "{user}: exactly two episodes, got {states:?}"
        );
        assert!(states.contains(&(1, "revoked")), "{user}: {states:?}");
        assert!(
            states.iter().any(|(e, s)| *e == 2 && *s != "revoked"),
            "{user}: {states:?}"
        );
    }
    let r: Value = client
        .get(format!("{}/api/v1/events?limit=500", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["data"].as_array().unwrap().len(),
        LEARNERS * 3,
        "every event stored exactly once"
    );
    server.child.kill().ok();
    let _ = server.child.wait();
    let _ = std::fs::remove_dir_all(dir);
}
