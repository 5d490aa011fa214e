//! The live state machine on simulated time: every request it sends, with
//! its fields and order, and what the broadcaster and viewers are told.

use std::time::Duration;

use nexmile_core::clock::UnixMillis;
use nexmile_core::codec::{PartnerFailure, encode_accepted_reply};
use nexmile_core::datetime::{JST, WireDateTime};
use nexmile_core::live::{
    Awaited, DeviceFacts, Live, LiveAction, LiveEvent, LivePhase, LiveSetup, Speaker, ViewerId,
};
use nexmile_core::signal::{GiftItem, ItemKind, LiveEndReason, LiveNotice, WordingPiece};
use nexmile_core::wire::codes::LiveServiceType;
use nexmile_core::wire::live::Liver;
use serde_json::json;

const T0: UnixMillis = UnixMillis::from_secs(1_790_000_000);

fn at(secs: u64) -> UnixMillis {
    T0 + Duration::from_secs(secs)
}

fn device() -> DeviceFacts {
    DeviceFacts {
        app_ver: "01.00.00".into(),
        device_name: "test".into(),
        os_ver: "Debian 12".into(),
    }
}

fn setup() -> LiveSetup {
    LiveSetup {
        site_token: "site-token-1".into(),
        live_token: "live-1".into(),
        link_id: "room-7".into(),
        liver: Liver {
            liver_user_id: "airi".into(),
            liver_user_sub_id: None,
        },
        device: device(),
    }
}

/// An 11 / 31 reply: user, serviceCharge (free unless `unit_price`) and liveService.
fn prepared_reply(
    user: &str,
    name: &str,
    unit_price: u32,
    points: u32,
    service: serde_json::Value,
) -> String {
    let mut live_service = json!({ "linkId": "room-7", "title": "夜の雑談" });
    if let (Some(base), Some(extra)) = (live_service.as_object_mut(), service.as_object()) {
        base.extend(extra.clone());
    }
    encode_accepted_reply(Some((
        "service",
        &json!({
            "user": { "userId": user, "name": name },
            "serviceCharge": { "serviceChargeTp": 2, "unitSec": if unit_price > 0 { 60 } else { 0 },
                "unitPrice": unit_price, "pointPrice": 1, "currentPoint": points,
                "freeTrialSec": 0, "autoChargeTriggerPoint": 0 },
            "liveService": live_service,
        }),
    )))
}

fn ok() -> Result<String, PartnerFailure> {
    Ok("result=0".into())
}

/// The requests among `actions`: (code, retried, awaited).
fn requests(actions: &[LiveAction]) -> Vec<(LiveServiceType, bool, Option<Awaited>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            LiveAction::Partner {
                request,
                retried,
                awaited,
            } => Some((request.request.live_service_type(), *retried, *awaited)),
            _ => None,
        })
        .collect()
}

fn request_json(actions: &[LiveAction], code: LiveServiceType) -> serde_json::Value {
    actions
        .iter()
        .find_map(|a| match a {
            LiveAction::Partner { request, .. } if request.request.live_service_type() == code => {
                Some(serde_json::to_value(request).unwrap())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no request {code:?} in {actions:?}"))
}

fn notices_to_viewer(actions: &[LiveAction], viewer: ViewerId) -> Vec<&LiveNotice> {
    actions
        .iter()
        .filter_map(|a| match a {
            LiveAction::ToViewer(v, n) if *v == viewer => Some(n),
            _ => None,
        })
        .collect()
}

/// A live on air since `at(10)` with `service` settings.
fn on_air(service: serde_json::Value) -> Live {
    let (mut live, actions) = Live::new(setup(), at(0));
    assert_eq!(
        requests(&actions),
        [(
            LiveServiceType::BroadcastPrepare,
            false,
            Some(Awaited::Prepare)
        )]
    );
    let prepared = Ok(prepared_reply("airi", "星野あいり", 0, 0, service));
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::Prepare,
            reply: prepared,
        },
        at(1),
    );
    assert!(matches!(
        &actions[..],
        [LiveAction::ToBroadcaster(LiveNotice::Prepared(_))]
    ));
    assert_eq!(live.phase(), LivePhase::Ready);
    let actions = live.handle(LiveEvent::StartPressed, at(9));
    assert_eq!(
        requests(&actions),
        [(LiveServiceType::BroadcastStart, false, Some(Awaited::Start))]
    );
    live.handle(
        LiveEvent::Replied {
            to: Awaited::Start,
            reply: ok(),
        },
        at(10),
    );
    assert_eq!(live.phase(), LivePhase::OnAir);
    live
}

/// A viewer joined at `at(start)` and watching from `at(start + 2)`.
fn watching(
    live: &mut Live,
    id: u64,
    user: &str,
    unit_price: u32,
    points: u32,
    start: u64,
) -> ViewerId {
    watching_with(live, id, user, unit_price, points, start, json!({}))
}

/// The same with the viewer's own liveService settings in its 31 reply.
fn watching_with(
    live: &mut Live,
    id: u64,
    user: &str,
    unit_price: u32,
    points: u32,
    start: u64,
    service: serde_json::Value,
) -> ViewerId {
    start_watching(live, id, user, unit_price, points, start, service).0
}

/// [`watching_with`], also giving what the accepted 32 set off.
fn start_watching(
    live: &mut Live,
    id: u64,
    user: &str,
    unit_price: u32,
    points: u32,
    start: u64,
    service: serde_json::Value,
) -> (ViewerId, Vec<LiveAction>) {
    let viewer = ViewerId(id);
    // The viewer's link names the live by the linkId its 31 reply repeats.
    let link_id = service["linkId"].as_str().unwrap_or("room-7").to_owned();
    let joined = LiveEvent::ViewerJoined {
        viewer,
        user_id: user.into(),
        link_id: link_id.clone(),
        device: device(),
    };
    let actions = live.handle(joined, at(start));
    let prepare = request_json(&actions, LiveServiceType::ViewPrepare);
    assert_eq!(prepare["liveServiceTp"], 31);
    assert_eq!(prepare["linkId"], link_id.as_str());
    assert_eq!(prepare["userId"], user);
    assert_eq!(prepare["liverUserId"], "airi");
    let reply = Ok(prepared_reply(
        user,
        &format!("{user}さん"),
        unit_price,
        points,
        service,
    ));
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::ViewerPrepare(viewer),
            reply,
        },
        at(start + 1),
    );
    assert!(actions.contains(&LiveAction::Admit(viewer)));
    // 32 only once the viewer's app said it received the picture.
    let actions = live.handle(LiveEvent::ViewerMediaReceived { viewer }, at(start + 2));
    assert_eq!(
        requests(&actions),
        [(
            LiveServiceType::ViewStart,
            false,
            Some(Awaited::ViewerStart(viewer))
        )]
    );
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::ViewerStart(viewer),
            reply: ok(),
        },
        at(start + 2),
    );
    assert!(notices_to_viewer(&actions, viewer).contains(&&LiveNotice::OnAir));
    (viewer, actions)
}

#[test]
fn a_free_live_from_prepare_to_end_sends_every_request_in_order_with_its_fields() {
    let mut live = on_air(json!({}));
    let hanako = watching(&mut live, 1, "hanako", 0, 0, 20);
    assert_eq!(live.audience(), 1);

    // A comment: 7 with its length in characters, then everyone sees it.
    let comment = "こんばんは👨‍👩‍👧";
    let actions = live.handle(
        LiveEvent::Comment {
            from: Speaker::Viewer(hanako),
            text: comment.into(),
        },
        at(30),
    );
    let sent = request_json(&actions, LiveServiceType::Comment);
    assert_eq!(sent["commentLen"], 6);
    assert_eq!(sent["point"], 0);
    assert_eq!(sent["userId"], "hanako");
    let Some((_, _, Some(awaited))) = requests(&actions).pop() else {
        panic!("awaited")
    };
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited,
            reply: ok(),
        },
        at(30),
    );
    assert!(actions.iter().any(|a| matches!(a,
        LiveAction::ToEveryone(LiveNotice::Comment { text, name, from_broadcaster: false, .. })
            if text == comment && name == "hanakoさん")));

    // A gift: 6 with the catalogue's points, then everyone sees it and the ranking moves.
    let gift = GiftItem {
        kind: ItemKind::Gift,
        category: "1".into(),
        item_no: "3".into(),
        name: "花束".into(),
        point: 50,
        liver_point: 25,
        file: Some("gifts/bouquet.png".into()),
    };
    let actions = live.handle(
        LiveEvent::Item {
            viewer: hanako,
            item: gift.clone(),
        },
        at(31),
    );
    let sent = request_json(&actions, LiveServiceType::Gift);
    assert_eq!(
        (
            sent["liveServiceTp"].clone(),
            sent["itemCategory"].clone(),
            sent["itemNo"].clone()
        ),
        (json!(6), json!("1"), json!("3"))
    );
    assert_eq!(
        (sent["point"].clone(), sent["liverGiftPoint"].clone()),
        (json!(50), json!(25))
    );
    let Some((_, _, Some(awaited))) = requests(&actions).pop() else {
        panic!("awaited")
    };
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited,
            reply: ok(),
        },
        at(31),
    );
    assert!(actions.iter().any(
        |a| matches!(a, LiveAction::ToEveryone(LiveNotice::Item { item, .. }) if **item == gift)
    ));
    assert!(actions.iter().any(|a| matches!(a,
        LiveAction::ToEveryone(LiveNotice::Viewers { count: 1, ranking }) if ranking[0].points == 50)));

    // The broadcaster ends: the viewer's 33, then 13, both retried.
    let actions = live.handle(LiveEvent::EndPressed, at(70));
    assert_eq!(
        requests(&actions),
        [
            (LiveServiceType::ViewEnd, true, None),
            (LiveServiceType::BroadcastEnd, true, None)
        ]
    );
    let view_end = request_json(&actions, LiveServiceType::ViewEnd);
    assert_eq!(view_end["liveSec"], 48);
    assert_eq!(view_end["point"], 0);
    assert_eq!(view_end["chargeSec"], 0);
    assert!(view_end.get("chargeStartTime").is_none());
    let end = request_json(&actions, LiveServiceType::BroadcastEnd);
    assert_eq!(end["liveSec"], 60);
    assert_eq!(end["liverUserId"], "airi");
    assert!(notices_to_viewer(&actions, hanako).iter().any(|n| matches!(n,
        LiveNotice::Ended { reason: LiveEndReason::LiveEnded, summary: Some(s), .. } if s.live_sec == 48)));
    assert!(actions.contains(&LiveAction::Ended(LiveEndReason::BroadcasterEnded)));
    assert!(live.handle(LiveEvent::Tick, at(71)).is_empty());
}

#[test]
fn leaving_before_the_start_aborts_with_29_and_a_refused_prepare_sends_nothing_more() {
    let (mut live, _) = Live::new(setup(), at(0));
    live.handle(
        LiveEvent::Replied {
            to: Awaited::Prepare,
            reply: Ok(prepared_reply("airi", "あいり", 0, 0, json!({}))),
        },
        at(1),
    );
    let actions = live.handle(LiveEvent::BroadcasterLost, at(40));
    assert_eq!(
        requests(&actions),
        [(LiveServiceType::BroadcastAbort, true, None)]
    );
    let abort = request_json(&actions, LiveServiceType::BroadcastAbort);
    assert_eq!(abort["liveServiceTp"], 29);
    let prepared_at = WireDateTime::from_unix_millis(at(0), JST);
    assert_eq!(
        abort["startTime"],
        serde_json::to_value(prepared_at).unwrap()
    );

    let (mut refused, _) = Live::new(setup(), at(0));
    let failure = PartnerFailure::Refused {
        result: 1,
        message: Some("配信権限がありません".into()),
    };
    let actions = refused.handle(
        LiveEvent::Replied {
            to: Awaited::Prepare,
            reply: Err(failure),
        },
        at(1),
    );
    assert!(requests(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(a,
        LiveAction::ToBroadcaster(LiveNotice::Ended { reason: LiveEndReason::Refused, message: Some(m), .. }) if m == "配信権限がありません")));
}

#[test]
fn a_viewer_before_the_start_is_turned_away_and_one_without_pictures_ends_after_the_deadline() {
    let (mut live, _) = Live::new(setup(), at(0));
    let early = ViewerId(9);
    let actions = live.handle(
        LiveEvent::ViewerJoined {
            viewer: early,
            user_id: "taro".into(),
            link_id: "room-7".into(),
            device: device(),
        },
        at(1),
    );
    assert!(requests(&actions).is_empty());
    assert!(actions.contains(&LiveAction::Release(early)));

    let mut live = on_air(json!({}));
    let viewer = ViewerId(2);
    live.handle(
        LiveEvent::ViewerJoined {
            viewer,
            user_id: "taro".into(),
            link_id: "room-7".into(),
            device: device(),
        },
        at(20),
    );
    let reply = Ok(prepared_reply("taro", "太郎", 0, 0, json!({})));
    live.handle(
        LiveEvent::Replied {
            to: Awaited::ViewerPrepare(viewer),
            reply,
        },
        at(21),
    );
    // No picture ever decoded: no 32; 33 at the deadline.
    assert!(requests(&live.handle(LiveEvent::Tick, at(50))).is_empty());
    let actions = live.handle(LiveEvent::Tick, at(51));
    assert_eq!(requests(&actions), [(LiveServiceType::ViewEnd, true, None)]);
    assert!(notices_to_viewer(&actions, viewer).iter().any(|n| matches!(
        n,
        LiveNotice::Ended {
            reason: LiveEndReason::NoMedia,
            ..
        }
    )));
    assert_eq!(live.audience(), 0);
}

#[test]
fn comments_keep_the_partners_interval_and_long_ones_are_paid() {
    // The viewer's own 31 reply sets its comment rules.
    let mut live = on_air(json!({}));
    let rules = json!({ "nextAvailableCommentTime": 1000, "commentChargeLen": 10, "commentChargePoint": 3 });
    let viewer = watching_with(&mut live, 1, "hanako", 0, 0, 20, rules);
    let say = |live: &mut Live, text: &str, t: UnixMillis| {
        live.handle(
            LiveEvent::Comment {
                from: Speaker::Viewer(viewer),
                text: text.into(),
            },
            t,
        )
    };
    let first = say(&mut live, "短い", at(30));
    assert_eq!(request_json(&first, LiveServiceType::Comment)["point"], 0);
    // 500 ms later: refused by the server itself, nothing sent.
    let again = say(&mut live, "もう一度", at(30) + Duration::from_millis(500));
    assert!(requests(&again).is_empty());
    assert!(matches!(
        notices_to_viewer(&again, viewer)[..],
        [LiveNotice::Refused { .. }]
    ));
    let long = say(&mut live, "これは十文字以上の長いコメントです", at(32));
    assert_eq!(request_json(&long, LiveServiceType::Comment)["point"], 3);
    // Empty and too long comments never reach the partner.
    assert!(requests(&say(&mut live, "   ", at(40))).is_empty());
    assert!(requests(&say(&mut live, &"あ".repeat(201), at(42))).is_empty());
    // M5: one character carrying a megabyte of combining marks counts as one
    // character, but is refused by its size before anything else.
    let stacked = format!("a{}", "\u{301}".repeat(500_000));
    assert!(requests(&say(&mut live, &stacked, at(44))).is_empty());
    // 200 family emoji (25 bytes each) are a comment like any other.
    let families = "👨\u{200d}👩\u{200d}👧\u{200d}👦".repeat(200);
    assert_eq!(families.len(), 5_000);
    assert_eq!(requests(&say(&mut live, &families, at(46))).len(), 1);
    // A refusal by the partner is told to the writer only.
    let Some((_, _, Some(awaited))) = requests(&long).pop() else {
        panic!()
    };
    let failure = PartnerFailure::Refused {
        result: 2,
        message: Some("ポイントが足りません".into()),
    };
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited,
            reply: Err(failure),
        },
        at(33),
    );
    assert!(
        matches!(&actions[..], [LiveAction::ToViewer(v, LiveNotice::Refused { message })] if *v == viewer && message == "ポイントが足りません")
    );
}

#[test]
fn a_paid_viewer_is_billed_each_minute_and_cut_off_when_points_run_out() {
    let mut live = on_air(json!({}));
    // 100 points at 40 points a minute, charged by the millisecond from the
    // start (at 22 s): cut off once less than one minute's price is left.
    let viewer = watching(&mut live, 1, "hanako", 40, 100, 20);
    let billing = live.handle(LiveEvent::Tick, at(30));
    assert!(notices_to_viewer(&billing, viewer).iter().any(|n| matches!(
        n,
        LiveNotice::Billing {
            used_points: 6,
            time_left_sec: Some(82)
        }
    )));
    let mut ended = None;
    for s in 31..=200 {
        let actions = live.handle(LiveEvent::Tick, at(s));
        if !requests(&actions).is_empty() {
            ended = Some((s, request_json(&actions, LiveServiceType::ViewEnd)));
            break;
        }
    }
    let (second, view_end) = ended.expect("cut off");
    assert_eq!(second, 113, "cut when 40 points are no longer left");
    assert_eq!(view_end["point"], 61);
    assert_eq!(view_end["chargeSec"], 91);
    assert_eq!(view_end["liveSec"], 91);
    assert!(view_end["chargeStartTime"].is_string());
}

#[test]
fn the_provisional_reports_are_what_a_server_stop_would_send() {
    let mut live = on_air(json!({}));
    watching(&mut live, 1, "hanako", 40, 1_000, 20);
    watching(&mut live, 2, "taro", 40, 1_000, 21);
    let reports = live.provisional_end_reports(at(50));
    let codes: Vec<LiveServiceType> = reports
        .iter()
        .map(|r| r.request.live_service_type())
        .collect();
    assert_eq!(
        codes,
        [
            LiveServiceType::ViewEnd,
            LiveServiceType::ViewEnd,
            LiveServiceType::BroadcastEnd
        ]
    );
    let hanako = serde_json::to_value(&reports[0]).unwrap();
    // Watching (and charged) from 22 s: 28 s, 40 points a minute → 19 points.
    assert_eq!(
        (&hanako["liveSec"], &hanako["point"]),
        (&json!(28), &json!(19))
    );
    // Taking them changes nothing: the live and both viewers go on.
    assert_eq!(live.phase(), LivePhase::OnAir);
    assert_eq!(live.audience(), 2);
    // The next minute boundary of the first paid viewer.
    assert_eq!(live.next_unit_boundary(at(50)), Some(at(82)));
    // A stop ends everything, each reported, the broadcaster told why.
    let stopped = live.handle(LiveEvent::ServerStopping, at(50));
    assert_eq!(requests(&stopped).len(), 3);
    assert!(
        stopped
            .iter()
            .any(|a| matches!(a, LiveAction::Ended(LiveEndReason::ServerStopping)))
    );
}

/// The reply the first awaited request among `actions` is waiting for.
fn awaited_of(actions: &[LiveAction]) -> Awaited {
    requests(actions)
        .into_iter()
        .find_map(|(_, _, awaited)| awaited)
        .unwrap_or_else(|| panic!("no awaited request in {actions:?}"))
}

#[test]
fn a_paid_switch_charges_those_who_can_pay_and_disconnects_those_who_cannot() {
    let mut live = on_air(json!({}));
    let rich = watching(&mut live, 1, "hanako", 0, 1000, 20);
    let poor = watching(&mut live, 2, "yuki", 0, 20, 21);
    // Not before asking for a price.
    assert!(requests(&live.handle(LiveEvent::PaidSwitch { unit_price: 0 }, at(30))).is_empty());
    let actions = live.handle(LiveEvent::PaidSwitch { unit_price: 100 }, at(30));
    let switch = request_json(&actions, LiveServiceType::PaidBroadcastSwitch);
    assert_eq!(
        (switch["liveServiceTp"].clone(), switch["unitPrice"].clone()),
        (json!(14), json!(100))
    );
    // The partner's viewers' tariff: 100 points a minute after 10 s free.
    let reply = encode_accepted_reply(Some((
        "service",
        &json!({ "serviceCharge": { "serviceChargeTp": 2, "unitSec": 60, "unitPrice": 100,
            "pointPrice": 1, "currentPoint": 0, "freeTrialSec": 10, "autoChargeTriggerPoint": 0 } }),
    )));
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited_of(&actions),
            reply: Ok(reply),
        },
        at(31),
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        LiveAction::ToEveryone(LiveNotice::PaidSwitched {
            unit_price: 100,
            free_trial_sec: 10,
            ..
        })
    )));
    // hanako gets 35; yuki's 20 points cannot pay one unit: 33 and out.
    assert_eq!(
        requests(&actions)
            .iter()
            .map(|(c, r, _)| (*c, *r))
            .collect::<Vec<_>>(),
        [
            (LiveServiceType::PaidViewSwitch, false),
            (LiveServiceType::ViewEnd, true)
        ]
    );
    assert!(notices_to_viewer(&actions, poor).iter().any(|n| matches!(
        n,
        LiveNotice::Ended {
            reason: LiveEndReason::PointsExhausted,
            ..
        }
    )));
    let paid_view = request_json(&actions, LiveServiceType::PaidViewSwitch);
    assert_eq!(paid_view["userId"], "hanako");
    assert_eq!(
        paid_view["chargeStartTime"],
        serde_json::to_value(WireDateTime::from_unix_millis(at(41), JST)).unwrap()
    );
    live.handle(
        LiveEvent::Replied {
            to: awaited_of(&actions),
            reply: ok(),
        },
        at(31),
    );
    // Billed from 41 s: after a minute at 100 points a minute, 100 used.
    let billed = live.handle(LiveEvent::Tick, at(101));
    assert!(notices_to_viewer(&billed, rich).iter().any(|n| matches!(
        n,
        LiveNotice::Billing {
            used_points: 100,
            ..
        }
    )));
    let actions = live.handle(LiveEvent::EndPressed, at(101));
    let view_end = request_json(&actions, LiveServiceType::ViewEnd);
    assert_eq!(
        (view_end["point"].clone(), view_end["chargeSec"].clone()),
        (json!(100), json!(60))
    );
    let end = request_json(&actions, LiveServiceType::BroadcastEnd);
    assert_eq!(
        end["chargeStartTime"],
        serde_json::to_value(WireDateTime::from_unix_millis(at(31), JST)).unwrap()
    );
}

#[test]
fn removals_by_the_broadcaster_and_the_administrator_and_the_administrators_message() {
    let mut live = on_air(json!({}));
    let hanako = watching(&mut live, 1, "hanako", 0, 0, 20);
    let taro = watching(&mut live, 2, "taro", 0, 0, 21);
    // 15: the viewer leaves once the partner agrees.
    let actions = live.handle(LiveEvent::RemoveViewer { viewer: hanako }, at(30));
    assert_eq!(
        request_json(&actions, LiveServiceType::BroadcasterRemovesViewer)["userId"],
        "hanako"
    );
    assert_eq!(live.audience(), 2);
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited_of(&actions),
            reply: ok(),
        },
        at(30),
    );
    assert_eq!(
        requests(&actions)
            .iter()
            .map(|(c, _, _)| *c)
            .collect::<Vec<_>>(),
        [LiveServiceType::ViewEnd]
    );
    assert!(notices_to_viewer(&actions, hanako).iter().any(|n| matches!(
        n,
        LiveNotice::Ended {
            reason: LiveEndReason::RemovedByBroadcaster,
            ..
        }
    )));
    // 97: to the partner and on the broadcaster's screen.
    let actions = live.handle(
        LiveEvent::AdminMessage {
            text: "音量を下げてください".into(),
        },
        at(31),
    );
    assert_eq!(
        request_json(&actions, LiveServiceType::AdminMessage)["comment"],
        "音量を下げてください"
    );
    assert!(
        actions.contains(&LiveAction::ToBroadcaster(LiveNotice::AdminMessage {
            text: "音量を下げてください".into()
        }))
    );
    // 94 with 33 for the viewer; 96 ends the live: 96, the remaining 33s, 13.
    let actions = live.handle(
        LiveEvent::AdminRemovesViewer {
            viewer: taro,
            comment: Some("規約違反".into()),
        },
        at(32),
    );
    assert_eq!(
        requests(&actions)
            .iter()
            .map(|(c, _, _)| *c as u8)
            .collect::<Vec<_>>(),
        [94, 33]
    );
    let carol = watching(&mut live, 3, "yuki", 0, 0, 40);
    let actions = live.handle(LiveEvent::AdminRemovesBroadcaster { comment: None }, at(50));
    assert_eq!(
        requests(&actions)
            .iter()
            .map(|(c, _, _)| *c as u8)
            .collect::<Vec<_>>(),
        [96, 33, 13]
    );
    assert!(notices_to_viewer(&actions, carol).iter().any(|n| matches!(
        n,
        LiveNotice::Ended {
            reason: LiveEndReason::LiveEnded,
            ..
        }
    )));
    assert!(actions.contains(&LiveAction::Ended(LiveEndReason::RemovedByAdministrator)));
}

#[test]
fn a_partners_point_update_asks_36_and_tells_both_sides() {
    let mut live = on_air(json!({}));
    let hanako = watching(&mut live, 1, "hanako", 0, 100, 20);
    let actions = live.handle(
        LiveEvent::BalanceAdjusted {
            viewer: hanako,
            points: 500,
        },
        at(30),
    );
    let update = request_json(&actions, LiveServiceType::ViewerUpdate);
    assert_eq!(update["liveServiceTp"], 36);
    let reply = Ok(prepared_reply(
        "hanako",
        "花子 (ゴールド会員)",
        0,
        600,
        json!({}),
    ));
    let actions = live.handle(
        LiveEvent::Replied {
            to: awaited_of(&actions),
            reply,
        },
        at(31),
    );
    let updated = LiveNotice::ViewerUpdated {
        user_id: "hanako".into(),
        name: "花子 (ゴールド会員)".into(),
    };
    assert!(actions.contains(&LiveAction::ToBroadcaster(updated.clone())));
    assert!(actions.contains(&LiveAction::ToViewer(hanako, updated)));
    // 34 goes out as it is, no reply awaited.
    let actions = live.handle(
        LiveEvent::Favorite {
            viewer: hanako,
            favorite: true,
        },
        at(32),
    );
    assert_eq!(
        requests(&actions),
        [(LiveServiceType::Favorite, false, None)]
    );
    assert_eq!(
        request_json(&actions, LiveServiceType::Favorite)["favorite"],
        true
    );
}

#[test]
fn a_viewer_is_named_by_its_own_link_id_and_a_reply_for_another_link_is_refused() {
    let mut live = on_air(json!({}));
    let hanako = watching_with(
        &mut live,
        1,
        "hanako",
        0,
        0,
        20,
        json!({ "linkId": "view-hanako" }),
    );
    let actions = live.handle(
        LiveEvent::Comment {
            from: Speaker::Viewer(hanako),
            text: "やあ".into(),
        },
        at(30),
    );
    assert_eq!(
        request_json(&actions, LiveServiceType::Comment)["linkId"],
        "view-hanako"
    );
    let actions = live.handle(
        LiveEvent::Comment {
            from: Speaker::Broadcaster,
            text: "ようこそ".into(),
        },
        at(30),
    );
    assert_eq!(
        request_json(&actions, LiveServiceType::Comment)["linkId"],
        "room-7"
    );
    let actions = live.handle(LiveEvent::ViewerLeft { viewer: hanako }, at(40));
    assert_eq!(
        request_json(&actions, LiveServiceType::ViewEnd)["linkId"],
        "view-hanako"
    );

    // A 31 reply about another linkId cannot be used: the viewer is told, no 33 follows.
    let taro = ViewerId(2);
    live.handle(
        LiveEvent::ViewerJoined {
            viewer: taro,
            user_id: "taro".into(),
            link_id: "a".into(),
            device: device(),
        },
        at(50),
    );
    let reply = Ok(prepared_reply(
        "taro",
        "太郎",
        0,
        0,
        json!({ "linkId": "b" }),
    ));
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::ViewerPrepare(taro),
            reply,
        },
        at(51),
    );
    assert!(requests(&actions).is_empty());
    assert!(notices_to_viewer(&actions, taro).iter().any(|n| matches!(
        n,
        LiveNotice::Ended {
            reason: LiveEndReason::Refused,
            ..
        }
    )));
}

#[test]
fn a_real_time_payment_offers_the_partners_amounts_and_moves_the_points_with_36() {
    let mut live = on_air(json!({}));
    let offers = json!({ "quickPayments": [{ "pointText": "300 pt", "paymentAmount": 300 },
                                          { "pointText": "1000 pt", "paymentAmount": "1000" }] });
    let hanako = watching_with(&mut live, 1, "hanako", 40, 100, 20, offers);
    assert_eq!(live.quick_payments(hanako), [300, 1000]);
    assert_eq!(
        live.viewer_link(hanako),
        Some(("room-7".into(), "hanako".into()))
    );
    let before = live.clone().handle(LiveEvent::Tick, at(30));
    let actions = live.handle(
        LiveEvent::PaymentDone {
            viewer: hanako,
            points: 300,
        },
        at(30),
    );
    assert_eq!(
        actions[0],
        LiveAction::ToViewer(hanako, LiveNotice::PaymentDone { points: 300 })
    );
    assert_eq!(
        request_json(&actions, LiveServiceType::ViewerUpdate)["userId"],
        "hanako"
    );
    // 300 more points at 40 a minute: 7.5 more minutes of viewing.
    let left = |actions: &[LiveAction]| {
        notices_to_viewer(actions, hanako)
            .iter()
            .find_map(|n| match n {
                LiveNotice::Billing { time_left_sec, .. } => *time_left_sec,
                _ => None,
            })
    };
    let after = live.handle(LiveEvent::Tick, at(30));
    assert_eq!(left(&after).unwrap() - left(&before).unwrap(), 450);
}

#[test]
fn the_palette_shows_registered_items_in_their_period_and_unlocks_a_viewers_special_gifts() {
    use nexmile_core::live::{CatalogueEntry, palette};
    use nexmile_core::wire::customization::LiveSpecialGift;
    let when = |secs: u64| Some(WireDateTime::from_unix_millis(at(secs), JST));
    let entry =
        |no: &str, hidden: bool, order: Option<u32>, from: u64, to: Option<u64>| CatalogueEntry {
            item: GiftItem {
                kind: ItemKind::Gift,
                category: "2".into(),
                item_no: no.into(),
                name: format!("gift {no}"),
                point: 10,
                liver_point: 5,
                file: None,
            },
            hidden,
            display_order: order,
            visible_from: when(from),
            visible_to: to.and_then(when),
        };
    let catalogue = [
        entry("a", false, None, 0, None),
        entry("hidden", true, None, 0, None),
        entry("later", false, None, 500, None),
        entry("first", false, Some(0), 0, None),
        entry("over", false, None, 0, Some(50)),
    ];
    let names = |items: Vec<GiftItem>| items.into_iter().map(|g| g.item_no).collect::<Vec<_>>();
    // At 100 s: "later" is not yet on, "over" has ended, "hidden" is hidden;
    // ordered items come first (ties by registration), the rest follow.
    assert_eq!(names(palette(&catalogue, &[], at(100))), ["first", "a"]);
    let special =
        |no: &str, order: Option<u32>, from: Option<u64>, to: Option<u64>| LiveSpecialGift {
            gift_category_no: "2".into(),
            gift_no: no.into(),
            display_order: order,
            display_time_from: from.and_then(when),
            display_time_to: to.and_then(when),
        };
    let specials = [
        // Unlocked for this viewer until 200 s, shown at the top.
        special("hidden", Some(0), None, Some(200)),
        // Its own period wins over the registered one.
        special("later", None, Some(50), None),
        // Not registered: never shown.
        special("unknown", Some(0), None, None),
    ];
    assert_eq!(
        names(palette(&catalogue, &specials, at(100))),
        ["hidden", "first", "a", "later"]
    );
    assert_eq!(
        names(palette(&catalogue, &specials, at(300))),
        ["first", "a", "later"]
    );
}

#[test]
fn special_messages_out_of_their_time_ranges_are_dropped_and_placement_falls_back_to_defaults() {
    let (mut live, _) = Live::new(setup(), at(0));
    let service = json!({ "specialMessages": [
        { "connectAfterSec": 10, "displayDuration": 5, "message": "法令を守って配信しましょう",
          "alignmentX": -0.5, "alignmentY": 1.5, "widthRate": 0.05 },
        { "connectAfterSec": 4, "displayDuration": 5, "message": "早すぎる" },
        { "connectAfterSec": 3601, "displayDuration": 5, "message": "遅すぎる" },
        { "connectAfterSec": 60, "displayDuration": 31, "message": "長すぎる" },
        { "connectAfterSec": "3600", "displayDuration": "30", "message": "ちょうど上限", "widthRate": "0.99" },
    ]});
    let reply = Ok(prepared_reply("airi", "星野あいり", 0, 0, service));
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::Prepare,
            reply,
        },
        at(1),
    );
    let [LiveAction::ToBroadcaster(LiveNotice::Prepared(details))] = &actions[..] else {
        panic!("{actions:?}");
    };
    let shown: Vec<(&str, u32, u32, i16, i16, u8)> = details
        .messages
        .iter()
        .map(|m| {
            (
                m.text.as_str(),
                m.after_sec,
                m.duration_sec,
                m.x_percent,
                m.y_percent,
                m.width_percent,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("法令を守って配信しましょう", 10, 5, -50, 0, 70),
            ("ちょうど上限", 3600, 30, 0, 0, 99)
        ]
    );
}

#[test]
fn a_viewers_greeting_is_its_31_replys_poke_item_when_both_numbers_are_given() {
    let mut live = on_air(json!({}));
    let plain = watching(&mut live, 1, "taro", 0, 0, 20);
    let greets = json!({ "viewerPokeCategoryNo": 9, "viewerPokeGiftNo": "1" });
    let hanako = watching_with(&mut live, 2, "hanako", 0, 0, 21, greets);
    let half = watching_with(
        &mut live,
        3,
        "yuki",
        0,
        0,
        22,
        json!({ "viewerPokeCategoryNo": "9" }),
    );
    assert_eq!(live.greeting(plain), None);
    assert_eq!(live.greeting(hanako), Some(("9".into(), "1".into())));
    assert_eq!(
        live.greeting(half),
        None,
        "without a gift number the greeting is off"
    );
}

/// serverSideRecording: the live's media is recorded from the moment it is
/// on air (not during the preview), sound alone for a radio live.
#[test]
fn a_live_with_server_side_recording_is_recorded_from_its_start() {
    let cases = [
        (json!({}), None),
        (json!({"serverSideRecording": false}), None),
        (
            json!({"serverSideRecording": true}),
            Some(LiveAction::Record { audio_only: false }),
        ),
        (
            json!({"serverSideRecording": "1", "audioOnly": true}),
            Some(LiveAction::Record { audio_only: true }),
        ),
    ];
    for (service, expected) in cases {
        let (mut live, _) = Live::new(setup(), at(0));
        let prepared = Ok(prepared_reply("airi", "星野あいり", 0, 0, service.clone()));
        let actions = live.handle(
            LiveEvent::Replied {
                to: Awaited::Prepare,
                reply: prepared,
            },
            at(1),
        );
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, LiveAction::Record { .. }))
        );
        live.handle(LiveEvent::StartPressed, at(9));
        let actions = live.handle(
            LiveEvent::Replied {
                to: Awaited::Start,
                reply: ok(),
            },
            at(10),
        );
        let recorded = actions
            .into_iter()
            .find(|a| matches!(a, LiveAction::Record { .. }));
        assert_eq!(recorded, expected, "{service}");
    }
}

/// The login guidance (wordingTp 21) goes to everyone when a viewer starts
/// watching; a viewer back in the same live is announced again only where
/// its serviceOptions 4 allows.
#[test]
fn a_returning_viewer_is_announced_again_only_with_service_option_4() {
    let joined = |actions: &[LiveAction]| {
        actions
            .iter()
            .filter(|a| matches!(a, LiveAction::ToEveryone(LiveNotice::Joined { .. })))
            .count()
    };
    let mut live = on_air(json!({}));
    let (first, actions) = start_watching(&mut live, 1, "hanako", 0, 100, 20, json!({}));
    assert!(
        actions.contains(&LiveAction::ToEveryone(LiveNotice::Joined {
            user_id: "hanako".into(),
            name: "hanakoさん".into(),
            image: None,
        }))
    );
    live.handle(LiveEvent::ViewerLeft { viewer: first }, at(30));
    let (_, actions) = start_watching(&mut live, 2, "hanako", 0, 100, 40, json!({}));
    assert_eq!(
        joined(&actions),
        0,
        "back in the same live: no second guidance"
    );
    let (_, actions) = start_watching(
        &mut live,
        3,
        "hanako",
        0,
        100,
        50,
        json!({"serviceOptions": 4}),
    );
    assert_eq!(joined(&actions), 1, "serviceOptions 4: every time");
    let (_, actions) = start_watching(&mut live, 4, "taro", 0, 100, 60, json!({}));
    assert_eq!(joined(&actions), 1, "another viewer is announced");
}

/// §5.4.2/§5.4.3 and the comment area reach the screen range-checked:
/// frame sizes clamped into the spec's ranges, unreadable colours and
/// entries dropped (not the whole reply), unsupported placeholders removed,
/// comment sizes out of range back to their defaults.
#[test]
fn frames_and_wordings_reach_the_screen_range_checked() {
    let service = json!({
        "commentImageSize": 50,
        "commentScaleWidth": 80,
        "commentScaleHeight": 90,
        "serviceOptions": 5,
        "specialFrames": [
            { "frameDesignTp": 53, "foreColor": "FFFF0000", "backColor": "7F000000",
              "borderColor": "not a colour", "borderWidth": 12, "borderCircular": 8,
              "fontSize": 30, "paddingVertical": 2, "paddingHorizontal": "4.5" },
            { "frameDesignTp": 999, "foreColor": "FF00FF00" },
            { "frameDesignTp": 103, "fontSize": 4 }
        ],
        "specialWordings": [
            { "wordingTp": 21, "wording": "%Tran.UserName%さんが%Tran.GiftName%来場",
              "placeholderColors": [{ "placeholder": "Tran.UserName", "foreColor": "FF0000FF", "fontSize": 40 }] },
            { "wordingTp": 77, "wording": "?" }
        ]
    });
    let (mut live, _) = Live::new(setup(), at(0));
    let actions = live.handle(
        LiveEvent::Replied {
            to: Awaited::Prepare,
            reply: Ok(prepared_reply("airi", "星野あいり", 0, 0, service)),
        },
        at(1),
    );
    let [LiveAction::ToBroadcaster(LiveNotice::Prepared(details))] = &actions[..] else {
        panic!("not prepared: {actions:?}");
    };
    let a = &details.appearance;
    assert_eq!(a.comment_image_px, 24, "50 is outside 20–32: the default");
    assert_eq!(a.comment_width_percent, 80);
    assert_eq!(
        a.comment_height_percent, 30,
        "90 is outside 30–80: the default"
    );
    assert!(a.profile_images, "serviceOptions 1 of 5");
    let frames: Vec<u16> = a.frames.iter().map(|f| f.design).collect();
    assert_eq!(
        frames,
        [53, 103],
        "the unknown frameDesignTp 999 is dropped"
    );
    let frame = &a.frames[0];
    assert_eq!(frame.fore.as_deref(), Some("rgba(255, 0, 0, 1.000)"));
    assert_eq!(frame.back.as_deref(), Some("rgba(0, 0, 0, 0.498)"));
    assert_eq!(frame.border, None, "an unreadable colour falls back");
    assert_eq!(frame.border_width, Some(9.9), "clamped to 9.9");
    assert_eq!(frame.font_size, Some(24.0), "clamped to 24");
    assert_eq!(frame.padding_horizontal, Some(4.5));
    assert_eq!(a.frames[1].font_size, Some(8.0), "clamped up to 8");
    assert_eq!(a.wordings.len(), 1, "wordingTp 77 does not exist");
    assert_eq!(
        a.wordings[0].segments,
        [
            WordingPiece::Placeholder {
                name: "Tran.UserName".into(),
                color: Some("rgba(0, 0, 255, 1.000)".into()),
                font_size: Some(24.0),
            },
            WordingPiece::Text {
                text: "さんが来場".into()
            },
        ],
        "GiftName is not a placeholder of wordingTp 21: removed"
    );
}
