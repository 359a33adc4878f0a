//! A learner's progress: per template, which requirements are fulfilled and by which event, and
//! the ratio of fulfilled groups.

use std::collections::{BTreeMap, BTreeSet};

use accolade_store::{AwardFilter, Page, Store, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    pub learner: String,
    pub templates: Vec<TemplateProgress>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateProgress {
    pub template: String,
    pub template_name: String,
    pub groups: usize,
    pub fulfilled_groups: usize,
    /// fulfilled groups / groups, 0.0..=1.0.
    pub ratio: f64,
    pub complete: bool,
    pub requirements: Vec<RequirementProgress>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequirementProgress {
    pub requirement: String,
    pub group: String,
    pub description: String,
    pub fulfilled: bool,
    /// The event that fulfilled it.
    pub event_id: Option<String>,
    pub fulfilled_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn for_learner(store: &dyn Store, username: &str) -> Result<ProgressView, StoreError> {
    store.get_learner(username).await?;
    let fulfillments = store.fulfillments(username).await?;
    let mut by_template: BTreeMap<String, Vec<accolade_store::Fulfillment>> = BTreeMap::new();
    for f in fulfillments {
        by_template
            .entry(f.template_id.clone())
            .or_default()
            .push(f);
    }
    // Templates the learner holds awards for appear too, even with no progress left.
    let awards = store
        .list_awards(
            &AwardFilter {
                learner: Some(username.to_string()),
                ..Default::default()
            },
            Page::new(Some(500), None),
        )
        .await?;
    for a in awards.items {
        by_template.entry(a.template_id).or_default();
    }
    let mut templates = Vec::new();
    for (template_id, fs) in by_template {
        let cfg = match store.get_template(&template_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let groups: BTreeSet<_> = cfg.requirements.iter().map(|r| r.group).collect();
        let mut fulfilled_groups = BTreeSet::new();
        let requirements: Vec<RequirementProgress> = cfg
            .requirements
            .iter()
            .map(|r| {
                let f = fs.iter().find(|f| f.requirement_id == r.id);
                if f.is_some() {
                    fulfilled_groups.insert(r.group);
                }
                RequirementProgress {
                    requirement: r.id.clone(),
                    group: r.group.to_string(),
                    description: r.description.clone(),
                    fulfilled: f.is_some(),
                    event_id: f.and_then(|f| f.event_id.clone()),
                    fulfilled_at: f.map(|f| f.fulfilled_at),
                }
            })
            .collect();
        let ratio = if groups.is_empty() {
            0.0
        } else {
            fulfilled_groups.len() as f64 / groups.len() as f64
        };
        templates.push(TemplateProgress {
            template: template_id,
            template_name: cfg.template.name,
            groups: groups.len(),
            fulfilled_groups: fulfilled_groups.len(),
            ratio,
            complete: !groups.is_empty() && fulfilled_groups.len() == groups.len(),
            requirements,
        });
    }
    Ok(ProgressView {
        learner: username.to_string(),
        templates,
    })
}
