//! The compatible surfaces' part of the OpenAPI document (SkyWay Channel
//! JSON-RPC, the social stream, the ImageFlux API).

use serde_json::{Value, json};

/// The security schemes these surfaces use, by name.
pub(super) fn security_schemes() -> [(&'static str, Value); 1] {
    [(
        "skywayAdmin",
        json!({ "type": "http", "scheme": "bearer", "description": "A SkyWay Admin Auth Token of [skyway] admin_tokens" }),
    )]
}

pub(super) fn paths() -> Vec<(&'static str, Value)> {
    let mut paths = vec![("/v1/json-rpc", skyway())];
    paths.extend(social_stream());
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
