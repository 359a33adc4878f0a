//! Penalties of a template: rules on a configured event type that reset the linked requirements
//! when an event matches. A penalty resets at least one requirement. Used by the JSON API and
//! the admin UI's requirements editor.

use accolade_domain::rules::DataRule;
use accolade_domain::template::Penalty;
use accolade_store::{NewPenalty, PenaltyPatch, Store, StoreError};

use crate::service::event_types::ConfiguredEventType;

/// Why a penalty cannot be added or changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum PenaltyError {
    /// The penalty would reset nothing (`no_requirements`).
    #[error("a penalty must reset at least one requirement")]
    NoRequirements,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A penalty to add to a template.
#[derive(Debug, Clone)]
pub struct Draft {
    pub key: Option<String>,
    pub event_type: ConfiguredEventType,
    pub description: String,
    pub rules: Vec<DataRule>,
    /// The requirements it resets (of the same template).
    pub requirement_ids: Vec<String>,
}

/// What to change in a penalty (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub event_type: Option<ConfiguredEventType>,
    pub description: Option<String>,
    pub rules: Option<Vec<DataRule>>,
    pub requirement_ids: Option<Vec<String>>,
}

fn resets_something(ids: &[String]) -> Result<(), PenaltyError> {
    if ids.is_empty() {
        return Err(PenaltyError::NoRequirements);
    }
    Ok(())
}

pub async fn add(
    store: &dyn Store,
    template_id: &str,
    draft: Draft,
) -> Result<Penalty, PenaltyError> {
    resets_something(&draft.requirement_ids)?;
    let new = NewPenalty {
        key: draft.key,
        event_type: draft.event_type.into_string(),
        description: draft.description,
        rules: draft.rules,
        requirement_ids: draft.requirement_ids,
    };
    Ok(store.add_penalty(template_id, new).await?)
}

pub async fn get(store: &dyn Store, id: &str) -> Result<Penalty, StoreError> {
    store.get_penalty(id).await
}

pub async fn update(store: &dyn Store, id: &str, change: Change) -> Result<Penalty, PenaltyError> {
    if let Some(ids) = &change.requirement_ids {
        resets_something(ids)?;
    }
    let patch = PenaltyPatch {
        event_type: change.event_type.map(ConfiguredEventType::into_string),
        description: change.description,
        rules: change.rules,
        requirement_ids: change.requirement_ids,
    };
    Ok(store.update_penalty(id, patch).await?)
}

pub async fn delete(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    store.delete_penalty(id).await
}
