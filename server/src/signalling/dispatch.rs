//! Where each message of a connected app goes: a new call or live, a
//! running one's task, or the video test. Shared by the signalling
//! WebSocket and WHIP/WHEP, whose sessions are connections too.

use std::sync::Arc;

use nexmile_core::signal::{ClientMessage, ServerMessage};

use crate::calls::{Calls, Command, MakeCall};
use crate::hub::ConnId;
use crate::lives::{LiveCommand, Lives};
use crate::services::Services;
use crate::tokens::{CallToken, Engagement, LiveToken};
use crate::video_test::VideoTests;

pub struct Dispatcher {
    pub services: Arc<Services>,
    pub calls: Arc<Calls>,
    pub lives: Arc<Lives>,
    pub video_tests: VideoTests,
}

impl Dispatcher {
    /// A connection is gone: its video test ends, and its call or live hears so.
    pub fn disconnect(&self, conn: ConnId) {
        self.video_tests.end(conn);
        match self.services.hub.unregister(conn) {
            Some(Engagement::Call(token)) => {
                self.calls.send(&token, Command::ConnLost { conn });
            }
            Some(Engagement::Live(token)) => {
                self.lives.send(&token, LiveCommand::ConnLost { conn });
            }
            None => {}
        }
    }

    pub async fn dispatch(&self, conn: ConnId, message: ClientMessage) {
        let (call_token, command) = match message {
            ClientMessage::Hello { .. } => return,
            ClientMessage::MakeCall {
                callee_id,
                video,
                caller_sub_id,
                callee_sub_id,
            } => {
                let request = MakeCall {
                    callee_id,
                    video,
                    caller_sub_id,
                    callee_sub_id,
                };
                return self.calls.make_call(conn, request).await;
            }
            ClientMessage::StartVideoTest { offer } => {
                return self.video_tests.start(conn, &offer).await;
            }
            ClientMessage::EndVideoTest => return self.video_tests.end(conn),
            ClientMessage::StartCall { call_token, offer } => {
                (call_token, Command::Start { conn, offer })
            }
            ClientMessage::Answer { call_token, offer } => {
                (call_token, Command::Answer { conn, offer })
            }
            ClientMessage::Decline { call_token } => (call_token, Command::Decline { conn }),
            ClientMessage::Hangup { call_token } => (call_token, Command::Hangup { conn }),
            ClientMessage::PrepareBroadcast { link_id } => {
                return self.lives.prepare_broadcast(conn, link_id);
            }
            live => return self.dispatch_live(conn, live),
        };
        if !self
            .calls
            .send(&CallToken::from(call_token.clone()), command)
        {
            self.services.hub.send(
                conn,
                ServerMessage::CallEnded {
                    call_token: Some(call_token),
                    reason: nexmile_core::wire::codes::TerminateReason::InternalError,
                    message: Some("この通話はすでに終了しています。".into()),
                    overview: None,
                },
            );
        }
    }

    /// A message about a running live, to that live's task.
    fn dispatch_live(&self, conn: ConnId, message: ClientMessage) {
        let (live_token, command) = match message {
            ClientMessage::BroadcastMedia { live_token, offer } => {
                (live_token, LiveCommand::Media { conn, offer })
            }
            ClientMessage::StartBroadcast { live_token } => {
                (live_token, LiveCommand::Start { conn })
            }
            ClientMessage::ViewLive {
                live_token,
                link_id,
            } => (live_token, LiveCommand::View { conn, link_id }),
            ClientMessage::ReceiveLive { live_token, offer } => {
                (live_token, LiveCommand::Receive { conn, offer })
            }
            ClientMessage::LiveMediaReceived { live_token } => {
                (live_token, LiveCommand::MediaReceived { conn })
            }
            ClientMessage::LiveComment { live_token, text } => {
                (live_token, LiveCommand::Comment { conn, text })
            }
            ClientMessage::LiveItem {
                live_token,
                category,
                item_no,
            } => (
                live_token,
                LiveCommand::Item {
                    conn,
                    category,
                    item_no,
                },
            ),
            ClientMessage::LeaveLive { live_token } => (live_token, LiveCommand::Leave { conn }),
            ClientMessage::RemoveViewer {
                live_token,
                user_id,
            } => (live_token, LiveCommand::RemoveViewer { conn, user_id }),
            ClientMessage::PaidSwitch {
                live_token,
                unit_price,
            } => (live_token, LiveCommand::PaidSwitch { conn, unit_price }),
            ClientMessage::Favorite {
                live_token,
                favorite,
            } => (live_token, LiveCommand::Favorite { conn, favorite }),
            ClientMessage::Payment {
                live_token,
                amount,
                payment_id,
            } => {
                // Clients before payment IDs: each message is its own payment.
                let payment_id = payment_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                (
                    live_token,
                    LiveCommand::Payment {
                        conn,
                        amount,
                        payment_id,
                    },
                )
            }
            _ => return,
        };
        if !self
            .lives
            .send(&LiveToken::from(live_token.clone()), command)
        {
            self.services.hub.send(
                conn,
                ServerMessage::Live {
                    live_token,
                    notice: nexmile_core::signal::LiveNotice::Ended {
                        reason: nexmile_core::signal::LiveEndReason::NotOnAir,
                        message: Some("このライブは終了しているか、まだ始まっていません。".into()),
                        summary: None,
                    },
                },
            );
        }
    }
}
