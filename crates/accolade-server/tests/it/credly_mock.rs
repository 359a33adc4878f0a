//! What the Credly OAuth, rotation and key tests share: events of distinct earners, counting the
//! requests a wiremock Credly received, and an active Credly template awarded for passing DEMO
//! (in-process, or synced and activated on a running binary).

use axum::http::StatusCode;
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::helpers::{rules_passed, TestApp, DEMO, PASSING};

/// A passing event of `user`, whose LMS id is derived from the name: Credly (and the sandbox)
/// refuse a second badge of a template for the same earner id.
pub fn passing(id: &str, user: &str, course: &str, is_passing: bool) -> Value {
    let mut e = crate::helpers::passing(id, user, course, is_passing);
    let lms_id = user
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    e["data"]["course_passing_status"]["user"]["id"] = json!(lms_id % 1_000_000);
    e
}

/// Requests the mock received for `path_`.
pub async fn hits(server: &MockServer, path_: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == path_)
        .count()
}

/// An active Credly template of organization `org`, named `name`, awarded for passing DEMO;
/// returns its id.
pub async fn demo_template(app: &TestApp, org: &str, name: &str) -> String {
    let t = app
        .state
        .store
        .create_template(accolade_store::NewTemplate {
            organization_id: Some(org.into()),
            ..accolade_store::testkit::support::credly_template(name, false)
        })
        .await
        .unwrap();
    let (s, r) = app
        .post(
            &format!("/api/v1/templates/{}/requirements", t.id),
            json!({"event_type": PASSING, "rules": rules_passed(DEMO)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = app
        .post(&format!("/api/v1/templates/{}/activate", t.id), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    t.id
}

/// On a running server whose organization `org` is added: syncs its templates (one new), gives
/// `template` the requirement "passed DEMO" and activates it.
pub async fn sync_and_activate(server: &crate::process::Served, org: &str, template: &str) {
    let (s, sum) = server
        .api("POST", &format!("/credly/organizations/{org}/sync"), None)
        .await;
    assert_eq!((s, sum["created"].as_u64()), (200, Some(1)), "{sum}");
    let (s, r) = server
        .api(
            "POST",
            &format!("/templates/{template}/requirements"),
            Some(json!({"event_type": PASSING, "rules": rules_passed(DEMO)})),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = server
        .api("POST", &format!("/templates/{template}/activate"), None)
        .await;
    assert_eq!(s, 200, "{r}");
}
