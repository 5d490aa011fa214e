//! What every handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use crate::calls::Calls;
use crate::clock::Clock;
use crate::config::Config;
use crate::effects::SiteEffects;
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::partner::PartnerClient;
use crate::store::Store;

pub struct Ctx {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub calls: Calls,
    pub lives: crate::lives::Lives,
    /// The lives' comments as social stream feeds.
    pub social: crate::socialstream::SocialStreams,
    /// Scheduled channels' HLS output, and the channels on air.
    pub hls: crate::hls::HlsChannels,
    pub channels: crate::channels::Channels,
    pub outbox: Outbox,
    pub partner: PartnerClient,
    pub clock: Clock,
    /// UpdateUserBalance requests are answered one at a time (idempotency by sid).
    pub balance_updates: tokio::sync::Mutex<()>,
    /// How ImageFlux access codes are hashed.
    pub access_codes: crate::imageflux::AccessCodes,
    /// Rates per address and device (activation, calls, video tests).
    pub limits: crate::limits::Limits,
    /// Effect files by site code.
    pub effects: HashMap<String, SiteEffects>,
    /// The video tests running, one per connection.
    pub video_tests: std::sync::Mutex<HashMap<crate::hub::ConnId, nexmile_sfu::Room>>,
    /// WHIP/WHEP sessions by resource id: their hub connection and live.
    pub media_sessions: std::sync::Mutex<HashMap<String, (crate::hub::ConnId, String)>>,
}
