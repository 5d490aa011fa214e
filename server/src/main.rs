//! `nexmile-server --config FILE`, or `nexmile-server --dev-certificates DIR`

use std::path::PathBuf;

use clap::Parser;
use nexmile_server::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "The Nexmile server: calls, lives, billing and partner integration."
)]
#[command(group = clap::ArgGroup::new("job").required(true))]
struct Args {
    /// The TOML configuration (see README.md): serve it.
    #[arg(long, group = "job")]
    config: Option<PathBuf>,
    /// Make a development certificate authority and a certificate for
    /// 127.0.0.1 and localhost in DIR (ca.pem, cert.pem, key.pem), unless
    /// they are there already; for `make run` and trials, never production.
    #[arg(long, group = "job", value_name = "DIR")]
    dev_certificates: Option<PathBuf>,
}

/// Ctrl-C, or SIGTERM from systemd, a container runtime or `kill`.
async fn stop_requested() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
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
    if let Some(dir) = args.dev_certificates {
        let hosts = ["127.0.0.1", "localhost", "::1"];
        return match nexmile_server::tls::DevCertificates::ensure(&dir, &hosts) {
            Ok(files) => {
                println!("{}", files.ca.display());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nexmile-server: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let Some(config) = args.config else {
        unreachable!("clap requires --config or --dev-certificates");
    };
    let config = match Config::load(&config) {
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
    stop_requested().await;
    tracing::info!("stopping: ending every call and live with its end report");
    server.stop().await;
    std::process::ExitCode::SUCCESS
}
