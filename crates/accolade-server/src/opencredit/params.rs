//! Request parameters of the Open Credit API, from wherever the client put them.
//!
//! Open Credit clients send form-encoded bodies, some send parameters (`access_token`,
//! `behalf_of`) in the query string even on POST, and newer clients send JSON. [`Params`] merges
//! the query string with a form, JSON or multipart body (the body wins) into one map of strings;
//! multipart file parts are kept as bytes (image uploads).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use super::envelope::OcError;

#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, String>,
    files: HashMap<String, Bytes>,
}

impl Params {
    /// The value of `name`, trimmed; `None` when absent (an empty value counts as given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.trim())
    }

    /// The value of `name` exactly as sent (passwords: spaces are part of them).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name` when present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|s| !s.is_empty())
    }

    pub fn required(&self, name: &str) -> Result<&str, OcError> {
        self.non_empty(name)
            .ok_or_else(|| OcError::field(name, "MISSING_PARAMETER", "is required"))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, OcError> {
        match self.non_empty(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| OcError::field(name, "INVALID_PARAMETER", "must be an integer")),
        }
    }

    /// `1/0`, `true/false` (any case); empty counts as false, as PHP clients send it.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, OcError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" => Ok(Some(true)),
                "0" | "false" | "" => Ok(Some(false)),
                _ => Err(OcError::field(
                    name,
                    "INVALID_PARAMETER",
                    "must be 0, 1, true or false",
                )),
            },
        }
    }

    /// A plain-text field (no markup, at most `max` characters); `None` when absent.
    pub fn plain(&self, name: &str, max: usize) -> Result<Option<String>, OcError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if accolade_opencredit::richtext::contains_markup(v) {
            return Err(OcError::field(
                name,
                "HTML_NOT_ALLOWED",
                "does not accept HTML",
            ));
        }
        if v.chars().count() > max {
            return Err(OcError::field(
                name,
                "TOO_LONG",
                format!("must be at most {max} characters"),
            ));
        }
        Ok(Some(v.to_string()))
    }

    /// A file part of a multipart body.
    pub fn file(&self, name: &str) -> Option<&Bytes> {
        self.files.get(name)
    }

    fn merge_pairs(&mut self, raw: &[u8]) {
        for (k, v) in form_urlencoded::parse(raw) {
            self.values.insert(k.into_owned(), v.into_owned());
        }
    }
}

/// An id from the path; anything but an integer is an unknown `what` (404).
pub fn parse_id(id: &str, what: &str) -> Result<i64, OcError> {
    id.parse().map_err(|_| OcError::not_found(what))
}

fn bad_body(message: impl Into<String>) -> OcError {
    OcError::bad_request("INVALID_BODY", message)
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = OcError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut params = Params::default();
        if let Some(q) = req.uri().query() {
            params.merge_pairs(q.as_bytes());
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(req, state)
                .await
                .map_err(|e| bad_body(format!("multipart body: {e}")))?;
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| too_large_or(e.status().as_u16(), format!("multipart body: {e}")))?
            {
                let name = field.name().unwrap_or("").to_string();
                let is_file = field.file_name().is_some();
                let data = field.bytes().await.map_err(|e| {
                    too_large_or(e.status().as_u16(), format!("multipart field {name}: {e}"))
                })?;
                if is_file {
                    params.files.insert(name, data);
                } else {
                    let text = String::from_utf8(data.to_vec()).map_err(|_| {
                        OcError::field(&name, "INVALID_PARAMETER", "is not UTF-8 text")
                    })?;
                    params.values.insert(name, text);
                }
            }
            return Ok(params);
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| too_large_or(e.status().as_u16(), format!("request body: {e}")))?;
        if body.is_empty() {
            return Ok(params);
        }
        if content_type.starts_with("application/json") {
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| bad_body(format!("malformed JSON: {e}")))?;
            let Value::Object(map) = value else {
                return Err(bad_body("a JSON body must be an object"));
            };
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s,
                    Value::Null => continue,
                    Value::Bool(b) => if b { "1" } else { "0" }.to_string(),
                    Value::Number(n) => n.to_string(),
                    // Arrays and objects (bulk recipients) travel as JSON text, as form clients send them.
                    other => other.to_string(),
                };
                params.values.insert(k, text);
            }
        } else {
            // Form-encoded is the Open Credit default: also when no content type is sent.
            if std::str::from_utf8(&body).is_err() {
                return Err(bad_body("the form body is not UTF-8"));
            }
            params.merge_pairs(&body);
        }
        Ok(params)
    }
}

fn too_large_or(status: u16, message: String) -> OcError {
    if status == 413 {
        OcError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "the request body is too large",
        )
    } else {
        bad_body(message)
    }
}
