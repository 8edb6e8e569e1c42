//! Durable state (`--data-dir`): what any member saw survives `kill -9`, ids are never reused,
//! bans and remembered members outlive a restart, one server per directory, and a corrupt,
//! unwritable or full directory is a clear error that loses nothing already kept. The real
//! binary over real sockets.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chat_common::protocol::v3::split_tags;
use chat_testkit::{Client, End, Server, TempDir};

#[track_caller]
fn hello_login(server: &Server, name: &str) -> (Client, String) {
    let mut c = server.connect();
    c.expect("NAME? ");
    c.send_line("HELLO 3");
    c.expect_exact("HELLO 3");
    c.send_line(name);
    c.expect_welcome(name);
    let token = c.expect("TOKEN ")["TOKEN ".len()..].to_owned();
    (c, token)
}

/// The id and the version 2 body of a tagged `MSG`/`HIST` line.
fn id_and_body(line: &str) -> Option<(String, String)> {
    let (tags, rest) = split_tags(line);
    Some((tags?.id()?.to_owned(), rest.to_owned()))
}

fn seq_of(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_flood_keeps_every_message_any_member_received_and_reuses_no_id() {
    let dir = TempDir::new("durable-kill9");
    let args = [
        "--auto-approve",
        "--rate",
        "0",
        "--data-dir",
        dir.arg(),
        "--history",
        "100000",
    ];
    let server = Server::start(&args);
    let (mut reader, _) = hello_login(&server, "reader");
    let sender = server.login("sender");
    reader.expect("JOIN sender");
    let flood = std::thread::spawn(move || {
        let sender = sender;
        for i in 0..5000 {
            if std::io::Write::write_all(&mut sender.stream(), format!("flood {i}\n").as_bytes())
                .is_err()
            {
                break;
            }
        }
        sender
    });
    let mut seen = Vec::new();
    while seen.len() < 300 {
        let line = reader.next_line();
        if let Some((id, body)) = id_and_body(&line) {
            seen.push((id, body));
        }
    }
    // kill -9 in the middle of the flood.
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Whatever else arrived before the socket died was seen too.
    loop {
        match reader.try_next_line(Duration::from_secs(5)) {
            Ok(line) => {
                if let Some(x) = id_and_body(&line) {
                    seen.push(x);
                }
            }
            Err(End::Timeout) => panic!("the killed server's socket stayed open"),
            Err(_) => break,
        }
    }
    let _ = flood.join();
    drop(server);

    let server = Server::start(&args);
    let (mut newcomer, _) = {
        let mut c = server.connect();
        c.expect("NAME? ");
        c.send_line("HELLO 3");
        c.expect_exact("HELLO 3");
        c.send_line("late");
        c.expect_welcome("late");
        (c, ())
    };
    newcomer.expect("TOKEN ");
    newcomer.send_line("/who");
    let mut history = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "history did not end");
        let line = newcomer.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        if let Some((id, body)) = id_and_body(&line) {
            history.push((id, body));
        }
    }
    let kept: HashSet<&str> = history.iter().map(|(id, _)| id.as_str()).collect();
    for (id, body) in &seen {
        assert!(
            kept.contains(id.as_str()),
            "{id} ({body}) was seen but is not kept"
        );
    }
    let max_seen = seen.iter().map(|(id, _)| seq_of(id)).max().unwrap_or(0);
    let mut sender = server.login("sender2");
    newcomer.expect("JOIN sender2");
    sender.send_line("after the crash");
    let (id, body) = id_and_body(&newcomer.next_line()).expect("a tagged line");
    assert_eq!(body, "MSG sender2 - after the crash");
    assert!(!kept.contains(id.as_str()), "id {id} reused");
    assert!(seq_of(&id) > max_seen, "{id} is not after {max_seen}");
    eprintln!(
        "kill -9 mid-flood: {} seen before the kill, {} kept, new id {id}",
        seen.len(),
        history.len()
    );
}

#[test]
fn bans_and_remembered_members_outlive_a_restart() {
    let dir = TempDir::new("durable-restart");
    let args = ["--auto-approve", "--data-dir", dir.arg()];
    let mut server = Server::start(&args);
    let (alice, token) = hello_login(&server, "alice");
    drop(alice);
    server.console("ban 127.0.0.9");
    server.expect_console("banned 127.0.0.9");
    // A message delivered after the ban is durable after it (the store keeps order).
    let mut m1 = server.login("m1");
    let mut m2 = server.login("m2");
    m1.expect("JOIN m2");
    m1.send_line("after the ban");
    m2.expect_exact("MSG m1 - after the ban");
    drop(server);
    let mut server = Server::start(&args);
    server.console("bans");
    server.expect_console("  127.0.0.9");
    server.console("members");
    server.expect_console("  alice");
    let mut c = server.connect();
    c.expect("NAME? ");
    c.send_line("HELLO 3");
    c.expect_exact("HELLO 3");
    c.send_line(&format!("RESUME alice {token} -"));
    c.expect_welcome("alice");
}

#[test]
fn a_second_server_on_the_directory_is_refused_naming_the_first() {
    let dir = TempDir::new("durable-lock");
    let server = Server::start(&["--data-dir", dir.arg()]);
    let (status, _, err) = Server::run_to_exit(
        &["--listen", "127.0.0.1:0", "--data-dir", dir.arg()],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("pid {}", server.pid())), "{err}");
}

#[test]
fn a_corrupt_store_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("durable-corrupt");
    let file = dir.path().join("chat.redb");
    let junk: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&file, &junk).unwrap_or(());
    let (status, _, err) = Server::run_to_exit(
        &["--listen", "127.0.0.1:0", "--data-dir", dir.arg()],
        Duration::from_secs(10),
    );
    assert_ne!(status.code(), Some(0), "{err}");
    assert!(err.contains("chat.redb"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap_or_default(), junk);
}

#[test]
fn an_unusable_data_directory_is_a_clear_error() {
    let dir = TempDir::new("durable-unusable");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap_or(());
    let below = file.join("store");
    let (status, _, err) = Server::run_to_exit(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            below.to_str().unwrap_or(""),
        ],
        Duration::from_secs(10),
    );
    assert_ne!(status.code(), Some(0), "{err}");
    assert!(err.contains("data directory"), "{err}");
}

/// A full disk: the server runs under `ulimit -f` (a file-size limit, which needs no root and
/// fails writes with EFBIG as a full disk fails them with ENOSPC), SIGXFSZ ignored so the write
/// fails instead of killing the process. Members get `ERROR unavailable`, the console says so,
/// and what was kept before is still there after a restart without the limit.
#[test]
fn a_full_disk_refuses_messages_loudly_and_keeps_what_was_kept() {
    let dir = TempDir::new("durable-full");
    let args = [
        "--auto-approve",
        "--rate",
        "0",
        "--data-dir",
        dir.arg(),
        "--history",
        "100000",
        // The history of big lines must fit a newcomer's queue (history is not paced yet).
        "--max-queue",
        "67108864",
    ];
    let mut server = Server::builder()
        .wrapper(&[
            "sh",
            "-c",
            "trap '' XFSZ; ulimit -f 6144; exec \"$@\"",
            "sh",
        ])
        .args(&args)
        .start();
    let mut a = server.login("writer");
    let (mut r, _) = hello_login(&server, "reader");
    let filler = "x".repeat(3000);
    let mut delivered = 0u32;
    let mut refused = false;
    for i in 0..5000u32 {
        a.send_line(&format!("{i} {filler}"));
        if i % 50 == 49 {
            // Let the store answer: read what reached the reader or an error to the writer.
            match a.try_next_line(Duration::from_millis(200)) {
                Ok(line) if line.starts_with("ERROR unavailable") => {
                    refused = true;
                    break;
                }
                _ => {}
            }
        }
    }
    assert!(refused, "the writer never got ERROR unavailable");
    server.expect_console("store:");
    while let Ok(line) = r.try_next_line(Duration::from_millis(500)) {
        if line.contains("MSG writer") {
            delivered += 1;
        }
    }
    drop(server);
    let server = Server::start(&args);
    let (_, _) = {
        let mut c = server.connect();
        c.expect("NAME? ");
        c.send_line("late");
        c.expect_welcome("late");
        let mut hist = 0u32;
        while let Ok(line) = c.try_next_line(Duration::from_millis(500)) {
            if line.starts_with("HIST ") {
                hist += 1;
            }
        }
        assert!(hist >= delivered, "{hist} kept, {delivered} delivered");
        (c, ())
    };
}
