//! serverSideRecording (§5.3.2 LiveService): a live's media, as the SFU
//! relays it, written to a fragmented MP4 (H.264 + Opus, or Opus alone for
//! radio) that any player or ffprobe reads.
//!
//! [`Recording`] is the sans-IO core: pictures and sound packets go in with
//! their arrival time, the init segment and fragments come out. A recorder
//! appends them to a file as the live goes on, so a crash loses at most the
//! last seconds and the file is readable while the live still runs; the HLS
//! packager serves each fragment as a media segment.

use std::time::Duration;

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitReader, decode_nal};
use nexmile_fmp4::{Fmp4Error, Fragment, Fragmenter, TrackCodec, TrackConfig};

/// The video track's clock (RTP's, so steps convert without rounding).
const VIDEO_TIMESCALE: u32 = 90_000;
const OPUS_RATE: u32 = 48_000;
/// A recording's fragment is cut at the first keyframe after this much, or at twice it.
pub const RECORDING_FRAGMENT_SECS: f64 = 2.0;
/// Sound that arrives this much later than its packets add up to had a gap
/// (loss, silence suppression): it is placed at its arrival instead, so the
/// sound stays with the pictures.
const AUDIO_RESYNC: Duration = Duration::from_millis(200);
/// libopus' encoder delay at 48 kHz (RFC 7845 §4.2's usual pre-skip).
const OPUS_PRE_SKIP: u16 = 312;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("the first keyframe has no usable SPS/PPS: {0}")]
    Parameters(String),
    #[error("container: {0}")]
    Container(#[from] Fmp4Error),
}

/// What a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    AudioVideo,
    /// A radio live.
    AudioOnly,
}

/// What comes out: the init segment once, then fragments.
#[derive(Debug)]
pub enum Piece {
    Init(Vec<u8>),
    Fragment(Fragment),
}

impl Piece {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Init(bytes) => bytes,
            Self::Fragment(fragment) => &fragment.bytes,
        }
    }
}

/// One live's recording, from its first keyframe (radio: first sound).
pub struct Recording {
    tracks: Tracks,
    fragment_secs: f64,
    fragmenter: Option<Fragmenter>,
    /// Arrival of the first recorded media: the file's time zero.
    origin: Option<Duration>,
    /// The latest picture's decode time (90 kHz).
    video_time: u64,
    video_frames: u64,
    /// The next sound packet's place if nothing was lost (48 kHz samples).
    audio_next: Option<u64>,
    audio_packets: u64,
    dimensions: (u32, u32),
    /// profile_idc, constraint flags, level_idc of the first keyframe's SPS.
    avc_profile: Option<[u8; 3]>,
}

impl Recording {
    /// Fragments are cut at the first keyframe after `fragment_secs`, or at twice it.
    pub fn new(tracks: Tracks, fragment_secs: f64) -> Self {
        Self {
            tracks,
            fragment_secs,
            fragmenter: None,
            origin: None,
            video_time: 0,
            video_frames: 0,
            audio_next: None,
            audio_packets: 0,
            dimensions: (0, 0),
            avc_profile: None,
        }
    }

    /// The tracks as RFC 6381 codecs (`avc3.42e01f,opus`), for HLS playlists.
    pub fn codecs(&self) -> String {
        match (self.tracks, self.avc_profile) {
            (Tracks::AudioVideo, Some([profile, flags, level])) => {
                format!("avc3.{profile:02x}{flags:02x}{level:02x},opus")
            }
            _ => "opus".into(),
        }
    }

    pub fn video_frames(&self) -> u64 {
        self.video_frames
    }

    pub fn audio_packets(&self) -> u64 {
        self.audio_packets
    }

    /// The picture size announced by the first keyframe.
    pub fn dimensions(&self) -> (u32, u32) {
        self.dimensions
    }

    /// Media waiting for the next cut, in seconds.
    pub fn buffered_secs(&self) -> f64 {
        self.fragmenter
            .as_ref()
            .map_or(0.0, Fragmenter::buffered_secs)
    }

    /// Whether a keyframe is still awaited (the source should be asked for one).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.tracks == Tracks::AudioVideo && self.fragmenter.is_none()
    }

    /// One Annex-B picture that lasted `step` since the previous one (the SFU's
    /// RTP step), arrived at `arrival`.
    pub fn on_video(
        &mut self,
        picture: &[u8],
        step: Duration,
        arrival: Duration,
    ) -> Result<Vec<Piece>, RecordingError> {
        if self.tracks == Tracks::AudioOnly {
            return Ok(Vec::new());
        }
        let nals: Vec<&[u8]> = openh264::nal_units(picture)
            .map(without_start_code)
            .filter(|nal| !nal.is_empty())
            .collect();
        let keyframe = nals.iter().any(|nal| nal_type(nal) == 5);
        let mut out = Vec::new();
        match self.fragmenter {
            Some(_) => self.video_time += duration_in(step, VIDEO_TIMESCALE).max(1),
            None if keyframe => {
                let tracks = vec![self.video_track(&nals)?, opus_track(2)];
                let fragmenter = Fragmenter::new(tracks, self.fragment_secs);
                out.push(Piece::Init(fragmenter.init_segment()?));
                self.fragmenter = Some(fragmenter);
                self.origin = Some(arrival);
            }
            None => return Ok(out),
        }
        // Parameter sets stay in the samples (an avc3 track): a sender that
        // changes its picture size mid-live stays decodable.
        let mut sample = Vec::with_capacity(picture.len() + 4 * nals.len());
        for nal in &nals {
            sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            sample.extend_from_slice(nal);
        }
        let fragmenter = self.fragmenter.as_mut().expect("started above");
        out.extend(
            fragmenter
                .push(1, self.video_time, keyframe, sample)?
                .map(Piece::Fragment),
        );
        self.video_frames += 1;
        Ok(out)
    }

    /// One Opus packet, arrived at `arrival`. Sound before the first picture
    /// of an audio-video recording is not kept (the file starts with a picture).
    pub fn on_audio(
        &mut self,
        packet: &[u8],
        arrival: Duration,
    ) -> Result<Vec<Piece>, RecordingError> {
        let Some(samples) = opus::packet::get_nb_samples(packet, OPUS_RATE)
            .ok()
            .filter(|n| *n > 0)
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let track = match self.tracks {
            Tracks::AudioVideo if self.fragmenter.is_none() => return Ok(out),
            Tracks::AudioVideo => 2,
            Tracks::AudioOnly => 1,
        };
        if self.fragmenter.is_none() {
            let fragmenter = Fragmenter::new(vec![opus_track(1)], self.fragment_secs);
            out.push(Piece::Init(fragmenter.init_segment()?));
            self.fragmenter = Some(fragmenter);
            self.origin = Some(arrival);
        }
        let origin = self.origin.unwrap_or(arrival);
        let arrived_at = duration_in(arrival.saturating_sub(origin), OPUS_RATE);
        let at = match self.audio_next {
            Some(next) if arrived_at <= next + duration_in(AUDIO_RESYNC, OPUS_RATE) => next,
            _ => arrived_at,
        };
        self.audio_next = Some(at + samples as u64);
        let fragmenter = self.fragmenter.as_mut().expect("started above");
        out.extend(
            fragmenter
                .push(track, at, true, packet.to_vec())?
                .map(Piece::Fragment),
        );
        self.audio_packets += 1;
        Ok(out)
    }

    /// The last fragment.
    pub fn finish(&mut self) -> Result<Option<Fragment>, RecordingError> {
        match self.fragmenter.as_mut() {
            Some(fragmenter) => Ok(fragmenter.finish()?),
            None => Ok(None),
        }
    }

    fn video_track(&mut self, nals: &[&[u8]]) -> Result<TrackConfig, RecordingError> {
        let find = |kind| {
            nals.iter()
                .find(|nal| nal_type(nal) == kind)
                .map(|nal| nal.to_vec())
                .ok_or_else(|| RecordingError::Parameters(format!("no NAL unit of type {kind}")))
        };
        let (sps, pps) = (find(7)?, find(8)?);
        self.avc_profile = sps.get(1..4).and_then(|b| b.try_into().ok());
        let (width, height) = sps_size(&sps)?;
        let size = |v: u32| {
            u16::try_from(v).map_err(|_| RecordingError::Parameters(format!("{width}x{height}")))
        };
        let codec = TrackCodec::H264 {
            width: size(width)?,
            height: size(height)?,
            sps,
            pps,
        };
        self.dimensions = (width, height);
        Ok(TrackConfig {
            id: 1,
            timescale: VIDEO_TIMESCALE,
            codec,
        })
    }
}

/// The picture size an SPS (NAL unit without start code) declares.
fn sps_size(sps: &[u8]) -> Result<(u32, u32), RecordingError> {
    let rbsp = decode_nal(sps).map_err(|e| RecordingError::Parameters(e.to_string()))?;
    let parsed = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|e| RecordingError::Parameters(format!("{e:?}")))?;
    parsed
        .pixel_dimensions()
        .map_err(|e| RecordingError::Parameters(format!("{e:?}")))
}

/// The picture size of a keyframe (an Annex-B access unit with its SPS);
/// `None` for any other picture.
pub fn keyframe_size(picture: &[u8]) -> Option<(u32, u32)> {
    let nals: Vec<&[u8]> = openh264::nal_units(picture)
        .map(without_start_code)
        .filter(|nal| !nal.is_empty())
        .collect();
    if !nals.iter().any(|nal| nal_type(nal) == 5) {
        return None;
    }
    let sps = nals.iter().find(|nal| nal_type(nal) == 7)?;
    sps_size(sps).ok()
}

fn opus_track(id: u32) -> TrackConfig {
    // The app's encoder is 48 kHz mono (nexmile_media::codec::OpusEncoder).
    TrackConfig {
        id,
        timescale: OPUS_RATE,
        codec: TrackCodec::Opus {
            channels: 1,
            pre_skip: OPUS_PRE_SKIP,
        },
    }
}

fn duration_in(duration: Duration, rate: u32) -> u64 {
    (duration.as_micros() * u128::from(rate) / 1_000_000) as u64
}

/// A NAL unit from `openh264::nal_units`, without its start code.
fn without_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|b| **b == 0).count();
    match nal.get(zeros) {
        Some(1) => &nal[zeros + 1..],
        _ => nal,
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal[0] & 0x1f
}
