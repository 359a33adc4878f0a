//! `TestApp`: the real router over a fresh store, driven in-process with `oneshot`.
//!
//! The backend is SQLite (a temp file) unless `ACCOLADE_TEST_DB=postgres`, in which case a fresh
//! PostgreSQL database is created on `ACCOLADE_TEST_PG_URL` (default 127.0.0.1:5432).

#![allow(dead_code)]

use std::sync::Arc;

use accolade_server::config::Config;
use accolade_server::service::auth;
use accolade_server::{build_app, AppState};
use accolade_store::Store;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
pub const DEMO: &str = "course-v1:OpenedX+DemoX+Demo_Course";

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub token: String,
}

pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

pub async fn fresh_store(config: &Config) -> Arc<dyn Store> {
    if std::env::var("ACCOLADE_TEST_DB").as_deref() == Ok("postgres") {
        let base = std::env::var("ACCOLADE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("accolade_it_{}", unique());
        let admin = sqlx_admin(&base, &name).await;
        let mut db = config.database.clone();
        db.url = admin;
        accolade_server::db::open(&db).await.expect("open postgres")
    } else {
        let dir = std::env::temp_dir().join(format!("accolade-it-{}", unique()));
        let mut db = config.database.clone();
        db.url = format!("sqlite://{}/test.db", dir.display());
        accolade_server::db::open(&db).await.expect("open sqlite")
    }
}

async fn sqlx_admin(base: &str, name: &str) -> String {
    // Create the database with psql-free SQL through the store crate's driver.
    use std::process::Command;
    let out = Command::new("psql")
        .args([base, "-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql available for creating test databases");
    assert!(
        out.status.success(),
        "cannot create test database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("database url with a database name");
    format!("{prefix}/{name}")
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_config(Config::defaults()).await
    }

    pub async fn with_config(mut config: Config) -> TestApp {
        if config.secrets.key.is_empty() {
            // Never touch ./accolade-data from tests: a fixed key in memory.
            config.secrets.key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into();
        }
        // Nor for Open Credit images and mail: a temp folder unless the test chose one.
        let defaults = Config::defaults();
        if config.opencredit.media_root == defaults.opencredit.media_root
            || config.opencredit.mail.folder == defaults.opencredit.mail.folder
        {
            let dir = std::env::temp_dir().join(format!("accolade-it-{}", unique()));
            if config.opencredit.media_root == defaults.opencredit.media_root {
                config.opencredit.media_root = dir.join("media");
            }
            if config.opencredit.mail.folder == defaults.opencredit.mail.folder {
                config.opencredit.mail.folder = dir.join("mail");
            }
        }
        let store = fresh_store(&config).await;
        let (_, token) = auth::create_token(&*store, "tests", &[], None)
            .await
            .unwrap();
        let state = AppState::new(store, config).unwrap();
        let router = build_app(state.clone());
        TestApp {
            state,
            router,
            token,
        }
    }

    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        self.raw(method, uri, body.map(String::into_bytes), true)
            .await
    }

    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        body: Option<Vec<u8>>,
        auth: bool,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if auth {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.request("GET", uri, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.request("POST", uri, Some(body)).await
    }

    /// Creates an active local template with the given requirements (`(group, rules)`).
    pub async fn template(&self, name: &str, requirements: &[(&str, Value)]) -> String {
        let (s, t) = self
            .post("/api/v1/templates", json!({"name": name, "active": false}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        let id = t["id"].as_str().unwrap().to_string();
        self.add_requirements_and_activate(id, requirements).await
    }

    /// Like [`TestApp::template`], for a Credly template (as a sync would create it): its jobs
    /// call Credly, so they wait in the outbox (no worker runs in these tests).
    pub async fn credly_template(&self, name: &str, requirements: &[(&str, Value)]) -> String {
        let t = self
            .state
            .store
            .create_template(accolade_store::testkit::support::credly_template(
                name, false,
            ))
            .await
            .unwrap();
        self.add_requirements_and_activate(t.id, requirements).await
    }

    async fn add_requirements_and_activate(
        &self,
        id: String,
        requirements: &[(&str, Value)],
    ) -> String {
        for (group, rules) in requirements {
            let (s, r) = self
                .post(
                    &format!("/api/v1/templates/{id}/requirements"),
                    json!({"event_type": PASSING, "group": group, "rules": rules}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
        }
        let (s, _) = self
            .post(&format!("/api/v1/templates/{id}/activate"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK);
        id
    }

    pub async fn send(&self, events: Value) -> Value {
        let (s, body) = self.post("/api/v1/events", events).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        body
    }

    pub async fn awards(&self, learner: &str) -> Vec<Value> {
        let (s, body) = self.get(&format!("/api/v1/awards?learner={learner}")).await;
        assert_eq!(s, StatusCode::OK);
        body["data"].as_array().unwrap().clone()
    }
}

/// A course passing-status event in the Open edX shape.
pub fn passing(id: &str, user: &str, course: &str, is_passing: bool) -> Value {
    json!({
        "id": id,
        "event_type": PASSING,
        "time": "2026-08-20T14:03:27.512345+00:00",
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": course, "display_name": "", "end": null, "start": null},
            "is_passing": is_passing,
            "user": {"id": 42, "is_active": true, "pii": {"email": format!("{user}@example.com"), "name": "", "username": user}}
        }}
    })
}

pub fn rules_passed(course: &str) -> Value {
    json!([{"path": "is_passing", "op": "=", "value": "true"}, {"path": "course.course_key", "op": "=", "value": course}])
}

/// A free TCP port on 127.0.0.1 (for starting the real binary).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates an admin token with the real binary (`accolade admin create-token`) and returns it.
pub fn cli_token(db: &str, name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args([
            "admin",
            "create-token",
            "--name",
            name,
            "--database-url",
            db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A new, empty PostgreSQL database on `ACCOLADE_TEST_PG_URL` (dropped by scripts/test), or
/// `None` with a SKIPPED note when PostgreSQL is not reachable (a failure under CI=true).
pub async fn fresh_pg_database() -> Option<String> {
    let base = std::env::var("ACCOLADE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("accolade_it_{}", unique());
    let created = std::process::Command::new("psql")
        .args([
            base.as_str(),
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output();
    match created {
        Ok(out) if out.status.success() => {
            let (prefix, _) = base.rsplit_once('/').expect("a database name in the URL");
            Some(format!("{prefix}/{name}"))
        }
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "PostgreSQL is not reachable at {base} and CI=true: {why}"
            );
            eprintln!("SKIPPED: PostgreSQL not reachable at {base}: {why}");
            None
        }
    }
}

/// Rules as code for a Demo template: passing the Demo course earns it, failing resets it (so a
/// fail after a pass revokes).
pub fn demo_rules_with_penalty() -> String {
    format!(
        "[[template]]\nname = \"Demo\"\nactive = true\n[[template.requirement]]\nkey = \"demo\"\nevent_type = \"{PASSING}\"\n\
         rules = [ {{ path = \"is_passing\", op = \"=\", value = \"true\" }}, {{ path = \"course.course_key\", op = \"=\", value = \"{DEMO}\" }} ]\n\
         [[template.penalty]]\nevent_type = \"{PASSING}\"\nrequirements = [\"demo\"]\nrules = [ {{ path = \"is_passing\", op = \"=\", value = \"false\" }} ]\n"
    )
}

/// POSTs `events` (one event or a list of `n`) to `base`'s `/api/v1/events` until every one is
/// acknowledged, accepted or as a duplicate: the server may be dead or restarting (crash tests),
/// and a batch committed just before a kill comes back as duplicates. Waits `pause_ms` between
/// tries.
pub async fn post_until_acknowledged(
    client: &reqwest::Client,
    token: &str,
    base: &str,
    events: &Value,
    n: u64,
    pause_ms: u64,
) {
    loop {
        let r = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(token)
            .json(events)
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 202 {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let acknowledged = body["accepted"].as_u64().unwrap_or(0)
                    + body["duplicates"].as_u64().unwrap_or(0);
                if acknowledged == n {
                    return;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
    }
}

/// The seed of a crash test's random kill times: `var` from the environment (to repeat a run),
/// else the clock; printed with the test's name.
pub fn crash_seed(var: &str, test: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: {var}={seed}");
    seed
}
