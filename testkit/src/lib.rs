//! The partner demo and the server started inside a test's process on free
//! ports, the server over HTTPS and WSS with a certificate from a
//! certificate authority made for the test, with a scratch directory for
//! profiles and the server's database: what every end-to-end test starts from.

pub mod netns;
pub mod sound;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;

use nexmile_partner_demo::{DemoConfig, PartnerDemo};
use nexmile_server::RunningServer;
use nexmile_server::config::Config;
use nexmile_server::tls::{DevCertificateFiles, DevCertificates};

pub struct World {
    pub demo: PartnerDemo,
    pub server: RunningServer,
    pub root: PathBuf,
    pub config: String,
    /// The test's certificate authority (`ca`), the server's certificate and key.
    pub tls: DevCertificateFiles,
}

/// A binary of the workspace (`nexmile-cli`, `nexmile-server`, `nexmile`),
/// beside the running test's own: `cargo test` builds the binaries of every
/// package that has an integration test, in the same target directory.
pub fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test binary under target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `make test`), which builds it",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub async fn world(clock_rate: f64) -> World {
    world_with_gifts(clock_rate, "").await
}

/// [`world`] with more `[[site.gift]]` entries (TOML) in the demo site's catalogue.
pub async fn world_with_gifts(clock_rate: f64, gifts: &str) -> World {
    world_on(LOOPBACK, clock_rate, gifts).await
}

/// A world whose server listens, and carries media, on `ip` (a network
/// namespace's host end) instead of loopback.
pub async fn world_at(ip: IpAddr, clock_rate: f64) -> World {
    world_on(ip, clock_rate, "").await
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn world_on(ip: IpAddr, clock_rate: f64, gifts: &str) -> World {
    world_from(parts(ip, clock_rate, gifts).await).await
}

/// [`world_at`] with the configuration `edit` makes of the usual one (its
/// `[media]` section ends the server's part, before `[apps]`).
pub async fn world_edited(
    ip: IpAddr,
    clock_rate: f64,
    edit: impl FnOnce(String) -> String,
) -> World {
    let mut parts = parts(ip, clock_rate, "").await;
    parts.config = edit(parts.config);
    world_from(parts).await
}

async fn world_from(parts: Parts) -> World {
    let server = nexmile_server::start(Config::parse(&parts.config).expect("config"))
        .await
        .expect("server");
    World {
        demo: parts.demo,
        server,
        root: parts.root,
        config: parts.config,
        tls: parts.tls,
    }
}

/// Everything of a world but the running server.
struct Parts {
    demo: PartnerDemo,
    root: PathBuf,
    config: String,
    tls: DevCertificateFiles,
    port: u16,
}

async fn parts(ip: IpAddr, clock_rate: f64, gifts: &str) -> Parts {
    let port = free_port();
    let root = std::env::temp_dir().join(format!("nexmile-e2e-{}", uuid_like()));
    let tls = DevCertificates::issue(&[&ip.to_string(), "127.0.0.1", "localhost"])
        .expect("a test certificate authority")
        .write(&root.join("tls"))
        .expect("the test's certificates written");
    let demo = PartnerDemo::start(DemoConfig {
        nexmile_url: format!("https://{ip}:{port}"),
        nexmile_ca: Some(std::fs::read_to_string(&tls.ca).expect("the test CA")),
        signing_secret: Some("test-signing-secret".into()),
        calling_timeout_sec: 10,
        ..DemoConfig::in_memory()
    })
    .await
    .expect("partner demo");
    let partner = demo.url();
    // A copy of the demo site's effect files, which a test may change.
    let effects = root.join("site-effects");
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/effects/newsite1"),
        &effects,
    );
    let text = format!(
        r#"
[server]
listen = "{ip}:{port}"
public_url = "https://{ip}:{port}"
database = "sqlite://{db}"
admin_token = "admin-secret"
clock_rate = {clock_rate}
recordings = "{recordings}"
web_dir = "{web}"
[server.tls]
cert = "{cert}"
key = "{key}"
[media]
ips = ["{ip}"]
[apps]
android_package = "jp.nexmile.app"
android_sha256_cert_fingerprints = ["14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5"]
ios_app_ids = ["A1B2C3D4E5.jp.nexmile.app"]
android_store_url = "https://play.google.com/store/apps/details?id=jp.nexmile.app"
ios_store_url = "https://apps.apple.com/jp/app/nexmile/id6450000000"
desktop_download_url = "https://nexmile.jp/download"
[skyway]
admin_tokens = ["skyway-admin-token"]
monthly_limit = 100000
[socialstream]
refresh_interval = 2
[[imageflux.system]]
name = "テスト配信システム"
access_code = "0987654321"
master_name = "管理者"
master_email = "imageflux@example.com"
master_password = "Password123"
[[site]]
code = "newsite1"
name = "デモサイト"
api_key = "test.key"
token = "site-token-1"
signing_secrets = ["test-signing-secret"]
auth_url = "{partner}/auth"
call_service_url = "{partner}/CallService"
live_service_url = "{partner}/liveService"
payment_url = "{partner}/payment"
not_installed_url = "{partner}/notInstalled"
effects_dir = "{effects}"
social_stream = true
[[site.gift]]
kind = "stamp"
category = "1"
item_no = "1"
name = "拍手"
point = 0
liver_point = 0
[[site.gift]]
kind = "gift"
category = "2"
item_no = "1"
name = "ハート"
point = 50
liver_point = 25
file = "gifts/heart.png"
[[site.gift]]
kind = "gift"
category = "3"
item_no = "1"
name = "花火"
point = 500
liver_point = 250
hidden = true
[[site.gift]]
kind = "stamp"
category = "9"
item_no = "1"
name = "こんにちは"
point = 0
liver_point = 0
hidden = true
{gifts}
[[site]]
code = "othersite"
api_key = "other.key"
token = "other-token"
auth_url = "{partner}/auth"
"#,
        db = root.join("nexmile.db").display(),
        cert = tls.cert.display(),
        key = tls.key.display(),
        effects = effects.display(),
        recordings = root.join("recordings").display(),
        web = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../ui/dist-web")
            .display(),
    );
    Parts {
        demo,
        root,
        config: text,
        tls,
        port,
    }
}

/// A world whose server is a process of its own (the `nexmile-server`
/// binary), which a test can kill with SIGKILL or stop with SIGTERM and
/// start again on the same port, database and configuration.
pub struct ServerProcess {
    pub demo: PartnerDemo,
    pub root: PathBuf,
    pub tls: DevCertificateFiles,
    pub url: String,
    binary: PathBuf,
    config: PathBuf,
    running: Option<std::process::Child>,
}

impl ServerProcess {
    pub async fn start(binary: PathBuf, clock_rate: f64) -> Self {
        assert!(
            binary.exists(),
            "{} is missing: `cargo test --workspace` builds it (or `cargo build -p nexmile-server`)",
            binary.display()
        );
        let parts = parts(LOOPBACK, clock_rate, "").await;
        let config = parts.root.join("nexmile.toml");
        std::fs::write(&config, &parts.config).expect("the server's configuration");
        let mut world = Self {
            demo: parts.demo,
            root: parts.root,
            tls: parts.tls,
            url: format!("https://127.0.0.1:{}", parts.port),
            binary,
            config,
            running: None,
        };
        world.start_server().await;
        world
    }

    /// Starts the server and waits until it answers `/health`.
    pub async fn start_server(&mut self) {
        assert!(self.running.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("server.log"))
            .expect("the server's log");
        let child = std::process::Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "nexmile_server=info")
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("nexmile-server starts");
        self.running = Some(child);
        let http = self.http();
        for _ in 0..300 {
            if http
                .get(format!("{}/health", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server did not come up: {}", self.log());
    }

    /// SIGKILL: the process ends at once, as in a crash or an OOM kill.
    pub fn kill(&mut self) {
        let mut child = self.running.take().expect("a running server");
        child.kill().expect("SIGKILL");
        child.wait().expect("the killed server");
    }

    /// SIGTERM, as systemd stops it; returns once the process has exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.running.take().expect("a running server");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill(1)");
        assert!(sent.success(), "SIGTERM not sent");
        child.wait().expect("the stopped server")
    }

    /// What the server has printed in all its runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// An HTTP client that trusts the test's certificate authority.
    pub fn http(&self) -> reqwest::Client {
        trusting_http(&self.tls.ca)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.running.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn trusting_http(ca: &std::path::Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(ca).expect("the test CA");
    reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&ca).expect("a PEM CA")])
        .build()
        .expect("an HTTP client")
}

impl World {
    /// The same world with its server stopped and started again on the same
    /// address and database, with `lines` added to its `[server]` section.
    pub async fn restarted_with(self, lines: &str) -> World {
        self.restarted_with_config(|config| {
            config.replacen("[server]\n", &format!("[server]\n{lines}\n"), 1)
        })
        .await
    }

    /// The same world with its server stopped and started again with the
    /// configuration `edit` makes of the current one.
    pub async fn restarted_with_config(self, edit: impl FnOnce(&str) -> String) -> World {
        let config = edit(&self.config);
        self.server.stop().await;
        let server = nexmile_server::start(Config::parse(&config).expect("config"))
            .await
            .expect("server");
        World {
            demo: self.demo,
            server,
            root: self.root,
            config,
            tls: self.tls,
        }
    }

    /// An HTTP client that trusts the test's certificate authority.
    pub fn http(&self) -> reqwest::Client {
        trusting_http(&self.tls.ca)
    }

    /// `wss://…/ws` of the server, and a connector that trusts the test's CA.
    pub fn websocket(&self) -> (String, tokio_tungstenite::Connector) {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.tls.ca).expect("the test CA") {
            roots.add(cert.expect("a PEM CA")).expect("a usable CA");
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let url = self.server.url().replacen("https://", "wss://", 1) + "/ws";
        (
            url,
            tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(config)),
        )
    }

    /// A partner's request to the server's chapter 7 endpoints
    /// (`/SiteOwner/...`), as the site with `site_key` sends it; the reply's text.
    pub async fn site_owner(&self, path: &str, site_key: &str, body: &str) -> String {
        self.http()
            .post(format!("{}{path}?siteKey={site_key}", self.server.url()))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text reply")
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// ffprobe's view of a media file (Debian's `ffmpeg`, an independent reader):
/// streams, format, and every frame decoded (`-count_frames`). Any complaint
/// on its stderr fails the test, since it means a frame did not decode.
pub fn ffprobe(path: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg; scripts/setup.sh installs it)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe complains about {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe's JSON")
}

/// The stream of `codec` in [`ffprobe`]'s answer.
pub fn probed_stream<'a>(probe: &'a serde_json::Value, codec: &str) -> &'a serde_json::Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_name"] == codec))
        .unwrap_or_else(|| panic!("no {codec} stream in {probe:#}"))
}

/// A number ffprobe gives as a string or a number.
pub fn probed_number(value: &serde_json::Value) -> f64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_f64())
        .unwrap_or_else(|| panic!("not a number: {value}"))
}
