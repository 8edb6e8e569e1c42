//! Protocol version 3 in the client (issue 21), against fake servers: `HELLO 3`, the token
//! kept per server and name in the configuration directory (0600), `RESUME` by itself after a
//! drop (full screen) and at the next run (both interfaces), every missed message shown once
//! with its own time, `GAP` said plainly, `ERROR bad-token` falling back to an ordinary join,
//! and `--forget`.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

use util::screen::Screen;
use util::{fake_server_sessions, Client, Peer};

const TOKEN: &str = "abcdefghijklmnopqrstuvwxyz012345";
const TOKEN2: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA_-9876";
const TOKEN3: &str = "0123456789012345678901234567890123";
const T: &str = "2026-12-01T16:05:09.123Z";

type Script = Box<dyn FnOnce(Peer) + Send>;

/// The tokens file in `dir`, as text.
fn tokens(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tokens")).unwrap_or_default()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A version 3 login with no token: HELLO 3 and the name come at once.
fn v3_join(conn: &mut Peer, token: &str) {
    conn.send("NAME? name please");
    assert_eq!(conn.expect("HELLO"), "HELLO 3");
    assert_eq!(conn.expect("bob"), "bob");
    conn.send("HELLO 3");
    conn.send("WELCOME bob 2");
    conn.send(&format!("TOKEN {token}"));
}

/// A version 3 login with a token: the client waits for HELLO 3, then resumes.
fn v3_resume(conn: &mut Peer, token: &str, last: &str) {
    conn.send("NAME? name please");
    assert_eq!(conn.expect("HELLO"), "HELLO 3");
    conn.send("HELLO 3");
    assert_eq!(conn.expect("RESUME"), format!("RESUME bob {token} {last}"));
}

#[test]
fn the_full_screen_resumes_by_itself_after_a_drop_and_misses_nothing() {
    let scripts: Vec<Script> = vec![
        Box::new(|mut conn| {
            v3_join(&mut conn, TOKEN);
            conn.send(&format!("@id=e1-1;time={T} MSG alice - before the drop"));
            conn.expect("typed before");
            conn.send("ECHO e1-2");
            // The connection drops here.
        }),
        Box::new(|mut conn| {
            v3_resume(&mut conn, TOKEN, "e1-2");
            conn.send("WELCOME bob 2");
            conn.send(&format!("TOKEN {TOKEN2}"));
            conn.send(&format!(
                "@id=e1-2;time={T} HIST {T} MSG bob - typed before"
            ));
            conn.send(&format!(
                "@id=e1-3;time={T} HIST {T} MSG alice - missed while away"
            ));
            conn.send("INFO online (2): alice, bob");
            conn.send(&format!("@id=e1-4;time={T} MSG alice - after the resume"));
            conn.expect("/leave");
            conn.send("BYE goodbye");
        }),
    ];
    let (addr, script) = fake_server_sessions(scripts);
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().to_str().unwrap();
    let mut screen = Screen::start(
        &["--name", "bob", &addr],
        &[("CHAT_CONFIG_DIR", dir), ("NO_COLOR", "1")],
        30,
        100,
    );
    screen.wait_text("before the drop");
    assert!(tokens(config.path()).contains(&format!(" bob {TOKEN} ")));
    screen.keys("typed before\r");
    let rows = screen.wait_text("after the resume");
    let count = |needle: &str| rows.iter().filter(|r| r.contains(needle)).count();
    for once in [
        "before the drop",
        "typed before",
        "missed while away",
        "after the resume",
    ] {
        assert_eq!(count(once), 1, "{once:?} once in {rows:#?}");
    }
    // The missed message has the tag's time (TZ=UTC), and comes before the live one.
    let missed = rows
        .iter()
        .position(|r| r.contains("missed while away"))
        .unwrap();
    assert!(rows[missed].starts_with("16:05"), "{rows:#?}");
    assert!(
        missed
            < rows
                .iter()
                .position(|r| r.contains("after the resume"))
                .unwrap()
    );
    assert!(tokens(config.path()).contains(&format!(" bob {TOKEN2} ")));
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
    script.join().unwrap();
    // The last id goes with the token at exit, for the next run.
    let kept = tokens(config.path());
    assert!(
        kept.contains(&format!("{addr} bob {TOKEN2} e1-4")),
        "{kept}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&config.path().join("tokens")), 0o600);
}

#[test]
fn line_mode_resumes_at_the_next_run_says_a_gap_and_forgets_on_request() {
    let scripts: Vec<Script> = vec![
        Box::new(|mut conn| {
            v3_join(&mut conn, TOKEN);
            conn.send(&format!("@id=e1-1;time={T} MSG alice - first run"));
            conn.send("INFO end of run");
            conn.expect("/leave");
            conn.send("BYE goodbye");
        }),
        Box::new(|mut conn| {
            v3_resume(&mut conn, TOKEN, "e1-1");
            conn.send("WELCOME bob 2");
            conn.send(&format!("TOKEN {TOKEN2}"));
            conn.send("GAP messages between e1-1 and e1-7 are no longer kept");
            conn.send(&format!("@id=e1-7;time={T} HIST {T} MSG alice - missed"));
            conn.send(&format!(
                "@id=e1-8;time={T} HIST {T} PRIV alice bob - for you"
            ));
            conn.send("INFO end of run");
            conn.expect("/leave");
            conn.send("BYE goodbye");
        }),
        Box::new(|mut conn| {
            // --forget: an ordinary join, no RESUME.
            v3_join(&mut conn, TOKEN3);
            conn.send("INFO end of run");
            conn.expect("/leave");
            conn.send("BYE goodbye");
        }),
    ];
    let (addr, script) = fake_server_sessions(scripts);
    let config = tempfile::tempdir().unwrap();
    let env = [("CHAT_CONFIG_DIR", config.path().to_str().unwrap())];
    let run = |extra: &[&str]| {
        let mut args = vec!["--name", "bob"];
        args.extend_from_slice(extra);
        args.push(&addr);
        let mut client = Client::start(&args, &env);
        client.stdout.expect("-- end of run");
        client.close_stdin();
        let (code, stderr) = client.wait();
        assert_eq!(code, 0, "{stderr}");
        client.stdout.seen.clone()
    };
    let first = run(&[]);
    assert!(
        first.contains(&"<alice> first run".to_owned()),
        "{first:#?}"
    );
    assert!(tokens(config.path()).contains(&format!("{addr} bob {TOKEN} e1-1")));
    #[cfg(unix)]
    assert_eq!(mode(&config.path().join("tokens")), 0o600);

    let second = run(&[]);
    let from = second
        .iter()
        .position(|l| l.starts_with("-- you are in"))
        .unwrap();
    assert_eq!(
        &second[from + 1..],
        [
            "! some messages were missed while you were away: messages between e1-1 and e1-7 are no longer kept".to_owned(),
            format!("[{T}] <alice> missed"),
            format!("[{T}] [private] <alice -> you> for you"),
            "-- end of run".to_owned(),
        ]
    );
    assert!(tokens(config.path()).contains(&format!("{addr} bob {TOKEN2} e1-8")));

    let third = run(&["--forget"]);
    assert!(
        third.iter().any(|l| l.contains("forgot 1 session token")),
        "{third:#?}"
    );
    // The new member's token is kept again.
    assert!(tokens(config.path()).contains(&format!("{addr} bob {TOKEN3} -")));
    assert!(!tokens(config.path()).contains(TOKEN2));
    script.join().unwrap();
}

#[test]
fn a_refused_token_is_dropped_and_the_join_goes_on_as_usual() {
    let scripts: Vec<Script> = vec![Box::new(|mut conn| {
        v3_resume(&mut conn, TOKEN, "e1-3");
        conn.send("ERROR bad-token unknown or expired token");
        conn.send("NAME? name please");
        assert_eq!(conn.expect("bob"), "bob");
        conn.send("WELCOME bob 1");
        conn.send(&format!("TOKEN {TOKEN2}"));
        conn.send("INFO end of run");
        conn.expect("/leave");
        conn.send("BYE goodbye");
    })];
    let (addr, script) = fake_server_sessions(scripts);
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("tokens"),
        format!("{addr} bob {TOKEN} e1-3\nelsewhere:1 bob {TOKEN3} -\n"),
    )
    .unwrap();
    let env = [("CHAT_CONFIG_DIR", config.path().to_str().unwrap())];
    let mut client = Client::start(&["--name", "bob", &addr], &env);
    client
        .stdout
        .expect("-- the session could not be resumed (unknown or expired token); joining again");
    client.stdout.expect("-- you are in as bob");
    client.stdout.expect("-- end of run");
    client.close_stdin();
    assert_eq!(client.wait().0, 0);
    script.join().unwrap();
    let kept = tokens(config.path());
    assert!(kept.contains(&format!("{addr} bob {TOKEN2} -")), "{kept}");
    assert!(!kept.contains(&format!("{addr} bob {TOKEN} ")), "{kept}");
    assert!(
        kept.contains(&format!("elsewhere:1 bob {TOKEN3} -")),
        "other servers' stay"
    );
}
