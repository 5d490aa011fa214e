//! nexmile-cli: the headless Nexmile client.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nexmile_client::{demo, link_report};
use nexmile_core::applink::AppLinkParser;

#[derive(Parser)]
#[command(name = "nexmile-cli", version, about = "Headless Nexmile client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse an app link and print it as one JSON object (exit 2 if refused).
    ParseLink {
        /// The app link: https://…/sbxapp/<function>/?… or nexmile://<function>/?…
        link: String,
        /// Another https base to accept besides the spec's (repeatable).
        #[arg(long = "base", value_name = "URL")]
        bases: Vec<String>,
    },
    /// Show app links and per-second billing at work.
    Demo,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::ParseLink { link, bases } => {
            let mut parser = AppLinkParser::default();
            for base in &bases {
                parser = match parser.with_base(base) {
                    Ok(parser) => parser,
                    Err(e) => {
                        eprintln!("nexmile-cli: --base {base}: {e}");
                        return ExitCode::from(64);
                    }
                };
            }
            let (json, status) = link_report::report(&parser, &link);
            println!("{json}");
            ExitCode::from(u8::try_from(status).unwrap_or(1))
        }
        Command::Demo => match demo::run(&mut io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nexmile-cli: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
