//! nexmile-cli: the headless Nexmile client. It prints the engine's events
//! as JSON lines and, where a person would press buttons, acts by the
//! script its options give ([`script`]).

mod script;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nexmile_client::app::{Client, EffectChoice, EventSink, Outcome, UserAction, print_event};
use nexmile_client::capture_feed::CaptureChoice;
use nexmile_client::events::EngineEvent;
use nexmile_client::profiles::DeviceSettings;
use nexmile_client::profiles::Profiles;
use nexmile_client::server_url::ServerUrl;
use nexmile_client::{demo, link_report, social_reader};
use nexmile_core::applink::{AppLinkParser, SiteCode};
use tokio::sync::{broadcast, mpsc};

use crate::script::{Script, ScriptPlan};

#[derive(Parser)]
#[command(name = "nexmile-cli", version, about = "Headless Nexmile client")]
struct Cli {
    /// The Nexmile server: https, or http to this machine only.
    #[arg(long, global = true, default_value = "https://127.0.0.1:7443")]
    server: String,
    /// A PEM certificate authority to trust for the server besides the
    /// system's (a private deployment's CA; `make run`'s development CA).
    #[arg(long, global = true, value_name = "PEM", env = "NEXMILE_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Where the profiles (one per site code) are kept.
    #[arg(long, global = true, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// Address for media; repeat for several (default: every interface, or
    /// 127.0.0.1 when the server is on this machine).
    #[arg(long = "bind", global = true, value_name = "IP")]
    bind: Vec<IpAddr>,
    /// Another https app-link base to accept besides the spec's (repeatable).
    #[arg(long = "base", global = true, value_name = "URL")]
    bases: Vec<String>,
    /// Use the system's camera, microphone and speaker (as chosen in the
    /// profile's settings) instead of the stamped test pattern and tone,
    /// and play the other side's sound.
    #[arg(long, global = true)]
    devices: bool,
    /// Offer no retransmission stream (RTX) for video: nothing lost is then
    /// resent. Only to measure what RTX saves (the loss tests compare both).
    #[arg(long, global = true)]
    no_retransmission: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Copy)]
struct PlanArgs {
    /// Hang up this many milliseconds after the call connects.
    #[arg(long, value_name = "MS")]
    hangup_after: Option<u64>,
}

/// broadcastLive / viewLive: the broadcaster starts at once; both say and send these.
#[derive(clap::Args, Clone)]
struct LiveArgs {
    /// End the live (broadcaster) or leave it (viewer) this long after it starts.
    #[arg(long, value_name = "MS")]
    live_for: Option<u64>,
    /// A comment to write, one a second from the start (repeatable).
    #[arg(long, value_name = "TEXT")]
    comment: Vec<String>,
    /// A stamp or gift to send as CATEGORY:NUMBER, after the comments (repeatable).
    #[arg(long, value_name = "CATEGORY:NUMBER")]
    gift: Vec<String>,
    /// Viewer: buy points for this amount, one of the live's quickPayments (repeatable).
    #[arg(long, value_name = "AMOUNT")]
    pay: Vec<u32>,
    /// Broadcaster: remove this viewer (user ID), after the comments (repeatable).
    #[arg(long, value_name = "USER")]
    remove: Vec<String>,
    /// Broadcaster: make the live paid at this price per unit, last.
    #[arg(long, value_name = "PRICE")]
    paid_switch: Option<u32>,
}

impl LiveArgs {
    /// The live's part of the script: the broadcaster starts at once.
    fn script(&self, plan: &mut ScriptPlan) -> Result<(), String> {
        let items = self
            .gift
            .iter()
            .map(|g| {
                g.split_once(':')
                    .map(|(category, item_no)| UserAction::SendItem {
                        category: category.to_owned(),
                        item_no: item_no.to_owned(),
                    })
                    .ok_or_else(|| format!("--gift {g}: write CATEGORY:NUMBER, e.g. 2:1"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        plan.start_after = Some(Duration::ZERO);
        plan.live_for = self.live_for.map(Duration::from_millis);
        let steps = &mut plan.live_steps;
        steps.extend(self.comment.iter().cloned().map(UserAction::Comment));
        steps.extend(items);
        steps.extend(self.pay.iter().copied().map(UserAction::Pay));
        steps.extend(self.remove.iter().cloned().map(UserAction::RemoveViewer));
        steps.extend(self.paid_switch.map(UserAction::PaidSwitch));
        Ok(())
    }
}

/// videoSetting: the effects to choose (saved in the profile for later calls).
#[derive(clap::Args, Clone)]
struct EffectArgs {
    /// blur, colour:#rrggbb or picture:<file of the site's effects, e.g. wallpapers/sakura.png>.
    #[arg(long, value_name = "SPEC")]
    wallpaper: Option<String>,
    /// faces or whole.
    #[arg(long, value_name = "AREA")]
    mosaic: Option<String>,
    /// A downloaded face-filter package, by name (e.g. glasses).
    #[arg(long, value_name = "NAME")]
    face_filter: Option<String>,
    /// Switch every effect off.
    #[arg(long)]
    no_effects: bool,
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per run from the command line; boxing buys nothing"
)]
enum Command {
    /// Parse an app link and print it as one JSON object (exit 2 if refused).
    ParseLink {
        /// The app link: https://…/sbxapp/<function>/?… or nexmile://<function>/?…
        link: String,
    },
    /// Carry out an app link to its end, printing one JSON event per line
    /// (exit 0; 3 when refused; 2 for a malformed link; 1 on failure).
    Open {
        link: String,
        #[command(flatten)]
        plan: PlanArgs,
        /// Give up the call this many milliseconds after it starts ringing.
        #[arg(long, value_name = "MS")]
        cancel_after: Option<u64>,
        #[command(flatten)]
        effects: EffectArgs,
        /// videoSetting: how long the loopback test runs.
        #[arg(long, value_name = "MS", default_value_t = 5000)]
        duration: u64,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Stay online as a site's registered user and answer incoming calls.
    Listen {
        #[arg(long, default_value = "nexmile")]
        site: String,
        /// Answer this many milliseconds after the ring starts.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        answer_after: u64,
        /// Decline instead of answering.
        #[arg(long)]
        decline: bool,
        /// Stop after this many calls.
        #[arg(long)]
        calls: Option<u32>,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Show app links and per-second billing at work (no server needed).
    Demo,
    /// Follow a live's comments as a social stream and print the visible chat.
    Socialstream {
        /// The feed: http(s)://host/socialstream/get.json/<CHANNEL_ID>/default
        url: String,
        /// Stop after this many milliseconds and print the chat window.
        #[arg(long = "for", value_name = "MS")]
        stay_for: Option<u64>,
    },
}

fn parser(bases: &[String]) -> Result<AppLinkParser, String> {
    let mut parser = AppLinkParser::default();
    for base in bases {
        parser = parser
            .with_base(base)
            .map_err(|e| format!("--base {base}: {e}"))?;
    }
    Ok(parser)
}

fn client(cli: &Cli) -> Result<Client, String> {
    let root = cli.profiles.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".local/share/nexmile/profiles")
    });
    let profiles = Profiles::open(root).map_err(|e| e.to_string())?;
    let mut server = ServerUrl::parse(&cli.server).map_err(|e| e.to_string())?;
    if let Some(ca) = &cli.ca_file {
        server = server.trusting(ca).map_err(|e| e.to_string())?;
    }
    let media_bind = if cli.bind.is_empty() && server.is_loopback() {
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        cli.bind.clone()
    };
    let mut client = Client::headless(server, profiles, media_bind);
    client.retransmission = !cli.no_retransmission;
    if cli.devices {
        client.capture = CaptureChoice::Devices(DeviceSettings::default());
    }
    Ok(client)
}

fn print_error(message: String) {
    print_event(&EngineEvent::Error { message });
}

/// The engine's events, printed and handed to the script.
struct ScriptedEvents(mpsc::UnboundedSender<EngineEvent>);

impl EventSink for ScriptedEvents {
    fn emit(&self, event: EngineEvent) {
        print_event(&event);
        let _ = self.0.send(event);
    }
}

/// Acts as the script says, for as long as the engine has events to tell.
async fn act(
    mut script: Script,
    mut events: mpsc::UnboundedReceiver<EngineEvent>,
    actions: broadcast::Sender<UserAction>,
) {
    loop {
        let deadline = script.deadline();
        let due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => script.on_event(&event, tokio::time::Instant::now()),
                None => return,
            },
            () = due => {}
        }
        for action in script.due(tokio::time::Instant::now()) {
            // Nobody listens between two calls: such an action has nothing to act on.
            let _ = actions.send(action);
        }
    }
}

/// Builds the client from the global options and runs `session` with it to
/// its outcome, acting by `plan` where a person would.
fn run_client<F, Fut>(cli: &Cli, plan: ScriptPlan, session: F) -> ExitCode
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let mut client = match client(cli) {
        Ok(client) => client,
        Err(e) => {
            print_error(e);
            return exit_code(Outcome::Failed);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (events_tx, events) = mpsc::unbounded_channel();
    client.events = Arc::new(ScriptedEvents(events_tx));
    runtime.spawn(act(Script::new(plan), events, client.actions.clone()));
    exit_code(runtime.block_on(session(client)))
}

/// The exit status of each outcome: 0 done, 3 refused, 1 failed (64 is a
/// command line that cannot be read, 2 a link that cannot be).
fn exit_code(outcome: Outcome) -> ExitCode {
    ExitCode::from(match outcome {
        Outcome::Done => 0,
        Outcome::Refused => 3,
        Outcome::Failed => 1,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let parser = match parser(&cli.bases) {
        Ok(parser) => parser,
        Err(e) => {
            eprintln!("nexmile-cli: {e}");
            return ExitCode::from(64);
        }
    };
    match &cli.command {
        Command::ParseLink { link } => {
            let (json, status) = link_report::report(&parser, link);
            println!("{json}");
            ExitCode::from(u8::try_from(status).unwrap_or(1))
        }
        Command::Open {
            link,
            plan,
            cancel_after,
            effects,
            duration,
            live,
        } => {
            let mut script = ScriptPlan {
                hangup_after: plan.hangup_after.map(Duration::from_millis),
                cancel_after: cancel_after.map(Duration::from_millis),
                test_for: Some(Duration::from_millis(*duration)),
                ..ScriptPlan::default()
            };
            if let Err(e) = live.script(&mut script) {
                eprintln!("nexmile-cli: {e}");
                return ExitCode::from(64);
            }
            let link = match parser.parse(link) {
                Ok(link) => link,
                Err(e) => {
                    print_event(&EngineEvent::InvalidLink {
                        code: e.code().to_owned(),
                        parameter: e.parameter().map(str::to_owned),
                        message: e.to_string(),
                    });
                    return ExitCode::from(2);
                }
            };
            let choice = EffectChoice {
                wallpaper: effects.wallpaper.clone(),
                mosaic: effects.mosaic.clone(),
                face_filter: effects.face_filter.clone(),
                none: effects.no_effects,
            };
            run_client(&cli, script, |client| async move {
                let effects = match client.effect_settings(&link.site, &choice) {
                    Ok(effects) => effects,
                    Err(e) => {
                        print_error(e);
                        // An effect the site does not have: the app refuses it.
                        return Outcome::Refused;
                    }
                };
                client.open(&link, effects).await
            })
        }
        Command::Listen {
            site,
            answer_after,
            decline,
            calls,
            plan,
        } => {
            let site = match SiteCode::new(site) {
                Ok(site) => site,
                Err(e) => {
                    print_error(format!("--site: {e}"));
                    return ExitCode::from(2);
                }
            };
            let script = ScriptPlan {
                answer_after: Some(Duration::from_millis(*answer_after)),
                decline: *decline,
                hangup_after: plan.hangup_after.map(Duration::from_millis),
                ..ScriptPlan::default()
            };
            let calls = *calls;
            run_client(&cli, script, |client| async move {
                client.listen(&site, calls).await
            })
        }
        Command::Socialstream { url, stay_for } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let stay_for = stay_for.map(Duration::from_millis);
            // The feed's server is trusted as the Nexmile server would be.
            let mut trust = match ServerUrl::parse(url) {
                Ok(server) => server,
                Err(e) => {
                    print_error(e.to_string());
                    return exit_code(Outcome::Failed);
                }
            };
            if let Some(ca) = &cli.ca_file {
                trust = match trust.trusting(ca) {
                    Ok(trust) => trust,
                    Err(e) => {
                        print_error(e.to_string());
                        return exit_code(Outcome::Failed);
                    }
                };
            }
            let http = trust.http_client();
            exit_code(runtime.block_on(social_reader::follow(url, stay_for, http)))
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
