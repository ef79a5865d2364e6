//! `ampere`: the Ampere server. Serves the web app, its WASM bundle and the REST
//! APIs from one process.
//!
//! Run `ampere --help` for the flags; each has an environment variable too.

use clap::Parser;

/// mimalloc rather than glibc's malloc: rendering pages allocates a lot, from
/// many threads, and glibc's allocator spent a fifth of the CPU time on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = server::Config::parse();
    // An operator's command prints its answer alone on stdout.
    if let Some(command) = &config.command {
        return match server::operator::run(&config, command).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ampere: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    server::init_logging(&config);
    match server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "ampere stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
