//! `cargo bench -p nexmile-media`: the media engine's figures, each beside a
//! named reference measured in the same run, as a table of medians.
//!
//! References: Debian's libyuv (through `libyuv-ref`) for conversion and
//! scaling; `dcv-color-primitives` as the other well-kept crate measured.

use std::hint::black_box;
use std::time::{Duration, Instant};

use dcv_color_primitives as dcv;
use libyuv_ref::{I420, I420Mut};
use nexmile_media::codec::{H264Decoder, H264Encoder};
use nexmile_media::convert::{Scaler, convert};
use nexmile_media::frame::{MediaTime, PixelFormat, VideoFrame};
use nexmile_media::loopback::{Call, percentile};
use nexmile_media::source::pattern::TestPattern;

/// Median wall time of `runs` calls after `runs / 5` warm-up calls.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..runs / 5 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

struct Row {
    what: String,
    ours: (&'static str, Duration),
    reference: Option<(&'static str, Duration)>,
    others: Vec<(&'static str, Duration)>,
}

fn print(rows: &[Row]) {
    println!(
        "| measurement | ours | median | reference | median | ours ÷ reference | also measured |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let (rname, rtime, ratio) = match r.reference {
            Some((n, t)) => (
                n,
                format!("{:.3} ms", ms(t)),
                format!("{:.2}", ms(r.ours.1) / ms(t)),
            ),
            None => ("—", "—".into(), "—".into()),
        };
        let others: Vec<String> = r
            .others
            .iter()
            .map(|(n, t)| format!("{n} {:.3} ms", ms(*t)))
            .collect();
        println!(
            "| {} | {} | {:.3} ms | {rname} | {rtime} | {ratio} | {} |",
            r.what,
            r.ours.0,
            ms(r.ours.1),
            others.join(", ")
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn planes(frame: &VideoFrame) -> I420<'_> {
    I420 {
        y: &frame.planes[0].data,
        u: &frame.planes[1].data,
        v: &frame.planes[2].data,
        width: frame.width as usize,
        height: frame.height as usize,
    }
}

fn conversion_rows(width: u32, height: u32) -> Vec<Row> {
    let i420 = TestPattern::new(width, height)
        .expect("size")
        .render(1, MediaTime(0));
    let rgba = convert(&i420, PixelFormat::Rgba).expect("converts");
    let (w, h) = (width as usize, height as usize);
    let runs = 60;

    let ours_to_rgba = median(runs, || {
        black_box(convert(black_box(&i420), PixelFormat::Rgba).expect("converts"));
    });
    let mut out = vec![0u8; w * h * 4];
    let libyuv_to_rgba = median(runs, || {
        libyuv_ref::i420_to_rgba(&planes(&i420), black_box(&mut out))
    });
    let i420_format = dcv::ImageFormat {
        pixel_format: dcv::PixelFormat::I420,
        color_space: dcv::ColorSpace::Bt601,
        num_planes: 3,
    };
    let rgba_format = dcv::ImageFormat {
        pixel_format: dcv::PixelFormat::Rgba,
        color_space: dcv::ColorSpace::Rgb,
        num_planes: 1,
    };
    let bgra_format = dcv::ImageFormat {
        pixel_format: dcv::PixelFormat::Bgra,
        ..rgba_format
    };
    let dcv_to_rgba = median(runs, || {
        let src = [
            &i420.planes[0].data[..],
            &i420.planes[1].data,
            &i420.planes[2].data,
        ];
        dcv::convert_image(
            width,
            height,
            &i420_format,
            None,
            &src,
            &rgba_format,
            None,
            &mut [&mut out[..]],
        )
        .expect("dcv converts");
    });

    let ours_from_rgba = median(runs, || {
        black_box(convert(black_box(&rgba), PixelFormat::I420).expect("converts"));
    });
    let (mut y, mut u, mut v) = (vec![0u8; w * h], vec![0u8; w * h / 4], vec![0u8; w * h / 4]);
    let libyuv_from_rgba = median(runs, || {
        libyuv_ref::rgba_to_i420(
            &rgba.planes[0].data,
            &mut I420Mut {
                y: &mut y,
                u: &mut u,
                v: &mut v,
                width: w,
                height: h,
            },
        )
    });
    // dcv has no RGBA source; BGRA is the same work with the channels named the other way.
    let dcv_from_bgra = median(runs, || {
        let mut dst = [&mut y[..], &mut u[..], &mut v[..]];
        dcv::convert_image(
            width,
            height,
            &bgra_format,
            None,
            &[&rgba.planes[0].data],
            &i420_format,
            None,
            &mut dst,
        )
        .expect("dcv converts");
    });
    vec![
        Row {
            what: format!("{height}p I420 → RGBA"),
            ours: ("yuv", ours_to_rgba),
            reference: Some(("libyuv", libyuv_to_rgba)),
            others: vec![("dcv", dcv_to_rgba)],
        },
        Row {
            what: format!("{height}p RGBA → I420"),
            ours: ("yuv", ours_from_rgba),
            reference: Some(("libyuv", libyuv_from_rgba)),
            others: vec![("dcv (BGRA)", dcv_from_bgra)],
        },
    ]
}

fn scaling_row(from: (u32, u32), to: (u32, u32)) -> Row {
    let src = TestPattern::new(from.0, from.1)
        .expect("size")
        .render(1, MediaTime(0));
    let mut scaler = Scaler::default();
    let ours = median(40, || {
        black_box(scaler.scale(black_box(&src), to.0, to.1).expect("scales"));
    });
    let (w, h) = (to.0 as usize, to.1 as usize);
    let (mut y, mut u, mut v) = (vec![0u8; w * h], vec![0u8; w * h / 4], vec![0u8; w * h / 4]);
    let libyuv = median(40, || {
        libyuv_ref::i420_scale(
            &planes(&src),
            &mut I420Mut {
                y: &mut y,
                u: &mut u,
                v: &mut v,
                width: w,
                height: h,
            },
        )
    });
    let halving = (to.0 * 2, to.1 * 2) == from;
    Row {
        what: format!("I420 {}p → {}p bilinear", from.1, to.1),
        ours: (
            if halving {
                "2×2 box (ours)"
            } else {
                "fast_image_resize"
            },
            ours,
        ),
        reference: Some(("libyuv", libyuv)),
        others: vec![],
    }
}

/// Encode and decode time per 720p frame of the moving test pattern.
fn codec_rows() -> Vec<Row> {
    let pattern = TestPattern::new(1280, 720).expect("size");
    let frames: Vec<VideoFrame> = (0..90).map(|i| pattern.render(i, MediaTime(0))).collect();
    let mut encoder = H264Encoder::new(2_500_000, 30.0).expect("encoder");
    let mut encoded = Vec::new();
    let mut encode_times = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let t = Instant::now();
        let out = encoder.encode(frame, i as i64 * 33_333).expect("encodes");
        encode_times.push(t.elapsed());
        encoded.extend(out);
    }
    let mut decoder = H264Decoder::new().expect("decoder");
    let decode_times: Vec<Duration> = encoded
        .iter()
        .map(|e| {
            let t = Instant::now();
            black_box(decoder.decode(&e.data, MediaTime(0)).expect("decodes"));
            t.elapsed()
        })
        .collect();
    encode_times.sort();
    let mut sorted_decode = decode_times;
    sorted_decode.sort();
    vec![
        Row {
            what: "720p H.264 encode per frame (2.5 Mbps, camera preset)".into(),
            ours: ("openh264", encode_times[encode_times.len() / 2]),
            reference: None,
            others: vec![("p95", encode_times[encode_times.len() * 95 / 100])],
        },
        Row {
            what: "720p H.264 decode per frame".into(),
            ours: ("openh264", sorted_decode[sorted_decode.len() / 2]),
            reference: None,
            others: vec![("p95", sorted_decode[sorted_decode.len() * 95 / 100])],
        },
    ]
}

/// Glass-to-glass latency and connection time of a 720p30 loopback call.
fn loopback_rows() -> Vec<Row> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async {
        let mut call = Call::connect(None).await;
        let outcome = call.run(Duration::from_secs(5), 1280, 720).await;
        let latencies: Vec<Duration> = outcome.stamps.iter().map(|(_, l)| *l).collect();
        vec![
            Row {
                what: "loopback 720p30: capture → decoded picture".into(),
                ours: ("median", percentile(&latencies, 50)),
                reference: None,
                others: vec![("p95", percentile(&latencies, 95))],
            },
            Row {
                what: "offer created → connected (two peers)".into(),
                ours: ("webrtc 0.21, 20 ms ICE checks", call.connect_time),
                reference: None,
                others: vec![(
                    "→ first decoded frame",
                    call.connect_time + outcome.first_frame_after.unwrap_or_default(),
                )],
            },
        ]
    })
}

fn main() {
    let mut rows = Vec::new();
    rows.extend(conversion_rows(1280, 720));
    rows.extend(conversion_rows(1920, 1080));
    rows.push(scaling_row((1920, 1080), (1280, 720)));
    rows.push(scaling_row((1280, 720), (640, 360)));
    rows.extend(codec_rows());
    rows.extend(loopback_rows());
    println!(
        "nexmile-media benchmarks ({} logical CPUs; dcv path: {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dcv::describe_acceleration()
    );
    print(&rows);
}
