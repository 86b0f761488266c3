use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // rustls 0.23 needs a process-wide crypto provider chosen before any TLS is set up.
    if rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a TLS crypto provider was already installed");
    }
    let cli = rocketgate::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(rocketgate::cli::run(cli))
}
