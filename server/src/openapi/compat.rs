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
    vec![("/v1/json-rpc", skyway())]
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
