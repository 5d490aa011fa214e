//! The site's routes: the partner endpoints behind [`crate::edge`], and the pages.

mod auth;
mod autocharge;
mod call_service;
mod demo_api;
mod live_service;
mod pages;
mod payment;

use axum::Router;
use axum::middleware;
use axum::routing::get;
use axum::routing::post;

use crate::edge::partner_edge;
use crate::site::SharedSite;

pub(crate) fn router(site: SharedSite) -> Router {
    // What the Nexmile server calls: logged, signature-checked, fault-injectable.
    let partner = Router::new()
        .route("/auth", get(auth::auth))
        .route("/CallService", post(call_service::call_service))
        .route("/payment", get(payment::payment))
        .route("/liveService", post(live_service::live_service))
        .route("/notInstalled", get(live_service::not_installed))
        .route("/autocharge", get(autocharge::autocharge))
        .route_layer(middleware::from_fn_with_state(site.clone(), partner_edge));
    let pages = Router::new()
        .route("/", get(pages::index))
        .route("/log", get(pages::log))
        .route("/avatar/{file}", get(pages::avatar))
        .route("/banner.svg", get(pages::banner))
        .route("/log.json", get(demo_api::log))
        .route("/users.json", get(demo_api::users))
        .route(
            "/demo/faults",
            get(demo_api::faults)
                .post(demo_api::set_fault)
                .delete(demo_api::clear_faults),
        );
    partner.merge(pages).with_state(site)
}
