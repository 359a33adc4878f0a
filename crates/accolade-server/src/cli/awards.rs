//! `accolade awards bulk`: award or revoke a template by hand for a list of learners read from a
//! CSV or JSON file (see `service::bulk`), with a dry run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::service::awards::ChangedBy;
use crate::service::bulk::{self, BulkAction, BulkRequest};
use crate::state::AppState;

#[derive(Debug, Subcommand)]
pub enum AwardsCommand {
    /// Award (--award) or revoke (--revoke) a template for every learner of a list, once each.
    Bulk {
        /// The template (id).
        #[arg(long)]
        template: String,
        /// CSV (usernames in the first column; a `username` header is skipped) or a JSON array.
        #[arg(long)]
        file: PathBuf,
        #[arg(long, conflicts_with = "revoke", required_unless_present = "revoke")]
        award: bool,
        #[arg(long)]
        revoke: bool,
        /// Why (1-1000 characters), kept with each change.
        #[arg(long)]
        reason: String,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(state: AppState, command: AwardsCommand) -> anyhow::Result<()> {
    let AwardsCommand::Bulk {
        template,
        file,
        award,
        revoke: _,
        reason,
        dry_run,
        json,
    } = command;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let learners = bulk::parse_list(&text)?;
    let req = BulkRequest {
        action: if award {
            BulkAction::Award
        } else {
            BulkAction::Revoke
        },
        learners,
        reason,
        dry_run,
    };
    let report = bulk::run(&*state.store, &template, req, ChangedBy::Api).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for r in &report.results {
        println!(
            "{}  {}{}",
            r.learner,
            r.outcome,
            r.award_id
                .as_deref()
                .map(|id| format!("  (award {id})"))
                .unwrap_or_default()
        );
    }
    let verb = match (report.action, report.dry_run) {
        (BulkAction::Award, false) => "awarded",
        (BulkAction::Award, true) => "would be awarded",
        (BulkAction::Revoke, false) => "revoked",
        (BulkAction::Revoke, true) => "would be revoked",
    };
    println!(
        "{} learners: {} {verb}, {} unchanged.",
        report.learners, report.changed, report.unchanged
    );
    Ok(())
}
