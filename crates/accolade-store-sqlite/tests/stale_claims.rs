//! An unverified claim on an address gives way after a week (Open Credit: an address must not
//! be blocked forever by someone who cannot verify it). The claim is aged by editing the file,
//! which only a backend-specific test can do.

use std::sync::Arc;

use accolade_store::{NewOcMember, Store, StoreError};
use accolade_store_sqlite::{SqliteOptions, SqliteStore};

fn registration(email: &str) -> NewOcMember {
    NewOcMember {
        email: email.into(),
        password_hash: "$argon2id$x".into(),
        first_name: "A".into(),
        last_name: "B".into(),
        display_name: "A B".into(),
        organization_name: None,
        verified: false,
        verify_token_hash: Some(format!("{email:0>64}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_claim_older_than_a_week_gives_way() {
    let dir = std::env::temp_dir().join(format!("accolade-claims-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("claims.db");
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, &SqliteOptions::default()).unwrap());
    let (squatter, _) = store
        .oc_register(registration("victim@corp.example"))
        .await
        .unwrap();
    let fresh = store.oc_register(registration("victim@corp.example")).await;
    assert!(
        matches!(
            fresh,
            Err(StoreError::Conflict {
                code: "email_taken",
                ..
            })
        ),
        "{fresh:?}"
    );
    // Eight days later.
    let old = (chrono::Utc::now() - chrono::Duration::days(8))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE oc_emails SET claimed_at = ?1 WHERE email = 'victim@corp.example'",
            [old],
        )
        .unwrap();
    let (owner, _) = store
        .oc_register(registration("victim@corp.example"))
        .await
        .unwrap();
    assert_eq!(
        store
            .oc_email("victim@corp.example")
            .await
            .unwrap()
            .unwrap()
            .member_id,
        owner.id
    );
    assert!(store
        .oc_member_emails(squatter.id)
        .await
        .unwrap()
        .is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
