//! The engine's events, to the window's screens and, when the window is not
//! in front, to system notifications that bring it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nexmile_client::app::EventSink;
use serde_json::{Value, json};
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;

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

    fn notify(&self, title: &str, body: &str) {
        let _ = self
            .app
            .notification()
            .builder()
            .title(title)
            .body(body)
            .show();
    }
}

impl EventSink for WindowEvents {
    fn emit(&self, event: &str, fields: Value) {
        match event {
            "online" => self.online.store(true, Ordering::Relaxed),
            "offline" => self.online.store(false, Ordering::Relaxed),
            "call.incoming" => {
                let caller = fields["peer_name"].as_str().unwrap_or_default();
                self.notify("着信 / Incoming call", caller);
                self.raise();
            }
            "push" => {
                let title = fields["title"].as_str().unwrap_or("Nexmile");
                let body = fields["body"].as_str().unwrap_or_default();
                self.notify(title, body);
            }
            _ => {}
        }
        let mut payload = json!({ "event": event });
        if let (Some(payload), Value::Object(fields)) = (payload.as_object_mut(), fields) {
            payload.extend(fields);
        }
        // The app's log: every step but the once-a-second quality figures.
        if event != "quality" {
            eprintln!("{payload}");
        }
        let _ = self.app.emit(ENGINE_EVENT, payload);
    }
}
