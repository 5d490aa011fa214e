//! The Ustream social stream (`ustream-social-stream-api.ja.txt`): a chat
//! feed read by polling. The first request (`…/default`) answers the recent
//! chat and `range: [0, now]`; each later one asks for the slice that starts
//! where the previous range ended and lasts the refresh interval
//! (`…/timeslice/<RANGE>/<REFRESH_INTERVAL>`).
//!
//! How the document's drift rule is read here: a slice `[R, R+I]` is
//! answered once it is complete (the server holds a request for a slice still
//! running), so a client that asks for `[R, …]` at `START_TS + (R − first)`
//! gets each answer exactly when its slice ends and never drifts; the
//! document's example (`/timeslice/1110/5` asked at `START_TS+110`) is this
//! schedule. [`Feed`] is the server's side, [`Follower`] the client's.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// One answer of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub success: bool,
    pub refresh_interval: u32,
    pub range: [u64; 2],
    pub payload: Vec<Message>,
}

/// A payload entry: a chat message or one of the special messages (§5.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    #[serde(rename = "msg")]
    Chat(Chat),
    /// Ask the next query of this new server.
    #[serde(rename = "host")]
    Host { host: String },
    /// Remove this message from the chat window.
    #[serde(rename = "ignMsg")]
    IgnoreMessage { uid: Uid },
    /// Remove this user's messages, and hide those that follow.
    #[serde(rename = "ignUser")]
    IgnoreUser { network: Vec<Network> },
    /// Show this user's messages again from now on.
    #[serde(rename = "unIgnUser")]
    UnignoreUser { network: Vec<Network> },
}

/// A message id: a number in chat messages, a string in `ignMsg` (both as documented).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Uid {
    Number(u64),
    Text(String),
}

impl Uid {
    fn same(&self, other: &Uid) -> bool {
        let text = |uid: &Uid| match uid {
            Uid::Number(n) => n.to_string(),
            Uid::Text(t) => t.clone(),
        };
        text(self) == text(other)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chat {
    pub uid: Uid,
    pub text: String,
    /// UTC, ISO 8601 (`2026-11-23T12:00:00Z`).
    pub created_at: String,
    /// 1 for the channel owner's (the broadcaster's) messages.
    pub is_owner: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    #[serde(default)]
    pub profile_network: String,
    #[serde(default)]
    pub profile_user_name: String,
    #[serde(default)]
    pub network: Vec<Network>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub provider: String,
    pub display_name: String,
}

/// The network Nexmile's own users belong to (one the document lists).
pub const PROVIDER: &str = "ustream";

/// How many recent messages the first answer carries.
const RECENT: usize = 100;
/// How long entries are kept for slices asked late (seconds).
const KEPT_SECONDS: u64 = 3600;

/// A channel's feed on the server: entries stamped in milliseconds.
#[derive(Debug, Default)]
pub struct Feed {
    entries: Vec<(i64, Message)>,
    next_uid: u64,
    ignored: HashSet<Network>,
}

/// The refreshInterval to answer: `base` seconds, one step more for each
/// `per_step` readers waiting at once (the server's load), at most 60 s.
pub fn refresh_interval(base: u32, waiting: u32, per_step: u32) -> u32 {
    let steps = 1 + waiting / per_step.max(1);
    base.max(1).saturating_mul(steps).min(60)
}

/// What to do with a timeslice request now.
#[derive(Debug, PartialEq, Eq)]
pub enum Slice {
    /// The slice is complete, or starts in the future: answer at once.
    Answer(Answer),
    /// The slice is still running: ask again at this time (ms).
    WaitUntil(i64),
}

impl Feed {
    /// A chat message; returns its uid.
    pub fn chat(&mut self, at_ms: i64, mut chat: Chat) -> u64 {
        self.next_uid += 1;
        chat.uid = Uid::Number(self.next_uid);
        self.push(at_ms, Message::Chat(chat));
        self.next_uid
    }

    /// The message `uid` is taken down; false if there is no such message.
    pub fn ignore_message(&mut self, at_ms: i64, uid: u64) -> bool {
        let known = self
            .entries
            .iter()
            .any(|(_, m)| matches!(m, Message::Chat(c) if c.uid == Uid::Number(uid)));
        if known {
            self.push(
                at_ms,
                Message::IgnoreMessage {
                    uid: Uid::Text(uid.to_string()),
                },
            );
        }
        known
    }

    pub fn ignore_user(&mut self, at_ms: i64, who: Network) {
        self.ignored.insert(who.clone());
        self.push(at_ms, Message::IgnoreUser { network: vec![who] });
    }

    pub fn unignore_user(&mut self, at_ms: i64, who: Network) {
        self.ignored.remove(&who);
        self.push(at_ms, Message::UnignoreUser { network: vec![who] });
    }

    /// The channel now lives on `host`: its readers are told to go there.
    pub fn move_to(&mut self, at_ms: i64, host: String) {
        self.push(at_ms, Message::Host { host });
    }

    fn push(&mut self, at_ms: i64, message: Message) {
        let oldest = at_ms - (KEPT_SECONDS * 1000) as i64;
        self.entries.retain(|(at, _)| *at >= oldest);
        self.entries.push((at_ms, message));
    }

    /// The first answer: the recent visible chat, the users ignored now (so
    /// a new reader hides their later messages), and any move; range `[0, now]`.
    pub fn first(&self, now_ms: i64, refresh_interval: u32) -> Answer {
        let now = seconds(now_ms);
        let before = (now * 1000) as i64;
        // Replayed in order, as a reader following since the start saw it:
        // a message of a user ignored at the time never showed.
        let mut ignored_then: HashSet<&Network> = HashSet::new();
        let mut shown: Vec<&Chat> = Vec::new();
        for (_, message) in self.entries.iter().filter(|(at, _)| *at < before) {
            match message {
                Message::Chat(c) if !c.network.iter().any(|n| ignored_then.contains(n)) => {
                    shown.push(c);
                }
                Message::IgnoreMessage { uid } => shown.retain(|c| !c.uid.same(uid)),
                Message::IgnoreUser { network } => {
                    ignored_then.extend(network);
                    shown.retain(|c| !c.network.iter().any(|n| network.contains(n)));
                }
                Message::UnignoreUser { network } => {
                    ignored_then.retain(|n| !network.contains(n));
                }
                Message::Chat(_) | Message::Host { .. } => {}
            }
        }
        let mut payload: Vec<Message> = shown
            .into_iter()
            .filter(|c| !c.network.iter().any(|n| self.ignored.contains(n)))
            .map(|c| Message::Chat(c.clone()))
            .collect();
        payload.drain(..payload.len().saturating_sub(RECENT));
        let mut ignored: Vec<&Network> = self.ignored.iter().collect();
        ignored.sort_by(|a, b| (&a.provider, &a.display_name).cmp(&(&b.provider, &b.display_name)));
        payload.extend(ignored.into_iter().map(|n| Message::IgnoreUser {
            network: vec![n.clone()],
        }));
        let moved = self
            .entries
            .iter()
            .rev()
            .find(|(at, m)| *at < before && matches!(m, Message::Host { .. }));
        payload.extend(moved.map(|(_, m)| m.clone()));
        Answer {
            success: true,
            refresh_interval,
            range: [0, now],
            payload,
        }
    }

    /// The slice `[from, from + length]` (seconds): every entry stamped in
    /// it, once it has ended.
    pub fn slice(&self, from: u64, length: u32, now_ms: i64, refresh_interval: u32) -> Slice {
        let now = seconds(now_ms);
        if from > now {
            // A reader ahead of the server: nothing yet; it asks again at its time.
            return Slice::Answer(Answer {
                success: true,
                refresh_interval,
                range: [from, from],
                payload: Vec::new(),
            });
        }
        let to = from + u64::from(length.max(1));
        let end_ms = (to * 1000) as i64;
        if end_ms > now_ms {
            return Slice::WaitUntil(end_ms);
        }
        let start_ms = (from * 1000) as i64;
        let payload = self
            .entries
            .iter()
            .filter(|(at, _)| (start_ms..end_ms).contains(at))
            .map(|(_, m)| m.clone())
            .collect();
        Slice::Answer(Answer {
            success: true,
            refresh_interval,
            range: [from, to],
            payload,
        })
    }
}

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms.max(0) / 1000).unwrap_or(0)
}

/// What a reader shows changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Shown(Chat),
    Removed(Chat),
    /// The next query goes to this server.
    Moved(String),
}

/// The client: which URL to ask next and when, and the chat window with the
/// ignore list applied.
#[derive(Debug)]
pub struct Follower {
    host: String,
    channel: String,
    /// The first answer's range end and the local time (ms) it was asked at.
    anchor: Option<(u64, i64)>,
    next: Option<(u64, u32)>,
    asked_at: i64,
    window: Vec<Chat>,
    ignored: HashSet<Network>,
}

impl Follower {
    /// `host` is `scheme://authority` of the feed; `channel` its CHANNEL_ID.
    pub fn new(host: &str, channel: &str) -> Self {
        Self {
            host: host.trim_end_matches('/').to_owned(),
            channel: channel.to_owned(),
            anchor: None,
            next: None,
            asked_at: 0,
            window: Vec::new(),
            ignored: HashSet::new(),
        }
    }

    /// Splits a feed URL (`…/socialstream/get.json/<CHANNEL_ID>/…`) into a follower.
    pub fn from_url(url: &str) -> Option<Self> {
        let (host, path) = url.split_once("/socialstream/get.json/")?;
        let channel = path.split('/').next().filter(|c| !c.is_empty())?;
        Some(Self::new(host, channel))
    }

    /// The URL to ask next and the local time (ms) to ask it at.
    pub fn next_query(&self) -> (String, i64) {
        let base = format!("{}/socialstream/get.json/{}", self.host, self.channel);
        match (self.anchor, self.next) {
            (Some((first, started)), Some((range, interval))) => {
                let due = started + (range.saturating_sub(first) * 1000) as i64;
                (format!("{base}/timeslice/{range}/{interval}"), due)
            }
            _ => (format!("{base}/default"), 0),
        }
    }

    /// Call when the query of [`Self::next_query`] is sent, with the local time.
    pub fn asking(&mut self, now_ms: i64) {
        self.asked_at = now_ms;
    }

    /// An answer arrived: the window changes it brings, in order.
    pub fn answered(&mut self, answer: &Answer) -> Vec<Change> {
        if self.anchor.is_none() {
            self.anchor = Some((answer.range[1], self.asked_at));
        }
        self.next = Some((answer.range[1], answer.refresh_interval.max(1)));
        let mut changes = Vec::new();
        for message in &answer.payload {
            match message {
                Message::Chat(chat) => {
                    let seen = self.window.iter().any(|c| c.uid.same(&chat.uid));
                    if !seen && !chat.network.iter().any(|n| self.ignored.contains(n)) {
                        self.window.push(chat.clone());
                        changes.push(Change::Shown(chat.clone()));
                    }
                }
                Message::IgnoreMessage { uid } => {
                    self.remove(&mut changes, |c| c.uid.same(uid));
                }
                Message::IgnoreUser { network } => {
                    self.ignored.extend(network.iter().cloned());
                    self.remove(&mut changes, |c| {
                        c.network.iter().any(|n| network.contains(n))
                    });
                }
                Message::UnignoreUser { network } => {
                    for n in network {
                        self.ignored.remove(n);
                    }
                }
                Message::Host { host } => {
                    let host = host.trim_end_matches('/').to_owned();
                    if host != self.host {
                        self.host.clone_from(&host);
                        changes.push(Change::Moved(host));
                    }
                }
            }
        }
        changes
    }

    fn remove(&mut self, changes: &mut Vec<Change>, gone: impl Fn(&Chat) -> bool) {
        let (removed, kept): (Vec<Chat>, Vec<Chat>) = self.window.drain(..).partition(|c| gone(c));
        self.window = kept;
        changes.extend(removed.into_iter().map(Change::Removed));
    }

    /// The chat a reader sees now, oldest first.
    pub fn window(&self) -> &[Chat] {
        &self.window
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(name: &str, text: &str) -> Chat {
        Chat {
            uid: Uid::Number(0),
            text: text.into(),
            created_at: String::new(),
            is_owner: 0,
            profile_picture_url: None,
            profile_network: PROVIDER.into(),
            profile_user_name: name.into(),
            network: vec![user(name)],
        }
    }

    fn user(name: &str) -> Network {
        Network {
            provider: PROVIDER.into(),
            display_name: name.into(),
        }
    }

    #[test]
    fn the_interval_grows_with_the_readers_waiting() {
        assert_eq!(refresh_interval(10, 0, 500), 10);
        assert_eq!(refresh_interval(10, 499, 500), 10);
        assert_eq!(refresh_interval(10, 500, 500), 20);
        assert_eq!(refresh_interval(10, 1200, 500), 30);
        assert_eq!(refresh_interval(10, 100_000, 500), 60);
        assert_eq!(refresh_interval(0, 0, 0), 1);
    }

    /// The document's example lacks the comma after `"uid":1`; it is added here.
    #[test]
    fn the_documents_example_answer_parses() {
        let text = r#"{
  "success":true,
  "refreshInterval":10,
  "range":[0,1302176480],
  "payload":[
	{
	  "uid":1,
	  "type":"msg",
	  "text":"MESSAGE_TEXT",
	  "createdAt":"UTC_TIMESTAMP",
	  "isOwner":0,
	  "profilePictureUrl":"http://static.ustream.tv/na.jpg",
	  "profileNetwork":"twitter",
	  "profileUserName":"Gyula",
	  "network":[{"provider":"twitter","displayName":"Gyula"}]
	},
	{"type": "host", "host": "http://socialstream2.ustream.tv"},
	{"type": "ignMsg", "uid": "123456"},
	{"type": "ignUser", "network": [{"provider":"twitter", "displayName":"Gyula"}]},
	{"type": "unIgnUser", "network": [{"provider":"twitter", "displayName":"Gyula"}]}
  ]
}"#;
        let answer: Answer = serde_json::from_str(text).unwrap();
        assert_eq!(answer.range, [0, 1_302_176_480]);
        assert!(
            matches!(&answer.payload[0], Message::Chat(c) if c.uid == Uid::Number(1) && c.profile_user_name == "Gyula")
        );
        assert!(
            matches!(&answer.payload[2], Message::IgnoreMessage { uid: Uid::Text(t) } if t == "123456")
        );
        let back = serde_json::to_value(&answer).unwrap();
        assert_eq!(back["payload"][0]["type"], "msg");
        assert_eq!(back["payload"][3]["type"], "ignUser");
        assert_eq!(back["refreshInterval"], 10);
    }

    #[test]
    fn the_document_schedule_is_followed_without_drift() {
        // First timestamp 1000, asked at START_TS = 50 000 ms local.
        let mut follower = Follower::new("http://a", "C");
        assert_eq!(
            follower.next_query(),
            ("http://a/socialstream/get.json/C/default".into(), 0)
        );
        follower.asking(50_000);
        follower.answered(&Answer {
            success: true,
            refresh_interval: 10,
            range: [0, 1000],
            payload: vec![],
        });
        assert_eq!(
            follower.next_query(),
            (
                "http://a/socialstream/get.json/C/timeslice/1000/10".into(),
                50_000
            )
        );
        // …then /timeslice/1100/10 answers refreshInterval 5:
        follower.asking(150_300);
        follower.answered(&Answer {
            success: true,
            refresh_interval: 5,
            range: [1100, 1110],
            payload: vec![],
        });
        // the next is /timeslice/1110/5 at START_TS + 110 s, however late this answer came.
        assert_eq!(
            follower.next_query(),
            (
                "http://a/socialstream/get.json/C/timeslice/1110/5".into(),
                160_000
            )
        );
    }

    #[test]
    fn slices_are_answered_when_complete_and_hold_every_entry_once() {
        let mut feed = Feed::default();
        feed.chat(1_000_500, chat("taro", "a"));
        feed.chat(1_004_999, chat("taro", "b"));
        feed.chat(1_005_000, chat("taro", "c"));
        assert_eq!(
            feed.slice(1000, 5, 1_003_000, 10),
            Slice::WaitUntil(1_005_000)
        );
        let Slice::Answer(first) = feed.slice(1000, 5, 1_005_000, 10) else {
            panic!()
        };
        let Slice::Answer(second) = feed.slice(1005, 5, 1_010_000, 10) else {
            panic!()
        };
        let texts = |a: &Answer| {
            a.payload
                .iter()
                .map(|m| match m {
                    Message::Chat(c) => c.text.clone(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (texts(&first), first.range),
            (vec!["a".to_owned(), "b".to_owned()], [1000, 1005])
        );
        assert_eq!(
            (texts(&second), second.range),
            (vec!["c".to_owned()], [1005, 1010])
        );
        // A reader ahead of the server's clock gets an empty answer at once.
        assert!(
            matches!(feed.slice(2000, 5, 1_010_000, 10), Slice::Answer(a) if a.range == [2000, 2000])
        );
    }

    #[test]
    fn moderation_reaches_the_readers_window_and_new_readers() {
        let mut feed = Feed::default();
        let first = feed.chat(1_000_000, chat("taro", "hello"));
        feed.chat(1_000_100, chat("yuki", "spam"));
        feed.chat(1_000_200, chat("taro", "again"));
        let mut reader = Follower::new("http://a", "C");
        reader.answered(&feed.first(1_001_000, 10));
        assert_eq!(reader.window().len(), 3);
        assert!(feed.ignore_message(1_001_500, first));
        assert!(!feed.ignore_message(1_001_500, 99), "no such message");
        feed.ignore_user(1_002_000, user("yuki"));
        feed.chat(1_003_000, chat("yuki", "more spam"));
        feed.unignore_user(1_004_000, user("yuki"));
        feed.chat(1_005_000, chat("yuki", "sorry"));
        feed.move_to(1_005_500, "http://b".into());
        let Slice::Answer(slice) = feed.slice(1001, 10, 1_011_000, 10) else {
            panic!()
        };
        let changes = reader.answered(&slice);
        let texts: Vec<&str> = reader.window().iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["again", "sorry"]);
        assert!(changes.contains(&Change::Moved("http://b".into())));
        assert!(
            reader
                .next_query()
                .0
                .starts_with("http://b/socialstream/get.json/C/timeslice/1011/10")
        );
        // A reader arriving now sees the visible chat and that the channel moved.
        let mut late = Follower::new("http://a", "C");
        late.answered(&feed.first(1_012_000, 10));
        let texts: Vec<&str> = late.window().iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["again", "sorry"]);
        assert_eq!(late.host(), "http://b");
    }
}
