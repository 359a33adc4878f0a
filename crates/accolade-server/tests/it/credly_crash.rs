//! Crash safety of the Credly bridge: the real binary is killed with SIGKILL again and again while
//! its worker issues badges on the Credly sandbox (which lives in the test process and survives
//! every kill). After the last restart every award reaches Credly exactly once: one live badge per
//! learner, and each award stores the id of that very badge. A job killed between "Credly issued
//! the badge" and "we recorded its id" is re-run after its lease runs out, gets Credly's duplicate
//! refusal and must reconcile; without reconciliation such jobs die and this test fails.
//!
//! The sandbox answers issue calls late (after creating the badge), like a slow network on the
//! way back, so that most kills land in that window and every run has jobs to reconcile.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use accolade_credly_sandbox::{Faults, Sandbox, Seed, SeedOrganization, SeedTemplate, SeedToken};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::{
    cli_token, crash_seed, free_port, passing, post_until_acknowledged, rules_passed, unique, DEMO,
    PASSING,
};

pub const ORG: &str = "7b0e4c1a-3d2f-4e5a-9c8b-1a2b3c4d5e6f";
pub const KEY: &str = "crash-sandbox-key-7788";
pub const TEMPLATE: &str = "00000000-0000-4000-8000-00000000c4a5";
/// Learners, one award (and one Credly badge) each.
const LEARNERS: usize = 300;
/// Events are sent in chunks of this many, with a pause after each, so that new awards keep
/// arriving (and issue calls keep being in flight) through most of the kill rounds.
const CHUNK: usize = 6;
const CHUNK_PAUSE_MS: u64 = 50;
/// Kill-and-restart rounds.
const KILLS: usize = 7;
/// Sandbox latency before it handles a request (a kill then simply loses the call).
pub const LATENCY_MS: u64 = 20;
/// Delay between creating a badge and answering the issue call (a kill then leaves a badge on
/// Credly that the award does not know about yet).
const ANSWER_DELAY_MS: u64 = 40;
/// Lease of a claimed job: a killed process's jobs are claimed again this long after the claim.
pub const LEASE_SECS: i64 = 2;

/// A running `accolade serve`; killed (SIGKILL) when dropped, so a failing assert leaves no
/// process behind.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, db: &str, port: u16, api_base_url: &str, n: usize) -> Server {
    start_with(dir, db, port, api_base_url, &format!("server-{n}"), &[])
}

/// `accolade serve` on `db` and `port`, issuing to the Credly API at `api_base_url`, with its log
/// in `dir/<name>.log` and `env` on top of the crash tests' settings.
pub fn start_with(
    dir: &Path,
    db: &str,
    port: u16,
    api_base_url: &str,
    name: &str,
    env: &[(&str, &str)],
) -> Server {
    let log = dir.join(format!("{name}.log"));
    let stderr = File::create(&log).expect("server log file");
    let child = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            db,
        ])
        .env("ACCOLADE_LOG__LEVEL", "warn")
        .env("ACCOLADE_CREDLY__API_BASE_URL", api_base_url)
        .env("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0")
        .env("ACCOLADE_CREDLY__TIMEOUT_SECS", "10")
        .env("ACCOLADE_WORKER__POLL_INTERVAL_MS", "20")
        .env("ACCOLADE_WORKER__LEASE_SECS", LEASE_SECS.to_string())
        // Transient failures (a busy machine) are retried every second for a while; Credly's
        // duplicate refusal is not transient and must be reconciled at once.
        .env(
            "ACCOLADE_WORKER__RETRY_SCHEDULE",
            r#"["1s","1s","1s","1s","1s","1s","1s","1s"]"#,
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start accolade");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

pub async fn wait_ready(client: &reqwest::Client, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("{}/health/ready", server.base))
            .send()
            .await
        {
            if r.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "accolade exited with {status}: {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "server did not become ready: {}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
}

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub token: String,
}

impl Api {
    pub async fn get(&self, base: &str, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{base}/api/v1{path}"))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post(&self, base: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Every row of a paginated list (`limit` / `offset` / `next_offset`).
    pub async fn all(&self, base: &str, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut rows = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .get(base, &format!("{path}{sep}limit=100&offset={offset}"))
                .await;
            rows.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_offset"].as_u64() {
                Some(next) => offset = next,
                None => return rows,
            }
        }
    }

    pub async fn jobs(&self, base: &str, status: &str) -> Vec<Value> {
        self.all(base, &format!("/jobs?kind=credly.issue&status={status}"))
            .await
    }
}

pub fn seed() -> Seed {
    Seed {
        organizations: vec![SeedOrganization {
            id: ORG.into(),
            name: "Crash Org".into(),
            tokens: vec![SeedToken {
                token: KEY.into(),
                expires_at: None,
                created_at: None,
            }],
            webhook_url: None,
            oauth_clients: Vec::new(),
        }],
        templates: vec![SeedTemplate {
            id: Some(TEMPLATE.into()),
            organization_id: ORG.into(),
            name: "Crash-proof".into(),
            state: "active".into(),
            description: "Issued while the server is being killed".into(),
            image_url: Some("https://images.example/t.png".into()),
            ..Default::default()
        }],
        generate: None,
    }
}

/// The sandbox with the crash tests' organization and template, served on a free port: it
/// outlives every server process, and its latency and late answers keep issue calls in flight.
/// Returns it, its API base URL and the serving task.
pub async fn late_sandbox() -> (
    Sandbox,
    String,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let sandbox = Sandbox::new(seed());
    sandbox.set_faults(Faults {
        latency_ms: LATENCY_MS,
        ..Faults::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_base_url = format!("http://{}/v1/", listener.local_addr().unwrap());
    let router = sandbox
        .router()
        .layer(axum::middleware::from_fn(answer_issue_late));
    let serving = tokio::spawn(async move { axum::serve(listener, router).await });
    (sandbox, api_base_url, serving)
}

/// Holds back the answer to every issue call by [`ANSWER_DELAY_MS`], after the badge exists.
pub async fn answer_issue_late(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let issue = req.method() == axum::http::Method::POST
        && req.uri().path().trim_end_matches('/').ends_with("/badges");
    let res = next.run(req).await;
    if issue {
        tokio::time::sleep(Duration::from_millis(ANSWER_DELAY_MS)).await;
    }
    res
}

pub fn user(k: usize) -> String {
    format!("user{k}")
}

/// A passing event for learner `k`, with an LMS user id of its own (Credly also refuses a second
/// badge for the same `issuer_earner_id`).
pub fn event(k: usize) -> Value {
    let mut e = passing(&format!("crash-ev-{k}"), &user(k), DEMO, true);
    e["data"]["course_passing_status"]["user"]["id"] = json!(1000 + k);
    e
}

/// Sends every learner's passing event in chunks spread over the kill rounds, each chunk retried
/// until acknowledged: the server may be dead or restarting, and a chunk committed just before a
/// kill comes back as duplicates.
async fn send_all(api: Api, base: String) {
    let events: Vec<Value> = (0..LEARNERS).map(event).collect();
    for chunk in events.chunks(CHUNK) {
        let chunk = Value::from(chunk.to_vec());
        post_until_acknowledged(&api.client, &api.token, &base, &chunk, CHUNK as u64, 20).await;
        tokio::time::sleep(Duration::from_millis(CHUNK_PAUSE_MS)).await;
    }
}

/// The organization, its synced template with a requirement, active.
pub async fn configure(api: &Api, base: &str) {
    let (s, r) = api
        .post(
            base,
            "/credly/organizations",
            json!({"uuid": ORG, "api_key": KEY}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = api
        .post(
            base,
            &format!("/credly/organizations/{ORG}/sync"),
            json!({}),
        )
        .await;
    assert_eq!((s, r["created"].as_u64()), (200, Some(1)), "{r}");
    let (s, r) = api
        .post(
            base,
            &format!("/templates/{TEMPLATE}/requirements"),
            json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = api
        .post(base, &format!("/templates/{TEMPLATE}/activate"), json!({}))
        .await;
    assert_eq!(s, 200, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_issuing_reaches_credly_exactly_once() {
    let began = Instant::now();
    let dir = std::env::temp_dir().join(format!("accolade-credly-crash-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}/crash.db", dir.display());
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(crash_seed("CREDLY_CRASH_SEED", "credly_crash"));
    let (sandbox, api_base_url, serving) = late_sandbox().await;

    let token = cli_token(&db, "credly-crash");
    let api = Api {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token,
    };

    let port = free_port();
    let mut starts = 0;
    let mut started_at = Utc::now();
    let mut server = start(&dir, &db, port, &api_base_url, starts);
    wait_ready(&api.client, &mut server).await;

    configure(&api, &server.base).await;

    // Events trickle in while the server is, again and again, left to issue for a random while,
    // SIGKILLed and restarted on the same database (same port); the last rounds also kill while
    // re-claimed (lease expired) jobs are re-run.
    let sender = tokio::spawn(send_all(api.clone(), server.base.clone()));
    let mut interrupted_kills = 0;
    let mut interrupted_jobs = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..=600))).await;
        server.child.kill().expect("SIGKILL");
        let _ = server.child.wait();
        let killed_at = Utc::now();
        drop(server);
        let lease = chrono::Duration::seconds(LEASE_SECS);
        let claimed_by_killed = (started_at + lease)..=(killed_at + lease);
        starts += 1;
        started_at = Utc::now();
        server = start(&dir, &db, port, &api_base_url, starts);
        wait_ready(&api.client, &mut server).await;
        // Jobs the killed process had claimed and not finished are still `running` under its
        // lease (the new process claims them only when that runs out). Informational: a slow
        // restart may let the lease run out first.
        let orphans = api
            .jobs(&server.base, "running")
            .await
            .iter()
            .filter(|j| {
                j["locked_until"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .is_some_and(|t| claimed_by_killed.contains(&t))
            })
            .count();
        if orphans > 0 {
            interrupted_kills += 1;
            interrupted_jobs += orphans;
        }
    }

    tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("every event acknowledged")
        .unwrap();

    // The last server runs undisturbed until no issue job is waiting or running.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let dead = api.jobs(&server.base, "dead").await;
        assert!(
            dead.is_empty(),
            "{} credly.issue jobs are dead, e.g. {}",
            dead.len(),
            dead[0]
        );
        let pending = api.jobs(&server.base, "pending").await.len();
        let running = api.jobs(&server.base, "running").await.len();
        if pending == 0 && running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Credly jobs did not settle: {pending} pending, {running} running; server log: {}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Credly: exactly one live badge per learner, of our template.
    let emails: HashSet<String> = (0..LEARNERS)
        .map(|k| format!("{}@example.com", user(k)))
        .collect();
    let badges = sandbox.badges(ORG);
    let mut badge_of: HashMap<String, String> = HashMap::new();
    for b in &badges {
        let email = b["recipient_email"].as_str().unwrap().to_ascii_lowercase();
        assert_ne!(b["state"], "revoked", "{b}");
        assert_eq!(b["badge_template"]["id"], TEMPLATE, "{b}");
        assert!(emails.contains(&email), "unexpected recipient: {b}");
        let id = b["id"].as_str().unwrap().to_string();
        if let Some(other) = badge_of.insert(email.clone(), id) {
            panic!("two Credly badges for {email}: {other} and {b}");
        }
    }
    assert_eq!(badges.len(), LEARNERS, "one Credly badge per learner");
    assert_eq!(badge_of.len(), LEARNERS);

    // Accolade: one award per learner, each holding the id of that learner's Credly badge.
    let awards = api
        .all(&server.base, &format!("/awards?template={TEMPLATE}"))
        .await;
    assert_eq!(awards.len(), LEARNERS, "one award per learner");
    let mut learners = HashSet::new();
    let mut external_ids = HashSet::new();
    for a in &awards {
        let learner = a["learner"].as_str().unwrap();
        assert!(learners.insert(learner.to_string()), "two awards: {a}");
        let external = a["external_id"]
            .as_str()
            .unwrap_or_else(|| panic!("award never reached Credly: {a}"));
        assert_eq!(
            badge_of
                .get(&format!("{learner}@example.com"))
                .map(String::as_str),
            Some(external),
            "the award stores its learner's Credly badge: {a}"
        );
        assert!(external_ids.insert(external.to_string()), "shared id: {a}");
        assert_eq!(a["state"], "pending", "delivered, awaiting acceptance: {a}");
    }

    // The outbox: one issue job per award, all succeeded, nothing dead of any kind.
    let jobs = api.all(&server.base, "/jobs?kind=credly.issue").await;
    assert_eq!(jobs.len(), LEARNERS, "one credly.issue job per award");
    assert!(
        jobs.iter().all(|j| j["status"] == "succeeded"),
        "every issue job succeeded"
    );
    let dead = api.all(&server.base, "/jobs?status=dead").await;
    assert!(dead.is_empty(), "dead jobs: {dead:?}");

    let stats = sandbox.stats();
    let reruns: i64 = jobs
        .iter()
        .map(|j| j["attempts"].as_i64().unwrap_or(1) - 1)
        .sum();
    assert_eq!(
        stats.issued, LEARNERS as u64,
        "Credly created one badge each"
    );
    eprintln!(
        "credly_crash: {KILLS} kills, {interrupted_kills} with claimed issue jobs unfinished \
         ({interrupted_jobs} jobs); issue requests {}, issued {}, duplicates refused \
         (reconciled) {}, job re-runs {reruns}; {:.1?}",
        stats.requests.get("issue_badge").copied().unwrap_or(0),
        stats.issued,
        stats.duplicates_refused,
        began.elapsed()
    );
    drop(server);
    serving.abort();
    let _ = std::fs::remove_dir_all(dir);
}
