//! Badge templates: listing with filters, creating a local template, reading one with its
//! requirements and penalties, changing it, and switching it on or off. The JSON API and the
//! admin UI both go through here; Credly templates arrive by sync (`service::credly::sync`) and
//! rules as code (`service::apply`) writes whole templates.

use std::collections::HashMap;

use accolade_domain::expiry::ExpiresAfter;
use accolade_domain::template::{Origin, Template, TemplateConfig};
use accolade_store::{NewTemplate, Page, Paged, Store, StoreError, TemplateFilter, TemplatePatch};

/// Why a template cannot be created as asked.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Only local templates are made by hand (`origin_not_creatable`).
    #[error("Credly templates are created by syncing an organization, not by hand")]
    NotCreatable,
    /// The given id is not a UUID (`invalid_uuid`).
    #[error("`{0}` is not a UUID")]
    InvalidUuid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A template made by hand.
#[derive(Debug, Clone)]
pub struct NewLocalTemplate {
    /// The asked-for origin, if any: only [`Origin::Local`] is accepted.
    pub origin: Option<Origin>,
    /// A UUID in any form `Uuid` parses; `None`: generated.
    pub uuid: Option<String>,
    pub name: String,
    pub description: String,
    pub image_url: Option<String>,
    pub active: bool,
    /// Default true.
    pub allow_reaward: Option<bool>,
    /// How long its awards stay valid; `None`: they never expire.
    pub expires_after: Option<ExpiresAfter>,
    /// Operator-written criteria (Markdown) for the Open Badges achievement.
    pub criteria: Option<String>,
}

/// A page of templates. Only Credly templates have a Credly state (the stored provider state of
/// a local template is a placeholder), so a filter on a Credly state lists Credly templates, and
/// with origin "local" as well it lists none.
pub async fn list(
    store: &dyn Store,
    filter: &TemplateFilter,
    page: Page,
) -> Result<Paged<Template>, StoreError> {
    if filter.provider_state.is_none() {
        return store.list_templates(filter, page).await;
    }
    if filter.origin == Some(Origin::Local) {
        return Ok(Paged {
            items: Vec::new(),
            next_offset: None,
        });
    }
    let filter = TemplateFilter {
        origin: Some(Origin::Credly),
        ..filter.clone()
    };
    store.list_templates(&filter, page).await
}

/// Creates a local template (inactive unless asked otherwise).
pub async fn create_local(
    store: &dyn Store,
    new: NewLocalTemplate,
) -> Result<Template, TemplateError> {
    if new.origin.is_some_and(|o| o != Origin::Local) {
        return Err(TemplateError::NotCreatable);
    }
    if let Some(u) = &new.uuid {
        if !accolade_domain::ids::is_uuid(u) {
            return Err(TemplateError::InvalidUuid(u.clone()));
        }
    }
    let t = store
        .create_template(NewTemplate {
            // The hyphenated lower-case form, whichever form `Uuid` parsed.
            id: new
                .uuid
                .as_deref()
                .map(accolade_domain::ids::normalize_uuid),
            name: new.name,
            description: new.description,
            image_url: new.image_url,
            origin: Origin::Local,
            provider_state: "active".into(),
            is_active: new.active,
            allow_reaward: new.allow_reaward.unwrap_or(true),
            organization_id: None,
            expires_after: new.expires_after,
            criteria: new.criteria,
        })
        .await?;
    tracing::info!(template.id = %t.id, "template {} created", t.id);
    Ok(t)
}

/// A template with its requirements and penalties.
pub async fn get(store: &dyn Store, id: &str) -> Result<TemplateConfig, StoreError> {
    store.get_template(id).await
}

/// Changes a template's name, description, image, re-award switch, expiry or criteria. A new
/// expiry applies to awards made from then on: existing awards keep their `expires_at`.
pub async fn update(
    store: &dyn Store,
    id: &str,
    patch: TemplatePatch,
) -> Result<Template, StoreError> {
    store.update_template(id, patch).await
}

/// Activates (events count for the template from the next one on) or deactivates (events stop
/// counting; issued badges are kept).
pub async fn set_active(store: &dyn Store, id: &str, active: bool) -> Result<Template, StoreError> {
    let t = store.set_template_active(id, active).await?;
    let done = if active { "activated" } else { "deactivated" };
    tracing::info!(template.id = %id, active, "template {id} {done}");
    Ok(t)
}

/// The names of the given templates, one read per distinct id; a template that cannot be read
/// is named by its id.
pub async fn names(store: &dyn Store, ids: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for &id in ids {
        if !names.contains_key(id) {
            let name = name_or_id(store, id).await;
            names.insert(id.to_string(), name);
        }
    }
    names
}

/// A template's name, or its id when it cannot be read.
pub async fn name_or_id(store: &dyn Store, id: &str) -> String {
    store
        .get_template(id)
        .await
        .map_or_else(|_| id.to_string(), |t| t.template.name)
}
