//! The live recorder's files, read back by an independent reader (ffprobe,
//! Debian's `ffmpeg`): real H.264 and Opus from the app's encoders go in as
//! the SFU hands them over, and ffprobe must find, decode and time them.

use std::time::Duration;

use nexmile_media::codec::{H264Encoder, OpusEncoder};
use nexmile_media::frame::{AudioFrame, MediaTime};
use nexmile_media::source::pattern::TestPattern;
use nexmile_media::source::tone::{ToneShape, ToneSource};
use nexmile_server::media::recording::{
    Piece, RECORDING_FRAGMENT_SECS, Recording, RecordingError, Tracks,
};
use nexmile_testkit::{ffprobe as probe, probed_number as number, probed_stream as stream};
use serde_json::Value;

const FPS: u64 = 30;

/// Encoded pictures (Annex B) of `seconds` of the test pattern at 30 fps.
fn pictures(seconds: u64, width: u32, height: u32) -> Vec<Vec<u8>> {
    let pattern = TestPattern::new(width, height).expect("pattern size");
    let mut encoder = H264Encoder::new(400_000, FPS as f32).expect("encoder");
    (0..seconds * FPS)
        .map(|n| {
            let at = MediaTime(n * 1_000_000 / FPS);
            encoder
                .encode(&pattern.render(n as u32, at), at.0 as i64)
                .expect("encode")
                .expect("a picture at this bitrate")
                .data
        })
        .collect()
}

/// 20 ms Opus packets of a tone.
fn sound(seconds: u64) -> Vec<Vec<u8>> {
    let mut tone = ToneSource::new(ToneShape::Steady { hz: 440.0 }, 0.3);
    let mut encoder = OpusEncoder::new(32_000).expect("opus");
    (0..seconds * 50)
        .map(|_| {
            let mut pcm = tone.next_frame(MediaTime(0)).samples;
            pcm.extend(tone.next_frame(MediaTime(0)).samples);
            assert_eq!(pcm.len(), 2 * AudioFrame::SAMPLES_PER_10MS);
            encoder.encode(&pcm).expect("encode")
        })
        .collect()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nexmile-recording-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// A recorder's file: every piece's bytes in order.
fn append(file: &mut Vec<u8>, pieces: Vec<Piece>) {
    for piece in pieces {
        file.extend_from_slice(piece.bytes());
    }
}

#[test]
fn a_live_with_pictures_and_sound_is_recorded_to_an_mp4_that_ffprobe_decodes() {
    let pictures = pictures(4, 320, 240);
    let sound = sound(4);
    let mut recording = Recording::new(Tracks::AudioVideo, RECORDING_FRAGMENT_SECS);
    let mut file = Vec::new();
    // Arrivals interleaved as on the wire: sound every 20 ms from the start,
    // pictures every 33 ms; the first 150 ms of sound precede any picture and
    // 300 ms of sound (packets 100–114) are lost.
    let picture_step = Duration::from_micros(1_000_000 / FPS);
    let mut events: Vec<(Duration, Option<usize>, Option<usize>)> = Vec::new();
    for (i, _) in pictures.iter().enumerate() {
        events.push((
            Duration::from_millis(150) + picture_step * i as u32,
            Some(i),
            None,
        ));
    }
    for (i, _) in sound.iter().enumerate() {
        if !(100..115).contains(&i) {
            events.push((Duration::from_millis(20 * i as u64), None, Some(i)));
        }
    }
    events.sort_by_key(|(at, ..)| *at);
    for (at, picture, packet) in events {
        if let Some(i) = picture {
            append(
                &mut file,
                recording
                    .on_video(&pictures[i], picture_step, at)
                    .expect("video"),
            );
        }
        if let Some(i) = packet {
            append(&mut file, recording.on_audio(&sound[i], at).expect("audio"));
        }
    }
    file.extend(
        recording
            .finish()
            .expect("finish")
            .map(|f| f.bytes)
            .unwrap_or_default(),
    );
    assert_eq!(recording.dimensions(), (320, 240));
    assert_eq!(recording.video_frames(), 120);
    let path = scratch("live.mp4");
    std::fs::write(&path, &file).expect("write");

    let probe = probe(&path);
    let video = stream(&probe, "h264");
    assert_eq!(video["width"], 320);
    assert_eq!(video["height"], 240);
    assert_eq!(
        number(&video["nb_read_frames"]),
        120.0,
        "every picture decodes"
    );
    let audio = stream(&probe, "opus");
    assert_eq!(audio["sample_rate"], "48000");
    let kept = recording.audio_packets() as f64;
    assert!(number(&audio["nb_read_frames"]) >= kept - 1.0, "{audio:#}");
    let duration = number(&probe["format"]["duration"]);
    assert!((3.9..4.2).contains(&duration), "duration {duration} s");
    // The lost sound left a gap rather than pulling the rest earlier: the
    // sound ends where it ended on the wire, 150 ms before the pictures.
    let end = |s: &Value| number(&s["start_time"]) + number(&s["duration"]);
    let (sound_end, pictures_end) = (end(audio), end(video));
    assert!(
        (pictures_end - sound_end - 0.15).abs() < 0.03,
        "sound ends at {sound_end} s, pictures at {pictures_end} s"
    );
    // Sound starts where it arrived: 10 ms after the first picture.
    let sound_start = number(&audio["start_time"]);
    assert!(
        (0.0..0.03).contains(&sound_start),
        "sound starts at {sound_start} s"
    );
}

#[test]
fn a_radio_live_is_recorded_as_sound_alone() {
    let mut recording = Recording::new(Tracks::AudioOnly, RECORDING_FRAGMENT_SECS);
    let mut file = Vec::new();
    for (i, packet) in sound(3).iter().enumerate() {
        let at = Duration::from_millis(20 * i as u64);
        append(&mut file, recording.on_audio(packet, at).expect("audio"));
        // A picture sent by mistake is not recorded.
        assert!(
            recording
                .on_video(b"\0\0\0\x01\x65", at, at)
                .expect("ignored")
                .is_empty()
        );
    }
    file.extend(
        recording
            .finish()
            .expect("finish")
            .map(|f| f.bytes)
            .unwrap_or_default(),
    );
    let path = scratch("radio.mp4");
    std::fs::write(&path, &file).expect("write");
    let probe = probe(&path);
    assert_eq!(probe["streams"].as_array().map(Vec::len), Some(1));
    let audio = stream(&probe, "opus");
    assert_eq!(number(&audio["nb_read_frames"]), 150.0);
    let duration = number(&probe["format"]["duration"]);
    assert!((2.9..3.1).contains(&duration), "duration {duration} s");
}

#[test]
fn the_recording_waits_for_a_keyframe_and_refuses_one_without_usable_parameter_sets() {
    let pictures = pictures(1, 320, 240);
    let mut recording = Recording::new(Tracks::AudioVideo, RECORDING_FRAGMENT_SECS);
    let step = Duration::from_millis(33);
    // Joining mid-stream: a delta picture first is skipped, and so is sound.
    assert!(
        recording
            .on_video(&pictures[1], step, step)
            .expect("skipped")
            .is_empty()
    );
    assert!(
        recording
            .on_audio(&sound(1)[0], step)
            .expect("skipped")
            .is_empty()
    );
    assert!(recording.waiting_for_keyframe());
    // An IDR whose SPS is garbage is an error, not a panic or a broken file.
    let broken = [
        &[0, 0, 0, 1, 0x67, 0xff, 0xff][..],
        &[0, 0, 0, 1, 0x68, 0xce][..],
        &[0, 0, 0, 1, 0x65, 0x88][..],
    ]
    .concat();
    assert!(matches!(
        recording.on_video(&broken, step, step * 2),
        Err(RecordingError::Parameters(_))
    ));
    assert!(recording.waiting_for_keyframe());
    // The next good keyframe starts the file with its init segment.
    let start = recording
        .on_video(&pictures[0], step, step * 3)
        .expect("start");
    assert!(matches!(&start[..], [Piece::Init(init)] if &init[4..8] == b"ftyp"));
    assert!(!recording.waiting_for_keyframe());
    // Garbage that is not an Opus packet is dropped.
    assert!(
        recording
            .on_audio(&[], step * 4)
            .expect("dropped")
            .is_empty()
    );
}
