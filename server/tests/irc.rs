//! The IRC listener over raw sockets: registration as irssi and weechat do it, every numeric
//! the dialect answers with, bad input, and markup both ways between an IRC member, a native
//! member and a netcat-style member (all in one room, through the operator's approval).
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline. The IRC
//! connection helper is the IRC kit's (`irc_kit/`), shared with `irc_login.rs`.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use chat_testkit::{Pki, Server};
use irc_kit::{irc_member, native, native_auto, server, Irc};

#[test]
fn registration_completes_before_the_operator_decides() {
    let (mut server, addr) = server(&[]);
    let mut irc = Irc::connect(addr, "alice");
    irc.send("CAP LS 302");
    irc.send("JOIN :");
    irc.send("NICK alice");
    irc.send("USER alice alice localhost :Alice");
    assert_eq!(
        irc.line(),
        ":chat.server CAP * LS :server-time message-tags echo-message sasl=PLAIN"
    );
    assert_eq!(
        irc.line(),
        ":chat.server 451 * JOIN :You have not registered"
    );
    irc.send("CAP REQ :server-time message-tags");
    irc.expect(":chat.server CAP * ACK :server-time message-tags");
    irc.send("CAP END");
    let mut numerics = Vec::new();
    loop {
        let line = irc.line();
        let code = line.split(' ').nth(1).unwrap().to_owned();
        if code == "005" {
            for token in ["CHANTYPES=#", "NICKLEN=32", "CASEMAPPING=ascii"] {
                assert!(line.contains(token), "{token} missing: {line}");
            }
        }
        numerics.push(code);
        if line.contains(" 422 ") {
            break;
        }
    }
    assert_eq!(
        numerics,
        ["001", "002", "003", "004", "005", "251", "252", "253", "254", "255", "422"]
    );
    let notice = irc.expect(":chat.server NOTICE alice :");
    assert!(notice.contains("operator"), "{notice}");
    // The operator sees the join request and decides later: nothing more meanwhile.
    server.expect_console("join request: alice");
    irc.send("PRIVMSG #chat :too early");
    irc.expect(" 404 alice #chat :");
    irc.send("JOIN #chat");
    irc.expect("NOTICE alice :You join #chat when the operator approves you");
    irc.send("PING :still-there");
    irc.expect(":chat.server PONG chat.server :still-there");
    server.console("approve alice");
    irc.expect(":alice!alice@chat.server JOIN #chat");
    irc.expect(":chat.server 331 alice #chat :");
    irc.expect(":chat.server 353 alice = #chat :alice");
    irc.expect(":chat.server 366 alice #chat :");
}

#[test]
fn weechat_style_registration_without_cap() {
    let (mut server, addr) = server(&["--auto-approve"]);
    let mut irc = Irc::connect(addr, "wee");
    irc.send("NICK wee");
    irc.send("USER wee 0 * :WeeChat");
    irc.expect(" 001 wee :Welcome");
    irc.until(" 422 ");
    // Approved at once: the channel comes right after registration.
    irc.expect(":wee!wee@chat.server JOIN #chat");
    irc.until(" 366 wee #chat");
    server.expect_console("joined wee");
}

#[test]
fn denial_ends_with_error_and_a_close() {
    let (mut server, addr) = server(&[]);
    let mut irc = Irc::connect(addr, "mallory");
    irc.register("mallory", "");
    server.expect_console("join request: mallory");
    server.console("deny mallory");
    let error = irc.expect_error_then_close();
    assert!(error.contains("refused"), "{error}");
}

#[test]
fn bad_input_gets_its_numeric() {
    let (server, addr) = server(&["--auto-approve"]);
    let _bob = native_auto(&server, "bob");
    let mut irc = Irc::connect(addr, "alice");
    // Before registration: 451, and nicks with formatting codes or bidi characters: 432.
    irc.send("PRIVMSG #chat :hi");
    irc.expect(":chat.server 451 * PRIVMSG :You have not registered");
    irc.send("NICK \u{2}bold");
    irc.expect(":chat.server 432 * bold :");
    irc.send("NICK ev\u{202e}il");
    let line = irc.expect(":chat.server 432 * evil :");
    assert!(line.contains("U+202E"), "{line}");
    irc.send("NICK");
    irc.expect(" 431 * :");
    irc.send("USER x");
    irc.expect(":chat.server 461 * USER :");
    // A nick a native member holds: 433, then another nick works.
    irc.send("NICK bob");
    irc.send("USER alice 0 * :A");
    irc.expect(":chat.server 433 * bob :");
    irc.send("NICK alice");
    irc.until(" 001 alice ");
    irc.until(" 366 alice ");
    irc.read_token();
    // After registration.
    for (line, want) in [
        ("FROB x", ":chat.server 421 alice FROB :Unknown command"),
        ("JOIN", ":chat.server 461 alice JOIN :"),
        ("JOIN #other", ":chat.server 403 alice #other :"),
        ("PRIVMSG #other :x", ":chat.server 403 alice #other :"),
        ("PRIVMSG", ":chat.server 411 alice :"),
        ("PRIVMSG #chat", ":chat.server 412 alice :"),
        ("PRIVMSG nobody :x", ":chat.server 401 alice nobody :"),
        ("NICK \u{3}04red", ":chat.server 432 alice 04red :"),
        ("NICK bob", ":chat.server 433 alice bob :"),
        ("USER a 0 * :b", ":chat.server 462 alice :"),
        ("KICK #chat bob", ":chat.server 482 alice #chat :"),
        ("TOPIC #chat :new", ":chat.server 482 alice #chat :"),
        ("MODE #chat +m", ":chat.server 482 alice #chat :"),
        ("PART #other", ":chat.server 442 alice #other :"),
        ("1x", ":chat.server 421 alice * :"),
    ] {
        irc.send(line);
        irc.expect(want);
    }
    // Over 512 bytes without tags: 417, and the connection stays.
    irc.send(&format!("PRIVMSG #chat :{}", "x".repeat(600)));
    irc.expect(":chat.server 417 alice :");
    let tags = format!("@+x={}", "y".repeat(4200));
    irc.send(&format!("{tags} PRIVMSG #chat :hi"));
    irc.expect(":chat.server 417 alice :");
    irc.send_raw(&[b'x'; 6000]);
    irc.send_raw(b"\r\n");
    irc.expect(":chat.server 417 alice :");
    irc.send_raw(b"PRIVMSG #chat :\xff\xfe\r\n");
    irc.expect("NOTICE alice :That line was not UTF-8");
    irc.send("PING :ok");
    irc.expect("PONG chat.server :ok");
}

#[test]
fn the_channel_queries_irssi_makes_after_joining() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut irc = irc_member(&mut server, addr, "alice", "");
    bob.expect("JOIN alice");
    irc.send("MODE #chat");
    irc.expect(":chat.server 324 alice #chat +nt");
    irc.send("WHO #chat");
    let mut who = vec![irc.expect(" 352 alice #chat ")];
    who.push(irc.expect(" 352 alice #chat "));
    who.sort();
    assert!(
        who[0].contains(" alice chat.server chat.server alice H :0 alice"),
        "{who:?}"
    );
    assert!(
        who[1].contains(" bob chat.server chat.server bob H :0 bob"),
        "{who:?}"
    );
    irc.expect(":chat.server 315 alice #chat :");
    irc.send("MODE #chat b");
    irc.expect(":chat.server 368 alice #chat :");
    irc.send("NAMES #chat");
    let names = irc.expect(":chat.server 353 alice = #chat :");
    assert!(names.contains("bob") && names.contains("alice"), "{names}");
    irc.expect(" 366 alice #chat :");
    irc.send("TOPIC #chat");
    irc.expect(":chat.server 331 alice #chat :");
    irc.send("WHOIS bob");
    irc.expect(":chat.server 311 alice bob bob chat.server * :bob");
    irc.until(" 318 alice bob ");
    irc.send("MODE alice");
    irc.expect(":chat.server 221 alice +");
    irc.send("MODE alice +i");
    irc.send("LIST");
    irc.expect(" 321 ");
    irc.expect(":chat.server 322 alice #chat 2 :");
    irc.expect(" 323 ");
    irc.send("AWAY :lunch");
    irc.expect(" 306 alice ");
}

#[test]
fn markup_both_ways_with_native_and_netcat_members() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut nc = native(&mut server, "nc");
    bob.expect("JOIN nc");
    let mut irc = irc_member(&mut server, addr, "alice", "");
    bob.expect("JOIN alice");
    nc.expect("JOIN alice");

    // Native -> IRC: markup becomes formatting codes, colors mIRC numbers.
    bob.send_line("**bold** __it__ ~~gone~~ `code` plain");
    irc.expect(":bob!bob@chat.server PRIVMSG #chat :\u{2}bold\u{2} \u{1d}it\u{1d} \u{1e}gone\u{1e} \u{11}code\u{11} plain");
    bob.send_line("/color red all red");
    irc.expect(":bob!bob@chat.server PRIVMSG #chat :\u{3}04all red");
    nc.send_line("/me waves");
    irc.expect(":nc!nc@chat.server PRIVMSG #chat :\u{1}ACTION waves\u{1}");
    bob.send_line("/private alice psst");
    irc.expect(":bob!bob@chat.server PRIVMSG alice :psst");
    nc.expect("MSG bob - **bold**");
    nc.expect("MSG bob red all red");
    bob.expect("ACT nc waves");

    // IRC -> native: codes become markup; what markup cannot hold is dropped, never the words.
    irc.send("PRIVMSG #chat :\u{2}bold\u{2} \u{1d}it\u{1d} \u{1e}gone\u{1e} \u{11}code\u{11} \u{1f}under\u{1f} \u{16}rev\u{16}");
    bob.expect_exact("MSG alice - **bold** __it__ ~~gone~~ `code` under rev");
    nc.expect_exact("MSG alice - **bold** __it__ ~~gone~~ `code` under rev");
    irc.send("PRIVMSG #chat :\u{3}12,01light blue on black");
    bob.expect_exact("MSG alice blue light blue on black");
    nc.expect_exact("MSG alice blue light blue on black");
    irc.send("PRIVMSG #chat :**literal** 2**10");
    bob.expect_exact("MSG alice - \\*\\*literal\\*\\* 2**10");
    nc.expect_exact("MSG alice - \\*\\*literal\\*\\* 2**10");
    irc.send("PRIVMSG #chat :\u{1}ACTION dances\u{1}");
    bob.expect_exact("ACT alice dances");
    nc.expect_exact("ACT alice dances");
    irc.send("PRIVMSG bob :\u{2}private\u{2} hi");
    bob.expect_exact("PRIV alice bob - **private** hi");
    irc.send("NOTICE nc :a notice");
    nc.expect_exact("PRIV alice nc - a notice");
    // Controls, bidi and codes never reach another member.
    irc.send("PRIVMSG #chat :a\u{7}b\u{1b}[31mc\u{202e}d\u{4}ff0000e");
    bob.expect_exact("MSG alice - ab[31mcde");
    nc.expect_exact("MSG alice - ab[31mcde");
    irc.expect_nothing(Duration::from_millis(200));
}

#[test]
fn basic_styles_send_strike_and_code_as_markup_characters() {
    let (mut server, addr) = server(&["--irc-styles", "basic"]);
    let mut bob = native(&mut server, "bob");
    let mut irc = irc_member(&mut server, addr, "alice", "");
    bob.expect("JOIN alice");
    // Bold, italic and color stay codes; strike-through and code are written as markup.
    bob.send_line("**bold** __it__ ~~gone~~ `code` **~~both~~** plain");
    irc.expect(":bob!bob@chat.server PRIVMSG #chat :\u{2}bold\u{2} \u{1d}it\u{1d} ~~gone~~ `code` \u{2}~~both~~\u{2} plain");
    bob.send_line("/color red ~~all~~ red");
    irc.expect(":bob!bob@chat.server PRIVMSG #chat :\u{3}04~~all~~ red");
    // From IRC, the codes are still read; the characters an IRC member types are its own.
    irc.send("PRIVMSG #chat :\u{1e}gone\u{1e} ~~typed~~");
    bob.expect_exact("MSG alice - ~~gone~~ \\~\\~typed\\~\\~");
    // A bad value is refused at start with a message and a non-zero exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--irc-styles", "fancy", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--irc-styles") && err.contains("basic"),
        "{err}"
    );
}

#[test]
fn long_room_lines_reach_irc_split_at_word_boundaries() {
    let (server, addr) = server(&["--auto-approve"]);
    let mut bob = native_auto(&server, "bob");
    let mut irc = Irc::connect(addr, "alice");
    irc.register("alice", "");
    irc.until(" 366 alice ");
    irc.read_token();
    bob.expect("JOIN alice");
    let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    let text = words.join(" ");
    bob.send_line(&format!("**{text}**"));
    let mut got = String::new();
    let mut lines = 0;
    while got.len() < text.len() {
        let line = irc.expect(":bob!bob@chat.server PRIVMSG #chat :\u{2}");
        let body = line.split_once(" :").unwrap().1;
        let piece = body.trim_start_matches('\u{2}');
        if piece.len() + got.len() < text.len() {
            assert!(piece.ends_with(' '), "cut inside a word: {piece:?}");
        }
        got.push_str(piece);
        lines += 1;
    }
    assert_eq!(got, text);
    assert!(lines >= 3, "{lines} lines");
}

#[test]
fn caps_server_time_message_tags_and_echo() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut watcher = native(&mut server, "watcher");
    bob.expect("JOIN watcher");
    bob.send_line("before you came");
    // Delivered means in the history (the store keeps it before anyone sees it).
    watcher.expect_exact("MSG bob - before you came");
    let mut irc = irc_member(
        &mut server,
        addr,
        "alice",
        "server-time message-tags echo-message",
    );
    // History on join carries its time and the room's id of the message.
    let hist = irc.expect(":bob!bob@chat.server PRIVMSG #chat :before you came");
    assert!(hist.starts_with("@time=20"), "{hist}");
    assert!(hist.contains("msgid="), "{hist}");
    bob.expect("JOIN alice");
    bob.send_line("live");
    let live = irc.expect(":bob!bob@chat.server PRIVMSG #chat :live");
    assert!(live.starts_with("@time="), "{live}");
    assert!(live.contains("msgid="), "{live}");
    // echo-message: the sender gets its own line back as the room got it.
    irc.send("PRIVMSG #chat :\u{2}mine\u{2}");
    bob.expect_exact("MSG alice - **mine**");
    let echo = irc.expect(":alice!alice@chat.server PRIVMSG #chat :\u{2}mine");
    assert!(echo.starts_with("@time="), "{echo}");
    // A refused message is not echoed.
    irc.send("PRIVMSG nobody :x");
    irc.expect(" 401 alice nobody ");
    irc.expect_nothing(Duration::from_millis(200));
}

#[test]
fn history_without_server_time_reads_as_history() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut watcher = native(&mut server, "watcher");
    bob.expect("JOIN watcher");
    bob.send_line("old news");
    watcher.expect_exact("MSG bob - old news");
    let mut irc = Irc::connect(addr, "alice");
    irc.register("alice", "");
    server.expect_console("join request: alice");
    server.console("approve alice");
    let hist = irc.until("PRIVMSG #chat :[");
    assert!(
        hist.starts_with(":bob!bob@chat.server PRIVMSG #chat :[20"),
        "{hist}"
    );
    assert!(hist.ends_with("] old news"), "{hist}");
}

#[test]
fn nick_kick_say_part_and_quit() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut irc = irc_member(&mut server, addr, "alice", "");
    bob.expect("JOIN alice");
    let mut carol = irc_member(&mut server, addr, "carol", "");
    bob.expect("JOIN carol");
    irc.expect(":carol!carol@chat.server JOIN #chat");

    irc.send("NICK alicia");
    irc.expect(":alice!alice@chat.server NICK :alicia");
    carol.expect(":alice!alice@chat.server NICK :alicia");
    bob.expect_exact("NICK alice alicia");
    bob.send_line("/nick robert");
    irc.expect(":bob!bob@chat.server NICK :robert");
    bob.expect_exact("NICK bob robert");

    server.console("say maintenance at noon");
    irc.expect(":chat.server NOTICE #chat :operator: maintenance at noon");
    bob.expect_exact("INFO operator: maintenance at noon");

    server.console("kick carol");
    carol.until(":chat.server KICK #chat carol :kicked");
    carol.expect_error_then_close();
    irc.expect(":chat.server KICK #chat carol :");
    bob.expect_exact("LEAVE carol kicked");

    bob.send_line("/leave");
    irc.expect(":robert!robert@chat.server PART #chat :left");
    let mut dan = native(&mut server, "dan");
    irc.expect(":dan!dan@chat.server JOIN #chat");
    irc.send("PART #chat :bye");
    irc.expect_error_then_close();
    dan.expect_exact("LEAVE alicia left");

    let mut eve = irc_member(&mut server, addr, "eve", "");
    dan.expect("JOIN eve");
    eve.send("QUIT :gone");
    eve.expect_error_then_close();
    dan.expect_exact("LEAVE eve left");
    drop(eve);
    let frank = irc_member(&mut server, addr, "frank", "");
    dan.expect("JOIN frank");
    frank.stream.shutdown(std::net::Shutdown::Both).unwrap();
    dan.expect_exact("LEAVE frank quit");
}

#[test]
fn idle_clients_are_pinged_and_silent_ones_dropped() {
    let (server, addr) = server(&["--irc-ping", "0.5", "--auto-approve"]);
    let mut bob = native_auto(&server, "bob");
    let mut irc = Irc::connect(addr, "alice");
    irc.register("alice", "");
    irc.until(" 366 alice ");
    bob.expect("JOIN alice");
    // Answering keeps the connection.
    for _ in 0..2 {
        let ping = irc.until("PING ");
        assert_eq!(ping, "PING :chat.server");
        irc.send("PONG :chat.server");
    }
    // Silence after a PING: dropped, with an ERROR first.
    irc.until("PING ");
    let error = irc.expect_error_then_close();
    assert!(error.contains("ping timeout"), "{error}");
    bob.expect_exact("LEAVE alice dropped");
}

#[test]
fn a_fan_out_to_many_irc_members_is_the_same_bytes() {
    let (server, addr) = server(&["--auto-approve"]);
    let mut bob = native_auto(&server, "bob");
    let mut members: Vec<Irc> = (0..5)
        .map(|i| {
            let nick = format!("m{i}");
            let mut irc = Irc::connect(addr, &nick);
            irc.register(&nick, "");
            irc.until(&format!(" 366 {nick} "));
            irc.read_token();
            bob.expect(&format!("JOIN {nick}"));
            irc
        })
        .collect();
    for (i, m) in members.iter_mut().enumerate() {
        for j in i + 1..5 {
            m.expect(&format!(":m{j}!m{j}@chat.server JOIN #chat"));
        }
    }
    bob.send_line("one line for everyone");
    for m in &mut members {
        m.expect_exact_line(":bob!bob@chat.server PRIVMSG #chat :one line for everyone");
    }
}

impl Irc {
    #[track_caller]
    fn expect_exact_line(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(got, want, "[{}]", self.name);
    }
}

#[test]
fn the_irc_tls_listener_speaks_irc_inside_tls() {
    // A certificate from the test kit's authority (its directory is removed on drop);
    // `openssl s_client` is the member, as a person would.
    let pki = Pki::new("irc-tls");
    pki.install(&pki.leaf("chat irc"));
    let (cert_path, key_path) = (pki.cert_path(), pki.key_path());
    let mut server = Server::start(&[
        "--irc-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
        "--auto-approve",
    ]);
    let line = server.expect_console("listening on ");
    let addr: SocketAddr = line
        .strip_prefix("listening on ")
        .and_then(|l| l.strip_suffix(" (IRC, TLS)"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IRC TLS address in {line:?}"));
    let mut bob = server.login("bob");
    let mut openssl = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl is needed by this test (scripts/test.sh installs it)");
    let mut stdin = openssl.stdin.take().unwrap();
    let mut lines = chat_testkit::PipeLines::spawn(openssl.stdout.take().unwrap());
    stdin
        .write_all(b"NICK tlsuser\r\nUSER tlsuser 0 * :T\r\n")
        .unwrap();
    lines.expect(":chat.server 001 tlsuser :Welcome");
    lines.expect(":chat.server 366 tlsuser #chat :");
    bob.expect_exact("JOIN tlsuser");
    stdin
        .write_all(b"PRIVMSG #chat :over \x02TLS\x02\r\n")
        .unwrap();
    bob.expect_exact("MSG tlsuser - over **TLS**");
    bob.send_line("hello back");
    lines.expect(":bob!bob@chat.server PRIVMSG #chat :hello back");
    let _ = openssl.kill();
    let _ = openssl.wait();
}
