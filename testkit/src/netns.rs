//! A network namespace for one test: another "machine" joined to this one by
//! a veth pair (`tests/netns.sh`), where a test runs an app behind loss, a
//! bandwidth cap, a NAT or a firewall that the kernel applies; and a 1:1
//! NAT in front of this host. Removed when dropped, and by the script's
//! next run if a crashed one left it behind.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};

pub struct Namespace {
    name: String,
    /// Where its commands run: the namespace, or the one behind its NAT.
    runs_in: String,
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

fn base36(mut value: u32) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(char::from_digit(value % 36, 36).expect("a digit"));
        value /= 36;
        if value == 0 {
            return digits.iter().rev().collect();
        }
    }
}

/// A name for the script and the /24 of its link (10.1xx.n.0, distinct per
/// process and per namespace of the process).
fn allocate() -> (String, u8, u8) {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let octet = 100 + (pid % 100) as u8;
    // The process's own pid, so that a later run can tell a leftover (its
    // process gone) and remove it; in base 36, so that pid and `n` keep
    // the interface names within 15 characters.
    (format!("{}-{n}", base36(pid)), octet, n)
}

impl Namespace {
    /// A fresh namespace on its own /24.
    pub fn up() -> Self {
        Self::made("up", "")
    }

    /// A machine behind a home router's NAT: commands run at 192.168.1.2
    /// behind a namespace that masquerades for it; `inside` is the router's
    /// outside address, where its packets come from.
    pub fn behind_nat() -> Self {
        Self::made("nat", "-c")
    }

    /// What the script's `command` makes, commands run in the namespace
    /// of its name and `suffix`.
    fn made(command: &str, suffix: &str) -> Self {
        let (name, octet, n) = allocate();
        run(&[command, &name, &format!("10.{octet}.{n}")]);
        Self {
            runs_in: format!("nexmile-{name}{suffix}"),
            name,
            host: IpAddr::V4(Ipv4Addr::new(10, octet, n, 1)),
            inside: IpAddr::V4(Ipv4Addr::new(10, octet, n, 2)),
        }
    }

    /// Its link goes dead: nothing in or out, until [`Self::mend`].
    pub fn cut(&self) {
        run(&["cut", &self.name]);
    }

    pub fn mend(&self) {
        run(&["mend", &self.name]);
    }

    /// A firewall that drops every UDP packet in and out.
    pub fn drop_udp(&self) {
        run(&["drop-udp", &self.name]);
    }

    /// A firewall that drops every UDP packet but those to and from `peer`
    /// (a TURN server's port).
    pub fn allow_udp_only_to(&self, peer: std::net::SocketAddr) {
        run(&[
            "udp-only-to",
            &self.name,
            &peer.ip().to_string(),
            &peer.port().to_string(),
        ]);
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
        command.args(["netns", "exec", &self.runs_in]).arg(program);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.name]).status();
    }
}

/// A 1:1 NAT in front of this host, as a cloud server sits behind its
/// public address: what is sent to `public` reaches `private`, an address
/// of this host that nothing outside it reaches directly.
pub struct PublicAddress {
    name: String,
    pub private: IpAddr,
    pub public: IpAddr,
}

impl PublicAddress {
    pub fn up() -> Self {
        let (name, octet, n) = allocate();
        let (_, _, m) = allocate();
        let private = IpAddr::V4(Ipv4Addr::new(10, octet, n, 1));
        let public = IpAddr::V4(Ipv4Addr::new(10, octet, m, 1));
        run(&["public", &name, &private.to_string(), &public.to_string()]);
        Self {
            name,
            private,
            public,
        }
    }
}

impl Drop for PublicAddress {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.name]).status();
    }
}
