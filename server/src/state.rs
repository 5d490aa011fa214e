//! What every handler shares.

use std::sync::Arc;

use crate::calls::Calls;
use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::outbox::Outbox;
use crate::partner::PartnerClient;
use crate::store::Store;

pub struct Ctx {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub calls: Calls,
    pub outbox: Outbox,
    pub partner: PartnerClient,
    pub clock: Clock,
}
