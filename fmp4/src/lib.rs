//! Fragmented MP4 writing for live media: an init segment (`ftyp` + `moov`
//! with empty sample tables and `mvex`) followed by fragments (`moof` +
//! `mdat`), each track's run starting at the decode time the caller measured.
//!
//! The boxes come from `mp4-atom`; what is written here is their layout and
//! the timing, which the MP4 muxer crates tried (muxide 0.5) get wrong for
//! live input: they derive a fragment's start from an average of the previous
//! one instead of the time given, so gaps and jitter shift sound against
//! pictures. [`Fragmenter`] keeps each track's own clock.

use mp4_atom::{
    Audio, Avc3, Avcc, Codec, Dinf, Dops, Dref, DrefEntry, Encode, Ftyp, Hdlr, Mdat, Mdhd, Mdia,
    Mfhd, Minf, Moof, Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd,
    Tkhd, Traf, Trak, Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("bad parameter sets: {0}")]
    ParameterSets(String),
    #[error("unknown track {0}")]
    UnknownTrack(u32),
    #[error("decode time {got} of track {track} is not after {last}")]
    NotIncreasing { track: u32, last: u64, got: u64 },
    #[error("box encoding: {0}")]
    Encode(String),
}

fn encoding(e: mp4_atom::Error) -> Fmp4Error {
    Fmp4Error::Encode(e.to_string())
}

/// What a track carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackCodec {
    /// H.264 in an `avc3` entry: parameter sets may also come in the samples,
    /// so a sender that changes its picture size mid-stream stays decodable.
    H264 {
        sps: Vec<u8>,
        pps: Vec<u8>,
        width: u16,
        height: u16,
    },
    /// Opus at 48 kHz (RFC 7845's `Opus`/`dOps` entry).
    Opus { channels: u8, pre_skip: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    pub id: u32,
    /// Ticks per second of the track's decode times.
    pub timescale: u32,
    pub codec: TrackCodec,
}

impl TrackConfig {
    fn is_video(&self) -> bool {
        matches!(self.codec, TrackCodec::H264 { .. })
    }
}

/// `ftyp` + `moov` for these tracks.
pub fn init_segment(tracks: &[TrackConfig]) -> Result<Vec<u8>, Fmp4Error> {
    let mut out = Vec::new();
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    }
    .encode(&mut out)
    .map_err(encoding)?;
    let trak = tracks.iter().map(trak).collect::<Result<Vec<_>, _>>()?;
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            matrix: Default::default(),
            next_track_id: tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.id,
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
        }),
        trak,
        ..Default::default()
    }
    .encode(&mut out)
    .map_err(encoding)?;
    Ok(out)
}

fn trak(track: &TrackConfig) -> Result<Trak, Fmp4Error> {
    let (codec, handler, width, height): (Codec, _, u16, u16) = match &track.codec {
        TrackCodec::H264 {
            sps,
            pps,
            width,
            height,
        } => (
            Avc3 {
                visual: Visual {
                    data_reference_index: 1,
                    width: *width,
                    height: *height,
                    ..Default::default()
                },
                avcc: Avcc::new(sps, pps).map_err(|e| Fmp4Error::ParameterSets(e.to_string()))?,
                ..Default::default()
            }
            .into(),
            b"vide",
            *width,
            *height,
        ),
        TrackCodec::Opus { channels, pre_skip } => (
            Opus {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(*channels),
                    sample_size: 16,
                    sample_rate: 48000.into(),
                },
                dops: Dops {
                    output_channel_count: *channels,
                    pre_skip: *pre_skip,
                    input_sample_rate: 48000,
                    output_gain: 0,
                    channel_mapping: None,
                },
                btrt: None,
            }
            .into(),
            b"soun",
            0,
            0,
        ),
    };
    let video = track.is_video();
    Ok(Trak {
        tkhd: Tkhd {
            track_id: track.id,
            enabled: true,
            in_movie: true,
            volume: if video { 0.into() } else { 1.into() },
            matrix: Default::default(),
            width: width.into(),
            height: height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: track.timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: handler.into(),
                name: if video { "Video" } else { "Sound" }.into(),
            },
            minf: Minf {
                vmhd: video.then(Vmhd::default),
                smhd: (!video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::from(Url::default())],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

/// One coded sample: AVCC (4-byte lengths) for H.264, one packet for Opus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub sync: bool,
    pub data: Vec<u8>,
}

/// One track's samples in a fragment, the first decoded at `decode_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub track_id: u32,
    pub decode_time: u64,
    pub samples: Vec<Sample>,
}

/// sample_depends_on = 2 (an I picture, or sound).
const SYNC: u32 = 0x0200_0000;
/// sample_depends_on = 1, sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0101_0000;

/// `moof` + `mdat` for these runs (empty runs are left out).
pub fn fragment(sequence_number: u32, runs: &[Run]) -> Result<Vec<u8>, Fmp4Error> {
    let runs: Vec<&Run> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let build = |offsets: &[i32]| Moof {
        mfhd: Mfhd { sequence_number },
        traf: runs
            .iter()
            .zip(offsets)
            .map(|(run, offset)| Traf {
                tfhd: Tfhd {
                    track_id: run.track_id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: run.decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(*offset),
                    samples: TrunSamples::Explicit(
                        run.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: Some(if s.sync { SYNC } else { NON_SYNC }),
                                cts: None,
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // The offsets are fixed-width fields: measure the moof once, then fill them in.
    let mut probe = Vec::new();
    build(&vec![0; runs.len()])
        .encode(&mut probe)
        .map_err(encoding)?;
    const MDAT_HEADER: usize = 8;
    let mut offsets = Vec::with_capacity(runs.len());
    let mut at = probe.len() + MDAT_HEADER;
    for run in &runs {
        offsets
            .push(i32::try_from(at).map_err(|_| Fmp4Error::Encode("fragment too large".into()))?);
        at += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut out = Vec::with_capacity(at);
    build(&offsets).encode(&mut out).map_err(encoding)?;
    let data = runs
        .iter()
        .flat_map(|r| &r.samples)
        .flat_map(|s| s.data.iter().copied())
        .collect();
    Mdat { data }.encode(&mut out).map_err(encoding)?;
    Ok(out)
}

/// One cut fragment (moof + mdat): an HLS media segment, or the next part
/// of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    pub bytes: Vec<u8>,
    /// How long the first track's samples in it last.
    pub seconds: f64,
    /// Whether the first track's first sample is a sync sample (decoding can start here).
    pub independent: bool,
}

/// Collects timed samples per track and cuts fragments. A sample's duration
/// is the step to the next one of its track, so a sample is held until the
/// next arrives; [`Fragmenter::finish`] gives the last ones the step before.
pub struct Fragmenter {
    tracks: Vec<TrackBuffer>,
    sequence: u32,
    /// Cut when the first track holds this much (its own ticks).
    target_secs: f64,
}

struct TrackBuffer {
    config: TrackConfig,
    /// The sample waiting for its successor: decode time, sync, data.
    held: Option<(u64, bool, Vec<u8>)>,
    run: Run,
    last_duration: u32,
}

impl Fragmenter {
    pub fn new(tracks: Vec<TrackConfig>, target_secs: f64) -> Self {
        Self {
            tracks: tracks
                .into_iter()
                .map(|config| TrackBuffer {
                    run: Run {
                        track_id: config.id,
                        decode_time: 0,
                        samples: Vec::new(),
                    },
                    config,
                    held: None,
                    last_duration: 0,
                })
                .collect(),
            sequence: 1,
            target_secs,
        }
    }

    pub fn init_segment(&self) -> Result<Vec<u8>, Fmp4Error> {
        let configs: Vec<TrackConfig> = self.tracks.iter().map(|t| t.config.clone()).collect();
        init_segment(&configs)
    }

    /// Adds a sample decoded at `decode_time` (the track's ticks, increasing).
    /// Returns a fragment when the first track has `target_secs` buffered and
    /// this sample is a sync sample of it (fragments start where decoding can),
    /// or when twice the target is buffered whatever comes.
    pub fn push(
        &mut self,
        track_id: u32,
        decode_time: u64,
        sync: bool,
        data: Vec<u8>,
    ) -> Result<Option<Fragment>, Fmp4Error> {
        let index = self
            .tracks
            .iter()
            .position(|t| t.config.id == track_id)
            .ok_or(Fmp4Error::UnknownTrack(track_id))?;
        let cut = index == 0 && {
            let buffered = self.buffered_secs();
            (sync && buffered >= self.target_secs) || buffered >= 2.0 * self.target_secs
        };
        let out = if cut { self.flush()? } else { None };
        let track = &mut self.tracks[index];
        if let Some((last, ..)) = &track.held
            && decode_time <= *last
        {
            return Err(Fmp4Error::NotIncreasing {
                track: track_id,
                last: *last,
                got: decode_time,
            });
        }
        if let Some((held_time, held_sync, held_data)) = track.held.take() {
            let duration = u32::try_from(decode_time - held_time).unwrap_or(u32::MAX);
            track.last_duration = duration;
            if track.run.samples.is_empty() {
                track.run.decode_time = held_time;
            }
            track.run.samples.push(Sample {
                duration,
                sync: held_sync,
                data: held_data,
            });
        }
        track.held = Some((decode_time, sync, data));
        Ok(out)
    }

    /// The fragment of everything complete so far (held samples wait).
    fn flush(&mut self) -> Result<Option<Fragment>, Fmp4Error> {
        let seconds = self.buffered_secs();
        let independent = self.tracks[0].run.samples.first().is_some_and(|s| s.sync);
        let runs: Vec<Run> = self
            .tracks
            .iter_mut()
            .map(|t| Run {
                track_id: t.run.track_id,
                decode_time: t.run.decode_time,
                samples: std::mem::take(&mut t.run.samples),
            })
            .collect();
        if runs.iter().all(|r| r.samples.is_empty()) {
            return Ok(None);
        }
        let bytes = fragment(self.sequence, &runs)?;
        self.sequence += 1;
        Ok(Some(Fragment {
            bytes,
            seconds,
            independent,
        }))
    }

    /// The last fragment: held samples last as long as the step before them.
    pub fn finish(&mut self) -> Result<Option<Fragment>, Fmp4Error> {
        for track in &mut self.tracks {
            if let Some((time, sync, data)) = track.held.take() {
                if track.run.samples.is_empty() {
                    track.run.decode_time = time;
                }
                let duration = if track.last_duration > 0 {
                    track.last_duration
                } else {
                    track.config.timescale / 50
                };
                track.run.samples.push(Sample {
                    duration,
                    sync,
                    data,
                });
            }
        }
        self.flush()
    }

    /// How much of the first track waits for the next cut, in seconds.
    pub fn buffered_secs(&self) -> f64 {
        let track = &self.tracks[0];
        let ticks: u64 = track
            .run
            .samples
            .iter()
            .map(|s| u64::from(s.duration))
            .sum();
        ticks as f64 / f64::from(track.config.timescale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, Decode};

    fn opus_track(id: u32) -> TrackConfig {
        TrackConfig {
            id,
            timescale: 48_000,
            codec: TrackCodec::Opus {
                channels: 1,
                pre_skip: 312,
            },
        }
    }

    #[test]
    fn a_fragment_starts_each_run_at_its_own_decode_time_and_points_at_its_data() {
        let mut fragmenter = Fragmenter::new(vec![opus_track(1)], 0.05);
        let mut fragments = Vec::new();
        // 20 ms packets, then a 100 ms gap, then more.
        for (i, at) in [0u64, 960, 1920, 2880, 8640, 9600, 10560]
            .iter()
            .enumerate()
        {
            if let Some(f) = fragmenter
                .push(1, *at, true, vec![i as u8; 3])
                .expect("push")
            {
                fragments.push(f.bytes);
            }
        }
        fragments.extend(fragmenter.finish().expect("finish").map(|f| f.bytes));
        let mut times = Vec::new();
        let mut durations = Vec::new();
        for bytes in &fragments {
            let mut cursor = std::io::Cursor::new(bytes);
            let Any::Moof(moof) = Any::decode(&mut cursor).expect("moof") else {
                panic!("not a moof");
            };
            let Any::Mdat(mdat) = Any::decode(&mut cursor).expect("mdat") else {
                panic!("not an mdat");
            };
            let traf = &moof.traf[0];
            times.push(traf.tfdt.as_ref().expect("tfdt").base_media_decode_time);
            let trun = &traf.trun[0];
            // The offset counts from the moof's start to the first sample.
            let moof_len = bytes.len() - mdat.data.len() - 8;
            assert_eq!(trun.data_offset, Some((moof_len + 8) as i32));
            durations.extend(trun.samples.iter().map(|e| e.duration.expect("duration")));
        }
        assert_eq!(times[0], 0);
        // Each later fragment starts exactly where its first sample was given.
        assert!(
            times
                .iter()
                .all(|t| [0, 960, 1920, 2880, 8640, 9600, 10560].contains(t))
        );
        assert_eq!(durations, vec![960, 960, 960, 5760, 960, 960, 960]);
    }

    #[test]
    fn decode_times_must_increase() {
        let mut fragmenter = Fragmenter::new(vec![opus_track(1)], 2.0);
        fragmenter.push(1, 960, true, vec![1]).expect("first");
        assert!(matches!(
            fragmenter.push(1, 960, true, vec![2]),
            Err(Fmp4Error::NotIncreasing { .. })
        ));
        assert!(matches!(
            fragmenter.push(7, 0, true, vec![2]),
            Err(Fmp4Error::UnknownTrack(7))
        ));
    }
}
