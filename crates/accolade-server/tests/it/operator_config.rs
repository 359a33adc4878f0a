//! Configuration as an operator gives it to the released binary: every key of
//! `config.default.toml` set through `ACCOLADE_<SECTION>__<KEY>` and through `accolade.toml`, read
//! back with `accolade config show`; unknown variables and keys stop start-up naming the closest
//! setting; and `ACCOLADE_OPENCREDIT__*` really reaches the Open Credit limiter of two instances.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::process::{Operator, SECRETS_KEY};

/// A TOML document's settings by dotted key (tables flattened, other values are leaves).
fn flatten(text: &str) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                leaf => {
                    out.insert(key, leaf.clone());
                }
            }
        }
    }
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut out = BTreeMap::new();
    walk("", &table, &mut out);
    out
}

/// Every setting of the defaults file operators read, with its default.
fn default_settings() -> BTreeMap<String, toml::Value> {
    flatten(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config.default.toml"
        ))
        .unwrap(),
    )
}

/// For one setting: the text an operator puts in the environment, the same value as TOML, and
/// what `config show` prints for it. Settings with rules of their own are listed; the others
/// get a value derived from their default, so a new key is covered the day it is added (and
/// this test fails if the derived value is not valid for it).
fn value_for(key: &str, default: &toml::Value) -> (String, toml::Value, toml::Value) {
    use toml::Value as V;
    let text = |s: &str| (s.to_string(), V::String(s.into()), V::String(s.into()));
    let masked =
        |s: &str, shown: &str| (s.to_string(), V::String(s.into()), V::String(shown.into()));
    let list = |env: &str, items: &[&str]| {
        let v = V::Array(items.iter().map(|s| V::String((*s).into())).collect());
        (env.to_string(), v.clone(), v)
    };
    match key {
        "database.url" => masked(
            "postgres://ops:pw-db@127.0.0.1:5999/badges",
            "postgres://ops:***@127.0.0.1:5999/badges",
        ),
        "database.sqlite_synchronous" => text("NORMAL"),
        "database.sqlite_page_size" => ("4096".into(), V::Integer(4096), V::Integer(4096)),
        "http.bind" => text("127.0.0.1:9999"),
        "http.public_base_url" => text("https://badges.example.org"),
        "http.metrics_token" => masked("metrics-very-secret", "***"),
        "events.types" => list(
            "org.openedx.learning.course.enrollment.created.v1, org.openedx.learning.ccx.course.passing.status.updated.v1",
            &[
                "org.openedx.learning.course.enrollment.created.v1",
                "org.openedx.learning.ccx.course.passing.status.updated.v1",
            ],
        ),
        "events.ignored_keypaths" => list("user.id,course.end", &["user.id", "course.end"]),
        "worker.retry_schedule" => list("5s,30s", &["5s", "30s"]),
        "worker.expiry_check_interval" => text("5s"),
        "webhooks.retry_schedule" => list(r#"["2m", "10m"]"#, &["2m", "10m"]),
        "webhooks.retry_interval" => text("12h"),
        "webhooks.allowed_destinations" => list(
            "127.0.0.1, 10.20.0.0/16, *.corp.example",
            &["127.0.0.1", "10.20.0.0/16", "*.corp.example"],
        ),
        "event_bus.redis_url" => masked(
            "redis://:pw-redis@127.0.0.1:6390/2",
            "redis://:***@127.0.0.1:6390/2",
        ),
        "event_bus.start_from" => text("now"),
        "credly.api_base_url" => text("http://127.0.0.1:7001/v1/"),
        "credly.base_url" => text("http://127.0.0.1:7001/"),
        "credly.sync_interval" => text("30m"),
        "credly.key_warning_days" => (
            "14,3".into(),
            V::Array(vec![14.into(), 3.into()]),
            V::Array(vec![14.into(), 3.into()]),
        ),
        "opencredit.public_url" => text("https://badges.example.org"),
        "opencredit.rate_limit_redis_url" => text("redis://127.0.0.1:6379/3"),
        "opencredit.s3.endpoint" => text("http://127.0.0.1:9000"),
        "opencredit.s3.secret_access_key" => masked("s3-very-secret", "***"),
        "opencredit.mail.transport" => text("smtp"),
        "opencredit.mail.smtp_url" => masked(
            "smtp://mailer:pw-mail@127.0.0.1:2525",
            "smtp://mailer:***@127.0.0.1:2525",
        ),
        "opencredit.mail.from" => text("Badges <badges@example.org>"),
        "secrets.key" => masked("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=", "***"),
        "openbadges.status_list_size" => ("262144".into(), V::Integer(262144), V::Integer(262144)),
        "openbadges.issuer_url" => text("https://www.example.edu"),
        "openbadges.issuer_email" => text("badges@example.edu"),
        "log.format" => text("json"),
        "log.level" => text("debug"),
        _ => match default {
            V::Boolean(b) => ((!b).to_string(), V::Boolean(!b), V::Boolean(!b)),
            V::Integer(n) => ((n + 1).to_string(), V::Integer(n + 1), V::Integer(n + 1)),
            V::String(s) => text(&format!("{s}x")),
            other => panic!("{key}: no test value for a default of {other:?}; add one above"),
        },
    }
}

fn shown(out: &str) -> BTreeMap<String, toml::Value> {
    flatten(out)
}

fn env_name(key: &str) -> String {
    format!("ACCOLADE_{}", key.replace('.', "__").to_ascii_uppercase())
}

fn check_all(out: &str, settings: &BTreeMap<String, toml::Value>, how: &str) {
    let shown = shown(out);
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        settings.keys().collect::<Vec<_>>(),
        "{how}: config show prints exactly the documented settings"
    );
    for (key, default) in settings {
        let (_, _, expected) = value_for(key, default);
        assert_ne!(&expected, default, "{key}: the test value must differ");
        assert_eq!(shown[key], expected, "{how}: {key}");
    }
    for secret in [
        "pw-db",
        "pw-redis",
        "pw-mail",
        "s3-very-secret",
        "AgICAgIC",
        "metrics-very-secret",
    ] {
        assert!(!out.contains(secret), "{how}: {secret} printed:\n{out}");
    }
}

#[test]
fn every_setting_can_be_set_through_the_environment() {
    let settings = default_settings();
    assert!(settings.len() > 50, "{}", settings.len());
    let mut op = Operator::new("env-all");
    op.env.clear(); // the environment below is all there is
    for (key, default) in &settings {
        let (env, _, _) = value_for(key, default);
        op = op.set(&env_name(key), env);
    }
    let out = op.ok(&["config", "show"]);
    check_all(&out, &settings, "environment");
}

#[test]
fn every_setting_can_be_set_in_accolade_toml() {
    let settings = default_settings();
    let mut file = toml::Table::new();
    for (key, default) in &settings {
        let (_, value, _) = value_for(key, default);
        let mut parts: Vec<&str> = key.split('.').collect();
        let leaf = parts.pop().unwrap();
        let mut table = &mut file;
        for p in parts {
            table = table
                .entry(p)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        table.insert(leaf.into(), value);
    }
    let mut op = Operator::new("file-all");
    op.env.clear();
    std::fs::write(op.path("accolade.toml"), toml::to_string(&file).unwrap()).unwrap();
    let out = op.ok(&["config", "show"]);
    check_all(&out, &settings, "accolade.toml");
    // The environment wins over the file, the flag over both.
    let op = op.set("ACCOLADE_HTTP__BIND", "127.0.0.1:7777");
    let out = op.ok(&["config", "show"]);
    assert_eq!(shown(&out)["http.bind"].as_str(), Some("127.0.0.1:7777"));
    let out = op.ok(&["--database-url", "sqlite://flag.db", "config", "show"]);
    assert_eq!(
        shown(&out)["database.url"].as_str(),
        Some("sqlite://flag.db")
    );
}

#[test]
fn unknown_variables_and_keys_stop_start_up_naming_the_closest_setting() {
    let op = Operator::new("unknown").set("ACCOLADE_OPENCREDIT__RATE_LIMIT_REDIS_UR", "redis://x");
    for args in [
        &["config", "show"][..],
        &["serve", "--bind", "127.0.0.1:0"][..],
    ] {
        let out = op.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started: {err}");
        assert!(
            err.contains("ACCOLADE_OPENCREDIT__RATE_LIMIT_REDIS_UR:")
                && err.contains("closest setting is ACCOLADE_OPENCREDIT__RATE_LIMIT_REDIS_URL"),
            "{args:?}: {err}"
        );
    }
    // A single underscore where two belong.
    let op = Operator::new("unknown").set("ACCOLADE_HTTP_BIND", "127.0.0.1:1");
    let err = String::from_utf8(op.run(&["config", "show"]).stderr).unwrap();
    assert!(err.contains("ACCOLADE_HTTP__BIND"), "{err}");
    // A value of the wrong type is named with its variable.
    let op = Operator::new("unknown").set("ACCOLADE_WORKER__ENABLED", "maybe");
    let err = String::from_utf8(op.run(&["config", "show"]).stderr).unwrap();
    assert!(
        err.contains("ACCOLADE_WORKER__ENABLED") && err.contains("true or false"),
        "{err}"
    );
    // Variables that are not settings are left alone.
    let op = Operator::new("unknown").set("ACCOLADE_CREDLY_API_KEY", "k");
    op.ok(&["config", "show"]);

    let op = Operator::new("unknown-file");
    std::fs::write(
        op.path("accolade.toml"),
        "[opencredit]\nrate_limit_redis = \"redis://127.0.0.1:6379/0\"\n",
    )
    .unwrap();
    for args in [
        &["config", "show"][..],
        &["serve", "--bind", "127.0.0.1:0"][..],
    ] {
        let out = op.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started: {err}");
        assert!(
            err.contains("accolade.toml: unknown setting `opencredit.rate_limit_redis`")
                && err.contains("`opencredit.rate_limit_redis_url`"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn config_show_masks_secrets_given_any_way() {
    let op = Operator::new("masked")
        .set("ACCOLADE_SECRETS__KEY", SECRETS_KEY)
        .set("ACCOLADE_OPENCREDIT__S3__SECRET_ACCESS_KEY", "hush-hush");
    let out = op.ok(&["config", "show"]);
    assert!(
        !out.contains("hush-hush") && !out.contains(SECRETS_KEY),
        "{out}"
    );
    let shown = shown(&out);
    assert_eq!(shown["secrets.key"].as_str(), Some("***"));
    assert_eq!(
        shown["opencredit.s3.secret_access_key"].as_str(),
        Some("***")
    );
    // Unset secrets show as empty, so "not set" and "set" are told apart.
    assert_eq!(shown["opencredit.s3.access_key_id"].as_str(), Some(""));
}

/// Defect 2 of issue 15: `ACCOLADE_OPENCREDIT__RATE_LIMIT_REDIS_URL` was dropped, so two
/// instances of one Sandbox app (20 requests a minute) each counted alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_open_credit_limits_set_through_the_environment() {
    if redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .is_err()
    {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Redis missing");
        eprintln!("SKIPPED: Redis not reachable");
        return;
    }
    let Some(db) = crate::helpers::fresh_pg_database().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("accolade-oc2-{}", crate::helpers::unique()));
    let op = Operator::new("oc-two")
        .set("ACCOLADE_DATABASE__URL", db)
        .set("ACCOLADE_DATABASE__AUTO_MIGRATE", "false")
        .set(
            "ACCOLADE_OPENCREDIT__RATE_LIMIT_REDIS_URL",
            "redis://127.0.0.1:6379/0",
        )
        .set(
            "ACCOLADE_OPENCREDIT__MEDIA_ROOT",
            dir.join("media").display().to_string(),
        )
        .set(
            "ACCOLADE_OPENCREDIT__MAIL__FOLDER",
            dir.join("mail").display().to_string(),
        );
    op.ok(&["migrate"]);
    let created = op.ok(&[
        "opencredit",
        "create-app",
        "--name",
        "two",
        "--tier",
        "sandbox",
    ]);
    let field = |name: &str| {
        created
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let (key, secret) = (field("X-Api-Key:"), field("X-Api-Secret:"));
    let a = op.serve(&[]).await;
    let b = op.serve(&[]).await;
    crate::opencredit::fresh_minute(15).await;
    let client = reqwest::Client::new();
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..26 {
        let server = if i % 2 == 0 { &a } else { &b };
        let res = client
            .get(server.url("/v1.1/members"))
            .header("X-Api-Key", &key)
            .header("X-Api-Secret", &secret)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        match status {
            200 => ok += 1,
            401 if body["meta"]["status"] == "REQUEST_LIMIT_EXCEEDED" => refused += 1,
            _ => panic!("request {i}: {status} {body}"),
        }
    }
    assert_eq!((ok, refused), (20, 6), "one Sandbox budget across both");
}

/// `/health/ready` says which roles an instance runs, as the operator started it: the workers
/// only without `--no-workers`, the event bus only when it is enabled.
#[tokio::test]
async fn readiness_names_the_roles_the_instance_runs() {
    let op = Operator::new("roles");
    for (flags, want) in [
        (&["--no-workers"][..], serde_json::json!(["api"])),
        (&[][..], serde_json::json!(["api", "workers"])),
    ] {
        let server = op.serve(flags).await;
        let ready: serde_json::Value = reqwest::get(server.url("/health/ready"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["roles"], want, "{flags:?}: {ready}");
        assert_eq!(ready["status"], "ok");
    }
}

/// A `work` or `consume` process with its health endpoints on a port of its own; killed when
/// dropped.
struct Background {
    child: std::process::Child,
    base: String,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Background {
    fn start(op: &Operator, command: &str, env: &[(&str, &str)]) -> Background {
        let bind = format!("127.0.0.1:{}", crate::helpers::free_port());
        let log = std::fs::File::create(op.path(&format!("{command}.log"))).unwrap();
        let child = op
            .command(&[command, "--health-bind", &bind])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Background {
            child,
            base: format!("http://{bind}"),
        }
    }

    /// `/health/ready` once it answers.
    async fn ready(&mut self, op: &Operator, command: &str) -> Value {
        for _ in 0..600 {
            if let Ok(r) = reqwest::get(format!("{}/health/ready", self.base)).await {
                return r.json().await.unwrap();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "accolade {command} exited with {status}: {}",
                    std::fs::read_to_string(op.path(&format!("{command}.log"))).unwrap_or_default()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("accolade {command} never answered on {}", self.base);
    }
}

/// The roles split over processes as docs/deployment.md's units run them: an API instance with
/// `serve --no-workers` signs nothing; `accolade work` beside it does the background work (here:
/// Open Badges signing of the award the API made) and `accolade consume` runs the event bus, each
/// reporting its roles, and metrics, on `--health-bind`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_and_consume_run_their_roles_beside_an_api_instance() {
    let op = Operator::new("roles-split");
    op.write_file("rules.toml", &crate::helpers::demo_rules_with_penalty());
    op.ok(&["apply", "-f", "rules.toml"]);
    let token = op.token();
    let api = op.serve(&["--no-workers"]).await.with_token(&token);
    let (status, body) = api
        .api(
            "POST",
            "/events",
            Some(serde_json::json!([crate::helpers::passing(
                "split-1",
                "ann",
                crate::helpers::DEMO,
                true
            )])),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let awards = api.url("/api/v1/awards?learner=ann");
    let credential = || {
        let (awards, token) = (awards.clone(), token.clone());
        async move {
            let body: Value = reqwest::Client::new()
                .get(awards)
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
            body["data"][0]["credential_url"]
                .as_str()
                .map(str::to_string)
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(credential().await, None, "no worker runs yet");

    let mut work = Background::start(&op, "work", &[]);
    let ready = work.ready(&op, "work").await;
    assert_eq!(ready["roles"], serde_json::json!(["workers"]), "{ready}");
    assert_eq!(ready["status"], "ok");
    let url = crate::process::eventually(
        std::time::Duration::from_secs(20),
        "the worker signs the award",
        credential,
    )
    .await;
    assert!(url.contains("/ob/v3/credentials/"), "{url}");
    let metrics = reqwest::get(format!("{}/metrics", work.base))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("accolade_"));

    // The consumer's roles need Redis; with CI=true a missing Redis fails the test.
    let redis_up = redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .is_ok();
    if !redis_up {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "Redis not reachable"
        );
        eprintln!("SKIPPED the consume part: Redis not reachable");
        return;
    }
    let prefix = format!("split{}", crate::helpers::unique());
    let mut consume = Background::start(
        &op,
        "consume",
        &[
            ("ACCOLADE_EVENT_BUS__REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("ACCOLADE_EVENT_BUS__PREFIX", &prefix),
        ],
    );
    let ready = consume.ready(&op, "consume").await;
    assert_eq!(
        ready["roles"],
        serde_json::json!(["consumer", "publisher"]),
        "{ready}"
    );

    // A bad address is refused at start, naming the flag.
    let out = op.run(&["work", "--health-bind", "not-an-address"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--health-bind"), "{err}");
}

/// `database.event_lanes` reaches the PostgreSQL store of the released binary: with 1, a batch's
/// inbox numbers follow the input order; with 4, the batch runs as concurrent learner lanes, so
/// the numbers come in runs per lane (at most 4), not in input order, while each learner's
/// events stay in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_lanes_reach_the_postgres_store() {
    for lanes in ["1", "4"] {
        let Some(db) = crate::helpers::fresh_pg_database().await else {
            return;
        };
        let op = Operator::new("lanes")
            .set("ACCOLADE_DATABASE__URL", db.as_str())
            .set("ACCOLADE_DATABASE__EVENT_LANES", lanes);
        let token = op.token();
        let server = op.serve(&["--no-workers"]).await.with_token(&token);
        // 100 learners, two events each, the second round after the first.
        let ids: Vec<String> = (0..200).map(|i| format!("lane-ev-{i:03}")).collect();
        let events: Vec<Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                crate::helpers::passing(id, &format!("lane{}", i % 100), crate::helpers::DEMO, true)
            })
            .collect();
        let (status, body) = server
            .api("POST", "/events", Some(Value::from(events)))
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["accepted"], 200, "{body}");
        let out = std::process::Command::new("psql")
            .args([
                db.as_str(),
                "-Atc",
                "SELECT id FROM inbox_events ORDER BY seq",
            ])
            .output()
            .unwrap();
        let stored: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(stored.len(), 200);
        // Each learner's two events in order, whatever the lanes.
        let position = |id: &str| stored.iter().position(|s| s == id).unwrap();
        for i in 0..100 {
            assert!(position(&ids[i]) < position(&ids[i + 100]), "learner {i}");
        }
        if lanes == "1" {
            assert_eq!(stored, ids, "one transaction numbers in input order");
        } else {
            assert_ne!(stored, ids, "lanes number per lane");
        }
    }
}
