//! The OpenAPI 3.1 document of the server's HTTP surfaces, served at
//! `/openapi.json` and published as `docs/openapi.json`. Bodies are described
//! by the same types the handlers use (schemars' JSON Schema 2020-12 is
//! OpenAPI 3.1's schema dialect); a test checks every documented route
//! against the running router.

use nexmile_core::effects::EffectManifest;
use nexmile_core::signal::{ActivateReply, ActivateRequest};
use nexmile_core::wire::site_owner::{PushMessage, UpdateUserBalance};
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::store::{Attempt, CallRecord, OutboxEntry};

mod compat;

/// `result=0` or `result=<n>&message=<text>` (§3.3.1).
fn partner_reply(description: &str) -> Value {
    json!({ "200": { "description": description,
        "content": { "text/plain": { "schema": { "type": "string", "example": "result=0" } } } } })
}

fn site_key() -> Value {
    json!({ "name": "siteKey", "in": "query", "required": true, "schema": { "type": "string" },
            "description": "The site's API key (§3.1.2), compared in constant time." })
}

pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas/".into())
        .into_generator();
    let activate_request = json!(generator.subschema_for::<ActivateRequest>());
    let activate_reply = json!(generator.subschema_for::<ActivateReply>());
    let manifest = json!(generator.subschema_for::<EffectManifest>());
    let push = json!(generator.subschema_for::<PushMessage>());
    let balance = json!(generator.subschema_for::<UpdateUserBalance>());
    let entry = json!(generator.subschema_for::<OutboxEntry>());
    let attempt = json!(generator.subschema_for::<Attempt>());
    let call = json!(generator.subschema_for::<CallRecord>());
    let schemas = generator.take_definitions(true);
    let limit =
        json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "default": 50 } });
    let admin_words = json!({ "required": false, "content": { "application/json": { "schema": {
        "type": "object", "properties": { "comment": { "type": "string" } } } } } });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Nexmile server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Apps (activation, signalling, effect files), partner sites (chapter 7 of the Nexmile I/F specification) and administrators. The WebSocket protocol of /ws is described by docs/signalling.schema.json."
        },
        "paths": {
            "/health": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/ws": { "get": {
                "summary": "Signalling WebSocket: hello with the session token, then call messages both ways",
                "responses": { "101": { "description": "Switching to the WebSocket protocol (docs/signalling.schema.json)" } } } },
            "/api/activate": { "post": {
                "summary": "activateExUser (§3.2): the partner vouches for the user; the app gets its profile's session",
                "requestBody": { "required": true, "content": { "application/json": { "schema": activate_request } } },
                "responses": { "200": { "description": "Activated, or refused with the words to show",
                    "content": { "application/json": { "schema": activate_reply } } } } } },
            "/api/effects/manifest": { "get": {
                "summary": "The site's effect files for this user (face filters only where enableDownloadEffect allowed)",
                "security": [{ "session": [] }],
                "responses": {
                    "200": { "description": "The manifest", "content": { "application/json": { "schema": manifest } } },
                    "401": { "description": "No or unknown session" } } } },
            "/api/effects/files/{path}": { "get": {
                "summary": "One effect file of the manifest; Range requests resume a download",
                "security": [{ "session": [] }],
                "parameters": [
                    { "name": "path", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "Range", "in": "header", "schema": { "type": "string", "example": "bytes=1024-" } }
                ],
                "responses": {
                    "200": { "description": "The file", "content": { "application/octet-stream": {} } },
                    "206": { "description": "The requested range" },
                    "401": { "description": "No or unknown session" },
                    "403": { "description": "A face filter this user may not download" },
                    "404": { "description": "Not in the manifest" } } } },
            "/SiteOwner/PushMessage": { "post": {
                "summary": "§7.1 push to the site's users' apps",
                "parameters": [site_key()],
                "requestBody": { "description": "JSON (raw or percent-encoded), a form, or query parameters (decision 4)",
                    "content": { "application/json": { "schema": push } } },
                "responses": partner_reply("result=0, or the refusal") } },
            "/SiteOwner/UpdateUserBalance": { "post": {
                "summary": "§7.2 the partner changed a user's points during a call",
                "parameters": [site_key()],
                "requestBody": { "content": { "application/json": { "schema": balance } } },
                "responses": partner_reply("result=0 when a running call billed that user, else the refusal") } },
            "/SiteOwner/DumpGift": { "post": {
                "summary": "§7.3 the site's gift catalogue (also GET, and at /SiteOwner/DumpGif, decision 3)",
                "parameters": [site_key()],
                "responses": partner_reply("result=0&json=<percent-encoded list>") } },
            "/SiteOwner/DumpGif": { "post": {
                "summary": "§7.3 as spelt in the detail section",
                "parameters": [site_key()],
                "responses": partner_reply("result=0&json=<percent-encoded list>") } },
            "/admin/outbox": { "get": {
                "summary": "Requests marked 再送 with every attempt, newest first",
                "security": [{ "admin": [] }], "parameters": [limit.clone()],
                "responses": { "200": { "description": "Entries", "content": { "application/json": { "schema": {
                    "type": "array", "items": { "type": "object", "required": ["entry", "attempts"], "properties": {
                        "entry": entry, "attempts": { "type": "array", "items": attempt } } } } } } },
                    "401": { "description": "No or wrong admin token" } } } },
            "/admin/calls": { "get": {
                "summary": "Running calls and the newest calls",
                "security": [{ "admin": [] }], "parameters": [limit],
                "responses": { "200": { "description": "Calls", "content": { "application/json": { "schema": {
                    "type": "object", "properties": {
                        "running": { "type": "array", "items": { "type": "string" } },
                        "recent": { "type": "array", "items": call } } } } } },
                    "401": { "description": "No or wrong admin token" } } } },
            "/admin/calls/{callToken}/disconnect": { "post": {
                "summary": "The administrator ends a call (§4.3.5 reason 4)",
                "security": [{ "admin": [] }],
                "parameters": [{ "name": "callToken", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "Ended" },
                    "401": { "description": "No or wrong admin token" },
                    "404": { "description": "Not running" } } } },
            "/admin/sites/{site}/users/{userId}/revoke": { "post": {
                "summary": "Signs a site's user out of every device: the session tokens stop working and open connections close",
                "security": [{ "admin": [] }],
                "parameters": [
                    { "name": "site", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "userId", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "How many devices were signed out and connections closed", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["revoked", "closed"], "properties": {
                            "revoked": { "type": "integer" }, "closed": { "type": "integer" } } } } } },
                    "401": { "description": "No or wrong admin token" } } } },
            "/admin/lives": { "get": {
                "summary": "The lives running now, by liveToken",
                "security": [{ "admin": [] }],
                "responses": { "200": { "description": "Lives", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "running": { "type": "array", "items": { "type": "string" } } } } } } },
                    "401": { "description": "No or wrong admin token" } } } },
            "/admin/lives/{liveToken}/disconnect": { "post": {
                "summary": "The administrator removes the broadcaster (§5.3.7: 96, then 13); the live ends",
                "security": [{ "admin": [] }],
                "parameters": [{ "name": "liveToken", "in": "path", "required": true, "schema": { "type": "string" } }],
                "requestBody": admin_words.clone(),
                "responses": {
                    "200": { "description": "Ended" },
                    "401": { "description": "No or wrong admin token" },
                    "404": { "description": "Not running" } } } },
            "/admin/lives/{liveToken}/viewers/{userId}/disconnect": { "post": {
                "summary": "The administrator removes a viewer (§5.3.18: 94, then 33)",
                "security": [{ "admin": [] }],
                "parameters": [
                    { "name": "liveToken", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "userId", "in": "path", "required": true, "schema": { "type": "string" } }],
                "requestBody": admin_words.clone(),
                "responses": {
                    "200": { "description": "Removed" },
                    "401": { "description": "No or wrong admin token" },
                    "404": { "description": "Not watching" } } } },
            "/admin/lives/{liveToken}/message": { "post": {
                "summary": "The administrator's message to the broadcaster (§5.3.8: 97), shown on its screen",
                "security": [{ "admin": [] }],
                "parameters": [{ "name": "liveToken", "in": "path", "required": true, "schema": { "type": "string" } }],
                "requestBody": admin_words,
                "responses": {
                    "200": { "description": "Sent" },
                    "400": { "description": "No message" },
                    "401": { "description": "No or wrong admin token" },
                    "404": { "description": "Not running" } } } }
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": { "type": "http", "scheme": "bearer", "description": "The session token from /api/activate" },
                "admin": { "type": "http", "scheme": "bearer", "description": "[server] admin_token" }
            }
        }
    });
    for (path, item) in recording_paths()
        .into_iter()
        .chain(app_link_paths())
        .chain(compat::paths())
    {
        doc["paths"][path] = item;
    }
    for (name, scheme) in compat::security_schemes() {
        doc["components"]["securitySchemes"][name] = scheme;
    }
    doc
}

/// The admin API's recordings (apart: one `json!` of everything outgrows the macro's recursion).
/// The pages and files a browser or a phone fetches at the app-link address (chapter 6).
/// A WHIP/WHEP endpoint: an SDP offer in, the answer and a session out.
fn media_offer(summary: &str, parameters: &[&str]) -> Value {
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect();
    json!({ "post": {
        "summary": summary,
        "security": [{ "session": [] }],
        "parameters": parameters,
        "requestBody": { "content": { "application/sdp": {} } },
        "responses": {
            "201": { "description": "SDP answer; Location names the session", "content": { "application/sdp": {} } },
            "401": { "description": "No or unknown session token" },
            "403": { "description": "The partner or the media refused (text)" },
            "415": { "description": "The body is not application/sdp" } } } })
}

/// A WHIP/WHEP session: DELETE ends it; trickle ICE is not taken.
fn media_session(ends: &str) -> Value {
    let id =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    json!({
        "delete": { "summary": ends, "parameters": id, "security": [{ "session": [] }],
            "responses": { "200": { "description": "Ending" },
                "401": { "description": "No valid session token (the one the POST carried)" },
                "403": { "description": "Another device's session" },
                "404": { "description": "No such session" } } },
        "patch": { "summary": "Trickle ICE: not taken", "parameters": id,
            "responses": { "405": { "description": "Candidates belong in the offer" } } } })
}

fn app_link_paths() -> [(&'static str, Value); 7] {
    [
        (
            "/whep/live/{liveToken}/{linkId}",
            media_offer(
                "WHEP: watch a live as the bearer's user; 31, then 32 once the media connection is up",
                &["liveToken", "linkId"],
            ),
        ),
        ("/whep/session/{id}", media_session("Leave the live (33)")),
        (
            "/whip/live/{linkId}",
            media_offer(
                "WHIP (RFC 9725): publish a live as the bearer's user; 11 and 12 follow",
                &["linkId"],
            ),
        ),
        (
            "/whip/session/{id}",
            media_session("End the WHIP live (13)"),
        ),
        (
            "/sbxapp/{function}/",
            json!({ "get": {
            "summary": "A link no installed app took: the web version (allowWeb=1, 303 to /web/…) or the §6.2 report to the partner and an install page",
            "parameters": [{ "name": "function", "in": "path", "required": true, "schema": { "type": "string" } }],
            "responses": {
                "200": { "description": "Install page (HTML)", "content": { "text/html": {} } },
                "303": { "description": "To the web version" },
                "400": { "description": "The link is not valid (HTML page naming the parameter)" },
                "404": { "description": "Unknown site" } } } }),
        ),
        (
            "/.well-known/assetlinks.json",
            json!({ "get": {
            "summary": "Android Digital Asset Links for the app-link host ([apps] android_*)",
            "responses": { "200": { "description": "Statement list", "content": { "application/json": {} } },
                "404": { "description": "No Android app configured" } } } }),
        ),
        (
            "/.well-known/apple-app-site-association",
            json!({ "get": {
            "summary": "iOS universal links for the app-link host ([apps] ios_app_ids)",
            "responses": { "200": { "description": "applinks association", "content": { "application/json": {} } },
                "404": { "description": "No iOS app configured" } } } }),
        ),
    ]
}

fn recording_paths() -> [(&'static str, Value); 2] {
    [
        (
            "/admin/recordings",
            json!({ "get": {
                "summary": "Recorded lives (serverSideRecording), newest first",
                "security": [{ "admin": [] }],
                "responses": { "200": { "description": "Recordings", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "recordings": { "type": "array", "items": {
                        "type": "object", "properties": {
                            "site": { "type": "string" },
                            "file": { "type": "string", "description": "<linkId>_<JST start>.mp4" },
                            "bytes": { "type": "integer" },
                            "modified_ms": { "type": "integer" },
                            "url": { "type": "string" } } } } } } } } },
                    "401": { "description": "No or wrong admin token" } } } }),
        ),
        (
            "/admin/recordings/{site}/{file}",
            json!({ "get": {
                "summary": "One recording: fragmented MP4 (H.264 + Opus; Opus alone for radio), with range requests",
                "security": [{ "admin": [] }],
                "parameters": [
                    { "name": "site", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "file", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "The file", "content": { "video/mp4": {} } },
                    "206": { "description": "The range asked for" },
                    "401": { "description": "No or wrong admin token" },
                    "404": { "description": "No such recording" } } } }),
        ),
    ]
}
