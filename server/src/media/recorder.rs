//! A recorder: a tapped feed, through [`Recording`], appended to a file as
//! the live goes on.

use std::path::PathBuf;

use nexmile_sfu::{Tap, Tapped};
use tokio::io::AsyncWriteExt;

use crate::media::recording::{RECORDING_FRAGMENT_SECS, Recording, Tracks};

/// Writes a tapped feed to `path` from its next keyframe until the feed ends.
pub(crate) async fn record(tap: Tap, path: PathBuf, tracks: Tracks) {
    let Tap {
        media: mut inbox,
        keyframes,
    } = tap;
    let opened = match path.parent() {
        Some(dir) => tokio::fs::create_dir_all(dir).await,
        None => Ok(()),
    };
    let file = match opened {
        Ok(()) => tokio::fs::File::create(&path).await,
        Err(e) => Err(e),
    };
    let mut file = match file {
        Ok(file) => file,
        Err(e) => {
            tracing::error!("recording {}: {e}", path.display());
            return;
        }
    };
    keyframes.ask();
    let started = tokio::time::Instant::now();
    let mut recording = Recording::new(tracks, RECORDING_FRAGMENT_SECS);
    loop {
        let pieces = match inbox.recv().await {
            None => break,
            Some(Tapped::Video { data, duration }) => {
                let pieces = recording.on_video(&data, duration, started.elapsed());
                if recording.waiting_for_keyframe() {
                    keyframes.ask();
                }
                pieces
            }
            Some(Tapped::Audio { data }) => recording.on_audio(&data, started.elapsed()),
        };
        match pieces {
            Ok(pieces) => {
                for piece in pieces {
                    if let Err(e) = file.write_all(piece.bytes()).await {
                        tracing::error!("recording {}: {e}; the recording stops", path.display());
                        return;
                    }
                }
            }
            // A broken keyframe: wait for the next (asked for above).
            Err(e) => tracing::warn!("recording {}: {e}", path.display()),
        }
    }
    let last = recording.finish().unwrap_or_else(|e| {
        tracing::warn!("recording {}: {e}", path.display());
        None
    });
    if let Err(e) = async {
        if let Some(last) = last {
            file.write_all(&last.bytes).await?;
        }
        file.sync_all().await
    }
    .await
    {
        tracing::error!("recording {}: {e}", path.display());
        return;
    }
    let (width, height) = recording.dimensions();
    tracing::info!(
        "recorded {}: {} pictures ({width}x{height}), {} sound packets",
        path.display(),
        recording.video_frames(),
        recording.audio_packets()
    );
}
