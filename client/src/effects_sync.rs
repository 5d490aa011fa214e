//! Keeps a profile's effect files equal to the server's manifest: fetches
//! only files that are missing or differ, resumes a broken download from
//! where it stopped (`Range`), checks every file's SHA-256 before it takes
//! its place, fetches a bad one again once, and removes files the site no
//! longer has. A file that stays bad is reported and left out: its effect
//! is off until a later sync brings it good.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use nexmile_core::effects::{EffectFile, EffectManifest};
use sha2::{Digest, Sha256};

pub use crate::events::SyncReport;
use crate::server_url::ServerUrl;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    #[error("the server refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the manifest is unreadable: {0}")]
    Manifest(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Progress of the whole sync, after each received piece.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress<'a> {
    pub file: &'a str,
    pub received: u64,
    pub total: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SyncError + '_ {
    move |source| SyncError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sha256_of(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| hex::encode(Sha256::digest(&bytes)))
}

fn part_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path, found);
            } else {
                found.push(path);
            }
        }
    }
}

pub struct EffectSync<'a> {
    http: reqwest::Client,
    server: &'a str,
    session_token: &'a str,
    dir: &'a Path,
}

impl<'a> EffectSync<'a> {
    pub fn new(server: &'a ServerUrl, session_token: &'a str, dir: &'a Path) -> Self {
        Self {
            http: server.http_client(),
            server: server.http(),
            session_token,
            dir,
        }
    }

    async fn get(&self, path: &str, from: u64) -> Result<reqwest::Response, SyncError> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.server))
            .bearer_auth(self.session_token);
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| SyncError::Unreachable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else {
            // The server's own surfaces answer `{"error": "…"}`.
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(body);
            Err(SyncError::Refused {
                status: status.as_u16(),
                message,
            })
        }
    }

    pub async fn manifest(&self) -> Result<EffectManifest, SyncError> {
        self.get("/api/effects/manifest", 0)
            .await?
            .json()
            .await
            .map_err(|e| SyncError::Manifest(e.to_string()))
    }

    /// Brings the folder to the server's manifest, reporting progress.
    pub async fn run(&self, mut progress: impl FnMut(Progress)) -> Result<SyncReport, SyncError> {
        let manifest = self.manifest().await?;
        let mut report = SyncReport {
            version: manifest.version.clone(),
            ..SyncReport::default()
        };
        let total: u64 = manifest.files.iter().map(|f| f.size).sum();
        let mut received = 0;
        let mut wanted = HashSet::new();
        for file in &manifest.files {
            if !file.has_safe_path() {
                report.failed.push((
                    file.path.clone(),
                    "the path leaves the effects folder".into(),
                ));
                continue;
            }
            if !file.has_valid_sha256() {
                report.failed.push((
                    file.path.clone(),
                    "the manifest's SHA-256 is malformed".into(),
                ));
                continue;
            }
            let local = self.dir.join(&file.path);
            wanted.insert(local.clone());
            if sha256_of(&local).as_deref() == Some(file.sha256.as_str()) {
                report.kept += 1;
                received += file.size;
                progress(Progress {
                    file: &file.path,
                    received,
                    total,
                });
                continue;
            }
            match self
                .fetch(file, &local, &mut report, received, total, &mut progress)
                .await
            {
                Ok(()) => report.downloaded.push(file.path.clone()),
                Err(reason) => report.failed.push((file.path.clone(), reason)),
            }
            received += file.size;
        }
        let mut present = Vec::new();
        files_under(self.dir, &mut present);
        for path in present {
            if !wanted.contains(&path) {
                std::fs::remove_file(&path).map_err(io(&path))?;
                if path.extension() != Some("part".as_ref())
                    && let Ok(relative) = path.strip_prefix(self.dir)
                {
                    report
                        .removed
                        .push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        Ok(report)
    }

    /// Downloads one file into place; resumes a `.part`, fetches a bad one again once.
    async fn fetch(
        &self,
        file: &EffectFile,
        local: &Path,
        report: &mut SyncReport,
        done_before: u64,
        total: u64,
        progress: &mut impl FnMut(Progress),
    ) -> Result<(), String> {
        let part = part_of(local);
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        for attempt in 0..2 {
            let have = std::fs::metadata(&part).map_or(0, |m| m.len());
            let from = if attempt == 0 && have < file.size {
                have
            } else {
                0
            };
            let mut response = self
                .get(&format!("/api/effects/files/{}", file.path), from)
                .await
                .map_err(|e| e.to_string())?;
            // 206: the rest follows; 200: the whole file (the range was not honoured).
            let appending = from > 0 && response.status() == reqwest::StatusCode::PARTIAL_CONTENT;
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(appending)
                .truncate(!appending)
                .open(&part)
                .map_err(|e| e.to_string())?;
            let mut got = if appending {
                report.resumed_bytes += from;
                from
            } else {
                0
            };
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                // A server that sends more than the manifest said cannot fill the disk.
                if got + chunk.len() as u64 > file.size {
                    drop(out);
                    let _ = std::fs::remove_file(&part);
                    return Err(format!(
                        "the server sent more than the manifest's {} bytes",
                        file.size
                    ));
                }
                out.write_all(&chunk).map_err(|e| e.to_string())?;
                got += chunk.len() as u64;
                report.bytes_fetched += chunk.len() as u64;
                progress(Progress {
                    file: &file.path,
                    received: done_before + got.min(file.size),
                    total,
                });
            }
            out.sync_all().map_err(|e| e.to_string())?;
            drop(out);
            if sha256_of(&part).as_deref() == Some(file.sha256.as_str()) {
                return std::fs::rename(&part, local).map_err(|e| e.to_string());
            }
            let _ = std::fs::remove_file(&part);
            if attempt == 0 {
                report.refetched.push(file.path.clone());
            }
        }
        Err(format!(
            "the downloaded file does not match its SHA-256 ({}…)",
            &file.sha256[..12]
        ))
    }
}
