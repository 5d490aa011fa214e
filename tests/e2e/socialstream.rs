//! The social stream: a live's comments read by `nexmile-cli socialstream`
//! (the document's polling: default, then chained timeslices) while a
//! moderator takes a message down (ignMsg), moves the channel to another
//! host name (host) and ignores a user (ignUser, then unIgnUser).

use std::time::Duration;

use serde_json::{Value, json};

use crate::lives::live_on_air;
use crate::{LINK, World, cli, register, world};

async fn admin(world: &World, path: &str, body: Value) -> Value {
    let reply = world
        .http()
        .post(format!("{}{path}", world.server.url()))
        .bearer_auth("admin-secret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200, "{path}");
    reply.json().await.unwrap()
}

/// The feed's first answer, as any reader gets it.
async fn first(world: &World, url: &str) -> Value {
    world
        .http()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The uid of the visible message with `text`, once the feed has it.
async fn uid_of(world: &World, url: &str, text: &str) -> u64 {
    for _ in 0..200 {
        let answer = first(world, url).await;
        let found = answer["payload"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "msg" && m["text"] == text)
            .map(|m| m["uid"].as_u64().unwrap());
        if let Some(uid) = found {
            return uid;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text} never reached the feed");
}

fn texts(event: &Value) -> Vec<String> {
    event["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_a_lives_comments_through_moderation_and_a_host_move() {
    let world = world(1.0).await;
    register(&world).await;
    let broadcast = format!("{LINK}/broadcastLive/?site=newsite1&linkId=room-chat");
    let broadcaster_args = [
        "open",
        &broadcast,
        "--live-for",
        "16000",
        "--comment",
        "ようこそ",
    ];
    let broadcaster = cli(&world, "hanako", &broadcaster_args);
    let rest = async {
        let (token, link_id) = live_on_air(&world).await;
        let url = format!(
            "{}/socialstream/get.json/{token}/default",
            world.server.url()
        );
        let view = format!("{LINK}/viewLive/?site=newsite1&liveToken={token}&linkId={link_id}");
        let viewer_args = [
            "open",
            &view,
            "--live-for",
            "9000",
            "--comment",
            "はじめまして",
            "--comment",
            "スパム",
            "--comment",
            "また来ます",
        ];
        let viewer = cli(&world, "airi", &viewer_args);
        let reader_args = ["socialstream", &url, "--for", "13000"];
        let reader = cli(&world, "reader", &reader_args);
        let moderator = async {
            let spam = uid_of(&world, &url, "スパム").await;
            let channel = format!("/admin/socialstream/{token}");
            admin(
                &world,
                &format!("{channel}/messages/{spam}/ignore"),
                json!({}),
            )
            .await;
            // The channel moves to the same server under another name.
            let moved = world.server.url().replace("127.0.0.1", "localhost");
            admin(&world, &format!("{channel}/host"), json!({ "host": moved })).await;
            uid_of(&world, &url, "また来ます").await;
            let viewer_name = first(&world, &url).await["payload"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["text"] == "また来ます")
                .map(|m| m["profileUserName"].as_str().unwrap().to_owned())
                .unwrap();
            let who = json!({ "displayName": viewer_name });
            admin(&world, &format!("{channel}/users/ignore"), who.clone()).await;
            admin(&world, &format!("{channel}/users/unignore"), who).await;
            (moved, viewer_name)
        };
        let ((_, viewer_status), (read, reader_status), moderated) =
            tokio::join!(viewer, reader, moderator);
        assert_eq!(viewer_status, 0);
        (read, reader_status, moderated)
    };
    let ((_, liver_status), (read, reader_status, (moved, viewer_name))) =
        tokio::join!(broadcaster, rest);
    assert_eq!((liver_status, reader_status), (0, 0), "{read:#?}");
    assert_eq!(viewer_name, "星野あいり");
    let shown: Vec<&str> = read
        .iter()
        .filter(|e| e["event"] == "socialstream.message")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    for text in ["ようこそ", "はじめまして", "スパム", "また来ます"] {
        assert!(shown.contains(&text), "{text} was shown: {shown:?}");
    }
    let owner = read
        .iter()
        .find(|e| e["event"] == "socialstream.message" && e["text"] == "ようこそ")
        .unwrap();
    assert_eq!(
        owner["owner"], true,
        "the broadcaster's comment is the owner's"
    );
    let removed: Vec<&str> = read
        .iter()
        .filter(|e| e["event"] == "socialstream.removed")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(removed[0], "スパム", "ignMsg first: {removed:?}");
    assert!(removed.contains(&"はじめまして") && removed.contains(&"また来ます"));
    // After the host message every query went to the new host, slices chained.
    let host_at = read
        .iter()
        .position(|e| e["event"] == "socialstream.host")
        .expect("the reader was told the channel moved");
    assert_eq!(read[host_at]["host"], moved);
    let answers: Vec<&Value> = read
        .iter()
        .filter(|e| e["event"] == "socialstream.answer")
        .collect();
    assert!(answers[0]["url"].as_str().unwrap().ends_with("/default"));
    assert!(answers.len() >= 4, "{answers:#?}");
    for pair in answers.windows(2) {
        let end = pair[0]["range"][1].as_u64().unwrap();
        let url = pair[1]["url"].as_str().unwrap();
        assert!(
            url.contains(&format!("/timeslice/{end}/2")),
            "{url} follows {}",
            pair[0]
        );
    }
    let after_move = read[host_at..]
        .iter()
        .filter(|e| e["event"] == "socialstream.answer")
        .count();
    assert!(after_move > 0);
    assert!(
        read[host_at..]
            .iter()
            .filter(|e| e["event"] == "socialstream.answer")
            .all(|e| e["url"].as_str().unwrap().starts_with(&moved))
    );
    let window = read
        .iter()
        .find(|e| e["event"] == "socialstream.window")
        .unwrap();
    assert_eq!(texts(window), ["ようこそ"]);
    world.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_refuses_what_it_cannot_answer_in_words() {
    let world = world(1.0).await;
    let base = format!("{}/socialstream/get.json", world.server.url());
    let unknown = world
        .http()
        .get(format!("{base}/no-such-live/default"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().contains("No such channel"));
    for bad in [
        "timeslice/abc/10",
        "timeslice/100/0",
        "timeslice/100/100000",
    ] {
        let reply = world
            .http()
            .get(format!("{base}/x/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 400, "{bad}");
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["success"], false, "{bad}");
    }
    // The reader says what is wrong and gives up after its retries.
    let (events, status) = cli(
        &world,
        "reader",
        &["socialstream", "http://127.0.0.1:1/nothing"],
    )
    .await;
    assert_ne!(status, 0);
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("not a social stream URL")
    );
    world.server.stop().await;
}
