//! Every live's and scheduled channel's comments as a social stream feed
//! (the Ustream shape of `nexmile_compat::socialstream`): lives and the
//! ImageFlux chat write to it, the `/socialstream/…` routes read it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use nexmile_compat::socialstream::{Chat, Feed, Network, PROVIDER, Uid, refresh_interval};
use nexmile_core::datetime::{UTC, WireDateTime};

use crate::clock::Clock;
use crate::config::SocialStreamSection;

/// How long a feed stays readable after its live ended (ms): readers
/// behind by a few slices still get the last comments.
const KEPT_AFTER_END_MS: i64 = 10 * 60 * 1000;

struct Channel {
    feed: Feed,
    ended_at: Option<i64>,
}

/// Every live's feed, by channel id.
pub struct SocialStreams {
    pub clock: Clock,
    section: SocialStreamSection,
    channels: Mutex<HashMap<String, Channel>>,
    /// Readers whose request is held now: the load that slows everyone.
    pub waiting: AtomicU32,
}

/// What a live tells its feed.
pub struct Comment<'a> {
    pub name: &'a str,
    pub text: &'a str,
    pub from_broadcaster: bool,
    pub image: Option<&'a str>,
}

impl SocialStreams {
    pub fn new(clock: Clock, section: SocialStreamSection) -> Self {
        Self {
            clock,
            section,
            channels: Mutex::default(),
            waiting: AtomicU32::new(0),
        }
    }

    pub fn open(&self, channel: &str) {
        self.channels.lock().expect("social lock").insert(
            channel.to_owned(),
            Channel {
                feed: Feed::default(),
                ended_at: None,
            },
        );
    }

    /// A scheduled channel's feed opens with its first chat message.
    pub fn open_if_missing(&self, channel: &str) {
        self.channels
            .lock()
            .expect("social lock")
            .entry(channel.to_owned())
            .or_insert_with(|| Channel {
                feed: Feed::default(),
                ended_at: None,
            });
    }

    pub fn close(&self, channel: &str, now_ms: i64) {
        let mut channels = self.channels.lock().expect("social lock");
        if let Some(open) = channels.get_mut(channel) {
            open.ended_at = Some(now_ms);
        }
        channels.retain(|_, c| c.ended_at.is_none_or(|at| now_ms - at < KEPT_AFTER_END_MS));
    }

    pub fn comment(&self, channel: &str, now_ms: i64, comment: &Comment<'_>) {
        let created_at =
            WireDateTime::from_unix_millis(nexmile_core::clock::UnixMillis(now_ms), UTC)
                .imageflux_listing()
                + "Z";
        let chat = Chat {
            uid: Uid::Number(0),
            text: comment.text.to_owned(),
            created_at,
            is_owner: u8::from(comment.from_broadcaster),
            profile_picture_url: comment.image.map(str::to_owned),
            profile_network: PROVIDER.into(),
            profile_user_name: comment.name.to_owned(),
            network: vec![person(comment.name)],
        };
        self.with(channel, |feed| {
            feed.chat(now_ms, chat);
        });
    }

    pub fn with<T>(&self, channel: &str, act: impl FnOnce(&mut Feed) -> T) -> Option<T> {
        self.channels
            .lock()
            .expect("social lock")
            .get_mut(channel)
            .map(|c| act(&mut c.feed))
    }
}

pub(crate) fn person(name: &str) -> Network {
    Network {
        provider: PROVIDER.into(),
        display_name: name.to_owned(),
    }
}

impl SocialStreams {
    /// The interval answered now: one more step per `readers_per_step` held.
    pub fn refresh_interval(&self) -> u32 {
        let section = &self.section;
        let waiting = self.waiting.load(Ordering::Relaxed);
        refresh_interval(section.refresh_interval, waiting, section.readers_per_step)
    }
}
