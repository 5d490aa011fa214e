//! The display benchmark (`NEXMILE_FEED_BENCH=<seconds>`, run by
//! `scripts/bench-display.sh` under Xvfb): a 720p30 picture stream drawn by
//! the real webview through each way the page can draw it, measuring the
//! added display latency (picture handed to the feed → drawn and acked) and
//! the CPU of the app with its web processes, against a baseline phase in
//! which the same pictures are made but nobody draws them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexmile_client::media_session::Display;
use nexmile_media::frame::MediaTime;
use nexmile_media::source::pattern::TestPattern;
use tauri::{AppHandle, Manager};

use crate::video_feed::DisplayTimings;

/// CPU seconds used so far by this process and its children (the webview's
/// web and network processes), from /proc.
fn cpu_seconds() -> f64 {
    let me = std::process::id();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces: fields
        // are counted after the last ')'. state is field 3, ppid 4, utime 14, stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid = fields.get(1).and_then(|f| f.parse::<u32>().ok());
        if pid == me || ppid == Some(me) {
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            total += ticks(11) + ticks(12);
        }
    }
    total as f64 / ticks_per_second
}

struct Phase {
    name: &'static str,
    cpu_percent: f64,
    latency: Option<(f64, f64, usize)>,
    fps: f64,
}

async fn measure(name: &'static str, seconds: u64, timings: &DisplayTimings) -> Phase {
    // Let the page settle on the new stream first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    timings.reset();
    let (cpu_before, began) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = began.elapsed().as_secs_f64();
    let latency = timings.summary();
    Phase {
        name,
        cpu_percent: (cpu_seconds() - cpu_before) / elapsed * 100.0,
        fps: latency.map_or(0.0, |(_, _, n)| n as f64 / elapsed),
        latency,
    }
}

/// Runs the benchmark, prints its table and closes the app.
pub async fn run(
    app: AppHandle,
    display: Arc<Display>,
    timings: Arc<DisplayTimings>,
    seconds: u64,
) {
    let Ok(pattern) = TestPattern::new(1280, 720) else {
        return;
    };
    // The stream: 30 pictures a second, stamped when handed to the feed.
    let producer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / 30);
        let mut sequence = 0;
        loop {
            tick.tick().await;
            let picture = pattern.render(sequence, MediaTime::now());
            display.remote.send_replace(Some(Arc::new(picture)));
            sequence += 1;
        }
    });
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut phases = vec![measure("baseline (pictures made, none drawn)", seconds, &timings).await];
    for (format, name) in [
        ("rgba", "RGBA → 2D canvas putImageData"),
        ("i420", "I420 → WebGL shader"),
    ] {
        let _ = window.eval(format!("window.nexmileFeedBench('{format}')"));
        phases.push(measure(name, seconds, &timings).await);
        let _ = window.eval("window.nexmileFeedBench(null)");
    }
    producer.abort();
    println!(
        "display path, 1280×720 at 30 fps, {seconds} s each, this machine (2 vCPU, Xvfb, software GL)"
    );
    println!(
        "{:<40} {:>8} {:>10} {:>10} {:>14}",
        "path", "fps", "median ms", "p95 ms", "CPU % (−base)"
    );
    let base = phases[0].cpu_percent;
    for phase in &phases {
        let (median, p95) = phase
            .latency
            .map_or(("—".to_owned(), "—".to_owned()), |(m, p, _)| {
                (format!("{m:.1}"), format!("{p:.1}"))
            });
        println!(
            "{:<40} {:>8.1} {:>10} {:>10} {:>7.1} ({:+.1})",
            phase.name,
            phase.fps,
            median,
            p95,
            phase.cpu_percent,
            phase.cpu_percent - base
        );
    }
    if let (Some(rgba), Some(i420)) = (phases[1].latency, phases[2].latency) {
        println!(
            "ratio I420/WebGL ÷ RGBA/2D: latency {:.2}, CPU over baseline {:.2}",
            i420.0 / rgba.0,
            (phases[2].cpu_percent - base) / (phases[1].cpu_percent - base)
        );
    }
    app.exit(0);
}
