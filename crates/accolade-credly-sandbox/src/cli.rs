//! The sandbox's command line, shared by its own binary and `accolade credly-sandbox`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::{Faults, RateLimitFault, Sandbox, Seed};

/// A Credly-compatible fake server for tests, benchmarks and demos.
#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// Seed file (.json or .toml). Default: the built-in demo seed.
    #[arg(long, env = "CREDLY_SANDBOX_SEED")]
    pub seed: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CREDLY_SANDBOX_LISTEN", default_value = "127.0.0.1:4010")]
    pub listen: SocketAddr,
    /// Allow a non-loopback listen address (the control API has no authentication).
    #[arg(long)]
    pub allow_remote: bool,
    /// Sleep this long before answering each API request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share (0.0..=1.0) of API requests answered 503.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Requests per second allowed before answering 429.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Retry-After seconds sent with 429 answers.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Webhook URL set on every seeded organization that has none.
    #[arg(long, env = "CREDLY_SANDBOX_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Log every request (same as RUST_LOG=accolade_credly_sandbox=debug).
    #[arg(short, long)]
    pub verbose: bool,
}

/// Runs the sandbox until Ctrl-C / SIGTERM.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        bail!(
            "refusing to listen on {}: the control API has no authentication; \
             use a loopback address or pass --allow-remote",
            args.listen
        );
    }
    let mut seed = match &args.seed {
        Some(path) => Seed::from_file(path)?,
        None => Seed::demo(),
    };
    if let Some(url) = &args.webhook_url {
        for org in &mut seed.organizations {
            org.webhook_url.get_or_insert_with(|| url.clone());
        }
    }
    let faults = Faults {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        rate_limit: args.rate_limit.map(|n| RateLimitFault {
            max_per_second: Some(n),
            retry_after_secs: args.retry_after,
        }),
        ..Faults::default()
    };
    faults.validate().map_err(anyhow::Error::msg)?;

    let orgs: Vec<_> = seed
        .organizations
        .iter()
        .map(|o| {
            (
                o.id.clone(),
                o.name.clone(),
                o.tokens.iter().map(|t| t.token.clone()).collect::<Vec<_>>(),
                o.oauth_clients
                    .iter()
                    .map(|c| (c.client_id.clone(), c.client_secret.clone()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let sandbox = Sandbox::new(seed);
    sandbox.set_faults(faults);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Credly sandbox listening on http://{addr}/");
    println!("API base URL: http://{addr}/v1/");
    println!("OAuth token URL: http://{addr}/oauth/token");
    for (id, name, tokens, clients) in &orgs {
        println!("organization {name:?}: id {id}");
        for t in tokens {
            println!("  token: {t}");
        }
        for (client_id, secret) in clients {
            println!("  OAuth client: {client_id} (secret {secret})");
        }
    }
    println!("control API: http://{addr}/_sandbox/stats");

    tokio::select! {
        r = sandbox.serve(listener) => r.context("server failed")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
