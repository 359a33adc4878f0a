//! Checks of a received Open Badges 3.0 credential, each reported with its outcome, for operators
//! who receive badges: the shape (contexts, types), the proof (`eddsa-rdfc-2022`, with a key the
//! caller resolves), the validity window and the revocation status (with a status list the
//! caller resolves). Resolution is the caller's: this module does no I/O.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::contexts::{OB_CONTEXTS, VC_V1, VC_V2};
use crate::keys::VerifyingKey;
use crate::{proof, status_list};

/// One check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not decided here (e.g. a key or list that could not be resolved without a network call).
    Unknown,
}

/// A check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

/// The verdict: `valid` when every check passed, `invalid` when any failed, else `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
}

/// Everything checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    /// The credential's id, issuer id and achievement name, when present.
    pub credential_id: Option<String>,
    pub issuer: Option<String>,
    pub achievement: Option<String>,
}

/// What the caller resolves for the checks.
pub trait Resolver {
    /// The public key of a verification method URL, or why not.
    fn key(&self, verification_method: &str) -> Result<VerifyingKey, String>;
    /// The decoded bits of the status list credential at `url` (verified by the resolver), or
    /// why not.
    fn status_bits(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// Checks `credential` at `now`.
pub fn verify(credential: &Value, now: DateTime<Utc>, resolver: &dyn Resolver) -> Report {
    let mut checks = Vec::new();
    let mut add = |check: &'static str, outcome: Outcome, detail: String| {
        checks.push(Check {
            check,
            outcome,
            detail,
        })
    };

    let contexts: Vec<&str> = match credential.get("@context") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => vec![],
    };
    let base = contexts.first().copied();
    let ob = contexts.iter().any(|c| OB_CONTEXTS.contains(c));
    if matches!(base, Some(VC_V2) | Some(VC_V1)) && ob {
        add("contexts", Outcome::Passed, contexts.join(", "));
    } else {
        add(
            "contexts",
            Outcome::Failed,
            "the first context must be the Verifiable Credentials context and an Open Badges 3.0 \
             context must follow"
                .into(),
        );
    }

    let types = strings(credential.get("type"));
    if types.contains(&"VerifiableCredential")
        && types
            .iter()
            .any(|t| *t == "OpenBadgeCredential" || *t == "AchievementCredential")
    {
        add("type", Outcome::Passed, types.join(", "));
    } else {
        add(
            "type",
            Outcome::Failed,
            "type must include VerifiableCredential and OpenBadgeCredential".into(),
        );
    }

    match proof::read_proof(credential) {
        Err(e) => add("proof", Outcome::Failed, e.to_string()),
        Ok(read) => match resolver.key(&read.verification_method) {
            Err(why) => add(
                "proof",
                Outcome::Unknown,
                format!("key {} not resolved: {why}", read.verification_method),
            ),
            Ok(key) => match proof::verify(credential, &key) {
                Ok(()) => add(
                    "proof",
                    Outcome::Passed,
                    format!("eddsa-rdfc-2022 signature by {}", read.verification_method),
                ),
                Err(e) => add("proof", Outcome::Failed, e.to_string()),
            },
        },
    }

    let from = credential
        .get("validFrom")
        .or_else(|| credential.get("issuanceDate"))
        .and_then(Value::as_str);
    let until = credential
        .get("validUntil")
        .or_else(|| credential.get("expirationDate"))
        .and_then(Value::as_str);
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    match (from.map(parse), until.map(parse)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => add(
            "validity",
            Outcome::Failed,
            "validFrom or validUntil is not a date-time".into(),
        ),
        (Some(Ok(f)), _) if f > now => {
            add("validity", Outcome::Failed, format!("not valid before {f}"))
        }
        (_, Some(Ok(u))) if u <= now => add("validity", Outcome::Failed, format!("expired at {u}")),
        (None, _) => add("validity", Outcome::Failed, "validFrom is missing".into()),
        _ => add(
            "validity",
            Outcome::Passed,
            "within its validity period".into(),
        ),
    }

    status(credential, resolver, &mut add);

    let failed = checks.iter().any(|c| c.outcome == Outcome::Failed);
    let unknown = checks.iter().any(|c| c.outcome == Outcome::Unknown);
    Report {
        verdict: if failed {
            Verdict::Invalid
        } else if unknown {
            Verdict::Unknown
        } else {
            Verdict::Valid
        },
        checks,
        credential_id: credential
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string),
        issuer: match credential.get("issuer") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => other.get("id").and_then(Value::as_str).map(str::to_string),
            None => None,
        },
        achievement: credential
            .pointer("/credentialSubject/achievement/name")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn status(
    credential: &Value,
    resolver: &dyn Resolver,
    add: &mut impl FnMut(&'static str, Outcome, String),
) {
    let entries: Vec<&Value> = match credential.get("credentialStatus") {
        None => {
            add(
                "status",
                Outcome::Passed,
                "no credentialStatus: not revocable".into(),
            );
            return;
        }
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    for entry in entries {
        if entry.get("type").and_then(Value::as_str) != Some("BitstringStatusListEntry") {
            add(
                "status",
                Outcome::Unknown,
                "a status entry of a type not read here".into(),
            );
            continue;
        }
        if entry.get("statusPurpose").and_then(Value::as_str) != Some("revocation") {
            add(
                "status",
                Outcome::Unknown,
                "a status purpose other than revocation".into(),
            );
            continue;
        }
        let index = entry
            .get("statusListIndex")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok());
        let Some(list) = entry.get("statusListCredential").and_then(Value::as_str) else {
            add(
                "status",
                Outcome::Failed,
                "statusListCredential is missing".into(),
            );
            continue;
        };
        let Some(index) = index else {
            add(
                "status",
                Outcome::Failed,
                "statusListIndex is not a number".into(),
            );
            continue;
        };
        match resolver.status_bits(list) {
            Err(why) => add(
                "status",
                Outcome::Unknown,
                format!("list {list} not resolved: {why}"),
            ),
            Ok(bits) => match status_list::get(&bits, index) {
                Some(false) => add("status", Outcome::Passed, "not revoked".into()),
                Some(true) => add("status", Outcome::Failed, "revoked".into()),
                None => add(
                    "status",
                    Outcome::Failed,
                    "index past the end of the list".into(),
                ),
            },
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => vec![],
    }
}
