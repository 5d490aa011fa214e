//! `nexmile-cli parse-link`: one JSON object on stdout for a link.

use nexmile_core::applink::{AppLinkError, AppLinkParser};
use serde::Serialize;

/// Exit status for a link that was refused.
pub const EXIT_REFUSED: i32 = 2;

/// The JSON line and exit status for `link`: the parsed link (status 0), or
/// `{"error":{"code","parameter","message"}}` (status 2).
pub fn report(parser: &AppLinkParser, link: &str) -> (String, i32) {
    match parser.parse(link) {
        Ok(parsed) => (to_json(&parsed), 0),
        Err(error) => (to_json(&ErrorReport { error: &error }), EXIT_REFUSED),
    }
}

#[derive(Serialize)]
struct ErrorReport<'a> {
    error: &'a AppLinkError,
}

/// Serialized in the fields' own order (`function` first), as documented.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("links and errors serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn parsed_link_is_the_documented_json_shape() {
        let (out, status) = report(
            &AppLinkParser::default(),
            "https://sbx.stream-works.biz/sbxapp/makecall/?site=newsite1&calleeId=42&video=1&returnUrl=https%3A%2F%2Ftest.com%3Fid%3D1",
        );
        assert_eq!(status, 0);
        assert!(
            out.starts_with(r#"{"function":"makecall","site":"newsite1","uniqueId":null"#),
            "{out}"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "function": "makecall", "site": "newsite1", "uniqueId": null, "allowWeb": false,
                "returnUrl": "https://test.com/?id=1",
                "params": {"calleeId": "42", "video": 1, "callerSubId": null, "calleeSubId": null}
            })
        );
    }

    #[test]
    fn refused_link_is_an_error_object_with_status_2() {
        let (out, status) = report(
            &AppLinkParser::default(),
            "nexmile://makecall/?site=s&video=2&calleeId=1",
        );
        assert_eq!(status, EXIT_REFUSED);
        assert!(
            out.starts_with(r#"{"error":{"code":"invalid_value","parameter":"video","message":"#),
            "{out}"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["error"]["code"], "invalid_value");
        assert_eq!(v["error"]["parameter"], "video");
        assert!(v["error"]["message"].as_str().unwrap().contains("0 or 1"));
    }
}
