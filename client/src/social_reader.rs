//! `nexmile-cli socialstream URL`: follows a social stream feed by the
//! document's polling rules (the I/O around `nexmile_compat`'s
//! [`Follower`]) and prints the visible chat as it changes.

use std::time::Duration;

use nexmile_compat::socialstream::{Answer, Change, Chat, Follower, Uid};
use serde::Serialize;
use tokio::time::Instant;

use crate::app::{Outcome, print_event};

/// An unusable answer (network, status, not the feed's JSON) is retried
/// this many times in a row before the reader gives up.
const ATTEMPTS: u32 = 5;

/// What the reader prints, one JSON object per line.
#[derive(Serialize)]
#[serde(tag = "event")]
enum FeedEvent<'a> {
    #[serde(rename = "error")]
    Error { message: String },
    /// An answer that could not be used; it is asked again.
    #[serde(rename = "socialstream.error")]
    Unanswered {
        url: &'a str,
        message: String,
        attempt: u32,
    },
    #[serde(rename = "socialstream.answer")]
    Answered {
        url: &'a str,
        range: [u64; 2],
        refresh_interval: u32,
        entries: usize,
    },
    #[serde(rename = "socialstream.message")]
    Shown(Shown<'a>),
    #[serde(rename = "socialstream.removed")]
    Removed(Shown<'a>),
    #[serde(rename = "socialstream.host")]
    Host { host: &'a str },
    /// The chat window when the reader stops.
    #[serde(rename = "socialstream.window")]
    Window {
        host: &'a str,
        messages: Vec<Shown<'a>>,
    },
}

/// One chat message as a viewer sees it.
#[derive(Serialize)]
struct Shown<'a> {
    uid: &'a Uid,
    user: &'a str,
    text: &'a str,
    owner: bool,
    created_at: &'a str,
}

fn shown(chat: &Chat) -> Shown<'_> {
    Shown {
        uid: &chat.uid,
        user: &chat.profile_user_name,
        text: &chat.text,
        owner: chat.is_owner == 1,
        created_at: &chat.created_at,
    }
}

/// Reads until `stay_for` has passed (or for ever); the exit status.
pub async fn follow(url: &str, stay_for: Option<Duration>, http: reqwest::Client) -> Outcome {
    let Some(mut follower) = Follower::from_url(url) else {
        print_event(&FeedEvent::Error {
            message: format!(
                "{url} is not a social stream URL (…/socialstream/get.json/<CHANNEL_ID>/default)"
            ),
        });
        return Outcome::Failed;
    };
    let started = Instant::now();
    let local_ms = || i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let deadline = stay_for.map(|d| started + d);
    let mut failures = 0;
    loop {
        let (query, due_ms) = follower.next_query();
        let due = started + Duration::from_millis(u64::try_from(due_ms).unwrap_or(0));
        if deadline.is_some_and(|end| due >= end) {
            break;
        }
        tokio::time::sleep_until(due).await;
        follower.asking(local_ms());
        let asked = async {
            let reply = http.get(&query).send().await.map_err(|e| e.to_string())?;
            let status = reply.status();
            let body = reply.text().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("HTTP {status}: {body}"));
            }
            serde_json::from_str::<Answer>(&body)
                .map_err(|e| format!("not a social stream answer ({e}): {body:.200}"))
        };
        let answer = match deadline {
            Some(end) => match tokio::time::timeout_at(end, asked).await {
                Ok(answer) => answer,
                Err(_) => break,
            },
            None => asked.await,
        };
        let answer = answer.and_then(|answer| match answer.success {
            true => Ok(answer),
            false => Err("the feed answered success: false".to_owned()),
        });
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                failures += 1;
                print_event(&FeedEvent::Unanswered {
                    url: &query,
                    message: e,
                    attempt: failures,
                });
                if failures >= ATTEMPTS {
                    return Outcome::Failed;
                }
                tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
                continue;
            }
        };
        failures = 0;
        print_event(&FeedEvent::Answered {
            url: &query,
            range: answer.range,
            refresh_interval: answer.refresh_interval,
            entries: answer.payload.len(),
        });
        for change in follower.answered(&answer) {
            print_event(&match &change {
                Change::Shown(chat) => FeedEvent::Shown(shown(chat)),
                Change::Removed(chat) => FeedEvent::Removed(shown(chat)),
                Change::Moved(host) => FeedEvent::Host { host },
            });
        }
    }
    print_event(&FeedEvent::Window {
        host: follower.host(),
        messages: follower.window().iter().map(shown).collect(),
    });
    Outcome::Done
}
