//! The Open Credit-style API (`/v1.1`), one test per statement of seed 001 and the issue's
//! acceptance list: app credentials and the envelope, tier limits at request N and N+1, the exact
//! throttled answer, per-user counting, tier changes, organizations and `behalf_of`, email
//! verification (mail folder and SMTP), tokens, rich text in and out, image size codes from
//! base64 and multipart uploads, refused uploads, cache headers and bad input.

use std::path::{Path, PathBuf};

use accolade_server::config::Config;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::*;

/// The throttled answer, word for word from seed 001.
fn throttled_body() -> Value {
    json!({"meta": {"status_code": 401, "status": "REQUEST_LIMIT_EXCEEDED",
                    "message": "Too many requests for this app", "more_info": null},
           "data": null})
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    bytes: Vec<u8>,
}

struct Oc {
    app: TestApp,
    key: String,
    secret: String,
    dir: PathBuf,
}

fn test_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("accolade-oc-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn oc_config(dir: &Path) -> Config {
    let mut config = Config::defaults();
    config.opencredit.media_root = dir.join("media");
    config.opencredit.mail.folder = dir.join("mail");
    // A key in memory: a second AppState built from this config must not create a key file.
    config.secrets.key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into();
    config
}

impl Oc {
    async fn new(tier: &str) -> Oc {
        let dir = test_dir();
        Self::with_config(tier, oc_config(&dir), dir).await
    }

    async fn with_config(tier: &str, config: Config, dir: PathBuf) -> Oc {
        let app = TestApp::with_config(config).await;
        let (status, created) = app
            .post(
                "/api/v1/opencredit/apps",
                json!({"name": "Test app", "tier": tier}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        Oc {
            key: created["api_key"].as_str().unwrap().to_string(),
            secret: created["api_secret"].as_str().unwrap().to_string(),
            app,
            dir,
        }
    }

    /// A request with the app's credentials; `form` becomes a form-encoded body.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let body = (!form.is_empty()).then(|| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                s.append_pair(k, v);
            }
            s.finish()
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-Api-Key", &self.key)
            .header("X-Api-Secret", &self.secret);
        if body.is_some() {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        send(&self.app, req).await
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call("GET", uri, &[], &[]).await
    }

    async fn register(&self, email: &str, extra: &[(&str, &str)]) -> Answer {
        let mut form = vec![
            ("email", email),
            ("password", "correct horse battery staple"),
            ("first_name", "Ada"),
            ("last_name", "Lovelace"),
        ];
        form.extend_from_slice(extra);
        self.call("POST", "/v1.1/authenticate/register", &form, &[])
            .await
    }

    async fn login(&self, email: &str) -> Answer {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{email}:correct horse battery staple"));
        self.call(
            "POST",
            "/v1.1/authenticate",
            &[],
            &[("authorization", &format!("Basic {basic}"))],
        )
        .await
    }

    /// Registers (verified when the tier allows it) and logs in; returns (member id, token).
    async fn member(&self, email: &str, extra: &[(&str, &str)]) -> (i64, String) {
        let r = self.register(email, extra).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let t = self.login(email).await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.body);
        (
            r.body["data"]["id"].as_i64().unwrap(),
            t.body["data"]["token"].as_str().unwrap().to_string(),
        )
    }

    fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("mail")) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

async fn send(app: &TestApp, req: Request<Body>) -> Answer {
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        bytes,
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The verification link in the newest message to `email` (mail bodies may be quoted-printable,
/// which wraps long lines with `=\r\n`).
fn link_in(mails: &[String], email: &str) -> String {
    let mail = mails
        .iter()
        .find(|m| m.contains(&format!("To: {email}")))
        .unwrap_or_else(|| panic!("no mail to {email} in {mails:?}"));
    let unwrapped = mail.replace("=\r\n", "").replace("=3D", "=");
    let start = unwrapped
        .find("/v1.1/verify?token=")
        .expect("a verification link");
    let token: String = unwrapped[start + "/v1.1/verify?token=".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    format!("/v1.1/verify?token={token}")
}

/// Opens a verification link like a browser: the page (which changes nothing), then its button.
async fn verify(oc: &Oc, link: &str) -> Answer {
    let page = send(&oc.app, Request::get(link).body(Body::empty()).unwrap()).await;
    let token = link.rsplit('=').next().unwrap();
    if page.status == StatusCode::OK {
        let html = String::from_utf8_lossy(&page.bytes).into_owned();
        assert!(
            html.contains("method=\"post\"") && html.contains(token),
            "{html}"
        );
    }
    let req = Request::post("/v1.1/verify")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap();
    send(&oc.app, req).await
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([x as u8, y as u8, 90, 255])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG whose header declares `side` x `side` pixels (with a valid header checksum) but holds
/// the data of a 1x1 image: a decompression bomb's shape.
fn bomb(side: u32) -> Vec<u8> {
    let mut data = png(1, 1);
    data[16..20].copy_from_slice(&side.to_be_bytes());
    data[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&data[12..29]);
    data[29..33].copy_from_slice(&crc.to_be_bytes());
    data
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Waits for the next clock minute when fewer than `secs` seconds are left in this one: the
/// limits count per clock minute, and a test must not straddle two windows.
pub async fn fresh_minute(secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = 60 - now % 60;
    if left < secs {
        tokio::time::sleep(std::time::Duration::from_secs(left)).await;
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- apps, envelope, rate limits ------------------------------------------------------------

#[tokio::test]
async fn app_credentials_are_required_and_headers_ignore_case() {
    let oc = Oc::new("light").await;
    let none = send(
        &oc.app,
        Request::get("/v1.1/members").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["meta"]["status"], "API_CREDENTIALS_REQUIRED");
    assert_eq!(none.body["meta"]["status_code"], 401);
    assert_eq!(none.body["data"], Value::Null);
    let wrong = send(
        &oc.app,
        Request::get("/v1.1/members")
            .header("X-Api-Key", &oc.key)
            .header("X-Api-Secret", "not-the-secret")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["meta"]["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_API_CREDENTIALS"))
    );
    let lower = send(
        &oc.app,
        Request::get("/v1.1/members")
            .header("x-api-key", &oc.key)
            .header("x-api-secret", &oc.secret)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(lower.status, StatusCode::OK, "{}", lower.body);
    assert_eq!(
        lower.body["meta"],
        json!({"status_code": 200, "status": "OK", "message": "", "more_info": null})
    );
    assert_eq!(lower.body["paging"]["page"], 1);
    assert_eq!(lower.body["paging"]["total_results"], 0);
}

#[tokio::test]
async fn each_tier_allows_n_requests_per_minute_and_throttles_request_n_plus_1() {
    for (tier, n) in [
        ("sandbox", 20),
        ("light", 120),
        ("medium", 240),
        ("heavy", 480),
    ] {
        fresh_minute(20).await;
        let oc = Oc::new(tier).await;
        for i in 1..=n {
            let a = oc.get("/v1.1/members").await;
            assert_eq!(
                a.status,
                StatusCode::OK,
                "{tier}: request {i} of {n}: {}",
                a.body
            );
            assert_eq!(header(&a, "x-ratelimit-limit"), n.to_string());
            assert_eq!(header(&a, "x-ratelimit-remaining"), (n - i).to_string());
        }
        let refused = oc.get("/v1.1/members").await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{tier}: request {}",
            n + 1
        );
        assert_eq!(refused.body, throttled_body(), "{tier}");
        let retry: u64 = header(&refused, "retry-after")
            .parse()
            .expect("Retry-After");
        assert!((1..=60).contains(&retry), "{tier}: Retry-After {retry}");
        assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    }
}

#[tokio::test]
async fn enterprise_apps_are_not_limited() {
    let oc = Oc::new("enterprise").await;
    for i in 0..600 {
        let a = oc.get("/v1.1/members").await;
        assert_eq!(a.status, StatusCode::OK, "request {i}");
        assert_eq!(header(&a, "x-ratelimit-limit"), "", "no limit header");
    }
}

#[tokio::test]
async fn authenticated_requests_are_counted_per_user() {
    fresh_minute(15).await;
    let oc = Oc::new("sandbox").await;
    // Registration and login are unauthenticated calls: 2 of the app's 20 each.
    let (_, ada) = oc.member("ada@example.org", &[]).await;
    let (_, bob) = oc.member("bob@example.org", &[]).await;
    for i in 1..=20 {
        let a = oc.get(&format!("/v1.1/me?access_token={ada}")).await;
        assert_eq!(a.status, StatusCode::OK, "ada request {i}");
    }
    let refused = oc.get(&format!("/v1.1/me?access_token={ada}")).await;
    assert_eq!(refused.body, throttled_body());
    // Bob's count and the app's unauthenticated count are separate.
    assert_eq!(
        oc.get(&format!("/v1.1/me?access_token={bob}")).await.status,
        StatusCode::OK
    );
    assert_eq!(oc.get("/v1.1/members").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_tier_change_applies_to_the_next_request() {
    fresh_minute(15).await;
    let oc = Oc::new("sandbox").await;
    for _ in 0..20 {
        assert_eq!(oc.get("/v1.1/members").await.status, StatusCode::OK);
    }
    assert_eq!(oc.get("/v1.1/members").await.body, throttled_body());
    let (status, app) = oc
        .app
        .post(
            &format!("/api/v1/opencredit/apps/{}/tier", oc.key),
            json!({"tier": "light"}),
        )
        .await;
    assert_eq!(
        (status, app["tier"].as_str()),
        (StatusCode::OK, Some("light")),
        "{app}"
    );
    let next = oc.get("/v1.1/members").await;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(header(&next, "x-ratelimit-limit"), "120");
    let (status, err) = oc
        .app
        .post(
            &format!("/api/v1/opencredit/apps/{}/tier", oc.key),
            json!({"tier": "gold"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_tier"))
    );
}

#[tokio::test]
async fn counts_are_shared_across_instances_through_redis() {
    let Some(_) = redis_reachable().await else {
        return;
    };
    let dir = test_dir();
    let mut config = oc_config(&dir);
    config.opencredit.rate_limit_redis_url = "redis://127.0.0.1:6379/0".into();
    fresh_minute(15).await;
    let first = Oc::with_config("sandbox", config.clone(), dir.clone()).await;
    // A second instance on the same database: the same app, another process's memory.
    let second_state =
        accolade_server::AppState::new(first.app.state.store.clone(), config).unwrap();
    let second = accolade_server::build_app(second_state);
    let on_second = |uri: &str| {
        Request::get(uri)
            .header("X-Api-Key", &first.key)
            .header("X-Api-Secret", &first.secret)
            .body(Body::empty())
            .unwrap()
    };
    for i in 0..10 {
        assert_eq!(
            first.get("/v1.1/members").await.status,
            StatusCode::OK,
            "first {i}"
        );
        let res = second
            .clone()
            .oneshot(on_second("/v1.1/members"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "second {i}");
    }
    assert_eq!(first.get("/v1.1/members").await.body, throttled_body());
    let res = second
        .clone()
        .oneshot(on_second("/v1.1/members"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn redis_reachable() -> Option<()> {
    let client = redis::Client::open("redis://127.0.0.1:6379/0").ok()?;
    match client.get_multiplexed_async_connection().await {
        Ok(_) => Some(()),
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("Redis is not reachable and CI=true: {e}");
            }
            eprintln!("SKIPPED: Redis not reachable: {e}");
            None
        }
    }
}

// ---- members, organizations, behalf_of ------------------------------------------------------

#[tokio::test]
async fn registering_an_organization_creates_two_members_and_acts_for_it_by_default() {
    let oc = Oc::new("enterprise").await;
    let reg = oc
        .register(
            "ada@example.org",
            &[
                ("is_organization", "1"),
                ("organization_name", "Engines Ltd"),
                ("verified", "1"),
            ],
        )
        .await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
    let user_id = reg.body["data"]["id"].as_i64().unwrap();
    let org = &reg.body["data"]["organization"];
    let org_id = org["id"].as_i64().unwrap();
    assert_eq!(
        (
            org["is_organization"].as_bool(),
            org["display_name"].as_str()
        ),
        (Some(true), Some("Engines Ltd"))
    );
    assert_ne!(user_id, org_id);
    let token = oc.login("ada@example.org").await.body["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = oc.get(&format!("/v1.1/me?access_token={token}")).await;
    assert_eq!(me.body["data"]["manages"], json!([org_id]));
    let image = b64(&png(64, 64));
    let create = |behalf: Option<String>| {
        let (oc, token, image) = (&oc, token.clone(), image.clone());
        async move {
            let mut form = vec![
                ("access_token", token.as_str()),
                ("title", "Badge"),
                ("attachment", image.as_str()),
            ];
            let behalf = behalf.unwrap_or_default();
            if !behalf.is_empty() {
                form.push(("behalf_of", &behalf));
            }
            oc.call("POST", "/v1.1/badges", &form, &[]).await
        }
    };
    // Default: on behalf of the managed organization.
    let by_default = create(None).await;
    let id = by_default.body["data"].as_i64().expect("the new badge id");
    assert_eq!(
        oc.get(&format!("/v1.1/badges/{id}")).await.body["data"]["member_id"],
        org_id
    );
    // behalf_of the user itself.
    let as_user = create(Some(user_id.to_string())).await;
    let id = as_user.body["data"].as_i64().unwrap();
    assert_eq!(
        oc.get(&format!("/v1.1/badges/{id}")).await.body["data"]["member_id"],
        user_id
    );
    // behalf_of a member the user does not manage.
    let (other, _) = oc.member("bob@example.org", &[("verified", "1")]).await;
    let refused = create(Some(other.to_string())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["meta"]["status"], "BEHALF_OF_NOT_ALLOWED");
    let created = oc
        .get(&format!("/v1.1/me/badges/created?access_token={token}"))
        .await;
    assert_eq!(
        created.body["paging"]["total_results"], 1,
        "the org's badges"
    );
    // A plain user without organizations acts as itself.
    let solo = oc.register("solo@example.org", &[("verified", "1")]).await;
    assert_eq!(solo.body["data"]["organization"], Value::Null);
}

#[tokio::test]
async fn members_are_found_by_id_email_and_name() {
    let oc = Oc::new("enterprise").await;
    let (ada, _) = oc
        .member(
            "ada@example.org",
            &[("verified", "1"), ("display_name", "Countess Ada")],
        )
        .await;
    let got = oc.get(&format!("/v1.1/members/{ada}")).await;
    assert_eq!(got.body["data"]["display_name"], "Countess Ada");
    assert_eq!(
        got.body["data"].get("email"),
        None,
        "public profiles hide the address"
    );
    assert_eq!(header(&got, "cache-control"), "private, max-age=60");
    let by_email = oc.get("/v1.1/members?email=ADA@example.org").await;
    assert_eq!(by_email.body["data"][0]["id"], ada);
    let by_name = oc.get("/v1.1/members?query=countess").await;
    assert_eq!(by_name.body["paging"]["total_results"], 1);
    assert_eq!(
        oc.get("/v1.1/members/999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        oc.get("/v1.1/members/abc").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn registration_input_is_validated() {
    let oc = Oc::new("enterprise").await;
    let bad_email = oc.register("not-an-address", &[]).await;
    assert_eq!(bad_email.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_email.body["meta"]["more_info"]["email"],
        "is not a valid email address"
    );
    let weak = oc
        .call(
            "POST",
            "/v1.1/authenticate/register",
            &[
                ("email", "a@example.org"),
                ("password", "short"),
                ("first_name", "A"),
                ("last_name", "B"),
            ],
            &[],
        )
        .await;
    assert_eq!(weak.body["meta"]["status"], "WEAK_PASSWORD");
    let html = oc
        .register("h@example.org", &[("display_name", "<b>Bold</b>")])
        .await;
    assert_eq!(html.body["meta"]["status"], "HTML_NOT_ALLOWED");
    assert_eq!(
        oc.register("ada@example.org", &[]).await.status,
        StatusCode::OK
    );
    let again = oc.register("ADA@example.org", &[]).await;
    assert_eq!(
        (again.status, again.body["meta"]["status"].as_str()),
        (StatusCode::CONFLICT, Some("EMAIL_TAKEN"))
    );
}

// ---- email verification -----------------------------------------------------------------------

#[tokio::test]
async fn a_new_address_is_verified_through_the_mailed_link() {
    let oc = Oc::new("sandbox").await;
    let (_, token) = oc.member("ada@example.org", &[]).await;
    let me = oc.get(&format!("/v1.1/me?access_token={token}")).await;
    assert_eq!(
        me.body["data"]["emails"],
        json!([{"email": "ada@example.org", "verified": false}])
    );
    let link = link_in(&oc.mails(), "ada@example.org");
    // Opening the link (as a mail scanner would) verifies nothing; the page's button does.
    let opened = send(&oc.app, Request::get(&link).body(Body::empty()).unwrap()).await;
    assert_eq!(opened.status, StatusCode::OK);
    let me = oc.get(&format!("/v1.1/me?access_token={token}")).await;
    assert_eq!(me.body["data"]["emails"][0]["verified"], false);
    let page = verify(&oc, &link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page.bytes).contains("is verified"));
    let me = oc.get(&format!("/v1.1/me?access_token={token}")).await;
    assert_eq!(me.body["data"]["emails"][0]["verified"], true);
    let again = verify(&oc, &link).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "a link works once");
    // An additional address needs its own verification.
    let added = oc
        .call(
            "POST",
            "/v1.1/me/emails",
            &[("access_token", &token), ("email", "ada@work.example.org")],
            &[],
        )
        .await;
    assert_eq!(
        added.body["data"],
        json!({"email": "ada@work.example.org", "verified": false})
    );
    let me = oc.get(&format!("/v1.1/me?access_token={token}")).await;
    let work = me.body["data"]["emails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["email"] == "ada@work.example.org")
        .cloned();
    assert_eq!(work.unwrap()["verified"], false);
    let link = link_in(&oc.mails(), "ada@work.example.org");
    assert_eq!(verify(&oc, &link).await.status, StatusCode::OK);
}

#[tokio::test]
async fn only_partner_and_enterprise_apps_create_verified_accounts() {
    for (tier, allowed) in [
        ("sandbox", false),
        ("light", false),
        ("medium", false),
        ("heavy", true),
        ("enterprise", true),
    ] {
        let oc = Oc::new(tier).await;
        let r = oc.register("ada@example.org", &[("verified", "1")]).await;
        if allowed {
            assert_eq!(r.status, StatusCode::OK, "{tier}: {}", r.body);
            assert_eq!(r.body["data"]["verified"], true);
            assert!(
                oc.mails().is_empty(),
                "{tier}: no mail for a verified account"
            );
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{tier}");
            assert_eq!(r.body["meta"]["status"], "VERIFIED_ACCOUNTS_NOT_ALLOWED");
            let (s, v) = oc.app.get("/api/v1/openapi.json").await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    }
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message and hands its data over.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(buf) = data.as_mut() {
                        if line == "." {
                            tx.send(data.take().unwrap()).ok();
                            write.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            buf.push_str(&line);
                            buf.push_str("\r\n");
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn verification_mail_goes_through_smtp_when_configured() {
    let (port, mut inbox) = smtp_sink().await;
    let dir = test_dir();
    let mut config = oc_config(&dir);
    config.opencredit.mail.transport = "smtp".into();
    config.opencredit.mail.smtp_url = format!("smtp://127.0.0.1:{port}");
    config.validate().unwrap();
    let oc = Oc::with_config("light", config, dir).await;
    assert_eq!(
        oc.register("ada@example.org", &[]).await.status,
        StatusCode::OK
    );
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), inbox.recv())
        .await
        .expect("a message within 10 s")
        .unwrap();
    assert!(mail.contains("To: ada@example.org"), "{mail}");
    let link = link_in(&[mail], "ada@example.org");
    assert_eq!(verify(&oc, &link).await.status, StatusCode::OK);
    assert!(oc.mails().is_empty(), "nothing written to the mail folder");
}

// ---- tokens --------------------------------------------------------------------------------------

#[tokio::test]
async fn authenticate_and_refresh_issue_cacheable_tokens() {
    let oc = Oc::new("light").await;
    assert_eq!(
        oc.register("ada@example.org", &[]).await.status,
        StatusCode::OK
    );
    let t = oc.login("ada@example.org").await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(header(&t, "cache-control"), "private, max-age=86400");
    let token = t.body["data"]["token"].as_str().unwrap();
    let refresh_token = t.body["data"]["refresh_token"].as_str().unwrap();
    let wrong = oc
        .call(
            "POST",
            "/v1.1/authenticate",
            &[],
            &[(
                "authorization",
                &format!("Basic {}", b64(b"ada@example.org:wrong password!")),
            )],
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["meta"]["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_CREDENTIALS"))
    );
    // The refresh token is not an access token.
    let misuse = oc
        .get(&format!("/v1.1/me?access_token={refresh_token}"))
        .await;
    assert_eq!(misuse.body["meta"]["status"], "INVALID_TOKEN");
    let r = oc
        .call(
            "POST",
            "/v1.1/authenticate/refresh",
            &[("refresh_token", refresh_token)],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = r.body["data"]["token"].as_str().unwrap();
    assert_ne!(fresh, token);
    assert_eq!(r.body["data"]["refresh_token"], refresh_token);
    let me = oc.get(&format!("/v1.1/me?access_token={fresh}")).await;
    assert_eq!(me.body["data"]["email"], "ada@example.org");
    let bad = oc.get("/v1.1/me?access_token=0000").await;
    assert_eq!(
        (bad.status, bad.body["meta"]["status"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_TOKEN"))
    );
    let none = oc.get("/v1.1/me").await;
    assert_eq!(none.body["meta"]["status"], "TOKEN_REQUIRED");
    // Tokens belong to the app that obtained them.
    let other = Oc::with_config("light", oc_config(&oc.dir), oc.dir.clone()).await;
    let foreign = other.get(&format!("/v1.1/me?access_token={token}")).await;
    assert_eq!(foreign.body["meta"]["status"], "INVALID_TOKEN");
}

// ---- badges: rich text, images, cache headers -----------------------------------------------

async fn badge_with(oc: &Oc, token: &str, fields: &[(&str, &str)]) -> Answer {
    let image = b64(&png(40, 40));
    let mut form = vec![
        ("access_token", token),
        ("title", "Rich"),
        ("attachment", image.as_str()),
    ];
    form.extend_from_slice(fields);
    oc.call("POST", "/v1.1/badges", &form, &[]).await
}

#[tokio::test]
async fn allowed_tags_are_kept_and_returned_only_with_x_allow_html_1() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let cases = [
        ("<b>bold</b>", "bold"),
        ("<i>it</i>", "it"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<p>para</p>", "para"),
        ("a<br>b", "a\nb"),
        (r#"<a href="https://example.org/x">link</a>"#, "link"),
    ];
    for (html, text) in cases {
        for field in ["description", "criteria", "evidence_prompt"] {
            let created = badge_with(&oc, &token, &[(field, html)]).await;
            assert_eq!(
                created.status,
                StatusCode::OK,
                "{field} {html}: {}",
                created.body
            );
            let id = created.body["data"].as_i64().unwrap();
            let uri = format!("/v1.1/badges/{id}");
            let with = oc.call("GET", &uri, &[], &[("X-Allow-Html", "1")]).await;
            assert_eq!(
                with.body["data"][field], html,
                "{field} with X-Allow-Html: 1"
            );
            let zero = oc.call("GET", &uri, &[], &[("X-Allow-Html", "0")]).await;
            assert_eq!(
                zero.body["data"][field], text,
                "{field} with X-Allow-Html: 0"
            );
            let absent = oc.get(&uri).await;
            assert_eq!(
                absent.body["data"][field], text,
                "{field} without the header"
            );
            assert_eq!(
                header(&absent, "cache-control"),
                "no-store",
                "badge data is not cached"
            );
        }
    }
}

#[tokio::test]
async fn forbidden_tags_and_attributes_are_refused_by_name() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    for (html, named) in [
        ("<script>alert(1)</script>", "script"),
        ("<img src=x onerror=alert(1)>", "img"),
        ("<div>x</div>", "div"),
        ("<iframe src=//evil></iframe>", "iframe"),
        ("<style>p{}</style>", "style"),
        ("<h1>t</h1>", "h1"),
        (r#"<a href="/" onclick="x()">x</a>"#, "a.onclick"),
        (r#"<b style="color:red">x</b>"#, "b.style"),
        (r#"<a href="javascript:alert(1)">x</a>"#, "a.href"),
    ] {
        let r = badge_with(&oc, &token, &[("description", html)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{html}");
        assert_eq!(r.body["meta"]["status"], "ILLEGAL_HTML", "{html}");
        let message = r.body["meta"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{html}: {message}");
        assert_eq!(r.body["data"], Value::Null);
    }
    // Plain fields accept no markup at all.
    for field in ["title", "short_description"] {
        let r = badge_with(&oc, &token, &[(field, "<b>x</b>")]).await;
        assert_eq!(
            (r.status, r.body["meta"]["status"].as_str()),
            (StatusCode::BAD_REQUEST, Some("HTML_NOT_ALLOWED")),
            "{field}"
        );
    }
    let (_, total) = oc
        .app
        .state
        .store
        .oc_list_badges(None, accolade_store::Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(total, 0, "nothing was stored");
}

#[tokio::test]
async fn an_over_long_rich_field_is_cut_and_its_tags_closed() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let long = format!("<p><b>{}</b> and more</p>", "word ".repeat(150));
    assert!(long.chars().count() > 500);
    let r = badge_with(&oc, &token, &[("criteria", &long)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = r.body["data"].as_i64().unwrap();
    let got = oc
        .call(
            "GET",
            &format!("/v1.1/badges/{id}"),
            &[],
            &[("x-allow-html", "1")],
        )
        .await;
    let stored = got.body["data"]["criteria"].as_str().unwrap();
    assert!(
        stored.chars().count() <= 500,
        "{} chars",
        stored.chars().count()
    );
    assert!(stored.starts_with("<p><b>word word"), "{stored}");
    assert!(
        stored.ends_with("</b></p>"),
        "unclosed tags are closed: {stored}"
    );
    // A plain field over its maximum is refused instead.
    let title = "t".repeat(129);
    let r = badge_with(&oc, &token, &[("title", &title)]).await;
    assert_eq!(r.body["meta"]["status"], "TOO_LONG");
}

async fn assert_every_size_code(oc: &Oc, image_url: &str) {
    let path = &image_url[image_url.find("/v1.1/").unwrap()..];
    let original = send(&oc.app, Request::get(path).body(Body::empty()).unwrap()).await;
    assert_eq!(original.status, StatusCode::OK, "{path}");
    assert_eq!(header(&original, "content-type"), "image/png");
    for (code, side) in [
        (1, 36),
        (3, 55),
        (5, 72),
        (7, 90),
        (9, 100),
        (11, 120),
        (13, 180),
        (15, 280),
        (17, 600),
    ] {
        let sized = path.replace(".png", &format!("_{code}.png"));
        let a = send(&oc.app, Request::get(&sized).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::OK, "{sized}");
        let img = image::load_from_memory(&a.bytes).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (side, side),
            "size code _{code}"
        );
    }
    let missing = path.replace(".png", "_19.png");
    assert_eq!(
        send(&oc.app, Request::get(&missing).body(Body::empty()).unwrap())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_base64_upload_is_served_at_every_badge_size_code() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let data_uri = format!("data:image/png;base64,{}", b64(&png(300, 200)));
    let r = oc
        .call(
            "POST",
            "/v1.1/badges",
            &[
                ("access_token", &token),
                ("title", "B64"),
                ("attachment", &data_uri),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = oc.get(&format!("/v1.1/badges/{}", r.body["data"])).await;
    let url = got.body["data"]["image_url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://"), "{url}");
    assert_every_size_code(&oc, &url).await;
}

#[tokio::test]
async fn a_multipart_upload_is_served_at_every_badge_size_code() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let boundary = "XaccoladeX";
    let mut body = Vec::new();
    for (name, value) in [
        ("access_token", token.as_str()),
        ("title", "Multipart"),
        ("description", "<p>hi</p>"),
    ] {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"b.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
    body.extend_from_slice(&png(120, 120));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post("/v1.1/badges")
        .header("X-Api-Key", &oc.key)
        .header("X-Api-Secret", &oc.secret)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let r = send(&oc.app, req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = oc.get(&format!("/v1.1/badges/{}", r.body["data"])).await;
    assert_eq!(got.body["data"]["description"], "hi");
    assert_every_size_code(&oc, got.body["data"]["image_url"].as_str().unwrap()).await;
}

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let bomb = bomb(60_000);
    let big = vec![b'A'; 3 * 1024 * 1024];
    for (attachment, status) in [
        (b64(b"just some text, not an image"), "NOT_AN_IMAGE"),
        (b64(&bomb), "IMAGE_TOO_LARGE"),
        (String::from_utf8(big).unwrap(), "IMAGE_TOO_LARGE"),
        ("%%%not base64%%%".to_string(), "INVALID_BASE64"),
        (b64(&png(30, 30)[..40]), "CORRUPT_IMAGE"),
    ] {
        let r = oc
            .call(
                "POST",
                "/v1.1/badges",
                &[
                    ("access_token", &token),
                    ("title", "Bad"),
                    ("attachment", &attachment),
                ],
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{status}: {}", r.body);
        assert_eq!(r.body["meta"]["status"], status);
        assert!(r.body["meta"]["more_info"]["attachment"].is_string());
    }
    let missing = oc
        .call(
            "POST",
            "/v1.1/badges",
            &[("access_token", &token), ("title", "No image")],
            &[],
        )
        .await;
    assert_eq!(
        missing.body["meta"]["more_info"]["attachment"],
        "an image is required (multipart file or base64 string)"
    );
    let (_, total) = oc
        .app
        .state
        .store
        .oc_list_badges(None, accolade_store::Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(total, 0);
    let stored = std::fs::read_dir(oc.dir.join("media/badges"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no image files were written");
}

#[tokio::test]
async fn badges_are_updated_listed_and_deleted_by_their_owner_only() {
    let oc = Oc::new("enterprise").await;
    let (ada, ada_token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let (_, bob_token) = oc.member("bob@example.org", &[("verified", "1")]).await;
    let id = badge_with(
        &oc,
        &ada_token,
        &[("categories", "math, science"), ("expires_in", "3600")],
    )
    .await
    .body["data"]
        .as_i64()
        .unwrap();
    let uri = format!("/v1.1/badges/{id}");
    let b = oc.get(&uri).await.body["data"].clone();
    assert_eq!(
        (
            b["categories"].clone(),
            b["expires_in"].clone(),
            b["member_id"].as_i64()
        ),
        (json!(["math", "science"]), json!(3600), Some(ada))
    );
    let by_bob = oc
        .call(
            "POST",
            &uri,
            &[("access_token", &bob_token), ("title", "Mine now")],
            &[],
        )
        .await;
    assert_eq!(
        (by_bob.status, by_bob.body["meta"]["status"].as_str()),
        (StatusCode::FORBIDDEN, Some("NOT_OWNER"))
    );
    let updated = oc
        .call(
            "POST",
            &uri,
            &[("access_token", &ada_token), ("title", "Renamed")],
            &[],
        )
        .await;
    assert_eq!(updated.body["data"], id);
    let b = oc.get(&uri).await.body["data"].clone();
    assert_eq!(
        (b["title"].as_str(), b["expires_in"].as_i64()),
        (Some("Renamed"), Some(3600)),
        "other fields kept"
    );
    let list = oc
        .get(&format!("/v1.1/badges?member_id={ada}&per_page=5"))
        .await;
    assert_eq!(
        (
            list.body["paging"]["total_results"].as_u64(),
            list.body["paging"]["per_page"].as_u64()
        ),
        (Some(1), Some(5))
    );
    let expiry = oc
        .call(
            "POST",
            &uri,
            &[("access_token", &ada_token), ("expires_in", "-1")],
            &[],
        )
        .await;
    assert_eq!(expiry.body["meta"]["status"], "INVALID_PARAMETER");
    assert_eq!(
        oc.call(
            "DELETE",
            &format!("{uri}?access_token={bob_token}"),
            &[],
            &[]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        oc.call(
            "DELETE",
            &format!("{uri}?access_token={ada_token}"),
            &[],
            &[]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(oc.get(&uri).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn json_bodies_and_query_parameters_are_accepted_too() {
    let oc = Oc::new("enterprise").await;
    let req = Request::post("/v1.1/authenticate/register?first_name=Ada")
        .header("X-Api-Key", &oc.key)
        .header("X-Api-Secret", &oc.secret)
        .header("content-type", "application/json")
        .body(Body::from(json!({"email": "ada@example.org", "password": "correct horse battery staple", "last_name": "L", "verified": true}).to_string()))
        .unwrap();
    let r = send(&oc.app, req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["first_name"], "Ada");
    assert_eq!(r.body["data"]["verified"], true);
    for (body, status) in [("{not json", "INVALID_BODY"), ("[1,2]", "INVALID_BODY")] {
        let req = Request::post("/v1.1/authenticate/register")
            .header("X-Api-Key", &oc.key)
            .header("X-Api-Secret", &oc.secret)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let r = send(&oc.app, req).await;
        assert_eq!(
            (r.status, r.body["meta"]["status"].as_str()),
            (StatusCode::BAD_REQUEST, Some(status)),
            "{body}"
        );
    }
    let wrong_type = oc.get("/v1.1/members?page=abc").await;
    assert_eq!(
        wrong_type.body["meta"]["more_info"]["page"],
        "must be an integer"
    );
    let unknown = oc.get("/v1.1/nothing-here").await;
    assert_eq!(
        (unknown.status, unknown.body["meta"]["status_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );
    let huge = vec![b'x'; 11 * 1024 * 1024];
    let req = Request::post("/v1.1/authenticate/register")
        .header("X-Api-Key", &oc.key)
        .header("X-Api-Secret", &oc.secret)
        .body(Body::from(huge))
        .unwrap();
    assert_eq!(
        send(&oc.app, req).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

// ---- giving credit ----------------------------------------------------------------------------

#[tokio::test]
async fn unverified_members_can_neither_give_nor_accept() {
    let oc = Oc::new("light").await;
    let (_, giver) = oc.member("giver@example.org", &[]).await;
    let (ada, ada_token) = oc.member("ada@example.org", &[]).await;
    let image = b64(&png(40, 40));
    let badge = oc
        .call(
            "POST",
            "/v1.1/badges",
            &[
                ("access_token", &giver),
                ("title", "Credit"),
                ("attachment", &image),
            ],
            &[],
        )
        .await
        .body["data"]
        .as_i64()
        .unwrap()
        .to_string();
    let form = [
        ("access_token", giver.as_str()),
        ("badge_id", badge.as_str()),
        ("email", "ada@example.org"),
        ("testimonial", "Great work"),
    ];
    let give = || oc.call("POST", "/v1.1/member_badges", &form, &[]);
    let refused = give().await;
    assert_eq!(
        (refused.status, refused.body["meta"]["status"].as_str()),
        (StatusCode::FORBIDDEN, Some("EMAIL_NOT_VERIFIED")),
        "{}",
        refused.body
    );
    let link = link_in(&oc.mails(), "giver@example.org");
    assert_eq!(verify(&oc, &link).await.status, StatusCode::OK);
    let given = give().await;
    assert_eq!(given.status, StatusCode::OK, "{}", given.body);
    let mb = given.body["data"].as_i64().unwrap();
    // Through an unverified address the recipient neither sees nor accepts it.
    let mine = oc
        .get(&format!("/v1.1/me/badges?access_token={ada_token}"))
        .await;
    assert_eq!(mine.body["paging"]["total_results"], 0);
    let accept = format!("/v1.1/member_badges/{mb}/accept");
    let early = oc
        .call("POST", &accept, &[("access_token", &ada_token)], &[])
        .await;
    assert_eq!(
        (early.status, early.body["meta"]["status"].as_str()),
        (StatusCode::FORBIDDEN, Some("EMAIL_NOT_VERIFIED"))
    );
    let public = oc.get(&format!("/v1.1/members/{ada}/badges")).await;
    assert_eq!(
        public.body["paging"]["total_results"], 0,
        "pending badges are not public"
    );
    let link = link_in(&oc.mails(), "ada@example.org");
    assert_eq!(verify(&oc, &link).await.status, StatusCode::OK);
    let mine = oc
        .get(&format!("/v1.1/me/badges?access_token={ada_token}"))
        .await;
    assert_eq!(mine.body["data"][0]["status"], "pending");
    assert_eq!(mine.body["data"][0]["badge"]["title"], "Credit");
    // Only the recipient decides.
    let by_giver = oc
        .call("POST", &accept, &[("access_token", &giver)], &[])
        .await;
    assert_eq!(by_giver.body["meta"]["status"], "NOT_RECIPIENT");
    let ok = oc
        .call("POST", &accept, &[("access_token", &ada_token)], &[])
        .await;
    assert_eq!(ok.body["data"], json!({"id": mb, "status": "accepted"}));
    let got = oc
        .get(&format!(
            "/v1.1/member_badges/{mb}?access_token={ada_token}"
        ))
        .await;
    assert_eq!(got.body["data"]["testimonial"], "Great work");
    assert_eq!(
        header(&got, "cache-control"),
        "private, max-age=3600",
        "accepted member badges: private"
    );
    let public = oc.get(&format!("/v1.1/members/{ada}/badges")).await;
    assert_eq!(public.body["data"][0]["id"], mb);
    assert_eq!(
        public.body["data"][0]["email"],
        Value::Null,
        "no address in the public list"
    );
    assert_eq!(
        public.body["data"][0]["email"],
        Value::Null,
        "no address in the public list"
    );
    assert_eq!(
        got.body["data"]["email"], "ada@example.org",
        "the recipient sees it"
    );
    assert_eq!(header(&public, "cache-control"), "private, max-age=3600");
    // A stranger does not see it; the recipient can delete it.
    let (_, stranger) = oc.member("eve@example.org", &[]).await;
    assert_eq!(
        oc.get(&format!("/v1.1/member_badges/{mb}?access_token={stranger}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let deleted = oc
        .call(
            "DELETE",
            &format!("/v1.1/member_badges/{mb}?access_token={ada_token}"),
            &[],
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        oc.get(&format!(
            "/v1.1/member_badges/{mb}?access_token={ada_token}"
        ))
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_recipient_rejects_and_a_given_badge_survives_its_definition() {
    let oc = Oc::new("enterprise").await;
    let (_, giver) = oc.member("giver@example.org", &[("verified", "1")]).await;
    let (_, ada) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let badge = badge_with(&oc, &giver, &[]).await.body["data"]
        .as_i64()
        .unwrap()
        .to_string();
    let given = oc
        .call(
            "POST",
            "/v1.1/member_badges",
            &[
                ("access_token", &giver),
                ("badge_id", &badge),
                ("email", "ADA@example.org"),
                ("notify", "1"),
            ],
            &[],
        )
        .await;
    let mb = given.body["data"].as_i64().unwrap();
    assert!(oc
        .mails()
        .iter()
        .any(|m| m.contains("To: ada@example.org") && m.contains("You received a badge")));
    let r = oc
        .call(
            "POST",
            &format!("/v1.1/member_badges/{mb}/reject"),
            &[("access_token", &ada)],
            &[],
        )
        .await;
    assert_eq!(r.body["data"]["status"], "rejected");
    let refused = oc
        .call(
            "DELETE",
            &format!("/v1.1/badges/{badge}?access_token={giver}"),
            &[],
            &[],
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["meta"]["status"].as_str()),
        (StatusCode::CONFLICT, Some("BADGE_GIVEN"))
    );
    let bad = oc
        .call(
            "POST",
            "/v1.1/member_badges",
            &[
                ("access_token", &giver),
                ("badge_id", "999999"),
                ("email", "x@example.org"),
            ],
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    let status = oc
        .get(&format!("/v1.1/me/badges?status=bogus&access_token={ada}"))
        .await;
    assert_eq!(status.body["meta"]["status"], "INVALID_PARAMETER");
}

// ---- the award bridge ---------------------------------------------------------------------------

#[tokio::test]
async fn awards_of_a_linked_local_template_become_member_badges() {
    let oc = Oc::new("enterprise").await;
    let template = oc
        .app
        .template("Demo passed", &[("A", rules_passed(DEMO))])
        .await;
    let (_, school) = oc
        .member(
            "school@example.org",
            &[
                ("verified", "1"),
                ("is_organization", "1"),
                ("organization_name", "School"),
            ],
        )
        .await;
    let linked = badge_with(&oc, &school, &[("template_id", &template)]).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    let badge = linked.body["data"].as_i64().unwrap();
    assert_eq!(
        oc.get(&format!("/v1.1/badges/{badge}")).await.body["data"]["template_id"],
        template.as_str()
    );
    let unknown = badge_with(&oc, &school, &[("template_id", "no-such-template")]).await;
    assert_eq!(unknown.body["meta"]["status"], "UNKNOWN_TEMPLATE");
    // The learner passes the course: the rules engine awards the template...
    let r = oc
        .app
        .send(json!([passing("ev-1", "ada", DEMO, true)]))
        .await;
    assert_eq!(r["accepted"], 1, "{r}");
    // ...and the bridge gives the member badge to the learner's address.
    assert_eq!(
        accolade_server::opencredit::awards::run_once(&oc.app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        accolade_server::opencredit::awards::run_once(&oc.app.state)
            .await
            .unwrap(),
        0
    );
    let (_, ada) = oc.member("ada@example.com", &[("verified", "1")]).await;
    let mine = oc.get(&format!("/v1.1/me/badges?access_token={ada}")).await;
    assert_eq!(mine.body["paging"]["total_results"], 1, "{}", mine.body);
    let mb = mine.body["data"][0]["id"].as_i64().unwrap();
    assert_eq!(mine.body["data"][0]["badge"]["id"], badge);
    assert!(mine.body["data"][0]["award_id"].is_string());
    let accepted = oc
        .call(
            "POST",
            &format!("/v1.1/member_badges/{mb}/accept"),
            &[("access_token", &ada)],
            &[],
        )
        .await;
    assert_eq!(accepted.body["data"]["status"], "accepted");
    // Revoking the award (by hand here) makes the bridge withdraw the member badge.
    let award = oc.app.awards("ada").await[0]["id"]
        .as_str()
        .map(str::to_string);
    let award = award.expect("award id");
    let (status, _) = oc
        .app
        .post(
            &format!("/api/v1/awards/{award}/revoke"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        accolade_server::opencredit::awards::run_once(&oc.app.state)
            .await
            .unwrap(),
        1
    );
    let mine = oc.get(&format!("/v1.1/me/badges?access_token={ada}")).await;
    assert_eq!(mine.body["paging"]["total_results"], 0);
}

// ---- S3-compatible image storage ---------------------------------------------------------------

type Objects = std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<String, Vec<u8>>>>;

/// A minimal S3-compatible server on 127.0.0.1 (path-style PUT and GET of objects; signatures
/// are not checked).
async fn fake_s3() -> (String, Objects) {
    use axum::extract::{Path as UrlPath, State};
    use axum::response::IntoResponse;
    let objects: Objects = Default::default();
    async fn put(
        State(o): State<Objects>,
        UrlPath(key): UrlPath<String>,
        body: axum::body::Bytes,
    ) -> impl IntoResponse {
        o.lock().insert(key, body.to_vec());
        (StatusCode::OK, [("etag", "\"0123\"")])
    }
    async fn get(
        State(o): State<Objects>,
        UrlPath(key): UrlPath<String>,
    ) -> axum::response::Response {
        match o.lock().get(&key) {
            Some(data) => (
                StatusCode::OK,
                [
                    ("etag", "\"0123\"".to_string()),
                    ("last-modified", "Sun, 29 Nov 2026 10:00:00 GMT".to_string()),
                    ("content-length", data.len().to_string()),
                ],
                data.clone(),
            )
                .into_response(),
            None => (
                StatusCode::NOT_FOUND,
                "<Error><Code>NoSuchKey</Code></Error>",
            )
                .into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/{*key}", axum::routing::put(put).get(get))
        .with_state(objects.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (format!("http://{addr}"), objects)
}

#[tokio::test]
async fn images_can_live_in_an_s3_compatible_bucket() {
    let (endpoint, objects) = fake_s3().await;
    let dir = test_dir();
    let mut config = oc_config(&dir);
    config.opencredit.s3.bucket = "badges-bucket".into();
    config.opencredit.s3.endpoint = endpoint;
    config.opencredit.s3.access_key_id = "test-key".into();
    config.opencredit.s3.secret_access_key = "test-secret".into();
    config.validate().unwrap();
    assert!(
        !format!("{:?}", config.opencredit.s3).contains("test-secret"),
        "the secret is not in Debug output"
    );
    let oc = Oc::with_config("enterprise", config, dir).await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let created = badge_with(&oc, &token, &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let stored: Vec<String> = objects.lock().keys().cloned().collect();
    assert_eq!(
        stored.len(),
        10,
        "the original and 9 size codes: {stored:?}"
    );
    assert!(
        stored
            .iter()
            .all(|k| k.starts_with("badges-bucket/accolade/badges/b")),
        "{stored:?}"
    );
    assert!(
        !oc.dir.join("media").exists(),
        "nothing written to media_root"
    );
    let got = oc
        .get(&format!("/v1.1/badges/{}", created.body["data"]))
        .await;
    assert_every_size_code(&oc, got.body["data"]["image_url"].as_str().unwrap()).await;
}

#[tokio::test]
async fn an_avatar_is_served_at_every_avatar_size_code() {
    let oc = Oc::new("enterprise").await;
    let (id, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let r = oc
        .call(
            "POST",
            "/v1.1/me/avatar",
            &[
                ("access_token", &token),
                ("attachment", &b64(&png(200, 150))),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let url = r.body["data"]["avatar_url"].as_str().unwrap().to_string();
    assert_eq!(
        oc.get(&format!("/v1.1/members/{id}")).await.body["data"]["avatar_url"],
        url.as_str()
    );
    let path = &url[url.find("/v1.1/").unwrap()..];
    assert!(path.starts_with("/v1.1/media/avatars/a"), "{path}");
    for (code, side) in [
        (1, 28),
        (3, 40),
        (5, 55),
        (7, 60),
        (9, 70),
        (11, 80),
        (13, 120),
        (15, 138),
        (17, 140),
        (19, 170),
    ] {
        let sized = path.replace(".png", &format!("_{code}.png"));
        let a = send(&oc.app, Request::get(&sized).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::OK, "{sized}");
        let img = image::load_from_memory(&a.bytes).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (side, side),
            "avatar size code _{code}"
        );
    }
    let missing = oc
        .call("POST", "/v1.1/me/avatar", &[("access_token", &token)], &[])
        .await;
    assert_eq!(missing.body["meta"]["status"], "MISSING_PARAMETER");
}

// ---- the CLI ------------------------------------------------------------------------------------

#[test]
fn the_cli_creates_apps_changes_tiers_and_refuses_unknown_tiers() {
    let dir = test_dir();
    let db = format!("sqlite://{}/cli.db", dir.display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"))
            .args(args)
            .args(["--database-url", &db])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = run(&[
        "opencredit",
        "create-app",
        "--name",
        "LMS plugin",
        "--tier",
        "light",
    ]);
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("X-Api-Key: "))
        .expect("the key")
        .to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("X-Api-Secret: "))
        .expect("the secret")
        .to_string();
    assert!(key.starts_with("ak_") && secret.len() == 64, "{out}");
    assert!(err.contains("shown once"), "{err}");
    let (ok, out, _) = run(&["opencredit", "set-tier", &key, "heavy"]);
    assert!(ok && out.contains("now on tier heavy"), "{out}");
    let (ok, out, _) = run(&["opencredit", "list-apps"]);
    assert!(
        ok && out.contains(&key) && out.contains("heavy") && !out.contains(&secret),
        "{out}"
    );
    let (ok, _, err) = run(&["opencredit", "create-app", "--name", "x", "--tier", "gold"]);
    assert!(!ok && err.contains("unknown tier"), "{err}");
    let (ok, _, err) = run(&["opencredit", "set-tier", "ak_missing", "light"]);
    assert!(!ok, "{err}");
}

// ---- findings of the review -------------------------------------------------------------------

#[tokio::test]
async fn an_unverified_claim_on_an_address_grants_nothing() {
    let oc = Oc::new("enterprise").await;
    let (_, giver) = oc.member("giver@example.org", &[("verified", "1")]).await;
    let (_, mallory) = oc.member("mallory@example.org", &[("verified", "1")]).await;
    // Mallory claims the victim's address before the victim registers.
    let claim = oc
        .call(
            "POST",
            "/v1.1/me/emails",
            &[("access_token", &mallory), ("email", "victim@corp.example")],
            &[],
        )
        .await;
    assert_eq!(claim.status, StatusCode::OK);
    let badge = badge_with(&oc, &giver, &[]).await.body["data"]
        .as_i64()
        .unwrap()
        .to_string();
    let form = [
        ("access_token", giver.as_str()),
        ("badge_id", badge.as_str()),
        ("email", "victim@corp.example"),
    ];
    let mb = oc
        .call("POST", "/v1.1/member_badges", &form, &[])
        .await
        .body["data"]
        .as_i64()
        .unwrap();
    let listed = oc
        .get(&format!("/v1.1/me/badges?access_token={mallory}"))
        .await;
    assert_eq!(listed.body["paging"]["total_results"], 0);
    assert_eq!(
        oc.get(&format!("/v1.1/member_badges/{mb}?access_token={mallory}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reject = oc
        .call(
            "POST",
            &format!("/v1.1/member_badges/{mb}/reject"),
            &[("access_token", &mallory)],
            &[],
        )
        .await;
    assert_eq!(reject.body["meta"]["status"], "EMAIL_NOT_VERIFIED");
    let delete = oc
        .call(
            "DELETE",
            &format!("/v1.1/member_badges/{mb}?access_token={mallory}"),
            &[],
            &[],
        )
        .await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    assert_eq!(
        oc.get(&format!("/v1.1/member_badges/{mb}?access_token={giver}"))
            .await
            .body["data"]["status"],
        "pending"
    );
}

#[tokio::test]
async fn escaped_markup_never_comes_back_as_a_tag() {
    let oc = Oc::new("enterprise").await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let r = badge_with(
        &oc,
        &token,
        &[("description", "&lt;img src=x onerror=alert(1)&gt;")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = oc.get(&format!("/v1.1/badges/{}", r.body["data"])).await;
    let text = got.body["data"]["description"].as_str().unwrap();
    assert!(!text.contains("<img"), "{text}");
}

#[tokio::test]
async fn passwords_keep_their_spaces_and_huge_pages_are_refused() {
    let oc = Oc::new("enterprise").await;
    let password = "  a passphrase with spaces  ";
    let r = oc
        .call(
            "POST",
            "/v1.1/authenticate/register",
            &[
                ("email", "ada@example.org"),
                ("password", password),
                ("first_name", "A"),
                ("last_name", "L"),
            ],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let basic = b64(format!("ada@example.org:{password}").as_bytes());
    let t = oc
        .call(
            "POST",
            "/v1.1/authenticate",
            &[],
            &[("authorization", &format!("Basic {basic}"))],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let huge = oc
        .get("/v1.1/badges?page=9223372036854775807&per_page=2")
        .await;
    assert_eq!(
        (huge.status, huge.body["meta"]["more_info"]["page"].as_str()),
        (StatusCode::BAD_REQUEST, Some("is too large"))
    );
}

#[tokio::test]
async fn only_enterprise_apps_link_badges_to_templates() {
    let oc = Oc::new("heavy").await;
    let template = oc
        .app
        .template("Linked", &[("A", rules_passed(DEMO))])
        .await;
    let (_, token) = oc.member("ada@example.org", &[("verified", "1")]).await;
    let r = badge_with(&oc, &token, &[("template_id", &template)]).await;
    assert_eq!(
        (r.status, r.body["meta"]["status"].as_str()),
        (StatusCode::FORBIDDEN, Some("TEMPLATE_LINK_NOT_ALLOWED"))
    );
}

#[tokio::test]
async fn a_new_link_replaces_a_lost_one() {
    let oc = Oc::new("light").await;
    let (_, token) = oc.member("ada@example.org", &[]).await;
    let first = link_in(&oc.mails(), "ada@example.org");
    let resend = oc
        .call(
            "POST",
            "/v1.1/me/emails/resend",
            &[("access_token", &token), ("email", "ADA@example.org")],
            &[],
        )
        .await;
    assert_eq!(resend.status, StatusCode::OK, "{}", resend.body);
    let links: Vec<String> = oc
        .mails()
        .iter()
        .map(|m| link_in(std::slice::from_ref(m), "ada@example.org"))
        .collect();
    assert_eq!(links.len(), 2, "two messages");
    let second = links
        .into_iter()
        .find(|l| *l != first)
        .expect("a different link");
    assert_eq!(
        verify(&oc, &first).await.status,
        StatusCode::NOT_FOUND,
        "the old link is dead"
    );
    assert_eq!(verify(&oc, &second).await.status, StatusCode::OK);
    let again = oc
        .call(
            "POST",
            "/v1.1/me/emails/resend",
            &[("access_token", &token), ("email", "ada@example.org")],
            &[],
        )
        .await;
    assert_eq!(again.body["meta"]["status"], "NOT_AN_UNVERIFIED_ADDRESS");
    let foreign = oc
        .call(
            "POST",
            "/v1.1/me/emails/resend",
            &[("access_token", &token), ("email", "someone@example.org")],
            &[],
        )
        .await;
    assert_eq!(foreign.body["meta"]["status"], "NOT_AN_UNVERIFIED_ADDRESS");
}

#[tokio::test]
async fn routing_errors_under_v1_1_keep_the_envelope() {
    let oc = Oc::new("enterprise").await;
    let wrong_method = oc.call("PUT", "/v1.1/badges", &[], &[]).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.body["meta"]["status"], "METHOD_NOT_ALLOWED");
    assert_eq!(wrong_method.body["meta"]["status_code"], 405);
    assert_eq!(wrong_method.body["data"], Value::Null);
    // The admin API keeps its own error shape.
    let (status, admin) = oc.app.request("PUT", "/api/v1/opencredit/apps", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(admin.get("meta").is_none(), "{admin}");
}

#[tokio::test]
async fn doctor_checks_the_image_store_and_the_mail_transport() {
    use accolade_server::cli::Level;
    let oc = Oc::new("light").await;
    let report = accolade_server::cli::checks(&oc.app.state).await.unwrap();
    let line = |prefix: &str| report.iter().find(|(_, l)| l.starts_with(prefix)).cloned();
    assert!(
        matches!(line("Open Credit images"), Some((Level::Ok, _))),
        "{report:?}"
    );
    assert!(
        matches!(line("Open Credit mail"), Some((Level::Ok, _))),
        "{report:?}"
    );
    // An SMTP server that is not there is a failure.
    let dir = test_dir();
    let mut config = oc_config(&dir);
    config.opencredit.mail.transport = "smtp".into();
    config.opencredit.mail.smtp_url = format!("smtp://127.0.0.1:{}", free_port());
    let oc = Oc::with_config("light", config, dir).await;
    let report = accolade_server::cli::checks(&oc.app.state).await.unwrap();
    let mail = report
        .iter()
        .find(|(_, l)| l.starts_with("Open Credit mail"))
        .cloned();
    assert!(matches!(mail, Some((Level::Fail, _))), "{report:?}");
}

/// Issue 16 row 2: with no public address configured, verification links took their host from
/// the request's `Host` header, so a forged one mailed a link to the attacker's host. Links now
/// start with `http.public_base_url` (or the listen address) whatever the request says.
#[tokio::test]
async fn verification_links_never_take_their_host_from_the_request() {
    for (configured, expected) in [
        ("", "http://127.0.0.1:8080/v1.1/verify?token="),
        (
            "https://badges.example.org/",
            "https://badges.example.org/v1.1/verify?token=",
        ),
    ] {
        let dir = test_dir();
        let mut config = oc_config(&dir);
        config.http.public_base_url = configured.into();
        let oc = Oc::with_config("light", config, dir).await;
        let reg = oc
            .call(
                "POST",
                "/v1.1/authenticate/register",
                &[
                    ("email", "eve@example.org"),
                    ("password", "correct horse battery staple"),
                    ("first_name", "Eve"),
                    ("last_name", "Forger"),
                ],
                &[
                    ("host", "attacker.example"),
                    ("x-forwarded-host", "attacker.example"),
                ],
            )
            .await;
        assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
        let mails = oc.mails();
        let mail = mails
            .iter()
            .find(|m| m.contains("To: eve@example.org"))
            .expect("a verification mail")
            .replace("=\r\n", "")
            .replace("=3D", "=");
        assert!(!mail.contains("attacker.example"), "{mail}");
        assert!(mail.contains(expected), "{configured:?}: {mail}");
    }
}

/// Issue 16 row 7: `/v1.1/authenticate` answered 200 wrong passwords and then the right one.
/// Each address now gets 10 attempts per clock minute (across apps and, with Redis, instances);
/// further ones are refused before any password is checked.
#[tokio::test]
async fn password_guessing_is_cut_off_per_address() {
    let oc = Oc::new("enterprise").await;
    let reg = oc.register("gus@example.org", &[("verified", "1")]).await;
    assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
    fresh_minute(20).await;
    let basic =
        base64::engine::general_purpose::STANDARD.encode("gus@example.org:not the password");
    for i in 0..10 {
        let wrong = oc
            .call(
                "POST",
                "/v1.1/authenticate",
                &[],
                &[("authorization", &format!("Basic {basic}"))],
            )
            .await;
        assert_eq!(
            wrong.body["meta"]["status"], "INVALID_CREDENTIALS",
            "attempt {i}: {}",
            wrong.body
        );
    }
    let right = oc.login("gus@example.org").await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED, "{}", right.body);
    assert_eq!(right.body["meta"]["status"], "REQUEST_LIMIT_EXCEEDED");
    // Another address is not affected.
    let other = oc.register("ida@example.org", &[("verified", "1")]).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(oc.login("ida@example.org").await.status, StatusCode::OK);
}
