//! Sends one delivery: builds the JSON body, signs it, POSTs it with a per-request timeout and no
//! redirects, and classifies the answer.
//!
//! The body is serialized once and those exact bytes are both signed and sent, so a receiver
//! verifies the signature over the raw body it received.

use std::time::{Duration, Instant};

use accolade_store::ClaimedDelivery;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::json;

use super::signature;

/// Longest error text kept in the delivery log.
pub const MAX_ERROR_LEN: usize = 500;
/// How much of a failing receiver's answer is read into the error text.
const MAX_BODY_SNIPPET: usize = 200;

pub const USER_AGENT: &str = concat!("Accolade-Webhooks/", env!("CARGO_PKG_VERSION"));

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub response_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver says this endpoint will never take it.
    Gone,
    /// Anything else (other statuses, network errors, timeouts): try again later; `retry_after`
    /// is the receiver's `Retry-After` on 429 and 503.
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// The request body: `{"id", "type", "time", "data"}`.
pub fn body(d: &ClaimedDelivery) -> Vec<u8> {
    let v = json!({
        "id": d.delivery.event_id,
        "type": d.delivery.event_type,
        "time": d.event_time.to_rfc3339_opts(SecondsFormat::Micros, true),
        "data": d.payload,
    });
    v.to_string().into_bytes()
}

/// A client that never follows redirects (a 3xx is an answer, and following it could send the
/// signed event somewhere the operator did not subscribe) and gives up after `timeout`.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()?)
}

/// Posts `d` signed with `secret` at time `now`.
pub async fn send(
    client: &reqwest::Client,
    d: &ClaimedDelivery,
    secret: &str,
    now: DateTime<Utc>,
) -> Sent {
    let body = body(d);
    let t = now.timestamp();
    let started = Instant::now();
    let result = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("accolade-webhook-id", &d.delivery.webhook_id)
        .header("accolade-event-id", &d.delivery.event_id)
        .header("accolade-delivery-id", &d.delivery.id)
        .header("accolade-timestamp", t.to_string())
        .header("accolade-signature", signature::header(secret, t, &body))
        .body(body)
        .send()
        .await;
    let elapsed = |s: &Instant| s.elapsed().as_millis().min(i64::MAX as u128) as i64;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            return Sent {
                outcome: Outcome::Failed {
                    error: describe(e),
                    retry_after: None,
                },
                http_status: None,
                response_ms: elapsed(&started),
            }
        }
    };
    let status = response.status();
    let outcome = if status.is_success() {
        Outcome::Delivered
    } else if status == reqwest::StatusCode::GONE {
        Outcome::Gone
    } else {
        let retry_after = match status.as_u16() {
            429 | 503 => retry_after(response.headers(), Utc::now()),
            _ => None,
        };
        let snippet = snippet(&mut response).await;
        Outcome::Failed {
            error: truncate(&format!("HTTP {}{snippet}", status.as_u16())),
            retry_after,
        }
    };
    Sent {
        outcome,
        http_status: Some(status.as_u16()),
        response_ms: elapsed(&started),
    }
}

/// The error without the URL: a subscriber's URL can carry a token (Slack-style hook paths), and
/// delivery errors end up in logs and the API.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    truncate(&text)
}

/// The first bytes of a failing answer, as `: <text>` (empty when there is none).
async fn snippet(response: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_BODY_SNIPPET {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(MAX_BODY_SNIPPET);
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = headers
        .get(RETRY_AFTER)
        .and_then(|v: &HeaderValue| v.to_str().ok())?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

/// At most [`MAX_ERROR_LEN`] bytes, cut at a character boundary.
pub fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_LEN {
        return s.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Thu, 01 Jan 2026 00:10:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(600)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn errors_are_truncated_on_a_character_boundary() {
        let long = "é".repeat(400);
        let t = truncate(&long);
        assert!(t.len() <= MAX_ERROR_LEN + "…".len());
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }
}
