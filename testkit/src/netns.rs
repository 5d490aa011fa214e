//! A network namespace for one test: another "machine" joined to this one by
//! a veth pair (`tests/netns.sh`), where a test runs an app behind loss or a
//! bandwidth cap that the kernel applies. Removed when dropped, and by the
//! script's `up` if a crashed run left it behind.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

pub struct Namespace {
    name: String,
    /// This host's end of the pair: where the namespace reaches the server.
    pub host: IpAddr,
    /// The namespace's own address.
    pub inside: IpAddr,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/netns.sh")
}

fn run(args: &[&str]) {
    let out = Command::new(script())
        .args(args)
        .output()
        .expect("tests/netns.sh runs");
    assert!(
        out.status.success(),
        "tests/netns.sh {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Namespace {
    /// A fresh namespace on its own /24 (10.1xx.n.0, distinct per process
    /// and per namespace of the process).
    pub fn up() -> Self {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let octet = 100 + (pid % 100) as u8;
        // The process's own pid, so that a later run can tell a leftover
        // (its process gone) and remove it; one digit of `n` keeps the
        // interface names within 15 characters.
        let name = format!("{pid}-{}", n % 10);
        run(&["up", &name, &format!("10.{octet}.{n}")]);
        Self {
            name,
            host: IpAddr::V4(Ipv4Addr::new(10, octet, n, 1)),
            inside: IpAddr::V4(Ipv4Addr::new(10, octet, n, 2)),
        }
    }

    /// Drops `percent` % of the UDP packets arriving in the namespace.
    pub fn lose_arriving_udp(&self, percent: u8) {
        run(&["loss", &self.name, &percent.to_string()]);
    }

    /// Caps what arrives in the namespace at `kbit` kbit/s: beyond it a
    /// queue of 100 ms fills and drops, as a slow access link does.
    pub fn cap_arriving(&self, kbit: u32) {
        run(&["rate", &self.name, &kbit.to_string()]);
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &format!("nexmile-{}", self.name)])
            .arg(program);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.name]).status();
    }
}
