//! Outbound webhooks: subscriptions, fan-out of outgoing badge events into deliveries (one per
//! matching active subscription, exactly once however often or concurrently it runs), the
//! delivery queue (claim with a lease, stale results ignored), the retry schedule as stored,
//! giving up after the maximum age, and replay.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use accolade_domain::outbox::{BADGE_AWARDED, BADGE_REVOKED};
use accolade_domain::retry::{NextAttempt, RetryPolicy};
use accolade_domain::webhook::DeliveryStatus;
use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::support::*;
use crate::{
    AttemptNext, AttemptResult, DeliveryFilter, IndexCache, ManualChange, NewWebhook, Page, Store,
    WebhookDelivery, WebhookPatch,
};

fn new_webhook(url: &str, event_types: &[&str], active: bool) -> NewWebhook {
    NewWebhook {
        id: accolade_domain::ids::webhook_id(),
        url: url.to_string(),
        event_types: event_types.iter().map(|t| t.to_string()).collect(),
        description: format!("to {url}"),
        active,
        secret_ciphertext: vec![1, 2, 3, 4],
    }
}

/// Safely after every row written so far, at microsecond precision.
fn later() -> DateTime<Utc> {
    (Utc::now() + Duration::seconds(1)).trunc_subsecs(6)
}

/// Awards the demo template to each learner (one `badge.awarded` outgoing event each); returns
/// the award ids.
async fn award(store: &Arc<dyn Store>, learners: &[&str]) -> Vec<String> {
    let index = IndexCache::new();
    if store
        .list_templates(&Default::default(), Page::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        configure_active(store, "Demo", vec![passed_course(DEMO_COURSE, None)]).await;
    }
    let mut ids = Vec::new();
    for l in learners {
        let e = send_one(
            store,
            &index,
            passing(&format!("ev-{l}"), l, DEMO_COURSE, true),
        )
        .await;
        ids.extend(e.awarded);
    }
    ids
}

async fn deliveries(store: &Arc<dyn Store>, filter: DeliveryFilter) -> Vec<WebhookDelivery> {
    store
        .list_webhook_deliveries(&filter, Page::new(Some(500), None))
        .await
        .unwrap()
        .items
}

fn of(webhook_id: &str) -> DeliveryFilter {
    DeliveryFilter {
        webhook_id: Some(webhook_id.to_string()),
        status: None,
    }
}

/// Fans out until `expected` events have been seen. On PostgreSQL fan-out only reads events of
/// transactions older than every transaction running in the cluster, and the suite's other tests
/// (other databases, same cluster) run long batches at the same time on a loaded machine, so an
/// event can take a while to become eligible: wait generously rather than flake.
async fn fan_out_all(store: &Arc<dyn Store>, expected: u64) -> crate::FanOut {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut total = crate::FanOut::default();
    while total.events < expected {
        let f = store.fan_out_webhooks(100, Utc::now()).await.unwrap();
        total.events += f.events;
        total.deliveries += f.deliveries;
        assert!(
            std::time::Instant::now() < deadline,
            "fan-out saw {total:?} of {expected} events"
        );
        if f.events == 0 {
            // The suite has no async runtime dependency of its own; a short blocking pause is
            // fine on the multi-threaded test runtime.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    total
}

fn failed(attempt: i64, next: AttemptNext) -> AttemptResult {
    AttemptResult {
        attempt,
        http_status: Some(500),
        error: Some("HTTP 500".into()),
        response_ms: 12,
        next,
    }
}

/// Subscriptions are created, read, listed, updated, re-keyed and deleted; unknown ids are
/// not found.
pub async fn webhook_subscriptions_crud(store: Arc<dyn Store>) {
    let a = store
        .create_webhook(new_webhook(
            "https://a.example/hook",
            &[BADGE_AWARDED],
            true,
        ))
        .await
        .unwrap();
    let b = store
        .create_webhook(new_webhook("http://b.example/", &[], false))
        .await
        .unwrap();
    assert_eq!(a.event_types, vec![BADGE_AWARDED.to_string()]);
    assert!(a.active && !b.active);
    assert_eq!(store.get_webhook(&a.id).await.unwrap(), a);
    let page = store.list_webhooks(Page::new(Some(1), None)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next_offset, Some(1));
    let patched = store
        .update_webhook(
            &b.id,
            WebhookPatch {
                url: Some("https://b.example/v2".into()),
                event_types: Some(vec![BADGE_REVOKED.into()]),
                description: None,
                active: Some(true),
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.url, "https://b.example/v2");
    assert_eq!(patched.event_types, vec![BADGE_REVOKED.to_string()]);
    assert_eq!(patched.description, b.description, "untouched field kept");
    assert!(patched.active);
    assert_eq!(store.webhook_secret(&a.id).await.unwrap(), vec![1, 2, 3, 4]);
    store.set_webhook_secret(&a.id, vec![9, 9]).await.unwrap();
    assert_eq!(store.webhook_secret(&a.id).await.unwrap(), vec![9, 9]);
    store.delete_webhook(&a.id).await.unwrap();
    assert_not_found(store.get_webhook(&a.id).await, "webhook");
    assert_not_found(store.delete_webhook(&a.id).await, "webhook");
    assert_not_found(store.webhook_secret("whk_nope").await, "webhook");
    assert_not_found(
        store
            .update_webhook("whk_nope", WebhookPatch::default())
            .await,
        "webhook",
    );
    assert_not_found(
        store.set_webhook_secret("whk_nope", vec![1]).await,
        "webhook",
    );
}

/// One delivery per outgoing event and active subscription that wants its type; inactive
/// subscriptions and unwanted types get none.
pub async fn webhook_fan_out_one_delivery_per_matching_subscription(store: Arc<dyn Store>) {
    let all = store
        .create_webhook(new_webhook("https://all.example/", &[], true))
        .await
        .unwrap();
    let revoked_only = store
        .create_webhook(new_webhook("https://rev.example/", &[BADGE_REVOKED], true))
        .await
        .unwrap();
    let off = store
        .create_webhook(new_webhook("https://off.example/", &[], false))
        .await
        .unwrap();
    let awards = award(&store, &["ann", "bob"]).await;
    store
        .revoke_award(
            &awards[0],
            ManualChange {
                reason: "test".into(),
                at: Utc::now(),
            },
        )
        .await
        .unwrap();
    let done = fan_out_all(&store, 3).await;
    assert_eq!(done.events, 3);
    assert_eq!(done.deliveries, 4);
    let to_all = deliveries(&store, of(&all.id)).await;
    assert_eq!(to_all.len(), 3);
    assert!(to_all
        .iter()
        .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0));
    let to_revoked = deliveries(&store, of(&revoked_only.id)).await;
    assert_eq!(to_revoked.len(), 1);
    assert_eq!(to_revoked[0].event_type, BADGE_REVOKED);
    assert!(deliveries(&store, of(&off.id)).await.is_empty());
    let events: std::collections::BTreeSet<_> = to_all.iter().map(|d| d.event_id.clone()).collect();
    assert_eq!(events.len(), 3, "one delivery per event");
}

/// Fanning out again changes nothing, newer events are picked up, and concurrent passes never
/// create a delivery twice.
pub async fn webhook_fan_out_cursor_is_idempotent(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(new_webhook("https://x.example/", &[], true))
        .await
        .unwrap();
    award(&store, &["ann"]).await;
    assert_eq!(fan_out_all(&store, 1).await.deliveries, 1);
    let again = store.fan_out_webhooks(100, Utc::now()).await.unwrap();
    assert_eq!((again.events, again.deliveries), (0, 0));
    award(&store, &["bob", "cat", "dan"]).await;
    // A small limit moves the cursor in steps without skipping or repeating.
    let step = store.fan_out_webhooks(2, Utc::now()).await.unwrap();
    assert!(step.events <= 2);
    award(&store, &["eve"]).await;
    let passes: Vec<BoxFuture<'_, crate::FanOut>> = (0..4)
        .map(|_| {
            let s = store.clone();
            Box::pin(async move { s.fan_out_webhooks(1, Utc::now()).await.unwrap() })
                as BoxFuture<'_, crate::FanOut>
        })
        .collect();
    let concurrent: u64 = join_all(passes).await.iter().map(|f| f.events).sum();
    fan_out_all(&store, 4 - step.events - concurrent).await;
    assert_eq!(
        store
            .fan_out_webhooks(100, Utc::now())
            .await
            .unwrap()
            .events,
        0
    );
    let made = deliveries(&store, of(&hook.id)).await;
    assert_eq!(made.len(), 5, "{made:#?}");
    let events: std::collections::BTreeSet<_> = made.iter().map(|d| d.event_id.clone()).collect();
    assert_eq!(events.len(), 5, "no event delivered twice");
}

/// With no active subscription fan-out passes events by (SQLite skips to the newest in one
/// step); a subscription made later gets only events after it, each once.
pub async fn webhook_fan_out_without_subscribers_passes_events_by(store: Arc<dyn Store>) {
    award(&store, &["ann", "bob"]).await;
    assert_eq!(fan_out_all(&store, 2).await.deliveries, 0);
    let idle = store.fan_out_webhooks(100, Utc::now()).await.unwrap();
    assert_eq!(
        (idle.events, idle.deliveries),
        (0, 0),
        "the cursor moved past them"
    );
    let hook = store
        .create_webhook(new_webhook("https://x.example/", &[], true))
        .await
        .unwrap();
    award(&store, &["cat"]).await;
    assert_eq!(fan_out_all(&store, 1).await.deliveries, 1);
    let made = deliveries(&store, of(&hook.id)).await;
    assert_eq!(
        made.len(),
        1,
        "only the event after the subscription: {made:#?}"
    );
}

/// A claim leases a due delivery (with the URL and the event), counts the attempt, hides it from
/// other claims until the lease expires, and a result of a superseded attempt is ignored.
pub async fn webhook_claim_leases_deliveries(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(new_webhook("https://x.example/in", &[], true))
        .await
        .unwrap();
    award(&store, &["ann"]).await;
    fan_out_all(&store, 1).await;
    let now = later();
    let lease = now + Duration::seconds(30);
    let first = store
        .claim_webhook_deliveries(10, now, lease)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let c = &first[0];
    assert_eq!(c.url, "https://x.example/in");
    assert_eq!(c.delivery.webhook_id, hook.id);
    assert_eq!(c.delivery.attempts, 1);
    assert_eq!(c.delivery.first_attempt_at, Some(now));
    assert_eq!(c.payload["user"]["pii"]["username"], "ann");
    assert!(
        store
            .claim_webhook_deliveries(10, now, lease)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The worker died: after the lease another worker takes over as attempt 2.
    let after = lease + Duration::seconds(1);
    let second = store
        .claim_webhook_deliveries(10, after, after + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery.attempts, 2);
    assert_eq!(
        second[0].delivery.first_attempt_at,
        Some(now),
        "first attempt kept"
    );
    let stale = AttemptResult {
        next: AttemptNext::Succeeded,
        ..failed(1, AttemptNext::Dead)
    };
    assert!(!store
        .finish_webhook_attempt(&c.delivery.id, stale, after)
        .await
        .unwrap());
    let ok = AttemptResult {
        attempt: 2,
        http_status: Some(204),
        error: None,
        response_ms: 5,
        next: AttemptNext::Succeeded,
    };
    assert!(store
        .finish_webhook_attempt(&c.delivery.id, ok, after)
        .await
        .unwrap());
    let d = store.get_webhook_delivery(&c.delivery.id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.last_status, Some(204));
    assert_eq!(d.delivered_at, Some(after));
    assert!(d.locked_until.is_none());
    let far = after + Duration::days(10);
    assert!(store
        .claim_webhook_deliveries(10, far, far)
        .await
        .unwrap()
        .is_empty());
    // Deliveries of an inactive subscription wait.
    award(&store, &["bob"]).await;
    fan_out_all(&store, 1).await;
    let patch = WebhookPatch {
        active: Some(false),
        ..Default::default()
    };
    store.update_webhook(&hook.id, patch).await.unwrap();
    assert!(store
        .claim_webhook_deliveries(10, far, far)
        .await
        .unwrap()
        .is_empty());
}

/// A failed attempt is retried at the scheduled time (not before), with the answer recorded;
/// the first attempt time survives retries.
pub async fn webhook_retry_follows_the_schedule(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(new_webhook("https://x.example/", &[], true))
        .await
        .unwrap();
    award(&store, &["ann"]).await;
    fan_out_all(&store, 1).await;
    let policy = RetryPolicy::default();
    let t1 = later();
    let c = store
        .claim_webhook_deliveries(1, t1, t1 + Duration::seconds(30))
        .await
        .unwrap();
    let id = c[0].delivery.id.clone();
    let NextAttempt::At(retry_at) = policy.next(1, t1, t1, 1.0, None) else {
        panic!("first failure must be retried");
    };
    assert_eq!(retry_at, t1 + Duration::minutes(1));
    assert!(store
        .finish_webhook_attempt(&id, failed(1, AttemptNext::RetryAt(retry_at)), t1)
        .await
        .unwrap());
    let d = store.get_webhook_delivery(&id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.next_attempt_at, Some(retry_at));
    assert_eq!(
        (d.last_status, d.last_error.as_deref()),
        (Some(500), Some("HTTP 500"))
    );
    assert_eq!(d.last_response_ms, Some(12));
    let early = retry_at - Duration::seconds(1);
    assert!(
        store
            .claim_webhook_deliveries(1, early, early)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = store
        .claim_webhook_deliveries(1, retry_at, retry_at + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 2);
    assert_eq!(again[0].delivery.first_attempt_at, Some(t1));
    let listed = store
        .list_webhook_deliveries(
            &DeliveryFilter {
                webhook_id: Some(hook.id.clone()),
                status: Some(DeliveryStatus::Succeeded),
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert!(listed.items.is_empty(), "status filter");
}

/// Once a retry would fall beyond the maximum age after the first attempt, the delivery is dead
/// and never claimed again.
pub async fn webhook_dead_after_max_age(store: Arc<dyn Store>) {
    store
        .create_webhook(new_webhook("https://x.example/", &[], true))
        .await
        .unwrap();
    award(&store, &["ann"]).await;
    fan_out_all(&store, 1).await;
    let policy = RetryPolicy {
        schedule: vec![StdDuration::from_secs(3600)],
        then_every: Some(StdDuration::from_secs(86_400)),
        max_age: Some(StdDuration::from_secs(72 * 3600)),
    };
    let t1 = later();
    let mut now = t1;
    let mut attempt = 0;
    let id = loop {
        let c = store
            .claim_webhook_deliveries(1, now, now + Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(c.len(), 1, "attempt {} must be due at {now}", attempt + 1);
        attempt = c[0].delivery.attempts;
        let first = c[0].delivery.first_attempt_at.unwrap();
        let next = match policy.next(attempt, first, now, 1.0, None) {
            NextAttempt::At(t) => AttemptNext::RetryAt(t),
            NextAttempt::GiveUp => AttemptNext::Dead,
        };
        assert!(store
            .finish_webhook_attempt(&c[0].delivery.id, failed(attempt, next), now)
            .await
            .unwrap());
        match next {
            AttemptNext::RetryAt(t) => now = t,
            _ => break c[0].delivery.id.clone(),
        }
    };
    // 0 h, 1 h, 25 h, 49 h; the next daily retry (73 h) is past three days.
    assert_eq!(attempt, 4);
    assert_eq!(now, t1 + Duration::hours(49));
    let d = store.get_webhook_delivery(&id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert!(d.next_attempt_at.is_none());
    let far = now + Duration::days(30);
    assert!(store
        .claim_webhook_deliveries(1, far, far)
        .await
        .unwrap()
        .is_empty());
    let dead = DeliveryFilter {
        webhook_id: None,
        status: Some(DeliveryStatus::Dead),
    };
    assert_eq!(deliveries(&store, dead).await.len(), 1);
}

/// Replay makes a new pending delivery of the same event (new id, fresh attempts) that is due at
/// once; the original keeps its record. Unknown ids are not found, and deleting a subscription
/// removes its log.
pub async fn webhook_replay_sends_the_event_again(store: Arc<dyn Store>) {
    let hook = store
        .create_webhook(new_webhook("https://x.example/", &[], true))
        .await
        .unwrap();
    award(&store, &["ann"]).await;
    fan_out_all(&store, 1).await;
    let now = later();
    let c = store
        .claim_webhook_deliveries(1, now, now + Duration::seconds(30))
        .await
        .unwrap();
    let original = c[0].delivery.clone();
    let ok = AttemptResult {
        attempt: 1,
        http_status: Some(200),
        error: None,
        response_ms: 3,
        next: AttemptNext::Succeeded,
    };
    store
        .finish_webhook_attempt(&original.id, ok, now)
        .await
        .unwrap();
    let replay = store
        .replay_webhook_delivery(&original.id, now)
        .await
        .unwrap();
    assert_ne!(replay.id, original.id);
    assert_eq!(replay.event_id, original.event_id);
    assert_eq!(replay.replay_of.as_deref(), Some(original.id.as_str()));
    assert_eq!(
        (replay.status, replay.attempts),
        (DeliveryStatus::Pending, 0)
    );
    let again = store
        .claim_webhook_deliveries(5, now, now + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, replay.id);
    assert_eq!(again[0].payload, c[0].payload);
    let kept = store.get_webhook_delivery(&original.id).await.unwrap();
    assert_eq!((kept.status, kept.attempts), (DeliveryStatus::Succeeded, 1));
    // Fan-out again does not count the replay as the event's delivery.
    assert_eq!(
        store
            .fan_out_webhooks(100, Utc::now())
            .await
            .unwrap()
            .deliveries,
        0
    );
    assert_not_found(
        store.replay_webhook_delivery("whd_nope", now).await,
        "webhook delivery",
    );
    assert_not_found(
        store.get_webhook_delivery("whd_nope").await,
        "webhook delivery",
    );
    store.delete_webhook(&hook.id).await.unwrap();
    assert_not_found(
        store.get_webhook_delivery(&original.id).await,
        "webhook delivery",
    );
}
