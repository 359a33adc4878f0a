//! Sends one delivery: builds the JSON body, signs it, POSTs it with a per-request timeout and no
//! redirects, to an allowed destination only (`destination`), and classifies the answer.
//!
//! The body is serialized once and those exact bytes are both signed and sent, so a receiver
//! verifies the signature over the raw body it received.
//!
//! The error recorded for a failed attempt is our own summary ("HTTP 500 Internal Server Error
//! from the subscriber", "connection refused", "timed out", ...), never text from the
//! receiver: the delivery log is shown in the API and the admin UI, and a receiver's answer
//! (or what a refused internal service would have said) must not travel back through it.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accolade_store::ClaimedDelivery;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::json;

use super::destination::{Destinations, GuardedResolver, Refused, Unresolved, REFUSED};
use super::signature;

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
/// signed event somewhere the operator did not subscribe), connects only to addresses that are
/// `allowed` (its resolver drops the others; no proxy from the environment, which would resolve
/// names out of its sight) and gives up after `timeout`.
pub fn client(timeout: Duration, allowed: Arc<Destinations>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(allowed)))
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .build()?)
}

/// Posts `d` signed with `secret` at time `now`, unless its URL's host is an address (or a
/// `localhost` name) that is not `allowed`; names are checked by the client's resolver.
pub async fn send(
    client: &reqwest::Client,
    allowed: &Destinations,
    d: &ClaimedDelivery,
    secret: &str,
    now: DateTime<Utc>,
) -> Sent {
    if allowed.refuses_url(&d.url) {
        return Sent {
            outcome: Outcome::Failed {
                error: REFUSED.to_string(),
                retry_after: None,
            },
            http_status: None,
            response_ms: 0,
        };
    }
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
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return Sent {
                outcome: Outcome::Failed {
                    error: describe(&e),
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
        // The answer's body is not read: it is the receiver's text, not ours to show.
        Outcome::Failed {
            error: status_summary(status),
            retry_after,
        }
    };
    Sent {
        outcome,
        http_status: Some(status.as_u16()),
        response_ms: elapsed(&started),
    }
}

/// A failing status in our words, e.g. "HTTP 500 Internal Server Error from the subscriber".
fn status_summary(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason} from the subscriber", status.as_u16()),
        None => format!("HTTP {} from the subscriber", status.as_u16()),
    }
}

/// What went wrong, in our words: no URL (a subscriber's URL can carry a token, Slack-style),
/// no text from the other end, and no resolved address.
fn describe(e: &reqwest::Error) -> String {
    let mut io_kind = None;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        if c.is::<Refused>() {
            return REFUSED.to_string();
        }
        if c.is::<Unresolved>() {
            return "could not resolve the host".to_string();
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        cause = c.source();
    }
    use std::io::ErrorKind as K;
    let summary = match io_kind {
        _ if e.is_timeout() => "timed out",
        Some(K::TimedOut) => "timed out",
        Some(K::ConnectionRefused) => "connection refused",
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe) => "connection reset",
        Some(K::HostUnreachable | K::NetworkUnreachable) => "host unreachable",
        _ if e.is_connect() => "connection failed",
        _ => "request failed",
    };
    summary.to_string()
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
    fn failing_statuses_are_summarised_in_our_words() {
        assert_eq!(
            status_summary(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
            "HTTP 500 Internal Server Error from the subscriber"
        );
        assert_eq!(
            status_summary(reqwest::StatusCode::from_u16(599).unwrap()),
            "HTTP 599 from the subscriber"
        );
    }
}
