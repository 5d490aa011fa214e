//! The SkyWay Channel API surface (`POST /v1/json-rpc`): the document's
//! requests and responses, its error codes and JSON-RPC's own, batches, the
//! monthly limit, and a running live seen as a channel with its real members,
//! publications and subscriptions.

use std::time::Duration;

use serde_json::{Value, json};

use crate::lives::live_on_air;
use crate::{LINK, World, cli, register, world};

const TOKEN: &str = "skyway-admin-token";

async fn rpc_as(world: &World, url: &str, token: &str, body: &str) -> (u16, Value) {
    let reply = world
        .http()
        .post(format!("{url}/v1/json-rpc"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("the server answers");
    let status = reply.status().as_u16();
    let text = reply.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn rpc(world: &World, body: Value) -> Value {
    let (status, answer) = rpc_as(world, &world.server.url(), TOKEN, &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn is_uuid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_requests_answer_as_documented() {
    let world = world(1.0).await;
    // createChannel (its example) and the 409 of a second one.
    let create = json!({ "jsonrpc": "2.0", "id": 0, "method": "createChannel", "params": { "name": "sample-channel" } });
    let created = rpc(&world, create.clone()).await;
    let channel = &created["result"]["channel"];
    assert!(is_uuid(&channel["id"]), "{created}");
    assert_eq!(channel["name"], "sample-channel");
    assert_eq!(created["id"], 0);
    assert_eq!(
        rpc(&world, create).await,
        json!({ "jsonrpc": "2.0", "id": 0, "error": { "code": 409, "message": "Channel with name 'sample-channel' already exists" } })
    );
    // findChannel by name, by id, and id winning over a wrong name.
    let id = channel["id"].as_str().unwrap().to_owned();
    let expected = json!({ "id": id, "name": "sample-channel", "members": [], "publications": [], "subscriptions": [] });
    let by_name = rpc(&world, json!({ "jsonrpc": "2.0", "id": 0, "method": "findChannel", "params": { "name": "sample-channel" } })).await;
    assert_eq!(by_name["result"]["channel"], expected);
    let by_id = rpc(&world, json!({ "jsonrpc": "2.0", "id": "q", "method": "findChannel", "params": { "id": id, "name": "other" } })).await;
    assert_eq!(by_id["result"]["channel"], expected);
    assert_eq!(by_id["id"], "q");
    // The two 404s, word for word.
    assert_eq!(
        rpc(&world, json!({ "jsonrpc": "2.0", "id": 0, "method": "findChannel", "params": { "id": "7e19cb20-fc79-4d2f-bf29-d498ff76299a" } })).await,
        json!({ "jsonrpc": "2.0", "id": 0, "error": { "code": 404, "message": "Channel '7e19cb20-fc79-4d2f-bf29-d498ff76299a' not found" } })
    );
    assert_eq!(
        rpc(&world, json!({ "jsonrpc": "2.0", "id": 0, "method": "findChannel", "params": { "name": "no-such-channel" } })).await["error"],
        json!({ "code": 404, "message": "Channel with name 'no-such-channel' not found" })
    );
    // findOrCreateChannel: the existing one, then a new one with metadata.
    let existing = rpc(&world, json!({ "jsonrpc": "2.0", "id": 1, "method": "findOrCreateChannel", "params": { "name": "sample-channel" } })).await;
    assert_eq!(existing["result"]["channel"], expected);
    let made = rpc(&world, json!({ "jsonrpc": "2.0", "id": 2, "method": "findOrCreateChannel", "params": { "name": "room-2", "metadata": "{\"floor\":3}" } })).await;
    let made = &made["result"]["channel"];
    assert!(is_uuid(&made["id"]) && made["id"] != id);
    assert_eq!(made["metadata"], "{\"floor\":3}");
    assert_eq!(made["members"], json!([]));
    // A channel without a name, twice: names are optional, ids unique.
    let a = rpc(
        &world,
        json!({ "jsonrpc": "2.0", "id": 3, "method": "createChannel", "params": {} }),
    )
    .await;
    let b = rpc(
        &world,
        json!({ "jsonrpc": "2.0", "id": 4, "method": "createChannel", "params": {} }),
    )
    .await;
    assert_ne!(a["result"]["channel"]["id"], b["result"]["channel"]["id"]);
    assert!(a["result"]["channel"].get("name").is_none(), "{a}");

    // A batch: answers in order, the notification unanswered, the bad entry −32600.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 10, "method": "findChannel", "params": { "name": "sample-channel" } },
        { "jsonrpc": "2.0", "method": "createChannel", "params": { "name": "by-notification" } },
        { "jsonrpc": "2.0", "id": 11, "method": "findChannel", "params": { "name": "by-notification" } },
        { "foo": "bar" },
        { "jsonrpc": "2.0", "id": 12, "method": "removeChannel", "params": {} }
    ]);
    let answers = rpc(&world, batch).await;
    let answers = answers.as_array().expect("an array for a batch");
    assert_eq!(answers.len(), 4, "{answers:#?}");
    assert_eq!(answers[0]["result"]["channel"]["id"], id);
    assert_eq!(answers[1]["id"], 11);
    assert_eq!(answers[1]["result"]["channel"]["name"], "by-notification");
    assert_eq!(answers[2]["error"]["code"], -32600);
    assert_eq!(answers[2]["id"], Value::Null);
    assert_eq!(answers[3]["error"]["code"], -32601);

    // JSON-RPC's own errors.
    let url = world.server.url();
    let (_, parse) = rpc_as(&world, &url, TOKEN, "{\"jsonrpc\": \"2.0\", \"method\"").await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["id"], Value::Null);
    let (_, empty) = rpc_as(&world, &url, TOKEN, "[]").await;
    assert_eq!(empty["error"]["code"], -32600, "{empty}");
    let bad_params = rpc(&world, json!({ "jsonrpc": "2.0", "id": 5, "method": "findChannel", "params": { "id": "not-a-uuid" } })).await;
    assert_eq!(bad_params["error"]["code"], -32602, "{bad_params}");
    let no_name = rpc(
        &world,
        json!({ "jsonrpc": "2.0", "id": 6, "method": "findOrCreateChannel", "params": {} }),
    )
    .await;
    assert_eq!(no_name["error"]["code"], -32602, "{no_name}");
    let notification_only = world
        .http()
        .post(format!("{url}/v1/json-rpc"))
        .bearer_auth(TOKEN)
        .body(r#"{"jsonrpc":"2.0","method":"createChannel","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(notification_only.status().as_u16(), 204);

    // A wrong or missing admin token: 401 in the HTTP status and in the body.
    let find = r#"{ "jsonrpc": "2.0", "id": 0, "method": "findChannel", "params": { "name": "sample-channel" } }"#;
    let (status, refused) = rpc_as(&world, &url, "wrong-token", find).await;
    assert_eq!(status, 401);
    assert_eq!(
        refused,
        json!({ "jsonrpc": "2.0", "id": 0, "error": { "code": 401, "message": "Verify admin token failed" } })
    );
    let anonymous = world
        .http()
        .post(format!("{url}/v1/json-rpc"))
        .body(find)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // The monthly limit: a deployment allowing 3 calls answers the 4th with 429.
    let port = nexmile_testkit::free_port();
    let limited = world
        .config
        .replace("monthly_limit = 100000", "monthly_limit = 3")
        .replace(
            &format!("127.0.0.1:{}", world.server.addr.port()),
            &format!("127.0.0.1:{port}"),
        )
        .replace("nexmile.db", "limited.db");
    let limited = nexmile_server::start(nexmile_server::config::Config::parse(&limited).unwrap())
        .await
        .unwrap();
    for n in 1..=4 {
        let (_, answer) = rpc_as(&world, &limited.url(), TOKEN, find).await;
        let code = &answer["error"]["code"];
        if n <= 3 {
            assert_eq!(*code, 404, "call {n}: {answer}");
        } else {
            assert_eq!(
                answer,
                json!({ "jsonrpc": "2.0", "id": 0, "error": { "code": 429, "message": "Project usage limit has been exceeded" } })
            );
        }
    }
    limited.stop().await;
    world.server.stop().await;
}

/// A live on air is a channel: the broadcaster publishes AUDIO and VIDEO,
/// the SFU (a bot member) forwards them, and the viewer subscribes to the
/// forwarded copies; it is found by its liveToken and by its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_live_is_a_channel_with_its_real_members() {
    let world = world(1.0).await;
    register(&world).await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-sky");
    let broadcaster_args = ["open", &broadcast, "--live-for", "12000"];
    let broadcaster = cli(&world, "hanako", &broadcaster_args);
    let watch = async {
        let (token, link_id) = live_on_air(&world).await;
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let viewer_args = ["open", &view, "--live-for", "6000"];
        let viewer = cli(&world, "airi", &viewer_args);
        let inspect = async {
            let find = json!({ "jsonrpc": "2.0", "id": 1, "method": "findChannel", "params": { "id": token } });
            for _ in 0..100 {
                let answer = rpc(&world, find.clone()).await;
                let channel = answer["result"]["channel"].clone();
                if channel["subscriptions"]
                    .as_array()
                    .is_some_and(|s| s.len() == 2)
                {
                    return channel;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the viewer never subscribed");
        };
        let (viewed, channel) = tokio::join!(viewer, inspect);
        (token, viewed, channel)
    };
    let ((_, liver_status), (token, (_, viewer_status), channel)) =
        tokio::join!(broadcaster, watch);
    assert_eq!((liver_status, viewer_status), (0, 0));
    eprintln!("the live as a SkyWay channel: {channel:#}");
    assert_eq!(channel["id"], token);
    assert_eq!(channel["name"], "nexmile:newsite1:live:room-sky");
    let members = channel["members"].as_array().unwrap();
    let member = |name: &str| members.iter().find(|m| m["name"] == name).cloned();
    let hanako = member("hanako").expect("the broadcaster");
    let airi = member("airi").expect("the viewer");
    let sfu = members
        .iter()
        .find(|m| m["type"] == "bot")
        .expect("the SFU");
    assert_eq!(sfu["subtype"], "SFU");
    assert_eq!(
        (hanako["type"].as_str(), airi["type"].as_str()),
        (Some("person"), Some("person"))
    );
    let publications = channel["publications"].as_array().unwrap();
    let own: Vec<&Value> = publications
        .iter()
        .filter(|p| p["publisherId"] == hanako["id"])
        .collect();
    let mut kinds: Vec<&str> = own
        .iter()
        .map(|p| p["contentType"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["AUDIO", "VIDEO"]);
    for subscription in channel["subscriptions"].as_array().unwrap() {
        assert_eq!(subscription["subscriberId"], airi["id"]);
        let forwarded = publications
            .iter()
            .find(|p| p["id"] == subscription["publicationId"])
            .expect("a forwarded publication");
        assert_eq!(forwarded["publisherId"], sfu["id"]);
        assert_eq!(forwarded["originPublisherId"], hanako["id"]);
        assert!(own.iter().any(|p| p["id"] == forwarded["originId"]));
        assert_eq!(forwarded["type"], "SFU");
        assert_eq!(forwarded["isEnabled"], true);
    }
    world.server.stop().await;
}

/// While a live runs, its name is taken: createChannel refuses it and
/// findOrCreateChannel finds the live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_lives_name_is_found_not_created() {
    let world = world(1.0).await;
    register(&world).await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-name");
    let broadcaster_args = ["open", &broadcast, "--live-for", "5000"];
    let broadcaster = cli(&world, "hanako", &broadcaster_args);
    let name = "nexmile:newsite1:live:room-name";
    let ask = async {
        let (token, _) = live_on_air(&world).await;
        let found = rpc(&world, json!({ "jsonrpc": "2.0", "id": 1, "method": "findOrCreateChannel", "params": { "name": name } })).await;
        let refused = rpc(&world, json!({ "jsonrpc": "2.0", "id": 2, "method": "createChannel", "params": { "name": name } })).await;
        (token, found, refused)
    };
    let ((_, status), (token, found, refused)) = tokio::join!(broadcaster, ask);
    assert_eq!(status, 0);
    assert_eq!(found["result"]["channel"]["id"], token, "{found}");
    assert_eq!(refused["error"]["code"], 409, "{refused}");
    world.server.stop().await;
}
