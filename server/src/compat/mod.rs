//! The surfaces that copy other services' APIs, in their shapes: ImageFlux
//! (schedules, users, WHIP ingest), SkyWay's Channel API and the Ustream
//! social stream.

pub(crate) mod imageflux;
pub(crate) mod skyway;
pub(crate) mod socialstream;
