//! A private PulseAudio sound server for a test: its own runtime directory
//! and socket, null sinks as speakers, their monitors as microphones. An app
//! started with [`SoundServer::env`] reaches it through ALSA's pulse plugin
//! (what cpal opens on Linux), its microphone and speaker chosen with
//! `PULSE_SOURCE` and `PULSE_SINK`. The test feeds a microphone with
//! `pacat` and records a speaker with `parec`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The rate every test device runs at.
pub const RATE: u32 = 48_000;

pub struct SoundServer {
    dir: PathBuf,
    daemon: Child,
}

impl SoundServer {
    /// Starts the server and waits until it answers.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("nexmile-pulse-{}", crate::uuid_like()));
        std::fs::create_dir_all(&dir).expect("the sound server's directory");
        let socket = dir.join("native");
        let daemon = Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "--use-pid-file=no",
                "--realtime=no",
                "--disable-shm=yes",
                "--log-target=stderr",
                "--load=module-always-sink",
            ])
            .arg(format!(
                "--load=module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .envs(Self::private_env(&dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio (scripts/setup.sh installs it)");
        let server = Self { dir, daemon };
        let started = Instant::now();
        while !server.pactl(&["info"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the sound server did not start"
            );
            thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn private_env(dir: &std::path::Path) -> Vec<(String, String)> {
        let dir = dir.display().to_string();
        vec![
            ("XDG_RUNTIME_DIR".into(), dir.clone()),
            ("PULSE_RUNTIME_PATH".into(), dir.clone()),
            ("PULSE_STATE_PATH".into(), dir.clone()),
            ("HOME".into(), dir),
        ]
    }

    /// The environment that points a process at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = Self::private_env(&self.dir);
        env.push((
            "PULSE_SERVER".into(),
            format!("unix:{}", self.dir.join("native").display()),
        ));
        env
    }

    fn pactl(&self, args: &[&str]) -> std::process::Output {
        Command::new("pactl")
            .args(args)
            .envs(self.env())
            .output()
            .expect("pactl (scripts/setup.sh installs it)")
    }

    /// Adds a mono 48 kHz speaker called `name`; its microphone side is `<name>.monitor`.
    pub fn add_sink(&self, name: &str) {
        let out = self.pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={name}"),
            &format!("rate={RATE}"),
            "channels=1",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A microphone and a speaker for the app called `app`: null sinks
    /// `<app>_mic` (the test plays into it; the app hears its monitor) and
    /// `<app>_spk` (the test records its monitor). Returns the environment
    /// that routes the app's default devices there.
    pub fn app_devices(&self, app: &str) -> Vec<(String, String)> {
        self.add_sink(&format!("{app}_mic"));
        self.add_sink(&format!("{app}_spk"));
        let mut env = self.env();
        env.push(("PULSE_SOURCE".into(), format!("{app}_mic.monitor")));
        env.push(("PULSE_SINK".into(), format!("{app}_spk")));
        env
    }

    /// An ALSA device called `description` in pickers (as apps on this
    /// server's `HOME` see it) that plays into, or records from, `device` (a
    /// sink or a source) of another sound server: a headset of its own,
    /// unplugged by dropping that server.
    pub fn alsa_device(&self, id: &str, description: &str, on: &SoundServer, device: &str) {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(".asoundrc"))
            .expect("the sound server's .asoundrc");
        writeln!(
            file,
            "pcm.{id} {{ type pulse; server \"unix:{}\"; device {device}; hint {{ show on; description \"{description}\" }} }}",
            on.dir.join("native").display()
        )
        .expect("written");
    }

    /// A plain source `name` that hears what `master` (a monitor) hears:
    /// Chromium offers no monitor as a microphone.
    pub fn remap_source(&self, master: &str, name: &str) {
        let out = self.pactl(&[
            "load-module",
            "module-remap-source",
            &format!("master={master}"),
            &format!("source_name={name}"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Routes what `source` hears into `sink` after `delay`, attenuated by
    /// `gain_db` (a speaker heard by a microphone in the same room).
    /// Returns the module's index.
    pub fn loop_back(&self, source: &str, sink: &str, delay: Duration, gain_db: f64) -> String {
        let out = self.pactl(&[
            "load-module",
            "module-loopback",
            &format!("source={source}"),
            &format!("sink={sink}"),
            &format!("latency_msec={}", delay.as_millis()),
            // A room's echo path has one delay: no rate adjustment (both
            // ends run on this server's one clock, so nothing drifts).
            "adjust_time=0",
            "source_dont_move=true",
            "sink_dont_move=true",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let module = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // The loopback's stream into the sink is owned by the module.
        let inputs = self.pactl(&["list", "sink-inputs"]);
        let listing = String::from_utf8_lossy(&inputs.stdout);
        let mut input = None;
        for line in listing.lines().map(str::trim) {
            if let Some(index) = line.strip_prefix("Sink Input #") {
                input = Some(index.to_owned());
            } else if line == format!("Owner Module: {module}")
                && let Some(input) = &input
            {
                let out = self.pactl(&["set-sink-input-volume", input, &format!("{gain_db}dB")]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        module
    }

    /// Plays `pcm` (48 kHz mono) into the sink `name` in real time, until
    /// it ends or the returned guard is dropped.
    pub fn play(&self, sink: &str, pcm: &[i16]) -> Playback {
        let mut child = Command::new("pacat")
            .args(["--playback", "--raw", "--format=s16le", "--channels=1"])
            .arg(format!("--rate={RATE}"))
            .arg(format!("--device={sink}"))
            .arg("--latency-msec=20")
            .envs(self.env())
            .stdin(Stdio::piped())
            .spawn()
            .expect("pacat");
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut stdin = child.stdin.take().expect("pacat's input");
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
        Playback { child }
    }

    /// Starts recording the source `name` (a sink's `.monitor`).
    pub fn record(&self, source: &str) -> Recording {
        let mut child = Command::new("parec")
            .args(["--raw", "--format=s16le", "--channels=1"])
            .arg(format!("--rate={RATE}"))
            .arg(format!("--device={source}"))
            .arg("--latency-msec=20")
            .envs(self.env())
            .stdout(Stdio::piped())
            .spawn()
            .expect("parec");
        let mut stdout = child.stdout.take().expect("parec's output");
        let reader = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect()
        });
        Recording {
            child,
            reader: Some(reader),
        }
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `pacat`; dropping it stops the sound.
pub struct Playback {
    child: Child,
}

impl Drop for Playback {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `parec`.
pub struct Recording {
    child: Child,
    reader: Option<thread::JoinHandle<Vec<i16>>>,
}

impl Recording {
    /// Stops and returns what was recorded, 48 kHz mono. parec is asked to
    /// stop (SIGTERM), so that it writes out what it holds; a kill lost the
    /// tail, and with a short recording on a loaded machine, all of it.
    pub fn stop(mut self) -> Vec<i16> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The strength of the tone `hz` in `samples`, as a share of their power (0..1).
pub fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let (mut re, mut im, mut power) = (0.0, 0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        let x = f64::from(*s);
        let phase = hz * std::f64::consts::TAU * i as f64 / f64::from(RATE);
        re += x * phase.cos();
        im += x * phase.sin();
        power += x * x;
    }
    if power == 0.0 {
        return 0.0;
    }
    2.0 * (re * re + im * im) / samples.len() as f64 / power
}

/// The level of `samples` in dBFS (−120 for silence).
pub fn level_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return -120.0;
    }
    let power: f64 =
        samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
    let rms = power.sqrt() / 32768.0;
    if rms <= 1e-6 {
        -120.0
    } else {
        20.0 * rms.log10()
    }
}
