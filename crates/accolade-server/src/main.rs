//! The `accolade` binary: parse the command line and run it. No logic lives here.

use clap::Parser;

/// jemalloc instead of the system allocator: the event path allocates and frees many small
/// strings and JSON nodes per event on the single writer thread. Measured with `scripts/bench`:
/// batch ingest 31,316 -> about 36,500 events/s, and peak RSS after 1M fulfilments 166 -> 154 MiB
/// (mimalloc was as fast but peaked at 198 MiB).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
