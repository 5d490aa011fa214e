//! The app's side of the signalling WebSocket and the activation request.

use futures_util::{SinkExt, StreamExt};
use nexmile_core::signal::{
    ActivateReply, ActivateRequest, ClientMessage, DeviceInfo, IceServer, PROTOCOL_VERSION,
    ServerMessage,
};
use tokio::time::{Duration, Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use crate::server_url::ServerUrl;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum SignallingError {
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the server refused the connection: {0}")]
    Refused(String),
    #[error("the server sent something unreadable: {0}")]
    Protocol(String),
    #[error(
        "サーバから{0}秒何も届かず、接続が切れたとみなしました (nothing heard from the server for {0} s)"
    )]
    Silent(u64),
}

/// The server pings every 15 s (`server/src/signalling/ws.rs`): a
/// connection it has not been heard on for three pings is gone, though TCP
/// may never say so (a path that died, a server that gave up on a stalled
/// link and whose FIN was lost). A write that cannot finish by then is the
/// same.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// `POST {server}/api/activate`.
pub async fn activate(
    server: &ServerUrl,
    request: &ActivateRequest,
) -> Result<ActivateReply, SignallingError> {
    let url = format!("{}/api/activate", server.http());
    let unreachable = |e: reqwest::Error| SignallingError::Unreachable {
        url: url.clone(),
        detail: e.to_string(),
    };
    let response = server
        .http_client()
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(request).expect("requests serialize"))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body)
        .map_err(|e| SignallingError::Protocol(format!("HTTP {status}: {e}")))
}

pub struct Signalling {
    socket: Socket,
    /// The STUN and TURN servers the welcome gave this connection's media.
    pub ice_servers: Vec<IceServer>,
    /// When the server was last heard: any frame, its pings included.
    heard: Instant,
    silence_limit: Duration,
}

impl Signalling {
    /// Opens `/ws`, says hello and waits for the welcome.
    pub async fn connect(
        server: &ServerUrl,
        session_token: &str,
        device: DeviceInfo,
    ) -> Result<(Self, ServerMessage), SignallingError> {
        let url = server.websocket();
        let unreachable = |detail: String| SignallingError::Unreachable {
            url: url.clone(),
            detail,
        };
        let connector = server
            .tls_connector()
            .map_err(|e| unreachable(e.to_string()))?;
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(&url, None, true, Some(connector))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        let mut signalling = Self {
            socket,
            ice_servers: Vec::new(),
            heard: Instant::now(),
            silence_limit: SILENCE_LIMIT,
        };
        signalling
            .send(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                session_token: session_token.to_owned(),
                device,
            })
            .await?;
        match signalling.recv().await? {
            Some(welcome @ ServerMessage::Welcome { .. }) => {
                if let ServerMessage::Welcome { ice_servers, .. } = &welcome {
                    signalling.ice_servers.clone_from(ice_servers);
                }
                Ok((signalling, welcome))
            }
            Some(ServerMessage::Error { message }) => Err(SignallingError::Refused(message)),
            other => Err(SignallingError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SignallingError> {
        let text = serde_json::to_string(message).expect("client messages serialize");
        match timeout(
            self.silence_limit,
            self.socket.send(Message::Text(text.into())),
        )
        .await
        {
            Ok(sent) => sent.map_err(|e| SignallingError::Refused(e.to_string())),
            Err(_) => Err(SignallingError::Silent(self.silence_limit.as_secs())),
        }
    }

    /// The next message; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Result<Option<ServerMessage>, SignallingError> {
        loop {
            let Ok(frame) = timeout_at(self.heard + self.silence_limit, self.socket.next()).await
            else {
                return Err(SignallingError::Silent(self.silence_limit.as_secs()));
            };
            let Some(frame) = frame else {
                return Ok(None);
            };
            self.heard = Instant::now();
            match frame {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(&text)
                        .map(Some)
                        .map_err(|e| SignallingError::Protocol(e.to_string()));
                }
                Ok(Message::Close(_)) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(SignallingError::Refused(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use nexmile_core::device::DeviceToken;
    use nexmile_core::wire::codes::OsType;

    use super::*;

    /// A server that welcomes, pings `pings` times `every` apart, then says
    /// nothing more and keeps the connection open: a path that died.
    async fn falling_silent_server(pings: u32, every: Duration) -> ServerUrl {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let _hello = socket.next().await;
            let welcome = ServerMessage::Welcome {
                protocol: PROTOCOL_VERSION,
                user_id: "hanako".into(),
                name: "山田花子".into(),
                phone_number: None,
                session_token: None,
                ice_servers: Vec::new(),
            };
            let welcome = serde_json::to_string(&welcome).unwrap();
            socket.send(Message::Text(welcome.into())).await.unwrap();
            for _ in 0..pings {
                tokio::time::sleep(every).await;
                socket.send(Message::Ping(Vec::new().into())).await.unwrap();
            }
            std::future::pending::<()>().await;
            drop(socket);
        });
        ServerUrl::parse(&url).unwrap()
    }

    fn device() -> DeviceInfo {
        DeviceInfo {
            device_token: DeviceToken::from_random_bytes([7; 16]),
            app_version: "1.0.0".into(),
            os_type: OsType::Browser,
            device_name: "test".into(),
            os_version: "Debian 12".into(),
        }
    }

    /// The server's pings keep the connection past the limit; once they
    /// stop, the app says it is lost. Scaled down from 15 s pings and a
    /// 45 s limit to 200 ms and 1 s.
    #[tokio::test]
    async fn a_server_silent_past_the_limit_is_a_lost_connection() {
        let server = falling_silent_server(10, Duration::from_millis(200)).await;
        let (mut signalling, _) = Signalling::connect(&server, "token", device())
            .await
            .unwrap();
        signalling.silence_limit = Duration::from_secs(1);
        let began = Instant::now();
        let outcome = signalling.recv().await;
        assert!(
            matches!(outcome, Err(SignallingError::Silent(1))),
            "{outcome:?}"
        );
        // Ten pings, 2 s, kept it; lost a second after the last.
        let after = began.elapsed();
        assert!(after >= Duration::from_millis(2500), "lost after {after:?}");
    }
}
