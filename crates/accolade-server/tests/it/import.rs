//! `accolade import openedx-credentials` through the real binary, from the sample Open edX
//! Credentials database (crates/accolade-import/tests/fixtures) loaded into the real MariaDB on
//! 127.0.0.1:3306 (root, no password; a fresh database per test): a dry run writes nothing, the
//! import matches the source row by row (read back over the API), a second import changes
//! nothing, learners then complete from their imported progress under live events, no badge the
//! source already issued reaches the Credly sandbox again, `--award-complete` issues the listed
//! learners once, and bad sources are refused with a clear error, writing nothing.
//!
//! Accolade's own database is SQLite, or PostgreSQL in the suite's PostgreSQL pass
//! (`ACCOLADE_TEST_DB=postgres`). Without MariaDB the tests say SKIPPED, except with `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use accolade_credly_sandbox::{RunningSandbox, Sandbox, Seed, SeedOrganization, SeedTemplate};
use accolade_import::plan::requirement_id;
use serde_json::{json, Value};

use crate::helpers::{unique, PASSING};
use crate::process::{eventually, Operator, Served};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../accolade-import/tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sample-expected.json")).unwrap())
        .unwrap()
}

fn mariadb_up() -> bool {
    std::net::TcpStream::connect_timeout(&"127.0.0.1:3306".parse().unwrap(), Duration::from_secs(2))
        .is_ok()
}

/// True (and a SKIPPED note) when MariaDB is missing; a failure under CI=true.
fn skip() -> bool {
    if mariadb_up() {
        return false;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "MariaDB is not reachable at 127.0.0.1:3306 and CI=true"
    );
    eprintln!("SKIPPED: MariaDB is not reachable at 127.0.0.1:3306");
    true
}

fn mysql(db: Option<&str>, sql: &str) {
    let mut cmd = Command::new("mysql");
    cmd.args([
        "-uroot",
        "-h127.0.0.1",
        "-P3306",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("the mysql client");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "mysql failed");
}

/// A fresh MariaDB database with Credentials' schema (native `uuid` columns) and the sample,
/// changed by `extra`; dropped when the guard goes.
struct SourceDb(String);

impl SourceDb {
    fn new(extra: &str) -> SourceDb {
        let name = format!("accolade_it_src_{}", unique().replace('-', "_"));
        mysql(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        );
        mysql(
            Some(&name),
            &std::fs::read_to_string(fixture("schema-mysql.sql")).unwrap(),
        );
        mysql(
            Some(&name),
            &std::fs::read_to_string(fixture("sample-data-mysql.sql")).unwrap(),
        );
        if !extra.is_empty() {
            mysql(Some(&name), &format!("SET FOREIGN_KEY_CHECKS = 0; {extra}"));
        }
        SourceDb(name)
    }

    /// A fresh database with Credentials' schema and a generated source (generate-mysql.sql):
    /// `learners` learners, 4 fulfilments each, a quarter of the progress records issued.
    fn generated(learners: u64) -> SourceDb {
        let name = format!("accolade_it_src_{}", unique().replace('-', "_"));
        mysql(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        );
        mysql(
            Some(&name),
            &std::fs::read_to_string(fixture("schema-mysql.sql")).unwrap(),
        );
        let progress = 2 * learners;
        let sql = std::fs::read_to_string(fixture("generate-mysql.sql"))
            .unwrap()
            .replace("{LEARNERS}", &learners.to_string())
            .replace("{PROGRESS}", &progress.to_string())
            .replace("{BADGES}", &(progress / 4).to_string());
        mysql(Some(&name), &sql);
        SourceDb(name)
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.0)
    }
}

impl Drop for SourceDb {
    fn drop(&mut self) {
        mysql(None, &format!("DROP DATABASE IF EXISTS {}", self.0));
    }
}

/// An operator whose database is SQLite, or a fresh PostgreSQL one in the PostgreSQL pass.
async fn operator(name: &str) -> Operator {
    let op = Operator::new(name);
    if std::env::var("ACCOLADE_TEST_DB").as_deref() == Ok("postgres") {
        if let Some(url) = crate::helpers::fresh_pg_database().await {
            return op.set("ACCOLADE_DATABASE__URL", url);
        }
    }
    op
}

/// The Credly sandbox with the sample's two organizations (their sample keys) and templates.
async fn sandbox() -> RunningSandbox {
    let want = expected();
    let organizations = want["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| SeedOrganization {
            id: o["uuid"].as_str().unwrap().into(),
            name: o["name"].as_str().unwrap().into(),
            tokens: Vec::new(),
            webhook_url: None,
            oauth_clients: Vec::new(),
        })
        .collect();
    let templates = want["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| SeedTemplate {
            id: Some(t["uuid"].as_str().unwrap().into()),
            organization_id: t["organization"].as_str().unwrap().into(),
            name: t["name"].as_str().unwrap().into(),
            state: "active".into(),
            ..Default::default()
        })
        .collect();
    let sb = Sandbox::start(Seed {
        organizations,
        templates,
        generate: None,
    })
    .await
    .unwrap();
    for o in want["organizations"].as_array().unwrap() {
        sb.sandbox.add_token(
            o["uuid"].as_str().unwrap(),
            o["api_key"].as_str().unwrap(),
            None,
        );
    }
    sb
}

fn import(op: &Operator, from: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["import", "openedx-credentials", "--from", from];
    args.extend_from_slice(extra);
    let out = op.run(&args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn all(server: &Served, path: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (s, page) = server
            .api(
                "GET",
                &format!("{path}{sep}limit=500&offset={offset}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{path}: {page}");
        let data = page["data"].as_array().unwrap();
        rows.extend(data.iter().cloned());
        match page["next_offset"].as_u64() {
            Some(next) if !data.is_empty() => offset = next,
            _ => return rows,
        }
    }
}

/// Everything the import writes, as the API shows it, for "nothing changed" checks.
async fn state(server: &Served) -> Value {
    let mut templates = Vec::new();
    for t in all(server, "/templates").await {
        let (_, detail) = server
            .api(
                "GET",
                &format!("/templates/{}", t["id"].as_str().unwrap()),
                None,
            )
            .await;
        templates.push(detail);
    }
    let mut progress = Vec::new();
    let learners = all(server, "/learners").await;
    for l in &learners {
        let (_, p) = server
            .api(
                "GET",
                &format!("/learners/{}/progress", l["username"].as_str().unwrap()),
                None,
            )
            .await;
        progress.push(p);
    }
    let (_, orgs) = server.api("GET", "/credly/organizations", None).await;
    json!({
        "templates": templates,
        "learners": learners,
        "progress": progress,
        "awards": all(server, "/awards").await,
        "organizations": orgs,
    })
}

fn rules_as_stored(rules: &Value) -> BTreeSet<(String, String, String)> {
    rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let op = r["op"].as_str().unwrap();
            let op = match op {
                "eq" => "=",
                "ne" => "!=",
                other => other,
            };
            (
                r["path"].as_str().unwrap().into(),
                op.into(),
                r["value"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Every imported row against the source (sample-expected.json), read back over the API.
async fn check_rows(server: &Served) {
    let want = expected();
    let (_, orgs) = server.api("GET", "/credly/organizations", None).await;
    let orgs = orgs["data"]
        .as_array()
        .or(orgs.as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(orgs.len(), 2, "{orgs:?}");
    for w in want["organizations"].as_array().unwrap() {
        let o = orgs.iter().find(|o| o["uuid"] == w["uuid"]).unwrap();
        assert_eq!(o["name"], w["name"]);
        let key = w["api_key"].as_str().unwrap();
        assert!(
            o["api_key"]
                .as_str()
                .unwrap()
                .ends_with(&key[key.len() - 4..]),
            "only the last four characters: {o}"
        );
        assert!(!o.to_string().contains(key), "the key is never shown: {o}");
    }
    for w in want["templates"].as_array().unwrap() {
        let uuid = w["uuid"].as_str().unwrap();
        let (s, t) = server.api("GET", &format!("/templates/{uuid}"), None).await;
        assert_eq!(s, 200, "{t}");
        assert_eq!(t["name"], w["name"]);
        assert_eq!(
            t["description"].as_str().unwrap(),
            w["description"].as_str().unwrap_or("")
        );
        assert_eq!(t["origin"], "credly");
        assert_eq!(t["organization_id"], w["organization"]);
        assert_eq!(t["is_active"], w["is_active"]);
        assert_eq!(t["provider_state"], w["state"]);
        assert_eq!(t["image_url"], w["icon"]);
        let reqs = t["requirements"].as_array().unwrap();
        assert_eq!(
            reqs.len(),
            w["requirements"].as_array().unwrap().len(),
            "{uuid}"
        );
        for wr in w["requirements"].as_array().unwrap() {
            let id = requirement_id(uuid, wr["source_id"].as_i64().unwrap());
            let r = reqs
                .iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{id} in {t}"));
            assert_eq!(r["event_type"], wr["event_type"]);
            assert_eq!(r["group"], wr["group"]);
            assert_eq!(
                r["description"].as_str().unwrap(),
                wr["description"].as_str().unwrap_or("")
            );
            assert_eq!(rules_as_stored(&r["rules"]), rules_as_stored(&wr["rules"]));
        }
        let pens = t["penalties"].as_array().unwrap();
        assert_eq!(pens.len(), w["penalties"].as_array().unwrap().len());
        for (p, wp) in pens.iter().zip(w["penalties"].as_array().unwrap()) {
            assert_eq!(p["event_type"], wp["event_type"]);
            assert_eq!(rules_as_stored(&p["rules"]), rules_as_stored(&wp["rules"]));
            let want_reqs: BTreeSet<String> = wp["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| requirement_id(uuid, r.as_i64().unwrap()))
                .collect();
            let got: BTreeSet<String> = p["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().into())
                .collect();
            assert_eq!(got, want_reqs);
        }
    }
    // Learners with Credentials' user data, and their fulfilled requirements.
    let learners = all(server, "/learners").await;
    assert_eq!(learners.len(), want["learners"].as_array().unwrap().len());
    for w in want["learners"].as_array().unwrap() {
        let l = learners
            .iter()
            .find(|l| l["username"] == w["username"])
            .unwrap_or_else(|| panic!("{w}"));
        assert_eq!(l["email"], w["email"]);
        assert_eq!(l["name"], w["full_name"]);
        assert_eq!(l["lms_user_id"], w["lms_user_id"]);
    }
    let mut got = BTreeSet::new();
    for l in &learners {
        let u = l["username"].as_str().unwrap();
        let (s, p) = server
            .api("GET", &format!("/learners/{}/progress", urlencode(u)), None)
            .await;
        assert_eq!(s, 200, "{p}");
        for t in p["templates"].as_array().unwrap() {
            for r in t["requirements"].as_array().unwrap() {
                if r["fulfilled"] == true {
                    got.insert((
                        u.to_string(),
                        t["template"].as_str().unwrap().to_string(),
                        r["requirement"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    let want_f: BTreeSet<(String, String, String)> = want["fulfilments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let t = f["template"].as_str().unwrap();
            (
                f["learner"].as_str().unwrap().into(),
                t.into(),
                requirement_id(t, f["requirement"].as_i64().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, want_f);
    // Awards: one per badge with a Credly id, carrying it; none for the badges without one.
    let awards = all(server, "/awards").await;
    let issued = want["issued_badges"].as_array().unwrap();
    assert_eq!(awards.len(), issued.len());
    for b in issued {
        let a = awards
            .iter()
            .find(|a| a["external_id"] == b["external_id"])
            .unwrap_or_else(|| panic!("{b}"));
        assert_eq!(a["learner"], b["learner"]);
        assert_eq!(a["template"], b["template"]);
        assert_eq!(a["external_state"], b["state"]);
        let revoked = b["status"] == "revoked";
        assert_eq!(a["state"] == "revoked", revoked, "{a}");
        if !revoked {
            assert_eq!(a["state"], b["state"], "held: Credly's state");
        }
    }
    let (_, jobs) = server.api("GET", "/jobs", None).await;
    assert_eq!(
        jobs["data"].as_array().map(Vec::len),
        Some(0),
        "the import queues nothing for Credly: {jobs}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn course_passing(id: &str, learner: &Value, course: &str) -> Value {
    let user = learner["username"].as_str().unwrap();
    json!({
        "id": id,
        "event_type": PASSING,
        "time": "2026-12-01T10:00:00+00:00",
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": course, "display_name": "", "end": null, "start": null},
            "is_passing": true,
            "user": {"id": learner["lms_user_id"], "is_active": true,
                     "pii": {"email": learner["email"], "name": learner["full_name"], "username": user}}
        }}
    })
}

/// The sandbox's badges as (learner, template) pairs, learners told apart by email.
fn on_credly(sb: &RunningSandbox) -> Vec<(String, String)> {
    let want = expected();
    let by_email: BTreeMap<&str, &str> = want["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["email"].as_str().unwrap(),
                l["username"].as_str().unwrap(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for o in want["organizations"].as_array().unwrap() {
        for b in sb.sandbox.badges(o["uuid"].as_str().unwrap()) {
            let email = b["recipient_email"].as_str().unwrap();
            out.push((
                by_email[email].to_string(),
                b["badge_template"]["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

async fn outbox_settled(server: &Served) {
    eventually(
        Duration::from_secs(30),
        "the outbox is empty",
        || async move {
            let (_, jobs) = server.api("GET", "/jobs?status=pending", None).await;
            let (_, running) = server.api("GET", "/jobs?status=running", None).await;
            (jobs["data"].as_array()?.is_empty() && running["data"].as_array()?.is_empty())
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn an_openedx_credentials_database_moves_over_and_nothing_is_issued_twice() {
    if skip() {
        return;
    }
    let source = SourceDb::new("");
    let sb = sandbox().await;
    let op = operator("import").await;
    let token = op.token();

    // A dry run prints the plan and writes nothing.
    let (ok, plan, err) = import(&op, &source.url(), &["--dry-run"]);
    assert!(ok, "{plan}{err}");
    for line in [
        "Plan (dry run: nothing was written)",
        "Credly organizations       2",
        "would create 98",
        "3 badge row(s) that never reached Credly",
        "Complete in the source without an issued badge there (3)",
        "learner05  Python Basics",
        "requirement 8 has no data rules",
        "still live on Credly",
    ] {
        assert!(
            plan.contains(line),
            "`{line}` missing from the plan:\n{plan}"
        );
    }
    assert!(
        !format!("{plan}{err}").contains("sample-acme-0f3a9c27d1e84b6a"),
        "keys are never printed"
    );
    let env = [
        ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.as_str()),
        ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0"),
        ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100"),
    ];
    {
        let server = op
            .serve_env(&["--no-workers"], &env)
            .await
            .with_token(&token);
        assert!(
            all(&server, "/templates").await.is_empty(),
            "a dry run writes nothing"
        );
        assert!(all(&server, "/learners").await.is_empty());
    }

    // The import, row by row against the source.
    let (ok, summary, err) = import(&op, &source.url(), &[]);
    assert!(ok, "{summary}{err}");
    assert!(summary.contains("created 124"), "{summary}");
    assert!(!format!("{summary}{err}").contains("sample-globex-7b2e41d09c5a3f18"));
    let server = op
        .serve_env(&["--no-workers"], &env)
        .await
        .with_token(&token);
    check_rows(&server).await;
    let before = state(&server).await;
    drop(server);

    // A second import changes nothing.
    let (ok, again, err) = import(&op, &source.url(), &[]);
    assert!(ok, "{again}{err}");
    assert!(again.contains("Nothing new"), "{again}");
    let server = op.serve_env(&[], &env).await.with_token(&token);
    assert_eq!(
        state(&server).await,
        before,
        "a second import changed something"
    );

    // Live events: learners complete from their imported progress; badges the source issued
    // are not issued again.
    let want = expected();
    let learner = |u: &str| {
        want["learners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["username"] == u)
            .unwrap()
            .clone()
    };
    let ds201 = "course-v1:AcmeX+DS201+2025_T2";
    let py101 = "course-v1:AcmeX+PY101+2025_T1";
    let events = json!([
        // learner24 had Data Analyst's group A (issue failed, D4): B completes it.
        course_passing("imp-1", &learner("learner24"), ds201),
        // learner23 holds Data Analyst with only group A (D1): completing it issues nothing.
        course_passing("imp-2", &learner("learner23"), ds201),
        // learner01 holds Python Basics: passing again issues nothing.
        course_passing("imp-3", &learner("learner01"), py101),
    ]);
    let (s, r) = server.api("POST", "/events", Some(events)).await;
    assert_eq!(s, 202, "{r}");
    outbox_settled(&server).await;
    let held_in_source: BTreeSet<(String, String)> = want["issued_badges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["learner"].as_str().unwrap().into(),
                b["template"].as_str().unwrap().into(),
            )
        })
        .collect();
    let issued = on_credly(&sb);
    for pair in &issued {
        assert!(
            !held_in_source.contains(pair),
            "{pair:?} was issued on Credly by Credentials and again now"
        );
    }
    let data_analyst = "3db2c3f0-31af-5705-ae62-5af23f051d69".to_string();
    assert!(
        issued.contains(&("learner24".into(), data_analyst.clone())),
        "learner24 completed from imported progress: {issued:?}"
    );
    let new_awards: Vec<Value> = all(&server, "/awards")
        .await
        .into_iter()
        .filter(|a| a["event_id"].is_string())
        .collect();
    assert_eq!(
        new_awards.len(),
        issued.len(),
        "every new award reached Credly once: {new_awards:?} vs {issued:?}"
    );
    assert!(
        new_awards.iter().all(|a| a["external_id"].is_string()),
        "{new_awards:?}"
    );

    // --award-complete issues the listed learners, once, and a repeat awards nobody.
    let (ok, out, err) = import(&op, &source.url(), &["--award-complete"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("--award-complete: awarded 3, 0 held already"),
        "{out}"
    );
    outbox_settled(&server).await;
    let issued = on_credly(&sb);
    for (learner, template) in [
        ("learner05", "b8eb6ff6-626c-5ed8-90ee-ad790645f94b"),
        ("learner14", data_analyst.as_str()),
        ("learner36", "3db85e45-361f-5fa4-868a-4195a7b25164"),
    ] {
        let n = issued
            .iter()
            .filter(|p| p.0 == learner && p.1 == template)
            .count();
        assert_eq!(n, 1, "{learner} on {template}: {issued:?}");
    }
    let (ok, out, err) = import(&op, &source.url(), &["--award-complete"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("awarded 0, 3 held already"), "{out}");
    outbox_settled(&server).await;
    assert_eq!(on_credly(&sb), issued, "nothing issued twice");
}

#[tokio::test]
async fn bad_sources_are_refused_and_nothing_is_written() {
    if skip() {
        return;
    }
    let op = operator("import-bad").await;
    let token = op.token();
    let cases: Vec<(&str, Option<SourceDb>, &str)> = vec![
        ("unreachable", None, "cannot reach the source mysql://root:***@127.0.0.1:1/credentials"),
        (
            "wrong schema version",
            Some(SourceDb::new("ALTER TABLE badges_badgerequirement DROP COLUMN blend;")),
            "table badges_badgerequirement",
        ),
        (
            "unknown operator",
            Some(SourceDb::new("UPDATE badges_datarule SET operator = 'contains' WHERE id = 3;")),
            "unknown operator `contains`",
        ),
        (
            "organization missing",
            Some(SourceDb::new("UPDATE badges_credlybadgetemplate SET organization_id = 77 WHERE badgetemplate_ptr_id = 2;")),
            "belongs to organization 77, which the source does not have",
        ),
    ];
    for (what, db, message) in &cases {
        let url = db.as_ref().map_or(
            "mysql://root:secret@127.0.0.1:1/credentials".to_string(),
            SourceDb::url,
        );
        let (ok, out, err) = import(&op, &url, &[]);
        assert!(!ok, "{what}: accepted\n{out}");
        assert!(
            err.contains(message),
            "{what}: `{message}` missing from\n{err}"
        );
        assert!(
            !err.contains("secret"),
            "{what}: the password is never shown"
        );
        if db.is_some() && *what != "wrong schema version" {
            assert!(err.contains("nothing was written"), "{what}: {err}");
        }
    }
    // TLS is asked for with the URL; this MariaDB has none, so it is refused, not skipped.
    let (ok, _, err) = import(
        &op,
        "mysql://root@127.0.0.1:3306/mysql?ssl-mode=REQUIRED",
        &[],
    );
    assert!(
        !ok && err.contains("cannot reach") && err.contains("server does not support TLS"),
        "{err}"
    );
    // The source can come from the environment instead of the command line.
    let out = op.run_env(
        &["import", "openedx-credentials"],
        &[(
            "OPENEDX_CREDENTIALS_DATABASE_URL",
            "mysql://root:secret@127.0.0.1:1/credentials",
        )],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot reach the source mysql://root:***@"),
        "{err}"
    );
    // An organization whose key lives in Credentials' settings: refused until --org-key gives it.
    let keyless = SourceDb::new("UPDATE badges_credlyorganization SET api_key = '' WHERE id = 2;");
    let (ok, out, err) = import(&op, &keyless.url(), &["--dry-run"]);
    assert!(
        !ok && err.contains("has no API key in the source")
            && err.contains("--org-key 9c306ae3-25e5-5235-a742-dca06f74d9cf=KEY"),
        "{out}{err}"
    );
    let server = op
        .serve_env(&["--no-workers"], &[])
        .await
        .with_token(&token);
    let written = state(&server).await;
    for (k, v) in written.as_object().unwrap() {
        let empty = v
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or_else(|| v["data"].as_array().is_some_and(Vec::is_empty));
        assert!(empty, "{k} written by a refused import: {v}");
    }
    drop(server);
    let (ok, out, err) = import(
        &op,
        &keyless.url(),
        &[
            "--org-key",
            "9C306AE325E55235A742DCA06F74D9CF=given-globex-key-1234",
            "--json",
        ],
    );
    assert!(ok, "{out}{err}");
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["created"]["organizations"], 2, "{outcome}");
    assert_eq!(outcome["created"]["fulfilments"], 124);
    let server = op
        .serve_env(&["--no-workers"], &[])
        .await
        .with_token(&token);
    let (_, org) = server
        .api(
            "GET",
            "/credly/organizations/9c306ae3-25e5-5235-a742-dca06f74d9cf",
            None,
        )
        .await;
    assert!(
        org["api_key"].as_str().unwrap().ends_with("1234"),
        "the given key is stored: {org}"
    );
}

/// SIGKILL while an organization's share is being written: its transaction is rolled back, a
/// second run writes everything once, and a dry run afterwards finds nothing missing.
#[tokio::test]
async fn an_import_killed_while_writing_completes_exactly_once_when_run_again() {
    if skip() {
        return;
    }
    let learners = 50_000;
    let source = SourceDb::generated(learners);
    let op = operator("import-kill").await;
    let mut child = op
        .command(&["import", "openedx-credentials", "--from", &source.url()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as it says it is writing (the one organization's transaction is open).
    use std::io::BufRead;
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let writing = line.contains("writing");
        seen.push(line);
        if writing {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it finished: {seen:?}");

    let (ok, out, err) = import(&op, &source.url(), &["--json"]);
    assert!(ok, "{out}{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    let fulfilments = 4 * learners;
    let awards = learners / 2;
    assert_eq!(
        second["created"]["fulfilments"], fulfilments,
        "the killed run wrote nothing: {second}"
    );
    assert_eq!(second["created"]["awards"], awards);
    assert_eq!(second["created"]["learners"], learners);
    let (ok, out, err) = import(&op, &source.url(), &["--dry-run", "--json"]);
    assert!(ok, "{out}{err}");
    let after: Value = serde_json::from_str(&out).unwrap();
    for (kind, n) in after["created"].as_object().unwrap() {
        assert_eq!(n, 0, "{kind} still missing after the second run: {after}");
    }
    assert_eq!(after["report"]["counts"]["fulfilments"], fulfilments);
}
