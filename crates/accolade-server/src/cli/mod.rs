//! The command line: argument parsing (clap) and one function per subcommand. `main.rs` only
//! calls [`run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod awards;
mod backfill;
mod demo;
mod import;

use crate::config::{Config, Overrides, DEFAULT_CONFIG};
use crate::service::{admin_users, apply, auth, password};
use crate::state::AppState;
use crate::{db, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "accolade",
    version,
    about = "Self-hosted digital badges: award badges from learning events."
)]
pub struct Cli {
    /// Configuration file (default: ./accolade.toml when present).
    #[arg(long, global = true, env = "ACCOLADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the configuration (sqlite://… or postgres://…).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server, event ingest and the outbox worker.
    Serve {
        /// Listen address, e.g. 0.0.0.0:8080.
        #[arg(long)]
        bind: Option<String>,
        /// Do not run the outbox, Credly and webhook workers in this process.
        #[arg(long)]
        no_workers: bool,
        /// Also start the bundled Credly sandbox with sample templates and connect to it, so the
        /// whole Credly flow works with no Credly account.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the Open edX event-bus consumer (Redis Streams), without the HTTP API.
    Consume {
        /// Serve /health/live, /health/ready (naming the roles) and /metrics on this address.
        #[arg(long)]
        health_bind: Option<String>,
    },
    /// Run only the background workers (Credly outbox, webhooks, Open Badges issuing, expiry,
    /// backfills, key rotation, template sync), without the HTTP API: the worker role of a
    /// deployment whose API instances run `serve --no-workers`.
    Work {
        /// Serve /health/live, /health/ready (naming the roles) and /metrics on this address.
        #[arg(long)]
        health_bind: Option<String>,
    },
    /// Run the bundled Credly-compatible sandbox server (for tests, benchmarks and demos).
    CredlySandbox(accolade_credly_sandbox::cli::SandboxArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create or update templates, requirements and penalties from a rules file.
    Apply {
        /// The rules file (TOML, see docs/rules-as-code.md).
        #[arg(short, long)]
        file: PathBuf,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the default configuration with comments.
    DefaultConfig,
    /// The configuration in effect.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Credly organizations, keys and template sync.
    Credly {
        #[command(subcommand)]
        command: CredlyCommand,
    },
    /// Apps of the Open Credit-style API (/v1.1).
    Opencredit {
        #[command(subcommand)]
        command: OpenCreditCommand,
    },
    /// The Open Badges 3.0 issuer: signing keys.
    Openbadges {
        #[command(subcommand)]
        command: OpenBadgesCommand,
    },
    /// Outbox jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Outbound webhook subscriptions and their deliveries.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Apply a template's current rules to learners who already have stored events: preview
    /// with --dry-run, or award those who qualify (docs/backfill.md).
    Backfill(backfill::BackfillArgs),
    /// Move over from another badge system: `import openedx-credentials --from mysql://…`.
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Manual awards and revocations for a list of learners.
    Awards {
        #[command(subcommand)]
        command: awards::AwardsCommand,
    },
    /// The demo of `serve --demo`.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Check configuration, database and Credly keys; exits non-zero when something needs
    /// attention.
    Doctor,
}

#[derive(Debug, Subcommand)]
pub enum OpenBadgesCommand {
    /// Make a new signing key; new credentials and status lists are signed with it. Old keys
    /// stay in the DID document, so credentials they signed still verify.
    RotateKey,
    /// List the signing keys (the active one last) and the issuer's DID.
    Keys,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Play the LMS: send "passed the course" events for a few learners to a running
    /// `accolade serve --demo`, then show their badges reaching the Credly sandbox.
    SendEvents {
        /// The server's address (default: http.bind of the configuration).
        #[arg(long)]
        url: Option<String>,
        /// How many learners (1-1000).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
        learners: u16,
        /// How long to follow the awards, in seconds.
        #[arg(long, default_value_t = 20)]
        wait_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (defaults, file, environment and flags applied) as TOML,
    /// with secrets masked.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum OpenCreditCommand {
    /// Register an app and print its API key and secret (the secret is shown once).
    CreateApp {
        #[arg(long)]
        name: String,
        /// sandbox (20/min), light (120/min), medium (240/min), heavy (480/min) or enterprise
        /// (no limit).
        #[arg(long, default_value = "sandbox")]
        tier: String,
    },
    /// Change an app's tier (by id or API key); applies to its next request.
    SetTier { app: String, tier: String },
    /// List the registered apps.
    ListApps,
}

#[derive(Debug, Subcommand)]
pub enum CredlyCommand {
    /// Add a Credly organization with an API key or OAuth client credentials (checked with
    /// Credly first).
    AddOrg {
        /// The organization's UUID.
        #[arg(long)]
        uuid: String,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// Replace an organization's API key, or its OAuth client credentials, with ones you give
    /// (this may switch its method).
    RotateKey {
        #[arg(long)]
        uuid: String,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// Rotate an organization's authorization token through Credly now: Credly issues a new
    /// token and ends the old one at once, also for every other system that uses it. The new
    /// token is stored first; if Credly fails, the old one stays.
    Rotate {
        #[arg(long)]
        uuid: String,
    },
    /// List organizations with key expiry and last sync.
    Orgs,
    /// Sync badge templates from Credly (every organization unless --org is given).
    Sync {
        #[arg(long)]
        org: Option<String>,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// An organization's credentials on the command line: an API key, or an OAuth client id and
/// secret. Prefer the environment variables, which keep secrets out of the shell history.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// An API key (authorization token).
    #[arg(long, env = "ACCOLADE_CREDLY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// An OAuth client id (with --client-secret, instead of an API key).
    #[arg(long, env = "ACCOLADE_CREDLY_CLIENT_ID", hide_env_values = true)]
    client_id: Option<String>,
    /// The OAuth client secret.
    #[arg(long, env = "ACCOLADE_CREDLY_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
}

impl CredentialArgs {
    fn parse(self) -> anyhow::Result<crate::service::credly::orgs::NewCredentials> {
        Ok(crate::service::credly::orgs::CredentialsInput {
            api_key: self.api_key,
            client_id: self.client_id,
            client_secret: self.client_secret,
        }
        .parse()?)
    }
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs (dead ones by default).
    List {
        /// pending, running, succeeded or dead.
        #[arg(long, default_value = "dead")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Run a dead (or waiting) job again now.
    Retry {
        /// Job ids; `--all-dead` retries every dead job.
        ids: Vec<String>,
        #[arg(long)]
        all_dead: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe a URL; prints the subscription and its signing secret (shown once).
    Add {
        #[arg(long)]
        url: String,
        /// An event type to deliver (repeatable); none = every type.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// The signing secret; generated when absent. Prefer the environment variable.
        #[arg(long, env = "ACCOLADE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List subscriptions.
    List,
    /// Delete a subscription and its delivery log.
    Remove { id: String },
    /// List deliveries, newest first.
    Deliveries {
        /// Only this subscription's.
        #[arg(long)]
        webhook: Option<String>,
        /// pending, succeeded or dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send a delivery's event again (a new delivery with the same event id).
    Replay { delivery_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an API token for the admin JSON API and print it (shown once).
    CreateToken {
        /// What the token is for, e.g. "lms-ingest".
        #[arg(long)]
        name: String,
        /// What it may do: `events:write` (POST /events only), `read` (every GET), `admin`
        /// (everything; the default). Repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, e.g. 90d, 12h; without it the token does not expire.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List API tokens (never their secrets): id, name, scopes, state, expiry, last use.
    ListTokens,
    /// Revoke an API token: refused from now on, kept in the list.
    RevokeToken { id: String },
    /// Create an account for the web UI at /admin, or set a new password with --reset. The
    /// password is read from standard input (first line), so it never appears in the process
    /// list or the shell history: `accolade admin create-user --username ann < pw.txt`, or type
    /// it at the prompt.
    CreateUser {
        #[arg(long)]
        username: String,
        /// Replace the password of an existing account (ends its sessions, clears a lock).
        #[arg(long)]
        reset: bool,
    },
}

/// Reads a new password from the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!(
            "Password (at least {} characters, shown as typed): ",
            password::MIN_LENGTH
        );
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    password::check_strength(&password).map_err(|e| anyhow::anyhow!(e))?;
    Ok(password)
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::DefaultConfig = cli.command {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    let bind = match &cli.command {
        Command::Serve { bind, .. } => bind.clone(),
        _ => None,
    };
    let config = Config::load(
        cli.config.as_deref(),
        &Overrides {
            bind,
            database_url: cli.database_url.clone(),
        },
    )?;
    telemetry::init(&config.log);
    match cli.command {
        Command::Serve {
            no_workers, demo, ..
        } => serve(config, !no_workers, demo).await,
        Command::CredlySandbox(args) => accolade_credly_sandbox::cli::run(args).await,
        Command::Consume { health_bind } => consume(config, health_bind).await,
        Command::Work { health_bind } => work(config, health_bind).await,
        Command::Migrate => {
            let n = db::migrate(&config.database).await?;
            println!("{n} migration(s) applied");
            Ok(())
        }
        Command::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let templates =
                apply::parse(&text).with_context(|| format!("in {}", file.display()))?;
            if let Some((at, event_type)) = apply::unconfigured(&templates, &config.events) {
                anyhow::bail!(
                    "in {}: {at} uses event type `{event_type}`, which is not in events.types",
                    file.display()
                );
            }
            let store = db::open(&config.database).await?;
            let report = apply::apply(&*store, templates, dry_run)
                .await
                .with_context(|| format!("in {}", file.display()))?;
            for line in &report.lines {
                println!("{line}");
            }
            if let Some(id) = report.backfills.first() {
                println!(
                    "A running server's worker runs the backfill(s); follow with `accolade backfill show {id}` (or run it here: `accolade backfill resume {id}`)."
                );
            }
            println!(
                "{}{} created, {} changed, {} unchanged{}",
                if dry_run { "dry run: " } else { "" },
                report.created,
                report.changed,
                report.unchanged,
                if report.ignored > 0 {
                    format!(
                        "; {} Credly field(s) in the file not applied (`!` lines)",
                        report.ignored
                    )
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        Command::Opencredit { command } => {
            use accolade_opencredit::tiers::Tier;
            let store = db::open(&config.database).await?;
            match command {
                OpenCreditCommand::CreateApp { name, tier } => {
                    let tier: Tier = tier.parse()?;
                    if name.trim().is_empty() {
                        anyhow::bail!("--name must not be empty");
                    }
                    let (app, secret) =
                        crate::opencredit::apps::create(&*store, &name, tier).await?;
                    eprintln!(
                        "Created app {} ({}, tier {}). The secret is shown once; store it now.",
                        app.id, app.name, app.tier
                    );
                    println!("X-Api-Key: {}", app.api_key);
                    println!("X-Api-Secret: {secret}");
                }
                OpenCreditCommand::SetTier { app, tier } => {
                    let tier: Tier = tier.parse()?;
                    let app = crate::opencredit::apps::change_tier(&*store, &app, tier).await?;
                    println!("app {} ({}) is now on tier {}", app.id, app.name, app.tier);
                }
                OpenCreditCommand::ListApps => {
                    for app in crate::opencredit::apps::list(&*store).await? {
                        println!("{}\t{}\t{}\t{}", app.id, app.api_key, app.tier, app.name);
                    }
                }
            }
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateToken {
                    name,
                    scopes,
                    expires_in,
                },
        } => {
            let expires_at = expires_in.as_deref().map(auth::expires_at).transpose()?;
            let store = db::open(&config.database).await?;
            let (token, secret) = auth::create_token(&*store, &name, &scopes, expires_at).await?;
            let until = token
                .expires_at
                .map(|at| format!(", expires {}", at.to_rfc3339()))
                .unwrap_or_default();
            eprintln!(
                "Created token {} ({}; scopes {}{until}). It is shown once; store it now:",
                token.id,
                token.name,
                token.scopes.join(" ")
            );
            println!("{secret}");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::ListTokens,
        } => {
            let store = db::open(&config.database).await?;
            println!("id\tname\tscopes\tstate\texpires_at\tlast_used_at");
            let now = chrono::Utc::now();
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
            };
            for t in auth::list_tokens(&*store).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.scopes.join(" "),
                    auth::state_of(&t, now),
                    time(t.expires_at),
                    time(t.last_used_at)
                );
            }
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::RevokeToken { id },
        } => {
            let store = db::open(&config.database).await?;
            // This process verifies no tokens: nothing of its own to forget.
            let cache = auth::TokenCache::default();
            let token = match auth::revoke_token(&*store, &cache, &id).await {
                Err(accolade_store::StoreError::NotFound { .. }) => {
                    anyhow::bail!("no API token {id} (see `accolade admin list-tokens`)")
                }
                other => other?,
            };
            eprintln!(
                "Revoked token {} ({}); running servers refuse it within 10 seconds.",
                token.id, token.name
            );
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::CreateUser { username, reset },
        } => {
            let username = admin_users::Username::parse(&username)?;
            let password = read_password()?;
            let store = db::open(&config.database).await?;
            if reset {
                admin_users::set_password(&*store, &username, &password).await?;
                eprintln!(
                    "New password set for {}; their sessions were ended.",
                    username.as_str()
                );
            } else {
                let user = admin_users::create(&*store, &username, &password).await?;
                eprintln!(
                    "Created admin account {} ({}). Sign in at /admin.",
                    user.username, user.id
                );
            }
            Ok(())
        }
        Command::Credly { command } => credly_command(config, command).await,
        Command::Openbadges { command } => openbadges_command(config, command).await,
        Command::Jobs { command } => jobs_command(config, command).await,
        Command::Webhooks { command } => webhooks_command(config, command).await,
        Command::Doctor => doctor(config).await,
        Command::Backfill(args) => backfill::run(cli_state(config).await?, args).await,
        Command::Awards { command } => awards::run(cli_state(config).await?, command).await,
        Command::Import { command } => import::run(cli_state(config).await?, command).await,
        Command::DefaultConfig => Ok(()),
        Command::Demo {
            command:
                DemoCommand::SendEvents {
                    url,
                    learners,
                    wait_secs,
                },
        } => {
            demo::send_events(
                &config,
                url,
                learners as usize,
                std::time::Duration::from_secs(wait_secs),
            )
            .await
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            print!("{}", config.show()?);
            Ok(())
        }
    }
}

async fn openbadges_command(config: Config, command: OpenBadgesCommand) -> anyhow::Result<()> {
    let state = cli_state(config).await?;
    let ob = &state.openbadges;
    let store = &*state.store;
    match command {
        OpenBadgesCommand::RotateKey => {
            let old = ob.keys.get(store).await?;
            let key = ob.keys.rotate(store).await?;
            println!(
                "New signing key {} ({}); {} kept for earlier credentials. Running servers use it within 5 seconds.",
                ob.method(&key.id),
                key.public_multibase,
                ob.method(&old.active_id)
            );
        }
        OpenBadgesCommand::Keys => {
            let keys = ob.keys.get(store).await?;
            println!(
                "issuer {}  (DID document at {}{})",
                ob.did,
                ob.base,
                ob.did_document_path()
            );
            for k in &keys.all {
                println!(
                    "{}  {}  created {}  {}",
                    ob.method(&k.id),
                    k.public_multibase,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    match k.retired_at {
                        Some(t) => format!("retired {}", t.format("%Y-%m-%d %H:%M")),
                        None => "active".into(),
                    }
                );
            }
        }
    }
    Ok(())
}

async fn cli_state(config: Config) -> anyhow::Result<AppState> {
    let store = db::open(&config.database).await?;
    AppState::new(store, config)
}

fn print_org(o: &accolade_store::CredlyOrganization, credly: &crate::service::credly::Credly) {
    use accolade_store::CredlyAuthMethod;
    let credentials = match (o.auth_method, o.key_expires_at) {
        (CredlyAuthMethod::Token, Some(expires_at)) => {
            let s = crate::service::credly::orgs::key_status(
                expires_at,
                chrono::Utc::now(),
                &credly.config.key_warning_days,
            );
            format!(
                "key …{}  expires {} ({} days, {})",
                o.api_key_last4.as_deref().unwrap_or(""),
                expires_at.format("%Y-%m-%d"),
                s.days_left,
                s.level,
            )
        }
        _ => format!(
            "OAuth client …{}",
            o.oauth_client_id_last4.as_deref().unwrap_or("")
        ),
    };
    let rotation = o.last_rotation.as_ref().map_or(String::new(), |r| {
        format!(
            "  last rotation {} {} ({}){}",
            r.at.format("%Y-%m-%d %H:%M"),
            if r.ok { "ok" } else { "failed" },
            r.trigger.as_str(),
            r.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )
    });
    println!(
        "{}  {}  {credentials}  last sync {}{rotation}",
        o.id,
        o.name,
        o.last_sync_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".into())
    );
}

async fn credly_command(config: Config, command: CredlyCommand) -> anyhow::Result<()> {
    use crate::service::credly::{orgs, rotation, sync};
    let state = cli_state(config).await?;
    let store = &*state.store;
    match command {
        CredlyCommand::AddOrg { uuid, credentials } => {
            let org = orgs::add(&state.credly, store, &uuid, credentials.parse()?).await?;
            print_org(&org, &state.credly);
        }
        CredlyCommand::RotateKey { uuid, credentials } => {
            let org = orgs::replace_credentials(
                &state.credly,
                store,
                &orgs::normalize_id(&uuid),
                credentials.parse()?,
            )
            .await?;
            print_org(&org, &state.credly);
        }
        CredlyCommand::Rotate { uuid } => {
            let org =
                rotation::rotate_now(&state.credly, store, &orgs::normalize_id(&uuid)).await?;
            print_org(&org, &state.credly);
        }
        CredlyCommand::Orgs => {
            for org in orgs::list(store).await? {
                print_org(&org, &state.credly);
            }
        }
        CredlyCommand::Sync { org, dry_run } => {
            let ids = match org {
                Some(o) => vec![orgs::normalize_id(&o)],
                None => orgs::list(store).await?.into_iter().map(|o| o.id).collect(),
            };
            if ids.is_empty() {
                anyhow::bail!(
                    "no Credly organization is configured (add one with `accolade credly add-org`)"
                );
            }
            let mut failed = 0;
            for id in ids {
                eprintln!("syncing {id}…");
                match sync::sync_org(&state.credly, store, &id, dry_run).await {
                    Ok(s) => println!(
                        "{id}: {}{} created, {} updated, {} deactivated, {} unchanged ({} pages)",
                        if dry_run { "dry run: " } else { "" },
                        s.created,
                        s.updated,
                        s.deactivated,
                        s.unchanged,
                        s.pages
                    ),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{id}: sync failed: {e}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} organization(s) failed to sync");
            }
        }
    }
    Ok(())
}

async fn jobs_command(config: Config, command: JobsCommand) -> anyhow::Result<()> {
    use crate::service::jobs;
    use accolade_domain::outbox::JobStatus;
    let store = db::open(&config.database).await?;
    let store = &*store;
    match command {
        JobsCommand::List { status, limit } => {
            let status = JobStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("unknown status `{status}`"))?;
            let filter = accolade_store::JobFilter {
                status: Some(status),
                kind: None,
            };
            let page =
                jobs::list(store, &filter, accolade_store::Page::new(Some(limit), None)).await?;
            for j in page.items {
                println!(
                    "{}  {}  {}  attempts {}  {}",
                    j.id,
                    j.kind,
                    j.status.as_str(),
                    j.attempts,
                    j.last_error.unwrap_or_default()
                );
            }
        }
        JobsCommand::Retry { ids, all_dead } => {
            let mut ids = ids;
            if all_dead {
                ids.extend(jobs::dead_ids(store).await?);
            }
            if ids.is_empty() {
                anyhow::bail!("name job ids or pass --all-dead");
            }
            for id in ids {
                let job = jobs::retry(store, &id).await?;
                println!("{}  {}  queued again", job.id, job.kind);
            }
        }
    }
    Ok(())
}

async fn webhooks_command(config: Config, command: WebhooksCommand) -> anyhow::Result<()> {
    use crate::service::webhooks::deliveries;
    use crate::service::webhooks::subscriptions::{self, Subscribe};
    let state = cli_state(config).await?;
    let store = &*state.store;
    let show = |w: &accolade_store::Webhook| {
        let types = if w.event_types.is_empty() {
            "all events".to_string()
        } else {
            w.event_types.join(",")
        };
        let active = if w.active { "active" } else { "paused" };
        println!("{}  {}  {types}  {active}  {}", w.id, w.url, w.description);
    };
    match command {
        WebhooksCommand::Add {
            url,
            event_types,
            secret,
            description,
        } => {
            let created = subscriptions::create(
                store,
                &state.webhooks,
                Subscribe {
                    url,
                    event_types,
                    secret,
                    description,
                    active: true,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            show(&created.webhook);
            eprintln!("Signing secret (shown once; store it now):");
            println!("{}", created.secret);
        }
        WebhooksCommand::List => {
            subscriptions::all(store).await?.iter().for_each(show);
        }
        WebhooksCommand::Remove { id } => {
            subscriptions::delete(store, &id).await?;
            println!("{id}  removed");
        }
        WebhooksCommand::Deliveries {
            webhook,
            status,
            limit,
        } => {
            let status = match status {
                Some(s) => Some(
                    accolade_domain::webhook::DeliveryStatus::parse(&s).ok_or_else(|| {
                        anyhow::anyhow!("unknown status `{s}` (pending, succeeded or dead)")
                    })?,
                ),
                None => None,
            };
            let filter = accolade_store::DeliveryFilter {
                webhook_id: webhook,
                status,
            };
            let page =
                deliveries::list(store, &filter, accolade_store::Page::new(Some(limit), None))
                    .await?;
            for d in page.items {
                println!(
                    "{}  {}  {}  {}  attempts {}  last {}  {}",
                    d.id,
                    d.webhook_id,
                    d.event_id,
                    d.status.as_str(),
                    d.attempts,
                    d.last_status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    d.last_error.unwrap_or_default()
                );
            }
        }
        WebhooksCommand::Replay { delivery_id } => {
            let d = deliveries::replay(store, &delivery_id).await?;
            println!("{}  replays {delivery_id} (event {})", d.id, d.event_id);
        }
    }
    Ok(())
}

/// Prints one line per check; fails when any check is not OK.
async fn doctor(config: Config) -> anyhow::Result<()> {
    println!(
        "ok    configuration is valid ({})",
        crate::config::redact_url(&config.database.url)
    );
    let state = match cli_state(config).await {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL  database or secrets: {e:#}");
            anyhow::bail!("doctor found problems");
        }
    };
    let report = checks(&state).await?;
    let mut problems = 0;
    for (level, line) in &report {
        if *level != Level::Ok {
            problems += 1;
        }
        println!("{:<5} {line}", level.as_str());
    }
    if problems > 0 {
        anyhow::bail!("doctor found {problems} problem(s)");
    }
    Ok(())
}

pub use crate::service::checks::Level;

/// The checks of `accolade doctor` once the database is open: database, Credly keys (expiry,
/// decryption), dead outbox jobs, dead webhook deliveries, and the Open Credit API's when it is
/// on. One line per finding.
pub async fn checks(state: &AppState) -> anyhow::Result<Vec<(Level, String)>> {
    use crate::service::checks;
    let store = &*state.store;
    let mut out = vec![checks::database(store).await];
    out.extend(checks::credly_keys(&state.credly, store).await?);
    out.push(checks::dead_jobs(store).await?);
    out.push(checks::dead_deliveries(store).await?);
    out.extend(checks::openbadges(&state.openbadges, store).await?);
    if state.config.opencredit.enabled {
        out.extend(crate::opencredit::checks(state).await);
    }
    Ok(out)
}

async fn serve(mut config: Config, workers: bool, demo: bool) -> anyhow::Result<()> {
    let addr = config.bind_addr()?;
    let sandbox = if demo {
        let sb =
            accolade_credly_sandbox::Sandbox::start(accolade_credly_sandbox::Seed::demo()).await?;
        config.credly.api_base_url = sb.api_base_url.clone();
        config.credly.base_url = sb.base_url.clone();
        config.credly.oauth_token_url = sb.oauth_token_url.clone();
        config.credly.use_sandbox = false;
        Some(sb)
    } else {
        None
    };
    if config.http.public_base_url.trim().is_empty() {
        tracing::warn!(
            "http.public_base_url is not set: links in mail and answers start with {}; set it to \
             the address people reach this service at",
            config.public_base_url()
        );
    }
    if !config.opencredit.public_url.is_empty() {
        tracing::warn!("opencredit.public_url is deprecated: set http.public_base_url instead");
    }
    let store = db::open(&config.database).await?;
    let workers = workers && config.worker.enabled;
    let state = AppState::new(store, config)?;
    crate::metrics::handle();
    if state.openbadges.enabled {
        // The first start makes the issuer's key, so its DID document is complete at once.
        state.openbadges.keys.get(&*state.store).await?;
        let base = &state.openbadges.base;
        let host = base
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(['/', ':'])
            .next()
            .unwrap_or("");
        if !base.starts_with("https://") || host.parse::<std::net::IpAddr>().is_ok() {
            tracing::warn!(
                did = %state.openbadges.did,
                "Open Badges credentials are issued by {}: did:web verifiers resolve only https host names, so \
                 set http.public_base_url to this service's https address before issuing for real \
                 (docs/openbadges.md)",
                state.openbadges.did
            );
        }
    }
    if workers {
        start_workers(&state)?;
    }
    tokio::spawn(crate::service::credly::orgs::watch_expiry(state.clone()));
    tokio::spawn(crate::service::admin_sessions::purge_expired(state.clone()));
    let bus_tasks = if state.config.event_bus.enabled {
        start_bus(&state)?
    } else {
        Vec::new()
    };
    let mut roles = vec!["api"];
    if workers {
        roles.push("workers");
    }
    if state.config.event_bus.enabled {
        roles.push("consumer");
        if state.config.event_bus.publish {
            roles.push("publisher");
        }
    }
    let _ = state.roles.set(roles);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, workers, "accolade listening on http://{}", listener.local_addr()?);
    if let Some(sb) = &sandbox {
        demo::setup(&state, sb, listener.local_addr()?).await?;
    }
    let shutdown = state.shutdown.clone();
    let http = state.config.http.clone();
    let app = crate::build_app(state);
    crate::listener::serve(listener, app, &http, async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    })
    .await;
    // The publisher hands its lease over; never wait long.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        futures::future::join_all(bus_tasks),
    )
    .await;
    Ok(())
}

/// The background workers of the `workers` role (`serve` without `--no-workers`, and `work`).
fn start_workers(state: &AppState) -> anyhow::Result<()> {
    tokio::spawn(crate::service::credly::worker::run(state.clone()));
    tokio::spawn(crate::service::webhooks::worker::run(state.clone()));
    tokio::spawn(crate::service::expiry::run(state.clone()));
    tokio::spawn(crate::service::backfill::worker::run(state.clone()));
    if state.config.opencredit.enabled {
        tokio::spawn(crate::opencredit::awards::run(state.clone()));
    }
    if state.openbadges.enabled {
        tokio::spawn(crate::service::openbadges::issuer::run(state.clone()));
    }
    tokio::spawn(crate::service::credly::rotation::run_auto(state.clone()));
    if let Some(every) = state.config.credly.sync_every()? {
        tokio::spawn(crate::service::credly::sync::run_periodic(
            state.clone(),
            every,
        ));
    }
    Ok(())
}

/// `accolade work`: the workers only, until SIGTERM or Ctrl-C.
async fn work(config: Config, health_bind: Option<String>) -> anyhow::Result<()> {
    if !config.worker.enabled {
        anyhow::bail!("worker.enabled is false: `accolade work` would have nothing to do");
    }
    let store = db::open(&config.database).await?;
    let state = AppState::new(store, config)?;
    crate::metrics::handle();
    if state.openbadges.enabled {
        // Made here too, so a worker-only deployment issues from its first start.
        state.openbadges.keys.get(&*state.store).await?;
    }
    start_workers(&state)?;
    tokio::spawn(crate::service::credly::orgs::watch_expiry(state.clone()));
    let _ = state.roles.set(vec!["workers"]);
    tracing::info!("accolade workers running");
    run_until_shutdown(&state, health_bind, Vec::new()).await
}

/// Waits for SIGTERM or Ctrl-C, serving the health endpoints on `health_bind` meanwhile when
/// given, then stops `tasks` (a short grace: the consumer's batch in flight, the publisher's
/// lease; unfinished work is redelivered or re-claimed anyway).
async fn run_until_shutdown(
    state: &AppState,
    health_bind: Option<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    match health_bind {
        Some(bind) => {
            let addr: std::net::SocketAddr = bind.parse().with_context(|| {
                format!("--health-bind {bind}: not an address like 127.0.0.1:9090")
            })?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "health endpoints on http://{}", listener.local_addr()?);
            let app = crate::api::health::router().with_state(state.clone());
            let shutdown = state.shutdown.clone();
            let http = state.config.http.clone();
            crate::listener::serve(listener, app, &http, async move {
                shutdown_signal().await;
                shutdown.cancel();
            })
            .await;
        }
        None => {
            shutdown_signal().await;
            state.shutdown.cancel();
        }
    }
    tracing::info!("shutting down");
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        futures::future::join_all(tasks),
    )
    .await;
    Ok(())
}

/// The event-bus consumer, and the publisher of badge events when `event_bus.publish` is on
/// (every instance may run it: one at a time publishes, see `bus::producer`).
fn start_bus(state: &AppState) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use crate::service::bus;
    let registry = bus::registry(&state.config)?;
    let consumer = bus::consumer::Consumer::new(&state.config.event_bus, registry.clone());
    let mut tasks = vec![tokio::spawn(bus::consumer::run(state.clone(), consumer))];
    if state.config.event_bus.publish {
        tasks.push(tokio::spawn(bus::producer::run(state.clone(), registry)));
    }
    Ok(tasks)
}

/// `accolade consume`: the event-bus consumer alone (scale consumers apart from the API).
async fn consume(mut config: Config, health_bind: Option<String>) -> anyhow::Result<()> {
    config.event_bus.enabled = true;
    let store = db::open(&config.database).await?;
    let state = AppState::new(store, config)?;
    crate::metrics::handle();
    let tasks = start_bus(&state)?;
    let mut roles = vec!["consumer"];
    if state.config.event_bus.publish {
        roles.push("publisher");
    }
    let _ = state.roles.set(roles);
    run_until_shutdown(&state, health_bind, tasks).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
