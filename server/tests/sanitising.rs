//! What peers may not smuggle through, against the real `chat-server` binary: terminal escapes
//! never reach members or the console (under load), and U+2028/U+2029 (line and paragraph
//! separators) are removed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chat_common::sanitize::is_forbidden;
use chat_testkit::{
    expect_fds_back, expect_memory_bounded, fd_count, light, rss_kib, End, Server,
    FAULT_RSS_BUDGET_KIB, SETTLE,
};

/// Raw bytes that must never reach a member or the console from a peer.
fn hostile_texts() -> Vec<String> {
    vec![
        "\u{1b}[2J\u{1b}[Hcleared".into(),       // CSI: clear screen, home
        "\u{1b}]0;pwned title\u{7}after".into(), // OSC title + BEL
        "\u{1b}]8;;http://evil/\u{1b}\\link\u{1b}]8;;\u{1b}\\".into(), // OSC 8 hyperlink, ST
        "bell\u{7}\u{7}\u{7}".into(),            // BEL
        "c1 \u{9b}31m red \u{9d}0;t\u{9c} \u{85}".into(), // C1 CSI, OSC, ST, NEL
        "bidi \u{202e}desrever\u{202c} \u{2066}iso\u{2069}".into(),
        "del\u{7f}and nul\u{0} and cr\r mid".into(),
        "/color red \u{1b}[5mblink".into(),
        "//\u{1b}[31mslash".into(),
    ]
}

#[test]
fn terminal_escapes_never_reach_members_or_the_console() {
    let _lock = light();
    let mut server = Server::start(&[]);
    // Names with escapes, controls, bidi and zero-width characters are refused, and the refusal
    // itself carries none of them; none is announced to the operator.
    let mut probe = server.connect_prompted();
    let bad_names = [
        "ev\u{1b}[31mil",
        "\u{1b}]0;x\u{7}",
        "a\u{7}b",
        "c1\u{9b}x",
        "\u{202e}kcab",
        "zero\u{200b}width",
        "zw\u{200d}j",
        "bom\u{feff}",
        "wj\u{2060}x",
    ];
    for name in bad_names {
        probe.send_line(name);
        let err = probe.expect("ERROR bad-name ");
        assert!(!err.chars().any(is_forbidden), "the refusal echoes {err:?}");
        assert!(
            !err.contains(['\u{200b}', '\u{200d}', '\u{feff}', '\u{2060}']),
            "the refusal echoes an invisible character: {err:?}"
        );
        probe.expect("NAME? ");
    }
    // Mallory, who tried them all, now asks with a valid name; alice and bob join too.
    let mut mallory = probe;
    mallory.send_line("mallory");
    mallory.expect("WAIT ");
    let announced = server.expect_console("join request: mallory from ");
    assert!(!announced.chars().any(is_forbidden), "{announced:?}");
    server.console("approve mallory");
    server.expect_console("approved mallory ");
    mallory.expect_welcome("mallory");
    let mut admit = |name: &str| {
        let (mut c, announced) = server.join_waiting(name);
        assert!(!announced.chars().any(is_forbidden), "{announced:?}");
        server.console(&format!("approve {name}"));
        server.expect_console(&format!("approved {name} "));
        c.expect_welcome(name);
        c
    };
    let mut alice = admit("alice");
    let mut bob = admit("bob");
    alice.skip_until("JOIN bob");
    mallory.skip_until("JOIN bob");
    let baseline = fd_count(server.pid());
    let rss_before = rss_kib(server.pid());

    for text in hostile_texts() {
        mallory.send_raw(format!("{text}\n").as_bytes());
        mallory.send_raw(format!("/private alice {text}\n").as_bytes());
        mallory.send_raw(format!("/private \u{1b}[2Jalice {text}\n").as_bytes());
    }
    mallory.send_line("marker");
    for c in [&mut alice, &mut bob] {
        let mut lines = Vec::new();
        loop {
            let line = c.next_line();
            if line == "MSG mallory - marker" {
                break;
            }
            lines.push(line);
        }
        for line in &lines {
            assert!(
                !line.chars().any(is_forbidden),
                "[{}] received {line:?}",
                c.name
            );
        }
        // Everything was delivered, defused: nine room lines each, nine private ones for alice.
        let rooms = lines
            .iter()
            .filter(|l| l.starts_with("MSG mallory "))
            .count();
        let privs = lines.iter().filter(|l| l.starts_with("PRIV ")).count();
        assert_eq!(rooms, hostile_texts().len(), "[{}] {lines:#?}", c.name);
        let want_privs = if c.name == "alice" {
            hostile_texts().len()
        } else {
            0
        };
        assert_eq!(privs, want_privs, "[{}] {lines:#?}", c.name);
        assert!(lines.iter().any(|l| l.contains("cleared")), "{lines:#?}");
    }
    // Mallory's error replies (the escape-laden recipient) carry no controls either.
    let mut errors = 0;
    loop {
        match mallory.try_next_line(Duration::from_millis(300)) {
            Ok(line) => {
                assert!(!line.chars().any(is_forbidden), "mallory got {line:?}");
                errors += 1;
            }
            Err(End::Timeout) => break,
            Err(e) => panic!("mallory: {e:?}"),
        }
    }
    assert!(errors > 0, "no error for the escape-laden recipient");

    // The console never showed a control character, whatever the peers did.
    server.console("who");
    server.console("pending");
    server.expect_console("pending: ");
    drop(mallory);
    server.expect_console("left mallory (quit)");
    server.drain_console(Duration::from_millis(100));
    for line in server.console_history() {
        assert!(!line.chars().any(is_forbidden), "console showed {line:?}");
        assert!(
            !["[31m", "kcab", "width", "bom", "wjx"]
                .iter()
                .any(|part| line.contains(part)),
            "console named a refused name: {line:?}"
        );
    }
    expect_fds_back(&server, baseline - 1, SETTLE);
    expect_memory_bounded(&server, "escapes", rss_before, FAULT_RSS_BUDGET_KIB);
    drop((alice, bob));
}

#[test]
fn line_and_paragraph_separators_are_removed() {
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    a.send_line("one\u{2028}two\u{2029}three");
    b.expect_exact("MSG a - onetwothree");
    a.send_line("/color red r\u{2028}ed");
    b.expect_exact("MSG a red red");
    a.send_line("/me wa\u{2029}ves");
    b.expect_exact("ACT a waves");
    a.send_line("/private b p\u{2028}s\u{2029}st");
    b.expect_exact("PRIV a b - psst");
    // A line of separators only is blank after removal: nothing is sent.
    a.send_line("\u{2028}\u{2029}");
    a.send_line("marker");
    b.expect_exact("MSG a - marker");
    let mut c = server.connect_prompted();
    c.send_line("li\u{2028}ne");
    c.expect("ERROR bad-name ");
}
