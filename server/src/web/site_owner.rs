//! Chapter 7: what partner servers call, authenticated by `siteKey` in the
//! query (compared in constant time); each site reaches only its own users.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use nexmile_core::codec::{decode_partner_call, decode_query, encode_refused_reply};
use nexmile_core::signal::ServerMessage;
use nexmile_core::signature::secrets_equal;
use nexmile_core::wire::site_owner::{PushMessage, SiteKeyQuery, UpdateUserBalance};

use crate::calls::Calls;
use crate::config::{Config, SiteConfig};
use crate::lives::Lives;
use crate::services::Services;

/// UpdateUserBalance reaches the calls and lives running, one request at a
/// time (idempotency by sid).
pub struct BalanceUpdates {
    calls: Arc<Calls>,
    lives: Arc<Lives>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl BalanceUpdates {
    pub fn new(calls: Arc<Calls>, lives: Arc<Lives>) -> Self {
        Self {
            calls,
            lives,
            one_at_a_time: tokio::sync::Mutex::default(),
        }
    }
}

const BAD_KEY: &str = "siteKey が正しくありません。";
const UNREADABLE: &str = "リクエストを読み取れませんでした。";

/// The site whose api_key the query's siteKey is. Every site is compared, so
/// the time taken does not reveal which keys exist.
fn site_of<'a>(config: &'a Config, query: Option<&str>) -> Option<&'a SiteConfig> {
    let key = decode_query::<SiteKeyQuery>(query.unwrap_or(""))
        .ok()?
        .site_key;
    config.site.iter().fold(None, |found, site| {
        if secrets_equal(&site.api_key, &key) {
            Some(site)
        } else {
            found
        }
    })
}

fn refused(message: &str) -> String {
    encode_refused_reply(-1, Some(message))
}

/// The calling site and its request, or the refusal to answer with.
fn authenticated<'a, T: serde::de::DeserializeOwned>(
    config: &'a Config,
    query: Option<&str>,
    body: &[u8],
) -> Result<(&'a SiteConfig, T), String> {
    let site = site_of(config, query).ok_or_else(|| refused(BAD_KEY))?;
    let request =
        decode_partner_call(query.unwrap_or(""), body).map_err(|_| refused(UNREADABLE))?;
    Ok((site, request))
}

pub(crate) async fn push_message(
    State(services): State<Arc<Services>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> String {
    let (site, push): (_, PushMessage) =
        match authenticated(&services.config, query.as_deref(), &body) {
            Ok(call) => call,
            Err(refusal) => return refusal,
        };
    let message = ServerMessage::Push {
        title: push.title,
        body: push.body,
        image_url: push.image_url,
        click_action: push.click_action,
    };
    let reached = services
        .hub
        .send_to_users(&site.code, &push.user_ids, &message);
    tracing::info!("push from {}: {reached} connection(s) reached", site.code);
    "result=0".into()
}

pub(crate) async fn update_user_balance(
    State(services): State<Arc<Services>>,
    State(balance): State<Arc<BalanceUpdates>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> String {
    let (site, update): (_, UpdateUserBalance) =
        match authenticated(&services.config, query.as_deref(), &body) {
            Ok(call) => call,
            Err(refusal) => return refusal,
        };
    if !secrets_equal(&update.site_token, &site.token) {
        return refused("siteToken が siteKey のサイトと一致しません。");
    }
    // One at a time, so that a retry racing its original finds its answer.
    let _one_at_a_time = balance.one_at_a_time.lock().await;
    match services.store.balance_update(&site.code, &update.sid).await {
        Ok(Some(answer)) => {
            tracing::info!(
                "UpdateUserBalance {} sid={} repeated: the first answer, nothing changed",
                site.code,
                update.sid
            );
            return answer;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!("UpdateUserBalance: {e}");
            return refused("サーバでエラーが発生しました。");
        }
    }
    tracing::info!(
        "UpdateUserBalance {} sid={} {:+}",
        site.code,
        update.sid,
        update.adjustment()
    );
    let (user, points) = (&update.user_id, update.adjustment());
    let answer = if balance.calls.adjust(&site.code, user, points).await
        || balance.lives.adjust(&site.code, user, points).await
    {
        "result=0".to_owned()
    } else {
        // §7.2.1: the request is only for users in a service now.
        refused("このユーザは現在サービスを利用していません。")
    };
    // Only a change made is kept: a refusal (nobody in a service) changes
    // nothing, and the same sid may be tried again once the service runs.
    if answer == "result=0"
        && let Err(e) = services
            .store
            .save_balance_update(&site.code, &update.sid, &answer, services.clock.now().0)
            .await
    {
        tracing::error!("UpdateUserBalance sid={}: not recorded: {e}", update.sid);
    }
    answer
}

/// §7.3 ギフト一覧ダンプ: `result=0&json=<the site's gifts>`. No gift is
/// configured until lives bring their catalogue, so the list is empty.
pub(crate) async fn dump_gift(
    State(config): State<Arc<Config>>,
    RawQuery(query): RawQuery,
) -> String {
    if site_of(&config, query.as_deref()).is_none() {
        return refused(BAD_KEY);
    }
    nexmile_core::codec::encode_accepted_reply(Some(("json", &Vec::<serde_json::Value>::new())))
}
