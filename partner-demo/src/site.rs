//! What every handler shares: the configuration, the database, the faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use nexmile_core::applink::{AppLinkBase, CUSTOM_SCHEME, SiteCode};
use nexmile_core::clock::UnixMillis;
use nexmile_core::codec::URI_COMPONENT;
use nexmile_core::signature::secrets_equal;
use percent_encoding::utf8_percent_encode;
use tokio::sync::watch;
use url::Url;

use crate::config::DemoConfig;
use crate::error::DemoError;
use crate::faults::FaultBook;
use crate::nexmile_client::NexmileClient;
use crate::reply::Reply;
use crate::store::Store;

pub(crate) type SharedSite = Arc<Site>;

/// The price of one point in yen (serviceCharge.pointPrice); payments buy points at it.
pub(crate) const POINT_PRICE_YEN: u32 = 1;

pub(crate) struct Site {
    pub config: DemoConfig,
    /// `http://<bound address>`, for links back to this site.
    pub url: String,
    pub site_code: SiteCode,
    pub app_link_base: AppLinkBase,
    pub store: Store,
    pub faults: FaultBook,
    pub nexmile: NexmileClient,
    /// Becomes true when the site shuts down; held requests let go then.
    pub stopping: watch::Receiver<bool>,
}

impl Site {
    pub fn new(
        config: DemoConfig,
        addr: SocketAddr,
        store: Store,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, DemoError> {
        let app_link_base = match config.app_link_base.as_deref() {
            None => AppLinkBase::spec(),
            Some(base) if base.starts_with(&format!("{CUSTOM_SCHEME}:")) => {
                AppLinkBase::CustomScheme
            }
            Some(base) => AppLinkBase::https(base)?,
        };
        Ok(Self {
            url: format!("http://{addr}"),
            site_code: SiteCode::new(&config.site_code)?,
            app_link_base,
            nexmile: NexmileClient::new(&config)?,
            config,
            store,
            faults: FaultBook::default(),
            stopping,
        })
    }

    /// The site's top page, as the app's "サイトへ戻る" target.
    pub fn return_url(&self) -> Option<Url> {
        Url::parse(&format!("{}/", self.url)).ok()
    }

    /// Where a user without a stored picture gets one.
    pub fn avatar_url(&self, user_id: &str) -> String {
        format!(
            "{}/avatar/{}.svg",
            self.url,
            utf8_percent_encode(user_id, URI_COMPONENT)
        )
    }

    /// `Err(rejection)` unless `key` is this site's api key.
    pub fn check_key(&self, key: &str) -> Result<(), Reply> {
        if secrets_equal(key, &self.config.api_key) {
            Ok(())
        } else {
            Err(Reply::rejected(
                StatusCode::OK,
                "サイト認証キーが一致しません。",
            ))
        }
    }
}

pub(crate) fn now() -> UnixMillis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UnixMillis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}
