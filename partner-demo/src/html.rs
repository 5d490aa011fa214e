//! The HTML around every page: escaping and one shared layout.

use axum::response::Html;

/// Text (or an attribute value) made safe for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, 'Hiragino Sans', 'Noto Sans JP', sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f4e79; color: #fff; padding: 14px 28px; }
header a { color: #fff; margin-right: 18px; }
main { padding: 20px 28px; }
h1 { margin: 0; font-size: 22px; }
.en { color: #666; font-size: 0.85em; }
header .en { color: #cfe0f0; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { border: 1px solid #d9dde3; padding: 6px 8px; text-align: left; vertical-align: top; font-size: 14px; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.links { margin: 0; padding-left: 18px; }
ul.links li { margin: 2px 0; }
dl.config { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; }
dl.config dt { font-weight: bold; }
dl.config dd { margin: 0; font-family: ui-monospace, monospace; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; max-width: 40em; }
.bad { color: #b00020; font-weight: bold; }
img.avatar { width: 32px; height: 32px; border-radius: 50%; vertical-align: middle; }
";

/// A complete page: `title_ja` / `title_en` in the header, `body` as given (already HTML).
pub(crate) fn page(title_ja: &str, title_en: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title_ja} / {title_en}</title><style>{STYLE}</style></head><body>\
         <header><h1>{title_ja} <span class=\"en\">{title_en}</span></h1>\
         <nav><a href=\"/\">ユーザ <span class=\"en\">Users</span></a>\
         <a href=\"/log\">リクエストログ <span class=\"en\">Request log</span></a>\
         <a href=\"/users.json\">users.json</a><a href=\"/log.json\">log.json</a></nav></header>\
         <main>{body}</main></body></html>",
        title_ja = escape(title_ja),
        title_en = escape(title_en),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x?a=1&b='2'">"#),
            "&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
        );
        assert_eq!(escape("山田花子"), "山田花子");
    }
}
