//! The Open Badges issuer worker: follows the outgoing-event stream with its own cursor (so
//! nothing is added to the event path), signs each new award of a local template once, sets the
//! status bit of each revoked one, and re-signs changed status lists.
//!
//! A batch is claimed (credential ids and status-list entries reserved in the store, under a
//! lease), signed with no transaction open on the low-priority signing threads ([`super::signer`]), and completed in one
//! transaction that stores the documents and moves the cursor. A crash before completion leaves
//! the reservations: the next claim finds the same ids and entries, so the award is signed again
//! into the same credential, and stored once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use accolade_openbadges::credential::{self, Achievement};
use accolade_openbadges::proof::{self, ProofOptions};
use accolade_store::{ObIssue, ObWork, SignedCredential};
use anyhow::Context;
use chrono::{DateTime, Utc};

use super::{documents, keyring::Keys};
use crate::state::AppState;

/// How long a claimed batch is ours; a batch takes milliseconds, so this only bounds how long a
/// killed instance's batch waits for another.
const LEASE: Duration = Duration::from_secs(30);

/// Status lists re-signed per pass.
const LISTS_PER_PASS: u32 = 16;

/// Runs until shutdown.
pub async fn run(state: AppState) {
    let holder = format!("ob-{}", uuid::Uuid::new_v4().simple());
    tracing::info!(%holder, did = %state.openbadges.did, "Open Badges issuer started");
    loop {
        let pass = match step(&state, &holder).await {
            Ok(pass) => pass,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Open Badges issuer pass failed; retrying");
                Pass::default()
            }
        };
        // Only a full pass (a backlog) goes on at once. Awards trickling in while events are
        // ingested wait for the next poll and are signed together: every pass is two or three
        // write transactions, and the database's one writer is what ingest needs most.
        if !pass.full {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = tokio::time::sleep(state.openbadges.poll) => {}
            }
        } else if state.shutdown.is_cancelled() {
            return;
        }
    }
}

/// What one pass found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    /// There was something to sign.
    pub busy: bool,
    /// It took as much as one pass takes: more is probably waiting.
    pub full: bool,
}

/// One pass: a batch of awards and revocations, then the status lists they changed.
pub async fn step(state: &AppState, holder: &str) -> anyhow::Result<Pass> {
    let ob = &state.openbadges;
    let store = &*state.store;
    let keys = ob.keys.get(store).await?;
    let now = Utc::now();
    let lease_until = now + chrono::Duration::from_std(LEASE).expect("small");
    let work = store
        .ob_claim(holder, ob.batch_size, ob.list_size, now, lease_until)
        .await?;
    let mut pass = Pass::default();
    if let Some(work) = work {
        pass.busy = true;
        pass.full = work.events >= u64::from(ob.batch_size);
        let signed = sign_batch(state, &keys, &work).await?;
        // A list the claim has just opened is signed before the first credential naming it is
        // published, so a verifier never finds a credential whose status list is missing.
        let lists = sign_lists(state, &keys).await?;
        pass.full |= lists == LISTS_PER_PASS as usize;
        let count = signed.len();
        match store.ob_complete(holder, &work, signed, Utc::now()).await? {
            Some(done) => {
                metrics::counter!(crate::metrics::OB_CREDENTIALS_SIGNED).increment(done.signed);
                metrics::counter!(crate::metrics::OB_CREDENTIALS_REVOKED).increment(done.revoked);
                tracing::debug!(
                    signed = done.signed,
                    revoked = done.revoked,
                    events = work.events,
                    "Open Badges batch stored"
                );
            }
            None => tracing::info!(count, "Open Badges batch was completed elsewhere; dropped"),
        }
    }
    let lists = sign_lists(state, &keys).await?;
    pass.busy |= lists > 0;
    pass.full |= lists == LISTS_PER_PASS as usize;
    Ok(pass)
}

/// Signs the status lists whose bits changed since their last signature (or that were never
/// signed). Returns how many there were.
async fn sign_lists(state: &AppState, keys: &Arc<Keys>) -> anyhow::Result<usize> {
    let ob = &state.openbadges;
    let store = &*state.store;
    let lists = store.ob_lists_to_sign(LISTS_PER_PASS).await?;
    let count = lists.len();
    for list in lists {
        let unsigned = documents::status_list(ob, &list, Utc::now());
        let options = ProofOptions {
            verification_method: ob.method(&keys.active_id),
            created: credential::datetime(Utc::now()),
        };
        let key = Arc::clone(keys);
        let signed = ob
            .signer
            .run(move || proof::sign_own(&unsigned, &key.active, &options))
            .await??;
        let text = serde_json::to_string(&signed)?;
        if store
            .ob_store_status_list(list.id, list.version, text, Utc::now())
            .await?
        {
            metrics::counter!(crate::metrics::OB_STATUS_LISTS_SIGNED).increment(1);
        }
    }
    Ok(count)
}

/// Signs a batch's awards on the signing threads, one chunk per thread.
async fn sign_batch(
    state: &AppState,
    keys: &Arc<Keys>,
    work: &ObWork,
) -> anyhow::Result<Vec<SignedCredential>> {
    if work.issues.is_empty() {
        return Ok(Vec::new());
    }
    let ob = &state.openbadges;
    let achievements = achievements_of(state, &work.issues).await?;
    let created = credential::datetime(Utc::now());
    let mut jobs: Vec<(String, Option<DateTime<Utc>>, serde_json::Value)> =
        Vec::with_capacity(work.issues.len());
    for issue in &work.issues {
        let achievement = achievements
            .get(&issue.award.template_id)
            .cloned()
            .context("template of a claimed award")?;
        let salt = hex::encode(rand::random::<[u8; 16]>());
        jobs.push((
            issue.award.id.clone(),
            issue.award.expires_at,
            documents::credential(ob, issue, achievement, salt),
        ));
    }
    let threads = ob.signer.threads().min(jobs.len()).max(1);
    let per = jobs.len().div_ceil(threads);
    let mut handles = Vec::new();
    let mut rest = jobs;
    while !rest.is_empty() {
        let chunk: Vec<_> = rest.drain(..per.min(rest.len())).collect();
        let keys = keys.clone();
        let options = ProofOptions {
            verification_method: ob.method(&keys.active_id),
            created: created.clone(),
        };
        handles.push(ob.signer.run(move || {
            chunk
                .into_iter()
                .map(|(award_id, valid_until, unsigned)| {
                    let signed = proof::sign_own(&unsigned, &keys.active, &options)?;
                    Ok(SignedCredential {
                        award_id,
                        document: serde_json::to_string(&signed)?,
                        key_id: keys.active_id.clone(),
                        valid_until,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut signed = Vec::with_capacity(work.issues.len());
    for result in futures::future::join_all(handles).await {
        signed.extend(result??);
    }
    Ok(signed)
}

/// The achievement of every template in the batch (one read per template).
async fn achievements_of(
    state: &AppState,
    issues: &[ObIssue],
) -> anyhow::Result<HashMap<String, Achievement>> {
    let mut out = HashMap::new();
    for issue in issues {
        if out.contains_key(&issue.award.template_id) {
            continue;
        }
        let config = state.store.get_template(&issue.award.template_id).await?;
        out.insert(
            issue.award.template_id.clone(),
            documents::achievement(&state.openbadges, &issue.template, &config.requirements),
        );
    }
    Ok(out)
}

/// Signs everything waiting now, for commands and tests (`accolade openbadges sign`).
pub async fn drain(state: &AppState) -> anyhow::Result<()> {
    let holder = format!("ob-cli-{}", uuid::Uuid::new_v4().simple());
    while step(state, &holder).await?.busy {}
    Ok(())
}
