//! Safe wrappers over four libyuv functions (Debian's libyuv-dev), used only
//! as the reference beside which `nexmile-media`'s benchmarks report their
//! conversion and scaling figures. No crates.io binding links the system
//! libyuv without downloading a prebuilt archive, hence this FFI.

use std::os::raw::c_int;

unsafe extern "C" {
    fn I420ToABGR(
        src_y: *const u8,
        src_stride_y: c_int,
        src_u: *const u8,
        src_stride_u: c_int,
        src_v: *const u8,
        src_stride_v: c_int,
        dst_abgr: *mut u8,
        dst_stride_abgr: c_int,
        width: c_int,
        height: c_int,
    ) -> c_int;
    fn ABGRToI420(
        src_abgr: *const u8,
        src_stride_abgr: c_int,
        dst_y: *mut u8,
        dst_stride_y: c_int,
        dst_u: *mut u8,
        dst_stride_u: c_int,
        dst_v: *mut u8,
        dst_stride_v: c_int,
        width: c_int,
        height: c_int,
    ) -> c_int;
    fn I420Scale(
        src_y: *const u8,
        src_stride_y: c_int,
        src_u: *const u8,
        src_stride_u: c_int,
        src_v: *const u8,
        src_stride_v: c_int,
        src_width: c_int,
        src_height: c_int,
        dst_y: *mut u8,
        dst_stride_y: c_int,
        dst_u: *mut u8,
        dst_stride_u: c_int,
        dst_v: *mut u8,
        dst_stride_v: c_int,
        dst_width: c_int,
        dst_height: c_int,
        filtering: c_int,
    ) -> c_int;
}

/// libyuv's kFilterBilinear.
const FILTER_BILINEAR: c_int = 2;

/// Tightly packed I420 planes of a `width × height` picture (even sides).
pub struct I420<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// Mutable tightly packed I420 planes.
pub struct I420Mut<'a> {
    pub y: &'a mut [u8],
    pub u: &'a mut [u8],
    pub v: &'a mut [u8],
    pub width: usize,
    pub height: usize,
}

fn check(y: usize, u: usize, v: usize, width: usize, height: usize) {
    assert!(
        width.is_multiple_of(2) && height.is_multiple_of(2),
        "even sides"
    );
    assert!(
        y >= width * height && u >= width * height / 4 && v >= width * height / 4,
        "plane sizes"
    );
}

fn int(n: usize) -> c_int {
    c_int::try_from(n).expect("fits in int")
}

/// I420 → RGBA bytes (libyuv's "ABGR"), BT.601 limited range.
pub fn i420_to_rgba(src: &I420, rgba: &mut [u8]) {
    check(src.y.len(), src.u.len(), src.v.len(), src.width, src.height);
    assert!(rgba.len() >= src.width * src.height * 4);
    let (w, h, cw) = (int(src.width), int(src.height), int(src.width / 2));
    // SAFETY: every buffer was checked to hold the picture at the strides passed.
    let rc = unsafe {
        I420ToABGR(
            src.y.as_ptr(),
            w,
            src.u.as_ptr(),
            cw,
            src.v.as_ptr(),
            cw,
            rgba.as_mut_ptr(),
            w * 4,
            w,
            h,
        )
    };
    assert_eq!(rc, 0, "I420ToABGR");
}

/// RGBA bytes → I420, BT.601 limited range.
pub fn rgba_to_i420(rgba: &[u8], dst: &mut I420Mut) {
    check(dst.y.len(), dst.u.len(), dst.v.len(), dst.width, dst.height);
    assert!(rgba.len() >= dst.width * dst.height * 4);
    let (w, h, cw) = (int(dst.width), int(dst.height), int(dst.width / 2));
    // SAFETY: as above.
    let rc = unsafe {
        ABGRToI420(
            rgba.as_ptr(),
            w * 4,
            dst.y.as_mut_ptr(),
            w,
            dst.u.as_mut_ptr(),
            cw,
            dst.v.as_mut_ptr(),
            cw,
            w,
            h,
        )
    };
    assert_eq!(rc, 0, "ABGRToI420");
}

/// Bilinear I420 scaling.
pub fn i420_scale(src: &I420, dst: &mut I420Mut) {
    check(src.y.len(), src.u.len(), src.v.len(), src.width, src.height);
    check(dst.y.len(), dst.u.len(), dst.v.len(), dst.width, dst.height);
    // SAFETY: as above.
    let rc = unsafe {
        I420Scale(
            src.y.as_ptr(),
            int(src.width),
            src.u.as_ptr(),
            int(src.width / 2),
            src.v.as_ptr(),
            int(src.width / 2),
            int(src.width),
            int(src.height),
            dst.y.as_mut_ptr(),
            int(dst.width),
            dst.u.as_mut_ptr(),
            int(dst.width / 2),
            dst.v.as_mut_ptr(),
            int(dst.width / 2),
            int(dst.width),
            int(dst.height),
            FILTER_BILINEAR,
        )
    };
    assert_eq!(rc, 0, "I420Scale");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_round_trips() {
        let rgba = [255u8; 4 * 4 * 4];
        let (mut y, mut u, mut v) = ([0u8; 16], [0u8; 4], [0u8; 4]);
        rgba_to_i420(
            &rgba,
            &mut I420Mut {
                y: &mut y,
                u: &mut u,
                v: &mut v,
                width: 4,
                height: 4,
            },
        );
        assert!(y.iter().all(|p| (234..=236).contains(p)));
        let mut back = [0u8; 64];
        i420_to_rgba(
            &I420 {
                y: &y,
                u: &u,
                v: &v,
                width: 4,
                height: 4,
            },
            &mut back,
        );
        assert!(back.iter().all(|p| *p >= 250));
    }
}
