//! SkyWay Channel API (`skyway-channel-api.ja.txt`): JSON-RPC 2.0 over one
//! POST endpoint with `findChannel`, `createChannel` and
//! `findOrCreateChannel`. A call or live running on the server is a channel;
//! [`Room`] is what the server knows of it and [`Room::channel`] its SkyWay
//! picture: one member per participant plus the SFU as a bot member, the
//! participants' publications, the SFU's forwarded copies of them, and one
//! subscription per receiver and forwarded copy.

use jsonrpsee_types::{
    ErrorCode, InvalidRequest, Notification, Request, Response, ResponsePayload,
};
pub use jsonrpsee_types::{ErrorObjectOwned, Id};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// What a publication carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContentType {
    Audio,
    Video,
    Data,
}

impl ContentType {
    fn key(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Data => "data",
        }
    }
}

/// A channel as `createChannel` answers it: no members yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// A channel as `findChannel` and `findOrCreateChannel` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    #[serde(flatten)]
    pub summary: ChannelSummary,
    pub members: Vec<Member>,
    pub publications: Vec<Publication>,
    pub subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `person` or `bot`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `SFU` for the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publication {
    pub id: String,
    pub publisher_id: String,
    pub content_type: ContentType,
    pub is_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_publisher_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// `P2P` or `SFU`; every Nexmile publication goes through the SFU.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub publication_id: String,
    pub subscriber_id: String,
}

/// A call or live as the server sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The call's or live's token (a UUID v4).
    pub id: String,
    pub name: String,
    pub participants: Vec<Participant>,
}

/// One person in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The user's ID at the site.
    pub name: String,
    /// What this participant's media connection carries to the server now.
    pub publishes: Vec<ContentType>,
    /// The participants (indices into [`Room::participants`]) whose media the
    /// SFU forwards to this one now.
    pub receives_from: Vec<usize>,
}

impl Room {
    /// The room's SFU picture. Ids are name-based UUIDs under the room's id,
    /// so asking twice gives the same ids.
    pub fn channel(&self) -> Channel {
        let room = Uuid::parse_str(&self.id)
            .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_URL, self.id.as_bytes()));
        let id_of = |what: &str| Uuid::new_v5(&room, what.as_bytes()).to_string();
        // Member names are unique in a channel: a user on two devices is `name#2`.
        let mut names: Vec<String> = Vec::new();
        for p in &self.participants {
            let taken = names
                .iter()
                .filter(|n| n.split('#').next() == Some(&p.name))
                .count();
            names.push(match taken {
                0 => p.name.clone(),
                n => format!("{}#{}", p.name, n + 1),
            });
        }
        let member_id = |name: &str| id_of(&format!("member/{name}"));
        let mut members: Vec<Member> = names
            .iter()
            .map(|name| Member {
                id: member_id(name),
                name: Some(name.clone()),
                kind: "person".into(),
                subtype: None,
                metadata: None,
            })
            .collect();
        let sfu = id_of("sfu");
        let mut publications = Vec::new();
        let mut subscriptions = Vec::new();
        for (index, (p, name)) in self.participants.iter().zip(&names).enumerate() {
            for content in &p.publishes {
                let origin = Publication {
                    id: id_of(&format!("publication/{name}/{}", content.key())),
                    publisher_id: member_id(name),
                    content_type: *content,
                    is_enabled: true,
                    origin_id: None,
                    origin_publisher_id: None,
                    metadata: None,
                    kind: "SFU".into(),
                };
                let forwarded = Publication {
                    id: id_of(&format!("forwarded/{name}/{}", content.key())),
                    publisher_id: sfu.clone(),
                    origin_id: Some(origin.id.clone()),
                    origin_publisher_id: Some(origin.publisher_id.clone()),
                    ..origin.clone()
                };
                for (receiver, receiver_name) in self.participants.iter().zip(&names) {
                    if receiver.receives_from.contains(&index) {
                        subscriptions.push(Subscription {
                            id: id_of(&format!(
                                "subscription/{receiver_name}/{name}/{}",
                                content.key()
                            )),
                            publication_id: forwarded.id.clone(),
                            subscriber_id: member_id(receiver_name),
                        });
                    }
                }
                publications.push(origin);
                publications.push(forwarded);
            }
        }
        if !publications.is_empty() {
            members.push(Member {
                id: sfu,
                name: None,
                kind: "bot".into(),
                subtype: Some("SFU".into()),
                metadata: None,
            });
        }
        Channel {
            summary: ChannelSummary {
                id: self.id.clone(),
                name: Some(self.name.clone()),
                metadata: None,
            },
            members,
            publications,
            subscriptions,
        }
    }
}

/// A method call with its parameters checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `id` wins over `name` when both are given.
    Find(ChannelKey),
    Create {
        name: Option<String>,
        metadata: Option<String>,
    },
    FindOrCreate {
        name: String,
        metadata: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKey {
    Id(String),
    Name(String),
}

#[derive(Deserialize)]
struct ChannelParams {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    metadata: Option<String>,
}

impl Method {
    fn parse(method: &str, params: Option<&RawValue>) -> Result<Self, ErrorObjectOwned> {
        let params = || -> Result<ChannelParams, ErrorObjectOwned> {
            let raw = params.ok_or_else(|| invalid_params("params is required"))?;
            serde_json::from_str(raw.get()).map_err(|e| invalid_params(&e.to_string()))
        };
        match method {
            "findChannel" => {
                let p = params()?;
                match (p.id, p.name) {
                    (Some(id), _) => {
                        Uuid::parse_str(&id)
                            .map_err(|_| invalid_params("params.id must be a UUID"))?;
                        Ok(Self::Find(ChannelKey::Id(id)))
                    }
                    (None, Some(name)) => Ok(Self::Find(ChannelKey::Name(name))),
                    (None, None) => Err(invalid_params("params.id or params.name is required")),
                }
            }
            "createChannel" => {
                let p = params()?;
                if p.id.is_some() {
                    return Err(invalid_params("params.id cannot be given"));
                }
                Ok(Self::Create {
                    name: p.name,
                    metadata: p.metadata,
                })
            }
            "findOrCreateChannel" => {
                let p = params()?;
                if p.id.is_some() {
                    return Err(invalid_params("params.id cannot be given"));
                }
                let name = p
                    .name
                    .ok_or_else(|| invalid_params("params.name is required"))?;
                Ok(Self::FindOrCreate {
                    name,
                    metadata: p.metadata,
                })
            }
            other => Err(ErrorObjectOwned::owned(
                ErrorCode::MethodNotFound.code(),
                format!("Method '{other}' not found"),
                None::<()>,
            )),
        }
    }
}

fn invalid_params(detail: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        ErrorCode::InvalidParams.code(),
        format!("Invalid params: {detail}"),
        None::<()>,
    )
}

/// The errors SkyWay defines beside JSON-RPC's own.
pub fn unauthorized() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(401, "Verify admin token failed", None::<()>)
}

pub fn not_found(key: &ChannelKey) -> ErrorObjectOwned {
    let message = match key {
        ChannelKey::Id(id) => format!("Channel '{id}' not found"),
        ChannelKey::Name(name) => format!("Channel with name '{name}' not found"),
    };
    ErrorObjectOwned::owned(404, message, None::<()>)
}

pub fn already_exists(name: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        409,
        format!("Channel with name '{name}' already exists"),
        None::<()>,
    )
}

pub fn usage_limit_exceeded() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(429, "Project usage limit has been exceeded", None::<()>)
}

pub fn internal_error(detail: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        ErrorCode::InternalError.code(),
        detail.to_owned(),
        None::<()>,
    )
}

/// One element of a request body.
#[derive(Debug)]
pub enum Call {
    /// A call to answer under `id`.
    Request {
        id: Id<'static>,
        method: Result<Method, ErrorObjectOwned>,
    },
    /// A call without an id: carried out, never answered.
    Notification {
        method: Result<Method, ErrorObjectOwned>,
    },
    /// Not a request object at all: answered with −32600.
    Invalid { id: Id<'static> },
}

impl Call {
    fn parse(raw: &RawValue) -> Self {
        if let Ok(request) = serde_json::from_str::<Request<'_>>(raw.get()) {
            let method = Method::parse(&request.method, request.params.as_deref());
            return Self::Request {
                id: request.id.into_owned(),
                method,
            };
        }
        if let Ok(notification) =
            serde_json::from_str::<Notification<'_, Option<&RawValue>>>(raw.get())
        {
            return Self::Notification {
                method: Method::parse(&notification.method, notification.params),
            };
        }
        let id = serde_json::from_str::<InvalidRequest<'_>>(raw.get())
            .map(|r| r.id.into_owned())
            .unwrap_or(Id::Null);
        Self::Invalid { id }
    }
}

/// A request body: one call, a batch, or something that is not a request.
#[derive(Debug)]
pub enum Body {
    Single(Call),
    Batch(Vec<Call>),
    /// Unparseable JSON (−32700) or an empty batch (−32600): the whole answer.
    Refused(ErrorObjectOwned),
}

impl Body {
    pub fn parse(bytes: &[u8]) -> Self {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Self::Refused(parse_error());
        };
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(items) if items.is_empty() => Self::Refused(invalid_request()),
                Ok(items) => Self::Batch(items.into_iter().map(Call::parse).collect()),
                Err(_) => Self::Refused(parse_error()),
            }
        } else {
            match serde_json::from_str::<&RawValue>(text) {
                Ok(raw) => Self::Single(Call::parse(raw)),
                Err(_) => Self::Refused(parse_error()),
            }
        }
    }

    /// The id to answer an authorisation failure with: a single call's own.
    pub fn first_id(&self) -> Id<'static> {
        match self {
            Self::Single(Call::Request { id, .. } | Call::Invalid { id }) => id.clone(),
            _ => Id::Null,
        }
    }
}

fn parse_error() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(ErrorCode::ParseError.code(), "Parse error", None::<()>)
}

pub fn invalid_request() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        ErrorCode::InvalidRequest.code(),
        "Invalid Request",
        None::<()>,
    )
}

/// What a channel method answers: `{"channel": …}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Found { channel: Channel },
    Created { channel: ChannelSummary },
}

/// One response object as JSON.
pub fn response(id: Id<'static>, outcome: Result<Answer, ErrorObjectOwned>) -> serde_json::Value {
    let payload = match outcome {
        Ok(answer) => ResponsePayload::success(answer),
        Err(error) => ResponsePayload::error(error),
    };
    serde_json::to_value(Response::new(payload, id)).unwrap_or_default()
}

/// A name chosen by a client never collides with the rooms' names, which
/// use this prefix.
pub fn is_room_name(name: &str) -> bool {
    name.starts_with(ROOM_NAME_PREFIX)
}

pub const ROOM_NAME_PREFIX: &str = "nexmile:";

/// The channel name of a running call or live.
pub fn room_name(site: &str, kind: &str, key: &str) -> String {
    format!("{ROOM_NAME_PREFIX}{site}:{kind}:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(body: &str) -> Call {
        match Body::parse(body.as_bytes()) {
            Body::Single(call) => call,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_documents_requests_parse_and_id_wins_over_name() {
        let find = r#"{ "jsonrpc": "2.0", "id": 0, "method": "findChannel", "params": { "id": "7e19cb20-fc79-4d2f-bf29-d498ff76299a" } }"#;
        assert!(
            matches!(parse_one(find), Call::Request { id: Id::Number(0), method: Ok(Method::Find(ChannelKey::Id(id))) } if id == "7e19cb20-fc79-4d2f-bf29-d498ff76299a")
        );
        let both = r#"{"jsonrpc":"2.0","id":"a","method":"findChannel","params":{"name":"x","id":"7e19cb20-fc79-4d2f-bf29-d498ff76299a"}}"#;
        assert!(matches!(
            parse_one(both),
            Call::Request {
                method: Ok(Method::Find(ChannelKey::Id(_))),
                ..
            }
        ));
        let create = r#"{ "jsonrpc": "2.0", "id": 0, "method": "createChannel", "params": { "name": "sample-channel" } }"#;
        assert!(matches!(
            parse_one(create),
            Call::Request {
                method: Ok(Method::Create {
                    name: Some(_),
                    metadata: None
                }),
                ..
            }
        ));
    }

    #[test]
    fn standard_errors_have_their_codes() {
        let code = |body: &str| match Body::parse(body.as_bytes()) {
            Body::Refused(e) => e.code(),
            Body::Single(Call::Invalid { .. }) => -32600,
            Body::Single(Call::Request { method: Err(e), .. }) => e.code(),
            other => panic!("{other:?}"),
        };
        assert_eq!(code("{not json"), -32700);
        assert_eq!(code("[]"), -32600);
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":1,"method":"findChannel"}"#),
            -32600
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"deleteChannel","params":{}}"#),
            -32601
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"findChannel","params":{}}"#),
            -32602
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"findChannel","params":{"id":"nope"}}"#),
            -32602
        );
        assert_eq!(
            code(
                r#"{"jsonrpc":"2.0","id":1,"method":"findOrCreateChannel","params":{"metadata":"m"}}"#
            ),
            -32602
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"createChannel","params":{"name":3}}"#),
            -32602
        );
    }

    #[test]
    fn a_batch_keeps_its_order_and_notifications_are_marked() {
        let body = r#"[{"jsonrpc":"2.0","id":1,"method":"createChannel","params":{}},
                       {"jsonrpc":"2.0","method":"createChannel","params":{"name":"n"}},
                       42]"#;
        let Body::Batch(calls) = Body::parse(body.as_bytes()) else {
            panic!()
        };
        assert!(matches!(
            calls[0],
            Call::Request {
                id: Id::Number(1),
                ..
            }
        ));
        assert!(matches!(calls[1], Call::Notification { method: Ok(_) }));
        assert!(matches!(calls[2], Call::Invalid { id: Id::Null }));
    }

    #[test]
    fn a_live_is_a_channel_with_the_sfu_forwarding_to_each_viewer() {
        let room = Room {
            id: "7e19cb20-fc79-4d2f-bf29-d498ff76299a".into(),
            name: "nexmile:demo:live:L1".into(),
            participants: vec![
                Participant {
                    name: "hanako".into(),
                    publishes: vec![ContentType::Audio, ContentType::Video],
                    receives_from: vec![],
                },
                Participant {
                    name: "taro".into(),
                    publishes: vec![],
                    receives_from: vec![0],
                },
                Participant {
                    name: "taro".into(),
                    publishes: vec![],
                    receives_from: vec![],
                },
            ],
        };
        let channel = room.channel();
        assert_eq!(channel, room.channel(), "ids are stable");
        let names: Vec<_> = channel.members.iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            names,
            [
                Some("hanako".into()),
                Some("taro".into()),
                Some("taro#2".into()),
                None
            ]
        );
        assert_eq!(channel.members[3].subtype.as_deref(), Some("SFU"));
        assert_eq!(channel.publications.len(), 4);
        let forwarded: Vec<_> = channel
            .publications
            .iter()
            .filter(|p| p.origin_id.is_some())
            .collect();
        assert!(
            forwarded
                .iter()
                .all(|p| p.publisher_id == channel.members[3].id)
        );
        assert_eq!(channel.subscriptions.len(), 2);
        assert!(
            channel
                .subscriptions
                .iter()
                .all(|s| s.subscriber_id == channel.members[1].id
                    && forwarded.iter().any(|p| p.id == s.publication_id))
        );
        let json = serde_json::to_value(&channel).unwrap();
        assert_eq!(json["publications"][0]["contentType"], "AUDIO");
        assert_eq!(json["publications"][0]["type"], "SFU");
        assert_eq!(json["members"][3]["type"], "bot");
        assert!(json["members"][3].get("name").is_none());
    }

    #[test]
    fn responses_echo_the_id_and_carry_the_documented_messages() {
        let answer = response(
            Id::Number(0),
            Err(not_found(&ChannelKey::Name("sample-channel".into()))),
        );
        assert_eq!(
            answer,
            serde_json::json!({"jsonrpc":"2.0","id":0,"error":{"code":404,"message":"Channel with name 'sample-channel' not found"}})
        );
        let created = response(
            Id::Str("x".into()),
            Ok(Answer::Created {
                channel: ChannelSummary {
                    id: "7e19cb20-fc79-4d2f-bf29-d498ff76299a".into(),
                    name: Some("sample-channel".into()),
                    metadata: None,
                },
            }),
        );
        assert_eq!(
            created,
            serde_json::json!({"jsonrpc":"2.0","id":"x","result":{"channel":{"id":"7e19cb20-fc79-4d2f-bf29-d498ff76299a","name":"sample-channel"}}})
        );
    }
}
