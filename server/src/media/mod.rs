//! What the server does with the media engine's output besides relaying
//! it: recordings of lives, and the SDP the engine speaks.

pub(crate) mod recorder;
pub mod recording;

/// A WHIP/WHEP body (bare SDP) as the transport's offer (a JSON description).
pub(crate) fn offer_description(sdp: &str) -> String {
    serde_json::json!({ "type": "offer", "sdp": sdp }).to_string()
}

/// The transport's answer (a JSON description) as a WHIP/WHEP body (bare SDP).
pub(crate) fn answer_sdp(description: &str) -> Result<String, String> {
    let answer: serde_json::Value = serde_json::from_str(description).map_err(|e| e.to_string())?;
    Ok(answer["sdp"].as_str().unwrap_or_default().to_owned())
}
