//! The sample data set made by the real Open edX Credentials (tests/fixtures), read from each kind
//! of source it was dumped for (SQLite; MariaDB with native `uuid` columns; MySQL-style
//! `char(32)` UUIDs on MariaDB), planned, and checked row by row against `sample-expected.json`.
//!
//! MariaDB runs on 127.0.0.1:3306 (root, no password); each test loads the dump into a fresh
//! database with the `mysql` client, as the fixtures' README says. Without MariaDB those tests say
//! SKIPPED, except with `CI=true`, where a missing service is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use accolade_domain::award::AwardState;
use accolade_import::plan::{plan, requirement_id, Plan, PlanOptions, Problem};
use accolade_import::read::{read, ReadError, SourceUrl};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sample-expected.json")).unwrap())
        .unwrap()
}

fn options() -> PlanOptions {
    PlanOptions {
        now: chrono::Utc::now(),
        configured_event_types: vec![
            "org.openedx.learning.course.passing.status.updated.v1".into(),
            "org.openedx.learning.ccx.course.passing.status.updated.v1".into(),
        ],
        org_keys: Default::default(),
    }
}

/// A SQLite source built from the fixture dumps, plus any extra SQL.
fn sqlite_source(dir: &Path, extra: &str) -> SourceUrl {
    let path = dir.join("credentials.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    // As `sqlite3` loads a dump: the data comes in table order, not reference order.
    c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    c.execute_batch(&std::fs::read_to_string(fixture("schema-sqlite.sql")).unwrap())
        .unwrap();
    c.execute_batch(&std::fs::read_to_string(fixture("sample-data-sqlite.sql")).unwrap())
        .unwrap();
    c.execute_batch(extra).unwrap();
    SourceUrl::parse(&format!("sqlite:{}", path.display())).unwrap()
}

fn mariadb_up() -> bool {
    std::net::TcpStream::connect_timeout(
        &"127.0.0.1:3306".parse().unwrap(),
        std::time::Duration::from_secs(2),
    )
    .is_ok()
}

fn skip(what: &str) -> bool {
    if mariadb_up() {
        return false;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "MariaDB is not reachable at 127.0.0.1:3306 and CI=true"
    );
    eprintln!("SKIPPED {what}: MariaDB is not reachable at 127.0.0.1:3306");
    true
}

fn mysql(db: Option<&str>, input: &str) {
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
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the mysql client");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "mysql failed on {}",
        &input[..input.len().min(200)]
    );
}

/// A fresh MariaDB database holding the given schema and sample dump (plus extra SQL).
fn mariadb_source(schema: &str, data: &str, extra: &str) -> (SourceUrl, String) {
    let db = format!("accolade_import_{}", uuid::Uuid::new_v4().simple());
    mysql(
        None,
        &format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    );
    mysql(
        Some(&db),
        &std::fs::read_to_string(fixture(schema)).unwrap(),
    );
    mysql(Some(&db), &std::fs::read_to_string(fixture(data)).unwrap());
    if !extra.is_empty() {
        mysql(Some(&db), &format!("SET FOREIGN_KEY_CHECKS=0; {extra}"));
    }
    (
        SourceUrl::parse(&format!("mysql://root@127.0.0.1:3306/{db}")).unwrap(),
        db,
    )
}

fn drop_db(db: &str) {
    mysql(None, &format!("DROP DATABASE IF EXISTS {db}"));
}

/// Every planned row against the expected import.
fn check_against_expected(plan: &Plan) {
    let want = expected();
    let counts = &want["counts"];
    let got = &plan.report.counts;
    let n = |k: &str| counts[k].as_u64().unwrap();
    assert_eq!(got.organizations, n("credly_organizations"));
    assert_eq!(got.templates, n("credly_templates"));
    assert_eq!(got.templates_active, n("credly_templates_active"));
    assert_eq!(got.requirements, n("requirements"));
    assert_eq!(
        got.requirements_without_rules,
        n("requirements_without_rules")
    );
    assert_eq!(got.data_rules, n("data_rules"));
    assert_eq!(got.penalties, n("penalties"));
    assert_eq!(got.penalty_rules, n("penalty_rules"));
    assert_eq!(
        got.penalty_requirement_links,
        n("penalty_requirement_links")
    );
    assert_eq!(got.learners, n("learners"));
    assert_eq!(got.progress_records, n("badge_progress_rows"));
    assert_eq!(got.fulfilments, n("fulfilments"));
    assert_eq!(got.credly_badge_rows, n("credly_badge_rows"));
    assert_eq!(got.awards, n("issued_badges"));
    assert_eq!(got.awards_held, n("issued_badges_held"));
    assert_eq!(got.awards_revoked, n("issued_badges_revoked"));
    assert_eq!(
        plan.report.skipped.badges_without_credly_id,
        n("badge_rows_without_credly_id")
    );
    assert_eq!(
        plan.report.skipped.badges_of_deleted_templates,
        n("badges_of_deleted_templates")
    );
    assert_eq!(plan.report.skipped.accredible.api_configs, 0);

    // Organizations: UUID, name, key.
    let orgs: BTreeMap<_, _> = plan
        .parts
        .iter()
        .map(|p| {
            (
                p.organization.uuid.clone(),
                (p.organization.name.clone(), p.organization.api_key.clone()),
            )
        })
        .collect();
    let want_orgs: BTreeMap<_, _> = want["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap().to_string();
            (s("uuid"), (s("name"), s("api_key")))
        })
        .collect();
    assert_eq!(orgs, want_orgs);

    // Templates with requirements, rules and penalties.
    let templates: BTreeMap<_, _> = plan
        .parts
        .iter()
        .flat_map(|p| {
            p.templates
                .iter()
                .map(move |t| (t.template.id.clone(), (p, t)))
        })
        .collect();
    assert_eq!(templates.len(), want["templates"].as_array().unwrap().len());
    for wt in want["templates"].as_array().unwrap() {
        let uuid = wt["uuid"].as_str().unwrap();
        let (part, t) = templates[uuid];
        assert_eq!(t.template.name, wt["name"].as_str().unwrap());
        assert_eq!(
            t.template.description,
            wt["description"].as_str().unwrap_or("")
        );
        assert_eq!(part.organization.uuid, wt["organization"].as_str().unwrap());
        assert_eq!(
            t.template.organization_id.as_deref(),
            wt["organization"].as_str()
        );
        assert_eq!(t.template.is_active, wt["is_active"].as_bool().unwrap());
        assert_eq!(t.template.provider_state, wt["state"].as_str().unwrap());
        assert_eq!(t.template.image_url.as_deref(), wt["icon"].as_str());
        let wreqs = wt["requirements"].as_array().unwrap();
        assert_eq!(t.requirements.len(), wreqs.len(), "{uuid}");
        for wr in wreqs {
            let source_id = wr["source_id"].as_i64().unwrap();
            let r = t
                .requirements
                .iter()
                .find(|r| r.id == requirement_id(uuid, source_id))
                .unwrap();
            assert_eq!(
                r.key.as_deref(),
                Some(format!("openedx-{source_id}").as_str())
            );
            assert_eq!(r.event_type, wr["event_type"].as_str().unwrap());
            assert_eq!(r.description, wr["description"].as_str().unwrap_or(""));
            assert_eq!(
                r.group.to_string(),
                wr["group"].as_str().unwrap(),
                "the sample's groups are letters"
            );
            assert_eq!(rules_of(&r.rules), want_rules(&wr["rules"]));
        }
        let wpens = wt["penalties"].as_array().unwrap();
        assert_eq!(t.penalties.len(), wpens.len());
        for (p, wp) in t.penalties.iter().zip(wpens) {
            assert_eq!(p.event_type, wp["event_type"].as_str().unwrap());
            assert_eq!(rules_of(&p.rules), want_rules(&wp["rules"]));
            let want_reqs: BTreeSet<String> = wp["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| requirement_id(uuid, id.as_i64().unwrap()))
                .collect();
            assert_eq!(
                p.requirement_ids.iter().cloned().collect::<BTreeSet<_>>(),
                want_reqs
            );
        }
    }

    // Fulfilments: (learner, template, requirement), each once.
    let got_f: BTreeSet<(String, String, String)> = plan
        .parts
        .iter()
        .flat_map(|p| p.fulfilments.iter())
        .map(|(l, t, r)| (l.to_string(), t.to_string(), r.to_string()))
        .collect();
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
    assert_eq!(got_f, want_f);

    // Learners with Credentials' user data.
    let learners: BTreeMap<String, _> = plan
        .parts
        .iter()
        .flat_map(|p| p.learners.iter())
        .map(|l| {
            (
                l.username.clone(),
                (l.email.clone(), l.name.clone(), l.lms_user_id),
            )
        })
        .collect();
    assert_eq!(learners.len(), want["learners"].as_array().unwrap().len());
    for wl in want["learners"].as_array().unwrap() {
        let (email, name, lms) = &learners[wl["username"].as_str().unwrap()];
        assert_eq!(email.as_deref(), wl["email"].as_str());
        assert_eq!(name.as_deref(), wl["full_name"].as_str());
        assert_eq!(*lms, wl["lms_user_id"].as_i64());
    }
    assert!(
        learners.contains_key("学习者_50") && learners.contains_key("zoë.müller"),
        "4-byte and accented names arrive intact"
    );

    // Awards: one per badge with a Credly id, with that id, the Credly state and held/revoked.
    let awards: BTreeMap<String, _> = plan
        .parts
        .iter()
        .flat_map(|p| p.awards.iter())
        .map(|a| (a.external_id.clone().unwrap(), a))
        .collect();
    let issued = want["issued_badges"].as_array().unwrap();
    assert_eq!(awards.len(), issued.len());
    for b in issued {
        let a = awards[b["external_id"].as_str().unwrap()];
        assert_eq!(a.learner, b["learner"].as_str().unwrap());
        assert_eq!(a.template_id, b["template"].as_str().unwrap());
        assert_eq!(a.external_state.as_deref(), b["state"].as_str());
        let revoked = b["status"] == "revoked";
        assert_eq!(a.state == AwardState::Revoked, revoked, "{b}");
        if !revoked {
            assert_eq!(
                a.state.as_str(),
                b["state"].as_str().unwrap(),
                "held: Credly's state"
            );
        }
    }
    for b in want["badges_without_credly_id"].as_array().unwrap() {
        let t = b["template"].as_str().unwrap();
        assert!(!awards
            .values()
            .any(|a| a.learner == b["learner"].as_str().unwrap() && a.template_id == t));
    }

    // Complete without an issued badge: exactly the expected learners, with the reason.
    let got_c: BTreeSet<(String, String)> = plan
        .report
        .complete_without_issued_badge
        .iter()
        .map(|c| (c.learner.clone(), c.template.clone()))
        .collect();
    let want_c: BTreeSet<(String, String)> = want["complete_without_issued_badge"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["learner"].as_str().unwrap().into(),
                c["template"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got_c, want_c);
    for c in &plan.report.complete_without_issued_badge {
        let w = want["complete_without_issued_badge"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["learner"] == c.learner.as_str())
            .unwrap();
        assert_eq!(c.why, w["why"].as_str().unwrap());
    }
    assert_eq!(
        plan.report.revoked_but_live_on_credly.len(),
        1,
        "learner39's revoke failed on Credly"
    );
    assert_eq!(
        plan.report.revoked_but_live_on_credly[0].learner,
        "learner39"
    );
    assert!(
        plan.report
            .notes
            .iter()
            .any(|n| n.contains("no data rules") && n.contains("D6")),
        "the rule-less requirement is named: {:?}",
        plan.report.notes
    );
}

fn rules_of(rules: &[accolade_domain::rules::DataRule]) -> BTreeSet<(String, String, String)> {
    rules
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.operator.as_str().to_string(),
                r.value.clone(),
            )
        })
        .collect()
}

fn want_rules(v: &Value) -> BTreeSet<(String, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let op = match r["op"].as_str().unwrap() {
                "eq" => "=",
                "ne" => "!=",
                other => panic!("the sample has only eq/ne, not {other}"),
            };
            (
                r["path"].as_str().unwrap().into(),
                op.into(),
                r["value"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sqlite_sample_plans_as_expected() {
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(dir.path(), "");
    let data = read(&src).await.unwrap();
    check_against_expected(&plan(&data, &options()).unwrap());
}

#[tokio::test]
async fn the_mariadb_sample_with_native_uuids_plans_as_expected() {
    if skip("native uuid sample") {
        return;
    }
    let (src, db) = mariadb_source("schema-mysql.sql", "sample-data-mysql.sql", "");
    let data = read(&src).await;
    drop_db(&db);
    check_against_expected(&plan(&data.unwrap(), &options()).unwrap());
}

#[tokio::test]
async fn the_mysql_style_char32_sample_plans_as_expected() {
    if skip("char(32) sample") {
        return;
    }
    let (src, db) = mariadb_source(
        "schema-mysql-char32.sql",
        "sample-data-mysql-char32.sql",
        "",
    );
    let data = read(&src).await;
    drop_db(&db);
    check_against_expected(&plan(&data.unwrap(), &options()).unwrap());
}

#[tokio::test]
async fn bad_sources_are_refused_with_a_clear_reason() {
    // Unreachable: nothing listens on port 1.
    let err = read(&SourceUrl::parse("mysql://root:pw@127.0.0.1:1/credentials").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot reach") && !err.to_string().contains("pw@"),
        "{err}"
    );
    let err = read(&SourceUrl::parse("sqlite:/nonexistent/credentials.db").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ReadError::Unreachable { .. }), "{err}");

    // Wrong schema version: a table without a column the import reads.
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(dir.path(), "ALTER TABLE badges_fulfillment DROP COLUMN blend; ALTER TABLE badges_badgerequirement RENAME COLUMN blend TO grp;");
    let err = read(&src).await.unwrap_err();
    match &err {
        ReadError::Schema { table, .. } => assert_eq!(table, "badges_badgerequirement"),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("badges app is migrated")
            || err.to_string().contains("`badges` app"),
        "{err}"
    );

    // A rule with an unknown operator, and a template of an organization the source lacks.
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(
        dir.path(),
        "PRAGMA foreign_keys = OFF;
         UPDATE badges_datarule SET operator = 'contains' WHERE id = 1;
         UPDATE badges_credlybadgetemplate SET organization_id = 99 WHERE badgetemplate_ptr_id = 5;",
    );
    let problems = plan(&read(&src).await.unwrap(), &options()).unwrap_err();
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::UnknownOperator { operator, .. } if operator == "contains")
        ),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| matches!(
            p,
            Problem::MissingOrganization {
                id: 5,
                organization_id: 99,
                ..
            }
        )),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_bad_mariadb_source_is_refused() {
    if skip("bad MariaDB source") {
        return;
    }
    let (src, db) = mariadb_source(
        "schema-mysql.sql",
        "sample-data-mysql.sql",
        "UPDATE badges_penaltydatarule SET operator = 'gt' WHERE id = 1; ALTER TABLE badges_badgeprogress DROP COLUMN username;",
    );
    let err = read(&src).await.unwrap_err();
    drop_db(&db);
    assert!(
        matches!(&err, ReadError::Schema { table, .. } if table == "badges_badgeprogress"),
        "{err}"
    );
}

/// Credentials on PostgreSQL: Django's schema there is the SQLite one with native types (`uuid`,
/// `boolean`, `timestamp with time zone`), which is how it is built here; the sample's rows are
/// copied from the SQLite fixture (PostgreSQL converts them from their text form).
#[tokio::test]
async fn the_postgres_sample_plans_as_expected() {
    use sqlx::{Connection, Executor, PgConnection};
    let base = std::env::var("ACCOLADE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not reachable at {base} and CI=true: {e}"
            );
            eprintln!("SKIPPED: PostgreSQL is not reachable at {base}: {e}");
            return;
        }
    };
    let name = format!("accolade_import_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let mut pg = PgConnection::connect(&url).await.unwrap();
    let schema: String = std::fs::read_to_string(fixture("schema-sqlite.sql"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("sqlite_"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("PRIMARY KEY AUTOINCREMENT", "PRIMARY KEY")
        .replace("integer unsigned", "integer")
        .replace(" datetime ", " timestamp with time zone ")
        .replace(" bool ", " boolean ")
        .replace(" char(32) ", " uuid ");
    pg.execute(sqlx::AssertSqlSafe(schema)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let SourceUrl::Sqlite(path) = sqlite_source(dir.path(), "") else {
        unreachable!()
    };
    let lite = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = lite
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = lite.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let rows: Vec<Value> = stmt
            .query_map([], |r| {
                let mut o = serde_json::Map::new();
                for (i, c) in columns.iter().enumerate() {
                    use rusqlite::types::ValueRef;
                    let v = match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::from(n),
                        ValueRef::Real(f) => Value::from(f),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            Value::from(String::from_utf8_lossy(t).into_owned())
                        }
                    };
                    o.insert(c.clone(), v);
                }
                Ok(Value::Object(o))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if rows.is_empty() {
            continue;
        }
        // Booleans arrive as 0/1: PostgreSQL reads them from their text form.
        let insert = format!("INSERT INTO \"{table}\" SELECT * FROM json_populate_recordset(NULL::\"{table}\", $1::json)");
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(Value::Array(rows).to_string())
            .execute(&mut pg)
            .await
            .unwrap();
    }
    // Over TLS, as a source on another machine would be read (this PostgreSQL offers it).
    let data = read(&SourceUrl::parse(&format!("{url}?sslmode=require")).unwrap()).await;
    drop(pg);
    admin
        .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .await
        .ok();
    check_against_expected(&plan(&data.unwrap(), &options()).unwrap());
}

/// Accredible configuration is counted and reported as skipped, never dropped silently, and
/// nothing of it reaches the plan's parts.
#[tokio::test]
async fn accredible_configuration_is_reported_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = sqlite_source(
        dir.path(),
        "PRAGMA foreign_keys = OFF;
         INSERT INTO badges_accredibleapiconfig (id, created, modified, name, api_key)
           VALUES (1, '2026-08-01 10:00:00', '2026-08-01 10:00:00', 'Accredible', 'acc-key');
         INSERT INTO badges_badgetemplate (id, created, modified, is_active, uuid, name, description, icon, origin, site_id, state)
           VALUES (514268, '2026-08-01 10:00:00', '2026-08-01 10:00:00', 1, '0b1f3c5e7a9d4b2c8e6f1a3b5c7d9e0f', 'Accredible group', NULL, NULL, 'accredible', 1, 'active');
         INSERT INTO badges_accrediblegroup (badgetemplate_ptr_id, api_config_id) VALUES (514268, 1);
         INSERT INTO badges_badgerequirement (id, event_type, description, blend, template_id)
           VALUES (900, 'org.openedx.learning.course.passing.status.updated.v1', 'acc', 'A', 514268);
         INSERT INTO badges_badgeprogress (id, username, template_id) VALUES (900, 'learner01', 514268);
         INSERT INTO credentials_usercredential (id, created, modified, username, status, uuid, credential_content_type_id, credential_id)
           VALUES (900, '2026-08-01 10:00:00', '2026-08-01 10:00:00', 'learner01', 'awarded', '5d4c3b2a19084f7e8d6c5b4a39281706', 14, 514268);
         INSERT INTO badges_accrediblebadge (usercredential_ptr_id, state, external_id) VALUES (900, 'accepted', 12345);",
    );
    let p = plan(&read(&src).await.unwrap(), &options()).unwrap();
    let skipped = &p.report.skipped;
    assert_eq!(
        (
            skipped.accredible.api_configs,
            skipped.accredible.groups,
            skipped.accredible.badges
        ),
        (1, 1, 1)
    );
    assert_eq!(
        skipped.accredible_rows, 2,
        "its requirement and progress record"
    );
    assert_eq!(skipped.templates_without_provider, 0);
    assert!(p.parts.iter().all(|part| part
        .templates
        .iter()
        .all(|t| t.template.name != "Accredible group")));
    // The rest is imported as without it.
    let c = &p.report.counts;
    assert_eq!(
        (c.templates, c.requirements, c.fulfilments, c.awards),
        (5, 8, 124, 98)
    );
}
