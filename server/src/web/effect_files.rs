//! Effect packages per site (issue 5 ⑥): the files under a site's
//! `effects_dir`, described by a manifest of paths, sizes and SHA-256 hashes,
//! served to that site's activated users. Files are served with `Range`
//! support so a broken download resumes. Face-filter packages
//! (`face-filters/…`) go only to users whose auth reply allowed them
//! (§3.2 ③ enableDownloadEffect); wallpapers and gifts to everyone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nexmile_core::effects::{EffectFile, EffectKind, EffectManifest};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::config::Config;
use crate::error::ApiError;
use crate::services::Services;
use crate::store::Device;

/// Every site's effect files, by site code.
pub struct EffectFiles {
    by_site: HashMap<String, SiteEffects>,
}

impl EffectFiles {
    /// Loads the files of each site that has an `effects_dir`.
    pub fn load(config: &Config) -> Result<Self, EffectsError> {
        let mut by_site = HashMap::new();
        for site in &config.site {
            if let Some(dir) = &site.effects_dir {
                by_site.insert(site.code.clone(), SiteEffects::load(&site.code, dir)?);
            }
        }
        Ok(Self { by_site })
    }
}

/// One site's effect files, hashed once at start.
struct SiteEffects {
    root: PathBuf,
    files: BTreeMap<String, EffectFile>,
}

#[derive(Debug, thiserror::Error)]
#[error("effects of site {site}: {path}: {source}")]
pub struct EffectsError {
    site: String,
    path: PathBuf,
    source: std::io::Error,
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

impl SiteEffects {
    /// Reads and hashes every file under `root` (its README.md excepted).
    fn load(site: &str, root: &Path) -> Result<Self, EffectsError> {
        let error = |path: &Path| {
            let path = path.to_owned();
            let site = site.to_owned();
            move |source| EffectsError { site, path, source }
        };
        let mut paths = Vec::new();
        walk(root, &mut paths).map_err(error(root))?;
        let mut files = BTreeMap::new();
        for path in paths {
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let Some(kind) = EffectKind::of_path(&name) else {
                continue;
            };
            if !nexmile_core::effects::is_contained_path(&name) {
                tracing::warn!(
                    "effects of {site}: {name} is left out; names are letters, digits, '.', '_' and '-'"
                );
                continue;
            }
            let bytes = std::fs::read(&path).map_err(error(&path))?;
            files.insert(
                name.clone(),
                EffectFile {
                    path: name,
                    kind,
                    size: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                },
            );
        }
        Ok(Self {
            root: root.to_owned(),
            files,
        })
    }

    /// The manifest a device may see.
    pub(crate) fn manifest(&self, site: &str, face_filters: bool) -> EffectManifest {
        EffectManifest::new(
            site,
            self.files
                .values()
                .filter(|f| face_filters || f.kind != EffectKind::FaceFilter)
                .cloned()
                .collect(),
        )
    }
}

async fn device_of(services: &Services, headers: &HeaderMap) -> Result<Device, ApiError> {
    match crate::signalling::sessions::device_of_bearer(services, headers).await {
        Ok(Some(device)) => Ok(device),
        Ok(None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "登録が無効です。サイトのアプリリンクから登録し直してください。",
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `GET /api/effects/manifest` (Bearer session token).
pub(crate) async fn manifest(
    State(services): State<Arc<Services>>,
    State(effects): State<Arc<EffectFiles>>,
    headers: HeaderMap,
) -> Response {
    let device = match device_of(&services, &headers).await {
        Ok(device) => device,
        Err(refusal) => return refusal.into_response(),
    };
    let manifest = match effects.by_site.get(&device.site) {
        Some(effects) => effects.manifest(&device.site, device.enable_download_effect),
        None => EffectManifest::new(&device.site, Vec::new()),
    };
    Json(manifest).into_response()
}

/// `GET /api/effects/files/{*path}` (Bearer session token; `Range` honoured).
pub(crate) async fn file(
    State(services): State<Arc<Services>>,
    State(effects): State<Arc<EffectFiles>>,
    UrlPath(path): UrlPath<String>,
    request: Request,
) -> Response {
    let device = match device_of(&services, request.headers()).await {
        Ok(device) => device,
        Err(refusal) => return refusal.into_response(),
    };
    // Only catalogued names are served: no path from the URL reaches the disk.
    let Some((effects, entry)) = effects
        .by_site
        .get(&device.site)
        .and_then(|effects| effects.files.get(&path).map(|entry| (effects, entry)))
    else {
        return ApiError::not_found("その効果ファイルはありません。").into_response();
    };
    if entry.kind == EffectKind::FaceFilter && !device.enable_download_effect {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "フェースフィルターのダウンロードは許可されていません。",
        )
        .into_response();
    }
    let on_disk = effects.root.join(&entry.path);
    match ServeFile::new(on_disk).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}
