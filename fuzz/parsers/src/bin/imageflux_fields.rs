//! ImageFlux API requests: the query string and JSON body merged into
//! fields, then every field rule the handlers apply. Input: the query, a
//! newline, the body.
use nexmile_compat::imageflux::{self as rules, Fields};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (query, body) = match data.iter().position(|b| *b == b'\n') {
            Some(at) => (&data[..at], &data[at + 1..]),
            None => (data, &[][..]),
        };
        let query = std::str::from_utf8(query).ok();
        let Ok(fields) = Fields::read(query, body) else {
            return;
        };
        for name in [
            "email",
            "password",
            "access_code",
            "name",
            "body",
            "schedule_id",
        ] {
            let _ = fields.required_text(name);
        }
        for name in ["delivery", "view", "schedule", "user"] {
            let _ = fields.flag(name);
        }
        let _ = fields.user_id();
        if let Ok(Some(name)) = fields.text("name") {
            let _ = rules::name("name", &name);
        }
        if let Ok(Some(email)) = fields.text("email") {
            let _ = rules::email(&email);
        }
        if let Ok(Some(password)) = fields.text("password") {
            let _ = rules::password(&password);
        }
        if let Ok(Some(code)) = fields.text("access_code") {
            let _ = rules::access_code(&code);
        }
        if let Ok(Some(body)) = fields.text("body") {
            let _ = rules::chat_body(&body);
        }
        if let (Ok(Some(start)), Ok(Some(end))) =
            (fields.datetime("start_at"), fields.datetime("end_at"))
        {
            let _ = rules::time_range(start, end);
        }
        if let Some(ladder) = fields.get("imageflux_params") {
            let _ = rules::ladder(ladder);
        }
    });
}
