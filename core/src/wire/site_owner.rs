//! Chapter 7: what partner servers call on the Nexmile server under
//! `/SiteOwner/*`, always with `?siteKey=` (decision 4).

use serde::{Deserialize, Serialize};

use crate::lenient;

/// The `siteKey` every partner call carries in its query string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteKeyQuery {
    pub site_key: String,
}

/// The paths partners call. Both spellings of the gift dump are served (decision 3).
pub mod paths {
    pub const PUSH_MESSAGE: &str = "/SiteOwner/PushMessage";
    pub const UPDATE_USER_BALANCE: &str = "/SiteOwner/UpdateUserBalance";
    pub const DUMP_GIFT: [&str; 2] = ["/SiteOwner/DumpGift", "/SiteOwner/DumpGif"];
}

/// One ID or a list of them: the spec asks for a list even for one user, but
/// a partner sending a bare ID means the same.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(#[serde(deserialize_with = "lenient::text")] String),
    Many(Vec<serde_json::Value>),
}

fn user_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(id) => vec![id],
        OneOrMany::Many(ids) => ids
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
    })
}

/// §7.1.3 プッシュメッセージ配信.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    /// Not shown on iOS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Opened when the notification is clicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_action: Option<String>,
    #[serde(deserialize_with = "user_ids")]
    pub user_ids: Vec<String>,
}

/// §7.2.3 ユーザポイント更新: the partner changed the user's points while a
/// call or live was running; the ledger adjusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserBalance {
    pub site_token: String,
    #[serde(deserialize_with = "lenient::text")]
    pub sid: String,
    #[serde(deserialize_with = "lenient::text")]
    pub user_id: String,
    /// The change, not the new balance.
    #[serde(deserialize_with = "lenient::int")]
    pub point: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// true: add `point`; false: subtract it.
    #[serde(deserialize_with = "lenient::bool")]
    pub auto_charge: bool,
}

impl UpdateUserBalance {
    /// The signed change in points.
    pub fn adjustment(&self) -> i64 {
        let points = i64::from(self.point);
        if self.auto_charge { points } else { -points }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_partner_call, decode_query};

    #[test]
    fn balance_update_from_json_form_or_query() {
        // Decision 4.
        let json =
            br#"{"siteToken":"t","sid":991,"userId":"u1","point":"300","autoCharge":"True"}"#;
        let u: UpdateUserBalance = decode_partner_call("siteKey=k", json).unwrap();
        assert_eq!(u.adjustment(), 300);
        assert_eq!(u.sid, "991");
        let form = b"siteToken=t&sid=992&userId=u1&point=120&autoCharge=false&comment=shop";
        let u: UpdateUserBalance = decode_partner_call("siteKey=k", form).unwrap();
        assert_eq!(u.adjustment(), -120);
        let q = "siteKey=k&siteToken=t&sid=993&userId=u1&point=1&autoCharge=1";
        let u: UpdateUserBalance = decode_partner_call(q, b"").unwrap();
        assert_eq!(u.adjustment(), 1);
        let key: SiteKeyQuery = decode_query(q).unwrap();
        assert_eq!(key.site_key, "k");
        assert!(decode_partner_call::<UpdateUserBalance>("siteKey=k", b"sid=1&userId=u").is_err());
    }

    #[test]
    fn push_message_takes_a_list_or_a_single_id() {
        let p: PushMessage =
            serde_json::from_str(r#"{"title":"お知らせ","body":"ライブ開始","userIds":["a",12]}"#)
                .unwrap();
        assert_eq!(p.user_ids, ["a", "12"]);
        let p: PushMessage =
            serde_json::from_str(r#"{"title":"t","body":"b","userIds":"solo"}"#).unwrap();
        assert_eq!(p.user_ids, ["solo"]);
        assert_eq!(
            paths::DUMP_GIFT,
            ["/SiteOwner/DumpGift", "/SiteOwner/DumpGif"]
        );
    }
}
