//! The Open Badges 3.0 issuer: claims reserve one credential (public id, status-list entry) per
//! award of a local template and find the same reservation after a lost lease; Credly
//! templates' events are passed by; a completion stores each credential once and only while the
//! claim's cursor and lease still hold; a live lease keeps other holders out; a revocation sets
//! exactly its entry's bit and bumps the list's version; status lists are signed per version and
//! roll over when half used; signing keys are added once and rotated; reads, `NotFound` and the
//! backlog.
//!
//! On PostgreSQL a claim reads only events of transactions older than every running one in the
//! cluster, which the suite's other databases keep busy: the helpers here claim until the events
//! expected are there, rather than expect them at the first try.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use accolade_domain::template::Origin;
use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::support::*;
use crate::{
    AwardFilter, IndexCache, ManualChange, NewObKey, ObCompleted, ObCursor, ObIssue, ObWork,
    SignedCredential, Store,
};

/// A status list size large enough that the tests' few entries never roll it over.
const LIST_SIZE: u32 = 64;
const KEY: &str = "key-1";

/// Now, at the microsecond precision both stores keep.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

fn new_key(id: &str) -> NewObKey {
    NewObKey {
        id: id.to_string(),
        public_multibase: format!("z6Mk{id}"),
        secret_sealed: id.as_bytes().to_vec(),
    }
}

/// Adds the signing key the tests' documents name.
async fn with_key(store: &Arc<dyn Store>) {
    store.ob_add_key(new_key(KEY), true, now()).await.unwrap();
}

/// A local template and a Credly one, both awarded for passing the demo course.
async fn local_and_credly(store: &Arc<dyn Store>) -> (String, String) {
    let (local, _) = configure_active(store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    let (credly, _) =
        configure_active_on_credly(store, "Remote", vec![passed_course(DEMO_COURSE, None)]).await;
    (local.id, credly.id)
}

/// Each learner passes the demo course (awarding every active template of it).
async fn pass(store: &Arc<dyn Store>, learners: &[&str]) {
    let index = IndexCache::new();
    for l in learners {
        send_one(
            store,
            &index,
            passing(&format!("ob-{l}"), l, DEMO_COURSE, true),
        )
        .await;
    }
}

/// The award of `template_id` to each learner, by learner.
async fn awards_by_learner(store: &Arc<dyn Store>, template_id: &str) -> BTreeMap<String, String> {
    awards_where(
        store,
        &AwardFilter {
            template_id: Some(template_id.to_string()),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .map(|a| (a.learner, a.id))
    .collect()
}

async fn revoke(store: &Arc<dyn Store>, award_id: &str) {
    store
        .revoke_award(
            award_id,
            ManualChange {
                reason: "test".into(),
                at: Utc::now(),
            },
        )
        .await
        .unwrap();
}

/// Claims (for `holder`, at `now`, leased until `lease_until`) until a batch of exactly `n`
/// events comes back. Claiming again as the same holder is harmless: the cursor has not moved
/// and the reservations are found again.
async fn claim_events(
    store: &Arc<dyn Store>,
    holder: &str,
    n: u64,
    list_size: u32,
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> ObWork {
    let deadline = Instant::now() + StdDuration::from_secs(180);
    loop {
        let work = store
            .ob_claim(holder, n as u32, list_size, at, lease_until)
            .await
            .unwrap();
        match work {
            Some(w) if w.events == n => return w,
            other => assert!(
                Instant::now() < deadline,
                "{holder} never claimed {n} events; last claim: {other:?}"
            ),
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
}

/// The document the tests sign for an issue.
fn document(issue: &ObIssue) -> String {
    format!(
        r#"{{"id":"urn:uuid:{}","award":"{}"}}"#,
        issue.credential_id, issue.award.id
    )
}

fn sign(work: &ObWork) -> Vec<SignedCredential> {
    work.issues
        .iter()
        .map(|i| SignedCredential {
            award_id: i.award.id.clone(),
            document: document(i),
            key_id: KEY.into(),
            valid_until: None,
        })
        .collect()
}

/// Claims, signs and completes until `n` events have gone through; returns the issues signed.
async fn drain(store: &Arc<dyn Store>, n: u64, list_size: u32, at: DateTime<Utc>) -> Vec<ObIssue> {
    let deadline = Instant::now() + StdDuration::from_secs(180);
    let (mut seen, mut issues) = (0, Vec::new());
    while seen < n {
        let work = store
            .ob_claim("drain", (n - seen) as u32, list_size, at, at + secs(60))
            .await
            .unwrap();
        match work {
            Some(w) => {
                store
                    .ob_complete("drain", &w, sign(&w), at)
                    .await
                    .unwrap()
                    .expect("the drain's own claim completes");
                seen += w.events;
                issues.extend(w.issues);
            }
            None => {
                assert!(Instant::now() < deadline, "drained {seen} of {n} events");
                std::thread::sleep(StdDuration::from_millis(10));
            }
        }
    }
    assert_eq!(seen, n, "more events than expected");
    issues
}

/// The bytes of a list of `size` entries with exactly `set` set (0 = the first byte's most
/// significant bit).
fn bits_with(size: usize, set: &[i64]) -> Vec<u8> {
    let mut bits = vec![0u8; size / 8];
    for &i in set {
        bits[i as usize / 8] |= 0x80 >> (i % 8);
    }
    bits
}

/// Reservations by award: (credential id, list, index).
fn reservations(work: &ObWork) -> BTreeMap<String, (String, i64, i64)> {
    work.issues
        .iter()
        .map(|i| {
            (
                i.award.id.clone(),
                (i.credential_id.clone(), i.status_list, i.status_index),
            )
        })
        .collect()
}

/// A claim reserves one credential per award of a local template: a random UUID v4, distinct
/// entries of one status list, with the award, its template and the learner's address and
/// name; a claim after the lease was lost (a crash before completing) finds the same
/// reservations, and the stale claim can no longer complete.
pub async fn ob_claim_reserves_one_credential_per_local_award(store: Arc<dyn Store>) {
    with_key(&store).await;
    let (local, credly) = local_and_credly(&store).await;
    pass(&store, &["ann", "bob", "cy"]).await;
    let local_awards = awards_by_learner(&store, &local).await;
    assert_eq!(local_awards.len(), 3);
    assert_eq!(awards_by_learner(&store, &credly).await.len(), 3);

    let t0 = now();
    let work = claim_events(&store, "a", 6, LIST_SIZE, t0, t0 + secs(60)).await;
    assert_eq!(
        work.from,
        ObCursor::default(),
        "the cursor starts at the beginning"
    );
    assert_ne!(work.to, work.from);
    assert!(work.revoked_awards.is_empty());
    assert_eq!(work.issues.len(), 3, "Credly awards are not issued here");
    let issued: BTreeSet<&str> = work.issues.iter().map(|i| i.award.id.as_str()).collect();
    assert_eq!(issued, local_awards.values().map(String::as_str).collect());
    for i in &work.issues {
        assert_eq!(i.template.id, local);
        assert_eq!(i.template.origin, Origin::Local);
        let l = &i.award.learner;
        assert_eq!(local_awards[l], i.award.id);
        assert_eq!(
            i.learner_email.as_deref(),
            Some(format!("{l}@example.com").as_str())
        );
        assert_eq!(
            i.learner_name.as_deref(),
            Some(format!("Learner {l}").as_str())
        );
        let id = &i.credential_id;
        assert!(accolade_domain::ids::is_uuid(id) && id.len() == 36, "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "a version 4 UUID: {id}");
        assert_eq!(*id, id.to_ascii_lowercase());
        assert!((0..i64::from(LIST_SIZE)).contains(&i.status_index));
    }
    let ids: BTreeSet<&str> = work
        .issues
        .iter()
        .map(|i| i.credential_id.as_str())
        .collect();
    assert_eq!(ids.len(), 3, "distinct credential ids");
    let entries: BTreeSet<(i64, i64)> = work
        .issues
        .iter()
        .map(|i| (i.status_list, i.status_index))
        .collect();
    assert_eq!(entries.len(), 3, "distinct entries");
    let list_id = work.issues[0].status_list;
    assert!(work.issues.iter().all(|i| i.status_list == list_id));
    let list = store.ob_status_list(list_id).await.unwrap();
    assert_eq!((list.size, list.used), (i64::from(LIST_SIZE), 3));
    assert_eq!(list.bits, vec![0u8; LIST_SIZE as usize / 8]);
    assert_eq!(
        (list.version, list.signed_version),
        (1, 0),
        "a new list is to be signed"
    );
    assert_eq!(list.document, None);
    for i in &work.issues {
        assert_eq!(
            store.ob_credential_of_award(&i.award.id).await.unwrap(),
            None
        );
    }

    // "a" crashed: once its lease is over, "b" claims the same events and reservations.
    let t1 = t0 + secs(61);
    let again = claim_events(&store, "b", 6, LIST_SIZE, t1, t1 + secs(60)).await;
    assert_eq!((&again.from, &again.to), (&work.from, &work.to));
    assert_eq!(reservations(&again), reservations(&work));
    assert_eq!(store.ob_status_list(list_id).await.unwrap().used, 3);

    assert_eq!(
        store
            .ob_complete("a", &work, sign(&work), t1)
            .await
            .unwrap(),
        None,
        "the lease is b's now"
    );
    let done = store
        .ob_complete("b", &again, sign(&again), t1)
        .await
        .unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 3,
            revoked: 0
        })
    );
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
}

/// Events of Credly templates are counted in the batch and passed by: no issue, no revocation,
/// no status list; completing the batch with nothing signed moves the cursor past them.
pub async fn ob_credly_template_events_are_skipped(store: Arc<dyn Store>) {
    let (credly, _) =
        configure_active_on_credly(&store, "Remote", vec![passed_course(DEMO_COURSE, None)]).await;
    pass(&store, &["ann", "bob"]).await;
    let awards = awards_by_learner(&store, &credly.id).await;
    revoke(&store, &awards["ann"]).await;
    assert_eq!(store.ob_backlog().await.unwrap(), 3);
    let t0 = now();
    let work = claim_events(&store, "a", 3, LIST_SIZE, t0, t0 + secs(60)).await;
    assert!(
        work.issues.is_empty() && work.revoked_awards.is_empty(),
        "{work:?}"
    );
    let done = store.ob_complete("a", &work, vec![], t0).await.unwrap();
    assert_eq!(done, Some(ObCompleted::default()));
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
    assert_eq!(
        store
            .ob_claim("a", 10, LIST_SIZE, t0, t0 + secs(60))
            .await
            .unwrap(),
        None,
        "nothing is waiting"
    );
    let totals = store.ob_totals().await.unwrap();
    assert_eq!((totals.credentials, totals.status_lists), (0, 0));
}

/// A `badge.expired` event in the stream is passed by like a Credly template's: the claim
/// covers it without error and issues nothing for it. The award's claim carries its
/// `expires_at` (the credential's `validUntil`) and the template its criteria text.
pub async fn ob_expired_events_are_passed_by(store: Arc<dyn Store>) {
    with_key(&store).await;
    let t = store
        .create_template(crate::NewTemplate {
            expires_after: Some(accolade_domain::expiry::ExpiresAfter::parse("30d").unwrap()),
            criteria: Some("Pass the exam.".into()),
            ..local_template("Expiring", false)
        })
        .await
        .unwrap();
    store
        .add_requirement(&t.id, passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    activate(&store, &t.id).await;
    pass(&store, &["ann"]).await;
    let award = awards_by_learner(&store, &t.id).await["ann"].clone();
    let expires_at = store.get_award(&award).await.unwrap().expires_at.unwrap();
    let notified = store.notify_expired_awards(expires_at, 10).await.unwrap();
    assert_eq!(notified.len(), 1);
    let t0 = now();
    let work = claim_events(&store, "a", 2, LIST_SIZE, t0, t0 + secs(60)).await;
    assert!(work.revoked_awards.is_empty(), "{work:?}");
    assert_eq!(work.issues.len(), 1, "the award, once");
    let issue = &work.issues[0];
    assert_eq!(issue.award.id, award);
    assert_eq!(issue.award.expires_at, Some(expires_at));
    assert_eq!(issue.template.criteria.as_deref(), Some("Pass the exam."));
    let signed = vec![SignedCredential {
        award_id: award.clone(),
        document: document(issue),
        key_id: KEY.into(),
        valid_until: Some(expires_at),
    }];
    let done = store.ob_complete("a", &work, signed, t0).await.unwrap();
    assert_eq!(done.map(|d| d.signed), Some(1));
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
    let stored = store.ob_credential_of_award(&award).await.unwrap().unwrap();
    assert_eq!(stored.valid_until, Some(expires_at));
}

/// A completion stores each document once, as signed; completing the same claim again does
/// nothing, and a document for an award signed before is not stored over it. A reserved credential
/// is not served until it is signed.
pub async fn ob_complete_stores_each_credential_once(store: Arc<dyn Store>) {
    with_key(&store).await;
    let (local, _) =
        configure_active(&store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    pass(&store, &["ann"]).await;
    let t0 = now();
    let work = claim_events(&store, "a", 1, LIST_SIZE, t0, t0 + secs(60)).await;
    let issue = work.issues[0].clone();
    let valid_until = t0 + secs(86_400);
    let signed = vec![SignedCredential {
        award_id: issue.award.id.clone(),
        document: document(&issue),
        key_id: KEY.into(),
        valid_until: Some(valid_until),
    }];
    let t1 = t0 + secs(1);
    let done = store
        .ob_complete("a", &work, signed.clone(), t1)
        .await
        .unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 1,
            revoked: 0
        })
    );
    assert_eq!(
        store.ob_complete("a", &work, signed, t1).await.unwrap(),
        None,
        "the cursor has moved on"
    );
    let stored = store.ob_credential(&issue.credential_id).await.unwrap();
    assert_eq!(stored.credential_id, issue.credential_id);
    assert_eq!(stored.award_id, issue.award.id);
    assert_eq!(stored.template_id, local.id);
    assert_eq!(stored.learner, "ann");
    assert_eq!(stored.document, document(&issue));
    assert_eq!(stored.key_id, KEY);
    assert_eq!(
        (stored.status_list, stored.status_index),
        (issue.status_list, issue.status_index)
    );
    assert_eq!(stored.signed_at, t1);
    assert_eq!(stored.valid_until, Some(valid_until));
    assert_eq!(stored.revoked_at, None);
    assert_eq!(
        store.ob_credential_of_award(&issue.award.id).await.unwrap(),
        Some(stored.clone())
    );

    // Bob's batch, completed with a second document for Ann's award as well: only Bob's is new.
    pass(&store, &["bob"]).await;
    let work = claim_events(&store, "a", 1, LIST_SIZE, t1, t1 + secs(60)).await;
    let bob = work.issues[0].clone();
    assert_eq!(bob.award.learner, "bob");
    let mut signed = sign(&work);
    signed.push(SignedCredential {
        award_id: issue.award.id.clone(),
        document: r#"{"forged":true}"#.into(),
        key_id: KEY.into(),
        valid_until: None,
    });
    let done = store.ob_complete("a", &work, signed, t1).await.unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 1,
            revoked: 0
        })
    );
    assert_eq!(
        store.ob_credential(&issue.credential_id).await.unwrap(),
        stored,
        "a credential is immutable"
    );

    // Cy's credential is reserved but not signed yet: not served.
    pass(&store, &["cy"]).await;
    let work = claim_events(&store, "a", 1, LIST_SIZE, t1, t1 + secs(60)).await;
    let cy = work.issues[0].clone();
    assert_not_found(store.ob_credential(&cy.credential_id).await, "credential");
    assert_eq!(
        store.ob_credential_of_award(&cy.award.id).await.unwrap(),
        None
    );
    let ids = store
        .ob_credential_ids(&[
            issue.award.id.clone(),
            bob.award.id.clone(),
            cy.award.id.clone(),
            "no-such-award".into(),
        ])
        .await
        .unwrap();
    let expected: HashMap<String, String> = [
        (issue.award.id.clone(), issue.credential_id.clone()),
        (bob.award.id.clone(), bob.credential_id.clone()),
    ]
    .into_iter()
    .collect();
    assert_eq!(ids, expected);
    let totals = store.ob_totals().await.unwrap();
    assert_eq!(
        (
            totals.credentials,
            totals.revoked,
            totals.status_lists,
            totals.lists_unsigned
        ),
        (2, 0, 1, 1)
    );
}

/// While a holder's lease is live, other holders get nothing (of two claiming at once, one gets
/// the batch); once it expires another holder gets the same batch, and the first can no longer
/// complete it.
pub async fn ob_lease_keeps_other_holders_out_until_it_expires(store: Arc<dyn Store>) {
    with_key(&store).await;
    configure_active(&store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    pass(&store, &["ann", "bob"]).await;
    let t0 = now();
    // Until the events can be claimed, with a lease over at once.
    let probe = claim_events(&store, "probe", 2, LIST_SIZE, t0, t0).await;

    let t1 = t0 + secs(1);
    let claims = join_all(vec![
        store.ob_claim("a", 2, LIST_SIZE, t1, t1 + secs(60)),
        store.ob_claim("b", 2, LIST_SIZE, t1, t1 + secs(60)),
    ])
    .await;
    let claims: Vec<Option<ObWork>> = claims.into_iter().map(Result::unwrap).collect();
    let (winner, loser, work) = match (&claims[0], &claims[1]) {
        (Some(w), None) => ("a", "b", w.clone()),
        (None, Some(w)) => ("b", "a", w.clone()),
        other => panic!("exactly one of two concurrent claims gets the batch: {other:?}"),
    };
    assert_eq!(work.events, 2);
    assert_eq!(reservations(&work), reservations(&probe));

    let t2 = t1 + secs(30);
    assert_eq!(
        store
            .ob_claim(loser, 2, LIST_SIZE, t2, t2 + secs(60))
            .await
            .unwrap(),
        None,
        "the lease is live"
    );
    let t3 = t1 + secs(61);
    let taken = claim_events(&store, loser, 2, LIST_SIZE, t3, t3 + secs(60)).await;
    assert_eq!((&taken.from, &taken.to), (&work.from, &work.to));
    assert_eq!(reservations(&taken), reservations(&work));
    assert_eq!(
        store
            .ob_complete(winner, &work, sign(&work), t3)
            .await
            .unwrap(),
        None,
        "the lease was lost"
    );
    let done = store
        .ob_complete(loser, &taken, sign(&taken), t3)
        .await
        .unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 2,
            revoked: 0
        })
    );
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
}

/// A revocation sets exactly its credential's bit (and records when), bumps the list's version
/// so that it is signed again; a list's signed document is stored per version, never an older
/// one over a newer. An award and its revocation in one batch get a credential that is revoked.
pub async fn ob_revocation_sets_its_entry_bit_and_bumps_the_version(store: Arc<dyn Store>) {
    with_key(&store).await;
    let (local, _) =
        configure_active(&store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    pass(&store, &["ann", "bob", "cy"]).await;
    let t0 = now();
    let issues = drain(&store, 3, LIST_SIZE, t0).await;
    let by_learner: BTreeMap<String, ObIssue> = issues
        .into_iter()
        .map(|i| (i.award.learner.clone(), i))
        .collect();
    let list_id = by_learner["ann"].status_list;

    let to_sign = store.ob_lists_to_sign(10).await.unwrap();
    assert_eq!(to_sign.len(), 1);
    assert_eq!(
        (to_sign[0].id, to_sign[0].version, to_sign[0].signed_version),
        (list_id, 1, 0)
    );
    assert!(store
        .ob_store_status_list(list_id, 1, "list v1".into(), t0)
        .await
        .unwrap());
    assert!(
        !store
            .ob_store_status_list(list_id, 1, "list v1 again".into(), t0)
            .await
            .unwrap(),
        "version 1 is stored already"
    );
    assert!(store.ob_lists_to_sign(10).await.unwrap().is_empty());
    let list = store.ob_status_list(list_id).await.unwrap();
    assert_eq!(list.document.as_deref(), Some("list v1"));
    assert_eq!((list.version, list.signed_version), (1, 1));

    let bob = &by_learner["bob"];
    revoke(&store, &bob.award.id).await;
    let t1 = t0 + secs(1);
    let work = claim_events(&store, "a", 1, LIST_SIZE, t1, t1 + secs(60)).await;
    assert!(work.issues.is_empty());
    assert_eq!(work.revoked_awards, vec![bob.award.id.clone()]);
    let done = store.ob_complete("a", &work, vec![], t1).await.unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 0,
            revoked: 1
        })
    );
    let list = store.ob_status_list(list_id).await.unwrap();
    assert_eq!(
        list.bits,
        bits_with(LIST_SIZE as usize, &[bob.status_index])
    );
    assert_eq!((list.version, list.signed_version), (2, 1));
    assert_eq!(
        list.document.as_deref(),
        Some("list v1"),
        "until signed again"
    );
    let revoked = store.ob_credential(&bob.credential_id).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(t1));
    assert_eq!(
        revoked.document,
        document(bob),
        "the credential itself is unchanged"
    );
    for l in ["ann", "cy"] {
        let c = store
            .ob_credential(&by_learner[l].credential_id)
            .await
            .unwrap();
        assert_eq!(c.revoked_at, None);
    }
    let to_sign = store.ob_lists_to_sign(10).await.unwrap();
    assert_eq!(
        to_sign
            .iter()
            .map(|l| (l.id, l.version))
            .collect::<Vec<_>>(),
        vec![(list_id, 2)]
    );
    assert!(!store
        .ob_store_status_list(list_id, 1, "stale".into(), t1)
        .await
        .unwrap());
    assert!(store
        .ob_store_status_list(list_id, 2, "list v2".into(), t1)
        .await
        .unwrap());
    assert!(
        !store
            .ob_store_status_list(list_id, 3, "not yet changed".into(), t1)
            .await
            .unwrap(),
        "no version 3 exists"
    );
    let list = store.ob_status_list(list_id).await.unwrap();
    assert_eq!(
        (list.document.as_deref(), list.signed_version),
        (Some("list v2"), 2)
    );

    // Dan is awarded and revoked before the issuer sees either.
    pass(&store, &["dan"]).await;
    let dan = awards_by_learner(&store, &local.id).await["dan"].clone();
    revoke(&store, &dan).await;
    let t2 = t1 + secs(1);
    let work = claim_events(&store, "a", 2, LIST_SIZE, t2, t2 + secs(60)).await;
    assert_eq!(work.issues.len(), 1);
    assert_eq!(work.revoked_awards, vec![dan.clone()]);
    let done = store
        .ob_complete("a", &work, sign(&work), t2)
        .await
        .unwrap();
    assert_eq!(
        done,
        Some(ObCompleted {
            signed: 1,
            revoked: 1
        })
    );
    let dan_issue = &work.issues[0];
    let stored = store.ob_credential(&dan_issue.credential_id).await.unwrap();
    assert_eq!(stored.revoked_at, Some(t2));
    let list = store.ob_status_list(dan_issue.status_list).await.unwrap();
    assert_eq!(
        list.bits,
        bits_with(
            LIST_SIZE as usize,
            &[bob.status_index, dan_issue.status_index]
        )
    );
    assert_eq!(list.version, 3);
    let totals = store.ob_totals().await.unwrap();
    assert_eq!(
        (
            totals.credentials,
            totals.revoked,
            totals.status_lists,
            totals.lists_unsigned
        ),
        (4, 2, 1, 1)
    );
}

/// A status list takes entries while less than half used; the next entry opens a new list
/// (clear bits, to be signed).
pub async fn ob_status_lists_roll_over_when_half_used(store: Arc<dyn Store>) {
    with_key(&store).await;
    configure_active(&store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    let learners: Vec<String> = (1..=9).map(|n| format!("learner{n}")).collect();
    let names: Vec<&str> = learners.iter().map(String::as_str).collect();
    pass(&store, &names).await;
    let issues = drain(&store, 9, 8, now()).await;
    assert_eq!(issues.len(), 9);
    let mut lists: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for i in &issues {
        assert!((0..8).contains(&i.status_index), "{i:?}");
        assert!(
            lists
                .entry(i.status_list)
                .or_default()
                .insert(i.status_index),
            "entry taken twice: {i:?}"
        );
    }
    let sizes: Vec<usize> = lists.values().map(BTreeSet::len).collect();
    assert_eq!(sizes, vec![4, 4, 1], "in list order (oldest first)");
    // In commit order: the first four in the first list, and so on.
    let order: Vec<i64> = issues.iter().map(|i| i.status_list).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    for (id, entries) in &lists {
        let list = store.ob_status_list(*id).await.unwrap();
        assert_eq!((list.size, list.used), (8, entries.len() as i64));
        assert_eq!(list.bits, vec![0u8]);
        assert_eq!((list.version, list.signed_version), (1, 0));
    }
    assert_eq!(store.ob_lists_to_sign(2).await.unwrap().len(), 2, "limit");
    assert_eq!(store.ob_totals().await.unwrap().lists_unsigned, 3);
}

/// The first key is added once however many add it at once with `only_if_none`; adding a key
/// otherwise retires the active one (kept, oldest first); a refused addition changes nothing.
pub async fn ob_keys_are_added_once_and_rotated(store: Arc<dyn Store>) {
    assert!(store.ob_keys().await.unwrap().is_empty());
    let t0 = now();
    let added = join_all(vec![
        store.ob_add_key(new_key("key-a"), true, t0),
        store.ob_add_key(new_key("key-b"), true, t0),
    ])
    .await;
    let (first, second) = (
        added[0].as_ref().unwrap().clone(),
        added[1].as_ref().unwrap().clone(),
    );
    assert_eq!(first, second, "one key wins");
    assert_eq!(store.ob_keys().await.unwrap(), vec![first.clone()]);
    assert_eq!(first.retired_at, None);
    assert_eq!(first.created_at, t0);
    assert_eq!(first.public_multibase, format!("z6Mk{}", first.id));
    assert_eq!(first.secret_sealed, first.id.as_bytes());

    let t1 = t0 + secs(10);
    let rotated = store.ob_add_key(new_key("key-c"), false, t1).await.unwrap();
    assert_eq!(rotated.id, "key-c");
    assert_eq!((rotated.created_at, rotated.retired_at), (t1, None));
    let keys = store.ob_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id, first.id);
    assert_eq!(
        keys[0].retired_at,
        Some(t1),
        "the old key is retired, not removed"
    );
    assert_eq!(keys[1], rotated);

    let t2 = t0 + secs(20);
    let kept = store.ob_add_key(new_key("key-d"), true, t2).await.unwrap();
    assert_eq!(kept, rotated, "a key exists: nothing added");
    assert_conflict(
        store.ob_add_key(new_key("key-c"), false, t2).await,
        "ob_key_exists",
    );
    assert_eq!(store.ob_keys().await.unwrap(), keys, "nothing changed");
}

/// Unknown credentials and lists are not found; an empty store has no totals and no backlog.
pub async fn ob_unknown_credentials_and_lists_are_not_found(store: Arc<dyn Store>) {
    assert_not_found(
        store.ob_credential("no-such-credential").await,
        "credential",
    );
    assert_not_found(store.ob_status_list(1).await, "status list");
    assert_eq!(
        store.ob_credential_of_award("no-such-award").await.unwrap(),
        None
    );
    assert!(store.ob_credential_ids(&[]).await.unwrap().is_empty());
    assert!(store
        .ob_credential_ids(&["no-such-award".into()])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.ob_totals().await.unwrap(), Default::default());
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
    assert!(store.ob_lists_to_sign(10).await.unwrap().is_empty());
    assert!(!store
        .ob_store_status_list(1, 1, "x".into(), now())
        .await
        .unwrap());
    let t0 = now();
    assert_eq!(
        store
            .ob_claim("a", 10, LIST_SIZE, t0, t0 + secs(60))
            .await
            .unwrap(),
        None
    );
}

/// The backlog counts the outgoing events after the cursor, including those made before the
/// issuer first ran; completed batches take theirs off.
pub async fn ob_backlog_counts_events_after_the_cursor(store: Arc<dyn Store>) {
    with_key(&store).await;
    configure_active(&store, "Local", vec![passed_course(DEMO_COURSE, None)]).await;
    pass(&store, &["ann", "bob", "cy"]).await;
    assert_eq!(store.ob_backlog().await.unwrap(), 3);
    let t0 = now();
    let work = claim_events(&store, "a", 2, LIST_SIZE, t0, t0 + secs(60)).await;
    assert_eq!(work.issues.len(), 2);
    assert_eq!(store.ob_backlog().await.unwrap(), 3, "claimed is not done");
    store
        .ob_complete("a", &work, sign(&work), t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.ob_backlog().await.unwrap(), 1);
    drain(&store, 1, LIST_SIZE, t0).await;
    assert_eq!(store.ob_backlog().await.unwrap(), 0);
    assert_eq!(store.ob_totals().await.unwrap().credentials, 3);
}
