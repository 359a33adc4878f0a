//! Records of the Open Credit-style API: apps found by key and re-tiered, a registration that
//! creates a user and the organization it manages, addresses unique across members and
//! case-insensitive, verification links that work once, tokens by hash, and badges created,
//! updated, listed by creator and deleted.

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};

use crate::{NewOcMember, OcBadgeFields, OcToken, Page, Store, StoreError};

fn registration(email: &str, org: Option<&str>, verified: bool) -> NewOcMember {
    NewOcMember {
        email: email.to_string(),
        password_hash: format!("$argon2id$hash-of-{email}"),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        display_name: format!("Ada {email}"),
        organization_name: org.map(str::to_string),
        verified,
        verify_token_hash: (!verified).then(|| format!("{email:0>64}")),
    }
}

fn fields(title: &str) -> OcBadgeFields {
    OcBadgeFields {
        title: title.into(),
        short_description: "short".into(),
        description: "<p>Long <b>text</b></p>".into(),
        criteria: "<ul><li>one</li></ul>".into(),
        evidence_prompt: "Show it".into(),
        image: Some("b_abc".into()),
        expires_in: 3600,
        categories: "science,math".into(),
        is_giveable: true,
        template_id: None,
    }
}

pub async fn oc_apps_are_found_by_key_and_retiered(store: Arc<dyn Store>) {
    let app = store
        .oc_create_app("Demo", "key-1", "hash-1", "sandbox")
        .await
        .unwrap();
    assert_eq!((app.name.as_str(), app.tier.as_str()), ("Demo", "sandbox"));
    assert_eq!(
        store.oc_app_by_key("key-1").await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(store.oc_app_by_key("key-2").await.unwrap(), None);
    let dup = store.oc_create_app("Other", "key-1", "h", "light").await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Conflict {
                code: "oc_app_exists",
                ..
            })
        ),
        "{dup:?}"
    );
    let by_key = store.oc_set_app_tier("key-1", "heavy").await.unwrap();
    assert_eq!(by_key.tier, "heavy");
    let by_id = store
        .oc_set_app_tier(&app.id.to_string(), "light")
        .await
        .unwrap();
    assert_eq!(by_id.tier, "light");
    assert!(matches!(
        store.oc_set_app_tier("nope", "light").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.oc_list_apps().await.unwrap().len(), 1);
}

pub async fn oc_register_creates_the_user_and_its_organization(store: Arc<dyn Store>) {
    let (user, org) = store
        .oc_register(registration(
            "ada@example.org",
            Some("Analytical Engines"),
            false,
        ))
        .await
        .unwrap();
    let org = org.expect("an organization");
    assert!(!user.is_organization && org.is_organization);
    assert_eq!(org.display_name, "Analytical Engines");
    assert_eq!(user.email.as_deref(), Some("ada@example.org"));
    assert_eq!(store.oc_managed(user.id).await.unwrap(), vec![org.id]);
    assert!(store.oc_managed(org.id).await.unwrap().is_empty());
    assert_eq!(store.oc_member(org.id).await.unwrap(), Some(org.clone()));
    let (found, hash) = store.oc_login("ADA@example.org").await.unwrap().unwrap();
    assert_eq!(
        (found.id, hash.as_str()),
        (user.id, "$argon2id$hash-of-ada@example.org")
    );
    // Organizations have no password and cannot log in; unknown addresses find nothing.
    assert_eq!(store.oc_login("nobody@example.org").await.unwrap(), None);
    assert_eq!(user.avatar, None);
    let with_avatar = store
        .oc_set_avatar(user.id, Some("a_avatar"))
        .await
        .unwrap();
    assert_eq!(with_avatar.avatar.as_deref(), Some("a_avatar"));
    assert_eq!(
        store
            .oc_member(user.id)
            .await
            .unwrap()
            .unwrap()
            .avatar
            .as_deref(),
        Some("a_avatar")
    );
    assert!(matches!(
        store.oc_set_avatar(999_999, None).await,
        Err(StoreError::NotFound { .. })
    ));
    let (solo, none) = store
        .oc_register(registration("solo@example.org", None, true))
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(store.oc_managed(solo.id).await.unwrap().is_empty());
}

pub async fn oc_register_refuses_a_taken_address_and_writes_nothing(store: Arc<dyn Store>) {
    store
        .oc_register(registration("ada@example.org", None, true))
        .await
        .unwrap();
    let again = store
        .oc_register(registration("ada@example.org", Some("Org"), true))
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{again:?}"
    );
    let (all, total) = store
        .oc_search_members(None, None, Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(
        (all.len(), total),
        (1, 1),
        "the refused registration left no member"
    );
}

pub async fn oc_addresses_verify_once(store: Arc<dyn Store>) {
    let (user, _) = store
        .oc_register(registration("ada@example.org", None, false))
        .await
        .unwrap();
    let emails = store.oc_member_emails(user.id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].verified_at, None);
    let now = Utc::now().trunc_subsecs(6);
    let link = format!("{:0>64}", "ada@example.org");
    let verified = store.oc_verify_email(&link, now).await.unwrap().unwrap();
    assert_eq!(
        (verified.member_id, verified.verified_at),
        (user.id, Some(now))
    );
    assert_eq!(
        store.oc_verify_email(&link, now).await.unwrap(),
        None,
        "a link works once"
    );
    // An additional address starts unverified and is unique across members.
    let extra = store
        .oc_add_email(user.id, "ada2@example.org", "link-2")
        .await
        .unwrap();
    assert_eq!(extra.verified_at, None);
    let (other, _) = store
        .oc_register(registration("bob@example.org", None, true))
        .await
        .unwrap();
    assert!(store.oc_member_emails(other.id).await.unwrap()[0]
        .verified_at
        .is_some());
    let taken = store
        .oc_add_email(other.id, "ada2@example.org", "link-3")
        .await;
    assert!(
        matches!(
            taken,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{taken:?}"
    );
    assert!(matches!(
        store.oc_add_email(999_999, "x@example.org", "link-4").await,
        Err(StoreError::NotFound { .. })
    ));
    let (by_extra, _) = store
        .oc_search_members(Some("ADA2@example.org"), None, Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(
        by_extra.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![user.id]
    );
    let (by_name, total) = store
        .oc_search_members(None, Some("bob@"), Page::new(None, None))
        .await
        .unwrap();
    assert_eq!((by_name.len(), total), (1, 1));
}

pub async fn oc_tokens_are_found_by_hash(store: Arc<dyn Store>) {
    let app = store.oc_create_app("A", "k", "h", "light").await.unwrap();
    let (user, _) = store
        .oc_register(registration("ada@example.org", None, true))
        .await
        .unwrap();
    let token = OcToken {
        token_hash: "a".repeat(64),
        member_id: user.id,
        app_id: app.id,
        kind: "access".into(),
        expires_at: (Utc::now() + Duration::days(3 * 365)).trunc_subsecs(6),
    };
    store.oc_create_token(token.clone()).await.unwrap();
    assert_eq!(
        store.oc_token(&token.token_hash).await.unwrap(),
        Some(token)
    );
    assert_eq!(store.oc_token(&"b".repeat(64)).await.unwrap(), None);
}

pub async fn oc_badges_crud_and_list_by_creator(store: Arc<dyn Store>) {
    let (user, org) = store
        .oc_register(registration("ada@example.org", Some("Org"), true))
        .await
        .unwrap();
    let org = org.unwrap();
    let a = store.oc_create_badge(user.id, fields("A")).await.unwrap();
    let b = store.oc_create_badge(org.id, fields("B")).await.unwrap();
    let c = store.oc_create_badge(org.id, fields("C")).await.unwrap();
    assert!(a.id < b.id && b.id < c.id);
    assert_eq!(a.fields, fields("A"));
    assert_eq!(store.oc_badge(a.id).await.unwrap(), Some(a.clone()));
    let mut changed = fields("A2");
    changed.image = None;
    changed.is_giveable = false;
    let a2 = store.oc_update_badge(a.id, changed.clone()).await.unwrap();
    assert_eq!((a2.id, a2.fields.clone()), (a.id, changed));
    assert!(a2.updated_at >= a.updated_at);
    let (of_org, total) = store
        .oc_list_badges(Some(org.id), Page::new(Some(1), None))
        .await
        .unwrap();
    assert_eq!(
        (of_org.iter().map(|x| x.id).collect::<Vec<_>>(), total),
        (vec![b.id], 2)
    );
    let (all, total) = store
        .oc_list_badges(None, Page::new(None, None))
        .await
        .unwrap();
    assert_eq!((all.len(), total), (3, 3));
    assert!(store.oc_delete_badge(b.id).await.unwrap());
    assert!(!store.oc_delete_badge(b.id).await.unwrap());
    assert_eq!(store.oc_badge(b.id).await.unwrap(), None);
    assert!(matches!(
        store.oc_update_badge(b.id, fields("gone")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.oc_create_badge(999_999, fields("orphan")).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn oc_member_badges_follow_the_recipient_address(store: Arc<dyn Store>) {
    let (giver, _) = store
        .oc_register(registration("giver@example.org", None, true))
        .await
        .unwrap();
    let badge = store
        .oc_create_badge(giver.id, fields("Given"))
        .await
        .unwrap();
    let give = |email: &str| crate::NewOcMemberBadge {
        badge_id: badge.id,
        giver_id: giver.id,
        email: email.into(),
        addressed_by_email: true,
        testimonial: "Well done".into(),
        evidence: "https://example.org/work".into(),
    };
    // Given before the recipient has an account at that address.
    let early = store.oc_give(give("ada@work.example.org")).await.unwrap();
    assert_eq!(
        (early.status.as_str(), early.giver_id),
        ("pending", giver.id)
    );
    let (ada, _) = store
        .oc_register(registration("ada@example.org", None, true))
        .await
        .unwrap();
    assert!(early.addressed_by_email);
    // Given to the member (by id): the store keeps that the giver did not type the address.
    let direct = store
        .oc_give(crate::NewOcMemberBadge {
            addressed_by_email: false,
            ..give("ada@example.org")
        })
        .await
        .unwrap();
    assert!(!direct.addressed_by_email);
    assert!(
        !store
            .oc_member_badge(direct.id)
            .await
            .unwrap()
            .unwrap()
            .addressed_by_email
    );
    let page = Page::new(None, None);
    let (mine, total) = store.oc_member_badges(ada.id, None, page).await.unwrap();
    assert_eq!(
        (mine.iter().map(|m| m.id).collect::<Vec<_>>(), total),
        (vec![direct.id], 1)
    );
    // Adding the address brings the earlier badge along, once it is verified (an unverified
    // address may be a claim on somebody else's).
    store
        .oc_add_email(ada.id, "ada@work.example.org", "link-w")
        .await
        .unwrap();
    let (_, total) = store.oc_member_badges(ada.id, None, page).await.unwrap();
    assert_eq!(total, 1, "not through an unverified address");
    store
        .oc_verify_email("link-w", chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    let (mine, total) = store.oc_member_badges(ada.id, None, page).await.unwrap();
    assert_eq!(
        (mine.iter().map(|m| m.id).collect::<Vec<_>>(), total),
        (vec![early.id, direct.id], 2)
    );
    let accepted = store
        .oc_set_member_badge_status(direct.id, "accepted")
        .await
        .unwrap();
    assert_eq!(accepted.status, "accepted");
    let (only, total) = store
        .oc_member_badges(ada.id, Some("accepted"), page)
        .await
        .unwrap();
    assert_eq!((only.len(), total), (1, 1));
    assert_eq!(
        store.oc_member_badge(direct.id).await.unwrap(),
        Some(accepted)
    );
    assert_eq!(
        store
            .oc_email("ADA@example.org")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        ada.id
    );
    assert_eq!(store.oc_email("nobody@example.org").await.unwrap(), None);
    // A given badge is not deleted with its definition.
    let refused = store.oc_delete_badge(badge.id).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Conflict {
                code: "badge_given",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(store.oc_delete_member_badge(early.id).await.unwrap());
    assert!(!store.oc_delete_member_badge(early.id).await.unwrap());
    assert!(matches!(
        store.oc_set_member_badge_status(early.id, "accepted").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .oc_give(crate::NewOcMemberBadge {
                badge_id: 999_999,
                ..give("x@example.org")
            })
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn oc_awards_of_linked_templates_become_member_badges(store: Arc<dyn Store>) {
    use super::support::*;
    let index = crate::IndexCache::new();
    let (template, _) = configure_active(
        &store,
        "Linked",
        vec![passed_course("course-v1:X+Y+Z", None)],
    )
    .await;
    let (unlinked, _) = configure_active(
        &store,
        "Unlinked",
        vec![passed_course("course-v1:X+Y+Z", None)],
    )
    .await;
    let (org_user, org) = store
        .oc_register(registration("org@example.org", Some("School"), true))
        .await
        .unwrap();
    let org = org.unwrap();
    let mut linked = fields("Course passed");
    linked.template_id = Some(template.id.clone());
    let badge = store.oc_create_badge(org.id, linked.clone()).await.unwrap();
    assert_eq!(
        badge.fields.template_id.as_deref(),
        Some(template.id.as_str())
    );
    let twice = store.oc_create_badge(org_user.id, linked).await;
    assert!(
        matches!(
            twice,
            Err(StoreError::Conflict {
                code: "template_linked",
                ..
            })
        ),
        "{twice:?}"
    );
    send(
        &store,
        &index,
        vec![passing("e1", "ada", "course-v1:X+Y+Z", true)],
    )
    .await;
    let sync = store.oc_sync_awards(100).await.unwrap();
    assert_eq!(
        sync,
        crate::OcAwardSync {
            given: 1,
            withdrawn: 0
        },
        "one linked award (of two)"
    );
    assert_eq!(
        store.oc_sync_awards(100).await.unwrap(),
        crate::OcAwardSync::default(),
        "idempotent"
    );
    // The learner's address (ada@example.com) finds the member badge once a member owns it.
    let (ada, _) = store
        .oc_register(registration("ada@example.com", None, true))
        .await
        .unwrap();
    let (mine, _) = store
        .oc_member_badges(ada.id, None, Page::new(None, None))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    // Deleting it leaves a tombstone: the bridge does not give it again.
    assert!(store.oc_delete_member_badge(mine[0].id).await.unwrap());
    assert_eq!(store.oc_member_badge(mine[0].id).await.unwrap(), None);
    assert_eq!(
        store.oc_sync_awards(100).await.unwrap(),
        crate::OcAwardSync::default()
    );
    let (gone, _) = store
        .oc_member_badges(ada.id, None, Page::new(None, None))
        .await
        .unwrap();
    assert!(gone.is_empty());
    assert!(
        !store.oc_delete_member_badge(mine[0].id).await.unwrap(),
        "deleted once"
    );
    let filter = crate::AwardFilter {
        learner: Some("ada".into()),
        ..Default::default()
    };
    let award = store
        .list_awards(&filter, Page::new(None, None))
        .await
        .unwrap()
        .items;
    let linked_award = award.iter().find(|a| a.template_id == template.id).unwrap();
    assert!(award.iter().any(|a| a.template_id == unlinked.id));
    assert_eq!(
        (
            mine[0].badge_id,
            mine[0].giver_id,
            mine[0].award_id.as_deref(),
            mine[0].status.as_str()
        ),
        (badge.id, org.id, Some(linked_award.id.as_str()), "pending")
    );
    // Revoking the award withdraws the member badge.
    store
        .revoke_award(
            &linked_award.id,
            crate::ManualChange {
                reason: "test".into(),
                at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.oc_sync_awards(100).await.unwrap(),
        crate::OcAwardSync {
            given: 0,
            withdrawn: 1
        }
    );
    let (mine, _) = store
        .oc_member_badges(ada.id, None, Page::new(None, None))
        .await
        .unwrap();
    assert!(mine.is_empty());
}

pub async fn oc_a_verified_claim_takes_an_address_from_an_unverified_one(store: Arc<dyn Store>) {
    // Mallory registers with an address she cannot verify.
    let (mallory, _) = store
        .oc_register(registration("victim@corp.example", None, false))
        .await
        .unwrap();
    // Another unverified claim is refused while hers is fresh...
    let again = store
        .oc_register(registration("victim@corp.example", None, false))
        .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{again:?}"
    );
    // ...but a verified one (a Heavy or Enterprise app vouching for it) takes it over.
    let (victim, _) = store
        .oc_register(registration("victim@corp.example", None, true))
        .await
        .unwrap();
    assert_eq!(
        store
            .oc_email("victim@corp.example")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        victim.id
    );
    assert!(store.oc_member_emails(mallory.id).await.unwrap().is_empty());
    assert_eq!(
        store.oc_member(mallory.id).await.unwrap().unwrap().email,
        None
    );
    assert_eq!(
        store
            .oc_login("victim@corp.example")
            .await
            .unwrap()
            .unwrap()
            .0
            .id,
        victim.id
    );
    // A verified address is never taken over.
    let taken = store
        .oc_register(registration("victim@corp.example", None, true))
        .await;
    assert!(
        matches!(
            taken,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{taken:?}"
    );
}
