//! `accolade serve --demo` as a first-time user runs it (defect 7 of issue 15): the printed
//! admin login works, one sandbox template is active with a sample requirement, `accolade demo
//! send-events` plays the LMS, and the badges reach the Credly sandbox, visible on the admin
//! awards page.

use std::time::Duration;

use crate::process::{eventually, Operator};

/// The value of a `Set-Cookie` named `name`.
fn cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// Signs in through the login form; returns the session cookie.
async fn sign_in(base: &str, username: &str, password: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let csrf = cookie(&form, "accolade_login_csrf").expect("login csrf cookie");
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", username)
        .append_pair("password", password)
        .append_pair("csrf", &csrf)
        .append_pair("next", "/admin")
        .finish();
    let res = client
        .post(format!("{base}/admin/login"))
        .header("cookie", format!("accolade_login_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    cookie(&res, "accolade_session").filter(|s| !s.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_whole_flow_with_nothing_to_read() {
    let op = Operator::new("demo");
    let server = op.serve(&["--demo"]).await;
    let printed = eventually(Duration::from_secs(20), "the demo banner", || {
        let out = server.output();
        async move { out.contains("Demo ready").then_some(out) }
    })
    .await;
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .and_then(|p| p.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password printed:\n{printed}"))
        .to_string();
    assert!(printed.contains("username: demo"), "{printed}");
    assert!(printed.contains("accolade demo send-events"), "{printed}");
    let session = sign_in(&server.base, "demo", &password)
        .await
        .expect("the printed login signs in");

    let out = op.ok(&[
        "demo",
        "send-events",
        "--url",
        &server.base,
        "--wait-secs",
        "30",
    ]);
    assert!(out.contains("3 accepted"), "{out}");
    for learner in ["ada", "grace", "alan"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{learner}:")))
            .unwrap_or_else(|| panic!("{learner} missing:\n{out}"));
        assert!(line.contains(": pending (Credly badge "), "{line}");
    }
    // The awards page shows them, issued on the sandbox (pending until the learner accepts).
    let page = reqwest::Client::new()
        .get(server.url("/admin/awards"))
        .header("cookie", format!("accolade_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for learner in ["ada", "grace", "alan"] {
        assert!(page.contains(learner), "{learner} not on the awards page");
    }
    assert!(page.contains("pending"), "{page}");

    // A second start changes nothing and prints a new password; the old one stops working.
    drop(server);
    let again = op.serve(&["--demo"]).await;
    let printed = eventually(Duration::from_secs(20), "the demo banner", || {
        let out = again.output();
        async move { out.contains("Demo ready").then_some(out) }
    })
    .await;
    assert!(!printed.contains(&password));
    assert!(sign_in(&again.base, "demo", &password).await.is_none());
}
