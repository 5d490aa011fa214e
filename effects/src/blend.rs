//! Alpha blending of 8-bit rows, shared by the wallpaper, the gifts and the
//! face filter's sprites.

use multiversion::multiversion;

/// `row` over `under` by `alpha` (255: all `row`). Written by hand for
/// 16-bit lanes: t = fg·a + bg·(255 − a) + 128 is at most 65,153, and
/// (t + (t >> 8)) >> 8 is t / 255 rounded, exactly, without a division.
#[multiversion(targets("x86_64+avx2"))]
pub fn blend_row(row: &mut [u8], under: &[u8], alpha: &[u8]) {
    for ((pixel, &bg), &a) in row.iter_mut().zip(under).zip(alpha) {
        let (a, fg, bg) = (u16::from(a), u16::from(*pixel), u16::from(bg));
        let t = fg * a + bg * (255 - a) + 128;
        *pixel = ((t + (t >> 8)) >> 8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blending_rounds_exactly_like_the_division() {
        for a in 0..=255u8 {
            let fg: Vec<u8> = (0..=255).collect();
            let bg: Vec<u8> = (0..=255).rev().collect();
            let mut row = fg.clone();
            blend_row(&mut row, &bg, &vec![a; 256]);
            for ((out, f), b) in row.iter().zip(&fg).zip(&bg) {
                let exact =
                    (f64::from(*f) * f64::from(a) + f64::from(*b) * f64::from(255 - a)) / 255.0;
                assert_eq!(f64::from(*out), exact.round(), "fg {f} bg {b} alpha {a}");
            }
        }
    }
}
