//! The ImageFlux Live Streaming API surface: login and tokens, schedules
//! with the documented validation, users and permissions, password and
//! access-code changes, chat, and the delivery/view answers. Every error is
//! JSON with a message and its HTTP status.

use serde_json::{Value, json};

use crate::{World, world};

pub(crate) struct Api {
    base: String,
    http: reqwest::Client,
    pub(crate) token: Option<String>,
}

impl Api {
    pub(crate) fn new(world: &World) -> Self {
        Self {
            base: world.server.url(),
            http: world.http(),
            token: None,
        }
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.unwrap();
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, json)
    }

    /// A call that must succeed.
    pub(crate) async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }

    pub(crate) async fn login(world: &World, email: &str, password: &str) -> Self {
        let mut api = Self::new(world);
        let answer = api
            .ok(
                "POST",
                "/api/login",
                json!({ "email": email, "password": password, "access_code": "0987654321" }),
            )
            .await;
        api.token = Some(answer["token"].as_str().unwrap().to_owned());
        api
    }
}

/// A `Y/m/d H:i:s` JST time `minutes` from now.
pub(crate) fn jst_in(minutes: i64) -> String {
    let at = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9))
        + time::Duration::minutes(minutes);
    at.format(time::macros::format_description!(
        "[year]/[month]/[day] [hour]:[minute]:[second]"
    ))
    .unwrap()
}

fn error_of(answer: &Value) -> (&str, &str) {
    (
        answer["error"]["code"].as_str().unwrap_or_default(),
        answer["error"]["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_tokens_and_schedules_follow_the_document() {
    let world = world(1.0).await;
    let anonymous = Api::new(&world);
    // Login: the document's request; a wrong password, code or email is 401.
    let master = Api::login(&world, "imageflux@example.com", "Password123").await;
    let (_, login) = anonymous
        .call("POST", "/api/login", json!({ "email": "imageflux@example.com", "password": "Password123", "access_code": "0987654321" }))
        .await;
    let expires = login["expires_at"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$")
            .unwrap()
            .is_match(expires),
        "{expires}"
    );
    for (email, password, code) in [
        ("imageflux@example.com", "Password999", "0987654321"),
        ("imageflux@example.com", "Password123", "1111111111"),
        ("nobody@example.com", "Password123", "0987654321"),
    ] {
        let (status, answer) = anonymous
            .call(
                "POST",
                "/api/login",
                json!({ "email": email, "password": password, "access_code": code }),
            )
            .await;
        assert_eq!(
            (status, error_of(&answer).0),
            (401, "login_failed"),
            "{answer}"
        );
    }
    let (status, answer) = anonymous
        .call(
            "POST",
            "/api/login",
            json!({ "email": "imageflux@example.com" }),
        )
        .await;
    assert_eq!(
        (status, error_of(&answer).0),
        (422, "validation_error"),
        "{answer}"
    );
    // No token, a wrong one: 401 with words.
    let (status, answer) = anonymous.call("GET", "/api/schedule", Value::Null).await;
    assert_eq!(status, 401);
    assert!(error_of(&answer).1.contains("Authorization"), "{answer}");
    let wrong = Api {
        token: Some("0123456789abcdef".into()),
        ..Api::new(&world)
    };
    assert_eq!(wrong.call("GET", "/api/schedule", Value::Null).await.0, 401);

    // Schedules: the document's request, then its listing form.
    let (start, end) = (jst_in(60), jst_in(120));
    let params = json!([{ "durationSeconds": 1, "startTimeOffset": -2,
        "video": { "width": 640, "height": 480, "fps": 12, "bps": 2465792 }, "audio": { "bps": 64000 } }]);
    let created = master
        .ok("POST", "/api/schedule", json!({ "start_datetime": start, "end_datetime": end, "name": "テスト配信", "imageflux_params": params }))
        .await;
    let schedule_id = created["schedule_id"].as_str().unwrap().to_owned();
    let listed = master.ok("GET", "/api/schedule", Value::Null).await;
    let one = &listed[0];
    assert_eq!(one["schedule_id"], schedule_id);
    assert_eq!(one["name"], "テスト配信");
    assert_eq!(
        one["start_datetime"],
        start.replace('/', "-").replace(' ', "T")
    );
    assert_eq!(one["created_user_name"], "管理者");
    let keys: Vec<&String> = one.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_datetime",
            "created_user_name",
            "end_datetime",
            "name",
            "schedule_id",
            "start_datetime"
        ]
    );
    // The documented validation, each refused with its field.
    for (body, field) in [
        (
            json!({ "start_datetime": start, "end_datetime": start, "name": "x" }),
            "end_datetime",
        ),
        (
            json!({ "start_datetime": jst_in(300), "end_datetime": jst_in(360), "name": "" }),
            "name",
        ),
        (
            json!({ "start_datetime": jst_in(300), "end_datetime": jst_in(360), "name": "あ".repeat(31) }),
            "name",
        ),
        (
            json!({ "start_datetime": "tomorrow", "end_datetime": jst_in(360), "name": "x" }),
            "start_datetime",
        ),
        (
            json!({ "start_datetime": jst_in(300), "end_datetime": jst_in(360), "name": "x", "imageflux_params": [{ "durationSeconds": 99 }] }),
            "imageflux_params",
        ),
    ] {
        let (status, answer) = master.call("POST", "/api/schedule", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // Thirty characters is the limit, counted as characters.
    master
        .ok("POST", "/api/schedule", json!({ "start_datetime": jst_in(400), "end_datetime": jst_in(460), "name": "あ".repeat(30) }))
        .await;
    // Overlapping time ranges are refused; touching ones are not.
    let (status, answer) = master
        .call(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": jst_in(90), "end_datetime": jst_in(150), "name": "重なり" }),
        )
        .await;
    assert_eq!((status, error_of(&answer).0), (409, "conflict"), "{answer}");
    let touching = master
        .ok(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": end, "end_datetime": jst_in(180), "name": "続き" }),
        )
        .await;
    // PATCH: the document's fields; an overlap made by an edit is refused too.
    master
        .ok("PATCH", "/api/schedule", json!({ "schedule_id": schedule_id, "start_datetime": jst_in(30), "end_datetime": end, "name": "改名" }))
        .await;
    let (status, _) = master
        .call(
            "PATCH",
            "/api/schedule",
            json!({ "schedule_id": touching["schedule_id"], "start_datetime": jst_in(100) }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = master
        .call(
            "PATCH",
            "/api/schedule",
            json!({ "schedule_id": "no-such-schedule", "name": "x" }),
        )
        .await;
    assert_eq!(status, 404);
    // DELETE before the start works; once started it is refused.
    master
        .ok(
            "DELETE",
            "/api/schedule",
            json!({ "schedule_id": touching["schedule_id"] }),
        )
        .await;
    let started = master
        .ok(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": jst_in(-10), "end_datetime": jst_in(10), "name": "放送中" }),
        )
        .await;
    let (status, answer) = master
        .call(
            "DELETE",
            "/api/schedule",
            json!({ "schedule_id": started["schedule_id"] }),
        )
        .await;
    assert_eq!((status, error_of(&answer).0), (409, "conflict"), "{answer}");
    // Delivery and view: the channel, its WHIP ingest and its HLS playlist.
    let delivery = master
        .ok(
            "GET",
            &format!("/api/delivery?schedule_id={schedule_id}"),
            Value::Null,
        )
        .await;
    let channel = delivery["channel_id"].as_str().unwrap();
    assert_eq!(
        delivery["sora_url"],
        format!("{}/whip/channel/{channel}", world.server.url())
    );
    let view = master
        .ok(
            "GET",
            &format!("/api/view?schedule_id={schedule_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(
        view["playlist_url"],
        format!("{}/hls/{channel}/index.m3u8", world.server.url())
    );
    // Malformed JSON is a 400 that says so.
    let raw = world
        .http()
        .post(format!("{}/api/schedule", world.server.url()))
        .bearer_auth(master.token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let answer: Value = raw.json().await.unwrap();
    assert_eq!(error_of(&answer).0, "malformed_request");
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_permissions_passwords_access_codes_and_chat() {
    let world = world(1.0).await;
    let master = Api::login(&world, "imageflux@example.com", "Password123").await;
    // The document's user request; the listing's form.
    let created = master
        .ok(
            "POST",
            "/api/user",
            json!({ "name": "test", "email": "test@example.jp", "password": "Password123",
            "delivery": true, "view": true, "schedule": false, "user": false }),
        )
        .await;
    assert_eq!(created["ok"], true);
    let viewer_id = created["user_id"].as_i64().unwrap();
    let users = master.ok("GET", "/api/user", Value::Null).await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["is_master"], true);
    assert_eq!(
        users[0]["permissions"],
        json!({ "delivery": 1, "view": 1, "schedule": 1, "user": 1 })
    );
    assert_eq!(
        users[1]["permissions"],
        json!({ "delivery": 1, "view": 1, "schedule": 0, "user": 0 })
    );
    assert!(
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
            .unwrap()
            .is_match(users[1]["created_datetime"].as_str().unwrap())
    );
    // Refusals: taken email, bad email, short password.
    for (body, status) in [
        (
            json!({ "name": "x", "email": "test@example.jp", "password": "Password123" }),
            409,
        ),
        (
            json!({ "name": "x", "email": "not-an-email", "password": "Password123" }),
            422,
        ),
        (
            json!({ "name": "x", "email": "x@example.jp", "password": "short" }),
            422,
        ),
    ] {
        assert_eq!(
            master.call("POST", "/api/user", body.clone()).await.0,
            status,
            "{body}"
        );
    }
    // The new user may deliver and view, not manage schedules or users.
    let member = Api::login(&world, "test@example.jp", "Password123").await;
    assert_eq!(member.call("GET", "/api/user", Value::Null).await.0, 403);
    let (status, answer) = member
        .call(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": jst_in(60), "end_datetime": jst_in(90), "name": "x" }),
        )
        .await;
    assert_eq!((status, error_of(&answer).0), (403, "forbidden"));
    assert_eq!(
        member
            .call(
                "PATCH",
                "/api/access-code",
                json!({ "access_code": "1234567890" })
            )
            .await
            .0,
        403
    );
    // Given the user permission, it still may not touch the master.
    master
        .ok(
            "PATCH",
            "/api/user",
            json!({ "user_id": viewer_id, "user": true, "name": "テスト" }),
        )
        .await;
    assert_eq!(
        member.ok("GET", "/api/user", Value::Null).await[1]["name"],
        "テスト"
    );
    let master_id = 1;
    assert_eq!(
        member
            .call(
                "PATCH",
                "/api/user",
                json!({ "user_id": master_id, "name": "乗っ取り" })
            )
            .await
            .0,
        403
    );
    assert_eq!(
        member
            .call("DELETE", "/api/user", json!({ "user_id": master_id }))
            .await
            .0,
        409
    );
    assert_eq!(
        master
            .call("DELETE", "/api/user", json!({ "user_id": 999 }))
            .await
            .0,
        404
    );

    // Chat: 1 to 50 characters, in order, shared by everyone of the schedule.
    let schedule = master
        .ok(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": jst_in(-5), "end_datetime": jst_in(60), "name": "チャット" }),
        )
        .await;
    let id = schedule["schedule_id"].as_str().unwrap();
    master
        .ok(
            "POST",
            "/api/chat",
            json!({ "schedule_id": id, "body": "ようこそ" }),
        )
        .await;
    member
        .ok(
            "POST",
            "/api/chat",
            json!({ "schedule_id": id, "body": "あ".repeat(50) }),
        )
        .await;
    for body in [String::new(), "あ".repeat(51)] {
        let (status, answer) = member
            .call(
                "POST",
                "/api/chat",
                json!({ "schedule_id": id, "body": body }),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (422, Some("body"))
        );
    }
    let chat = member
        .ok("GET", &format!("/api/chat?schedule_id={id}"), Value::Null)
        .await;
    let lines: Vec<(&str, &str)> = chat["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["user_name"].as_str().unwrap(),
                c["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("管理者", "ようこそ"), ("テスト", "あ".repeat(50).as_str())]
    );
    // The schedule's chat is its channel's social stream too (the first
    // answer holds whole seconds past, so the second of the last message ends first).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let delivery = master
        .ok(
            "GET",
            &format!("/api/delivery?schedule_id={id}"),
            Value::Null,
        )
        .await;
    let feed: Value = world
        .http()
        .get(format!(
            "{}/socialstream/get.json/{}/default",
            world.server.url(),
            delivery["channel_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(feed["payload"][0]["text"], "ようこそ", "{feed}");
    assert_eq!(feed["payload"][0]["isOwner"], 1);

    // Password change: the old one no longer logs in, the new one does.
    member
        .ok(
            "PATCH",
            "/api/password",
            json!({ "password": "NewPassword456" }),
        )
        .await;
    let (status, _) = Api::new(&world)
        .call("POST", "/api/login", json!({ "email": "test@example.jp", "password": "Password123", "access_code": "0987654321" }))
        .await;
    assert_eq!(status, 401);
    Api::login(&world, "test@example.jp", "NewPassword456").await;
    // Access-code change by the master: the old code no longer logs anyone in.
    master
        .ok(
            "PATCH",
            "/api/access-code",
            json!({ "access_code": "1122334455" }),
        )
        .await;
    let (status, _) = Api::new(&world)
        .call("POST", "/api/login", json!({ "email": "imageflux@example.com", "password": "Password123", "access_code": "0987654321" }))
        .await;
    assert_eq!(status, 401);
    Api::new(&world)
        .ok("POST", "/api/login", json!({ "email": "imageflux@example.com", "password": "Password123", "access_code": "1122334455" }))
        .await;
    // A deleted user's token stops working at once.
    master
        .ok("DELETE", "/api/user", json!({ "user_id": viewer_id }))
        .await;
    assert_eq!(
        member
            .call("GET", &format!("/api/chat?schedule_id={id}"), Value::Null)
            .await
            .0,
        401
    );
    world.server.stop().await;
}

/// A token is good until `expires_at`, then 401 says it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_in_words() {
    let world = world(1.0).await;
    let port = nexmile_testkit::free_port();
    let short = world
        .config
        .replace(
            "[[imageflux.system]]",
            "[imageflux]\ntoken_ttl_seconds = 1\n[[imageflux.system]]",
        )
        .replace(
            &format!("127.0.0.1:{}", world.server.addr.port()),
            &format!("127.0.0.1:{port}"),
        )
        .replace("nexmile.db", "short-tokens.db");
    let server = nexmile_server::start(nexmile_server::config::Config::parse(&short).unwrap())
        .await
        .unwrap();
    let mut api = Api::new(&world);
    api.base = server.url();
    let answer = api
        .ok("POST", "/api/login", json!({ "email": "imageflux@example.com", "password": "Password123", "access_code": "0987654321" }))
        .await;
    api.token = Some(answer["token"].as_str().unwrap().to_owned());
    api.ok("GET", "/api/schedule", Value::Null).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, answer) = api.call("GET", "/api/schedule", Value::Null).await;
    assert_eq!(status, 401);
    assert!(error_of(&answer).1.contains("有効期限"), "{answer}");
    server.stop().await;
    world.server.stop().await;
}

/// ffprobe (Debian's ffmpeg) on an HLS URL: streams, and frames counted.
/// The server's certificate is checked against the test's authority `ca`.
fn ffprobe_url(url: &str, ca: &std::path::Path, count_frames: bool) -> Value {
    let mut command = std::process::Command::new("ffprobe");
    command.args(["-tls_verify", "1", "-ca_file"]).arg(ca);
    command.args([
        "-v",
        "error",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
    ]);
    if count_frames {
        command.arg("-count_frames");
    }
    let output = command.arg(url).output().expect("ffprobe runs");
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "ffprobe {url}: {complaints}"
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe's JSON")
}

async fn node(world: &World, args: &[&str]) -> Value {
    let ui = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(ui)
        .env("NEXMILE_SERVER_CERT", &world.tls.cert)
        .args(args)
        .stderr(std::process::Stdio::inherit());
    let output = crate::run_to_end(command, "node").await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Waits until the media playlist lists `count` segments; returns it.
async fn segments_listed(world: &World, playlist: &str, count: usize) -> String {
    let media = playlist.replace("index.m3u8", "0/stream.m3u8");
    for _ in 0..300 {
        if let Ok(reply) = world.http().get(&media).send().await
            && reply.status() == 200
        {
            let text = reply.text().await.unwrap();
            if text.matches("#EXTINF").count() >= count {
                return text;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{media} never listed {count} segments");
}

/// A scheduled live: Chromium publishes to the `sora_url` (WHIP) with an
/// ImageFlux token, and the `playlist_url` plays in ffprobe and in hls.js
/// while it runs. The ladder is followed: the rung of the sender's size is
/// passed through, the smaller one transcoded to its size and frame rate,
/// both in segments of durationSeconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_live_published_over_whip_plays_as_hls() {
    let world = world(1.0).await;
    let master = Api::login(&world, "imageflux@example.com", "Password123").await;
    let params = json!([
        { "durationSeconds": 1, "startTimeOffset": -3,
          "video": { "width": 640, "height": 480, "fps": 30, "bps": 1000000 }, "audio": { "bps": 64000 } },
        { "durationSeconds": 1, "startTimeOffset": -3,
          "video": { "width": 320, "height": 240, "fps": 12, "bps": 300000 }, "audio": { "bps": 32000 } }]);
    let schedule = master
        .ok("POST", "/api/schedule", json!({ "start_datetime": jst_in(-1), "end_datetime": jst_in(30), "name": "HLS配信", "imageflux_params": params }))
        .await;
    let id = schedule["schedule_id"].as_str().unwrap().to_owned();
    let delivery = master
        .ok(
            "GET",
            &format!("/api/delivery?schedule_id={id}"),
            Value::Null,
        )
        .await;
    let view = master
        .ok("GET", &format!("/api/view?schedule_id={id}"), Value::Null)
        .await;
    let (ingest, playlist) = (
        delivery["sora_url"].as_str().unwrap().to_owned(),
        view["playlist_url"].as_str().unwrap().to_owned(),
    );
    let channel = delivery["channel_id"].as_str().unwrap().to_owned();
    // Refusals first: no token, and a user without the delivery permission.
    let offer = world
        .http()
        .post(&ingest)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(offer.status(), 401);
    master
        .ok("POST", "/api/user", json!({ "name": "視聴者", "email": "viewer@example.jp", "password": "Password123", "view": true }))
        .await;
    let viewer = Api::login(&world, "viewer@example.jp", "Password123").await;
    let offer = world
        .http()
        .post(&ingest)
        .bearer_auth(viewer.token.as_deref().unwrap())
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(offer.status(), 403);

    let token = master.token.clone().unwrap();
    let server = world.server.url();
    let publisher_args = ["browser/whip.mjs", "ingest", &server, &token, &ingest, "16"];
    let publisher = node(&world, &publisher_args);
    let watch = async {
        let listed = segments_listed(&world, &playlist, 3).await;
        eprintln!("the media playlist while on air:\n{listed}");
        // On air, the channel is a SkyWay channel too: its publisher and the SFU.
        let find = json!({ "jsonrpc": "2.0", "id": 1, "method": "findChannel",
            "params": { "name": format!("nexmile:imageflux:channel:{channel}") } });
        let answer: Value = world
            .http()
            .post(format!("{}/v1/json-rpc", world.server.url()))
            .bearer_auth("skyway-admin-token")
            .json(&find)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let room = &answer["result"]["channel"];
        let names: Vec<&Value> = room["members"]
            .as_array()
            .unwrap_or_else(|| panic!("findChannel: {answer}"))
            .iter()
            .map(|m| &m["name"])
            .collect();
        assert_eq!(names, [&json!("管理者"), &Value::Null], "{answer}");
        assert_eq!(
            room["publications"].as_array().unwrap().len(),
            4,
            "{answer}"
        );
        let url = playlist.clone();
        let probe = tokio::task::spawn_blocking({
            let ca = world.tls.ca.clone();
            move || ffprobe_url(&url, &ca, false)
        })
        .await
        .unwrap();
        let played = node(&world, &["browser/hls.mjs", &playlist, "6"]).await;
        (listed, probe, played)
    };
    let (published, (listed, probe, played)) = tokio::join!(publisher, watch);
    eprintln!("publisher: {published}\nhls.js: {played}");
    assert_eq!(published["status"], 201, "{published}");
    assert_eq!(published["deleteStatus"], 200, "{published}");
    assert!(listed.contains("#EXT-X-MAP:URI=\"init.mp4\""));
    assert!(listed.contains("#EXT-X-START:TIME-OFFSET=-3"));
    let streams = probe["streams"].as_array().unwrap();
    let codecs: Vec<&str> = streams
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"opus"),
        "{probe:#}"
    );
    let video = streams.iter().find(|s| s["codec_name"] == "h264").unwrap();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(480))
    );
    // hls.js played it: pictures and sound decoded, no fatal error.
    assert_eq!(played["supported"], true, "{played}");
    assert!(
        !played["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("fatal")),
        "{played}"
    );
    assert!(played["framesDecoded"].as_u64().unwrap() > 60, "{played}");
    assert!(
        played["audioBytesDecoded"].as_u64().unwrap() > 0,
        "{played}"
    );
    assert_eq!(played["levels"].as_array().unwrap().len(), 2, "{played}");
    // Off air: the playlist ends, and every listed segment decodes.
    let ended = world
        .http()
        .get(playlist.replace("index.m3u8", "0/stream.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ended.contains("#EXT-X-ENDLIST"), "{ended}");
    let url = playlist.clone();
    let counted = tokio::task::spawn_blocking({
        let ca = world.tls.ca.clone();
        move || ffprobe_url(&url, &ca, true)
    })
    .await
    .unwrap();
    let video = counted["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == "h264")
        .unwrap();
    let frames: u64 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(
        frames > 100,
        "{frames} pictures in the ended playlist's segments"
    );
    // The transcoded rung: its size, about its frame rate, every picture decodable.
    let small = playlist.replace("index.m3u8", "1/stream.m3u8");
    let counted = tokio::task::spawn_blocking({
        let ca = world.tls.ca.clone();
        move || ffprobe_url(&small, &ca, true)
    })
    .await
    .unwrap();
    let video = counted["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == "h264")
        .unwrap();
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240)),
        "{video}"
    );
    let frames: f64 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
    let seconds: f64 = counted["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let fps = frames / seconds;
    eprintln!("transcoded rung: {frames} pictures in {seconds} s = {fps:.1} fps");
    assert!((9.0..14.0).contains(&fps), "{fps} fps for a 12 fps rung");
    let multivariant = world
        .http()
        .get(&playlist)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    eprintln!("{multivariant}");
    assert!(
        multivariant.contains("RESOLUTION=640x480") && multivariant.contains("RESOLUTION=320x240")
    );
    assert!(multivariant.contains("0/stream.m3u8") && multivariant.contains("1/stream.m3u8"));
    // The packaging figures: segments of about durationSeconds.
    let figures: Value = world
        .http()
        .get(format!("{server}/admin/hls/{channel}"))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!("HLS packaging: {figures}");
    for rendition in figures.as_array().unwrap() {
        let median = rendition["median_segment_secs"].as_f64().unwrap();
        assert!((0.9..1.6).contains(&median), "{figures}");
    }
    // A schedule that has not begun refuses its publisher in words.
    let later = master
        .ok(
            "POST",
            "/api/schedule",
            json!({ "start_datetime": jst_in(120), "end_datetime": jst_in(180), "name": "あとで" }),
        )
        .await;
    let later = master
        .ok(
            "GET",
            &format!(
                "/api/delivery?schedule_id={}",
                later["schedule_id"].as_str().unwrap()
            ),
            Value::Null,
        )
        .await;
    let early = world
        .http()
        .post(later["sora_url"].as_str().unwrap())
        .bearer_auth(&token)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 409);
    let said: Value = early.json().await.unwrap();
    assert!(
        said["error"]["message"]
            .as_str()
            .unwrap()
            .contains("配信時間外"),
        "{said}"
    );
    world.server.stop().await;
}

/// M16: password guessing is throttled per account: after a burst of
/// wrong tries the account answers 429 (right password or not), while
/// another account from the same address still logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled_per_account() {
    let world = world(1.0).await;
    let master = Api::login(&world, "imageflux@example.com", "Password123").await;
    master
        .ok(
            "POST",
            "/api/user",
            json!({ "name": "別の人", "email": "other@example.jp", "password": "Password123" }),
        )
        .await;
    let anonymous = Api::new(&world);
    let try_login = |email: &'static str, password: &'static str| {
        anonymous.call(
            "POST",
            "/api/login",
            json!({ "email": email, "password": password, "access_code": "0987654321" }),
        )
    };
    // The burst is five a minute per account (the master's login was one):
    // a loop of guesses meets 429 within a few more tries.
    let mut wrong = 0;
    let refused = loop {
        let (status, answer) = try_login("imageflux@example.com", "Guess0000").await;
        match (status, error_of(&answer).0) {
            (401, "login_failed") => wrong += 1,
            (429, "too_many_attempts") => break true,
            other => panic!("{other:?}"),
        }
        if wrong > 10 {
            break false;
        }
    };
    assert!(refused && wrong >= 4, "{wrong} wrong tries before 429");
    let (status, _) = try_login("imageflux@example.com", "Password123").await;
    assert_eq!(status, 429, "the account waits, even with its password");
    let (status, answer) = try_login("other@example.jp", "Password123").await;
    assert_eq!(status, 200, "{answer}");
    world.server.stop().await;
}
