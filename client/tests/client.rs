//! The real `chat-client` binary against the real `chat-server` (and, for what a real server
//! never sends, a scripted fake one), with pipes for its standard streams: plain line mode.
//! Exit statuses are those of `client/src/exit.rs`.
#![allow(clippy::unwrap_used)]

mod util;

use util::{fake_server, Client, Console, Peer, Server};

const SUCCESS: i32 = 0;
const USAGE: i32 = 2;
const UNREACHABLE: i32 = 3;
const REFUSED: i32 = 4;
const REMOVED: i32 = 5;
const LOST: i32 = 6;

/// Starts a client named `name` on `server` and waits until it is admitted.
fn joined(server: &Server, name: &str, extra: &[&str]) -> Client {
    let mut args = vec!["--name", name];
    args.extend_from_slice(extra);
    args.push(&server.addr);
    let mut client = Client::start(&args, &[]);
    client.stdout.expect(&format!("you are in as {name}"));
    client
}

#[test]
fn messages_flow_both_ways_and_leave_exits_zero() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob", &[]);
    alice.expect("JOIN bob");

    // A line of only whitespace says nothing: neither sent nor echoed.
    bob.type_line("\u{a0} \u{3000}");
    bob.type_line("hello **alice**");
    assert_eq!(alice.expect("MSG "), "MSG bob - hello **alice**");
    // Echoed locally; no styles into a pipe, so the markup stays visible as typed.
    assert_eq!(bob.stdout.expect("<bob>"), "<bob> hello **alice**");

    alice.send("hi bob");
    assert_eq!(bob.stdout.expect("<alice>"), "<alice> hi bob");

    bob.type_line("/leave");
    alice.expect("LEAVE bob left");
    let (code, stderr) = bob.wait();
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    assert!(bob.stdout.rest().iter().any(|l| l.starts_with("-- bye:")));
}

#[test]
fn joins_and_leaves_are_shown_with_their_reason() {
    let mut server = Server::start(true, Console::Piped);
    let mut bob = joined(&server, "bob", &[]);
    let mut carol = Peer::join(&server.addr, "carol");
    assert_eq!(bob.stdout.expect("carol"), "* carol joined");
    carol.send("/leave");
    assert_eq!(bob.stdout.expect("carol left"), "* carol left");
    let _dave = Peer::join(&server.addr, "dave");
    bob.stdout.expect("* dave joined");
    server.console("kick dave");
    assert_eq!(bob.stdout.expect("dave left"), "* dave left (kicked)");
}

#[test]
fn private_messages_are_marked_both_ways() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob", &[]);
    alice.expect("JOIN bob");

    alice.send("/private bob psst");
    assert_eq!(
        bob.stdout.expect("[private]"),
        "[private] <alice -> you> psst"
    );

    bob.type_line("/private alice /color green hey there");
    assert_eq!(alice.expect("PRIV "), "PRIV bob alice green hey there");
    assert_eq!(
        bob.stdout.expect("<you -> alice>"),
        "[private] <you -> alice> hey there"
    );
}

#[test]
fn colors_and_markup_are_styled_only_when_asked() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut always = joined(&server, "always", &["--color", "always"]);
    let mut piped = joined(&server, "piped", &[]);
    let mut never = joined(&server, "never", &["--color", "never"]);
    let mut no_color = Client::start(
        &["--name", "nocolor", "--color", "always", &server.addr],
        &[("NO_COLOR", "1")],
    );
    no_color.stdout.expect("you are in as nocolor");
    alice.expect("JOIN nocolor");

    alice.send("/color red **hi** there");
    let styled = "<alice> \x1b[0m\x1b[1m\x1b[31mhi\x1b[0m\x1b[0m\x1b[31m there\x1b[0m";
    assert_eq!(always.stdout.expect("<alice>"), styled);
    // --color always overrides NO_COLOR.
    assert_eq!(no_color.stdout.expect("<alice>"), styled);
    assert_eq!(piped.stdout.expect("<alice>"), "<alice> **hi** there");
    assert_eq!(never.stdout.expect("<alice>"), "<alice> **hi** there");

    // Not one escape byte anywhere when output is not a terminal, or with --color never.
    for client in [&mut piped, &mut never] {
        client.type_line("/leave");
        assert_eq!(client.wait().0, SUCCESS);
        let all = client.stdout.rest().join("\n");
        assert!(!all.contains('\x1b'), "{all:?}");
    }
}

#[test]
fn end_of_input_leaves_with_status_zero() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob", &[]);
    bob.type_line("last words");
    bob.close_stdin();
    assert_eq!(alice.expect("MSG "), "MSG bob - last words");
    alice.expect("LEAVE bob left");
    let (code, stderr) = bob.wait();
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn scripted_lines_are_sent_in_order() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = Client::start(&["--name", "bob", &server.addr], &[]);
    for i in 0..20 {
        bob.type_line(&format!("line {i}"));
    }
    bob.type_line("/leave");
    for i in 0..20 {
        assert_eq!(alice.expect("MSG "), format!("MSG bob - line {i}"));
    }
    alice.expect("LEAVE bob left");
    assert_eq!(bob.wait().0, SUCCESS);
}

#[test]
fn a_taken_name_given_with_the_flag_exits_refused() {
    let server = Server::start(true, Console::Closed);
    let _alice = Peer::join(&server.addr, "alice");
    let mut client = Client::start(&["--name", "ALICE", &server.addr], &[]);
    let (code, stderr) = client.wait();
    assert_eq!(code, REFUSED);
    assert!(
        stderr.starts_with("chat-client: name \"ALICE\" refused: ")
            && stderr.contains("name-taken"),
        "{stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}

#[test]
fn a_name_from_standard_input_is_used_when_not_given() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut client = Client::start(&[&server.addr], &[]);
    client.type_line("carol");
    client.type_line("hey");
    client.type_line("/leave");
    alice.expect("JOIN carol");
    assert_eq!(alice.expect("MSG "), "MSG carol - hey");
    assert_eq!(client.wait().0, SUCCESS);
}

#[test]
fn a_refused_name_from_a_pipe_exits_refused() {
    let server = Server::start(true, Console::Closed);
    let _alice = Peer::join(&server.addr, "alice");
    let mut client = Client::start(&[&server.addr], &[]);
    client.type_line("alice");
    client.type_line("another");
    let (code, stderr) = client.wait();
    assert_eq!(code, REFUSED);
    assert!(stderr.contains("name-taken"), "{stderr:?}");
}

#[test]
fn an_invalid_name_flag_is_a_usage_error() {
    let mut client = Client::start(&["--name", "not valid", "127.0.0.1:1"], &[]);
    let (code, stderr) = client.wait();
    assert_eq!(code, USAGE);
    assert!(stderr.contains("--name"), "{stderr:?}");
}

#[test]
fn an_unreachable_server_exits_with_the_reason() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut client = Client::start(&["--name", "bob", &addr], &[]);
    let (code, stderr) = client.wait();
    assert_eq!(code, UNREACHABLE);
    assert_eq!(
        stderr,
        format!("chat-client: cannot connect to {addr}: Connection refused")
    );
}

#[test]
fn a_denied_join_exits_refused() {
    let mut server = Server::start(false, Console::Closed);
    // Joins are denied at once only after the server has seen its console close.
    server.expect_console("console closed");
    let mut client = Client::start(&["--name", "bob", &server.addr], &[]);
    let (code, stderr) = client.wait();
    assert_eq!(code, REFUSED);
    assert!(stderr.starts_with("chat-client: refused: "), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
}

#[test]
fn lines_typed_before_admission_are_held_until_welcome() {
    let mut server = Server::start(false, Console::Piped);
    let mut alice = Peer::connect(&server.addr);
    alice.expect("NAME?");
    alice.send("alice");
    alice.expect("WAIT ");
    server.console("approve alice");
    alice.expect("WELCOME ");

    let mut bob = Client::start(&["--name", "bob", &server.addr], &[]);
    bob.type_line("said while waiting");
    server.expect_console("join request: bob");
    bob.stdout.expect("waiting for approval");
    server.console("approve bob");
    alice.expect("JOIN bob");
    assert_eq!(alice.expect("MSG "), "MSG bob - said while waiting");
    bob.stdout.expect("you are in as bob");
    bob.type_line("/leave");
    assert_eq!(bob.wait().0, SUCCESS);
    let out = bob.stdout.rest();
    assert!(
        !out.iter().any(|l| l.contains("not-admitted")),
        "a held line was sent before admission: {out:#?}"
    );
}

#[test]
fn a_kick_exits_removed() {
    let mut server = Server::start(true, Console::Piped);
    let mut bob = joined(&server, "bob", &[]);
    server.console("kick bob");
    let (code, stderr) = bob.wait();
    assert_eq!(code, REMOVED);
    assert_eq!(
        stderr,
        "chat-client: the server ended the session: kicked by the operator"
    );
}

#[test]
fn a_server_shutdown_exits_removed() {
    let mut server = Server::start(true, Console::Piped);
    let mut bob = joined(&server, "bob", &[]);
    server.console("quit");
    let (code, stderr) = bob.wait();
    assert_eq!(code, REMOVED);
    assert!(stderr.contains("shutting down"), "{stderr:?}");
}

#[test]
fn a_connection_closed_without_bye_exits_lost() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? name please");
        assert_eq!(conn.expect("bob"), "bob");
        conn.send("WELCOME bob 1");
        // Dropping the connection closes it without a BYE.
    });
    let mut bob = Client::start(&["--name", "bob", &addr], &[]);
    let (code, stderr) = bob.wait();
    script.join().unwrap();
    assert_eq!(code, LOST);
    assert_eq!(stderr, "chat-client: the server closed the connection");
}

#[test]
fn being_dropped_by_the_server_exits_lost() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 2");
        conn.send("LEAVE bob dropped");
        // The connection stays open: the LEAVE alone must end the session.
        conn.expect_closed();
    });
    let mut bob = Client::start(&["--name", "bob", &addr], &[]);
    let (code, stderr) = bob.wait();
    assert_eq!(code, LOST);
    assert_eq!(stderr, "chat-client: the server dropped you (dropped)");
    script.join().unwrap();
}

#[test]
fn hostile_server_lines_are_defused() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? \x1b]0;title\x07pick a name\u{9b}2J");
        conn.expect("bob");
        conn.send("WELCOME bob 2");
        conn.send("MSG evil - \x1b[2Jwiped\x1b]52;c;Y2xpcA==\x07 \u{202e}gnp.exe");
        conn.send("PRIV evil bob red \x1b[31m**x**\u{85}");
        conn.send("INFO \x07bell\x1b[?1049h");
        conn.send("HELLO \x1b[1mnot a tag");
        conn.send("MSG bad!name - spoof");
        conn.send("BYE \x1b[5mbye");
    });
    let mut bob = Client::start(&["--name", "bob", "--color", "always", &addr], &[]);
    let (code, stderr) = bob.wait();
    script.join().unwrap();
    assert_eq!(code, REMOVED);
    let out = bob.stdout.rest();
    let want = [
        "<evil> [2Jwiped]52;c;Y2xpcA== gnp.exe",
        // `**` right after a letter opens nothing (markers work at word edges only).
        "\x1b[0m\x1b[1m\x1b[35m[private]\x1b[0m <evil -> you> \x1b[0m\x1b[31m[31m**x**\x1b[0m",
        "-- bell[?1049h",
        "?? HELLO [1mnot a tag",
        "?? MSG bad!name - spoof",
    ];
    for line in want {
        assert!(
            out.iter().any(|l| l == line),
            "missing {line:?} in {out:#?}"
        );
    }
    // Only SGR sequences written by the renderer remain; no BEL, OSC, C1 or bidi override.
    let all = out.join("\n") + &stderr;
    for bad in ['\x07', '\u{9b}', '\u{85}', '\u{202e}'] {
        assert!(!all.contains(bad), "{bad:?} in {all:?}");
    }
    assert!(!all.contains("\x1b]") && !all.contains("\x1b[2J") && !all.contains("\x1b[?"));
}

#[test]
fn short_and_long_help_agree_and_list_every_flag() {
    let help = |flag: &str| {
        let out = std::process::Command::new(util::client_bin())
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let short = help("-h");
    assert_eq!(short, help("--help"));
    for flag in [
        "--name",
        "--color",
        "--plain",
        "--no-bell",
        "--no-mouse",
        "Ctrl-R",
        "PgUp",
    ] {
        assert!(short.contains(flag), "{flag} missing from:\n{short}");
    }
}

#[test]
fn a_host_without_a_port_means_port_55555() {
    // Whether or not something listens there, the client says where it connects first.
    let mut client = Client::start(&["--name", "bob", "127.0.0.1"], &[]);
    assert_eq!(
        client.stdout.expect("connecting"),
        "-- connecting to 127.0.0.1:55555..."
    );
}
