//! Chapter 5: the live service requests (liveServiceTp 5…97), and §6.2
//! アプリ未インストール報告.
//!
//! The demo's rules: any member may broadcast; a live whose linkId starts
//! with `radio-` is a radio live (sound only); gifts play in the broadcaster's
//! video unless the linkId starts with `overlay-`; a live is paid when its
//! broadcaster charges for calls (the same price per unit), with a 30 s free
//! trial; gifts, stamps and paid comments cost the viewer their points, and
//! are refused when the points are not there; every live is recorded on the
//! server (serverSideRecording); comments show members' pictures, arrivals
//! are greeted in the site's words and paid comments framed in gold.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use nexmile_core::codec::{decode_query, encode_accepted_reply};
use nexmile_core::datetime::{JST, WireDateTime};
use nexmile_core::signature::REQUEST_ID_HEADER;
use nexmile_core::wire::auth::NotInstalledReport;
use nexmile_core::wire::codes::{ServiceChargeType, ServiceOptions};
use nexmile_core::wire::customization::{
    Argb, FrameDesignType, LivePlaceholderColor, LiveSpecialFrame, LiveSpecialGift,
    LiveSpecialMessage, LiveSpecialUrl, QuickPayment, SpecialWording, WordingType,
};
use nexmile_core::wire::live::{LiveRequest, LiveServiceRequest};
use nexmile_core::wire::site_service::{LiveService, ServiceCharge, SiteService, User};

use crate::reply::{Answer, Reply};
use crate::service_type::{ServiceKind, site_key_of};
use crate::site::{POINT_PRICE_YEN, SharedSite, Site, now};
use crate::store::{LiveRecord, UserAccount};

/// A paid live's viewers watch this long before charging starts.
const FREE_TRIAL_SEC: u32 = 30;
/// The spacing the demo asks of comments and gifts (ms).
const COMMENT_INTERVAL_MS: u32 = 500;
const GIFT_INTERVAL_MS: u32 = 500;
/// Comments this long or longer are paid, at this price.
const PAID_COMMENT_LEN: u32 = 50;
const PAID_COMMENT_POINT: u32 = 10;
const LIVER_COMMENT_POINT: u32 = 5;
const INSUFFICIENT_POINTS: &str = "ポイントが不足しています";
/// Viewers with this many points see the site's hidden gift.
const VIP_POINTS: i64 = 1000;
/// A linkId with this prefix names a radio live.
pub(crate) const RADIO_PREFIX: &str = "radio-";
/// A linkId with this prefix plays gifts over the viewer's screen, not in the video.
const OVERLAY_PREFIX: &str = "overlay-";

pub(crate) async fn live_service(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let admitted =
        ServiceKind::Live.admit(&site, query.as_deref(), &body, |r: &LiveServiceRequest| {
            &r.site_token
        });
    let request = match admitted {
        Ok(request) => request,
        Err(refusal) => return Ok(refusal),
    };
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let at = now().0;
    match request.request {
        LiveRequest::BroadcastPrepare(r) => {
            let Some(liver) = site.store.user(&r.live.user_id).await? else {
                return Ok(Reply::refused("配信者が会員として登録されていません。"));
            };
            let title = format!("{}のライブ", liver.name);
            let record = LiveRecord {
                live_token: r.live.live_token.clone(),
                link_id: r.live.link_id.clone(),
                liver_id: liver.user_id.clone(),
                title: title.clone(),
            };
            site.store.live_prepared(&record, at).await?;
            // The broadcaster is not charged: a free serviceCharge.
            let charge = live_charge(&liver, &liver, false);
            prepared(&site, &liver, charge, &r.live.link_id, title, None).await
        }
        LiveRequest::BroadcastStart(r) => {
            site.store.live_on_air(&r.live.live_token, at).await?;
            Ok(Reply::ok(encode_accepted_reply::<()>(None)))
        }
        LiveRequest::BroadcastEnd(r) => {
            site.store.live_ended(&r.live.live_token, at).await?;
            Ok(Reply::empty())
        }
        LiveRequest::BroadcastAbort(r) => {
            site.store.live_ended(&r.live.live_token, at).await?;
            Ok(Reply::empty())
        }
        LiveRequest::ViewPrepare(r) => {
            let Some(viewer) = site.store.user(&r.live.user_id).await? else {
                return Ok(Reply::refused("視聴者が会員として登録されていません。"));
            };
            let Some(liver) = site.store.user(&r.liver.liver_user_id).await? else {
                return Ok(Reply::refused("配信者が見つかりません。"));
            };
            let charge = live_charge(&liver, &viewer, true);
            if !charge.is_free()
                && viewer.points.saturating_mul(i64::from(charge.point_price))
                    < i64::from(charge.unit_price)
            {
                return Ok(Reply::refused(INSUFFICIENT_POINTS));
            }
            let title = format!("{}のライブ", liver.name);
            prepared(&site, &viewer, charge, &r.live.link_id, title, Some(&liver)).await
        }
        LiveRequest::ViewEnd(r) => {
            if r.point > 0 {
                let points = i64::try_from(r.point).unwrap_or(i64::MAX);
                // Viewing was allowed while the points lasted: take what is there.
                let have = site
                    .store
                    .user(&r.live.user_id)
                    .await?
                    .map_or(0, |u| u.points);
                let take = points.min(have.max(0));
                site.store
                    .spend_in_live(
                        &request_id,
                        &r.live.live_token,
                        &r.live.user_id,
                        "viewing",
                        take,
                        at,
                    )
                    .await?;
            }
            Ok(Reply::empty())
        }
        LiveRequest::Stamp(r) | LiveRequest::Gift(r) => {
            let what = format!("item {}-{}", r.item_category, r.item_no);
            spend(
                &site,
                &request_id,
                &r.live.live_token,
                &r.live.user_id,
                &what,
                r.point,
                at,
            )
            .await
        }
        LiveRequest::Comment(r) => {
            spend(
                &site,
                &request_id,
                &r.live.live_token,
                &r.live.user_id,
                "comment",
                r.point,
                at,
            )
            .await
        }
        LiveRequest::PaidBroadcastSwitch(r) => {
            // The broadcaster's price becomes the viewers' tariff, per minute
            // unless the prepare reply gave a unit, after the free trial.
            let charge = ServiceCharge {
                service_charge_type: ServiceChargeType::Live,
                unit_sec: if r.unit_sec > 0 { r.unit_sec } else { 60 },
                unit_price: r.unit_price,
                point_price: POINT_PRICE_YEN,
                current_point: 0,
                free_trial_sec: FREE_TRIAL_SEC,
                auto_charge_trigger_point: 0,
                auto_charge_trigger_url: None,
            };
            let service = SiteService {
                service_charge: Some(charge),
                ..SiteService::default()
            };
            Ok(Reply::ok(encode_accepted_reply(Some((
                "service", &service,
            )))))
        }
        LiveRequest::ViewerUpdate(r) => {
            // §5.3.17: answered like 31, from the viewer's points now.
            let (Some(viewer), Some(liver)) = (
                site.store.user(&r.live.user_id).await?,
                site.store.user(&r.liver.liver_user_id).await?,
            ) else {
                return Ok(Reply::refused("ユーザが見つかりません。"));
            };
            let charge = live_charge(&liver, &viewer, true);
            let title = format!("{}のライブ", liver.name);
            prepared(&site, &viewer, charge, &r.live.link_id, title, Some(&liver)).await
        }
        // 32, 15, 35 and the rest: accepted as they come.
        other => {
            tracing::info!(code = ?other.live_service_type(), "liveService request accepted");
            Ok(Reply::ok(encode_accepted_reply::<()>(None)))
        }
    }
}

/// A viewer pays the broadcaster's call price per unit; the broadcaster nothing.
fn live_charge(liver: &UserAccount, payer: &UserAccount, viewer: bool) -> ServiceCharge {
    let paid = viewer && liver.call_unit_price > 0 && liver.call_unit_sec > 0;
    ServiceCharge {
        service_charge_type: ServiceChargeType::Live,
        unit_sec: if paid { liver.call_unit_sec } else { 0 },
        unit_price: if paid { liver.call_unit_price } else { 0 },
        point_price: POINT_PRICE_YEN,
        current_point: u32::try_from(payer.points.clamp(0, 9_999_999)).unwrap_or(0),
        free_trial_sec: if paid { FREE_TRIAL_SEC } else { 0 },
        auto_charge_trigger_point: 0,
        auto_charge_trigger_url: None,
    }
}

/// The 11 / 31 reply: user, serviceCharge and liveService.
async fn prepared(
    site: &Site,
    user: &UserAccount,
    charge: ServiceCharge,
    link_id: &str,
    title: String,
    liver: Option<&UserAccount>,
) -> Answer {
    let viewer = liver.is_some();
    let service = SiteService {
        user: Some(User {
            user_id: user.user_id.clone(),
            name: user.name.clone(),
            profile_image_url: Some(
                user.profile_image_url
                    .clone()
                    .unwrap_or_else(|| site.avatar_url(&user.user_id)),
            ),
            candidate_mode: site.store.candidate_mode(&user.user_id).await?,
            ..User::default()
        }),
        service_charge: Some(charge),
        call_service: None,
        live_service: Some(LiveService {
            link_id: link_id.to_owned(),
            title: Some(title),
            comment_guide: Some("コメントを書いて応援しよう".into()),
            audio_only: link_id.starts_with(RADIO_PREFIX).then_some(true),
            // Gifts play inside the broadcaster's video (§5.4.1), but for
            // radio (no video) and `overlay-` lives, which overlay them locally.
            apng_on_video_processor: Some(
                !link_id.starts_with(RADIO_PREFIX) && !link_id.starts_with(OVERLAY_PREFIX),
            ),
            // Every broadcast is archived on the Nexmile server.
            server_side_recording: (!viewer).then_some(true),
            // Members' pictures beside their comments.
            service_options: Some(ServiceOptions::SHOW_PROFILE_IMAGE),
            // Arrivals greeted in the site's words, the name in its colour,
            // and paid comments in gold (§5.4.2, §5.4.3).
            special_wordings: vec![SpecialWording {
                wording_type: WordingType::ViewerJoined,
                wording: "%Tran.UserName%さんが遊びに来てくれました".into(),
                placeholder_colors: vec![LivePlaceholderColor {
                    placeholder: "Tran.UserName".into(),
                    fore_color: Argb::parse("FFFFD54F"),
                    font_size: None,
                }],
            }],
            special_frames: vec![LiveSpecialFrame {
                frame_design_type: FrameDesignType::ViewerPaidComment,
                fore_color: Argb::parse("FFFFFFFF"),
                back_color: Argb::parse("CC8A5A00"),
                border_color: Argb::parse("FFFFD54F"),
                border_width: Some(1.5),
                border_circular: Some(14.0),
                font_size: None,
                padding_vertical: None,
                padding_horizontal: None,
            }],
            next_available_comment_time: Some(COMMENT_INTERVAL_MS),
            next_available_gift_time: viewer.then_some(GIFT_INTERVAL_MS),
            comment_charge_len: viewer.then_some(PAID_COMMENT_LEN),
            comment_charge_point: viewer.then_some(PAID_COMMENT_POINT),
            liver_comment_point: viewer.then_some(LIVER_COMMENT_POINT),
            // Members with 1000 points or more see the hidden fireworks for
            // an hour (§5.4.5), at the top of their palette.
            special_gifts: if viewer && user.points >= VIP_POINTS {
                vec![LiveSpecialGift {
                    gift_category_no: "3".into(),
                    gift_no: "1".into(),
                    display_order: Some(0),
                    display_time_from: None,
                    display_time_to: Some(WireDateTime::from_unix_millis(
                        now() + std::time::Duration::from_secs(3600),
                        JST,
                    )),
                }]
            } else {
                Vec::new()
            },
            // The greeting stamp viewers send with 挨拶 (§5.3.9 viewerPoke*).
            viewer_poke_category_no: viewer.then(|| "9".to_owned()),
            viewer_poke_gift_no: viewer.then(|| "1".to_owned()),
            // The campaign banner on the live screens, linking to the site.
            special_urls: vec![LiveSpecialUrl {
                image_url: format!("{}/banner.svg", site.url),
                link_url: Some(site.url.clone()),
            }],
            // A reminder a few seconds in (§5.4.4), near the top.
            special_messages: vec![LiveSpecialMessage {
                connect_after_sec: 5,
                display_duration: 8,
                message: if viewer {
                    "配信者への誹謗中傷は禁止されています。楽しく応援しましょう！".into()
                } else {
                    "配信では法令と利用規約を守りましょう。".into()
                },
                frame: None,
                alignment_x: None,
                alignment_y: Some(-0.55),
                width_rate: Some(0.6),
            }],
            // Points to buy while watching (§5.4.6), at 1 yen a point.
            quick_payments: if viewer {
                [300, 1000]
                    .into_iter()
                    .map(|yen| QuickPayment {
                        point_text: format!("{yen} pt（{yen} 円）"),
                        payment_amount: yen,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            ..LiveService::default()
        }),
    };
    Ok(Reply::ok(encode_accepted_reply(Some((
        "service", &service,
    )))))
}

/// Takes a gift's, stamp's or paid comment's points, or refuses.
async fn spend(
    site: &Site,
    request_id: &str,
    live_token: &str,
    user_id: &str,
    what: &str,
    points: u32,
    at: i64,
) -> Answer {
    if points == 0 {
        return Ok(Reply::ok(encode_accepted_reply::<()>(None)));
    }
    let paid = site
        .store
        .spend_in_live(request_id, live_token, user_id, what, i64::from(points), at)
        .await?;
    Ok(if paid {
        Reply::ok(encode_accepted_reply::<()>(None))
    } else {
        Reply::refused(INSUFFICIENT_POINTS)
    })
}

pub(crate) async fn not_installed(
    State(site): State<SharedSite>,
    RawQuery(query): RawQuery,
) -> Reply {
    if let Err(rejection) = site.check_key(&site_key_of(query.as_deref())) {
        return rejection.with_status(StatusCode::FORBIDDEN);
    }
    match decode_query::<NotInstalledReport>(query.as_deref().unwrap_or("")) {
        Ok(report) => tracing::info!(
            unique_id = %report.unique_id, user_id = ?report.user_id,
            os_type = ?report.os_type, ua = %report.ua, "the app is not installed"
        ),
        Err(e) => tracing::warn!(error = %e, "an incomplete not-installed report"),
    }
    Reply::empty()
}
