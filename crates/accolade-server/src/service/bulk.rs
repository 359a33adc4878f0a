//! Bulk manual awards and revocations: one template, a list of learners (CSV or JSON), a
//! reason, and optionally a dry run. The JSON API, the admin UI and the CLI go through here.
//!
//! Each learner is one manual change (one transaction, as `awards::award` and `awards::revoke`),
//! so a list applies exactly once however often it is sent: a learner who already holds the
//! badge is not awarded again, one who does not hold it is not revoked, and a list interrupted
//! half-way is finished by sending it again. Everything is checked before anything changes: a
//! bad learner name or reason refuses the whole list.

use std::collections::HashSet;

use accolade_domain::award::AwardState;
use accolade_store::{AwardFilter, Page, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::awards::{self, AwardError, ChangedBy};

/// Learners per list, at most.
pub const BULK_MAX: usize = 10_000;

/// What to do to every learner of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Award,
    Revoke,
}

#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub action: BulkAction,
    pub learners: Vec<String>,
    pub reason: String,
    pub dry_run: bool,
}

/// One learner's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkResult {
    pub learner: String,
    /// `awarded`, `revoked`; `would_award`, `would_revoke` (dry run); `already_holds`,
    /// `not_holding` (nothing to do).
    pub outcome: &'static str,
    /// The award made, revoked, or held.
    pub award_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkReport {
    pub template_id: String,
    pub action: BulkAction,
    pub dry_run: bool,
    /// Distinct learners in the list.
    pub learners: usize,
    /// Awarded or revoked (or that would be, in a dry run).
    pub changed: usize,
    /// Nothing to do (already holding, or not holding).
    pub unchanged: usize,
    pub results: Vec<BulkResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// `invalid_learner_list`
    #[error("the learner list is empty or not CSV/JSON: {0}")]
    InvalidList(String),
    /// `too_many_learners`
    #[error("at most {BULK_MAX} learners per list (got {0}); split the list")]
    TooMany(usize),
    /// `invalid_learner`
    #[error("learner {0:?} is not a username of 1-255 bytes")]
    InvalidLearner(String),
    #[error(transparent)]
    Award(#[from] AwardError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a list of learners: a JSON array of usernames (or of objects with `username` or
/// `learner`), or CSV whose first column holds the usernames (a header naming it `username` or
/// `learner` is skipped; so are blank lines). Duplicates are dropped, first one kept.
pub fn parse_list(text: &str) -> Result<Vec<String>, BulkError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let mut names: Vec<String> = Vec::new();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(trimmed)
            .map_err(|e| BulkError::InvalidList(format!("JSON: {e}")))?;
        for item in items {
            let name = match &item {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("username")
                    .or_else(|| o.get("learner"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| BulkError::InvalidList(format!("{item} names no username")))?
                    .to_string(),
                other => return Err(BulkError::InvalidList(format!("{other} is not a username"))),
            };
            names.push(name);
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes());
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| BulkError::InvalidList(format!("CSV: {e}")))?;
            let first = record.get(0).unwrap_or("").to_string();
            if i == 0 && matches!(first.to_ascii_lowercase().as_str(), "username" | "learner") {
                continue;
            }
            if !first.is_empty() {
                names.push(first);
            }
        }
    }
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    if names.is_empty() {
        return Err(BulkError::InvalidList("no learner in it".into()));
    }
    Ok(names)
}

/// The learner's latest award of the template.
async fn latest(
    store: &dyn Store,
    template_id: &str,
    learner: &str,
) -> Result<Option<accolade_domain::award::Award>, StoreError> {
    let filter = AwardFilter {
        learner: Some(learner.to_string()),
        template_id: Some(template_id.to_string()),
        state: None,
    };
    let page = store
        .list_awards(&filter, Page::new(Some(50), None))
        .await?;
    Ok(page.items.into_iter().max_by_key(|a| a.episode))
}

/// Awards or revokes the template for every learner of the list (see the module docs).
pub async fn run(
    store: &dyn Store,
    template_id: &str,
    req: BulkRequest,
    by: ChangedBy<'_>,
) -> Result<BulkReport, BulkError> {
    if req.learners.len() > BULK_MAX {
        return Err(BulkError::TooMany(req.learners.len()));
    }
    if req.learners.is_empty() {
        return Err(BulkError::InvalidList("no learner in it".into()));
    }
    if let Some(bad) = req
        .learners
        .iter()
        .find(|l| l.trim().is_empty() || l.len() > 255 || l.trim() != l.as_str())
    {
        return Err(BulkError::InvalidLearner(bad.clone()));
    }
    let reason = req.reason.trim();
    if reason.is_empty() || req.reason.chars().count() > 1000 {
        return Err(AwardError::InvalidReason.into());
    }
    store.get_template(template_id).await?;
    let mut seen = HashSet::new();
    let learners: Vec<&String> = req.learners.iter().filter(|l| seen.insert(*l)).collect();
    let mut results = Vec::with_capacity(learners.len());
    for learner in learners {
        let held = latest(store, template_id, learner)
            .await?
            .filter(|a| a.state != AwardState::Revoked);
        let (outcome, award_id) = match (req.action, held, req.dry_run) {
            (BulkAction::Award, Some(a), _) => ("already_holds", Some(a.id)),
            (BulkAction::Award, None, true) => ("would_award", None),
            (BulkAction::Award, None, false) => {
                match awards::award(store, template_id, learner, reason).await {
                    Ok(a) => ("awarded", Some(a.id)),
                    // Awarded meanwhile (a live event, another list): held, not twice.
                    Err(AwardError::Store(StoreError::Conflict { .. })) => ("already_holds", None),
                    Err(e) => return Err(e.into()),
                }
            }
            (BulkAction::Revoke, None, _) => ("not_holding", None),
            (BulkAction::Revoke, Some(a), true) => ("would_revoke", Some(a.id)),
            (BulkAction::Revoke, Some(a), false) => {
                match awards::revoke(store, &a.id, reason, by).await {
                    Ok(a) => ("revoked", Some(a.id)),
                    Err(AwardError::Store(StoreError::Conflict { .. })) => {
                        ("not_holding", Some(a.id))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        results.push(BulkResult {
            learner: learner.clone(),
            outcome,
            award_id,
        });
    }
    let changed = results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                "awarded" | "revoked" | "would_award" | "would_revoke"
            )
        })
        .count();
    tracing::info!(template = %template_id, action = ?req.action, dry_run = req.dry_run, learners = results.len(), changed, "bulk manual change");
    Ok(BulkReport {
        template_id: template_id.to_string(),
        action: req.action,
        dry_run: req.dry_run,
        learners: results.len(),
        changed,
        unchanged: results.len() - changed,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_from_csv_or_json_without_duplicates() {
        assert_eq!(
            parse_list("username,email\nann,a@x\n\"bob, jr\",b@x\n\nann,again\n").unwrap(),
            vec!["ann", "bob, jr"]
        );
        assert_eq!(parse_list("cat\ndan\n").unwrap(), vec!["cat", "dan"]);
        assert_eq!(
            parse_list(r#"["eve", {"username": "fay"}, {"learner": "gus"}]"#).unwrap(),
            vec!["eve", "fay", "gus"]
        );
        for bad in ["", "username\n", "[1]", r#"[{"name": "x"}]"#, "[\"a\""] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }
}
