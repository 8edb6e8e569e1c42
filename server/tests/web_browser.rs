//! The chat page in a real browser (Debian's chromium, driven by Selenium through
//! chromium-driver): two browser members and a raw TCP member through the whole contract.
//! The scenario is `web_browser.py` beside this file (its docstring lists the steps); this test
//! runs it against the binary under test and fails with its message. It needs python3,
//! selenium, chromium and chromium-driver, which scripts/test.sh installs; without them it
//! fails, it never skips. `CHAT_WEB_SCREENSHOTS=DIR` keeps the screenshots there (the ones in
//! docs/ were made with `CHAT_WEB_SCREENSHOTS=docs`).

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn two_browsers_and_a_netcat_member_walk_the_contract() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web_browser.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(env!("CARGO_BIN_EXE_chat-server"));
    if let Ok(dir) = std::env::var("CHAT_WEB_SCREENSHOTS") {
        // Relative to the workspace root, where the docs are.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        command.arg(dir);
    }
    let started = Instant::now();
    let out = command
        .output()
        .expect("python3 must be installed (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser scenario failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser scenario passed"), "{stdout}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the scenario took {:?}",
        started.elapsed()
    );
}
