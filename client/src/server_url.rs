//! The address of the Nexmile server, checked once when the app starts: the
//! session token, passwords and the partner's one-time IDs go to it, so it
//! is https, or plain http only on this machine's loopback (demo and tests).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error("the server address {0:?} is not a URL")]
    NotUrl(String),
    #[error(
        "the server address {0:?} is not https; plain http is only allowed to this machine (127.0.0.1, ::1, localhost)"
    )]
    Insecure(String),
    #[error("no certificate authority can be read from {path}: {detail}")]
    Authority { path: String, detail: String },
}

/// `https://host[:port]` (no trailing slash), or `http://` to loopback, and
/// who may vouch for its certificate besides the platform's roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    base: String,
    loopback: bool,
    /// A private deployment's own authority (a company CA; the tests' and
    /// `make run`'s development CA), trusted beside the platform's roots.
    extra_roots: Arc<Vec<CertificateDer<'static>>>,
}

impl ServerUrl {
    pub fn parse(text: &str) -> Result<Self, ServerUrlError> {
        let url = url::Url::parse(text).map_err(|_| ServerUrlError::NotUrl(text.to_owned()))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => return Err(ServerUrlError::NotUrl(text.to_owned())),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(ServerUrlError::Insecure(text.to_owned())),
            _ => return Err(ServerUrlError::NotUrl(text.to_owned())),
        }
        Ok(Self {
            base: text.trim_end_matches('/').to_owned(),
            loopback,
            extra_roots: Arc::default(),
        })
    }

    /// Also trusts the certificate authorities of the PEM file at `path`.
    pub fn trusting(mut self, path: &std::path::Path) -> Result<Self, ServerUrlError> {
        let authority_error = |detail: String| ServerUrlError::Authority {
            path: path.display().to_string(),
            detail,
        };
        let roots = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| authority_error(e.to_string()))?;
        if roots.is_empty() {
            return Err(authority_error("no CERTIFICATE in it".into()));
        }
        self.extra_roots = Arc::new(roots);
        Ok(self)
    }

    /// For HTTP requests: `{base}/api/…`.
    pub fn http(&self) -> &str {
        &self.base
    }

    /// The signalling WebSocket: `wss://…/ws` (`ws://` only on loopback).
    pub fn websocket(&self) -> String {
        let rest = self.base.split_once("://").map_or("", |(_, rest)| rest);
        let scheme = if self.base.starts_with("https://") {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{rest}/ws")
    }

    /// The server runs on this machine: media stays on loopback too.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// TLS for the signalling WebSocket, as reqwest verifies https: ring, and
    /// the platform's verifier with its roots (on Linux the system store, or
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` where set) plus [`Self::trusting`]'s.
    pub(crate) fn tls_connector(&self) -> Result<tokio_tungstenite::Connector, rustls::Error> {
        crate::install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.extra_roots.iter().cloned(),
            Arc::clone(&provider),
        )?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous() // only in name: this is the platform's own verifier
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
    }

    /// An HTTP client for this server, trusting what [`Self::tls_connector`] trusts.
    pub fn http_client(&self) -> reqwest::Client {
        crate::install_crypto_provider();
        let roots = self
            .extra_roots
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der).ok());
        reqwest::Client::builder()
            .tls_certs_merge(roots)
            .build()
            .expect("a TLS client with the platform's roots")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_plain_http_only_on_loopback() {
        let remote = ServerUrl::parse("https://sbx.stream-works.biz/").unwrap();
        assert_eq!(remote.http(), "https://sbx.stream-works.biz");
        assert_eq!(remote.websocket(), "wss://sbx.stream-works.biz/ws");
        assert!(!remote.is_loopback());
        for local in [
            "http://127.0.0.1:7443",
            "http://127.9.9.9:1",
            "http://[::1]:7443",
            "http://localhost:7443",
            "https://127.0.0.1:7443",
        ] {
            assert!(ServerUrl::parse(local).unwrap().is_loopback(), "{local}");
        }
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:7443")
                .unwrap()
                .websocket(),
            "ws://127.0.0.1:7443/ws"
        );
        for insecure in [
            "http://sbx.stream-works.biz",
            "http://192.168.1.10:7443",
            "http://localhost.evil.example",
            "http://[::ffff:10.0.0.1]/",
        ] {
            assert_eq!(
                ServerUrl::parse(insecure),
                Err(ServerUrlError::Insecure(insecure.into())),
                "{insecure}"
            );
        }
        for nonsense in ["ws://127.0.0.1", "sbx.stream-works.biz", "ftp://x", ""] {
            assert!(
                matches!(ServerUrl::parse(nonsense), Err(ServerUrlError::NotUrl(_))),
                "{nonsense}"
            );
        }
    }
}
