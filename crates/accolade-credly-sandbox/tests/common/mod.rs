//! Shared helpers for the integration tests: a client bound to one sandbox,
//! Basic-auth header variants and a local webhook receiver.
#![allow(dead_code)]

use accolade_credly_sandbox::{RunningSandbox, Sandbox, Seed, DEMO_ORG_ID, DEMO_TOKEN};
use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub const ORG: &str = DEMO_ORG_ID;
pub const TOKEN: &str = DEMO_TOKEN;
/// Demo template ids by state.
pub const ACTIVE_1: &str = "acc01ade-7e70-4000-8000-000000000001";
pub const ACTIVE_2: &str = "acc01ade-7e70-4000-8000-000000000002";
pub const DRAFT: &str = "acc01ade-7e70-4000-8000-000000000005";
pub const ARCHIVED: &str = "acc01ade-7e70-4000-8000-000000000006";

pub fn basic(raw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

pub struct Client {
    pub running: RunningSandbox,
    pub http: reqwest::Client,
}

impl Client {
    pub async fn demo() -> Client {
        Client::with_seed(Seed::demo()).await
    }

    pub async fn with_seed(seed: Seed) -> Client {
        let running = Sandbox::start(seed).await.expect("sandbox starts");
        Client {
            running,
            http: reqwest::Client::new(),
        }
    }

    pub fn sb(&self) -> &Sandbox {
        &self.running.sandbox
    }

    /// `api_base_url + "organizations/{ORG}/" + rest`.
    pub fn org_url(&self, rest: &str) -> String {
        format!("{}organizations/{ORG}/{rest}", self.running.api_base_url)
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .header("Authorization", basic(&format!("{TOKEN}:")))
    }

    pub async fn get_json(&self, url: &str) -> (StatusCode, Value) {
        let r = self.get(url).send().await.expect("request");
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn issue(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.org_url("badges"))
            .header("Authorization", basic(&format!("{TOKEN}:")))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn issue_ok(&self, email: &str, template: &str) -> Value {
        let (s, v) = self.issue(issue_body(email, template)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["data"].clone()
    }

    pub async fn revoke(&self, id: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.org_url(&format!("badges/{id}/revoke")))
            .header("Authorization", basic(&format!("{TOKEN}:")))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

pub fn issue_body(email: &str, template: &str) -> Value {
    json!({
        "recipient_email": email,
        "issued_to_first_name": "Ada",
        "issued_to_last_name": "Lovelace",
        "badge_template_id": template,
        "issued_at": "2025-03-04 09:41:00 -0500",
    })
}

/// A local webhook receiver: records every POST (content type + JSON body) and
/// answers the scripted statuses first, then 200.
pub struct Receiver {
    pub url: String,
    pub rx: mpsc::UnboundedReceiver<(String, Value)>,
    pub script: Arc<Mutex<VecDeque<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let s2 = script.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let tx = tx.clone();
                    let script = s2.clone();
                    async move {
                        let ctype = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = tx.send((ctype, v));
                        let code = script.lock().unwrap().pop_front().unwrap_or(200);
                        StatusCode::from_u16(code).unwrap()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            rx,
            script,
            task,
        }
    }

    /// Next received POST, or panic after 5 s.
    pub async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(std::time::Duration::from_secs(5), self.rx.recv())
            .await
            .expect("webhook within 5 s")
            .expect("receiver open")
    }
}
