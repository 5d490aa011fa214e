//! HTTPS and WSS on the server's own listener: the certificate files of
//! `[server.tls]`, reloaded when they change; the plain-HTTP listener that
//! sends browsers to https; and the development certificate authority that
//! `make run` and the tests issue the server's certificate from.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::Uri;
use axum::response::Redirect;
use axum_server::tls_rustls::RustlsConfig;

use crate::config::TlsSection;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot load the TLS certificate {cert} and key {key}: {source}")]
    Load {
        cert: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the development certificates in {dir}: {detail}")]
    Issue { dir: PathBuf, detail: String },
}

/// How often the certificate files are looked at. A renewal is picked up
/// within this; new connections get the new certificate, open ones keep theirs.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

pub async fn load(tls: &TlsSection) -> Result<RustlsConfig, TlsError> {
    RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|source| TlsError::Load {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            source,
        })
}

/// When the files were last changed, as a pair: a renewal may replace either.
fn stamp(tls: &TlsSection) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&tls.cert)?, modified(&tls.key)?))
}

/// Reloads `config` whenever the files change. A pair that does not load (a
/// renewal caught half-written, a key that does not match) is logged and the
/// certificate in use is kept; the next change is tried again.
pub fn watch(config: RustlsConfig, tls: TlsSection) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut loaded = stamp(&tls);
        loop {
            tokio::time::sleep(RELOAD_CHECK).await;
            let now = stamp(&tls);
            if now.is_none() || now == loaded {
                continue;
            }
            match config.reload_from_pem_file(&tls.cert, &tls.key).await {
                Ok(()) => {
                    tracing::info!("TLS certificate reloaded from {}", tls.cert.display());
                    loaded = now;
                }
                Err(e) => tracing::warn!(
                    "TLS certificate {} not reloaded, the previous one stays: {e}",
                    tls.cert.display()
                ),
            }
        }
    })
}

/// Every plain-HTTP request answered with a 308 to the same path and query
/// at `public_url`, so a typed `http://` address or an old link still works.
pub fn redirect_to_https(public_url: &str) -> Router {
    let base = public_url.trim_end_matches('/').to_owned();
    Router::new().fallback(move |uri: Uri| {
        let base = base.clone();
        async move {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            Redirect::permanent(&format!("{base}{path}"))
        }
    })
}

/// A certificate authority made on this machine and the server certificate
/// it issued, all PEM. Only for `make run` and tests: a deployment uses a
/// certificate from a public CA (or its company's) through `[server.tls]`.
pub struct DevCertificates {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl DevCertificates {
    /// A new authority, and a certificate for `hosts` (names or IP addresses).
    pub fn issue(hosts: &[&str]) -> Result<Self, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Nexmile development CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut server =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        server.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("localhost"),
        );
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        })
    }

    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, made once: files already
    /// there are kept, so the authority a user's system trusts stays the same.
    pub fn ensure(dir: &Path, hosts: &[&str]) -> Result<DevCertificateFiles, TlsError> {
        let files = DevCertificateFiles::in_dir(dir);
        if files.ca.exists() && files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        let issue_error = |detail: String| TlsError::Issue {
            dir: dir.to_owned(),
            detail,
        };
        let made = Self::issue(hosts).map_err(|e| issue_error(e.to_string()))?;
        made.write(dir).map_err(|e| issue_error(e.to_string()))?;
        Ok(files)
    }

    /// Writes the three files; the key readable by its owner only.
    pub fn write(&self, dir: &Path) -> std::io::Result<DevCertificateFiles> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir)?;
        let files = DevCertificateFiles::in_dir(dir);
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.cert, &self.cert_pem)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&files.key)?
            .write_all(self.key_pem.as_bytes())?;
        Ok(files)
    }
}

pub struct DevCertificateFiles {
    /// What clients trust (`SSL_CERT_FILE`, or the system's store).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevCertificateFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}
