//! The `accolade` binary: parse the command line and run it. No logic lives here.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = accolade_server::cli::Cli::parse();
    match accolade_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
