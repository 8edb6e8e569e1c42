//! The systemd unit docs/DEPLOY.md installs (scripts/deploy/chat-server.service): systemd
//! accepts it (`systemd-analyze verify`), its sandbox scores well (`systemd-analyze security`),
//! it carries the hardening the deploy guide promises, the server starts with its ExecStart's
//! flags, and DEPLOY.md shows the file exactly. scripts/test.sh installs systemd when missing; a
//! machine without `systemd-analyze` fails this test rather than skipping it.
#![allow(clippy::unwrap_used)]

mod console_kit;

use std::path::PathBuf;
use std::process::Command;

use chat_testkit::{Console, Server};
use console_kit::{ctl_lines, TempDir};

/// The highest `systemd-analyze security` exposure accepted (0 is best, 10 worst; 1.7 now).
const MAX_EXPOSURE: f64 = 2.0;

fn unit_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/deploy/chat-server.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).unwrap()
}

/// The unit with its ExecStart pointing at the binary under test (verify wants it to exist).
fn unit_for_test(dir: &TempDir) -> PathBuf {
    let text = unit_text().replace(
        "/usr/local/bin/chat-server",
        env!("CARGO_BIN_EXE_chat-server"),
    );
    let path = dir.0.join("chat-server.service");
    std::fs::write(&path, text).unwrap();
    path
}

#[track_caller]
fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is needed (Debian package systemd; scripts/test.sh installs it): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_verifies_the_unit() {
    let dir = TempDir::new("unit-verify");
    let unit = unit_for_test(&dir);
    // --man=no: the man page is installed by the guide's step 1, not on the test machine.
    let (ok, text) = systemd_analyze(&["verify", "--man=no", unit.to_str().unwrap()]);
    assert!(ok, "systemd-analyze verify:\n{text}");
    assert!(!text.contains("chat-server.service:"), "warnings:\n{text}");
}

#[test]
fn the_units_sandbox_scores_well() {
    let dir = TempDir::new("unit-security");
    let unit = unit_for_test(&dir);
    let (ok, text) = systemd_analyze(&["security", "--offline=true", unit.to_str().unwrap()]);
    assert!(ok, "systemd-analyze security:\n{text}");
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for chat-server.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure}:\n{text}");
}

#[test]
fn the_unit_has_the_promised_hardening_and_starts_without_the_tls_step() {
    let text = unit_text();
    for line in [
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "RestrictNamespaces=yes",
        "ProtectKernelModules=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StandardInput=null",
        "Restart=on-failure",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?}");
    }
    // Paths the sandbox names must exist when it starts, unless marked optional with `-`:
    // /etc/chat appears only with the TLS step.
    for line in text.lines() {
        for key in ["ReadOnlyPaths=", "ReadWritePaths=", "InaccessiblePaths="] {
            if let Some(paths) = line.strip_prefix(key) {
                for path in paths.split_whitespace() {
                    assert!(
                        path.starts_with('-') || std::path::Path::new(path).exists(),
                        "{key}{path} stops the unit when the path is missing"
                    );
                }
            }
        }
    }
    assert!(text.contains("--listen [::]:"), "IPv6 (and IPv4)");
}

/// ExecStart's flags, with its continuation lines joined.
fn exec_start_args() -> Vec<String> {
    let text = unit_text().replace("\\\n", " ");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

#[test]
fn the_server_starts_with_the_units_flags_and_its_group_may_use_the_console() {
    let dir = TempDir::new("unit-start");
    let sock = dir.sock();
    let data = dir.0.join("state");
    std::fs::create_dir_all(&data).unwrap();
    let args: Vec<String> = exec_start_args()
        .into_iter()
        .map(|a| match a.as_str() {
            "/run/chat/console.sock" => sock.to_str().unwrap().to_owned(),
            "/var/lib/chat" => data.to_str().unwrap().to_owned(),
            // A free port, IPv6 as in the unit (loopback: the test kit talks to loopback only).
            "[::]:55555" => "[::1]:0".to_owned(),
            _ => a,
        })
        .collect();
    assert!(args.iter().any(|a| a == "--control-mode"), "{args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _server = Server::builder()
        .no_listen()
        .console(Console::Null)
        .args(&args)
        .start();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o660,
        "the group step of DEPLOY.md needs a group-writable socket"
    );
    let (code, lines) = ctl_lines(&sock, &["who"]);
    assert_eq!(code, 0, "{lines:?}");
}

#[test]
fn deploy_md_shows_the_unit_file_exactly() {
    let guide = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/DEPLOY.md"),
    )
    .unwrap();
    let unit = unit_text();
    let shown = guide
        .split("```ini\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("no ```ini block in DEPLOY.md"));
    assert_eq!(
        shown, unit,
        "DEPLOY.md's unit differs from scripts/deploy/chat-server.service"
    );
}
