//! §3.2 ユーザ認証 against the demo site.

use nexmile_core::codec::{PartnerFailure, PartnerReply};
use nexmile_core::wire::auth::AuthReply;

use crate::support::{API_KEY, auth_query, start};

#[tokio::test]
async fn user_and_password_authenticate_and_name_the_user() {
    let site = start().await;
    let (status, body) = site
        .get(&auth_query(API_KEY, "userId=hanako&userPw=hanako-pw"))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("result=0&enableDownloadEffect=1&"),
        "{body}"
    );
    let reply = AuthReply::parse(&body).unwrap();
    assert!(reply.enable_download_effect);
    assert_eq!(reply.user_id.as_deref(), Some("hanako"));
    assert_eq!(reply.name.as_deref(), Some("山田花子"));

    let (_, body) = site
        .get(&auth_query(API_KEY, "userId=hanako&userPw=wrong"))
        .await;
    let refused = AuthReply::parse(&body).unwrap_err();
    assert!(
        matches!(&refused, PartnerFailure::Refused { result: 1, message: Some(m) } if m.contains("パスワード")),
        "{refused:?}"
    );
    // The log keeps the request but never the password.
    let log = site.demo.requests().await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| r.query.contains("userPw=***")));
    assert!(!log.iter().any(|r| r.query.contains("hanako-pw")));
    assert_eq!(log[0].reply_status, Some(200));
    assert_eq!(log[0].signature, "unsigned");
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_one_time_id_works_once() {
    let site = start().await;
    let unique_id = site.demo.issue_unique_id("taro").await;
    let query = auth_query(API_KEY, &format!("uniqueId={unique_id}"));
    let (_, first) = site.get(&query).await;
    let reply = AuthReply::parse(&first).unwrap();
    assert_eq!(reply.user_id.as_deref(), Some("taro"));
    assert_eq!(reply.name.as_deref(), Some("佐藤太郎"));

    let (status, second) = site.get(&query).await;
    assert_eq!(status, 200);
    let refused = AuthReply::parse(&second).unwrap_err();
    assert!(
        refused.user_message_ja().contains("ワンタイムID"),
        "{refused:?}"
    );
    let (_, unknown) = site
        .get(&auth_query(API_KEY, "uniqueId=never-issued"))
        .await;
    assert!(AuthReply::parse(&unknown).is_err());
    site.demo.shutdown().await;
}

#[tokio::test]
async fn a_wrong_site_api_key_is_refused() {
    let site = start().await;
    let (status, body) = site
        .get(&auth_query("other.key", "userId=hanako&userPw=hanako-pw"))
        .await;
    assert_eq!(status, 200);
    let reply = PartnerReply::parse(&body).unwrap();
    assert_eq!(reply.result, -1);
    assert!(reply.message.unwrap().contains("キー"));
    // Nothing to identify the user by is a refusal too, not an error.
    let (_, body) = site.get(&auth_query(API_KEY, "userId=hanako")).await;
    assert_eq!(PartnerReply::parse(&body).unwrap().result, 1);
    site.demo.shutdown().await;
}
