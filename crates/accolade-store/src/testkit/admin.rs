//! Accounts and sessions of the `/admin` web UI: unique usernames, the failed-login count and
//! lock as recorded, a password change ending the account's sessions and lifting its lock, and
//! sessions that stop being returned once they expire, are ended by logout and are purged.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::support::*;
use accolade_domain::login::{lock_until, LOCK_AFTER};

use crate::{AdminSession, AdminUser, LoginAttempt, LoginOutcome, Store};

/// Both stores keep timestamps to the microsecond; times compared after a round trip are
/// truncated the same way first.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn user(store: &Arc<dyn Store>, username: &str) -> AdminUser {
    store
        .create_admin_user(username, &format!("$argon2id$v=19$hash-of-{username}"))
        .await
        .unwrap()
}

/// A session of `user` expiring at `expires_at`, its id hash derived from `name`.
fn session(user: &AdminUser, name: &str, expires_at: DateTime<Utc>) -> AdminSession {
    AdminSession {
        id_hash: format!("{name:0>64}"),
        user_id: user.id.clone(),
        // Ignored on create: the stored account's name is what comes back.
        username: "not-the-username".into(),
        csrf_token: format!("csrf-{name}"),
        created_at: expires_at - Duration::hours(8),
        expires_at,
    }
}

async fn open(store: &Arc<dyn Store>, user: &AdminUser, name: &str) -> AdminSession {
    let s = session(user, name, now() + Duration::hours(1));
    store.create_admin_session(s.clone()).await.unwrap();
    s
}

async fn is_open(store: &Arc<dyn Store>, s: &AdminSession) -> bool {
    store
        .get_admin_session(&s.id_hash, now())
        .await
        .unwrap()
        .is_some()
}

pub async fn admin_user_is_created_and_unique(store: Arc<dyn Store>) {
    let before = now();
    let created = user(&store, "alice").await;
    assert!(!created.id.is_empty());
    assert_eq!(created.username, "alice");
    assert_eq!(created.password_hash, "$argon2id$v=19$hash-of-alice");
    assert_eq!(created.failed_logins, 0);
    assert_eq!(created.locked_until, None);
    assert_eq!(created.last_login_at, None);
    assert!(created.created_at >= before - Duration::seconds(1));
    assert_eq!(store.get_admin_user("alice").await.unwrap(), created);

    assert_conflict(
        store.create_admin_user("alice", "$argon2id$other").await,
        "admin_user_exists",
    );
    // The refused attempt changed nothing.
    assert_eq!(store.get_admin_user("alice").await.unwrap(), created);
    // Another name is another account.
    assert_ne!(user(&store, "bob").await.id, created.id);
}

pub async fn admin_unknown_user_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(store.get_admin_user("nobody").await, "admin user");
    user(&store, "alice").await;
    // Usernames are compared exactly.
    assert_not_found(store.get_admin_user("Alice").await, "admin user");
    assert_not_found(
        store.set_admin_password("nobody", "$argon2id$x").await,
        "admin user",
    );
    assert_not_found(
        store.count_admin_login_attempt("adm_unknown", now()).await,
        "admin user",
    );
}

/// Counts `n` attempts at `at`, each expected to be counted (not refused as locked).
async fn attempts(store: &Arc<dyn Store>, u: &AdminUser, n: usize, at: DateTime<Utc>) -> AdminUser {
    let mut last = None;
    for _ in 0..n {
        match store.count_admin_login_attempt(&u.id, at).await.unwrap() {
            LoginAttempt::Counted(counted) => last = Some(counted),
            locked => panic!("attempt refused: {locked:?}"),
        }
    }
    last.expect("at least one attempt")
}

pub async fn admin_failed_logins_are_counted_and_lock(store: Arc<dyn Store>) {
    let u = user(&store, "alice").await;
    let t0 = now();

    let once = attempts(&store, &u, 1, t0).await;
    assert_eq!((once.failed_logins, once.locked_until), (1, None));
    let below = attempts(&store, &u, LOCK_AFTER as usize - 2, t0).await;
    assert_eq!(
        (below.failed_logins, below.locked_until),
        (LOCK_AFTER - 1, None)
    );

    // The attempt that reaches the threshold is counted (its password may be checked) and sets
    // the lock in the same step.
    let locking = attempts(&store, &u, 1, t0).await;
    assert_eq!(locking.failed_logins, LOCK_AFTER);
    let until = lock_until(LOCK_AFTER, t0).unwrap();
    assert_eq!(locking.locked_until, Some(until));
    // Stored, not only returned.
    assert_eq!(store.get_admin_user("alice").await.unwrap(), locking);

    // While locked nothing is counted.
    assert_eq!(
        store.count_admin_login_attempt(&u.id, t0).await.unwrap(),
        LoginAttempt::Locked { until }
    );
    assert_eq!(store.get_admin_user("alice").await.unwrap(), locking);

    // After the lock ran out the next attempt is counted and locks for longer.
    let later = until + Duration::seconds(1);
    let after = attempts(&store, &u, 1, later).await;
    assert_eq!(after.failed_logins, LOCK_AFTER + 1);
    assert_eq!(after.locked_until, lock_until(LOCK_AFTER + 1, later));
    assert_eq!(after.last_login_at, None, "a failure is not a login");
}

pub async fn admin_concurrent_attempts_are_counted_one_by_one(store: Arc<dyn Store>) {
    let u = user(&store, "alice").await;
    let t0 = now();
    let tries: Vec<BoxFuture<'_, LoginAttempt>> = (0..40)
        .map(|_| -> BoxFuture<'_, LoginAttempt> {
            Box::pin(async { store.count_admin_login_attempt(&u.id, t0).await.unwrap() })
        })
        .collect();
    let counted = join_all(tries)
        .await
        .iter()
        .filter(|a| matches!(a, LoginAttempt::Counted(_)))
        .count();
    assert_eq!(
        counted, LOCK_AFTER as usize,
        "exactly LOCK_AFTER attempts may check a password"
    );
    let stored = store.get_admin_user("alice").await.unwrap();
    assert_eq!(stored.failed_logins, LOCK_AFTER);
    assert_eq!(stored.locked_until, lock_until(LOCK_AFTER, t0));
}

pub async fn admin_successful_login_resets_failures(store: Arc<dyn Store>) {
    let u = user(&store, "alice").await;
    attempts(&store, &u, LOCK_AFTER as usize, now()).await;

    let at = now();
    let ok = store
        .record_admin_login(&u.id, LoginOutcome::Succeeded { at })
        .await
        .unwrap();
    assert_eq!(ok.failed_logins, 0);
    assert_eq!(ok.locked_until, None);
    assert_eq!(ok.last_login_at, Some(at));
    assert_eq!(ok.password_hash, u.password_hash);
    assert_eq!(store.get_admin_user("alice").await.unwrap(), ok);
}

pub async fn admin_password_change_ends_sessions_and_lock(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let a1 = open(&store, &alice, "a1").await;
    let a2 = open(&store, &alice, "a2").await;
    let b1 = open(&store, &bob, "b1").await;
    attempts(&store, &alice, LOCK_AFTER as usize, now()).await;

    let changed = store
        .set_admin_password("alice", "$argon2id$new")
        .await
        .unwrap();
    assert_eq!(changed.id, alice.id);
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.failed_logins, 0);
    assert_eq!(changed.locked_until, None);
    assert_eq!(store.get_admin_user("alice").await.unwrap(), changed);

    assert!(!is_open(&store, &a1).await, "alice's sessions end");
    assert!(!is_open(&store, &a2).await, "alice's sessions end");
    assert!(is_open(&store, &b1).await, "other accounts keep theirs");
    // Nothing of alice's is left for the purge either.
    assert_eq!(
        store
            .purge_admin_sessions(now() + Duration::days(1))
            .await
            .unwrap(),
        1
    );
}

pub async fn admin_session_is_read_with_its_username(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let s = open(&store, &alice, "s1").await;

    let read = store
        .get_admin_session(&s.id_hash, now())
        .await
        .unwrap()
        .expect("the session exists");
    assert_eq!(
        read,
        AdminSession {
            username: "alice".into(),
            ..s.clone()
        }
    );
    assert_eq!(
        store
            .get_admin_session(&format!("{:0>64}", "other"), now())
            .await
            .unwrap(),
        None
    );
}

pub async fn admin_session_expires(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let expires_at = now() + Duration::minutes(30);
    let s = session(&alice, "s1", expires_at);
    store.create_admin_session(s.clone()).await.unwrap();

    let at = |t| store.get_admin_session(&s.id_hash, t);
    assert!(at(expires_at - Duration::microseconds(1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(at(expires_at).await.unwrap(), None, "expired at expires_at");
    assert_eq!(at(expires_at + Duration::days(1)).await.unwrap(), None);
}

pub async fn admin_session_is_deleted(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let s1 = open(&store, &alice, "s1").await;
    let s2 = open(&store, &alice, "s2").await;

    store.delete_admin_session(&s1.id_hash).await.unwrap();
    assert!(!is_open(&store, &s1).await);
    assert!(is_open(&store, &s2).await, "only the named session ends");
    // Logging out twice, or with a session nobody has, is fine.
    store.delete_admin_session(&s1.id_hash).await.unwrap();
    store
        .delete_admin_session(&format!("{:0>64}", "unknown"))
        .await
        .unwrap();
}

pub async fn admin_sessions_are_purged_once_expired(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let t = now();
    let expired = [
        session(&alice, "old1", t - Duration::hours(2)),
        session(&alice, "old2", t - Duration::microseconds(1)),
    ];
    let live = session(&alice, "live", t + Duration::hours(1));
    for s in expired.iter().chain([&live]) {
        store.create_admin_session(s.clone()).await.unwrap();
    }

    assert_eq!(store.purge_admin_sessions(t).await.unwrap(), 2);
    assert_eq!(store.purge_admin_sessions(t).await.unwrap(), 0);
    assert!(store
        .get_admin_session(&live.id_hash, t)
        .await
        .unwrap()
        .is_some());
    // Purged for good: not there even when asked about an earlier time.
    for s in &expired {
        assert_eq!(
            store
                .get_admin_session(&s.id_hash, t - Duration::days(1))
                .await
                .unwrap(),
            None
        );
    }
}
