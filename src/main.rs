mod cli;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: why, with figures, beside the dependency in
/// Cargo.toml.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // rustls 0.23 needs a process-wide crypto provider chosen before any TLS is set up.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a TLS crypto provider was already installed");
    }
    let cli = cli::Cli::parse();
    let runtime = match runtime_builder().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(cli))
}

/// One core (a `taskset`, or a container limited to one CPU): a single-threaded runtime, so
/// no request pays for cross-thread wake-ups and work stealing it cannot use. More cores, or
/// `TOKIO_WORKER_THREADS` set: the multi-threaded runtime.
fn runtime_builder() -> tokio::runtime::Builder {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 && std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}
