//! Template expiry and criteria (issue 18) through the released binary, as an operator sets them:
//! `expires_after` by the admin API, by rules as code and on the admin UI's template page; an
//! award's `expires_at` (fixed when made) in its JSON and as its Open Badges credential's
//! `validUntil`; `expired` once it has passed, with exactly one `badge.expired` webhook
//! delivery; Credly issuing with `expires_at` (against the sandbox); the operator's criteria text
//! as the achievement's narrative; and bad values refused with their code, changing nothing.

use std::time::Duration;

use accolade_openbadges::{keys, proof};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{rules_passed, DEMO, PASSING};
use crate::process::{eventually, Operator, Served};

const EXPIRED: &str = "org.openedx.learning.badge.expired.v1";

/// A course passing event for `user`, earned now (so that short expiries lie ahead).
fn passing_now(id: &str, user: &str) -> Value {
    json!([{
        "id": id,
        "event_type": PASSING,
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        "source": "openedx/lms/web",
        "minorversion": 0,
        "data": {"course_passing_status": {
            "course": {"course_key": DEMO, "display_name": "", "end": null, "start": null},
            "is_passing": true,
            "user": {"id": 42, "is_active": true,
                     "pii": {"email": format!("{user}@example.com"), "name": "Ada Lovelace", "username": user}}
        }}
    }])
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// A served binary with a token; `env` is added to the operator's environment.
async fn started(name: &str, env: &[(&str, &str)]) -> (Operator, Served) {
    let mut op = Operator::new(name);
    for (k, v) in env {
        op = op.set(k, *v);
    }
    let token = op.token();
    let served = op.serve(&[]).await.with_token(&token);
    (op, served)
}

/// A local template for passing the demo course, active, made through the API with `extra`
/// fields in its creation body; its id.
async fn template(s: &Served, name: &str, extra: Value) -> String {
    let mut body = json!({"name": name});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, t) = s.api("POST", "/templates", Some(body)).await;
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let (status, r) = s
        .api(
            "POST",
            &format!("/templates/{id}/requirements"),
            Some(json!({"event_type": PASSING, "rules": rules_passed(DEMO)})),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let (status, _) = s
        .api("POST", &format!("/templates/{id}/activate"), None)
        .await;
    assert_eq!(status, 200);
    id
}

async fn send(s: &Served, events: Value) {
    let (status, body) = s.api("POST", "/events", Some(events)).await;
    assert_eq!(status, 202, "{body}");
}

/// The learner's award of the template.
async fn award_of(s: &Served, template_id: &str, learner: &str) -> Value {
    let (status, body) = s
        .api(
            "GET",
            &format!("/awards?learner={learner}&template={template_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let found: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["template"] == template_id)
        .cloned()
        .collect();
    assert_eq!(found.len(), 1, "{body}");
    found[0].clone()
}

async fn get_json(s: &Served, url: &str) -> Value {
    let r = s.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// Checks a credential's proof with the key its verification method names in the served DID
/// document.
async fn verify(s: &Served, credential: &Value) {
    let method = credential["proof"]["verificationMethod"].as_str().unwrap();
    let did = get_json(s, &s.url("/.well-known/did.json")).await;
    let vm = did["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == method)
        .unwrap_or_else(|| panic!("{method} not in {did}"));
    let key = keys::parse_public_multibase(vm["publicKeyMultibase"].as_str().unwrap()).unwrap();
    proof::verify(credential, &key).expect("the proof verifies");
}

/// The template's fields as the API shows them.
async fn template_body(s: &Served, id: &str) -> Value {
    let (status, t) = s.api("GET", &format!("/templates/{id}"), None).await;
    assert_eq!(status, 200, "{t}");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_and_criteria_set_by_the_api_reach_the_award_and_its_credential() {
    let (_op, s) = started("expiry-api", &[]).await;
    // Bad values are refused with their code, and nothing is made.
    for bad in ["1 year", "0d", "365", "12w", "1.5d", " 30d", "1000000d"] {
        let (status, body) = s
            .api(
                "POST",
                "/templates",
                Some(json!({"name": "Refused", "expires_after": bad})),
            )
            .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["code"], "invalid_expires_after", "{bad:?}: {body}");
    }
    let (status, body) = s
        .api(
            "POST",
            "/templates",
            Some(json!({"name": "Refused", "criteria": "x".repeat(10_001)})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_criteria"))
    );
    let (_, list) = s.api("GET", "/templates", None).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    let criteria = "Pass the **final exam** of the demo course.\n\n- with at least 80%";
    let id = template(
        &s,
        "Yearly",
        json!({"expires_after": "30d", "criteria": criteria}),
    )
    .await;
    let t = template_body(&s, &id).await;
    assert_eq!(
        (t["expires_after"].as_str(), t["criteria"].as_str()),
        (Some("30d"), Some(criteria))
    );

    // A bad change is refused and changes nothing.
    for (field, bad, code) in [
        ("expires_after", json!("0s"), "invalid_expires_after"),
        ("expires_after", json!("30 d"), "invalid_expires_after"),
        ("criteria", json!("y".repeat(10_001)), "invalid_criteria"),
    ] {
        let (status, body) = s
            .api(
                "PATCH",
                &format!("/templates/{id}"),
                Some(json!({field: bad, "name": "Renamed"})),
            )
            .await;
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{body}");
    }
    assert_eq!(template_body(&s, &id).await, t, "nothing changed");
    let (status, body) = s
        .api(
            "PATCH",
            &format!("/templates/{id}"),
            Some(json!({"expires_after": "365d"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_after"], "365d");
    assert_eq!(body["criteria"], criteria, "an absent field stays");

    send(&s, passing_now("api-1", "ada")).await;
    let award = eventually(Duration::from_secs(20), "a signed credential", || async {
        let a = award_of(&s, &id, "ada").await;
        a["credential_url"].is_string().then_some(a)
    })
    .await;
    let earned = time(&award["earned_at"]);
    let expires_at = time(&award["expires_at"]);
    assert_eq!(expires_at, earned + chrono::Duration::days(365));
    assert_eq!(award["expired"], false);

    let credential = get_json(&s, award["credential_url"].as_str().unwrap()).await;
    verify(&s, &credential).await;
    assert_eq!(
        credential["validUntil"],
        expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "validUntil is the award's expiry"
    );
    let achievement = &credential["credentialSubject"]["achievement"];
    assert_eq!(achievement["criteria"]["narrative"], criteria);
    let served = get_json(&s, &s.url(&format!("/ob/v3/achievements/{id}"))).await;
    assert_eq!(served["criteria"]["narrative"], criteria);

    // Cleared: later awards never expire; the award made keeps its expiry. Without criteria the
    // narrative is written from the requirements again.
    let (status, body) = s
        .api(
            "PATCH",
            &format!("/templates/{id}"),
            Some(json!({"expires_after": null, "criteria": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["expires_after"].clone(), body["criteria"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        time(&award_of(&s, &id, "ada").await["expires_at"]),
        expires_at
    );
    send(&s, passing_now("api-2", "bob")).await;
    let bob = eventually(Duration::from_secs(20), "bob's credential", || async {
        let a = award_of(&s, &id, "bob").await;
        a["credential_url"].is_string().then_some(a)
    })
    .await;
    assert_eq!(
        (bob["expires_at"].clone(), bob["expired"].clone()),
        (Value::Null, json!(false))
    );
    let credential = get_json(&s, bob["credential_url"].as_str().unwrap()).await;
    assert!(credential.get("validUntil").is_none(), "{credential}");
    let served = get_json(&s, &s.url(&format!("/ob/v3/achievements/{id}"))).await;
    assert!(
        served["criteria"]["narrative"]
            .as_str()
            .unwrap()
            .starts_with("Earned by meeting all of the following"),
        "{served}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_as_code_sets_expiry_and_criteria() {
    let op = Operator::new("expiry-rules");
    let rules = |expires: &str| {
        format!(
            "[[template]]\nname = \"Coded\"\nactive = true\n{expires}\ncriteria = \"\"\"\nPass the demo course.\n\nAny grade will do.\n\"\"\"\n\
             [[template.requirement]]\nkey = \"demo\"\nevent_type = \"{PASSING}\"\n\
             rules = [ {{ path = \"course.course_key\", op = \"=\", value = \"{DEMO}\" }} ]\n"
        )
    };
    op.write_file("rules.toml", &rules("expires_after = \"90d\""));
    op.ok(&["apply", "-f", "rules.toml"]);
    // A bad value stops the file before anything is written.
    op.write_file("bad.toml", &rules("expires_after = \"90 days\""));
    let out = op.run(&["apply", "-f", "bad.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expires_after") && err.contains("90 days"),
        "{err}"
    );
    // A change is shown by a dry run, then applied.
    op.write_file("changed.toml", &rules("expires_after = \"12h\""));
    let dry = op.ok(&["apply", "-f", "changed.toml", "--dry-run"]);
    assert!(dry.contains("expires_after 90d -> 12h"), "{dry}");
    let same = op.ok(&["apply", "-f", "rules.toml", "--dry-run"]);
    assert!(same.contains("unchanged"), "{same}");

    let token = op.token();
    let s = op.serve(&[]).await.with_token(&token);
    let (_, list) = s.api("GET", "/templates", None).await;
    let t = &list["data"][0];
    assert_eq!(t["name"], "Coded");
    assert_eq!(t["expires_after"], "90d", "the bad file changed nothing");
    assert_eq!(
        t["criteria"],
        "Pass the demo course.\n\nAny grade will do.\n"
    );
    let id = t["id"].as_str().unwrap().to_string();
    send(&s, passing_now("rules-1", "ada")).await;
    let award = eventually(Duration::from_secs(10), "the award", || async {
        let (_, body) = s.api("GET", "/awards?learner=ada", None).await;
        body["data"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(
        time(&award["expires_at"]),
        time(&award["earned_at"]) + chrono::Duration::days(90)
    );
    drop(s);
    op.ok(&["apply", "-f", "changed.toml"]);
    let s = op.serve(&[]).await.with_token(&token);
    assert_eq!(template_body(&s, &id).await["expires_after"], "12h");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_award_expires_and_one_badge_expired_webhook_is_delivered() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let (op, s) = started(
        "expiry-hook",
        &[
            ("ACCOLADE_WORKER__EXPIRY_CHECK_INTERVAL", "200ms"),
            ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50"),
            ("ACCOLADE_WEBHOOKS__ALLOWED_DESTINATIONS", "127.0.0.1"),
        ],
    )
    .await;
    let (status, hook) = s
        .api(
            "POST",
            "/webhooks",
            Some(json!({"url": format!("{}/hook", receiver.uri()), "event_types": [EXPIRED]})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    // The smallest unit: seconds.
    let id = template(&s, "Fleeting", json!({"expires_after": "3s"})).await;
    send(&s, passing_now("hook-ada", "ada")).await;
    send(&s, passing_now("hook-bob", "bob")).await;
    let ada = award_of(&s, &id, "ada").await;
    let expires_at = time(&ada["expires_at"]);
    assert_eq!(
        expires_at,
        time(&ada["earned_at"]) + chrono::Duration::seconds(3)
    );
    if Utc::now() < expires_at {
        assert_eq!(ada["expired"], false, "{ada}");
    }
    // Bob's award is revoked before it expires: revoked, never expired.
    let bob = award_of(&s, &id, "bob").await;
    let (status, body) = s
        .api(
            "POST",
            &format!("/awards/{}/revoke", bob["id"].as_str().unwrap()),
            Some(json!({"reason": "withdrawn"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let expired = eventually(Duration::from_secs(20), "the award to expire", || async {
        let a = award_of(&s, &id, "ada").await;
        (a["expired"] == true).then_some(a)
    })
    .await;
    assert!(Utc::now() >= expires_at);
    assert_eq!(expired["state"], "awarded", "the state is unchanged");
    let delivered = eventually(
        Duration::from_secs(30),
        "a badge.expired delivery",
        || async {
            let got = receiver.received_requests().await.unwrap();
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    // Several more sweeps and worker passes: still exactly one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.received_requests().await.unwrap();
    assert_eq!(got.len(), 1, "exactly one delivery: {got:?}");
    assert_eq!(delivered.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], EXPIRED);
    assert_eq!(body["data"]["uuid"], ada["id"]);
    assert_eq!(body["data"]["template"]["uuid"], json!(id));
    assert_eq!(body["data"]["user"]["pii"]["username"], "ada");
    assert_eq!(
        time(&body["time"]),
        expires_at,
        "the event's time is the expiry"
    );
    let bob = award_of(&s, &id, "bob").await;
    assert_eq!(
        (bob["state"].as_str(), bob["expired"].as_bool()),
        (Some("revoked"), Some(false))
    );

    // The admin UI's award list says so.
    op.create_admin("ops");
    let session = s.admin_session("ops").await;
    let (status, page) = s.admin_page(&session, "/admin/awards?learner=ada").await;
    assert_eq!(status, 200);
    assert!(page.contains("expired 20"), "{page}");
    let (_, page) = s
        .admin_page(
            &session,
            &format!("/admin/awards/{}", ada["id"].as_str().unwrap()),
        )
        .await;
    assert!(page.contains("expired 20"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credly_issuing_sends_the_awards_expiry() {
    let id = crate::credly::tid(7);
    let sb = crate::credly::sandbox(&[(id.as_str(), "active")]).await;
    let (_op, s) = started(
        "expiry-credly",
        &[
            ("ACCOLADE_CREDLY__API_BASE_URL", sb.api_base_url.as_str()),
            ("ACCOLADE_CREDLY__RATE_LIMIT_PER_SECOND", "0"),
            ("ACCOLADE_WORKER__POLL_INTERVAL_MS", "50"),
        ],
    )
    .await;
    let (status, body) = s
        .api(
            "POST",
            "/credly/organizations",
            Some(json!({"uuid": crate::credly::ORG, "api_key": crate::credly::KEY})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .api(
            "POST",
            &format!("/credly/organizations/{}/sync", crate::credly::ORG),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .api(
            "PATCH",
            &format!("/templates/{id}"),
            Some(json!({"expires_after": "90d"})),
        )
        .await;
    assert_eq!(
        (status, body["expires_after"].as_str()),
        (200, Some("90d")),
        "{body}"
    );
    let (status, body) = s
        .api(
            "POST",
            &format!("/templates/{id}/requirements"),
            Some(json!({"event_type": PASSING, "rules": rules_passed(DEMO)})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = s
        .api("POST", &format!("/templates/{id}/activate"), None)
        .await;
    assert_eq!(status, 200);

    send(&s, passing_now("credly-1", "ada")).await;
    let badge = eventually(Duration::from_secs(20), "the badge on Credly", || async {
        sb.sandbox.badges(crate::credly::ORG).into_iter().next()
    })
    .await;
    let award = award_of(&s, &id, "ada").await;
    let expires_at = time(&award["expires_at"]);
    assert_eq!(
        expires_at,
        time(&award["earned_at"]) + chrono::Duration::days(90)
    );
    // Credly takes times to the second (the `issued_at` form).
    assert_eq!(
        time(&badge["expires_at"]),
        expires_at.trunc_subsecs(0),
        "{badge}"
    );
    assert_eq!(badge["badge_template"]["id"], json!(id));
}

/// The CSRF token of the first form of an admin page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

async fn post_form(s: &Served, session: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = s
        .http
        .post(s.url(path))
        .header("cookie", session)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_template_page_shows_and_changes_expiry_and_criteria() {
    let (op, s) = started("expiry-ui", &[]).await;
    let id = template(&s, "Paged", json!({})).await;
    op.create_admin("ops");
    let session = s.admin_session("ops").await;
    let page_path = format!("/admin/templates/{id}");
    let (status, page) = s.admin_page(&session, &page_path).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"expires-after\">never</dd>"), "{page}");
    let csrf = csrf_of(&page);

    // Without the CSRF token nothing changes.
    let expiry = format!("{page_path}/expiry");
    let (status, _) = post_form(&s, &session, &expiry, &[("expires_after", "30d")]).await;
    assert!(status >= 400, "{status}");
    assert_eq!(template_body(&s, &id).await["expires_after"], Value::Null);

    let (status, page) = post_form(
        &s,
        &session,
        &expiry,
        &[("csrf", &csrf), ("expires_after", "30d")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"expires-after\">30d after they are earned</dd>"),
        "{page}"
    );
    assert_eq!(template_body(&s, &id).await["expires_after"], "30d");

    let (status, page) = post_form(
        &s,
        &session,
        &expiry,
        &[("csrf", &csrf), ("expires_after", "30 days")],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("invalid expires_after"), "{page}");
    assert_eq!(
        template_body(&s, &id).await["expires_after"],
        "30d",
        "unchanged"
    );

    let criteria_path = format!("{page_path}/criteria");
    let (status, page) = post_form(
        &s,
        &session,
        &criteria_path,
        &[
            ("csrf", &csrf),
            ("criteria", "Attend <b>all</b> sessions.\r\n\r\nPass."),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Attend &#60;b&#62;all&#60;/b&#62; sessions.") && !page.contains("<b>all"),
        "shown escaped: {page}"
    );
    assert_eq!(
        template_body(&s, &id).await["criteria"],
        "Attend <b>all</b> sessions.\n\nPass."
    );
    let long = "z".repeat(10_001);
    let (status, _) = post_form(
        &s,
        &session,
        &criteria_path,
        &[("csrf", &csrf), ("criteria", &long)],
    )
    .await;
    assert_eq!(status, 422);

    // Emptied: never expires, criteria written from the requirements.
    let (status, page) = post_form(
        &s,
        &session,
        &expiry,
        &[("csrf", &csrf), ("expires_after", "")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"expires-after\">never</dd>"), "{page}");
    let (status, _) = post_form(
        &s,
        &session,
        &criteria_path,
        &[("csrf", &csrf), ("criteria", "")],
    )
    .await;
    assert_eq!(status, 200);
    let t = template_body(&s, &id).await;
    assert_eq!(
        (t["expires_after"].clone(), t["criteria"].clone()),
        (Value::Null, Value::Null)
    );
}
