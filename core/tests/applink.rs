//! App links (spec chapter 2): every accepted form and every rejection.

use nexmile_core::applink::{
    AppLink, AppLinkAction, AppLinkBase, AppLinkError, AppLinkFunction, AppLinkParser, Credentials,
    SiteCode, VideoSettingMode,
};
use nexmile_core::secret::Secret;
use proptest::prelude::*;

const BASE: &str = "https://sbx.stream-works.biz/sbxapp";

fn parse(link: &str) -> Result<AppLink, AppLinkError> {
    AppLinkParser::default().parse(link)
}

fn rejected(link: &str) -> AppLinkError {
    parse(link).expect_err(link)
}

#[test]
fn the_spec_example_registers_a_user() {
    // §2.2's example, leading space and all.
    let link = parse(" https://sbx.stream-works.biz/sbxapp/activateExUser/?site=newsite.ggsrgdetw&user=XXXXXXXX&pass=YYYY ").unwrap();
    assert_eq!(link.site.as_str(), "newsite.ggsrgdetw");
    assert_eq!(
        link.action,
        AppLinkAction::ActivateExUser {
            credentials: Some(Credentials {
                user: "XXXXXXXX".into(),
                pass: Secret::new("YYYY")
            }),
            named_user: None,
        }
    );
    assert!(!link.allow_web);
    assert_eq!(link.return_url, None);
}

#[test]
fn the_javascript_sample_with_every_common_parameter() {
    // §2.3.2's JavaScript sample: returnUrl through encodeURIComponent.
    let link = parse(
        "https://sbx.stream-works.biz/sbxapp/activateExUser/?site=newsite1&user=1234&pass=4567&uniqueId=abcdefg-123456&allowWeb=0&returnUrl=https%3A%2F%2Ftest.com%3Fid%3D1234%26pw%3D4567",
    )
    .unwrap();
    assert_eq!(link.unique_id.as_deref(), Some("abcdefg-123456"));
    assert_eq!(
        link.return_url.unwrap().as_str(),
        "https://test.com/?id=1234&pw=4567"
    );
}

#[test]
fn each_function_with_its_own_parameters() {
    let vs = parse(&format!("{BASE}/videoSetting/?site=nexmile&download=1")).unwrap();
    assert_eq!(
        vs.action,
        AppLinkAction::VideoSetting {
            mode: VideoSettingMode::DownloadEffects
        }
    );
    let call = parse(&format!(
        "{BASE}/makecall/?site=s1&calleeId=0901234&video=0&callerSubId=a&calleeSubId=b&allowWeb=1"
    ))
    .unwrap();
    assert!(call.allow_web);
    assert_eq!(
        call.action,
        AppLinkAction::MakeCall {
            callee_id: "0901234".into(),
            video: false,
            caller_sub_id: Some("a".into()),
            callee_sub_id: Some("b".into())
        }
    );
    let live = parse(&format!("{BASE}/broadcastLive/?site=s1&linkId=L1")).unwrap();
    assert_eq!(
        live.action,
        AppLinkAction::BroadcastLive {
            link_id: "L1".into()
        }
    );
    let view = parse(&format!("{BASE}/viewLive/?site=s1&linkId=L1&liveToken=T9")).unwrap();
    assert_eq!(
        view.action,
        AppLinkAction::ViewLive {
            live_token: "T9".into(),
            link_id: "L1".into()
        }
    );
    let by_id = parse(&format!("{BASE}/activateExUser/?site=s1&uniqueId=u-1")).unwrap();
    assert_eq!(
        by_id.action,
        AppLinkAction::ActivateExUser {
            credentials: None,
            named_user: None,
        }
    );
}

#[test]
fn trailing_slash_before_the_query_is_optional() {
    let with = parse(&format!("{BASE}/makecall/?site=s&calleeId=1&video=1")).unwrap();
    let without = parse(&format!("{BASE}/makecall?site=s&calleeId=1&video=1")).unwrap();
    assert_eq!(with, without);
}

#[test]
fn every_value_is_percent_decoded_and_plus_stays_a_plus() {
    let link = parse(&format!(
        "{BASE}/makecall/?site=s&calleeId=%E5%8F%97%E4%BB%98%20%231&video=%31&callerSubId=a+b%2Bc&uniqueId=x%3D%26y"
    ))
    .unwrap();
    let AppLinkAction::MakeCall {
        callee_id,
        caller_sub_id,
        video,
        ..
    } = link.action
    else {
        panic!("makecall");
    };
    assert_eq!(callee_id, "受付 #1");
    assert!(video);
    assert_eq!(caller_sub_id.as_deref(), Some("a+b+c"));
    assert_eq!(link.unique_id.as_deref(), Some("x=&y"));
}

#[test]
fn unknown_extra_parameters_are_ignored() {
    let plain = parse(&format!("{BASE}/broadcastLive/?site=s&linkId=L")).unwrap();
    let extra = parse(&format!(
        "{BASE}/broadcastLive/?utm_source=mail&site=s&&linkId=L&calleeId=ignored&x=%FF#frag"
    ))
    .unwrap();
    assert_eq!(plain, extra);
}

#[test]
fn custom_scheme_and_configured_bases() {
    // Decision 13.
    let custom = parse("nexmile://makecall/?site=s&calleeId=1&video=1").unwrap();
    assert_eq!(custom.action.function(), AppLinkFunction::MakeCall);
    assert_eq!(
        parse("nexmile://makecall?site=s&calleeId=1&video=1").unwrap(),
        custom
    );
    assert_eq!(
        parse("nexmile:makecall?site=s&calleeId=1&video=1").unwrap(),
        custom
    );
    assert_eq!(
        parse("NEXMILE://MakeCall/?site=s&calleeId=1&video=1").unwrap(),
        custom
    );

    let own = AppLinkParser::default()
        .with_base("https://app.example.jp/go/")
        .unwrap();
    let on_own = own
        .parse("https://APP.example.jp/go/makecall/?site=s&calleeId=1&video=1")
        .unwrap();
    assert_eq!(on_own, custom);
    assert_eq!(
        own.parse(&format!("{BASE}/makecall/?site=s&calleeId=1&video=1"))
            .unwrap(),
        custom,
        "the spec base stays accepted"
    );
    let root = AppLinkParser::default()
        .with_base("https://links.example.jp")
        .unwrap();
    assert_eq!(
        root.parse("https://links.example.jp/makecall?site=s&calleeId=1&video=1")
            .unwrap(),
        custom
    );
    // A configured base must be https.
    for bad in [
        "http://app.example.jp/go",
        "ftp://x",
        "not a url",
        "https://x/?q=1",
    ] {
        assert!(AppLinkParser::default().with_base(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_host_that_is_not_an_allowed_base_is_refused() {
    for link in [
        "https://evil.example.com/sbxapp/makecall/?site=s&calleeId=1&video=1",
        "https://sbx.stream-works.biz/other/makecall/?site=s&calleeId=1&video=1",
        "https://sbx.stream-works.biz:8443/sbxapp/makecall/?site=s&calleeId=1&video=1",
        "https://sbx.stream-works.biz.evil.com/sbxapp/makecall/?site=s&calleeId=1&video=1",
        "https://sbx.stream-works.biz/sbxappx/makecall/?site=s&calleeId=1&video=1",
    ] {
        let e = rejected(link);
        assert!(
            matches!(e, AppLinkError::HostNotAllowed { .. }),
            "{link}: {e:?}"
        );
        assert_eq!(e.code(), "host_not_allowed");
        assert_eq!(e.parameter(), None);
    }
    let e = rejected("http://sbx.stream-works.biz/sbxapp/makecall/?site=s&calleeId=1&video=1");
    assert_eq!(e.code(), "unsupported_scheme");
    assert_eq!(rejected("javascript:alert(1)").code(), "unsupported_scheme");
    assert_eq!(rejected("not a link").code(), "malformed_url");
    assert_eq!(rejected("").code(), "malformed_url");
}

#[test]
fn the_app_claims_its_own_links_even_broken_ones_and_leaves_other_pages_to_the_browser() {
    let parser = AppLinkParser::default();
    for ours in [
        "nexmile://makecall/?site=s&calleeId=1&video=1",
        "https://sbx.stream-works.biz/sbxapp/makecall/?site=s&calleeId=1&video=1",
        // Broken, but ours: the app names what is wrong.
        "https://sbx.stream-works.biz/sbxapp/makecall/?calleeId=1",
        "nexmile://nothing/",
    ] {
        assert!(parser.claims(ours), "{ours}");
    }
    for theirs in [
        "https://partner.example.jp/campaign",
        "http://sbx.stream-works.biz/sbxapp/makecall/?site=s&calleeId=1&video=1",
        "mailto:support@example.jp",
        "not a link",
    ] {
        assert!(!parser.claims(theirs), "{theirs}");
    }
}

#[test]
fn an_unknown_or_missing_function_is_refused() {
    let e = rejected(&format!("{BASE}/deleteAccount/?site=s"));
    assert_eq!(
        e,
        AppLinkError::UnknownFunction {
            name: "deleteAccount".into()
        }
    );
    assert_eq!(e.code(), "unknown_function");
    assert_eq!(
        rejected(&format!("{BASE}/makecall/extra/?site=s")).code(),
        "unknown_function"
    );
    assert_eq!(
        rejected("nexmile://nothing/?site=s").code(),
        "unknown_function"
    );
    assert_eq!(
        rejected(&format!("{BASE}/?site=s")).code(),
        "missing_function"
    );
    assert_eq!(
        rejected(&format!("{BASE}?site=s")).code(),
        "missing_function"
    );
    assert_eq!(rejected("nexmile:///?site=s").code(), "missing_function");
}

#[test]
fn each_missing_required_parameter_is_named() {
    let cases = [
        ("videoSetting/?download=0", "site"),
        ("videoSetting/?site=s", "download"),
        ("makecall/?site=s&video=1", "calleeId"),
        ("makecall/?site=s&calleeId=", "calleeId"),
        ("makecall/?site=s&calleeId=1", "video"),
        ("broadcastLive/?site=s", "linkId"),
        ("viewLive/?site=s&linkId=L", "liveToken"),
        ("viewLive/?site=s&liveToken=T", "linkId"),
        ("activateExUser/?site=s&user=u", "pass"),
        ("activateExUser/?site=s&pass=p", "user"),
    ];
    for (tail, parameter) in cases {
        let e = rejected(&format!("{BASE}/{tail}"));
        assert_eq!(e, AppLinkError::MissingParameter { parameter }, "{tail}");
        assert_eq!(e.code(), "missing_parameter");
        assert_eq!(e.parameter(), Some(parameter));
        assert!(e.to_string().contains(parameter));
    }
}

#[test]
fn activate_needs_unique_id_or_user_and_pass() {
    let e = rejected(&format!("{BASE}/activateExUser/?site=s"));
    assert_eq!(e, AppLinkError::MissingCredentials);
    assert_eq!(e.code(), "missing_credentials");
    assert_eq!(e.parameter(), Some("uniqueId"));
    assert!(parse(&format!("{BASE}/activateExUser/?site=s&uniqueId=u")).is_ok());
    assert!(parse(&format!("{BASE}/activateExUser/?site=s&user=u&pass=p")).is_ok());
    // Half a pair beside a uniqueId: the uniqueId identifies the user; the
    // named user goes along only for the server to check (decision 14).
    let half = parse(&format!("{BASE}/activateExUser/?site=s&uniqueId=u&user=x")).unwrap();
    assert_eq!(
        half.action,
        AppLinkAction::ActivateExUser {
            credentials: None,
            named_user: Some("x".into()),
        }
    );
    let pass_only = parse(&format!("{BASE}/activateExUser/?site=s&uniqueId=u&pass=p")).unwrap();
    assert_eq!(
        pass_only.action,
        AppLinkAction::ActivateExUser {
            credentials: None,
            named_user: None,
        }
    );
}

#[test]
fn values_out_of_their_documented_range_are_refused() {
    for (tail, parameter) in [
        ("makecall/?site=s&calleeId=1&video=2", "video"),
        ("makecall/?site=s&calleeId=1&video=true", "video"),
        ("makecall/?site=s&calleeId=1&video=-1", "video"),
        ("videoSetting/?site=s&download=01", "download"),
        ("videoSetting/?site=s&download=yes", "download"),
        ("videoSetting/?site=s&download=0&allowWeb=2", "allowWeb"),
        ("videoSetting/?site=../etc&download=0", "site"),
        ("videoSetting/?site=a%2Fb&download=0", "site"),
        ("videoSetting/?site=.hidden&download=0", "site"),
    ] {
        let e = rejected(&format!("{BASE}/{tail}"));
        assert_eq!(e.code(), "invalid_value", "{tail}");
        assert_eq!(e.parameter(), Some(parameter), "{tail}");
    }
    let long = "x".repeat(4097);
    let e = rejected(&format!("{BASE}/broadcastLive/?site=s&linkId={long}"));
    assert_eq!(e.parameter(), Some("linkId"));
}

#[test]
fn a_return_url_that_is_not_http_is_refused() {
    for value in [
        "javascript%3Aalert(1)",
        "ftp%3A%2F%2Fexample.com%2F",
        "file%3A%2F%2F%2Fetc%2Fpasswd",
        "%2Frelative%2Fpath",
        "https%3A%2F%2F",
        "nexmile%3A%2F%2FmakeCall",
    ] {
        let e = rejected(&format!(
            "{BASE}/broadcastLive/?site=s&linkId=L&returnUrl={value}"
        ));
        assert_eq!(e, AppLinkError::InvalidReturnUrl, "{value}");
        assert_eq!(e.code(), "invalid_return_url");
        assert_eq!(e.parameter(), Some("returnUrl"));
    }
    let ok = parse(&format!(
        "{BASE}/broadcastLive/?site=s&linkId=L&returnUrl=http%3A%2F%2Fexample.com%2Fdone"
    ))
    .unwrap();
    assert_eq!(ok.return_url.unwrap().as_str(), "http://example.com/done");
}

#[test]
fn bad_encodings_and_conflicting_duplicates_are_refused() {
    let e = rejected(&format!("{BASE}/broadcastLive/?site=s&linkId=%FF%FE"));
    assert_eq!(
        e,
        AppLinkError::InvalidEncoding {
            parameter: "linkId"
        }
    );
    assert_eq!(e.code(), "invalid_encoding");
    let e = rejected(&format!("{BASE}/broadcastLive/?site=s&linkId=L&site=other"));
    assert_eq!(e, AppLinkError::DuplicateParameter { parameter: "site" });
    assert_eq!(e.code(), "duplicate_parameter");
    // The same value twice is harmless.
    assert!(parse(&format!("{BASE}/broadcastLive/?site=s&linkId=L&site=s")).is_ok());
}

#[test]
fn the_password_never_appears_in_debug_display_or_json() {
    let link = parse(&format!(
        "{BASE}/activateExUser/?site=s&user=alice&pass=S3cr3t-pw"
    ))
    .unwrap();
    let debug = format!("{link:?}");
    let pretty = format!("{link:#?}");
    let json = serde_json::to_string(&link).unwrap();
    for shown in [&debug, &pretty, &json] {
        assert!(!shown.contains("S3cr3t-pw"), "{shown}");
    }
    assert!(json.contains(r#""pass":"***""#), "{json}");
    assert!(json.contains(r#""user":"alice""#));
    // Errors about a link with a password do not echo it either.
    let e = rejected(&format!(
        "{BASE}/activateExUser/?site=s&user=alice&pass=S3cr3t-pw&allowWeb=9"
    ));
    assert!(!format!("{e:?} {e}").contains("S3cr3t-pw"));
    let e = rejected(&format!(
        "{BASE}/activateExUser/?site=s&user=alice&pass=%FF"
    ));
    assert!(!format!("{e:?} {e}").contains("FF"));
}

#[test]
fn json_view_has_the_documented_shape() {
    let link = parse(&format!(
        "{BASE}/viewLive/?site=s&linkId=L&liveToken=T&uniqueId=u&allowWeb=1"
    ))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&link).unwrap(),
        serde_json::json!({"function":"viewLive","site":"s","uniqueId":"u","allowWeb":true,"returnUrl":null,
                           "params":{"liveToken":"T","linkId":"L"}})
    );
    let activate = parse(&format!("{BASE}/activateExUser/?site=s&uniqueId=u")).unwrap();
    assert_eq!(
        serde_json::to_value(&activate).unwrap()["params"],
        serde_json::json!({"user": null, "pass": null})
    );
    let vs = parse(&format!("{BASE}/videoSetting/?site=s&download=0")).unwrap();
    assert_eq!(
        serde_json::to_value(&vs).unwrap()["params"],
        serde_json::json!({"download": 0})
    );
}

fn text() -> impl Strategy<Value = String> {
    // IDs with the characters that need encoding: Japanese, spaces, & = + % / ? #.
    proptest::string::string_regex("[a-zA-Z0-9 &=+%/?#._~\\-日本語テスト]{1,24}").unwrap()
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn action() -> impl Strategy<Value = AppLinkAction> {
    prop_oneof![
        proptest::option::of((text(), text())).prop_map(|c| AppLinkAction::ActivateExUser {
            credentials: c.map(|(user, pass)| Credentials {
                user,
                pass: Secret::new(pass)
            }),
            named_user: None,
        }),
        any::<bool>().prop_map(|d| AppLinkAction::VideoSetting {
            mode: if d {
                VideoSettingMode::DownloadEffects
            } else {
                VideoSettingMode::LoopbackTest
            }
        }),
        (text(), any::<bool>(), optional_text(), optional_text()).prop_map(
            |(callee_id, video, a, b)| {
                AppLinkAction::MakeCall {
                    callee_id,
                    video,
                    caller_sub_id: a,
                    callee_sub_id: b,
                }
            }
        ),
        text().prop_map(|link_id| AppLinkAction::BroadcastLive { link_id }),
        (text(), text()).prop_map(|(live_token, link_id)| AppLinkAction::ViewLive {
            live_token,
            link_id
        }),
    ]
}

proptest! {
    /// Every link a partner page builds reads back as the same link, in both forms.
    #[test]
    fn built_links_parse_back_unchanged(
        site in "[a-zA-Z0-9._-]{0,20}",
        unique_id in optional_text(),
        allow_web in any::<bool>(),
        return_path in proptest::option::of("[a-z0-9]{1,10}"),
        action in action(),
        custom in any::<bool>(),
    ) {
        let site = SiteCode::new(&format!("s{site}")).unwrap();
        // activateExUser needs some identity.
        let unique_id = match &action {
            AppLinkAction::ActivateExUser {
                    credentials: None,
                    named_user: None,
                } => unique_id.or(Some("u".into())),
            _ => unique_id,
        };
        let link = AppLink {
            site,
            unique_id,
            allow_web,
            return_url: return_path.map(|p| url::Url::parse(&format!("https://ret.example/{p}?a=1&b=2")).unwrap()),
            action,
        };
        let base = if custom { AppLinkBase::CustomScheme } else { AppLinkBase::spec() };
        let url = link.to_url(&base);
        prop_assert_eq!(AppLinkParser::default().parse(&url), Ok(link));
    }

    /// Whatever a page throws at it, the parser answers without panicking.
    #[test]
    fn arbitrary_input_never_panics(input in ".{0,200}") {
        let _ = AppLinkParser::default().parse(&input);
        let _ = AppLinkParser::default().parse(&format!("{BASE}/makecall/?{input}"));
    }
}
