//! The requirements editor on a template's page: add a requirement (event type from the
//! configured ones, group letter defaulting to the next free one, description, data rules with
//! key-path suggestions from the event's schema), delete one, add a penalty with the
//! requirements it resets, and "explain": evaluate the rules against a pasted sample event and
//! show which rule matched or failed.

use std::sync::OnceLock;

use accolade_domain::rules::DataRule;
use accolade_domain::template::Group;
use accolade_store::StoreError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::forms::one;
use super::pages::error_page;
use super::session::{Admin, AdminForm};
use super::templates::{detail_page, rule_text, Extras};
use crate::config::Config;
use crate::service::event_types::ConfiguredEventType;
use crate::service::explain::{self, Subject};
use crate::service::penalties::{self, PenaltyError};
use crate::service::{requirements, templates};
use crate::state::AppState;

/// Rule rows a form offers (more can be added through the API or rules as code).
pub const RULE_ROWS: usize = 3;

/// The operators the forms offer, as the rules engine spells them.
pub const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "in",
    "not_in",
    "exists",
    "not_exists",
    "<",
    "<=",
    ">",
    ">=",
];

/// Key paths of every configured event type's schema (minus the ignored ones), deduplicated.
/// The configuration and the schemas do not change while the process runs, so once is enough.
pub fn key_paths(config: &Config) -> Vec<String> {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS
        .get_or_init(|| {
            let Ok(registry) = crate::service::bus::registry(config) else {
                return Vec::new();
            };
            let mut all: Vec<String> = config
                .events
                .types
                .iter()
                .filter_map(|t| registry.key_paths(t, &config.events.ignored_keypaths))
                .flatten()
                .collect();
            all.sort();
            all.dedup();
            all
        })
        .clone()
}

/// The data rules of a form's rows (`path_N`, `op_N`, `value_N`); empty rows are skipped.
pub(super) fn rules_from(form: &[(String, String)]) -> Result<Vec<DataRule>, String> {
    let mut rules = Vec::new();
    for i in 1..=RULE_ROWS {
        let path = one(form, &format!("path_{i}")).trim();
        if path.is_empty() {
            continue;
        }
        let op = one(form, &format!("op_{i}"));
        let value = one(form, &format!("value_{i}"));
        rules.push(DataRule::new(path, op, value).map_err(|e| format!("rule {i}: {e}"))?);
    }
    Ok(rules)
}

fn event_type_of(
    state: &AppState,
    form: &[(String, String)],
) -> Result<ConfiguredEventType, String> {
    let t = one(form, "event_type").trim();
    ConfiguredEventType::check(&state.config.events, t)
        .map_err(|_| format!("`{t}` is not one of the configured event types (events.types)"))
}

async fn answer(
    state: &AppState,
    admin: Admin,
    id: &str,
    result: Result<String, String>,
) -> Response {
    let notice = match result {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    detail_page(
        state,
        admin,
        id,
        Extras {
            notice: Some(notice),
            ..Extras::default()
        },
    )
    .await
}

fn store_failure(e: impl std::fmt::Display) -> Result<String, String> {
    Err(e.to_string())
}

/// `POST /admin/templates/{id}/requirements`
pub async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let result = async {
        let event_type = event_type_of(&state, &form)?;
        let group = match one(&form, "group") {
            "" => None,
            g => Some(Group::parse(g).map_err(|e| e.to_string())?),
        };
        let draft = requirements::Draft {
            key: None,
            event_type,
            description: one(&form, "description").trim().to_string(),
            group,
            rules: rules_from(&form)?,
        };
        match requirements::add(&*state.store, &id, draft).await {
            Ok(r) => Ok(format!("Requirement added to group {}.", r.group)),
            Err(e) => store_failure(e),
        }
    }
    .await;
    answer(&state, admin, &id, result).await
}

/// `POST /admin/templates/{id}/requirements/{requirement}/delete`
pub async fn delete(
    State(state): State<AppState>,
    Path((id, requirement)): Path<(String, String)>,
    AdminForm { admin, fields: _ }: AdminForm,
) -> Response {
    // Only a requirement of this template may be deleted from its page.
    let result = match requirements::delete_of_template(&*state.store, &id, &requirement).await {
        Ok(()) => {
            Ok("Requirement deleted. Fulfilments already recorded stay as history.".to_string())
        }
        Err(StoreError::NotFound { .. }) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "This template has no such requirement.",
            )
        }
        Err(e) => store_failure(e),
    };
    answer(&state, admin, &id, result).await
}

/// `POST /admin/templates/{id}/penalties`
pub async fn add_penalty(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let result = async {
        let event_type = event_type_of(&state, &form)?;
        let rules = rules_from(&form)?;
        let requirement_ids: Vec<String> = form
            .iter()
            .filter(|(k, _)| k == "resets")
            .map(|(_, v)| v.clone())
            .collect();
        let draft = penalties::Draft {
            key: None,
            event_type,
            description: one(&form, "description").trim().to_string(),
            rules,
            requirement_ids,
        };
        match penalties::add(&*state.store, &id, draft).await {
            Ok(p) => Ok(format!(
                "Penalty added; it resets {} requirement(s).",
                p.requirement_ids.len()
            )),
            Err(PenaltyError::NoRequirements) => {
                Err("Choose at least one requirement for the penalty to reset.".to_string())
            }
            Err(PenaltyError::Store(e)) => store_failure(e),
        }
    }
    .await;
    answer(&state, admin, &id, result).await
}

/// The verdict of one rule on the sample event.
pub struct RuleVerdict {
    pub rule: String,
    pub matched: bool,
}

/// One requirement or penalty against the sample event.
pub struct ExplainRow {
    pub what: String,
    /// The sample's event type is the one this requirement listens to.
    pub type_matches: bool,
    pub rules: Vec<RuleVerdict>,
    /// Every rule matched (and the event type): the requirement would be fulfilled.
    pub matched: bool,
}

pub struct Explain {
    pub error: Option<String>,
    pub rows: Vec<ExplainRow>,
}

/// "Requirement A: description", "Penalty: description".
fn label(subject: Subject<'_>) -> String {
    let (what, description) = match subject {
        Subject::Requirement(r) => (format!("Requirement {}", r.group), &r.description),
        Subject::Penalty(p) => ("Penalty".to_string(), &p.description),
    };
    if description.is_empty() {
        what
    } else {
        format!("{what}: {description}")
    }
}

/// `POST /admin/templates/{id}/explain` with `event` = a sample event (JSON).
pub async fn explain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        admin,
        fields: form,
    }: AdminForm,
) -> Response {
    let sample = one(&form, "event").to_string();
    let config = match templates::get(&*state.store, &id).await {
        Ok(c) => c,
        Err(StoreError::NotFound { .. }) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "There is no badge template with this id.",
            )
        }
        Err(e) => return answer(&state, admin, &id, store_failure(e)).await,
    };
    let explain = match explain::sample(&sample) {
        Err(e) => Explain {
            error: Some(format!("The sample is {e}")),
            rows: Vec::new(),
        },
        Ok(ev) => Explain {
            error: None,
            rows: explain::judge(&config, &ev)
                .into_iter()
                .map(|v| ExplainRow {
                    what: label(v.subject),
                    type_matches: v.type_matches,
                    rules: v
                        .rules
                        .into_iter()
                        .map(|(rule, matched)| RuleVerdict {
                            rule: rule_text(rule),
                            matched,
                        })
                        .collect(),
                    matched: v.matched,
                })
                .collect(),
        },
    };
    detail_page(
        &state,
        admin,
        &id,
        Extras {
            notice: None,
            explain: Some(explain),
            sample,
        },
    )
    .await
}
