//! videoSetting's loopback test: one leg per connection whose media comes
//! straight back, through the same engine and server path as a call's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nexmile_core::signal::ServerMessage;

use crate::hub::ConnId;
use crate::services::Services;

/// The video tests running, one per connection.
pub struct VideoTests {
    services: Arc<Services>,
    running: Mutex<HashMap<ConnId, nexmile_sfu::Room>>,
}

const VIDEO_TEST: &str = "video-test";

/// The video test's one leg: its own media comes straight back.
const ECHO: nexmile_sfu::LegSpec = nexmile_sfu::LegSpec {
    publishes: Some(nexmile_sfu::Feed(0)),
    receives: Some(nexmile_sfu::Feed(0)),
    paces_publisher: true,
};

impl VideoTests {
    pub fn new(services: Arc<Services>) -> Self {
        Self {
            services,
            running: Mutex::default(),
        }
    }

    /// Starts the test of `conn`, ending the one it ran.
    pub async fn start(&self, conn: ConnId, offer: &str) {
        self.end(conn);
        let services = &self.services;
        // The leg reports nothing the test needs: its end is the connection's.
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let opened = match nexmile_sfu::Room::start(&services.media) {
            Ok(media) => media
                .open(offer, ECHO, events)
                .await
                .map(|(_, answer)| (media, answer)),
            Err(e) => Err(e),
        };
        match opened {
            Ok((media, answer)) => {
                self.running
                    .lock()
                    .expect("video tests lock")
                    .insert(conn, media);
                services.hub.send(
                    conn,
                    ServerMessage::MediaAnswer {
                        call_token: VIDEO_TEST.into(),
                        answer,
                    },
                );
            }
            Err(e) => services.hub.send(
                conn,
                ServerMessage::Error {
                    message: format!("ビデオテストを開始できませんでした: {e}"),
                },
            ),
        }
    }

    pub fn end(&self, conn: ConnId) {
        // Dropped, the test's media room ends its connection.
        drop(self.running.lock().expect("video tests lock").remove(&conn));
    }
}
