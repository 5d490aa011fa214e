//! §5.3.16 リアルタイム決済: the viewer buys points during a live. Its own
//! GET/QUERY request, with a 180 s timeout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::{PartnerFailure, PartnerReply, decode_query, encode_query};
use crate::lenient;

/// How long the partner's payment system may take (§5.3.16).
pub const PAYMENT_TIMEOUT: Duration = Duration::from_secs(180);

/// §5.3.16 ③.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest {
    pub site_key: String,
    pub live_token: String,
    pub link_id: String,
    pub user_id: String,
    /// The amount the viewer chose (a quickPayments paymentAmount).
    pub payment: u32,
    /// Nexmile's ID of this purchase, the same on a repeat (an addition to
    /// §5.3.16 that a partner may use to pay once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

impl PaymentRequest {
    pub fn to_query(&self) -> String {
        encode_query(self)
    }
}

/// §5.3.16 ④ a completed payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentReply {
    /// The partner's ID of this payment, for reconciliation.
    pub sid: String,
    pub user_id: String,
    /// Points added (the change, not the new balance).
    #[serde(deserialize_with = "lenient::int")]
    pub point: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl PaymentReply {
    /// A completed payment (with or without `result=0`), or the refusal.
    pub fn parse(body: &str) -> Result<Self, PartnerFailure> {
        if let Ok(reply) = PartnerReply::parse(body)
            && reply.result != 0
        {
            return Err(PartnerFailure::Refused {
                result: reply.result,
                message: reply.message,
            });
        }
        decode_query(body).map_err(|e| PartnerFailure::Unparseable {
            detail: e.to_string(),
        })
    }

    pub fn encode(&self) -> String {
        encode_query(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_refused_and_garbage_payments() {
        let ok = PaymentReply::parse(
            "sid=p-1&userId=u1&point=500&comment=%E3%83%81%E3%83%A3%E3%83%BC%E3%82%B8",
        )
        .unwrap();
        assert_eq!(ok.point, 500);
        assert_eq!(ok.comment.as_deref(), Some("チャージ"));
        assert_eq!(
            PaymentReply::parse(&format!("result=0&{}", ok.encode())).unwrap(),
            ok
        );
        assert!(matches!(
            PaymentReply::parse("result=-1&message=card%20declined"),
            Err(PartnerFailure::Refused { result: -1, message: Some(m) }) if m == "card declined"
        ));
        assert!(matches!(
            PaymentReply::parse("sid=p-1&point=5"),
            Err(PartnerFailure::Unparseable { .. })
        ));
        assert!(matches!(
            PaymentReply::parse("<html>"),
            Err(PartnerFailure::Unparseable { .. })
        ));
        let q = PaymentRequest {
            site_key: "k".into(),
            live_token: "lt".into(),
            link_id: "L".into(),
            user_id: "u".into(),
            payment: 1000,
            payment_id: None,
        }
        .to_query();
        assert_eq!(q, "siteKey=k&liveToken=lt&linkId=L&userId=u&payment=1000");
        let q = PaymentRequest {
            site_key: "k".into(),
            live_token: "lt".into(),
            link_id: "L".into(),
            user_id: "u".into(),
            payment: 1000,
            payment_id: Some("p-7".into()),
        }
        .to_query();
        assert_eq!(
            q,
            "siteKey=k&liveToken=lt&linkId=L&userId=u&payment=1000&paymentId=p-7"
        );
    }
}
