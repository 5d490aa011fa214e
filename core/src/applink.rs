//! App links (spec chapter 2): the URLs a partner page embeds to drive the app.
//!
//! ```text
//! https://sbx.stream-works.biz/sbxapp/makecall/?site=newsite1&calleeId=42&video=1
//! nexmile://makecall/?site=newsite1&calleeId=42&video=1        (desktop form)
//! ```
//!
//! [`AppLinkParser::parse`] accepts the spec's base (decision 13), any https
//! base a deployment configures, and the custom scheme; a trailing slash before
//! `?` or none; percent-encoded values; unknown extra parameters (ignored). It
//! rejects everything else with an [`AppLinkError`] that names the parameter.

use std::collections::HashMap;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode};
use serde::ser::{Serialize, SerializeMap, Serializer};
use url::Url;

use crate::codec::URI_COMPONENT;
use crate::secret::{REDACTED, Secret};

/// The base URL fixed by the spec (§2.2), recognised by default.
pub const SPEC_BASE: &str = "https://sbx.stream-works.biz/sbxapp";
/// The custom scheme for desktops, where an https link cannot open an app.
pub const CUSTOM_SCHEME: &str = "nexmile";
/// Longest value accepted for any parameter; app links are typed by people and
/// pasted into pages, so anything longer is a mistake or an attack.
pub const MAX_VALUE_LEN: usize = 4096;

/// The five app-link functions of §2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppLinkFunction {
    /// §2.3.2 ユーザ認証: register the partner's user in the app.
    ActivateExUser,
    /// §2.3.3 ビデオテスト: loopback test through the server, or effect download.
    VideoSetting,
    /// §2.3.4 通話架電: start a 1:1 call.
    MakeCall,
    /// §2.3.5 ライブ配信: start a live broadcast.
    BroadcastLive,
    /// §2.3.6 ライブ視聴: watch a live.
    ViewLive,
}

impl AppLinkFunction {
    pub const ALL: [AppLinkFunction; 5] = [
        Self::ActivateExUser,
        Self::VideoSetting,
        Self::MakeCall,
        Self::BroadcastLive,
        Self::ViewLive,
    ];

    /// The path segment used in the link, as the spec spells it.
    pub fn spec_name(self) -> &'static str {
        match self {
            Self::ActivateExUser => "activateExUser",
            Self::VideoSetting => "videoSetting",
            Self::MakeCall => "makecall",
            Self::BroadcastLive => "broadcastLive",
            Self::ViewLive => "viewLive",
        }
    }

    /// Case-insensitive: `makeCall` from a hand-written page still works.
    pub fn from_spec_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.spec_name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AppLinkFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec_name())
    }
}

/// A site code (§1.2.3): the parent domain of every user, setting and file.
/// It names a profile folder on the client, so it is restricted to characters
/// that are safe in a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SiteCode(String);

impl SiteCode {
    /// The built-in site of a fresh install, used when no partner is involved.
    pub const DEFAULT: &'static str = "nexmile";
    const MAX_LEN: usize = 64;

    pub fn new(code: &str) -> Result<Self, InvalidSiteCode> {
        let valid_chars = code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if code.is_empty() || code.len() > Self::MAX_LEN || !valid_chars || code.starts_with('.') {
            return Err(InvalidSiteCode);
        }
        Ok(Self(code.to_owned()))
    }

    pub fn nexmile() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site code with characters outside `A-Z a-z 0-9 . _ -`, empty, too long,
/// or starting with a dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a site code is 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'")]
pub struct InvalidSiteCode;

/// §2.3.2: the partner's user ID and password, only for activateExUser links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub pass: Secret,
}

/// §2.3.3 `download`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoSettingMode {
    /// 0: run the video loopback test.
    LoopbackTest,
    /// 1: download every effect file of the site.
    DownloadEffects,
}

/// What the link asks the app to do, with that function's own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppLinkAction {
    /// `credentials` is absent when the link identifies the user by `uniqueId`.
    ActivateExUser {
        credentials: Option<Credentials>,
        /// A `user` beside the `uniqueId` without `pass`: never taken on the
        /// link's word, but sent so that the server refuses it when it is not
        /// the user the partner vouched for (decision 14).
        named_user: Option<String>,
    },
    VideoSetting {
        mode: VideoSettingMode,
    },
    MakeCall {
        callee_id: String,
        video: bool,
        caller_sub_id: Option<String>,
        callee_sub_id: Option<String>,
    },
    BroadcastLive {
        link_id: String,
    },
    ViewLive {
        live_token: String,
        link_id: String,
    },
}

impl AppLinkAction {
    pub fn function(&self) -> AppLinkFunction {
        match self {
            Self::ActivateExUser { .. } => AppLinkFunction::ActivateExUser,
            Self::VideoSetting { .. } => AppLinkFunction::VideoSetting,
            Self::MakeCall { .. } => AppLinkFunction::MakeCall,
            Self::BroadcastLive { .. } => AppLinkFunction::BroadcastLive,
            Self::ViewLive { .. } => AppLinkFunction::ViewLive,
        }
    }
}

/// A parsed, validated app link. `Debug` and `Serialize` never show `pass`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLink {
    pub site: SiteCode,
    /// §2.3.1 ユーザーワンタイム ID.
    pub unique_id: Option<String>,
    /// §2.3.1: continue in the web version when the app is not installed.
    pub allow_web: bool,
    /// §2.3.1: where "サイトへ戻る" leads after the service ends.
    pub return_url: Option<Url>,
    pub action: AppLinkAction,
}

/// Why a link was refused. [`AppLinkError::code`] and
/// [`AppLinkError::parameter`] give the machine-readable form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppLinkError {
    #[error("the link is not a URL")]
    MalformedUrl,
    #[error("app links start with https:// or {CUSTOM_SCHEME}://, not {scheme}://")]
    UnsupportedScheme { scheme: String },
    #[error("{address} is not an app-link address this app accepts")]
    HostNotAllowed { address: String },
    #[error("the link names no app function")]
    MissingFunction,
    #[error(
        "\"{name}\" is not an app function (activateExUser, videoSetting, makecall, broadcastLive or viewLive)"
    )]
    UnknownFunction { name: String },
    #[error("the required parameter {parameter} is missing or empty")]
    MissingParameter { parameter: &'static str },
    #[error("activateExUser needs uniqueId, or both user and pass")]
    MissingCredentials,
    #[error("the parameter {parameter} must be {expected}")]
    InvalidValue {
        parameter: &'static str,
        expected: &'static str,
    },
    #[error("returnUrl must be an http or https URL")]
    InvalidReturnUrl,
    #[error("the parameter {parameter} is not UTF-8 text after percent-decoding")]
    InvalidEncoding { parameter: &'static str },
    #[error("the parameter {parameter} is given twice with different values")]
    DuplicateParameter { parameter: &'static str },
}

impl AppLinkError {
    /// A stable snake_case code for programs and UI translations.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedUrl => "malformed_url",
            Self::UnsupportedScheme { .. } => "unsupported_scheme",
            Self::HostNotAllowed { .. } => "host_not_allowed",
            Self::MissingFunction => "missing_function",
            Self::UnknownFunction { .. } => "unknown_function",
            Self::MissingParameter { .. } => "missing_parameter",
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidValue { .. } => "invalid_value",
            Self::InvalidReturnUrl => "invalid_return_url",
            Self::InvalidEncoding { .. } => "invalid_encoding",
            Self::DuplicateParameter { .. } => "duplicate_parameter",
        }
    }

    /// The spec name of the parameter at fault, where one is.
    pub fn parameter(&self) -> Option<&'static str> {
        match self {
            Self::MissingParameter { parameter }
            | Self::InvalidValue { parameter, .. }
            | Self::InvalidEncoding { parameter }
            | Self::DuplicateParameter { parameter } => Some(parameter),
            Self::MissingCredentials => Some(param::UNIQUE_ID),
            Self::InvalidReturnUrl => Some(param::RETURN_URL),
            _ => None,
        }
    }
}

/// A configured base that a built link starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppLinkBase {
    Https(Url),
    CustomScheme,
}

/// A configured https base is not https, or not an absolute URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an app-link base must be an https URL with a host, such as {SPEC_BASE}: {0}")]
pub struct InvalidBase(String);

fn parse_https_base(base: &str) -> Result<Url, InvalidBase> {
    let url = Url::parse(base).map_err(|e| InvalidBase(e.to_string()))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(InvalidBase(format!("{base} is not https")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidBase(format!("{base} has a query or fragment")));
    }
    Ok(url)
}

impl AppLinkBase {
    pub fn https(base: &str) -> Result<Self, InvalidBase> {
        parse_https_base(base).map(Self::Https)
    }

    pub fn spec() -> Self {
        Self::https(SPEC_BASE).expect("the spec base is a valid https URL")
    }

    /// The path segments of an https base, without empty ones.
    fn segments(url: &Url) -> Vec<&str> {
        url.path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// Recognises app links for a set of bases. Always accepts the custom scheme.
#[derive(Debug, Clone)]
pub struct AppLinkParser {
    bases: Vec<Url>,
}

impl Default for AppLinkParser {
    /// The spec's base only (decision 13).
    fn default() -> Self {
        Self {
            bases: vec![parse_https_base(SPEC_BASE).expect("the spec base is a valid https URL")],
        }
    }
}

mod param {
    pub const SITE: &str = "site";
    pub const UNIQUE_ID: &str = "uniqueId";
    pub const ALLOW_WEB: &str = "allowWeb";
    pub const RETURN_URL: &str = "returnUrl";
    pub const USER: &str = "user";
    pub const PASS: &str = "pass";
    pub const DOWNLOAD: &str = "download";
    pub const CALLEE_ID: &str = "calleeId";
    pub const VIDEO: &str = "video";
    pub const CALLER_SUB_ID: &str = "callerSubId";
    pub const CALLEE_SUB_ID: &str = "calleeSubId";
    pub const LINK_ID: &str = "linkId";
    pub const LIVE_TOKEN: &str = "liveToken";
    pub const ALL: [&str; 13] = [
        SITE,
        UNIQUE_ID,
        ALLOW_WEB,
        RETURN_URL,
        USER,
        PASS,
        DOWNLOAD,
        CALLEE_ID,
        VIDEO,
        CALLER_SUB_ID,
        CALLEE_SUB_ID,
        LINK_ID,
        LIVE_TOKEN,
    ];
}

impl AppLinkParser {
    /// Adds a deployment's own https base (decision 13).
    pub fn with_base(mut self, base: &str) -> Result<Self, InvalidBase> {
        self.bases.push(parse_https_base(base)?);
        Ok(self)
    }

    /// Whether `link` is addressed to the app (the custom scheme, or https
    /// under one of the bases), valid or not: a page that is not is for the browser.
    pub fn claims(&self, link: &str) -> bool {
        !matches!(
            self.parse(link),
            Err(AppLinkError::MalformedUrl
                | AppLinkError::UnsupportedScheme { .. }
                | AppLinkError::HostNotAllowed { .. })
        )
    }

    pub fn parse(&self, link: &str) -> Result<AppLink, AppLinkError> {
        // Pages often paste the link with stray spaces (the spec's own example
        // has one after href=").
        let url = Url::parse(link.trim()).map_err(|_| AppLinkError::MalformedUrl)?;
        let function_segment = match url.scheme() {
            "https" => self.function_after_base(&url)?,
            CUSTOM_SCHEME => Self::function_of_custom_scheme(&url)?,
            other => {
                return Err(AppLinkError::UnsupportedScheme {
                    scheme: truncate(other, 32),
                });
            }
        };
        let function = AppLinkFunction::from_spec_name(&function_segment).ok_or_else(|| {
            AppLinkError::UnknownFunction {
                name: truncate(&function_segment, 64),
            }
        })?;
        let mut query = Query::parse(url.query().unwrap_or(""))?;
        Self::link_from_query(function, &mut query)
    }

    /// `https://<base>/<function>` with an optional trailing slash.
    fn function_after_base(&self, url: &Url) -> Result<String, AppLinkError> {
        let segments = AppLinkBase::segments(url);
        let base = self.bases.iter().find(|base| {
            let base_segments = AppLinkBase::segments(base);
            base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
                && segments.starts_with(&base_segments)
        });
        let Some(base) = base else {
            return Err(AppLinkError::HostNotAllowed {
                address: truncate(
                    &format!("{}{}", url.host_str().unwrap_or(""), url.path()),
                    128,
                ),
            });
        };
        match &segments[AppLinkBase::segments(base).len()..] {
            [] => Err(AppLinkError::MissingFunction),
            [function] => decode_path_segment(function),
            more => Err(AppLinkError::UnknownFunction {
                name: truncate(&more.join("/"), 64),
            }),
        }
    }

    /// `nexmile://<function>/?…`, also `nexmile:<function>?…`.
    fn function_of_custom_scheme(url: &Url) -> Result<String, AppLinkError> {
        let path = url.path().trim_matches('/');
        let function = match url.host_str() {
            Some(host) if path.is_empty() => host,
            Some(host) => {
                return Err(AppLinkError::UnknownFunction {
                    name: truncate(&format!("{host}/{path}"), 64),
                });
            }
            None => path,
        };
        if function.is_empty() {
            return Err(AppLinkError::MissingFunction);
        }
        decode_path_segment(function)
    }

    fn link_from_query(
        function: AppLinkFunction,
        query: &mut Query,
    ) -> Result<AppLink, AppLinkError> {
        let site = query.required(param::SITE)?;
        let site = SiteCode::new(&site).map_err(|_| AppLinkError::InvalidValue {
            parameter: param::SITE,
            expected: "a site code of letters, digits, '.', '_' or '-'",
        })?;
        let unique_id = query.optional(param::UNIQUE_ID);
        let allow_web = query.zero_or_one(param::ALLOW_WEB)?.unwrap_or(false);
        let return_url = query
            .optional(param::RETURN_URL)
            .map(|raw| parse_return_url(&raw))
            .transpose()?;
        let action = match function {
            AppLinkFunction::ActivateExUser => {
                let user = query.optional(param::USER);
                let pass = query.optional(param::PASS);
                let named_user = match (&user, &pass) {
                    (Some(user), None) if unique_id.is_some() => Some(user.clone()),
                    _ => None,
                };
                let credentials = match (user, pass) {
                    (Some(user), Some(pass)) => Some(Credentials {
                        user,
                        pass: Secret::new(pass),
                    }),
                    (None, None) if unique_id.is_some() => None,
                    (None, None) => return Err(AppLinkError::MissingCredentials),
                    (Some(_), None) if unique_id.is_none() => {
                        return Err(AppLinkError::MissingParameter {
                            parameter: param::PASS,
                        });
                    }
                    (None, Some(_)) if unique_id.is_none() => {
                        return Err(AppLinkError::MissingParameter {
                            parameter: param::USER,
                        });
                    }
                    // A half pair beside a uniqueId: the uniqueId identifies the user.
                    _ => None,
                };
                AppLinkAction::ActivateExUser {
                    credentials,
                    named_user,
                }
            }
            AppLinkFunction::VideoSetting => AppLinkAction::VideoSetting {
                mode: if query.required_zero_or_one(param::DOWNLOAD)? {
                    VideoSettingMode::DownloadEffects
                } else {
                    VideoSettingMode::LoopbackTest
                },
            },
            AppLinkFunction::MakeCall => AppLinkAction::MakeCall {
                callee_id: query.required(param::CALLEE_ID)?,
                video: query.required_zero_or_one(param::VIDEO)?,
                caller_sub_id: query.optional(param::CALLER_SUB_ID),
                callee_sub_id: query.optional(param::CALLEE_SUB_ID),
            },
            AppLinkFunction::BroadcastLive => AppLinkAction::BroadcastLive {
                link_id: query.required(param::LINK_ID)?,
            },
            AppLinkFunction::ViewLive => AppLinkAction::ViewLive {
                live_token: query.required(param::LIVE_TOKEN)?,
                link_id: query.required(param::LINK_ID)?,
            },
        };
        Ok(AppLink {
            site,
            unique_id,
            allow_web,
            return_url,
            action,
        })
    }
}

fn parse_return_url(raw: &str) -> Result<Url, AppLinkError> {
    let url = Url::parse(raw).map_err(|_| AppLinkError::InvalidReturnUrl)?;
    if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() {
        Ok(url)
    } else {
        Err(AppLinkError::InvalidReturnUrl)
    }
}

fn decode_path_segment(segment: &str) -> Result<String, AppLinkError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| AppLinkError::MalformedUrl)
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The known parameters of a link's query, percent-decoded.
///
/// RFC 3986 query semantics: `+` stays a plus. App-link values are one-time
/// IDs and tokens that may be base64 with `+` in them; only `%XX` is decoded.
struct Query(HashMap<&'static str, String>);

impl Query {
    fn parse(raw: &str) -> Result<Self, AppLinkError> {
        let mut known = HashMap::new();
        for piece in raw.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
            let key = percent_decode_str(raw_key).decode_utf8_lossy();
            // Unknown extra parameters are ignored (§2.3 allows partners to add their own).
            let Some(name) = param::ALL.into_iter().find(|n| *n == key) else {
                continue;
            };
            let value = percent_decode_str(raw_value)
                .decode_utf8()
                .map_err(|_| AppLinkError::InvalidEncoding { parameter: name })?
                .into_owned();
            if value.chars().count() > MAX_VALUE_LEN {
                return Err(AppLinkError::InvalidValue {
                    parameter: name,
                    expected: "at most 4096 characters",
                });
            }
            match known.get(name) {
                Some(previous) if previous != &value => {
                    return Err(AppLinkError::DuplicateParameter { parameter: name });
                }
                _ => {
                    known.insert(name, value);
                }
            }
        }
        Ok(Self(known))
    }

    /// An empty value counts as absent: `uniqueId=&…` is what a page's
    /// template prints when it has no value.
    fn optional(&mut self, name: &'static str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &'static str) -> Result<String, AppLinkError> {
        self.optional(name)
            .ok_or(AppLinkError::MissingParameter { parameter: name })
    }

    fn zero_or_one(&mut self, name: &'static str) -> Result<Option<bool>, AppLinkError> {
        match self.optional(name).as_deref() {
            None => Ok(None),
            Some("0") => Ok(Some(false)),
            Some("1") => Ok(Some(true)),
            Some(_) => Err(AppLinkError::InvalidValue {
                parameter: name,
                expected: "0 or 1",
            }),
        }
    }

    fn required_zero_or_one(&mut self, name: &'static str) -> Result<bool, AppLinkError> {
        self.zero_or_one(name)?
            .ok_or(AppLinkError::MissingParameter { parameter: name })
    }
}

impl AppLink {
    /// The link as a partner page would embed it, every value percent-encoded
    /// as `encodeURIComponent` does. Carries `pass` in clear, as the link must.
    pub fn to_url(&self, base: &AppLinkBase) -> String {
        let mut pairs: Vec<(&str, String)> = vec![(param::SITE, self.site.to_string())];
        if let Some(unique_id) = &self.unique_id {
            pairs.push((param::UNIQUE_ID, unique_id.clone()));
        }
        if self.allow_web {
            pairs.push((param::ALLOW_WEB, "1".into()));
        }
        if let Some(return_url) = &self.return_url {
            pairs.push((param::RETURN_URL, return_url.to_string()));
        }
        match &self.action {
            AppLinkAction::ActivateExUser {
                credentials,
                named_user,
            } => {
                if let Some(c) = credentials {
                    pairs.push((param::USER, c.user.clone()));
                    pairs.push((param::PASS, c.pass.expose().to_owned()));
                } else if let Some(user) = named_user {
                    pairs.push((param::USER, user.clone()));
                }
            }
            AppLinkAction::VideoSetting { mode } => pairs.push((
                param::DOWNLOAD,
                zero_one(*mode == VideoSettingMode::DownloadEffects).to_string(),
            )),
            AppLinkAction::MakeCall {
                callee_id,
                video,
                caller_sub_id,
                callee_sub_id,
            } => {
                pairs.push((param::CALLEE_ID, callee_id.clone()));
                pairs.push((param::VIDEO, zero_one(*video).to_string()));
                if let Some(v) = caller_sub_id {
                    pairs.push((param::CALLER_SUB_ID, v.clone()));
                }
                if let Some(v) = callee_sub_id {
                    pairs.push((param::CALLEE_SUB_ID, v.clone()));
                }
            }
            AppLinkAction::BroadcastLive { link_id } => {
                pairs.push((param::LINK_ID, link_id.clone()));
            }
            AppLinkAction::ViewLive {
                live_token,
                link_id,
            } => {
                pairs.push((param::LIVE_TOKEN, live_token.clone()));
                pairs.push((param::LINK_ID, link_id.clone()));
            }
        }
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, URI_COMPONENT)))
            .collect::<Vec<_>>()
            .join("&");
        let function = self.action.function().spec_name();
        match base {
            AppLinkBase::Https(url) => {
                format!("{}/{function}/?{query}", url.as_str().trim_end_matches('/'))
            }
            AppLinkBase::CustomScheme => format!("{CUSTOM_SCHEME}://{function}/?{query}"),
        }
    }
}

fn zero_one(flag: bool) -> u8 {
    u8::from(flag)
}

/// The redacted JSON view of a link, as `nexmile-cli parse-link` prints it:
/// spec names, absent optionals as `null`, `pass` as `"***"`.
impl Serialize for AppLink {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("function", self.action.function().spec_name())?;
        map.serialize_entry(param::SITE, &self.site)?;
        map.serialize_entry(param::UNIQUE_ID, &self.unique_id)?;
        map.serialize_entry(param::ALLOW_WEB, &self.allow_web)?;
        map.serialize_entry(
            param::RETURN_URL,
            &self.return_url.as_ref().map(Url::as_str),
        )?;
        map.serialize_entry("params", &ActionParams(&self.action))?;
        map.end()
    }
}

struct ActionParams<'a>(&'a AppLinkAction);

impl Serialize for ActionParams<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.0 {
            AppLinkAction::ActivateExUser {
                credentials,
                named_user,
            } => {
                let user = credentials
                    .as_ref()
                    .map(|c| &c.user)
                    .or(named_user.as_ref());
                map.serialize_entry(param::USER, &user)?;
                map.serialize_entry(param::PASS, &credentials.as_ref().map(|_| REDACTED))?;
            }
            AppLinkAction::VideoSetting { mode } => {
                map.serialize_entry(
                    param::DOWNLOAD,
                    &zero_one(*mode == VideoSettingMode::DownloadEffects),
                )?;
            }
            AppLinkAction::MakeCall {
                callee_id,
                video,
                caller_sub_id,
                callee_sub_id,
            } => {
                map.serialize_entry(param::CALLEE_ID, callee_id)?;
                map.serialize_entry(param::VIDEO, &zero_one(*video))?;
                map.serialize_entry(param::CALLER_SUB_ID, caller_sub_id)?;
                map.serialize_entry(param::CALLEE_SUB_ID, callee_sub_id)?;
            }
            AppLinkAction::BroadcastLive { link_id } => {
                map.serialize_entry(param::LINK_ID, link_id)?;
            }
            AppLinkAction::ViewLive {
                live_token,
                link_id,
            } => {
                map.serialize_entry(param::LIVE_TOKEN, live_token)?;
                map.serialize_entry(param::LINK_ID, link_id)?;
            }
        }
        map.end()
    }
}

/// The machine-readable error form: `{"code":…,"parameter":…,"message":…}`.
impl Serialize for AppLinkError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("code", self.code())?;
        map.serialize_entry("parameter", &self.parameter())?;
        map.serialize_entry("message", &self.to_string())?;
        map.end()
    }
}
