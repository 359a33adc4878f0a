//! Imports from other badge systems.

use async_trait::async_trait;

use super::Result;
use crate::import::{ImportCounts, ImportPart};

/// Writes imports.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Writes one organization's share of an import in one transaction, creating only what is
    /// missing (see [`ImportPart`]), so repeating an import changes nothing. Bumps the
    /// configuration version when it created templates, requirements or penalties. On `dry_run`
    /// the transaction is rolled back: the counts say what a real run would create.
    async fn import_part(&self, part: ImportPart, dry_run: bool) -> Result<ImportCounts>;
}
