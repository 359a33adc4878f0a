//! Requirements of a template and their data rules: add (on a configured event type), read,
//! change, delete, and edit the rule list one rule at a time. Used by the JSON API and the
//! admin UI's requirements editor.

use accolade_domain::rules::DataRule;
use accolade_domain::template::{Group, Requirement};
use accolade_store::{NewRequirement, RequirementPatch, Store, StoreError};

use crate::service::event_types::ConfiguredEventType;

/// A requirement to add to a template.
#[derive(Debug, Clone)]
pub struct Draft {
    pub key: Option<String>,
    pub event_type: ConfiguredEventType,
    pub description: String,
    /// `None`: the next free letter.
    pub group: Option<Group>,
    pub rules: Vec<DataRule>,
}

/// What to change in a requirement (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub event_type: Option<ConfiguredEventType>,
    pub description: Option<String>,
    pub group: Option<Group>,
    pub rules: Option<Vec<DataRule>>,
}

/// Why a rule cannot be removed.
#[derive(Debug, thiserror::Error)]
pub enum RuleEditError {
    /// The requirement has no rule at this position.
    #[error("requirement {requirement} has no rule at index {index}")]
    NoRule { requirement: String, index: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn add(
    store: &dyn Store,
    template_id: &str,
    draft: Draft,
) -> Result<Requirement, StoreError> {
    let new = NewRequirement {
        key: draft.key,
        event_type: draft.event_type.into_string(),
        description: draft.description,
        group: draft.group,
        rules: draft.rules,
    };
    store.add_requirement(template_id, new).await
}

pub async fn get(store: &dyn Store, id: &str) -> Result<Requirement, StoreError> {
    store.get_requirement(id).await
}

pub async fn update(
    store: &dyn Store,
    id: &str,
    change: Change,
) -> Result<Requirement, StoreError> {
    let patch = RequirementPatch {
        event_type: change.event_type.map(ConfiguredEventType::into_string),
        description: change.description,
        group: change.group,
        rules: change.rules,
    };
    store.update_requirement(id, patch).await
}

/// Deletes a requirement; learners' past fulfilments stay in history.
pub async fn delete(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    store.delete_requirement(id).await
}

/// Deletes a requirement of the given template; one of another template is not found.
pub async fn delete_of_template(
    store: &dyn Store,
    template_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    let r = store.get_requirement(id).await?;
    if r.template_id != template_id {
        return Err(StoreError::NotFound {
            what: accolade_store::Entity::Requirement,
        });
    }
    store.delete_requirement(id).await
}

/// Appends one data rule.
pub async fn add_rule(
    store: &dyn Store,
    id: &str,
    rule: DataRule,
) -> Result<Requirement, StoreError> {
    let mut rules = store.get_requirement(id).await?.rules;
    rules.push(rule);
    replace_rules(store, id, rules).await
}

/// Removes the data rule at `index` (0-based, as listed).
pub async fn remove_rule(
    store: &dyn Store,
    id: &str,
    index: usize,
) -> Result<Requirement, RuleEditError> {
    let mut rules = store.get_requirement(id).await?.rules;
    if index >= rules.len() {
        return Err(RuleEditError::NoRule {
            requirement: id.to_string(),
            index,
        });
    }
    rules.remove(index);
    Ok(replace_rules(store, id, rules).await?)
}

/// Replaces all data rules of a requirement.
pub async fn replace_rules(
    store: &dyn Store,
    id: &str,
    rules: Vec<DataRule>,
) -> Result<Requirement, StoreError> {
    let patch = RequirementPatch {
        rules: Some(rules),
        ..Default::default()
    };
    store.update_requirement(id, patch).await
}
