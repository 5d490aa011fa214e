//! A deployment behind a reverse proxy: `docs/deploy/nginx.conf` as it is
//! (only the values it marks "test:" replaced), Debian's nginx terminating
//! TLS, the server on plain HTTP behind it. An app registers and runs a
//! video test through it, and plain http is sent to https.

use std::path::Path;
use std::process::Stdio;

use nexmile_testkit::free_port;

use crate::{LINK, Server, World, cli_at, find, world};

/// The example with the test's ports, certificate and folders.
fn nginx_conf(root: &Path, world: &World, http: u16, https: u16, upstream: u16) -> String {
    let example = include_str!("../../docs/deploy/nginx.conf");
    let value = |marker: &str| -> String {
        match marker {
            "pid" => format!("pid {};", root.join("nginx.pid").display()),
            "error_log" => format!("error_log {} info;", root.join("error.log").display()),
            "access_log" => format!("access_log {};", root.join("access.log").display()),
            "upstream" => format!("server 127.0.0.1:{upstream};"),
            "http" => format!("listen 127.0.0.1:{http};"),
            "https" => format!("listen 127.0.0.1:{https} ssl http2;"),
            "cert" => format!("ssl_certificate {};", world.tls.cert.display()),
            "key" => format!("ssl_certificate_key {};", world.tls.key.display()),
            other => panic!("an unknown test: marker {other}"),
        }
    };
    example
        .lines()
        .map(|line| match line.split_once("# test: ") {
            Some((_, "temp")) => {
                let (directive, _) = line.trim().split_once(' ').expect("a directive");
                format!("    {directive} {};", root.join("temp").display())
            }
            Some((_, marker)) => format!("    {}", value(marker.trim())),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// nginx, stopped as its service stops it when the test ends or fails:
/// SIGQUIT, on which the master ends its workers (SIGKILL would leave them).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_nginx_front_carries_registration_signalling_and_redirects() {
    let world = world(1.0).await;
    let (http, https, upstream) = (free_port(), free_port(), free_port());
    // The same deployment, its server now on plain HTTP behind nginx.
    let plain = world
        .config
        .replace(
            &format!("listen = \"{}\"", world.server.addr),
            &format!("listen = \"127.0.0.1:{upstream}\"\ntrusted_proxies = [\"127.0.0.1\"]"),
        )
        .replace(
            &format!("public_url = \"{}\"", world.server.url()),
            &format!("public_url = \"https://127.0.0.1:{https}\""),
        )
        .replace(
            &format!(
                "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
                world.tls.cert.display(),
                world.tls.key.display()
            ),
            "",
        );
    assert!(!plain.contains("[server.tls]"), "{plain}");
    let behind = nexmile_server::start(nexmile_server::config::Config::parse(&plain).unwrap())
        .await
        .expect("the server behind the proxy");
    let root = world.root.join("nginx");
    std::fs::create_dir_all(root.join("temp")).unwrap();
    let conf = root.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(&root, &world, http, https, upstream)).unwrap();
    let _nginx = Nginx(
        std::process::Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (Debian package nginx; scripts/setup.sh installs it)"),
    );
    let front = format!("https://127.0.0.1:{https}");
    let client = world.http();
    let mut health = None;
    for _ in 0..100 {
        if let Ok(reply) = client.get(format!("{front}/health")).send().await {
            health = Some(reply);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let health = health.unwrap_or_else(|| {
        panic!(
            "nginx never answered: {}",
            std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
        )
    });
    assert_eq!(health.status(), 200);
    let hsts = health.headers()["strict-transport-security"]
        .to_str()
        .unwrap();
    assert_eq!(hsts, "max-age=31536000");

    // Plain http is sent to the same path over https.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = no_redirects
        .get(format!(
            "http://127.0.0.1:{http}/web/videoSetting/?site=newsite1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        "https://127.0.0.1/web/videoSetting/?site=newsite1"
    );

    // An app registers and tests its video through the proxy (wss://).
    let server = Server {
        url: front.clone(),
        root: world.root.clone(),
        ca: world.tls.ca.clone(),
    };
    let (events, status) = cli_at(
        &server,
        "hanako",
        &[
            "open",
            &format!("{LINK}/activateExUser/?site=newsite1&user=hanako&pass=hanako-pw"),
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let (events, status) = cli_at(
        &server,
        "hanako",
        &[
            "open",
            &format!("{LINK}/videoSetting/?site=newsite1&download=0"),
            "--duration",
            "2500",
            "--no-effects",
        ],
    )
    .await;
    assert_eq!(status, 0, "{events:?}");
    let summary = find(&events, "video_test.result").unwrap_or_else(|| panic!("{events:?}"));
    assert!(
        summary["media"]["frames_decoded"].as_u64().unwrap() > 10,
        "{summary}"
    );
    assert!(find(&events, "error").is_none(), "{events:?}");
    let access = std::fs::read_to_string(root.join("access.log")).unwrap();
    assert!(access.contains("GET /ws HTTP/1.1\" 101"), "{access}");

    behind.stop().await;
    world.server.stop().await;
}
