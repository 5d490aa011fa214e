//! SkyWay Channel API JSON-RPC requests: single calls and batches.
use nexmile_compat::skyway::Body;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let body = Body::parse(data);
        let _ = body.first_id();
        let _ = format!("{body:?}");
    });
}
