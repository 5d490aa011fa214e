//! What a browser sees when an app link was not taken by an installed app
//! (chapter 6): the server hosts the app-link address (`[apps] link_path`,
//! `/sbxapp` by default), so the link lands here. With `allowWeb=1` the user continues in the web version; otherwise
//! the partner is told the app is missing (§6.2 アプリ未インストール報告)
//! and the page says how to install it. `/.well-known/*` lets real Android
//! and iOS devices open the installed app instead of this page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use nexmile_core::applink::{AppLink, AppLinkBase, AppLinkError, AppLinkParser, SPEC_BASE};
use nexmile_core::secret::Secret;
use nexmile_core::wire::auth::NotInstalledReport;
use nexmile_core::wire::codes::OsType;
use serde_json::{Value, json};

use crate::config::Config;
use crate::partner::REPLY_TIMEOUT;
use crate::services::Services;

/// `GET /sbxapp/{function}/?…`: the link the app did not take.
pub(crate) async fn landing(
    State(services): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    Path(function): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    // The same parser as the app's, on the same link under the spec's base.
    let address = format!("{SPEC_BASE}/{function}/?{query}");
    let link = match AppLinkParser::default().parse(&address) {
        Ok(link) => link,
        Err(e) => return (StatusCode::BAD_REQUEST, bad_link(&e)).into_response(),
    };
    let Some(site) = services.config.site(link.site.as_str()) else {
        let e = format!("site={}", link.site.as_str());
        return (StatusCode::NOT_FOUND, unknown_site(&e)).into_response();
    };
    if link.allow_web {
        // The web version reads the same link from its own address.
        return Redirect::to(&format!("/web/{function}/?{query}")).into_response();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let os = OsType::from_user_agent(&ua);
    let ip = crate::limits::client_ip(peer.ip(), &headers, &services.config.server.trusted_proxies);
    if let (Some(url), Some(unique_id)) = (site.not_installed_url.clone(), link.unique_id.clone())
        && services
            .limits
            .report_not_installed(ip, &site.code, &unique_id)
    {
        let user_id = services
            .store
            .user_of_unique_id(&site.code, &unique_id)
            .await
            .unwrap_or_else(|e| {
                tracing::error!("not-installed report: {e}");
                None
            });
        let report = NotInstalledReport {
            site_key: site.api_key.clone(),
            user_id,
            // The server never keeps a member's password (§6.2 allows it to be NULL).
            user_pw: None::<Secret>,
            unique_id,
            ua,
            os_type: os,
        };
        let (services, site) = (Arc::clone(&services), site.clone());
        // The page does not wait for the partner: a slow partner must not
        // keep the user from the install links.
        tokio::spawn(async move {
            let sent = services
                .partner
                .get(&site, &url, &report.to_query(), REPLY_TIMEOUT)
                .await;
            // §6.2 ④: the answer is its HTTP status alone.
            match sent {
                Ok(d) if (200..300).contains(&d.status) => {
                    tracing::info!("not-installed report to {}: delivered", site.code);
                }
                Ok(d) => tracing::warn!("not-installed report to {}: HTTP {}", site.code, d.status),
                Err(e) => tracing::warn!("not-installed report to {}: {e}", site.code),
            }
        });
    }
    install_page(
        &services.config,
        &link,
        os,
        site.name.as_deref().unwrap_or(&site.code),
    )
    .into_response()
}

fn page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="ja" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (maud::PreEscaped(STYLE)) }
                }
                body { main { (body) } }
            }
        }
        .into_string(),
    )
}

const STYLE: &str = "body{margin:0;font-family:'Noto Sans CJK JP','Hiragino Sans',sans-serif;\
background:#f5f6f8;color:#1d1f24}main{max-width:520px;margin:48px auto;padding:28px;\
background:#fff;border-radius:16px;box-shadow:0 2px 12px rgba(0,0,0,.08)}h1{font-size:22px;\
margin:0 0 4px}.en{color:#6b7280;font-size:14px;margin:0 0 16px}a.button{display:block;\
text-align:center;padding:14px;margin:12px 0;border-radius:12px;background:#e8552d;color:#fff;\
text-decoration:none;font-weight:700}a.button.quiet{background:#eef0f3;color:#1d1f24}\
code{background:#f1f2f4;padding:2px 6px;border-radius:6px}";

fn bad_link(e: &AppLinkError) -> Html<String> {
    page(
        "リンクが正しくありません",
        html! {
            h1 { "リンクが正しくありません" }
            p.en { "This link is not valid." }
            p { "リンクを送ったサイトにお問い合わせください。" }
            p.en { (e.to_string()) }
            p { code { (e.code()) } @if let Some(p) = e.parameter() { " " code { (p) } } }
        },
    )
}

fn unknown_site(what: &str) -> Html<String> {
    page(
        "サイトが見つかりません",
        html! {
            h1 { "このサイトは Nexmile に登録されていません" }
            p.en { "This site is not registered with Nexmile." }
            p { code { (what) } }
        },
    )
}

/// Where the user gets the app, for the platform the browser runs on, and
/// a way into an installed desktop app whose browser did not hand it the link.
fn install_page(config: &Config, link: &AppLink, os: OsType, site_name: &str) -> Html<String> {
    let apps = &config.apps;
    let (store, store_en) = match os {
        OsType::Android => (apps.android_store_url.as_deref(), "Get it on Google Play"),
        OsType::Ios => (apps.ios_store_url.as_deref(), "Download on the App Store"),
        OsType::Browser => (
            apps.desktop_download_url.as_deref(),
            "Download for your computer",
        ),
    };
    let store_ja = match os {
        OsType::Android => "Google Play で入手",
        OsType::Ios => "App Store からダウンロード",
        OsType::Browser => "パソコン版をダウンロード",
    };
    let open_in_app = link.to_url(&AppLinkBase::CustomScheme);
    page(
        "Nexmile アプリが必要です",
        html! {
            h1 { "Nexmile アプリが必要です" }
            p.en { "The Nexmile app is needed to continue." }
            p { (site_name) " のビデオ通話・ライブ配信は Nexmile アプリで利用できます。アプリを入れてから、もう一度サイトのリンクを開いてください。" }
            p.en { "Install the app, then open the link on the site again." }
            @if let Some(url) = store {
                a.button href=(url) data-store=(format!("{os:?}").to_lowercase()) { (store_ja) " / " (store_en) }
            }
            a.button.quiet href=(open_in_app) { "アプリで開く / Open in the app" }
        },
    )
}

/// `/.well-known/assetlinks.json` (Android App Links): the app's package and
/// signing certificates may handle this host's links.
pub(crate) async fn asset_links(State(config): State<Arc<Config>>) -> Response {
    let apps = &config.apps;
    let Some(package) = &apps.android_package else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Json(json!([{
        "relation": ["delegate_permission/common.handle_all_urls"],
        "target": {
            "namespace": "android_app",
            "package_name": package,
            "sha256_cert_fingerprints": apps.android_sha256_cert_fingerprints,
        }
    }]))
    .into_response()
}

/// `/.well-known/apple-app-site-association` (iOS universal links): the apps
/// that open the app-link paths of this host.
pub(crate) async fn apple_app_site_association(State(config): State<Arc<Config>>) -> Response {
    let ids = &config.apps.ios_app_ids;
    if ids.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let paths = format!("{}/*", config.apps.link_path());
    let association: Value = json!({
        "applinks": {
            "details": [{
                "appIDs": ids,
                "components": [{ "/": paths, "comment": "Nexmile app links (chapter 2)" }]
            }]
        }
    });
    Json(association).into_response()
}
