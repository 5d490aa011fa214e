//! §3.2 ユーザ認証 and §6.2 アプリ未インストール報告: the two GET/QUERY
//! requests about who a user is.

use serde::{Deserialize, Serialize};

use super::codes::OsType;
use crate::codec::{PartnerFailure, PartnerReply, encode_query};
use crate::device::DeviceToken;
use crate::secret::{Secret, expose_secret};

/// §3.2.1 ② the auth request, sent as GET `auth_url?<query>` with the
/// table's field names (decision 1: `osType`, `userId`, `userPw`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRequest {
    pub site_api_key: String,
    /// One per installation (decision 15).
    pub device_token: DeviceToken,
    /// `99.99.99`.
    pub app_version: String,
    pub os_type: OsType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_pw: Option<Secret>,
}

impl AuthRequest {
    pub fn to_query(&self) -> String {
        encode_query(self)
    }
}

/// §3.2.1 ③ an accepted auth reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthReply {
    /// `enableDownloadEffect=1`: this user may download face-filter packages.
    pub enable_download_effect: bool,
    /// Decision 14: a partner may name the user of a uniqueId registration.
    pub user_id: Option<String>,
    pub name: Option<String>,
}

impl AuthReply {
    /// Reads the reply; a refusal or garbage is the matching [`PartnerFailure`].
    pub fn parse(body: &str) -> Result<Self, PartnerFailure> {
        let reply = PartnerReply::parse_accepted(body)?;
        let text = |name| {
            reply
                .field(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(Self {
            enable_download_effect: reply.field("enableDownloadEffect").map(str::trim) == Some("1"),
            user_id: text("userId"),
            name: text("name"),
        })
    }

    /// Decision 14: who the registering user is, only ever what the partner
    /// vouched for. With a `uniqueId` it is the reply's `userId`, else the
    /// uniqueId itself; with `user`/`pass` it is that user, whose password the
    /// partner just accepted. A link's `user` that differs from the vouched
    /// identity is refused, never taken on the link's word.
    pub fn vouched_identity(
        &self,
        unique_id: Option<&str>,
        link_user: Option<&str>,
    ) -> Result<String, IdentityMismatch> {
        let vouched = match (unique_id, link_user) {
            (Some(unique_id), _) => self.user_id.as_deref().unwrap_or(unique_id),
            (None, Some(user)) => user,
            (None, None) => return Err(IdentityMismatch::NobodyNamed),
        };
        let mismatch = |named: Option<&str>| named.is_some_and(|n| n != vouched);
        if mismatch(link_user) || mismatch(self.user_id.as_deref()) {
            return Err(IdentityMismatch::Differs);
        }
        Ok(vouched.to_owned())
    }

    /// The reply as a partner writes it: `result=0&enableDownloadEffect=1&…`.
    pub fn encode(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            result: i64,
            enable_download_effect: u8,
            #[serde(skip_serializing_if = "Option::is_none")]
            user_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
        }
        encode_query(&Wire {
            result: 0,
            enable_download_effect: u8::from(self.enable_download_effect),
            user_id: self.user_id.as_deref(),
            name: self.name.as_deref(),
        })
    }
}

/// Why a registration was refused although the partner accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityMismatch {
    /// The link's `user`, or the reply's `userId`, names someone other than
    /// the user the partner authenticated.
    #[error(
        "リンクのユーザが連携先サイトの認証したユーザと一致しません。サイトのページからやり直してください。"
    )]
    Differs,
    #[error("ユーザを特定できません（uniqueId または user と pass が必要です）。")]
    NobodyNamed,
}

/// §6.2 ③ the report sent to `not_installed_url` when a link reached the
/// server's page instead of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotInstalledReport {
    pub site_key: String,
    /// Known when the server has seen this uniqueId before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(
        default,
        serialize_with = "expose_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_pw: Option<Secret>,
    pub unique_id: String,
    /// The browser's User-Agent.
    pub ua: String,
    pub os_type: OsType,
}

impl NotInstalledReport {
    pub fn to_query(&self) -> String {
        encode_query(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_query;

    #[test]
    fn auth_request_uses_the_table_names_not_the_example_ones() {
        // Decision 1: osType, userId, userPw — never opTtype or pw.
        let r = AuthRequest {
            site_api_key: "test.key".into(),
            device_token: "106f7a7d-e11c-ef05-2e8c-54b459aa202e".parse().unwrap(),
            app_version: "01.01.00".into(),
            os_type: OsType::Android,
            unique_id: None,
            user_id: Some("11111111".into()),
            user_pw: Some(Secret::new("22 22&2")),
        };
        let q = r.to_query();
        assert_eq!(
            q,
            "siteApiKey=test.key&deviceToken=106f7a7d-e11c-ef05-2e8c-54b459aa202e&appVersion=01.01.00&osType=1&userId=11111111&userPw=22+22%262"
        );
        assert!(!q.contains("opTtype") && !q.contains("&pw="));
        let back: AuthRequest = decode_query(&q).unwrap();
        assert_eq!(back, r);
        // The password never shows in a printout.
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("22 22&2") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn auth_reply_reads_download_permission_and_optional_identity() {
        let ok = AuthReply::parse("result=0&enableDownloadEffect=1").unwrap();
        assert!(ok.enable_download_effect);
        assert_eq!(ok.user_id, None);
        let named =
            AuthReply::parse("result=0&enableDownloadEffect=2&userId=u-77&name=%E8%8A%B1%E5%AD%90")
                .unwrap();
        assert!(
            !named.enable_download_effect,
            "anything but 1 is not allowed"
        );
        assert_eq!(named.user_id.as_deref(), Some("u-77"));
        assert_eq!(named.name.as_deref(), Some("花子"));
        assert_eq!(
            AuthReply::parse(&named.encode()).unwrap(),
            AuthReply {
                enable_download_effect: false,
                ..named
            }
        );
        let refused = AuthReply::parse("result=1&message=%E4%BC%9A%E5%93%A1%E7%99%BB%E9%8C%B2%E3%81%8C%E5%BF%85%E8%A6%81%E3%81%A7%E3%81%99").unwrap_err();
        assert_eq!(refused.user_message_ja(), "会員登録が必要です");
    }

    #[test]
    fn identity_is_what_the_partner_vouched_for_never_the_links_word() {
        let named = |id: &str| AuthReply {
            user_id: Some(id.into()),
            ..AuthReply::default()
        };
        let silent = AuthReply::default();
        // uniqueId: the reply's userId, else the uniqueId itself.
        assert_eq!(
            named("u-7").vouched_identity(Some("one-time"), None),
            Ok("u-7".into())
        );
        assert_eq!(silent.vouched_identity(Some("u-8"), None), Ok("u-8".into()));
        // C1: own uniqueId plus another user's `user` is refused.
        assert_eq!(
            named("attacker").vouched_identity(Some("one-time"), Some("victim")),
            Err(IdentityMismatch::Differs)
        );
        assert_eq!(
            silent.vouched_identity(Some("attacker"), Some("victim")),
            Err(IdentityMismatch::Differs)
        );
        // The same user given twice is fine.
        assert_eq!(
            named("hanako").vouched_identity(Some("one-time"), Some("hanako")),
            Ok("hanako".into())
        );
        // user/pass: that user, and a reply naming someone else is refused.
        assert_eq!(
            silent.vouched_identity(None, Some("taro")),
            Ok("taro".into())
        );
        assert_eq!(
            named("taro").vouched_identity(None, Some("taro")),
            Ok("taro".into())
        );
        assert_eq!(
            named("jiro").vouched_identity(None, Some("taro")),
            Err(IdentityMismatch::Differs)
        );
        assert_eq!(
            silent.vouched_identity(None, None),
            Err(IdentityMismatch::NobodyNamed)
        );
    }

    #[test]
    fn not_installed_report_carries_the_user_agent_and_hides_the_password() {
        let r = NotInstalledReport {
            site_key: "test.key".into(),
            user_id: Some("u1".into()),
            user_pw: Some(Secret::new("pw")),
            unique_id: "abcdefg-123456".into(),
            ua: "Mozilla/5.0 (iPhone)".into(),
            os_type: OsType::from_user_agent("Mozilla/5.0 (iPhone)"),
        };
        let q = r.to_query();
        assert!(
            q.contains("ua=Mozilla%2F5.0+%28iPhone%29") && q.contains("osType=2"),
            "{q}"
        );
        assert!(q.contains("userPw=pw"));
        assert!(!format!("{r:?}").contains("pw\""));
    }
}
