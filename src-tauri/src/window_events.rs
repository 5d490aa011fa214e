//! The engine's events, to the window's screens and, for an incoming call
//! or a partner's push message, to a system notification whose click brings
//! the window to the front at the right screen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nexmile_client::app::EventSink;
use nexmile_client::events::{EngineEvent, NotificationKind};
use serde_json::json;
use tauri::{AppHandle, Emitter, Manager};

use crate::engine::Engine;

/// The one event name the page listens to; the payload carries the engine's
/// event name beside its fields.
pub const ENGINE_EVENT: &str = "nexmile://engine";

pub struct WindowEvents {
    pub app: AppHandle,
    /// Online for incoming calls: the page may load after the event was sent.
    pub online: Arc<AtomicBool>,
}

impl WindowEvents {
    /// Brings the main window to the front (an incoming call must be seen).
    pub fn raise(&self) {
        if let Some(window) = self.app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
    }

    /// Shows a system notification; its click is [`on_click`]'s.
    fn notify(&self, title: &str, body: &str, clicked: Clicked) {
        // The notification plugin's desktop side cannot tell a click; the
        // library it uses can, so on Linux it is called directly.
        #[cfg(target_os = "linux")]
        {
            let app = self.app.clone();
            let (title, body) = (title.to_owned(), body.to_owned());
            // Waiting for the click blocks until the notification closes.
            let _ = std::thread::Builder::new()
                .name("notification".into())
                .spawn(move || {
                    let shown = notify_rust::Notification::new()
                        .appname("Nexmile")
                        .summary(&title)
                        .body(&body)
                        .icon("jp.nexmile.desktop")
                        .action("default", "開く / Open")
                        .show();
                    match shown {
                        Ok(handle) => handle.wait_for_action(|action| {
                            if action == "default" {
                                on_click(&app, &clicked);
                            }
                        }),
                        Err(e) => eprintln!(
                            "{}",
                            json!({ "event": "notification.failed", "message": e.to_string() })
                        ),
                    }
                });
        }
        #[cfg(not(target_os = "linux"))]
        {
            use tauri_plugin_notification::NotificationExt;
            let _ = clicked;
            let _ = self
                .app
                .notification()
                .builder()
                .title(title)
                .body(body)
                .show();
        }
    }
}

/// What a notification is about, for its click.
#[derive(Debug, Clone)]
enum Clicked {
    IncomingCall,
    /// §7.1: the push's `clickAction`, a page (or one of our app links) to open.
    Push {
        click_action: Option<String>,
    },
}

/// A clicked notification: the window comes to the front; a push's page
/// opens (an app link in this app, anything else in the browser).
fn on_click(app: &AppHandle, clicked: &Clicked) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    let kind = match clicked {
        Clicked::IncomingCall => NotificationKind::Call,
        Clicked::Push { .. } => NotificationKind::Push,
    };
    send_to_window(app, &EngineEvent::NotificationOpened { kind });
    if let Clicked::Push {
        click_action: Some(target),
    } = clicked
    {
        open_target(app, target);
    }
}

/// A push's page: one of this app's links is carried out here, an http(s)
/// page opens in the browser, anything else is ignored (a partner's push
/// must not start arbitrary programs).
pub fn open_target(app: &AppHandle, target: &str) {
    let engine = app.try_state::<std::sync::Arc<Engine>>();
    match engine {
        Some(engine) if engine.is_app_link(target) => engine.open_link(target),
        _ => {
            use tauri_plugin_opener::OpenerExt;
            if url::Url::parse(target).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                let _ = app.opener().open_url(target, None::<&str>);
            }
        }
    }
}

impl EventSink for WindowEvents {
    fn emit(&self, event: EngineEvent) {
        match &event {
            EngineEvent::Online { .. } => self.online.store(true, Ordering::Relaxed),
            EngineEvent::Offline { .. } => self.online.store(false, Ordering::Relaxed),
            EngineEvent::CallIncoming(details) => {
                // The server names the caller as site name + prefix + name.
                self.notify(
                    "着信 / Incoming call",
                    &details.peer_name,
                    Clicked::IncomingCall,
                );
                self.raise();
            }
            EngineEvent::Push {
                title,
                body,
                click_action,
                ..
            } => {
                let clicked = Clicked::Push {
                    click_action: click_action.clone(),
                };
                self.notify(title, body, clicked);
            }
            _ => {}
        }
        send_to_window(&self.app, &event);
    }
}

/// Sends one event to the page, and to the app's log: every step but the
/// once-a-second figures.
fn send_to_window(app: &AppHandle, event: &EngineEvent) {
    if !matches!(
        event,
        EngineEvent::Quality(_) | EngineEvent::MicrophoneLevel { .. }
    ) && let Ok(line) = serde_json::to_string(event)
    {
        eprintln!("{line}");
    }
    let _ = app.emit(ENGINE_EVENT, event);
}
