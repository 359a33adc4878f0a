//! `accolade serve --demo` and `accolade demo send-events`: the whole flow in a minute with no
//! Credly account and nothing to read. The demo server starts the bundled Credly sandbox,
//! connects its organization, syncs its templates, activates one with a sample requirement
//! (rules as code, so a restart changes nothing) and prints a one-time admin login; the
//! `send-events` command plays the LMS for a few learners and shows their badges reaching the
//! sandbox.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::config::Config;
use crate::service::{admin_users, apply};
use crate::state::AppState;

/// The sandbox template the demo activates ("Rust Fundamentals" of the sandbox's demo seed).
pub const TEMPLATE_UUID: &str = "acc01ade-7e70-4000-8000-000000000001";
/// The course whose passing earns it.
pub const COURSE: &str = "course-v1:Accolade+Rust101+2026";
/// The admin account the demo signs in with.
pub const ADMIN: &str = "demo";
const PASSING: &str = "org.openedx.learning.course.passing.status.updated.v1";
/// Learners `send-events` plays when not told otherwise.
const LEARNERS: [(&str, &str); 3] = [
    ("ada", "Ada Lovelace"),
    ("grace", "Grace Hopper"),
    ("alan", "Alan Turing"),
];

fn rules() -> String {
    format!(
        r#"[[template]]
origin = "credly"
uuid = "{TEMPLATE_UUID}"
name = "Rust Fundamentals"
active = true
[[template.requirement]]
key = "rust-course"
description = "Passed the Rust Fundamentals course"
event_type = "{PASSING}"
rules = [ {{ path = "is_passing", op = "=", value = "true" }},
          {{ path = "course.course_key", op = "=", value = "{COURSE}" }} ]
"#
    )
}

/// Connects the in-process sandbox (organization, webhooks back to this server, sync),
/// activates the demo template, sets a new password for the `demo` admin and prints how to go
/// on.
pub async fn setup(
    state: &AppState,
    sb: &accolade_credly_sandbox::RunningSandbox,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    use crate::service::credly::{orgs, sync};
    use accolade_credly_sandbox::{DEMO_ORG_ID, DEMO_TOKEN};
    let store = &*state.store;
    if orgs::get(store, DEMO_ORG_ID).await.is_err() {
        orgs::add(
            &state.credly,
            store,
            DEMO_ORG_ID,
            orgs::NewCredentials::Token(DEMO_TOKEN.into()),
        )
        .await?;
    }
    sb.sandbox.set_webhook_url(
        DEMO_ORG_ID,
        Some(format!("http://{addr}/badges/credly/webhook/")),
    );
    let synced = sync::sync_org(&state.credly, store, DEMO_ORG_ID, false).await?;
    let desired = apply::parse(&rules()).context("the demo rules")?;
    if apply::unconfigured(&desired, &state.config.events).is_some() {
        anyhow::bail!("the demo needs {PASSING} in events.types");
    }
    apply::apply(store, desired, false)
        .await
        .context("activating the demo template")?;
    let password = crate::service::auth::random_secret()[..20].to_string();
    let admin = admin_users::Username::parse(ADMIN)?;
    admin_users::create_or_set_password(store, &admin, &password).await?;
    let base = format!("http://{addr}");
    eprintln!(
        "\nDemo ready. A Credly sandbox runs at {sandbox} (organization {DEMO_ORG_ID}); its {n} \
         active templates are synced\n\
         and \"Rust Fundamentals\" is active: passing {COURSE} earns it.\n\n\
         1. Sign in at {base}/admin\n\
         \x20    username: {ADMIN}\n\
         \x20    password: {password}   (new at every demo start)\n\
         2. Play the LMS for three learners, in another terminal:\n\
         \x20    accolade demo send-events      (cargo run --release -- demo send-events)\n\
         3. Watch the badges reach the sandbox at {base}/admin/awards\n",
        sandbox = sb.base_url,
        n = synced.created + synced.updated + synced.unchanged,
    );
    Ok(())
}

/// `accolade demo send-events`: sends each learner's "passed the course" event to a running
/// server, then follows their awards until the sandbox has them (or `wait` runs out).
pub async fn send_events(
    config: &Config,
    url: Option<String>,
    learners: usize,
    wait: Duration,
) -> anyhow::Result<()> {
    let base = match url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let addr = config.bind_addr()?;
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}", addr.port())
        }
    };
    // A token of its own, made in the database the server uses (same configuration).
    let store = crate::db::open(&config.database).await?;
    let (_, token) = crate::service::auth::create_token(
        &*store,
        "demo send-events",
        &["events:write".to_string(), "read".to_string()],
        None,
    )
    .await?;
    drop(store);
    let people: Vec<(String, String)> = (0..learners)
        .map(|i| match LEARNERS.get(i) {
            Some((u, n)) => (u.to_string(), n.to_string()),
            None => (format!("learner{}", i + 1), format!("Learner {}", i + 1)),
        })
        .collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let events: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, (username, name))| {
            json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "event_type": PASSING,
                "time": now,
                "source": "accolade/demo",
                "minorversion": 0,
                "data": {"course_passing_status": {
                    "is_passing": true,
                    "course": {"course_key": COURSE, "display_name": "Rust Fundamentals"},
                    "user": {"id": 1000 + i, "is_active": true,
                             "pii": {"username": username, "email": format!("{username}@example.org"), "name": name}}
                }}
            })
        })
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let res = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&token)
        .json(&events)
        .send()
        .await
        .with_context(|| format!("is `accolade serve --demo` running at {base}?"))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("the server answered {status}: {body}");
    }
    println!(
        "sent {} event(s) to {base}: {} accepted, {} duplicate(s)",
        events.len(),
        body["accepted"],
        body["duplicates"]
    );
    let deadline = tokio::time::Instant::now() + wait;
    let last = loop {
        let mut states = Vec::new();
        for (username, _) in &people {
            let awards: Value = client
                .get(format!("{base}/api/v1/awards"))
                .query(&[("learner", username.as_str())])
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            let award = awards["data"]
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or(Value::Null);
            states.push((username.clone(), award));
        }
        let settled = states.iter().all(|(_, a)| {
            matches!(
                a["state"].as_str(),
                Some("accepted" | "pending" | "rejected")
            )
        });
        if settled || tokio::time::Instant::now() >= deadline {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (username, award) in &last {
        match award["state"].as_str() {
            Some(state) => println!(
                "{username}: {state}{}",
                award["external_id"]
                    .as_str()
                    .map(|id| format!(" (Credly badge {id})"))
                    .unwrap_or_default()
            ),
            None => println!("{username}: no award yet"),
        }
    }
    println!("See them at {base}/admin/awards");
    Ok(())
}
