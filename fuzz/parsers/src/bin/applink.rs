//! App links, as any web page or push message can make them.
use nexmile_core::applink::AppLinkParser;

fn main() {
    let parser = AppLinkParser::default()
        .with_base("https://nexmile.example/sbxapp")
        .expect("a valid base");
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let claimed = parser.claims(text);
        if let Ok(link) = parser.parse(text) {
            assert!(claimed, "a parsed link is claimed: {text:?}");
            // Debug never shows a password; formatting must not panic.
            let _ = format!("{link:?}");
        }
    });
}
