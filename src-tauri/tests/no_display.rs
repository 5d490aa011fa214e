//! The desktop app started where no window can open (no display: an SSH
//! session, a service) says so in words and exits, rather than panicking.

use std::process::Command;

#[test]
fn without_a_display_the_app_says_so_and_exits() {
    let out = Command::new(env!("CARGO_BIN_EXE_nexmile"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("the app runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("画面を開けません"), "{said}");
    assert!(said.contains("cannot open its window"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
