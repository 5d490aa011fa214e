//! What the areas share below them: the configuration, the store, the
//! signalling hub, the partner's outbox and client, the clock and the rate
//! limits. Calls' and lives' tasks hold it; handlers take it or a part of it.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::partner::PartnerClient;
use crate::partner::outbox::Outbox;
use crate::store::Store;

pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub outbox: Outbox,
    pub partner: PartnerClient,
    pub clock: Clock,
    /// Rates per address and device (activation, calls, video tests).
    pub limits: Limits,
    /// Where calls', lives' and tests' media rooms listen.
    pub media: nexmile_sfu::MediaNetwork,
}
