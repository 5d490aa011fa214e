//! `POST /api/activate`: activateExUser (§3.2). A partner site's users are
//! vouched for by the partner's auth URL; the built-in site `nexmile` gives
//! each device an app phone number.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use nexmile_core::codec::PartnerFailure;
use nexmile_core::signal::{ActivateReply, ActivateRequest};
use nexmile_core::signature::secrets_equal;
use nexmile_core::wire::auth::{AuthReply, AuthRequest};

use crate::limits::{Costly, client_ip};
use crate::partner::REPLY_TIMEOUT;
use crate::secrets::{new_secret, secret_hash};
use crate::services::Services;
use crate::store::Device;

pub(crate) async fn activate(
    State(services): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<ActivateRequest>,
) -> Json<ActivateReply> {
    let ip = client_ip(peer.ip(), &headers, &services.config.server.trusted_proxies);
    let device = request.device.device_token.to_string();
    if let Err(message) = services.limits.check(Costly::Activation, ip, &device) {
        return Json(ActivateReply::Refused { message });
    }
    let outcome = if request.site == "nexmile" {
        activate_builtin(&services, &request).await
    } else {
        activate_at_partner(&services, &request).await
    };
    Json(match outcome {
        Ok(Activated {
            device,
            session_token,
            device_secret,
        }) => ActivateReply::Activated {
            site: device.site,
            session_token,
            user_id: device.user_id,
            name: device.name,
            enable_download_effect: device.enable_download_effect,
            phone_number: device.phone_number,
            device_secret,
        },
        Err(message) => ActivateReply::Refused { message },
    })
}

/// A device saved with a new session token, which the app alone learns.
struct Activated {
    device: Device,
    session_token: String,
    /// The built-in site's registration secret, when this registration issued one.
    device_secret: Option<String>,
}

fn server_error(e: impl std::fmt::Display) -> String {
    tracing::error!("activate: {e}");
    "サーバでエラーが発生しました。しばらくしてからもう一度お試しください。".into()
}

/// 11 digits starting 050, like an IP phone number, unique at the site.
async fn new_phone_number(services: &Services) -> Result<String, String> {
    for _ in 0..20 {
        let n = uuid::Uuid::new_v4().as_u128() % 100_000_000;
        let number = format!("050{n:08}");
        if services
            .store
            .device_by_phone("nexmile", &number)
            .await
            .map_err(server_error)?
            .is_none()
        {
            return Ok(number);
        }
    }
    Err(server_error("no free phone number after 20 tries"))
}

/// The built-in site binds its phone number to a secret the server gives
/// the installation at its first registration. A later registration of the
/// same device token must show it: the device token is sent to every
/// partner, so on its own it proves nothing (security review H1).
async fn activate_builtin(
    services: &Services,
    request: &ActivateRequest,
) -> Result<Activated, String> {
    if !services.config.server.builtin_site {
        return Err("このサーバでは Nexmile 番号の登録を受け付けていません。".into());
    }
    let token = request.device.device_token.to_string();
    let existing = services
        .store
        .device("nexmile", &token)
        .await
        .map_err(server_error)?;
    let (phone, issued) = match existing {
        Some(device) => {
            let shown = request
                .device_secret
                .as_ref()
                .map(|s| secret_hash(s.expose()));
            let proven = match (&device.secret_hash, shown) {
                (Some(kept), Some(shown)) => secrets_equal(kept, &shown),
                // Registered before secrets existed: this registration binds one.
                (None, _) => true,
                (Some(_), None) => false,
            };
            if !proven {
                tracing::warn!("built-in site: re-registration of {token} without its secret");
                return Err(
                    "この端末の Nexmile 番号は登録時の鍵と一致しません。アプリを再インストールした場合は新しい番号で登録し直してください。"
                        .into(),
                );
            }
            let issued = device.secret_hash.is_none().then(new_secret);
            let phone = match device.phone_number {
                Some(phone) => phone,
                None => new_phone_number(services).await?,
            };
            (phone, issued)
        }
        None => (new_phone_number(services).await?, Some(new_secret())),
    };
    let kept_hash = match &issued {
        Some(secret) => Some(secret_hash(secret)),
        None => request
            .device_secret
            .as_ref()
            .map(|s| secret_hash(s.expose())),
    };
    let session_token = new_secret();
    let device = Device {
        site: "nexmile".into(),
        device_token: token,
        user_id: phone.clone(),
        name: request.device.device_name.clone(),
        session_hash: secret_hash(&session_token),
        enable_download_effect: true,
        phone_number: Some(phone),
        secret_hash: kept_hash,
    };
    services
        .store
        .save_device(&device, services.clock.now().0)
        .await
        .map_err(server_error)?;
    Ok(Activated {
        device,
        session_token,
        device_secret: issued,
    })
}

async fn activate_at_partner(
    services: &Services,
    request: &ActivateRequest,
) -> Result<Activated, String> {
    let Some(site) = services.config.site(&request.site) else {
        return Err(format!(
            "サイトコード「{}」は登録されていません。",
            request.site
        ));
    };
    if request.unique_id.is_none() && (request.user_id.is_none() || request.user_pw.is_none()) {
        return Err("ユーザを特定できません（uniqueId または user と pass が必要です）。".into());
    }
    let auth = AuthRequest {
        site_api_key: site.api_key.clone(),
        device_token: request.device.device_token,
        app_version: request.device.app_version.clone(),
        os_type: request.device.os_type,
        unique_id: request.unique_id.clone(),
        user_id: request.user_id.clone(),
        user_pw: request.user_pw.clone(),
    };
    let reply = services
        .partner
        .get(site, &site.auth_url, &auth.to_query(), REPLY_TIMEOUT)
        .await
        .and_then(|delivery| delivery.accepted_body())
        .and_then(|body| AuthReply::parse(&body))
        .map_err(|failure: PartnerFailure| {
            tracing::info!("auth at {}: {failure}", site.code);
            failure.user_message_ja()
        })?;
    let user_id = reply
        .vouched_identity(request.unique_id.as_deref(), request.user_id.as_deref())
        .map_err(|refusal| {
            tracing::warn!("auth at {}: {refusal:?}", site.code);
            refusal.to_string()
        })?;
    let session_token = new_secret();
    let device = Device {
        site: site.code.clone(),
        device_token: request.device.device_token.to_string(),
        name: reply.name.clone().unwrap_or_else(|| user_id.clone()),
        user_id,
        session_hash: secret_hash(&session_token),
        enable_download_effect: reply.enable_download_effect,
        phone_number: None,
        secret_hash: None,
    };
    services
        .store
        .save_device(&device, services.clock.now().0)
        .await
        .map_err(server_error)?;
    if let Some(unique_id) = &request.unique_id {
        services
            .store
            .save_unique_id(
                &site.code,
                unique_id,
                &device.user_id,
                services.clock.now().0,
            )
            .await
            .map_err(server_error)?;
    }
    Ok(Activated {
        device,
        session_token,
        device_secret: None,
    })
}
