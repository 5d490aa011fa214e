//! RTP sequence numbers (16 bits, wrapping) extended to 64 bits.

/// `seq` as a 64-bit number next to `highest`, the largest seen so far: the
/// candidate one wrap below, at, or above it that is closest. The first
/// number seen starts one wrap up, so a slightly older packet stays positive.
pub fn extend(highest: Option<u64>, seq: u16) -> u64 {
    let Some(highest) = highest else {
        return u64::from(seq) + (1 << 16);
    };
    let base = highest & !0xFFFF;
    [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
        .into_iter()
        .map(|c| c.wrapping_add(u64::from(seq)))
        .min_by_key(|c| c.abs_diff(highest))
        .expect("three candidates")
}

#[cfg(test)]
mod tests {
    use super::extend;

    #[test]
    fn wraps_forward_and_back() {
        let first = extend(None, 65_535);
        assert_eq!(first, 65_535 + 65_536);
        assert_eq!(extend(Some(first), 0), first + 1, "forward over the wrap");
        assert_eq!(
            extend(Some(first + 1), 65_534),
            first - 1,
            "a late packet from before it"
        );
        assert_eq!(extend(Some(first), 100), first + 101);
    }
}
