//! Around every partner endpoint: log the request, check its signature, and
//! play any fault a test switched on, before the handler sees it.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use nexmile_core::codec::encode_refused_reply;
use nexmile_core::signature::{REQUEST_ID_HEADER, SignedRequest};

use crate::faults::{Fault, FaultEndpoint, FaultKind, HELD_REQUEST};
use crate::reply::Reply;
use crate::service_type::ServiceKind;
use crate::signing::SignatureCheck;
use crate::site::{SharedSite, now};
use crate::store::{LogDirection, NewLogEntry};

/// Partner requests are small; anything bigger is not from the Nexmile server.
const MAX_BODY: usize = 1024 * 1024;

pub(crate) async fn partner_edge(
    State(site): State<SharedSite>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return Reply::rejected(StatusCode::PAYLOAD_TOO_LARGE, "リクエストが大きすぎます。")
            .into_response();
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let at = now();
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let signed = SignedRequest {
        method: parts.method.as_str(),
        host,
        path_and_query,
        body: if parts.method == Method::POST {
            &body_text
        } else {
            ""
        },
    };
    let signature = SignatureCheck::of(
        &parts.headers,
        site.config.signing_secret.as_deref(),
        &signed,
        at.0 / 1000,
    );
    if signature == SignatureCheck::Unsigned {
        tracing::info!(%path, "unsigned request (no X-Nexmile-Signature): accepted");
    }
    let request_id = parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let logged = site
        .store
        .log_request(&NewLogEntry {
            at,
            direction: LogDirection::Incoming,
            method: parts.method.as_str(),
            path: &path,
            query: &query,
            body: &body_text,
            request_id: request_id.as_deref(),
            signature: &signature.describe(),
        })
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot log a request"))
        .ok();

    let response = if signature.is_invalid() {
        tracing::warn!(%path, verdict = %signature.describe(), "signature rejected");
        Reply::rejected(StatusCode::UNAUTHORIZED, "署名が一致しません。").into_response()
    } else if let Some(fault) = fault_for(&site, &path, &body) {
        tracing::info!(%path, ?fault, "playing a fault");
        play(&site, &fault).await.into_response()
    } else {
        next.run(Request::from_parts(parts, Body::from(body))).await
    };

    // Read the reply to log it, then send it on unchanged.
    let (parts, body) = response.into_parts();
    let reply = to_bytes(body, usize::MAX).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read a reply to log it");
        Bytes::new()
    });
    if let Some(id) = logged {
        let text = String::from_utf8_lossy(&reply);
        if let Err(e) = site
            .store
            .log_reply(id, Some(parts.status.as_u16()), &text)
            .await
        {
            tracing::error!(error = %e, "cannot log a reply");
        }
    }
    Response::from_parts(parts, Body::from(reply))
}

fn fault_for(site: &SharedSite, path: &str, body: &[u8]) -> Option<Fault> {
    let endpoint = FaultEndpoint::of_path(path)?;
    let call_service_type = (endpoint == FaultEndpoint::CallService)
        .then(|| ServiceKind::Call.code_of(body))
        .flatten();
    site.faults.take(endpoint, call_service_type)
}

async fn play(site: &SharedSite, fault: &Fault) -> Reply {
    match fault.kind {
        FaultKind::Timeout => {
            let mut stopping = site.stopping.clone();
            tokio::select! {
                () = tokio::time::sleep(HELD_REQUEST) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            Reply::empty().with_status(StatusCode::GATEWAY_TIMEOUT)
        }
        FaultKind::Http500 => Reply::empty().with_status(StatusCode::INTERNAL_SERVER_ERROR),
        FaultKind::Garbage => Reply::ok("<html>not a reply"),
        FaultKind::Refuse => Reply::ok(encode_refused_reply(-1, fault.message.as_deref())),
    }
}
