//! Chapter 4: the call service requests (callServiceTp 1, 3, 4, 5, 6).
//!
//! All five share one shape (§4.3.2–4.3.5 say "as 架電開始 except
//! callServiceTp"); what differs is which optional parts are filled, and
//! [`CallServiceRequest::new`] enforces that per type.

use serde::{Deserialize, Serialize};

use super::codes::{CallServiceType, TerminateReason, UaType};
use crate::datetime::WireDateTime;

/// §4.3.1 ① caller / callee (callUser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallParty {
    /// The partner's user ID; for a public line, the phone number. For the
    /// callee of 架電準備, the link's calleeId.
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_sub_id: Option<String>,
    /// Absent only for the callee of 架電準備, before the callee's device is known.
    #[serde(rename = "uaTp", default, skip_serializing_if = "Option::is_none")]
    pub ua_type: Option<UaType>,
    /// For apps: `99.99.99`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_ver: Option<String>,
}

/// §4.3.5 ① callOverview: the summary sent with 通話終了.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallOverview {
    pub terminate_reason: TerminateReason,
    /// When the caller's app started the call; absent if it never did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_time: Option<WireDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<WireDateTime>,
    pub terminate_time: WireDateTime,
    /// Rounded half up from milliseconds (decision 10).
    pub talking_sec: u64,
    /// serviceCharge.unitPrice of the prepare reply.
    pub charge_price: u32,
    /// serviceCharge.unitSec of the prepare reply.
    pub charge_unit_sec: u32,
    pub point_price: u32,
    /// user.currentPoint at the start.
    pub start_point: u32,
    /// Points used, from the ledger (rounded up to whole points).
    pub talking_point: u64,
    /// Points the partner added during the call (UpdateUserBalance autoCharge=true).
    pub auto_charge_point: u64,
    /// Points the partner took during the call (UpdateUserBalance autoCharge=false).
    pub outside_usage_point: u64,
}

/// One call service request, sent as the percent-encoded JSON of decision 7.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallServiceRequest {
    pub site_token: String,
    #[serde(rename = "callServiceTp")]
    pub call_service_type: CallServiceType,
    pub call_token: String,
    pub caller: CallParty,
    pub callee: CallParty,
    pub video_call: bool,
    /// When the request was made.
    pub call_status_time: WireDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_overview: Option<CallOverview>,
}

/// A request whose parts do not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallRequestError {
    #[error("only 通話終了 (6) carries callOverview, and it must")]
    Overview,
    #[error("the caller needs uaTp")]
    CallerDevice,
    #[error("from 架電開始 (3) on, the callee needs uaTp")]
    CalleeDevice,
}

impl CallServiceRequest {
    /// Checks the parts its type requires; the server calls it before sending.
    pub fn check(&self) -> Result<(), CallRequestError> {
        if (self.call_service_type == CallServiceType::End) != self.call_overview.is_some() {
            return Err(CallRequestError::Overview);
        }
        if self.caller.ua_type.is_none() {
            return Err(CallRequestError::CallerDevice);
        }
        if self.call_service_type != CallServiceType::Prepare && self.callee.ua_type.is_none() {
            return Err(CallRequestError::CalleeDevice);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: &str, device: bool) -> CallParty {
        CallParty {
            user_id: id.into(),
            user_sub_id: None,
            ua_type: device.then_some(UaType::App),
            app_ver: device.then(|| "01.02.03".into()),
            device_name: device.then(|| "Pixel 8".into()),
            os_ver: device.then(|| "14".into()),
        }
    }

    fn at() -> WireDateTime {
        WireDateTime::parse("2024/05/01 10:00:00").unwrap()
    }

    #[test]
    fn prepare_carries_exactly_the_table_fields() {
        // Decision 7: one object with the detail table's properties.
        let r = CallServiceRequest {
            site_token: "site-token-1".into(),
            call_service_type: CallServiceType::Prepare,
            call_token: "ct-1".into(),
            caller: party("caller", true),
            callee: CallParty {
                user_sub_id: Some("desk-2".into()),
                ..party("42", false)
            },
            video_call: true,
            call_status_time: at(),
            call_overview: None,
        };
        r.check().unwrap();
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "callServiceTp",
                "callStatusTime",
                "callToken",
                "callee",
                "caller",
                "siteToken",
                "videoCall"
            ]
        );
        assert_eq!(v["callServiceTp"], 1);
        assert_eq!(v["callStatusTime"], "2024/05/01 10:00:00");
        assert_eq!(
            v["callee"],
            serde_json::json!({"userId": "42", "userSubId": "desk-2"})
        );
        assert_eq!(v["caller"]["uaTp"], 1);
        assert_eq!(v["caller"]["appVer"], "01.02.03");
    }

    #[test]
    fn end_needs_the_overview_and_others_refuse_it() {
        let overview = CallOverview {
            terminate_reason: TerminateReason::CalleeHungUp,
            incoming_time: Some(at()),
            connect_time: Some(at()),
            terminate_time: at(),
            talking_sec: 61,
            charge_price: 100,
            charge_unit_sec: 60,
            point_price: 10,
            start_point: 500,
            talking_point: 11,
            auto_charge_point: 0,
            outside_usage_point: 0,
        };
        let make = |call_service_type, call_overview| {
            let r = CallServiceRequest {
                site_token: "s".into(),
                call_service_type,
                call_token: "c".into(),
                caller: party("a", true),
                callee: party("b", true),
                video_call: false,
                call_status_time: at(),
                call_overview,
            };
            r.check().map(|()| r)
        };
        assert_eq!(
            make(CallServiceType::End, None),
            Err(CallRequestError::Overview)
        );
        assert_eq!(
            make(CallServiceType::Connected, Some(overview.clone())),
            Err(CallRequestError::Overview)
        );
        let end = make(CallServiceType::End, Some(overview)).unwrap();
        let json = serde_json::to_string(&end).unwrap();
        assert!(json.contains(r#""terminateReason":2"#), "{json}");
        assert!(json.contains(r#""talkingSec":61"#));
        let back: CallServiceRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, end);
        let mut no_callee_device = make(CallServiceType::Start, None).unwrap();
        no_callee_device.callee.ua_type = None;
        assert_eq!(
            no_callee_device.check(),
            Err(CallRequestError::CalleeDevice)
        );
    }
}
