//! Publishes Accolade's `org.openedx.learning.badge.awarded.v1` / `.revoked.v1` events (written
//! to `outgoing_events` with each award and revocation) to the event-bus stream, in the wire
//! format edx-event-bus-redis uses (metadata fields + schemaless Avro per the badge schemas).
//!
//! Every instance with `event_bus.enabled` and `event_bus.publish` runs [`run`], but only the
//! holder of a lease in Redis publishes, so events keep their order and several instances never
//! publish the same event. A batch is written by one Lua script that first checks the lease
//! (an instance that lost it cannot write: fencing), then XADDs the entries and records their ids
//! under a "last batch" key, all atomically. The ids are marked published in the database after
//! the script; if the process dies in between, the next holder reads the last batch's ids and
//! marks them before publishing anything, so each event reaches the stream exactly once.
//!
//! Outgoing events of a type without an event-bus schema (`badge.expired`, which openedx-events
//! does not define) are passed by: marked published with their batch, never written to the
//! stream.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use accolade_eventbus::{encode_entry, SchemaRegistry};
use chrono::{SecondsFormat, Utc};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde_json::json;

use crate::state::AppState;

/// Events read per pass.
const BATCH: u32 = 500;
/// The openedx-events version whose wire format we write (the `sourcelib` field).
const SOURCELIB: &str = "11.2.0";
/// How long a publisher holds the lease without renewing it. A stand-by instance takes over at
/// most this long after the holder died (at once after a clean shutdown).
const LEASE: Duration = Duration::from_secs(10);
/// How often a stand-by instance tries to take the lease.
const STANDBY_POLL: Duration = Duration::from_secs(1);
/// Longest wait between reconnection attempts after Redis errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Entries a publish keeps in the stream besides the ones this deployment's consumer group has
/// not read yet (the Open edX producer's `EVENT_BUS_REDIS_STREAM_MAX_LEN` default).
pub const STREAM_KEEP: usize = 10_000;

/// The `MAXLEN ~` of the next publish: [`STREAM_KEEP`] plus what `group` (our own consumer
/// group) has not read yet, so publishing badge events never trims learning events Accolade has
/// still to consume. Trimming a fixed 10,000 dropped 155,000 unread entries of a 200,000-entry
/// backlog while a slower database consumed it (docs/benchmarks.md). When Redis cannot tell the
/// group's lag (after deletions), nothing is trimmed this time; without the group (consumer not
/// started yet) the stream is trimmed as the Open edX producer trims it.
pub async fn stream_max_len(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> redis::RedisResult<usize> {
    let exists: bool = conn.exists(stream).await?;
    if !exists {
        return Ok(STREAM_KEEP);
    }
    let info: redis::streams::StreamInfoGroupsReply = conn.xinfo_groups(stream).await?;
    Ok(match info.groups.iter().find(|g| g.name == group) {
        None => STREAM_KEEP,
        Some(g) => match g.lag {
            Some(lag) => STREAM_KEEP + lag,
            None => {
                let len: usize = conn.xlen(stream).await?;
                len + STREAM_KEEP
            }
        },
    })
}

/// Publishes the batch when the lease is ours. KEYS: lease, stream, last batch.
/// ARGV: token, maxlen, the batch's ids (newline-separated), entry count, then per entry its
/// field-and-value count followed by the fields and values.
const PUBLISH: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local i = 5
for e = 1, tonumber(ARGV[4]) do
  local n = tonumber(ARGV[i])
  local args = {KEYS[2], 'MAXLEN', '~', ARGV[2], '*'}
  for j = 1, n do args[#args + 1] = ARGV[i + j] end
  i = i + n + 1
  redis.call('XADD', unpack(args))
end
redis.call('SET', KEYS[3], ARGV[3])
return tonumber(ARGV[4])
";

/// Takes the lease when free, or extends it when ours. KEYS: lease. ARGV: token, ms.
const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Gives the lease up when ours. KEYS: lease. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

static PUBLISH_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(PUBLISH));
static ACQUIRE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ACQUIRE));
static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE));

/// One instance's publisher: its lease token and the keys it works with.
pub struct Publisher {
    registry: SchemaRegistry,
    stream: String,
    lease_key: String,
    last_batch_key: String,
    token: String,
    host: String,
    renewed: Option<Instant>,
    /// Events of the last batch passed by (no schema for their type): marked, not published.
    passed_by: usize,
}

impl Publisher {
    pub fn new(state: &AppState, registry: SchemaRegistry) -> Publisher {
        let stream = state.config.event_bus.stream();
        let host = state.config.event_bus.consumer_name();
        Publisher {
            registry,
            lease_key: format!("accolade:publisher:{stream}:lease"),
            last_batch_key: format!("accolade:publisher:{stream}:last-batch"),
            stream,
            // A configured consumer name is the instance's identity, so a restarted instance
            // takes its own lease back at once; otherwise each process is a new holder and
            // waits for a dead predecessor's lease to run out.
            token: match state.config.event_bus.consumer.as_str() {
                "" => format!("{host}/{}", uuid::Uuid::new_v4()),
                name => name.to_string(),
            },
            host,
            renewed: None,
            passed_by: 0,
        }
    }

    /// Whether this publisher held the lease at its last check.
    pub fn is_leader(&self) -> bool {
        self.renewed.is_some_and(|t| t.elapsed() < LEASE)
    }

    /// Takes or extends the lease; true when it is ours. On taking it, first marks the events
    /// of the last batch any holder wrote as published (a holder may have died between its
    /// XADD and its database update).
    pub async fn acquire(
        &mut self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
    ) -> anyhow::Result<bool> {
        let was_leader = self.is_leader();
        let ours: i64 = ACQUIRE_SCRIPT
            .key(&self.lease_key)
            .arg(&self.token)
            .arg(LEASE.as_millis() as u64)
            .invoke_async(conn)
            .await?;
        if ours != 1 {
            if was_leader {
                tracing::warn!(stream = %self.stream, "event-bus publisher lost its lease");
            }
            self.renewed = None;
            crate::metrics::bus_publisher_leader(false);
            return Ok(false);
        }
        if !was_leader {
            let last: Option<String> = redis::cmd("GET")
                .arg(&self.last_batch_key)
                .query_async(conn)
                .await?;
            let ids: Vec<String> = last
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                state.store.mark_published(ids, Utc::now()).await?;
            }
            tracing::info!(stream = %self.stream, "event-bus publisher holds the lease");
        }
        self.renewed = Some(Instant::now());
        crate::metrics::bus_publisher_leader(true);
        Ok(true)
    }

    /// Gives the lease up (clean shutdown), so a stand-by instance takes over at once.
    pub async fn release(&mut self, conn: &mut MultiplexedConnection) -> anyhow::Result<()> {
        let _: i64 = RELEASE_SCRIPT
            .key(&self.lease_key)
            .arg(&self.token)
            .invoke_async(conn)
            .await?;
        self.renewed = None;
        crate::metrics::bus_publisher_leader(false);
        Ok(())
    }

    /// Publishes one batch if the lease is ours and marks it published; returns how many
    /// events went out, or `None` when another instance holds the lease.
    pub async fn run_once(
        &mut self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
    ) -> anyhow::Result<Option<usize>> {
        let Some(ids) = self.write_batch(state, conn).await? else {
            return Ok(None);
        };
        let n = ids.len();
        if n > 0 {
            state.store.mark_published(ids, Utc::now()).await?;
            crate::metrics::bus_published(n - self.passed_by);
        }
        Ok(Some(n))
    }

    /// The first half of [`Publisher::run_once`]: writes the next batch to the stream (renewing
    /// the lease when a third of it has passed) and returns its event ids, not yet marked
    /// published (those of types without a schema included: they are passed by). `None` when
    /// another instance holds the lease.
    pub async fn write_batch(
        &mut self,
        state: &AppState,
        conn: &mut MultiplexedConnection,
    ) -> anyhow::Result<Option<Vec<String>>> {
        let fresh = self.renewed.is_some_and(|t| t.elapsed() < LEASE / 3);
        if !fresh && !self.acquire(state, conn).await? {
            return Ok(None);
        }
        self.passed_by = 0;
        let pending = state.store.unpublished_events(BATCH).await?;
        if pending.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
        let (publish, passed_by): (Vec<_>, Vec<_>) = pending
            .iter()
            .partition(|p| self.registry.contains(&p.event_type));
        self.passed_by = passed_by.len();
        if publish.is_empty() {
            // Nothing for the stream: the batch is only to be marked.
            return Ok(Some(ids));
        }
        let max_len = stream_max_len(conn, &self.stream, &state.config.event_bus.group).await?;
        let mut script = PUBLISH_SCRIPT.prepare_invoke();
        script
            .key(&self.lease_key)
            .key(&self.stream)
            .key(&self.last_batch_key)
            .arg(&self.token)
            .arg(max_len)
            .arg(ids.join("\n"))
            .arg(publish.len());
        for p in &publish {
            let event = json!({
                "id": p.id,
                "event_type": p.event_type,
                "time": p.time.to_rfc3339_opts(SecondsFormat::Micros, false),
                "source": "accolade",
                "sourcehost": self.host,
                "minorversion": 0,
                "data": {"badge": p.payload},
            });
            let fields = encode_entry(&self.registry, &event, &self.host, SOURCELIB)
                .map_err(|e| anyhow::anyhow!("encoding outgoing event {}: {e}", p.id))?;
            script.arg(fields.len() * 2);
            for (k, v) in &fields {
                script.arg(k.as_str()).arg(v.as_slice());
            }
        }
        let written: i64 = script.invoke_async(conn).await?;
        if written < 0 {
            // The lease expired under us and another instance may hold it: nothing was written.
            self.renewed = None;
            crate::metrics::bus_publisher_leader(false);
            return Ok(None);
        }
        Ok(Some(ids))
    }
}

/// Runs until shutdown: publishes while this instance holds the lease, stands by otherwise,
/// and reconnects with a growing delay (1 s up to 30 s) after Redis or database errors.
pub async fn run(state: AppState, registry: SchemaRegistry) {
    let url = state.config.event_bus.redis_url.clone();
    let idle = Duration::from_millis(state.config.worker.poll_interval_ms);
    let mut publisher = Publisher::new(&state, registry);
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut connection = None;
        let result = async {
            let client = redis::Client::open(url.as_str())?;
            let conn = connection.insert(client.get_multiplexed_async_connection().await?);
            loop {
                let wait = match publisher.run_once(&state, conn).await? {
                    Some(0) => idle,
                    Some(_) => Duration::ZERO,
                    None => STANDBY_POLL,
                };
                backoff = Duration::from_secs(1);
                if wait.is_zero() {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = state.shutdown.cancelled() => return anyhow::Ok(()),
                }
            }
        }
        .await;
        match result {
            Ok(()) => {
                if let Some(conn) = connection.as_mut() {
                    if let Err(e) = publisher.release(conn).await {
                        tracing::debug!(error = %e, "releasing the publisher lease");
                    }
                }
                return;
            }
            Err(e) => {
                publisher.renewed = None;
                crate::metrics::bus_publisher_leader(false);
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "event-bus publisher failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = state.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
