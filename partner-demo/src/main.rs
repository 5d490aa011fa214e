//! `nexmile-partner-demo`: the partner demo site as a program.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use nexmile_partner_demo::{DemoConfig, PartnerDemo};

/// A working partner site for Nexmile: users, points, app links, and the
/// endpoints the Nexmile server calls.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[arg(long, default_value_t = DemoConfig::default().listen)]
    listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `sqlite::memory:`.
    #[arg(long, default_value_t = DemoConfig::default().database)]
    database: String,
    #[arg(long, default_value_t = DemoConfig::default().site_code)]
    site_code: String,
    /// siteApiKey: what the Nexmile server must send (and signs with).
    #[arg(long, default_value_t = DemoConfig::default().api_key)]
    api_key: String,
    #[arg(long, default_value_t = DemoConfig::default().site_token)]
    site_token: String,
    /// The secret the Nexmile server signs this site's requests with.
    #[arg(long, env = "NEXMILE_SIGNING_SECRET")]
    signing_secret: Option<String>,
    /// The Nexmile server, for UpdateUserBalance.
    #[arg(long, default_value_t = DemoConfig::default().nexmile_url)]
    nexmile_url: String,
    /// A PEM certificate authority that vouches for the Nexmile server besides
    /// the system's roots (`make run`'s development CA).
    #[arg(long, value_name = "PEM")]
    nexmile_ca: Option<std::path::PathBuf>,
    /// The https base of app links (default: the spec's); `nexmile://` for the custom scheme.
    #[arg(long)]
    app_link_base: Option<String>,
    /// Ringing time of calls, 10–180 s.
    #[arg(long, default_value_t = DemoConfig::default().calling_timeout_sec)]
    calling_timeout: u32,
    /// Points added by one auto-charge.
    #[arg(long, default_value_t = DemoConfig::default().auto_charge_points)]
    auto_charge_points: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let nexmile_ca = match args.nexmile_ca.as_deref().map(std::fs::read_to_string) {
        None => None,
        Some(Ok(pem)) => Some(pem),
        Some(Err(e)) => {
            eprintln!("nexmile-partner-demo: --nexmile-ca: {e}");
            return ExitCode::from(2);
        }
    };
    let config = DemoConfig {
        listen: args.listen,
        database: args.database,
        site_code: args.site_code,
        api_key: args.api_key,
        site_token: args.site_token,
        signing_secret: args.signing_secret,
        nexmile_url: args.nexmile_url,
        nexmile_ca,
        app_link_base: args.app_link_base,
        calling_timeout_sec: args.calling_timeout,
        auto_charge_points: args.auto_charge_points,
    };
    let demo = match PartnerDemo::start(config).await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("nexmile-partner-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("partner demo on {}", demo.url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("nexmile-partner-demo: cannot wait for Ctrl-C: {e}");
    }
    demo.shutdown().await;
    ExitCode::SUCCESS
}
