//! The compatible surfaces' part of the OpenAPI document (SkyWay Channel
//! JSON-RPC, the social stream, the ImageFlux API).

use serde_json::{Value, json};

/// The security schemes these surfaces use, by name.
pub(super) fn security_schemes() -> [(&'static str, Value); 2] {
    [
        (
            "skywayAdmin",
            json!({ "type": "http", "scheme": "bearer", "description": "A SkyWay Admin Auth Token of [skyway] admin_tokens" }),
        ),
        (
            "imageflux",
            json!({ "type": "http", "scheme": "bearer", "description": "The token of POST /api/login (until its expires_at)" }),
        ),
    ]
}

pub(super) fn paths() -> Vec<(&'static str, Value)> {
    let mut paths = vec![("/v1/json-rpc", skyway())];
    paths.extend(social_stream());
    paths.extend(imageflux());
    paths
}

fn path_params(names: &[&str]) -> Value {
    names
        .iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn social_stream() -> Vec<(&'static str, Value)> {
    let answer = json!({ "type": "object", "properties": {
        "success": { "type": "boolean" },
        "refreshInterval": { "type": "integer", "description": "Seconds; grows while many readers wait" },
        "range": { "type": "array", "items": { "type": "integer" }, "minItems": 2, "maxItems": 2 },
        "payload": { "type": "array", "items": { "type": "object", "description":
            "type msg (uid, text, createdAt, isOwner, profilePictureUrl, profileNetwork, profileUserName, network), host, ignMsg, ignUser or unIgnUser" } } } });
    let feed = |summary: &str, names: &[&str]| {
        json!({ "get": {
        "summary": summary,
        "parameters": path_params(names),
        "responses": {
            "200": { "description": "The feed", "content": { "application/json": { "schema": answer } } },
            "400": { "description": "RANGE or REFRESH_INTERVAL unusable ({success: false, error})" },
            "404": { "description": "No such channel ({success: false, error})" } } } })
    };
    let moderation = |summary: &str, names: &[&str], body: Option<Value>| {
        let mut operation = json!({
            "summary": summary,
            "security": [{ "admin": [] }],
            "parameters": path_params(names),
            "responses": {
                "200": { "description": "Done: readers get it in their next slice" },
                "401": { "description": "No or wrong admin token" },
                "404": { "description": "No such channel or message" } } });
        if let Some(body) = body {
            operation["requestBody"] =
                json!({ "content": { "application/json": { "schema": body } } });
        }
        json!({ "post": operation })
    };
    let who = json!({ "type": "object", "required": ["displayName"], "properties": { "displayName": { "type": "string" } } });
    vec![
        (
            "/socialstream/get.json/{channel}/default",
            feed(
                "Social stream, first request: recent chat, range [0, now] (channel: the liveToken)",
                &["channel"],
            ),
        ),
        (
            "/socialstream/get.json/{channel}/timeslice/{range}/{refresh_interval}",
            feed(
                "Social stream slice [RANGE, RANGE + REFRESH_INTERVAL], answered when it has ended",
                &["channel", "range", "refresh_interval"],
            ),
        ),
        (
            "/admin/socialstream/{channel}/messages/{uid}/ignore",
            moderation("Take a message down (ignMsg)", &["channel", "uid"], None),
        ),
        (
            "/admin/socialstream/{channel}/users/ignore",
            moderation(
                "Hide a user's messages (ignUser)",
                &["channel"],
                Some(who.clone()),
            ),
        ),
        (
            "/admin/socialstream/{channel}/users/unignore",
            moderation(
                "Show a user's messages again (unIgnUser)",
                &["channel"],
                Some(who),
            ),
        ),
        (
            "/admin/socialstream/{channel}/host",
            moderation(
                "The channel moved: readers ask the new host (host)",
                &["channel"],
                Some(
                    json!({ "type": "object", "required": ["host"], "properties": { "host": { "type": "string", "format": "uri" } } }),
                ),
            ),
        ),
    ]
}

fn skyway() -> Value {
    let params = json!({ "type": "object", "properties": {
        "id": { "type": "string", "format": "uuid", "description": "findChannel: wins over name" },
        "name": { "type": "string" },
        "metadata": { "type": "string" } } });
    let call = json!({ "type": "object", "required": ["jsonrpc", "method"], "properties": {
        "jsonrpc": { "const": "2.0" },
        "id": { "type": ["string", "integer"], "description": "Absent: a notification, carried out and not answered" },
        "method": { "enum": ["findChannel", "createChannel", "findOrCreateChannel"] },
        "params": params } });
    let answer = json!({ "type": "object", "description": "JSON-RPC 2.0 response: result.channel (Channel: id, name, metadata, members, publications, subscriptions) or error {code, message}; codes 401, 404, 409, 429, -32700, -32600, -32601, -32602" });
    json!({ "post": {
        "summary": "SkyWay Channel API (JSON-RPC 2.0, batches too): running calls and lives are channels",
        "security": [{ "skywayAdmin": [] }],
        "requestBody": { "content": { "application/json": { "schema": {
            "oneOf": [call, { "type": "array", "items": call, "minItems": 1 }] } } } },
        "responses": {
            "200": { "description": "One response, or an array for a batch", "content": { "application/json": { "schema": {
                "oneOf": [answer, { "type": "array", "items": answer }] } } } },
            "204": { "description": "Only notifications: nothing to answer" },
            "401": { "description": "Error 401: Verify admin token failed", "content": { "application/json": { "schema": answer } } } } } })
}

/// An ImageFlux call: its fields (query string or JSON body alike) and answer.
fn imageflux_call(summary: &str, needs: &str, fields: &[(&str, &str)], answer: Value) -> Value {
    let properties: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), json!({ "type": kind })))
        .collect();
    json!({
        "summary": summary,
        "description": format!("Needs: {needs}. Errors: {{ok: false, error: {{code, message, field?}}}} with 400 (not JSON), 401 (token missing, wrong or expired), 403 (permission), 404, 409 (overlap, taken, started), 422 (a field's rule)."),
        "security": [{ "imageflux": [] }],
        "requestBody": { "content": { "application/json": { "schema": { "type": "object", "properties": properties } } } },
        "responses": {
            "200": { "description": "Done", "content": { "application/json": { "schema": answer } } },
            "401": { "description": "No, wrong or expired token" },
            "403": { "description": "The permission is missing" },
            "404": { "description": "No such schedule or user" },
            "409": { "description": "Overlap, taken, started, or out of the schedule's time" },
            "422": { "description": "A field breaks its rule" } } })
}

fn imageflux() -> Vec<(&'static str, Value)> {
    let ok = json!({ "type": "object", "properties": { "ok": { "const": true } } });
    let schedule_id = [("schedule_id", "string")];
    let schedule_fields = [
        ("schedule_id", "string"),
        ("start_datetime", "string"),
        ("end_datetime", "string"),
        ("name", "string"),
        ("imageflux_params", "array"),
    ];
    let user_fields = [
        ("user_id", "integer"),
        ("name", "string"),
        ("email", "string"),
        ("password", "string"),
        ("delivery", "boolean"),
        ("view", "boolean"),
        ("schedule", "boolean"),
        ("user", "boolean"),
    ];
    let mut login = imageflux_call(
        "Login: email, password and access_code give a bearer token",
        "nothing",
        &[
            ("email", "string"),
            ("password", "string"),
            ("access_code", "string"),
        ],
        json!({ "type": "object", "properties": { "token": { "type": "string" }, "expires_at": { "type": "string", "example": "2021/10/10 20:00:00" } } }),
    );
    login["security"] = json!([]);
    let schedules = json!({ "type": "array", "items": { "type": "object", "properties": {
        "schedule_id": { "type": "string" }, "name": { "type": "string" },
        "start_datetime": { "type": "string", "example": "2021-11-19T12:00:00" },
        "end_datetime": { "type": "string" }, "created_datetime": { "type": "string" },
        "created_user_name": { "type": "string" } } } });
    let users = json!({ "type": "array", "items": { "type": "object", "properties": {
        "user_id": { "type": "integer" }, "name": { "type": "string" }, "email": { "type": "string" },
        "is_master": { "type": "boolean" }, "created_datetime": { "type": "string", "example": "2021-11-01 12:00:00" },
        "permissions": { "type": "object", "description": "delivery, view, schedule, user: 1 or 0" } } } });
    vec![
        ("/api/login", json!({ "post": login })),
        (
            "/api/schedule",
            json!({
            "get": imageflux_call("Schedules of the token's system, latest start first", "schedule, delivery or view", &[], schedules),
            "post": imageflux_call("New schedule: name 1-30 characters, start < end (Y/m/d H:i:s, JST), no overlap; imageflux_params is the HLS ladder", "schedule",
                &schedule_fields[1..], json!({ "type": "object", "properties": { "schedule_id": { "type": "string" } } })),
            "patch": imageflux_call("Edit a schedule (fields given change)", "schedule", &schedule_fields, ok.clone()),
            "delete": imageflux_call("Delete a schedule before its start", "schedule", &schedule_id, ok.clone()) }),
        ),
        (
            "/api/delivery",
            json!({ "get": imageflux_call("Ingest of a schedule: channel_id and the WHIP URL (sora_url)", "delivery", &schedule_id,
            json!({ "type": "object", "properties": { "channel_id": { "type": "string" }, "sora_url": { "type": "string" } } })) }),
        ),
        (
            "/api/view",
            json!({ "get": imageflux_call("HLS of a schedule (playlist_url)", "view", &schedule_id,
            json!({ "type": "object", "properties": { "playlist_url": { "type": "string" } } })) }),
        ),
        (
            "/api/user",
            json!({
            "get": imageflux_call("Users of the system", "user", &[], users),
            "post": imageflux_call("New user: name 1-30, email, password of 8 or more, the four permissions", "user", &user_fields[1..],
                json!({ "type": "object", "properties": { "ok": { "const": true }, "user_id": { "type": "integer" } } })),
            "patch": imageflux_call("Edit a user (only a master edits a master)", "user", &user_fields, ok.clone()),
            "delete": imageflux_call("Delete a user (never the master, never oneself)", "user", &user_fields[..1], ok.clone()) }),
        ),
        (
            "/api/password",
            json!({ "patch": imageflux_call("Change one's own password", "a token", &[("password", "string")], ok.clone()) }),
        ),
        (
            "/api/access-code",
            json!({ "patch": imageflux_call("Change the system's access code", "the master", &[("access_code", "string")], ok.clone()) }),
        ),
        (
            "/api/chat",
            json!({
            "get": imageflux_call("A schedule's chat, oldest first", "delivery or view", &schedule_id,
                json!({ "type": "object", "properties": { "ok": { "const": true }, "chats": { "type": "array", "items": { "type": "object", "properties": {
                    "chat_id": { "type": "integer" }, "user_name": { "type": "string" }, "body": { "type": "string" }, "created_datetime": { "type": "string" } } } } } })),
            "post": imageflux_call("Send to a schedule's chat (body 1-50 characters); also on the channel's social stream", "delivery or view",
                &[("schedule_id", "string"), ("body", "string")], ok) }),
        ),
        (
            "/whip/channel/{channel_id}",
            json!({ "post": {
            "summary": "WHIP ingest of a scheduled channel (from 10 minutes before its start to its end)",
            "security": [{ "imageflux": [] }],
            "parameters": path_params(&["channel_id"]),
            "requestBody": { "content": { "application/sdp": {} } },
            "responses": {
                "201": { "description": "SDP answer; Location names the session", "content": { "application/sdp": {} } },
                "401": { "description": "No, wrong or expired token" },
                "403": { "description": "No delivery permission" },
                "404": { "description": "No such channel in the token's system" },
                "409": { "description": "Out of the schedule's time, or already on air" },
                "415": { "description": "The body is not application/sdp" } } } }),
        ),
        (
            "/whip/channel-session/{id}",
            json!({
            "delete": { "summary": "End a scheduled channel's broadcast", "parameters": path_params(&["id"]),
                "responses": { "200": { "description": "Off air; the playlist ends" }, "404": { "description": "No such session" } } },
            "patch": { "summary": "Trickle ICE: not taken", "parameters": path_params(&["id"]),
                "responses": { "405": { "description": "Candidates belong in the offer" } } } }),
        ),
        (
            "/hls/{channel}/{file}",
            json!({ "get": {
            "summary": "HLS of a scheduled channel: index.m3u8, the multivariant playlist (one rendition per rung of imageflux_params)",
            "parameters": path_params(&["channel", "file"]),
            "responses": {
                "200": { "description": "application/vnd.apple.mpegurl" },
                "404": { "description": "Not on air yet" } } } }),
        ),
        (
            "/hls/{channel}/{rendition}/{file}",
            json!({ "get": {
            "summary": "One rendition: stream.m3u8 (media playlist), init.mp4, <sequence>.m4s (CMAF: H.264 avc3 + Opus); the rung of the sender's size is passed through, others transcoded",
            "parameters": path_params(&["channel", "rendition", "file"]),
            "responses": {
                "200": { "description": "Playlist or segment (video/mp4, video/iso.segment); segments are cacheable for an hour" },
                "404": { "description": "Not on air yet, or no such file" } } } }),
        ),
        (
            "/admin/hls/{channel}",
            json!({ "get": {
            "summary": "A channel's HLS packaging figures per rendition (segments, median length, median delay from first picture to publication, bit rate)",
            "security": [{ "admin": [] }],
            "parameters": path_params(&["channel"]),
            "responses": { "200": { "description": "Figures" }, "401": { "description": "No or wrong admin token" }, "404": { "description": "No HLS for that channel" } } } }),
        ),
    ]
}
