//! `accolade serve --demo` as a first-time user runs it (defect 7 of issue 15): the printed
//! admin login works, one sandbox template is active with a sample requirement, `accolade demo
//! send-events` plays the LMS, and the badges reach the Credly sandbox, visible on the admin
//! awards page.

use std::time::Duration;

use crate::process::{eventually, Operator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_whole_flow_with_nothing_to_read() {
    let op = Operator::new("demo");
    let server = op.serve(&["--demo"]).await;
    let printed = eventually(Duration::from_secs(20), "the demo banner", || {
        let out = server.log();
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
    let session = server
        .sign_in("demo", &password)
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
        .header("cookie", &session)
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
        let out = again.log();
        async move { out.contains("Demo ready").then_some(out) }
    })
    .await;
    assert!(!printed.contains(&password));
    assert!(again.sign_in("demo", &password).await.is_none());
}
