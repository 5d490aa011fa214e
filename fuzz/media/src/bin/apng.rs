//! Gift animations (APNG) from a site's effect files, decoded by every
//! broadcaster's app: the decoder's size caps hold for any bytes.
use nexmile_effects::animation::Animation;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(animation) = Animation::decode(data) {
            assert!(!animation.frames().is_empty());
        }
    });
}
