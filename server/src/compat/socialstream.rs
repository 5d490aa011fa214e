//! The social stream surface (`/socialstream/get.json/<CHANNEL_ID>/…`): a
//! live's comments as the Ustream feed, read by polling, for sites that
//! allow it. The channel id is the liveToken. A request for a slice still
//! running is held until the slice ends (see `nexmile_compat::socialstream`);
//! the number of readers held at once sets the refreshInterval answered.
//! Moderators act through `/admin/socialstream/…`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nexmile_compat::socialstream::{Answer, Feed, Slice};
use serde::Deserialize;
use serde_json::json;

use crate::social_feeds::{SocialStreams, person};

fn feed_json(answer: &Answer) -> Response {
    let mut reply = Json(answer).into_response();
    // A public feed, read from any page.
    reply.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    reply
}

/// At most this many timeslice requests are held at once (each holds a
/// connection up to 300 s); more are told to come back (M10).
const HELD_READERS_CAP: u32 = 10_000;

/// One held timeslice request, counted while it waits; a reader that goes
/// away mid-wait (the future is dropped) is uncounted too.
struct HeldReader<'a>(&'a AtomicU32);

impl<'a> HeldReader<'a> {
    fn take(waiting: &'a AtomicU32) -> Option<Self> {
        waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < HELD_READERS_CAP).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(waiting))
    }
}

impl Drop for HeldReader<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "success": false, "error": message }))).into_response()
}

fn no_channel() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "No such channel: it is not live, or its site does not publish comments.",
    )
}

/// `GET /socialstream/get.json/{channel}/default`
pub(crate) async fn first(
    State(social): State<Arc<SocialStreams>>,
    Path(channel): Path<String>,
) -> Response {
    let now = social.clock.now().0;
    let interval = social.refresh_interval();
    match social.with(&channel, |feed| feed.first(now, interval)) {
        Some(answer) => feed_json(&answer),
        None => no_channel(),
    }
}

/// `GET /socialstream/get.json/{channel}/timeslice/{range}/{refresh_interval}`
pub(crate) async fn timeslice(
    State(social): State<Arc<SocialStreams>>,
    Path((channel, range, length)): Path<(String, String, String)>,
) -> Response {
    let (Ok(from), Ok(length)) = (range.parse::<u64>(), length.parse::<u32>()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "RANGE and REFRESH_INTERVAL are whole numbers: /timeslice/<previous range end>/<refreshInterval>.",
        );
    };
    if !(1..=300).contains(&length) {
        return refused(
            StatusCode::BAD_REQUEST,
            "REFRESH_INTERVAL is the refreshInterval answered before: 1 to 300 seconds.",
        );
    }
    loop {
        let now = social.clock.now().0;
        let interval = social.refresh_interval();
        let Some(slice) = social.with(&channel, |feed| feed.slice(from, length, now, interval))
        else {
            return no_channel();
        };
        match slice {
            Slice::Answer(answer) => return feed_json(&answer),
            Slice::WaitUntil(at) => {
                let Some(_held) = HeldReader::take(&social.waiting) else {
                    return refused(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Too many readers are waiting: ask again after refreshInterval.",
                    );
                };
                let wait = Duration::from_millis(u64::try_from(at - now).unwrap_or(0));
                tokio::time::sleep(social.clock.real(wait)).await;
            }
        }
    }
}

/// A moderator's word on a user: the display name the feed shows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Who {
    display_name: String,
}

#[derive(Deserialize)]
pub(crate) struct NewHost {
    host: String,
}

/// `POST /admin/socialstream/{channel}/messages/{uid}/ignore`: ignMsg.
pub(crate) async fn ignore_message(
    State(social): State<Arc<SocialStreams>>,
    Path((channel, uid)): Path<(String, u64)>,
) -> Response {
    moderate(&social, &channel, |feed, now| feed.ignore_message(now, uid))
}

/// `POST /admin/socialstream/{channel}/users/ignore`: ignUser.
pub(crate) async fn ignore_user(
    State(social): State<Arc<SocialStreams>>,
    Path(channel): Path<String>,
    who: Result<Json<Who>, JsonRejection>,
) -> Response {
    let who = match json_body(who) {
        Ok(who) => who,
        Err(refusal) => return *refusal,
    };
    moderate(&social, &channel, |feed, now| {
        feed.ignore_user(now, person(&who.display_name));
        true
    })
}

/// `POST /admin/socialstream/{channel}/users/unignore`: unIgnUser.
pub(crate) async fn unignore_user(
    State(social): State<Arc<SocialStreams>>,
    Path(channel): Path<String>,
    who: Result<Json<Who>, JsonRejection>,
) -> Response {
    let who = match json_body(who) {
        Ok(who) => who,
        Err(refusal) => return *refusal,
    };
    moderate(&social, &channel, |feed, now| {
        feed.unignore_user(now, person(&who.display_name));
        true
    })
}

/// `POST /admin/socialstream/{channel}/host`: the channel moved; readers follow.
pub(crate) async fn move_host(
    State(social): State<Arc<SocialStreams>>,
    Path(channel): Path<String>,
    to: Result<Json<NewHost>, JsonRejection>,
) -> Response {
    let to = match json_body(to) {
        Ok(to) => to,
        Err(refusal) => return *refusal,
    };
    if reqwest::Url::parse(&to.host).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        return refused(
            StatusCode::BAD_REQUEST,
            "host is the new server's http(s) URL, like http://socialstream2.example.jp",
        );
    }
    moderate(&social, &channel, |feed, now| {
        feed.move_to(now, to.host.clone());
        true
    })
}

/// A moderation request's body, or the feed's own refusal. Read only once
/// the administrator is known (the admin routes' layer runs first): a
/// stranger learns nothing of what the body should look like.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    body.map(|Json(body)| body)
        .map_err(|rejection| Box::new(refused(rejection.status(), &rejection.body_text())))
}

fn moderate(
    social: &SocialStreams,
    channel: &str,
    act: impl FnOnce(&mut Feed, i64) -> bool,
) -> Response {
    let now = social.clock.now().0;
    match social.with(channel, |feed| act(feed, now)) {
        Some(true) => Json(json!({ "success": true })).into_response(),
        Some(false) => refused(StatusCode::NOT_FOUND, "No such message in this channel."),
        None => no_channel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_readers_are_capped_and_a_reader_that_leaves_is_uncounted() {
        let waiting = AtomicU32::new(HELD_READERS_CAP - 1);
        let last = HeldReader::take(&waiting).expect("one more fits");
        assert!(HeldReader::take(&waiting).is_none(), "the cap holds");
        drop(last);
        assert_eq!(waiting.load(Ordering::Relaxed), HELD_READERS_CAP - 1);
        // A request dropped while it waits (the reader hung up) gives its place back.
        let mut held = Box::pin(async {
            let _held = HeldReader::take(&waiting);
            std::future::pending::<()>().await;
        });
        assert!(futures_util::FutureExt::now_or_never(held.as_mut()).is_none());
        assert_eq!(waiting.load(Ordering::Relaxed), HELD_READERS_CAP);
        drop(held);
        assert_eq!(waiting.load(Ordering::Relaxed), HELD_READERS_CAP - 1);
    }
}
