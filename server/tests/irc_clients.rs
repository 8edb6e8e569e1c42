//! Real IRC clients against the real server: irssi and weechat (Debian's packages, installed by
//! scripts/test.sh) run in tmux with their default settings, next to an operator (the server's
//! console) and two line-protocol members (`bob`, as the native client speaks, and `nc`, typing
//! raw lines as netcat does). Each client connects, waits for the operator, is approved, talks
//! both ways with markup, sends and receives privates, `/me`, `/nick`, `/names`, and is kicked
//! or quits; the screens are read back with `tmux capture-pane` and asserted on.
//!
//! A missing tool (tmux, irssi, weechat) fails the test with what to install: it never skips.
//! Screens are polled with a deadline (a read with a timeout, not a sleep as synchronisation).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod irc_kit;

/// How long a client may take to show something: irssi paces its own commands (2.2 s apart
/// after a join) and two cores are shared with builds.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Fails the test, with what to install, when `tool` is not there.
#[track_caller]
fn require(tool: &str, version_flag: &str, package: &str) {
    let ok = Command::new(tool)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is needed by this test: install the Debian package {package} \
         (scripts/test.sh does)"
    );
}

/// A scratch directory for one client's home, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("chat-irc-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One program in a tmux session of its own (its own server socket, so tests never share one).
struct Tmux {
    socket: PathBuf,
    _dir: Scratch,
}

impl Tmux {
    #[track_caller]
    fn start(what: &str, command: &str) -> Tmux {
        let dir = Scratch::new(&format!("{what}-tmux"));
        let socket = dir.0.join("tmux.sock");
        let tmux = Tmux { socket, _dir: dir };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            what,
            "-x",
            "160",
            "-y",
            "50",
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// Types `text` literally, then Enter.
    #[track_caller]
    fn type_line(&self, text: &str) {
        assert!(self.run(&["send-keys", "-l", text]).status.success());
        self.key("Enter");
    }

    /// Presses a key (`Enter`, `C-b`).
    #[track_caller]
    fn key(&self, key: &str) {
        assert!(self.run(&["send-keys", key]).status.success());
    }

    /// Types `text` literally, without Enter.
    #[track_caller]
    fn type_text(&self, text: &str) {
        assert!(self.run(&["send-keys", "-l", text]).status.success());
    }

    /// The screen as text (`styled`: with the terminal's SGR sequences).
    fn screen(&self, styled: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-J"];
        if styled {
            args.push("-e");
        }
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    /// Waits until the screen holds `part`; returns the screen.
    #[track_caller]
    fn wait_for(&self, part: &str) -> String {
        self.wait_until(part, |screen| screen.contains(part), false)
    }

    /// Waits until `pred` holds for the screen.
    #[track_caller]
    fn wait_until(&self, what: &str, pred: impl Fn(&str) -> bool, styled: bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen(styled);
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "the screen never showed {what:?}; it shows:\n{}",
                    self.screen(false)
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether `screen` (with SGR sequences) shows `word` in bold: one of the SGR sequences right
/// before it turns bold on (`ESC [1m`, or `1` among its parameters).
fn bold_before(screen: &str, word: &str) -> bool {
    screen.match_indices(word).any(|(at, _)| {
        let mut before = &screen[..at];
        while let Some(start) = before.rfind('\u{1b}') {
            let sgr = &before[start..];
            let Some(params) = sgr
                .strip_prefix("\u{1b}[")
                .and_then(|p| p.strip_suffix('m'))
            else {
                return false;
            };
            if params.split(';').any(|p| p == "1") {
                return true;
            }
            before = &before[..start];
        }
        false
    })
}

#[test]
fn irssi_waits_is_approved_talks_and_is_kicked() {
    require("tmux", "-V", "tmux");
    require("irssi", "--version", "irssi");
    // As docs/IRC.md advises for irssi 1.4, which shows strike-through's and code's IRC codes
    // as a stray reverse ^ or Q.
    let (mut server, addr) = irc_kit::server(&["--irc-styles", "basic"]);
    let mut bob = irc_kit::native(&mut server, "bob");
    let mut nc = irc_kit::native(&mut server, "nc");
    bob.expect("JOIN nc");

    let home = Scratch::new("irssi");
    let irssi = Tmux::start(
        "irssi",
        &format!(
            "irssi --home={} -n alice -c 127.0.0.1 -p {}",
            home.0.display(),
            addr.port()
        ),
    );
    // Registered at once, then waiting for the operator.
    irssi.wait_for("Welcome to the chat, alice");
    irssi.wait_for("waiting for the operator to approve alice");
    server.expect_console("join request: alice from 127.0.0.1:");
    server.console("approve alice");
    bob.expect_exact("JOIN alice");
    nc.expect_exact("JOIN alice");
    irssi.type_line("/window 2");
    irssi.wait_for("alice [alice@chat.server] has joined #chat");
    irssi.wait_for("Total of 3 nicks");

    // Native -> irssi, markup as terminal styles.
    bob.send_line("**bold** words from bob");
    let screen = irssi.wait_until(
        "bold words from bob",
        |s| s.contains("words from bob"),
        true,
    );
    assert!(bold_before(&screen, "bold"), "not bold:\n{screen:?}");
    nc.expect_exact("MSG bob - **bold** words from bob");
    // Strike-through and code as their markup characters, no stray glyph.
    bob.send_line("~~old~~ plan, run `make`");
    let screen = irssi.wait_for("~~old~~ plan, run `make`");
    let line = screen
        .lines()
        .find(|l| l.contains("plan, run"))
        .unwrap_or("");
    assert!(!line.contains(['^', 'Q']), "a stray code: {line:?}");
    nc.expect_exact("MSG bob - ~~old~~ plan, run `make`");
    // irssi -> the room: Ctrl-B is bold.
    irssi.type_text("hi from ");
    irssi.key("C-b");
    irssi.type_text("irssi");
    irssi.key("C-b");
    irssi.key("Enter");
    bob.expect_exact("MSG alice - hi from **irssi**");
    nc.expect_exact("MSG alice - hi from **irssi**");

    // /me both ways.
    irssi.type_line("/me waves");
    bob.expect_exact("ACT alice waves");
    nc.expect_exact("ACT alice waves");
    nc.send_line("/me nods");
    irssi.wait_for("* nc nods");
    bob.expect_exact("ACT nc nods");

    // /names.
    irssi.type_line("/names");
    irssi.wait_for("[Users #chat]");

    // Privates both ways.
    irssi.type_line("/msg bob just for you");
    bob.expect_exact("PRIV alice bob - just for you");
    bob.send_line("/private alice psst");
    irssi.type_line("/window 3");
    irssi.wait_for("psst");
    irssi.type_line("/window 2");

    // /nick.
    irssi.type_line("/nick alicia");
    bob.expect_exact("NICK alice alicia");
    nc.expect_exact("NICK alice alicia");
    irssi.wait_for("You're now known as alicia");

    // Kicked by the operator.
    server.console("kick alicia");
    bob.expect_exact("LEAVE alicia kicked");
    nc.expect_exact("LEAVE alicia kicked");
    irssi.wait_for("alicia was kicked from #chat by chat.server");
}

#[test]
fn weechat_waits_is_approved_talks_and_quits() {
    require("tmux", "-V", "tmux");
    require("weechat", "--version", "weechat-curses");
    let (mut server, addr) = irc_kit::server(&[]);
    let mut bob = irc_kit::native(&mut server, "bob");
    let mut nc = irc_kit::native(&mut server, "nc");
    bob.expect("JOIN nc");

    let home = Scratch::new("weechat");
    let weechat = Tmux::start(
        "weechat",
        &format!(
            "weechat --dir {} -r '/server add chat 127.0.0.1/{} -notls -nicks=wee; /connect chat'",
            home.0.display(),
            addr.port()
        ),
    );
    weechat.wait_for("Welcome to the chat, wee");
    weechat.wait_for("waiting for the operator to approve wee");
    server.expect_console("join request: wee from 127.0.0.1:");
    server.console("approve wee");
    bob.expect_exact("JOIN wee");
    nc.expect_exact("JOIN wee");
    weechat.wait_for("wee (wee@chat.server) has joined #chat");
    weechat.wait_for("Channel #chat: 3 nicks");

    // Both ways, with markup: bold is ^B in weechat's input (Ctrl-C b).
    bob.send_line("**bold** hello weechat");
    let screen = weechat.wait_until("hello weechat", |s| s.contains("hello weechat"), true);
    assert!(bold_before(&screen, "bold"), "not bold:\n{screen:?}");
    nc.expect_exact("MSG bob - **bold** hello weechat");
    weechat.type_text("hi ");
    weechat.key("C-c");
    weechat.type_text("b");
    weechat.type_text("all");
    weechat.key("C-c");
    weechat.type_text("b");
    weechat.key("Enter");
    bob.expect_exact("MSG wee - hi **all**");
    nc.expect_exact("MSG wee - hi **all**");

    weechat.type_line("/me dances");
    bob.expect_exact("ACT wee dances");
    nc.expect_exact("ACT wee dances");
    bob.send_line("/me claps");
    weechat.wait_for("bob claps");
    nc.expect_exact("ACT bob claps");

    weechat.type_line("/query nc");
    // Typed before weechat has switched to the query's buffer, the words would go to #chat
    // (it failed so once on a loaded machine): wait for the status bar to name the buffer.
    weechat.wait_until("the query buffer", is_query_buffer_of("nc"), false);
    weechat.type_line("a private word");
    nc.expect_exact("PRIV wee nc - a private word");
    nc.send_line("/private wee back at you");
    weechat.wait_for("back at you");
    weechat.type_line("/buffer #chat");

    weechat.type_line("/names");
    weechat.wait_for("Nicks #chat:");

    weechat.type_line("/nick weeds");
    bob.expect_exact("NICK wee weeds");
    nc.expect_exact("NICK wee weeds");
    weechat.wait_for("You are now known as weeds");

    weechat.type_line("/quit");
    bob.expect_exact("LEAVE weeds left");
    nc.expect_exact("LEAVE weeds left");
}

#[test]
fn weechat_keeps_its_token_as_the_password_and_skips_the_waiting_room() {
    require("tmux", "-V", "tmux");
    require("weechat", "--version", "weechat-curses");
    let (mut server, addr) = irc_kit::server(&[]);
    let mut bob = irc_kit::native(&mut server, "bob");

    let home = Scratch::new("weechat-token");
    let weechat = Tmux::start(
        "weechat",
        &format!(
            "weechat --dir {} -r '/server add chat 127.0.0.1/{} -notls -nicks=tok; /connect chat'",
            home.0.display(),
            addr.port()
        ),
    );
    weechat.wait_for("waiting for the operator to approve tok");
    server.expect_console("join request: tok from 127.0.0.1:");
    server.console("approve tok");
    bob.expect_exact("JOIN tok");
    weechat.wait_for("tok (tok@chat.server) has joined #chat");

    // The server's notices give the token and the command that keeps it: type that command.
    weechat.type_line("/buffer 1");
    let screen = weechat.wait_for("weechat: /set irc.server.chat.password ");
    let command = screen
        .lines()
        .find_map(|l| l.split_once("weechat: ").map(|(_, c)| c.trim().to_owned()))
        .filter(|c| c.starts_with("/set irc.server.chat.password "))
        .unwrap_or_else(|| panic!("no command on the screen:\n{screen}"));
    weechat.type_line(&command);
    weechat.wait_for("irc.server.chat.password = ");

    // Reconnect: in at once, no operator (the console says it was a remembered member).
    weechat.type_line("/reconnect");
    bob.expect_exact("LEAVE tok left");
    bob.expect_exact("JOIN tok");
    server.expect_console("remembered tok joined");
    weechat.type_line("/buffer #chat");
    // weechat sends into the channel only once it has seen its own JOIN again.
    let joined = "tok (tok@chat.server) has joined #chat";
    weechat.wait_until("the second join", |s| s.matches(joined).count() >= 2, false);
    weechat.type_line("back without waiting");
    bob.expect_exact("MSG tok - back without waiting");
}

/// Whether weechat's status bar shows the buffer of a query with `nick` (`[irc/chat] 3:nc`).
fn is_query_buffer_of(nick: &str) -> impl Fn(&str) -> bool + '_ {
    move |screen| {
        screen.lines().any(|line| {
            line.split("[irc/chat] ").nth(1).is_some_and(|rest| {
                let name = rest.trim_start_matches(|c: char| c.is_ascii_digit());
                name.strip_prefix(':')
                    .and_then(|n| n.strip_prefix(nick))
                    .is_some_and(|after| after.is_empty() || after.starts_with(' '))
            })
        })
    }
}
