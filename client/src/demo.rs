//! `nexmile-cli demo`: what `make run` shows until the server exists — every
//! app-link function built and read back, a refused link, and a call billed
//! second by second until its money runs out.

use std::io::{self, Write};
use std::time::Duration;

use nexmile_core::applink::{
    AppLink, AppLinkAction, AppLinkBase, AppLinkParser, Credentials, SiteCode, VideoSettingMode,
};
use nexmile_core::billing::{Ledger, LedgerEvent};
use nexmile_core::clock::UnixMillis;
use nexmile_core::secret::Secret;
use nexmile_core::wire::codes::ServiceChargeType;
use nexmile_core::wire::site_service::ServiceCharge;

use crate::link_report::report;

fn example_links() -> Vec<AppLink> {
    let site = SiteCode::new("newsite1").expect("a valid site code");
    let link = |action| AppLink {
        site: site.clone(),
        unique_id: Some("abcdefg-123456".into()),
        allow_web: false,
        return_url: url::Url::parse("https://test.com/?id=1234").ok(),
        action,
    };
    vec![
        link(AppLinkAction::ActivateExUser {
            credentials: Some(Credentials {
                user: "1234".into(),
                pass: Secret::new("4567"),
            }),
            named_user: None,
        }),
        link(AppLinkAction::VideoSetting {
            mode: VideoSettingMode::LoopbackTest,
        }),
        link(AppLinkAction::MakeCall {
            callee_id: "operator-7".into(),
            video: true,
            caller_sub_id: None,
            callee_sub_id: Some("窓口A".into()),
        }),
        link(AppLinkAction::BroadcastLive {
            link_id: "live-2026-11".into(),
        }),
        link(AppLinkAction::ViewLive {
            live_token: "lt-8f3a".into(),
            link_id: "live-2026-11".into(),
        }),
    ]
}

pub fn run(out: &mut impl Write) -> io::Result<()> {
    let parser = AppLinkParser::default();
    writeln!(out, "== App links (spec chapter 2) ==")?;
    for (i, link) in example_links().iter().enumerate() {
        let base = if i % 2 == 0 {
            AppLinkBase::spec()
        } else {
            AppLinkBase::CustomScheme
        };
        let url = link.to_url(&base);
        let shown = match &link.action {
            AppLinkAction::ActivateExUser { .. } => url.replace("pass=4567", "pass=***"),
            _ => url.clone(),
        };
        writeln!(out, "{shown}\n  → {}", report(&parser, &url).0)?;
    }
    let bad = "https://sbx.stream-works.biz/sbxapp/makecall/?site=newsite1&calleeId=42&video=yes";
    writeln!(out, "{bad}\n  → {}", report(&parser, bad).0)?;

    writeln!(out, "\n== A call billed every second (§3.3.3 ③) ==")?;
    let charge = ServiceCharge {
        service_charge_type: ServiceChargeType::Call,
        unit_sec: 60,
        unit_price: 100,
        point_price: 10,
        current_point: 50,
        free_trial_sec: 0,
        auto_charge_trigger_point: 20,
        auto_charge_trigger_url: Some("https://partner.example/autocharge?user=1234".into()),
    };
    writeln!(
        out,
        "100 yen per 60 s, 10 yen a point, 50 points; auto-charge below 20 points"
    )?;
    let start = UnixMillis(1_700_000_000_000);
    let mut ledger = Ledger::new(&charge, start);
    for second in 0..=600 {
        let now = start + Duration::from_secs(second);
        let events = ledger.tick(now);
        if second % 60 == 0 || !events.is_empty() {
            // Whole seconds, rounded up: "0 s left" only once it is over.
            let left = ledger
                .time_left(now)
                .unwrap_or_default()
                .as_millis()
                .div_ceil(1000);
            writeln!(
                out,
                "{second:>4} s  used {:>3} points  {left:>4} s left",
                ledger.used_points(now)
            )?;
        }
        for event in events {
            match event {
                LedgerEvent::AutoChargeTriggered { url } => {
                    writeln!(out, "        auto-charge trigger → GET {url}")?;
                }
                LedgerEvent::Exhausted => {
                    writeln!(
                        out,
                        "        money exhausted → disconnect (terminateReason 3)"
                    )?;
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_runs_to_the_disconnect_and_never_prints_the_password() {
        let mut out = Vec::new();
        super::run(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("4567"), "{text}");
        assert!(text.contains(r#""function":"viewLive""#));
        assert!(text.contains("\"code\":\"invalid_value\""));
        assert!(text.contains(" 241 s  used  41 points"), "{text}");
        assert!(text.contains("auto-charge trigger"));
        assert!(text.ends_with("disconnect (terminateReason 3)\n"));
    }
}
