//! Backfill and preview through the released binary, as an operator runs them: events stored
//! while a template was inactive, previewed with the CLI and the API (nothing written), `since`,
//! refusals with their codes, activation with a backfill, and a backfill of 100,000 learners
//! SIGKILLed twice while live events keep coming, ending with exactly the expected badges.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{demo_rules_with_penalty, passing, DEMO};
use crate::process::{eventually, Operator, Served};

/// The demo rules (pass the demo course; failing it resets), with the template inactive.
fn inactive_rules() -> String {
    demo_rules_with_penalty().replace("active = true", "active = false")
}

async fn send(s: &Served, events: Vec<Value>) {
    for chunk in events.chunks(5_000) {
        let (status, body) = s
            .api("POST", "/events", Some(Value::Array(chunk.to_vec())))
            .await;
        assert_eq!(status, 202, "{body}");
    }
}

fn at(mut event: Value, time: &str) -> Value {
    event["time"] = json!(time);
    event
}

async fn template_id(s: &Served) -> String {
    let (_, body) = s.api("GET", "/templates", None).await;
    body["data"][0]["id"].as_str().unwrap().to_string()
}

/// Applies the demo rules with the template inactive and serves: the server (with a token) and
/// the template's id.
async fn serve_inactive(op: &Operator) -> (Served, String) {
    op.write_file("rules.toml", &inactive_rules());
    op.ok(&["apply", "-f", "rules.toml"]);
    let token = op.token();
    let s = op.serve(&[]).await.with_token(&token);
    let t = template_id(&s).await;
    (s, t)
}

async fn holders(s: &Served, template: &str) -> Vec<String> {
    let mut out: Vec<String> = awards(s, template)
        .await
        .into_iter()
        .filter(|(_, a)| a.iter().any(|a| a["state"] != "revoked"))
        .map(|(l, _)| l)
        .collect();
    out.sort();
    out
}

/// Every award of a template, by learner.
async fn awards(s: &Served, template: &str) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    let mut offset = 0;
    loop {
        let (_, body) = s
            .api(
                "GET",
                &format!("/awards?template={template}&limit=500&offset={offset}"),
                None,
            )
            .await;
        for a in body["data"].as_array().unwrap() {
            out.entry(a["learner"].as_str().unwrap().to_string())
                .or_default()
                .push(a.clone());
        }
        match body["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    out
}

async fn finished(s: &Served, id: &str, limit: Duration) -> Value {
    eventually(limit, "the backfill to end", || async {
        let (status, b) = s.api("GET", &format!("/backfills/{id}"), None).await;
        assert_eq!(status, 200, "{b}");
        (b["state"] != "queued" && b["state"] != "running").then_some(b)
    })
    .await
}

/// Preview writes nothing, agrees between CLI and API, honours `since`; refusals carry their
/// codes; activation with a backfill awards exactly the learners who qualify, with the time and
/// id of the completing stored event, marked with the backfill.
#[tokio::test(flavor = "multi_thread")]
async fn preview_then_activate_with_backfill() {
    let op = Operator::new("backfill").set("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50");
    let (s, t) = serve_inactive(&op).await;
    send(
        &s,
        vec![
            at(
                passing("old-ann", "ann", DEMO, true),
                "2025-05-01T10:00:00Z",
            ),
            at(passing("bob-1", "bob", DEMO, true), "2026-02-01T10:00:00Z"),
            // cat passed, then failed: she would not hold it.
            at(passing("cat-1", "cat", DEMO, true), "2026-02-01T10:00:00Z"),
            at(passing("cat-2", "cat", DEMO, false), "2026-02-02T10:00:00Z"),
            // dan failed first, passed later (arrived in the other order).
            at(passing("dan-2", "dan", DEMO, true), "2026-02-03T10:00:00Z"),
            at(passing("dan-1", "dan", DEMO, false), "2026-02-01T10:00:00Z"),
            at(
                passing("eve-1", "eve", "course-v1:Other+X+Y", true),
                "2026-02-01T10:00:00Z",
            ),
        ],
    )
    .await;
    assert!(
        holders(&s, &t).await.is_empty(),
        "inactive: nothing awarded"
    );

    // The CLI's preview, as JSON and as text.
    let out = op.ok(&["backfill", "--template", &t, "--dry-run", "--json"]);
    let p: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["would_hold"], 3, "{p}");
    assert_eq!(p["to_award"], 3);
    assert_eq!(p["learners"], 5);
    assert_eq!(p["events_scanned"], 7);
    let named: HashMap<String, Value> = p["samples"]["to_award"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["learner"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(named["dan"]["completed_by"]["event_id"], "dan-2");
    let text = op.ok(&["backfill", "--template", &t, "--dry-run"]);
    assert!(text.contains("would be awarded:           3"), "{text}");
    // The API's preview agrees, and `since` limits the history.
    let (status, api) = s
        .api(
            "POST",
            &format!("/templates/{t}/backfill"),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["to_award"], p["to_award"]);
    let (_, since) = s
        .api(
            "POST",
            &format!("/templates/{t}/backfill"),
            Some(json!({"dry_run": true, "since": "2026-01-01T00:00:00Z", "sample": 0})),
        )
        .await;
    assert_eq!(since["to_award"], 2, "ann's pass is older: {since}");
    assert_eq!(since["samples"]["to_award"], json!([]));
    // Nothing was written by any preview.
    assert!(holders(&s, &t).await.is_empty());
    let (_, list) = s.api("GET", "/backfills", None).await;
    assert_eq!(list["data"], json!([]));

    // Refusals: inactive template, bad input, unknown ids.
    let (status, body) = s
        .api("POST", &format!("/templates/{t}/backfill"), Some(json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("template_inactive"))
    );
    let cli = op.run(&["backfill", "--template", &t]);
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("not active"));
    for (body, code) in [
        (json!({"dry_run": true, "sample": 101}), "invalid_sample"),
        (
            json!({"dry_run": true, "since": "2999-01-01T00:00:00Z"}),
            "invalid_since",
        ),
        (
            json!({"dry_run": true, "since": "yesterday"}),
            "invalid_body",
        ),
        (json!({"dry_run": true, "surprise": 1}), "invalid_body"),
        (
            json!({"dry_run": true, "reason": "x".repeat(1001)}),
            "invalid_reason",
        ),
    ] {
        let (status, answer) = s
            .api(
                "POST",
                &format!("/templates/{t}/backfill"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    for (method, path, body, expected) in [
        (
            "POST",
            "/templates/nope/backfill".to_string(),
            Some(json!({"dry_run": true})),
            (404, "template_not_found"),
        ),
        (
            "GET",
            "/backfills?offset=9223372036854775808".to_string(),
            None,
            (400, "invalid_query"),
        ),
        (
            "POST",
            format!("/templates/{t}/activate"),
            Some(json!({"reason": "x".repeat(1001)})),
            (400, "invalid_reason"),
        ),
        (
            "GET",
            "/backfills/nope".to_string(),
            None,
            (404, "backfill_not_found"),
        ),
    ] {
        let (status, answer) = s.api(method, &path, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (expected.0, Some(expected.1)),
            "{method} {path}"
        );
    }

    // Activation with a backfill.
    let (status, body) = s
        .api(
            "POST",
            &format!("/templates/{t}/activate"),
            Some(json!({"backfill": true, "reason": "launch"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_active"], true);
    let id = body["backfill"]["id"].as_str().unwrap().to_string();
    let end = finished(&s, &id, Duration::from_secs(30)).await;
    assert_eq!(end["state"], "succeeded", "{end}");
    assert_eq!(
        (end["awards_made"].as_i64(), end["learners_done"].as_i64()),
        (Some(3), Some(5))
    );
    assert_eq!(end["percent"], 100);
    assert_eq!(holders(&s, &t).await, vec!["ann", "bob", "dan"]);
    let (_, dan) = s.api("GET", "/awards?learner=dan", None).await;
    let dan = &dan["data"][0];
    assert_eq!(dan["event_id"], "dan-2");
    assert_eq!(dan["earned_at"], "2026-02-03T10:00:00Z");
    assert_eq!(dan["backfill_id"], id.as_str());
    assert_eq!(dan["source"], "backfill");
    // Progress was written too: a later failure of bob's revokes live.
    send(&s, vec![passing("bob-fail", "bob", DEMO, false)]).await;
    assert_eq!(holders(&s, &t).await, vec!["ann", "dan"]);
    // A second backfill finds nothing more to do; the CLI runs and follows it to the end.
    let again = op.ok(&["backfill", "--template", &t, "--json"]);
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (again["state"].as_str(), again["awards_made"].as_i64()),
        (Some("succeeded"), Some(0))
    );
    let listed = op.ok(&["backfill", "list", "--template", &t]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    // Ended backfills cannot be cancelled.
    let (status, body) = s
        .api("POST", &format!("/backfills/{id}/cancel"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("backfill_finished"))
    );
}

/// A backfill of 100,000 learners, SIGKILLed twice while it runs and while live events arrive
/// (penalties for learners it may or may not have reached, and new learners passing), ends with
/// exactly the expected holders, each with one award, and its totals agree with the awards.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_twice_during_a_backfill_of_100000_learners() {
    const N: usize = 100_000;
    let op = Operator::new("backfill-crash")
        .set("ACCOLADE_WORKER__LEASE_SECS", "5")
        .set("ACCOLADE_WORKER__POLL_INTERVAL_MS", "100");
    let (mut s, t) = serve_inactive(&op).await;
    let token = s.token.clone();
    let events: Vec<Value> = (0..N)
        .map(|i| passing(&format!("h-{i}"), &format!("l{i:06}"), DEMO, true))
        .collect();
    send(&s, events).await;
    let (status, body) = s
        .api(
            "POST",
            &format!("/templates/{t}/activate"),
            Some(json!({"backfill": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["backfill"]["id"].as_str().unwrap().to_string();
    let mut live_sent = 0;
    for (kill, at_least) in [(1, N as i64 / 5), (2, N as i64 / 2)] {
        let done = eventually(Duration::from_secs(300), "backfill progress", || async {
            let (_, b) = s.api("GET", &format!("/backfills/{id}"), None).await;
            let done = b["learners_done"].as_i64().unwrap_or(0);
            (done >= at_least || b["state"] == "succeeded").then_some(b)
        })
        .await;
        assert_eq!(
            done["state"], "running",
            "still running at kill {kill}: {done}"
        );
        // Live events while it runs: failures of learners on both sides of its cursor, and new
        // learners passing.
        let mut live = Vec::new();
        for k in 0..200 {
            let i = (k * 997 + kill * 31) % N;
            live.push(passing(
                &format!("fail-{kill}-{k}"),
                &format!("l{i:06}"),
                DEMO,
                false,
            ));
            live.push(passing(
                &format!("new-{kill}-{k}"),
                &format!("n{kill}-{k}"),
                DEMO,
                true,
            ));
        }
        live_sent += 200;
        send(&s, live).await;
        s.kill();
        s = op.serve(&[]).await.with_token(&token);
    }
    let end = finished(&s, &id, Duration::from_secs(600)).await;
    assert_eq!(end["state"], "succeeded", "{end}");
    // Expected: every backfilled learner except those who failed afterwards, plus the new ones.
    let mut failed = std::collections::BTreeSet::new();
    for kill in 1..=2 {
        for k in 0..200 {
            failed.insert(format!("l{:06}", (k * 997 + kill * 31) % N));
        }
    }
    let want = N - failed.len() + live_sent;
    let got = holders(&s, &t).await;
    assert_eq!(got.len(), want);
    assert!(got.iter().all(|l| !failed.contains(l)));
    // One award per learner, never two; the backfill's totals agree with the awards it made.
    let all = awards(&s, &t).await;
    assert!(
        all.values().all(|a| a.len() == 1),
        "a learner with two awards"
    );
    let by_backfill = all
        .values()
        .flatten()
        .filter(|a| a["backfill_id"] == id.as_str())
        .count();
    assert_eq!(
        end["awards_made"].as_i64(),
        Some(by_backfill as i64),
        "{end}"
    );
}

/// The CSRF token of the first form of an admin page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

async fn post_form(
    s: &Served,
    session: &str,
    path: &str,
    form: &[(&str, &str)],
    json: bool,
) -> (u16, String, Option<String>) {
    let mut r = s
        .http
        .post(s.url(path))
        .header("cookie", session)
        .form(form);
    if json {
        r = r.header("accept", "application/json");
    }
    let r = r.send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.text().await.unwrap(), location)
}

/// The admin UI: the editor's live count (script and JSON answer, and the no-script button),
/// the preview page, activation with a backfill and its progress page.
#[tokio::test(flavor = "multi_thread")]
async fn admin_ui_previews_counts_and_follows_a_backfill() {
    let op = Operator::new("backfill-ui").set("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50");
    op.create_admin("ops");
    let (s, t) = serve_inactive(&op).await;
    send(
        &s,
        vec![
            passing("u1", "ann", DEMO, true),
            passing("u2", "bob", DEMO, true),
            passing("u3", "cat", "course-v1:Other+X+Y", true),
        ],
    )
    .await;
    let session = s.admin_session("ops").await;
    let (status, page) = s
        .admin_page(&session, &format!("/admin/templates/{t}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("src=\"/admin/static/admin.js\""));
    assert!(page.contains("id=\"would-hold\""));
    let r = s
        .http
        .get(s.url("/admin/static/admin.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("would-hold"));
    let csrf = csrf_of(&page);
    let count = format!("/admin/templates/{t}/would-hold");
    // The current rules: ann and bob.
    let (status, body, _) = post_form(&s, &session, &count, &[("csrf", &csrf)], true).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["would_hold"].as_u64(), v["with_draft"].as_bool()),
        (Some(2), Some(false))
    );
    // A draft requirement in a new group (passing the other course too): nobody.
    let draft = [
        ("csrf", csrf.as_str()),
        ("event_type", crate::helpers::PASSING),
        ("group", "B"),
        ("path_1", "course.course_key"),
        ("op_1", "="),
        ("value_1", "course-v1:Other+X+Y"),
    ];
    let (_, body, _) = post_form(&s, &session, &count, &draft, true).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["would_hold"].as_u64(), v["with_draft"].as_bool()),
        (Some(0), Some(true))
    );
    // The same draft in group A (either course): all three.
    let mut either = draft;
    either[2] = ("group", "A");
    let (_, body, _) = post_form(&s, &session, &count, &either, true).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["would_hold"],
        3
    );
    // Without the script: the page with the count.
    let (status, html, _) = post_form(&s, &session, &count, &either, false).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("With this requirement, would hold this badge now: 3 learners"),
        "{html}"
    );
    // A bad rule is explained, not counted.
    let mut bad = draft;
    bad[4] = ("op_1", ">");
    let (status, body, _) = post_form(&s, &session, &count, &bad, true).await;
    assert_eq!(status, 422, "{body}");
    // The preview page.
    let (status, html) = s
        .admin_page(&session, &format!("/admin/templates/{t}/backfill"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"p-to-award\">2</dd>"), "{html}");
    assert!(
        html.contains("not active"),
        "an inactive template offers activation"
    );
    // Activation with a backfill leads to its progress page.
    let (status, _, location) = post_form(
        &s,
        &session,
        &format!("/admin/templates/{t}/active"),
        &[
            ("csrf", &csrf),
            ("active", "true"),
            ("backfill", "1"),
            ("confirm", "1"),
        ],
        false,
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    assert!(location.starts_with("/admin/backfills/"), "{location}");
    let html = eventually(
        Duration::from_secs(20),
        "the backfill page says succeeded",
        || {
            let (s, session, location) = (&s, &session, &location);
            async move {
                let (_, html) = s.admin_page(session, location).await;
                html.contains("id=\"bf-state\">succeeded").then_some(html)
            }
        },
    )
    .await;
    assert!(html.contains("id=\"bf-awards\">2</dd>"), "{html}");
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "an ended backfill stops refreshing"
    );
    assert_eq!(holders(&s, &t).await, vec!["ann", "bob"]);
}

/// Bulk awards and revocations: CLI (CSV file, dry run), API (array and list text), admin UI;
/// each learner changed once however often a list is sent; bad lists refused whole.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_awards_and_revocations_apply_once() {
    let op = Operator::new("bulk");
    op.write_file("rules.toml", &demo_rules_with_penalty());
    op.ok(&["apply", "-f", "rules.toml"]);
    op.create_admin("ops");
    let token = op.token();
    let s = op.serve(&[]).await.with_token(&token);
    let t = template_id(&s).await;
    op.write_file(
        "list.csv",
        "username,email\nann,a@x\n\"bob\",b@x\nann,twice\n",
    );
    let args = [
        "awards",
        "bulk",
        "--template",
        &t,
        "--file",
        "list.csv",
        "--award",
        "--reason",
        "prize",
    ];
    let dry: Value =
        serde_json::from_str(&op.ok(&[&args[..], &["--dry-run", "--json"]].concat())).unwrap();
    assert_eq!(
        (dry["learners"].as_u64(), dry["changed"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(dry["results"][0]["outcome"], "would_award");
    assert!(holders(&s, &t).await.is_empty(), "a dry run writes nothing");
    let text = op.ok(&args);
    assert!(
        text.contains("2 learners: 2 awarded, 0 unchanged."),
        "{text}"
    );
    assert_eq!(holders(&s, &t).await, vec!["ann", "bob"]);
    // The same list again changes nothing.
    let bulk = format!("/templates/{t}/awards/bulk");
    let (status, again) = s
        .api(
            "POST",
            &bulk,
            Some(json!({"action": "award", "learners": ["ann", "bob", "cat"], "reason": "prize"})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["changed"].as_u64(), again["unchanged"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(again["results"][0]["outcome"], "already_holds");
    let (_, awards_of_ann) = s.api("GET", "/awards?learner=ann", None).await;
    assert_eq!(awards_of_ann["data"].as_array().unwrap().len(), 1);
    // Revoke from a JSON list text; a learner without the badge is reported, not an error.
    let (status, revoked) = s
        .api("POST", &bulk, Some(json!({"action": "revoke", "list": "[\"ann\", {\"username\": \"dan\"}]", "reason": "mistake"})))
        .await;
    assert_eq!(status, 200, "{revoked}");
    let outcomes: Vec<&str> = revoked["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["revoked", "not_holding"]);
    assert_eq!(holders(&s, &t).await, vec!["bob", "cat"]);
    // Bad lists are refused whole.
    let too_many: Vec<String> = (0..10_001).map(|i| format!("x{i}")).collect();
    for (body, code) in [
        (
            json!({"action": "award", "learners": ["ok", " padded"], "reason": "r"}),
            "invalid_learner",
        ),
        (
            json!({"action": "award", "learners": too_many, "reason": "r"}),
            "too_many_learners",
        ),
        (
            json!({"action": "award", "learners": ["ok"], "reason": " "}),
            "invalid_reason",
        ),
        (
            json!({"action": "give", "learners": ["ok"], "reason": "r"}),
            "invalid_action",
        ),
        (
            json!({"action": "award", "reason": "r"}),
            "invalid_learner_list",
        ),
        (
            json!({"action": "award", "list": "[1]", "reason": "r"}),
            "invalid_learner_list",
        ),
    ] {
        let (status, answer) = s.api("POST", &bulk, Some(body)).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some(code)));
    }
    assert_eq!(holders(&s, &t).await, vec!["bob", "cat"], "nothing changed");
    let (status, answer) = s
        .api(
            "POST",
            "/templates/nope/awards/bulk",
            Some(json!({"action": "award", "learners": ["a"], "reason": "r"})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("template_not_found"))
    );
    // The admin UI.
    let session = s.admin_session("ops").await;
    let (_, page) = s
        .admin_page(&session, &format!("/admin/templates/{t}"))
        .await;
    let csrf = csrf_of(&page);
    let path = format!("/admin/templates/{t}/bulk");
    let form = |dry: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("list", "eve\r\nfay\r\n".to_string()),
            ("action", "award".to_string()),
            ("reason", "ui".to_string()),
            ("dry_run", dry.to_string()),
        ]
    };
    let owned = form("1");
    let refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, html, _) = post_form(&s, &session, &path, &refs, false).await;
    assert_eq!(status, 200);
    assert!(html.contains("2 would change, 0 unchanged."), "{html}");
    assert_eq!(holders(&s, &t).await, vec!["bob", "cat"]);
    let owned = form("0");
    let refs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, html, _) = post_form(&s, &session, &path, &refs, false).await;
    assert!(html.contains("2 changed, 0 unchanged."), "{html}");
    assert_eq!(holders(&s, &t).await, vec!["bob", "cat", "eve", "fay"]);
}

/// `backfill = true` in a rules file: the run that activates the template queues a backfill
/// (the server's worker runs it); a later run of the same file queues none.
#[tokio::test(flavor = "multi_thread")]
async fn a_rules_file_activating_a_template_backfills_it() {
    let op = Operator::new("backfill-rules").set("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50");
    let (s, t) = serve_inactive(&op).await;
    send(&s, vec![passing("r1", "ann", DEMO, true)]).await;
    let active =
        demo_rules_with_penalty().replace("active = true", "active = true\nbackfill = true");
    op.write_file("rules.toml", &active);
    let dry = op.ok(&["apply", "-f", "rules.toml", "--dry-run"]);
    assert!(
        dry.contains("+ backfill of `Demo` when it is activated"),
        "{dry}"
    );
    let out = op.ok(&["apply", "-f", "rules.toml"]);
    assert!(out.contains("+ backfill "), "{out}");
    eventually(Duration::from_secs(20), "ann's badge", || async {
        (holders(&s, &t).await == vec!["ann"]).then_some(())
    })
    .await;
    let again = op.ok(&["apply", "-f", "rules.toml"]);
    assert!(!again.contains("backfill"), "{again}");
    let (_, list) = s.api("GET", "/backfills", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["requested_by"], "rules-as-code");
}

/// The CLI's queue, show, cancel and resume with no server running: `--no-wait` queues, `cancel`
/// ends a queued backfill, `resume` runs one to its end here; the API cancels a queued one too.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_queues_shows_cancels_and_resumes_backfills() {
    let op = Operator::new("backfill-cli");
    op.write_file("rules.toml", &demo_rules_with_penalty());
    op.ok(&["apply", "-f", "rules.toml"]);
    let token = op.token();
    let t = {
        // Events go in through a server; then it stops, so nothing runs the queued backfills.
        let mut s = op.serve(&["--no-workers"]).await.with_token(&token);
        send(&s, vec![passing("c1", "ann", DEMO, true)]).await;
        let t = template_id(&s).await;
        // A queued backfill cancelled over the API.
        let (status, b) = s
            .api("POST", &format!("/templates/{t}/backfill"), Some(json!({})))
            .await;
        assert_eq!(status, 202, "{b}");
        let id = b["id"].as_str().unwrap();
        let (status, c) = s
            .api("POST", &format!("/backfills/{id}/cancel"), None)
            .await;
        assert_eq!((status, c["state"].as_str()), (200, Some("cancelled")));
        s.kill();
        t
    };
    let queued: Value =
        serde_json::from_str(&op.ok(&["backfill", "--template", &t, "--no-wait", "--json"]))
            .unwrap();
    assert_eq!(queued["state"], "queued");
    let id = queued["id"].as_str().unwrap().to_string();
    let shown: Value = serde_json::from_str(&op.ok(&["backfill", "show", &id])).unwrap();
    assert_eq!(shown["state"], "queued");
    let cancelled = op.ok(&["backfill", "cancel", &id]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    let again = op.run(&["backfill", "cancel", &id]);
    assert!(
        !again.status.success(),
        "an ended backfill cannot be cancelled"
    );
    let queued: Value =
        serde_json::from_str(&op.ok(&["backfill", "--template", &t, "--no-wait", "--json"]))
            .unwrap();
    let id = queued["id"].as_str().unwrap().to_string();
    let resumed = op.ok(&["backfill", "resume", &id]);
    assert!(resumed.contains("succeeded"), "{resumed}");
    let shown: Value = serde_json::from_str(&op.ok(&["backfill", "show", &id])).unwrap();
    assert_eq!(
        (shown["state"].as_str(), shown["percent"].as_u64()),
        (Some("succeeded"), Some(100))
    );
}
