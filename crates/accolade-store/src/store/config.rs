//! Configuration: templates with their requirements and penalties, and the version every
//! configuration change bumps.

use accolade_domain::template::{Penalty, Requirement, Template, TemplateConfig};
use async_trait::async_trait;

use super::Result;
use crate::models::*;

/// Templates, requirements and penalties (the rules the event path evaluates).
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// Current configuration version (bumped by every configuration change).
    async fn config_version(&self) -> Result<i64>;

    /// Active templates with their requirements and penalties, and the version they belong to.
    async fn active_config(&self) -> Result<(i64, Vec<TemplateConfig>)>;

    async fn list_templates(&self, filter: &TemplateFilter, page: Page) -> Result<Paged<Template>>;

    /// A template with its requirements and penalties.
    async fn get_template(&self, id: &str) -> Result<TemplateConfig>;

    async fn create_template(&self, new: NewTemplate) -> Result<Template>;

    async fn update_template(&self, id: &str, patch: TemplatePatch) -> Result<Template>;

    /// Activates or deactivates a template. Issued awards are never touched.
    async fn set_template_active(&self, id: &str, active: bool) -> Result<Template>;

    async fn add_requirement(&self, template_id: &str, new: NewRequirement) -> Result<Requirement>;

    async fn get_requirement(&self, id: &str) -> Result<Requirement>;

    async fn update_requirement(&self, id: &str, patch: RequirementPatch) -> Result<Requirement>;

    /// Deletes a requirement (and unlinks it from penalties). Fulfilments stay as history.
    async fn delete_requirement(&self, id: &str) -> Result<()>;

    async fn add_penalty(&self, template_id: &str, new: NewPenalty) -> Result<Penalty>;

    async fn get_penalty(&self, id: &str) -> Result<Penalty>;

    async fn update_penalty(&self, id: &str, patch: PenaltyPatch) -> Result<Penalty>;

    async fn delete_penalty(&self, id: &str) -> Result<()>;

    /// Creates or replaces one template's whole configuration (rules as code), keeping ids of
    /// requirements and penalties whose key already exists.
    async fn apply_template(&self, desired: DesiredTemplate) -> Result<TemplateConfig>;
}
