//! The command line: argument parsing (clap) and one function per subcommand. `main.rs` only
//! calls [`run`].

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides, DEFAULT_CONFIG};
use crate::service::{apply, auth};
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
        /// Do not run the outbox worker in this process.
        #[arg(long)]
        no_workers: bool,
    },
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
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an API token for the admin JSON API and print it (shown once).
    CreateToken {
        /// What the token is for, e.g. "lms-ingest".
        #[arg(long)]
        name: String,
    },
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
        Command::Serve { no_workers, .. } => serve(config, !no_workers).await,
        Command::Migrate => {
            let n = db::migrate(&config.database).await?;
            println!("{n} migration(s) applied");
            Ok(())
        }
        Command::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let desired = apply::parse(&text).with_context(|| format!("in {}", file.display()))?;
            for d in &desired {
                for r in d
                    .requirements
                    .iter()
                    .map(|r| &r.event_type)
                    .chain(d.penalties.iter().map(|p| &p.event_type))
                {
                    if !config.events.types.contains(r) {
                        anyhow::bail!(
                            "template `{}` uses event type `{r}`, which is not in events.types",
                            d.template.name
                        );
                    }
                }
            }
            let store = db::open(&config.database).await?;
            let report = apply::apply(&*store, desired, dry_run).await?;
            for line in &report.lines {
                println!("{line}");
            }
            println!(
                "{}{} created, {} changed, {} unchanged",
                if dry_run { "dry run: " } else { "" },
                report.created,
                report.changed,
                report.unchanged
            );
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::CreateToken { name },
        } => {
            let store = db::open(&config.database).await?;
            let (token, secret) = auth::create_token(&*store, &name).await?;
            eprintln!(
                "Created token {} ({}). It is shown once; store it now:",
                token.id, token.name
            );
            println!("{secret}");
            Ok(())
        }
        Command::DefaultConfig => Ok(()),
    }
}

async fn serve(config: Config, workers: bool) -> anyhow::Result<()> {
    let addr = config.bind_addr()?;
    let store = db::open(&config.database).await?;
    let workers = workers && config.worker.enabled;
    let state = AppState::new(store, config);
    crate::metrics::handle();
    if workers {
        tokio::spawn(crate::service::worker::run(state.clone()));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, workers, "accolade listening on http://{}", listener.local_addr()?);
    let shutdown = state.shutdown.clone();
    let app = crate::build_app(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        })
        .await?;
    Ok(())
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
