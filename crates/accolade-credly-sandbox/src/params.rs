//! Request parameters the Rails way: query string, form body and JSON body
//! merged into one map (body wins), typed accessors, and the lenient
//! timestamp parser real Credly clients need.

use axum::http::{header, HeaderMap};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::util::parse_pairs;

/// Merged request parameters.
#[derive(Debug, Default)]
pub(crate) struct Params(pub Map<String, Value>);

impl Params {
    /// Merges the query string, then the body (JSON object or form-encoded) on top.
    pub fn merge(
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let mut map = Map::new();
        for (k, v) in query {
            map.insert(k.clone(), Value::String(v.clone()));
        }
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let trimmed = trim_ascii(body);
        if !trimmed.is_empty() {
            let looks_json = trimmed.first() == Some(&b'{');
            if ctype.contains("json") || (looks_json && !ctype.contains("x-www-form-urlencoded")) {
                match serde_json::from_slice::<Value>(trimmed) {
                    Ok(Value::Object(obj)) => map.extend(obj),
                    Ok(_) => {
                        return Err(ApiError::bad_request("Request body must be a JSON object"))
                    }
                    Err(e) => {
                        return Err(ApiError::bad_request(format!(
                            "Request body is not valid JSON: {e}"
                        )))
                    }
                }
            } else {
                let text = String::from_utf8_lossy(trimmed);
                for (k, v) in parse_pairs(&text) {
                    map.insert(k, Value::String(v));
                }
            }
        }
        Ok(Params(map))
    }

    /// A non-empty, trimmed string value (numbers and booleans are stringified).
    pub fn str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => {
                let s = s.trim();
                (!s.is_empty()).then(|| s.to_owned())
            }
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A boolean (`true`/`false`, `1`/`0`, `"true"`/`"false"`); `None` when absent or null.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => {
                let s = match v {
                    Value::String(s) => s.trim().to_ascii_lowercase(),
                    other => other.to_string(),
                };
                match s.as_str() {
                    "true" | "1" | "yes" | "on" => Ok(Some(true)),
                    "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
                    _ => Err(ApiError::unprocessable(format!(
                        "{key} is invalid: expected true or false"
                    ))),
                }
            }
        }
    }

    /// A timestamp parsed leniently; `Ok(None)` when absent, null, empty or `false`.
    pub fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        let invalid = |v: &dyn std::fmt::Display| {
            ApiError::unprocessable(format!("{key} is invalid: cannot parse {v} as a time"))
        };
        match self.0.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "false" => Ok(None),
            Some(Value::String(s)) => parse_time(s)
                .map(Some)
                .ok_or_else(|| invalid(&format!("{s:?}"))),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
                .map(Some)
                .ok_or_else(|| invalid(n)),
            Some(other) => Err(invalid(other)),
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses the timestamp forms real Credly clients send:
///
/// * RFC 3339 / ISO 8601 (`2025-03-04T14:41:00Z`, `…T14:41:00.000+01:00`, space instead of `T`);
/// * `%Y-%m-%d %H:%M:%S %z` (`2025-03-04 09:41:00 -0500`, also `-05:00`, Go and Ruby
///   `Time#to_s` produce this), with optional fractional seconds;
/// * zone names `UTC` / `GMT` / `Z` after the time (`Time.now.utc.to_s`);
/// * PHP `gmdate('Y-m-d  h:i:s a')`: 12-hour clock, any amount of spaces, `am`/`pm`, UTC;
/// * no zone at all (`2025-03-04 14:41:00`, `2025-03-04 14:41`, `2025-03-04`) → UTC;
/// * a bare integer: Unix seconds.
pub fn parse_time(input: &str) -> Option<DateTime<Utc>> {
    let s = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(&s) {
        return Some(dt.with_timezone(&Utc));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 9 {
        return s
            .parse::<i64>()
            .ok()
            .and_then(|n| Utc.timestamp_opt(n, 0).single());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M:%S%.f %:z",
        "%Y-%m-%d %H:%M %z",
        "%Y/%m/%d %H:%M:%S %z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    // Zone names meaning UTC.
    let mut naive = s.as_str();
    for suffix in [" UTC", " GMT", " Z", "Z", " +0000 (UTC)"] {
        if let Some(rest) = naive.strip_suffix(suffix) {
            naive = rest;
            break;
        }
    }
    let upper = naive.to_ascii_uppercase();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %I:%M:%S %p",
        "%Y-%m-%d %I:%M %p",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&upper, fmt) {
            return Some(dt.and_utc());
        }
    }
    for fmt in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(&upper, fmt) {
            return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn lenient_formats() {
        let t = utc("2025-03-04T14:41:00Z");
        for s in [
            "2025-03-04 09:41:00 -0500",
            "2025-03-04 09:41:00 -05:00",
            "2025-03-04T14:41:00Z",
            "2025-03-04T14:41:00.000Z",
            "2025-03-04T15:41:00+01:00",
            "2025-03-04 14:41:00 +0000",
            "2025-03-04 14:41:00 UTC",
            "2025-03-04  02:41:00 pm",
            "2025-03-04 02:41:00 PM",
            "2025-03-04 14:41:00",
            "2025-03-04T14:41:00",
            "2025-03-04 14:41",
            "  2025-03-04   14:41:00   ",
            "1741099260",
        ] {
            assert_eq!(parse_time(s), Some(t), "{s}");
        }
        assert_eq!(
            parse_time("2025-03-04 09:41:00.250 -0500"),
            Some(utc("2025-03-04T14:41:00.250Z"))
        );
        assert_eq!(parse_time("2025-03-04"), Some(utc("2025-03-04T00:00:00Z")));
        assert_eq!(
            parse_time("2025-03-04  12:05:09 am"),
            Some(utc("2025-03-04T00:05:09Z"))
        );
        for bad in ["", "yesterday", "2025-13-04 10:00:00", "04/03/2025"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn merge_order_and_kinds() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let q = vec![
            ("a".to_owned(), "q".to_owned()),
            ("b".to_owned(), "q".to_owned()),
        ];
        let p = Params::merge(&q, &h, br#"{"a":"body","n":5,"t":true}"#).unwrap();
        assert_eq!(p.str("a").as_deref(), Some("body"));
        assert_eq!(p.str("b").as_deref(), Some("q"));
        assert_eq!(p.str("n").as_deref(), Some("5"));
        assert_eq!(p.bool("t").unwrap(), Some(true));
        // JSON content type with no body (query-only clients).
        let p = Params::merge(&q, &h, b"").unwrap();
        assert_eq!(p.str("a").as_deref(), Some("q"));
        // Form body.
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = Params::merge(&[], &h, b"reason=Bad+actor&x=%7B").unwrap();
        assert_eq!(p.str("reason").as_deref(), Some("Bad actor"));
        assert_eq!(p.str("x").as_deref(), Some("{"));
        assert!(Params::merge(&[], &HeaderMap::new(), b"{nope").is_err());
    }
}
