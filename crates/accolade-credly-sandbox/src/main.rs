//! `accolade-credly-sandbox`: runs the Credly sandbox as a standalone server.

#![forbid(unsafe_code)]

use accolade_credly_sandbox::cli::{run, SandboxArgs};
use clap::Parser;

/// A Credly-compatible fake server for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(name = "accolade-credly-sandbox", version, about)]
struct Args {
    #[command(flatten)]
    sandbox: SandboxArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let default_filter = if args.sandbox.verbose {
        "accolade_credly_sandbox=debug,info"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    run(args.sandbox).await
}
