//! SDP offers as clients send them: to the live engine (str0m, as JSON of an
//! RTCSessionDescription or as WHIP's application/sdp) and to the call
//! legs (rtc's parser).
use str0m::change::SdpOffer;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let _ = SdpOffer::from_sdp_string(text);
        let _ = serde_json::from_str::<SdpOffer>(text);
        let _ = rtc::sdp::SessionDescription::unmarshal(&mut std::io::Cursor::new(data));
    });
}
