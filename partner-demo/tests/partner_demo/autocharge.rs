//! The auto-charge trigger, with a real HTTP listener standing in for the Nexmile server.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::routing::post;
use nexmile_core::codec::decode_partner_call;
use nexmile_core::wire::site_owner::{UpdateUserBalance, paths};
use nexmile_partner_demo::DemoConfig;
use tokio::sync::mpsc;

use crate::support::start_with;

/// A Nexmile server that only takes UpdateUserBalance and hands each one over.
async fn nexmile_stand_in() -> (String, mpsc::UnboundedReceiver<(String, Bytes)>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = Router::new().route(
        paths::UPDATE_USER_BALANCE,
        post(move |RawQuery(query): RawQuery, body: Bytes| {
            let sender = sender.clone();
            async move {
                sender.send((query.unwrap_or_default(), body)).unwrap();
                "result=0"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn autocharge_adds_points_and_tells_the_nexmile_server() {
    let (nexmile_url, mut received) = nexmile_stand_in().await;
    let site = start_with(DemoConfig {
        nexmile_url,
        auto_charge_points: 700,
        ..DemoConfig::in_memory()
    })
    .await;
    let (status, body) = site.get("/autocharge?userId=yuki").await;
    assert_eq!((status, body.as_str()), (200, "result=0"));
    assert_eq!(site.demo.points("yuki").await, Some(720));

    let (query, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("UpdateUserBalance arrives")
        .unwrap();
    assert_eq!(query, "siteKey=test.key");
    let update: UpdateUserBalance = decode_partner_call(&query, &body).unwrap();
    assert_eq!(update.site_token, "site-token-1");
    assert_eq!(update.user_id, "yuki");
    assert_eq!(update.point, 700);
    assert!(update.auto_charge);
    assert_eq!(update.comment.as_deref(), Some("オートチャージ"));
    assert_eq!(update.sid.len(), 32);

    // The call out is logged with the stand-in's answer.
    let mut outgoing = None;
    for _ in 0..50 {
        outgoing = site
            .demo
            .requests()
            .await
            .into_iter()
            .find(|r| r.direction == "out" && r.reply_status.is_some());
        if outgoing.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outgoing = outgoing.expect("the outgoing request is logged");
    assert_eq!(outgoing.path, paths::UPDATE_USER_BALANCE);
    assert_eq!(outgoing.reply_status, Some(200));
    assert_eq!(outgoing.reply_body.as_deref(), Some("result=0"));

    let (status, _) = site.get("/autocharge?userId=nobody").await;
    assert_eq!(status, 404);
    site.demo.shutdown().await;
}
