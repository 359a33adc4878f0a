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
    op.write_file("rules.toml", &inactive_rules());
    op.ok(&["apply", "-f", "rules.toml"]);
    let token = op.token();
    let s = op.serve(&[]).await.with_token(&token);
    let t = template_id(&s).await;
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
    let (status, body) = s
        .api(
            "POST",
            "/templates/nope/backfill",
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("template_not_found"))
    );
    let (status, body) = s.api("GET", "/backfills/nope", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("backfill_not_found"))
    );

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
    op.write_file("rules.toml", &inactive_rules());
    op.ok(&["apply", "-f", "rules.toml"]);
    let token = op.token();
    let mut s = op.serve(&[]).await.with_token(&token);
    let t = template_id(&s).await;
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
