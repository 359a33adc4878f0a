//! The Credly bridge: organizations and their encrypted keys or OAuth clients, the rotation
//! lease and record, full template sync, templates as webhooks report them, webhook
//! notifications with their jobs, award states reported by Credly, deferring a job without using
//! up an attempt, and releasing deferred jobs on a key rotation.

use std::collections::BTreeMap;
use std::sync::Arc;

use accolade_domain::award::AwardState;
use accolade_domain::outbox::{kind, JobStatus};
use accolade_domain::template::{Origin, Template};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;

use super::support::*;
use crate::{
    CredlyAuthMethod, CredlyKey, CredlyOrganization, Delivery, IndexCache, JobResult, KeyRotation,
    NewCredlyNotification, NewCredlyOAuthOrganization, NewCredlyOrganization, NewTemplate,
    OAuthClient, Page, ProviderTemplate, RotationTrigger, Store, SyncSummary, TemplateChange,
    TemplateFilter, PROVIDER_STATE_GONE,
};

const ORG: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0a1b2c3d4e5f";
const OTHER_ORG: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const UNKNOWN_ORG: &str = "00000000-0000-4000-8000-000000000000";

/// A Credly template id (a UUID, as Credly's are) numbered `n`.
fn tid(n: u32) -> String {
    format!("7e1c0000-0000-4000-8000-{n:012}")
}

fn key(ciphertext: &[u8], last4: &str, created: &str, expires: &str) -> CredlyKey {
    CredlyKey {
        ciphertext: ciphertext.to_vec(),
        last4: last4.to_string(),
        created_at: at(created),
        expires_at: at(expires),
    }
}

fn new_org(id: &str, name: &str) -> NewCredlyOrganization {
    NewCredlyOrganization {
        id: id.to_string(),
        name: name.to_string(),
        key: key(
            &[0, 1, 2, 3, 250, 251, 252, 253, 254, 255],
            "a1b2",
            "2026-01-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
        ),
    }
}

async fn add_org(store: &Arc<dyn Store>, id: &str) -> CredlyOrganization {
    store.add_credly_org(new_org(id, "Acme")).await.unwrap()
}

/// A template as Credly lists it (`state` is `active` for every template of a full sync).
fn provider(n: u32, name: &str, state: &str) -> ProviderTemplate {
    ProviderTemplate {
        id: tid(n),
        name: name.to_string(),
        description: format!("{name} description"),
        image_url: Some(format!("https://images.credly.example/{n}.png")),
        state: state.to_string(),
    }
}

fn active(n: u32, name: &str) -> ProviderTemplate {
    provider(n, name, "active")
}

fn summary(
    created: u32,
    updated: u32,
    deactivated: u32,
    unchanged: u32,
    pages: u32,
) -> SyncSummary {
    SyncSummary {
        created,
        updated,
        deactivated,
        unchanged,
        pages,
    }
}

async fn sync(
    store: &Arc<dyn Store>,
    org: &str,
    list: Vec<ProviderTemplate>,
    dry_run: bool,
) -> SyncSummary {
    store
        .sync_credly_templates(org, list, 1, dry_run)
        .await
        .unwrap()
}

/// Every template of an organization, by id.
async fn org_templates(store: &Arc<dyn Store>, org: &str) -> BTreeMap<String, Template> {
    let filter = TemplateFilter {
        organization_id: Some(org.to_string()),
        ..Default::default()
    };
    let page = store
        .list_templates(&filter, Page::new(Some(Page::MAX_LIMIT), None))
        .await
        .unwrap();
    assert_eq!(page.next_offset, None);
    page.items.into_iter().map(|t| (t.id.clone(), t)).collect()
}

/// Every template (of every origin), by id.
async fn every_template(store: &Arc<dyn Store>) -> BTreeMap<String, Template> {
    let page = store
        .list_templates(
            &TemplateFilter::default(),
            Page::new(Some(Page::MAX_LIMIT), None),
        )
        .await
        .unwrap();
    assert_eq!(page.next_offset, None);
    page.items.into_iter().map(|t| (t.id.clone(), t)).collect()
}

async fn template(store: &Arc<dyn Store>, id: &str) -> Template {
    store.get_template(id).await.unwrap().template
}

async fn active_ids(store: &Arc<dyn Store>) -> Vec<String> {
    let (_, cfgs) = store.active_config().await.unwrap();
    cfgs.into_iter().map(|c| c.template.id).collect()
}

/// A time at microsecond precision (what both databases keep).
fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

// ---- organizations ------------------------------------------------------------------------

/// An added organization is returned by get and list with its name, key suffix and dates; its
/// UUID cannot be added twice; its key comes back exactly as stored.
pub async fn credly_org_is_added_listed_and_unique(store: Arc<dyn Store>) {
    assert!(store.list_credly_orgs().await.unwrap().is_empty());
    let before = now_micros() - Duration::seconds(1);
    let org = add_org(&store, ORG).await;
    let after = Utc::now() + Duration::seconds(1);
    assert_eq!(org.id, ORG);
    assert_eq!(org.name, "Acme");
    assert_eq!(org.auth_method, CredlyAuthMethod::Token);
    assert_eq!(org.api_key_last4.as_deref(), Some("a1b2"));
    assert_eq!(org.key_created_at, Some(at("2026-01-01T00:00:00+00:00")));
    assert_eq!(org.key_expires_at, Some(at("2027-01-01T00:00:00+00:00")));
    assert_eq!(org.oauth_client_id_last4, None);
    assert_eq!(org.oauth_created_at, None);
    assert_eq!(org.last_rotation, None);
    assert_eq!(org.rotation_lease_until, None);
    assert_eq!(org.last_sync_at, None);
    assert_eq!(org.last_sync, None);
    assert!(org.created_at > before && org.created_at < after);
    assert_eq!(org.updated_at, org.created_at);
    assert_eq!(store.get_credly_org(ORG).await.unwrap(), org);
    assert_eq!(store.list_credly_orgs().await.unwrap(), vec![org.clone()]);
    assert_eq!(
        store.credly_org_key(ORG).await.unwrap(),
        vec![0, 1, 2, 3, 250, 251, 252, 253, 254, 255],
        "the ciphertext comes back byte for byte"
    );

    assert_conflict(
        store.add_credly_org(new_org(ORG, "Acme again")).await,
        "organization_exists",
    );
    assert_eq!(
        store.get_credly_org(ORG).await.unwrap(),
        org,
        "a refused add changes nothing"
    );

    let mut other = new_org(OTHER_ORG, "Beta");
    other.key.ciphertext = vec![9; 40];
    let other = store.add_credly_org(other).await.unwrap();
    let listed = store.list_credly_orgs().await.unwrap();
    assert_eq!(listed, vec![org, other], "listed by name");
    assert_eq!(store.credly_org_key(OTHER_ORG).await.unwrap(), vec![9; 40]);
}

/// An update renames and/or rotates the key (suffix, dates and ciphertext all change).
pub async fn credly_org_update_renames_and_rotates(store: Arc<dyn Store>) {
    let org = add_org(&store, ORG).await;
    let renamed = store
        .update_credly_org(ORG, Some("Acme Learning".into()), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Acme Learning");
    assert_eq!(renamed.api_key_last4, org.api_key_last4);
    assert_eq!(renamed.key_created_at, org.key_created_at);
    assert_eq!(renamed.key_expires_at, org.key_expires_at);
    assert_eq!(renamed.created_at, org.created_at);
    assert!(renamed.updated_at >= org.updated_at);
    assert_eq!(
        store.credly_org_key(ORG).await.unwrap(),
        new_org(ORG, "").key.ciphertext,
        "a rename keeps the key"
    );

    let rotated = store
        .update_credly_org(
            ORG,
            None,
            Some(key(
                b"new nonce and ciphertext",
                "z9y8",
                "2026-06-01T00:00:00+00:00",
                "2027-06-01T00:00:00+00:00",
            )),
        )
        .await
        .unwrap();
    assert_eq!(rotated.name, "Acme Learning", "a rotation keeps the name");
    assert_eq!(rotated.api_key_last4.as_deref(), Some("z9y8"));
    assert_eq!(
        rotated.key_created_at,
        Some(at("2026-06-01T00:00:00+00:00"))
    );
    assert_eq!(
        rotated.key_expires_at,
        Some(at("2027-06-01T00:00:00+00:00"))
    );
    assert!(rotated.updated_at >= renamed.updated_at);
    assert_eq!(
        store.credly_org_key(ORG).await.unwrap(),
        b"new nonce and ciphertext".to_vec()
    );
    assert_eq!(store.get_credly_org(ORG).await.unwrap(), rotated);

    let both = store
        .update_credly_org(
            ORG,
            Some("Acme".into()),
            Some(key(
                b"third",
                "c3d4",
                "2026-07-01T00:00:00+00:00",
                "2027-07-01T00:00:00+00:00",
            )),
        )
        .await
        .unwrap();
    assert_eq!(
        (both.name.as_str(), both.api_key_last4.as_deref()),
        ("Acme", Some("c3d4"))
    );
    assert_eq!(store.credly_org_key(ORG).await.unwrap(), b"third".to_vec());
}

fn oauth_client(id: &[u8], secret: &[u8], last4: &str) -> OAuthClient {
    OAuthClient {
        client_id_ciphertext: id.to_vec(),
        client_secret_ciphertext: secret.to_vec(),
        client_id_last4: last4.to_string(),
        created_at: at("2026-02-01T00:00:00+00:00"),
    }
}

/// An organization added with OAuth client credentials has no key; its sealed client comes
/// back byte for byte; a key switches it to the token method and drops the client, and client
/// credentials switch it back and drop the key.
pub async fn credly_oauth_org_is_added_and_switches_method(store: Arc<dyn Store>) {
    let org = store
        .add_credly_oauth_org(NewCredlyOAuthOrganization {
            id: ORG.into(),
            name: "Acme".into(),
            client: oauth_client(b"sealed id", b"sealed secret", "id42"),
        })
        .await
        .unwrap();
    assert_eq!(org.auth_method, CredlyAuthMethod::OAuth);
    assert_eq!(org.oauth_client_id_last4.as_deref(), Some("id42"));
    assert_eq!(org.oauth_created_at, Some(at("2026-02-01T00:00:00+00:00")));
    assert_eq!(
        (&org.api_key_last4, org.key_created_at, org.key_expires_at),
        (&None, None, None)
    );
    assert_eq!(store.get_credly_org(ORG).await.unwrap(), org);
    assert_eq!(
        store.credly_org_oauth_client(ORG).await.unwrap(),
        oauth_client(b"sealed id", b"sealed secret", "id42")
    );
    assert_conflict(store.credly_org_key(ORG).await, "credly_auth_method");
    assert_conflict(
        store
            .add_credly_oauth_org(NewCredlyOAuthOrganization {
                id: ORG.into(),
                name: "Again".into(),
                client: oauth_client(b"x", b"y", "zzzz"),
            })
            .await,
        "organization_exists",
    );
    assert_conflict(
        store.add_credly_org(new_org(ORG, "Acme again")).await,
        "organization_exists",
    );
    assert_not_found(
        store.credly_org_oauth_client(UNKNOWN_ORG).await,
        "credly organization",
    );

    // A key: the token method, the client gone.
    let token = store
        .update_credly_org(
            ORG,
            None,
            Some(key(
                b"a key",
                "k3y4",
                "2026-03-01T00:00:00+00:00",
                "2026-08-28T00:00:00+00:00",
            )),
        )
        .await
        .unwrap();
    assert_eq!(token.auth_method, CredlyAuthMethod::Token);
    assert_eq!(token.api_key_last4.as_deref(), Some("k3y4"));
    assert_eq!(
        (&token.oauth_client_id_last4, token.oauth_created_at),
        (&None, None)
    );
    assert_eq!(store.credly_org_key(ORG).await.unwrap(), b"a key".to_vec());
    assert_conflict(
        store.credly_org_oauth_client(ORG).await,
        "credly_auth_method",
    );

    // Client credentials again, with a new name: the key is gone.
    let oauth = store
        .set_credly_org_oauth_client(
            ORG,
            Some("Acme Learning".into()),
            oauth_client(b"id 2", b"secret 2", "2222"),
        )
        .await
        .unwrap();
    assert_eq!(oauth.auth_method, CredlyAuthMethod::OAuth);
    assert_eq!(oauth.name, "Acme Learning");
    assert_eq!(oauth.oauth_client_id_last4.as_deref(), Some("2222"));
    assert_eq!((&oauth.api_key_last4, oauth.key_expires_at), (&None, None));
    assert_conflict(store.credly_org_key(ORG).await, "credly_auth_method");
    assert_eq!(
        store
            .credly_org_oauth_client(ORG)
            .await
            .unwrap()
            .client_secret_ciphertext,
        b"secret 2".to_vec()
    );
    // Without a name, the name stays.
    let kept = store
        .set_credly_org_oauth_client(ORG, None, oauth_client(b"id 3", b"secret 3", "3333"))
        .await
        .unwrap();
    assert_eq!(kept.name, "Acme Learning");
    assert_not_found(
        store
            .set_credly_org_oauth_client(UNKNOWN_ORG, None, oauth_client(b"i", b"s", "0000"))
            .await,
        "credly organization",
    );
}

/// The rotation lease: one claim at a time, again once it ran out; only keys expiring before
/// `due_before` when one is given; never for an OAuth organization. Finishing stores the new key,
/// records the attempt and frees the lease; a failed attempt keeps the key.
pub async fn credly_key_rotation_is_claimed_once_and_recorded(store: Arc<dyn Store>) {
    let now = now_micros();
    store
        .add_credly_org(NewCredlyOrganization {
            id: ORG.into(),
            name: "Acme".into(),
            key: CredlyKey {
                ciphertext: b"old key".to_vec(),
                last4: "old1".into(),
                created_at: now - Duration::days(170),
                expires_at: now + Duration::days(10),
            },
        })
        .await
        .unwrap();
    let lease = now + Duration::minutes(5);
    let due = Some(now + Duration::days(30));
    // Not due yet under a 7-day rule.
    assert!(!store
        .claim_credly_key_rotation(ORG, now, lease, Some(now + Duration::days(7)))
        .await
        .unwrap());
    assert!(store
        .claim_credly_key_rotation(ORG, now, lease, due)
        .await
        .unwrap());
    assert_eq!(
        store
            .get_credly_org(ORG)
            .await
            .unwrap()
            .rotation_lease_until,
        Some(lease)
    );
    // Held: refused, for auto and manual alike, until it runs out.
    assert!(!store
        .claim_credly_key_rotation(ORG, now, lease, due)
        .await
        .unwrap());
    assert!(!store
        .claim_credly_key_rotation(ORG, now + Duration::minutes(4), lease, None)
        .await
        .unwrap());
    let later = now + Duration::minutes(6);
    assert!(store
        .claim_credly_key_rotation(ORG, later, later + Duration::minutes(5), due)
        .await
        .unwrap());

    // A failed attempt: the key stays, the lease is freed, the failure is recorded.
    let failed = KeyRotation {
        at: later,
        trigger: RotationTrigger::Auto,
        ok: false,
        detail: Some("Credly failed (500)".into()),
    };
    let org = store
        .finish_credly_key_rotation(ORG, failed.clone(), None)
        .await
        .unwrap();
    assert_eq!(org.last_rotation, Some(failed));
    assert_eq!(org.rotation_lease_until, None);
    assert_eq!(org.api_key_last4.as_deref(), Some("old1"));
    assert_eq!(
        store.credly_org_key(ORG).await.unwrap(),
        b"old key".to_vec()
    );

    // A successful one: the new key is stored with its dates.
    assert!(store
        .claim_credly_key_rotation(ORG, later, later + Duration::minutes(5), None)
        .await
        .unwrap());
    let done = KeyRotation {
        at: later,
        trigger: RotationTrigger::Manual,
        ok: true,
        detail: None,
    };
    let org = store
        .finish_credly_key_rotation(
            ORG,
            done.clone(),
            Some(CredlyKey {
                ciphertext: b"new key".to_vec(),
                last4: "new2".into(),
                created_at: later,
                expires_at: later + Duration::days(180),
            }),
        )
        .await
        .unwrap();
    assert_eq!(org.last_rotation, Some(done));
    assert_eq!(org.rotation_lease_until, None);
    assert_eq!(org.api_key_last4.as_deref(), Some("new2"));
    assert_eq!(org.key_expires_at, Some(later + Duration::days(180)));
    assert_eq!(
        store.credly_org_key(ORG).await.unwrap(),
        b"new key".to_vec()
    );
    assert_eq!(store.get_credly_org(ORG).await.unwrap(), org);
    // The fresh key is not due under the 30-day rule any more: another instance that read the
    // old expiry does not rotate it again.
    assert!(!store
        .claim_credly_key_rotation(ORG, later, later + Duration::minutes(5), due)
        .await
        .unwrap());

    // OAuth organizations and unknown ones have no key to rotate.
    store
        .add_credly_oauth_org(NewCredlyOAuthOrganization {
            id: OTHER_ORG.into(),
            name: "Beta".into(),
            client: oauth_client(b"i", b"s", "beta"),
        })
        .await
        .unwrap();
    assert!(!store
        .claim_credly_key_rotation(OTHER_ORG, now, lease, None)
        .await
        .unwrap());
    assert!(!store
        .claim_credly_key_rotation(UNKNOWN_ORG, now, lease, None)
        .await
        .unwrap());
    assert_not_found(
        store
            .finish_credly_key_rotation(UNKNOWN_ORG, org.last_rotation.clone().unwrap(), None)
            .await,
        "credly organization",
    );
}

/// Of many concurrent claims of one key's rotation, exactly one wins (several instances share
/// a database).
pub async fn credly_key_rotation_concurrent_claims_one_wins(store: Arc<dyn Store>) {
    let now = now_micros();
    add_org(&store, ORG).await;
    let lease = now + Duration::minutes(5);
    let claims: Vec<BoxFuture<'_, bool>> = (0..8)
        .map(|_| {
            Box::pin(async {
                store
                    .claim_credly_key_rotation(ORG, now, lease, None)
                    .await
                    .unwrap()
            }) as BoxFuture<'_, bool>
        })
        .collect();
    let won = join_all(claims).await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
}

/// Every organization method refuses an unknown organization with `NotFound`.
pub async fn credly_unknown_org_is_not_found(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    const WHAT: &str = "credly organization";
    assert_not_found(store.get_credly_org(UNKNOWN_ORG).await, WHAT);
    assert_not_found(store.credly_org_key(UNKNOWN_ORG).await, WHAT);
    assert_not_found(
        store
            .update_credly_org(UNKNOWN_ORG, Some("x".into()), None)
            .await,
        WHAT,
    );
    assert_not_found(store.update_credly_org(UNKNOWN_ORG, None, None).await, WHAT);
    assert_not_found(
        store
            .sync_credly_templates(UNKNOWN_ORG, vec![active(1, "One")], 1, false)
            .await,
        WHAT,
    );
    assert_not_found(
        store
            .sync_credly_templates(UNKNOWN_ORG, vec![active(1, "One")], 1, true)
            .await,
        WHAT,
    );
    assert_not_found(
        store
            .apply_credly_template(UNKNOWN_ORG, active(1, "One"))
            .await,
        WHAT,
    );
    assert!(
        every_template(&store).await.is_empty(),
        "nothing was created for the unknown organization"
    );
    assert_eq!(store.list_credly_orgs().await.unwrap().len(), 1);
}

// ---- full sync ----------------------------------------------------------------------------

/// A first sync creates every listed template inactive, with origin `credly`, provider state
/// `active` and the organization set; it does not change the active configuration's version.
pub async fn credly_sync_creates_inactive_templates(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let version = store.config_version().await.unwrap();
    let s = store
        .sync_credly_templates(ORG, vec![active(1, "One"), active(2, "Two")], 3, false)
        .await
        .unwrap();
    assert_eq!(s, summary(2, 0, 0, 0, 3), "pages are echoed in the summary");
    let ts = org_templates(&store, ORG).await;
    assert_eq!(ts.len(), 2);
    for (n, name) in [(1, "One"), (2, "Two")] {
        let t = &ts[&tid(n)];
        let p = active(n, name);
        assert_eq!(t.name, p.name);
        assert_eq!(t.description, p.description);
        assert_eq!(t.image_url, p.image_url);
        assert_eq!(t.origin, Origin::Credly);
        assert_eq!(t.provider_state, "active");
        assert!(!t.is_active, "synced templates start inactive");
        assert_eq!(t.organization_id.as_deref(), Some(ORG));
        assert_eq!(&template(&store, &t.id).await, t);
    }
    assert_eq!(
        store.config_version().await.unwrap(),
        version,
        "new inactive templates do not change the active configuration"
    );
    assert!(active_ids(&store).await.is_empty());
}

/// A re-sync updates changed names, descriptions and images without touching activation, and
/// counts identical templates as unchanged.
pub async fn credly_sync_updates_changed_fields(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let first = vec![active(1, "One"), active(2, "Two"), active(3, "Three")];
    assert_eq!(
        sync(&store, ORG, first.clone(), false).await,
        summary(3, 0, 0, 0, 1)
    );
    store.set_template_active(&tid(2), true).await.unwrap();

    let mut renamed = active(1, "One, renamed");
    renamed.description = "One description".into();
    let mut redescribed = active(2, "Two");
    redescribed.description = "A new description".into();
    let mut reimaged = active(3, "Three");
    reimaged.image_url = None;
    let second = vec![renamed.clone(), redescribed.clone(), reimaged.clone()];
    assert_eq!(
        sync(&store, ORG, second.clone(), false).await,
        summary(0, 3, 0, 0, 1)
    );
    let ts = org_templates(&store, ORG).await;
    assert_eq!(ts[&tid(1)].name, "One, renamed");
    assert_eq!(ts[&tid(1)].description, "One description");
    assert_eq!(ts[&tid(2)].description, "A new description");
    assert_eq!(ts[&tid(3)].image_url, None);
    assert!(!ts[&tid(1)].is_active, "an update does not activate");
    assert!(ts[&tid(2)].is_active, "an update does not deactivate");
    assert!(!ts[&tid(3)].is_active);
    assert!(ts.values().all(|t| t.provider_state == "active"));

    let version = store.config_version().await.unwrap();
    assert_eq!(
        sync(&store, ORG, second, false).await,
        summary(0, 0, 0, 3, 1)
    );
    assert_eq!(
        org_templates(&store, ORG).await,
        ts,
        "an identical sync changes nothing"
    );
    assert_eq!(store.config_version().await.unwrap(), version);
}

/// Surrounding spaces are trimmed from names and an empty name falls back to the id; syncing the
/// same list again finds nothing to update.
pub async fn credly_sync_is_stable_for_untrimmed_names(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let list = vec![active(1, "  Spaced out  "), active(2, "")];
    assert_eq!(
        sync(&store, ORG, list.clone(), false).await,
        summary(2, 0, 0, 0, 1)
    );
    let ts = org_templates(&store, ORG).await;
    assert_eq!(ts[&tid(1)].name, "Spaced out");
    assert_eq!(
        ts[&tid(2)].name,
        tid(2),
        "a nameless template is named by its id"
    );
    assert_eq!(
        sync(&store, ORG, list.clone(), true).await,
        summary(0, 0, 0, 2, 1),
        "dry run of the same list"
    );
    assert_eq!(
        sync(&store, ORG, list.clone(), false).await,
        summary(0, 0, 0, 2, 1)
    );
    let (t, change) = store
        .apply_credly_template(ORG, list[0].clone())
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Unchanged);
    assert_eq!(t.unwrap().name, "Spaced out");
}

/// A template no longer listed is deactivated with provider state [`PROVIDER_STATE_GONE`],
/// which bumps the configuration version and drops it from the active configuration; its
/// requirements, penalties and awards stay. A later sync without it counts it unchanged.
pub async fn credly_sync_deactivates_unlisted_templates(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    add_org(&store, ORG).await;
    sync(
        &store,
        ORG,
        vec![active(1, "Kept"), active(2, "Retired")],
        false,
    )
    .await;
    let retired = tid(2);
    let req = store
        .add_requirement(&retired, passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    let pen = store
        .add_penalty(
            &retired,
            failed_course_penalty(std::slice::from_ref(&req.id)),
        )
        .await
        .unwrap();
    activate(&store, &retired).await;
    let awarded = send_one(&store, &index, passing("e1", "ann", DEMO_COURSE, true)).await;
    assert_eq!(awarded.awarded.len(), 1);
    assert_eq!(active_ids(&store).await, vec![retired.clone()]);
    let version = store.config_version().await.unwrap();

    assert_eq!(
        sync(&store, ORG, vec![active(1, "Kept")], false).await,
        summary(0, 0, 1, 1, 1)
    );
    let t = template(&store, &retired).await;
    assert!(!t.is_active);
    assert_eq!(t.provider_state, PROVIDER_STATE_GONE);
    assert_eq!(t.name, "Retired", "other fields are kept");
    assert!(
        store.config_version().await.unwrap() > version,
        "deactivating an active template is a configuration change"
    );
    assert!(active_ids(&store).await.is_empty());
    let cfg = store.get_template(&retired).await.unwrap();
    assert_eq!(cfg.requirements, vec![req]);
    assert_eq!(cfg.penalties, vec![pen]);
    assert_eq!(
        holders(&store, &retired).await,
        set(&["ann"]),
        "awards stay"
    );
    assert_eq!(
        store.get_award(&awarded.awarded[0]).await.unwrap().state,
        AwardState::Awarded
    );
    assert_nothing(
        &send_one(&store, &index, passing("e2", "bob", DEMO_COURSE, true)).await,
        "a deactivated template awards nothing",
    );

    let version = store.config_version().await.unwrap();
    assert_eq!(
        sync(&store, ORG, vec![active(1, "Kept")], false).await,
        summary(0, 0, 0, 2, 1),
        "a template already gone is not deactivated twice"
    );
    assert_eq!(template(&store, &retired).await, t);
    assert_eq!(store.config_version().await.unwrap(), version);

    assert_eq!(
        sync(&store, ORG, vec![], false).await,
        summary(0, 0, 1, 1, 1)
    );
    let kept = template(&store, &tid(1)).await;
    assert_eq!(kept.provider_state, PROVIDER_STATE_GONE);
    assert!(!kept.is_active);
    assert_eq!(
        store.config_version().await.unwrap(),
        version,
        "deactivating an inactive template leaves the active configuration alone"
    );
}

/// A template that was deactivated by a sync and is listed again gets its provider state back
/// (an update) but stays inactive: an operator re-activates it.
pub async fn credly_sync_reappearing_template_stays_inactive(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    sync(&store, ORG, vec![active(1, "Back")], false).await;
    activate(&store, &tid(1)).await;
    sync(&store, ORG, vec![], false).await;
    assert_eq!(
        template(&store, &tid(1)).await.provider_state,
        PROVIDER_STATE_GONE
    );

    let version = store.config_version().await.unwrap();
    assert_eq!(
        sync(&store, ORG, vec![active(1, "Back")], false).await,
        summary(0, 1, 0, 0, 1)
    );
    let t = template(&store, &tid(1)).await;
    assert_eq!(t.provider_state, "active");
    assert!(!t.is_active, "an operator must activate it again");
    assert_eq!(store.config_version().await.unwrap(), version);
    assert!(active_ids(&store).await.is_empty());
    assert_eq!(
        sync(&store, ORG, vec![active(1, "Back")], false).await,
        summary(0, 0, 0, 1, 1)
    );
}

/// A dry run reports what the real run then does, and writes nothing: no template, no field,
/// no activation, no configuration version, no last sync.
pub async fn credly_sync_dry_run_writes_nothing(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    sync(
        &store,
        ORG,
        vec![
            active(1, "Same"),
            active(2, "Old name"),
            active(3, "Leaving"),
        ],
        false,
    )
    .await;
    activate(&store, &tid(3)).await;
    let org = store.get_credly_org(ORG).await.unwrap();
    let templates = every_template(&store).await;
    let version = store.config_version().await.unwrap();

    let next = vec![
        active(1, "Same"),
        active(2, "New name"),
        active(4, "Brand new"),
    ];
    let dry = store
        .sync_credly_templates(ORG, next.clone(), 7, true)
        .await
        .unwrap();
    assert_eq!(dry, summary(1, 1, 1, 1, 7));
    assert_eq!(
        every_template(&store).await,
        templates,
        "templates untouched"
    );
    assert_eq!(
        store.get_credly_org(ORG).await.unwrap(),
        org,
        "last sync untouched"
    );
    assert_eq!(store.config_version().await.unwrap(), version);

    let real = store
        .sync_credly_templates(ORG, next, 7, false)
        .await
        .unwrap();
    assert_eq!(real, dry, "the real run does what the dry run said");
    let ts = org_templates(&store, ORG).await;
    assert_eq!(ts.len(), 4);
    assert_eq!(ts[&tid(2)].name, "New name");
    assert_eq!(ts[&tid(3)].provider_state, PROVIDER_STATE_GONE);
    assert!(store.config_version().await.unwrap() > version);
}

/// A real sync records when it ran and its summary on the organization.
pub async fn credly_sync_records_last_sync(store: Arc<dyn Store>) {
    let org = add_org(&store, ORG).await;
    let before = now_micros() - Duration::seconds(1);
    let s = store
        .sync_credly_templates(ORG, vec![active(1, "One")], 2, false)
        .await
        .unwrap();
    let after = Utc::now() + Duration::seconds(1);
    let synced = store.get_credly_org(ORG).await.unwrap();
    assert_eq!(synced.last_sync, Some(s));
    assert_eq!(synced.last_sync, Some(summary(1, 0, 0, 0, 2)));
    let at = synced.last_sync_at.expect("last_sync_at is set");
    assert!(at > before && at < after);
    assert_eq!(synced.name, org.name);
    assert_eq!(synced.api_key_last4, org.api_key_last4);
    assert_eq!(
        store.list_credly_orgs().await.unwrap(),
        vec![synced.clone()]
    );

    let s = store
        .sync_credly_templates(ORG, vec![], 1, false)
        .await
        .unwrap();
    let again = store.get_credly_org(ORG).await.unwrap();
    assert_eq!(again.last_sync, Some(s));
    assert_eq!(
        s,
        summary(0, 0, 1, 0, 1),
        "a template no longer listed is deactivated on Credly's side even if inactive here"
    );
    assert_eq!(
        template(&store, &tid(1)).await.provider_state,
        PROVIDER_STATE_GONE
    );
    assert!(again.last_sync_at >= synced.last_sync_at);
}

/// A listed id that belongs to a local template (or another organization's) is a conflict, and
/// the whole sync writes nothing; a dry run reports the same conflict.
pub async fn credly_sync_refuses_foreign_template_ids(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    add_org(&store, OTHER_ORG).await;
    let local = store
        .create_template(NewTemplate {
            id: Some(tid(9)),
            ..local_template("Local", true)
        })
        .await
        .unwrap();
    sync(&store, OTHER_ORG, vec![active(8, "Theirs")], false).await;
    sync(&store, ORG, vec![active(1, "Mine")], false).await;
    activate(&store, &tid(1)).await;
    let org = store.get_credly_org(ORG).await.unwrap();
    let templates = every_template(&store).await;
    let version = store.config_version().await.unwrap();

    for foreign in [9, 8] {
        // A new template before the foreign one, and the known one missing (so it would be
        // deactivated): all of it must be rolled back.
        let list = vec![active(2, "New"), active(foreign, "Clash")];
        for dry_run in [false, true] {
            assert_conflict(
                store
                    .sync_credly_templates(ORG, list.clone(), 1, dry_run)
                    .await,
                "template_exists",
            );
        }
        assert_conflict(
            store
                .apply_credly_template(ORG, active(foreign, "Clash"))
                .await,
            "template_exists",
        );
        assert_conflict(
            store
                .apply_credly_template(ORG, provider(foreign, "", "deleted"))
                .await,
            "template_exists",
        );
    }
    assert_eq!(
        every_template(&store).await,
        templates,
        "nothing was written"
    );
    assert_eq!(template(&store, &local.id).await, local);
    assert_eq!(store.get_credly_org(ORG).await.unwrap(), org);
    assert_eq!(store.config_version().await.unwrap(), version);
}

/// A sync only concerns its own organization's templates.
pub async fn credly_sync_leaves_other_organizations_alone(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    add_org(&store, OTHER_ORG).await;
    sync(&store, OTHER_ORG, vec![active(8, "Theirs")], false).await;
    activate(&store, &tid(8)).await;
    let local = store
        .create_template(local_template("Local", true))
        .await
        .unwrap();
    let theirs = template(&store, &tid(8)).await;
    assert_eq!(
        sync(&store, ORG, vec![active(1, "Mine")], false).await,
        summary(1, 0, 0, 0, 1)
    );
    assert_eq!(
        sync(&store, ORG, vec![], false).await,
        summary(0, 0, 1, 0, 1)
    );
    assert_eq!(template(&store, &tid(8)).await, theirs);
    assert_eq!(template(&store, &local.id).await, local);
    assert_eq!(org_templates(&store, ORG).await.len(), 1);
    assert_eq!(org_templates(&store, OTHER_ORG).await.len(), 1);
}

// ---- webhook template changes -------------------------------------------------------------

/// A template reported by a webhook is created (inactive) when new, updated when changed, and
/// unchanged otherwise.
pub async fn credly_apply_template_creates_and_updates(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let version = store.config_version().await.unwrap();
    let (t, change) = store
        .apply_credly_template(ORG, provider(1, "Draft badge", "draft"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Created);
    let t = t.expect("the created template");
    assert_eq!(t.id, tid(1));
    assert_eq!(t.name, "Draft badge");
    assert_eq!(t.provider_state, "draft");
    assert_eq!(t.origin, Origin::Credly);
    assert_eq!(t.organization_id.as_deref(), Some(ORG));
    assert!(!t.is_active);
    assert_eq!(template(&store, &t.id).await, t);
    assert_eq!(store.config_version().await.unwrap(), version);

    let (same, change) = store
        .apply_credly_template(ORG, provider(1, "Draft badge", "draft"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Unchanged);
    assert_eq!(same.as_ref(), Some(&t));

    let (published, change) = store
        .apply_credly_template(ORG, provider(1, "Published badge", "active"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Updated);
    let published = published.unwrap();
    assert_eq!(published.name, "Published badge");
    assert_eq!(published.provider_state, "active");
    assert!(
        !published.is_active,
        "publishing on Credly does not activate it here"
    );
    assert_eq!(template(&store, &tid(1)).await, published);

    let (created, change) = store
        .apply_credly_template(ORG, active(2, "Second"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Created);
    assert_eq!(created.unwrap().provider_state, "active");
    assert_eq!(org_templates(&store, ORG).await.len(), 2);
}

/// An active template reported `archived` is deactivated, which bumps the configuration version.
pub async fn credly_apply_archived_deactivates(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    store
        .apply_credly_template(ORG, active(1, "Archive me"))
        .await
        .unwrap();
    store
        .add_requirement(&tid(1), passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    activate(&store, &tid(1)).await;
    assert_eq!(active_ids(&store).await, vec![tid(1)]);
    let version = store.config_version().await.unwrap();

    let (t, change) = store
        .apply_credly_template(ORG, provider(1, "Archive me", "archived"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Updated);
    let t = t.unwrap();
    assert!(!t.is_active);
    assert_eq!(t.provider_state, "archived");
    assert!(store.config_version().await.unwrap() > version);
    assert!(active_ids(&store).await.is_empty());
    assert_eq!(
        store
            .get_template(&tid(1))
            .await
            .unwrap()
            .requirements
            .len(),
        1
    );

    let version = store.config_version().await.unwrap();
    let (_, change) = store
        .apply_credly_template(ORG, provider(1, "Archive me", "archived"))
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Unchanged);
    assert_eq!(store.config_version().await.unwrap(), version);
}

/// `deleted` marks an existing template deleted and inactive, keeping its fields (a deletion may
/// carry only the id) and its requirements.
pub async fn credly_apply_deleted_marks_deleted(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    sync(&store, ORG, vec![active(1, "Doomed")], false).await;
    let req = store
        .add_requirement(&tid(1), passed_course(DEMO_COURSE, None))
        .await
        .unwrap();
    activate(&store, &tid(1)).await;
    let version = store.config_version().await.unwrap();

    let bare = ProviderTemplate {
        id: tid(1),
        name: String::new(),
        description: String::new(),
        image_url: None,
        state: "deleted".into(),
    };
    let (t, change) = store
        .apply_credly_template(ORG, bare.clone())
        .await
        .unwrap();
    assert_eq!(change, TemplateChange::Updated);
    let t = t.unwrap();
    assert_eq!(t.provider_state, "deleted");
    assert!(!t.is_active);
    assert_eq!(t.name, "Doomed", "fields are kept");
    assert_eq!(t.description, "Doomed description");
    assert_eq!(t.image_url, active(1, "Doomed").image_url);
    assert!(store.config_version().await.unwrap() > version);
    let cfg = store.get_template(&tid(1)).await.unwrap();
    assert_eq!(cfg.template, t);
    assert_eq!(cfg.requirements, vec![req]);

    let (again, change) = store.apply_credly_template(ORG, bare).await.unwrap();
    assert_eq!(change, TemplateChange::Unchanged);
    assert_eq!(again, Some(t));
}

/// Deleting a template Accolade never had is `Missing` and creates nothing.
pub async fn credly_apply_deleted_unknown_is_missing(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let version = store.config_version().await.unwrap();
    let out = store
        .apply_credly_template(ORG, provider(5, "Never synced", "deleted"))
        .await
        .unwrap();
    assert_eq!(out, (None, TemplateChange::Missing));
    assert_not_found(store.get_template(&tid(5)).await, "template");
    assert!(every_template(&store).await.is_empty());
    assert_eq!(store.config_version().await.unwrap(), version);
}

// ---- notifications ------------------------------------------------------------------------

fn notification(id: &str, event_type: &str, received: &str) -> NewCredlyNotification {
    NewCredlyNotification {
        id: id.to_string(),
        organization_id: ORG.to_string(),
        event_type: event_type.to_string(),
        occurred_at: Some("2026-03-01T10:00:00.000-05:00".into()),
        received_at: at(received),
    }
}

/// A notification is recorded once, with exactly one pending `credly.webhook` job carrying its
/// id, organization and event type; the same id again changes nothing.
pub async fn credly_notification_is_recorded_once_with_its_job(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    let n = notification(
        "evt-1",
        "badge_template.changed",
        "2026-03-01T15:00:01+00:00",
    );
    assert!(store.record_credly_notification(n.clone()).await.unwrap());
    let jobs = jobs_of_kind(&store, kind::CREDLY_WEBHOOK).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.run_at, n.received_at, "due at once");
    assert_eq!(job.payload["notification_id"], json!("evt-1"));
    assert_eq!(job.payload["organization_id"], json!(ORG));
    assert_eq!(job.payload["event_type"], json!("badge_template.changed"));
    assert_eq!(all_jobs(&store).await.len(), 1, "no other job");

    let listed = store
        .list_credly_notifications(Page::default())
        .await
        .unwrap();
    assert_eq!(listed.next_offset, None);
    assert_eq!(listed.items.len(), 1);
    let stored = &listed.items[0];
    assert_eq!(stored.id, "evt-1");
    assert_eq!(stored.organization_id, ORG);
    assert_eq!(stored.event_type, "badge_template.changed");
    assert_eq!(stored.occurred_at, n.occurred_at);
    assert_eq!(stored.received_at, n.received_at);
    assert_eq!(stored.status, "received");
    assert_eq!(stored.detail, None);
    assert_eq!(stored.processed_at, None);

    let mut again = notification("evt-1", "badge.state.changed", "2026-03-01T15:05:00+00:00");
    again.occurred_at = None;
    assert!(!store.record_credly_notification(again).await.unwrap());
    assert_eq!(
        jobs_of_kind(&store, kind::CREDLY_WEBHOOK).await,
        jobs,
        "no second job"
    );
    assert_eq!(
        store
            .list_credly_notifications(Page::default())
            .await
            .unwrap(),
        listed,
        "the first record is kept as it was"
    );

    assert!(store
        .record_credly_notification(notification(
            "evt-2",
            "badge.state.changed",
            "2026-03-01T15:06:00+00:00"
        ))
        .await
        .unwrap());
    assert_eq!(jobs_of_kind(&store, kind::CREDLY_WEBHOOK).await.len(), 2);
}

/// Finishing a notification records its status, detail and time; the list is newest first and
/// paged; an unknown id is `NotFound`.
pub async fn credly_notification_finish_and_list(store: Arc<dyn Store>) {
    add_org(&store, ORG).await;
    for (id, time) in [
        ("evt-a", "2026-03-01T10:00:00+00:00"),
        ("evt-c", "2026-03-01T12:00:00+00:00"),
        ("evt-b", "2026-03-01T11:00:00+00:00"),
    ] {
        assert!(store
            .record_credly_notification(notification(id, "badge.state.changed", time))
            .await
            .unwrap());
    }
    let before = now_micros() - Duration::seconds(1);
    store
        .finish_credly_notification("evt-b", "applied", "badge b1 accepted")
        .await
        .unwrap();
    store
        .finish_credly_notification("evt-a", "ignored", "not ours")
        .await
        .unwrap();
    let after = Utc::now() + Duration::seconds(1);

    let first = store
        .list_credly_notifications(Page::new(Some(2), None))
        .await
        .unwrap();
    let ids: Vec<&str> = first.items.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["evt-c", "evt-b"], "newest first");
    assert_eq!(first.next_offset, Some(2));
    let second = store
        .list_credly_notifications(Page::new(Some(2), Some(2)))
        .await
        .unwrap();
    let ids: Vec<&str> = second.items.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["evt-a"]);
    assert_eq!(second.next_offset, None);

    let c = &first.items[0];
    assert_eq!((c.status.as_str(), c.detail.as_deref()), ("received", None));
    assert_eq!(c.processed_at, None);
    let b = &first.items[1];
    assert_eq!(b.status, "applied");
    assert_eq!(b.detail.as_deref(), Some("badge b1 accepted"));
    let processed = b.processed_at.expect("processed_at is set");
    assert!(processed > before && processed < after);
    let a = &second.items[0];
    assert_eq!(a.status, "ignored");
    assert_eq!(a.detail.as_deref(), Some("not ours"));
    assert!(a.processed_at.is_some());

    store
        .finish_credly_notification("evt-b", "rejected", "confirmation failed")
        .await
        .unwrap();
    let b = store
        .list_credly_notifications(Page::new(Some(1), Some(1)))
        .await
        .unwrap();
    assert_eq!(b.items[0].id, "evt-b");
    assert_eq!(b.items[0].status, "rejected");
    assert_eq!(b.items[0].detail.as_deref(), Some("confirmation failed"));

    assert_not_found(
        store
            .finish_credly_notification("evt-unknown", "applied", "")
            .await,
        "credly notification",
    );
}

// ---- award states -------------------------------------------------------------------------

/// The provider state of an award is set by its external id; an unknown external id is `None`.
pub async fn credly_award_external_state_is_set_by_external_id(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active_on_credly(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    let id = send_one(&store, &index, passing("e1", "ann", DEMO_COURSE, true))
        .await
        .awarded
        .remove(0);
    let other = send_one(&store, &index, passing("e2", "bob", DEMO_COURSE, true))
        .await
        .awarded
        .remove(0);
    for (award, external) in [(&id, "cred-badge-1"), (&other, "cred-badge-2")] {
        store
            .record_delivery(
                award,
                Delivery {
                    state: AwardState::Pending,
                    issued_at: None,
                    external_id: Some(external.into()),
                    external_state: Some("pending".into()),
                },
            )
            .await
            .unwrap();
    }
    let a = store
        .set_award_external_state("cred-badge-1", "accepted")
        .await
        .unwrap()
        .expect("the award with this external id");
    assert_eq!(a.id, id);
    assert_eq!(a.external_id.as_deref(), Some("cred-badge-1"));
    assert_eq!(a.external_state.as_deref(), Some("accepted"));
    assert_eq!(
        a.state,
        AwardState::Pending,
        "only the provider state changes"
    );
    assert_eq!(store.get_award(&id).await.unwrap(), a);
    assert_eq!(
        store
            .get_award(&other)
            .await
            .unwrap()
            .external_state
            .as_deref(),
        Some("pending"),
        "other awards are untouched"
    );
    assert_eq!(
        store
            .set_award_external_state("cred-badge-unknown", "accepted")
            .await
            .unwrap(),
        None
    );
}

// ---- jobs ---------------------------------------------------------------------------------

/// A deferred job goes back to pending at the given time with the reason as its last error and
/// without using up an attempt; it is not claimable before that time.
pub async fn defer_job_keeps_its_attempts(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active_on_credly(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    send_one(&store, &index, passing("e1", "ann", DEMO_COURSE, true)).await;
    let now = (Utc::now() + Duration::seconds(1)).trunc_subsecs(6);
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1);
    let id = claimed[0].id.clone();

    let run_at = now + Duration::hours(1);
    store
        .finish_job(
            &id,
            JobResult::Defer {
                run_at,
                reason: "credly key expired".into(),
                waiting_for_key: None,
            },
            now,
        )
        .await
        .unwrap();
    let j = store.get_job(&id).await.unwrap();
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.attempts, 0, "a deferred job did not use an attempt");
    assert_eq!(j.last_error.as_deref(), Some("credly key expired"));
    assert_eq!(j.run_at, run_at);
    assert_eq!(j.locked_until, None);

    let just_before = run_at - Duration::microseconds(1);
    assert!(
        store
            .claim_jobs(
                &[kind::CREDLY_ISSUE],
                10,
                just_before,
                just_before + Duration::seconds(30)
            )
            .await
            .unwrap()
            .is_empty(),
        "not claimable before run_at"
    );
    let again = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE],
            10,
            run_at,
            run_at + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, id);
    assert_eq!(again[0].attempts, 1, "the deferred run was not counted");

    // A retry counts; deferring after it gives back only the deferred attempt.
    let later = run_at + Duration::hours(1);
    store
        .finish_job(
            &id,
            JobResult::Retry {
                run_at: later,
                error: "credly: 503".into(),
            },
            run_at,
        )
        .await
        .unwrap();
    let claimed = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE],
            10,
            later,
            later + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts, 2);
    store
        .finish_job(
            &id,
            JobResult::Defer {
                run_at: later + Duration::hours(1),
                reason: "credly key expired".into(),
                waiting_for_key: None,
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(store.get_job(&id).await.unwrap().attempts, 1);

    assert_not_found(
        store
            .finish_job(
                "job_unknown",
                JobResult::Defer {
                    run_at,
                    reason: "x".into(),
                    waiting_for_key: None,
                },
                now,
            )
            .await,
        "job",
    );
}

/// An active Credly template of `org` with one requirement (passing `course`).
async fn credly_template_of(store: &Arc<dyn Store>, name: &str, org: &str, course: &str) {
    let t = store
        .create_template(NewTemplate {
            organization_id: Some(org.to_string()),
            ..credly_template(name, false)
        })
        .await
        .unwrap();
    store
        .add_requirement(&t.id, passed_course(course, None))
        .await
        .unwrap();
    activate(store, &t.id).await;
}

/// The issue job of `learner`'s (only) award.
async fn issue_job_of(store: &Arc<dyn Store>, learner: &str) -> accolade_domain::outbox::Job {
    let award = &awards_of(store, learner).await[0];
    store.jobs_of_award(&award.id).await.unwrap().remove(0)
}

fn wait_for_key(run_at: DateTime<Utc>, org: &str) -> JobResult {
    JobResult::Defer {
        run_at,
        reason: format!("the API key of Credly organization {org} expired"),
        waiting_for_key: Some(org.to_string()),
    }
}

/// Releasing the jobs that wait for an organization's key (after a rotation) makes exactly its
/// pending deferred jobs due: issue and webhook jobs of that organization, not those of another
/// organization, not a job waiting for a retry, not a running (leased) job, not a dead one.
/// Released jobs lose their mark, so a second release finds nothing.
pub async fn release_jobs_waiting_for_key_frees_only_that_organizations_jobs(
    store: Arc<dyn Store>,
) {
    let index = IndexCache::new();
    credly_template_of(&store, "Demo", ORG, DEMO_COURSE).await;
    credly_template_of(&store, "Python", OTHER_ORG, OTHER_COURSE).await;
    for learner in ["ann", "bob", "cid", "eve"] {
        send_one(&store, &index, passing(learner, learner, DEMO_COURSE, true)).await;
    }
    send_one(&store, &index, passing("dan", "dan", OTHER_COURSE, true)).await;
    let mut hook = notification("evt-1", "badge.state.changed", "2026-03-01T15:00:01+00:00");
    hook.received_at = Utc::now().trunc_subsecs(6);
    assert!(store.record_credly_notification(hook).await.unwrap());

    let now = (Utc::now() + Duration::seconds(1)).trunc_subsecs(6);
    let claimed = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE, kind::CREDLY_WEBHOOK],
            20,
            now,
            now + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6);
    let [ann, bob, cid, eve, dan] = [
        issue_job_of(&store, "ann").await.id,
        issue_job_of(&store, "bob").await.id,
        issue_job_of(&store, "cid").await.id,
        issue_job_of(&store, "eve").await.id,
        issue_job_of(&store, "dan").await.id,
    ];
    let webhook = jobs_of_kind(&store, kind::CREDLY_WEBHOOK).await[0]
        .id
        .clone();
    let later = now + Duration::minutes(10);
    // ann and the webhook job wait for ORG's key, dan for OTHER_ORG's; eve waits for a retry.
    store
        .finish_job(&ann, wait_for_key(later, ORG), now)
        .await
        .unwrap();
    store
        .finish_job(&webhook, wait_for_key(later, ORG), now)
        .await
        .unwrap();
    store
        .finish_job(&dan, wait_for_key(later, OTHER_ORG), now)
        .await
        .unwrap();
    let retry = JobResult::Retry {
        run_at: later,
        error: "credly: 503".into(),
    };
    store.finish_job(&eve, retry, now).await.unwrap();
    // bob waited too and is running again (claimed when his deferral ended); cid waited, then
    // died.
    store
        .finish_job(&bob, wait_for_key(now, ORG), now)
        .await
        .unwrap();
    store
        .finish_job(&cid, wait_for_key(now, ORG), now)
        .await
        .unwrap();
    let lease = now + Duration::seconds(30);
    let again = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 20, now, lease)
        .await
        .unwrap();
    assert_eq!(
        set(&again.iter().map(|j| &j.id).collect::<Vec<_>>()),
        set(&[&bob, &cid])
    );
    let dead = JobResult::Dead {
        error: "credly: 400".into(),
    };
    store.finish_job(&cid, dead, now).await.unwrap();
    let before: BTreeMap<String, accolade_domain::outbox::Job> = all_jobs(&store)
        .await
        .into_iter()
        .map(|j| (j.id.clone(), j))
        .collect();

    let rotated = now + Duration::seconds(5);
    assert_eq!(
        store
            .release_jobs_waiting_for_key(ORG, rotated)
            .await
            .unwrap(),
        2,
        "ann's issue job and the webhook job"
    );
    for id in [&ann, &webhook] {
        let j = store.get_job(id).await.unwrap();
        assert_eq!(j.status, JobStatus::Pending, "{id}");
        assert_eq!(j.run_at, rotated, "{id} is due at the rotation");
        assert_eq!(j.attempts, before[id].attempts, "{id}: no attempt used");
        assert_eq!(j.last_error, before[id].last_error, "{id}");
    }
    for id in [&bob, &cid, &eve, &dan] {
        let j = store.get_job(id).await.unwrap();
        let was = &before[id];
        assert_eq!(
            (j.status, j.run_at, j.locked_until, j.attempts),
            (was.status, was.run_at, was.locked_until, was.attempts),
            "{id} is untouched"
        );
    }
    let due = store
        .claim_jobs(
            &[kind::CREDLY_ISSUE, kind::CREDLY_WEBHOOK],
            20,
            rotated,
            rotated + Duration::seconds(30),
        )
        .await
        .unwrap();
    assert_eq!(
        set(&due.iter().map(|j| &j.id).collect::<Vec<_>>()),
        set(&[&ann, &webhook]),
        "only the released jobs are due at the rotation"
    );

    assert_eq!(
        store
            .release_jobs_waiting_for_key(ORG, rotated)
            .await
            .unwrap(),
        0,
        "released jobs are no longer waiting"
    );
    assert_eq!(
        store
            .release_jobs_waiting_for_key(UNKNOWN_ORG, rotated)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .release_jobs_waiting_for_key(OTHER_ORG, rotated)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_job(&dan).await.unwrap().run_at, rotated);
}

/// A job deferred for an organization's key after that key was already rotated (the worker
/// read the old key, the rotation and its release came before the result was recorded) does not
/// wait: it is due at once. A deferral while the key is still expired waits and is marked.
pub async fn deferring_for_a_key_rotated_meanwhile_does_not_wait(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    let now = Utc::now().trunc_subsecs(6);
    let expired = CredlyKey {
        ciphertext: vec![1, 2, 3],
        last4: "old1".into(),
        created_at: now - Duration::days(181),
        expires_at: now - Duration::days(1),
    };
    store
        .add_credly_org(NewCredlyOrganization {
            id: ORG.into(),
            name: "Acme".into(),
            key: expired,
        })
        .await
        .unwrap();
    credly_template_of(&store, "Demo", ORG, DEMO_COURSE).await;
    send_one(&store, &index, passing("ann", "ann", DEMO_COURSE, true)).await;
    send_one(&store, &index, passing("bob", "bob", DEMO_COURSE, true)).await;
    let (ann, bob) = (
        issue_job_of(&store, "ann").await.id,
        issue_job_of(&store, "bob").await.id,
    );
    let now = (Utc::now() + Duration::seconds(1)).trunc_subsecs(6);
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let later = now + Duration::minutes(10);

    // The key is still expired: ann waits.
    store
        .finish_job(&ann, wait_for_key(later, ORG), now)
        .await
        .unwrap();
    assert_eq!(store.get_job(&ann).await.unwrap().run_at, later);

    // The key is rotated before bob's deferral is recorded: bob is due at once, unmarked.
    store
        .update_credly_org(
            ORG,
            None,
            Some(CredlyKey {
                ciphertext: vec![4, 5, 6],
                last4: "new1".into(),
                created_at: now,
                expires_at: now + Duration::days(180),
            }),
        )
        .await
        .unwrap();
    store
        .finish_job(&bob, wait_for_key(later, ORG), now)
        .await
        .unwrap();
    let j = store.get_job(&bob).await.unwrap();
    assert_eq!(
        (j.status, j.run_at, j.attempts),
        (JobStatus::Pending, now, 0)
    );
    assert_eq!(
        store.release_jobs_waiting_for_key(ORG, now).await.unwrap(),
        1,
        "only ann was still marked"
    );
    assert_eq!(store.get_job(&ann).await.unwrap().run_at, now);
}

/// A job deferred for an OAuth organization whose credentials Credly refused waits (there is
/// no key expiry that could say the credentials are good again) until new credentials release
/// it.
pub async fn deferring_for_refused_oauth_credentials_waits_for_release(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    store
        .add_credly_oauth_org(NewCredlyOAuthOrganization {
            id: ORG.into(),
            name: "Acme".into(),
            client: oauth_client(b"i", b"s", "acme"),
        })
        .await
        .unwrap();
    credly_template_of(&store, "Demo", ORG, DEMO_COURSE).await;
    send_one(&store, &index, passing("ann", "ann", DEMO_COURSE, true)).await;
    let ann = issue_job_of(&store, "ann").await.id;
    let now = (Utc::now() + Duration::seconds(1)).trunc_subsecs(6);
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let later = now + Duration::minutes(10);
    store
        .finish_job(&ann, wait_for_key(later, ORG), now)
        .await
        .unwrap();
    let j = store.get_job(&ann).await.unwrap();
    assert_eq!(
        (j.status, j.run_at, j.attempts),
        (JobStatus::Pending, later, 0)
    );
    store
        .set_credly_org_oauth_client(ORG, None, oauth_client(b"i2", b"s2", "acm2"))
        .await
        .unwrap();
    assert_eq!(
        store.release_jobs_waiting_for_key(ORG, now).await.unwrap(),
        1
    );
    assert_eq!(store.get_job(&ann).await.unwrap().run_at, now);
}

/// `finish_jobs` records every job result with its award delivery in one call, returns the
/// awards as recorded, skips jobs and awards that no longer exist, and never un-revokes.
pub async fn finish_jobs_records_results_with_deliveries(store: Arc<dyn Store>) {
    let index = IndexCache::new();
    configure_active_on_credly(&store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    send_one(&store, &index, passing("e1", "ann", DEMO_COURSE, true)).await;
    send_one(&store, &index, passing("e2", "bob", DEMO_COURSE, true)).await;
    let now = (Utc::now() + Duration::seconds(1)).trunc_subsecs(6);
    let claimed = store
        .claim_jobs(&[kind::CREDLY_ISSUE], 10, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let award_of =
        |j: &accolade_domain::outbox::Job| j.payload["award_id"].as_str().unwrap().to_string();
    let delivered = |state, ext: &str| crate::Delivery {
        state,
        issued_at: Some(now),
        external_id: Some(ext.to_string()),
        external_state: Some("pending".into()),
    };
    let items = vec![
        crate::JobCompletion {
            job_id: claimed[0].id.clone(),
            result: JobResult::Succeeded,
            delivery: Some((award_of(&claimed[0]), delivered(AwardState::Pending, "x-1"))),
        },
        crate::JobCompletion {
            job_id: claimed[1].id.clone(),
            result: JobResult::Retry {
                run_at: now + Duration::minutes(1),
                error: "503".into(),
            },
            delivery: Some((award_of(&claimed[1]), delivered(AwardState::Error, "x-2"))),
        },
        crate::JobCompletion {
            job_id: "job_missing".into(),
            result: JobResult::Succeeded,
            delivery: Some((
                "no-such-award".into(),
                delivered(AwardState::Pending, "x-3"),
            )),
        },
    ];
    let out = store.finish_jobs(items, now).await.unwrap();
    assert_eq!(out.len(), 3);
    let first = out[0].as_ref().expect("award recorded");
    assert_eq!(
        (first.state, first.external_id.as_deref()),
        (AwardState::Pending, Some("x-1"))
    );
    assert_eq!(out[1].as_ref().unwrap().state, AwardState::Error);
    assert!(out[2].is_none(), "unknown award skipped");
    assert_eq!(
        store.get_job(&claimed[0].id).await.unwrap().status,
        JobStatus::Succeeded
    );
    let retried = store.get_job(&claimed[1].id).await.unwrap();
    assert_eq!(
        (retried.status, retried.last_error.as_deref()),
        (JobStatus::Pending, Some("503"))
    );
    assert_eq!(
        store
            .get_award(&award_of(&claimed[0]))
            .await
            .unwrap()
            .external_id
            .as_deref(),
        Some("x-1")
    );
}

/// The backlog of an organization counts only notifications still waiting to be confirmed; a
/// prune deletes settled notifications processed before the cutoff and keeps waiting ones with
/// their jobs.
pub async fn credly_notifications_backlog_is_counted_and_settled_ones_pruned(
    store: Arc<dyn Store>,
) {
    add_org(&store, ORG).await;
    for (id, time) in [
        ("evt-1", "2026-03-01T10:00:00+00:00"),
        ("evt-2", "2026-03-01T11:00:00+00:00"),
        ("evt-3", "2026-03-01T12:00:00+00:00"),
    ] {
        assert!(store
            .record_credly_notification(notification(id, "badge.state.changed", time))
            .await
            .unwrap());
    }
    assert_eq!(
        store.count_pending_credly_notifications(ORG).await.unwrap(),
        3
    );
    store
        .finish_credly_notification("evt-1", "applied", "badge b1 accepted")
        .await
        .unwrap();
    store
        .finish_credly_notification("evt-2", "rejected", "Credly does not confirm it")
        .await
        .unwrap();
    assert_eq!(
        store.count_pending_credly_notifications(ORG).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_pending_credly_notifications("00000000-0000-4000-8000-00000000ffff")
            .await
            .unwrap(),
        0,
        "counted per organization"
    );

    // Nothing was settled before an hour ago.
    let hour_ago = now_micros() - Duration::hours(1);
    assert_eq!(store.prune_credly_notifications(hour_ago).await.unwrap(), 0);
    let soon = now_micros() + Duration::seconds(1);
    assert_eq!(store.prune_credly_notifications(soon).await.unwrap(), 2);
    let left = store
        .list_credly_notifications(Page::default())
        .await
        .unwrap();
    let ids: Vec<_> = left.items.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["evt-3"], "the waiting one stays");
    assert_eq!(
        store.count_pending_credly_notifications(ORG).await.unwrap(),
        1
    );
    assert_eq!(
        jobs_of_kind(&store, kind::CREDLY_WEBHOOK).await.len(),
        3,
        "unfinished jobs are never pruned"
    );
}
