//! The pages people look at: the users with their app links, the request
//! log, and the users' pictures.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use nexmile_core::applink::{AppLink, AppLinkAction, Credentials, VideoSettingMode};
use nexmile_core::codec::decode_json_body;
use nexmile_core::secret::Secret;

use crate::html::{escape, page};
use crate::reply::SiteFailure;
use crate::site::{SharedSite, Site, now};
use crate::store::{UNIQUE_ID_LIFETIME, UserAccount};

/// One app link on the page, labelled in both languages.
struct LabelledLink {
    ja: String,
    en: String,
    url: String,
}

pub(crate) async fn index(State(site): State<SharedSite>) -> Result<Html<String>, SiteFailure> {
    let users = site.store.users().await?;
    let mut rows = String::new();
    for user in &users {
        let links = links_for(&site, user, &users).await?;
        let items: String = links
            .iter()
            .map(|l| {
                format!(
                    "<li><a href=\"{}\">{}</a> <span class=\"en\">{}</span></li>",
                    escape(&l.url),
                    escape(&l.ja),
                    escape(&l.en)
                )
            })
            .collect();
        rows.push_str(&format!(
            "<tr><td><img class=\"avatar\" src=\"{avatar}\" alt=\"\"> <code>{id}</code></td>\
             <td>{name}</td><td class=\"num\">{points}</td><td>{tariff}</td>\
             <td><ul class=\"links\">{items}</ul></td></tr>",
            avatar = escape(&site.avatar_url(&user.user_id)),
            id = escape(&user.user_id),
            name = escape(&user.name),
            points = user.points,
            tariff = tariff(user),
        ));
    }
    let body = format!(
        "<p>Nexmile サーバと連携する連携先サイトの見本です。リンクをスマートフォンやパソコンで開くと \
         Nexmile アプリが起動します。ワンタイムIDのリンクは一度だけ、{minutes}分以内に使えます\
         （ページを開くたびに新しくなります）。<br><span class=\"en\">A sample partner site for \
         Nexmile. Opening a link starts the Nexmile app. One-time-ID links work once, within \
         {minutes} minutes (each page view makes new ones).</span></p>\
         <dl class=\"config\">\
         <dt>サイトコード <span class=\"en\">site code</span></dt><dd>{code}</dd>\
         <dt>Nexmile サーバ <span class=\"en\">server</span></dt><dd>{server}</dd>\
         <dt>このサイト <span class=\"en\">this site</span></dt><dd>{url}</dd>\
         <dt>ポイント単価 <span class=\"en\">point price</span></dt><dd>1 pt = {yen} 円</dd></dl>\
         <table><tr><th>ユーザID <span class=\"en\">user</span></th>\
         <th>名前 <span class=\"en\">name</span></th><th>ポイント <span class=\"en\">points</span></th>\
         <th>通話料金 <span class=\"en\">call tariff</span></th>\
         <th>アプリリンク <span class=\"en\">app links</span></th></tr>{rows}</table>",
        minutes = UNIQUE_ID_LIFETIME.as_secs() / 60,
        code = escape(site.site_code.as_str()),
        server = escape(&site.config.nexmile_url),
        url = escape(&site.url),
        yen = crate::site::POINT_PRICE_YEN,
    );
    Ok(page(
        "Nexmile 連携デモサイト",
        "Nexmile partner demo",
        &body,
    ))
}

fn tariff(user: &UserAccount) -> String {
    if user.call_unit_sec == 0 || user.call_unit_price == 0 {
        return "無料 <span class=\"en\">free</span>".into();
    }
    let payer = if user.paid_callee {
        "受信者負担 <span class=\"en\">callee pays</span>"
    } else {
        "発信者負担 <span class=\"en\">caller pays</span>"
    };
    format!(
        "{price}円 / {sec}秒 <span class=\"en\">{price} yen per {sec} s</span><br>{payer}",
        price = user.call_unit_price,
        sec = user.call_unit_sec
    )
}

/// The links for acting as `user`: register in the app (by a fresh one-time
/// ID, or by ID and password), the video settings, and a call to everyone else.
async fn links_for(
    site: &Site,
    user: &UserAccount,
    everyone: &[UserAccount],
) -> Result<Vec<LabelledLink>, sqlx::Error> {
    let unique_id = site.store.issue_unique_id(&user.user_id, now()).await?;
    let link = |unique_id: Option<String>, action: AppLinkAction| {
        AppLink {
            site: site.site_code.clone(),
            unique_id,
            allow_web: false,
            return_url: site.return_url(),
            action,
        }
        .to_url(&site.app_link_base)
    };
    let mut links = vec![
        LabelledLink {
            ja: "ライブ配信を始める".into(),
            en: "broadcast a live".into(),
            url: link(
                None,
                AppLinkAction::BroadcastLive {
                    link_id: format!("room-{}", user.user_id),
                },
            ),
        },
        LabelledLink {
            ja: "ラジオ配信を始める（音声のみ）".into(),
            en: "broadcast a radio live (sound only)".into(),
            url: link(
                None,
                AppLinkAction::BroadcastLive {
                    link_id: format!("{}{}", super::live_service::RADIO_PREFIX, user.user_id),
                },
            ),
        },
        LabelledLink {
            ja: "アプリに登録（ワンタイムID）".into(),
            en: "register in the app (one-time ID)".into(),
            url: link(
                Some(unique_id),
                AppLinkAction::ActivateExUser {
                    credentials: None,
                    named_user: None,
                },
            ),
        },
        LabelledLink {
            ja: "アプリに登録（ID・パスワード）".into(),
            en: "register with ID and password".into(),
            url: link(
                None,
                AppLinkAction::ActivateExUser {
                    credentials: Some(Credentials {
                        user: user.user_id.clone(),
                        pass: Secret::new(user.password.clone()),
                    }),
                    named_user: None,
                },
            ),
        },
        LabelledLink {
            ja: "ビデオテスト".into(),
            en: "video test".into(),
            url: link(
                None,
                AppLinkAction::VideoSetting {
                    mode: VideoSettingMode::LoopbackTest,
                },
            ),
        },
        LabelledLink {
            ja: "エフェクトをダウンロード".into(),
            en: "download effects".into(),
            url: link(
                None,
                AppLinkAction::VideoSetting {
                    mode: VideoSettingMode::DownloadEffects,
                },
            ),
        },
    ];
    links.extend(
        everyone
            .iter()
            .filter(|other| other.user_id != user.user_id)
            .map(|callee| LabelledLink {
                ja: format!("{}さんにビデオ通話", callee.name),
                en: format!("video call to {}", callee.user_id),
                url: link(
                    None,
                    AppLinkAction::MakeCall {
                        callee_id: callee.user_id.clone(),
                        video: true,
                        caller_sub_id: None,
                        callee_sub_id: None,
                    },
                ),
            }),
    );
    // Every live on air but the user's own, to watch.
    links.extend(
        site.store
            .lives_on_air()
            .await?
            .into_iter()
            .filter(|live| live.liver_id != user.user_id)
            .map(|live| LabelledLink {
                ja: format!("「{}」を視聴", live.title),
                en: format!("watch {}'s live", live.liver_id),
                url: link(
                    None,
                    AppLinkAction::ViewLive {
                        live_token: live.live_token,
                        link_id: live.link_id,
                    },
                ),
            }),
    );
    Ok(links)
}

/// How many requests the log page shows, newest first.
const LOG_PAGE_ROWS: usize = 300;

pub(crate) async fn log(State(site): State<SharedSite>) -> Result<Html<String>, SiteFailure> {
    let entries = site.store.logged_requests().await?;
    let rows: String = entries
        .iter()
        .rev()
        .take(LOG_PAGE_ROWS)
        .map(|e| {
            let signature_class = if e.signature.starts_with("invalid") {
                " class=\"bad\""
            } else {
                ""
            };
            format!(
                "<tr><td class=\"num\">{id}</td><td>{at}</td><td>{direction}</td>\
                 <td>{method} <code>{path}</code></td><td><pre>{query}</pre></td>\
                 <td><pre>{body}</pre></td><td><code>{request_id}</code></td>\
                 <td{signature_class}>{signature}</td><td class=\"num\">{status}</td>\
                 <td><pre>{reply}</pre></td></tr>",
                id = e.id,
                at = escape(&e.at),
                direction = if e.direction == "in" {
                    "受信 in"
                } else {
                    "送信 out"
                },
                method = escape(&e.method),
                path = escape(&e.path),
                query = escape(&e.query),
                body = escape(&readable_body(&e.body)),
                request_id = escape(e.request_id.as_deref().unwrap_or("")),
                signature = escape(&e.signature),
                status = e
                    .reply_status
                    .map_or_else(|| "…".to_owned(), |s| s.to_string()),
                reply = escape(e.reply_body.as_deref().unwrap_or("")),
            )
        })
        .collect();
    let body = format!(
        "<p>Nexmile サーバとの間のリクエスト（新しい順、最大{LOG_PAGE_ROWS}件）。\
         パスワードは伏せてあります。<br><span class=\"en\">Requests between this site and the \
         Nexmile server, newest first (at most {LOG_PAGE_ROWS}); passwords are masked.</span></p>\
         <table><tr><th>#</th><th>時刻 <span class=\"en\">time</span></th>\
         <th>向き <span class=\"en\">dir</span></th><th>要求 <span class=\"en\">request</span></th>\
         <th>query</th><th>body</th><th>request id</th>\
         <th>署名 <span class=\"en\">signature</span></th><th>HTTP</th>\
         <th>応答 <span class=\"en\">reply</span></th></tr>{rows}</table>"
    );
    Ok(page("リクエストログ", "Request log", &body))
}

/// A percent-encoded JSON body shown as the JSON it carries.
fn readable_body(body: &str) -> String {
    decode_json_body::<serde_json::Value>(body.as_bytes())
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| body.to_owned())
}

const AVATAR_COLOURS: [&str; 6] = [
    "#e57373", "#64b5f6", "#81c784", "#ffb74d", "#ba68c8", "#4db6ac",
];

/// `/avatar/<userId>.svg`: the user's initial on a coloured disc, for
/// profileImageUrl when the user has no picture of their own.
/// The campaign banner lives show (§5.3.1 specialUrls).
pub(crate) async fn banner() -> Response {
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"90\" viewBox=\"0 0 360 90\">\
        <rect width=\"360\" height=\"90\" rx=\"14\" fill=\"#e4572e\"/>\
        <text x=\"180\" y=\"42\" font-size=\"24\" text-anchor=\"middle\" fill=\"#fff\" font-family=\"sans-serif\">ギフトキャンペーン開催中</text>\
        <text x=\"180\" y=\"70\" font-size=\"15\" text-anchor=\"middle\" fill=\"#ffe0d6\" font-family=\"sans-serif\">Gift campaign now on</text></svg>";
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

pub(crate) async fn avatar(
    State(site): State<SharedSite>,
    Path(file): Path<String>,
) -> Result<Response, SiteFailure> {
    let user_id = file.strip_suffix(".svg").unwrap_or(&file);
    let Some(user) = site.store.user(user_id).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let initial: String = user.name.chars().take(1).collect();
    let colour_index = user.user_id.bytes().map(usize::from).sum::<usize>() % AVATAR_COLOURS.len();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"128\" height=\"128\" viewBox=\"0 0 128 128\">\
         <circle cx=\"64\" cy=\"64\" r=\"64\" fill=\"{colour}\"/>\
         <text x=\"64\" y=\"84\" font-size=\"60\" text-anchor=\"middle\" fill=\"#fff\" \
         font-family=\"sans-serif\">{initial}</text></svg>",
        colour = AVATAR_COLOURS[colour_index],
        initial = escape(&initial),
    );
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
