//! `nexmile-server --config FILE`

use std::path::PathBuf;

use clap::Parser;
use nexmile_server::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "The Nexmile server: calls, lives, billing and partner integration."
)]
struct Args {
    /// The TOML configuration (see README.md).
    #[arg(long)]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "nexmile_server=info".into()),
        )
        .init();
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nexmile-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let server = match nexmile_server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("nexmile-server: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("nexmile server on {}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    server.stop().await;
    std::process::ExitCode::SUCCESS
}
