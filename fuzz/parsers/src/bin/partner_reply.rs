//! What partner sites answer (QUERY replies, percent-encoded JSON) and what
//! they send to the site-owner API (QUERY or JSON bodies). The first byte
//! picks the reader and the required fields.
use std::collections::HashMap;

use nexmile_core::codec::{PartnerReply, decode_json_body, decode_partner_call, decode_query};
use nexmile_core::wire::auth::AuthReply;
use nexmile_core::wire::codes::RequiredReply;
use nexmile_core::wire::payment::PaymentReply;
use nexmile_core::wire::site_owner::{PushMessage, SiteKeyQuery, UpdateUserBalance};
use nexmile_core::wire::site_service::SiteService;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&selector, rest)) = data.split_first() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match selector % 6 {
            0 => {
                if let Ok(reply) = PartnerReply::parse(text) {
                    let _ = reply.json_field::<serde_json::Value>("service");
                    let _ = reply.fields_as::<HashMap<String, String>>();
                }
            }
            1 => {
                if let Ok(reply) = AuthReply::parse(text) {
                    let _ = reply.vouched_identity(Some("u1"), None);
                    let _ = reply.vouched_identity(None, Some("hanako"));
                }
            }
            2 => {
                let _ = PaymentReply::parse(text);
            }
            3 => {
                let required = RequiredReply {
                    user: selector & 0x08 != 0,
                    service_charge: selector & 0x10 != 0,
                    call_service: selector & 0x20 != 0,
                    live_service: selector & 0x40 != 0,
                };
                let _ = SiteService::from_reply(text, required);
            }
            4 => {
                let _ = decode_query::<UpdateUserBalance>(text);
                let _ = decode_query::<PushMessage>(text);
                let _ = decode_query::<SiteKeyQuery>(text);
            }
            _ => {
                let (query, body) = text.split_once('\n').unwrap_or((text, ""));
                let _ = decode_partner_call::<UpdateUserBalance>(query, body.as_bytes());
                let _ = decode_json_body::<PushMessage>(body.as_bytes());
            }
        }
    });
}
