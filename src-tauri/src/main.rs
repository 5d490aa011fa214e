//! The Nexmile desktop app: a window around `nexmile-client`. App links
//! arrive by the custom scheme (cold start: in the arguments; running: from
//! the second instance), the screens in `ui/` call the commands below, and
//! the engine's events and pictures flow back to them.

// No console window beside the app on Windows.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod devices;
mod engine;
mod feed_bench;
mod keychain;
mod video_feed;
mod window_events;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use engine::{EffectCatalogue, EffectChoiceView, Engine, Overview};
use nexmile_client::app::{Client, UserAction};
use nexmile_client::media_session::{Display, MediaSwitches};
use nexmile_client::profiles::Profiles;
use nexmile_client::server_url::ServerUrl;
use nexmile_core::applink::AppLinkParser;
use tauri::{Manager, State};
use tauri_plugin_deep_link::DeepLinkExt;
use window_events::WindowEvents;

/// The server of this build; `NEXMILE_SERVER` points a test or demo elsewhere.
const DEFAULT_SERVER: &str = "https://sbx.stream-works.biz";

type EngineState<'a> = State<'a, Arc<Engine>>;

#[tauri::command]
fn overview(engine: EngineState<'_>) -> Result<Overview, String> {
    engine.overview()
}

/// A page a push message points to (an app link is carried out here).
#[tauri::command]
fn open_page(app: tauri::AppHandle, target: String) {
    window_events::open_target(&app, &target);
}

/// The person's yes or no to a link opened from outside.
#[tauri::command]
fn confirm_link(engine: EngineState<'_>, accepted: bool) {
    engine.confirm_link(accepted);
}

#[tauri::command]
fn video_test(engine: EngineState<'_>) {
    engine.video_test();
}

#[tauri::command]
fn answer(engine: EngineState<'_>) {
    engine.act(UserAction::Answer);
}

#[tauri::command]
fn decline(engine: EngineState<'_>) {
    engine.act(UserAction::Decline);
}

#[tauri::command]
fn hang_up(engine: EngineState<'_>) {
    engine.act(UserAction::Hangup);
}

/// What the live screens' buttons ask of the running live.
#[derive(serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum LiveButton {
    Start,
    Comment {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    Item {
        category: String,
        item_no: String,
    },
    #[serde(rename_all = "camelCase")]
    PaidSwitch {
        unit_price: u32,
    },
    #[serde(rename_all = "camelCase")]
    Remove {
        user_id: String,
    },
    Favorite {
        on: bool,
    },
    Pay {
        amount: u32,
    },
}

#[tauri::command]
fn live_action(engine: EngineState<'_>, button: LiveButton) {
    engine.act(match button {
        LiveButton::Start => UserAction::StartLive,
        LiveButton::Comment { text } => UserAction::Comment(text),
        LiveButton::Item { category, item_no } => UserAction::SendItem { category, item_no },
        LiveButton::PaidSwitch { unit_price } => UserAction::PaidSwitch(unit_price),
        LiveButton::Remove { user_id } => UserAction::RemoveViewer(user_id),
        LiveButton::Favorite { on } => UserAction::Favorite(on),
        LiveButton::Pay { amount } => UserAction::Pay(amount),
    });
}

#[tauri::command]
fn set_switches(engine: EngineState<'_>, microphone: bool, camera: bool) {
    engine.set_switches(MediaSwitches { microphone, camera });
}

#[tauri::command]
fn switch_profile(engine: EngineState<'_>, site: String) -> Result<(), String> {
    engine.switch_profile(&site)
}

#[tauri::command]
fn remove_profile(engine: EngineState<'_>, site: String) -> Result<(), String> {
    engine.remove_profile(&site)
}

#[tauri::command]
fn effect_catalogue(app: tauri::AppHandle, engine: EngineState<'_>) -> EffectCatalogue {
    let catalogue = engine.effect_catalogue();
    // The page may show the active site's effect pictures, nothing else.
    let site = engine.client.profiles.active();
    let dir = engine.client.profiles.effects_dir(&site);
    let _ = app.asset_protocol_scope().allow_directory(dir, true);
    catalogue
}

#[tauri::command]
fn set_effects(engine: EngineState<'_>, choice: EffectChoiceView) -> Result<(), String> {
    engine.set_effects(choice)
}

/// The cameras, microphones and speakers, and the active profile's choice.
#[tauri::command]
fn device_list(engine: EngineState<'_>) -> devices::DeviceList {
    devices::list(&engine.client.profiles)
}

/// Remembers the devices chosen in the settings for the active profile; the next call uses them.
#[tauri::command]
fn set_devices(
    engine: EngineState<'_>,
    settings: nexmile_client::profiles::DeviceSettings,
) -> Result<(), String> {
    devices::choose(&engine.client.profiles, &settings)
}

/// The settings' speaker test: a chime on the chosen speaker.
#[tauri::command]
fn speaker_test(speaker: Option<String>) -> Result<String, String> {
    devices::test_sound(speaker.as_deref())
}

/// Whether the windows can be kept out of screen captures here
/// (Windows 10 2004+ and macOS honour it; Linux has no such protection).
#[tauri::command]
fn protect_window(window: tauri::WebviewWindow, protect: bool) -> bool {
    let applied = window.set_content_protected(protect).is_ok();
    applied && cfg!(any(target_os = "windows", target_os = "macos"))
}

fn profiles_root(app: &tauri::App) -> PathBuf {
    std::env::var_os("NEXMILE_PROFILES")
        .map(PathBuf::from)
        .or_else(|| app.path().app_data_dir().ok().map(|d| d.join("profiles")))
        .unwrap_or_else(|| PathBuf::from("profiles"))
}

fn setup(app: &mut tauri::App) -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("NEXMILE_SERVER").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
    let root = profiles_root(app);
    let (secrets, kind) = keychain::open(&root)?;
    eprintln!(
        "{}",
        serde_json::json!({ "event": "secrets", "store": kind })
    );
    let profiles = Profiles::with_secrets(root, secrets)?;
    let mut server = ServerUrl::parse(&server)?;
    // A private deployment's certificate authority, trusted beside the system's.
    if let Some(ca) = std::env::var_os("NEXMILE_CA_FILE") {
        server = server.trusting(std::path::Path::new(&ca))?;
    }
    // A server on this machine is reached on loopback only (the demo and tests).
    let media_bind = if server.is_loopback() {
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        Vec::new()
    };
    let display = Arc::new(Display::default());
    let mut client = Client::headless(server, profiles, media_bind);
    let online = Arc::new(AtomicBool::new(false));
    client.events = Arc::new(WindowEvents {
        app: app.handle().clone(),
        online: Arc::clone(&online),
    });
    client.display = Some(Arc::clone(&display));
    client.video_size = (1280, 720);
    // The system's devices; the stamped test pattern and tone only when a
    // test asks for them explicitly.
    client.capture = if std::env::var_os("NEXMILE_TEST_SOURCES").is_some() {
        nexmile_client::capture_feed::CaptureChoice::Synthetic
    } else {
        nexmile_client::capture_feed::CaptureChoice::Devices(
            nexmile_client::profiles::DeviceSettings::default(),
        )
    };
    client.device_name = format!("Nexmile for {}", std::env::consts::OS);
    let token = video_feed::run_token();
    let timings = Arc::new(video_feed::DisplayTimings::default());
    let feed = tauri::async_runtime::block_on(video_feed::serve(
        Arc::clone(&display),
        token,
        Arc::clone(&timings),
    ))?;
    if let Some(seconds) = std::env::var("NEXMILE_FEED_BENCH")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let handle = app.handle().clone();
        tauri::async_runtime::spawn(feed_bench::run(handle, display, timings, seconds));
    }
    let mut parser = AppLinkParser::default();
    if let Ok(base) = std::env::var("NEXMILE_LINK_BASE") {
        parser = parser.with_base(&base)?;
    }
    let tauri::async_runtime::RuntimeHandle::Tokio(runtime) = tauri::async_runtime::handle();
    let engine = Arc::new(Engine::new(client, parser, feed, online, runtime, kind));
    app.manage(Arc::clone(&engine));

    // Linux and Windows learn the scheme at run time (a .deb also registers
    // it through its desktop file); macOS and mobile from the bundle.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    let _ = app.deep_link().register_all();
    let on_link = Arc::clone(&engine);
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            on_link.open_link(url.as_str());
        }
    });
    let cold_start = app.deep_link().get_current()?.unwrap_or_default();
    let engine_for_start = Arc::clone(&engine);
    tauri::async_runtime::spawn(async move {
        engine_for_start.listen();
        for url in cold_start {
            engine_for_start.open_link(url.as_str());
        }
    });
    Ok(())
}

/// The exit status when no window can open.
const NO_WINDOW_EXIT: i32 = 2;

fn main() {
    // Without a display (an SSH session, a service) the toolkit cannot
    // start; tauri would panic with a backtrace.
    #[cfg(target_os = "linux")]
    if let Err(e) = gtk::init() {
        eprintln!(
            "Nexmile の画面を開けません。デスクトップのセッションから起動してください。\n\
             Nexmile cannot open its window; start it from a desktop session. ({e})"
        );
        std::process::exit(NO_WINDOW_EXIT);
    }
    tauri::Builder::default()
        // A link opened while the app runs starts a second process: it hands
        // the link to this one (the deep-link feature forwards it to
        // on_open_url) and exits, so there is never a second window.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .setup(setup)
        .invoke_handler(tauri::generate_handler![
            overview,
            open_page,
            confirm_link,
            video_test,
            answer,
            decline,
            hang_up,
            live_action,
            set_switches,
            switch_profile,
            remove_profile,
            effect_catalogue,
            set_effects,
            device_list,
            set_devices,
            speaker_test,
            protect_window,
        ])
        .run(tauri::generate_context!())
        .expect("the window could not start");
}
