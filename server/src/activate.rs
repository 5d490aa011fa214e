//! `POST /api/activate`: activateExUser (§3.2). A partner site's users are
//! vouched for by the partner's auth URL; the built-in site `nexmile` gives
//! each device an app phone number.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use nexmile_core::codec::PartnerFailure;
use nexmile_core::signal::{ActivateReply, ActivateRequest};
use nexmile_core::wire::auth::{AuthReply, AuthRequest};

use crate::partner::REPLY_TIMEOUT;
use crate::state::Ctx;
use crate::store::Device;

pub async fn activate(
    State(ctx): State<Arc<Ctx>>,
    Json(request): Json<ActivateRequest>,
) -> Json<ActivateReply> {
    let outcome = if request.site == "nexmile" {
        activate_builtin(&ctx, &request).await
    } else {
        activate_at_partner(&ctx, &request).await
    };
    Json(match outcome {
        Ok(device) => ActivateReply::Activated {
            site: device.site,
            session_token: device.session_token,
            user_id: device.user_id,
            name: device.name,
            enable_download_effect: device.enable_download_effect,
            phone_number: device.phone_number,
        },
        Err(message) => ActivateReply::Refused { message },
    })
}

fn server_error(e: impl std::fmt::Display) -> String {
    tracing::error!("activate: {e}");
    "サーバでエラーが発生しました。しばらくしてからもう一度お試しください。".into()
}

/// 11 digits starting 050, like an IP phone number, unique at the site.
async fn new_phone_number(ctx: &Ctx) -> Result<String, String> {
    for _ in 0..20 {
        let n = uuid::Uuid::new_v4().as_u128() % 100_000_000;
        let number = format!("050{n:08}");
        if ctx
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

async fn activate_builtin(ctx: &Ctx, request: &ActivateRequest) -> Result<Device, String> {
    let token = request.device.device_token.to_string();
    let existing = ctx
        .store
        .device("nexmile", &token)
        .await
        .map_err(server_error)?;
    let phone = match existing.and_then(|d| d.phone_number) {
        Some(phone) => phone,
        None => new_phone_number(ctx).await?,
    };
    let device = Device {
        site: "nexmile".into(),
        device_token: token,
        user_id: phone.clone(),
        name: request.device.device_name.clone(),
        session_token: uuid::Uuid::new_v4().to_string(),
        enable_download_effect: true,
        phone_number: Some(phone),
    };
    ctx.store
        .save_device(&device, ctx.clock.now().0)
        .await
        .map_err(server_error)?;
    Ok(device)
}

async fn activate_at_partner(ctx: &Ctx, request: &ActivateRequest) -> Result<Device, String> {
    let Some(site) = ctx.config.site(&request.site) else {
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
    let reply = ctx
        .partner
        .get(site, &site.auth_url, &auth.to_query(), REPLY_TIMEOUT)
        .await
        .and_then(|delivery| delivery.accepted_body())
        .and_then(|body| AuthReply::parse(&body))
        .map_err(|failure: PartnerFailure| {
            tracing::info!("auth at {}: {failure}", site.code);
            failure.user_message_ja()
        })?;
    // Decision 14: the link's user, else the partner's, else the uniqueId.
    let user_id = request
        .user_id
        .clone()
        .or(reply.user_id.clone())
        .or(request.unique_id.clone())
        .unwrap_or_default();
    let device = Device {
        site: site.code.clone(),
        device_token: request.device.device_token.to_string(),
        name: reply.name.clone().unwrap_or_else(|| user_id.clone()),
        user_id,
        session_token: uuid::Uuid::new_v4().to_string(),
        enable_download_effect: reply.enable_download_effect,
        phone_number: None,
    };
    ctx.store
        .save_device(&device, ctx.clock.now().0)
        .await
        .map_err(server_error)?;
    if let Some(unique_id) = &request.unique_id {
        ctx.store
            .save_unique_id(&site.code, unique_id, &device.user_id, ctx.clock.now().0)
            .await
            .map_err(server_error)?;
    }
    Ok(device)
}
