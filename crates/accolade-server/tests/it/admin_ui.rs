//! The admin web UI's security: anonymous access, CSRF, session fixation, lockout, escaping,
//! headers, and the account CLI. Requests go through the real router with real cookies.

use accolade_server::web::password;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery staple";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// The value this answer sets for a cookie (`None` when it does not set it).
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|rest| rest.split(';').next().unwrap_or("").to_string())
    }

    fn set_cookie_line(&self, name: &str) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    }

    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of a hidden form field.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect("field present") + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    uri: &str,
    cookies: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookies.is_empty() {
        let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        req = req.header("cookie", c.join("; "));
    }
    let body = match form {
        Some(fields) => {
            req = req.header("content-type", "application/x-www-form-urlencoded");
            let encoded: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect();
            Body::from(encoded.join("&"))
        }
        None => Body::empty(),
    };
    let res = app
        .router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn admin_app(username: &str) -> TestApp {
    let app = TestApp::new().await;
    add_admin(&app, username).await;
    app
}

async fn add_admin(app: &TestApp, username: &str) {
    let hash = password::hash(PASSWORD).unwrap();
    app.state
        .store
        .create_admin_user(username, &hash)
        .await
        .unwrap();
}

/// Signs in through the form; returns the login answer (session cookie in `Set-Cookie`).
async fn sign_in(app: &TestApp, username: &str, pw: &str, extra: &[(&str, &str)]) -> Answer {
    let form = send(app, "GET", "/admin/login", &[], None).await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form
        .cookie("accolade_login_csrf")
        .expect("login csrf cookie");
    assert_eq!(
        form.field("csrf"),
        token,
        "double-submit token in cookie and form"
    );
    let mut cookies = vec![("accolade_login_csrf", token.as_str())];
    cookies.extend_from_slice(extra);
    send(
        app,
        "POST",
        "/admin/login",
        &cookies,
        Some(&[
            ("username", username),
            ("password", pw),
            ("csrf", &token),
            ("next", "/admin"),
        ]),
    )
    .await
}

#[tokio::test]
async fn every_admin_page_refuses_anonymous_access() {
    let app = admin_app("ann").await;
    let page = send(&app, "GET", "/admin", &[], None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/admin/login?next=/admin");
    let forged = send(
        &app,
        "GET",
        "/admin",
        &[("accolade_session", "made-up")],
        None,
    )
    .await;
    assert_eq!(
        forged.status,
        StatusCode::SEE_OTHER,
        "an unknown session id is no session"
    );
    let post = send(&app, "POST", "/admin/logout", &[], Some(&[("csrf", "x")])).await;
    assert_eq!(post.status, StatusCode::UNAUTHORIZED);
    // Every page and every form of the router, with ids that may or may not exist: pages send
    // anonymous visitors to the login form, forms answer 401, and nothing is done.
    let id = "00000000-0000-7000-8000-000000000000";
    let pages = [
        "/admin".to_string(),
        "/admin/credly".to_string(),
        "/admin/templates".to_string(),
        format!("/admin/templates/{id}"),
        "/admin/awards".to_string(),
        format!("/admin/awards/{id}"),
        "/admin/jobs".to_string(),
        "/admin/events".to_string(),
        "/admin/events?show=rejected".to_string(),
        "/admin/progress?learner=bob".to_string(),
        "/admin/webhooks".to_string(),
    ];
    for uri in &pages {
        let page = send(&app, "GET", uri, &[], None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{uri}");
        assert!(page.location().starts_with("/admin/login?next="), "{uri}");
    }
    let forms = [
        "/admin/credly".to_string(),
        "/admin/credly/sync".to_string(),
        format!("/admin/credly/{id}/key"),
        format!("/admin/awards/{id}/revoke"),
        format!("/admin/awards/{id}/retry"),
        format!("/admin/jobs/job_{id}/retry"),
        format!("/admin/webhooks/whd_{id}/replay"),
        format!("/admin/templates/{id}/active"),
        format!("/admin/templates/{id}/requirements"),
        format!("/admin/templates/{id}/requirements/req_x/delete"),
        format!("/admin/templates/{id}/penalties"),
        format!("/admin/templates/{id}/explain"),
    ];
    for uri in &forms {
        let post = send(&app, "POST", uri, &[], Some(&[("csrf", "x")])).await;
        assert_eq!(post.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    // The login form and the stylesheet are the only pages open to anyone.
    assert_eq!(
        send(&app, "GET", "/admin/login", &[], None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, "GET", "/admin/static/admin.css", &[], None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn signing_in_opens_the_dashboard_with_a_strict_http_only_cookie() {
    let app = admin_app("ann").await;
    let login = sign_in(&app, "ann", PASSWORD, &[]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    assert_eq!(login.location(), "/admin");
    let line = login.set_cookie_line("accolade_session");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    assert!(
        !line.contains("Secure"),
        "plain HTTP in tests: no Secure flag"
    );
    let session = login.cookie("accolade_session").unwrap();
    let page = send(
        &app,
        "GET",
        "/admin",
        &[("accolade_session", &session)],
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Dashboard") && page.body.contains("Signed in as <strong>ann</strong>")
    );
    // Behind a TLS-terminating proxy the cookie is Secure.
    let form = send(&app, "GET", "/admin/login", &[], None).await;
    let token = form.cookie("accolade_login_csrf").unwrap();
    let req = Request::builder()
        .method("POST")
        .uri("/admin/login")
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("accolade_login_csrf={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username=ann&password={}&csrf={token}",
            urlencode(PASSWORD)
        )))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let secure = res.headers().get_all("set-cookie").iter().any(|v| {
        let v = v.to_str().unwrap_or("");
        v.starts_with("accolade_session=") && v.contains("; Secure")
    });
    assert!(secure, "Secure session cookie behind TLS");
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = admin_app("ann").await;
    // Login form: token missing from the cookie, or not matching it.
    let no_cookie = send(
        &app,
        "POST",
        "/admin/login",
        &[],
        Some(&[("username", "ann"), ("password", PASSWORD), ("csrf", "abc")]),
    )
    .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    assert!(no_cookie.cookie("accolade_session").is_none());
    let mismatch = send(
        &app,
        "POST",
        "/admin/login",
        &[("accolade_login_csrf", "one")],
        Some(&[("username", "ann"), ("password", PASSWORD), ("csrf", "two")]),
    )
    .await;
    assert_eq!(mismatch.status, StatusCode::FORBIDDEN);
    assert!(mismatch.cookie("accolade_session").is_none());
    // Signed in: logout with a wrong token is refused and the session stays valid.
    let session = sign_in(&app, "ann", PASSWORD, &[])
        .await
        .cookie("accolade_session")
        .unwrap();
    let cookies = [("accolade_session", session.as_str())];
    let refused = send(
        &app,
        "POST",
        "/admin/logout",
        &cookies,
        Some(&[("csrf", "wrong")]),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&app, "GET", "/admin", &cookies, None).await.status,
        StatusCode::OK
    );
    // With the session's token it works, and the session is gone afterwards.
    let page = send(&app, "GET", "/admin", &cookies, None).await;
    let csrf = page.field("csrf");
    let out = send(
        &app,
        "POST",
        "/admin/logout",
        &cookies,
        Some(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        out.cookie("accolade_session").as_deref(),
        Some(""),
        "cookie cleared"
    );
    assert_eq!(
        send(&app, "GET", "/admin", &cookies, None).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_session_id_planted_before_login_never_becomes_a_session() {
    let app = admin_app("ann").await;
    let login = sign_in(
        &app,
        "ann",
        PASSWORD,
        &[("accolade_session", "planted-by-attacker")],
    )
    .await;
    let fresh = login.cookie("accolade_session").unwrap();
    assert_ne!(fresh, "planted-by-attacker");
    let planted = send(
        &app,
        "GET",
        "/admin",
        &[("accolade_session", "planted-by-attacker")],
        None,
    )
    .await;
    assert_eq!(planted.status, StatusCode::SEE_OTHER);
    // Signing in again with a valid session ends that session and issues another id.
    let again = sign_in(&app, "ann", PASSWORD, &[("accolade_session", &fresh)]).await;
    let newer = again.cookie("accolade_session").unwrap();
    assert_ne!(newer, fresh);
    assert_eq!(
        send(&app, "GET", "/admin", &[("accolade_session", &fresh)], None)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        send(&app, "GET", "/admin", &[("accolade_session", &newer)], None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let app = admin_app("ann").await;
    for i in 0..5 {
        let wrong = sign_in(&app, "ann", "not the password", &[]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(wrong.body.contains("Wrong username or password."));
    }
    let locked = sign_in(&app, "ann", PASSWORD, &[]).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed sign-ins"));
    assert!(locked.cookie("accolade_session").is_none());
    // An unknown account gets the same answer as a wrong password.
    let unknown = sign_in(&app, "nobody", PASSWORD, &[]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("Wrong username or password."));
}

#[tokio::test]
async fn markup_in_names_is_shown_as_text() {
    let app = admin_app("<script>alert(1)</script>").await;
    let session = sign_in(&app, "<script>alert(1)</script>", PASSWORD, &[])
        .await
        .cookie("accolade_session")
        .unwrap();
    let page = send(
        &app,
        "GET",
        "/admin",
        &[("accolade_session", &session)],
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("<script>alert(1)</script>"),
        "raw markup rendered"
    );
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || page.body.contains("&#60;script&#62;"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn admin_answers_carry_a_content_security_policy_and_no_store() {
    let app = admin_app("ann").await;
    for uri in ["/admin/login", "/admin"] {
        let a = send(&app, "GET", uri, &[], None).await;
        let csp = a
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{uri}: {csp}"
        );
        assert_eq!(a.headers.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(a.headers.get("x-content-type-options").unwrap(), "nosniff");
    }
    let login = send(&app, "GET", "/admin/login", &[], None).await;
    assert_eq!(login.headers.get("cache-control").unwrap(), "no-store");
}

#[tokio::test]
async fn the_cli_creates_accounts_with_hashed_passwords_and_refuses_short_ones() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("accolade-admin-cli-{}", unique()));
    let db = format!("sqlite://{}/a.db", dir.display());
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"))
            .args(args)
            .args(["--database-url", &db])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = run(&["admin", "create-user", "--username", "Ann"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let ok = run(
        &["admin", "create-user", "--username", "Ann"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dup = run(
        &["admin", "create-user", "--username", "ann"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!dup.status.success(), "a second account with the same name");
    let reset = run(
        &["admin", "create-user", "--username", "ann", "--reset"],
        "another long password\n",
    );
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let mut config = accolade_server::config::Config::defaults();
    config.database.url = db.clone();
    let store = accolade_server::db::open(&config.database).await.unwrap();
    let user = store.get_admin_user("ann").await.unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "stored as an argon2id hash"
    );
    assert!(password::verify(
        "another long password",
        &user.password_hash
    ));
    assert!(!password::verify(PASSWORD, &user.password_hash));
    let _ = std::fs::remove_dir_all(dir);
}

/// Signs in as `ann` and returns the session cookie value.
async fn session_of(app: &TestApp) -> String {
    sign_in(app, "ann", PASSWORD, &[])
        .await
        .cookie("accolade_session")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credly_page_adds_an_organization_syncs_it_and_the_templates_page_lists_them() {
    use crate::credly::{app_for, sandbox, tid, KEY, ORG};
    let ids = [tid(1), tid(2), tid(3)];
    let sb = sandbox(&[(&ids[0], "active"), (&ids[1], "active"), (&ids[2], "draft")]).await;
    let app = app_for(&sb.api_base_url).await;
    add_admin(&app, "ann").await;
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let page = send(&app, "GET", "/admin/credly", &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No organization yet"));
    let csrf = page.field("csrf");

    // A wrong key: the precise error, the id kept in the form, nothing stored.
    let wrong = send(
        &app,
        "POST",
        "/admin/credly",
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("organization_id", ORG),
            ("api_key", "not-the-key"),
        ]),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("credly_key_rejected"), "{}", wrong.body);
    assert!(wrong.body.contains(&format!("value=\"{ORG}\"")));
    assert!(!wrong.body.contains("not-the-key"), "a key is never echoed");
    assert!(app.state.store.list_credly_orgs().await.unwrap().is_empty());

    // The right key: added under Credly's name for it.
    let added = send(
        &app,
        "POST",
        "/admin/credly",
        &cookies,
        Some(&[("csrf", &csrf), ("organization_id", ORG), ("api_key", KEY)]),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(added.body.contains("Added Example Org"));
    assert!(!added.body.contains(KEY), "a key is never echoed");

    // Without the form token the sync is refused and nothing is imported.
    let forged = send(
        &app,
        "POST",
        "/admin/credly/sync",
        &cookies,
        Some(&[("org", ORG)]),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let synced = send(
        &app,
        "POST",
        "/admin/credly/sync",
        &cookies,
        Some(&[("csrf", &csrf), ("org", ORG)]),
    )
    .await;
    assert_eq!(synced.status, StatusCode::OK, "{}", synced.body);
    assert!(
        synced
            .body
            .contains("Example Org: 2 created (inactive), 0 updated, 0 deactivated"),
        "{}",
        synced.body
    );

    // The templates page shows what was imported: only active Credly templates, inactive here.
    let list = send(
        &app,
        "GET",
        "/admin/templates?origin=credly",
        &cookies,
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list
        .body
        .contains("Template 00000000-0000-4000-8000-000000000001"));
    assert!(list
        .body
        .contains("Template 00000000-0000-4000-8000-000000000002"));
    assert!(
        !list
            .body
            .contains("Template 00000000-0000-4000-8000-000000000003"),
        "drafts are not imported"
    );
    assert!(
        list.body.contains("Example Org"),
        "organization shown by name"
    );
    let active = send(
        &app,
        "GET",
        "/admin/templates?origin=credly&active=true",
        &cookies,
        None,
    )
    .await;
    assert!(
        active.body.contains("No template matches."),
        "new templates are inactive"
    );
    let by_state = send(
        &app,
        "GET",
        "/admin/templates?state=active&origin=credly",
        &cookies,
        None,
    )
    .await;
    assert!(by_state
        .body
        .contains("Template 00000000-0000-4000-8000-000000000001"));
    let none = send(
        &app,
        "GET",
        "/admin/templates?state=inactive",
        &cookies,
        None,
    )
    .await;
    assert!(
        none.body.contains("No template matches."),
        "filter by Credly state"
    );
}

#[tokio::test]
async fn the_templates_page_pages_on_the_server_and_keeps_filters() {
    use accolade_domain::template::Origin;
    let app = admin_app("ann").await;
    for i in 0..60 {
        app.state
            .store
            .create_template(accolade_store::NewTemplate {
                id: None,
                name: format!("Course {i:02} <b>bold</b>"),
                description: String::new(),
                image_url: None,
                origin: Origin::Local,
                provider_state: "active".into(),
                is_active: false,
                allow_reaward: true,
                organization_id: None,
                expires_after: None,
                criteria: None,
            })
            .await
            .unwrap();
    }
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let first = send(&app, "GET", "/admin/templates?q=course", &cookies, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.contains("Rows 1–50"), "{}", first.body);
    assert!(
        first
            .body
            .contains("href=\"/admin/templates?q=course&#38;offset=50\""),
        "next link keeps the filter: {}",
        first
            .body
            .lines()
            .filter(|l| l.contains("rel="))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !first.body.contains("<b>bold</b>")
            && (first.body.contains("&lt;b&gt;bold") || first.body.contains("&#60;b&#62;bold")),
        "names escaped"
    );
    let second = send(
        &app,
        "GET",
        "/admin/templates?q=course&offset=50",
        &cookies,
        None,
    )
    .await;
    assert!(second.body.contains("Rows 51–60"));
    assert!(
        !second.body.contains("rel=\"next\""),
        "no page after the last"
    );
    let none = send(&app, "GET", "/admin/templates?q=zzz", &cookies, None).await;
    assert!(none.body.contains("No template matches."));
    // Anonymous: sent to the login form, with the way back.
    let anon = send(&app, "GET", "/admin/templates?q=course", &[], None).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anon.location(),
        "/admin/login?next=/admin/templates%3Fq%3Dcourse"
    );
}

#[tokio::test]
async fn the_template_page_explains_the_switch_and_activates_only_with_the_form_token() {
    let app = admin_app("ann").await;
    // An inactive template with two groups and a penalty, through the JSON API.
    let (s, t) = app
        .post(
            "/api/v1/templates",
            serde_json::json!({"name": "Demo <i>course</i>", "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let mut reqs = Vec::new();
    for (group, course) in [("A", DEMO), ("B", "course-v1:Other+X+1")] {
        let (s, r) = app
            .post(
                &format!("/api/v1/templates/{id}/requirements"),
                serde_json::json!({"event_type": PASSING, "group": group, "description": format!("Passed {course}"), "rules": rules_passed(course)}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        reqs.push(r["id"].as_str().unwrap().to_string());
    }
    let (s, p) = app
        .post(
            &format!("/api/v1/templates/{id}/penalties"),
            serde_json::json!({"event_type": PASSING, "rules": [{"path": "is_passing", "op": "=", "value": "false"}], "requirements": [reqs[0]]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let uri = format!("/admin/templates/{id}");
    let page = send(&app, "GET", &uri, &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Requirements (groups A, B)"));
    assert!(page.body.contains(&format!("course.course_key = {DEMO}")));
    assert!(
        page.body.contains("is_passing = false"),
        "penalty rule shown"
    );
    assert!(
        page.body.contains(&format!("A: Passed {DEMO}")),
        "penalty names the requirement it resets"
    );
    assert!(page.body.contains(
        "Activating starts matching new events against 2 requirement(s) in group(s) A, B"
    ));
    assert!(!page.body.contains("<i>course</i>"), "name escaped");
    let csrf = page.field("csrf");
    let active = |app: &TestApp| {
        let store = app.state.store.clone();
        let id = id.clone();
        async move { store.get_template(&id).await.unwrap().template.is_active }
    };
    // Without the form token nothing changes.
    let forged = send(
        &app,
        "POST",
        &format!("{uri}/active"),
        &cookies,
        Some(&[("active", "true")]),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!active(&app).await);
    let on = send(
        &app,
        "POST",
        &format!("{uri}/active"),
        &cookies,
        Some(&[("csrf", &csrf), ("active", "true"), ("confirm", "1")]),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK);
    assert!(on
        .body
        .contains("Activated: new events are matched from now on."));
    assert!(
        on.body.contains("Deactivating stops matching new events"),
        "the switch now explains deactivation"
    );
    assert!(active(&app).await);
    // The switch works: an event now awards the badge.
    app.send(passing("ev-a", "bob", DEMO, true)).await;
    app.send(passing("ev-b", "bob", "course-v1:Other+X+1", true))
        .await;
    assert_eq!(app.awards("bob").await.len(), 1);
    let unknown = send(
        &app,
        "GET",
        "/admin/templates/00000000-0000-4000-8000-00000000dead",
        &cookies,
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn awards_jobs_and_events_pages_show_state_and_act_only_with_the_form_token() {
    let app = admin_app("ann").await;
    // A Credly template: its jobs wait in the outbox (a local template's are done at once).
    app.credly_template("Demo", &[("A", rules_passed(DEMO))])
        .await;
    app.send(passing("ev-1", "bob", DEMO, true)).await;
    // An event without user data is rejected with a reason.
    let mut bad = passing("ev-2", "bob", DEMO, true);
    bad["data"]["course_passing_status"]
        .as_object_mut()
        .unwrap()
        .remove("user");
    app.send(bad).await;
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];

    let events = send(&app, "GET", "/admin/events", &cookies, None).await;
    assert_eq!(events.status, StatusCode::OK);
    assert!(events.body.contains("ev-1") && events.body.contains("bob"));
    assert!(
        !events.body.contains("missing_user_data"),
        "received and rejected events are on separate tabs"
    );
    let rejected = send(&app, "GET", "/admin/events?show=rejected", &cookies, None).await;
    assert_eq!(rejected.status, StatusCode::OK);
    assert!(
        rejected.body.contains("<code>missing_user_data</code>") && rejected.body.contains("ev-2"),
        "rejected with its code: {}",
        rejected.body
    );

    let awards = send(&app, "GET", "/admin/awards?learner=bob", &cookies, None).await;
    assert_eq!(awards.status, StatusCode::OK);
    assert!(
        awards.body.contains(">Demo</a>") && awards.body.contains("earned 2026-08-20 14:03:27")
    );
    let award_id = app.awards("bob").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let csrf = awards.field("csrf");
    let uri = format!("/admin/awards/{award_id}/revoke");
    let forged = send(&app, "POST", &uri, &cookies, Some(&[("reason", "fraud")])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let empty = send(
        &app,
        "POST",
        &uri,
        &cookies,
        Some(&[("csrf", &csrf), ("reason", "  ")]),
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty
        .body
        .contains("a reason of 1-1000 characters is required"));
    assert_eq!(
        app.awards("bob").await[0]["state"],
        "awarded",
        "nothing changed"
    );
    let done = send(
        &app,
        "POST",
        &uri,
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("reason", "Plagiarism"),
            ("learner", "bob"),
        ]),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Revoked the award of bob (episode 1)."));
    assert!(
        done.body.contains("Plagiarism (by ann in the admin UI)"),
        "reason in the timeline"
    );
    assert_eq!(app.awards("bob").await[0]["state"], "revoked");
    let dashboard = send(&app, "GET", "/admin", &cookies, None).await;
    assert!(
        dashboard
            .body
            .contains(r#"<span class="n">1</span><span class="l">badges revoked</span>"#),
        "the dashboard counts revocations"
    );

    let jobs = send(&app, "GET", "/admin/jobs?status=pending", &cookies, None).await;
    assert_eq!(jobs.status, StatusCode::OK);
    assert!(jobs.body.contains("credly.issue") && jobs.body.contains("credly.revoke"));
    let job_id = jobs
        .body
        .split("<code>job_")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let retry_uri = format!("/admin/jobs/job_{job_id}/retry");
    let forged = send(&app, "POST", &retry_uri, &cookies, Some(&[])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let retried = send(
        &app,
        "POST",
        &retry_uri,
        &cookies,
        Some(&[("csrf", &csrf), ("status", "pending")]),
    )
    .await;
    assert!(
        retried.body.contains("is due again now"),
        "{}",
        retried.body
    );
    // Anonymous visitors see none of it.
    for uri in ["/admin/awards", "/admin/jobs", "/admin/events"] {
        assert_eq!(
            send(&app, "GET", uri, &[], None).await.status,
            StatusCode::SEE_OTHER,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_progress_page_shows_which_event_fulfilled_which_requirement() {
    let app = admin_app("ann").await;
    app.template(
        "Two courses",
        &[
            ("A", rules_passed(DEMO)),
            ("B", rules_passed("course-v1:Other+X+1")),
        ],
    )
    .await;
    app.send(passing("ev-first", "bob", DEMO, true)).await;
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let page = send(&app, "GET", "/admin/progress?learner=bob", &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Two courses</a>: 1 of 2 group(s)"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<code>ev-first</code>"),
        "the fulfilling event is named"
    );
    let unknown = send(
        &app,
        "GET",
        "/admin/progress?learner=nobody",
        &cookies,
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("No learner named nobody"));
}

/// Example 5 of the Open edX badges documentation (two specific courses, both required: one
/// requirement per course in groups A and B), configured entirely through the admin forms.
#[tokio::test]
async fn example_5_is_configured_with_the_editor_explained_activated_and_awarded() {
    let app = admin_app("ann").await;
    let (s, t) = app
        .post(
            "/api/v1/templates",
            serde_json::json!({"name": "Two courses", "active": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = t["id"].as_str().unwrap().to_string();
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let uri = format!("/admin/templates/{id}");
    let page = send(&app, "GET", &uri, &cookies, None).await;
    let csrf = page.field("csrf");
    assert!(
        page.body.contains("next free (A)"),
        "group defaults to the next free letter"
    );
    assert!(
        page.body.contains("<option value=\"course.course_key\">"),
        "key paths from the schema"
    );
    const OTHER: &str = "course-v1:OpenedX+Other+2026";
    for (course, expect) in [(DEMO, "group A"), (OTHER, "group B")] {
        let added = send(
            &app,
            "POST",
            &format!("{uri}/requirements"),
            &cookies,
            Some(&[
                ("csrf", &csrf),
                ("event_type", PASSING),
                ("group", ""),
                ("description", &format!("Passed {course}")),
                ("path_1", "is_passing"),
                ("op_1", "="),
                ("value_1", "true"),
                ("path_2", "course.course_key"),
                ("op_2", "="),
                ("value_2", course),
            ]),
        )
        .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        assert!(added
            .body
            .contains(&format!("Requirement added to {expect}.")));
    }
    // Bad input is refused with the reason and stores nothing.
    let bad = send(
        &app,
        "POST",
        &format!("{uri}/requirements"),
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("event_type", PASSING),
            ("path_1", "is_passing"),
            ("op_1", "~="),
            ("value_1", "x"),
        ]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("rule 1:"), "{}", bad.body);
    let bad_type = send(
        &app,
        "POST",
        &format!("{uri}/requirements"),
        &cookies,
        Some(&[("csrf", &csrf), ("event_type", "org.example.unknown.v1")]),
    )
    .await;
    assert_eq!(bad_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.state
            .store
            .get_template(&id)
            .await
            .unwrap()
            .requirements
            .len(),
        2
    );

    // Explain: the rule that fails is pointed out.
    let sample = passing("sample", "bob", OTHER, false).to_string();
    let explained = send(
        &app,
        "POST",
        &format!("{uri}/explain"),
        &cookies,
        Some(&[("csrf", &csrf), ("event", &sample)]),
    )
    .await;
    assert_eq!(explained.status, StatusCode::OK);
    assert!(
        explained.body.contains("✗ <code>is_passing = true</code>"),
        "{}",
        explained.body
    );
    assert!(explained
        .body
        .contains(&format!("✓ <code>course.course_key = {OTHER}</code>")));
    assert!(explained.body.contains("not matched"));
    let garbage = send(
        &app,
        "POST",
        &format!("{uri}/explain"),
        &cookies,
        Some(&[("csrf", &csrf), ("event", "{not json")]),
    )
    .await;
    assert!(garbage.body.contains("The sample is not valid JSON"));

    // Activate and earn it.
    let on = send(
        &app,
        "POST",
        &format!("{uri}/active"),
        &cookies,
        Some(&[("csrf", &csrf), ("active", "true"), ("confirm", "1")]),
    )
    .await;
    assert!(on.body.contains("2 requirement(s) in group(s) A, B") || on.body.contains("Activated"));
    app.send(passing("e1", "bob", DEMO, true)).await;
    assert!(
        app.awards("bob").await.is_empty(),
        "one course is not enough"
    );
    app.send(passing("e2", "bob", OTHER, true)).await;
    assert_eq!(app.awards("bob").await.len(), 1, "both courses: awarded");
}

#[tokio::test]
async fn penalties_and_deletions_go_through_the_editor_forms() {
    let app = admin_app("ann").await;
    let id = app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    let other = app.template("Other", &[("A", rules_passed(DEMO))]).await;
    let req = app
        .state
        .store
        .get_template(&id)
        .await
        .unwrap()
        .requirements[0]
        .id
        .clone();
    let other_req = app
        .state
        .store
        .get_template(&other)
        .await
        .unwrap()
        .requirements[0]
        .id
        .clone();
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let uri = format!("/admin/templates/{id}");
    let csrf = send(&app, "GET", &uri, &cookies, None).await.field("csrf");
    let none = send(
        &app,
        "POST",
        &format!("{uri}/penalties"),
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("event_type", PASSING),
            ("path_1", "is_passing"),
            ("op_1", "="),
            ("value_1", "false"),
        ]),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("Choose at least one requirement"));
    let added = send(
        &app,
        "POST",
        &format!("{uri}/penalties"),
        &cookies,
        Some(&[
            ("csrf", &csrf),
            ("event_type", PASSING),
            ("path_1", "is_passing"),
            ("op_1", "="),
            ("value_1", "false"),
            ("resets", &req),
        ]),
    )
    .await;
    assert!(
        added
            .body
            .contains("Penalty added; it resets 1 requirement(s)."),
        "{}",
        added.body
    );
    assert_eq!(
        app.state
            .store
            .get_template(&id)
            .await
            .unwrap()
            .penalties
            .len(),
        1
    );
    // A requirement of another template cannot be deleted from this page; without the token
    // nothing is deleted either.
    let foreign = send(
        &app,
        "POST",
        &format!("{uri}/requirements/{other_req}/delete"),
        &cookies,
        Some(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let forged = send(
        &app,
        "POST",
        &format!("{uri}/requirements/{req}/delete"),
        &cookies,
        Some(&[]),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.state
            .store
            .get_template(&other)
            .await
            .unwrap()
            .requirements
            .len(),
        1
    );
    let deleted = send(
        &app,
        "POST",
        &format!("{uri}/requirements/{req}/delete"),
        &cookies,
        Some(&[("csrf", &csrf)]),
    )
    .await;
    assert!(deleted.body.contains("Requirement deleted."));
    assert!(app
        .state
        .store
        .get_template(&id)
        .await
        .unwrap()
        .requirements
        .is_empty());
}

#[tokio::test]
async fn the_webhook_delivery_log_lists_deliveries_and_replays_with_the_form_token() {
    let app = admin_app("ann").await;
    let (s, w) = app
        .post(
            "/api/v1/webhooks",
            serde_json::json!({"url": "https://receiver.example/hook"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    app.send(passing("ev-1", "bob", DEMO, true)).await;
    // On PostgreSQL fan-out waits until no older transaction is still running (other tests run
    // in parallel on the same server), so look again until the delivery exists.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let fanned = app
            .state
            .store
            .fan_out_webhooks(100, chrono::Utc::now())
            .await
            .unwrap();
        let listed = app
            .state
            .store
            .list_webhook_deliveries(&Default::default(), accolade_store::Page::default())
            .await
            .unwrap();
        if !listed.items.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery after fan-out: {fanned:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let page = send(&app, "GET", "/admin/webhooks", &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("org.openedx.learning.badge.awarded.v1"),
        "{}",
        page.body
    );
    assert!(page.body.contains(w["id"].as_str().unwrap()));
    let delivery = page
        .body
        .split("<code>whd_")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let uri = format!("/admin/webhooks/whd_{delivery}/replay");
    let csrf = page.field("csrf");
    let forged = send(&app, "POST", &uri, &cookies, Some(&[])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let replayed = send(&app, "POST", &uri, &cookies, Some(&[("csrf", &csrf)])).await;
    assert_eq!(replayed.status, StatusCode::OK);
    assert!(
        replayed
            .body
            .contains("Replaying the event as delivery whd_"),
        "{}",
        replayed.body
    );
    assert_eq!(
        replayed.body.matches("<code>whd_").count(),
        2,
        "the replay is a new delivery"
    );
    let unknown = send(
        &app,
        "POST",
        "/admin/webhooks/whd_nope/replay",
        &cookies,
        Some(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_award_page_shows_its_jobs_and_retries_a_dead_delivery_with_the_form_token() {
    use accolade_domain::outbox::kind;
    use accolade_store::JobResult;
    let app = admin_app("ann").await;
    app.credly_template("Demo", &[("A", rules_passed(DEMO))])
        .await;
    app.send(passing("ev-1", "bob", DEMO, true)).await;
    let award_id = app.awards("bob").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The delivery fails for good: the job is dead.
    let store = &app.state.store;
    let now = chrono::Utc::now();
    let claimed = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE],
            10,
            now,
            now + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let error = "<b>503</b> from the provider".to_string();
    store
        .finish_job(&claimed[0].id, JobResult::Dead { error }, now)
        .await
        .unwrap();

    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let list = send(&app, "GET", "/admin/awards?learner=bob", &cookies, None).await;
    assert!(
        list.body
            .contains(&format!("href=\"/admin/awards/{award_id}\"")),
        "the list links each award to its page"
    );
    let uri = format!("/admin/awards/{award_id}");
    let page = send(&app, "GET", &uri, &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("credly.issue") && page.body.contains(">dead<"));
    assert!(
        page.body
            .contains("&#60;b&#62;503&#60;/b&#62; from the provider"),
        "the last error is shown, escaped: {}",
        page.body
    );
    assert!(page.body.contains("Retry the failed job now"));
    assert!(
        !page.body.contains("Open Badges 3.0"),
        "a Credly award has no Open Badges credential"
    );
    let csrf = page.field("csrf");

    let retry = format!("{uri}/retry");
    let forged = send(&app, "POST", &retry, &cookies, Some(&[])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        store.jobs_of_award(&award_id).await.unwrap()[0]
            .status
            .as_str(),
        "dead",
        "a refused form changes nothing"
    );
    let done = send(&app, "POST", &retry, &cookies, Some(&[("csrf", &csrf)])).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Retrying now: credly.issue."));
    let job = &store.jobs_of_award(&award_id).await.unwrap()[0];
    assert_eq!(job.status.as_str(), "pending");
    assert_eq!(job.attempts, 1, "a retry keeps the attempt count");
    let again = send(&app, "POST", &retry, &cookies, Some(&[("csrf", &csrf)])).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again
            .body
            .contains("This award has no failed job to retry."),
        "a job already due is not retried again: {}",
        again.body
    );

    // Revoking from the award page answers with the award page.
    let revoked = send(
        &app,
        "POST",
        &format!("{uri}/revoke"),
        &cookies,
        Some(&[("csrf", &csrf), ("reason", "Plagiarism"), ("back", "award")]),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked
        .body
        .contains("Revoked the award of bob (episode 1)."));
    assert!(revoked.body.contains("credly.revoke") && revoked.body.contains("Outbox jobs"));
    assert!(
        !revoked.body.contains("Revoke this badge"),
        "no second revoke form"
    );

    let unknown = send(
        &app,
        "GET",
        "/admin/awards/00000000-0000-7000-8000-000000000000",
        &cookies,
        None,
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        send(&app, "GET", &uri, &[], None).await.status,
        StatusCode::SEE_OTHER,
        "anonymous visitors see no award"
    );
}

#[tokio::test]
async fn the_award_page_links_the_signed_credential_and_the_learners_badge_page() {
    let app = admin_app("ann").await;
    app.template("Demo", &[("A", rules_passed(DEMO))]).await;
    app.send(passing("ev-1", "bob", DEMO, true)).await;
    let award_id = app.awards("bob").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session = session_of(&app).await;
    let cookies = [("accolade_session", session.as_str())];
    let uri = format!("/admin/awards/{award_id}");
    let waiting = send(&app, "GET", &uri, &cookies, None).await;
    assert_eq!(waiting.status, StatusCode::OK, "{}", waiting.body);
    assert!(
        !waiting.body.contains("Learner's badge page"),
        "no link before the credential is signed"
    );

    accolade_server::service::openbadges::issuer::drain(&app.state)
        .await
        .unwrap();
    let award = &app.awards("bob").await[0];
    let (json_url, page_url) = (
        award["credential_url"].as_str().unwrap(),
        award["badge_url"].as_str().unwrap(),
    );
    let page = send(&app, "GET", &uri, &cookies, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for link in [
        format!("<a id=\"ob-credential\" href=\"{json_url}\">Credential (Open Badges 3.0)</a>"),
        format!("<a id=\"ob-badge-page\" href=\"{page_url}\">Learner's badge page</a>"),
    ] {
        assert!(
            page.body.contains(&link),
            "{link} missing in\n{}",
            page.body
        );
    }
}
