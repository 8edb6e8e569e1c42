//! HexChat, a graphical IRC client (Debian's 2.16.1, with its Python plugin, hexchat-python3),
//! against the real server: it runs on a virtual X display (Xvfb) with a fresh config directory
//! and its default settings, but for what a first start would ask a person (the network list,
//! the nick); a small plugin of ours (`hexchat/chat_test.py`, loaded from the config
//! directory's `addons/`) writes every text event HexChat prints (messages with their
//! formatting codes, privates, notices, joins, nick changes, kicks) to a log, one line each,
//! and types the commands the test writes to a file. The test asserts on the log's lines,
//! exactly, and on what a native member (`bob`) and the operator's console see.
//!
//! HexChat connects each way docs/IRC.md gives: an `irc://` URL on its command line (then it
//! waits, is approved, talks with markup both ways, sends and gets privates, `/me`, `/nick`,
//! the operator's notice, and is kicked), the typed `/nick` and `/server` (then its token as
//! `/server`'s password), and a network of its Network List (`servlist.conf`, as the dialog
//! saves it) with the token under each login method. Run by root, HexChat runs as nobody:
//! as root it stops at a warning that waits for a click.
//!
//! A missing tool (hexchat, hexchat-python3, Xvfb) fails the test with what to install: it
//! never skips. The log is polled with a deadline (a read with a timeout, not a sleep as
//! synchronisation); Xvfb and HexChat are stopped on drop, the test passing or not.
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod irc_kit;

/// How long HexChat may take to print an event: it starts a GTK interface and a Python
/// interpreter on two cores shared with builds.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Xvfb may take to say which display it took.
const DISPLAY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped Xvfb may take to exit (it removes its lock and socket) before it is
/// killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the event log is read while waiting.
const POLL: Duration = Duration::from_millis(50);
/// The user and group HexChat runs as when the test runs as root (`nobody`, `nogroup`).
const NOBODY: u32 = 65534;
/// The plugin, written into each HexChat's `addons/`.
const PLUGIN: &str = include_str!("hexchat/chat_test.py");

/// Starts `command`, failing the test with what to install when the program is not there.
#[track_caller]
fn spawn(command: &mut Command, package: &str) -> Child {
    match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "{:?} is needed by this test: install the Debian package {package} \
             (scripts/test.sh does)",
            command.get_program()
        ),
        Err(e) => panic!("{:?}: {e}", command.get_program()),
    }
}

/// Fails the test, with what to install, when `tool --version` does not run.
#[track_caller]
fn require(tool: &str, package: &str) {
    let mut command = Command::new(tool);
    let mut child = spawn(
        command
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        package,
    );
    assert!(
        child.wait().is_ok_and(|s| s.success()),
        "{tool} --version failed: reinstall the Debian package {package}"
    );
}

/// A program stopped (SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]) and reaped on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HexChat on a display of its own, its config directory, and how far the test has read
/// its event log.
struct HexChat {
    // Dropped in this order: HexChat before its display, both before their directory.
    _hexchat: Process,
    _xvfb: Process,
    dir: Scratch,
    /// Lines of the event log already matched: [`HexChat::expect`] looks after them.
    read: usize,
}

impl HexChat {
    /// Starts Xvfb and HexChat with `nick`, connecting to `url` (HexChat's command line takes
    /// an `irc://` URL); without one, HexChat opens an empty server tab and waits for
    /// commands. `servlist` is its Network List (`servlist.conf`), if any.
    #[track_caller]
    fn start(name: &str, nick: &str, url: Option<&str>, servlist: Option<&str>) -> HexChat {
        let scratch = Scratch(
            std::env::temp_dir().join(format!("chat-hexchat-{name}-{}", std::process::id())),
        );
        let dir = scratch.0.clone();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("addons")).unwrap();
        // What a first start would ask a person: skip the network list (the server is given
        // on the command line), no "join a channel" dialog (the server joins us on approval),
        // the nick. HexChat's own ident server (port 113) stays off, so that tests running
        // side by side never fight over its port.
        std::fs::write(
            dir.join("hexchat.conf"),
            format!(
                "version = 2.16.1\n\
                 gui_slist_skip = 1\n\
                 gui_join_dialog = 0\n\
                 irc_nick1 = {nick}\n\
                 irc_nick2 = {nick}_\n\
                 irc_nick3 = {nick}__\n\
                 irc_user_name = {nick}\n\
                 irc_real_name = {nick}\n\
                 identd_server = 0\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.join("addons").join("chat_test.py"), PLUGIN).unwrap();
        if let Some(servlist) = servlist {
            std::fs::write(dir.join("servlist.conf"), servlist).unwrap();
        }
        // HexChat started by root stops at a dialog ("Running IRC as root is stupid!") that
        // waits for a click: as root (CI's containers), run it as nobody, owning its directory.
        let as_root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        require("hexchat", "hexchat");
        if as_root {
            require("setpriv", "util-linux");
            let files = [
                "",
                "addons",
                "hexchat.conf",
                "addons/chat_test.py",
                "servlist.conf",
            ];
            for path in files.into_iter().filter(|f| dir.join(f).exists()) {
                std::os::unix::fs::chown(dir.join(path), Some(NOBODY), Some(NOBODY)).unwrap();
            }
        }

        // Xvfb picks a free display itself and writes its number to stdout when it is ready
        // (`-displayfd`), so parallel tests never collide.
        let mut xvfb = Process(spawn(
            Command::new("Xvfb")
                .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
                .arg("1024x768x24")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join("xvfb.err")).unwrap()),
            "xvfb",
        ));
        let display = read_display(&mut xvfb, &dir);
        let out = std::fs::File::create(dir.join("hexchat.out")).unwrap();
        let mut command = if as_root {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .args(["--clear-groups", "hexchat"]);
            c
        } else {
            Command::new("hexchat")
        };
        let hexchat = Process(spawn(
            command
                .arg("-d")
                .arg(&dir)
                .args(url)
                .env("DISPLAY", format!(":{display}"))
                // Nothing outside the scratch directory: no session bus (it could start one
                // that outlives the test), no accessibility bus, no files in the real home.
                .env("DBUS_SESSION_BUS_ADDRESS", "disabled:")
                .env("NO_AT_BRIDGE", "1")
                .env("HOME", &dir)
                .env("XDG_CONFIG_HOME", dir.join("xdg"))
                .env("XDG_CACHE_HOME", dir.join("xdg"))
                .env("XDG_DATA_HOME", dir.join("xdg"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out),
            "hexchat",
        ));
        let mut hx = HexChat {
            _hexchat: hexchat,
            _xvfb: xvfb,
            dir: scratch,
            read: 0,
        };
        hx.expect_line(
            &["", "loaded", "chat_test"],
            "the Python plugin never loaded: install the Debian package hexchat-python3 \
             (scripts/test.sh does)",
        );
        hx
    }

    /// Appends a command for the plugin to run in the tab `tab` ("" for the server's), in one
    /// write, so the plugin never reads half of it.
    #[track_caller]
    fn command(&self, tab: &str, command: &str) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("commands.txt"))
            .unwrap();
        file.write_all(format!("{tab}\t{command}\n").as_bytes())
            .unwrap();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.0.join(name)).unwrap_or_default()
    }

    /// The lines the server has sent so far.
    fn raw(&self) -> String {
        self.log("raw.log")
    }

    /// Waits until the event log has the line `fields` (tab, event, words) after the lines
    /// matched so far.
    #[track_caller]
    fn expect(&mut self, fields: &[&str]) {
        self.expect_line(fields, "");
    }

    #[track_caller]
    fn expect_line(&mut self, fields: &[&str], hint: &str) {
        let want = fields.join("\t");
        self.wait_line(&want, |l| l == want, hint);
    }

    /// Waits until the event log has a line that starts with `fields` after the lines matched
    /// so far; returns the rest of it.
    #[track_caller]
    fn expect_start(&mut self, fields: &[&str]) -> String {
        let want = fields.join("\t");
        let line = self.wait_line(&want, |l| l.starts_with(&want), "at the start of a line");
        line[want.len()..].to_owned()
    }

    /// Waits until `pred` holds for a line of the event log after those matched so far (it
    /// is matched then); returns it.
    #[track_caller]
    fn wait_line(&mut self, want: &str, pred: impl Fn(&str) -> bool, hint: &str) -> String {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let log = self.log("events.log");
            // Whole lines only: the plugin may be half way through writing one.
            let whole = &log[..log.rfind('\n').map_or(0, |at| at + 1)];
            if let Some((at, line)) = whole
                .lines()
                .enumerate()
                .skip(self.read)
                .find(|(_, l)| pred(l))
            {
                self.read = at + 1;
                return line.to_owned();
            }
            // A command the plugin could not run (no such tab) fails at once.
            let error = whole.lines().find(|l| l.starts_with("\ttest error\t"));
            if Instant::now() > deadline || error.is_some() {
                panic!(
                    "HexChat never printed {want:?} {hint}\n\
                     events (after the first {} matched):\n{}\n\
                     raw lines from the server:\n{}\n\
                     HexChat's output:\n{}",
                    self.read,
                    escaped(&log),
                    escaped(&self.log("raw.log")),
                    self.log("hexchat.out"),
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text`'s lines, each quoted with its control characters escaped (formatting codes show).
fn escaped(text: &str) -> String {
    text.lines().map(|l| format!("{l:?}\n")).collect()
}

/// The display number Xvfb writes to its stdout once it listens, within [`DISPLAY_TIMEOUT`].
#[track_caller]
fn read_display(xvfb: &mut Process, dir: &Path) -> u32 {
    let stdout = xvfb.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DISPLAY_TIMEOUT).unwrap_or_default();
    line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "Xvfb gave no display number ({line:?}); it said:\n{}",
            std::fs::read_to_string(dir.join("xvfb.err")).unwrap_or_default()
        )
    })
}

#[test]
fn hexchat_waits_is_approved_talks_and_is_kicked() {
    let (mut server, addr) = irc_kit::server(&[]);
    let mut bob = irc_kit::native(&mut server, "bob");

    let mut hx = HexChat::start(
        "talks",
        "hx",
        Some(&format!("irc://127.0.0.1:{}/", addr.port())),
        None,
    );
    // Registered at once, then waiting for the operator.
    hx.expect(&[
        "chat",
        "Server Notice",
        "waiting for the operator to approve hx (you will join #chat then)",
        "chat.server",
    ]);
    server.expect_console("join request: hx from 127.0.0.1:");
    server.console("approve hx");
    bob.expect_exact("JOIN hx");
    hx.expect(&["#chat", "You Join", "hx", "#chat", "hx@chat.server"]);

    // Native -> HexChat: markup as IRC's codes, strike-through and code too (HexChat 2.16
    // renders them, so the server's default `--irc-styles all` is right for it). A style open
    // at the end of the line needs no closing code: the server sends none.
    bob.send_line("**bold** ~~strike~~ `code`");
    hx.expect(&[
        "#chat",
        "Channel Message",
        "bob",
        "\u{2}bold\u{2} \u{1e}strike\u{1e} \u{11}code",
    ]);
    // HexChat -> the room: its codes as markup.
    hx.command("#chat", "say \u{2}hi\u{2} from \u{1d}hexchat\u{1d}");
    bob.expect_exact("MSG hx - **hi** from __hexchat__");
    hx.expect(&[
        "#chat",
        "Your Message",
        "hx",
        "\u{2}hi\u{2} from \u{1d}hexchat\u{1d}",
    ]);

    // /me both ways.
    hx.command("#chat", "me waves");
    bob.expect_exact("ACT hx waves");
    hx.expect(&["#chat", "Your Action", "hx", "waves"]);
    bob.send_line("/me claps");
    hx.expect(&["#chat", "Channel Action", "bob", "claps"]);

    // Privates both ways.
    hx.command("#chat", "msg bob just for you");
    bob.expect_exact("PRIV hx bob - just for you");
    hx.expect(&["#chat", "Message Send", "bob", "just for you"]);
    bob.send_line("/private hx psst");
    hx.expect(&["bob", "Private Message to Dialog", "bob", "psst"]);

    // The operator's notice to the room: from the server, so HexChat prints it as the
    // server's, in the channel's tab.
    server.console("say hello all");
    bob.expect_exact("INFO operator: hello all");
    hx.expect(&[
        "#chat",
        "Server Notice",
        "operator: hello all",
        "chat.server",
    ]);

    // /nick.
    hx.command("#chat", "nick hexa");
    bob.expect_exact("NICK hx hexa");
    hx.expect(&["#chat", "Your Nick Changing", "hx", "hexa"]);

    // Kicked by the operator.
    server.console("kick hexa");
    bob.expect_exact("LEAVE hexa kicked");
    hx.expect(&[
        "#chat",
        "You Kicked",
        "hexa",
        "#chat",
        "chat.server",
        "kicked by the operator",
    ]);
}

/// docs/IRC.md's typed steps (`/nick`, then `/server HOST PORT`), and the token the server
/// gives as the password of `/server HOST PORT PASSWORD`: in at once, no operator.
#[test]
fn hexchat_typed_server_command_then_its_token_skips_the_waiting_room() {
    let (mut server, addr) = irc_kit::server(&[]);
    let mut bob = irc_kit::native(&mut server, "bob");
    let port = addr.port();

    let mut hx = HexChat::start("token", "someone", None, None);
    hx.command("", "nick tok");
    hx.command("", &format!("server 127.0.0.1 {port}"));
    server.expect_console("join request: tok from 127.0.0.1:");
    server.console("approve tok");
    bob.expect_exact("JOIN tok");
    hx.expect(&["#chat", "You Join", "tok", "#chat", "tok@chat.server"]);
    let token = hx.expect_start(&["chat", "Server Notice", "Your token is "]);
    let token = token
        .strip_suffix("\tchat.server")
        .unwrap_or_else(|| panic!("no token in {token:?}"));
    hx.expect_start(&[
        "chat",
        "Server Notice",
        &format!("HexChat: Network List > chat > Edit > Password: {token} "),
    ]);

    hx.command("", &format!("server 127.0.0.1 {port} {token}"));
    hx.expect(&["#chat", "You Join", "tok", "#chat", "tok@chat.server"]);
    // HexChat ends the old connection with a QUIT (`left`), or, when it closes the socket
    // before its send queue got the QUIT out (it happens), without one (`quit`).
    let leave = bob.next_line();
    assert!(
        ["LEAVE tok left", "LEAVE tok quit"].contains(&leave.as_str()),
        "{leave:?}"
    );
    bob.expect_exact("JOIN tok");
    server.expect_console("remembered tok joined");
    hx.command("#chat", "say back without waiting");
    bob.expect_exact("MSG tok - back without waiting");
}

/// docs/IRC.md's Network List, as the dialog writes it to `servlist.conf`: a network `chat`
/// with the server and the token as its password, under each login method the page names;
/// `/server chat` connects to it, and the member is in at once.
#[test]
fn hexchat_network_list_with_the_token_skips_the_waiting_room() {
    // (the login method's number in servlist.conf, its name in the Edit dialog, the network's
    // flags: 19 = the dialog's defaults, global user information included; 17 = without it,
    // so that the network's own user name is SASL's account)
    let methods = [
        ("0", "Default", "19"),
        ("7", "Server password (/PASS password)", "19"),
        ("6", "SASL (username + password)", "17"),
    ];
    for (login, method, flags) in methods {
        let (mut server, addr) = irc_kit::server(&[]);
        let mut bob = irc_kit::native(&mut server, "bob");
        // Approved once (as a raw IRC member), for the token.
        let mut first = irc_kit::irc_member(&mut server, addr, "net", "");
        bob.expect_exact("JOIN net");
        let token = first.token.clone().unwrap();
        first.send("QUIT");
        first.expect_error_then_close();
        bob.expect_exact("LEAVE net left");

        let servlist = format!(
            "v=2.16.1\n\n\
             N=chat\n\
             I=net\n\
             U=net\n\
             L={login}\n\
             P={token}\n\
             F={flags}\n\
             D=0\n\
             S=127.0.0.1/{}\n\n",
            addr.port()
        );
        let mut hx = HexChat::start("network", "net", None, Some(&servlist));
        hx.command("", "server chat");
        bob.expect_exact("JOIN net");
        server.expect_console("remembered net joined");
        hx.expect(&["#chat", "You Join", "net", "#chat", "net@chat.server"]);
        hx.command("#chat", &format!("say in through {method}"));
        bob.expect_exact(&format!("MSG net - in through {method}"));
        // SASL's success (903) came before the join; with a server password there is none.
        let sasl = hx.raw().contains(":chat.server 903 ");
        assert_eq!(sasl, login == "6", "{method}:\n{}", escaped(&hx.raw()));
    }
}
