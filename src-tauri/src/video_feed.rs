//! Pictures to the window. The webview (WebKitGTK) has no WebRTC, so decoded
//! pictures need their own way in: a WebSocket on loopback, one connection per
//! stream, each message one picture. A connection sends only the newest
//! picture when the page is ready for it (the page acks each one), so a busy
//! page skips pictures instead of queueing them.
//!
//! Message: 16-byte header (width u32 LE, height u32 LE, capture time in µs
//! u64 LE) then the picture. `format=rgba` sends RGBA for a 2D canvas;
//! `format=i420` sends the decoder's planes for a WebGL shader to convert.
//! `scripts/bench-display.sh` measures both in the real webview. On this
//! machine kind (2 vCPU, Xvfb, Mesa's software GL), 1280×720 at 30 fps, 8 s
//! each: RGBA to a 2D canvas drew 30.0 fps with a median 14.9 ms (p95 19.1)
//! from hand-over to drawn, +68 % of a core; I420 through WebGL drew 29.2 fps,
//! median 38.5 ms (p95 63.3), +164 % — 2.6× the latency and 2.4× the CPU,
//! because without a GPU the shader runs on the CPU. The page uses RGBA; on
//! machines with a GPU the WebGL path is the one to measure again.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use nexmile_client::media_session::{Display, Picture};
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// How the page wants its pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    Rgba,
    I420,
}

/// How long pictures took from being handed to the feed (their stamp) to
/// being drawn (the page's ack), newest last; for the display benchmark and
/// the video test's figures.
#[derive(Debug, Default)]
pub struct DisplayTimings {
    delays_us: Mutex<VecDeque<u64>>,
}

/// How many pictures the timings remember (ten seconds at 30 fps).
const TIMINGS_KEPT: usize = 300;

impl DisplayTimings {
    fn record(&self, delay_us: u64) {
        let mut delays = self.delays_us.lock().expect("timings lock");
        if delays.len() == TIMINGS_KEPT {
            delays.pop_front();
        }
        delays.push_back(delay_us);
    }

    /// Forgets what was measured so far.
    pub fn reset(&self) {
        self.delays_us.lock().expect("timings lock").clear();
    }

    /// (median, 95th percentile, count) of the remembered delays in ms.
    pub fn summary(&self) -> Option<(f64, f64, usize)> {
        let mut delays: Vec<u64> = self
            .delays_us
            .lock()
            .expect("timings lock")
            .iter()
            .copied()
            .collect();
        if delays.is_empty() {
            return None;
        }
        delays.sort_unstable();
        let at = |p: usize| delays[(delays.len() - 1) * p / 100] as f64 / 1000.0;
        Some((at(50), at(95), delays.len()))
    }
}

/// Where the page connects: `ws://127.0.0.1:{port}/{local|remote}?token=…&format=…`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedAddress {
    pub port: u16,
    pub token: String,
}

/// A fresh 256-bit token for this run of the app, in hex. Only the app's own
/// webview learns it (through `overview`); it is not the device token, which
/// every partner sees.
pub fn run_token() -> String {
    use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The origins of the app's own webview: `tauri://localhost` (Linux, macOS)
/// and `http(s)://tauri.localhost` (Windows). A web page in a browser has
/// its own origin, which the browser always sends with a WebSocket.
const WEBVIEW_ORIGINS: [&str; 3] = [
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// Serves the display's two streams on loopback until the app ends.
pub async fn serve(
    display: Arc<Display>,
    token: String,
    timings: Arc<DisplayTimings>,
) -> std::io::Result<FeedAddress> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let port = listener.local_addr()?.port();
    let address = FeedAddress {
        port,
        token: token.clone(),
    };
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let display = Arc::clone(&display);
            let token = token.clone();
            let timings = Arc::clone(&timings);
            tokio::spawn(async move {
                let _ = feed(stream, display, &token, &timings).await;
            });
        }
    });
    Ok(address)
}

/// What a connection asked for, checked during the handshake.
struct Wanted {
    pictures: watch::Receiver<Picture>,
    format: FeedFormat,
    /// The largest size the page shows the stream at (its canvas in device
    /// pixels): bigger pictures are scaled down here, once, rather than
    /// converted and copied at full size to be shrunk by the page.
    fit: Option<(u32, u32)>,
}

/// The size to send a `width × height` picture at so it fits in `room`
/// without growing: aspect kept, even sides (I420).
pub fn fitted((width, height): (u32, u32), room: Option<(u32, u32)>) -> (u32, u32) {
    let Some((room_w, room_h)) = room else {
        return (width, height);
    };
    if width <= room_w && height <= room_h {
        return (width, height);
    }
    // Integer arithmetic: the limiting side gets exactly the room.
    let (w, h) = (u64::from(width), u64::from(height));
    let (rw, rh) = (u64::from(room_w), u64::from(room_h));
    let (w, h) = if rw * h <= rh * w {
        (rw, h * rw / w)
    } else {
        (w * rh / h, rh)
    };
    let even = |side: u64| (u32::try_from(side).unwrap_or(u32::MAX) & !1).max(2);
    (even(w), even(h))
}

fn choose(display: &Display, request: &Request, token: &str) -> Result<Wanted, &'static str> {
    let uri = request.uri();
    let mut given_token = None;
    let mut format = FeedFormat::Rgba;
    let (mut fit_w, mut fit_h) = (None, None);
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match (&*key, &*value) {
            ("width", value) => fit_w = value.parse::<u32>().ok().filter(|w| *w >= 2),
            ("height", value) => fit_h = value.parse::<u32>().ok().filter(|h| *h >= 2),
            ("token", value) => given_token = Some(value.to_owned()),
            ("format", "i420") => format = FeedFormat::I420,
            ("format", "rgba") => format = FeedFormat::Rgba,
            ("format", _) => return Err("format is rgba or i420"),
            _ => {}
        }
    }
    // Web pages must not watch the call: browsers let them open WebSockets to
    // loopback, but always name their origin.
    let origin = request
        .headers()
        .get(tokio_tungstenite::tungstenite::http::header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if origin.is_some_and(|o| !WEBVIEW_ORIGINS.contains(&o)) {
        return Err("only the app's own window may connect");
    }
    // Nor other programs on this machine: the token is this run's secret,
    // compared in constant time.
    let matches =
        given_token.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())));
    if !matches {
        return Err("wrong token");
    }
    let pictures = match uri.path() {
        "/local" => display.local.subscribe(),
        "/remote" => display.remote.subscribe(),
        _ => return Err("the streams are /local and /remote"),
    };
    Ok(Wanted {
        pictures,
        format,
        fit: fit_w.zip(fit_h),
    })
}

// The handshake callback's Result shape is tungstenite's, large error and all.
#[allow(clippy::result_large_err)]
async fn feed(
    stream: TcpStream,
    display: Arc<Display>,
    token: &str,
    timings: &DisplayTimings,
) -> Result<(), String> {
    let mut wanted = None;
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match choose(&display, request, token) {
            Ok(chosen) => {
                wanted = Some(chosen);
                Ok(response)
            }
            Err(why) => {
                let mut refusal = ErrorResponse::new(Some(why.to_owned()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                Err(refusal)
            }
        }
    };
    let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback)
        .await
        .map_err(|e| e.to_string())?;
    let Some(Wanted {
        mut pictures,
        format,
        fit,
    }) = wanted
    else {
        return Ok(());
    };
    pictures.mark_changed();
    let mut scaler = Scaler::default();
    loop {
        tokio::select! {
            changed = pictures.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let picture = pictures.borrow_and_update().clone();
                let stamp = picture.as_ref().map(|p| p.timestamp);
                let message = match picture {
                    Some(picture) => {
                        let size = fitted((picture.width, picture.height), fit);
                        if size == (picture.width, picture.height) {
                            encode(&picture, format)?
                        } else {
                            let smaller = scaler
                                .scale(&picture, size.0, size.1)
                                .map_err(|e| e.to_string())?;
                            encode(&smaller, format)?
                        }
                    }
                    // The stream stopped: an empty message clears the canvas.
                    None => Vec::new(),
                };
                socket.send(Message::binary(message)).await.map_err(|e| e.to_string())?;
                // Wait for the page's ack before the next picture.
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                            if let Some(stamp) = stamp {
                                let delay = MediaTime::now().saturating_since(stamp);
                                timings.record(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX));
                            }
                            break;
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Ok(()),
                    }
                }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
        }
    }
}

/// One picture as a feed message.
pub fn encode(picture: &VideoFrame, format: FeedFormat) -> Result<Vec<u8>, String> {
    let converted;
    let frame = match (format, picture.format) {
        (FeedFormat::Rgba, PixelFormat::Rgba) | (FeedFormat::I420, PixelFormat::I420) => picture,
        (FeedFormat::Rgba, _) => {
            converted = convert(picture, PixelFormat::Rgba).map_err(|e| e.to_string())?;
            &converted
        }
        (FeedFormat::I420, _) => {
            converted = convert(picture, PixelFormat::I420).map_err(|e| e.to_string())?;
            &converted
        }
    };
    let size: usize = frame.planes.iter().map(|p| p.data.len()).sum();
    let mut message = Vec::with_capacity(16 + size);
    message.extend_from_slice(&frame.width.to_le_bytes());
    message.extend_from_slice(&frame.height.to_le_bytes());
    message.extend_from_slice(&frame.timestamp.0.to_le_bytes());
    for (index, plane) in frame.planes.iter().enumerate() {
        // Rows without their padding: the page reads tightly packed planes.
        let (width, height) = frame.format.plane_sizes(frame.width, frame.height)[index];
        for y in 0..height {
            message.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + width]);
        }
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexmile_media::frame::MediaTime;

    #[test]
    fn a_picture_is_sent_as_header_and_tight_planes() {
        let frame = VideoFrame::black_i420(64, 36, MediaTime(1234));
        let rgba = encode(&frame, FeedFormat::Rgba).unwrap();
        assert_eq!(rgba.len(), 16 + 64 * 36 * 4);
        assert_eq!(&rgba[0..4], &64u32.to_le_bytes());
        assert_eq!(&rgba[4..8], &36u32.to_le_bytes());
        assert_eq!(&rgba[8..16], &1234u64.to_le_bytes());
        // Black in RGBA, opaque.
        assert_eq!(&rgba[16..20], &[0, 0, 0, 255]);
        let i420 = encode(&frame, FeedFormat::I420).unwrap();
        assert_eq!(i420.len(), 16 + 64 * 36 * 3 / 2);
    }

    /// The feed as a web page or another program would try it.
    #[tokio::test]
    async fn only_the_app_window_with_this_runs_token_may_watch() {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let token = run_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, run_token(), "a fresh token every run");
        let address = serve(Arc::new(Display::default()), token.clone(), Arc::default())
            .await
            .unwrap();
        let status = |token: &str, origin: Option<&str>| {
            let url = format!(
                "ws://127.0.0.1:{}/remote?token={token}&format=rgba",
                address.port
            );
            let mut request = url.into_client_request().unwrap();
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert("origin", origin.parse().unwrap());
            }
            async move {
                match tokio_tungstenite::connect_async(request).await {
                    Ok((_, response)) => response.status().as_u16(),
                    Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                        response.status().as_u16()
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        };
        assert_eq!(status(&token, Some("tauri://localhost")).await, 101);
        assert_eq!(status(&token, Some("http://tauri.localhost")).await, 101);
        // A page elsewhere, even one that learnt the token, is refused.
        assert_eq!(status(&token, Some("https://evil.example")).await, 403);
        assert_eq!(status(&token, Some("null")).await, 403);
        // A wrong or missing token, from the right origin too.
        let mut wrong = token.clone();
        wrong.replace_range(63.., "x");
        assert_eq!(status(&wrong, Some("tauri://localhost")).await, 403);
        assert_eq!(status("", None).await, 403);
    }

    #[test]
    fn pictures_shrink_to_the_canvas_and_never_grow() {
        assert_eq!(fitted((1280, 720), None), (1280, 720));
        assert_eq!(fitted((1280, 720), Some((1920, 1080))), (1280, 720));
        assert_eq!(fitted((1280, 720), Some((740, 416))), (738, 416));
        assert_eq!(fitted((1280, 720), Some((400, 1000))), (400, 224));
        assert_eq!(fitted((640, 360), Some((1, 1))), (2, 2));
    }
}
