//! The project's own HTTP surfaces: the administrator API, the app-link
//! pages, effect files, WHIP/WHEP, what partner servers call (chapter 7)
//! and the OpenAPI document.

pub(crate) mod admin;
pub(crate) mod admin_auth;
pub(crate) mod app_pages;
pub(crate) mod effect_files;
pub mod openapi;
pub(crate) mod site_owner;
pub(crate) mod whip;
