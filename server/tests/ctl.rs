//! `chat-server ctl` and the control socket's script conventions: the `.end` line at end of
//! input, `.quiet` consoles, exit statuses, and `--control-mode` / `--control-group`.
#![allow(clippy::unwrap_used)]

mod console_kit;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;

use chat_testkit::Server;
use console_kit::{ctl, ctl_lines, start_controlled, Operator, TempDir};

#[test]
fn ctl_prints_the_reply_and_exits_0_when_the_command_worked() {
    let dir = TempDir::new("ctl-ok");
    let _server = start_controlled(&dir, &[]);
    let (code, lines) = ctl_lines(&dir.sock(), &["who"]);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines, ["online: 0"]);
}

#[test]
fn ctl_exits_1_when_the_command_failed_and_nothing_changes() {
    let dir = TempDir::new("ctl-fail");
    let _server = start_controlled(&dir, &[]);
    let out = ctl(&dir.sock(), &["kick", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "error: no member named nobody\n");
    let (code, lines) = ctl_lines(&dir.sock(), &["dance", "now"]);
    assert_eq!(code, 1);
    assert_eq!(lines, ["error: unknown command \"dance\"; type help"]);
    let (code, lines) = ctl_lines(&dir.sock(), &["bans"]);
    assert_eq!((code, lines), (0, vec!["bans: 0".to_owned()]));
}

#[test]
fn ctl_exits_3_when_no_server_answers_and_2_on_bad_arguments() {
    let dir = TempDir::new("ctl-none");
    let out = ctl(&dir.sock(), &["who"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the console"), "{err}");
    assert!(err.contains(dir.sock().to_str().unwrap()), "{err}");
    // No command at all; a command that is two lines.
    assert_eq!(ctl(&dir.sock(), &[]).status.code(), Some(2));
    assert_eq!(ctl(&dir.sock(), &["who\nquit"]).status.code(), Some(2));
}

#[test]
fn ctl_exits_4_when_the_answer_does_not_finish_in_time() {
    let dir = TempDir::new("ctl-mute");
    // Something that accepts and never answers.
    let _mute = UnixListener::bind(dir.sock()).unwrap();
    let out = ctl(&dir.sock(), &["--timeout", "0.3", "who"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no complete answer"));
}

#[test]
fn a_console_whose_input_ends_gets_its_commands_answered_then_end_and_is_closed() {
    // What `echo who | nc -N -U PATH` does.
    let dir = TempDir::new("ctl-eof");
    let _server = start_controlled(&dir, &[]);
    let mut op = Operator::connect(&dir.sock());
    op.send("who");
    op.send("kick nobody");
    op.send("bans");
    op.shutdown_write();
    let mut lines = op.until_closed();
    // Standard input (/dev/null) may reach its end after this console connected: an event.
    lines.retain(|l| l != "console closed");
    assert_eq!(
        lines,
        [
            "console 1 connected",
            "online: 0",
            "error: no member named nobody",
            "bans: 0",
            ".end failed 1"
        ]
    );
}

#[test]
fn a_quiet_console_gets_only_what_its_own_commands_cause() {
    let dir = TempDir::new("ctl-quiet");
    let mut server = start_controlled(&dir, &[]);
    let (mut loud, _) = Operator::connect_numbered(&dir.sock());
    let mut quiet = Operator::connect(&dir.sock());
    quiet.send(".quiet");
    let ack = quiet.expect(".quiet console ");
    assert_eq!(ack, ".quiet console 2");
    loud.expect("console 2 connected");
    // An event it did not cause (a join request) does not reach it ...
    let (mut joiner, _) = server.join_waiting("uma");
    loud.expect("join request: uma");
    // ... the decision its own command makes does.
    quiet.send("approve uma");
    quiet.send("who");
    quiet.shutdown_write();
    let lines = quiet.until_closed();
    assert!(lines[0].starts_with("approved uma"), "{lines:?}");
    assert!(
        lines.iter().all(|l| !l.contains("join request")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some(".end ok"),
        "{lines:?}"
    );
    joiner.expect("WELCOME uma");
}

#[test]
fn ctl_approve_prints_the_decision() {
    let dir = TempDir::new("ctl-approve");
    let mut server = start_controlled(&dir, &[]);
    // A join waits only while a console is open.
    let (mut op, _) = Operator::connect_numbered(&dir.sock());
    let (mut joiner, _) = server.join_waiting("uma");
    op.expect("join request: uma");
    let (code, lines) = ctl_lines(&dir.sock(), &["approve", "uma"]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines[0].starts_with("approved uma"), "{lines:?}");
    joiner.expect("WELCOME uma");
}

#[test]
fn control_mode_and_group_set_the_sockets_permissions() {
    let dir = TempDir::new("ctl-mode");
    let gid = std::fs::metadata(&dir.0).unwrap().gid().to_string();
    let _server = start_controlled(&dir, &["--control-mode", "0660", "--control-group", &gid]);
    let meta = std::fs::metadata(dir.sock()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid().to_string(), gid);
    let (code, _) = ctl_lines(&dir.sock(), &["who"]);
    assert_eq!(code, 0);
}

#[test]
fn control_modes_for_everyone_or_unknown_groups_stop_the_start() {
    let dir = TempDir::new("ctl-badmode");
    let sock = dir.sock();
    let sock = sock.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--control", sock, "--control-mode", "0666"],
            "--control-mode",
        ),
        (
            vec!["--control", sock, "--control-mode", "rw"],
            "octal mode",
        ),
        (
            vec!["--control", sock, "--control-group", "no-such-group-x"],
            "no group named",
        ),
    ] {
        let (status, _, stderr) = Server::run_to_exit(&args, chat_testkit::TIMEOUT);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
