//! Configuration: one `Config` struct loaded in layers (embedded commented defaults →
//! `accolade.toml` or `--config` → `ACCOLADE_*` environment with `__` nesting → command-line
//! flags) with figment, then validated so that a bad setting stops start-up with a message that
//! names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The largest `credly.auto_rotate_days`: half a key's 180-day life.
pub const MAX_AUTO_ROTATE_DAYS: u32 = 90;

/// The commented defaults, printed by `accolade default-config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../config.default.toml");

pub mod keys;
pub mod show;

/// `ACCOLADE_*` variables that are not settings: the config file path, and secrets that
/// commands read from the environment so they stay out of the shell history. `ACCOLADE_TEST_*`
/// is reserved for the test suite.
const NOT_SETTINGS: [&str; 5] = [
    "ACCOLADE_CONFIG",
    "ACCOLADE_CREDLY_API_KEY",
    "ACCOLADE_CREDLY_CLIENT_ID",
    "ACCOLADE_CREDLY_CLIENT_SECRET",
    "ACCOLADE_WEBHOOK_SECRET",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub ingest: IngestConfig,
    pub events: EventsConfig,
    pub worker: WorkerConfig,
    pub event_bus: EventBusConfig,
    pub credly: CredlyConfig,
    pub webhooks: WebhooksConfig,
    pub opencredit: OpenCreditConfig,
    pub openbadges: OpenBadgesConfig,
    pub secrets: SecretsConfig,
    pub log: LogConfig,
}

/// The Open Badges 3.0 issuer (`[openbadges]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBadgesConfig {
    pub enabled: bool,
    /// The issuer Profile's name (empty = "Accolade"), URL and email (optional).
    pub issuer_name: String,
    pub issuer_url: String,
    pub issuer_email: String,
    /// Whether credentials and badge pages carry the learner's name.
    pub show_names: bool,
    /// Entries per Bitstring Status List (>= 131072).
    pub status_list_size: u32,
    /// Awards signed per batch.
    pub batch_size: u32,
    /// Idle poll interval of the issuer.
    pub poll_interval_ms: u64,
}

/// The Open Credit-style API (`[opencredit]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCreditConfig {
    pub enabled: bool,
    pub media_root: PathBuf,
    pub public_url: String,
    pub max_image_bytes: usize,
    pub max_image_side: u32,
    /// Pixel budget of an upload (width x height), checked against its header.
    pub max_image_pixels: u64,
    /// Uploads decoded at once; 0 = cores - 1 (at least 1).
    pub image_workers: usize,
    pub access_token_days: i64,
    pub rate_limits: bool,
    pub rate_limit_redis_url: String,
    pub s3: S3Config,
    pub mail: MailConfig,
}

/// S3-compatible image storage (`[opencredit.s3]`); on when `bucket` is set.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Outgoing mail of the Open Credit API (`[opencredit.mail]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub transport: String,
    pub folder: PathBuf,
    pub smtp_url: String,
    pub from: String,
}

/// Outbound webhooks (`[webhooks]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Per-request timeout in seconds (connect, send and receive the answer).
    pub timeout_secs: u64,
    /// Delays after the 1st, 2nd, … failed attempt.
    pub retry_schedule: Vec<String>,
    /// Delay between attempts once the schedule is used up.
    pub retry_interval: String,
    /// No retry is scheduled later than this many hours after the first attempt.
    pub max_age_hours: u64,
    /// Deliveries sent at once by one instance.
    pub concurrency: usize,
    /// Destinations allowed besides public addresses: host names (`*.domain` for the names
    /// under one), IP addresses and CIDR blocks.
    pub allowed_destinations: Vec<String>,
}

impl WebhooksConfig {
    /// The retry policy these settings describe.
    pub fn retry_policy(&self) -> anyhow::Result<accolade_domain::retry::RetryPolicy> {
        let parse = |s: &String, key: &str| {
            parse_duration(s)
                .with_context(|| format!("webhooks.{key}: `{s}` is not a duration like 1m, 2h"))
        };
        Ok(accolade_domain::retry::RetryPolicy {
            schedule: self
                .retry_schedule
                .iter()
                .map(|s| parse(s, "retry_schedule"))
                .collect::<anyhow::Result<_>>()?,
            then_every: Some(parse(&self.retry_interval, "retry_interval")?),
            max_age: Some(Duration::from_secs(self.max_age_hours.saturating_mul(3600))),
        })
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBusConfig {
    pub enabled: bool,
    pub redis_url: String,
    pub prefix: String,
    pub topic: String,
    pub group: String,
    pub consumer: String,
    pub start_from: String,
    pub batch_size: usize,
    pub block_ms: u64,
    pub claim_idle_secs: u64,
    pub schema_dir: PathBuf,
    pub publish: bool,
}

impl std::fmt::Debug for EventBusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBusConfig")
            .field("enabled", &self.enabled)
            .field("redis_url", &redact_url(&self.redis_url))
            .field("stream", &self.stream())
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl EventBusConfig {
    /// `<prefix>-<topic>`, as event-bus-redis names the stream.
    pub fn stream(&self) -> String {
        if self.prefix.is_empty() {
            self.topic.clone()
        } else {
            format!("{}-{}", self.prefix, self.topic)
        }
    }

    /// The configured consumer name, or `<hostname>-<pid>`.
    pub fn consumer_name(&self) -> String {
        if !self.consumer.is_empty() {
            return self.consumer.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "accolade".into());
        format!("{host}-{}", std::process::id())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredlyConfig {
    pub api_base_url: String,
    pub base_url: String,
    pub use_sandbox: bool,
    pub timeout_secs: u64,
    /// Requests per second per organization; 0 = unlimited.
    pub rate_limit_per_second: u32,
    pub sync_interval: String,
    pub key_warning_days: Vec<i64>,
    /// Unconfirmed webhook notifications per organization before new ones get 503.
    pub webhook_max_pending: u64,
    /// Webhook confirmation calls per second per organization (part of the rate above).
    pub webhook_lookups_per_second: u32,
    /// Webhook posts per sender address and minute before 429.
    pub webhook_per_source_per_minute: u32,
    /// Settled notifications are deleted after this many days.
    pub webhook_retention_days: u32,
    /// OAuth 2.0 token endpoint for organizations with client credentials.
    pub oauth_token_url: String,
    /// Scopes requested with client credentials (space-separated).
    pub oauth_scope: String,
    /// Rotate a key through Credly when fewer than this many days are left; 0 = off.
    pub auto_rotate_days: u32,
}

impl CredlyConfig {
    /// The API base URL in effect (`use_sandbox` wins).
    pub fn effective_api_base_url(&self) -> &str {
        if self.use_sandbox {
            accolade_credly::SANDBOX_API_BASE_URL
        } else {
            &self.api_base_url
        }
    }

    /// The OAuth token endpoint in effect: with `use_sandbox`, the production default becomes
    /// the sandbox's (a guess: Credly documents none); any other value is used as given.
    pub fn effective_oauth_token_url(&self) -> &str {
        if self.use_sandbox
            && self.oauth_token_url.trim() == accolade_credly::DEFAULT_OAUTH_TOKEN_URL
        {
            accolade_credly::SANDBOX_OAUTH_TOKEN_URL
        } else {
            self.oauth_token_url.trim()
        }
    }

    /// The web base URL in effect (dashboard links).
    pub fn effective_base_url(&self) -> &str {
        if self.use_sandbox {
            accolade_credly::SANDBOX_BASE_URL
        } else {
            &self.base_url
        }
    }

    pub fn sync_every(&self) -> anyhow::Result<Option<Duration>> {
        let d = parse_duration(&self.sync_interval).with_context(|| {
            format!(
                "credly.sync_interval: `{}` is not a duration like 0s, 30m, 6h",
                self.sync_interval
            )
        })?;
        Ok((!d.is_zero()).then_some(d))
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Base64 of 32 bytes, or empty to use `key_file`.
    pub key: String,
    pub key_file: PathBuf,
}

/// The 32-byte secrets key from its base64 form (`secrets.key`, or the key file's text).
pub fn decode_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .context("not base64")?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{} bytes instead of 32", b.len()))
}

impl std::fmt::Debug for SecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsConfig")
            .field("key", &if self.key.is_empty() { "" } else { "***" })
            .field("key_file", &self.key_file)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://…`.
    pub url: String,
    /// Apply migrations at start-up.
    pub auto_migrate: bool,
    /// SQLite `PRAGMA synchronous` (FULL or NORMAL).
    pub sqlite_synchronous: String,
    /// SQLite page size of a new database file.
    pub sqlite_page_size: u32,
    /// PostgreSQL pool size.
    pub max_connections: u32,
    /// PostgreSQL: transactions a large event batch is split into, by learner.
    pub event_lanes: u32,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("auto_migrate", &self.auto_migrate)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("sqlite_page_size", &self.sqlite_page_size)
            .field("max_connections", &self.max_connections)
            .field("event_lanes", &self.event_lanes)
            .finish()
    }
}

/// Hides the password of a DSN such as `postgres://user:secret@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub bind: String,
    /// Start of every absolute link (never taken from request headers); empty = from `bind`.
    pub public_base_url: String,
    /// Bearer token `/metrics` requires; empty = public.
    pub metrics_token: String,
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
    /// Per-request timeout.
    pub request_timeout_secs: u64,
    /// Time allowed for a request head, and for an idle kept-alive connection.
    pub header_read_timeout_secs: u64,
    /// Open connections at most.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Most events in one request.
    pub max_events_per_request: usize,
    /// Most events committed in one transaction.
    pub batch_max_events: usize,
    /// Pending submissions before back-pressure (503).
    pub queue_capacity: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Event types offered to requirements and penalties.
    pub types: Vec<String>,
    /// Key paths hidden from suggestions.
    pub ignored_keypaths: Vec<String>,
}

impl EventsConfig {
    /// Whether requirements, penalties and the event bus accept `event_type` (`events.types`).
    pub fn is_configured(&self, event_type: &str) -> bool {
        self.types.iter().any(|t| t == event_type)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Run the outbox worker in `serve`.
    pub enabled: bool,
    /// Job lease length.
    pub lease_secs: u64,
    /// Delays between attempts, e.g. `["10s", "1m"]`.
    pub retry_schedule: Vec<String>,
    /// Idle poll interval.
    pub poll_interval_ms: u64,
    /// How often the expiry sweep looks for expired awards, e.g. `30s`.
    pub expiry_check_interval: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// Default level filter.
    pub level: String,
}

/// Values given on the command line, applied last.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads and validates the configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Toml::string(DEFAULT_CONFIG));
        let file = match file {
            Some(path) if !path.exists() => bail!("config file {} does not exist", path.display()),
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from("accolade.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            keys::check_file(&text, &path.display().to_string())?;
            fig = fig.merge(Toml::string(&text));
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if std::env::var("ACCOLADE_DATABASE__URL").is_err() {
                fig = fig.merge(Serialized::default("database.url", url));
            }
        }
        for (key, value) in keys::from_env(environment()?)? {
            fig = fig.merge(Serialized::default(&key, value));
        }
        if let Some(b) = &overrides.bind {
            fig = fig.merge(Serialized::default("http.bind", b));
        }
        if let Some(u) = &overrides.database_url {
            fig = fig.merge(Serialized::default("database.url", u));
        }
        let config: Config = fig.extract().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults only (tests and tools).
    pub fn defaults() -> Config {
        #[allow(clippy::expect_used)] // the embedded defaults are checked by a unit test
        Figment::from(Toml::string(DEFAULT_CONFIG))
            .extract()
            .expect("embedded defaults parse")
    }

    /// Cross-field and value checks with messages naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!(
                "database.url must start with sqlite:// or postgres://, got `{}`",
                redact_url(url)
            );
        }
        if !matches!(
            self.database
                .sqlite_synchronous
                .to_ascii_uppercase()
                .as_str(),
            "FULL" | "NORMAL" | "EXTRA"
        ) {
            bail!("database.sqlite_synchronous must be FULL, NORMAL or EXTRA");
        }
        let page = self.database.sqlite_page_size;
        if !(512..=65536).contains(&page) || !page.is_power_of_two() {
            bail!("database.sqlite_page_size must be a power of two from 512 to 65536, not {page}");
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        if !(1..=64).contains(&self.database.event_lanes) {
            bail!("database.event_lanes must be between 1 and 64");
        }
        self.bind_addr()?;
        let public = &self.http.public_base_url;
        if !(public.is_empty() || public.starts_with("http://") || public.starts_with("https://"))
            || public.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("http.public_base_url must be empty or an http(s) URL like https://badges.example.org");
        }
        let ob = &self.openbadges;
        if ob.status_list_size < accolade_openbadges::status_list::MIN_ENTRIES
            || !ob.status_list_size.is_multiple_of(8)
            || ob.status_list_size > 8 * 1024 * 1024
        {
            bail!(
                "openbadges.status_list_size must be a multiple of 8 from 131072 (the Bitstring \
                 Status List minimum) to 8388608, not {}",
                ob.status_list_size
            );
        }
        if !(1..=4096).contains(&ob.batch_size) {
            bail!("openbadges.batch_size must be from 1 to 4096");
        }
        if !(10..=60_000).contains(&ob.poll_interval_ms) {
            bail!("openbadges.poll_interval_ms must be from 10 to 60000");
        }
        for (key, value) in [("issuer_url", &ob.issuer_url)] {
            if !(value.is_empty() || value.starts_with("http://") || value.starts_with("https://"))
            {
                bail!("openbadges.{key} must be empty or an http(s) URL");
            }
        }
        if accolade_openbadges::did::did_web(&self.public_base_url()).is_err() {
            bail!("http.public_base_url must name a host: the Open Badges issuer is its did:web");
        }
        if self.http.max_body_bytes < 1024 {
            bail!("http.max_body_bytes must be at least 1024");
        }
        if self.http.request_timeout_secs == 0 {
            bail!("http.request_timeout_secs must be at least 1");
        }
        let credly = &self.credly;
        if credly.webhook_max_pending == 0
            || credly.webhook_lookups_per_second == 0
            || credly.webhook_per_source_per_minute == 0
            || credly.webhook_retention_days == 0
        {
            bail!(
                "credly.webhook_max_pending, webhook_lookups_per_second, \
                 webhook_per_source_per_minute and webhook_retention_days must be at least 1"
            );
        }
        if self.http.header_read_timeout_secs == 0 {
            bail!("http.header_read_timeout_secs must be at least 1");
        }
        if self.http.max_connections == 0 {
            bail!("http.max_connections must be at least 1");
        }
        if !(1..=100_000).contains(&self.ingest.batch_max_events) {
            bail!("ingest.batch_max_events must be between 1 and 100000");
        }
        if self.ingest.max_events_per_request == 0 || self.ingest.queue_capacity == 0 {
            bail!("ingest.max_events_per_request and ingest.queue_capacity must be at least 1");
        }
        for t in &self.events.types {
            accolade_domain::event::validate_event_type(t)
                .map_err(|_| anyhow::anyhow!("events.types: `{t}` is not a valid event type"))?;
        }
        self.retry_schedule()?;
        self.expiry_check_interval()?;
        if self.worker.lease_secs == 0 {
            bail!("worker.lease_secs must be at least 1");
        }
        let oc = &self.opencredit;
        if oc.max_image_bytes < 1024 || oc.max_image_side < 600 {
            bail!("opencredit.max_image_bytes must be at least 1024 and opencredit.max_image_side at least 600 (the largest size code)");
        }
        if oc.max_image_pixels < 600 * 600 {
            bail!("opencredit.max_image_pixels must be at least 360000 (600 x 600, the largest size code)");
        }
        if oc.access_token_days < 1 {
            bail!("opencredit.access_token_days must be at least 1");
        }
        if !(oc.public_url.is_empty()
            || oc.public_url.starts_with("http://")
            || oc.public_url.starts_with("https://"))
        {
            bail!("opencredit.public_url must be empty or an http(s) URL");
        }
        if !(oc.rate_limit_redis_url.is_empty()
            || oc.rate_limit_redis_url.starts_with("redis://")
            || oc.rate_limit_redis_url.starts_with("rediss://"))
        {
            bail!(
                "opencredit.rate_limit_redis_url must be empty or start with redis:// or rediss://"
            );
        }
        let endpoint = &oc.s3.endpoint;
        let endpoint_ok = endpoint.is_empty()
            || endpoint.starts_with("http://")
            || endpoint.starts_with("https://");
        if !oc.s3.bucket.is_empty() && !endpoint_ok {
            bail!("opencredit.s3.endpoint must be empty (AWS) or an http(s) URL");
        }
        match oc.mail.transport.as_str() {
            "file" => {}
            "smtp" if oc.mail.smtp_url.starts_with("smtp://") || oc.mail.smtp_url.starts_with("smtps://") => {}
            "smtp" => bail!("opencredit.mail.smtp_url must start with smtp:// or smtps:// when transport = \"smtp\""),
            other => bail!("opencredit.mail.transport must be \"file\" or \"smtp\", got `{other}`"),
        }
        if oc.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!("opencredit.mail.from is not a valid mailbox (e.g. \"Accolade <no-reply@example.org>\")");
        }
        let bus = &self.event_bus;
        if !(bus.redis_url.starts_with("redis://") || bus.redis_url.starts_with("rediss://")) {
            bail!("event_bus.redis_url must start with redis:// or rediss://");
        }
        if bus.topic.is_empty() || bus.group.is_empty() {
            bail!("event_bus.topic and event_bus.group must not be empty");
        }
        if !matches!(bus.start_from.as_str(), "beginning" | "now") {
            bail!("event_bus.start_from must be `beginning` or `now`");
        }
        if bus.batch_size == 0 || bus.batch_size > 10_000 {
            bail!("event_bus.batch_size must be between 1 and 10000");
        }
        if bus.enabled && bus.claim_idle_secs < self.http.request_timeout_secs {
            tracing::warn!(
                "event_bus.claim_idle_secs ({}) is shorter than the processing timeout ({} s): \
                 entries still being processed may be taken over by another consumer",
                bus.claim_idle_secs,
                self.http.request_timeout_secs
            );
        }
        for (name, url) in [
            ("credly.api_base_url", &self.credly.api_base_url),
            ("credly.base_url", &self.credly.base_url),
            ("credly.oauth_token_url", &self.credly.oauth_token_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("{name} must be an http(s) URL, got `{url}`");
            }
        }
        if self.credly.timeout_secs == 0 {
            bail!("credly.timeout_secs must be at least 1");
        }
        self.credly.sync_every()?;
        if self.credly.key_warning_days.iter().any(|d| *d < 0) {
            bail!("credly.key_warning_days must not be negative");
        }
        if self.credly.oauth_scope.chars().any(char::is_control) {
            bail!("credly.oauth_scope must be scope names separated by spaces");
        }
        if self.credly.auto_rotate_days > MAX_AUTO_ROTATE_DAYS {
            bail!(
                "credly.auto_rotate_days must be at most {MAX_AUTO_ROTATE_DAYS} (Credly keys live \
                 180 days; a larger value would rotate every new key again and again), or 0 for off"
            );
        }
        let hooks = &self.webhooks;
        let policy = hooks.retry_policy()?;
        if policy.then_every.is_some_and(|d| d.is_zero()) {
            bail!("webhooks.retry_interval must be longer than 0s");
        }
        if hooks.timeout_secs == 0 || hooks.concurrency == 0 || hooks.max_age_hours == 0 {
            bail!("webhooks.timeout_secs, webhooks.concurrency and webhooks.max_age_hours must be at least 1");
        }
        crate::service::webhooks::destination::Destinations::parse(&hooks.allowed_destinations)?;
        if !self.secrets.key.is_empty() {
            decode_key(&self.secrets.key).context("secrets.key must be 32 bytes in base64")?;
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format must be `text` or `json`");
        }
        Ok(())
    }

    /// The start of every absolute link Accolade writes, without a trailing slash:
    /// `http.public_base_url`, else the deprecated `opencredit.public_url`, else `http://<bind>`
    /// (an unspecified address as 127.0.0.1). Never derived from a request.
    pub fn public_base_url(&self) -> String {
        for configured in [&self.http.public_base_url, &self.opencredit.public_url] {
            let trimmed = configured.trim().trim_end_matches('/');
            if !trimmed.is_empty() {
                return trimmed.to_string();
            }
        }
        match self.bind_addr() {
            Ok(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
            Ok(addr) => format!("http://{addr}"),
            Err(_) => format!("http://{}", self.http.bind),
        }
    }

    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        self.http.bind.parse().with_context(|| {
            format!(
                "http.bind `{}` is not an address like 127.0.0.1:8080",
                self.http.bind
            )
        })
    }

    /// `worker.expiry_check_interval`: at least 100 ms.
    pub fn expiry_check_interval(&self) -> anyhow::Result<Duration> {
        let text = &self.worker.expiry_check_interval;
        let d = parse_duration(text).with_context(|| {
            format!("worker.expiry_check_interval: `{text}` is not a duration like 30s, 5m")
        })?;
        if d < Duration::from_millis(100) {
            bail!("worker.expiry_check_interval must be at least 100ms, got `{text}`");
        }
        Ok(d)
    }

    pub fn retry_schedule(&self) -> anyhow::Result<Vec<Duration>> {
        if self.worker.retry_schedule.is_empty() {
            bail!("worker.retry_schedule needs at least one delay");
        }
        self.worker
            .retry_schedule
            .iter()
            .map(|s| {
                parse_duration(s).with_context(|| {
                    format!("worker.retry_schedule: `{s}` is not a duration like 10s, 5m, 1h")
                })
            })
            .collect()
    }
}

/// The process environment; a non-UTF-8 `ACCOLADE_` variable is an error rather than skipped.
fn environment() -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if !name.starts_with("ACCOLADE_") {
            continue;
        }
        match value.into_string() {
            Ok(v) => out.push((name, v)),
            Err(_) => bail!("environment variable {name} is not valid UTF-8"),
        }
    }
    Ok(out)
}

/// Parses `500ms`, `10s`, `5m`, `1h`, `2d`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().context("missing number")?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        other => bail!("unknown unit `{other}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let c = Config::defaults();
        c.validate().unwrap();
        assert!(c.database.url.starts_with("sqlite://"));
        assert_eq!(c.retry_schedule().unwrap()[1], Duration::from_secs(60));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        let mut c = Config::defaults();
        c.database.url = "postgres://u:hunter2@h/db".into();
        c.secrets.key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".into();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("AQEBAQEB"), "{shown}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = Config::defaults();
        c.http.bind = "nope".into();
        assert!(c.validate().unwrap_err().to_string().contains("http.bind"));
        for page in [0, 1000, 131072] {
            let mut c = Config::defaults();
            c.database.sqlite_page_size = page;
            assert!(c
                .validate()
                .unwrap_err()
                .to_string()
                .contains("database.sqlite_page_size"));
        }
        for bad in ["soon", "0s", "50ms"] {
            let mut c = Config::defaults();
            c.worker.expiry_check_interval = bad.into();
            assert!(
                c.validate()
                    .unwrap_err()
                    .to_string()
                    .contains("worker.expiry_check_interval"),
                "{bad}"
            );
        }
        assert_eq!(
            Config::defaults().expiry_check_interval().unwrap(),
            Duration::from_secs(30)
        );
        let mut c = Config::defaults();
        c.worker.retry_schedule = vec!["10 parsecs".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("worker.retry_schedule"));
        let mut c = Config::defaults();
        c.database.url = "mysql://x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.url"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(21600));
        assert!(parse_duration("x").is_err());
    }
}
