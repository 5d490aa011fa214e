//! Every WebSocket message a client sends after (and as) its hello. What
//! parses must serialise back to the same message.
use nexmile_core::signal::ClientMessage;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(message) = serde_json::from_slice::<ClientMessage>(data) {
            let text = serde_json::to_string(&message).expect("a message serialises");
            let again: ClientMessage = serde_json::from_str(&text).expect("and parses again");
            assert_eq!(again, message);
        }
    });
}
