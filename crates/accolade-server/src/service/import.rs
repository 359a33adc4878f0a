//! `accolade import openedx-credentials`: read an Open edX Credentials database, plan what it
//! means in Accolade (`accolade_import::plan`), leave out what Accolade already configures
//! differently, and write each organization's share in one transaction (`ImportStore`). The
//! Credly keys are sealed with the secrets box before they reach the store; nothing is sent to
//! Credly. With `award_complete`, learners complete in the source without an issued badge there
//! are then awarded the normal way (an outbox job issues each to Credly once).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accolade_import::plan::{self, LearnerOnTemplate, Plan, PlanOptions, Problem, Report};
use accolade_import::read::{self, ReadError, SourceUrl};
use accolade_store::{CredlyKey, ImportCounts, ImportPart, NewCredlyOrganization, StoreError};
use chrono::Utc;
use serde::Serialize;

use crate::service::awards;
use crate::state::AppState;

/// The reason recorded on awards made by `--award-complete`.
pub const AWARD_COMPLETE_REASON: &str =
    "complete in Open edX Credentials without an issued badge there (import --award-complete)";

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub from: SourceUrl,
    pub dry_run: bool,
    pub award_complete: bool,
    /// Credly keys by organization UUID, for organizations whose key is not in the source.
    pub org_keys: HashMap<String, String>,
}

/// Steps of a run, for a progress display.
#[derive(Debug, Clone)]
pub enum Step {
    Reading(String),
    Read {
        rows: u64,
        took: Duration,
    },
    Writing {
        organization: String,
        fulfilments: usize,
    },
    Written {
        organization: String,
        took: Duration,
    },
    Awarding(usize),
}

/// A template Accolade already configures with requirements of its own: its configuration and
/// progress are left out (its awards are still imported, so no badge is issued twice).
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub template: String,
    pub name: String,
    pub detail: String,
}

/// What happened to the learners `--award-complete` names.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AwardedComplete {
    pub awarded: u64,
    /// Already held in Accolade (a repeated run).
    pub held_already: u64,
    /// On inactive templates: not awarded (activate the template, then award by hand).
    pub inactive_template: u64,
}

/// The outcome of a run (or of a dry run: what a real run would do).
#[derive(Debug, Clone, Serialize)]
pub struct ImportOutcome {
    pub source: String,
    pub dry_run: bool,
    pub report: Report,
    pub conflicts: Vec<Conflict>,
    /// Rows created (on a dry run: that a real run would create); zero everywhere on a repeat.
    pub created: ImportCounts,
    /// Organizations already in Accolade: their stored key and name are kept.
    pub organizations_kept: Vec<String>,
    pub award_complete: Option<AwardedComplete>,
    pub read_seconds: f64,
    pub plan_seconds: f64,
    pub write_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the source cannot be imported as it is ({} problem(s)); nothing was written", .0.len())]
    Refused(Vec<Problem>),
    #[error("writing the import failed (that organization's share was rolled back): {0}")]
    Store(#[from] StoreError),
}

/// Reads, plans and (unless a dry run) writes the import. `progress` hears each step.
pub async fn import_openedx(
    state: &AppState,
    req: ImportRequest,
    progress: impl Fn(Step),
) -> Result<ImportOutcome, ImportError> {
    let store = &*state.store;
    progress(Step::Reading(req.from.display()));
    let started = Instant::now();
    let source = read::read(&req.from).await?;
    let read_took = started.elapsed();
    progress(Step::Read {
        rows: (source.fulfilments.len() + source.progress.len() + source.badges.len()) as u64,
        took: read_took,
    });
    let options = PlanOptions {
        now: Utc::now(),
        configured_event_types: state.config.events.types.clone(),
        org_keys: req.org_keys.clone(),
    };
    // Planning a million fulfilments is CPU work: off the async runtime.
    let planning = Instant::now();
    let Plan { parts, report } = tokio::task::spawn_blocking(move || plan::plan(&source, &options))
        .await
        .map_err(|e| StoreError::Other(format!("planning panicked: {e}")))?
        .map_err(ImportError::Refused)?;

    let plan_took = planning.elapsed();
    let started = Instant::now();
    let mut created = ImportCounts::default();
    let mut conflicts = Vec::new();
    let mut organizations_kept = Vec::new();
    for mut part in parts {
        if store.get_credly_org(&part.organization.uuid).await.is_ok() {
            organizations_kept.push(part.organization.uuid.clone());
        }
        leave_out_conflicts(state, &mut part, &mut conflicts).await?;
        let org = &part.organization;
        let last4: String = {
            let chars: Vec<char> = org.api_key.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        let sealed = ImportPart {
            organization: NewCredlyOrganization {
                id: org.uuid.clone(),
                name: org.name.clone(),
                key: CredlyKey {
                    ciphertext: state.credly.secrets.seal(&org.api_key, &org.uuid),
                    last4,
                    created_at: org.key_created_at,
                    expires_at: org.key_expires_at,
                },
            },
            templates: part.templates,
            learners: part.learners,
            fulfilments: part.fulfilments,
            awards: part.awards,
            now: Utc::now(),
        };
        let name = sealed.organization.name.clone();
        progress(Step::Writing {
            organization: name.clone(),
            fulfilments: sealed.fulfilments.len(),
        });
        let t = Instant::now();
        created.add(store.import_part(sealed, req.dry_run).await?);
        progress(Step::Written {
            organization: name,
            took: t.elapsed(),
        });
    }
    let award_complete = if req.award_complete {
        Some(
            award_complete(
                state,
                &report.complete_without_issued_badge,
                req.dry_run,
                &progress,
            )
            .await?,
        )
    } else {
        None
    };
    if !req.dry_run {
        tracing::info!(
            source = %req.from.display(),
            templates = created.templates,
            fulfilments = created.fulfilments,
            awards = created.awards,
            "imported from Open edX Credentials"
        );
    }
    Ok(ImportOutcome {
        source: req.from.display(),
        dry_run: req.dry_run,
        report,
        conflicts,
        created,
        organizations_kept,
        award_complete,
        read_seconds: read_took.as_secs_f64(),
        plan_seconds: plan_took.as_secs_f64(),
        write_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Drops from `part` the configuration and progress of templates Accolade already has with
/// requirements or penalties that did not come from this import (their keys say so).
async fn leave_out_conflicts(
    state: &AppState,
    part: &mut plan::PlannedPart,
    conflicts: &mut Vec<Conflict>,
) -> Result<(), StoreError> {
    let mut left_out = Vec::new();
    for t in &mut part.templates {
        let existing = match state.store.get_template(&t.template.id).await {
            Ok(existing) => existing,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let imported =
            |key: &Option<String>| key.as_deref().is_some_and(|k| k.starts_with("openedx-"));
        let own_requirements = existing
            .requirements
            .iter()
            .filter(|r| !imported(&r.key))
            .count();
        let own_penalties = existing
            .penalties
            .iter()
            .filter(|p| !imported(&p.key))
            .count();
        if own_requirements + own_penalties == 0 {
            continue;
        }
        conflicts.push(Conflict {
            template: t.template.id.clone(),
            name: existing.template.name.clone(),
            detail: format!(
                "Accolade configures it already ({own_requirements} requirement(s), {own_penalties} penalty(ies)): its requirements, penalties and learners' progress are not imported; its issued badges are"
            ),
        });
        t.requirements.clear();
        t.penalties.clear();
        left_out.push(t.template.id.clone());
    }
    if !left_out.is_empty() {
        part.fulfilments
            .retain(|(_, t, _)| !left_out.iter().any(|id| id.as_str() == t.as_ref()));
    }
    Ok(())
}

async fn award_complete(
    state: &AppState,
    listed: &[LearnerOnTemplate],
    dry_run: bool,
    progress: &impl Fn(Step),
) -> Result<AwardedComplete, StoreError> {
    let mut out = AwardedComplete::default();
    let active: Vec<&LearnerOnTemplate> = listed.iter().filter(|l| l.template_active).collect();
    out.inactive_template = (listed.len() - active.len()) as u64;
    progress(Step::Awarding(active.len()));
    for l in active {
        if dry_run {
            out.awarded += 1;
            continue;
        }
        match awards::award(
            &*state.store,
            &l.template,
            &l.learner,
            AWARD_COMPLETE_REASON,
        )
        .await
        {
            Ok(_) => out.awarded += 1,
            Err(awards::AwardError::Store(StoreError::Conflict {
                code: "already_awarded",
                ..
            })) => out.held_already += 1,
            Err(awards::AwardError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Other(e.to_string())),
        }
    }
    Ok(out)
}
