//! The app's side of the signalling WebSocket and the activation request.

use futures_util::{SinkExt, StreamExt};
use nexmile_core::signal::{
    ActivateReply, ActivateRequest, ClientMessage, DeviceInfo, PROTOCOL_VERSION, ServerMessage,
};
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
}

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
        let mut signalling = Self { socket };
        signalling
            .send(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                session_token: session_token.to_owned(),
                device,
            })
            .await?;
        match signalling.recv().await? {
            Some(welcome @ ServerMessage::Welcome { .. }) => Ok((signalling, welcome)),
            Some(ServerMessage::Error { message }) => Err(SignallingError::Refused(message)),
            other => Err(SignallingError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    pub async fn send(&mut self, message: &ClientMessage) -> Result<(), SignallingError> {
        let text = serde_json::to_string(message).expect("client messages serialize");
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| SignallingError::Refused(e.to_string()))
    }

    /// The next message; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Result<Option<ServerMessage>, SignallingError> {
        while let Some(frame) = self.socket.next().await {
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
        Ok(None)
    }
}
