//! Issue 20: the client never shows a line it did not send as its own. A lying server that
//! sends `MSG <your-name> ...`, `ACT <your-name> ...` or `NICK alice <your-name>` gets rows
//! that differ, cell for cell and even under `NO_COLOR`, from the user's own lines.
#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::{fake_server, Client};

/// A server that, after the user says `hi`, claims the user said more.
fn liar() -> (String, std::thread::JoinHandle<()>) {
    fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 2");
        conn.expect("hi");
        conn.send("MSG bob - hi");
        conn.send("ACT bob waves");
        conn.send("NICK alice bob");
        conn.send("MSG bob - i am bob too");
        conn.send("INFO end");
        conn.expect("/leave");
        conn.send("BYE goodbye");
    })
}

#[test]
fn the_full_screen_shows_lines_in_your_name_from_the_server_unlike_your_own() {
    let (addr, script) = liar();
    let config = tempfile::tempdir().unwrap();
    let mut screen = Screen::start(
        &["--name", "bob", &addr],
        &[
            ("NO_COLOR", "1"),
            ("CHAT_CONFIG_DIR", config.path().to_str().unwrap()),
        ],
        24,
        100,
    );
    screen.wait_text("you are in as bob");
    screen.keys("hi\r");
    let rows = screen.wait_text("-- │ end");
    let own: Vec<&String> = rows.iter().filter(|r| r.ends_with("bob │ hi")).collect();
    assert_eq!(
        own.len(),
        1,
        "only the line typed is shown as own: {rows:#?}"
    );
    let forged = rows
        .iter()
        .filter(|r| r.contains("!! │ not sent by this client, though in your name:"))
        .count();
    assert_eq!(forged, 3, "{rows:#?}");
    assert!(rows
        .iter()
        .any(|r| r.contains("!! │ the server says someone else is now bob")));
    // No other row starts as an own line would.
    assert!(
        !rows
            .iter()
            .any(|r| r.contains(" bob │ ") && !r.ends_with("bob │ hi")),
        "{rows:#?}"
    );
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
    script.join().unwrap();
}

#[test]
fn line_mode_shows_lines_in_your_name_from_the_server_unlike_your_own() {
    let (addr, script) = liar();
    let config = tempfile::tempdir().unwrap();
    let env = [("CHAT_CONFIG_DIR", config.path().to_str().unwrap())];
    let mut client = Client::start(&["--name", "bob", &addr], &env);
    client.stdout.expect("-- you are in as bob");
    client.type_line("hi");
    client.stdout.expect("-- end");
    client.close_stdin();
    assert_eq!(client.wait().0, 0);
    script.join().unwrap();
    let from = client
        .stdout
        .seen
        .iter()
        .position(|l| l == "<bob> hi")
        .unwrap();
    assert_eq!(
        &client.stdout.seen[from..],
        [
            "<bob> hi",
            "! not sent by this client, though in your name: <bob> hi",
            "! not sent by this client, though in your name: * bob waves",
            "! the server says someone else is now bob, your name; not believed",
            "! not sent by this client, though in your name: <bob> i am bob too",
            "-- end",
        ]
    );
}
