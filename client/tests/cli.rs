//! `nexmile-cli` as a user runs it: a process, its stdout and its exit status.

use std::process::{Command, Output};

use serde_json::Value;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nexmile-cli"))
        .args(args)
        .output()
        .expect("nexmile-cli runs")
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

#[test]
fn parse_link_prints_the_link_and_exits_0() {
    let out = cli(&[
        "parse-link",
        "https://sbx.stream-works.biz/sbxapp/activateExUser/?site=newsite1&user=1234&pass=4567&uniqueId=abcdefg-123456&allowWeb=0&returnUrl=https%3A%2F%2Ftest.com%3Fid%3D1234",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = stdout_json(&out);
    assert_eq!(
        v,
        serde_json::json!({
            "function": "activateExUser", "site": "newsite1", "uniqueId": "abcdefg-123456",
            "allowWeb": false, "returnUrl": "https://test.com/?id=1234",
            "params": {"user": "1234", "pass": "***"}
        })
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("4567"), "the password never leaves: {all}");
}

#[test]
fn parse_link_refusal_is_an_error_object_and_exit_2() {
    let out = cli(&[
        "parse-link",
        "https://evil.example/sbxapp/makecall/?site=s&calleeId=1&video=1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v = stdout_json(&out);
    assert_eq!(v["error"]["code"], "host_not_allowed");
    assert_eq!(v["error"]["parameter"], Value::Null);
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());

    let out = cli(&["parse-link", "nexmile://viewLive/?site=s&linkId=L"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout_json(&out)["error"]["parameter"], "liveToken");
}

#[test]
fn parse_link_accepts_configured_bases() {
    let link = "https://app.example.jp/go/broadcastLive?site=s&linkId=L";
    assert_eq!(cli(&["parse-link", link]).status.code(), Some(2));
    let out = cli(&["parse-link", "--base", "https://app.example.jp/go", link]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout_json(&out)["params"]["linkId"], "L");
    let bad_base = cli(&["parse-link", "--base", "http://insecure.example", link]);
    assert_eq!(bad_base.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad_base.stderr).contains("https"));
}

#[test]
fn demo_runs() {
    let out = cli(&["demo"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("disconnect"));
}
