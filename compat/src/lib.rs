//! The three specifications Nexmile offers compatible surfaces for, as Rust
//! types and pure logic: the ImageFlux Live Streaming API, the Ustream social
//! stream and the SkyWay Channel API. The server carries them out over its
//! own rooms; `nexmile-cli` follows social streams. No I/O here.

pub mod imageflux;
pub mod skyway;
pub mod socialstream;
