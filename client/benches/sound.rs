//! Sound quality of a call, measured end to end on real (virtual) devices;
//! run by `scripts/bench-sound.sh`, which makes the speech, sets up the
//! network and scores the recordings. Never part of `make test`.
//!
//! A (`nexmile-cli --devices listen`) talks: the speech file goes into its
//! microphone, a PulseAudio null sink's monitor. B hears A: B is either a
//! second app (`nexmile-cli --devices open <makecall link>`) or Debian's
//! Chromium running the web version (the anchor), both on the same server.
//! B's speaker is looped back into B's microphone 50 ms later at -10 dB (a
//! laptop's speaker heard by its microphone), so what A hears of its own
//! voice is the echo B's canceller left. In the second half B talks too
//! (double talk). Everything each side heard is written as 48 kHz mono
//! s16le files for the scoring script.
//!
//!   sound <speech_a.raw> <speech_b.raw> <out-dir> app|chromium [plain]
//!
//! `plain` turns the apps' noise suppression and gain control off (the
//! echo canceller stays), to see what each stage costs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nexmile_testkit::sound::SoundServer;
use nexmile_testkit::world;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const LINK: &str = "https://sbx.stream-works.biz/sbxapp";

fn read_pcm(path: &Path) -> Vec<i16> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn write_pcm(path: &Path, pcm: &[i16]) {
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Runs nexmile-cli to its end with `env`, printing its events to stderr.
async fn cli(
    world: &nexmile_testkit::World,
    profile: &str,
    args: &[&str],
    env: &[(String, String)],
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexmile-cli"))
        .arg("--server")
        .arg(world.server.url())
        .arg("--profiles")
        .arg(world.root.join(profile))
        .arg("--ca-file")
        .arg(&world.tls.ca)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("nexmile-cli runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("call.ended") || line.contains("\"devices\"") {
            eprintln!("{profile}: {line}");
        }
    }
    let _ = child.wait().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (speech_a, speech_b, out, receiver, plain) = match &args[..] {
        [a, b, out, receiver] => (a, b, out, receiver, false),
        [a, b, out, receiver, plain] if plain == "plain" => (a, b, out, receiver, true),
        _ => {
            eprintln!("usage: sound <speech_a.raw> <speech_b.raw> <out-dir> app|chromium [plain]");
            std::process::exit(2);
        }
    };
    let (speech_a, speech_b) = (read_pcm(Path::new(speech_a)), read_pcm(Path::new(speech_b)));
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("the output folder");
    let world = world(1.0).await;
    let (a_link, b_link) = {
        let unique = world.demo.issue_unique_id("airi").await;
        (
            format!("{LINK}/activateExUser/?site=newsite1&uniqueId={unique}"),
            format!("{LINK}/activateExUser/?site=newsite1&user=hanako&pass=hanako-pw"),
        )
    };
    cli(&world, "a", &["open", &a_link], &[]).await;
    if plain {
        let site = nexmile_core::applink::SiteCode::new("newsite1").expect("a site code");
        let settings = nexmile_client::profiles::DeviceSettings {
            noise_suppression: false,
            gain_control: false,
            ..Default::default()
        };
        for profile in ["a", "b"] {
            nexmile_client::profiles::Profiles::open(world.root.join(profile))
                .and_then(|p| p.save_device_settings(&site, &settings))
                .expect("the settings are saved");
        }
    }
    let sound = SoundServer::start();
    let (a_env, b_env) = (sound.app_devices("a"), sound.app_devices("b"));
    // B's room: its speaker heard by its microphone.
    sound.loop_back("b_spk.monitor", "b_mic", Duration::from_millis(50), -10.0);
    let talk = Duration::from_millis(speech_a.len() as u64 * 1000 / 48_000);
    let call_ms = (talk + Duration::from_secs(6)).as_millis().to_string();
    let a_heard = sound.record("a_spk.monitor");
    let b_heard = sound.record("b_spk.monitor");
    let b_mic = sound.record("b_mic.monitor");
    let a_mic = sound.record("a_mic.monitor");
    let a = cli(
        &world,
        "a",
        &[
            "--devices",
            "listen",
            "--site",
            "newsite1",
            "--calls",
            "1",
            "--answer-after",
            "300",
        ],
        &a_env,
    );
    let b = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        if receiver == "chromium" {
            sound.remap_source("b_mic.monitor", "b_mic_in");
            let b_env: Vec<(String, String)> = b_env
                .iter()
                .map(|(k, v)| match k.as_str() {
                    "PULSE_SOURCE" => (k.clone(), "b_mic_in".to_owned()),
                    _ => (k.clone(), v.clone()),
                })
                .collect();
            let unique = world.demo.issue_unique_id("taro").await;
            let url = format!(
                "{}/sbxapp/makecall/?site=newsite1&calleeId=airi&video=0&uniqueId={unique}&allowWeb=1",
                world.server.url()
            );
            let ui = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui");
            let seconds = (talk + Duration::from_secs(5)).as_secs().to_string();
            let status = Command::new("node")
                .current_dir(&ui)
                .env("NEXMILE_SERVER_CERT", &world.tls.cert)
                .env("NEXMILE_REAL_DEVICES", "1")
                .envs(b_env.iter().map(|(k, v)| (k, v)))
                .arg("browser/open.mjs")
                .arg(url)
                .arg(out.join("chromium.png"))
                .arg(seconds)
                .args(["--click", "[data-end]"])
                .stdout(Stdio::null())
                .status()
                .await
                .expect("node runs the Playwright driver");
            eprintln!("chromium: {status}");
        } else {
            cli(&world, "b", &["open", &b_link], &[]).await;
            let call = format!("{LINK}/makecall/?site=newsite1&calleeId=airi&video=0");
            cli(
                &world,
                "b",
                &["--devices", "open", &call, "--hangup-after", &call_ms],
                &b_env,
            )
            .await;
        }
    };
    // A talks from 3 s after the call starts; B talks over the second half.
    let talkers = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let a_mouth = sound.play("a_mic", &speech_a);
        tokio::time::sleep(talk / 2).await;
        let b_mouth = sound.play("b_mic", &speech_b[..speech_b.len().min(speech_a.len() / 2)]);
        tokio::time::sleep(talk / 2 + Duration::from_secs(1)).await;
        drop((a_mouth, b_mouth));
    };
    let whole = async { tokio::join!(a, b, talkers) };
    if tokio::time::timeout(talk + Duration::from_secs(60), whole)
        .await
        .is_err()
    {
        eprintln!("the call did not complete; see {}", out.display());
        std::process::exit(1);
    }
    write_pcm(&out.join("a_heard.raw"), &a_heard.stop());
    write_pcm(&out.join("b_heard.raw"), &b_heard.stop());
    write_pcm(&out.join("b_mic.raw"), &b_mic.stop());
    write_pcm(&out.join("a_mic.raw"), &a_mic.stop());
    world.server.stop().await;
}
