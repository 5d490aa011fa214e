//! The gift decoder against `apngdis` (Debian's APNG Disassembler), an
//! independent implementation, on an APNG that uses sub-frames, every
//! disposal and both blend operations.

use std::path::Path;
use std::process::Command;

use nexmile_effects::animation::Animation;
use png::{BlendOp, DisposeOp};

/// 32×24, three frames: a translucent gradient (dispose none, blend source),
/// a translucent square blended over it (dispose previous), a corner patch
/// blended over (dispose background), then a fourth frame to show the disposal.
fn tricky_apng() -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 32, 24);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_animated(4, 0).unwrap();
    let mut writer = encoder.write_header().unwrap();
    let gradient: Vec<u8> = (0..32 * 24)
        .flat_map(|i| {
            let (x, y) = ((i % 32) as u8, (i / 32) as u8);
            [x * 8, y * 10, 200, 100 + x * 4]
        })
        .collect();
    writer.set_frame_delay(1, 10).unwrap();
    writer.set_dispose_op(DisposeOp::None).unwrap();
    writer.set_blend_op(BlendOp::Source).unwrap();
    writer.write_image_data(&gradient).unwrap();

    writer.set_frame_dimension(16, 12).unwrap();
    writer.set_frame_position(8, 6).unwrap();
    writer.set_dispose_op(DisposeOp::Previous).unwrap();
    writer.set_blend_op(BlendOp::Over).unwrap();
    writer.set_frame_delay(2, 10).unwrap();
    writer
        .write_image_data(&[250, 30, 30, 128].repeat(16 * 12))
        .unwrap();

    writer.set_frame_dimension(10, 10).unwrap();
    writer.set_frame_position(0, 0).unwrap();
    writer.set_dispose_op(DisposeOp::Background).unwrap();
    writer.set_blend_op(BlendOp::Over).unwrap();
    writer.set_frame_delay(3, 10).unwrap();
    writer
        .write_image_data(&[20, 240, 20, 200].repeat(100))
        .unwrap();

    writer.set_frame_dimension(4, 4).unwrap();
    writer.set_frame_position(28, 20).unwrap();
    writer.set_dispose_op(DisposeOp::None).unwrap();
    writer.set_blend_op(BlendOp::Source).unwrap();
    writer.set_frame_delay(4, 10).unwrap();
    writer.write_image_data(&[0, 0, 0, 255].repeat(16)).unwrap();
    writer.finish().unwrap();
    bytes
}

fn apngdis_frames(dir: &Path) -> Vec<image::RgbaImage> {
    let status = Command::new("apngdis")
        .arg("anim.png")
        .current_dir(dir)
        .status()
        .expect("apngdis is installed by scripts/setup.sh");
    assert!(status.success(), "apngdis failed");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("apngframe") && name.ends_with(".png")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| image::open(f).unwrap().into_rgba8())
        .collect()
}

#[test]
fn frames_match_apngdis_pixel_for_pixel() {
    let dir = std::env::temp_dir().join(format!("nexmile-apngdis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = tricky_apng();
    std::fs::write(dir.join("anim.png"), &bytes).unwrap();

    let ours = Animation::decode(&bytes).unwrap();
    let theirs = apngdis_frames(&dir);
    assert_eq!(ours.frames().len(), 4);
    assert_eq!(theirs.len(), 4, "apngdis wrote one file per frame");
    for (i, (ours, theirs)) in ours.frames().iter().zip(&theirs).enumerate() {
        assert_eq!(ours.image.dimensions(), theirs.dimensions(), "frame {i}");
        let worst = ours
            .image
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "frame {i} differs from apngdis by up to {worst}"
        );
    }
    let delays: Vec<u128> = ours.frames().iter().map(|f| f.delay.as_millis()).collect();
    assert_eq!(delays, [100, 200, 300, 400]);
    std::fs::remove_dir_all(dir).unwrap();
}
