//! Admin UI render times at scale: 10,000 templates and at least 1,000,000 fulfilments (filled
//! by the memory phase), then every main page fetched 20 times as a signed-in admin. The time is
//! the round trip over loopback, an upper bound of the server's render time.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::server::Server;

const PASSWORD: &str = "benchmark admin password";
const RUNS: usize = 20;

/// Creates `n` more local templates (inactive) through the API, 8 requests at a time.
pub async fn create_templates(
    client: &reqwest::Client,
    s: &Server,
    n: usize,
) -> anyhow::Result<String> {
    use futures::StreamExt;
    let mut last = String::new();
    let mut stream = futures::stream::iter(0..n)
        .map(|i| {
            let (client, base, token) = (client.clone(), s.base.clone(), s.token.clone());
            async move {
                let r = client
                    .post(format!("{base}/api/v1/templates"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Scale template {i:05}"), "active": false}))
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("creating a template answered {}", r.status());
                }
                let body: Value = r.json().await?;
                Ok::<_, anyhow::Error>(body["id"].as_str().unwrap_or_default().to_string())
            }
        })
        .buffer_unordered(8);
    while let Some(id) = stream.next().await {
        last = id?;
    }
    Ok(last)
}

/// Signs in through the login form; returns the `Cookie` header value of the session.
pub async fn sign_in(binary: &Path, s: &Server) -> anyhow::Result<String> {
    let db = s.db_url.clone();
    let mut child = Command::new(binary)
        .args([
            "admin",
            "create-user",
            "--username",
            "bench",
            "--database-url",
            &db,
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{PASSWORD}\n").as_bytes())?;
    if !child.wait()?.success() {
        bail!("admin create-user failed");
    }
    // The session cookie comes with the 303 after the login: do not follow it.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = client.get(format!("{}/admin/login", s.base)).send().await?;
    let csrf = cookie(&form, "accolade_login_csrf").context("login csrf cookie")?;
    let r = client
        .post(format!("{}/admin/login", s.base))
        .header("cookie", format!("accolade_login_csrf={csrf}"))
        .form(&[
            ("username", "bench"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await?;
    let session = cookie(&r, "accolade_session").context("no session cookie after login")?;
    Ok(format!("accolade_session={session}"))
}

fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_string())
}

/// Fetches each page `RUNS` times; prints median and max per page; returns the worst median.
pub async fn measure(
    client: &reqwest::Client,
    s: &Server,
    cookie: &str,
    template: &str,
    learner: &str,
) -> anyhow::Result<f64> {
    // One award's page: the newest award, found through the API.
    let awards: Value = client
        .get(format!("{}/api/v1/awards?limit=1", s.base))
        .bearer_auth(&s.token)
        .send()
        .await?
        .json()
        .await?;
    let award = awards["data"][0]["id"]
        .as_str()
        .context("the rss phase left no award")?
        .to_string();
    let pages = [
        "/admin".to_string(),
        "/admin/templates".to_string(),
        "/admin/templates?q=template%2009".to_string(),
        "/admin/templates?offset=9950".to_string(),
        format!("/admin/templates/{template}"),
        format!("/admin/progress?learner={learner}"),
        "/admin/awards".to_string(),
        format!("/admin/awards?learner={learner}"),
        format!("/admin/awards/{award}"),
        "/admin/jobs".to_string(),
        "/admin/jobs?status=dead".to_string(),
        "/admin/events".to_string(),
        "/admin/events?show=rejected".to_string(),
        format!("/admin/events?learner={learner}"),
        "/admin/webhooks".to_string(),
        "/admin/credly".to_string(),
    ];
    let mut worst: f64 = 0.0;
    for page in &pages {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let r = client
                .get(format!("{}{page}", s.base))
                .header("cookie", cookie)
                .send()
                .await?;
            let status = r.status();
            let _ = r.bytes().await?;
            if status != 200 {
                bail!("{page} answered {status}");
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[RUNS / 2];
        worst = worst.max(median);
        println!(
            "admin page {page}: median {median:.2} ms, max {:.2} ms",
            times[RUNS - 1]
        );
    }
    Ok(worst)
}
